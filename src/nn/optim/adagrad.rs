//! AdaGrad: per-weight step sizes from the accumulated squared gradients.

use ndarray::Zip;
use serde::{Deserialize, Serialize};

use super::regularization::Regularization;
use super::slots::{Slots, check_step};
use super::{Optimizer, OptimizerState, WeightDecay};
use crate::nn::{NnError, Param, Result};

/// Settings of [`Adagrad`]; defaults are PyTorch's (ε̂ 1e-10, accumulator starts at 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdagradConfig {
    pub eps: f32,
    pub initial_accumulator: f32,
    pub weight_decay: Option<WeightDecay>,
    pub max_norm: Option<f32>,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig {
            eps: 1e-10,
            initial_accumulator: 0.0,
            weight_decay: None,
            max_norm: None,
        }
    }
}

/// AdaGrad (Duchi, Hazan & Singer), with g = ∇E (+ λw under L2 decay):
///
/// ```text
/// s ← s + g²
/// w ← w − ε · g / (√s + ε̂)
/// ```
///
/// As PyTorch's `Adagrad` with `lr_decay = 0` (the schedule owns ε here).
#[derive(Debug, Clone)]
pub struct Adagrad {
    eps: f32,
    initial_accumulator: f32,
    reg: Regularization,
    sum: Slots,
}

impl Adagrad {
    pub fn new(config: &AdagradConfig) -> Result<Self> {
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(NnError::Invalid(format!(
                "adagrad: eps must be > 0, got {}",
                config.eps
            )));
        }
        let s0 = config.initial_accumulator;
        if !(s0.is_finite() && s0 >= 0.0) {
            return Err(NnError::Invalid(format!(
                "adagrad: initial accumulator must be ≥ 0, got {s0}"
            )));
        }
        Ok(Adagrad {
            eps: config.eps,
            initial_accumulator: s0,
            reg: Regularization::new("adagrad", config.weight_decay, config.max_norm)?,
            sum: Slots::default(),
        })
    }
}

impl Optimizer for Adagrad {
    fn step(&mut self, params: &mut [&mut Param], lr: f32) -> Result<()> {
        check_step("adagrad", params, lr)?;
        self.sum
            .prepare("adagrad", params, self.initial_accumulator)?;
        let eps = self.eps;
        for (i, p) in params.iter_mut().enumerate() {
            self.reg.decouple(p, lr);
            let l2 = self.reg.l2(p);
            let sum = self.sum.get_mut(i)?;
            Zip::from(&mut p.value)
                .and(&p.grad)
                .and(sum)
                .par_for_each(|w, &g, s| {
                    let g = g + l2 * *w;
                    *s += g * g;
                    *w -= lr * g / (s.sqrt() + eps);
                });
            self.reg.constrain(p);
        }
        Ok(())
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::new();
        self.sum.export("sum", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.sum.import("sum", state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn adagrad_shrinks_steps_as_squared_gradients_accumulate() {
        // g = 2 twice, ε = 0.1: s = 4 → w = 1 − 0.1·2/2 = 0.9;
        // s = 8 → w = 0.9 − 0.1·2/√8 = 0.829289 (torch.optim.Adagrad agrees).
        let mut opt = Adagrad::new(&AdagradConfig::default()).unwrap();
        let mut p = Param::weight("weight", ArrayD::from_elem(IxDyn(&[1]), 1.0));
        let mut got = Vec::new();
        for _ in 0..2 {
            p.grad.fill(2.0);
            opt.step(&mut [&mut p], 0.1).unwrap();
            got.push(p.value[[0]]);
        }
        for (a, e) in got.iter().zip([0.9, 0.829_289]) {
            assert!((a - e).abs() < 1e-6, "{got:?}");
        }
    }

    #[test]
    fn invalid_hyperparameters_are_errors() {
        assert!(
            Adagrad::new(&AdagradConfig {
                eps: -1.0,
                ..Default::default()
            })
            .is_err()
        );
        let bad = AdagradConfig {
            initial_accumulator: -1.0,
            ..Default::default()
        };
        assert!(Adagrad::new(&bad).is_err());
    }
}
