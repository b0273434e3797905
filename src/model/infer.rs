//! The one place a batch of preprocessed faces becomes embeddings, so the trainer's
//! validation, `eval-embed` and the server embed exactly alike.

use ndarray::{Array2, ArrayView2, Axis, Ix2, s};

use crate::nn::Tensor;
use crate::nn::error::NnError;
use crate::nn::sequential::Sequential;

/// Images per forward pass when embedding many: large enough to keep the GEMMs
/// efficient, small enough to bound the memory of a request with many images.
pub const BATCH: usize = 64;

/// [`embed_batch`] over preprocessed images, each `(H, W)`, in passes of `BATCH`:
/// row `i` of the `(N, K)` result is image `i`'s embedding.
pub fn embed_all(
    net: &Sequential,
    inputs: &[ArrayView2<'_, f32>],
    flip_average: bool,
) -> Result<Array2<f32>, NnError> {
    let mut rows = Vec::with_capacity(inputs.len().div_ceil(BATCH));
    for chunk in inputs.chunks(BATCH) {
        let views: Vec<_> = chunk.iter().map(|a| a.insert_axis(Axis(0))).collect();
        let batch = ndarray::stack(Axis(0), &views)
            .map_err(|e| NnError::Invalid(format!("inputs of different sizes: {e}")))?;
        rows.push(embed_batch(net, &batch.into_dyn(), flip_average)?);
    }
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    match views.is_empty() {
        true => Err(NnError::Invalid("no images to embed".into())),
        false => ndarray::concatenate(Axis(0), &views).map_err(|e| NnError::Invalid(e.to_string())),
    }
}

/// Unit-length embeddings `(N, K)` of a preprocessed batch `(N, 1, H, W)`, in inference
/// mode. With `flip_average`, each face is also embedded mirrored left–right and the
/// result is the normalised sum of the two: faces are close to symmetric, and the
/// average of two views is a steadier description of one face than either view.
pub fn embed_batch(
    net: &Sequential,
    batch: &Tensor,
    flip_average: bool,
) -> Result<Array2<f32>, NnError> {
    let mut emb = as_matrix(net.infer(batch)?)?;
    if flip_average {
        let mirrored = batch.slice(s![.., .., .., ..;-1]).to_owned().into_dyn();
        emb += &as_matrix(net.infer(&mirrored)?)?;
    }
    for mut row in emb.axis_iter_mut(Axis(0)) {
        let norm = row
            .iter()
            .map(|&x| f64::from(x) * f64::from(x))
            .sum::<f64>()
            .sqrt();
        if norm > 0.0 {
            row.mapv_inplace(|x| (f64::from(x) / norm) as f32);
        }
    }
    Ok(emb)
}

fn as_matrix(t: Tensor) -> Result<Array2<f32>, NnError> {
    let shape = t.shape().to_vec();
    t.into_dimensionality::<Ix2>()
        .map_err(|_| NnError::shape("embedding", "(N, K)", &shape))
}
