//! Pairwise distances between the rows of an embedding batch, with their backward.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// ε inside the square root of the Euclidean distance: D = √(‖xᵢ − xⱼ‖² + ε). Without
/// it, dD/dx = (xᵢ − xⱼ)/D is 0/0 for coincident embeddings (and every embedding
/// coincides with itself); with it the gradient there is 0. It adds at most √ε = 1e-6
/// to a distance.
pub const SQRT_EPS: f64 = 1e-12;

/// The distance an embedding loss compares with its margin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// D = √(‖xᵢ − xⱼ‖² + ε), see [`SQRT_EPS`].
    #[default]
    Euclidean,
    /// D = ‖xᵢ − xⱼ‖² (FaceNet's choice).
    Squared,
}

/// All N² distances of a batch `(N, K)`, in f64.
#[derive(Debug, Clone)]
pub(crate) struct Pairwise {
    kind: Distance,
    /// (N, N) the distances D.
    pub(crate) d: Array2<f64>,
}

impl Pairwise {
    pub(crate) fn new(x: ArrayView2<f32>, kind: Distance) -> Self {
        let n = x.nrows();
        let mut d = Array2::<f64>::zeros((n, n));
        for i in 0..n {
            for j in i + 1..n {
                // Differences, not ‖x‖² + ‖y‖² − 2⟨x, y⟩: no cancellation for close pairs.
                let sq: f64 = x
                    .row(i)
                    .iter()
                    .zip(x.row(j))
                    .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
                    .sum();
                let dist = match kind {
                    Distance::Euclidean => (sq + SQRT_EPS).sqrt(),
                    Distance::Squared => sq,
                };
                d[[i, j]] = dist;
                d[[j, i]] = dist;
            }
            d[[i, i]] = match kind {
                Distance::Euclidean => SQRT_EPS.sqrt(),
                Distance::Squared => 0.0,
            };
        }
        Pairwise { kind, d }
    }

    /// dE/dx `(N, K)` given dE/dD `(N, N)`. Entry (i, j) and entry (j, i) are the same
    /// distance, so both contribute: dE/dxᵢ = Σⱼ (Gᵢⱼ + Gⱼᵢ) · ∂Dᵢⱼ/∂xᵢ, with
    /// ∂Dᵢⱼ/∂xᵢ = 2(xᵢ − xⱼ) (squared) or (xᵢ − xⱼ)/Dᵢⱼ (Euclidean).
    pub(crate) fn backward(&self, x: ArrayView2<f32>, g: &Array2<f64>) -> Array2<f64> {
        let (n, k) = x.dim();
        let mut dx = Array2::<f64>::zeros((n, k));
        for i in 0..n {
            for j in 0..n {
                let gij = g[[i, j]] + g[[j, i]];
                if i == j || gij == 0.0 {
                    continue;
                }
                let c = gij
                    * match self.kind {
                        Distance::Squared => 2.0,
                        Distance::Euclidean => 1.0 / self.d[[i, j]],
                    };
                for ((o, &a), &b) in dx.row_mut(i).iter_mut().zip(x.row(i)).zip(x.row(j)) {
                    *o += c * (f64::from(a) - f64::from(b));
                }
            }
        }
        dx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn distances_of_a_three_four_five_triangle() {
        let x = array![[0.0_f32, 0.0], [3.0, 4.0]];
        let e = Pairwise::new(x.view(), Distance::Euclidean);
        let s = Pairwise::new(x.view(), Distance::Squared);
        assert!((e.d[[0, 1]] - 5.0).abs() < 1e-9 && (s.d[[1, 0]] - 25.0).abs() < 1e-12);
    }

    #[test]
    fn coincident_points_have_a_zero_gradient() {
        let x = array![[1.0_f32, 2.0], [1.0, 2.0]];
        let p = Pairwise::new(x.view(), Distance::Euclidean);
        let dx = p.backward(x.view(), &Array2::ones((2, 2)));
        assert!(dx.iter().all(|&v| v == 0.0), "{dx:?}");
    }
}
