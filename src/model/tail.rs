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
    /// The body: `body[i]` is the score exceeded with probability `i / (len − 1)`
    /// (descending from the maximum to the minimum seen), used below `u`.
    pub body: Vec<f64>,
}

/// Impostor tails by enrolled faces per identity, ascending by `faces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TailModel {
    pub buckets: Vec<TailBucket>,
    /// Where the scores came from (free-form JSON: data, models, folds).
    #[serde(default)]
    pub source: serde_json::Value,
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
        // The body, linearly interpolated between its quantiles; above its top, ζ.
        let n = self.body.len();
        if n < 2 {
            return 1.0;
        }
        let step = 1.0 / (n - 1) as f64;
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
        (((i - 1) as f64 + frac) * step).max(self.zeta).min(1.0)
    }
}

impl TailModel {
    /// The bucket for identities with `faces` enrolled faces: the largest bucket
    /// measured with at most that many (the first for fewer).
    pub fn bucket(&self, faces: usize) -> Option<&TailBucket> {
        self.buckets
            .iter()
            .rev()
            .find(|b| b.faces <= faces)
            .or_else(|| self.buckets.first())
    }

    /// `p(t)` for one identity with `faces` faces. Beyond the largest bucket (`K`
    /// faces), the identity counts as `faces / K` independent identities of that bucket,
    /// which errs towards a higher threshold (a person's photos are alike, so more of
    /// them raise the best score less than independent draws would).
    pub fn exceed(&self, t: f64, faces: usize) -> f64 {
        let Some(bucket) = self.bucket(faces) else {
            return 1.0;
        };
        let p = bucket.exceed(t);
        if faces > bucket.faces && bucket.faces > 0 && p < 1.0 {
            let units = faces as f64 / bucket.faces as f64;
            return -(units * (-p).ln_1p()).exp_m1();
        }
        p
    }

    /// Estimated fraction of strangers scoring at least `t` against some identity of a
    /// gallery of `identities`, each with `faces` faces: `1 − (1 − p(t))^N`.
    pub fn gallery_far(&self, t: f64, identities: usize, faces: usize) -> f64 {
        let p = self.exceed(t, faces);
        if p >= 1.0 {
            return 1.0;
        }
        -(identities.max(1) as f64 * (-p).ln_1p()).exp_m1()
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
            }],
            source: serde_json::Value::Null,
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
