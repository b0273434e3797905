//! What a run records: one [`EpochRecord`] per epoch, written as JSON lines to
//! `log.jsonl` and drawn into `curves.png`, and the [`RunState`] kept in checkpoints.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::checkpoint::write_atomically;
use super::config::TrainConfig;
use super::error::{Result, TrainError};
use crate::data::Preprocessing;
use crate::eval::plot::Series;

/// Open-set metrics on the validation identities after one epoch (see
/// `train::validate` for the protocol). Similarities are cosines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ValMetrics {
    /// Closed-set rank-1 identification rate of the known probes.
    pub rank1: f32,
    /// Detection-and-identification rate at a false-alarm rate of 1% / 10%.
    pub dir_far_1pct: f32,
    pub dir_far_10pct: f32,
    /// Verification: true-accept rate at a false-accept rate of 0.1% / 1%.
    pub tar_far_0_1pct: f32,
    pub tar_far_1pct: f32,
    /// Equal error rate of the verification pairs.
    pub eer: f32,
    /// Mean similarity of same-identity and of different-identity pairs.
    pub mean_genuine: f32,
    pub mean_impostor: f32,
    /// Separation d′ of the genuine and impostor pair scores: the difference of their
    /// means over the root mean of their variances. Unlike the rates above it does not
    /// saturate on a small validation set, so it ranks epochs the rates call equal.
    #[serde(default)]
    pub separation: f32,
}

impl ValMetrics {
    /// The model-selection key: DIR@FAR 1% first (the server's operating point: the
    /// right person found *and* strangers rejected), then the separation d′, which keeps
    /// growing after a few validation identities have saturated every rate.
    pub fn selection_key(&self) -> (f32, f32) {
        (self.dir_far_1pct, self.separation)
    }

    /// Whether `self` is at least as good as `other` by [`Self::selection_key`]: a later
    /// epoch that ties the best one replaces it (a network trained longer on the same
    /// validation result is the better bet; keeping the earliest tie once saved a
    /// barely trained network).
    pub fn at_least_as_good_as(&self, other: &ValMetrics) -> bool {
        let (a, b) = (self.selection_key(), other.selection_key());
        a.0 > b.0 || (a.0 == b.0 && a.1 >= b.1)
    }
}

/// One line of `log.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Learning rate used during the epoch.
    pub lr: f32,
    /// Mean training loss over the epoch's batches.
    pub loss: f32,
    /// Mean fraction of active triplets / pairs (metric losses), or of misclassified
    /// training samples (softmax).
    pub active: f32,
    /// Mean global gradient norm before clipping.
    pub grad_norm: f32,
    pub batches: usize,
    pub val: ValMetrics,
    /// Whether this epoch's network became the best so far.
    pub best: bool,
    /// Wall-clock seconds of the epoch (informational; not part of determinism).
    pub seconds: f64,
}

/// The run's state between epochs, stored in every checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunState {
    /// The configuration the run started with (a resumed run must keep it).
    pub config: TrainConfig,
    /// Completed epochs.
    pub epochs_done: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    pub history: Vec<EpochRecord>,
    /// Epoch (1-based) of the best network, if any.
    pub best_epoch: Option<usize>,
    /// The preprocessing fitted on the training identities.
    pub preprocessing: Preprocessing,
    /// Identity names of the two sides of the split.
    pub train_identities: Vec<String>,
    pub val_identities: Vec<String>,
}

/// Rewrites `log.jsonl` in `dir` from the whole history (so a resumed run's log never
/// holds epochs that the checkpoint forgot).
pub fn write_log(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let mut text = String::new();
    for record in history {
        let line =
            serde_json::to_string(record).map_err(|e| TrainError::io(dir.join("log.jsonl"), e))?;
        text.push_str(&line);
        text.push('\n');
    }
    write_atomically(&dir.join("log.jsonl"), text.as_bytes())
}

/// Draws the training loss and the validation curves (rank-1, DIR@FAR 1%, TAR@FAR 1%)
/// against the epoch into `curves.png` in `dir`.
pub fn write_plot(dir: &Path, history: &[EpochRecord]) -> Result<()> {
    let series = |name: &str, f: fn(&EpochRecord) -> f32| {
        let points = history
            .iter()
            .map(|r| (r.epoch as f64, f64::from(f(r))))
            .collect();
        Series::new(name, points)
    };
    let path = dir.join("curves.png");
    crate::eval::plot::lines(
        &path,
        "training loss and validation metrics per epoch",
        &[
            series("train loss", |r| r.loss),
            series("val rank-1", |r| r.val.rank1),
            series("val DIR@FAR 1%", |r| r.val.dir_far_1pct),
            series("val TAR@FAR 1%", |r| r.val.tar_far_1pct),
        ],
    )
    .map_err(TrainError::from)
}

#[cfg(test)]
mod tests {
    use super::ValMetrics;

    fn metrics(dir_far_1pct: f32, separation: f32) -> ValMetrics {
        ValMetrics {
            rank1: 1.0,
            dir_far_1pct,
            dir_far_10pct: 1.0,
            tar_far_0_1pct: 1.0,
            tar_far_1pct: 1.0,
            eer: 0.0,
            mean_genuine: 0.9,
            mean_impostor: 0.1,
            separation,
        }
    }

    #[test]
    fn selection_ranks_by_dir_then_separation_and_ties_go_to_the_later_epoch() {
        let saturated = metrics(1.0, 3.0);
        assert!(
            metrics(1.0, 3.5).at_least_as_good_as(&saturated),
            "wider separation"
        );
        assert!(
            metrics(1.0, 3.0).at_least_as_good_as(&saturated),
            "an exact tie"
        );
        assert!(!metrics(1.0, 2.5).at_least_as_good_as(&saturated));
        assert!(
            !metrics(0.9, 9.0).at_least_as_good_as(&saturated),
            "DIR comes first"
        );
        assert!(saturated.at_least_as_good_as(&metrics(0.9, 9.0)));
    }
}
