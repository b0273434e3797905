//! Batched inference for the server and the evaluation tools: grey face crops in,
//! [`Embedding`]s out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use image::GrayImage;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use super::ModelError;
use super::file::ModelFile;
use super::meta::{ModelMeta, Thresholds};
use crate::batch::{BatchConfig, Batcher, Job};
use crate::embedding::Embedding;

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

    /// Embeds grey face crops, the one entry of every caller (the server, `eval-embed`,
    /// the tests): each is preprocessed exactly as in training, then run through the
    /// network in batches, together with the crops of other threads embedding at the
    /// same time. The i-th embedding belongs to the i-th face; each is checked to be
    /// finite and unit length here, where it is made.
    pub fn embed(&self, faces: &[GrayImage]) -> Result<Vec<Embedding>, ModelError> {
        if faces.is_empty() {
            return Ok(Vec::new());
        }
        let pre = &self.model.meta.preprocessing;
        let inputs = faces
            .par_iter()
            .enumerate()
            .map(|(index, face)| {
                pre.apply_grey(face).map_err(|e| ModelError::Image {
                    index,
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let net = self.embed_shared(inputs)?;
        let rows: Vec<Vec<f32>> = match &self.model.lbp {
            None => net,
            Some(lbp) => {
                // The fused embedding [√w · e_net, √(1−w) · e_lbp] (model::lbp).
                let described = lbp.embed(faces);
                let (a, b) = (lbp.spec.weight.sqrt(), (1.0 - lbp.spec.weight).sqrt());
                net.into_iter()
                    .zip(described.outer_iter())
                    .map(|(n, d)| {
                        n.iter()
                            .map(|v| a * v)
                            .chain(d.iter().map(|v| b * v))
                            .collect()
                    })
                    .collect()
            }
        };
        rows.into_iter()
            .enumerate()
            .map(|(index, row)| {
                Embedding::new(row).map_err(|e| {
                    ModelError::Inference(format!("face {index}: the model's output: {e}"))
                })
            })
            .collect()
    }

    /// The network's embeddings of preprocessed images, each (H, W), in this thread.
    fn embed_preprocessed(&self, inputs: &[Array2<f32>]) -> Result<Vec<Vec<f32>>, ModelError> {
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

    /// The network's embeddings of `inputs`, each (H, W) (`model::embed_all`).
    fn forward(&self, inputs: &[ArrayView2<'_, f32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let emb = super::embed_all(&self.model.net, inputs, self.model.meta.flip_average)?;
        Ok(emb.outer_iter().map(|row| row.to_vec()).collect())
    }
}
