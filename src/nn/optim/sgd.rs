//! Stochastic gradient descent with momentum, optionally Nesterov's.

use ndarray::Zip;
use serde::{Deserialize, Serialize};

use super::regularization::Regularization;
use super::slots::{Slots, check_step};
use super::{Optimizer, OptimizerState, WeightDecay};
use crate::nn::{NnError, Param, Result};

/// Settings of [`Sgd`]; defaults are PyTorch's (`momentum = 0`, no Nesterov, no decay).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    /// μ in [0, 1).
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: Option<WeightDecay>,
    /// Max-norm bound c on each unit's incoming weights.
    pub max_norm: Option<f32>,
}

/// SGD in the lecture's form, with g = ∇E (+ λw under L2 decay):
///
/// ```text
/// Δw ← μΔw − εg
/// w  ← w + Δw                 (classical momentum)
/// w  ← w + μΔw − εg           (Nesterov, with the updated Δw)
/// ```
///
/// PyTorch's `SGD(momentum=μ, nesterov=…)` keeps v ← μv + g and steps w ← w − εv
/// (Nesterov: w ← w − ε(g + μv)). With a constant ε, Δw = −εv at every step, so both
/// forms give the same trajectory (the reference tests check this). They part when ε
/// changes: here the stored Δw keeps the step sizes it was built with, whereas PyTorch
/// rescales the whole velocity by the new ε at once.
#[derive(Debug, Clone)]
pub struct Sgd {
    momentum: f32,
    nesterov: bool,
    reg: Regularization,
    delta: Slots,
}

impl Sgd {
    pub fn new(config: &SgdConfig) -> Result<Self> {
        let mu = config.momentum;
        if !(0.0..1.0).contains(&mu) {
            return Err(NnError::Invalid(format!(
                "sgd: momentum must be in [0, 1), got {mu}"
            )));
        }
        Ok(Sgd {
            momentum: mu,
            nesterov: config.nesterov,
            reg: Regularization::new("sgd", config.weight_decay, config.max_norm)?,
            delta: Slots::default(),
        })
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &mut [&mut Param], lr: f32) -> Result<()> {
        check_step("sgd", params, lr)?;
        self.delta.prepare("sgd", params, 0.0)?;
        let (mu, nesterov) = (self.momentum, self.nesterov);
        for (i, p) in params.iter_mut().enumerate() {
            self.reg.decouple(p, lr);
            let l2 = self.reg.l2(p);
            let delta = self.delta.get_mut(i)?;
            Zip::from(&mut p.value)
                .and(&p.grad)
                .and(delta)
                .par_for_each(|w, &g, d| {
                    let g = g + l2 * *w;
                    *d = mu * *d - lr * g;
                    *w += if nesterov { mu * *d - lr * g } else { *d };
                });
            self.reg.constrain(p);
        }
        Ok(())
    }

    fn state(&self) -> OptimizerState {
        let mut state = OptimizerState::new();
        self.delta.export("delta", &mut state);
        state
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        self.delta.import("delta", state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn scalar_weight(w: f32) -> Param {
        Param::weight("weight", ArrayD::from_elem(IxDyn(&[1]), w))
    }

    /// Runs `steps` steps with the constant gradient `g` on one scalar weight.
    fn trajectory(config: SgdConfig, w0: f32, g: f32, lr: f32, steps: usize) -> Vec<f32> {
        let mut opt = Sgd::new(&config).unwrap();
        let mut p = scalar_weight(w0);
        (0..steps)
            .map(|_| {
                p.grad.fill(g);
                opt.step(&mut [&mut p], lr).unwrap();
                p.value[[0]]
            })
            .collect()
    }

    fn assert_close(actual: &[f32], expected: &[f32]) {
        for (a, e) in actual.iter().zip(expected) {
            assert!(
                (a - e).abs() < 1e-6,
                "got {actual:?}, expected {expected:?}"
            );
        }
    }

    #[test]
    fn plain_sgd_steps_against_the_gradient() {
        // w = 1 − 0.1·0.5 = 0.95, then 0.9
        assert_close(
            &trajectory(SgdConfig::default(), 1.0, 0.5, 0.1, 2),
            &[0.95, 0.9],
        );
    }

    #[test]
    fn momentum_accumulates_the_previous_step() {
        // Δw: −0.1, −0.19, −0.271 → w: −0.1, −0.29, −0.561
        let cfg = SgdConfig {
            momentum: 0.9,
            ..Default::default()
        };
        assert_close(&trajectory(cfg, 0.0, 1.0, 0.1, 3), &[-0.1, -0.29, -0.561]);
    }

    #[test]
    fn nesterov_looks_ahead_along_the_new_velocity() {
        // Δw: −0.1, −0.19; w += 0.9Δw − 0.1: −0.19, then −0.19 − 0.171 − 0.1 = −0.461
        let cfg = SgdConfig {
            momentum: 0.9,
            nesterov: true,
            ..Default::default()
        };
        assert_close(&trajectory(cfg, 0.0, 1.0, 0.1, 2), &[-0.19, -0.461]);
    }

    #[test]
    fn lecture_form_equals_pytorch_form_at_constant_learning_rate() {
        for nesterov in [false, true] {
            let cfg = SgdConfig {
                momentum: 0.8,
                nesterov,
                ..Default::default()
            };
            let mut opt = Sgd::new(&cfg).unwrap();
            let mut p = scalar_weight(0.3);
            let (mut w, mut v) = (0.3_f32, 0.0_f32);
            let lr = 0.05;
            for t in 0..6 {
                let g = (t as f32 * 1.7).sin() + 0.2 * w; // gradient depends on w
                p.grad.fill(0.2 * p.value[[0]] + (t as f32 * 1.7).sin());
                opt.step(&mut [&mut p], lr).unwrap();
                // torch.optim.SGD: v ← μv + g; w ← w − ε(g + μv) or w − εv
                v = 0.8 * v + g;
                w -= lr * if nesterov { g + 0.8 * v } else { v };
                assert!(
                    (p.value[[0]] - w).abs() < 1e-6,
                    "step {t}: {} vs {w}",
                    p.value[[0]]
                );
            }
        }
    }

    #[test]
    fn a_changed_learning_rate_leaves_the_stored_step_as_it_was() {
        // μ = 0.5, g = 1, ε = 0.1 then 0.2: Δw = −0.1, then 0.5·(−0.1) − 0.2 = −0.25,
        // so w = −0.35. PyTorch's v-form rescales the old velocity too: −0.1 − 0.2·1.5 = −0.4.
        let cfg = SgdConfig {
            momentum: 0.5,
            ..Default::default()
        };
        let mut opt = Sgd::new(&cfg).unwrap();
        let mut p = scalar_weight(0.0);
        for lr in [0.1, 0.2] {
            p.grad.fill(1.0);
            opt.step(&mut [&mut p], lr).unwrap();
        }
        assert_close(&[p.value[[0]]], &[-0.35]);
    }

    #[test]
    fn l2_decay_applies_only_to_decayed_parameters() {
        let cfg = SgdConfig {
            weight_decay: Some(WeightDecay::L2(0.1)),
            ..Default::default()
        };
        let mut opt = Sgd::new(&cfg).unwrap();
        let mut w = scalar_weight(2.0);
        let mut b = Param::bias("bias", ArrayD::from_elem(IxDyn(&[1]), 2.0));
        opt.step(&mut [&mut w, &mut b], 0.5).unwrap();
        // w ← 2 − 0.5·(0 + 0.1·2) = 1.9; the bias has no gradient and no decay
        assert_close(&[w.value[[0]], b.value[[0]]], &[1.9, 2.0]);
    }

    #[test]
    fn max_norm_is_applied_after_the_update() {
        let cfg = SgdConfig {
            max_norm: Some(1.0),
            ..Default::default()
        };
        let mut opt = Sgd::new(&cfg).unwrap();
        let mut w = Param::weight("weight", Tensor::zeros(IxDyn(&[1, 2])));
        w.grad = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![-3.0, -4.0]).unwrap();
        opt.step(&mut [&mut w], 1.0).unwrap();
        // update gives (3, 4), norm 5 → (0.6, 0.8)
        assert_close(w.value.as_slice().unwrap(), &[0.6, 0.8]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(
            Sgd::new(&SgdConfig {
                momentum: 1.0,
                ..Default::default()
            })
            .is_err()
        );
        let mut opt = Sgd::new(&SgdConfig {
            momentum: 0.5,
            ..Default::default()
        })
        .unwrap();
        let mut p = scalar_weight(1.0);
        assert!(
            opt.step(&mut [&mut p], -0.1).is_err(),
            "negative learning rate"
        );
        assert!(
            opt.step(&mut [&mut p], f32::NAN).is_err(),
            "NaN learning rate"
        );
        opt.step(&mut [&mut p], 0.1).unwrap();
        let mut q = scalar_weight(1.0);
        let err = opt.step(&mut [&mut p, &mut q], 0.1).unwrap_err();
        assert!(err.to_string().contains("got 2 parameters"), "{err}");
        let mut wide = Param::weight("weight", Tensor::zeros(IxDyn(&[3])));
        let err = opt.step(&mut [&mut wide], 0.1).unwrap_err();
        assert!(err.to_string().contains("[3]"), "{err}");
        wide.grad = Tensor::zeros(IxDyn(&[2]));
        assert!(
            Sgd::new(&SgdConfig::default())
                .unwrap()
                .step(&mut [&mut wide], 0.1)
                .is_err()
        );
    }
}
