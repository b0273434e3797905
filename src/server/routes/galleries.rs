//! Galleries: list them with their sizes and current thresholds; create one or set its
//! threshold or target FAR.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};

use super::check_threshold;
use crate::index::FaceIndex;
use crate::server::decision::{decide, parse_far};
use crate::server::error::ApiError;
use crate::server::galleries::GalleryState;
use crate::server::names::GalleryName;
use crate::server::payload::{Payload, lenient};
use crate::server::state::AppState;

#[derive(Debug, Serialize)]
pub struct GalleryItem {
    pub gallery: String,
    /// The gallery's own threshold; `null` = the server default.
    pub threshold: Option<f64>,
    /// The gallery's own target false-accept rate; `null` = the server default.
    pub far: Option<f64>,
    pub identities: usize,
    pub faces: usize,
    /// The threshold `/identify` uses now (it follows enrollments and deletions when it
    /// comes from a target FAR).
    pub current_threshold: f32,
    /// The target FAR `current_threshold` keeps; `null` when a threshold is set outright.
    pub current_far: Option<f64>,
}

impl GalleryItem {
    fn of(state: &AppState, gallery: &GalleryState) -> GalleryItem {
        let decision = decide(state, None, None, Some(gallery), None);
        GalleryItem {
            gallery: gallery.name.clone(),
            threshold: gallery.threshold(),
            far: gallery.far(),
            identities: gallery.identity_count(),
            faces: gallery.index.len(),
            current_threshold: decision.threshold,
            current_far: decision.far,
        }
    }
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
    #[serde(default)]
    far: Option<serde_json::Value>,
}

pub async fn list(State(state): State<AppState>) -> Json<GalleryList> {
    let galleries = state
        .galleries
        .sizes()
        .into_iter()
        .filter_map(|(name, ..)| state.galleries.get(&name))
        .map(|g| GalleryItem::of(&state, &g))
        .collect();
    Json(GalleryList { galleries })
}

/// The gallery named in the path.
fn gallery_in_path(path: Result<Path<String>, PathRejection>) -> Result<GalleryName, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::MalformedBody(e.body_text()))?;
    GalleryName::parse(Some(&raw))
}

/// `GET /galleries/{name}`: its size, settings and current threshold.
pub async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<GalleryItem>, ApiError> {
    let name = gallery_in_path(path)?;
    match state.galleries.get(name.as_str()) {
        Some(gallery) => Ok(Json(GalleryItem::of(&state, &gallery))),
        // The default gallery exists implicitly, empty until the first enrollment.
        None if name.is_default() => {
            let decision = decide(&state, None, None, None, None);
            Ok(Json(GalleryItem {
                gallery: name.as_str().to_owned(),
                threshold: None,
                far: None,
                identities: 0,
                faces: 0,
                current_threshold: decision.threshold,
                current_far: decision.far,
            }))
        }
        None => Err(ApiError::GalleryNotFound(name.as_str().to_owned())),
    }
}

/// A `PUT /galleries/{name}` request, checked before any work.
struct PutGalleryRequest {
    name: GalleryName,
    /// The gallery's own threshold and target FAR (`None`: the server's default).
    threshold: Option<f32>,
    far: Option<f64>,
}

impl PutGalleryRequest {
    fn parse(
        path: Result<Path<String>, PathRejection>,
        payload: Payload,
    ) -> Result<PutGalleryRequest, ApiError> {
        let name = gallery_in_path(path)?;
        let fields: PutGalleryFields = payload.fields_as()?;
        if !payload.images.is_empty() {
            return Err(ApiError::InvalidField {
                field: "image",
                reason: "a gallery takes no images".into(),
            });
        }
        Ok(PutGalleryRequest {
            name,
            threshold: fields.threshold.map(check_threshold).transpose()?,
            far: parse_far(fields.far.as_ref())?,
        })
    }
}

/// `PUT /galleries/{name}` with `{"threshold": 0.7}` or `{"far": 0.001}` (omitted or
/// `null`: the server's default).
pub async fn put(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    payload: Payload,
) -> Result<Json<GalleryItem>, ApiError> {
    let PutGalleryRequest {
        name,
        threshold,
        far,
    } = PutGalleryRequest::parse(path, payload)?;
    let _writes = state.writes.lock().await;
    let record = state
        .store
        .put_gallery(name.as_str(), threshold.map(f64::from), far)
        .await?;
    let gallery = state
        .galleries
        .get_or_create(&record)
        .map_err(ApiError::internal)?;
    gallery.set_policy(&record);
    Ok(Json(GalleryItem::of(&state, &gallery)))
}
