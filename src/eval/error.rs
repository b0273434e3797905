use thiserror::Error;

use crate::data::DataError;
use crate::model::ModelError;

/// Errors of evaluation: they name the actual and expected values.
#[derive(Debug, Error)]
pub enum EvalError {
    #[error("{what}: expected {expected}, got {actual}")]
    Mismatch {
        what: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {message}")]
    Output { path: String, message: String },
    /// A line of a pairs file that does not follow the LFW format.
    #[error("{file} line {line}: {message}")]
    PairsLine {
        file: String,
        line: usize,
        message: String,
    },
    /// An image a pairs file names is not in the data folder.
    #[error("{path}: no such image (named by {file} line {line})")]
    MissingImage {
        path: String,
        file: String,
        line: usize,
    },
}

pub type Result<T, E = EvalError> = std::result::Result<T, E>;

impl EvalError {
    /// An I/O (or file-content) error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, e: impl std::fmt::Display) -> EvalError {
        EvalError::Output {
            path: path.as_ref().display().to_string(),
            message: e.to_string(),
        }
    }

    pub fn mismatch(
        what: &'static str,
        expected: impl ToString,
        actual: impl ToString,
    ) -> EvalError {
        EvalError::Mismatch {
            what,
            expected: expected.to_string(),
            actual: actual.to_string(),
        }
    }
}
