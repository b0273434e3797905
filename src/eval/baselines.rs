//! Classical baselines that produce embeddings, so the same metrics judge them and a
//! trained network alike. Inputs are preprocessed images flattened to rows `(N, D)`
//! ([`flatten`]); outputs are L2-normalised embeddings `(N, K)`.
//!
//! - [`RawPixels`]: the preprocessed pixels themselves (`K = D`).
//! - [`Eigenfaces`]: projection on the leading `K` principal components of a training
//!   set (Turk & Pentland 1991).
//! - [`Fisherfaces`]: PCA to `N − c` dimensions (or fewer), then LDA to `c − 1` (Belhumeur,
//!   Hespanha & Kriegman 1997), for `N` training images of `c` identities. The LDA step
//!   solves `S_b v = λ S_w v` by whitening `S_w = Q Λ Qᵀ` (`W₁ = Q Λ^(−1/2)`, dropping
//!   directions with `λ ≤ 1e−10 λ_max`) and decomposing `W₁ᵀ S_b W₁`.

use ndarray::{Array1, Array2, Array4, ArrayView2, Axis};

use super::error::{EvalError, Result};
use super::scores::normalised;
use crate::data::linalg::{principal_components, symmetric_eigen};

/// `(N, C, H, W)` → `(N, C·H·W)`, row-major per image.
pub fn flatten(batch: &Array4<f32>) -> Result<Array2<f32>> {
    let n = batch.shape()[0];
    let d: usize = batch.shape()[1..].iter().product();
    batch
        .as_standard_layout()
        .to_owned()
        .into_shape_with_order((n, d))
        .map_err(|e| EvalError::Invalid(format!("flatten {:?}: {e}", batch.shape())))
}

/// Raw pixels as the embedding.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawPixels;

impl RawPixels {
    /// `(N, D)` → L2-normalised `(N, D)`.
    pub fn embed(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        normalised(x, "raw-pixel")
    }
}

/// A linear projection `y = normalise(Pᵀ (x − μ))`, shared by the two subspace methods.
#[derive(Debug, Clone)]
struct Projection {
    /// `(D,)`.
    mean: Array1<f32>,
    /// `(D, K)`.
    matrix: Array2<f32>,
}

impl Projection {
    fn embed(&self, x: ArrayView2<f32>, what: &str) -> Result<Array2<f32>> {
        if x.ncols() != self.mean.len() {
            return Err(EvalError::mismatch(
                "input dimension",
                self.mean.len(),
                x.ncols(),
            ));
        }
        normalised((&x - &self.mean).dot(&self.matrix).view(), what)
    }
}

/// Eigenfaces: the leading principal components of the training set.
#[derive(Debug, Clone)]
pub struct Eigenfaces(Projection);

impl Eigenfaces {
    /// Fits on training rows `(N, D)`, keeping at most `components` directions.
    pub fn fit(x: ArrayView2<f32>, components: usize) -> Result<Eigenfaces> {
        let pc = principal_components(&x.mapv(f64::from), components)?;
        Ok(Eigenfaces(Projection {
            mean: pc.mean.mapv(|v| v as f32),
            matrix: pc.basis.t().mapv(|v| v as f32),
        }))
    }

    /// Embedding dimension `K`.
    pub fn dim(&self) -> usize {
        self.0.matrix.ncols()
    }

    /// `(N, D)` → L2-normalised `(N, K)`.
    pub fn embed(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.0.embed(x, "eigenfaces")
    }
}

/// Fisherfaces: PCA to `N − c`, then LDA to `c − 1` dimensions.
#[derive(Debug, Clone)]
pub struct Fisherfaces(Projection);

impl Fisherfaces {
    /// Fits on training rows `(N, D)` with identity `labels`; needs `c ≥ 2` identities
    /// and `N > c` images. The PCA step keeps `N − c` dimensions (the original method)
    /// or, with `pca_components`, at most that many: on identities never seen in
    /// training the full `N − c` overfits the training identities (measured in
    /// BENCHMARKS.md).
    pub fn fit(
        x: ArrayView2<f32>,
        labels: &[usize],
        pca_components: Option<usize>,
    ) -> Result<Fisherfaces> {
        if x.nrows() != labels.len() {
            return Err(EvalError::mismatch("labels", x.nrows(), labels.len()));
        }
        let mut classes = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        let (n, c) = (x.nrows(), classes.len());
        if c < 2 || n <= c {
            return Err(EvalError::Invalid(format!(
                "Fisherfaces needs at least 2 identities and more images than identities, \
                 got {n} images of {c} identities"
            )));
        }
        let pca = pca_components.map_or(n - c, |k| k.min(n - c));
        let pc = principal_components(&x.mapv(f64::from), pca)?;
        let y = (&x.mapv(f64::from) - &pc.mean).dot(&pc.basis.t()); // (N, K), zero mean
        let k = y.ncols();
        let mut sw = Array2::<f64>::zeros((k, k));
        let mut sb = Array2::<f64>::zeros((k, k));
        for &class in &classes {
            let rows: Vec<usize> = (0..n).filter(|&i| labels[i] == class).collect();
            let members = y.select(Axis(0), &rows);
            let mean = members
                .mean_axis(Axis(0))
                .unwrap_or_else(|| Array1::zeros(k));
            let centred = &members - &mean;
            sw += &centred.t().dot(&centred);
            let m = mean.view().insert_axis(Axis(1));
            sb += &(m.dot(&m.t()) * rows.len() as f64);
        }
        let (lambda, q) = symmetric_eigen(&sw)?;
        let floor = lambda.first().copied().unwrap_or(0.0) * 1e-10;
        let kept: Vec<usize> = (0..k)
            .filter(|&i| lambda[i] > floor && lambda[i] > 0.0)
            .collect();
        let mut w1 = q.select(Axis(1), &kept);
        for (mut col, &i) in w1.axis_iter_mut(Axis(1)).zip(&kept) {
            col /= lambda[i].sqrt();
        }
        let (_, p) = symmetric_eigen(&w1.t().dot(&sb).dot(&w1))?;
        let dims = (c - 1).min(p.ncols());
        let lda = w1.dot(&p.slice(ndarray::s![.., ..dims])); // (K, c − 1)
        Ok(Fisherfaces(Projection {
            mean: pc.mean.mapv(|v| v as f32),
            matrix: pc.basis.t().dot(&lda).mapv(|v| v as f32),
        }))
    }

    /// Embedding dimension (`c − 1`).
    pub fn dim(&self) -> usize {
        self.0.matrix.ncols()
    }

    /// `(N, D)` → L2-normalised `(N, c − 1)`.
    pub fn embed(&self, x: ArrayView2<f32>) -> Result<Array2<f32>> {
        self.0.embed(x, "fisherfaces")
    }
}
