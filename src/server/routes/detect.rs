//! `POST /detect`: where are the faces?

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{checked_max_faces, expect_images};
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

/// A `/detect` request, checked before any work.
struct DetectRequest {
    image: Vec<u8>,
    max_faces: usize,
}

impl DetectRequest {
    fn parse(state: &AppState, payload: Payload) -> Result<DetectRequest, ApiError> {
        let fields: DetectFields = payload.fields_as()?;
        let [image] = expect_images(payload.images, "(field `image`)")?;
        // Checked the way the other routes check it.
        let max_faces = checked_max_faces(state, fields.max_faces)?;
        Ok(DetectRequest { image, max_faces })
    }
}

pub async fn detect(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<DetectResponse>, ApiError> {
    let DetectRequest { image, max_faces } = DetectRequest::parse(&state, payload)?;
    let detector = std::sync::Arc::clone(&state.detector);
    let limits = state.settings.limits.clone();
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
