//! From a face to the crop the embedding model expects: the face aligned to the
//! 96×112 template frame ([`super::align`]).
//!
//! A face found by the detector carries its five landmarks. A box given by a client has
//! none: its landmarks are placed where the detector puts them on average relative to
//! its box ([`box_landmarks`]), so the crop has the same framing without the rotation.

use image::GrayImage;

use super::align::{Frame, align_in};
use super::{FaceBox, Point};

/// Typical landmark positions relative to the detector's box (fractions of its width
/// and height from its top-left corner): the medians over 1,566 LFW photographs of
/// `../shared/data/lfw`, measured by `examples/detect-calibrate.rs` (ORL's agree within
/// 0.01).
const MEAN_LANDMARKS: [[f32; 2]; 5] = [
    [0.283, 0.387],
    [0.751, 0.380],
    [0.519, 0.590],
    [0.323, 0.765],
    [0.727, 0.761],
];

/// The landmarks of `face`, or the mean ones for its box when it has none.
pub fn box_landmarks(face: &FaceBox) -> [Point; 5] {
    face.landmarks.unwrap_or_else(|| {
        let (w, h) = (face.width as f32, face.height as f32);
        MEAN_LANDMARKS.map(|[fx, fy]| Point {
            x: face.x as f32 + fx * w,
            y: face.y as f32 + fy * h,
        })
    })
}

/// The aligned 96×112 crop of `face` out of `image`; see [`crop_face_in`].
pub fn crop_face(image: &GrayImage, face: &FaceBox) -> GrayImage {
    crop_face_in(image, face, Frame::Arcface)
}

/// The crop of `face` out of `image` aligned to `frame`, border pixels repeated past
/// the edges. A degenerate box (landmarks all at one point) gives a uniform grey frame
/// of the nearest pixel rather than failing: the caller has already accepted the face.
pub fn crop_face_in(image: &GrayImage, face: &FaceBox, frame: Frame) -> GrayImage {
    let points = box_landmarks(face).map(|p| [p.x, p.y]);
    align_in(image, &points, frame).unwrap_or_else(|| {
        let (w, h) = image.dimensions();
        let value = if w == 0 || h == 0 {
            0
        } else {
            image.get_pixel(face.x.min(w - 1), face.y.min(h - 1))[0]
        };
        let (width, height) = frame.size();
        GrayImage::from_pixel(width, height, image::Luma([value]))
    })
}
