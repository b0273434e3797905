//! Losses: each returns its value and the gradient with respect to its input.

use super::Tensor;

/// A loss value (mean over the batch unless a loss says otherwise) and dE/d(input),
/// with the input's shape.
#[derive(Debug, Clone)]
pub struct LossOutput {
    pub value: f32,
    pub grad: Tensor,
}
