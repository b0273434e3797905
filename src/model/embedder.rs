//! Batched inference for the server and the evaluation tools.

use std::path::Path;

use image::DynamicImage;
use ndarray::{Array2, Axis};
use rayon::prelude::*;

use super::ModelError;
use super::file::ModelFile;
use super::meta::{ModelMeta, Thresholds};
use crate::nn::Tensor;

/// Images per forward pass: large enough to keep the GEMMs efficient, small enough to
/// bound memory for a request with many images.
const BATCH: usize = 64;

/// A loaded model that turns face images into unit-length embeddings. Inference goes
/// through `&self`, so one `Embedder` serves many threads.
#[derive(Debug)]
pub struct Embedder {
    model: ModelFile,
}

impl Embedder {
    pub fn new(model: ModelFile) -> Self {
        Embedder { model }
    }

    pub fn load(path: impl AsRef<Path>) -> Result<Self, ModelError> {
        ModelFile::load(path.as_ref()).map(Self::new)
    }

    /// The model version (hash of the weights) stored with every embedding.
    pub fn version(&self) -> &str {
        &self.model.meta.version
    }

    pub fn dim(&self) -> usize {
        self.model.meta.embedding_dim
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.model.meta.thresholds
    }

    pub fn meta(&self) -> &ModelMeta {
        &self.model.meta
    }

    /// Embeds decoded images: each is preprocessed exactly as in training, then run
    /// through the network in batches. The i-th embedding belongs to the i-th image.
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
        self.embed_preprocessed(&inputs)
    }

    /// Embeds images that went through the model's preprocessing already, each (H, W).
    pub fn embed_preprocessed(&self, inputs: &[Array2<f32>]) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(BATCH) {
            let views: Vec<_> = chunk
                .iter()
                .map(|a| a.view().insert_axis(Axis(0)))
                .collect();
            let batch = ndarray::stack(Axis(0), &views)
                .map_err(|e| ModelError::Unsupported(format!("inputs of different sizes: {e}")))?;
            let batch: Tensor = batch.into_dyn();
            let emb = super::embed_batch(&self.model.net, &batch, self.model.meta.flip_average)?;
            out.extend(emb.outer_iter().map(|row| row.to_vec()));
        }
        Ok(out)
    }
}
