//! TEMPORARY stand-in for `crate::model::Embedder` (same API) until the model module
//! lands: a normalised 24×24 thumbnail, so that the server can be built and tested.

use std::path::Path;

use sha2::{Digest, Sha256};

const SIDE: u32 = 24;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {path}: {reason}")]
    Read { path: String, reason: String },
}

#[derive(Clone, Debug)]
pub struct Thresholds {
    pub far_0_1pct: f32,
    pub far_1pct: f32,
    pub far_10pct: f32,
}

pub struct Embedder {
    version: String,
    thresholds: Thresholds,
}

impl Embedder {
    pub fn load(path: impl AsRef<Path>) -> Result<Embedder, ModelError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| ModelError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Embedder {
            version: hex::encode(&Sha256::digest(&bytes)[..8]),
            thresholds: Thresholds {
                far_0_1pct: 0.9,
                far_1pct: 0.8,
                far_10pct: 0.7,
            },
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn dim(&self) -> usize {
        (SIDE * SIDE) as usize
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    pub fn embed(&self, images: &[image::DynamicImage]) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(images
            .iter()
            .map(|img| {
                let grey = img
                    .resize_exact(SIDE, SIDE, image::imageops::FilterType::Triangle)
                    .to_luma32f();
                let mut v: Vec<f32> = grey.into_raw();
                let mean = v.iter().sum::<f32>() / v.len() as f32;
                v.iter_mut().for_each(|x| *x -= mean);
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect())
    }
}
