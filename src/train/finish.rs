//! The end of a run: the best network, thresholds calibrated on the validation
//! identities, and the model file.

use serde::Serialize;

use super::checkpoint::restore;
use super::error::{Result, TrainError};
use super::record::{EpochRecord, ValMetrics};
use super::run::Run;
use super::validate::{VAL_ENROLL, VAL_ROUNDS, embed_all};
use crate::eval::open_set_protocol;
use crate::model::lbp::LbpBranch;
use crate::model::{FORMAT_VERSION, ModelFile, ModelMeta, Thresholds};

/// False-accept rates at which thresholds are calibrated.
///
/// The thresholds are *open-set* ones, the decision the server's `identify` makes: the
/// validation identities go through the same protocol as every epoch's validation (half
/// known with enrolled images, half unknown, several seeded rounds), and `far_1pct` is
/// the lowest threshold at which at most 1% of the unknown probes have a best gallery
/// score at or above it. A larger gallery offers each stranger more identities to
/// resemble, so it needs a higher threshold for the same rate: calibrate on your own
/// gallery with `eval-embed` (its report's `open_set_thresholds`) when that matters.
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
    /// Unknown probes (over all rounds) the thresholds were calibrated on.
    pub calibration_probes: usize,
    pub seconds: f64,
    pub config: serde_json::Value,
}

/// Writes the best network with calibrated thresholds to `run.cfg.output`.
pub fn write_model(run: &mut Run) -> Result<(TrainSummary, Thresholds)> {
    // `restore` assigns every weight below.
    let mut net = crate::nn::init::undrawn(|| run.arch.build(0))?;
    let tensors = if run.best.is_empty() {
        run.net.snapshot()
    } else {
        run.best.clone()
    };
    restore(&mut net, &tensors, "best network")?;
    let mut embeddings = embed_all(&net, &run.data.val_inputs, run.cfg.flip_average)?;
    let dim = embeddings.ncols();
    // The descriptor branch, fitted on the training faces; the thresholds below are
    // then calibrated on the fused embeddings the server will compare.
    let lbp = match (&run.cfg.lbp, &run.data.lbp) {
        (Some(cfg), Some((descriptors, val_faces))) => {
            let branch = LbpBranch::fit(
                cfg.spec(),
                descriptors.view(),
                &run.data.train_labels,
                cfg.pca,
                cfg.max_pca_samples,
            )
            .map_err(|e| TrainError::Config(e.to_string()))?;
            let described = branch.embed(val_faces);
            let (a, b) = (branch.spec.weight.sqrt(), (1.0 - branch.spec.weight).sqrt());
            embeddings = ndarray::concatenate(
                ndarray::Axis(1),
                &[(&embeddings * a).view(), (&described * b).view()],
            )
            .map_err(|e| TrainError::Config(format!("fused embeddings: {e}")))?;
            Some(branch)
        }
        _ => None,
    };
    let mut protocol =
        crate::eval::ProtocolConfig::rounds(run.val_set().seed, VAL_ROUNDS, VAL_ENROLL);
    protocol.calibration_fars = CALIBRATION_FARS.to_vec();
    let report = open_set_protocol(embeddings.view(), &run.data.val_labels, &protocol)?;
    let calibrated = report.open_set_thresholds;
    let unknown_probes = calibrated.first().map_or(0, |t| t.impostors);
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
        impostor_pairs: impostor_pairs(&run.data.val_labels),
        calibration_probes: unknown_probes,
        seconds: run.state.history.iter().map(|r| r.seconds).sum(),
        config: serde_json::to_value(&run.cfg).unwrap_or_default(),
    };
    let mut loss = serde_json::to_value(&run.cfg.loss).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut loss {
        m.entry("kind")
            .or_insert_with(|| run.cfg.loss.name().into());
    }
    let meta = ModelMeta {
        format: FORMAT_VERSION,
        architecture: run.arch.clone(),
        preprocessing: run.data.preprocessing.clone(),
        embedding_dim: dim,
        loss,
        training: serde_json::to_value(&summary).unwrap_or_default(),
        thresholds,
        tail: None,
        flip_average: run.cfg.flip_average,
        detector: run.cfg.detect.then(|| run.cfg.detector.clone()),
        frame: crate::detect::Frame::default(),
        lbp: None,
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
    let model = ModelFile::new(meta, net);
    let model = match lbp {
        Some(branch) => model.with_lbp(branch),
        None => model,
    };
    model.save(&run.cfg.output)?;
    Ok((summary, thresholds))
}

/// Pairs of validation images of different identities: `(N² − Σ nᵢ²) / 2` for identity
/// sizes `nᵢ`, counted without scoring the pairs.
fn impostor_pairs(labels: &[usize]) -> usize {
    let mut sizes = std::collections::BTreeMap::<usize, usize>::new();
    for &label in labels {
        *sizes.entry(label).or_default() += 1;
    }
    let n = labels.len();
    (n * n - sizes.values().map(|k| k * k).sum::<usize>()) / 2
}

#[cfg(test)]
mod tests {
    #[test]
    fn impostor_pairs_are_the_cross_identity_pairs() {
        assert_eq!(super::impostor_pairs(&[]), 0);
        assert_eq!(super::impostor_pairs(&[3, 3, 3]), 0);
        // identities of 2, 1 and 3 images: 2·1 + 2·3 + 1·3 = 11
        assert_eq!(super::impostor_pairs(&[0, 0, 1, 2, 2, 2]), 11);
    }
}
