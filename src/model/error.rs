use thiserror::Error;

use crate::nn::NnError;

/// Errors reading, writing or running a model.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("model file {path}: {message}")]
    File { path: String, message: String },
    #[error("model file is not a faceprint model: {0}")]
    NotAModel(String),
    #[error("model file: {0}")]
    Corrupt(String),
    #[error("unsupported model: {0}")]
    Unsupported(String),
    #[error("image {index}: {message}")]
    Image { index: usize, message: String },
    #[error(transparent)]
    Engine(#[from] NnError),
    /// A forward pass shared with other callers failed (its error, as text).
    #[error("inference: {0}")]
    Inference(String),
}
