//! Architectures, the model file and batched inference.

pub mod arch;
mod embedder;
mod error;
mod file;
mod meta;

pub use embedder::Embedder;
pub use error::ModelError;
pub use file::{ModelFile, weights_version};
pub use meta::{FORMAT_VERSION, METADATA_KEY, ModelMeta, Thresholds};
