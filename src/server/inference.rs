//! Decoding, detecting and embedding uploaded images, off the async runtime.
//!
//! Each image is read one of three ways ([`Reading`]): whole, as one face crop
//! (`detect=false`: not searched, aligned on its landmarks when the model learned
//! aligned faces, see [`read_whole`]); by detection, every face
//! found (largest first, up to `max_faces`); or around a box the client gives. Faces
//! smaller than the detector's `min_embed_size` are reported without an embedding. All
//! crops of a request are embedded as one batch.

use std::io::Cursor;

use image::{GrayImage, ImageFormat};

use super::decode::{decode_image, sha256_hex};
use super::error::ApiError;
use super::state::AppState;
use super::work::{Cancel, header_pixels};
use crate::detect::{FaceBox, crop_face_in};
use crate::embedding::Embedding;

/// How to find the face(s) of one image.
#[derive(Clone, Copy, Debug)]
pub enum Reading {
    /// The image is one face crop: no search, no box.
    Whole,
    /// Detect faces; keep the `max_faces` largest.
    Detect { max_faces: usize },
    /// The client says where the face is.
    Given(FaceBox),
}

/// One face of an uploaded image.
pub struct Face {
    /// Where it is; `None` when the image was read whole.
    pub bbox: Option<FaceBox>,
    /// Its embedding; `None` when the face is too small to embed.
    pub embedding: Option<Embedding>,
    /// The crop that was embedded, PNG-encoded (only when asked for, see [`analyse`]).
    pub crop_png: Option<Vec<u8>>,
}

/// One uploaded image after detection and inference.
pub struct AnalysedImage {
    /// Largest first.
    pub faces: Vec<Face>,
    /// Faces smaller than `min_embed_size`, counted before `max_faces` applied.
    pub too_small: usize,
    /// Hex SHA-256 of the uploaded bytes.
    pub sha256: String,
    /// The uploaded bytes themselves.
    pub bytes: Vec<u8>,
}

impl AnalysedImage {
    /// The largest face that has an embedding.
    pub fn first_embedded(&self) -> Option<(&Face, &Embedding)> {
        self.faces
            .iter()
            .find_map(|f| f.embedding.as_ref().map(|e| (f, e)))
    }

    /// The largest embedded face, or a 422 naming image `index`.
    pub fn require_face(&self, index: usize) -> Result<(&Face, &Embedding), ApiError> {
        self.first_embedded().ok_or(ApiError::NoFace {
            index,
            too_small: self.too_small,
        })
    }
}

/// Decode every image (under the configured limits), find its faces as `readings` say
/// (one per image), and embed every face large enough as one batch, on the blocking
/// pool. With `keep_crops`, detected faces also carry their crop as PNG (what
/// enrollment stores). Errors name the image by its position in the request.
pub async fn analyse(
    state: &AppState,
    images: Vec<Vec<u8>>,
    readings: Vec<Reading>,
    keep_crops: bool,
) -> Result<Vec<AnalysedImage>, ApiError> {
    analyse_then(state, images, readings, keep_crops, Ok).await
}

/// [`analyse`], then `then` on its result on the same blocking thread (still holding the
/// request's share of the pixel budget), without going back to the async runtime in
/// between. `/identify` searches the gallery this way: the callers of one forward pass of
/// the network are woken together and go straight to the index, where through the runtime
/// each first waited for a new blocking task while the next forward pass held the cores.
/// One blocking task a request instead of two; what it changes in a million-face server's
/// throughput is within the noise measured so far (BENCHMARKS.md, "Large galleries").
pub async fn analyse_then<T: Send + 'static>(
    state: &AppState,
    images: Vec<Vec<u8>>,
    readings: Vec<Reading>,
    keep_crops: bool,
    then: impl FnOnce(Vec<AnalysedImage>) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let max_side = state.settings.limits.max_image_side;
    let pixels = images.iter().map(|b| header_pixels(b, max_side)).sum();
    let blocking_state = state.clone();
    run_budgeted(state, pixels, move |cancel| {
        then(analyse_blocking(
            &blocking_state,
            images,
            &readings,
            keep_crops,
            cancel,
        )?)
    })
    .await
}

/// Run `work` on the blocking pool once `pixels` fit in the server's pixel budget,
/// holding its share until the work ends (not merely until the request does). If this
/// future is dropped — the request timed out, or its client left — `work` sees its
/// [`Cancel`] set and stops at its next check.
pub async fn run_budgeted<T: Send + 'static>(
    state: &AppState,
    pixels: u64,
    work: impl FnOnce(&Cancel) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let permit = state.pixels.reserve(pixels).await;
    let cancel = Cancel::default();
    let _cancel_on_drop = cancel.on_drop();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(&cancel)
    })
    .await?
}

/// What cancelled work returns; nobody is waiting for it any more.
fn cancelled(state: &AppState) -> ApiError {
    ApiError::Timeout {
        ms: state.settings.limits.request_timeout_ms,
    }
}

fn analyse_blocking(
    state: &AppState,
    images: Vec<Vec<u8>>,
    readings: &[Reading],
    keep_crops: bool,
    cancel: &Cancel,
) -> Result<Vec<AnalysedImage>, ApiError> {
    let stop = || cancel.is_set();
    let limits = &state.settings.limits;
    let detector = &state.detector;
    let config = detector.config();
    // Crops to embed, and for each image its faces and how many were too small.
    let mut crops: Vec<GrayImage> = Vec::new();
    let mut layout: Vec<(Vec<Slot>, usize)> = Vec::new();
    for (index, (bytes, reading)) in images.iter().zip(readings).enumerate() {
        if stop() {
            return Err(cancelled(state));
        }
        let decoded = decode_image(bytes, index, limits)?;
        let mut faces = Vec::new();
        let mut too_small = 0;
        match *reading {
            Reading::Whole => {
                // A crop smaller than the smallest face the detector would embed carries
                // too little to tell people apart (a 1×1 image matches any flat frame).
                if decoded.width().min(decoded.height()) < config.min_embed_size {
                    return Err(ApiError::FaceTooSmall {
                        index,
                        width: decoded.width(),
                        height: decoded.height(),
                        min: config.min_embed_size,
                    });
                }
                faces.push((None, Some(crops.len())));
                crops.push(read_whole(decoded.into_luma8(), state));
            }
            Reading::Detect { max_faces } => {
                // Consumes the decoded image: a 16-bit or alpha original is freed before
                // detection allocates its pyramid.
                let grey = decoded.into_luma8();
                let found = detector.detect_until(&grey, &stop);
                too_small = found.iter().filter(|b| !b.embeddable(config)).count();
                for b in found.into_iter().take(max_faces) {
                    faces.push((Some(b), embed_crop(&grey, &b, state, &mut crops)));
                }
            }
            Reading::Given(b) => {
                let grey = decoded.into_luma8();
                let b = check_given_box(b, &grey, index, state)?;
                let b = with_landmarks(b, &grey, state, &stop);
                faces.push((Some(b), embed_crop(&grey, &b, state, &mut crops)));
            }
        }
        layout.push((faces, too_small));
    }
    if stop() {
        return Err(cancelled(state));
    }
    let mut embeddings: Vec<Option<Embedding>> = embed_checked(state, &crops)?
        .into_iter()
        .map(Some)
        .collect();
    let mut analysed = Vec::with_capacity(images.len());
    for (bytes, (slots, too_small)) in images.into_iter().zip(layout) {
        let mut faces = Vec::with_capacity(slots.len());
        for (bbox, slot) in slots {
            let crop_png = match (keep_crops, bbox, slot) {
                (true, Some(_), Some(i)) => Some(png(&crops[i])?),
                _ => None,
            };
            faces.push(Face {
                bbox,
                embedding: slot.and_then(|i| embeddings[i].take()),
                crop_png,
            });
        }
        analysed.push(AnalysedImage {
            faces,
            too_small,
            sha256: sha256_hex(&bytes),
            bytes,
        });
    }
    Ok(analysed)
}

/// A face crop sent as it is (`detect=false`), as the model should see it: aligned on
/// the landmarks the detector finds in it when the model learned aligned faces (and the
/// landmarks are plausible), else unchanged. Training aligned every face, so a crop
/// framed differently (ORL's 92×112, say, for dlib's 150×150 chip) would otherwise reach
/// the network stretched and off its template.
fn read_whole(image: GrayImage, state: &AppState) -> GrayImage {
    if !state.embedder.meta().learned_aligned_faces() {
        return image;
    }
    aligned_whole(image, &state.detector)
}

/// `image` aligned to `detector`'s frame on the landmarks of
/// [`FaceDetector::crop_landmarks`](crate::detect::FaceDetector::crop_landmarks), or
/// unchanged when it has none.
pub fn aligned_whole(image: GrayImage, detector: &crate::detect::FaceDetector) -> GrayImage {
    let aligned = detector.crop_landmarks(&image).and_then(|points| {
        crate::detect::align::align_in(&image, &points.map(|p| [p.x, p.y]), detector.frame())
    });
    aligned.unwrap_or(image)
}

/// A face before embedding: its box, and its crop's index in the batch (if embedded).
type Slot = (Option<FaceBox>, Option<usize>);

/// Queue the crop of `face` for embedding if it is large enough; its slot in `crops`.
fn embed_crop(
    grey: &GrayImage,
    face: &FaceBox,
    state: &AppState,
    crops: &mut Vec<GrayImage>,
) -> Option<usize> {
    let config = state.detector.config();
    face.embeddable(config).then(|| {
        crops.push(crop_face_in(grey, face, state.detector.frame()));
        crops.len() - 1
    })
}

/// A client's box takes the landmarks of the detected face it matches best (IoU ≥ 0.5,
/// the usual case: the client picked one of `/detect`'s boxes), so the face is aligned
/// as a detected one; with no such face it is cropped from its mean landmarks.
fn with_landmarks(
    b: FaceBox,
    grey: &GrayImage,
    state: &AppState,
    stop: &(dyn Fn() -> bool + Sync),
) -> FaceBox {
    let best = state
        .detector
        .detect_until(grey, stop)
        .into_iter()
        .map(|f| (f.iou(&b), f))
        .filter(|(iou, _)| *iou >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    FaceBox {
        landmarks: best.and_then(|(_, f)| f.landmarks),
        ..b
    }
}

/// A client's box must overlap the image and be large enough to embed; it is clipped
/// to the image like a detected one.
fn check_given_box(
    b: FaceBox,
    grey: &GrayImage,
    index: usize,
    state: &AppState,
) -> Result<FaceBox, ApiError> {
    let (w, h) = grey.dimensions();
    let x1 = b.x.saturating_add(b.width).min(w);
    let y1 = b.y.saturating_add(b.height).min(h);
    let invalid = |reason: String| ApiError::InvalidField {
        field: "boxes",
        reason,
    };
    if b.x >= x1 || b.y >= y1 {
        return Err(invalid(format!(
            "the box for image {index} lies outside the image ({w}×{h})"
        )));
    }
    let clipped = FaceBox {
        width: x1 - b.x,
        height: y1 - b.y,
        ..b
    };
    let min = state.detector.config().min_embed_size;
    if !clipped.embeddable(state.detector.config()) {
        return Err(invalid(format!(
            "the box for image {index} is {}×{} inside the image; faces smaller than \
             {min} pixels are not embedded",
            clipped.width, clipped.height
        )));
    }
    Ok(clipped)
}

/// Embed `crops`; the model checks each embedding as it makes it, here only their
/// count and length are checked against the model's dimension.
fn embed_checked(state: &AppState, crops: &[GrayImage]) -> Result<Vec<Embedding>, ApiError> {
    if crops.is_empty() {
        return Ok(Vec::new());
    }
    let embeddings = state
        .embedder
        .embed(crops)
        .map_err(|e| ApiError::internal(format!("embedding failed: {e}")))?;
    let dim = state.embedder.dim();
    if embeddings.len() != crops.len() || embeddings.iter().any(|e| e.len() != dim) {
        return Err(ApiError::internal(format!(
            "model returned {} embeddings for {} faces, expected vectors of dim {dim}",
            embeddings.len(),
            crops.len()
        )));
    }
    Ok(embeddings)
}

/// PNG bytes of a crop (lossless, so re-embedding it later gives the same input).
pub(super) fn png(image: &GrayImage) -> Result<Vec<u8>, ApiError> {
    let mut out = Cursor::new(Vec::new());
    image
        .write_to(&mut out, ImageFormat::Png)
        .map_err(|e| ApiError::internal(format!("cannot encode a face crop: {e}")))?;
    Ok(out.into_inner())
}
