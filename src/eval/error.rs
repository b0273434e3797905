use thiserror::Error;

use crate::data::DataError;

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
