//! Contrastive loss (Hadsell, Chopra & LeCun, 2006) over all pairs of a batch.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::distance::Pairwise;
use super::{Distance, EmbeddingLoss, batch_matrix};
use crate::nn::{NnError, Result, Tensor};

/// Settings of [`contrastive_loss`]. Default margin 1.0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContrastiveConfig {
    pub margin: f32,
    pub weighting: PairWeighting,
}

impl Default for ContrastiveConfig {
    fn default() -> Self {
        ContrastiveConfig {
            margin: 1.0,
            weighting: PairWeighting::AllPairs,
        }
    }
}

/// How the pair losses are averaged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairWeighting {
    /// E = (1/P) Σ over all P = N(N − 1)/2 pairs: Hadsell et al.'s sum, divided by the
    /// pair count so the scale does not grow with the batch. In a P×K batch most pairs
    /// are negative (e.g. 24 of 28 at 4×2), so negatives dominate.
    #[default]
    AllPairs,
    /// E = ½ (mean over same-identity pairs + mean over different-identity pairs):
    /// both kinds weigh the same whatever their counts. Needs at least one of each.
    Balanced,
}

/// Contrastive loss of embeddings `(N, K)` with identity labels, over all pairs i < j,
/// with D = √(‖xᵢ − xⱼ‖² + ε) (see [`super::SQRT_EPS`]):
///
/// ```text
/// same identity:       Lᵢⱼ = ½ ‖xᵢ − xⱼ‖²           (= ½(D² − ε): pulled together)
/// different identity:  Lᵢⱼ = ½ max(0, m − D)²        (pushed beyond the margin m)
/// ```
///
/// averaged as [`PairWeighting`] says. Errors: fewer than two embeddings, and with
/// `Balanced`, a batch lacking same- or different-identity pairs. Statistics count
/// pairs; a pair is active when its loss is positive.
pub fn contrastive_loss(
    embeddings: &Tensor,
    labels: &[usize],
    config: &ContrastiveConfig,
) -> Result<EmbeddingLoss> {
    const OP: &str = "contrastive_loss";
    let margin = f64::from(config.margin);
    if !(margin.is_finite() && margin > 0.0) {
        return Err(NnError::Invalid(format!(
            "{OP}: margin must be finite and > 0, got {margin}"
        )));
    }
    let x = batch_matrix(OP, embeddings, labels.len())?;
    let n = labels.len();
    if n < 2 {
        return Err(NnError::Invalid(format!(
            "{OP}: needs at least 2 embeddings, got {n}"
        )));
    }
    let pairs = n * (n - 1) / 2;
    let same_pairs = (0..n)
        .map(|i| labels[i + 1..].iter().filter(|&&l| l == labels[i]).count())
        .sum::<usize>();
    let diff_pairs = pairs - same_pairs;
    let (w_same, w_diff) = match config.weighting {
        PairWeighting::AllPairs => (1.0 / pairs as f64, 1.0 / pairs as f64),
        PairWeighting::Balanced => {
            if same_pairs == 0 || diff_pairs == 0 {
                return Err(NnError::Invalid(format!(
                    "{OP}: balanced weighting needs same- and different-identity pairs, got \
                     {same_pairs} and {diff_pairs} (labels {labels:?})"
                )));
            }
            (0.5 / same_pairs as f64, 0.5 / diff_pairs as f64)
        }
    };
    let pairwise = Pairwise::new(x, Distance::Euclidean);
    let d = &pairwise.d;
    // dE/dD over i < j; L = ½(D² − ε) gives dL/dD = D, L = ½(m − D)² gives −(m − D).
    let mut g = Array2::<f64>::zeros((n, n));
    let (mut value, mut active) = (0.0, 0);
    for i in 0..n {
        for j in i + 1..n {
            let dij = d[[i, j]];
            if labels[i] == labels[j] {
                value += w_same * 0.5 * (dij * dij - super::SQRT_EPS);
                g[[i, j]] = w_same * dij;
                active += usize::from(dij * dij > super::SQRT_EPS);
            } else if dij < margin {
                value += w_diff * 0.5 * (margin - dij).powi(2);
                g[[i, j]] = -w_diff * (margin - dij);
                active += 1;
            }
        }
    }
    let dx = pairwise.backward(x, &g);
    Ok(EmbeddingLoss::assemble(
        value,
        dx,
        d,
        labels,
        (pairs, active),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    /// 1-D: identity 0 at 0 and 1, identity 1 at 1.5 and 4 (distances as in the triplet
    /// tests: d01 = 1, d02 = 1.5, d03 = 4, d12 = 0.5, d13 = 3, d23 = 2.5).
    fn line() -> (Tensor, Vec<usize>) {
        let x = ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![0.0, 1.0, 1.5, 4.0]).unwrap();
        (x, vec![0, 0, 1, 1])
    }

    #[test]
    fn pairs_are_pulled_in_or_pushed_past_the_margin() {
        // m = 2: same pairs ½·1, ½·6.25; different pairs within 2: d02 = 1.5 → ½·0.25,
        // d12 = 0.5 → ½·2.25; the others are beyond. Sum 4.875 over 6 pairs.
        let (x, labels) = line();
        let cfg = ContrastiveConfig {
            margin: 2.0,
            weighting: PairWeighting::AllPairs,
        };
        let out = contrastive_loss(&x, &labels, &cfg).unwrap();
        assert!(
            (out.output.value - 4.875 / 6.0).abs() < 1e-6,
            "{}",
            out.output.value
        );
        assert_eq!((out.stats.terms, out.stats.active), (6, 4));
        // balanced: ½(3.625/2 + 1.25/4)
        let cfg = ContrastiveConfig {
            margin: 2.0,
            weighting: PairWeighting::Balanced,
        };
        let out = contrastive_loss(&x, &labels, &cfg).unwrap();
        assert!((out.output.value - 0.5 * (3.625 / 2.0 + 1.25 / 4.0)).abs() < 1e-6);
    }

    #[test]
    fn gradient_of_one_pair_by_hand() {
        // same identity at 0 and 3: E = ½·9, dE/dx = (−3, 3)
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![0.0, 3.0]).unwrap();
        let out = contrastive_loss(&x, &[7, 7], &ContrastiveConfig::default()).unwrap();
        assert!((out.output.value - 4.5).abs() < 1e-6);
        assert_eq!(out.output.grad.as_slice().unwrap(), &[-3.0, 3.0]);
        // different identities 0.5 apart, m = 1: E = ½·0.25, dE/dx₀ = +(m − D) = 0.5
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 1]), vec![0.0, 0.5]).unwrap();
        let out = contrastive_loss(&x, &[1, 2], &ContrastiveConfig::default()).unwrap();
        assert!((out.output.value - 0.125).abs() < 1e-6);
        let g = out.output.grad;
        assert!(
            (g[[0, 0]] - 0.5).abs() < 1e-6 && (g[[1, 0]] + 0.5).abs() < 1e-6,
            "{g:?}"
        );
    }

    #[test]
    fn invalid_batches_are_errors() {
        let one = Tensor::zeros(IxDyn(&[1, 3]));
        assert!(contrastive_loss(&one, &[0], &ContrastiveConfig::default()).is_err());
        let two = Tensor::zeros(IxDyn(&[2, 3]));
        let balanced = ContrastiveConfig {
            weighting: PairWeighting::Balanced,
            ..Default::default()
        };
        let err = contrastive_loss(&two, &[4, 4], &balanced)
            .unwrap_err()
            .to_string();
        assert!(err.contains("got 1 and 0"), "{err}");
        assert!(contrastive_loss(&two, &[4, 4], &ContrastiveConfig::default()).is_ok());
        let zero_margin = ContrastiveConfig {
            margin: 0.0,
            ..Default::default()
        };
        assert!(contrastive_loss(&two, &[1, 2], &zero_margin).is_err());
    }
}
