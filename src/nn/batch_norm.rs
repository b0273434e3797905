//! Batch normalisation (Ioffe & Szegedy, 2015) over `(N, C)` and `(N, C, H, W)`.

use super::tensor::{data, from_vec, per_channel, same_shape};
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use rayon::prelude::*;

/// `y = γ · (x − μ) / √(σ² + ε) + β`, per channel `C`.
///
/// Statistics run over every axis but the channel axis 1 (`N`, and `H, W` for maps).
/// In training μ and σ² are the batch mean and biased variance, and the running
/// statistics move by `r ← (1 − momentum)·r + momentum·batch` where the running variance
/// takes the *unbiased* batch variance; in eval the running statistics replace the batch
/// ones. Defaults as PyTorch's `BatchNorm1d/2d`: ε = 1e-5, momentum = 0.1, γ = 1, β = 0,
/// running mean 0, running variance 1. PyTorch's `num_batches_tracked` is not kept
/// (it only matters for `momentum=None`).
#[derive(Debug, Clone)]
pub struct BatchNorm {
    pub gamma: Param,
    pub beta: Param,
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub eps: f32,
    pub momentum: f32,
    cache: Option<Cache>,
}

#[derive(Debug, Clone)]
struct Cache {
    shape: Vec<usize>,
    /// Normalised input (x − μ)/√(σ² + ε). Same shape as x.
    xhat: Vec<f32>,
    /// 1/√(σ² + ε). (C)
    inv_std: Vec<f32>,
}

/// Per-channel sums over a `(N, C, S)` view: `f(channel, start of a run of S values)`
/// summed over the N runs of each channel, channels in parallel (read-only).
fn per_channel_sum<F>((n, c, s): (usize, usize, usize), f: F) -> Vec<f64>
where
    F: Fn(usize, usize) -> f64 + Sync,
{
    (0..c)
        .into_par_iter()
        .map(|ch| (0..n).map(|img| f(ch, (img * c + ch) * s)).sum())
        .collect()
}

impl BatchNorm {
    pub fn new(channels: usize) -> Result<Self> {
        if channels == 0 {
            return Err(NnError::Invalid(
                "batch_norm: channels must be positive".into(),
            ));
        }
        Ok(BatchNorm {
            gamma: Param::bias("gamma", Tensor::ones(vec![channels])),
            beta: Param::bias("beta", Tensor::zeros(vec![channels])),
            running_mean: Tensor::zeros(vec![channels]),
            running_var: Tensor::ones(vec![channels]),
            eps: 1e-5,
            momentum: 0.1,
            cache: None,
        })
    }

    pub fn channels(&self) -> usize {
        self.gamma.value.len()
    }

    /// `y = scale[c]·x + shift[c]` over the `(N, C, S)` view, images in parallel.
    fn affine(
        x: &[f32],
        (_, c, s): (usize, usize, usize),
        scale: &[f32],
        shift: &[f32],
    ) -> Vec<f32> {
        let mut y = vec![0.0f32; x.len()];
        y.par_chunks_mut(c * s)
            .zip(x.par_chunks(c * s))
            .for_each(|(y_img, x_img)| {
                for ch in 0..c {
                    let (a, b) = (scale[ch], shift[ch]);
                    let range = ch * s..(ch + 1) * s;
                    for (o, &v) in y_img[range.clone()].iter_mut().zip(&x_img[range]) {
                        *o = a * v + b;
                    }
                }
            });
        y
    }
}

impl Layer for BatchNorm {
    fn kind(&self) -> &'static str {
        "batch_norm"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        per_channel("batch_norm", input, self.channels())?;
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode == Mode::Eval {
            return self.infer(x);
        }
        let dims @ (n, c, s) = per_channel("batch_norm", x.shape(), self.channels())?;
        let m = n * s;
        if m < 2 {
            return Err(NnError::shape(
                "batch_norm",
                "more than one value per channel in training",
                x.shape(),
            ));
        }
        let xs = data(x);
        let run = |start: usize| &xs[start..start + s];
        let mean: Vec<f64> =
            per_channel_sum(dims, |_, st| run(st).iter().map(|&v| f64::from(v)).sum())
                .into_iter()
                .map(|sum| sum / m as f64)
                .collect();
        let var: Vec<f64> = per_channel_sum(dims, |ch, st| {
            run(st)
                .iter()
                .map(|&v| (f64::from(v) - mean[ch]).powi(2))
                .sum()
        })
        .into_iter()
        .map(|sum| sum / m as f64)
        .collect();
        let inv_std: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (v + f64::from(self.eps)).sqrt()) as f32)
            .collect();
        // x̂ = inv_std·x − inv_std·μ, then y = γ·x̂ + β.
        let shift: Vec<f32> = (0..c).map(|ch| -(mean[ch] as f32) * inv_std[ch]).collect();
        let xhat = Self::affine(&xs, dims, &inv_std, &shift);
        let y = Self::affine(
            &xhat,
            dims,
            &data(&self.gamma.value),
            &data(&self.beta.value),
        );

        let mom = self.momentum;
        let unbiased = m as f64 / (m - 1) as f64;
        for (ch, r) in self.running_mean.iter_mut().enumerate() {
            *r = (1.0 - mom) * *r + mom * mean[ch] as f32;
        }
        for (ch, r) in self.running_var.iter_mut().enumerate() {
            *r = (1.0 - mom) * *r + mom * (var[ch] * unbiased) as f32;
        }
        self.cache = Some(Cache {
            shape: x.shape().to_vec(),
            xhat,
            inv_std,
        });
        from_vec(x.shape(), y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let dims = per_channel("batch_norm", x.shape(), self.channels())?;
        // y = γ/√(r_var + ε) · x + (β − γ·r_mean/√(r_var + ε))
        let (gamma, beta) = (data(&self.gamma.value), data(&self.beta.value));
        let scale: Vec<f32> = self
            .running_var
            .iter()
            .zip(gamma.iter())
            .map(|(&v, &g)| g / (v + self.eps).sqrt())
            .collect();
        let shift: Vec<f32> = (0..self.channels())
            .map(|ch| beta[ch] - scale[ch] * self.running_mean[ch])
            .collect();
        from_vec(x.shape(), Self::affine(&data(x), dims, &scale, &shift))
    }

    /// With `M = N·H·W` values per channel:
    /// `dβ = Σ dy`, `dγ = Σ dy·x̂`,
    /// `dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂·mean(dy·x̂))`.
    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "batch_norm" })?;
        same_shape("batch_norm", dy, &cache.shape)?;
        let dims @ (n, c, s) = per_channel("batch_norm", &cache.shape, self.channels())?;
        let m = (n * s) as f64;
        let dys = data(dy);
        let xhat = &cache.xhat;
        let sum_dy = per_channel_sum(dims, |_, st| {
            dys[st..st + s].iter().map(|&v| f64::from(v)).sum()
        });
        let sum_dy_xhat = per_channel_sum(dims, |_, st| {
            dys[st..st + s]
                .iter()
                .zip(&xhat[st..st + s])
                .map(|(&d, &h)| f64::from(d) * f64::from(h))
                .sum()
        });
        for ch in 0..c {
            self.beta.grad[ch] += sum_dy[ch] as f32;
            self.gamma.grad[ch] += sum_dy_xhat[ch] as f32;
        }
        let gamma = data(&self.gamma.value);
        let k: Vec<f32> = (0..c).map(|ch| gamma[ch] * cache.inv_std[ch]).collect();
        let mean_dy: Vec<f32> = sum_dy.iter().map(|&v| (v / m) as f32).collect();
        let mean_dy_xhat: Vec<f32> = sum_dy_xhat.iter().map(|&v| (v / m) as f32).collect();
        let mut dx = vec![0.0f32; dys.len()];
        dx.par_chunks_mut(c * s)
            .zip(dys.par_chunks(c * s))
            .zip(xhat.par_chunks(c * s))
            .for_each(|((dx_img, dy_img), xh_img)| {
                for ch in 0..c {
                    let r = ch * s..(ch + 1) * s;
                    let (kc, md, mdx) = (k[ch], mean_dy[ch], mean_dy_xhat[ch]);
                    for ((o, &d), &h) in dx_img[r.clone()]
                        .iter_mut()
                        .zip(&dy_img[r.clone()])
                        .zip(&xh_img[r])
                    {
                        *o = kc * (d - md - h * mdx);
                    }
                }
            });
        from_vec(&cache.shape, dx)
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.gamma, &self.beta]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.gamma, &mut self.beta]
    }

    fn buffers(&self) -> Vec<(&'static str, &Tensor)> {
        vec![
            ("running_mean", &self.running_mean),
            ("running_var", &self.running_var),
        ]
    }

    fn buffers_mut(&mut self) -> Vec<(&'static str, &mut Tensor)> {
        vec![
            ("running_mean", &mut self.running_mean),
            ("running_var", &mut self.running_var),
        ]
    }
}
