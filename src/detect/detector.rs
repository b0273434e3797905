//! The face detector behind a `&self` interface: MTCNN on grey images.

use image::GrayImage;
use serde::{Deserialize, Serialize};

use super::align::Frame;
use super::contrast::{clahe, equalised};
use super::mtcnn::{self, CascadeConfig, Detection};
use super::nets::Nets;
use super::resample::Plane;
use super::{DetectConfig, DetectError};

/// A box cut by the image border to less than this (either side, pixels) is dropped:
/// too little of the face is in the picture to be worth reporting.
const MIN_CLIPPED: u32 = super::config::MIN_SEARCH_SIZE / 2;

/// A point in image pixels (pixel-index coordinates: the first pixel's centre is 0, 0).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

/// A face found in an image: a box in the image's pixel coordinates (clipped to the
/// image), the detector's face probability in [0, 1], and, when the detector found the
/// face, its five landmarks (left eye, right eye, nose, left and right mouth corners,
/// as seen in the image). The landmarks are not part of the box's serialised form; the
/// server reports them beside it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
    pub score: f64,
    #[serde(skip)]
    pub landmarks: Option<[Point; 5]>,
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

    /// Distance in pixels from the box centre to the point `(x, y)`.
    pub fn centre_distance(&self, x: f64, y: f64) -> f64 {
        let cx = f64::from(self.x) + f64::from(self.width) / 2.0;
        let cy = f64::from(self.y) + f64::from(self.height) / 2.0;
        ((cx - x).powi(2) + (cy - y).powi(2)).sqrt()
    }
}

/// The MTCNN detector with its settings; one `FaceDetector` serves many threads.
pub struct FaceDetector {
    nets: Nets,
    config: DetectConfig,
    /// The frame crops are aligned to: the embedding model's, which is why it is not a
    /// detector setting (`[detector]` cannot change what the model expects).
    frame: Frame,
}

impl std::fmt::Debug for FaceDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceDetector")
            .field("config", &self.config)
            .field("frame", &self.frame)
            .finish_non_exhaustive()
    }
}

impl FaceDetector {
    /// The shipped MTCNN weights with `config` (validated here).
    pub fn new(config: DetectConfig) -> Result<FaceDetector, DetectError> {
        config.validate()?;
        Ok(FaceDetector {
            nets: Nets::load()?,
            config,
            frame: Frame::default(),
        })
    }

    /// The same detector cropping faces into `frame` (the model's [`Frame`]).
    pub fn with_frame(mut self, frame: Frame) -> FaceDetector {
        self.frame = frame;
        self
    }

    pub fn config(&self) -> &DetectConfig {
        &self.config
    }

    /// The frame crops of this detector's faces are aligned to.
    pub fn frame(&self) -> Frame {
        self.frame
    }

    fn cascade(&self) -> CascadeConfig {
        CascadeConfig {
            min_face_size: self.config.min_face_size as f32,
            factor: self.config.pyramid_factor,
            thresholds: self.config.thresholds,
            smallest_window: 0.0,
        }
    }

    /// Every face in `image` as the cascade reports it (box corners, probability,
    /// landmarks), in the cascade's order.
    pub fn detections(&self, image: &GrayImage) -> Vec<Detection> {
        self.detections_until(image, &|| false)
    }

    fn detections_until(
        &self,
        image: &GrayImage,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Detection> {
        self.detections_with(image, &self.cascade(), stop)
    }

    /// [`Self::detections_until`] with the cascade's settings given.
    fn detections_with(
        &self,
        image: &GrayImage,
        config: &CascadeConfig,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Detection> {
        mtcnn::detect_until(&self.nets, &Plane::from_gray(image), config, stop)
    }

    /// Every face in `image`, largest first (ties: higher score first), boxes clipped to
    /// the image; faces cut by the border to under 10 pixels are left out.
    ///
    /// A tight face crop (the face filling the frame, as in face databases) gives the
    /// cascade no context and is often missed: when nothing is found, the search is
    /// repeated once on the image inside a border of its own mean grey, a quarter of
    /// its size on each side, and what is found there is mapped back. When that finds
    /// nothing either and `tight_crops` is on, the whole image is put to O-Net as one
    /// face ([`Self::whole_crop`], with its mirror).
    pub fn detect(&self, image: &GrayImage) -> Vec<FaceBox> {
        self.detect_until(image, &|| false)
    }

    /// [`FaceDetector::detect`], giving up (with no faces) as soon as `stop()` says so;
    /// it is asked between pyramid levels and stages (the server sets it when a request
    /// times out or its client leaves).
    pub fn detect_until(
        &self,
        image: &GrayImage,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Vec<FaceBox> {
        let (w, h) = image.dimensions();
        let mut found = self.detections_until(image, stop);
        if found.is_empty() && w.min(h) >= 12 && !stop() {
            let (pad_x, pad_y) = (w.div_ceil(4), h.div_ceil(4));
            let framed = framed(image, pad_x, pad_y);
            found = self.detections_until(&framed, stop);
            for d in &mut found {
                unshift(d, pad_x as f32, pad_y as f32);
            }
        }
        if found.is_empty() && self.config.tight_crops && !stop() {
            found.extend(self.tight_crop(image));
        }
        face_boxes(&found, w, h)
    }
}

/// The lowest mean face probability of the tight-crop look (an image and its mirror):
/// a face is more likely than not. Measured in BENCHMARKS.md ("Faces found").
const TIGHT_CROP_PROBABILITY: f32 = 0.5;

/// The tight-crop look is for images shaped like face crops: sides within this ratio.
const TIGHT_CROP_ASPECT: u32 = 2;

/// The tight-crop look's local equalisation: 4×4 tiles, histograms clipped at twice
/// their mean (chosen on half of the identities, BENCHMARKS.md "Faces found").
const CLAHE_TILES: u32 = 4;
const CLAHE_CLIP: f32 = 2.0;

/// The narrowest pyramid window [`FaceDetector::crop_landmarks`] searches with, as a
/// fraction of the side of the smallest face it keeps (a box of a fifth of the image):
/// half, so that a kept face is never found only through a window of less than half its
/// size. On a 168×192 Yale B crop this leaves out three of the pyramid's seven levels,
/// nine-tenths of P-Net's work; on ORL's 92×112 one of five, half of it. Imports of
/// Yale B went from 176–198 to 197–217 faces/s on a 2-core AVX2 EPYC (ORL's within the
/// noise), and every one of ORL's and Yale B's 2 074 crops kept its face: 2 027
/// embeddings equal to the bit, 47 within 1e-7 in cosine (BENCHMARKS.md, "Bulk
/// import").
const CROP_WINDOW: f32 = 0.5;

impl FaceDetector {
    /// The image taken as one tight face crop: O-Net alone on the whole of it (inside
    /// the equalised border of the second look, two rounds of its box regression), in
    /// image pixels. `None` for an image under 12 pixels on a side.
    pub fn whole_crop(&self, image: &GrayImage) -> Option<Detection> {
        let (w, h) = image.dimensions();
        if w.min(h) < 12 {
            return None;
        }
        let (pad_x, pad_y) = (w.div_ceil(4), h.div_ceil(4));
        let framed = framed(image, pad_x, pad_y);
        let (dx, dy) = (pad_x as f32, pad_y as f32);
        // The image's own pixels, in the reference's 1-based box convention.
        let region = [dx + 1.0, dy + 1.0, dx + w as f32, dy + h as f32];
        let mut d = mtcnn::onet_at(&self.nets, &Plane::from_gray(&framed), region, 2)?;
        unshift(&mut d, dx, dy);
        Some(d)
    }

    /// The five landmarks of an image the client says is one face crop (`detect=false`).
    /// First those the cascade (the first look of [`Self::detect`]) gives the largest
    /// face whose box holds the image's centre and covers at least a fifth of it (a face
    /// that fills a crop, not one of a group photo), so that a crop is aligned alike
    /// whether it is sent with detection or without: the same landmarks, the same
    /// aligned picture (to rounding: the pyramid's levels whose windows are under
    /// `CROP_WINDOW` of the smallest such face's side are left out, so R-Net and O-Net
    /// see fewer candidates a batch). The second look and the tight-crop look are
    /// skipped (they would cost more searches on every such crop), so a crop found only
    /// by those may be aligned differently than with detection. When the cascade finds
    /// no such face: O-Net's on the whole of it ([`Self::whole_crop`]), kept when they
    /// are shaped like a face seen from the front (each left point left of its right
    /// one, the eyes above the nose above the mouth, the eyes at least a fifth of the
    /// width apart) and lie within a tenth of the image's size of its edges; `None`
    /// otherwise, and the crop is then taken as it is.
    pub fn crop_landmarks(&self, image: &GrayImage) -> Option<[Point; 5]> {
        let (w, h) = image.dimensions();
        let (cx, cy) = (w / 2, h / 2);
        let config = CascadeConfig {
            smallest_window: CROP_WINDOW * (w as f32 * h as f32 / 5.0).sqrt(),
            ..self.cascade()
        };
        let detected = face_boxes(&self.detections_with(image, &config, &|| false), w, h)
            .into_iter()
            .filter(|b| {
                (b.x..b.x + b.width).contains(&cx)
                    && (b.y..b.y + b.height).contains(&cy)
                    && 5 * b.area() >= u64::from(w) * u64::from(h)
            })
            .find_map(|b| b.landmarks);
        if detected.is_some() {
            return detected;
        }
        let found = self.whole_crop(image)?;
        let [le, re, nose, lm, rm] = found.landmarks;
        let (w, h) = (w as f32, h as f32);
        let inside = found
            .landmarks
            .iter()
            .all(|&[x, y]| (-0.1 * w..=1.1 * w).contains(&x) && (-0.1 * h..=1.1 * h).contains(&y));
        let shaped = le[0] < re[0]
            && lm[0] < rm[0]
            && le[1].max(re[1]) < nose[1]
            && nose[1] < lm[1].min(rm[1])
            && re[0] - le[0] >= 0.2 * w;
        (inside && shaped).then(|| found.landmarks.map(|[x, y]| Point { x, y }))
    }

    /// The third look, for a tight face crop the cascade missed (lit from an unusual
    /// side, or cut at the forehead and chin so that P-Net and R-Net never propose it):
    /// [`Self::whole_crop`] on the image and on its mirror. The face is kept when the
    /// mean of the two probabilities reaches [`TIGHT_CROP_PROBABILITY`]; a face seen in
    /// one orientation only is more often a pattern than a face. Box and landmarks come
    /// from the image itself, the score is the mean. When that fails, the same on the
    /// image equalised by tiles ([`clahe`]): a face half in shadow, whose dark half a
    /// global equalisation leaves dark.
    fn tight_crop(&self, image: &GrayImage) -> Option<Detection> {
        let (w, h) = image.dimensions();
        if w.max(h) > TIGHT_CROP_ASPECT * w.min(h) {
            return None;
        }
        self.both_ways(image)
            .or_else(|| self.both_ways(&clahe(image, CLAHE_TILES, CLAHE_CLIP)))
    }

    /// [`Self::whole_crop`] on `image` and on its mirror, kept when the mean of the two
    /// probabilities reaches [`TIGHT_CROP_PROBABILITY`]; box and landmarks are the
    /// image's, the score the mean.
    fn both_ways(&self, image: &GrayImage) -> Option<Detection> {
        let seen = self.whole_crop(image)?;
        let mirrored = self.whole_crop(&image::imageops::flip_horizontal(image))?;
        let score = (seen.score + mirrored.score) / 2.0;
        (score >= TIGHT_CROP_PROBABILITY).then_some(Detection { score, ..seen })
    }
}

/// `d` moved by `(−dx, −dy)`: from a framed image back to the image inside it.
fn unshift(d: &mut Detection, dx: f32, dy: f32) {
    d.bbox = [
        d.bbox[0] - dx,
        d.bbox[1] - dy,
        d.bbox[2] - dx,
        d.bbox[3] - dy,
    ];
    for p in &mut d.landmarks {
        *p = [p[0] - dx, p[1] - dy];
    }
}

/// `image` inside a border of its mean grey, `pad_x` and `pad_y` pixels wide.
fn framed(image: &GrayImage, pad_x: u32, pad_y: u32) -> GrayImage {
    let image = &equalised(image);
    let (w, h) = image.dimensions();
    let sum: u64 = image.as_raw().iter().map(|&v| u64::from(v)).sum();
    // A mean of u8 values fits in u8.
    let mean = (sum / (u64::from(w) * u64::from(h)).max(1)) as u8;
    let mut out = GrayImage::from_pixel(w + 2 * pad_x, h + 2 * pad_y, image::Luma([mean]));
    image::imageops::replace(&mut out, image, i64::from(pad_x), i64::from(pad_y));
    out
}

/// `found` in a `w × h` image as boxes clipped to it, largest first; faces cut by the
/// border to under [`MIN_CLIPPED`] pixels are left out.
fn face_boxes(found: &[Detection], w: u32, h: u32) -> Vec<FaceBox> {
    let mut faces: Vec<FaceBox> = found
        .iter()
        .filter_map(|d| to_face_box(d, w, h))
        .filter(|b| b.width.min(b.height) >= MIN_CLIPPED)
        .collect();
    sort_largest_first(&mut faces);
    faces
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

/// A detection as a box of whole pixels clipped to the `w × h` image; `None` if nothing
/// of it is inside or a value is not finite.
fn to_face_box(d: &Detection, w: u32, h: u32) -> Option<FaceBox> {
    let finite = d.bbox.iter().all(|v| v.is_finite())
        && d.score.is_finite()
        && d.landmarks.iter().flatten().all(|v| v.is_finite());
    if !finite {
        return None;
    }
    let to_image = |v: f32, max: u32| f64::from(v).round().clamp(0.0, f64::from(max));
    let x0 = to_image(d.bbox[0], w);
    let y0 = to_image(d.bbox[1], h);
    let x1 = to_image(d.bbox[2], w);
    let y1 = to_image(d.bbox[3], h);
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let landmarks = d.landmarks.map(|[x, y]| Point { x, y });
    // Whole numbers within [0, w] and [0, h] by the clamps above.
    Some(FaceBox {
        x: x0 as u32,
        y: y0 as u32,
        width: (x1 - x0) as u32,
        height: (y1 - y0) as u32,
        score: f64::from(d.score),
        landmarks: Some(landmarks),
    })
}
