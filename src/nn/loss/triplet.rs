//! Triplet loss with margin over a labelled batch, with three ways to mine triplets.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::distance::Pairwise;
use super::{Distance, EmbeddingLoss, batch_matrix};
use crate::nn::{NnError, Result, Tensor};

/// Settings of [`triplet_loss`]. Defaults: margin 0.2 (FaceNet's α), plain Euclidean
/// distance and batch-hard mining (Hermans, Beyer & Leibe, "In Defense of the Triplet
/// Loss", who found the non-squared distance more stable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TripletConfig {
    pub margin: f32,
    pub distance: Distance,
    pub mining: Mining,
    /// Soft margin (Hermans et al.): each term is `ln(1 + exp(D(a, p) − D(a, n) + m))`
    /// instead of the hinge `max(0, …)`, so a triplet that already satisfies the margin
    /// still pulls, ever more weakly, instead of stopping dead; `m` may then be 0.
    /// Every term counts (E is their mean for every mining); "active" still counts the
    /// terms with a positive argument.
    pub soft: bool,
}

impl Default for TripletConfig {
    fn default() -> Self {
        TripletConfig {
            margin: 0.2,
            distance: Distance::Euclidean,
            mining: Mining::BatchHard,
            soft: false,
        }
    }
}

/// Which triplets (a, p, n) — p of a's identity, n of another — the loss is built from.
/// Every term is ℓ = max(0, D(a, p) − D(a, n) + m).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mining {
    /// Every valid triplet; E is the mean of ℓ over the triplets with ℓ > 0 ("batch
    /// all" of Hermans et al.), 0 if none is active. Terms: all valid triplets.
    All,
    /// For each anchor with a positive, its farthest positive and nearest negative; E is
    /// the mean of ℓ over those anchors. Terms: anchors.
    #[default]
    BatchHard,
    /// FaceNet's semi-hard negatives, as TensorFlow Addons' `triplet_semihard_loss`: for
    /// each anchor–positive pair, the nearest negative *farther* than the positive
    /// (within the margin it gives ℓ > 0, beyond it ℓ = 0); when every negative is
    /// nearer than the positive, the farthest negative instead. E is the mean of ℓ
    /// over all anchor–positive pairs. Terms: anchor–positive pairs.
    SemiHard,
}

/// Triplet loss of embeddings `(N, K)` with identity labels (N of them). The gradient
/// flows through the distances of the selected triplets; the selection itself is
/// piecewise constant (ties go to the lowest index).
///
/// A batch without a valid triplet — no identity with two embeddings, or only one
/// identity — is an error rather than a silent zero: the P×K sampler should never
/// produce one. A valid batch whose triplets all satisfy the hinge's margin gives
/// E = 0 (the soft margin never reaches 0).
pub fn triplet_loss(
    embeddings: &Tensor,
    labels: &[usize],
    config: &TripletConfig,
) -> Result<EmbeddingLoss> {
    const OP: &str = "triplet_loss";
    let margin = f64::from(config.margin);
    if !(margin.is_finite() && margin >= 0.0) {
        return Err(NnError::Invalid(format!(
            "{OP}: margin must be finite and ≥ 0, got {margin}"
        )));
    }
    let x = batch_matrix(OP, embeddings, labels.len())?;
    let has_positive = (0..labels.len()).any(|i| labels[i + 1..].contains(&labels[i]));
    let has_negative = labels.iter().any(|&l| l != labels[0]);
    if !(has_positive && has_negative) {
        return Err(NnError::Invalid(format!(
            "{OP}: no valid triplet: the batch needs two identities and one with two \
             embeddings, got labels {labels:?}"
        )));
    }
    let pairwise = Pairwise::new(x, config.distance);
    let d = &pairwise.d;
    let mut g = Array2::<f64>::zeros(d.raw_dim());
    let term = Term {
        margin,
        soft: config.soft,
    };
    let tally = match config.mining {
        Mining::All => mine_all(d, labels, term, &mut g),
        Mining::BatchHard => mine_batch_hard(d, labels, term, &mut g),
        Mining::SemiHard => mine_semi_hard(d, labels, term, &mut g),
    };
    let divisor = match config.mining {
        Mining::All if !config.soft => tally.active,
        Mining::All | Mining::BatchHard | Mining::SemiHard => tally.terms,
    };
    let (value, dx) = if divisor == 0 {
        (0.0, Array2::zeros(x.raw_dim()))
    } else {
        let scale = 1.0 / divisor as f64;
        g *= scale;
        (tally.sum * scale, pairwise.backward(x, &g))
    };
    Ok(EmbeddingLoss::assemble(
        value,
        dx,
        d,
        labels,
        (tally.terms, tally.active),
    ))
}

/// One term's ℓ as a function of `D(a, p) − D(a, n)`.
#[derive(Debug, Clone, Copy)]
struct Term {
    margin: f64,
    soft: bool,
}

impl Term {
    /// `(ℓ, dℓ/dD(a, p))` (dℓ/dD(a, n) is its negative) at `x = D(a, p) − D(a, n)`.
    fn at(self, x: f64) -> (f64, f64) {
        let z = x + self.margin;
        if self.soft {
            // ln(1 + eᶻ) = max(z, 0) + ln(1 + e^−|z|), exact and never overflowing.
            let softplus = z.max(0.0) + (-z.abs()).exp().ln_1p();
            let sigmoid = if z >= 0.0 {
                1.0 / (1.0 + (-z).exp())
            } else {
                z.exp() / (1.0 + z.exp())
            };
            (softplus, sigmoid)
        } else if z > 0.0 {
            (z, 1.0)
        } else {
            (0.0, 0.0)
        }
    }
}

/// Sum of ℓ over the terms, how many terms, how many with a positive argument.
#[derive(Debug, Default)]
struct Tally {
    sum: f64,
    terms: usize,
    active: usize,
}

impl Tally {
    /// Counts the triplet (a, p, n), adds its ℓ and its unscaled dE/dD to g.
    fn add(&mut self, d: &Array2<f64>, term: Term, g: &mut Array2<f64>, [a, p, n]: [usize; 3]) {
        self.terms += 1;
        let x = d[[a, p]] - d[[a, n]];
        if x + term.margin > 0.0 {
            self.active += 1;
        }
        let (loss, slope) = term.at(x);
        if slope != 0.0 {
            self.sum += loss;
            g[[a, p]] += slope;
            g[[a, n]] -= slope;
        }
    }
}

fn positives(labels: &[usize], a: usize) -> impl DoubleEndedIterator<Item = usize> + '_ {
    (0..labels.len()).filter(move |&p| p != a && labels[p] == labels[a])
}

fn negatives(labels: &[usize], a: usize) -> impl DoubleEndedIterator<Item = usize> + '_ {
    (0..labels.len()).filter(move |&n| labels[n] != labels[a])
}

fn mine_all(d: &Array2<f64>, labels: &[usize], term: Term, g: &mut Array2<f64>) -> Tally {
    let mut tally = Tally::default();
    for a in 0..labels.len() {
        for p in positives(labels, a) {
            for n in negatives(labels, a) {
                tally.add(d, term, g, [a, p, n]);
            }
        }
    }
    tally
}

fn mine_batch_hard(d: &Array2<f64>, labels: &[usize], term: Term, g: &mut Array2<f64>) -> Tally {
    let mut tally = Tally::default();
    for a in 0..labels.len() {
        // max_by keeps the last of equal elements, min_by the first; rev() makes the
        // farthest positive's ties go to the lowest index too.
        let hardest_positive = positives(labels, a)
            .rev()
            .max_by(|&i, &j| d[[a, i]].total_cmp(&d[[a, j]]));
        let hardest_negative =
            negatives(labels, a).min_by(|&i, &j| d[[a, i]].total_cmp(&d[[a, j]]));
        if let (Some(p), Some(n)) = (hardest_positive, hardest_negative) {
            tally.add(d, term, g, [a, p, n]);
        }
    }
    tally
}

fn mine_semi_hard(d: &Array2<f64>, labels: &[usize], term: Term, g: &mut Array2<f64>) -> Tally {
    let mut tally = Tally::default();
    for a in 0..labels.len() {
        for p in positives(labels, a) {
            let by_distance = |&i: &usize, &j: &usize| d[[a, i]].total_cmp(&d[[a, j]]);
            let semi_hard = negatives(labels, a)
                .filter(|&n| d[[a, n]] > d[[a, p]])
                .min_by(by_distance);
            let chosen = semi_hard.or_else(|| negatives(labels, a).rev().max_by(by_distance));
            if let Some(n) = chosen {
                tally.add(d, term, g, [a, p, n]);
            }
        }
    }
    tally
}

#[cfg(test)]
#[path = "triplet_tests.rs"]
mod tests;
