//! The network engine: arrays in, arrays out.
//!
//! Shape glossary, used in every `// (…)` comment of this module:
//! - `N` batch size, `C` channels, `H` height, `W` width (images are `(N, C, H, W)`),
//! - `D` features of a flat vector (`(N, D)`), `K` classes or embedding dimension,
//! - `O` output units / channels of a layer, `I` its input units / channels.
//!
//! Conventions (the same as PyTorch unless a doc comment says otherwise):
//! - Linear weights are `(O, I)`, convolution weights `(O, I, kh, kw)`.
//! - Every layer's `backward` *adds* into its parameter gradients; zeroing them is a
//!   separate step (`Sequential::zero_grad`).
//! - Wrong shapes are `NnError::Shape` errors naming the actual and expected shapes.

pub mod error;
pub mod layer;
pub mod param;

// Layers and their kernels.
pub mod activation;
pub mod avg_pool;
pub mod batch_norm;
pub mod conv2d;
pub mod cosine_head;
pub mod dropout;
pub mod epilogue;
pub mod flatten;
pub mod gemm;
pub mod im2col;
pub mod init;
pub mod l2norm;
pub mod linear;
pub mod maxout;
pub mod pool;
pub mod prelu;
pub mod recycle;
pub mod residual;
pub mod sequential;
mod tensor;
pub mod tensor_file;
pub mod winograd;

/// Finite-difference gradient checks for the tests of layers and losses.
#[doc(hidden)]
pub mod gradcheck;
#[cfg(test)]
mod layer_tests;
#[cfg(test)]
mod residual_tests;
#[cfg(test)]
mod sequential_tests;

// Training mathematics.
pub mod loss;
pub mod optim;
pub mod schedule;

pub use error::{NnError, Result};
pub use layer::{Layer, Mode};
pub use param::Param;

/// The tensor type passed between layers: a dynamic-rank `f32` array in standard
/// (row-major, C-contiguous) layout.
pub type Tensor = ndarray::ArrayD<f32>;
