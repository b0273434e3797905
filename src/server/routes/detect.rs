//! `POST /detect`: where are the faces?

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{expect_images, reading};
use crate::detect::{FaceBox, Point};
use crate::server::error::ApiError;
use crate::server::inference::run_budgeted;
use crate::server::payload::{Payload, lenient};
use crate::server::state::AppState;
use crate::server::work::header_pixels;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectFields {
    #[serde(default, deserialize_with = "lenient::number")]
    max_faces: Option<usize>,
}

/// One face found.
#[derive(Debug, Serialize)]
pub struct DetectedFace {
    #[serde(rename = "box")]
    pub bbox: FaceBox,
    /// The five landmarks in image pixels: left eye, right eye, nose, left and right
    /// mouth corners (as seen in the image).
    pub landmarks: Option<[Point; 5]>,
    /// False when the face is smaller than the detector's `min_embed_size`: other routes
    /// report it but do not embed it.
    pub embeddable: bool,
}

/// Every face, largest first, up to `max_faces`; `width` and `height` of the image.
#[derive(Debug, Serialize)]
pub struct DetectResponse {
    pub faces: Vec<DetectedFace>,
    pub width: u32,
    pub height: u32,
}

pub async fn detect(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<DetectResponse>, ApiError> {
    let fields: DetectFields = payload.fields_as()?;
    expect_images(&payload.images, 1, "(field `image`)")?;
    // Validates `max_faces` the way the other routes do.
    reading(&state, Some(true), fields.max_faces)?;
    let max_faces = fields
        .max_faces
        .unwrap_or(state.settings.detect.default_max_faces);
    let detector = std::sync::Arc::clone(&state.detector);
    let limits = state.settings.limits.clone();
    let image = payload.images.into_iter().next().unwrap_or_default();
    let pixels = header_pixels(&image, limits.max_image_side);
    let (faces, width, height) = run_budgeted(&state, pixels, move |cancel| {
        let decoded = crate::server::decode::decode_image(&image, 0, &limits)?;
        // Consumes the original: a 16-bit or alpha image is freed before detection.
        let grey = decoded.into_luma8();
        let faces = detector.detect_until(&grey, &|| cancel.is_set());
        Ok((faces, grey.width(), grey.height()))
    })
    .await?;
    let config = state.detector.config();
    Ok(Json(DetectResponse {
        faces: faces
            .into_iter()
            .take(max_faces)
            .map(|b| DetectedFace {
                embeddable: b.embeddable(config),
                landmarks: b.landmarks,
                bbox: b,
            })
            .collect(),
        width,
        height,
    }))
}
