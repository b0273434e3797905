use super::epilogue::Epilogue;
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

    /// Eval-mode forward that also applies `chain`, the element-wise layers that follow
    /// this one, while its output is still in cache (see `epilogue`). Returns the output
    /// and how many steps of `chain` were applied (a prefix); the default applies none.
    fn infer_then(&self, x: &Tensor, chain: &[Epilogue]) -> Result<(Tensor, usize)> {
        let _ = chain;
        Ok((self.infer(x)?, 0))
    }

    /// `forward` that also applies `chain`, the element-wise layers that follow this one,
    /// in the same pass over memory. Returns the output and how many steps of `chain`
    /// were applied (a prefix); the default applies none. A layer that applies steps in
    /// training also takes their part of the backward pass in its own `backward`: the
    /// caller (`Sequential`) skips those layers both ways.
    fn forward_then(
        &mut self,
        x: &Tensor,
        mode: Mode,
        chain: &[Epilogue],
    ) -> Result<(Tensor, usize)> {
        let _ = chain;
        Ok((self.forward(x, mode)?, 0))
    }

    /// [`Layer::forward_then`] for a caller that hands over its input (`Sequential` passes
    /// each layer's output on to the next and has no use for it afterwards): a layer that
    /// keeps its input for the backward pass can keep `x` itself instead of a copy. The
    /// default borrows it.
    fn forward_then_owned(
        &mut self,
        x: Tensor,
        mode: Mode,
        chain: &[Epilogue],
    ) -> Result<(Tensor, usize)> {
        self.forward_then(&x, mode, chain)
    }

    /// This layer's eval-mode computation as an epilogue the layer before it may apply
    /// instead (batch norm, ReLU, PReLU, 2×2 max pooling), or `None`.
    fn as_epilogue(&self) -> Option<Epilogue> {
        None
    }

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

    /// Every parameter value and buffer by its name within this layer. A leaf layer's
    /// names are its `Param::name`s (in `params` order) and then its buffer names; a
    /// layer holding other layers (`Sequential`, `Residual`) lists its children's in
    /// their order, each prefixed, so names stay unique and stable at any depth.
    fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        let params = self
            .params()
            .into_iter()
            .map(|p| (p.name.to_string(), &p.value));
        let buffers = self.buffers().into_iter().map(|(n, t)| (n.to_string(), t));
        params.chain(buffers).collect()
    }

    /// Calls `f` with every name of `named_tensors` and that tensor, mutably, in the
    /// same order (loading weights, restoring checkpoints).
    fn visit_tensors_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        // Parameters and buffers cannot be borrowed mutably at once: two passes.
        for p in self.params_mut() {
            f(p.name, &mut p.value);
        }
        for (name, t) in self.buffers_mut() {
            f(name, t);
        }
    }

    /// The seed this layer's random generator last started from, or `None` for a layer
    /// that draws nothing (every layer but dropout).
    fn seed(&self) -> Option<u64> {
        None
    }

    /// Restarts this layer's random generator from `seed` (the same seed gives the same
    /// draws again); a layer that draws nothing ignores it.
    fn reseed(&mut self, _seed: u64) {}
}
