//! Element-wise activations without parameters: ReLU, tanh, sigmoid, identity.

use super::tensor::{data, from_vec, par_map, par_zip_map, same_shape};
use super::{Layer, Mode, NnError, Result, Tensor};

/// Which element-wise function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationKind {
    /// `max(0, x)`; derivative 1 for x > 0, else 0 (0 at the kink, as PyTorch).
    Relu,
    /// `tanh x`; derivative `1 − y²`.
    Tanh,
    /// `1 / (1 + e^−x)`; derivative `y (1 − y)`.
    Sigmoid,
    /// `x`.
    Identity,
}

/// An element-wise activation. Shapes: any → the same. Every derivative above is
/// written in terms of the output `y`, so the training forward keeps only `y`.
#[derive(Debug, Clone)]
pub struct Activation {
    kind: ActivationKind,
    /// Output of the last training forward. Same shape as x.
    output: Option<Tensor>,
}

impl Activation {
    pub fn new(kind: ActivationKind) -> Self {
        Activation { kind, output: None }
    }

    pub fn relu() -> Self {
        Self::new(ActivationKind::Relu)
    }

    /// y = f(x) for every element (one closure per kind, so each loop vectorises).
    fn apply(&self, xs: &[f32]) -> Vec<f32> {
        match self.kind {
            ActivationKind::Relu => par_map(xs, |v| v.max(0.0)),
            ActivationKind::Tanh => par_map(xs, f32::tanh),
            ActivationKind::Sigmoid => par_map(xs, |v| 1.0 / (1.0 + (-v).exp())),
            ActivationKind::Identity => xs.to_vec(),
        }
    }

    /// dE/dx from dE/dy and y.
    fn derivative(&self, dy: &[f32], y: &[f32]) -> Vec<f32> {
        match self.kind {
            ActivationKind::Relu => par_zip_map(dy, y, |d, y| if y > 0.0 { d } else { 0.0 }),
            ActivationKind::Tanh => par_zip_map(dy, y, |d, y| d * (1.0 - y * y)),
            ActivationKind::Sigmoid => par_zip_map(dy, y, |d, y| d * y * (1.0 - y)),
            ActivationKind::Identity => dy.to_vec(),
        }
    }
}

impl Layer for Activation {
    fn kind(&self) -> &'static str {
        match self.kind {
            ActivationKind::Relu => "relu",
            ActivationKind::Tanh => "tanh",
            ActivationKind::Sigmoid => "sigmoid",
            ActivationKind::Identity => "identity",
        }
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.infer(x)?;
        if mode == Mode::Train {
            self.output = Some(y.clone());
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        from_vec(x.shape(), self.apply(&data(x)))
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let op = self.kind();
        let y = self.output.as_ref().ok_or(NnError::NoForwardCache { op })?;
        same_shape(op, dy, y.shape())?;
        from_vec(y.shape(), self.derivative(&data(dy), &data(y)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activations_compute_their_formulas() {
        let x = Tensor::from_shape_vec(vec![1, 3], vec![-2.0, 0.0, 1.5]).unwrap();
        type Formula = fn(f32) -> f32;
        let cases: [(ActivationKind, Formula); 4] = [
            (ActivationKind::Relu, |v| v.max(0.0)),
            (ActivationKind::Tanh, f32::tanh),
            (ActivationKind::Sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
            (ActivationKind::Identity, |v| v),
        ];
        for (kind, f) in cases {
            let y = Activation::new(kind).infer(&x).unwrap();
            assert_eq!(y.shape(), x.shape());
            for (a, &v) in y.iter().zip(x.iter()) {
                assert_eq!(*a, f(v), "{kind:?}");
            }
        }
    }

    #[test]
    fn backward_before_forward_is_an_error() {
        let mut relu = Activation::relu();
        assert!(matches!(
            relu.backward(&Tensor::zeros(vec![1, 1])),
            Err(NnError::NoForwardCache { op: "relu" })
        ));
    }
}
