//! From a face box to the crop the embedding model expects.
//!
//! SeetaFace's box is square and tight (brows to mouth); the model was trained on
//! database crops that frame more of the head. The crop is the box's centre moved down
//! by `crop_shift_y · s` and a `crop_width · s × crop_height · s` rectangle around it,
//! `s = max(box width, box height)`. Where it reaches past the image the border pixels
//! are repeated, so a face at the edge keeps its place in the crop.
//!
//! No alignment: SeetaFace gives no landmarks (its Euler angles are unset), so a tilted
//! head stays tilted in the crop.

use image::{GrayImage, Luma};

use super::{DetectConfig, FaceBox};

/// A crop rectangle in image pixels; it may extend past the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CropRect {
    pub x: i64,
    pub y: i64,
    pub width: u32,
    pub height: u32,
}

/// Where the crop of `face` lies under `config`.
pub fn crop_rect(face: &FaceBox, config: &DetectConfig) -> CropRect {
    let size = f64::from(face.width.max(face.height));
    let cx = f64::from(face.x) + f64::from(face.width) / 2.0;
    let cy =
        f64::from(face.y) + f64::from(face.height) / 2.0 + f64::from(config.crop_shift_y) * size;
    let width = (f64::from(config.crop_width) * size).round().max(1.0);
    let height = (f64::from(config.crop_height) * size).round().max(1.0);
    // Box sides are u32 and the factors at most 8 (validated): these fit.
    CropRect {
        x: (cx - width / 2.0).round() as i64,
        y: (cy - height / 2.0).round() as i64,
        width: width as u32,
        height: height as u32,
    }
}

/// The crop of `face` out of `image`, at the image's own resolution (the model's
/// preprocessing resizes it), border pixels repeated past the edges.
pub fn crop_face(image: &GrayImage, face: &FaceBox, config: &DetectConfig) -> GrayImage {
    let rect = crop_rect(face, config);
    let (w, h) = image.dimensions();
    if w == 0 || h == 0 {
        return GrayImage::new(rect.width, rect.height);
    }
    let max_x = i64::from(w) - 1;
    let max_y = i64::from(h) - 1;
    GrayImage::from_fn(rect.width, rect.height, |x, y| {
        // Clamped into the image: the casts cannot truncate.
        let sx = (rect.x + i64::from(x)).clamp(0, max_x) as u32;
        let sy = (rect.y + i64::from(y)).clamp(0, max_y) as u32;
        Luma([image.get_pixel(sx, sy)[0]])
    })
}
