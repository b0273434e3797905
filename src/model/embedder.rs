//! Batched inference for the server and the evaluation tools.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use image::DynamicImage;
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use super::ModelError;
use super::file::ModelFile;
use super::meta::{ModelMeta, Thresholds};
use crate::batch::{BatchConfig, Batcher, Job};
use crate::nn::Tensor;

/// Images per forward pass: large enough to keep the GEMMs efficient, small enough to
/// bound memory for a request with many images.
const BATCH: usize = 64;

/// Callers whose images share one forward pass ([`Embedder::embed`]). On the 2-core
/// machine of BENCHMARKS.md the default network embeds about twice as many images a
/// second at batch 4 as at batch 1; a batch of 8 callers keeps the wait of the last
/// one short.
const SHARED_CALLERS: usize = 8;

/// One caller's preprocessed images, waiting for a forward pass.
type Pending = Arc<Vec<Array2<f32>>>;
/// Its embeddings, or the pass's error (as text: every caller of the pass gets it).
type Answer = Result<Vec<Vec<f32>>, String>;

/// A loaded model that turns face images into unit-length embeddings. Inference goes
/// through `&self`, so one `Embedder` serves many threads; the network runs one forward
/// pass at a time, for every caller waiting when it starts (`crate::batch`).
pub struct Embedder {
    model: ModelFile,
    shared: Batcher<Pending, Answer>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    pub fn new(model: ModelFile) -> Self {
        Embedder {
            model,
            shared: Batcher::new(BatchConfig {
                max: SHARED_CALLERS,
                window: Duration::ZERO,
            }),
        }
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        ModelFile::load(path.as_ref()).map(Self::new)
    }

    /// The model version (hash of the weights) stored with every embedding.
    pub fn version(&self) -> &str {
        &self.model.meta.version
    }

    /// Length of the embeddings: the network's, plus the descriptor branch's.
    pub fn dim(&self) -> usize {
        self.model.meta.output_dim()
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.model.meta.thresholds
    }

    pub fn meta(&self) -> &ModelMeta {
        &self.model.meta
    }

    /// Embeds decoded images: each is preprocessed exactly as in training, then run
    /// through the network in batches, together with the images of other threads
    /// embedding at the same time. The i-th embedding belongs to the i-th image.
    pub fn embed(&self, images: &[DynamicImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        let pre = &self.model.meta.preprocessing;
        let inputs = images
            .par_iter()
            .enumerate()
            .map(|(index, img)| {
                pre.apply(img).map_err(|e| ModelError::Image {
                    index,
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let net = self.embed_shared(inputs)?;
        let Some(lbp) = &self.model.lbp else {
            return Ok(net);
        };
        // The fused embedding [√w · e_net, √(1−w) · e_lbp] (model::lbp).
        let grey: Vec<_> = images.par_iter().map(|img| img.to_luma8()).collect();
        let described = lbp.embed(&grey);
        let (a, b) = (lbp.spec.weight.sqrt(), (1.0 - lbp.spec.weight).sqrt());
        Ok(net
            .into_iter()
            .zip(described.outer_iter())
            .map(|(n, d)| {
                n.iter()
                    .map(|v| a * v)
                    .chain(d.iter().map(|v| b * v))
                    .collect()
            })
            .collect())
    }

    /// Embeds images that went through the model's preprocessing already, each (H, W):
    /// the network's embeddings only (the descriptor branch needs the crop itself).
    pub fn embed_preprocessed(&self, inputs: &[Array2<f32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
        self.forward(&views)
    }

    /// [`Self::embed_preprocessed`] in one forward pass with every other caller's
    /// images waiting when it starts; each caller gets its own embeddings back.
    ///
    /// A caller on a rayon worker thread (a parallel loop embedding part by part, as the
    /// bulk import does) runs its own pass instead: a worker blocked waiting for another
    /// thread's pass could not take part in it, and every pass would run on one core.
    fn embed_shared(&self, inputs: Vec<Array2<f32>>) -> Result<Vec<Vec<f32>>, ModelError> {
        if rayon::current_thread_index().is_some() {
            return self.embed_preprocessed(&inputs);
        }
        let run = |jobs: &[Job<Pending>]| -> Vec<Answer> {
            let views: Vec<_> = jobs
                .iter()
                .flat_map(|j| j.query.iter().map(|a| a.view()))
                .collect();
            match self.forward(&views) {
                Ok(all) => {
                    let mut all = all.into_iter();
                    jobs.iter()
                        .map(|j| Ok(all.by_ref().take(j.query.len()).collect()))
                        .collect()
                }
                Err(e) => jobs.iter().map(|_| Err(e.to_string())).collect(),
            }
        };
        self.shared
            .submit(Arc::new(inputs), run)
            .map_err(ModelError::Inference)
    }

    /// The network's embeddings of `inputs`, each (H, W), in passes of [`BATCH`].
    fn forward(&self, inputs: &[ArrayView2<'_, f32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(BATCH) {
            let views: Vec<_> = chunk.iter().map(|a| a.insert_axis(Axis(0))).collect();
            let batch = ndarray::stack(Axis(0), &views)
                .map_err(|e| ModelError::Unsupported(format!("inputs of different sizes: {e}")))?;
            let batch: Tensor = batch.into_dyn();
            let emb = super::embed_batch(&self.model.net, &batch, self.model.meta.flip_average)?;
            out.extend(emb.outer_iter().map(|row| row.to_vec()));
        }
        Ok(out)
    }
}
