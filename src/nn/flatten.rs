//! Flattening images into vectors.

use super::tensor::same_shape;
use super::{Layer, Mode, NnError, Result, Tensor};

/// `(N, d1, d2, …)` → `(N, d1·d2·…)`, row-major (PyTorch's `nn.Flatten()`), so a
/// `(N, C, H, W)` map becomes features ordered channel, then row, then column.
#[derive(Debug, Clone, Default)]
pub struct Flatten {
    input_shape: Option<Vec<usize>>,
}

impl Flatten {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Layer for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            [n, rest @ ..] if !rest.is_empty() => Ok(vec![*n, rest.iter().product()]),
            _ => Err(NnError::shape(
                "flatten",
                "[N, d1, …] (at least 2 axes)",
                input,
            )),
        }
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.infer(x)?;
        if mode == Mode::Train {
            self.input_shape = Some(x.shape().to_vec());
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let shape = self.output_shape(x.shape())?;
        x.as_standard_layout()
            .into_owned()
            .into_shape_with_order(shape)
            .map_err(|e| NnError::Invalid(format!("flatten: {e}")))
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let shape = self
            .input_shape
            .clone()
            .ok_or(NnError::NoForwardCache { op: "flatten" })?;
        same_shape("flatten", dy, &self.output_shape(&shape)?)?;
        dy.as_standard_layout()
            .into_owned()
            .into_shape_with_order(shape)
            .map_err(|e| NnError::Invalid(format!("flatten: {e}")))
    }
}
