//! Architectures, the model file and batched inference.

pub mod arch;
pub mod dlib_resnet;
mod embedder;
mod error;
mod file;
mod infer;
pub mod lbp;
mod meta;
mod resnet;
pub mod tail;

pub use embedder::Embedder;
pub use error::ModelError;
pub use file::{ModelFile, model_version, weights_version};
pub use infer::{embed_all, embed_batch};
pub use meta::{FORMAT_VERSION, METADATA_KEY, ModelMeta, Thresholds};
pub use tail::{TailBucket, TailModel, UpperBound};

/// The input `[h, w]` of an architecture that leaves it out: the reference CNN's. Here,
/// not in `arch`, because every architecture's specification defaults to it and `arch`
/// names them all.
pub(crate) fn default_input() -> [usize; 2] {
    [56, 48]
}
