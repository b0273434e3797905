//! The open-set decision's threshold: set outright, or derived from a target
//! false-accept rate and the gallery's current size through the model's impostor tail
//! ([`crate::model::TailModel`]).
//!
//! Precedence: the request's `threshold`, the request's `far`, the gallery's
//! `threshold`, the gallery's `far`, then `identify.default_threshold` (by default
//! `"gallery"`: `identify.far` for this gallery's size).

use serde_json::Value;

use super::config::{CalibratedFar, ThresholdPolicy};
use super::error::ApiError;
use super::galleries::GalleryState;
use super::state::AppState;
use crate::model::{TailModel, Thresholds};

/// The threshold a decision uses and what it was derived from.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub threshold: f32,
    /// The target FAR the threshold was derived from; `None` for a threshold set outright.
    pub far: Option<f64>,
    /// Identities in the gallery it was computed for.
    pub gallery_size: usize,
    /// Mean enrolled faces per identity (the tail's `k`).
    pub faces_per_identity: usize,
}

impl Decision {
    /// Estimated fraction of strangers scoring at least `similarity` against some identity
    /// of this gallery; `None` when the model carries no impostor tail.
    pub fn false_accept_rate(&self, tail: Option<&TailModel>, similarity: f32) -> Option<f64> {
        tail.map(|t| {
            t.gallery_far(
                f64::from(similarity),
                self.gallery_size,
                self.faces_per_identity,
            )
        })
    }
}

/// The decision for `gallery` (absent: an empty default gallery) given the request's
/// own `threshold` and `far`, both already checked; `size` overrides the gallery's
/// identity count (1 for a comparison with one identity).
pub fn decide(
    state: &AppState,
    threshold: Option<f32>,
    far: Option<f64>,
    gallery: Option<&GalleryState>,
    size: Option<usize>,
) -> Decision {
    let gallery_size = size.unwrap_or_else(|| gallery.map_or(0, GalleryState::identity_count));
    let faces = gallery.map_or(1, GalleryState::faces_per_identity);
    let fixed = |t: f32| Decision {
        threshold: t,
        far: None,
        gallery_size,
        faces_per_identity: faces,
    };
    let for_far = |far: f64| Decision {
        threshold: threshold_for(state, far, gallery_size, faces),
        far: Some(far),
        gallery_size,
        faces_per_identity: faces,
    };
    if let Some(t) = threshold {
        return fixed(t);
    }
    if let Some(f) = far {
        return for_far(f);
    }
    if let Some(t) = gallery.and_then(GalleryState::threshold) {
        return fixed(t as f32);
    }
    if let Some(f) = gallery.and_then(GalleryState::far) {
        return for_far(f);
    }
    let stored = state.embedder.thresholds();
    match state.settings.identify.default_threshold {
        ThresholdPolicy::Calibrated(CalibratedFar::Gallery) => for_far(state.settings.identify.far),
        ThresholdPolicy::Calibrated(CalibratedFar::Far0_1Pct) => fixed(stored.far_0_1pct),
        ThresholdPolicy::Calibrated(CalibratedFar::Far1Pct) => fixed(stored.far_1pct),
        ThresholdPolicy::Calibrated(CalibratedFar::Far10Pct) => fixed(stored.far_10pct),
        ThresholdPolicy::Fixed(t) => fixed(t),
    }
}

/// The threshold at which at most `far` of strangers match someone among `identities`
/// identities of `faces` faces each; without a tail, the model's fixed threshold at the
/// largest FAR not above `far` (its 0.1% one below that).
fn threshold_for(state: &AppState, far: f64, identities: usize, faces: usize) -> f32 {
    match &state.embedder.meta().tail {
        Some(tail) => tail.threshold(far, identities, faces) as f32,
        None => fallback(state.embedder.thresholds(), far),
    }
}

fn fallback(stored: &Thresholds, far: f64) -> f32 {
    if far >= 0.1 {
        stored.far_10pct
    } else if far >= 0.01 {
        stored.far_1pct
    } else {
        stored.far_0_1pct
    }
}

/// A target false-accept rate from a request or a gallery: a number (or numeric string)
/// strictly between 0 and 1; anything else is a 422 naming the field.
pub fn parse_far(raw: Option<&Value>) -> Result<Option<f64>, ApiError> {
    let bad = |got: String| ApiError::OutOfRange {
        field: "far",
        reason: format!("expected a false-accept rate strictly between 0 and 1, got {got}"),
    };
    let value = match raw {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| bad(n.to_string()))?,
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| bad(format!("{s:?}")))?,
        Some(other) => return Err(bad(other.to_string())),
    };
    if value.is_finite() && value > 0.0 && value < 1.0 {
        Ok(Some(value))
    } else {
        Err(bad(value.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn far_must_lie_strictly_between_0_and_1() {
        assert_eq!(parse_far(Some(&json!(0.01))).unwrap(), Some(0.01));
        assert_eq!(parse_far(Some(&json!("0.001"))).unwrap(), Some(0.001));
        assert_eq!(parse_far(None).unwrap(), None);
        assert_eq!(parse_far(Some(&Value::Null)).unwrap(), None);
        for bad in [
            json!(0),
            json!(-0.1),
            json!(1),
            json!(1.5),
            json!("NaN"),
            json!("inf"),
            json!("often"),
            json!(true),
            json!([0.1]),
        ] {
            let err = parse_far(Some(&bad)).expect_err(&bad.to_string());
            assert!(
                matches!(err, ApiError::OutOfRange { field: "far", .. }),
                "{bad}: {err:?}"
            );
        }
    }
}
