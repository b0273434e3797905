//! Decoding and embedding uploaded images, off the async runtime.

use super::decode::{decode_image, sha256_hex};
use super::error::ApiError;
use super::state::AppState;

/// One uploaded image after inference.
pub struct EmbeddedImage {
    /// Unit-length embedding, `dim` values.
    pub embedding: Vec<f32>,
    /// Hex SHA-256 of the uploaded bytes.
    pub sha256: String,
    /// The uploaded bytes themselves.
    pub bytes: Vec<u8>,
}

/// Decode every image (under the configured limits) and embed them as one batch, on the
/// blocking pool. Errors name the image by its position in the request.
pub async fn embed_images(
    state: &AppState,
    images: Vec<Vec<u8>>,
) -> Result<Vec<EmbeddedImage>, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let limits = &state.settings.limits;
        let decoded = images
            .iter()
            .enumerate()
            .map(|(i, bytes)| decode_image(bytes, i, limits))
            .collect::<Result<Vec<_>, _>>()?;
        let embeddings = state
            .embedder
            .embed(&decoded)
            .map_err(|e| ApiError::internal(format!("embedding failed: {e}")))?;
        let dim = state.embedder.dim();
        if embeddings.len() != images.len()
            || embeddings
                .iter()
                .any(|e| e.len() != dim || e.iter().any(|v| !v.is_finite()))
        {
            return Err(ApiError::internal(format!(
                "model returned {} embeddings for {} images, expected finite vectors of dim {dim}",
                embeddings.len(),
                images.len()
            )));
        }
        Ok(embeddings
            .into_iter()
            .zip(images)
            .map(|(embedding, bytes)| EmbeddedImage {
                embedding,
                sha256: sha256_hex(&bytes),
                bytes,
            })
            .collect())
    })
    .await?
}

/// Cosine similarity of two unit vectors of equal length.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
