//! Finding faces in whole photographs and cutting them out the way the embedding model
//! was trained to see them.
//!
//! [`FaceDetector`] runs SeetaFace's frontal detector (the `rustface` crate; its model
//! ships in this repository and is compiled in) and returns [`FaceBox`]es, largest
//! first. [`crop_face`] turns a box into the crop the model expects, with the margins
//! of [`DetectConfig`]. Faces smaller than [`DetectConfig::min_embed_size`] are for
//! reporting only. The server and `train-embed --detect` share all of it, so training
//! and serving see the same crops.

mod config;
mod crop;
mod detector;

pub use config::{DetectConfig, MAX_SEARCH_SIZE, MIN_SEARCH_SIZE};
pub use crop::{CropRect, crop_face, crop_rect};
pub use detector::{FaceBox, FaceDetector, sort_largest_first};

/// Why a detector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("invalid detector setting: {0}")]
    Config(String),
    #[error("the face detection model cannot be read: {0}")]
    Model(String),
}
