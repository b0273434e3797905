//! Detector and crop settings, shared by the server (`[detector]`) and
//! `train-embed --detect`, so training and serving see the same kind of crops.

use serde::{Deserialize, Serialize};

use super::DetectError;

/// The smallest `min_face_size`: searching below it would enlarge images more than 2×.
pub const MIN_SEARCH_SIZE: u32 = 20;

/// The largest `min_face_size` accepted.
pub const MAX_SEARCH_SIZE: u32 = 1000;

/// How faces are found and cut out. The defaults are SeetaFace's usual settings and a
/// crop calibrated on the databases the shipped model was trained on (see
/// [`DetectConfig::crop_width`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectConfig {
    /// Smallest face searched for, pixels, 20 to 1000. The image is resized by
    /// `40 / min_face_size` for the detector (whose window is 40 pixels): below 40 the
    /// search costs `(40 / min_face_size)²` times more, above it less.
    pub min_face_size: u32,
    /// SeetaFace's score threshold: lower finds more faces and more false ones
    /// (its authors suggest 0.95, 2.8 or 4.5).
    pub score_threshold: f64,
    /// Ratio between the sizes of adjacent image-pyramid levels, in (0.1, 0.99).
    pub pyramid_scale: f32,
    /// Sliding-window step, pixels.
    pub slide_step: u32,
    /// Faces whose box is smaller than this (width or height, pixels) are reported but
    /// not embedded. The default crop of a 40-pixel face is 44×53 pixels, a little under
    /// the model's 48×56 input: a much smaller face would be enlarged, blurred, and its
    /// embedding unreliable.
    pub min_embed_size: u32,
    /// Crop width as a multiple of the box size (`max(width, height)`). The embedding
    /// model was trained on ORL and Yale B crops; `examples/detect-calibrate.rs`
    /// measures how large their frames are relative to the detector's box (medians:
    /// ORL 1.095 × 1.333 with the centre 0.082 box sizes above the box's; Yale B
    /// 0.669 × 0.765, 0.06 below). The defaults follow ORL, whose frame shows the whole
    /// head as a crop of a photograph would, and is the 6:7 shape the model's 48×56
    /// input squeezes it into. Yale B's face-only frame is tighter than the box, and
    /// SeetaFace finds a face in about a third of those images at all.
    pub crop_width: f32,
    /// Crop height as a multiple of the box size.
    pub crop_height: f32,
    /// How far the crop's centre lies below the box's centre, as a fraction of the box
    /// size (negative: above).
    pub crop_shift_y: f32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            min_face_size: 32,
            score_threshold: 2.0,
            pyramid_scale: 0.8,
            slide_step: 4,
            min_embed_size: 40,
            crop_width: 1.1,
            crop_height: 1.33,
            crop_shift_y: -0.08,
        }
    }
}

impl DetectConfig {
    /// Checks every value against what the detector accepts (it panics otherwise).
    pub fn validate(&self) -> Result<(), DetectError> {
        let invalid = |what: &str| Err(DetectError::Config(what.to_owned()));
        if !(MIN_SEARCH_SIZE..=MAX_SEARCH_SIZE).contains(&self.min_face_size) {
            return invalid(&format!(
                "min_face_size must lie in [{MIN_SEARCH_SIZE}, {MAX_SEARCH_SIZE}], got {}",
                self.min_face_size
            ));
        }
        if !(self.score_threshold.is_finite() && self.score_threshold > 0.0) {
            return invalid(&format!(
                "score_threshold must be positive, got {}",
                self.score_threshold
            ));
        }
        if !(self.pyramid_scale > 0.1 && self.pyramid_scale < 0.99) {
            return invalid(&format!(
                "pyramid_scale must lie in (0.1, 0.99), got {}",
                self.pyramid_scale
            ));
        }
        if self.slide_step == 0 {
            return invalid("slide_step must be positive");
        }
        for (name, v) in [
            ("crop_width", self.crop_width),
            ("crop_height", self.crop_height),
        ] {
            if !(v.is_finite() && (0.25..=8.0).contains(&v)) {
                return invalid(&format!("{name} must lie in [0.25, 8], got {v}"));
            }
        }
        if !(self.crop_shift_y.is_finite() && self.crop_shift_y.abs() <= 2.0) {
            return invalid(&format!(
                "crop_shift_y must lie in [-2, 2], got {}",
                self.crop_shift_y
            ));
        }
        Ok(())
    }
}
