//! Identities: list (paginated), get (with faces), delete (with faces), delete one face,
//! a face's stored image as a thumbnail.
//! Deleted faces leave the index before the response, so they stop matching at once.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

use super::GalleryQuery;
use crate::index::FaceIndex;
use crate::server::decode::decode_image;
use crate::server::error::ApiError;
use crate::server::galleries::GalleryState;
use crate::server::names::{ExternalId, GalleryName};
use crate::server::state::AppState;

/// Page size when the request does not say, and the largest allowed.
const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    gallery: Option<String>,
    /// Return identities whose external id sorts after this one.
    after: Option<String>,
    limit: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct IdentityItem {
    pub identity: String,
    pub faces: i64,
    pub created_at: i64,
}

#[derive(Debug, Serialize)]
pub struct IdentityList {
    pub gallery: String,
    pub identities: Vec<IdentityItem>,
    /// Pass as `after` for the next page; `null` on the last page.
    pub next: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct FaceItem {
    pub id: i64,
    pub model: String,
    pub image_sha256: String,
    pub has_image: bool,
    pub created_at: i64,
}

#[derive(Debug, Serialize)]
pub struct IdentityResponse {
    pub identity: String,
    pub gallery: String,
    pub metadata: Option<serde_json::Value>,
    pub created_at: i64,
    pub faces: Vec<FaceItem>,
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub identity: String,
    pub gallery: String,
    pub deleted_faces: Vec<i64>,
}

fn bad_query(e: QueryRejection) -> ApiError {
    ApiError::MalformedBody(e.body_text())
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError::MalformedBody(e.body_text())
}

fn find_gallery(state: &AppState, raw: Option<&str>) -> Result<Arc<GalleryState>, ApiError> {
    let name = GalleryName::parse(raw)?;
    state
        .galleries
        .get(name.as_str())
        .ok_or_else(|| ApiError::GalleryNotFound(name.as_str().to_owned()))
}

/// An identity route's target: the identity named in the path, in the gallery that
/// `?gallery=` names, and `face`, the face id that follows it on face routes.
struct Target<F> {
    identity: ExternalId,
    gallery: Arc<GalleryState>,
    face: F,
}

type IdentityRequest = Target<()>;
type FaceRequest = Target<i64>;

impl IdentityRequest {
    fn parse(
        state: &AppState,
        path: Result<Path<String>, PathRejection>,
        query: Result<Query<GalleryQuery>, QueryRejection>,
    ) -> Result<IdentityRequest, ApiError> {
        let Path(raw) = path.map_err(bad_path)?;
        locate(state, &raw, (), query)
    }
}

impl FaceRequest {
    fn parse(
        state: &AppState,
        path: Result<Path<(String, i64)>, PathRejection>,
        query: Result<Query<GalleryQuery>, QueryRejection>,
    ) -> Result<FaceRequest, ApiError> {
        let Path((raw, face)) = path.map_err(bad_path)?;
        locate(state, &raw, face, query)
    }
}

/// The identity `raw` in the gallery from `?gallery=`.
fn locate<F>(
    state: &AppState,
    raw: &str,
    face: F,
    query: Result<Query<GalleryQuery>, QueryRejection>,
) -> Result<Target<F>, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let identity = ExternalId::parse(raw)?;
    let gallery = find_gallery(state, query.gallery.as_deref())?;
    Ok(Target {
        identity,
        gallery,
        face,
    })
}

fn identity_not_found(gallery: &GalleryState, identity: &ExternalId) -> ApiError {
    ApiError::IdentityNotFound {
        gallery: gallery.name.clone(),
        identity: identity.as_str().to_owned(),
    }
}

/// A `GET /identities` request: a page of a gallery's identities.
struct ListRequest {
    gallery: Arc<GalleryState>,
    after: Option<String>,
    limit: i64,
}

impl ListRequest {
    fn parse(
        state: &AppState,
        query: Result<Query<ListQuery>, QueryRejection>,
    ) -> Result<ListRequest, ApiError> {
        let Query(query) = query.map_err(bad_query)?;
        let gallery = find_gallery(state, query.gallery.as_deref())?;
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::InvalidField {
                field: "limit",
                reason: format!("expected 1 to {MAX_PAGE}, got {limit}"),
            });
        }
        Ok(ListRequest {
            gallery,
            after: query.after,
            limit,
        })
    }
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<IdentityList>, ApiError> {
    let ListRequest {
        gallery,
        after,
        limit,
    } = ListRequest::parse(&state, query)?;
    let page = state
        .store
        .identities(gallery.id, after.as_deref(), limit)
        .await?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|i| i.external_id.clone()))
        .flatten();
    Ok(Json(IdentityList {
        gallery: gallery.name.clone(),
        identities: page
            .into_iter()
            .map(|i| IdentityItem {
                identity: i.external_id,
                faces: i.face_count,
                created_at: i.created_at,
            })
            .collect(),
        next,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<GalleryQuery>, QueryRejection>,
) -> Result<Json<IdentityResponse>, ApiError> {
    let IdentityRequest {
        identity, gallery, ..
    } = IdentityRequest::parse(&state, path, query)?;
    let detail = state
        .store
        .identity(gallery.id, identity.as_str())
        .await?
        .ok_or_else(|| identity_not_found(&gallery, &identity))?;
    Ok(Json(IdentityResponse {
        identity: detail.external_id,
        gallery: gallery.name.clone(),
        metadata: detail.metadata,
        created_at: detail.created_at,
        faces: detail
            .faces
            .into_iter()
            .map(|f| FaceItem {
                id: f.id,
                model: f.model_version,
                image_sha256: f.image_sha256,
                has_image: f.has_image,
                created_at: f.created_at,
            })
            .collect(),
    }))
}

pub async fn delete(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<GalleryQuery>, QueryRejection>,
) -> Result<Json<Deleted>, ApiError> {
    let IdentityRequest {
        identity, gallery, ..
    } = IdentityRequest::parse(&state, path, query)?;
    let task_state = state.clone();
    let task_gallery = Arc::clone(&gallery);
    let task_identity = identity.clone();
    // Its own task, so a dropped request cannot leave the index behind the store.
    let removed = tokio::spawn(async move {
        let _writes = task_state.writes.lock().await;
        let removed = task_state
            .store
            .delete_identity(task_gallery.id, task_identity.as_str())
            .await?;
        if let Some(removed) = &removed {
            task_gallery.index.remove_identity(removed.identity_id);
            task_gallery.forget_name(removed.identity_id);
        }
        Ok::<_, ApiError>(removed)
    })
    .await??
    .ok_or_else(|| identity_not_found(&gallery, &identity))?;
    Ok(Json(Deleted {
        identity: identity.as_str().to_owned(),
        gallery: gallery.name.clone(),
        deleted_faces: removed.face_ids,
    }))
}

pub async fn delete_face(
    State(state): State<AppState>,
    path: Result<Path<(String, i64)>, PathRejection>,
    query: Result<Query<GalleryQuery>, QueryRejection>,
) -> Result<Json<Deleted>, ApiError> {
    let FaceRequest {
        identity,
        gallery,
        face,
    } = FaceRequest::parse(&state, path, query)?;
    let task_state = state.clone();
    let task_gallery = Arc::clone(&gallery);
    let task_identity = identity.clone();
    let owner = tokio::spawn(async move {
        let _writes = task_state.writes.lock().await;
        let owner = task_state
            .store
            .delete_face(task_gallery.id, task_identity.as_str(), face)
            .await?;
        if owner.is_some() {
            task_gallery.index.remove_face(face);
        }
        Ok::<_, ApiError>(owner)
    })
    .await??;
    if owner.is_none() {
        return Err(ApiError::FaceNotFound {
            identity: identity.as_str().to_owned(),
            face,
        });
    }
    Ok(Json(Deleted {
        identity: identity.as_str().to_owned(),
        gallery: gallery.name.clone(),
        deleted_faces: vec![face],
    }))
}

/// Longest side of a face thumbnail, pixels.
const THUMBNAIL_SIDE: u32 = 128;

/// `GET /identities/{id}/faces/{face_id}/image`: the face's stored image (the aligned
/// crop that was embedded) as a PNG thumbnail, decoded and re-encoded so that only an
/// image this server wrote goes back to a browser.
pub async fn face_image(
    State(state): State<AppState>,
    path: Result<Path<(String, i64)>, PathRejection>,
    query: Result<Query<GalleryQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let FaceRequest {
        identity,
        gallery,
        face,
    } = FaceRequest::parse(&state, path, query)?;
    let stored = state
        .store
        .face_image(gallery.id, identity.as_str(), face)
        .await?
        .ok_or_else(|| ApiError::FaceNotFound {
            identity: identity.as_str().to_owned(),
            face,
        })?
        .ok_or_else(|| ApiError::FaceImageNotStored {
            identity: identity.as_str().to_owned(),
            face,
        })?;
    let limits = state.settings.limits.clone();
    let png = tokio::task::spawn_blocking(move || {
        let image = decode_image(&stored, 0, &limits).map_err(ApiError::internal)?;
        let thumbnail = image.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
        let mut out = std::io::Cursor::new(Vec::new());
        thumbnail
            .write_to(&mut out, image::ImageFormat::Png)
            .map_err(ApiError::internal)?;
        Ok::<_, ApiError>(out.into_inner())
    })
    .await
    .map_err(ApiError::internal)??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png"),
            // SQLite may give a deleted face's id to a new face: never reuse a copy.
            (header::CACHE_CONTROL, "private, no-cache"),
        ],
        png,
    ))
}
