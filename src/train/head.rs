//! The classifier head used by the softmax loss during training only: it turns the
//! embedding (N, K) into logits (N, C) over the C training identities and is dropped when
//! the model is saved (the saved model is the embedding network).

use ndarray::{Array2, Ix2};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::margin::Margin;
use crate::nn::init::Init;
use crate::nn::linear::Linear;
use crate::nn::sequential::Sequential;
use crate::nn::{Layer, Mode, NnError, Param, Result, Tensor};

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

/// Scaled cosine classifier: `y_nc = s · ⟨x_n, ŵ_c⟩` with `ŵ_c = w_c / ‖w_c‖`.
///
/// Shapes: input `(N, K)`, output `(N, C)`, `weight (C, K)`. The input is expected to be
/// unit length (the embedding network ends in an L2 normalisation); the head does not
/// normalise it again. Backward, with `G = dE/dy`:
/// `dE/dx = s · G Ŵ`, `dE/dŵ_c = s · Σ_n G_nc x_n`, and through the normalisation
/// `dE/dw_c = (dE/dŵ_c − ŵ_c ⟨ŵ_c, dE/dŵ_c⟩) / ‖w_c‖`.
/// The weight is neither decayed nor max-norm constrained: the output does not depend on
/// its norm.
#[derive(Debug, Clone)]
pub struct CosineHead {
    weight: Param,
    scale: f32,
    /// The last training input. (N, K)
    input: Option<Array2<f32>>,
}

impl CosineHead {
    pub fn new(dim: usize, classes: usize, scale: f32, rng: &mut impl Rng) -> Result<Self> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(NnError::Invalid(format!(
                "cosine head: scale must be finite and > 0, got {scale}"
            )));
        }
        if dim == 0 || classes == 0 {
            return Err(NnError::Invalid(format!(
                "cosine head: sizes must be positive, got {dim} → {classes}"
            )));
        }
        let value = Init::XavierNormal.tensor(&[classes, dim], rng)?;
        let mut weight = Param::weight("weight", value);
        weight.decay = false;
        weight.max_norm = false;
        Ok(CosineHead {
            weight,
            scale,
            input: None,
        })
    }

    /// `(Ŵ, ‖w_c‖)`: the row-normalised weight (C, K) and the row norms (C).
    fn normalised(&self) -> Result<(Array2<f32>, Vec<f32>)> {
        let w = self
            .weight
            .value
            .view()
            .into_dimensionality::<Ix2>()
            .map_err(|_| {
                NnError::shape("cosine head", "[C, K] weight", self.weight.value.shape())
            })?;
        let norms: Vec<f32> = w
            .outer_iter()
            .map(|row| row.dot(&row).sqrt().max(1e-12))
            .collect();
        let mut unit = w.to_owned();
        for (mut row, n) in unit.outer_iter_mut().zip(&norms) {
            row /= *n;
        }
        Ok((unit, norms))
    }

    fn input2(&self, x: &Tensor) -> Result<Array2<f32>> {
        let k = self.weight.value.shape()[1];
        match x.shape() {
            [_, d] if *d == k => Ok(x
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|_| NnError::shape("cosine head", format!("[N, {k}]"), x.shape()))?
                .to_owned()),
            other => Err(NnError::shape("cosine head", format!("[N, {k}]"), other)),
        }
    }
}

impl Layer for CosineHead {
    fn kind(&self) -> &'static str {
        "cosine_head"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [c, k] = [self.weight.value.shape()[0], self.weight.value.shape()[1]];
        match *input {
            [n, d] if d == k => Ok(vec![n, c]),
            _ => Err(NnError::shape("cosine head", format!("[N, {k}]"), input)),
        }
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.infer(x)?;
        if mode == Mode::Train {
            self.input = Some(self.input2(x)?);
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.input2(x)?;
        let (unit, _) = self.normalised()?;
        Ok((x.dot(&unit.t()) * self.scale).into_dyn()) // (N, C)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let x = self
            .input
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "cosine head" })?;
        let c = self.weight.value.shape()[0];
        let g = dy
            .view()
            .into_dimensionality::<Ix2>()
            .ok()
            .filter(|g| g.dim() == (x.nrows(), c))
            .ok_or_else(|| {
                NnError::shape(
                    "cosine head",
                    format!("[{}, {c}] dE/dy", x.nrows()),
                    dy.shape(),
                )
            })?;
        let (unit, norms) = self.normalised()?;
        let dx = g.dot(&unit) * self.scale; // (N, K)
        let mut d_unit = g.t().dot(x) * self.scale; // (C, K)
        for ((mut d, u), n) in d_unit.outer_iter_mut().zip(unit.outer_iter()).zip(&norms) {
            let along = d.dot(&u);
            d.scaled_add(-along, &u);
            d /= *n;
        }
        let grad_shape = self.weight.grad.shape().to_vec();
        let mut grad = self
            .weight
            .grad
            .view_mut()
            .into_dimensionality::<Ix2>()
            .map_err(|_| NnError::shape("cosine head", "[C, K] gradient", &grad_shape))?;
        grad += &d_unit;
        Ok(dx.into_dyn())
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.weight]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::{Tolerance, check_layer, unit_rows};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn cosine_head_gradients_match_finite_differences() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut head = CosineHead::new(5, 4, 3.0, &mut rng).unwrap();
        let x = unit_rows(6, 5, &mut rng);
        check_layer(&mut head, &x, &Tolerance::default(), 11, |_| {}).unwrap();
    }

    #[test]
    fn cosine_logits_are_bounded_by_the_scale_and_ignore_weight_norms() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut head = CosineHead::new(8, 3, 10.0, &mut rng).unwrap();
        let x = unit_rows(4, 8, &mut rng);
        let before = head.infer(&x).unwrap();
        assert!(before.iter().all(|v| v.abs() <= 10.0 + 1e-4), "{before:?}");
        head.weight.value.mapv_inplace(|w| w * 7.5);
        let after = head.infer(&x).unwrap();
        let diff = (&before - &after)
            .mapv(f32::abs)
            .fold(0.0f32, |a, &b| a.max(b));
        assert!(
            diff < 1e-5,
            "logits changed by {diff} when only weight norms changed"
        );
    }

    #[test]
    fn wrong_input_width_and_bad_scale_are_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let head = CosineHead::new(8, 3, 10.0, &mut rng).unwrap();
        assert!(head.infer(&Tensor::zeros(vec![2, 7])).is_err());
        assert!(CosineHead::new(8, 3, 0.0, &mut rng).is_err());
        assert!(CosineHead::new(8, 3, f32::NAN, &mut rng).is_err());
    }
}
