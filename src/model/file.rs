//! The model file: one `.safetensors` file holding the embedding network's tensors, with
//! [`ModelMeta`] as JSON under the header key [`METADATA_KEY`].

use std::collections::HashMap;
use std::path::Path;

use ndarray::{Array1, Array2};
use sha2::{Digest, Sha256};

use super::ModelError;
use super::lbp::LbpBranch;
use super::meta::{FORMAT_VERSION, METADATA_KEY, ModelMeta, OLDEST_FORMAT_VERSION};
use crate::nn::Tensor;
use crate::nn::sequential::Sequential;
use crate::nn::tensor_file::{self, Tensors};

/// A network together with its metadata, and the descriptor branch fused with it when
/// the model has one (`meta.lbp`).
#[derive(Debug)]
pub struct ModelFile {
    pub meta: ModelMeta,
    pub net: Sequential,
    pub lbp: Option<LbpBranch>,
}

const LBP_MEAN: &str = "lbp.mean";
const LBP_PROJ: &str = "lbp.proj";

/// The descriptor branch's tensors under their file names.
fn lbp_tensors(lbp: &LbpBranch) -> [(&'static str, Tensor); 2] {
    [
        (LBP_MEAN, lbp.mean.clone().into_dyn()),
        (LBP_PROJ, lbp.proj.clone().into_dyn()),
    ]
}

/// The model version of a network: the first 16 hex digits of the SHA-256 over every
/// tensor's name, shape and little-endian bytes, in name order.
pub fn weights_version(net: &Sequential) -> String {
    version_of(net, false)
}

/// [`weights_version`], for a model that embeds with `flip_average`: that setting
/// changes every embedding, so it is part of the version (appended to the hash input
/// only when on, so versions of files without it are unchanged).
pub fn model_version(net: &Sequential, flip_average: bool) -> String {
    version_of(net, flip_average)
}

fn version_of(net: &Sequential, flip_average: bool) -> String {
    version_with(net, flip_average, None)
}

/// The version of a whole model: the network's hash input, then (only when there is
/// one) the descriptor branch's settings and tensors.
fn version_with(net: &Sequential, flip_average: bool, lbp: Option<&LbpBranch>) -> String {
    let mut named = net.named_tensors();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hash = Sha256::new();
    for (name, t) in named {
        hash.update(name.as_bytes());
        for d in t.shape() {
            hash.update((*d as u64).to_le_bytes());
        }
        hash_values(&mut hash, t.iter());
    }
    if flip_average {
        hash.update(b"flip_average");
    }
    if let Some(lbp) = lbp {
        hash.update(serde_json::to_vec(&lbp.spec).unwrap_or_default());
        for (name, t) in lbp_tensors(lbp) {
            hash.update(name.as_bytes());
            for d in t.shape() {
                hash.update((*d as u64).to_le_bytes());
            }
            hash_values(&mut hash, t.iter());
        }
    }
    hex::encode(&hash.finalize()[..8])
}

/// `values` into `hash` as little-endian bytes, the same bytes as one `update` per
/// value, a few thousand values an update (one a value spent nearly as long on the calls
/// as on SHA-256 itself; BENCHMARKS.md "Bulk import").
fn hash_values<'a>(hash: &mut Sha256, values: impl Iterator<Item = &'a f32>) {
    const VALUES: usize = 4096;
    let mut bytes = [0u8; VALUES * size_of::<f32>()];
    let mut values = values.peekable();
    while values.peek().is_some() {
        let mut len = 0;
        for (to, v) in bytes
            .chunks_exact_mut(size_of::<f32>())
            .zip(values.by_ref().take(VALUES))
        {
            to.copy_from_slice(&v.to_le_bytes());
            len += to.len();
        }
        hash.update(&bytes[..len]);
    }
}

impl ModelFile {
    /// Pairs a trained network with its metadata; `meta.version` is recomputed from the
    /// weights, whatever it held.
    pub fn new(mut meta: ModelMeta, net: Sequential) -> Self {
        meta.lbp = None;
        meta.format = meta.needed_format();
        meta.version = model_version(&net, meta.flip_average);
        ModelFile {
            meta,
            net,
            lbp: None,
        }
    }

    /// The same model with a descriptor branch fused in (replacing any it had); the
    /// version is recomputed.
    pub fn with_lbp(mut self, lbp: LbpBranch) -> Self {
        self.meta.lbp = Some(lbp.spec.clone());
        self.meta.format = self.meta.needed_format();
        self.meta.version = version_with(&self.net, self.meta.flip_average, Some(&lbp));
        self.lbp = Some(lbp);
        self
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        // A part set after construction (a calibrated tail) raises the version needed.
        let mut meta = self.meta.clone();
        meta.format = meta.format.max(meta.needed_format());
        let json = serde_json::to_string(&meta)
            .map_err(|e| ModelError::Corrupt(format!("metadata does not serialise: {e}")))?;
        let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
        let extra = self.lbp.as_ref().map(lbp_tensors);
        let named = self.net.named_tensors().into_iter().chain(
            extra
                .iter()
                .flatten()
                .map(|(name, t)| ((*name).to_string(), t)),
        );
        Ok(tensor_file::encode(named, &metadata)?)
    }

    /// Writes the file through a temporary file and a rename, so a crash never leaves
    /// half a model where a model was.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let file_err = |e: std::io::Error| ModelError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let bytes = self.to_bytes()?;
        tensor_file::write_atomically(path, &bytes).map_err(file_err)
    }

    /// Reads a model file: metadata first (so an unknown architecture is reported as
    /// such), then the network is rebuilt and every tensor loaded and shape-checked, and
    /// the weights must hash to the recorded version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let meta = meta_from(tensor_file::read_metadata(bytes))?;
        // Every weight is assigned below: drawing them first would be wasted.
        let mut net = crate::nn::init::undrawn(|| meta.architecture.build(0))?;
        let mut file =
            tensor_file::decode(bytes).map_err(|e| ModelError::Corrupt(e.to_string()))?;
        net.take_tensors(&mut file.tensors)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let lbp = match &meta.lbp {
            None => None,
            Some(spec) => Some(read_lbp(&file.tensors, spec)?),
        };
        let version = version_with(&net, meta.flip_average, lbp.as_ref());
        if version != meta.version {
            return Err(ModelError::Corrupt(format!(
                "the weights hash to version {version}, the metadata says {}",
                meta.version
            )));
        }
        let (h, w) = meta.preprocessing.output_shape();
        let out = net.output_shape(&[1, 1, h, w]).map_err(|e| {
            ModelError::Corrupt(format!(
                "the network does not accept its own {h}×{w} input: {e}"
            ))
        })?;
        if out != [1, meta.embedding_dim] {
            return Err(ModelError::Corrupt(format!(
                "the network outputs {out:?}, the metadata says embedding dimension {}",
                meta.embedding_dim
            )));
        }
        Ok(ModelFile { meta, net, lbp })
    }

    /// Reads and checks a model file; see [`ModelFile::from_bytes`].
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| in_file(path, e.to_string()))?;
        Self::from_bytes(&bytes).map_err(|e| in_file(path, e.to_string()))
    }

    /// The metadata of the model file at `path`, from its header alone: fails as
    /// [`ModelFile::load`] does on a file that cannot be read, is not a faceprint model,
    /// or is of an architecture or format version this build does not read, in
    /// milliseconds whatever the file's size. The tensors and the version's hash are
    /// checked by `load` only.
    pub fn read_meta(path: &Path) -> Result<ModelMeta, ModelError> {
        let header = tensor_file::read_header(path).map_err(|e| in_file(path, e.to_string()))?;
        meta_from(header).map_err(|e| in_file(path, e.to_string()))
    }
}

/// An error about the file at `path`, its path in the message.
fn in_file(path: &Path, message: String) -> ModelError {
    ModelError::File {
        path: path.display().to_string(),
        message,
    }
}

/// The model's metadata from a safetensors header's entries: the file must be a
/// faceprint model of a format version this build reads.
fn meta_from(header: crate::nn::Result<HashMap<String, String>>) -> Result<ModelMeta, ModelError> {
    let metadata =
        header.map_err(|e| ModelError::NotAModel(format!("not a safetensors file ({e})")))?;
    let json = metadata.get(METADATA_KEY).ok_or_else(|| {
        ModelError::NotAModel(format!("no `{METADATA_KEY}` metadata in the header"))
    })?;
    let meta: ModelMeta = serde_json::from_str(json)
        .map_err(|e| ModelError::Unsupported(format!("metadata: {e}")))?;
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&meta.format) {
        return Err(ModelError::Unsupported(format!(
            "format version {} (this build reads {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION})",
            meta.format
        )));
    }
    Ok(meta)
}

/// The descriptor branch's tensors of a file whose metadata names one, shape-checked.
fn read_lbp(tensors: &Tensors, spec: &super::lbp::LbpSpec) -> Result<LbpBranch, ModelError> {
    let raw = spec.raw_dim();
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>, ModelError> {
        let t = tensors
            .get(name)
            .ok_or_else(|| ModelError::Corrupt(format!("missing tensor {name}")))?;
        if t.shape() != shape {
            return Err(ModelError::Corrupt(format!(
                "tensor {name}: expected F32 {shape:?}, the file has {:?}",
                t.shape()
            )));
        }
        Ok(t.iter().copied().collect())
    };
    let mean = Array1::from(read(LBP_MEAN, &[raw])?);
    let proj = Array2::from_shape_vec((raw, spec.dim), read(LBP_PROJ, &[raw, spec.dim])?)
        .map_err(|e| ModelError::Corrupt(format!("tensor {LBP_PROJ}: {e}")))?;
    Ok(LbpBranch {
        spec: spec.clone(),
        mean,
        proj,
    })
}
