//! Element-wise activations without parameters: ReLU, tanh, sigmoid, identity.

use super::epilogue::Epilogue;
use super::tensor::{
    data, from_vec, par_map, par_mask, par_relu_with_mask, par_zip_map, same_shape,
};
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
/// written in terms of the output `y`, so the training forward keeps only `y` — and for
/// ReLU only whether `y > 0`, one byte per element instead of a copy of the output
/// (a quarter of the memory traffic on the largest maps of a network).
#[derive(Debug, Clone)]
pub struct Activation {
    kind: ActivationKind,
    /// What backward needs of the last training forward.
    saved: Option<Saved>,
}

#[derive(Debug, Clone)]
enum Saved {
    /// ReLU: `y > 0`, 1 or 0. Same shape as x.
    Positive { shape: Vec<usize>, mask: Vec<u8> },
    /// Any other kind: `y`. Same shape as x.
    Output(Tensor),
}

impl Activation {
    pub fn new(kind: ActivationKind) -> Self {
        Activation { kind, saved: None }
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
        match (mode, self.kind) {
            (Mode::Eval, _) => self.infer(x),
            (Mode::Train, ActivationKind::Relu) => {
                let (y, mask) = par_relu_with_mask(&data(x));
                let shape = x.shape().to_vec();
                let y = from_vec(&shape, y)?;
                self.saved = Some(Saved::Positive { shape, mask });
                Ok(y)
            }
            (Mode::Train, _) => {
                let y = self.infer(x)?;
                self.saved = Some(Saved::Output(y.clone()));
                Ok(y)
            }
        }
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        from_vec(x.shape(), self.apply(&data(x)))
    }

    fn as_epilogue(&self) -> Option<Epilogue> {
        (self.kind == ActivationKind::Relu).then_some(Epilogue::Relu)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let op = self.kind();
        match self.saved.as_ref().ok_or(NnError::NoForwardCache { op })? {
            Saved::Positive { shape, mask } => {
                same_shape(op, dy, shape)?;
                from_vec(shape, par_mask(&data(dy), mask))
            }
            Saved::Output(y) => {
                same_shape(op, dy, y.shape())?;
                from_vec(y.shape(), self.derivative(&data(dy), &data(y)))
            }
        }
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
