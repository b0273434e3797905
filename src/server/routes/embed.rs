//! `POST /embed` (image → embedding) and `POST /verify` (same person or not).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{expect_images, resolve_threshold};
use crate::server::error::ApiError;
use crate::server::inference::{cosine, embed_images};
use crate::server::names::{ExternalId, GalleryName};
use crate::server::payload::{Payload, lenient};
use crate::server::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoFields {}

/// An L2-normalised embedding and the model that made it.
#[derive(Debug, Serialize)]
pub struct EmbedResponse {
    pub embedding: Vec<f32>,
    pub dim: usize,
    pub model: String,
}

pub async fn embed(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<EmbedResponse>, ApiError> {
    let _: NoFields = payload.fields_as()?;
    expect_images(&payload.images, 1, "(field `image`)")?;
    let mut embedded = embed_images(&state, payload.images).await?;
    let embedding = embedded.remove(0).embedding;
    Ok(Json(EmbedResponse {
        dim: embedding.len(),
        embedding,
        model: state.embedder.version().to_owned(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyFields {
    identity: Option<String>,
    gallery: Option<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    threshold: Option<f32>,
}

/// Whether two faces (or a face and an identity's best face) are the same person.
#[derive(Debug, Serialize)]
pub struct VerifyResponse {
    pub same: bool,
    pub similarity: f32,
    pub threshold: f32,
    pub model: String,
}

/// Two images (`images: [a, b]`), or one image and an `identity` (its best face counts).
pub async fn verify(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<VerifyResponse>, ApiError> {
    let fields: VerifyFields = payload.fields_as()?;
    let (similarity, threshold) = match fields.identity {
        None => {
            expect_images(&payload.images, 2, "without `identity`")?;
            let threshold = resolve_threshold(&state, fields.threshold, None)?;
            let embedded = embed_images(&state, payload.images).await?;
            (
                cosine(&embedded[0].embedding, &embedded[1].embedding),
                threshold,
            )
        }
        Some(raw) => {
            expect_images(&payload.images, 1, "with `identity`")?;
            let identity = ExternalId::parse(&raw)?;
            let gallery_name = GalleryName::parse(fields.gallery.as_deref())?;
            let gallery = state
                .galleries
                .get(gallery_name.as_str())
                .ok_or_else(|| ApiError::GalleryNotFound(gallery_name.as_str().to_owned()))?;
            let not_found = || ApiError::IdentityNotFound {
                gallery: gallery_name.as_str().to_owned(),
                identity: identity.as_str().to_owned(),
            };
            let detail = state
                .store
                .identity(gallery.id, identity.as_str())
                .await?
                .ok_or_else(not_found)?;
            let faces = state.store.identity_embeddings(detail.id).await?;
            let threshold = resolve_threshold(&state, fields.threshold, Some(&gallery))?;
            let embedded = embed_images(&state, payload.images).await?;
            let best = faces
                .iter()
                .map(|f| cosine(&embedded[0].embedding, &f.embedding))
                .max_by(f32::total_cmp)
                .ok_or_else(not_found)?;
            (best, threshold)
        }
    };
    Ok(Json(VerifyResponse {
        same: similarity >= threshold,
        similarity,
        threshold,
        model: state.embedder.version().to_owned(),
    }))
}
