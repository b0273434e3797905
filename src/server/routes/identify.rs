//! `POST /identify`: who is this — or nobody we know?

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{expect_images, resolve_threshold};
use crate::index::FaceIndex;
use crate::server::error::ApiError;
use crate::server::inference::embed_images;
use crate::server::names::GalleryName;
use crate::server::payload::{Payload, lenient};
use crate::server::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentifyFields {
    #[serde(default, deserialize_with = "lenient::number")]
    top_k: Option<usize>,
    #[serde(default, deserialize_with = "lenient::number")]
    threshold: Option<f32>,
    gallery: Option<String>,
}

/// An identity and its best face's similarity to the query.
#[derive(Debug, Serialize)]
pub struct Candidate {
    pub identity: String,
    pub similarity: f32,
    /// The enrolled face that scored best.
    pub face_id: i64,
}

/// `match` is the best candidate if it reaches the threshold, else `null`.
#[derive(Debug, Serialize)]
pub struct IdentifyResponse {
    #[serde(rename = "match")]
    pub best: Option<Candidate>,
    /// Top-k distinct identities, most similar first.
    pub candidates: Vec<Candidate>,
    pub threshold: f32,
    pub gallery: String,
    pub model: String,
}

pub async fn identify(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<IdentifyResponse>, ApiError> {
    let fields: IdentifyFields = payload.fields_as()?;
    expect_images(&payload.images, 1, "(field `image`)")?;
    let gallery_name = GalleryName::parse(fields.gallery.as_deref())?;
    let max_k = state.settings.identify.max_top_k;
    let top_k = fields
        .top_k
        .unwrap_or(state.settings.identify.default_top_k);
    if top_k == 0 || top_k > max_k {
        return Err(ApiError::InvalidField {
            field: "top_k",
            reason: format!("expected 1 to {max_k}, got {top_k}"),
        });
    }
    // The default gallery exists implicitly (empty until the first enrollment).
    let gallery = state.galleries.get(gallery_name.as_str());
    if gallery.is_none() && !gallery_name.is_default() {
        return Err(ApiError::GalleryNotFound(gallery_name.as_str().to_owned()));
    }
    let threshold = resolve_threshold(&state, fields.threshold, gallery.as_deref())?;
    let mut embedded = embed_images(&state, payload.images).await?;
    let query = embedded.remove(0).embedding;
    let candidates = match gallery {
        None => Vec::new(),
        Some(gallery) => {
            let searched = Arc::clone(&gallery);
            let hits = tokio::task::spawn_blocking(move || searched.index.search(&query, top_k))
                .await?
                .map_err(ApiError::internal)?;
            hits.into_iter()
                .filter_map(|hit| {
                    // An identity deleted between search and lookup is simply skipped.
                    gallery.name_of(hit.identity).map(|name| Candidate {
                        identity: name.to_string(),
                        similarity: hit.similarity,
                        face_id: hit.face,
                    })
                })
                .collect()
        }
    };
    let best = candidates
        .first()
        .filter(|c| c.similarity >= threshold)
        .map(|c| Candidate {
            identity: c.identity.clone(),
            similarity: c.similarity,
            face_id: c.face_id,
        });
    Ok(Json(IdentifyResponse {
        best,
        candidates,
        threshold,
        gallery: gallery_name.as_str().to_owned(),
        model: state.embedder.version().to_owned(),
    }))
}
