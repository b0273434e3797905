use std::path::PathBuf;

use thiserror::Error;

use crate::data::DataError;
use crate::eval::EvalError;
use crate::model::ModelError;
use crate::nn::NnError;

/// Errors of training and evaluation runs. Every variant names the offending value, file
/// or option, so the binaries print it as it is and exit with status 2.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A bad option (from the command line or the configuration file).
    #[error("invalid option: {0}")]
    Config(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("data: {0}")]
    Data(#[from] DataError),
    #[error("network: {0}")]
    Engine(#[from] NnError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("evaluation: {0}")]
    Eval(#[from] EvalError),
    /// The loss or the gradients stopped being finite.
    #[error("training diverged at epoch {epoch}, step {step}: {message}")]
    Diverged {
        epoch: usize,
        step: usize,
        message: String,
    },
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        TrainError::File {
            path: path.into(),
            message: e.to_string(),
        }
    }
}
