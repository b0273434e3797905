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
        let net = self.embed_preprocessed(&inputs)?;
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
