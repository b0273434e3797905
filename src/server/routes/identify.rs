//! `POST /identify`: who is this — or nobody we know?

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{check_threshold, expect_images, reading};
use crate::detect::{FaceBox, Point};
use crate::embedding::Embedding;
use crate::index::FaceIndex;
use crate::server::decision::{self, Decision, parse_far};
use crate::server::error::ApiError;
use crate::server::galleries::GalleryState;
use crate::server::inference::{Face, Reading, analyse_then};
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
    /// Checked by [`parse_far`], so that every bad value gets the same 422.
    #[serde(default)]
    far: Option<serde_json::Value>,
    gallery: Option<String>,
    #[serde(default, deserialize_with = "lenient::boolean")]
    detect: Option<bool>,
    #[serde(default, deserialize_with = "lenient::number")]
    max_faces: Option<usize>,
}

/// An identity and its best face's similarity to the query.
#[derive(Clone, Debug, Serialize)]
pub struct Candidate {
    pub identity: String,
    pub similarity: f32,
    /// The enrolled face that scored best.
    pub face_id: i64,
    /// Estimated fraction of strangers scoring at least this similarity against some
    /// identity of a gallery of this size; `null` when the model carries no impostor tail.
    pub false_accept_rate: Option<f64>,
}

/// The answer for one face of the query image.
#[derive(Debug, Serialize)]
pub struct FaceAnswer {
    /// Where the face is; `null` with `detect=false`.
    #[serde(rename = "box")]
    pub bbox: Option<FaceBox>,
    /// The face's five landmarks (as `/detect` gives them); `null` when not detected.
    pub landmarks: Option<[Point; 5]>,
    /// False for a face too small to embed: it has no match and no candidates.
    pub embedded: bool,
    #[serde(rename = "match")]
    pub best: Option<Candidate>,
    pub candidates: Vec<Candidate>,
}

/// `match` is the best candidate if it reaches the threshold, else `null`. The top-level
/// answer is the largest embedded face's (`box` says which); `faces` has every face,
/// largest first, up to `max_faces`. No face found: `match` and `box` are `null`, and
/// `candidates` and `faces` are empty.
#[derive(Debug, Serialize)]
pub struct IdentifyResponse {
    #[serde(rename = "match")]
    pub best: Option<Candidate>,
    /// Top-k distinct identities, most similar first.
    pub candidates: Vec<Candidate>,
    #[serde(rename = "box")]
    pub bbox: Option<FaceBox>,
    pub faces: Vec<FaceAnswer>,
    pub threshold: f32,
    /// The target false-accept rate the threshold was derived from; `null` when a
    /// threshold was set outright (request, gallery or configuration).
    pub far: Option<f64>,
    /// Identities in the gallery when the threshold was computed.
    pub gallery_size: usize,
    pub gallery: String,
    pub model: String,
}

/// A `/identify` request, checked before any work.
struct IdentifyRequest {
    image: Vec<u8>,
    gallery_name: GalleryName,
    /// `None` for the default gallery before its first enrollment (empty, implicitly).
    gallery: Option<Arc<GalleryState>>,
    top_k: usize,
    reading: Reading,
    /// The request's own threshold and target FAR, both in range.
    threshold: Option<f32>,
    far: Option<f64>,
}

impl IdentifyRequest {
    fn parse(state: &AppState, payload: Payload) -> Result<IdentifyRequest, ApiError> {
        let fields: IdentifyFields = payload.fields_as()?;
        let [image] = expect_images(payload.images, "(field `image`)")?;
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
        let reading = reading(state, fields.detect, fields.max_faces)?;
        let gallery = state.galleries.get(gallery_name.as_str());
        if gallery.is_none() && !gallery_name.is_default() {
            return Err(ApiError::GalleryNotFound(gallery_name.as_str().to_owned()));
        }
        let threshold = fields.threshold.map(check_threshold).transpose()?;
        let far = parse_far(fields.far.as_ref())?;
        Ok(IdentifyRequest {
            image,
            gallery_name,
            gallery,
            top_k,
            reading,
            threshold,
            far,
        })
    }
}

pub async fn identify(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<IdentifyResponse>, ApiError> {
    let request = IdentifyRequest::parse(&state, payload)?;
    let gallery = request.gallery.as_deref();
    let decision = decision::decide(&state, request.threshold, request.far, gallery, None);
    let threshold = decision.threshold;
    let (gallery_state, top_k) = (request.gallery, request.top_k);
    let images = vec![request.image];
    let searched = analyse_then(
        &state,
        images,
        vec![request.reading],
        false,
        move |analysed| {
            let faces = analysed.into_iter().flat_map(|image| image.faces).collect();
            search_faces(gallery_state, faces, top_k)
        },
    )
    .await?;
    let tail = state.embedder.meta().tail.as_ref();
    let faces: Vec<FaceAnswer> = searched
        .into_iter()
        .map(|Searched { bbox, candidates }| {
            let embedded = candidates.is_some();
            let mut candidates = candidates.unwrap_or_default();
            rate(&mut candidates, &decision, tail);
            FaceAnswer {
                bbox,
                landmarks: bbox.and_then(|b| b.landmarks),
                embedded,
                best: decide(&candidates, threshold),
                candidates,
            }
        })
        .collect();
    let top = faces.iter().find(|f| f.embedded);
    Ok(Json(IdentifyResponse {
        best: top.and_then(|f| f.best.clone()),
        candidates: top.map(|f| f.candidates.clone()).unwrap_or_default(),
        bbox: top.and_then(|f| f.bbox),
        threshold,
        far: decision.far,
        gallery_size: decision.gallery_size,
        gallery: request.gallery_name.as_str().to_owned(),
        model: state.embedder.version().to_owned(),
        faces,
    }))
}

/// Each candidate's estimated false-accept rate at its similarity.
fn rate(candidates: &mut [Candidate], decision: &Decision, tail: Option<&crate::model::TailModel>) {
    for c in candidates {
        c.false_accept_rate = decision.false_accept_rate(tail, c.similarity);
    }
}

/// The best candidate if it reaches the threshold.
fn decide(candidates: &[Candidate], threshold: f32) -> Option<Candidate> {
    candidates
        .first()
        .filter(|c| c.similarity >= threshold)
        .cloned()
}

/// A face of the query with its own search result.
struct Searched {
    bbox: Option<FaceBox>,
    /// Top-k distinct identities, most similar first; `None` for a face too small to embed.
    candidates: Option<Vec<Candidate>>,
}

/// Every face with the top-k distinct identities for its embedding (on the blocking
/// thread that embedded them, see [`analyse_then`]).
fn search_faces(
    gallery: Option<Arc<GalleryState>>,
    faces: Vec<Face>,
    top_k: usize,
) -> Result<Vec<Searched>, ApiError> {
    faces
        .into_iter()
        .map(|face| {
            let candidates = match (&gallery, face.embedding) {
                (Some(gallery), Some(query)) => Some(search(gallery, &query, top_k)?),
                // No gallery yet: an embedded face has no candidates.
                (None, Some(_)) => Some(Vec::new()),
                (_, None) => None,
            };
            Ok(Searched {
                bbox: face.bbox,
                candidates,
            })
        })
        .collect()
}

/// Top-k distinct identities for one embedding.
fn search(
    gallery: &GalleryState,
    query: &Embedding,
    top_k: usize,
) -> Result<Vec<Candidate>, ApiError> {
    let hits = gallery
        .index
        .search(query, top_k)
        .map_err(ApiError::internal)?;
    Ok(hits
        .into_iter()
        .filter_map(|hit| {
            // An identity deleted between search and lookup is simply skipped.
            gallery.name_of(hit.identity).map(|name| Candidate {
                identity: name.to_string(),
                similarity: hit.similarity,
                face_id: hit.face,
                false_accept_rate: None,
            })
        })
        .collect())
}
