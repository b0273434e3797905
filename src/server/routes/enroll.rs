//! `POST /enroll`: add faces to an identity (created if new) in a gallery (created if new).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::index::FaceIndex;
use crate::server::error::ApiError;
use crate::server::inference::embed_images;
use crate::server::names::{ExternalId, GalleryName};
use crate::server::payload::{Payload, lenient};
use crate::server::state::AppState;
use crate::store::{NewEnrollment, NewFace};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollFields {
    identity: String,
    gallery: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What an enrollment committed.
#[derive(Debug, Serialize)]
pub struct EnrollResponse {
    pub identity: String,
    pub gallery: String,
    /// True when this request created the identity.
    pub created: bool,
    pub face_ids: Vec<i64>,
    pub model: String,
}

pub async fn enroll(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<(StatusCode, Json<EnrollResponse>), ApiError> {
    let fields: EnrollFields = payload.fields_as()?;
    let identity = ExternalId::parse(&fields.identity)?;
    let gallery = GalleryName::parse(fields.gallery.as_deref())?;
    let max = state.settings.limits.max_images_per_request;
    if payload.images.is_empty() || payload.images.len() > max {
        return Err(ApiError::InvalidField {
            field: "images",
            reason: format!("expected 1 to {max} images, got {}", payload.images.len()),
        });
    }
    let embedded = embed_images(&state, payload.images).await?;
    let store_images = state.settings.database.store_images;
    let enrollment = NewEnrollment {
        gallery: gallery.as_str().to_owned(),
        external_id: identity.as_str().to_owned(),
        metadata: fields
            .metadata
            .map(|m| serde_json::Value::Object(m).to_string()),
        model_version: state.embedder.version().to_owned(),
        faces: embedded
            .into_iter()
            .map(|e| NewFace {
                embedding: e.embedding,
                image_sha256: e.sha256,
                image: store_images.then_some(e.bytes),
            })
            .collect(),
    };
    // A task of its own: once the transaction commits, the index must learn of it even
    // if the client goes away or the request times out (which drops this future).
    let task_state = state.clone();
    let enrolled = tokio::spawn(async move { commit(task_state, enrollment).await }).await??;
    let status = if enrolled.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(EnrollResponse {
            identity: identity.as_str().to_owned(),
            gallery: gallery.as_str().to_owned(),
            created: enrolled.created,
            face_ids: enrolled.face_ids,
            model: state.embedder.version().to_owned(),
        }),
    ))
}

/// Store the enrollment, then add its faces to the gallery's index.
async fn commit(
    state: AppState,
    enrollment: NewEnrollment,
) -> Result<crate::store::Enrolled, ApiError> {
    let _writes = state.writes.lock().await;
    let enrolled = state.store.enroll(&enrollment).await?;
    let gallery = match state.galleries.get(&enrollment.gallery) {
        Some(g) => g,
        None => {
            let record = state
                .store
                .gallery(&enrollment.gallery)
                .await?
                .ok_or_else(|| ApiError::internal("gallery vanished after enrollment"))?;
            state
                .galleries
                .get_or_create(&record)
                .map_err(ApiError::internal)?
        }
    };
    gallery.set_name(enrolled.identity_id, &enrollment.external_id);
    let batch: Vec<_> = enrolled
        .face_ids
        .iter()
        .zip(enrollment.faces)
        .map(|(&face, f)| (face, enrolled.identity_id, f.embedding))
        .collect();
    let target = Arc::clone(&gallery);
    tokio::task::spawn_blocking(move || target.index.insert_batch(&batch))
        .await?
        .map_err(ApiError::internal)?;
    Ok(enrolled)
}
