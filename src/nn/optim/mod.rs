//! Optimisers over all parameters of a model.
//!
//! Every optimiser takes the same three steps for each parameter, in this order:
//! 1. decoupled weight decay, if configured: w ← (1 − ελ)w (AdamW);
//! 2. its own update from the gradient g (plus λw first, under L2 weight decay);
//! 3. the max-norm constraint, if configured: each unit's incoming weights (a slice along
//!    axis 0) are rescaled to norm ≤ c.
//!
//! Weight decay and max-norm touch only parameters whose `Param::decay` / `Param::max_norm`
//! flag is set (weights, not biases or batch-norm scales). Gradient clipping by global
//! norm ([`clip_grad_norm`]) is a separate call made before `step`.

mod adagrad;
mod adam;
mod clip;
mod config;
mod regularization;
mod sgd;
mod slots;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig};
pub use clip::clip_grad_norm;
pub use config::OptimizerConfig;
pub use regularization::{WeightDecay, max_norm_rows};
pub use sgd::{Sgd, SgdConfig};

use super::Result;

/// One optimiser: keeps its own per-parameter state, indexed by the position of the
/// parameter in the slice (which must stay the same from step to step).
pub trait Optimizer: Send {
    /// Updates every parameter from its gradient at learning rate `lr` (the schedule
    /// decides `lr`; the optimiser never changes it).
    fn step(&mut self, params: &mut [&mut super::Param], lr: f32) -> Result<()>;

    /// The optimiser's state (momenta, moments, step count) as named tensors, for
    /// checkpoints. Empty before the first step.
    fn state(&self) -> OptimizerState;

    /// Restores a state returned by [`Optimizer::state`] of an optimiser of the same kind,
    /// so that training continues exactly as if it had never stopped. Shapes are checked
    /// against the parameters on the next `step`.
    fn load_state(&mut self, state: &OptimizerState) -> Result<()>;
}

/// Named optimiser state tensors (`"{slot}.{parameter index}"`, plus scalars as 1-element
/// tensors), in name order.
pub type OptimizerState = std::collections::BTreeMap<String, super::Tensor>;
