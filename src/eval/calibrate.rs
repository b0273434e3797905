//! Similarity thresholds at target false-accept rates.
//!
//! A comparison is accepted when `score ≥ t`. On `n` impostor scores,
//! `FAR(t) = #{s ≥ t} / n`, a non-increasing step function of `t`. The calibrated
//! threshold for a target `f` is the smallest `f32` `t` with `FAR(t) ≤ f`:
//! with the scores sorted descending `s₁ ≥ … ≥ sₙ` and `m = ⌊f·n⌋`,
//! `t = next_up(s_{m+1})`, the smallest `f32` above the first score that must be
//! rejected. Ties are thus resolved conservatively: impostors tied with `s_{m+1}` are all
//! rejected, so the measured FAR may fall below the target but never exceeds it. With
//! `m ≥ n` every impostor may be accepted and `t = min(−1, sₙ)`.
//!
//! With fewer than `1/f` impostors, `m = 0` and `t` sits just above the best impostor:
//! the target cannot be resolved, which [`Threshold::resolvable`] reports.

use serde::{Deserialize, Serialize};

use super::error::{EvalError, Result};

/// A calibrated threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    /// The target false-accept rate `f`.
    pub far_target: f64,
    /// Accept when `score ≥ threshold`.
    pub threshold: f32,
    /// `FAR(threshold)` on the calibration impostors (≤ `far_target`).
    pub far_measured: f64,
    /// Number of impostor scores calibrated on.
    pub impostors: usize,
    /// Whether `far_target · impostors ≥ 1`, i.e. the target is measurable at all.
    pub resolvable: bool,
}

/// Thresholds for each target FAR in `targets` (each in `[0, 1]`), from impostor scores.
pub fn calibrate(impostor_scores: &[f32], targets: &[f64]) -> Result<Vec<Threshold>> {
    let mut sorted = finite_sorted_descending(impostor_scores, "impostor scores")?;
    sorted.shrink_to_fit();
    targets
        .iter()
        .map(|&target| threshold_at(&sorted, target))
        .collect()
}

/// The threshold for one target on scores sorted descending.
pub fn threshold_at(sorted_desc: &[f32], target: f64) -> Result<Threshold> {
    if !(0.0..=1.0).contains(&target) {
        return Err(EvalError::mismatch(
            "target FAR",
            "a value in [0, 1]",
            target,
        ));
    }
    let n = sorted_desc.len();
    let m = (target * n as f64).floor() as usize;
    let threshold = match sorted_desc.get(m) {
        Some(&first_rejected) => first_rejected.next_up(),
        None => sorted_desc.last().map_or(-1.0, |&s| s.min(-1.0)),
    };
    Ok(Threshold {
        far_target: target,
        threshold,
        far_measured: rate_at_or_above(sorted_desc, threshold),
        impostors: n,
        resolvable: target * n as f64 >= 1.0,
    })
}

/// `#{s ≥ t} / n` for scores sorted descending (0 for no scores).
pub fn rate_at_or_above(sorted_desc: &[f32], t: f32) -> f64 {
    if sorted_desc.is_empty() {
        return 0.0;
    }
    let count = sorted_desc.partition_point(|&s| s >= t);
    count as f64 / sorted_desc.len() as f64
}

/// The scores sorted descending; an error names the first non-finite one.
pub fn finite_sorted_descending(scores: &[f32], what: &'static str) -> Result<Vec<f32>> {
    if scores.is_empty() {
        return Err(EvalError::mismatch(what, "at least one score", "none"));
    }
    if let Some((i, s)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(EvalError::mismatch(
            what,
            "finite scores",
            format!("{s} at index {i}"),
        ));
    }
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    Ok(sorted)
}
