//! `GET /status`: what a person looking at the service wants to know at a glance — the
//! model, each gallery's size, index and threshold, readiness, and what the caller's key
//! may do (the web page hides what it may not).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;

use super::resolve_threshold;
use crate::index::IndexKind;
use crate::server::auth::{Role, authorize};
use crate::server::config::{CalibratedFar, ThresholdPolicy};
use crate::server::error::ApiError;
use crate::server::state::AppState;

#[derive(Debug, Serialize)]
pub struct GalleryStatus {
    pub gallery: String,
    pub identities: usize,
    pub faces: usize,
    /// `exact` or `hnsw`.
    pub index: &'static str,
    /// True while an HNSW graph is built behind the exact index.
    pub building: bool,
    /// The threshold `/identify` uses in this gallery when the request sets none.
    pub threshold: f32,
    /// Whether that threshold is the gallery's own (else the server default).
    pub own_threshold: bool,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub model: String,
    pub dim: usize,
    /// Indexes built and in step with the database (what `/readyz` checks, without the
    /// database round trip).
    pub ready: bool,
    pub default_threshold: f32,
    /// Where the default comes from: `far_0_1pct`, `far_1pct`, `far_10pct` (the model's
    /// calibrated values) or `fixed`.
    pub threshold_policy: &'static str,
    pub galleries: Vec<GalleryStatus>,
    /// Whether the server asks for API keys at all.
    pub keys_required: bool,
    /// What the caller's key may do: `admin` (everything; also any caller of a server
    /// without keys), `query` (identify, detect, embed, verify), or `none` (no key or an
    /// unknown one).
    pub role: &'static str,
}

pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Status>, ApiError> {
    let auth = &state.settings.auth;
    let keys_required = !(auth.admin_keys.is_empty() && auth.query_keys.is_empty());
    // Open like /readyz (which shows the same indexes): a page without a key learns
    // here that it must ask for one, instead of from a failed request.
    let role = if authorize(auth, &headers, Role::Admin).is_ok() {
        "admin"
    } else if authorize(auth, &headers, Role::Query).is_ok() {
        "query"
    } else {
        "none"
    };
    let mut galleries = Vec::new();
    for (name, identities, faces) in state.galleries.sizes() {
        let Some(gallery) = state.galleries.get(&name) else {
            continue;
        };
        galleries.push(GalleryStatus {
            identities,
            faces,
            index: match gallery.index.kind() {
                IndexKind::Exact => "exact",
                IndexKind::Hnsw => "hnsw",
            },
            building: gallery.index.is_switching(),
            threshold: resolve_threshold(&state, None, Some(&gallery))?,
            own_threshold: gallery.threshold().is_some(),
            gallery: name,
        });
    }
    Ok(Json(Status {
        model: state.embedder.version().to_owned(),
        dim: state.embedder.dim(),
        ready: state.ready.load(Ordering::Acquire) && state.in_sync.load(Ordering::Acquire),
        default_threshold: resolve_threshold(&state, None, None)?,
        threshold_policy: match state.settings.identify.default_threshold {
            ThresholdPolicy::Calibrated(CalibratedFar::Gallery) => "gallery",
            ThresholdPolicy::Calibrated(CalibratedFar::Far0_1Pct) => "far_0_1pct",
            ThresholdPolicy::Calibrated(CalibratedFar::Far1Pct) => "far_1pct",
            ThresholdPolicy::Calibrated(CalibratedFar::Far10Pct) => "far_10pct",
            ThresholdPolicy::Fixed(_) => "fixed",
        },
        galleries,
        keys_required,
        role,
    }))
}
