//! Fitting the impostor tail a model file carries ([`crate::model::TailModel`]).
//!
//! Scores are those of strangers against one enrolled identity with `k` faces: the best
//! cosine over the `k` faces, exactly as the server's index scores an identity. The top
//! of them ([`tail_size`]: 0.1%, at least 1,000 scores) is fitted with a generalized
//! Pareto distribution by probability-weighted moments (Hosking & Wallis, 1987), which
//! stays stable for the bounded (ξ < 0) tails cosine scores have; below it the empirical
//! quantiles are kept.
//!
//! Why so deep: on the default model's 3.5 M LFW impostor scores, a Pareto tail fitted on
//! the top 1% (the earlier setting) fell short of the very scores it was fitted on by
//! 2.2× at `p = 3e-5` and 6× at `3e-6`, the levels a gallery of 100 identities at FAR
//! 0.1% asks for; fitted on the top 0.1% it stays within 0.8–1.2× of them
//! (`scripts/tail_analysis.py fit`).
//!
//! With identity labels on the scores, the tail is also refitted on identity-bootstrap
//! resamples ([`REPLICATES`] of them) into the upper bound the server decides with
//! ([`crate::model::UpperBound`], [`CONFIDENCE`]).

use ndarray::ArrayView2;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::calibrate::finite_sorted_descending;
use super::error::{EvalError, Result};
use super::scores::normalised;
use crate::model::{TailBucket, TailModel, UpperBound};

/// The Pareto tail is the top 0.1% of the scores ...
const TAIL_FRACTION: f64 = 0.001;
/// ... but at least this many of them ...
const TAIL_SCORES: usize = 1000;
/// ... and never more than the top 5%.
const TAIL_FRACTION_MAX: f64 = 0.05;
/// Identity-bootstrap replicates fitted for the upper bound.
pub const REPLICATES: usize = 40;
/// The quantile of the replicates' gallery FAR the server decides with.
pub const CONFIDENCE: f64 = 0.8;
/// Seed of the bootstrap draws (a calibration is reproducible).
const BOOTSTRAP_SEED: u64 = 0x7a11;

/// Quantiles kept for the body (below the tail).
const BODY_POINTS: usize = 201;

/// The fewest exceedances a tail is fitted on.
const MIN_EXCEEDANCES: usize = 30;

/// Impostor scores against identities with `faces` enrolled faces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImpostorScores {
    pub faces: usize,
    pub scores: Vec<f32>,
    /// Per score, the enrolled identity and the stranger's identity (numbered within
    /// the run that scored them). Empty in files written before they were recorded: such
    /// scores fit the point estimate only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enrolled: Vec<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stranger: Vec<u32>,
}

impl ImpostorScores {
    /// Scores without identity labels.
    pub fn unlabelled(faces: usize, scores: Vec<f32>) -> Self {
        Self {
            faces,
            scores,
            enrolled: Vec::new(),
            stranger: Vec::new(),
        }
    }

    fn labelled(&self) -> bool {
        self.enrolled.len() == self.scores.len() && self.stranger.len() == self.scores.len()
    }

    /// Identities numbered in the labels (the largest label + 1).
    pub fn identities(&self) -> usize {
        let top = self.enrolled.iter().chain(&self.stranger).max();
        top.map_or(0, |&m| m as usize + 1)
    }

    /// The labels moved up by `by` (pooling runs whose numbering overlaps).
    pub fn offset(mut self, by: u32) -> Self {
        for l in self.enrolled.iter_mut().chain(self.stranger.iter_mut()) {
            *l += by;
        }
        self
    }
}

/// How many of `n` scores the Pareto tail is fitted on (see the module docs).
pub fn tail_size(n: usize) -> usize {
    let deep = (TAIL_FRACTION * n as f64).ceil() as usize;
    let cap = (TAIL_FRACTION_MAX * n as f64).ceil() as usize;
    deep.max(TAIL_SCORES.min(cap)).max(MIN_EXCEEDANCES)
}

/// Fits one bucket on `scores`, the top [`tail_size`] of them by the Pareto tail.
pub fn fit_bucket(scores: &[f32], faces: usize) -> Result<TailBucket> {
    let sorted = finite_sorted_descending(scores, "impostor scores")?;
    let n = sorted.len();
    let m = tail_size(n);
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
    // Body points at exceedance probabilities log-spaced from ζ = m/n up to 1.
    let zeta = m as f64 / n as f64;
    let body_p: Vec<f64> = (0..BODY_POINTS)
        .map(|i| zeta.powf(1.0 - i as f64 / (BODY_POINTS - 1) as f64))
        .collect();
    let body = body_p
        .iter()
        .map(|&p| {
            let at = (p * (n - 1) as f64).round() as usize;
            f64::from(sorted[at.min(n - 1)])
        })
        .collect();
    Ok(TailBucket {
        faces,
        u,
        zeta,
        xi,
        sigma,
        scores: n,
        body,
        body_p,
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

/// A tail model from pooled scores, one bucket per enrolled-face count, with the
/// identity-bootstrap bound when every score carries its identities.
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
            fit_bucket(&scores, k)
        })
        .collect::<Result<Vec<_>>>()?;
    if buckets.is_empty() {
        return Err(EvalError::Invalid("no impostor scores to fit".into()));
    }
    // A resample too small to fit (a handful of people drawn) leaves the point estimate.
    let upper = if pooled.iter().all(ImpostorScores::labelled) {
        (0..REPLICATES as u64)
            .into_par_iter()
            .map(|r| replicate(pooled, &counts, BOOTSTRAP_SEED + r))
            .collect::<Result<Vec<_>>>()
            .ok()
            .map(|replicates| UpperBound {
                confidence: CONFIDENCE,
                replicates,
            })
    } else {
        None
    };
    Ok(TailModel {
        buckets,
        source,
        upper,
    })
}

/// One identity-bootstrap replicate of the buckets for `faces` counts: the identities
/// drawn with replacement, each score repeated (enrolled draws × stranger draws) times.
fn replicate(pooled: &[ImpostorScores], faces: &[usize], seed: u64) -> Result<Vec<TailBucket>> {
    let identities = pooled
        .iter()
        .map(ImpostorScores::identities)
        .max()
        .unwrap_or(0);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut drawn = vec![0u32; identities];
    for _ in 0..identities {
        drawn[rng.random_range(0..identities)] += 1;
    }
    faces
        .iter()
        .map(|&k| {
            let mut scores = Vec::new();
            for p in pooled.iter().filter(|p| p.faces == k) {
                for ((&s, &e), &t) in p.scores.iter().zip(&p.enrolled).zip(&p.stranger) {
                    let times = drawn[e as usize] * drawn[t as usize];
                    scores.extend(std::iter::repeat_n(s, times as usize));
                }
            }
            fit_bucket(&scores, k)
        })
        .collect()
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
    let mut out = ImpostorScores::unlabelled(faces, Vec::new());
    // Identities numbered as by_identity orders them (labels may skip numbers).
    let groups = by_identity(labels);
    let mut number = vec![0u32; labels.iter().max().map_or(0, |&m| m + 1)];
    for (i, rows) in groups.iter().enumerate() {
        number[labels[rows[0]]] = i as u32;
    }
    for rows in groups {
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
            out.scores.push(best);
            out.enrolled.push(number[labels[enrolled[0]]]);
            out.stranger.push(number[label]);
        }
    }
    Ok(out)
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
            &[ImpostorScores::unlabelled(k, scores)],
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
            &[ImpostorScores::unlabelled(1, scores)],
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
    fn the_body_just_below_the_tail_follows_the_scores() {
        // Uniform scores on [0, 1): P(S ≥ t) = 1 − t. The tail starts at p = 0.001; the
        // probabilities a small gallery asks of one identity (0.002 for FAR 1% over 5)
        // lie in the body, which must resolve them as finely as the tail does.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let scores: Vec<f32> = (0..1_000_000).map(|_| rng.random::<f32>()).collect();
        let bucket = fit_bucket(&scores, 1).unwrap();
        assert!((bucket.zeta - 0.001).abs() < 1e-9, "{}", bucket.zeta);
        for p in [0.0015, 0.002, 0.005, 0.01, 0.1, 0.5] {
            let got = bucket.exceed(1.0 - p);
            assert!(
                (got / p - 1.0).abs() < 0.05,
                "p({}) = {got}, want {p}",
                1.0 - p
            );
        }
    }

    #[test]
    fn labelled_scores_get_an_upper_bound_at_or_above_the_point_estimate() {
        // 60 people; person i's photos score N(0.3 + 0.002·i, 0.1) against anyone, so
        // the far tail belongs to a few of them, as lookalikes make it in real data.
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut scores = ImpostorScores::unlabelled(1, Vec::new());
        for e in 0..60u32 {
            for t in (0..60u32).filter(|&t| t != e) {
                for _ in 0..40 {
                    let z: f64 = rng.sample(StandardNormal);
                    let s = 0.3 + 0.002 * f64::from(e.max(t)) + 0.1 * z;
                    scores.scores.push(s as f32);
                    scores.enrolled.push(e);
                    scores.stranger.push(t);
                }
            }
        }
        let tail = fit_tail(&[scores.clone()], serde_json::Value::Null).unwrap();
        let upper = tail
            .upper
            .as_ref()
            .expect("labelled scores are bootstrapped");
        assert_eq!(upper.replicates.len(), REPLICATES);
        assert_eq!(upper.confidence, CONFIDENCE);
        let point = TailModel {
            upper: None,
            ..tail.clone()
        };
        for n in [1, 10, 100] {
            let (bounded, plain) = (tail.threshold(0.001, n, 1), point.threshold(0.001, n, 1));
            assert!(bounded >= plain, "n = {n}: {bounded} < {plain}");
            assert!(
                bounded - plain < 0.05,
                "n = {n}: a bound that far off: {bounded} vs {plain}"
            );
        }
        // Without labels, no bound: the point estimate alone.
        let bare = ImpostorScores::unlabelled(1, scores.scores);
        let tail = fit_tail(&[bare], serde_json::Value::Null).unwrap();
        assert_eq!(tail.upper, None);
        assert_eq!(tail.threshold(0.001, 10, 1), point.threshold(0.001, 10, 1));
    }

    #[test]
    fn too_few_people_to_resample_leave_the_point_estimate() {
        // Three people: some resamples draw one person three times, with no strangers.
        let mut scores = ImpostorScores::unlabelled(1, Vec::new());
        for (i, (e, t)) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]
            .into_iter()
            .enumerate()
        {
            for j in 0..40 {
                scores.scores.push(0.1 + 0.001 * (i * 40 + j) as f32);
                scores.enrolled.push(e);
                scores.stranger.push(t);
            }
        }
        let tail = fit_tail(&[scores], serde_json::Value::Null).expect("the point fit stands");
        assert_eq!(tail.upper, None);
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
