//! `POST /enroll`: add faces to an identity (created if new) in a gallery (created if new).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::detect::FaceBox;
use crate::index::FaceIndex;
use crate::server::error::ApiError;
use crate::server::inference::{Reading, analyse};
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
    #[serde(default, deserialize_with = "lenient::boolean")]
    detect: Option<bool>,
    /// Where the face is in each image (`null`: detect it), one entry per image.
    #[serde(default, deserialize_with = "lenient::json")]
    boxes: Option<Vec<Option<GivenBox>>>,
}

/// A face box given by the client, e.g. one `/detect` returned (its `score` is ignored).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GivenBox {
    x: u32,
    y: u32,
    width: u32,
    height: u32,
    #[serde(default, rename = "score")]
    _score: Option<f64>,
}

/// What an enrollment committed.
#[derive(Debug, Serialize)]
pub struct EnrollResponse {
    pub identity: String,
    pub gallery: String,
    /// True when this request created the identity.
    pub created: bool,
    pub face_ids: Vec<i64>,
    /// The face box used in each image; `null` for an image taken whole (`detect=false`).
    pub boxes: Vec<Option<FaceBox>>,
    pub model: String,
}

/// A `/enroll` request, checked before any work.
struct EnrollRequest {
    identity: ExternalId,
    gallery: GalleryName,
    /// The identity's metadata as JSON text.
    metadata: Option<String>,
    images: Vec<Vec<u8>>,
    /// How to read each image, one per image.
    readings: Vec<Reading>,
}

impl EnrollRequest {
    fn parse(state: &AppState, payload: Payload) -> Result<EnrollRequest, ApiError> {
        let fields: EnrollFields = payload.fields_as()?;
        let identity = ExternalId::parse(&fields.identity)?;
        let gallery = GalleryName::parse(fields.gallery.as_deref())?;
        let max = state.settings.limits.max_images_per_request;
        let images = payload.images;
        if images.is_empty() || images.len() > max {
            return Err(ApiError::InvalidField {
                field: "images",
                reason: format!("expected 1 to {max} images, got {}", images.len()),
            });
        }
        let readings = readings(state, &fields, images.len())?;
        Ok(EnrollRequest {
            identity,
            gallery,
            metadata: fields
                .metadata
                .map(|m| serde_json::Value::Object(m).to_string()),
            images,
            readings,
        })
    }
}

pub async fn enroll(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<(StatusCode, Json<EnrollResponse>), ApiError> {
    let EnrollRequest {
        identity,
        gallery,
        metadata,
        images,
        readings,
    } = EnrollRequest::parse(&state, payload)?;
    let analysed = analyse(&state, images, readings, true).await?;
    let store_images = state.settings.database.store_images;
    let mut faces = Vec::with_capacity(analysed.len());
    let mut boxes = Vec::with_capacity(analysed.len());
    for (index, image) in analysed.into_iter().enumerate() {
        let count = image.faces.iter().filter(|f| f.embedding.is_some()).count();
        if count > 1 {
            return Err(ApiError::SeveralFaces { index, count });
        }
        let embedded = image
            .faces
            .into_iter()
            .find_map(|f| f.embedding.map(|e| (e, f.bbox, f.crop_png)));
        let Some((embedding, bbox, crop_png)) = embedded else {
            return Err(ApiError::NoFace {
                index,
                too_small: image.too_small,
            });
        };
        // The stored image is what was embedded: the face crop (lossless PNG) when the
        // face was detected or given, so `reembed` needs no detector; else the upload.
        let stored = crop_png.unwrap_or(image.bytes);
        boxes.push(bbox);
        faces.push(NewFace {
            embedding,
            image_sha256: image.sha256,
            image: store_images.then_some(stored),
        });
    }
    let enrollment = NewEnrollment {
        gallery: gallery.as_str().to_owned(),
        external_id: identity.as_str().to_owned(),
        metadata,
        model_version: state.embedder.version().to_owned(),
        faces,
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
            boxes,
            model: state.embedder.version().to_owned(),
        }),
    ))
}

/// Per image: around the given box, else by detection (all faces, to count them),
/// else whole when `detect` is off.
fn readings(
    state: &AppState,
    fields: &EnrollFields,
    images: usize,
) -> Result<Vec<Reading>, ApiError> {
    let detect = fields.detect.unwrap_or(state.settings.detect.enabled);
    let boxes = fields.boxes.clone().unwrap_or_default();
    if !boxes.is_empty() && boxes.len() != images {
        return Err(ApiError::InvalidField {
            field: "boxes",
            reason: format!(
                "expected one entry (a box or null) per image: {images} image(s), {} entries",
                boxes.len()
            ),
        });
    }
    Ok((0..images)
        .map(|i| match boxes.get(i).copied().flatten() {
            Some(b) => Reading::Given(FaceBox {
                x: b.x,
                y: b.y,
                width: b.width,
                height: b.height,
                score: 0.0,
                landmarks: None,
            }),
            None if detect => Reading::Detect {
                max_faces: usize::MAX,
            },
            None => Reading::Whole,
        })
        .collect())
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
