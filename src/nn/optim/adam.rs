//! Adam with bias correction; AdamW with decoupled weight decay.

use ndarray::Zip;
use serde::{Deserialize, Serialize};

use super::regularization::Regularization;
use super::slots::{Slots, check_step};
use super::{Optimizer, OptimizerState, WeightDecay};
use crate::nn::{NnError, Param, Result};

/// Settings of [`Adam`]; defaults are PyTorch's (β1 0.9, β2 0.999, ε̂ 1e-8).
/// `weight_decay = { decoupled = λ }` makes it AdamW.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: Option<WeightDecay>,
    pub max_norm: Option<f32>,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: None,
            max_norm: None,
        }
    }
}

/// Adam (Kingma & Ba), at step t = 1, 2, … with g = ∇E (+ λw under L2 decay):
///
/// ```text
/// m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
/// w ← w − ε · (m / (1 − β1ᵗ)) / (√v / √(1 − β2ᵗ) + ε̂)
/// ```
///
/// This is PyTorch's arrangement of the bias corrections (ε̂ added after dividing √v by
/// √(1 − β2ᵗ)), so trajectories agree to rounding.
#[derive(Debug, Clone)]
pub struct Adam {
    beta1: f32,
    beta2: f32,
    eps: f32,
    reg: Regularization,
    t: i32,
    m: Slots,
    v: Slots,
}

impl Adam {
    pub fn new(config: &AdamConfig) -> Result<Self> {
        for (name, b) in [("beta1", config.beta1), ("beta2", config.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(NnError::Invalid(format!(
                    "adam: {name} must be in [0, 1), got {b}"
                )));
            }
        }
        if !(config.eps.is_finite() && config.eps > 0.0) {
            return Err(NnError::Invalid(format!(
                "adam: eps must be > 0, got {}",
                config.eps
            )));
        }
        Ok(Adam {
            beta1: config.beta1,
            beta2: config.beta2,
            eps: config.eps,
            reg: Regularization::new("adam", config.weight_decay, config.max_norm)?,
            t: 0,
            m: Slots::default(),
            v: Slots::default(),
        })
    }
}

impl Optimizer for Adam {
    fn step(&mut self, params: &mut [&mut Param], lr: f32) -> Result<()> {
        check_step("adam", params, lr)?;
        self.m.prepare("adam", params, 0.0)?;
        self.v.prepare("adam", params, 0.0)?;
        self.t = self.t.saturating_add(1);
        let (b1, b2, eps) = (self.beta1, self.beta2, self.eps);
        // Bias corrections in f64, as PyTorch computes them from Python floats.
        let step_size = (f64::from(lr) / (1.0 - f64::from(b1).powi(self.t))) as f32;
        let bc2_sqrt = (1.0 - f64::from(b2).powi(self.t)).sqrt() as f32;
        for (i, p) in params.iter_mut().enumerate() {
            self.reg.decouple(p, lr);
            let l2 = self.reg.l2(p);
            let m = self.m.get_mut(i)?;
            let v = self.v.get_mut(i)?;
            Zip::from(&mut p.value)
                .and(&p.grad)
                .and(m)
                .and(v)
                .par_for_each(|w, &g, m, v| {
                    let g = g + l2 * *w;
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    *w -= step_size * *m / (v.sqrt() / bc2_sqrt + eps);
                });
            self.reg.constrain(p);
        }
        Ok(())
    }

    /// `m.{i}`, `v.{i}` and the step count `t` (a 1-element tensor; f32 holds every
    /// count up to 2²⁴ exactly).
    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::new();
        self.m.export("m", &mut state);
        self.v.export("v", &mut state);
        state.insert(
            "t".into(),
            crate::nn::Tensor::from_elem(vec![1], self.t as f32),
        );
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let t = state
            .get("t")
            .and_then(|t| t.iter().next().copied())
            .unwrap_or(0.0);
        if !(t >= 0.0 && t.fract() == 0.0 && t < 16_777_216.0) {
            return Err(NnError::Invalid(format!(
                "adam state: step count must be a whole number ≥ 0, got {t}"
            )));
        }
        self.m.import("m", state)?;
        self.v.import("v", state)?;
        self.t = t as i32;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn run(config: AdamConfig, w0: f32, grads: &[f32], lr: f32) -> Vec<f32> {
        let mut opt = Adam::new(&config).unwrap();
        let mut p = Param::weight("weight", ArrayD::from_elem(IxDyn(&[1]), w0));
        grads
            .iter()
            .map(|&g| {
                p.grad.fill(g);
                opt.step(&mut [&mut p], lr).unwrap();
                p.value[[0]]
            })
            .collect()
    }

    #[test]
    fn adam_matches_hand_computed_bias_corrected_steps() {
        // Step 1: m̂ = g, v̂ = g², so w moves by ε·g/|g| = 0.1 → 0.9.
        // Step 2 (g = 0.25): m = 0.07, m̂ = 0.07/0.19; v = 3.1225e-4, v̂ = v/0.001999;
        // w = 0.9 − 0.1·0.368421/0.395226 = 0.806782.
        // Step 3 (g = −1) from torch.optim.Adam([w], lr=0.1) in float64: 0.827418.
        let w = run(AdamConfig::default(), 1.0, &[0.5, 0.25, -1.0], 0.1);
        let expect = [0.9, 0.806_782, 0.827_418];
        for (a, e) in w.iter().zip(expect) {
            assert!((a - e).abs() < 2e-6, "got {w:?}, expected {expect:?}");
        }
    }

    #[test]
    fn decoupled_decay_shrinks_the_weight_outside_the_moments() {
        // AdamW, g = 0: w ← 2·(1 − 0.5·0.1) = 1.9 and the Adam step is 0/(0 + ε̂) = 0.
        let adamw = AdamConfig {
            weight_decay: Some(WeightDecay::Decoupled(0.1)),
            ..Default::default()
        };
        assert!((run(adamw, 2.0, &[0.0], 0.5)[0] - 1.9).abs() < 1e-6);
        // Adam + L2: g = 0.1·2 enters the moments; the first step is a full ε = 0.5.
        let l2 = AdamConfig {
            weight_decay: Some(WeightDecay::L2(0.1)),
            ..Default::default()
        };
        assert!((run(l2, 2.0, &[0.0], 0.5)[0] - 1.5).abs() < 1e-6);
    }

    #[test]
    fn biases_are_neither_decayed_nor_constrained() {
        let cfg = AdamConfig {
            weight_decay: Some(WeightDecay::Decoupled(0.5)),
            max_norm: Some(0.1),
            ..Default::default()
        };
        let mut opt = Adam::new(&cfg).unwrap();
        let mut b = Param::bias("bias", ArrayD::from_elem(IxDyn(&[2]), 3.0));
        opt.step(&mut [&mut b], 1.0).unwrap();
        assert!(b.value.iter().all(|&x| x == 3.0), "{:?}", b.value);
    }

    #[test]
    fn a_restored_state_continues_the_trajectory_exactly() {
        let grads = [0.5f32, -0.25, 1.0, 0.125];
        let straight = run(AdamConfig::default(), 1.0, &grads, 0.1);
        let mut first = Adam::new(&AdamConfig::default()).unwrap();
        let mut p = Param::weight("weight", ArrayD::from_elem(IxDyn(&[1]), 1.0));
        for &g in &grads[..2] {
            p.grad.fill(g);
            first.step(&mut [&mut p], 0.1).unwrap();
        }
        let mut resumed = Adam::new(&AdamConfig::default()).unwrap();
        resumed.load_state(&first.state()).unwrap();
        for &g in &grads[2..] {
            p.grad.fill(g);
            resumed.step(&mut [&mut p], 0.1).unwrap();
        }
        assert_eq!(p.value[[0]], straight[3], "resumed vs uninterrupted");
    }

    #[test]
    fn invalid_hyperparameters_are_errors() {
        assert!(
            Adam::new(&AdamConfig {
                beta1: 1.0,
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            Adam::new(&AdamConfig {
                beta2: -0.1,
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            Adam::new(&AdamConfig {
                eps: 0.0,
                ..Default::default()
            })
            .is_err()
        );
    }
}
