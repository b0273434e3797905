//! The open-set protocol: how well embeddings tell apart people never seen in training.
//!
//! Each round (seeded by `(seed, round)`): shuffle the identities; the first
//! `round(known_fraction · n)` (at least one, and at least one left over) are *known*,
//! the rest *unknown*. Each known identity enrolls `k` of its images, chosen at random
//! (at most all but one, so it keeps a probe); its other images are probes, as are all
//! images of unknown identities. The round's metrics are those of [`super::metrics`].
//! The summary gives the mean and the sample standard deviation (`n − 1`; 0 for one
//! round) over rounds; the ROC and the thresholds pool the scores of all rounds.
//!
//! Two kinds of threshold are calibrated at `calibration_fars`:
//! - `open_set_thresholds`, on the best score of each unknown probe against the whole
//!   gallery: the server's `identify` decision ("is this anyone we know?"); it depends on
//!   the gallery size;
//! - `pair_thresholds`, on the impostor pair scores: one-to-one verification.

use std::fmt;

use ndarray::{ArrayView2, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::calibrate::{Threshold, calibrate};
use super::error::{EvalError, Result};
use super::metrics::{AtFar, RocPoint, dir_at_far, eer, rank1, roc, tar_at_far};
use super::scores::IdentityScores;

/// Protocol settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolConfig {
    pub rounds: usize,
    /// Images enrolled per known identity (`k`).
    pub enroll: usize,
    pub known_fraction: f64,
    pub seed: u64,
    pub dir_fars: Vec<f64>,
    pub tar_fars: Vec<f64>,
    pub calibration_fars: Vec<f64>,
    pub roc_points: usize,
}

impl ProtocolConfig {
    /// The default settings with `rounds` seeded rounds of `enroll` images per known
    /// identity: the trainer's validation and `eval-embed` with its default flags.
    pub fn rounds(seed: u64, rounds: usize, enroll: usize) -> Self {
        ProtocolConfig {
            rounds,
            enroll,
            seed,
            ..ProtocolConfig::default()
        }
    }
}

impl Default for ProtocolConfig {
    /// 5 rounds, k = 5, half the identities known; DIR at FAR 1% and 10%, TAR at 0.1%
    /// and 1%, thresholds at 0.1%, 1% and 10%.
    fn default() -> Self {
        ProtocolConfig {
            rounds: 5,
            enroll: 5,
            known_fraction: 0.5,
            seed: 0,
            dir_fars: vec![0.01, 0.1],
            tar_fars: vec![0.001, 0.01],
            calibration_fars: vec![0.001, 0.01, 0.1],
            roc_points: 60,
        }
    }
}

/// One round's numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundMetrics {
    pub known_identities: usize,
    pub unknown_identities: usize,
    pub enrolled_images: usize,
    pub known_probes: usize,
    pub unknown_probes: usize,
    pub rank1: f64,
    pub dir_at_far: Vec<AtFar>,
    pub tar_at_far: Vec<AtFar>,
    pub eer: f64,
}

/// Mean and sample standard deviation over rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    pub mean: f64,
    pub std: f64,
}

/// A rate at one FAR, over rounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateAtFar {
    pub far: f64,
    pub mean: f64,
    pub std: f64,
}

/// Everything one protocol run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtocolReport {
    pub config: ProtocolConfig,
    pub rank1: MeanStd,
    pub dir_at_far: Vec<RateAtFar>,
    pub tar_at_far: Vec<RateAtFar>,
    pub eer: MeanStd,
    pub rounds: Vec<RoundMetrics>,
    pub open_set_thresholds: Vec<Threshold>,
    pub pair_thresholds: Vec<Threshold>,
    pub roc: Vec<RocPoint>,
}

/// Runs the protocol on embeddings `(N, K)` with identity `labels` (one per row).
pub fn open_set_protocol(
    embeddings: ArrayView2<f32>,
    labels: &[usize],
    config: &ProtocolConfig,
) -> Result<ProtocolReport> {
    if embeddings.nrows() != labels.len() {
        return Err(EvalError::mismatch(
            "labels",
            embeddings.nrows(),
            labels.len(),
        ));
    }
    if config.rounds == 0 || config.enroll == 0 {
        return Err(EvalError::Invalid(format!(
            "protocol needs rounds ≥ 1 and enroll ≥ 1, got {} and {}",
            config.rounds, config.enroll
        )));
    }
    let mut identities: Vec<usize> = labels.to_vec();
    identities.sort_unstable();
    identities.dedup();
    let n = identities.len();
    if n < 2 {
        return Err(EvalError::mismatch("identities", "at least 2", n));
    }
    let n_known = ((config.known_fraction * n as f64).round() as usize).clamp(1, n - 1);

    let mut rounds = Vec::with_capacity(config.rounds);
    let (mut genuine, mut impostor, mut unknown_best) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..config.rounds {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        rng.set_stream(round as u64);
        let mut order = identities.clone();
        order.shuffle(&mut rng);
        let known = &order[..n_known];
        let (mut gallery, mut probes) = (Vec::new(), Vec::new());
        for &id in &order {
            let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == id).collect();
            if known.contains(&id) {
                members.shuffle(&mut rng);
                let k = config.enroll.min(members.len().saturating_sub(1)).max(1);
                gallery.extend_from_slice(&members[..k]);
                probes.extend_from_slice(&members[k..]);
            } else {
                probes.extend(members);
            }
        }
        let gallery_labels: Vec<usize> = gallery.iter().map(|&i| labels[i]).collect();
        let probe_labels: Vec<usize> = probes.iter().map(|&i| labels[i]).collect();
        let scores = IdentityScores::compute(
            embeddings.select(Axis(0), &gallery).view(),
            &gallery_labels,
            embeddings.select(Axis(0), &probes).view(),
        )?;
        let (g, imp) = scores.pairs(&probe_labels);
        let known_probes = probe_labels
            .iter()
            .filter(|&&l| scores.is_enrolled(l))
            .count();
        rounds.push(RoundMetrics {
            known_identities: n_known,
            unknown_identities: n - n_known,
            enrolled_images: gallery.len(),
            known_probes,
            unknown_probes: probes.len() - known_probes,
            rank1: rank1(&scores, &probe_labels)?,
            dir_at_far: dir_at_far(&scores, &probe_labels, &config.dir_fars)?,
            tar_at_far: tar_at_far(&g, &imp, &config.tar_fars)?,
            eer: eer(&g, &imp)?,
        });
        for ((_, s), l) in scores.top1().into_iter().zip(&probe_labels) {
            if !scores.is_enrolled(*l) {
                unknown_best.push(s);
            }
        }
        genuine.extend(g);
        impostor.extend(imp);
    }
    let at_far = |pick: fn(&RoundMetrics) -> &Vec<AtFar>, fars: &[f64]| -> Vec<RateAtFar> {
        fars.iter()
            .enumerate()
            .map(|(i, &far)| {
                let m = mean_std(rounds.iter().map(|r| pick(r)[i].value));
                RateAtFar {
                    far,
                    mean: m.mean,
                    std: m.std,
                }
            })
            .collect()
    };
    Ok(ProtocolReport {
        config: config.clone(),
        rank1: mean_std(rounds.iter().map(|r| r.rank1)),
        dir_at_far: at_far(|r| &r.dir_at_far, &config.dir_fars),
        tar_at_far: at_far(|r| &r.tar_at_far, &config.tar_fars),
        eer: mean_std(rounds.iter().map(|r| r.eer)),
        open_set_thresholds: calibrate(&unknown_best, &config.calibration_fars)?,
        pair_thresholds: calibrate(&impostor, &config.calibration_fars)?,
        roc: roc(&genuine, &impostor, config.roc_points)?,
        rounds,
    })
}

/// Mean and sample standard deviation (0 for fewer than two values).
pub fn mean_std(values: impl Iterator<Item = f64>) -> MeanStd {
    let v: Vec<f64> = values.collect();
    let n = v.len() as f64;
    let mean = if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / n
    };
    let std = if v.len() < 2 {
        0.0
    } else {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    MeanStd { mean, std }
}

impl fmt::Display for ProtocolReport {
    /// One line: `rank-1 0.950±0.010  DIR@1% 0.630±0.020 … EER 0.050±0.005`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rank-1 {:.3}±{:.3}", self.rank1.mean, self.rank1.std)?;
        for r in &self.dir_at_far {
            write!(f, "  DIR@{}% {:.3}±{:.3}", r.far * 100.0, r.mean, r.std)?;
        }
        for r in &self.tar_at_far {
            write!(f, "  TAR@{}% {:.3}±{:.3}", r.far * 100.0, r.mean, r.std)?;
        }
        write!(f, "  EER {:.3}±{:.3}", self.eer.mean, self.eer.std)
    }
}
