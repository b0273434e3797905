use super::Tensor;

/// A trainable tensor with its gradient and the regularisation it takes part in.
#[derive(Debug, Clone)]
pub struct Param {
    /// Name within its layer: `weight`, `bias`, `gamma`, `beta`, `slope`.
    pub name: &'static str,
    /// The value; for weights, axis 0 indexes output units.
    pub value: Tensor,
    /// dE/d(value), same shape; accumulated by `backward`, zeroed by `zero_grad`.
    pub grad: Tensor,
    /// Whether weight decay (L2 or decoupled) applies. True for weights, false for
    /// biases and batch-norm parameters, as is customary.
    pub decay: bool,
    /// Whether the max-norm constraint applies: each unit's incoming weights (one slice
    /// along axis 0) are rescaled to norm ≤ c after an update.
    pub max_norm: bool,
}

impl Param {
    /// A weight: decayed and max-norm constrained.
    pub fn weight(name: &'static str, value: Tensor) -> Self {
        let grad = Tensor::zeros(value.raw_dim());
        Param {
            name,
            value,
            grad,
            decay: true,
            max_norm: true,
        }
    }

    /// A bias or scale/shift: neither decayed nor constrained.
    pub fn bias(name: &'static str, value: Tensor) -> Self {
        let grad = Tensor::zeros(value.raw_dim());
        Param {
            name,
            value,
            grad,
            decay: false,
            max_norm: false,
        }
    }

    pub fn zero_grad(&mut self) {
        self.grad.fill(0.0);
    }
}
