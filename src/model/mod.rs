//! Architectures, the model file and batched inference.

pub mod arch;
