//! Galleries: list them with their sizes; create one or set its threshold.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::check_threshold;
use crate::index::FaceIndex;
use crate::server::error::ApiError;
use crate::server::names::GalleryName;
use crate::server::payload::{Payload, lenient};
use crate::server::state::AppState;

#[derive(Debug, Serialize)]
pub struct GalleryItem {
    pub gallery: String,
    /// The gallery's own threshold; `null` = the server default.
    pub threshold: Option<f64>,
    pub identities: usize,
    pub faces: usize,
}

#[derive(Debug, Serialize)]
pub struct GalleryList {
    pub galleries: Vec<GalleryItem>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PutGalleryFields {
    #[serde(default, deserialize_with = "lenient::number")]
    threshold: Option<f32>,
}

pub async fn list(State(state): State<AppState>) -> Json<GalleryList> {
    let galleries = state
        .galleries
        .sizes()
        .into_iter()
        .map(|(name, identities, faces)| GalleryItem {
            threshold: state.galleries.get(&name).and_then(|g| g.threshold()),
            gallery: name,
            identities,
            faces,
        })
        .collect();
    Json(GalleryList { galleries })
}

/// `PUT /galleries/{name}` with `{"threshold": 0.7}` (or `null` for the default).
pub async fn put(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    payload: Payload,
) -> Result<Json<GalleryItem>, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::MalformedBody(e.body_text()))?;
    let name = GalleryName::parse(Some(&raw))?;
    let fields: PutGalleryFields = payload.fields_as()?;
    if !payload.images.is_empty() {
        return Err(ApiError::InvalidField {
            field: "image",
            reason: "a gallery takes no images".into(),
        });
    }
    let threshold = fields.threshold.map(check_threshold).transpose()?;
    let _writes = state.writes.lock().await;
    let record = state
        .store
        .put_gallery(name.as_str(), threshold.map(f64::from))
        .await?;
    let gallery = state
        .galleries
        .get_or_create(&record)
        .map_err(ApiError::internal)?;
    gallery.set_threshold(record.threshold);
    Ok(Json(GalleryItem {
        gallery: record.name,
        threshold: record.threshold,
        identities: gallery.identity_count(),
        faces: gallery.index.len(),
    }))
}
