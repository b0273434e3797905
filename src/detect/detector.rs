//! SeetaFace frontal detection (the `rustface` crate) behind a `&self` interface.

use image::{GrayImage, imageops};
use serde::{Deserialize, Serialize};

use super::{DetectConfig, DetectError};

/// The SeetaFace frontal model from the `rustface` package (BSD-2-Clause, see
/// `models/seeta_fd_frontal_v1.0.LICENSE`), compiled in: detection reads no file.
const SEETA_FRONTAL: &[u8] = include_bytes!("../../models/seeta_fd_frontal_v1.0.bin");

/// SeetaFace slides a 40-pixel window over an image pyramid whose smallest level is
/// 40 pixels on its short side; a smaller image has no level at all (and the crate's
/// window arithmetic underflows on one), so it is answered with no face. It is also the
/// smallest face it finds in the image it is given.
const WINDOW: u32 = 40;

/// A box cut by the image border to less than this (either side, pixels) is dropped:
/// too little of the face is in the picture to be worth reporting.
const MIN_CLIPPED: u32 = super::config::MIN_SEARCH_SIZE / 2;

/// A face found in an image: a box in the image's pixel coordinates (clipped to the
/// image) and the detector's confidence (higher is surer; not a probability).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub score: f64,
}

impl FaceBox {
    pub fn area(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &FaceBox) -> f64 {
        let x0 = self.x.max(other.x);
        let y0 = self.y.max(other.y);
        let x1 = (self.x + self.width).min(other.x + other.width);
        let y1 = (self.y + self.height).min(other.y + other.height);
        if x1 <= x0 || y1 <= y0 {
            return 0.0;
        }
        let inter = f64::from(x1 - x0) * f64::from(y1 - y0);
        inter / (self.area() as f64 + other.area() as f64 - inter)
    }

    /// Whether the face is large enough to embed under `config`.
    pub fn embeddable(&self, config: &DetectConfig) -> bool {
        self.width.min(self.height) >= config.min_embed_size
    }
}

/// A face detector with its settings. `rustface`'s detector needs `&mut self` and is not
/// `Send`, so each call builds one from a clone of the parsed model (a copy of about
/// 1 MB, small beside the detection itself); one `FaceDetector` serves many threads.
#[derive(Clone)]
pub struct FaceDetector {
    model: rustface::Model,
    config: DetectConfig,
}

impl std::fmt::Debug for FaceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceDetector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl FaceDetector {
    /// The shipped SeetaFace frontal model with `config` (validated here).
    pub fn new(config: DetectConfig) -> Result<FaceDetector, DetectError> {
        config.validate()?;
        let model =
            rustface::read_model(SEETA_FRONTAL).map_err(|e| DetectError::Model(e.to_string()))?;
        Ok(FaceDetector { model, config })
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// Every face in `image`, largest first (ties: higher score first).
    ///
    /// SeetaFace's smallest face is its 40-pixel window (`rustface` 0.1.7 keeps its
    /// minimum-face setting but never uses it), so the image is resized by
    /// `40 / min_face_size` first: enlarged to find smaller faces, shrunk to skip them
    /// (and go faster). Boxes are mapped back to the image's own pixels.
    pub fn detect(&self, image: &GrayImage) -> Vec<FaceBox> {
        let (w, h) = image.dimensions();
        let factor = f64::from(WINDOW) / f64::from(self.config.min_face_size);
        // Bounded by the image size times at most 2 (min_face_size ≥ 20).
        let sw = (f64::from(w) * factor).round() as u32;
        let sh = (f64::from(h) * factor).round() as u32;
        if sw.min(sh) < WINDOW {
            return Vec::new();
        }
        let resized;
        let searched = if (sw, sh) == (w, h) {
            image
        } else {
            resized = imageops::resize(image, sw, sh, imageops::FilterType::Triangle);
            &resized
        };
        let mut detector = rustface::create_detector_with_model(self.model.clone());
        detector.set_score_thresh(self.config.score_threshold);
        detector.set_pyramid_scale_factor(self.config.pyramid_scale);
        detector.set_slide_window_step(self.config.slide_step, self.config.slide_step);
        let data = rustface::ImageData::new(searched.as_raw(), sw, sh);
        let mut faces: Vec<FaceBox> = detector
            .detect(&data)
            .iter()
            .filter_map(|face| back_to_image(face.bbox(), face.score(), factor, w, h))
            .filter(|b| b.width.min(b.height) >= MIN_CLIPPED)
            .collect();
        sort_largest_first(&mut faces);
        faces
    }
}

/// Largest box first; equal areas by score, then position, so the order is total.
pub fn sort_largest_first(faces: &mut [FaceBox]) {
    faces.sort_by(|a, b| {
        b.area()
            .cmp(&a.area())
            .then(b.score.total_cmp(&a.score))
            .then((a.y, a.x).cmp(&(b.y, b.x)))
    });
}

/// A box found in the image resized by `factor`, in the `w × h` image's pixels and
/// clipped to it; `None` if nothing of it is inside.
fn back_to_image(
    bbox: &rustface::Rectangle,
    score: f64,
    factor: f64,
    w: u32,
    h: u32,
) -> Option<FaceBox> {
    let to_image = |v: f64, max: u32| (v / factor).round().clamp(0.0, f64::from(max));
    let x0 = to_image(f64::from(bbox.x()), w);
    let y0 = to_image(f64::from(bbox.y()), h);
    let x1 = to_image(f64::from(bbox.x()) + f64::from(bbox.width()), w);
    let y1 = to_image(f64::from(bbox.y()) + f64::from(bbox.height()), h);
    if x1 <= x0 || y1 <= y0 || !score.is_finite() {
        return None;
    }
    // Whole numbers within [0, w] and [0, h] by the clamps above.
    Some(FaceBox {
        x: x0 as u32,
        y: y0 as u32,
        width: (x1 - x0) as u32,
        height: (y1 - y0) as u32,
        score,
    })
}
