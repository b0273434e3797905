//! The model file: one `.safetensors` file holding the embedding network's tensors, with
//! [`ModelMeta`] as JSON under the header key [`METADATA_KEY`].

use std::collections::HashMap;
use std::path::Path;

use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use super::ModelError;
use super::meta::{FORMAT_VERSION, METADATA_KEY, ModelMeta, OLDEST_FORMAT_VERSION};
use crate::nn::sequential::Sequential;

/// A network together with its metadata.
#[derive(Debug)]
pub struct ModelFile {
    pub meta: ModelMeta,
    pub net: Sequential,
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
    let mut named = net.named_tensors();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let mut hash = Sha256::new();
    for (name, t) in named {
        hash.update(name.as_bytes());
        for d in t.shape() {
            hash.update((*d as u64).to_le_bytes());
        }
        for v in t.iter() {
            hash.update(v.to_le_bytes());
        }
    }
    if flip_average {
        hash.update(b"flip_average");
    }
    hex::encode(&hash.finalize()[..8])
}

impl ModelFile {
    /// Pairs a trained network with its metadata; `meta.version` is recomputed from the
    /// weights, whatever it held.
    pub fn new(mut meta: ModelMeta, net: Sequential) -> Self {
        meta.format = FORMAT_VERSION;
        meta.version = model_version(&net, meta.flip_average);
        ModelFile { meta, net }
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let json = serde_json::to_string(&self.meta)
            .map_err(|e| ModelError::Corrupt(format!("metadata does not serialise: {e}")))?;
        let metadata = HashMap::from([(METADATA_KEY.to_string(), json)]);
        Ok(self.net.to_safetensors(&metadata)?)
    }

    /// Writes the file through a temporary file and a rename, so a crash never leaves
    /// half a model where a model was.
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let file_err = |e: std::io::Error| ModelError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let bytes = self.to_bytes()?;
        let tmp = path.with_extension("safetensors.partial");
        std::fs::write(&tmp, bytes).map_err(file_err)?;
        std::fs::rename(&tmp, path).map_err(file_err)
    }

    /// Reads a model file: metadata first (so an unknown architecture is reported as
    /// such), then the network is rebuilt and every tensor loaded and shape-checked, and
    /// the weights must hash to the recorded version.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ModelError> {
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| ModelError::NotAModel(format!("not a safetensors file ({e})")))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(METADATA_KEY))
            .ok_or_else(|| {
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
        let mut net = meta.architecture.build(0)?;
        net.load_safetensors(bytes)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        let version = model_version(&net, meta.flip_average);
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
        Ok(ModelFile { meta, net })
    }

    /// Reads and checks a model file; see [`ModelFile::from_bytes`].
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            ModelError::File { .. } => e,
            other => ModelError::File {
                path: path.display().to_string(),
                message: other.to_string(),
            },
        })
    }
}
