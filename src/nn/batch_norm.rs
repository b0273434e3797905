//! Batch normalisation (Ioffe & Szegedy, 2015) over `(N, C)` and `(N, C, H, W)`.

use super::epilogue::Epilogue;
use super::pool;
use super::recycle;
use super::tensor::{
    CHUNK, data, from_vec, into_data, lane_sum, par_zeros, per_channel, same_shape, wide,
};
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use rayon::prelude::*;
use std::borrow::Cow;
use std::mem::MaybeUninit;

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
    /// The input x. The backward recomputes x̂ = (x − μ)·inv_std from it, the same
    /// operations as the forward's, so the same values: a stored x̂ would be one more
    /// full-size write every step. When the caller hands its input over
    /// (`forward_then_owned`), this is that buffer, not a copy, and the backward writes
    /// dE/dx over it.
    x: Vec<f32>,
    /// μ. (C)
    mean: Vec<f32>,
    /// 1/√(σ² + ε). (C)
    inv_std: Vec<f32>,
    /// Whether the forward applied the ReLU after this layer (`forward_then`); its
    /// derivative, `γ·x̂ + β > 0`, is recomputed from x̂ rather than stored.
    relu: bool,
    /// The 2×2 max pooling after this layer (and its ReLU), when the forward applied it.
    pool: Option<Pool>,
}

/// What the backward of a 2×2 max pooling applied in this layer's forward needs.
#[derive(Debug, Clone)]
struct Pool {
    /// Output shape `(N, C, H/2, W/2)`.
    shape: [usize; 4],
    /// Position of each output's maximum inside its plane, as `MaxPool2d` keeps it.
    argmax: Vec<u32>,
}

/// The gradient at this layer's output (`γ·x̂ + β`, or its ReLU), one run of S values
/// (one image, one channel) at a time: `dy` itself, or, when this layer pooled, the
/// pooled gradient spread back onto each window's maximum in a buffer of the run's size,
/// which stays in L1. The full-size map of a separate pooling layer's backward is never
/// written: it was three passes over the largest maps of the reference CNN (zeroing,
/// scattering, and reading it back here).
enum Upstream<'a> {
    Full(&'a [f32]),
    /// `dy` and `argmax` are `(N, C, Ho, Wo)`, `plane = Ho·Wo`.
    Pooled {
        dy: &'a [f32],
        argmax: &'a [u32],
        plane: usize,
    },
}

impl Upstream<'_> {
    /// The gradient over run `run`; `buf` is S values of scratch, S the run's length.
    fn run<'b>(&'b self, run: usize, buf: &'b mut [f32]) -> &'b [f32] {
        let s = buf.len();
        match *self {
            Upstream::Full(dy) => &dy[run * s..(run + 1) * s],
            Upstream::Pooled { dy, argmax, plane } => {
                let at = run * plane..(run + 1) * plane;
                buf.fill(0.0);
                pool::scatter(&dy[at.clone()], &argmax[at], buf);
                buf
            }
        }
    }
}

/// Per-channel mean and biased variance over a `(N, C, S)` view in one pass over memory:
/// each run (one image, one channel: S values, in L1) gets its mean and squared
/// deviations in f32, and runs are combined in f64 (Chan, Golub & LeVeque):
/// `M2 = Σ M2_run + S · Σ (mean_run − mean)²`.
fn mean_var(xs: &[f32], (n, c, s): (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let runs: Vec<(f64, f64)> = xs
        .par_chunks(s)
        .with_min_len((CHUNK / s).max(1))
        .map(|run| {
            wide(
                #[inline(always)]
                || {
                    let mean = lane_sum(run, run, |a, _| a) / s as f32;
                    let m2 = lane_sum(run, run, |a, _| (a - mean) * (a - mean));
                    (f64::from(mean), f64::from(m2))
                },
            )
        })
        .collect();
    let mut means = vec![0.0f64; c];
    let mut vars = vec![0.0f64; c];
    for ch in 0..c {
        let of_channel = || (0..n).map(|img| runs[img * c + ch]);
        let mean = of_channel().map(|r| r.0).sum::<f64>() / n as f64;
        let m2: f64 = of_channel()
            .map(|(m, m2)| m2 + s as f64 * (m - mean) * (m - mean))
            .sum();
        means[ch] = mean;
        vars[ch] = m2 / (n * s) as f64;
    }
    (means, vars)
}

/// The gradient reaching `γ·x̂ + β`: `dy` itself, or, when the ReLU after this layer
/// was applied in its forward (`relu`), `dy` where `γ·x̂ + β > 0` and 0 elsewhere.
/// The bitwise `|` (not `||`) keeps the loops that call it free of branches, so they
/// vectorise: with `||` the compiler tested each lane's mask bit in turn, which made the
/// backward's passes twice as slow once x̂ was recomputed in them.
#[inline]
fn gated(d: f32, h: f32, (g, b): (f32, f32), relu: bool) -> f32 {
    if !relu | (g * h + b > 0.0) { d } else { 0.0 }
}

/// Per-channel `Σ dy` and `Σ dy·x̂` (`dy` gated by [`gated`]) over a `(N, C, S)` view in
/// one pass over memory: each run (one image, one channel) is summed while it is in L1
/// (f32 lanes), runs of one channel are added in f64.
fn grad_sums(
    dy: &Upstream<'_>,
    (x, mean, inv_std): (&[f32], &[f32], &[f32]),
    (n, c, s): (usize, usize, usize),
    (gamma, beta): (&[f32], &[f32]),
    relu: bool,
) -> (Vec<f64>, Vec<f64>) {
    let runs: Vec<(f64, f64)> = (0..n * c)
        .into_par_iter()
        .with_min_len((CHUNK / s).max(1))
        .map_init(
            || vec![0.0f32; s],
            |buf, run| {
                let (d, x) = (dy.run(run, buf), &x[run * s..(run + 1) * s]);
                let ch = run % c;
                let (gb, mu, k) = ((gamma[ch], beta[ch]), mean[ch], inv_std[ch]);
                wide(
                    #[inline(always)]
                    || {
                        let sum_dy = lane_sum(d, x, |d, v| gated(d, (v - mu) * k, gb, relu));
                        let sum_dy_xhat = lane_sum(d, x, |d, v| {
                            let h = (v - mu) * k;
                            gated(d, h, gb, relu) * h
                        });
                        (f64::from(sum_dy), f64::from(sum_dy_xhat))
                    },
                )
            },
        )
        .collect();
    let of_channel = |ch: usize, part: fn(&(f64, f64)) -> f64| -> f64 {
        (0..n).map(|img| part(&runs[img * c + ch])).sum()
    };
    (
        (0..c).map(|ch| of_channel(ch, |r| r.0)).collect(),
        (0..c).map(|ch| of_channel(ch, |r| r.1)).collect(),
    )
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

    /// `forward_then` on a borrowed or a handed-over input.
    fn forward_chain(
        &mut self,
        x: Cow<'_, Tensor>,
        mode: Mode,
        chain: &[Epilogue],
    ) -> Result<(Tensor, usize)> {
        if mode != Mode::Train {
            return Ok((self.infer(&x)?, 0));
        }
        let relu = chain.first() == Some(&Epilogue::Relu);
        // The pooling layer refuses maps under 2×2 itself (with its own error).
        let poolable = matches!(x.shape(), &[_, _, h, w] if h >= 2 && w >= 2);
        let pool = poolable && chain.get(usize::from(relu)) == Some(&Epilogue::MaxPool2x2);
        let y = self.train_forward(x, relu, pool)?;
        Ok((y, usize::from(relu) + usize::from(pool)))
    }

    /// The training forward; with `relu`, `max(0, y)`, and with `pool`, 2×2 max pooling of that
    /// (see `forward_then`).
    fn train_forward(&mut self, x: Cow<'_, Tensor>, relu: bool, pool: bool) -> Result<Tensor> {
        let dims @ (n, c, s) = per_channel("batch_norm", x.shape(), self.channels())?;
        let m = n * s;
        if m < 2 {
            return Err(NnError::shape(
                "batch_norm",
                "more than one value per channel in training",
                x.shape(),
            ));
        }
        let shape = x.shape().to_vec();
        let xs = match x {
            Cow::Borrowed(x) => data(x).into_owned(),
            Cow::Owned(x) => into_data(x),
        };
        let (mean_f64, var) = mean_var(&xs, dims);
        let mean: Vec<f32> = mean_f64.iter().map(|&m| m as f32).collect();
        let inv_std: Vec<f32> = var
            .iter()
            .map(|&v| (1.0 / (v + f64::from(self.eps)).sqrt()) as f32)
            .collect();
        // One pass writes y = γ·x̂ + β (then max(0, y)), x̂ = (x − μ)·inv_std.
        let (gamma, beta) = (data(&self.gamma.value), data(&self.beta.value));
        // Writes every value of `o` (as long as `x`), so that it may be fresh memory.
        let normalise = |run: usize, o: &mut [MaybeUninit<f32>], x: &[f32]| {
            let ch = run % c;
            let (mu, k, g, b) = (mean[ch], inv_std[ch], gamma[ch], beta[ch]);
            wide(
                #[inline(always)]
                || {
                    if relu {
                        for (o, &v) in o.iter_mut().zip(x) {
                            o.write((g * ((v - mu) * k) + b).max(0.0));
                        }
                    } else {
                        for (o, &v) in o.iter_mut().zip(x) {
                            o.write(g * ((v - mu) * k) + b);
                        }
                    }
                },
            )
        };
        let (y, out_shape, pooled) = match (pool, shape.as_slice()) {
            (true, &[_, _, h, w]) => {
                // Each run's y only in an L1 buffer, pooled from there.
                let (ho, wo) = (h / 2, w / 2);
                let mut y = recycle::take(n * c * ho * wo);
                let mut argmax = par_zeros(y.len());
                y.par_chunks_mut(ho * wo)
                    .zip(argmax.par_chunks_mut(ho * wo))
                    .zip(xs.par_chunks(s))
                    .with_min_len((CHUNK / s).max(1))
                    .enumerate()
                    .for_each_init(
                        || vec![MaybeUninit::new(0.0f32); s],
                        |full, (run, ((o, at), x))| {
                            normalise(run, full, x);
                            // SAFETY: `normalise` wrote all of `full` (as long as `x`,
                            // a run of `s` values), and the layouts are the same.
                            let full = unsafe { &*(full.as_slice() as *const _ as *const [f32]) };
                            pool::pool_2x2(full, w, wo, o, at);
                        },
                    );
                let shape = [n, c, ho, wo];
                (y, shape.to_vec(), Some(Pool { shape, argmax }))
            }
            _ => {
                let mut y = recycle::take_uninit(xs.len());
                y.par_chunks_mut(s)
                    .zip(xs.par_chunks(s))
                    .with_min_len((CHUNK / s).max(1))
                    .enumerate()
                    .for_each(|(run, (o, x))| normalise(run, o, x));
                // SAFETY: `y` is as long as `xs`, and each of its runs of `s` values was
                // written by `normalise` from the run of `xs` beside it.
                (unsafe { recycle::assume_written(y) }, shape.clone(), None)
            }
        };

        let mom = self.momentum;
        let unbiased = m as f64 / (m - 1) as f64;
        for (ch, r) in self.running_mean.iter_mut().enumerate() {
            *r = (1.0 - mom) * *r + mom * mean[ch];
        }
        for (ch, r) in self.running_var.iter_mut().enumerate() {
            *r = (1.0 - mom) * *r + mom * (var[ch] * unbiased) as f32;
        }
        self.cache = Some(Cache {
            shape,
            x: xs,
            mean,
            inv_std,
            relu,
            pool: pooled,
        });
        from_vec(&out_shape, y)
    }

    /// The eval-mode map as `y = scale[c]·x + shift[c]`:
    /// `scale = γ/√(r_var + ε)`, `shift = β − scale·r_mean`. (C), (C)
    fn eval_affine(&self) -> (Vec<f32>, Vec<f32>) {
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
        (scale, shift)
    }

    /// `y = scale[c]·x + shift[c]` over the `(N, C, S)` view, images in parallel.
    fn affine(
        x: &[f32],
        (_, c, s): (usize, usize, usize),
        scale: &[f32],
        shift: &[f32],
    ) -> Vec<f32> {
        let mut y = recycle::take(x.len());
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
        Ok(self.forward_chain(Cow::Borrowed(x), mode, &[])?.0)
    }

    /// In training, a ReLU right after this layer, and a 2×2 max pooling after that (or
    /// right after this layer), are applied in the same pass: the full-size output is
    /// then never written, and the pooling layer's argmax comes from a copy of each run
    /// that is still in L1. Run as layers, they read and write the whole map once more
    /// each way, forward and backward. Their backward is taken by this layer's.
    fn forward_then(
        &mut self,
        x: &Tensor,
        mode: Mode,
        chain: &[Epilogue],
    ) -> Result<(Tensor, usize)> {
        self.forward_chain(Cow::Borrowed(x), mode, chain)
    }

    /// Keeps the handed-over input itself for the backward (see `Cache::x`).
    fn forward_then_owned(
        &mut self,
        x: Tensor,
        mode: Mode,
        chain: &[Epilogue],
    ) -> Result<(Tensor, usize)> {
        self.forward_chain(Cow::Owned(x), mode, chain)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let dims = per_channel("batch_norm", x.shape(), self.channels())?;
        let (scale, shift) = self.eval_affine();
        from_vec(x.shape(), Self::affine(&data(x), dims, &scale, &shift))
    }

    fn as_epilogue(&self) -> Option<Epilogue> {
        let (scale, shift) = self.eval_affine();
        Some(Epilogue::ChannelAffine { scale, shift })
    }

    /// With `M = N·H·W` values per channel:
    /// `dβ = Σ dy`, `dγ = Σ dy·x̂`,
    /// `dx = γ/√(σ² + ε) · (dy − mean(dy) − x̂·mean(dy·x̂))`.
    ///
    /// The backward spends the forward's cache (dE/dx is written over the kept input), as
    /// PyTorch frees a graph's saved tensors: a second backward needs a new forward.
    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "batch_norm" })?;
        let out_shape = cache
            .pool
            .as_ref()
            .map_or(&cache.shape[..], |p| &p.shape[..]);
        same_shape("batch_norm", dy, out_shape)?;
        let Some(Cache {
            shape,
            x: mut dx,
            mean,
            inv_std,
            relu,
            pool,
        }) = self.cache.take()
        else {
            unreachable!("checked above");
        };
        let dims @ (n, c, s) = per_channel("batch_norm", &shape, self.channels())?;
        let dys = data(dy);
        let upstream = match &pool {
            Some(pool) => {
                let [_, _, ho, wo] = pool.shape;
                Upstream::Pooled {
                    dy: &dys,
                    argmax: &pool.argmax,
                    plane: ho * wo,
                }
            }
            None => Upstream::Full(&dys),
        };
        let m = (n * s) as f64;
        let (gamma, beta) = (data(&self.gamma.value), data(&self.beta.value));
        let kept = (dx.as_slice(), mean.as_slice(), inv_std.as_slice());
        let (sum_dy, sum_dy_xhat) = grad_sums(&upstream, kept, dims, (&gamma, &beta), relu);
        for ch in 0..c {
            self.beta.grad[ch] += sum_dy[ch] as f32;
            self.gamma.grad[ch] += sum_dy_xhat[ch] as f32;
        }
        let k: Vec<f32> = (0..c).map(|ch| gamma[ch] * inv_std[ch]).collect();
        let mean_dy: Vec<f32> = sum_dy.iter().map(|&v| (v / m) as f32).collect();
        let mean_dy_xhat: Vec<f32> = sum_dy_xhat.iter().map(|&v| (v / m) as f32).collect();
        // In place: each element of x becomes its dE/dx.
        dx.par_chunks_mut(c * s).enumerate().for_each_init(
            || vec![0.0f32; s],
            |buf, (img, dx_img)| {
                for (ch, dx_run) in dx_img.chunks_exact_mut(s).enumerate() {
                    let d = upstream.run(img * c + ch, buf);
                    let (kc, md, mdx) = (k[ch], mean_dy[ch], mean_dy_xhat[ch]);
                    let (gb, mu, inv) = ((gamma[ch], beta[ch]), mean[ch], inv_std[ch]);
                    wide(
                        #[inline(always)]
                        || {
                            for (o, &d) in dx_run.iter_mut().zip(d) {
                                let h = (*o - mu) * inv;
                                *o = kc * (gated(d, h, gb, relu) - md - h * mdx);
                            }
                        },
                    );
                }
            },
        );
        from_vec(&shape, dx)
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
