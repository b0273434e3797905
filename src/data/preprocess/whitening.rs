//! PCA and ZCA whitening of the flattened `H·W` pixel vector, fitted on training images.
//!
//! With the training mean `μ` `(D,)`, the leading covariance eigenvectors as rows of
//! `U` `(K, D)`, their variances `λ` `(K,)` and the regulariser `ε`,
//! `s = 1 / sqrt(λ + ε)` `(K,)`:
//! - PCA whitening: `y = s ⊙ U (x − μ)`, a `(K,)` vector, returned as a `(1, K)` array
//!   (a one-row "image"): an MLP input. It has no spatial layout, so it is no input
//!   for a convolutional network.
//! - ZCA whitening: `y = Uᵀ diag(s) U (x − μ) + (I − UᵀU)(x − μ) / sqrt(ε)`, shape
//!   `(H, W)` like the input. This is exactly `C_ε^(-1/2) (x − μ)` with
//!   `C_ε = C + εI`: directions of zero training variance (outside the span of `U`) are
//!   scaled by `1/sqrt(ε)`, and storing `U` (`K ≤ N − 1` rows) instead of the `(D, D)`
//!   matrix keeps the model file small.
//!
//! On the training set the whitened covariance is `diag(λ / (λ + ε))` in the PCA basis:
//! the identity where `λ ≫ ε`.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use serde::{Deserialize, Serialize};

use super::stored::StoredArray;
use crate::data::error::{DataError, Result};
use crate::data::linalg::principal_components;

/// A fitted whitening transform; see the module documentation for the formulas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Whitening {
    /// Training mean `(D,)`.
    pub mean: StoredArray,
    /// Principal directions as rows, `(K, D)`.
    pub basis: StoredArray,
    /// Per-direction scale `1 / sqrt(λ + ε)`, `(K,)`.
    pub scale: StoredArray,
    /// The regulariser `ε`, in squared pixel units (pixels are in [0, 1]).
    pub eps: f32,
}

impl Whitening {
    /// Fits on training vectors `x` `(N, D)`, keeping at most `components` directions.
    pub fn fit(x: &Array2<f32>, components: usize, eps: f32) -> Result<Whitening> {
        if !(eps > 0.0 && eps.is_finite()) {
            return Err(DataError::Invalid(format!(
                "whitening epsilon must be positive and finite, got {eps}"
            )));
        }
        let pc = principal_components(&x.mapv(f64::from), components)?;
        let scale = pc
            .variances
            .mapv(|l| (1.0 / (l + f64::from(eps)).sqrt()) as f32);
        Ok(Whitening {
            mean: StoredArray(pc.mean.mapv(|v| v as f32).into_dyn()),
            basis: StoredArray(pc.basis.mapv(|v| v as f32).into_dyn()),
            scale: StoredArray(scale.into_dyn()),
            eps,
        })
    }

    /// Input dimension `D`.
    pub fn input_dim(&self) -> usize {
        self.mean.0.len()
    }

    /// Number of kept directions `K`.
    pub fn components(&self) -> usize {
        self.scale.0.len()
    }

    /// Checks that the stored arrays agree with each other and with `D` (after loading).
    pub fn validate(&self, d: usize) -> Result<()> {
        let k = self.components();
        if !(self.eps > 0.0 && self.eps.is_finite()) {
            return Err(DataError::Invalid(format!(
                "whitening epsilon must be positive and finite, got {}",
                self.eps
            )));
        }
        if self.mean.0.shape() != [d] {
            return Err(DataError::shape(
                "whitening mean",
                format!("[{d}]"),
                self.mean.0.shape(),
            ));
        }
        if self.basis.0.shape() != [k, d] {
            return Err(DataError::shape(
                "whitening basis",
                format!("[{k}, {d}]"),
                self.basis.0.shape(),
            ));
        }
        if self.scale.0.ndim() != 1 {
            return Err(DataError::shape(
                "whitening scale",
                "[K]",
                self.scale.0.shape(),
            ));
        }
        Ok(())
    }

    /// `(x − μ, U (x − μ))` for one `(D,)` vector.
    fn project(&self, x: ArrayView1<f32>) -> Result<(Array1<f32>, Array1<f32>)> {
        let d = self.input_dim();
        self.validate(d)?;
        if x.len() != d {
            return Err(DataError::shape(
                "whitening input",
                format!("[{d}]"),
                &[x.len()],
            ));
        }
        let basis = self
            .basis
            .0
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| DataError::Invalid(format!("whitening basis: {e}")))?;
        let centred = &x
            - &self
                .mean
                .0
                .view()
                .into_shape_with_order(d)
                .map_err(|e| DataError::Invalid(format!("whitening mean: {e}")))?;
        let coords = basis.dot(&centred);
        Ok((centred, coords))
    }

    /// PCA whitening of one `(D,)` vector: `(K,)`.
    pub fn pca(&self, x: ArrayView1<f32>) -> Result<Array1<f32>> {
        let (_, coords) = self.project(x)?;
        Ok(coords * &self.scale_1d())
    }

    /// ZCA whitening of one `(D,)` vector: `(D,)`.
    pub fn zca(&self, x: ArrayView1<f32>) -> Result<Array1<f32>> {
        let (centred, coords) = self.project(x)?;
        let outside = 1.0 / self.eps.sqrt();
        let weights = coords * &self.scale_1d().mapv(|s| s - outside);
        let basis = self
            .basis
            .0
            .view()
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| DataError::Invalid(format!("whitening basis: {e}")))?;
        Ok(centred * outside + basis.t().dot(&weights))
    }

    fn scale_1d(&self) -> Array1<f32> {
        self.scale.0.iter().copied().collect()
    }
}

/// Stacks `(H, W)` images into rows of an `(N, H·W)` matrix.
pub fn flatten_rows(images: &[Array2<f32>]) -> Result<Array2<f32>> {
    let d = images.first().map_or(0, |i| i.len());
    let mut out = Array2::<f32>::zeros((images.len(), d));
    for (mut row, image) in out.axis_iter_mut(Axis(0)).zip(images) {
        if image.len() != d {
            return Err(DataError::shape(
                "image",
                format!("{d} pixels"),
                image.shape(),
            ));
        }
        row.iter_mut().zip(image.iter()).for_each(|(o, &v)| *o = v);
    }
    Ok(out)
}
