//! Open-set and verification metrics from identity-level scores.
//!
//! - rank-1: over probes whose identity is enrolled ("known"), the fraction whose
//!   best-scoring identity is their own (closed-set identification).
//! - DIR@FAR (detection and identification rate): the threshold `t` is calibrated on the
//!   best scores of the "unknown" probes (identity not enrolled) so that at most a
//!   fraction FAR of them is accepted ([`super::calibrate::calibrate`]); DIR is the fraction of
//!   known probes whose best identity is their own *and* scores `≥ t`.
//! - verification, from genuine and impostor pair scores: TAR@FAR is the fraction of
//!   genuine scores `≥ t`, `t` calibrated on the impostors; the ROC is TAR against FAR
//!   over thresholds; the EER is `(FAR + FRR)/2` at the candidate threshold (every score,
//!   and +∞) where `|FAR − FRR|` is smallest, `FRR = 1 − TAR`.

use serde::{Deserialize, Serialize};

use super::calibrate::{finite_sorted_descending, rate_at_or_above, threshold_at};
use super::error::{EvalError, Result};
use super::scores::IdentityScores;

/// A rate measured at a calibrated threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtFar {
    pub far: f64,
    pub threshold: f32,
    pub value: f64,
}

/// One ROC point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RocPoint {
    pub threshold: f32,
    pub far: f64,
    pub tar: f64,
}

/// Closed-set rank-1 over the known probes; an error when no probe is known.
pub fn rank1(scores: &IdentityScores, probe_labels: &[usize]) -> Result<f64> {
    check_labels(scores, probe_labels)?;
    let (mut known, mut hits) = (0usize, 0usize);
    for ((best, _), &label) in scores.top1().into_iter().zip(probe_labels) {
        if scores.is_enrolled(label) {
            known += 1;
            hits += usize::from(best == label);
        }
    }
    if known == 0 {
        return Err(EvalError::Invalid(
            "rank-1 needs probes of enrolled identities".into(),
        ));
    }
    Ok(hits as f64 / known as f64)
}

/// DIR at each target FAR; needs known and unknown probes.
pub fn dir_at_far(
    scores: &IdentityScores,
    probe_labels: &[usize],
    fars: &[f64],
) -> Result<Vec<AtFar>> {
    check_labels(scores, probe_labels)?;
    let top = scores.top1();
    let mut unknown_best = Vec::new();
    let mut known_correct = Vec::new(); // best score of known probes, NaN-free; None if wrong
    for (&(best, s), &label) in top.iter().zip(probe_labels) {
        if scores.is_enrolled(label) {
            known_correct.push((best == label).then_some(s));
        } else {
            unknown_best.push(s);
        }
    }
    if known_correct.is_empty() {
        return Err(EvalError::Invalid(
            "DIR@FAR needs probes of enrolled identities".into(),
        ));
    }
    let unknown = finite_sorted_descending(&unknown_best, "unknown-probe scores")?;
    fars.iter()
        .map(|&far| {
            let t = threshold_at(&unknown, far)?;
            let detected = known_correct
                .iter()
                .filter(|s| s.is_some_and(|s| s >= t.threshold))
                .count();
            Ok(AtFar {
                far,
                threshold: t.threshold,
                value: detected as f64 / known_correct.len() as f64,
            })
        })
        .collect()
}

/// TAR at each target FAR, the threshold calibrated on `impostor`.
pub fn tar_at_far(genuine: &[f32], impostor: &[f32], fars: &[f64]) -> Result<Vec<AtFar>> {
    let genuine = finite_sorted_descending(genuine, "genuine scores")?;
    let impostor = finite_sorted_descending(impostor, "impostor scores")?;
    fars.iter()
        .map(|&far| {
            let t = threshold_at(&impostor, far)?;
            Ok(AtFar {
                far,
                threshold: t.threshold,
                value: rate_at_or_above(&genuine, t.threshold),
            })
        })
        .collect()
}

/// Equal error rate; see the module documentation.
pub fn eer(genuine: &[f32], impostor: &[f32]) -> Result<f64> {
    let genuine = finite_sorted_descending(genuine, "genuine scores")?;
    let impostor = finite_sorted_descending(impostor, "impostor scores")?;
    let candidates = genuine
        .iter()
        .chain(&impostor)
        .copied()
        .chain([f32::INFINITY]);
    let mut best = (f64::INFINITY, 1.0);
    for t in candidates {
        let far = rate_at_or_above(&impostor, t);
        let frr = 1.0 - rate_at_or_above(&genuine, t);
        let gap = (far - frr).abs();
        if gap < best.0 {
            best = (gap, (far + frr) / 2.0);
        }
    }
    Ok(best.1)
}

/// ROC points at `points` target FARs spaced logarithmically from
/// `max(1/#impostors, 1e-4)` to 1, each at its calibrated threshold, ascending in FAR.
pub fn roc(genuine: &[f32], impostor: &[f32], points: usize) -> Result<Vec<RocPoint>> {
    let genuine = finite_sorted_descending(genuine, "genuine scores")?;
    let impostor = finite_sorted_descending(impostor, "impostor scores")?;
    let lowest = (1.0 / impostor.len() as f64).max(1e-4).log10();
    let points = points.max(2);
    let mut out: Vec<RocPoint> = Vec::with_capacity(points + 1);
    out.push(RocPoint {
        threshold: impostor[0].max(genuine[0]).next_up(),
        far: 0.0,
        tar: 0.0,
    });
    for i in 0..points {
        let target = 10f64.powf(lowest * (1.0 - i as f64 / (points - 1) as f64));
        let t = threshold_at(&impostor, target.min(1.0))?;
        let point = RocPoint {
            threshold: t.threshold,
            far: t.far_measured,
            tar: rate_at_or_above(&genuine, t.threshold),
        };
        if out
            .last()
            .is_none_or(|last| last.threshold != point.threshold)
        {
            out.push(point);
        }
    }
    Ok(out)
}

fn check_labels(scores: &IdentityScores, probe_labels: &[usize]) -> Result<()> {
    if scores.scores.nrows() != probe_labels.len() {
        return Err(EvalError::mismatch(
            "probe labels",
            format!("{} (one per probe)", scores.scores.nrows()),
            probe_labels.len(),
        ));
    }
    Ok(())
}
