//! The few dense linear-algebra routines the data pipeline and the classical baselines
//! need: symmetric eigen-decomposition (through `nalgebra`) and principal components.
//!
//! Computed in `f64`: pixel covariances have eigenvalues spanning many decades, and the
//! small ones decide whitening scales.

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, Axis};

use super::error::{DataError, Result};

/// Eigen-decomposition of a symmetric `(n, n)` matrix: eigenvalues in descending order
/// and the matching unit eigenvectors as the *columns* of the `(n, n)` second result.
pub fn symmetric_eigen(a: &Array2<f64>) -> Result<(Array1<f64>, Array2<f64>)> {
    let (n, m) = a.dim();
    if n != m {
        return Err(DataError::shape("symmetric_eigen", "(n, n)", &[n, m]));
    }
    if a.iter().any(|v| !v.is_finite()) {
        return Err(DataError::Invalid(
            "symmetric_eigen: matrix has non-finite entries".into(),
        ));
    }
    let matrix = DMatrix::from_fn(n, n, |i, j| 0.5 * (a[[i, j]] + a[[j, i]]));
    let eigen = SymmetricEigen::new(matrix);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| eigen.eigenvalues[j].total_cmp(&eigen.eigenvalues[i]));
    let values = Array1::from_iter(order.iter().map(|&i| eigen.eigenvalues[i]));
    let vectors = Array2::from_shape_fn((n, n), |(r, c)| eigen.eigenvectors[(r, order[c])]);
    Ok((values, vectors))
}

/// Principal components of the rows of `x` `(N, D)`.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Row mean `(D,)`.
    pub mean: Array1<f64>,
    /// Covariance eigenvalues (population, `1/N`), descending, `(K,)`.
    pub variances: Array1<f64>,
    /// Orthonormal directions as rows, `(K, D)`.
    pub basis: Array2<f64>,
}

/// The at most `max_components` leading principal components of `x` `(N, D)`, leaving
/// out directions whose variance is below `1e-10` × the largest (numerically zero).
///
/// When `N < D` the `(N, N)` Gram matrix is decomposed instead of the `(D, D)`
/// covariance (same non-zero spectrum; `u = Xcᵀ v / sqrt(N λ)`), so fitting on a few
/// hundred faces never builds a 2688×2688 problem.
pub fn principal_components(x: &Array2<f64>, max_components: usize) -> Result<Principal> {
    let (n, d) = x.dim();
    if n < 2 {
        return Err(DataError::Invalid(format!(
            "principal components need at least 2 samples, got {n}"
        )));
    }
    let mean = x
        .mean_axis(Axis(0))
        .ok_or_else(|| DataError::Invalid("no samples".into()))?;
    let centred = x - &mean;
    let nf = n as f64;
    let (values, basis) = if n < d {
        let gram = centred.dot(&centred.t()) / nf;
        let (values, v) = symmetric_eigen(&gram)?;
        // Columns of Xcᵀ V are the covariance eigenvectors scaled by sqrt(N λ).
        let u = centred.t().dot(&v); // (D, N)
        let mut basis = u.reversed_axes(); // (N, D)
        for (mut row, &lambda) in basis.outer_iter_mut().zip(values.iter()) {
            let norm = (nf * lambda.max(0.0)).sqrt();
            if norm > 0.0 {
                row /= norm;
            }
        }
        (values, basis)
    } else {
        let cov = centred.t().dot(&centred) / nf;
        let (values, u) = symmetric_eigen(&cov)?;
        (values, u.reversed_axes())
    };
    let largest = values.first().copied().unwrap_or(0.0).max(0.0);
    let keep = values
        .iter()
        .take(max_components)
        .take_while(|&&v| v > largest * 1e-10 && v > 0.0)
        .count();
    Ok(Principal {
        mean,
        variances: values.slice(ndarray::s![..keep]).to_owned(),
        basis: basis.slice(ndarray::s![..keep, ..]).to_owned(),
    })
}
