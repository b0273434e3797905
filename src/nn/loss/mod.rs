//! Losses: each returns its value and the gradient with respect to its input.
//!
//! Reductions (all match PyTorch's `reduction="mean"` over the batch, except where noted):
//! - [`softmax_cross_entropy`]: mean over the N rows (`F.cross_entropy`).
//! - [`squared_error()`]: (1/N) Σᵢ ½‖dᵢ − yᵢ‖², a mean over rows of a *sum* over features
//!   (`0.5 * ((d - y)**2).sum(1).mean()`, not `F.mse_loss`, which averages features too
//!   and drops the ½).
//! - [`triplet_loss`]: depends on the mining (see [`Mining`]).
//! - [`contrastive_loss`]: mean over pairs (see [`PairWeighting`]).
//!
//! Inputs are `(N, K)` matrices (logits or embeddings) with one label per row. Wrong
//! shapes, empty batches, out-of-range classes and non-finite inputs are errors. The
//! arithmetic runs in f64 and the gradient is returned in f32.

mod contrastive;
mod cross_entropy;
mod distance;
mod squared_error;
mod triplet;

#[cfg(test)]
mod grad_check;

pub use contrastive::{ContrastiveConfig, PairWeighting, contrastive_loss};
pub use cross_entropy::softmax_cross_entropy;
pub use distance::{Distance, SQRT_EPS};
pub use squared_error::squared_error;
pub use triplet::{Mining, TripletConfig, triplet_loss};

use ndarray::{Array2, ArrayView2, Ix2};

use super::{NnError, Result, Tensor};

/// A loss value (mean over the batch unless a loss says otherwise) and dE/d(input),
/// with the input's shape.
#[derive(Debug, Clone)]
pub struct LossOutput {
    pub value: f32,
    pub grad: Tensor,
}

/// An embedding loss with what is worth logging about the batch.
#[derive(Debug, Clone)]
pub struct EmbeddingLoss {
    pub output: LossOutput,
    pub stats: PairStats,
}

impl EmbeddingLoss {
    /// Packs an f64 value and gradient `(N, K)` with the statistics of the batch whose
    /// pairwise distances are `d` `(N, N)`.
    pub(crate) fn assemble(
        value: f64,
        grad: Array2<f64>,
        d: &Array2<f64>,
        labels: &[usize],
        (terms, active): (usize, usize),
    ) -> Self {
        let (mean_positive, mean_negative) = pair_means(d, labels);
        EmbeddingLoss {
            output: LossOutput {
                value: value as f32,
                grad: grad.mapv(|v| v as f32).into_dyn(),
            },
            stats: PairStats {
                terms,
                active,
                fraction_active: active as f32 / terms.max(1) as f32,
                mean_positive,
                mean_negative,
            },
        }
    }
}

/// Statistics of one embedding-loss evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairStats {
    /// Terms the loss averages over: valid triplets (`Mining::All`), anchors
    /// (`BatchHard`), anchor–positive pairs (`SemiHard`), or pairs (contrastive).
    pub terms: usize,
    /// Terms with a positive loss, i.e. that contribute a gradient.
    pub active: usize,
    /// `active / terms`.
    pub fraction_active: f32,
    /// Mean distance (in the loss's own distance) over same-identity pairs i < j,
    /// `None` if the batch has none.
    pub mean_positive: Option<f32>,
    /// Mean distance over different-identity pairs i < j, `None` if there are none.
    pub mean_negative: Option<f32>,
}

/// Checks an `(N, K)` batch with `labels` rows: two axes, N ≥ 1, K ≥ 1, N equal to the
/// number of labels, every element finite.
pub(crate) fn batch_matrix<'a>(
    op: &'static str,
    x: &'a Tensor,
    labels: usize,
) -> Result<ArrayView2<'a, f32>> {
    let view = x
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| NnError::shape(op, "(N, K)", x.shape()))?;
    let (n, k) = view.dim();
    if n == 0 || k == 0 {
        return Err(NnError::shape(op, "(N, K) with N ≥ 1 and K ≥ 1", x.shape()));
    }
    if n != labels {
        return Err(NnError::Invalid(format!(
            "{op}: {n} rows but {labels} labels"
        )));
    }
    if let Some((i, v)) = view.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(NnError::Invalid(format!(
            "{op}: input element {i} is {v}, not finite"
        )));
    }
    Ok(view)
}

/// Mean distance over same-identity pairs i < j and over different-identity pairs.
fn pair_means(d: &Array2<f64>, labels: &[usize]) -> (Option<f32>, Option<f32>) {
    let (mut same, mut diff) = ((0.0, 0_usize), (0.0, 0_usize));
    for i in 0..labels.len() {
        for j in i + 1..labels.len() {
            let bucket = if labels[i] == labels[j] {
                &mut same
            } else {
                &mut diff
            };
            bucket.0 += d[[i, j]];
            bucket.1 += 1;
        }
    }
    let mean = |(sum, count): (f64, usize)| (count > 0).then(|| (sum / count as f64) as f32);
    (mean(same), mean(diff))
}
