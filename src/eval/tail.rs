//! Fitting the impostor tail a model file carries ([`crate::model::TailModel`]).
//!
//! Scores are those of strangers against one enrolled identity with `k` faces: the best
//! cosine over the `k` faces, exactly as the server's index scores an identity. The top
//! fraction of them (1%) is fitted with a generalized Pareto distribution by
//! probability-weighted moments (Hosking & Wallis, 1987), which stays stable for the
//! bounded (ξ < 0) tails cosine scores have; below it the empirical quantiles are kept.

use ndarray::ArrayView2;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::calibrate::finite_sorted_descending;
use super::error::{EvalError, Result};
use super::scores::normalised;
use crate::model::{TailBucket, TailModel};

/// Fraction of the highest scores fitted by the Pareto tail.
pub const TAIL_FRACTION: f64 = 0.01;

/// Quantiles kept for the body (below the tail).
const BODY_POINTS: usize = 201;

/// The fewest exceedances a tail is fitted on.
const MIN_EXCEEDANCES: usize = 30;

/// Impostor scores against identities with `faces` enrolled faces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImpostorScores {
    pub faces: usize,
    pub scores: Vec<f32>,
}

/// Fits one bucket on `scores`, the top `tail_fraction` of them by the Pareto tail.
pub fn fit_bucket(scores: &[f32], faces: usize, tail_fraction: f64) -> Result<TailBucket> {
    let sorted = finite_sorted_descending(scores, "impostor scores")?;
    let n = sorted.len();
    let m = ((tail_fraction * n as f64).ceil() as usize).max(MIN_EXCEEDANCES);
    if m >= n {
        return Err(EvalError::mismatch(
            "impostor scores",
            format!("more than {m} (a tail of {MIN_EXCEEDANCES} or more)"),
            n,
        ));
    }
    // The tail is the m scores above u, the (m+1)-th largest.
    let u = f64::from(sorted[m]);
    let mut excess: Vec<f64> = sorted[..m].iter().map(|&s| f64::from(s) - u).collect();
    excess.reverse(); // ascending
    let (xi, sigma) = pwm_gpd(&excess);
    let body = (0..BODY_POINTS)
        .map(|i| {
            let at = (i as f64 / (BODY_POINTS - 1) as f64 * (n - 1) as f64).round() as usize;
            f64::from(sorted[at.min(n - 1)])
        })
        .collect();
    Ok(TailBucket {
        faces,
        u,
        zeta: m as f64 / n as f64,
        xi,
        sigma,
        scores: n,
        body,
    })
}

/// Generalized Pareto `(ξ, σ)` of excesses (ascending, ≥ 0) by probability-weighted
/// moments: with `a₀` the mean and `a₁ = mean((1 − pⱼ) y₍ⱼ₎)`, `pⱼ = (j − 0.35)/n`,
/// `ξ = 2 − a₀/(a₀ − 2a₁)` and `σ = 2a₀a₁/(a₀ − 2a₁)`.
pub fn pwm_gpd(excess_ascending: &[f64]) -> (f64, f64) {
    let n = excess_ascending.len() as f64;
    let a0 = excess_ascending.iter().sum::<f64>() / n;
    let a1 = excess_ascending
        .iter()
        .enumerate()
        .map(|(j, &y)| (1.0 - (j as f64 + 1.0 - 0.35) / n) * y)
        .sum::<f64>()
        / n;
    let d = a0 - 2.0 * a1;
    if d <= 0.0 || a0 <= 0.0 {
        // Degenerate (all excesses equal): a steep exponential.
        return (0.0, a0.max(1e-6));
    }
    (2.0 - a0 / d, (2.0 * a0 * a1 / d).max(1e-9))
}

/// A tail model from pooled scores, one bucket per enrolled-face count.
pub fn fit_tail(pooled: &[ImpostorScores], source: serde_json::Value) -> Result<TailModel> {
    let mut counts: Vec<usize> = pooled.iter().map(|p| p.faces).collect();
    counts.sort_unstable();
    counts.dedup();
    let buckets = counts
        .iter()
        .map(|&k| {
            let scores: Vec<f32> = pooled
                .iter()
                .filter(|p| p.faces == k)
                .flat_map(|p| p.scores.iter().copied())
                .collect();
            fit_bucket(&scores, k, TAIL_FRACTION)
        })
        .collect::<Result<Vec<_>>>()?;
    if buckets.is_empty() {
        return Err(EvalError::Invalid("no impostor scores to fit".into()));
    }
    Ok(TailModel { buckets, source })
}

/// Stranger-against-identity scores of `embeddings` `(N, K)` labelled `labels`: each
/// identity with at least `faces` images enrolls `faces` of them (a seeded draw), and
/// every image of every other identity is scored against it (best over its faces).
pub fn impostor_scores(
    embeddings: ArrayView2<f32>,
    labels: &[usize],
    faces: usize,
    seed: u64,
) -> Result<ImpostorScores> {
    if embeddings.nrows() != labels.len() {
        return Err(EvalError::mismatch(
            "labels",
            format!("{} (one per row)", embeddings.nrows()),
            labels.len(),
        ));
    }
    let x = normalised(embeddings, "embeddings")?;
    let sims = x.dot(&x.t()); // (N, N)
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut scores = Vec::new();
    for rows in by_identity(labels) {
        if rows.len() < faces {
            continue;
        }
        let mut rows = rows;
        rows.shuffle(&mut rng);
        let enrolled = &rows[..faces];
        for (p, &label) in labels.iter().enumerate() {
            if label == labels[enrolled[0]] {
                continue;
            }
            let best = enrolled
                .iter()
                .map(|&g| sims[[g, p]])
                .fold(f32::NEG_INFINITY, f32::max);
            scores.push(best);
        }
    }
    Ok(ImpostorScores { faces, scores })
}

/// Row indices of each identity, by label ascending.
pub fn by_identity(labels: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (row, &label) in labels.iter().enumerate() {
        if groups.len() <= label {
            groups.resize(label + 1, Vec::new());
        }
        groups[label].push(row);
    }
    groups.retain(|g| !g.is_empty());
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// Standard normal survival function, `1 − Φ(z)`, by the complementary error
    /// function (Numerical Recipes' erfc, |error| < 1.2e-7).
    fn normal_sf(z: f64) -> f64 {
        let x = z / std::f64::consts::SQRT_2;
        let t = 1.0 / (1.0 + 0.5 * x.abs());
        let y = t
            * (-x * x - 1.26551223
                + t * (1.00002368
                    + t * (0.37409196
                        + t * (0.09678418
                            + t * (-0.18628806
                                + t * (0.27886807
                                    + t * (-1.13520398
                                        + t * (1.48851587
                                            + t * (-0.82215223 + t * 0.17087277)))))))))
                .exp();
        let erfc = if x >= 0.0 { y } else { 2.0 - y };
        0.5 * erfc
    }

    /// The fitted threshold at p = 1e-3 for one identity of `k` faces whose scores are
    /// each N(0, 0.1): the best of k has P(max ≥ t) = 1 − (1 − sf(t/0.1))^k.
    fn fitted_far_of_max_of_normals(k: usize, seed: u64) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scores: Vec<f32> = (0..300_000)
            .map(|_| {
                (0..k)
                    .map(|_| 0.1 * rng.sample::<f64, _>(StandardNormal))
                    .fold(f64::NEG_INFINITY, f64::max) as f32
            })
            .collect();
        let model = fit_tail(
            &[ImpostorScores { faces: k, scores }],
            serde_json::Value::Null,
        )
        .unwrap();
        let t = model.threshold(1e-3, 1, k);
        1.0 - (1.0 - normal_sf(t / 0.1)).powi(k as i32)
    }

    #[test]
    fn the_fitted_threshold_keeps_far_1e3_on_normal_scores() {
        for (k, seed) in [(1, 1), (3, 2), (5, 3)] {
            let far = fitted_far_of_max_of_normals(k, seed);
            assert!(
                (far / 1e-3 - 1.0).abs() < 0.1,
                "k = {k}: the threshold for FAR 1e-3 lets in {far:.3e}"
            );
        }
    }

    #[test]
    fn the_fitted_threshold_keeps_far_1e3_on_a_bounded_pareto_tail() {
        // S = 0.6·(1 − U^(1/4)) on [0, 0.6], so P(S ≥ t) = (1 − t/0.6)^4, a
        // generalized Pareto tail with ξ = −1/4 at every threshold.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let scores: Vec<f32> = (0..200_000)
            .map(|_| (0.6 * (1.0 - rng.random::<f64>().powf(0.25))) as f32)
            .collect();
        let model = fit_tail(
            &[ImpostorScores { faces: 1, scores }],
            serde_json::Value::Null,
        )
        .unwrap();
        let t = model.threshold(1e-3, 1, 1);
        let far = (1.0 - t / 0.6).powi(4);
        assert!((far / 1e-3 - 1.0).abs() < 0.1, "lets in {far:.3e}");
        assert!(
            (model.buckets[0].xi + 0.25).abs() < 0.1,
            "{:?}",
            model.buckets[0]
        );
    }

    #[test]
    fn the_pwm_fit_recovers_an_exponential() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut y: Vec<f64> = (0..100_000)
            .map(|_| -0.05 * (1.0 - rng.random::<f64>()).ln())
            .collect();
        y.sort_by(f64::total_cmp);
        let (xi, sigma) = pwm_gpd(&y);
        assert!(xi.abs() < 0.03, "ξ = {xi}");
        assert!((sigma / 0.05 - 1.0).abs() < 0.03, "σ = {sigma}");
    }

    #[test]
    fn impostor_scores_take_the_best_enrolled_face_of_other_identities() {
        // Identity 0: rows 0, 1; identity 1: row 2. 2-d unit vectors.
        let e = ndarray::array![[1.0f32, 0.0], [0.0, 1.0], [0.6, 0.8]];
        let s = impostor_scores(e.view(), &[0, 0, 1], 2, 0).unwrap();
        // Identity 0 (both faces) vs row 2: max(0.6, 0.8); identity 1 has one image.
        assert_eq!(s.scores, vec![0.8]);
        let s1 = impostor_scores(e.view(), &[0, 0, 1], 1, 0).unwrap();
        assert_eq!(s1.scores.len(), 3);
    }
}
