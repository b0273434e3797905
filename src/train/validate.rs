//! Per-epoch validation on the held-out identities, with the open-set protocol of
//! `eval` (the same one `eval-embed` runs): several seeded rounds, half the identities
//! known with up to [`VAL_ENROLL`] enrolled images each, the rest unknown.

use ndarray::{Array2, Axis, Ix2, s};

use super::error::{Result, TrainError};
use super::record::ValMetrics;
use crate::eval::{ProtocolConfig, open_set_protocol};
use crate::nn::Tensor;
use crate::nn::sequential::Sequential;

/// Protocol rounds per validation.
pub const VAL_ROUNDS: usize = 5;
/// Enrolled images per known identity (fewer when an identity has fewer images: the
/// protocol always keeps one probe).
pub const VAL_ENROLL: usize = 5;

/// The validation images and what the protocol needs about them.
#[derive(Debug, Clone, Copy)]
pub struct ValSet<'a> {
    /// (N, 1, H, W) preprocessed images.
    pub inputs: &'a Tensor,
    pub labels: &'a [usize],
    /// Seed of the protocol's rounds (fixed for a run, so epochs are comparable).
    pub seed: u64,
    /// Embed as the saved model will (see `ModelMeta::flip_average`).
    pub flip_average: bool,
}

/// Embeddings (N, K) of preprocessed inputs (N, 1, H, W), in eval mode, batched as
/// the server batches them (`model::embed_all`).
pub fn embed_all(net: &Sequential, inputs: &Tensor, flip_average: bool) -> Result<Array2<f32>> {
    let images = inputs
        .outer_iter()
        .map(|x| x.index_axis_move(Axis(0), 0).into_dimensionality::<Ix2>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| TrainError::Config(format!("validation inputs {:?}", inputs.shape())))?;
    if images.is_empty() {
        return Err(TrainError::Config("no validation images to embed".into()));
    }
    Ok(crate::model::embed_all(net, &images, flip_average)?)
}

/// Cosine similarities of every pair of rows i < j, split into (genuine, impostor) by
/// label. Rows are unit vectors (the network ends in an L2 normalisation).
pub fn pair_scores(embeddings: &Array2<f32>, labels: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let gram = embeddings.dot(&embeddings.t()); // (N, N)
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for i in 0..labels.len() {
        for (j, &s) in gram.slice(s![i, i + 1..]).iter().enumerate() {
            if labels[i] == labels[i + 1 + j] {
                genuine.push(s);
            } else {
                impostor.push(s);
            }
        }
    }
    (genuine, impostor)
}

/// Open-set metrics of `net` on the validation set.
pub fn evaluate(net: &Sequential, val: &ValSet<'_>) -> Result<ValMetrics> {
    let embeddings = embed_all(net, val.inputs, val.flip_average)?;
    let report = open_set_protocol(
        embeddings.view(),
        val.labels,
        &ProtocolConfig::rounds(val.seed, VAL_ROUNDS, VAL_ENROLL),
    )?;
    let (genuine, impostor) = pair_scores(&embeddings, val.labels);
    let (mg, vg) = mean_var(&genuine);
    let (mi, vi) = mean_var(&impostor);
    let spread = ((vg + vi) / 2.0).sqrt();
    let rate = |rates: &[crate::eval::protocol::RateAtFar], far: f64| {
        rates
            .iter()
            .find(|r| (r.far - far).abs() < 1e-12)
            .map_or(f32::NAN, |r| r.mean as f32)
    };
    Ok(ValMetrics {
        rank1: report.rank1.mean as f32,
        dir_far_1pct: rate(&report.dir_at_far, 0.01),
        dir_far_10pct: rate(&report.dir_at_far, 0.1),
        tar_far_0_1pct: rate(&report.tar_at_far, 0.001),
        tar_far_1pct: rate(&report.tar_at_far, 0.01),
        eer: report.eer.mean as f32,
        mean_genuine: mg as f32,
        mean_impostor: mi as f32,
        separation: if spread > 0.0 {
            ((mg - mi) / spread) as f32
        } else {
            0.0
        },
    })
}

/// Mean and (population) variance; (0, 0) for no values.
fn mean_var(v: &[f32]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var)
}
