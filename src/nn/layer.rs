use super::{Param, Result, Tensor};

/// Training or evaluation behaviour (batch norm statistics, dropout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Train,
    Eval,
}

/// One layer of a network: forward and backward side by side.
///
/// `forward` in `Mode::Train` stores exactly what `backward` needs; `infer` is the
/// eval-mode forward through `&self`, so one model can serve many threads at once.
pub trait Layer: Send + Sync + std::fmt::Debug {
    /// Short kind name (`linear`, `conv2d`, …), used in tensor names and errors.
    fn kind(&self) -> &'static str;

    /// The output shape (batch axis included) for an input shape, or a shape error.
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>>;

    /// Forward pass; in `Mode::Train` caches what `backward` needs.
    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor>;

    /// Eval-mode forward without touching any state.
    fn infer(&self, x: &Tensor) -> Result<Tensor>;

    /// Given dE/dy for the last training forward, *adds* dE/dθ into each parameter's
    /// gradient and returns dE/dx.
    fn backward(&mut self, dy: &Tensor) -> Result<Tensor>;

    /// Trainable parameters, in a fixed order.
    fn params(&self) -> Vec<&Param> {
        Vec::new()
    }

    /// Trainable parameters, mutably, in the same order as `params`.
    fn params_mut(&mut self) -> Vec<&mut Param> {
        Vec::new()
    }

    /// Non-trainable state saved with the model (batch-norm running statistics).
    fn buffers(&self) -> Vec<(&'static str, &Tensor)> {
        Vec::new()
    }

    /// Mutable access to the buffers, in the same order as `buffers`.
    fn buffers_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        Vec::new()
    }
}
