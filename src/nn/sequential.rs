//! The model container: layers run in order, parameters handed to the optimisers,
//! tensors saved and loaded by name (`nn::tensor_file`).

use super::epilogue;
use super::recycle;
use super::tensor_file::{self, Tensors};
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

/// Layers applied one after the other: `y = f_L(… f_1(x))`.
///
/// Tensor names are `"{index}.{kind}.{name}"` with the layer's position, its kind and
/// the layer's own name of the parameter or buffer (`Layer::named_tensors`), e.g.
/// `0.conv2d.weight`, `1.batch_norm.running_var`, and for a layer holding layers
/// `2.residual.body.0.conv2d.weight`.
#[derive(Debug, Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
    /// The layers the last forward ran, in order; the ones between two entries were
    /// applied by the layer before them (`Layer::forward_then`), and backward skips them.
    ran: Vec<usize>,
}

impl Sequential {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a layer.
    pub fn push(&mut self, layer: impl Layer + 'static) -> &mut Self {
        self.push_boxed(Box::new(layer))
    }

    /// Appends a layer chosen at run time.
    pub fn push_boxed(&mut self, layer: Box<dyn Layer>) -> &mut Self {
        self.layers.push(layer);
        self.ran.clear();
        self
    }

    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The output shape for an input shape, or the first layer's shape error.
    pub fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.layers
            .iter()
            .try_fold(input.to_vec(), |shape, layer| layer.output_shape(&shape))
    }

    /// Runs every layer; `Mode::Train` caches what `backward` needs. A layer that can
    /// apply the element-wise layers after it in its own pass (batch norm then ReLU) does.
    /// A training forward first frees the buffers that inference left in [`recycle`]:
    /// kept through the step (a trainer's validation pass before it, say), they would
    /// add to its peak memory (the ResNet-14's step after the reference CNN's inference
    /// in one process: 560 MB against 537 MB).
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode == Mode::Train {
            recycle::clear();
        }
        self.ran.clear();
        let mut y: Option<Tensor> = None;
        let mut next = 0;
        while next < self.layers.len() {
            let chain = epilogue::chain(&self.layers[next + 1..]);
            // The caller's input is borrowed; every later input is the previous layer's
            // output, handed over.
            let layer = &mut self.layers[next];
            let (out, used) = match y.take() {
                Some(owned) => layer.forward_then_owned(owned, mode, &chain)?,
                None => layer.forward_then(x, mode, &chain)?,
            };
            self.ran.push(next);
            (y, next) = (Some(out), next + 1 + used);
        }
        Ok(y.unwrap_or_else(|| x.clone()))
    }

    /// Eval-mode forward through `&self` (many threads may share one model). A layer
    /// that can apply the element-wise layers after it in its own pass over memory
    /// (`Layer::infer_then`, a convolution followed by batch norm, ReLU, pooling) does,
    /// and those layers are skipped. Called from outside rayon's pool (a server or bench
    /// thread), the whole pass runs on one of the pool's threads, so the layers' parallel
    /// loops are split among the pool's threads without waking the caller after each.
    pub fn infer(&self, x: &Tensor) -> Result<Tensor> {
        if rayon::current_thread_index().is_none() {
            return rayon::scope(|_| self.infer(x));
        }
        let Some(first) = self.layers.first() else {
            return Ok(x.clone());
        };
        let (mut y, used) = first.infer_then(x, &epilogue::chain(&self.layers[1..]))?;
        let mut next = 1 + used;
        while let Some(layer) = self.layers.get(next) {
            let (out, used) = layer.infer_then(&y, &epilogue::chain(&self.layers[next + 1..]))?;
            recycle::give_tensor(std::mem::replace(&mut y, out));
            next += 1 + used;
        }
        Ok(y)
    }

    /// Back-propagates dE/dy through every layer in reverse; adds into the parameter
    /// gradients and returns dE/dx.
    pub fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        // Before any forward every layer is asked (and reports its missing cache).
        let ran: Vec<usize> = if self.ran.is_empty() {
            (0..self.layers.len()).collect()
        } else {
            self.ran.clone()
        };
        let mut d: Option<Tensor> = None;
        for &i in ran.iter().rev() {
            let grad = d.as_ref().unwrap_or(dy);
            d = Some(self.layers[i].backward(grad)?);
        }
        Ok(d.unwrap_or_else(|| dy.clone()))
    }

    pub fn zero_grad(&mut self) {
        for p in self.params_mut() {
            p.zero_grad();
        }
    }

    /// Every parameter, layer by layer, each layer's in its own order (`weight`, `bias`).
    pub fn params(&self) -> Vec<&Param> {
        self.layers.iter().flat_map(|l| l.params()).collect()
    }

    /// The same parameters in the same order, for `Optimizer::step`.
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        self.layers
            .iter_mut()
            .flat_map(|l| l.params_mut())
            .collect()
    }

    /// Number of trainable scalars.
    pub fn num_parameters(&self) -> usize {
        self.params().iter().map(|p| p.value.len()).sum()
    }

    /// Parameters and buffers by name, in layer order (each layer's parameters before
    /// its buffers).
    pub fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        let mut named = Vec::new();
        for (index, layer) in self.layers.iter().enumerate() {
            let kind = layer.kind();
            for (name, t) in layer.named_tensors() {
                named.push((format!("{index}.{kind}.{name}"), t));
            }
        }
        named
    }

    /// Calls `f` with every name of `named_tensors` and that tensor, mutably.
    pub fn visit_tensors_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        for (index, layer) in self.layers.iter_mut().enumerate() {
            let kind = layer.kind();
            layer.visit_tensors_mut(&mut |name, t| f(&format!("{index}.{kind}.{name}"), t));
        }
    }

    /// The tensors as a tensor file (`nn::tensor_file`) with `metadata` in its header.
    pub fn to_safetensors(&self, metadata: &HashMap<String, String>) -> Result<Vec<u8>> {
        tensor_file::encode(self.named_tensors(), metadata)
    }

    /// Writes `to_safetensors` to `path` atomically, so a crash never leaves half a model
    /// behind.
    pub fn save(&self, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
        let bytes = self.to_safetensors(metadata)?;
        tensor_file::write_atomically(path, &bytes)
            .map_err(|e| NnError::TensorFile(format!("{}: {e}", path.display())))
    }

    /// Replaces every tensor of this model with the one of the same name in `bytes`
    /// and returns the file's metadata. Every tensor must be present with this model's
    /// shape; nothing is changed unless all are.
    pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<HashMap<String, String>> {
        let file = tensor_file::decode(bytes)?;
        self.assign_tensors(&file.tensors)?;
        Ok(file.metadata)
    }

    /// Sets every parameter and buffer from the tensor of the same name in `tensors`
    /// (names as in [`Sequential::named_tensors`]; others are ignored). Every tensor must
    /// be present with this model's shape; nothing is changed unless all are.
    pub fn assign_tensors(&mut self, tensors: &Tensors) -> Result<()> {
        self.check_tensors(tensors)?;
        self.visit_tensors_mut(&mut |name, t| {
            if let Some(src) = tensors.get(name) {
                t.assign(src);
            }
        });
        Ok(())
    }

    /// [`Self::assign_tensors`], moving each of the network's tensors out of `tensors`
    /// instead of copying it (tensors of other names stay): no second copy of the
    /// weights when they come from a file read for this network alone.
    pub fn take_tensors(&mut self, tensors: &mut Tensors) -> Result<()> {
        self.check_tensors(tensors)?;
        self.visit_tensors_mut(&mut |name, t| {
            if let Some(src) = tensors.remove(name) {
                *t = src;
            }
        });
        Ok(())
    }

    /// Every tensor of the network is in `tensors`, shaped as the network's.
    fn check_tensors(&self, tensors: &Tensors) -> Result<()> {
        for (name, current) in self.named_tensors() {
            let t = tensors
                .get(&name)
                .ok_or_else(|| NnError::TensorFile(format!("missing tensor {name}")))?;
            if t.shape() != current.shape() {
                return Err(NnError::TensorFile(format!(
                    "tensor {name}: the model expects shape {:?}, the file has {:?}",
                    current.shape(),
                    t.shape()
                )));
            }
        }
        Ok(())
    }

    /// A copy of every parameter and buffer, by its name.
    pub fn snapshot(&self) -> Tensors {
        self.named_tensors()
            .into_iter()
            .map(|(name, t)| (name, t.clone()))
            .collect()
    }

    /// The seeds of the layers that draw random numbers (dropout), in layer order.
    pub fn seeds(&self) -> Vec<u64> {
        self.layers.iter().filter_map(|l| l.seed()).collect()
    }

    /// Restarts the generators of the layers that draw random numbers, in layer order,
    /// from `seeds` (one per such layer, as [`Sequential::seeds`] lists them); the
    /// weights and every other state stay as they are.
    pub fn reseed_each(&mut self, seeds: &[u64]) -> Result<()> {
        let seeded = self.layers.iter().filter(|l| l.seed().is_some()).count();
        if seeded != seeds.len() {
            return Err(NnError::Invalid(format!(
                "{} seeds for {seeded} layers that draw random numbers",
                seeds.len()
            )));
        }
        let layers = self.layers.iter_mut().filter(|l| l.seed().is_some());
        for (layer, &seed) in layers.zip(seeds) {
            layer.reseed(seed);
        }
        Ok(())
    }

    /// Reads a file written by `save`; see `load_safetensors`.
    pub fn load(&mut self, path: &Path) -> Result<HashMap<String, String>> {
        let bytes = std::fs::read(path)
            .map_err(|e| NnError::TensorFile(format!("{}: {e}", path.display())))?;
        self.load_safetensors(&bytes)
    }
}

/// A `Sequential` is itself a layer, so networks nest and the gradient check applies
/// to whole networks.
impl Layer for Sequential {
    fn kind(&self) -> &'static str {
        "sequential"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Sequential::output_shape(self, input)
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        Sequential::forward(self, x, mode)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        Sequential::infer(self, x)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        Sequential::backward(self, dy)
    }

    fn params(&self) -> Vec<&Param> {
        Sequential::params(self)
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        Sequential::params_mut(self)
    }

    fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        Sequential::named_tensors(self)
    }

    fn visit_tensors_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        Sequential::visit_tensors_mut(self, f)
    }
}
