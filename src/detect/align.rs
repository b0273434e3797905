//! Face alignment: the similarity transform that takes a face's five landmarks closest
//! to a fixed template, and the warp of the image into the template's frame.
//!
//! The default template is the five-point one of SphereFace and ArcFace in a 96×112
//! frame (eyes, nose tip, mouth corners of a frontal face). Every face `train-embed
//! --detect` trains on is this frame, and so is every face the service embeds from a
//! photograph for such a model; a model whose network expects another framing says so
//! ([`Frame`], in its metadata). The model's preprocessing then resizes the frame to the
//! network's input.

use image::{GrayImage, Luma};
use serde::{Deserialize, Serialize};

use super::resample::Plane;

/// Width and height of the aligned frame, pixels.
pub const FRAME_WIDTH: u32 = 96;
pub const FRAME_HEIGHT: u32 = 112;

/// Where the landmarks go in the frame (pixel-index coordinates): left eye, right eye,
/// nose, left and right mouth corners, as seen in the image.
pub const TEMPLATE: [[f32; 2]; 5] = [
    [30.2946, 51.6963],
    [65.5318, 51.5014],
    [48.0252, 71.7366],
    [33.5493, 92.3655],
    [62.7299, 92.2041],
];

/// Where the five landmarks go in dlib's 150×150 face chip (`get_face_chip(img, shape,
/// 150, 0.25)`, the input of dlib's face-recognition network): the medians of the
/// detector's own landmarks on 287 such chips of LFW photographs (people with two or
/// more), cut by dlib 20.0.1 after its HOG detector and 5-point shape predictor
/// (`scripts/dlib_reference.py --chips`, then `examples/detect-calibrate.rs` on them).
pub const DLIB_TEMPLATE: [[f32; 2]; 5] = [
    [45.15, 38.85],
    [101.40, 39.15],
    [72.75, 73.50],
    [48.15, 102.90],
    [97.65, 103.65],
];

/// The frame a model's network expects faces in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// [`TEMPLATE`] in 96×112: what `train-embed --detect` trains on.
    #[default]
    Arcface,
    /// [`DLIB_TEMPLATE`] in 150×150: dlib's face chip.
    Dlib,
}

impl Frame {
    /// Every frame a model file can name.
    pub const ALL: [Frame; 2] = [Frame::Arcface, Frame::Dlib];

    /// Width and height, pixels.
    pub fn size(self) -> (u32, u32) {
        match self {
            Frame::Arcface => (FRAME_WIDTH, FRAME_HEIGHT),
            Frame::Dlib => (150, 150),
        }
    }

    /// Where the landmarks go (pixel-index coordinates).
    pub fn template(self) -> &'static [[f32; 2]; 5] {
        match self {
            Frame::Arcface => &TEMPLATE,
            Frame::Dlib => &DLIB_TEMPLATE,
        }
    }
}

/// `x' = a·x − b·y + tx`, `y' = b·x + a·y + ty`: rotation, uniform scale, translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f32,
    pub b: f32,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub fn apply(&self, [x, y]: [f32; 2]) -> [f32; 2] {
        [
            self.a * x - self.b * y + self.tx,
            self.b * x + self.a * y + self.ty,
        ]
    }

    /// The inverse transform; `None` when the scale is zero.
    pub fn inverse(&self) -> Option<Similarity> {
        let n = self.a * self.a + self.b * self.b;
        if !(n.is_finite() && n > 0.0) {
            return None;
        }
        let (a, b) = (self.a / n, -self.b / n);
        // x = A⁻¹ (x' − t)
        Some(Similarity {
            a,
            b,
            tx: -(a * self.tx - b * self.ty),
            ty: -(b * self.tx + a * self.ty),
        })
    }
}

/// The least-squares similarity taking `src` to `dst` (Umeyama 1991, in 2-D).
///
/// In the plane, Umeyama's SVD solution with its reflection fix reduces to closed form:
/// with both point sets centred, `a = Σ(sx·dx + sy·dy) / Σ|s|²` and
/// `b = Σ(sx·dy − sy·dx) / Σ|s|²`, then `t = μ_dst − [a −b; b a]·μ_src`. `None` when
/// the source points coincide or are not finite.
pub fn estimate(src: &[[f32; 2]], dst: &[[f32; 2]]) -> Option<Similarity> {
    let n = src.len().min(dst.len());
    if n < 2 {
        return None;
    }
    let mean = |pts: &[[f32; 2]]| {
        let (sx, sy) = pts[..n].iter().fold((0.0f64, 0.0f64), |(x, y), p| {
            (x + f64::from(p[0]), y + f64::from(p[1]))
        });
        (sx / n as f64, sy / n as f64)
    };
    let (msx, msy) = mean(src);
    let (mdx, mdy) = mean(dst);
    let (mut dot, mut cross, mut norm) = (0.0f64, 0.0f64, 0.0f64);
    for (s, d) in src[..n].iter().zip(&dst[..n]) {
        let (sx, sy) = (f64::from(s[0]) - msx, f64::from(s[1]) - msy);
        let (dx, dy) = (f64::from(d[0]) - mdx, f64::from(d[1]) - mdy);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    if !(norm.is_finite() && norm > 1e-9 && dot.is_finite() && cross.is_finite()) {
        return None;
    }
    let (a, b) = (dot / norm, cross / norm);
    Some(Similarity {
        a: a as f32,
        b: b as f32,
        tx: (mdx - (a * msx - b * msy)) as f32,
        ty: (mdy - (b * msx + a * msy)) as f32,
    })
}

/// The face with `landmarks` (image pixels) warped into the 96×112 template frame; see
/// [`align_in`].
pub fn align(image: &GrayImage, landmarks: &[[f32; 2]; 5]) -> Option<GrayImage> {
    align_in(image, landmarks, Frame::Arcface)
}

/// The face with `landmarks` (image pixels) warped into `frame` by bilinear sampling,
/// border pixels repeated past the image's edges. `None` when the landmarks do not
/// define a transform (all at one point, or not finite).
pub fn align_in(image: &GrayImage, landmarks: &[[f32; 2]; 5], frame: Frame) -> Option<GrayImage> {
    if image.width() == 0 || image.height() == 0 {
        return None;
    }
    let to_frame = estimate(landmarks, frame.template())?;
    let to_image = to_frame.inverse()?;
    let plane = Plane::from_gray(image);
    let (width, height) = frame.size();
    Some(GrayImage::from_fn(width, height, |u, v| {
        let [x, y] = to_image.apply([u as f32, v as f32]);
        Luma([round_to_u8(plane.bilinear(x, y))])
    }))
}

/// `v.round().clamp(0.0, 255.0) as u8` (halves away from zero, NaN to 0) without
/// `round`, a library call on the baseline x86-64 target: clamped first (the same for
/// every `v`), the fraction of a value in 0–255 is exact.
#[inline]
fn round_to_u8(v: f32) -> u8 {
    let v = v.clamp(0.0, 255.0);
    let whole = v as u8;
    whole + u8::from(v - f32::from(whole) >= 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_u8_is_round_then_clamp() {
        let edges = [
            f32::NAN,
            f32::NEG_INFINITY,
            f32::INFINITY,
            -0.5,
            -0.49999997,
            -0.0,
            0.49999997,
            0.5,
            254.5,
            254.49998,
            255.0,
            255.49998,
            255.5,
            1e9,
        ];
        let grid = (-4000..=270_000).map(|i| i as f32 / 1000.0);
        for v in edges.into_iter().chain(grid) {
            assert_eq!(round_to_u8(v), v.round().clamp(0.0, 255.0) as u8, "{v}");
        }
    }

    #[test]
    fn estimate_recovers_a_known_similarity_and_its_inverse() {
        let truth = Similarity {
            a: 0.8,
            b: 0.3,
            tx: 12.0,
            ty: -4.0,
        };
        let src = [
            [1.0, 2.0],
            [40.0, 5.0],
            [20.0, 30.0],
            [8.0, 50.0],
            [33.0, 49.0],
        ];
        let dst: Vec<[f32; 2]> = src.iter().map(|&p| truth.apply(p)).collect();
        let fit = estimate(&src, &dst).unwrap();
        for (got, want) in [(fit.a, 0.8), (fit.b, 0.3), (fit.tx, 12.0), (fit.ty, -4.0)] {
            assert!((got - want).abs() < 1e-4, "{fit:?}");
        }
        let back = fit.inverse().unwrap().apply(fit.apply([7.0, 9.0]));
        assert!((back[0] - 7.0).abs() < 1e-4 && (back[1] - 9.0).abs() < 1e-4);
    }

    #[test]
    fn a_mirrored_point_set_gets_the_best_rotation_not_a_reflection() {
        // Mirror images cannot be matched by a rotation: the fit is a proper similarity
        // (a² + b² > 0, no flip), the best one in least squares.
        let src = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let dst = [[0.0, 0.0], [-10.0, 0.0], [0.0, 10.0]];
        let fit = estimate(&src, &dst).unwrap();
        assert!(fit.a.is_finite() && fit.b.is_finite());
        assert!(estimate(&[[1.0, 1.0]; 5], &TEMPLATE).is_none());
    }

    #[test]
    fn landmarks_at_the_template_give_the_image_itself() {
        let image = GrayImage::from_fn(96, 112, |x, y| Luma([((x * 7 + y * 3) % 256) as u8]));
        let aligned = align(&image, &TEMPLATE).unwrap();
        assert_eq!(aligned.dimensions(), (96, 112));
        let diff = image
            .pixels()
            .zip(aligned.pixels())
            .map(|(a, b)| (i32::from(a[0]) - i32::from(b[0])).abs())
            .max()
            .unwrap();
        assert!(diff <= 1, "largest difference {diff}");
    }

    #[test]
    fn the_dlib_frame_is_150_square_and_a_face_at_its_template_is_left_in_place() {
        let image = GrayImage::from_fn(150, 150, |x, y| Luma([((x * 5 + y * 11) % 256) as u8]));
        let aligned = align_in(&image, &DLIB_TEMPLATE, Frame::Dlib).unwrap();
        assert_eq!(aligned.dimensions(), (150, 150));
        assert!(
            image
                .pixels()
                .zip(aligned.pixels())
                .all(|(a, b)| a[0].abs_diff(b[0]) <= 1)
        );
        // The same landmarks in the ArcFace frame: a different, smaller crop.
        let arcface = align_in(&image, &DLIB_TEMPLATE, Frame::Arcface).unwrap();
        assert_eq!(arcface.dimensions(), (FRAME_WIDTH, FRAME_HEIGHT));
        // Stored by name; files without the field mean the ArcFace frame.
        assert_eq!(serde_json::to_string(&Frame::Dlib).unwrap(), "\"dlib\"");
        assert_eq!(Frame::default(), Frame::Arcface);
    }
}
