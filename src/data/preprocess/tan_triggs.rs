//! Tan & Triggs illumination normalisation (X. Tan, B. Triggs, "Enhanced local texture
//! feature sets for face recognition under difficult lighting conditions", IEEE TIP 2010).
//!
//! For an image `I` with values ≥ 0 (here in [0, 1]):
//! 1. gamma: `I ← I^γ`;
//! 2. difference of Gaussians: `I ← G(σ0) * I − G(σ1) * I`;
//! 3. contrast equalisation:
//!    `I ← I / mean(|I|^α)^(1/α)`, then `I ← I / mean(min(τ, |I|)^α)^(1/α)`,
//!    then `I ← τ · tanh(I / τ)`, so every output lies in (−τ, τ).
//!
//! The paper's defaults are the [`Default`]: γ 0.2, σ0 1, σ1 2, α 0.1, τ 10. The paper's
//! optional masking step is left out (our crops are already tight). Gaussian kernels are
//! truncated at 3σ and sampled, normalised to sum 1; borders replicate the edge pixel.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::data::error::{DataError, Result};

/// Parameters of the Tan–Triggs chain; see the module documentation. In a TOML or JSON
/// table, a parameter left out keeps the paper's value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TanTriggs {
    pub gamma: f32,
    pub sigma0: f32,
    pub sigma1: f32,
    pub alpha: f32,
    pub tau: f32,
}

impl Default for TanTriggs {
    fn default() -> Self {
        TanTriggs {
            gamma: 0.2,
            sigma0: 1.0,
            sigma1: 2.0,
            alpha: 0.1,
            tau: 10.0,
        }
    }
}

impl TanTriggs {
    /// These parameters if the chain is defined for them (γ, α, τ > 0 and
    /// 0 < σ0 < σ1, all finite), else an error naming the first that is not.
    pub fn validated(self) -> Result<Self> {
        let TanTriggs {
            gamma,
            sigma0,
            sigma1,
            alpha,
            tau,
        } = self;
        let checks = [
            ("gamma", gamma, gamma > 0.0),
            ("sigma0", sigma0, sigma0 > 0.0),
            ("sigma1", sigma1, sigma1 > sigma0),
            ("alpha", alpha, alpha > 0.0),
            ("tau", tau, tau > 0.0),
        ];
        for (name, value, ok) in checks {
            if !ok || !value.is_finite() {
                return Err(DataError::Invalid(format!(
                    "tan-triggs {name} = {value} is out of range \
                     (need gamma, alpha, tau > 0 and 0 < sigma0 < sigma1)"
                )));
            }
        }
        Ok(self)
    }

    /// Applies the chain to one `(H, W)` image with non-negative values.
    pub fn apply(&self, image: &Array2<f32>) -> Array2<f32> {
        // Negative inputs cannot come from pixels; clamp so `powf` never yields NaN.
        let gamma = image.mapv(|v| v.max(0.0).powf(self.gamma));
        let mut dog = gaussian_blur(&gamma, self.sigma0);
        dog -= &gaussian_blur(&gamma, self.sigma1);
        let alpha = self.alpha;
        let tau = self.tau;
        let norm1 = power_mean(dog.iter().map(|v| v.abs()), alpha);
        dog.mapv_inplace(|v| v / norm1);
        let norm2 = power_mean(dog.iter().map(|v| v.abs().min(tau)), alpha);
        dog.mapv_inplace(|v| tau * (v / norm2 / tau).tanh());
        dog
    }
}

/// `mean(v^α)^(1/α)`, floored so a flat image divides by a small number, not zero.
fn power_mean(values: impl Iterator<Item = f32>, alpha: f32) -> f32 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for v in values {
        sum += f64::from(v).powf(f64::from(alpha));
        n += 1;
    }
    let mean = if n == 0 { 0.0 } else { sum / n as f64 };
    (mean.powf(1.0 / f64::from(alpha)) as f32).max(1e-12)
}

/// Sampled Gaussian, radius `ceil(3σ)`, normalised to sum 1.
fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let radius = (3.0 * sigma).ceil().max(1.0) as i64;
    let kernel: Vec<f32> = (-radius..=radius)
        .map(|x| (-(x * x) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = kernel.iter().sum();
    kernel.into_iter().map(|k| k / sum).collect()
}

/// Separable Gaussian blur of `(H, W)` with edge replication.
pub fn gaussian_blur(image: &Array2<f32>, sigma: f32) -> Array2<f32> {
    let kernel = gaussian_kernel(sigma);
    let radius = (kernel.len() / 2) as i64;
    let (h, w) = image.dim();
    let clamp = |i: i64, n: usize| i.clamp(0, n as i64 - 1) as usize;
    let mut rows = Array2::<f32>::zeros((h, w));
    for ((y, x), out) in rows.indexed_iter_mut() {
        *out = kernel
            .iter()
            .enumerate()
            .map(|(t, k)| k * image[[y, clamp(x as i64 + t as i64 - radius, w)]])
            .sum();
    }
    let mut both = Array2::<f32>::zeros((h, w));
    for ((y, x), out) in both.indexed_iter_mut() {
        *out = kernel
            .iter()
            .enumerate()
            .map(|(t, k)| k * rows[[clamp(y as i64 + t as i64 - radius, h), x]])
            .sum();
    }
    both
}
