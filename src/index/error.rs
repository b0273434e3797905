//! What can go wrong when storing or querying embeddings.

/// An embedding or a parameter the index cannot accept; each variant names the value it
/// got and the value it expected.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum IndexError {
    #[error("wrong embedding dimension: expected {expected}, got {got}")]
    Dimension { expected: usize, got: usize },
    #[error("batch item {position}: {source}")]
    InBatch {
        position: usize,
        #[source]
        source: Box<IndexError>,
    },
    #[error("invalid index configuration: {field} = {value}, expected {expected}")]
    Config {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
}
