//! The scaled cosine classifier that the softmax-family losses train on top of the
//! embedding (`train::head::HeadConfig` builds it; it is dropped when the model is saved).

use ndarray::{Array2, Ix2};
use rand::Rng;

use super::init::Init;
use super::{Layer, Mode, NnError, Param, Result, Tensor};

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
