//! The model container: layers run in order, parameters handed to the optimisers,
//! tensors saved and loaded by name (safetensors).

use super::epilogue;
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
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
    pub fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.ran.clear();
        let mut y: Option<Tensor> = None;
        let mut next = 0;
        while next < self.layers.len() {
            let chain = epilogue::chain(&self.layers[next + 1..]);
            let input = y.as_ref().unwrap_or(x);
            let (out, used) = self.layers[next].forward_then(input, mode, &chain)?;
            self.ran.push(next);
            (y, next) = (Some(out), next + 1 + used);
        }
        Ok(y.unwrap_or_else(|| x.clone()))
    }

    /// Eval-mode forward through `&self` (many threads may share one model). A layer
    /// that can apply the element-wise layers after it in its own pass over memory
    /// (`Layer::infer_then`, a convolution followed by batch norm, ReLU, pooling) does,
    /// and those layers are skipped.
    pub fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let Some(first) = self.layers.first() else {
            return Ok(x.clone());
        };
        let (mut y, used) = first.infer_then(x, &epilogue::chain(&self.layers[1..]))?;
        let mut next = 1 + used;
        while let Some(layer) = self.layers.get(next) {
            let (out, used) = layer.infer_then(&y, &epilogue::chain(&self.layers[next + 1..]))?;
            (y, next) = (out, next + 1 + used);
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

    /// The tensors as a safetensors file (f32, little-endian) with `metadata` in its header.
    pub fn to_safetensors(&self, metadata: &HashMap<String, String>) -> Result<Vec<u8>> {
        self.to_safetensors_with(metadata, &[])
    }

    /// [`Sequential::to_safetensors`] with `extra` tensors beside the network's, each
    /// `(name, shape, values)` (a model's parts that are not layers).
    pub fn to_safetensors_with(
        &self,
        metadata: &HashMap<String, String>,
        extra: &[(&str, Vec<usize>, Vec<f32>)],
    ) -> Result<Vec<u8>> {
        let le = |values: &mut dyn Iterator<Item = f32>| -> Vec<u8> {
            values.flat_map(|v| v.to_le_bytes()).collect()
        };
        let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .named_tensors()
            .into_iter()
            .map(|(name, t)| (name, t.shape().to_vec(), le(&mut t.iter().copied())))
            .collect();
        for (name, shape, values) in extra {
            bytes.push((
                name.to_string(),
                shape.clone(),
                le(&mut values.iter().copied()),
            ));
        }
        let views = bytes
            .iter()
            .map(|(name, shape, raw)| {
                TensorView::new(Dtype::F32, shape.clone(), raw)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| NnError::TensorFile(format!("{name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        safetensors::serialize(views, Some(metadata.clone()))
            .map_err(|e| NnError::TensorFile(e.to_string()))
    }

    /// Writes `to_safetensors` to `path` (through a temporary file, so a crash never
    /// leaves half a model behind).
    pub fn save(&self, path: &Path, metadata: &HashMap<String, String>) -> Result<()> {
        let bytes = self.to_safetensors(metadata)?;
        let tmp = path.with_extension("safetensors.tmp");
        let io = |e: std::io::Error| NnError::TensorFile(format!("{}: {e}", path.display()));
        std::fs::write(&tmp, bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Replaces every tensor of this model with the one of the same name in `bytes`
    /// and returns the file's metadata. Every tensor must be present with this model's
    /// shape; nothing is changed unless all are.
    pub fn load_safetensors(&mut self, bytes: &[u8]) -> Result<HashMap<String, String>> {
        let err = |e: safetensors::SafeTensorError| NnError::TensorFile(e.to_string());
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(err)?;
        let file = SafeTensors::deserialize(bytes).map_err(err)?;
        let mut loaded = HashMap::new();
        for (name, current) in self.named_tensors() {
            let view = file
                .tensor(&name)
                .map_err(|_| NnError::TensorFile(format!("missing tensor {name}")))?;
            if view.shape() != current.shape() {
                return Err(NnError::TensorFile(format!(
                    "tensor {name}: the model expects shape {:?}, the file has {:?}",
                    current.shape(),
                    view.shape()
                )));
            }
            if view.dtype() != Dtype::F32 {
                return Err(NnError::TensorFile(format!(
                    "tensor {name}: expected dtype F32, the file has {:?}",
                    view.dtype()
                )));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            loaded.insert(name, super::tensor::from_vec(view.shape(), values)?);
        }
        self.visit_tensors_mut(&mut |name, t| {
            if let Some(v) = loaded.remove(name) {
                *t = v;
            }
        });
        Ok(header.metadata().clone().unwrap_or_default())
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
