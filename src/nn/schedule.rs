//! Learning-rate schedules.
//!
//! A schedule maps a time t = 0, 1, 2, … to the learning rate ε_t. The trainer decides
//! the unit of t (epochs or optimiser steps); every length below (`milestones`, `total`,
//! `warmup`) is counted in that same unit. Reduce-on-plateau also watches a metric,
//! reported through [`Schedule::observe`] once per epoch.
//!
//! ```toml
//! [schedule]
//! lr = 0.01
//! warmup = 5                                   # optional linear warm-up, any decay
//! decay = { kind = "cosine", total = 100, min_lr = 1e-5 }
//! ```

use serde::{Deserialize, Serialize};

use super::{NnError, Result};

/// The configured schedule: a base rate, a decay rule and an optional warm-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// ε₀, the base learning rate.
    pub lr: f32,
    #[serde(default)]
    pub decay: Decay,
    /// Linear warm-up length W; 0 disables it. See [`Schedule::lr`].
    #[serde(default)]
    pub warmup: usize,
}

/// How ε decays from ε₀; tagged by `kind`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Decay {
    /// ε_t = ε₀.
    #[default]
    Constant,
    /// ε_t = max(ε₀ − αt, floor).
    Linear { rate: f32, floor: f32 },
    /// ε_t = ε₀ · γ^(number of milestones ≤ t); milestones strictly increasing
    /// (PyTorch's `MultiStepLR`).
    Step {
        milestones: Vec<usize>,
        #[serde(default = "default_factor")]
        gamma: f32,
    },
    /// ε_t = ε_min + (ε₀ − ε_min)(1 + cos(πt/T))/2 for t < T, then ε_min
    /// (PyTorch's `CosineAnnealingLR` with `T_max = T`, in closed form).
    Cosine {
        total: usize,
        #[serde(default)]
        min_lr: f32,
    },
    /// ε = max(ε₀ · factorᵏ, min_lr) after k reductions; a reduction happens when the
    /// watched metric has failed to improve in more than `patience` consecutive epochs
    /// (PyTorch's `ReduceLROnPlateau` rule, cooldown 0). "Improve" means beating the
    /// best value so far by more than `threshold · |best|`.
    Plateau {
        #[serde(default = "default_patience")]
        patience: usize,
        #[serde(default)]
        mode: PlateauMode,
        #[serde(default = "default_factor")]
        factor: f32,
        #[serde(default = "default_threshold")]
        threshold: f32,
        #[serde(default)]
        min_lr: f32,
    },
}

/// Whether the watched metric should go down (a loss) or up (an accuracy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateauMode {
    #[default]
    Min,
    Max,
}

// PyTorch's defaults: γ = factor = 0.1, patience 10, relative threshold 1e-4.
fn default_factor() -> f32 {
    0.1
}
fn default_patience() -> usize {
    10
}
fn default_threshold() -> f32 {
    1e-4
}

/// A validated schedule with its plateau state.
#[derive(Debug, Clone)]
pub struct Schedule {
    config: ScheduleConfig,
    best: Option<f32>,
    bad_epochs: usize,
    reductions: i32,
}

impl Schedule {
    /// Checks the configuration: rates finite and > 0 (floors ≥ 0 and ≤ ε₀), factors in
    /// (0, 1], milestones strictly increasing, cosine length ≥ 1.
    pub fn new(config: ScheduleConfig) -> Result<Self> {
        let lr = config.lr;
        let bad = |what: String| Err(NnError::Invalid(format!("schedule: {what}")));
        if !(lr.is_finite() && lr > 0.0) {
            return bad(format!("lr must be finite and > 0, got {lr}"));
        }
        let floor_ok = |f: f32| (0.0..=lr).contains(&f);
        let factor_ok = |f: f32| f > 0.0 && f <= 1.0;
        match &config.decay {
            Decay::Constant => {}
            Decay::Linear { rate, floor } => {
                if !(rate.is_finite() && *rate >= 0.0) {
                    return bad(format!("linear rate must be finite and ≥ 0, got {rate}"));
                }
                if !floor_ok(*floor) {
                    return bad(format!(
                        "linear floor must be in [0, lr = {lr}], got {floor}"
                    ));
                }
            }
            Decay::Step { milestones, gamma } => {
                if !factor_ok(*gamma) {
                    return bad(format!("step gamma must be in (0, 1], got {gamma}"));
                }
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return bad(format!(
                        "milestones must increase strictly, got {milestones:?}"
                    ));
                }
            }
            Decay::Cosine { total, min_lr } => {
                if *total == 0 {
                    return bad("cosine total must be ≥ 1".into());
                }
                if !floor_ok(*min_lr) {
                    return bad(format!(
                        "cosine min_lr must be in [0, lr = {lr}], got {min_lr}"
                    ));
                }
            }
            Decay::Plateau {
                factor,
                threshold,
                min_lr,
                ..
            } => {
                if !(factor_ok(*factor) && *factor < 1.0) {
                    return bad(format!("plateau factor must be in (0, 1), got {factor}"));
                }
                if !(threshold.is_finite() && *threshold >= 0.0) {
                    return bad(format!("plateau threshold must be ≥ 0, got {threshold}"));
                }
                if !floor_ok(*min_lr) {
                    return bad(format!(
                        "plateau min_lr must be in [0, lr = {lr}], got {min_lr}"
                    ));
                }
            }
        }
        Ok(Schedule {
            config,
            best: None,
            bad_epochs: 0,
            reductions: 0,
        })
    }

    pub fn config(&self) -> &ScheduleConfig {
        &self.config
    }

    /// ε_t: the decayed rate times the warm-up factor min(1, (t + 1)/(W + 1)), which
    /// ramps linearly from ε/(W + 1) at t = 0 to the full rate at t = W. The decay is
    /// evaluated at the same t (warm-up scales it; it does not delay it).
    pub fn lr(&self, t: usize) -> f32 {
        let lr0 = self.config.lr;
        let decayed = match &self.config.decay {
            Decay::Constant => lr0,
            Decay::Linear { rate, floor } => (lr0 - rate * t as f32).max(*floor),
            Decay::Step { milestones, gamma } => {
                let passed = milestones.iter().filter(|&&m| m <= t).count();
                lr0 * gamma.powi(i32::try_from(passed).unwrap_or(i32::MAX))
            }
            Decay::Cosine { total, min_lr } => {
                if t >= *total {
                    *min_lr
                } else {
                    let phase = std::f64::consts::PI * t as f64 / *total as f64;
                    min_lr + (lr0 - min_lr) * (0.5 * (1.0 + phase.cos())) as f32
                }
            }
            Decay::Plateau { factor, min_lr, .. } => {
                (lr0 * factor.powi(self.reductions)).max(*min_lr)
            }
        };
        let w = self.config.warmup;
        if t < w {
            decayed * (t + 1) as f32 / (w + 1) as f32
        } else {
            decayed
        }
    }

    /// Reports the watched metric at the end of an epoch. Returns whether the rate was
    /// just reduced; always false for schedules other than `plateau`. A non-finite
    /// metric never counts as an improvement.
    pub fn observe(&mut self, metric: f32) -> bool {
        let Decay::Plateau {
            patience,
            mode,
            threshold,
            ..
        } = self.config.decay
        else {
            return false;
        };
        let improved = metric.is_finite()
            && match self.best {
                None => true,
                Some(best) => {
                    let margin = threshold * best.abs();
                    match mode {
                        PlateauMode::Min => metric < best - margin,
                        PlateauMode::Max => metric > best + margin,
                    }
                }
            };
        if improved {
            self.best = Some(metric);
            self.bad_epochs = 0;
            return false;
        }
        self.bad_epochs += 1;
        if self.bad_epochs > patience {
            self.reductions = self.reductions.saturating_add(1);
            self.bad_epochs = 0;
            return true;
        }
        false
    }
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
