//! Photometric normalisations: what to choose ([`NormalisationKind`], a command-line
//! flag), how to fit it ([`PreprocessingSpec::fit`]) and the fitted form
//! ([`Normalisation`], stored in the model).

use image::GrayImage;
use ndarray::{Array2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::stored::StoredArray;
use super::tan_triggs::TanTriggs;
use super::whitening::{Whitening, flatten_rows};
use super::{DEFAULT_HEIGHT, DEFAULT_WIDTH, Preprocessing};
use crate::data::error::{DataError, Result};

/// Standard deviations below this (pixels in [0, 1], so a quarter of a grey level) are
/// raised to it: a flat image or an always-black pixel is divided by a small number, not
/// by zero.
pub const STD_FLOOR: f32 = 1e-3;

/// The normalisation to fit, as chosen by a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum NormalisationKind {
    /// Pixels in [0, 1], unchanged.
    None,
    /// Each image to zero mean and unit standard deviation.
    PerImage,
    /// Each pixel to zero mean and unit standard deviation over the training set.
    Dataset,
    /// PCA whitening (output `(1, K)`: for MLPs).
    Pca,
    /// ZCA whitening (output `(H, W)`).
    Zca,
    /// Tan & Triggs illumination normalisation (the paper's parameters unless set).
    TanTriggs,
}

/// Everything needed to fit a [`Preprocessing`]. In a TOML or JSON table (the trainer's
/// `[preprocessing]`) the kind is `normalisation`, and a field left out takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PreprocessingSpec {
    pub height: usize,
    pub width: usize,
    #[serde(rename = "normalisation")]
    pub kind: NormalisationKind,
    /// PCA whitening: directions kept (at most the numerical rank, ≤ N − 1). Default 128.
    pub pca_components: usize,
    /// Whitening regulariser ε (squared pixel units). Default 0.01.
    pub whitening_eps: f32,
    /// Tan–Triggs parameters (used by `TanTriggs` only). Default: the paper's.
    pub tan_triggs: TanTriggs,
}

impl Default for PreprocessingSpec {
    fn default() -> Self {
        PreprocessingSpec {
            height: DEFAULT_HEIGHT,
            width: DEFAULT_WIDTH,
            kind: NormalisationKind::PerImage,
            pca_components: 128,
            whitening_eps: 0.01,
            tan_triggs: TanTriggs::default(),
        }
    }
}

impl PreprocessingSpec {
    /// The spec with only the size and normalisation kind changed from the default.
    pub fn new(height: usize, width: usize, kind: NormalisationKind) -> Self {
        PreprocessingSpec {
            height,
            width,
            kind,
            ..Self::default()
        }
    }

    /// Fits on training images (decoded greyscale, any size). Stateless kinds ignore
    /// the images.
    pub fn fit(&self, images: &[GrayImage]) -> Result<Preprocessing> {
        let sizing = self.unfitted(Normalisation::None);
        let resized: Vec<Array2<f32>> = images
            .par_iter()
            .map(|image| sizing.resize(image))
            .collect::<Result<_>>()?;
        self.fit_resized(&resized)
    }

    /// Fits on training images already passed through [`Preprocessing::resize`].
    pub fn fit_resized(&self, images: &[Array2<f32>]) -> Result<Preprocessing> {
        if let Some(bad) = images.iter().find(|i| i.dim() != (self.height, self.width)) {
            return Err(DataError::shape(
                "fit input",
                format!("[{}, {}]", self.height, self.width),
                bad.shape(),
            ));
        }
        let stateful = matches!(
            self.kind,
            NormalisationKind::Dataset | NormalisationKind::Pca | NormalisationKind::Zca
        );
        if stateful && images.len() < 2 {
            return Err(DataError::Invalid(format!(
                "fitting {:?} normalisation needs at least 2 training images, got {}",
                self.kind,
                images.len()
            )));
        }
        let normalisation = match self.kind {
            NormalisationKind::None => Normalisation::None,
            NormalisationKind::PerImage => Normalisation::PerImage,
            NormalisationKind::TanTriggs => Normalisation::TanTriggs(self.tan_triggs.validated()?),
            NormalisationKind::Dataset => {
                let x = flatten_rows(images)?;
                let mean = x.mean_axis(Axis(0)).unwrap_or_default();
                let std = x.std_axis(Axis(0), 0.0).mapv(|s| s.max(STD_FLOOR));
                let shape = (self.height, self.width);
                let reshape = |a: ndarray::Array1<f32>| {
                    a.into_shape_with_order(shape)
                        .map(|a| StoredArray(a.into_dyn()))
                        .map_err(|e| DataError::Invalid(format!("dataset statistics: {e}")))
                };
                Normalisation::Dataset {
                    mean: reshape(mean)?,
                    std: reshape(std)?,
                }
            }
            NormalisationKind::Pca => Normalisation::Pca(Whitening::fit(
                &flatten_rows(images)?,
                self.pca_components,
                self.whitening_eps,
            )?),
            NormalisationKind::Zca => Normalisation::Zca(Whitening::fit(
                &flatten_rows(images)?,
                usize::MAX,
                self.whitening_eps,
            )?),
        };
        Ok(self.unfitted(normalisation))
    }

    fn unfitted(&self, normalisation: Normalisation) -> Preprocessing {
        Preprocessing {
            height: self.height,
            width: self.width,
            normalisation,
        }
    }
}

/// A fitted photometric normalisation of a resized `(H, W)` image `x` in [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Normalisation {
    /// `y = x`.
    None,
    /// `y = (x − mean(x)) / max(std(x), STD_FLOOR)` (population std).
    PerImage,
    /// `y = (x − μ) / σ` per pixel; `μ`, `σ` `(H, W)` from the training set, `σ`
    /// already floored at [`STD_FLOOR`].
    Dataset { mean: StoredArray, std: StoredArray },
    /// PCA whitening, output `(1, K)`; see [`Whitening`].
    Pca(Whitening),
    /// ZCA whitening, output `(H, W)`; see [`Whitening`].
    Zca(Whitening),
    /// Tan & Triggs; output in `(−τ, τ)`.
    TanTriggs(TanTriggs),
}

impl Normalisation {
    /// Applies to one `(H, W)` image (shape already checked by the caller).
    pub fn apply(&self, x: Array2<f32>) -> Result<Array2<f32>> {
        let shape = x.dim();
        match self {
            Normalisation::None => Ok(x),
            Normalisation::PerImage => {
                let mean = x.mean().unwrap_or(0.0);
                let std = x.std(0.0).max(STD_FLOOR);
                Ok(x.mapv(|v| (v - mean) / std))
            }
            Normalisation::Dataset { mean, std } => {
                if mean.0.shape() != x.shape() || std.0.shape() != x.shape() {
                    return Err(DataError::shape(
                        "dataset statistics",
                        format!("{:?}", x.shape()),
                        mean.0.shape(),
                    ));
                }
                let mut y = x.into_dyn();
                y -= &mean.0;
                y /= &std.0;
                y.into_dimensionality()
                    .map_err(|e| DataError::Invalid(format!("dataset normalisation: {e}")))
            }
            Normalisation::Pca(w) => {
                let flat = x
                    .into_shape_with_order(shape.0 * shape.1)
                    .map_err(reshape_err)?;
                let y = w.pca(flat.view())?;
                let k = y.len();
                y.into_shape_with_order((1, k)).map_err(reshape_err)
            }
            Normalisation::Zca(w) => {
                let flat = x
                    .into_shape_with_order(shape.0 * shape.1)
                    .map_err(reshape_err)?;
                w.zca(flat.view())?
                    .into_shape_with_order(shape)
                    .map_err(reshape_err)
            }
            Normalisation::TanTriggs(t) => Ok(t.apply(&x)),
        }
    }
}

fn reshape_err(e: ndarray::ShapeError) -> DataError {
    DataError::Invalid(format!("normalisation reshape: {e}"))
}
