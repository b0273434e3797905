//! The impostor-score tail a model file carries, and the open-set threshold it implies
//! for a gallery of `N` identities.
//!
//! A stranger's score against one enrolled identity with `k` faces is the best cosine
//! over those faces (as the server's index scores an identity). [`TailBucket::exceed`]
//! is `p(t) = P(score ≥ t)` for one such identity: the empirical distribution up to a
//! high quantile `u`, beyond it a generalized Pareto tail
//!
//! ```text
//! p(t) = ζ · (1 + ξ (t − u) / σ)^(−1/ξ)      (ξ ≠ 0; exp(−(t − u)/σ) for ξ = 0)
//! ```
//!
//! with `ζ = P(score ≥ u)`. A stranger is let into a gallery of `N` identities when any
//! of them scores at or above the threshold, so the gallery's false-accept rate is
//! `FAR_N(t) = 1 − (1 − p(t))^N` (strangers' scores against different identities taken
//! as independent), and the threshold for a target `f` is the smallest `t` with
//! `FAR_N(t) ≤ f`, i.e. `p(t) ≤ 1 − (1 − f)^(1/N)`.
//!
//! **The upper bound.** The people a tail is measured on are a sample, and the far tail
//! is made by a few groups of lookalike people: on LFW, the highest impostor scores of
//! the default model are almost all between East Asian faces, and how many such people a
//! population holds moves its FAR at 0.1% several-fold. A tail fitted with its
//! identity-bootstrap replicates ([`UpperBound`]) answers with the `confidence` quantile
//! of the replicates' `FAR_N(t)` instead of the point estimate, so the threshold keeps
//! the target for that share of populations resampled from the calibration people.
//! `exceed` stays the point estimate.

use serde::{Deserialize, Serialize};

/// The tail for identities with `faces` enrolled faces (`faces` = the bucket's lower
/// bound; the last bucket covers every larger count).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailBucket {
    /// Enrolled faces per identity this bucket was measured with.
    pub faces: usize,
    /// Where the Pareto tail starts (a score).
    pub u: f64,
    /// `ζ = P(score ≥ u)`.
    pub zeta: f64,
    /// Shape `ξ` (negative: the tail ends at `u − σ/ξ`).
    pub xi: f64,
    /// Scale `σ > 0`.
    pub sigma: f64,
    /// Impostor scores the bucket was fitted on.
    pub scores: usize,
    /// The body below `u`: `body[i]` is the score exceeded with probability
    /// `body_p[i]` (scores descending, probabilities ascending to 1).
    pub body: Vec<f64>,
    /// The body's exceedance probabilities, log-spaced from `ζ` so the scores just
    /// below `u` are resolved as finely as the tail needs. Empty in files written before
    /// it existed, whose `body[i]` is exceeded with probability `i / (len − 1)`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub body_p: Vec<f64>,
}

/// Impostor tails by enrolled faces per identity, ascending by `faces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailModel {
    pub buckets: Vec<TailBucket>,
    /// Where the scores came from (free-form JSON: data, models, folds).
    #[serde(default)]
    pub source: serde_json::Value,
    /// Identity-bootstrap replicates; absent in tails fitted without identity labels
    /// (and in files calibrated before the bound existed), which answer with the point
    /// estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<UpperBound>,
}

/// The tail refitted on identity-bootstrap resamples of the calibration people (each
/// person drawn with replacement, every score weighted by how often its enrolled person
/// and its stranger were drawn).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpperBound {
    /// The quantile of the replicates' gallery FAR answered (0.8: the threshold keeps
    /// the target for 80% of resampled populations).
    pub confidence: f64,
    /// Each replicate's buckets, laid out as [`TailModel::buckets`].
    pub replicates: Vec<Vec<TailBucket>>,
}

impl TailBucket {
    /// `p(t) = P(score ≥ t)` for one identity.
    pub fn exceed(&self, t: f64) -> f64 {
        if t >= self.u {
            let z = (t - self.u) / self.sigma;
            let tail = if self.xi.abs() < 1e-9 {
                (-z).exp()
            } else {
                let base = 1.0 + self.xi * z;
                if base <= 0.0 {
                    return 0.0;
                }
                base.powf(-1.0 / self.xi)
            };
            return (self.zeta * tail).clamp(0.0, 1.0);
        }
        // The body, interpolated between its points; above its top, ζ.
        let n = self.body.len();
        if n < 2 {
            return 1.0;
        }
        // body is descending; find the first entry ≤ t.
        let i = self.body.partition_point(|&b| b > t);
        if i == 0 {
            return self.zeta;
        }
        if i >= n {
            return 1.0;
        }
        let (hi, lo) = (self.body[i - 1], self.body[i]);
        let frac = if hi > lo { (hi - t) / (hi - lo) } else { 0.0 };
        if self.body_p.len() == n {
            // Log-spaced probabilities: interpolate ln p.
            let (p_hi, p_lo) = (self.body_p[i - 1].max(1e-300), self.body_p[i].max(1e-300));
            let p = (p_hi.ln() + frac * (p_lo.ln() - p_hi.ln())).exp();
            return p.max(self.zeta).min(1.0);
        }
        let step = 1.0 / (n - 1) as f64;
        (((i - 1) as f64 + frac) * step).max(self.zeta).min(1.0)
    }
}

/// The bucket of `buckets` for identities with `faces` enrolled faces: the largest
/// measured with at most that many (the first for fewer).
fn bucket_of(buckets: &[TailBucket], faces: usize) -> Option<&TailBucket> {
    buckets
        .iter()
        .rev()
        .find(|b| b.faces <= faces)
        .or_else(|| buckets.first())
}

/// `p(t)` for one identity with `faces` faces under `buckets`. Beyond the largest bucket
/// (`K` faces), the identity counts as `faces / K` independent identities of that
/// bucket, which errs towards a higher threshold (a person's photos are alike, so more
/// of them raise the best score less than independent draws would).
fn exceed_in(buckets: &[TailBucket], t: f64, faces: usize) -> f64 {
    let Some(bucket) = bucket_of(buckets, faces) else {
        return 1.0;
    };
    let p = bucket.exceed(t);
    if faces > bucket.faces && bucket.faces > 0 && p < 1.0 {
        let units = faces as f64 / bucket.faces as f64;
        return -(units * (-p).ln_1p()).exp_m1();
    }
    p
}

/// `1 − (1 − p(t))^N` under `buckets`.
fn gallery_far_in(buckets: &[TailBucket], t: f64, identities: usize, faces: usize) -> f64 {
    let p = exceed_in(buckets, t, faces);
    if p >= 1.0 {
        return 1.0;
    }
    -(identities.max(1) as f64 * (-p).ln_1p()).exp_m1()
}

impl TailModel {
    /// The point estimate's bucket for identities with `faces` enrolled faces.
    pub fn bucket(&self, faces: usize) -> Option<&TailBucket> {
        bucket_of(&self.buckets, faces)
    }

    /// The point estimate of `p(t)` for one identity with `faces` faces.
    pub fn exceed(&self, t: f64, faces: usize) -> f64 {
        exceed_in(&self.buckets, t, faces)
    }

    /// Estimated fraction of strangers scoring at least `t` against some identity of a
    /// gallery of `identities`, each with `faces` faces: `1 − (1 − p(t))^N`, at the
    /// upper bound's confidence when the tail has one. Non-increasing in `t` either way
    /// (a quantile of non-increasing functions is one).
    pub fn gallery_far(&self, t: f64, identities: usize, faces: usize) -> f64 {
        let Some(upper) = self.upper.as_ref().filter(|u| !u.replicates.is_empty()) else {
            return gallery_far_in(&self.buckets, t, identities, faces);
        };
        let mut fars: Vec<f64> = upper
            .replicates
            .iter()
            .map(|buckets| gallery_far_in(buckets, t, identities, faces))
            .collect();
        fars.sort_by(f64::total_cmp);
        let n = fars.len();
        let rank = ((upper.confidence * n as f64).ceil() as usize).clamp(1, n);
        fars[rank - 1]
    }

    /// The smallest threshold (to 1e-6) whose gallery FAR is at most `far`, in `[-1, 1]`.
    pub fn threshold(&self, far: f64, identities: usize, faces: usize) -> f64 {
        let (mut lo, mut hi) = (-1.0_f64, 1.0_f64);
        if self.gallery_far(lo, identities, faces) <= far {
            return lo;
        }
        // Invariant: gallery_far(lo) > far ≥ gallery_far(hi) (or hi = 1).
        while hi - lo > 1e-7 {
            let mid = 0.5 * (lo + hi);
            if self.gallery_far(mid, identities, faces) <= far {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exponential_tail() -> TailModel {
        TailModel {
            buckets: vec![TailBucket {
                faces: 1,
                u: 0.3,
                zeta: 0.05,
                xi: 0.0,
                sigma: 0.05,
                scores: 1000,
                body: vec![0.3, 0.2, 0.1, 0.0, -0.1],
                body_p: Vec::new(),
            }],
            source: serde_json::Value::Null,
            upper: None,
        }
    }

    #[test]
    fn exceedance_is_continuous_at_u_and_decreasing() {
        let m = exponential_tail();
        let b = &m.buckets[0];
        assert!((b.exceed(0.3) - 0.05).abs() < 1e-12);
        assert!((b.exceed(0.35) - 0.05 * (-1.0f64).exp()).abs() < 1e-12);
        let mut last = 1.0;
        for i in 0..200 {
            let t = -1.0 + i as f64 * 0.01;
            let p = b.exceed(t);
            assert!(p <= last + 1e-12, "p({t}) = {p} > {last}");
            last = p;
        }
        assert_eq!(b.exceed(-0.5), 1.0);
    }

    #[test]
    fn threshold_solves_the_gallery_equation_and_grows_with_the_gallery() {
        let m = exponential_tail();
        let t1 = m.threshold(0.01, 1, 1);
        // p(t) = 0.01 → t = u + σ ln(ζ / p).
        let want = 0.3 + 0.05 * (0.05f64 / 0.01).ln();
        assert!((t1 - want).abs() < 1e-5, "{t1} vs {want}");
        let t100 = m.threshold(0.01, 100, 1);
        assert!(t100 > t1);
        assert!((m.gallery_far(t100, 100, 1) - 0.01).abs() < 1e-5);
    }

    #[test]
    fn more_faces_than_the_largest_bucket_count_as_several_identities() {
        let m = exponential_tail();
        let p1 = m.exceed(0.4, 1);
        let p3 = m.exceed(0.4, 3);
        assert!((p3 - (1.0 - (1.0 - p1).powi(3))).abs() < 1e-12);
    }

    #[test]
    fn a_bounded_tail_ends_at_its_endpoint() {
        let mut m = exponential_tail();
        m.buckets[0].xi = -0.5;
        // Endpoint u − σ/ξ = 0.3 + 0.1.
        assert_eq!(m.buckets[0].exceed(0.41), 0.0);
        assert!(m.buckets[0].exceed(0.39) > 0.0);
    }
}
