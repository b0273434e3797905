//! Handlers, one file per resource.

pub mod detect;
pub mod embed;
pub mod enroll;
pub mod galleries;
pub mod health;
pub mod identify;
pub mod identities;
pub mod status;

use serde::Deserialize;

use super::decision::decide;
use super::error::ApiError;
use super::galleries::GalleryState;
use super::inference::Reading;
use super::state::AppState;

/// The threshold of a comparison with one identity (`/verify`): the request's, else
/// the gallery's, else the configured policy for a gallery of one ([`decide`]).
pub fn resolve_threshold(
    state: &AppState,
    requested: Option<f32>,
    gallery: Option<&GalleryState>,
) -> Result<f32, ApiError> {
    let requested = requested.map(check_threshold).transpose()?;
    Ok(decide(state, requested, None, gallery, Some(1)).threshold)
}

/// A cosine-similarity threshold must lie in [-1, 1].
pub fn check_threshold(t: f32) -> Result<f32, ApiError> {
    if t.is_finite() && (-1.0..=1.0).contains(&t) {
        Ok(t)
    } else {
        Err(ApiError::InvalidField {
            field: "threshold",
            reason: format!("expected a cosine similarity in [-1, 1], got {t}"),
        })
    }
}

/// `?gallery=` on identity routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GalleryQuery {
    pub gallery: Option<String>,
}

/// Exactly `N` images, or a 400 saying how many came.
pub fn expect_images<const N: usize>(
    images: Vec<Vec<u8>>,
    hint: &str,
) -> Result<[Vec<u8>; N], ApiError> {
    let got = images.len();
    <[Vec<u8>; N]>::try_from(images).map_err(|_| ApiError::InvalidField {
        field: "image",
        reason: format!("expected {N} image(s) {hint}, got {got}"),
    })
}

/// How a query reads its image: by detection unless `detect` (or the configured default)
/// says it is a face crop; `max_faces` (or the default) bounds the faces per image.
pub fn reading(
    state: &AppState,
    detect: Option<bool>,
    max_faces: Option<usize>,
) -> Result<Reading, ApiError> {
    let max_faces = checked_max_faces(state, max_faces)?;
    Ok(if detect.unwrap_or(state.settings.detect.enabled) {
        Reading::Detect { max_faces }
    } else {
        Reading::Whole
    })
}

/// `max_faces` (or the configured default), between 1 and the configured limit.
pub fn checked_max_faces(state: &AppState, max_faces: Option<usize>) -> Result<usize, ApiError> {
    let settings = &state.settings.detect;
    let limit = settings.max_faces_limit;
    let max_faces = max_faces.unwrap_or(settings.default_max_faces);
    if max_faces == 0 || max_faces > limit {
        return Err(ApiError::InvalidField {
            field: "max_faces",
            reason: format!("expected 1 to {limit}, got {max_faces}"),
        });
    }
    Ok(max_faces)
}
