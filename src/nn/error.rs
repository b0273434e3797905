use thiserror::Error;

/// Errors of the engine. Shapes are printed as `[N, C, H, W]`.
#[derive(Debug, Error)]
pub enum NnError {
    #[error("{op}: expected input of shape {expected}, got {actual:?}")]
    Shape {
        op: &'static str,
        expected: String,
        actual: Vec<usize>,
    },
    #[error("{op}: backward called before a training-mode forward")]
    NoForwardCache { op: &'static str },
    #[error("{0}")]
    Invalid(String),
    #[error("tensor file: {0}")]
    TensorFile(String),
}

pub type Result<T, E = NnError> = std::result::Result<T, E>;

impl NnError {
    /// Shorthand for a shape error.
    pub fn shape(op: &'static str, expected: impl Into<String>, actual: &[usize]) -> Self {
        NnError::Shape {
            op,
            expected: expected.into(),
            actual: actual.to_vec(),
        }
    }
}
