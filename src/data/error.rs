use std::path::PathBuf;

use thiserror::Error;

/// Errors of the data pipeline. Each names the path or the actual and expected values.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a directory")]
    NotADirectory { path: PathBuf },
    #[error(
        "{root}: found {found} usable identities, need at least {need} \
         (one sub-folder per identity, each with at least {min_images} decodable images)"
    )]
    TooFewIdentities {
        root: PathBuf,
        found: usize,
        need: usize,
        min_images: usize,
    },
    #[error("{what}: expected shape {expected}, got {actual:?}")]
    Shape {
        what: &'static str,
        expected: String,
        actual: Vec<usize>,
    },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;

impl DataError {
    /// Shorthand for a shape error.
    pub fn shape(what: &'static str, expected: impl Into<String>, actual: &[usize]) -> Self {
        DataError::Shape {
            what,
            expected: expected.into(),
            actual: actual.to_vec(),
        }
    }
}
