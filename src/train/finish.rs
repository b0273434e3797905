//! The end of a run: the best network, thresholds calibrated on the validation
//! identities, and the model file.

use serde::Serialize;

use super::checkpoint::restore;
use super::cli::loss_name;
use super::error::{Result, TrainError};
use super::record::{EpochRecord, ValMetrics};
use super::run::Run;
use super::validate::{embed_all, pair_scores};
use crate::model::{FORMAT_VERSION, ModelFile, ModelMeta, Thresholds};

/// False-accept rates at which thresholds are calibrated.
/// Thresholds are calibrated on every impostor pair (different identities) among the
/// validation images: a pair scoring at or above `far_1pct` is accepted for at most 1%
/// of such pairs.
pub const CALIBRATION_FARS: [f64; 3] = [0.001, 0.01, 0.1];

/// The training summary stored in the model file (and printed at the end).
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub data: String,
    pub train_identities: usize,
    pub train_images: usize,
    pub val_identities: usize,
    pub val_images: usize,
    pub epochs: usize,
    pub steps: usize,
    pub seed: u64,
    pub best_epoch: Option<usize>,
    /// Validation metrics of the saved (best) network.
    pub best_val: Option<ValMetrics>,
    pub impostor_pairs: usize,
    pub seconds: f64,
    pub config: serde_json::Value,
}

/// Writes the best network with calibrated thresholds to `run.cfg.output`.
pub fn write_model(run: &mut Run) -> Result<(TrainSummary, Thresholds)> {
    let mut net = run.arch.build(0)?;
    let tensors = if run.best.is_empty() {
        super::checkpoint::snapshot(&run.net)
    } else {
        run.best.clone()
    };
    restore(&mut net, &tensors, "best network")?;
    let embeddings = embed_all(&net, &run.data.val_inputs)?;
    let (_, impostor) = pair_scores(&embeddings, &run.data.val_labels);
    let calibrated = crate::eval::calibrate(&impostor, &CALIBRATION_FARS)?;
    let at = |i: usize| calibrated.get(i).map_or(f32::NAN, |t| t.threshold);
    let thresholds = Thresholds {
        far_0_1pct: at(0),
        far_1pct: at(1),
        far_10pct: at(2),
    };
    let best: Option<&EpochRecord> = run
        .state
        .best_epoch
        .and_then(|e| run.state.history.get(e - 1));
    let summary = TrainSummary {
        data: run.cfg.data.display().to_string(),
        train_identities: run.data.train_identities.len(),
        train_images: run.data.train_images.len(),
        val_identities: run.data.val_identities.len(),
        val_images: run.data.val_labels.len(),
        epochs: run.state.epochs_done,
        steps: run.state.steps,
        seed: run.cfg.seed,
        best_epoch: run.state.best_epoch,
        best_val: best.map(|r| r.val),
        impostor_pairs: impostor.len(),
        seconds: run.state.history.iter().map(|r| r.seconds).sum(),
        config: serde_json::to_value(&run.cfg).unwrap_or_default(),
    };
    let dim = embeddings.ncols();
    let mut loss = serde_json::to_value(&run.cfg.loss).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut loss {
        m.entry("kind")
            .or_insert_with(|| loss_name(&run.cfg.loss).into());
    }
    let meta = ModelMeta {
        format: FORMAT_VERSION,
        architecture: run.arch.clone(),
        preprocessing: run.data.preprocessing.clone(),
        embedding_dim: dim,
        loss,
        training: serde_json::to_value(&summary).unwrap_or_default(),
        thresholds,
        version: String::new(),
    };
    if let Some(dir) = run
        .cfg
        .output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
    }
    ModelFile::new(meta, net).save(&run.cfg.output)?;
    Ok((summary, thresholds))
}
