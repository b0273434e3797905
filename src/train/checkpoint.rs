//! Checkpoints: one safetensors file holding everything needed to continue a run
//! exactly — the network, the classifier head, the best network so far, the optimiser
//! state — plus a JSON [`RunState`] under the header key [`CHECKPOINT_KEY`].
//!
//! Tensor names are prefixed by group: `net/…` and `best/…` (the network's own names,
//! `"{index}.{kind}.{name}"`), `head/…`, `opt/…` (the optimiser's state names).
//! The file is written to a temporary name, synced and renamed over the previous one, so
//! a crash leaves either the old or the new checkpoint, never half of one.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use super::error::{Result, TrainError};
use crate::nn::Tensor;
use crate::nn::sequential::Sequential;

/// The metadata key of the run state in a checkpoint's header.
pub const CHECKPOINT_KEY: &str = "faceprint-checkpoint";

/// Named tensors of one group, in a stable order.
pub type Tensors = BTreeMap<String, Tensor>;

/// A whole checkpoint in memory.
#[derive(Debug, Clone)]
pub struct Checkpoint<S> {
    /// The run's JSON-serialisable state (epoch, history, configuration, …).
    pub state: S,
    /// Tensor groups by prefix: `net`, `best`, `head`, `opt`.
    pub groups: BTreeMap<String, Tensors>,
}

impl<S: Serialize + for<'de> Deserialize<'de>> Checkpoint<S> {
    /// Writes the checkpoint atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string(&self.state)
            .map_err(|e| TrainError::io(path, format!("run state does not serialise: {e}")))?;
        let metadata = HashMap::from([(CHECKPOINT_KEY.to_string(), json)]);
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .groups
            .iter()
            .flat_map(|(group, tensors)| {
                tensors.iter().map(move |(name, t)| {
                    let bytes = t.iter().flat_map(|v| v.to_le_bytes()).collect();
                    (format!("{group}/{name}"), t.shape().to_vec(), bytes)
                })
            })
            .collect();
        let views = raw
            .iter()
            .map(|(name, shape, bytes)| {
                TensorView::new(Dtype::F32, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| TrainError::io(path, format!("tensor {name}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| TrainError::io(path, e))?;
        write_atomically(path, &bytes)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        let corrupt = |m: String| TrainError::io(path, format!("not a valid checkpoint: {m}"));
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let json = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(CHECKPOINT_KEY))
            .ok_or_else(|| corrupt(format!("no `{CHECKPOINT_KEY}` entry in its header")))?;
        let state: S = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let mut groups: BTreeMap<String, Tensors> = BTreeMap::new();
        for (full, view) in file.tensors() {
            let (group, name) = full
                .split_once('/')
                .ok_or_else(|| corrupt(format!("tensor {full} has no group prefix")))?;
            if view.dtype() != Dtype::F32 {
                return Err(corrupt(format!(
                    "tensor {full} is {:?}, not F32",
                    view.dtype()
                )));
            }
            let values: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let t = Tensor::from_shape_vec(view.shape().to_vec(), values)
                .map_err(|e| corrupt(format!("tensor {full}: {e}")))?;
            groups
                .entry(group.to_string())
                .or_default()
                .insert(name.to_string(), t);
        }
        Ok(Checkpoint { state, groups })
    }
}

/// Writes `bytes` to `path` through `path.partial`, synced before the rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".partial");
    let tmp = std::path::PathBuf::from(tmp_name);
    let io = |e: std::io::Error| TrainError::io(path, e);
    let mut file = std::fs::File::create(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io)
}

/// A copy of every parameter and buffer of `net`, by its tensor name.
pub fn snapshot(net: &Sequential) -> Tensors {
    net.named_tensors()
        .into_iter()
        .map(|(name, t)| (name, t.clone()))
        .collect()
}

/// Sets every parameter and buffer of `net` from `tensors` (names as in [`snapshot`]).
/// Every tensor must be present with the network's shape; nothing changes otherwise.
pub fn restore(net: &mut Sequential, tensors: &Tensors, what: &str) -> Result<()> {
    for (name, current) in net.named_tensors() {
        match tensors.get(&name) {
            None => {
                return Err(TrainError::Config(format!(
                    "{what}: tensor {name} is missing"
                )));
            }
            Some(t) if t.shape() != current.shape() => {
                return Err(TrainError::Config(format!(
                    "{what}: tensor {name} has shape {:?}, the network expects {:?}",
                    t.shape(),
                    current.shape()
                )));
            }
            Some(_) => {}
        }
    }
    net.visit_tensors_mut(&mut |name, t| {
        if let Some(src) = tensors.get(name) {
            t.assign(src);
        }
    });
    Ok(())
}
