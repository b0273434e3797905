//! Preprocessing: the exact steps from a decoded image to the network input, recorded
//! in the model file so the server repeats them bit for bit.
//!
//! 1. greyscale: `DynamicImage::to_luma8` (Rec. 709 luma for colour input), then `/255`
//!    to `f32` in [0, 1];
//! 2. resize to `(height, width)` with `image`'s `FilterType::Triangle` (bilinear,
//!    widened when shrinking so it averages instead of aliasing) on the `f32` image, the
//!    same filter everywhere; the aspect ratio is not kept (face crops are already
//!    roughly 6:7);
//! 3. training augmentation, if any ([`crate::data::Augmentation`]), on the `(H, W)` array;
//! 4. photometric [`Normalisation`].
//!
//! Steps 1–2 are [`Preprocessing::resize`], step 4 [`Preprocessing::normalise`], and
//! [`Preprocessing::apply`] does all but 3. Outputs are `(H, W)`, except PCA whitening:
//! `(1, K)` (see [`whitening`]). [`Preprocessing::output_shape`] says which.

mod normalisation;
pub mod stored;
pub mod tan_triggs;
pub mod whitening;

use image::{DynamicImage, GrayImage, ImageBuffer, Luma, imageops};
use ndarray::{Array2, Array4, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use normalisation::{Normalisation, NormalisationKind, PreprocessingSpec, STD_FLOOR};
pub use stored::StoredArray;
pub use tan_triggs::TanTriggs;
pub use whitening::Whitening;

use super::error::{DataError, Result};

/// Default input height and width (H×W): 56×48.
pub const DEFAULT_HEIGHT: usize = 56;
pub const DEFAULT_WIDTH: usize = 48;

/// A fitted preprocessing, serialised into the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub height: usize,
    pub width: usize,
    pub normalisation: Normalisation,
}

impl Default for Preprocessing {
    fn default() -> Self {
        Preprocessing {
            height: DEFAULT_HEIGHT,
            width: DEFAULT_WIDTH,
            normalisation: Normalisation::PerImage,
        }
    }
}

impl Preprocessing {
    /// Shape of one output: `(H, W)`, or `(1, K)` for PCA whitening.
    pub fn output_shape(&self) -> (usize, usize) {
        match &self.normalisation {
            Normalisation::Pca(w) => (1, w.components()),
            _ => (self.height, self.width),
        }
    }

    /// Checks, after loading, that every stored array fits `(height, width)`, so a
    /// corrupt model file fails when it is opened rather than on its first image.
    pub fn validate(&self) -> Result<()> {
        let (h, w) = (self.height, self.width);
        if h == 0 || w == 0 {
            return Err(DataError::Invalid(format!(
                "preprocessing size must be positive, got {h}x{w}"
            )));
        }
        match &self.normalisation {
            Normalisation::Dataset { mean, std } => {
                for (what, a) in [("dataset mean", mean), ("dataset std", std)] {
                    if a.0.shape() != [h, w] {
                        return Err(DataError::shape(what, format!("[{h}, {w}]"), a.0.shape()));
                    }
                }
                if std.0.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(DataError::Invalid(
                        "dataset std must be positive and finite".into(),
                    ));
                }
                Ok(())
            }
            Normalisation::Pca(wh) | Normalisation::Zca(wh) => wh.validate(h * w),
            Normalisation::None | Normalisation::PerImage | Normalisation::TanTriggs(_) => Ok(()),
        }
    }

    /// Steps 1–2: greyscale `f32` in [0, 1], resized to `(H, W)`.
    pub fn resize(&self, image: &GrayImage) -> Result<Array2<f32>> {
        let (w, h) = image.dimensions();
        if w == 0 || h == 0 {
            return Err(DataError::shape(
                "image",
                "non-empty",
                &[h as usize, w as usize],
            ));
        }
        let (out_h, out_w) = (self.height as u32, self.width as u32);
        if out_h == 0 || out_w == 0 {
            return Err(DataError::Invalid(format!(
                "preprocessing size must be positive, got {}x{}",
                self.height, self.width
            )));
        }
        let float: ImageBuffer<Luma<f32>, Vec<f32>> = ImageBuffer::from_fn(w, h, |x, y| {
            Luma([f32::from(image.get_pixel(x, y)[0]) / 255.0])
        });
        let resized = imageops::resize(&float, out_w, out_h, imageops::FilterType::Triangle);
        Array2::from_shape_vec((self.height, self.width), resized.into_raw())
            .map_err(|e| DataError::Invalid(format!("resize: {e}")))
    }

    /// Step 4 on one resized `(H, W)` array.
    pub fn normalise(&self, image: Array2<f32>) -> Result<Array2<f32>> {
        if image.dim() != (self.height, self.width) {
            return Err(DataError::shape(
                "normalise input",
                format!("[{}, {}]", self.height, self.width),
                image.shape(),
            ));
        }
        self.normalisation.apply(image)
    }

    /// The whole inference path for one image of any colour type.
    pub fn apply(&self, image: &DynamicImage) -> Result<Array2<f32>> {
        self.apply_grey(&image.to_luma8())
    }

    /// The whole inference path for an 8-bit greyscale image.
    pub fn apply_grey(&self, image: &GrayImage) -> Result<Array2<f32>> {
        self.normalise(self.resize(image)?)
    }

    /// Preprocesses images in parallel into a network batch `(N, 1, H', W')`, where
    /// `(H', W')` is [`Self::output_shape`].
    pub fn batch(&self, images: &[GrayImage]) -> Result<Array4<f32>> {
        let arrays: Vec<Array2<f32>> = images
            .par_iter()
            .map(|image| self.apply_grey(image))
            .collect::<Result<_>>()?;
        stack(&arrays)
    }

    /// Normalises already resized (and possibly augmented) arrays in parallel into a
    /// batch `(N, 1, H', W')`.
    pub fn normalise_batch(&self, images: Vec<Array2<f32>>) -> Result<Array4<f32>> {
        let arrays: Vec<Array2<f32>> = images
            .into_par_iter()
            .map(|image| self.normalise(image))
            .collect::<Result<_>>()?;
        stack(&arrays)
    }
}

/// Stacks equally shaped `(H, W)` arrays into `(N, 1, H, W)`.
pub fn stack(arrays: &[Array2<f32>]) -> Result<Array4<f32>> {
    let (h, w) = arrays.first().map_or((0, 0), |a| a.dim());
    let mut out = Array4::<f32>::zeros((arrays.len(), 1, h, w));
    for (mut slot, array) in out.axis_iter_mut(Axis(0)).zip(arrays) {
        if array.dim() != (h, w) {
            return Err(DataError::shape(
                "stack",
                format!("[{h}, {w}]"),
                array.shape(),
            ));
        }
        slot.index_axis_mut(Axis(0), 0).assign(array);
    }
    Ok(out)
}
