//! Checkpoints: one safetensors file holding everything needed to continue a run
//! exactly — the network, the classifier head, the best network so far, the optimiser
//! state — plus a JSON [`RunState`](super::record::RunState) under the header key
//! [`CHECKPOINT_KEY`].
//!
//! Tensor names are prefixed by group: `net/…` and `best/…` (the network's own names,
//! `"{index}.{kind}.{name}"`), `head/…`, `opt/…` (the optimiser's state names).
//! The file is written to a temporary name, synced and renamed over the previous one, so
//! a crash leaves either the old or the new checkpoint, never half of one.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{Result, TrainError};
use crate::nn::sequential::Sequential;
use crate::nn::tensor_file;
pub use crate::nn::tensor_file::Tensors;

/// The metadata key of the run state in a checkpoint's header.
pub const CHECKPOINT_KEY: &str = "faceprint-checkpoint";

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
        let named = self.groups.iter().flat_map(|(group, tensors)| {
            tensors
                .iter()
                .map(move |(name, t)| (format!("{group}/{name}"), t))
        });
        let bytes = tensor_file::encode(named, &metadata).map_err(|e| TrainError::io(path, e))?;
        write_atomically(path, &bytes)
    }

    /// Reads a checkpoint written by [`Checkpoint::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        let corrupt = |m: String| TrainError::io(path, format!("not a valid checkpoint: {m}"));
        let file = tensor_file::decode(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let json = file
            .metadata
            .get(CHECKPOINT_KEY)
            .ok_or_else(|| corrupt(format!("no `{CHECKPOINT_KEY}` entry in its header")))?;
        let state: S = serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
        let mut groups: BTreeMap<String, Tensors> = BTreeMap::new();
        for (full, t) in file.tensors {
            let (group, name) = full
                .split_once('/')
                .ok_or_else(|| corrupt(format!("tensor {full} has no group prefix")))?;
            groups
                .entry(group.to_string())
                .or_default()
                .insert(name.to_string(), t);
        }
        Ok(Checkpoint { state, groups })
    }
}

/// Writes `bytes` to `path` atomically (`nn::tensor_file::write_atomically`).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    tensor_file::write_atomically(path, bytes).map_err(|e| TrainError::io(path, e))
}

/// Sets every parameter and buffer of `net` from `tensors` (names as in
/// `Sequential::snapshot`).
/// Every tensor must be present with the network's shape; nothing changes otherwise.
pub fn restore(net: &mut Sequential, tensors: &Tensors, what: &str) -> Result<()> {
    net.assign_tensors(tensors)
        .map_err(|e| TrainError::Config(format!("{what}: {e}")))
}
