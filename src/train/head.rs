//! The classifier head used by the softmax loss during training only: it turns the
//! embedding (N, K) into logits (N, C) over the C training identities and is dropped when
//! the model is saved (the saved model is the embedding network).

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::margin::Margin;
use crate::nn::Result;
use crate::nn::cosine_head::CosineHead;
use crate::nn::init::Init;
use crate::nn::linear::Linear;
use crate::nn::sequential::Sequential;

/// Which classifier sits on top of the embedding for `loss = softmax`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum HeadConfig {
    /// `logits = W e + b`, a plain linear layer (`W` is (C, K)). Since `e` is unit
    /// length, the logits' range is bounded by ‖W‖ rows: the weights must grow for the
    /// softmax to become confident, which weight decay fights.
    Linear,
    /// `logits_c = s · cos(e, w_c) = s · ⟨e, w_c⟩ / ‖w_c‖` (a normalised softmax): the
    /// decision depends only on angles, the quantity the open-set matcher thresholds,
    /// and the scale `s` sets how peaked the softmax can get. The default; `s` around
    /// 16–32 works for a few hundred classes. With `margin` m > 0 it is CosFace (Wang et
    /// al. 2018): during training the true class's logit is `s · (cos − m)`, so a face
    /// must be closer to its own identity than to any other by m in cosine — the
    /// room an unknown face needs to fall between identities.
    Cosine {
        scale: f32,
        #[serde(default)]
        margin: f32,
    },
    /// The cosine head with ArcFace's additive angular margin (Deng et al. 2019): the
    /// true class's logit is `s · cos(θ + m)` during training, with insightface's
    /// fallback past θ + m = π, or with `easy_margin` no margin where cos θ ≤ 0 (see
    /// [`Margin::ArcFace`]). insightface trains with s = 64, m = 0.5 on ~85k identities;
    /// a few hundred identities want a smaller s (16–32).
    Arcface {
        #[serde(default = "default_scale")]
        scale: f32,
        #[serde(default = "default_arc_margin")]
        margin: f32,
        #[serde(default)]
        easy_margin: bool,
    },
    /// The cosine head with SphereFace's multiplicative angular margin (Liu et al. 2017):
    /// the true class's logit is `s · (λ cos θ + ψ(θ)) / (1 + λ)` during training with
    /// `ψ(θ) = (−1)^k cos(mθ) − 2k` for θ ∈ [kπ/m, (k+1)π/m] and an integer `margin` m.
    /// λ is fixed (the paper anneals it down to 5; see [`Margin::SphereFace`]).
    Sphereface {
        #[serde(default = "default_scale")]
        scale: f32,
        #[serde(default = "default_sphere_margin")]
        margin: u32,
        #[serde(default = "default_sphere_lambda")]
        lambda: f32,
    },
}

fn default_scale() -> f32 {
    16.0
}
fn default_arc_margin() -> f32 {
    0.5
}
fn default_sphere_margin() -> u32 {
    4
}
/// The paper's λ_min, where its annealing ends.
fn default_sphere_lambda() -> f32 {
    5.0
}

impl Default for HeadConfig {
    fn default() -> Self {
        HeadConfig::Cosine {
            scale: 16.0,
            margin: 0.0,
        }
    }
}

impl HeadConfig {
    /// ArcFace with insightface's m = 0.5 and the cosine head's default scale.
    pub fn arcface() -> Self {
        HeadConfig::Arcface {
            scale: default_scale(),
            margin: default_arc_margin(),
            easy_margin: false,
        }
    }

    /// SphereFace with the paper's m = 4 and λ fixed at its final 5.
    pub fn sphereface() -> Self {
        HeadConfig::Sphereface {
            scale: default_scale(),
            margin: default_sphere_margin(),
            lambda: default_sphere_lambda(),
        }
    }

    /// The cosine scale s, `None` for the linear head.
    pub fn scale(&self) -> Option<f32> {
        match *self {
            HeadConfig::Linear => None,
            HeadConfig::Cosine { scale, .. }
            | HeadConfig::Arcface { scale, .. }
            | HeadConfig::Sphereface { scale, .. } => Some(scale),
        }
    }

    /// The margin training applies to the true class's logit, with the scale s, or
    /// `None` (linear head, or a cosine head with margin 0).
    pub fn margin(&self) -> Option<(Margin, f32)> {
        match *self {
            HeadConfig::Linear => None,
            HeadConfig::Cosine { margin: 0.0, .. } => None,
            HeadConfig::Cosine { scale, margin } => Some((Margin::CosFace { m: margin }, scale)),
            HeadConfig::Arcface {
                scale,
                margin,
                easy_margin,
            } => Some((
                Margin::ArcFace {
                    m: margin,
                    easy: easy_margin,
                },
                scale,
            )),
            HeadConfig::Sphereface {
                scale,
                margin,
                lambda,
            } => Some((Margin::SphereFace { m: margin, lambda }, scale)),
        }
    }

    /// What CosFace subtracts from each sample's true-class logit: `s · m` for a cosine
    /// head with margin, 0 for the others (ArcFace's and SphereFace's margins are not a
    /// constant; see [`HeadConfig::margin`]).
    pub fn target_logit_offset(&self) -> f32 {
        match *self {
            HeadConfig::Cosine { scale, margin } => scale * margin,
            _ => 0.0,
        }
    }

    /// Checks the margins' ranges (the scale is checked when the head is built):
    /// ArcFace's m in [0, π), SphereFace's m in 1..=8 and λ finite and ≥ 0.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match *self {
            HeadConfig::Arcface { margin, .. }
                if !(margin.is_finite() && (0.0..std::f32::consts::PI).contains(&margin)) =>
            {
                Err(format!(
                    "the ArcFace margin must be in [0, π), got {margin}"
                ))
            }
            HeadConfig::Sphereface { margin, .. } if !(1..=8).contains(&margin) => Err(format!(
                "the SphereFace margin is an integer in 1..=8, got {margin}"
            )),
            HeadConfig::Sphereface { lambda, .. } if !(lambda.is_finite() && lambda >= 0.0) => Err(
                format!("SphereFace's λ must be finite and ≥ 0, got {lambda}"),
            ),
            _ => Ok(()),
        }
    }

    /// The head for `classes` identities over `dim`-dimensional embeddings, as a
    /// one-layer [`Sequential`] (so it is saved and restored like the network).
    pub fn build(&self, dim: usize, classes: usize, rng: &mut impl Rng) -> Result<Sequential> {
        let mut head = Sequential::new();
        match *self {
            HeadConfig::Linear => head.push(Linear::new(dim, classes, Init::XavierNormal, rng)?),
            HeadConfig::Cosine { scale, .. }
            | HeadConfig::Arcface { scale, .. }
            | HeadConfig::Sphereface { scale, .. } => {
                head.push(CosineHead::new(dim, classes, scale, rng)?)
            }
        };
        Ok(head)
    }
}
