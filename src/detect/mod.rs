//! Finding faces in whole photographs and cutting them out the way the embedding model
//! was trained to see them.
//!
//! [`FaceDetector`] runs the MTCNN cascade ([`mtcnn`], on the project's own `nn`
//! layers, with weights compiled in from `models/mtcnn.safetensors`) and returns
//! [`FaceBox`]es with five landmarks, largest first. [`crop_face`] aligns a face to the
//! 96×112 template frame ([`align`]), [`crop_face_in`] to the frame a model names. Faces smaller than
//! [`DetectConfig::min_embed_size`] are for reporting only. The server and
//! `train-embed --detect` share all of it, so training and serving see the same crops.

pub mod align;
mod config;
mod contrast;
mod crop;
mod detector;
pub mod mtcnn;
mod nets;
pub mod resample;

pub use align::{DLIB_TEMPLATE, FRAME_HEIGHT, FRAME_WIDTH, Frame, TEMPLATE};
pub use config::{DetectConfig, MAX_SEARCH_SIZE, MIN_SEARCH_SIZE};
pub use crop::{box_landmarks, crop_face, crop_face_in};
pub use detector::{FaceBox, FaceDetector, Point, sort_largest_first};

/// Why a detector could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error("invalid detector setting: {0}")]
    Config(String),
    #[error("the face detection model cannot be read: {0}")]
    Model(String),
}
