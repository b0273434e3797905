//! Optimisers over all parameters of a model.

use super::Result;

/// One optimiser: keeps its own per-parameter state, indexed by the position of the
/// parameter in the slice (which must stay the same from step to step).
pub trait Optimizer: Send {
    /// Updates every parameter from its gradient at learning rate `lr` (the schedule
    /// decides `lr`; the optimiser never changes it).
    fn step(&mut self, params: &mut [&mut super::Param], lr: f32) -> Result<()>;
}
