//! 2-D convolution (cross-correlation, as in PyTorch) by im2col + GEMM.

use super::gemm::{Gemm, Op};
use super::im2col::{Geometry, col2im, im2col};
use super::init::Init;
use super::tensor::{data, from_vec, nchw, same_shape};
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use rand::Rng;
use rayon::prelude::*;

/// Hyper-parameters of a convolution; square stride and padding as in the reference CNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2dConfig {
    pub in_channels: usize,
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: (usize, usize),
    pub stride: usize,
    pub padding: usize,
}

impl Conv2dConfig {
    /// A square `k×k` kernel.
    pub fn square(
        in_channels: usize,
        out_channels: usize,
        k: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel: (k, k),
            stride,
            padding,
        }
    }
}

/// `y[n, o] = b[o] + Σ_i W[o, i] ⋆ x[n, i]` with stride and zero padding.
///
/// Shapes: input `(N, I, H, W)`, output `(N, O, Ho, Wo)` with
/// `Ho = (H + 2p − kh) / s + 1` (floor), `weight (O, I, kh, kw)`, `bias (O)`.
///
/// Each image is one product `W (O, I·kh·kw) · cols (I·kh·kw, Ho·Wo)`; images run in
/// parallel (rayon), each writing only its own output. The training forward keeps the
/// column matrices, so backward does not unfold the input again.
#[derive(Debug, Clone)]
pub struct Conv2d {
    config: Conv2dConfig,
    pub weight: Param,
    pub bias: Param,
    cache: Option<Cache>,
}

#[derive(Debug, Clone)]
struct Cache {
    geometry: Geometry,
    batch: usize,
    /// Column matrices of every image. (N, I·kh·kw, Ho·Wo)
    cols: Vec<f32>,
}

impl Conv2d {
    pub fn new(config: Conv2dConfig, init: Init, rng: &mut impl Rng) -> Result<Self> {
        let Conv2dConfig {
            in_channels,
            out_channels,
            kernel: (kh, kw),
            stride,
            ..
        } = config;
        if in_channels == 0 || out_channels == 0 || kh == 0 || kw == 0 || stride == 0 {
            return Err(NnError::Invalid(format!(
                "conv2d: channels, kernel and stride must be positive, got {config:?}"
            )));
        }
        Ok(Conv2d {
            config,
            weight: Param::weight(
                "weight",
                init.tensor(&[out_channels, in_channels, kh, kw], rng)?,
            ),
            bias: Param::bias("bias", Tensor::zeros(vec![out_channels])),
            cache: None,
        })
    }

    pub fn config(&self) -> Conv2dConfig {
        self.config
    }

    /// The geometry for an input shape, or a shape error.
    fn geometry(&self, shape: &[usize]) -> Result<(usize, Geometry)> {
        let [n, c, h, w] = nchw("conv2d", shape, Some(self.config.in_channels))?;
        let (kh, kw) = self.config.kernel;
        let (s, p) = (self.config.stride, self.config.padding);
        if h + 2 * p < kh || w + 2 * p < kw {
            return Err(NnError::shape(
                "conv2d",
                format!("[N, {c}, H, W] with H + 2·{p} ≥ {kh} and W + 2·{p} ≥ {kw}"),
                shape,
            ));
        }
        let (ho, wo) = ((h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1);
        Ok((
            n,
            Geometry {
                c,
                h,
                w,
                kh,
                kw,
                stride: s,
                pad: p,
                ho,
                wo,
            },
        ))
    }

    /// `y_img (O, Ho·Wo) = bias + W · cols`.
    fn product(&self, g: &Geometry, w: &[f32], bias: &[f32], cols: &[f32], y_img: &mut [f32]) {
        let o = self.config.out_channels;
        for (row, &b) in y_img.chunks_exact_mut(g.cols()).zip(bias) {
            row.fill(b);
        }
        Gemm::new(o, g.cols(), g.rows())
            .accumulate(true)
            .run(w, cols, y_img);
    }

    fn run(&self, x: &Tensor, keep_cols: bool) -> Result<(Tensor, Option<Cache>)> {
        let (n, g) = self.geometry(x.shape())?;
        let o = self.config.out_channels;
        let x = data(x);
        let w = data(&self.weight.value);
        let b = data(&self.bias.value);
        let in_len = g.c * g.h * g.w;
        let col_len = g.rows() * g.cols();
        let mut y = vec![0.0f32; n * o * g.cols()];
        let mut cols = if keep_cols {
            vec![0.0f32; n * col_len]
        } else {
            Vec::new()
        };
        if keep_cols {
            y.par_chunks_mut(o * g.cols())
                .zip(cols.par_chunks_mut(col_len))
                .zip(x.par_chunks(in_len))
                .for_each(|((y_img, cols_img), x_img)| {
                    im2col(&g, x_img, cols_img);
                    self.product(&g, &w, &b, cols_img, y_img);
                });
        } else {
            y.par_chunks_mut(o * g.cols())
                .zip(x.par_chunks(in_len))
                .for_each_init(
                    || vec![0.0f32; col_len],
                    |cols_img, (y_img, x_img)| {
                        im2col(&g, x_img, cols_img);
                        self.product(&g, &w, &b, cols_img, y_img);
                    },
                );
        }
        let y = from_vec(&[n, o, g.ho, g.wo], y)?;
        let cache = keep_cols.then_some(Cache {
            geometry: g,
            batch: n,
            cols,
        });
        Ok((y, cache))
    }
}

impl Layer for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (n, g) = self.geometry(input)?;
        Ok(vec![n, self.config.out_channels, g.ho, g.wo])
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (y, cache) = self.run(x, mode == Mode::Train)?;
        if mode == Mode::Train {
            self.cache = cache;
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x, false)?.0)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "conv2d" })?;
        let (g, n) = (cache.geometry, cache.batch);
        let o = self.config.out_channels;
        same_shape("conv2d", dy, &[n, o, g.ho, g.wo])?;
        let dy = data(dy);
        let (out_len, col_len) = (o * g.cols(), g.rows() * g.cols());

        // Weight and bias gradients: each rayon task sums its images into its own
        // partial, the partials are added at the end (no two tasks write one buffer).
        let (dw, db) = dy
            .par_chunks(out_len)
            .zip(cache.cols.par_chunks(col_len))
            .fold(
                || (vec![0.0f32; o * g.rows()], vec![0.0f32; o]),
                |(mut dw, mut db), (dy_img, cols_img)| {
                    // dW (O, I·kh·kw) += dY_img (O, Ho·Wo) · colsᵀ
                    Gemm::new(o, g.rows(), g.cols())
                        .ops(Op::N, Op::T)
                        .accumulate(true)
                        .run(dy_img, cols_img, &mut dw);
                    for (acc, row) in db.iter_mut().zip(dy_img.chunks_exact(g.cols())) {
                        *acc += row.iter().sum::<f32>();
                    }
                    (dw, db)
                },
            )
            .reduce(
                || (vec![0.0f32; o * g.rows()], vec![0.0f32; o]),
                |(mut dw, mut db), (dw2, db2)| {
                    dw.iter_mut().zip(&dw2).for_each(|(a, b)| *a += b);
                    db.iter_mut().zip(&db2).for_each(|(a, b)| *a += b);
                    (dw, db)
                },
            );
        self.weight
            .grad
            .iter_mut()
            .zip(&dw)
            .for_each(|(a, b)| *a += b);
        self.bias
            .grad
            .iter_mut()
            .zip(&db)
            .for_each(|(a, b)| *a += b);

        // Input gradient, one image per task: dcols = Wᵀ · dY_img, folded back by col2im.
        let w = data(&self.weight.value);
        let mut dx = vec![0.0f32; n * g.c * g.h * g.w];
        dx.par_chunks_mut(g.c * g.h * g.w)
            .zip(dy.par_chunks(out_len))
            .for_each_init(
                || vec![0.0f32; col_len],
                |dcols, (dx_img, dy_img)| {
                    Gemm::new(g.rows(), g.cols(), o)
                        .ops(Op::T, Op::N)
                        .run(&w, dy_img, dcols);
                    col2im(&g, dcols, dx_img);
                },
            );
        from_vec(&[n, g.c, g.h, g.w], dx)
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.weight, &self.bias]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.weight, &mut self.bias]
    }
}
