//! Detector settings, shared by the server (`[detector]`) and `train-embed --detect`, so
//! training and serving see the same kind of crops.

use serde::{Deserialize, Serialize};

use super::DetectError;

/// The smallest `min_face_size`: below it the pyramid's first level enlarges the image
/// more than 12 / 20 = 0.6 and the search cost grows with its square.
pub const MIN_SEARCH_SIZE: u32 = 20;

/// The largest `min_face_size` accepted.
pub const MAX_SEARCH_SIZE: u32 = 1000;

/// How faces are found. The defaults are MTCNN's published settings (facenet-pytorch's)
/// except `min_face_size`, 40 instead of 20: four times less work, and smaller faces are
/// too small to embed reliably anyway (see `min_embed_size`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Smallest face searched for, pixels, 20 to 1000. The search costs about
    /// `(40 / min_face_size)²` times the default's.
    pub min_face_size: u32,
    /// Ratio between the sizes of adjacent image-pyramid levels, in [0.5, 0.95].
    pub pyramid_factor: f32,
    /// Face probability each stage (P-Net, R-Net, O-Net) needs to keep a box, in (0, 1).
    pub thresholds: [f32; 3],
    /// Faces whose box is smaller than this (width or height, pixels) are reported but
    /// not embedded: the 96×112 aligned frame of a much smaller face would be an
    /// enlargement of a few pixels, and its embedding unreliable.
    pub min_embed_size: u32,
    /// When the search finds no face, take an image shaped like a face crop (sides
    /// within 2:1) as one tight crop and keep it if the last stage, O-Net, on the image
    /// and its mirror says it is a face (mean probability ≥ 0.5), or says so after the
    /// image is equalised by tiles (a face half in shadow). On for face
    /// databases' crops and clients that crop faces themselves; off where a picture
    /// without a detected face should stay without one.
    pub tight_crops: bool,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            min_face_size: 40,
            pyramid_factor: 0.709,
            thresholds: [0.6, 0.7, 0.7],
            min_embed_size: 40,
            tight_crops: true,
        }
    }
}

impl DetectConfig {
    /// Checks every value against what the detector accepts.
    pub fn validate(&self) -> Result<(), DetectError> {
        let invalid = |what: &str| Err(DetectError::Config(what.to_owned()));
        if !(MIN_SEARCH_SIZE..=MAX_SEARCH_SIZE).contains(&self.min_face_size) {
            return invalid(&format!(
                "min_face_size must lie in [{MIN_SEARCH_SIZE}, {MAX_SEARCH_SIZE}], got {}",
                self.min_face_size
            ));
        }
        if !(0.5..=0.95).contains(&self.pyramid_factor) {
            return invalid(&format!(
                "pyramid_factor must lie in [0.5, 0.95], got {}",
                self.pyramid_factor
            ));
        }
        if let Some(t) = self
            .thresholds
            .iter()
            .find(|t| !(t.is_finite() && **t > 0.0 && **t < 1.0))
        {
            return invalid(&format!("thresholds must each lie in (0, 1), got {t}"));
        }
        Ok(())
    }
}
