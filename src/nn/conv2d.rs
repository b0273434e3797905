//! 2-D convolution (cross-correlation, as in PyTorch) by im2col + GEMM, or, for large
//! 3×3 maps at stride 1, by Winograd's F(4×4, 3×3) (`winograd`).

use super::epilogue::{self, Epilogue};
use super::gemm::{Gemm, Op};
use super::im2col::{Geometry, col2im_band, im2col_band, im2col_band_strided};
use super::init::Init;
use super::recycle;
use super::tensor::{add_row_sums, data, from_vec, into_data, nchw, same_shape};
use super::winograd;
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use rand::Rng;
use rayon::prelude::*;
use std::cell::Cell;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

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
/// Each image is the product `W (O, I·kh·kw) · cols (I·kh·kw, Ho·Wo)`; images run in
/// parallel (rayon), each writing only its own output. The column matrix is unfolded a
/// band of output rows at a time (`bands`) into a per-task scratch buffer of at most
/// `COLUMN_BYTES`, so it stays in the core's cache: on large maps with few channels
/// (32×112×96 in a residual network's first stage) one image's whole matrix is 12 MB,
/// and writing it out and streaming it back through the product cost more than the
/// arithmetic. Backward unfolds the input again rather than keeping `N` column matrices
/// (9× the input) in memory, which measured faster. With `input_grad` off (the first
/// layer, whose input is data), backward skips dE/dx and returns zeros.
///
/// At stride 1 with at least `ROW_DEPTH` input channels × kernel columns, the forward
/// unfolds the input along kernel columns only and runs one product per kernel row
/// (`unfolds_by_kernel_row`): a third of the copy for a 3×3 kernel.
///
/// A 3×3 convolution at stride 1 with enough work per image (`winograd_applies`: a
/// residual network's stages, not the reference CNN) runs its forward, its dE/dx and its
/// dE/dW as Winograd's F(4×4, 3×3) instead, in bands that start on multiples of four
/// rows.
#[derive(Debug, Clone)]
pub struct Conv2d {
    config: Conv2dConfig,
    weight: Param,
    bias: Param,
    /// Whether backward computes dE/dx (default true).
    pub input_grad: bool,
    cache: Option<Cache>,
    transformed: Transformed,
}

/// Winograd's transformed weights of the last inference. An inference reuses them while
/// the weights stay the same: at batch 1 the transform (one thread, 36 values from every
/// kernel's 9) was 7.5 % of the samples of a ResNet-14's inference on a 2-core Xeon, the
/// other thread idle meanwhile. The weights are private to the layer and every way to
/// change them takes it by `&mut` and empties this ([`Conv2d::weight_mut`],
/// [`Layer::params_mut`], a training forward), so an inference does not compare them:
/// comparing (2 × 2.4 MB read per inference of the ResNet-14, and a parallel loop per
/// convolution) cost about 4 % of its fastest batch-1 passes on an AVX-512 EPYC
/// (BENCHMARKS.md).
/// Debug builds (the tests) still compare, and fail on a change that went around this.
/// A clone starts empty.
#[derive(Default)]
struct Transformed(Mutex<Option<Arc<Kept>>>);

/// The transform of the weights by [`winograd::weights`], or by
/// [`winograd::six::weights`] (`six`); in debug builds, the weights it was made from.
struct Kept {
    #[cfg(debug_assertions)]
    weights: Vec<f32>,
    six: bool,
    u: Vec<f32>,
}

impl Transformed {
    /// The kept transform if it is in the same form (`six`), else `make()` from the
    /// weights `w`, kept in its place. The lock is held only to take or replace the
    /// `Arc`: concurrent inferences of one layer that miss transform each on its own
    /// thread.
    fn get(&self, w: &[f32], six: bool, make: impl FnOnce() -> Vec<f32>) -> Arc<Kept> {
        let lock = || self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let last = lock().clone();
        if let Some(kept) = last.filter(|kept| kept.six == six) {
            #[cfg(debug_assertions)]
            assert!(
                same_bits(&kept.weights, w),
                "conv2d: the weights changed without emptying their kept transform"
            );
            #[cfg(not(debug_assertions))]
            let _ = w; // compared in debug builds only
            return kept;
        }
        let kept = Arc::new(Kept {
            #[cfg(debug_assertions)]
            weights: w.to_vec(),
            six,
            u: make(),
        });
        *lock() = Some(Arc::clone(&kept));
        kept
    }

    fn clear(&mut self) {
        *self.0.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

/// Whether `a` and `b` hold the same bits (debug builds' check of [`Transformed`]).
#[cfg(debug_assertions)]
fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl Clone for Transformed {
    fn clone(&self) -> Self {
        Transformed::default()
    }
}

impl std::fmt::Debug for Transformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transformed")
    }
}

#[derive(Debug, Clone)]
struct Cache {
    geometry: Geometry,
    batch: usize,
    /// The last training input. (N, I, H, W)
    input: Vec<f32>,
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
            input_grad: true,
            cache: None,
            transformed: Transformed::default(),
        })
    }

    /// The weights `(O, C, kh, kw)`.
    pub fn weight(&self) -> &Param {
        &self.weight
    }

    /// The bias `(O)`.
    pub fn bias(&self) -> &Param {
        &self.bias
    }

    /// The weights, to change: the transform kept for inference is dropped.
    pub fn weight_mut(&mut self) -> &mut Param {
        self.transformed.clear();
        &mut self.weight
    }

    /// The bias, to change (the kept transform holds no bias).
    pub fn bias_mut(&mut self) -> &mut Param {
        &mut self.bias
    }

    pub fn config(&self) -> Conv2dConfig {
        self.config
    }

    /// The geometry for an input shape, or a shape error.
    fn geometry(&self, shape: &[usize]) -> Result<(usize, Geometry)> {
        let [n, c, h, w] = nchw("conv2d", shape, Some(self.config.in_channels))?;
        let (kh, kw) = self.config.kernel;
        let (s, p) = (self.config.stride, self.config.padding);
        // `nchw` has refused an empty map, even one whose padding alone would cover
        // the kernel.
        if h + 2 * p < kh || w + 2 * p < kw {
            return Err(NnError::shape(
                "conv2d",
                format!("[N, {c}, H, W] with H, W ≥ 1, H + 2·{p} ≥ {kh} and W + 2·{p} ≥ {kw}"),
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

    /// `y_img (O, H', W')`: `chain` applied to `bias + W · cols`, computed band by band
    /// of output rows. With `inner` (fewer images than threads) the bands run in
    /// parallel, each into its own block of a thread's tile, put through `chain` and
    /// written into its rows of every channel of `y_img`: per-band products are too small
    /// to split inside the kernel (splitting them made a residual network's batch-1
    /// inference 17 % slower than the unbanded convolution had been). A convolution of
    /// one band splits its one product instead, and its channels go through `chain` in
    /// parallel. `weights` are the weights, the bias and the [`Form`] of each band's
    /// product.
    fn product(
        &self,
        g: &Geometry,
        weights: (&[f32], &[f32], Form),
        chain: &[Epilogue],
        (x_img, scratch): (&[f32], &mut Scratch),
        y_img: &mut [f32],
        inner: bool,
    ) {
        let o = self.config.out_channels;
        let threads = if inner {
            rayon::current_num_threads()
        } else {
            1
        };
        let mut step = image_band_rows(g, o, weights.2, threads);
        let one_band = step == g.ho;
        if inner && !one_band {
            // A pooled band must start on an even row.
            if epilogue::pools(chain) {
                step = step.next_multiple_of(2);
            }
            return scratch.lend(|| self.parallel_bands(g, weights, chain, x_img, y_img, step));
        }
        let Scratch((cols, tile)) = scratch;
        if let Some(u) = fused_winograd(weights.2, chain) {
            // Written once, through the chain, by the output transform.
            let s = winograd_shape(g, o);
            for band in bands(g.ho, step) {
                let mut outs = winograd::strided_rows(
                    &mut y_img[band.start * g.wo..],
                    g.cols(),
                    band.len() * g.wo,
                );
                let post = (Some(weights.1), chain);
                winograd::band(&s, u, post, x_img, band, &mut outs, cols, inner);
            }
            return;
        }
        let run_bands = |cols: &mut Vec<f32>, out: &mut [f32]| {
            for band in bands(g.ho, step) {
                let start = band.start * g.wo;
                self.band_product(
                    g,
                    weights,
                    (x_img, cols),
                    band,
                    &mut out[start..],
                    g.cols(),
                    inner,
                );
            }
        };
        if chain.is_empty() {
            return run_bands(cols, y_img);
        }
        let tile = prefix(tile, o * g.cols());
        run_bands(cols, tile);
        if !inner {
            return epilogue::apply(chain, (o, g.ho, g.wo), tile, y_img);
        }
        let plane = y_img.len() / o.max(1);
        tile.par_chunks_mut(g.cols())
            .zip(y_img.par_chunks_mut(plane.max(1)))
            .enumerate()
            .for_each(|(ch, (x, y))| epilogue::apply_plane(chain, ch, (g.ho, g.wo), x, y));
    }

    /// The bands of `step` rows of one image in parallel (see [`Conv2d::product`]): each
    /// computed into its thread's tile, put through `chain` and written into its rows of
    /// every channel of `y_img (O, H', W')`.
    fn parallel_bands(
        &self,
        g: &Geometry,
        weights: (&[f32], &[f32], Form),
        chain: &[Epilogue],
        x_img: &[f32],
        y_img: &mut [f32],
        step: usize,
    ) {
        let o = self.config.out_channels;
        let (_, wo_out) = epilogue::output_hw(chain, g.ho, g.wo);
        let out_rows = |band: &Range<usize>| epilogue::output_rows(chain, band.clone());
        let list: Vec<Range<usize>> = bands(g.ho, step).collect();
        // Each band's rows of each channel, split off the planes in order.
        let mut pieces: Vec<Vec<&mut [f32]>> = list.iter().map(|_| Vec::with_capacity(o)).collect();
        for plane in y_img.chunks_exact_mut(y_img.len() / o.max(1)) {
            let mut rest = plane;
            for (band, out) in list.iter().zip(pieces.iter_mut()) {
                let (piece, tail) = rest.split_at_mut(out_rows(band) * wo_out);
                out.push(piece);
                rest = tail;
            }
        }
        list.into_par_iter().zip(pieces).for_each_init(
            Scratch::take,
            |Scratch((cols, tile)), (band, mut outs)| {
                if let Some(u) = fused_winograd(weights.2, chain) {
                    let s = winograd_shape(g, o);
                    let post = (Some(weights.1), chain);
                    return winograd::band(&s, u, post, x_img, band, &mut outs, cols, false);
                }
                let width = band.len() * g.wo;
                let block = prefix(tile, o * width);
                let rows = band.len();
                self.band_product(g, weights, (x_img, cols), band, block, width, false);
                for (ch, (x, y)) in block.chunks_exact_mut(width).zip(outs).enumerate() {
                    epilogue::apply_plane(chain, ch, (rows, g.wo), x, y);
                }
            },
        );
    }

    /// One band of output rows, `out (O, |band|·Wo)` with leading dimension `ld`, set to
    /// `bias + W · cols` over the band's columns; the product split between the threads
    /// with `parallel`.
    #[allow(clippy::too_many_arguments)]
    fn band_product(
        &self,
        g: &Geometry,
        (w, bias, form): (&[f32], &[f32], Form),
        (x_img, cols): (&[f32], &mut Vec<f32>),
        band: Range<usize>,
        out: &mut [f32],
        ld: usize,
        parallel: bool,
    ) {
        let o = self.config.out_channels;
        let width = band.len() * g.wo;
        if let Form::Winograd(u) = form {
            let s = winograd_shape(g, o);
            let mut outs = winograd::strided_rows(out, ld, width);
            let post = (Some(bias), &[][..]);
            return winograd::band(&s, u, post, x_img, band, &mut outs, cols, parallel);
        }
        for (row, &b) in out.chunks_mut(ld).zip(bias) {
            row[..width].fill(b);
        }
        let gemm = |k| Gemm::new(o, width, k).accumulate(true).parallel(parallel);
        match form {
            Form::KernelRows(w_rows) => {
                // Unfolded row `t` (input row `t − p`) feeds output row `t − ki` through
                // kernel row `ki`: product `ki` reads the unfolded band `ki` rows down.
                let rows = band.start..band.end + g.kh - 1;
                let (depth, span) = (g.c * g.kw, rows.len() * g.wo);
                let unfolded = prefix(cols, depth * span);
                im2col_band(&row_geometry(g), x_img, rows, unfolded);
                for (ki, w_ki) in w_rows.chunks_exact(o * depth).enumerate() {
                    gemm(depth).leading(None, Some(span), Some(ld)).run(
                        w_ki,
                        &unfolded[ki * g.wo..],
                        out,
                    );
                }
            }
            // Winograd's form has returned above.
            Form::Columns | Form::Winograd(_) => {
                let cols = prefix(cols, g.rows() * width);
                im2col_band(g, x_img, band, cols);
                gemm(g.rows())
                    .leading(None, None, Some(ld))
                    .run(w, cols, out);
            }
        }
    }

    /// The outputs of several images `x (G, C, H, W)` from one product: their column
    /// matrices side by side (`(C·kh·kw, G·Ho·Wo)`), then each image's block of the
    /// result put through `chain` into `y (G, O, H', W')`. For maps too small to fill
    /// the kernel's panels alone (see [`images_per_product`]).
    fn shared_product(
        &self,
        g: &Geometry,
        (w, bias): (&[f32], &[f32]),
        chain: &[Epilogue],
        Scratch((cols, tile)): &mut Scratch,
        x: &[f32],
        y: &mut [f32],
    ) {
        let (o, p) = (self.config.out_channels, g.cols());
        let images = x.len() / (g.c * g.h * g.w);
        let width = images * p;
        let cols = prefix(cols, g.rows() * width);
        for (i, x_img) in x.chunks_exact(g.c * g.h * g.w).enumerate() {
            im2col_band_strided(g, x_img, 0..g.ho, &mut cols[i * p..], width);
        }
        let tile = prefix(tile, o * width);
        for (row, &b) in tile.chunks_exact_mut(width).zip(bias) {
            row.fill(b);
        }
        Gemm::new(o, width, g.rows())
            .accumulate(true)
            .run(w, cols, tile);
        let mut image = Vec::with_capacity(if chain.is_empty() { 0 } else { o * p });
        for (i, y_img) in y.chunks_exact_mut(y.len() / images).enumerate() {
            let block = tile.chunks_exact(width).map(|row| &row[i * p..(i + 1) * p]);
            if chain.is_empty() {
                for (dst, src) in y_img.chunks_exact_mut(p).zip(block) {
                    dst.copy_from_slice(src);
                }
            } else {
                image.clear();
                block.for_each(|src| image.extend_from_slice(src));
                epilogue::apply(chain, (o, g.ho, g.wo), &mut image, y_img);
            }
        }
    }

    /// Hands the last step's cached input to [`recycle`] before a training forward
    /// replaces it: the output this forward takes next is usually the same size (the
    /// convolutions inside a stage), and comes then without a zero fill or fresh pages.
    fn spend_cache(&mut self) {
        if let Some(cache) = self.cache.take() {
            recycle::give(cache.input);
        }
    }

    /// Caches the training forward's input `(N, C, H, W)` for the backward.
    fn keep(&mut self, shape: &[usize], input: Vec<f32>) -> Result<()> {
        let (batch, geometry) = self.geometry(shape)?;
        self.cache = Some(Cache {
            geometry,
            batch,
            input,
        });
        Ok(())
    }

    /// The forward, each image's output put through `chain` before it leaves the cache
    /// (see `epilogue`). Threading: one image per rayon task with single-threaded
    /// products when there are at least as many images as threads; otherwise (batch 1 at
    /// inference) the images run in turn and each product uses every thread. Maps under
    /// [`SMALL_MAP`] positions go a group of images per task, one product per group
    /// ([`images_per_product`]). At inference (`inference`) Winograd's transformed
    /// weights come from [`Transformed`] when the weights have not changed, and 3×3 maps
    /// too small for Winograd's form image by image may take it a group of images at a
    /// time ([`winograd_images`]; not in training, whose backward follows the form of
    /// [`winograd_applies`]).
    fn run(&self, x: &Tensor, chain: &[Epilogue], inference: bool) -> Result<Tensor> {
        let (n, g) = self.geometry(x.shape())?;
        let o = self.config.out_channels;
        let (ho, wo) = epilogue::output_hw(chain, g.ho, g.wo);
        let x = data(x);
        let (w, b) = (data(&self.weight.value), data(&self.bias.value));
        let inner = n < rayon::current_num_threads();
        // Every output is written (by the products, or Winograd's output transform).
        let mut y = recycle::take(n * o * ho * wo);
        let together = if inference && !epilogue::pools(chain) {
            winograd_images(&g, o, n, rayon::current_num_threads())
        } else {
            1
        };
        if together > 1 {
            let s = winograd_shape(&g, o);
            let six = winograd::by_six(&s);
            let kept = self
                .transformed
                .get(&w, six, || winograd::images_weights(&s, &w));
            y.par_chunks_mut(together * o * ho * wo)
                .zip(x.par_chunks(together * g.c * g.h * g.w))
                .for_each_init(Scratch::take, |Scratch((cols, _)), (y_group, x_group)| {
                    let mut outs: Vec<&mut [f32]> = y_group.chunks_mut(ho * wo).collect();
                    winograd::images(&s, &kept.u, (Some(&b), chain), x_group, &mut outs, cols);
                });
            return from_vec(&[n, o, ho, wo], y);
        }
        let group = images_per_product(&g, n, rayon::current_num_threads());
        let prepared = if group == 1 {
            Prepared::new(&g, &w, o, inner, inference.then_some(&self.transformed))
        } else {
            Prepared::Columns
        };
        let form = prepared.form();
        let image = |buffers: &mut Scratch, (y_img, x_img): (&mut [f32], &[f32])| {
            self.product(&g, (&w, &b, form), chain, (x_img, buffers), y_img, inner);
        };
        let scratch = Scratch::take;
        if y.is_empty() {
            // An empty batch, or maps pooled to nothing (one row or column wide).
        } else if group > 1 {
            y.par_chunks_mut(group * o * ho * wo)
                .zip(x.par_chunks(group * g.c * g.h * g.w))
                .for_each_init(scratch, |buffers, (y_group, x_group)| {
                    self.shared_product(&g, (&w, &b), chain, buffers, x_group, y_group)
                });
        } else if inner {
            let mut buffers = scratch();
            y.chunks_mut(o * ho * wo)
                .zip(x.chunks(g.c * g.h * g.w))
                .for_each(|pair| image(&mut buffers, pair));
        } else {
            y.par_chunks_mut(o * ho * wo)
                .zip(x.par_chunks(g.c * g.h * g.w))
                .for_each_init(scratch, image);
        }
        from_vec(&[n, o, ho, wo], y)
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
        if mode == Mode::Train {
            self.spend_cache();
        }
        let y = self.run(x, &[], false)?;
        if mode == Mode::Train {
            self.transformed.clear();
            self.keep(x.shape(), data(x).into_owned())?;
        }
        Ok(y)
    }

    /// Keeps the handed-over input itself for the backward, not a copy.
    fn forward_then_owned(
        &mut self,
        x: Tensor,
        mode: Mode,
        _chain: &[Epilogue],
    ) -> Result<(Tensor, usize)> {
        if mode == Mode::Train {
            self.spend_cache();
        }
        let y = self.run(&x, &[], false)?;
        if mode == Mode::Train {
            self.transformed.clear();
            let shape = x.shape().to_vec();
            self.keep(&shape, into_data(x))?;
        }
        Ok((y, 0))
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.run(x, &[], true)
    }

    fn infer_then(&self, x: &Tensor, chain: &[Epilogue]) -> Result<(Tensor, usize)> {
        let o = self.config.out_channels;
        let chain = match self.geometry(x.shape()) {
            Ok((_, g)) => epilogue::for_output(chain, (o, g.ho, g.wo)),
            Err(_) => chain, // `run` reports the shape
        };
        Ok((self.run(x, chain, true)?, chain.len()))
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
        let w = data(&self.weight.value);
        let (in_len, out_len) = (g.c * g.h * g.w, o * g.cols());
        let col_len = g.rows() * band_rows(&g) * g.wo;
        let input_grad = self.input_grad;
        let mut dx = recycle::zeros(n * in_len);
        // Where the forward is Winograd's, so is the backward: dE/dW summed in the
        // transformed domain (`Partial::dw` then holds `dU (36, O, C)`), dE/dx as the
        // convolution of dY by the rotated kernel.
        let winograd = winograd_applies(&g, o);
        let winograd_back = (input_grad && winograd).then(|| {
            let s = winograd::Shape {
                c: o,
                o: g.c,
                h: g.ho,
                w: g.wo,
                pad: 2 - g.pad,
            };
            (s, winograd::input_grad_weights(&w, o, g.c))
        });
        let dw_len = if winograd {
            winograd::TILE * o * g.c
        } else {
            o * g.rows()
        };

        // One image per step. dE/dx: each image writes only its own slice. dE/dW, dE/db:
        // the batch is cut into groups of consecutive images (`image_groups`), each
        // group sums its images into its own partial, and the partials are added in
        // group order. The cut depends only on the batch size and the thread count, never
        // on which thread ran what (rayon's `fold` would also split where work was
        // stolen), so a training step rounds the same way every run.
        let groups = image_groups(n, rayon::current_num_threads());
        let mut dx_groups = Vec::with_capacity(groups.len());
        let mut rest = dx.as_mut_slice();
        for &(_, len) in &groups {
            let (head, tail) = rest.split_at_mut(len * in_len);
            dx_groups.push(head);
            rest = tail;
        }
        let partials: Vec<Partial> = dx_groups
            .into_par_iter()
            .zip(groups.par_iter())
            .map(|(dx_group, &(first, len))| {
                let mut acc = Partial {
                    dw: vec![0.0f32; dw_len],
                    db: vec![0.0f32; o],
                };
                // The column scratch lives only while the group runs: kept in the
                // partial, every group's would stay allocated until the partials are
                // summed (four at two threads: 3 MB for the reference CNN).
                let mut cols = Vec::with_capacity(col_len);
                let dy_group = &dy[first * out_len..(first + len) * out_len];
                let x_group = &cache.input[first * in_len..(first + len) * in_len];
                let images = dx_group
                    .chunks_mut(in_len)
                    .zip(dy_group.chunks(out_len))
                    .zip(x_group.chunks(in_len));
                for ((dx_img, dy_img), x_img) in images {
                    add_row_sums(&mut acc.db, dy_img, g.cols());
                    if winograd {
                        let s = winograd_shape(&g, o);
                        for band in bands(g.ho, weight_grad_band_rows(&g, o)) {
                            winograd::add_weight_grad_band(
                                &s,
                                x_img,
                                dy_img,
                                band,
                                &mut acc.dw,
                                &mut cols,
                            );
                        }
                        if let Some((s, u)) = &winograd_back {
                            winograd::image(s, u, dy_img, dx_img, &mut cols, winograd_bytes());
                        }
                    } else {
                        for band in bands(g.ho, band_rows(&g)) {
                            let width = band.len() * g.wo;
                            let dy_band = &dy_img[band.start * g.wo..];
                            let cols = prefix(&mut cols, g.rows() * width);
                            // dW (O, I·kh·kw) += dY_band (O, |band|·Wo) · colsᵀ
                            im2col_band(&g, x_img, band.clone(), cols);
                            Gemm::new(o, g.rows(), width)
                                .ops(Op::N, Op::T)
                                .accumulate(true)
                                .leading(Some(g.cols()), None, None)
                                .run(dy_band, cols, &mut acc.dw);
                            if input_grad {
                                // dcols = Wᵀ · dY_band, folded back into the image (reusing
                                // the buffer).
                                Gemm::new(g.rows(), width, o)
                                    .ops(Op::T, Op::N)
                                    .leading(None, Some(g.cols()), None)
                                    .run(&w, dy_band, cols);
                                col2im_band(&g, cols, band, dx_img);
                            }
                        }
                    }
                }
                acc
            })
            .collect();
        let mut partials = partials.into_iter();
        let Some(mut sums) = partials.next() else {
            return from_vec(&[n, g.c, g.h, g.w], dx);
        };
        for p in partials {
            sums.dw.iter_mut().zip(&p.dw).for_each(|(x, y)| *x += y);
            sums.db.iter_mut().zip(&p.db).for_each(|(x, y)| *x += y);
        }
        if winograd {
            let mut dw = vec![0.0f32; o * g.rows()];
            winograd::add_weight_grad(&sums.dw, o, g.c, &mut dw);
            sums.dw = dw;
        }
        self.weight
            .grad
            .iter_mut()
            .zip(&sums.dw)
            .for_each(|(a, b)| *a += b);
        self.bias
            .grad
            .iter_mut()
            .zip(&sums.db)
            .for_each(|(a, b)| *a += b);
        from_vec(&[n, g.c, g.h, g.w], dx)
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.weight, &self.bias]
    }

    /// Drops the transform kept for inference: the caller may change the weights.
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.transformed.clear();
        vec![&mut self.weight, &mut self.bias]
    }
}

/// The most bytes one band's column matrix may take: half of a core's L2 cache here
/// (2 MB), leaving room for the product's packed blocks and the output band. 512 KB
/// measured the same; 1 MB keeps every convolution of the reference CNN in one band
/// (its second layer's whole column matrix is 774 KB, a third of that unfolded by
/// kernel row). The kernel-row products round differently from the one product they
/// replaced; the recipes' new reference weights are recorded in BENCHMARKS.md.
const COLUMN_BYTES: usize = 1 << 20;

/// Output rows per band: as many as fit `COLUMN_BYTES`, at least one; a convolution
/// whose whole column matrix fits runs as one band, exactly as one product.
fn band_rows(g: &Geometry) -> usize {
    let row_bytes = g.rows() * g.wo * std::mem::size_of::<f32>();
    (COLUMN_BYTES / row_bytes.max(1)).clamp(1, g.ho.max(1))
}

/// The bands of `step` output rows out of `ho`, in order.
fn bands(ho: usize, step: usize) -> impl Iterator<Item = Range<usize>> {
    (0..ho)
        .step_by(step)
        .map(move |start| start..(start + step).min(ho))
}

/// Rows per band for `ho` output rows in bands of at most `most`: the fewest bands the
/// budget allows, or, when they run in parallel on `threads`, that count rounded up to
/// a multiple of them, all of one height but the last
/// (112 rows in bands of at most 26 made five, three on one thread and two on the
/// other: residual-network inference at batch 1 was about 10 % slower than with six of
/// 19, BENCHMARKS.md). A map that fits one band stays one band.
fn even_bands(ho: usize, most: usize, threads: usize) -> usize {
    let count = ho.div_ceil(most.max(1));
    if count <= 1 {
        return ho.max(1);
    }
    ho.div_ceil(count.next_multiple_of(threads.max(1)))
}

/// The fewest output columns (`|band|·Wo`) each thread's band keeps when a batch-1
/// convolution whose map fits one band is cut into one band per thread
/// ([`thread_bands`]). Narrower bands would each pack the whole weight matrix for too
/// few columns; such maps split their one product inside the kernel instead.
const THREAD_BAND_COLUMNS: usize = 64;

/// Rows per band at batch 1 (`threads` > 1: the bands run in parallel): `step` from
/// [`even_bands`], except that a map that fits one band is cut into one band per thread
/// when each keeps at least [`THREAD_BAND_COLUMNS`] columns and two rows. Each thread
/// then unfolds, multiplies and puts through the epilogue its own rows, where one band
/// unfolded on one thread and split only its product: the reference CNN's batch-1
/// inference went from about 1 200 to 1 760 images/s on a 2-core Xeon (medians), the
/// ResNet-14's moved within its noise (BENCHMARKS.md).
fn thread_bands(g: &Geometry, step: usize, threads: usize) -> usize {
    let wide = g.cols() / threads.max(1) >= THREAD_BAND_COLUMNS;
    if threads > 1 && step >= g.ho && g.ho >= 2 * threads && wide {
        g.ho.div_ceil(threads)
    } else {
        step
    }
}

/// Output rows per band of one image's product of `form` (`o` output channels) on `threads` (1 unless the
/// bands run in parallel, at batch 1): the column budget's bands ([`even_bands`]), cut
/// one per thread where [`thread_bands`] does. Winograd's bands start on multiples of
/// four rows and are not cut per thread: a map that fits one band shares its 36
/// products among the threads instead. Cut, the ResNet-14's 128-channel maps at 28×24
/// gave each thread 36 products 18–24 tiles wide, each packing a whole `U[ξ]`; its last
/// residual block at batch 1 went from 1.92–2.01 to 1.40–1.43 ms uncut (BENCHMARKS.md).
fn image_band_rows(g: &Geometry, o: usize, form: Form, threads: usize) -> usize {
    let most = match form {
        Form::Columns => band_rows(g),
        Form::KernelRows(_) => row_band_rows(g),
        Form::Winograd(_) => winograd_band_rows(g, o),
    };
    let step = even_bands(g.ho, most, threads);
    match form {
        Form::Winograd(_) => step.next_multiple_of(winograd::STEP).min(g.ho),
        _ => thread_bands(g, step, threads),
    }
}

/// The transformed weights where `form` is Winograd's and `chain` point-wise: its output
/// transform then applies the chain as it writes the output, with no tile between.
fn fused_winograd<'a>(form: Form<'a>, chain: &[Epilogue]) -> Option<&'a [f32]> {
    match form {
        Form::Winograd(u) if !epilogue::pools(chain) => Some(u),
        _ => None,
    }
}

/// How each band's product is formed (see [`Conv2d::band_product`]).
#[derive(Debug, Clone, Copy)]
enum Form<'a> {
    /// One product over the band's column matrix.
    Columns,
    /// `kh` products over the input unfolded along kernel columns only
    /// ([`unfolds_by_kernel_row`]); the weights as [`weights_by_kernel_row`] lays them out.
    KernelRows(&'a [f32]),
    /// Winograd's F(4×4, 3×3) ([`winograd_applies`]); the weights transformed by
    /// [`winograd::weights`].
    Winograd(&'a [f32]),
}

/// A [`Form`]'s weights, laid out once per forward (or kept from an earlier inference).
enum Prepared {
    Columns,
    KernelRows(Vec<f32>),
    Winograd(Vec<f32>),
    WinogradKept(Arc<Kept>),
}

impl Prepared {
    /// For one image per product (`inner`: fewer images than threads): Winograd's form
    /// where it applies (its weights from `kept` if given), else by kernel row where that
    /// applies, else the column matrix.
    fn new(g: &Geometry, w: &[f32], o: usize, inner: bool, kept: Option<&Transformed>) -> Self {
        if winograd_applies(g, o) {
            let make = || winograd::weights(w, o, g.c);
            match kept {
                Some(kept) => Prepared::WinogradKept(kept.get(w, false, make)),
                None => Prepared::Winograd(make()),
            }
        } else if unfolds_by_kernel_row(g, inner) {
            Prepared::KernelRows(weights_by_kernel_row(w, o, g))
        } else {
            Prepared::Columns
        }
    }

    fn form(&self) -> Form<'_> {
        match self {
            Prepared::Columns => Form::Columns,
            Prepared::KernelRows(w) => Form::KernelRows(w),
            Prepared::Winograd(u) => Form::Winograd(u),
            Prepared::WinogradKept(kept) => Form::Winograd(&kept.u),
        }
    }
}

/// Multiply-adds per kernel tap of one image (`C·O·Ho·Wo`) from which a 3×3 convolution
/// at stride 1 runs as Winograd's F(4×4, 3×3) ([`winograd`]): 36 products of depth `C`
/// and width `Ho·Wo/16` in place of one of depth `9·C` and width `Ho·Wo`, 4× fewer
/// multiply-adds, for two passes over memory (the tiles' transforms). The threshold was
/// set with F(2×2, 3×3), 2.25× fewer: on a 2-core AMD EPYC (AVX2) a residual network's
/// 3×3 convolutions at 112×96, 56×48 and 28×24 (32, 64 and 128 channels: 11 M each)
/// gained (its residual blocks' inference at batch 16 went from 269–270 to 216–217 ms),
/// while with the reference CNN's at 28×24 and 14×12 (32→64 and 64→128: 1.4 M) its
/// inference went from 2 339–2 455 to 1 873–2 121 images/s at batch 64 and from
/// 1 573–1 787 to 968–1 085 at batch 1, their products too narrow or too shallow to pay
/// for the transforms (BENCHMARKS.md); so did dlib's network's (35×35 and 17×17: 1.2 M;
/// a face import 160–163 → 149–151 faces/s). Smaller convolutions may still take the
/// form: [`WINOGRAD_WIDE_WORK`].
const WINOGRAD_WORK: usize = 1 << 22;

/// Multiply-adds per tap from which a 3×3 convolution at stride 1 with at least
/// [`WINOGRAD_WIDE_COLS`] outputs and [`WINOGRAD_WIDE_DEPTH`] input channels runs as
/// Winograd's F(4×4, 3×3): with that form, its transforms over whole bands and products
/// that read the tiles in place (`gemm::unpacked`), the reference CNN's 32→64 convolution
/// at 28×24 (1.4 M; 42 tiles an image) took a training step's forward + backward from
/// 7.9–8.3 + 16.1–16.4 to 6.2–6.4 + 11.8–12.0 ms at batch 64 on a 2-core Xeon (family 6
/// model 167), while its 64→128 at 14×12 (12 tiles, a quarter of their rows past the
/// map) was no faster in a trial build that admitted it too (6.9–7.1 + 14.4–14.5
/// against 6.9–7.0 + 15.1–15.3 ms; BENCHMARKS.md).
const WINOGRAD_WIDE_WORK: usize = 1 << 20;

/// Outputs per image (`Ho·Wo`) of a convolution that [`WINOGRAD_WIDE_WORK`] admits.
const WINOGRAD_WIDE_COLS: usize = 512;

/// Input channels of a convolution that [`WINOGRAD_WIDE_WORK`] admits: each of the 36
/// products is this deep.
const WINOGRAD_WIDE_DEPTH: usize = 32;

/// Whether the forward and the input gradient run as Winograd's F(4×4, 3×3): a 3×3
/// kernel at stride 1, padding at most 2 (the input gradient's padding is `2 − p`), and
/// at least [`WINOGRAD_WORK`] multiply-adds per tap, or [`WINOGRAD_WIDE_WORK`] on a
/// wide and deep enough map.
fn winograd_applies(g: &Geometry, o: usize) -> bool {
    let work = g.c * o * g.cols();
    let wide = g.cols() >= WINOGRAD_WIDE_COLS && g.c >= WINOGRAD_WIDE_DEPTH;
    winograd_kernel(g) && (work >= WINOGRAD_WORK || (wide && work >= WINOGRAD_WIDE_WORK))
}

/// A kernel Winograd's F(4×4, 3×3) computes: 3×3 at stride 1, padding at most 2.
fn winograd_kernel(g: &Geometry) -> bool {
    (g.kh, g.kw, g.stride) == (3, 3, 1) && g.pad <= 2
}

/// Images whose outputs an inference computes together in Winograd's form
/// ([`winograd::images`]), for a 3×3 convolution at stride 1 whose map is too small for
/// the form image by image ([`winograd_applies`]) but at least [`WINOGRAD_WIDE_DEPTH`]
/// deep: the fewest images whose tiles make a product as wide as
/// [`WINOGRAD_WIDE_COLS`] outputs do (32 tiles), if there are that many for every
/// thread, their scratch within [`WINOGRAD_BYTES`] and their work at least
/// [`WINOGRAD_WIDE_WORK`]; else 1 (the convolution as before). dlib's network's
/// 17×17 maps of 64 channels (25 tiles an image) go two images at a time: on a 2-core
/// AMD EPYC with AVX-512, `cargo bench --bench import` (one thread, eight crops a pass)
/// put its three 17×17 blocks after the down-sampling one at 2.54–2.56 ms each a pass
/// against 3.64–3.69 image by image, and a Yale B import took 14.1 s of CPU against
/// 15.4–15.5 (BENCHMARKS.md). Where [`winograd::by_six`] (no AVX-512), those maps take
/// F(6×6, 3×3), 9 tiles an image, so four images a group: on a 2-core AMD EPYC with
/// AVX2 (family 25 model 1) the blocks took 4.5–4.9 ms each a pass of 16 against
/// 6.0–6.3 in F(4×4, 3×3) (5.1–5.5 with two images a group in F(6×6, 3×3)), and the
/// embedding 5.5–5.7 ms of one core a face against 6.0–6.1.
fn winograd_images(g: &Geometry, o: usize, n: usize, threads: usize) -> usize {
    if !winograd_kernel(g) || g.c < WINOGRAD_WIDE_DEPTH || winograd_applies(g, o) {
        return 1;
    }
    let s = winograd_shape(g, o);
    let wide = WINOGRAD_WIDE_COLS / (winograd::STEP * winograd::STEP);
    let images = wide.div_ceil(winograd::images_tiles(&s).max(1));
    let bytes = winograd::images_scratch_len(&s, images) * size_of::<f32>();
    let fits = images >= 2
        && images <= n.div_ceil(threads.max(1))
        && bytes <= WINOGRAD_BYTES
        && images * g.c * o * g.cols() >= WINOGRAD_WIDE_WORK;
    if fits { images } else { 1 }
}

/// The most bytes one band of Winograd's form may take (its transformed tiles and
/// products): four times [`COLUMN_BYTES`]. Measured on a 2-core AMD EPYC with AVX-512
/// (1 MB of L2 a core) with F(4×4, 3×3) and its transforms over whole bands, per-layer
/// profile of the ResNet-14, two rounds each: its residual blocks' inference at batch
/// 16 took 116.7–119.2 ms with 4 MB against 123.3–128.3 with 2 MB and 130.7–132.6
/// with 1 MB, at batch 1 7.44–7.56 against 7.81–7.97 and 9.16–9.29 ms, their training
/// forward and backward 165–171 + 263–267 against 176–179 + 275–283; 8 MB was no
/// better than 4. Built with it and alternated with the 2 MB build, two more rounds
/// read less (batch 16 120.2/122.1 against 123.7/120.9 ms, batch 1 7.78/7.59 against
/// 7.92/7.85): a few per cent at most. Fewer, wider bands: fewer passes over the
/// weights, wider products. (Earlier, with F(2×2, 3×3) on an AVX2 EPYC, 2 MB had beaten
/// 1 MB.)
///
/// The weight gradient's bands always keep to it: they sum their tiles band by band, so
/// a budget that followed the machine would make a training step round differently from
/// one machine to another. The outputs and the input gradient keep to
/// [`winograd_bytes`].
const WINOGRAD_BYTES: usize = 4 * COLUMN_BYTES;

/// The budget of a band of Winograd's outputs and input gradient on this machine: a
/// core's own L2 cache where it holds between 2 MB and [`WINOGRAD_BYTES`], else
/// [`WINOGRAD_BYTES`] ([`band_budget`]). On a 2-core Intel Xeon (family 6 model 167,
/// 2 MB of L2 a core) the ResNet-14's inference at batch 16 ran at 200–203 images/s
/// with 2 MB against 191–195 with 4 MB, at batch 1 170–176 against 162–169, 1 MB
/// slower than either (182–183, 148–149) and 3 MB no better than 4 (BENCHMARKS.md).
/// Every output is the same sum whatever its band: the same bits with the engine's AVX-512
/// kernel, within rounding with the `gemm` crate's.
fn winograd_bytes() -> usize {
    static BYTES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *BYTES.get_or_init(|| band_budget(l2_bytes()))
}

/// [`winograd_bytes`] for a core with `l2` bytes of its own L2 cache (`None`: unknown).
/// The AMD EPYCs measured (512 KB and 1 MB of L2, a large and fast L3 behind it) ran
/// fastest at [`WINOGRAD_BYTES`], past their L2.
fn band_budget(l2: Option<usize>) -> usize {
    match l2 {
        Some(l2) if l2 >= 2 << 20 => l2.min(WINOGRAD_BYTES),
        _ => WINOGRAD_BYTES,
    }
}

/// The size of the first CPU's level-2 data cache, as Linux reports it in sysfs.
fn l2_bytes() -> Option<usize> {
    let dirs = std::fs::read_dir("/sys/devices/system/cpu/cpu0/cache").ok()?;
    dirs.flatten().find_map(|dir| {
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).ok();
        let l2 = read("level")?.trim() == "2" && matches!(read("type")?.trim(), "Unified" | "Data");
        if l2 { cache_size(&read("size")?) } else { None }
    })
}

/// A sysfs cache size (`2048K`, `1M`, `512`) in bytes.
fn cache_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = [("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)]
        .into_iter()
        .find_map(|(suffix, unit)| Some((text.strip_suffix(suffix)?, unit)))
        .unwrap_or((text, 1));
    digits.parse::<usize>().ok()?.checked_mul(unit)
}

/// Output rows per band of Winograd's outputs or input gradient: a multiple of four that
/// keeps the band within [`winograd_bytes`], four at least.
fn winograd_band_rows(g: &Geometry, o: usize) -> usize {
    winograd::band_rows(&winograd_shape(g, o), winograd_bytes())
}

/// Output rows per band of Winograd's weight gradient: within [`WINOGRAD_BYTES`] on every
/// machine.
fn weight_grad_band_rows(g: &Geometry, o: usize) -> usize {
    winograd::band_rows(&winograd_shape(g, o), WINOGRAD_BYTES)
}

fn winograd_shape(g: &Geometry, o: usize) -> winograd::Shape {
    winograd::Shape {
        c: g.c,
        o,
        h: g.h,
        w: g.w,
        pad: g.pad,
    }
}

/// Unfolded input channels × kernel columns from which a convolution unfolds one kernel
/// row at a time: the depth of each of its `kh` products. A shallower product (the
/// first layer of a grey network: 1 channel × 3 columns) would spend more of its time
/// on the output it reads and writes `kh` times than on multiply-adds.
const ROW_DEPTH: usize = 64;

/// Whether a convolution runs as `kh` products over its input unfolded along kernel
/// columns only (`C·kw` rows of `H + 2p` padded input rows each), rather than one product
/// over the whole column matrix (`C·kh·kw` rows of `Ho` output rows each): the copy
/// shrinks `kh`-fold (3× for the 3×3 convolutions of residual networks), and the
/// products read it `ki` rows down for kernel row `ki`. Only at stride 1, where moving
/// one output row down moves one input row down. Not at batch 1 (`inner`) on a map that
/// fits one band: where its product is split across threads, each of the `kh` products
/// would pay the split's fork and join (the reference CNN's batch-1 inference, 28×24 and
/// 14×12 maps, measured about 15 % slower, BENCHMARKS.md); where [`thread_bands`] cuts
/// it into one band per thread, the reference CNN measured about 25 % slower with
/// kernel-row products in each band (1 370 against 1 810 images/s).
fn unfolds_by_kernel_row(g: &Geometry, inner: bool) -> bool {
    g.stride == 1 && g.kh > 1 && g.c * g.kw >= ROW_DEPTH && !(inner && row_band_rows(g) >= g.ho)
}

/// The geometry whose column matrix is the input unfolded along kernel columns only: a
/// 1×kw kernel, every padded input row an output row. Its row `(c, kj)`, column
/// `(t, ox)` holds `x[c, t − p, ox + kj − p]`.
fn row_geometry(g: &Geometry) -> Geometry {
    Geometry {
        kh: 1,
        ho: g.h + 2 * g.pad,
        ..*g
    }
}

/// Output rows per band when unfolding by kernel row: as many as keep the band's
/// unfolded input (`|band| + kh − 1` rows) within `COLUMN_BYTES`, at least one.
fn row_band_rows(g: &Geometry) -> usize {
    let row_bytes = g.c * g.kw * g.wo * std::mem::size_of::<f32>();
    (COLUMN_BYTES / row_bytes.max(1))
        .saturating_sub(g.kh - 1)
        .clamp(1, g.ho.max(1))
}

/// The weights `(O, C, kh, kw)` as `kh` matrices `(O, C·kw)`, kernel row `ki`'s first:
/// the left operands of [`unfolds_by_kernel_row`]'s products.
fn weights_by_kernel_row(w: &[f32], o: usize, g: &Geometry) -> Vec<f32> {
    let (c, kh, kw) = (g.c, g.kh, g.kw);
    let mut out = Vec::with_capacity(w.len());
    for ki in 0..kh {
        for oc in 0..o * c {
            let start = (oc * kh + ki) * kw;
            out.extend_from_slice(&w[start..start + kw]);
        }
    }
    out
}

/// Output positions below which a convolution's images share their products (R-Net's
/// and O-Net's last maps are 3×3, dlib's network ends at 8×8, 3×3 and 1×1): a product
/// that narrow fills a fraction of the kernel's 16-row panels and pays its packing for
/// little work.
const SMALL_MAP: usize = 128;

/// The columns a shared product aims for.
const SHARED_COLUMNS: usize = 128;

/// Images per product for `n` images on `threads` threads: 1 (each image its own
/// product) unless the map is smaller than [`SMALL_MAP`]; otherwise enough images for
/// [`SHARED_COLUMNS`] columns, within [`COLUMN_BYTES`] of column matrix, and no more than
/// leaves every thread a product.
fn images_per_product(g: &Geometry, n: usize, threads: usize) -> usize {
    let p = g.cols();
    if p == 0 || p >= SMALL_MAP {
        return 1;
    }
    let by_width = SHARED_COLUMNS.div_ceil(p);
    let by_bytes = COLUMN_BYTES / (g.rows() * p * std::mem::size_of::<f32>()).max(1);
    let by_threads = n.div_ceil(threads.max(1));
    by_width.min(by_bytes).min(by_threads).max(1)
}

/// The first `len` floats of `buf`, zero-filled only where `buf` grows past its longest
/// use so far. Every caller overwrites all it takes (im2col writes padding zeros itself,
/// products start from the bias or overwrite), so `resize`'s refill after a shorter use
/// (a band, layer or image of another size) would be a wasted `memset`: 1–2 % of a face
/// import, in `Conv2d::product` alone.
fn prefix(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

thread_local! {
    /// This thread's column matrix and epilogue tile between inference calls.
    static SCRATCH: Cell<(Vec<f32>, Vec<f32>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// A thread's column and tile buffers, taken from [`SCRATCH`] and put back on drop. New
/// buffers for every call were zero-filled by `resize` before im2col overwrote them: 2%
/// of a face import's time, with the allocations. They grow to the largest band a
/// thread has unfolded (at most `COLUMN_BYTES`, or `WINOGRAD_BYTES` in Winograd's form)
/// plus the largest tile, and stay. A call
/// nested inside another on the same thread (rayon runs stolen work while it waits)
/// finds them taken and starts with empty ones.
struct Scratch((Vec<f32>, Vec<f32>));

impl Scratch {
    fn take() -> Self {
        Scratch(SCRATCH.try_with(Cell::take).unwrap_or_default())
    }

    /// Runs `f` with these buffers back in the thread's slot, where rayon tasks that
    /// `f` runs on this thread find them, and takes them again after.
    fn lend<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let _ = SCRATCH.try_with(|s| s.set(std::mem::take(&mut self.0)));
        let result = f();
        self.0 = SCRATCH.try_with(Cell::take).unwrap_or_default();
        result
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let buffers = std::mem::take(&mut self.0);
        // Fails only while the thread is exiting; the buffers are then just freed.
        let _ = SCRATCH.try_with(|s| s.set(buffers));
    }
}

/// One group's share of the weight and bias gradients.
struct Partial {
    /// (O, I·kh·kw), or where the convolution is Winograd's the transformed gradient
    /// `dU (36, O, I)` ([`winograd::add_weight_grad_band`]).
    dw: Vec<f32>,
    /// (O)
    db: Vec<f32>,
}

/// The groups of consecutive images `(first, count)` that the weight gradient of a batch
/// of `n` is summed in: the batch halved `⌈log₂ threads⌉ + 1` times (the left half the
/// smaller when `n` is odd), which is how rayon's `fold` cut it before steals, so one
/// thread keeps the rounding it always had.
fn image_groups(n: usize, threads: usize) -> Vec<(usize, usize)> {
    fn halve(first: usize, len: usize, depth: u32, out: &mut Vec<(usize, usize)>) {
        if depth == 0 || len < 2 {
            out.push((first, len));
        } else {
            let mid = len / 2;
            halve(first, mid, depth - 1, out);
            halve(first + mid, len - mid, depth - 1, out);
        }
    }
    let depth = threads.max(1).next_power_of_two().trailing_zeros() + 1;
    let mut out = Vec::new();
    if n > 0 {
        halve(0, n, depth, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::epilogue::Epilogue;
    use super::super::init::Init;
    use super::super::tensor::{data, from_vec};
    use super::super::{Layer, Mode, Tensor};
    use super::{
        COLUMN_BYTES, Conv2d, Conv2dConfig, Form, Prepared, WINOGRAD_BYTES, band_budget, band_rows,
        cache_size, even_bands, image_band_rows, image_groups, images_per_product, row_band_rows,
        thread_bands, unfolds_by_kernel_row, winograd, winograd_applies, winograd_images,
        winograd_shape,
    };
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The definition, one multiply-add at a time in f64: `y`, and for the upstream
    /// gradient `dy`, `(dx, dW, db)`.
    fn naive(layer: &Conv2d, x: &Tensor, dy: &[f32]) -> (Vec<f64>, Vec<f64>, Vec<f64>, Vec<f64>) {
        let Conv2dConfig {
            in_channels: ci,
            out_channels: co,
            kernel: (kh, kw),
            stride: s,
            padding: p,
        } = layer.config();
        let [n, _, h, w] = [x.shape()[0], ci, x.shape()[2], x.shape()[3]];
        let (ho, wo) = ((h + 2 * p - kh) / s + 1, (w + 2 * p - kw) / s + 1);
        let (xv, wv, bv) = (data(x), data(&layer.weight.value), data(&layer.bias.value));
        let mut y = vec![0.0f64; n * co * ho * wo];
        let mut dx = vec![0.0f64; xv.len()];
        let mut dw = vec![0.0f64; wv.len()];
        let mut db = vec![0.0f64; co];
        for img in 0..n {
            for o in 0..co {
                for oy in 0..ho {
                    for ox in 0..wo {
                        let at = ((img * co + o) * ho + oy) * wo + ox;
                        let g = f64::from(dy[at]);
                        y[at] = f64::from(bv[o]);
                        db[o] += g;
                        for c in 0..ci {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let iy = (oy * s + ki) as isize - p as isize;
                                    let ix = (ox * s + kj) as isize - p as isize;
                                    if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                        continue;
                                    }
                                    let xi = ((img * ci + c) * h + iy as usize) * w + ix as usize;
                                    let wi = ((o * ci + c) * kh + ki) * kw + kj;
                                    y[at] += f64::from(wv[wi]) * f64::from(xv[xi]);
                                    dx[xi] += f64::from(wv[wi]) * g;
                                    dw[wi] += f64::from(xv[xi]) * g;
                                }
                            }
                        }
                    }
                }
            }
        }
        (y, dx, dw, db)
    }

    /// A layer with He-initialised weights and a bias drawn from [−1, 1).
    fn random_layer(config: Conv2dConfig, rng: &mut ChaCha8Rng) -> Conv2d {
        let mut layer = Conv2d::new(config, Init::HeNormal, rng).unwrap();
        layer.bias.value =
            Tensor::from_shape_simple_fn(vec![config.out_channels], || rng.random_range(-1.0..1.0));
        layer
    }

    /// `chain` applied to maps `y (O, H, W)` in f64, step by step.
    fn chained(y: &[f64], chain: &[Epilogue], (o, h, w): (usize, usize, usize)) -> Vec<f64> {
        let mut maps = y.to_vec();
        for (c, plane) in maps.chunks_exact_mut(h * w).enumerate() {
            let (affine, rectify) = super::epilogue::pointwise(chain, c % o);
            for v in plane.iter_mut() {
                if let Some((a, b)) = affine {
                    *v = f64::from(a) * *v + f64::from(b);
                }
                *v = super::epilogue::rectified(rectify, *v);
            }
        }
        if !super::epilogue::pools(chain) {
            return maps;
        }
        // Floor mode drops an odd last row or column; ceil mode pools what is left of it.
        let (ho, wo) = super::epilogue::output_hw(chain, h, w);
        let at = |p: usize, r: usize, q: usize| (r < h && q < w).then(|| maps[(p * h + r) * w + q]);
        (0..maps.len() / (h * w) * ho * wo)
            .map(|i| {
                let (p, r, q) = (i / (ho * wo), i / wo % ho, i % wo);
                [(0, 0), (0, 1), (1, 0), (1, 1)]
                    .into_iter()
                    .filter_map(|(dr, dq)| at(p, 2 * r + dr, 2 * q + dq))
                    .fold(f64::MIN, f64::max)
            })
            .collect()
    }

    /// Every value within `1e-6` of the scale of the sum it is (`Σ` of its terms'
    /// magnitudes): for gradients that sum thousands of products.
    fn within(what: &str, got: &[f32], want: &[f64], scale: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, ((&got, &want), &scale)) in got.iter().zip(want).zip(scale).enumerate() {
            assert!(
                (f64::from(got) - want).abs() <= 1e-6 * scale,
                "{what}[{i}]: {got} vs {want} (scale {scale})"
            );
        }
    }

    fn close(what: &str, got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            assert!(
                (f64::from(g) - w).abs() <= 1e-4 * (1.0 + w.abs()),
                "{what}[{i}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn small_maps_shared_by_several_images_equal_the_definition() {
        // 4×4 and 3×3 outputs (same and strided, as dlib's network ends) and a 1×1 map;
        // batches that split into equal and unequal groups on one and on two threads.
        for (config, hw) in [
            (Conv2dConfig::square(6, 5, 3, 1, 1), [4, 4]),
            (Conv2dConfig::square(6, 5, 3, 2, 0), [8, 8]),
            (Conv2dConfig::square(6, 5, 3, 1, 0), [3, 3]),
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let mut layer = random_layer(config, &mut rng);
            for (n, threads) in [(2, 1), (5, 1), (5, 2), (8, 2)] {
                let shape = [n, 6, hw[0], hw[1]];
                let (_, g) = layer.geometry(&shape).unwrap();
                assert!(images_per_product(&g, n, threads) > 1, "{g:?} n {n}");
                let x =
                    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
                let (y, ..) = naive(&layer, &x, &vec![0.0; n * 5 * g.ho * g.wo]);
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    close("infer", &data(&layer.infer(&x).unwrap()), &y);
                    close(
                        "forward",
                        &data(&layer.forward(&x, Mode::Eval).unwrap()),
                        &y,
                    );
                    // With an epilogue: each image's block rectified (and pooled 2×2
                    // where the map allows) into its own output.
                    let pool = g.ho >= 2;
                    let mut chain = vec![Epilogue::Relu];
                    chain.extend(pool.then_some(Epilogue::MaxPool2x2));
                    let (out, used) = layer.infer_then(&x, &chain).unwrap();
                    assert_eq!(used, chain.len());
                    let f = if pool { 2 } else { 1 };
                    let (ph, pw) = (g.ho / f, g.wo / f);
                    assert_eq!(out.shape(), &[n, 5, ph, pw]);
                    let pooled: Vec<f64> = (0..n * 5 * ph * pw)
                        .map(|i| {
                            let (plane, oy, ox) = (i / (ph * pw), i / pw % ph, i % pw);
                            let at = |dy, dx| y[(plane * g.ho + f * oy + dy) * g.wo + f * ox + dx];
                            let window = [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().take(f * f);
                            window.fold(0.0, |m, (dy, dx)| at(dy, dx).max(m))
                        })
                        .collect();
                    close("infer_then", &data(&out), &pooled);
                });
            }
        }
        // Maps of 128 positions and more keep one product per image.
        let layer = random_layer(
            Conv2dConfig::square(6, 5, 3, 1, 1),
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        let (_, g) = layer.geometry(&[8, 6, 8, 16]).unwrap();
        assert_eq!(images_per_product(&g, 8, 1), 1);
    }

    #[test]
    fn convolutions_cut_into_bands_of_rows_equal_the_definition() {
        // Column matrices of 40·3·3 rows by 32·36 (or 32·35) columns: several bands, in
        // both directions at stride 2; at stride 1 in the backward (the forward unfolds
        // by kernel row, see the next test).
        for (config, hw) in [
            (Conv2dConfig::square(40, 3, 3, 1, 1), [32, 36]),
            (Conv2dConfig::square(40, 3, 3, 2, 1), [64, 70]),
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let mut layer = random_layer(config, &mut rng);
            for n in [1, 3] {
                let shape = [n, 40, hw[0], hw[1]];
                let (_, g) = layer.geometry(&shape).unwrap();
                assert!(band_rows(&g) < g.ho, "{g:?} must need several bands");
                let x =
                    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
                let out = [n, 3, g.ho, g.wo];
                let dy: Vec<f32> = (0..out.iter().product::<usize>())
                    .map(|_| rng.random_range(-1.0f32..1.0))
                    .collect();
                let (y, dx, dw, db) = naive(&layer, &x, &dy);
                close("infer", &data(&layer.infer(&x).unwrap()), &y);
                layer.weight.grad.fill(0.0);
                layer.bias.grad.fill(0.0);
                close(
                    "forward",
                    &data(&layer.forward(&x, Mode::Train).unwrap()),
                    &y,
                );
                let back = layer.backward(&from_vec(&out, dy).unwrap()).unwrap();
                close("dx", &data(&back), &dx);
                close("dW", layer.weight.grad.as_slice().unwrap(), &dw);
                close("db", layer.bias.grad.as_slice().unwrap(), &db);
            }
        }
    }

    #[test]
    fn winograd_convolutions_equal_the_definition_forward_and_backward() {
        // 3×3 at stride 1 with enough work per image for Winograd's form: paddings 1, 0
        // and 2 (the input gradient's padding is 2 − p), odd output sizes (half blocks),
        // several bands; batch 2 on one thread and on two, and batch 1 on two threads
        // (parallel bands), where a two-row map is one band with its products shared.
        let cases = [
            (Conv2dConfig::square(32, 33, 3, 1, 1), [131, 61]),
            (Conv2dConfig::square(33, 32, 3, 1, 0), [130, 70]),
            (Conv2dConfig::square(32, 32, 3, 1, 2), [126, 63]),
            (Conv2dConfig::square(32, 32, 3, 1, 1), [2, 2100]),
        ];
        for (config, hw) in cases {
            let mut rng = ChaCha8Rng::seed_from_u64(12);
            let mut layer = random_layer(config, &mut rng);
            let (c, o) = (config.in_channels, config.out_channels);
            for (n, threads) in [(2, 1), (2, 2), (1, 2)] {
                let shape = [n, c, hw[0], hw[1]];
                let (_, g) = layer.geometry(&shape).unwrap();
                assert!(
                    winograd_applies(&g, o),
                    "{config:?} {hw:?}: not Winograd's form"
                );
                let bands = image_band_rows(&g, o, Form::Winograd(&[]), threads);
                let many = if hw[0] == 2 {
                    bands == g.ho
                } else {
                    bands < g.ho
                };
                assert!(many, "{config:?} {hw:?}: bands of {bands} rows");
                let x =
                    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
                let out = [n, o, g.ho, g.wo];
                let dy: Vec<f32> = (0..out.iter().product::<usize>())
                    .map(|_| rng.random_range(-1.0f32..1.0))
                    .collect();
                let (y, dx, dw, db) = naive(&layer, &x, &dy);
                let abs = |v: f32| v.abs();
                let dy_abs: Vec<f32> = dy.iter().copied().map(abs).collect();
                let (_, _, dw_scale, db_scale) = naive(&layer, &x.mapv(abs), &dy_abs);
                let what = format!("{config:?} {hw:?} n {n} threads {threads}");
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    close(
                        &format!("{what} infer"),
                        &data(&layer.infer(&x).unwrap()),
                        &y,
                    );
                    // Point-wise chains go through the output transform, a pooled
                    // one through the tile.
                    let affine = Epilogue::ChannelAffine {
                        scale: (0..o).map(|_| rng.random_range(-2.0..2.0)).collect(),
                        shift: (0..o).map(|_| rng.random_range(-1.0..1.0)).collect(),
                    };
                    let prelu = Epilogue::Prelu {
                        slope: (0..o).map(|_| rng.random_range(-1.0..1.0)).collect(),
                    };
                    for chain in [
                        vec![affine.clone(), Epilogue::Relu],
                        vec![affine.clone()],
                        vec![Epilogue::Relu],
                        vec![affine.clone(), prelu.clone()],
                        vec![affine.clone(), Epilogue::Relu, Epilogue::MaxPool2x2],
                        vec![prelu.clone(), Epilogue::MaxPool2x2],
                        vec![prelu.clone(), Epilogue::MaxPool2x2Ceil],
                    ] {
                        let (got, used) = layer.infer_then(&x, &chain).unwrap();
                        assert_eq!(used, chain.len());
                        let want = chained(&y, &chain, (o, g.ho, g.wo));
                        close(&format!("{what} infer {chain:?}"), &data(&got), &want);
                    }
                    layer.weight.grad.fill(0.0);
                    layer.bias.grad.fill(0.0);
                    let forward = layer.forward(&x, Mode::Train).unwrap();
                    close(&format!("{what} forward"), &data(&forward), &y);
                    let back = layer.backward(&from_vec(&out, dy).unwrap()).unwrap();
                    close(&format!("{what} dx"), &data(&back), &dx);
                    // dW sums thousands of products per weight, through transforms
                    // that scale by up to 8: bounded at the scale of that sum,
                    // `Σ |dy|·|x|`, as the band tests bound theirs.
                    let dw_got = layer.weight.grad.as_slice().unwrap();
                    within(&format!("{what} dW"), dw_got, &dw, &dw_scale);
                    // dB sums a plane of dy per image (16 000 values here) in f32:
                    // bounded at the scale of that sum, `Σ |dy|`, as dW.
                    let db_got = layer.bias.grad.as_slice().unwrap();
                    within(&format!("{what} dB"), db_got, &db, &db_scale);
                });
            }
        }
    }

    #[test]
    fn winograd_form_is_for_large_maps_and_for_wide_deep_ones() {
        // A residual network's stages at 112×96, 56×48 and 28×24 take Winograd's form,
        // unless strided; so does the reference CNN's 32→64 convolution at 28×24 (wide
        // and deep enough), not its first (one input channel) nor its 64→128 at 14×12
        // (12 tiles an image), nor a shallow one on a wide map.
        let prepared = |c, o, hw: [usize; 2], stride| {
            let layer = random_layer(
                Conv2dConfig::square(c, o, 3, stride, 1),
                &mut ChaCha8Rng::seed_from_u64(3),
            );
            let (_, g) = layer.geometry(&[1, c, hw[0], hw[1]]).unwrap();
            let w = data(&layer.weight.value).into_owned();
            matches!(Prepared::new(&g, &w, o, false, None), Prepared::Winograd(_))
        };
        assert!(!prepared(1, 32, [56, 48], 1));
        assert!(prepared(32, 64, [28, 24], 1));
        assert!(!prepared(64, 128, [14, 12], 1));
        assert!(!prepared(128, 128, [14, 12], 1));
        assert!(!prepared(16, 128, [28, 24], 1));
        assert!(!prepared(32, 16, [28, 24], 1));
        assert!(prepared(32, 32, [112, 96], 1));
        assert!(prepared(64, 64, [56, 48], 1));
        assert!(prepared(128, 128, [28, 24], 1));
        // The finite-difference check's size (`layer_tests`).
        assert!(prepared(32, 32, [64, 66], 1));
        assert!(!prepared(64, 128, [56, 48], 2));
    }

    #[test]
    fn an_inference_after_a_weight_changes_uses_the_new_weights() {
        // Inference keeps Winograd's transformed weights between calls; a weight changed
        // through `weight_mut` or `params_mut` (as a loader or an optimizer changes
        // them) must not leave the old transform in use. A clone starts without it, and
        // a training forward empties it.
        let config = Conv2dConfig::square(32, 32, 3, 1, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        let mut layer = random_layer(config, &mut rng);
        let shape = [1, 32, 64, 66];
        let x = Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
        let (_, g) = layer.geometry(&shape).unwrap();
        assert!(winograd_applies(&g, 32));
        let zeros = vec![0.0; 32 * g.ho * g.wo];
        // The layer's inference, checked against the definition with its weights now.
        let infer_checked = |what: &str, layer: &Conv2d| {
            let y = layer.infer(&x).unwrap();
            close(what, &data(&y), &naive(layer, &x, &zeros).0);
            y
        };
        assert!(layer.transformed.is_empty());
        let first = infer_checked("first", &layer);
        assert!(!layer.transformed.is_empty());
        assert_eq!(layer.infer(&x).unwrap(), first, "the same weights, kept");
        layer.weight_mut().value.as_slice_mut().unwrap()[5 * 288 + 40] += 0.25;
        assert!(layer.transformed.is_empty());
        infer_checked("one weight changed", &layer);
        layer.params_mut()[0].value.as_slice_mut().unwrap()[7] -= 0.5;
        assert!(layer.transformed.is_empty());
        let third = infer_checked("another through params_mut", &layer);
        let clone = layer.clone();
        assert!(clone.transformed.is_empty());
        assert_eq!(clone.infer(&x).unwrap(), third);
        layer.forward(&x, Mode::Train).unwrap();
        assert!(layer.transformed.is_empty());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "without emptying their kept transform")]
    fn debug_builds_catch_a_weight_changed_around_the_kept_transform() {
        // Only this module reaches the field without `weight_mut`; the debug builds'
        // comparison is the net under that promise.
        let config = Conv2dConfig::square(32, 32, 3, 1, 1);
        let mut rng = ChaCha8Rng::seed_from_u64(22);
        let mut layer = random_layer(config, &mut rng);
        let x =
            Tensor::from_shape_simple_fn(vec![1, 32, 64, 66], || rng.random_range(-1.0f32..1.0));
        layer.infer(&x).unwrap();
        assert!(!layer.transformed.is_empty());
        layer.weight.value.as_slice_mut().unwrap()[0] += 1.0;
        let _ = layer.infer(&x);
    }

    #[test]
    fn convolutions_unfolded_by_kernel_row_equal_the_definition() {
        // Stride 1, at least ROW_DEPTH channels × kernel columns: square and tall
        // kernels, with and without padding, one band and several (the last case's
        // 96 × 3 rows of 200 floats are 77 KB a row), on one thread and on two (batch 1
        // then runs its bands in parallel), forward, backward and the epilogue, from
        // scratch buffers full of NaN.
        let cases = [
            (Conv2dConfig::square(24, 5, 3, 1, 1), [20, 18]),
            (
                Conv2dConfig {
                    in_channels: 22,
                    out_channels: 4,
                    kernel: (5, 3),
                    stride: 1,
                    padding: 2,
                },
                [14, 11],
            ),
            (Conv2dConfig::square(32, 3, 2, 1, 0), [13, 13]),
            (Conv2dConfig::square(32, 3, 3, 1, 1), [30, 200]),
        ];
        for (case, (config, hw)) in cases.into_iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(11);
            let mut layer = random_layer(config, &mut rng);
            let co = config.out_channels;
            for (n, threads) in [(1, 1), (1, 2), (3, 2)] {
                let shape = [n, config.in_channels, hw[0], hw[1]];
                let (_, g) = layer.geometry(&shape).unwrap();
                let several = row_band_rows(&g) < g.ho;
                let inner = n < threads;
                // Batch 1 on two threads: by kernel row only with bands to run in
                // parallel; one band is one product split across the threads, unfolded
                // whole.
                assert_eq!(unfolds_by_kernel_row(&g, inner), several || !inner, "{g:?}");
                assert_eq!(images_per_product(&g, n, threads), 1, "{g:?}");
                assert_eq!(several, case == 3, "{g:?}");
                let x =
                    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
                let out = [n, co, g.ho, g.wo];
                let dy: Vec<f32> = (0..out.iter().product::<usize>())
                    .map(|_| rng.random_range(-1.0f32..1.0))
                    .collect();
                let (y, dx, dw, db) = naive(&layer, &x, &dy);
                let relu: Vec<f64> = y.iter().map(|v| v.max(0.0)).collect();
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let poison = || {
                    rayon::broadcast(|_| {
                        super::SCRATCH.set((vec![f32::NAN; 1 << 20], vec![f32::NAN; 1 << 20]))
                    })
                };
                pool.install(|| {
                    poison();
                    close("infer", &data(&layer.infer(&x).unwrap()), &y);
                    poison();
                    let (relu_out, _) = layer.infer_then(&x, &[Epilogue::Relu]).unwrap();
                    close("infer_then", &data(&relu_out), &relu);
                    layer.weight.grad.fill(0.0);
                    layer.bias.grad.fill(0.0);
                    poison();
                    let y_train = layer.forward(&x, Mode::Train).unwrap();
                    close("forward", &data(&y_train), &y);
                    let back = layer.backward(&from_vec(&out, dy).unwrap()).unwrap();
                    close("dx", &data(&back), &dx);
                    close("dW", layer.weight.grad.as_slice().unwrap(), &dw);
                    close("db", layer.bias.grad.as_slice().unwrap(), &db);
                });
            }
        }
        // Fewer: the whole kernel unfolded, as before.
        let shallow = random_layer(
            Conv2dConfig::square(21, 3, 3, 1, 1),
            &mut ChaCha8Rng::seed_from_u64(1),
        );
        let (_, g) = shallow.geometry(&[1, 21, 20, 20]).unwrap();
        assert!(!unfolds_by_kernel_row(&g, false));
    }

    #[test]
    fn what_an_earlier_call_left_in_the_threads_buffers_never_reaches_an_output() {
        // The buffers are reused without being cleared (`prefix`): fill them with NaN,
        // longer than any call below needs, before each convolution on a one-thread
        // pool; one NaN read would show in the output.
        let cases = [
            // One product per image, with and without an epilogue tile.
            (Conv2dConfig::square(4, 3, 3, 1, 1), [2, 4, 12, 14]),
            // Several images' columns in one product (small maps).
            (Conv2dConfig::square(4, 3, 3, 2, 0), [5, 4, 7, 7]),
        ];
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        for (config, shape) in cases {
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let layer = random_layer(config, &mut rng);
            let x = Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
            let (_, g) = layer.geometry(&shape).unwrap();
            let (y, ..) = naive(&layer, &x, &vec![0.0; shape[0] * 3 * g.ho * g.wo]);
            let relu: Vec<f64> = y.iter().map(|v| v.max(0.0)).collect();
            pool.install(|| {
                let poison =
                    || super::SCRATCH.set((vec![f32::NAN; 1 << 16], vec![f32::NAN; 1 << 16]));
                poison();
                close("infer", &data(&layer.infer(&x).unwrap()), &y);
                poison();
                let (out, _) = layer.infer_then(&x, &[Epilogue::Relu]).unwrap();
                close("infer_then", &data(&out), &relu);
            });
        }
    }

    #[test]
    fn one_image_cut_into_parallel_bands_puts_every_row_through_its_epilogue() {
        // Batch 1 on 2 and 3 threads: bands of one image run in parallel, each applying
        // the chain to its rows and writing them into place (odd widths and heights,
        // bands of odd height rounded to even ones when the chain pools).
        let cases = [
            (Conv2dConfig::square(40, 3, 3, 1, 1), [32, 36]),
            (Conv2dConfig::square(40, 3, 3, 2, 1), [64, 70]),
            // Unfolded by kernel row, 41 output rows.
            (Conv2dConfig::square(64, 2, 3, 1, 1), [41, 96]),
            // One band by the column budget, cut into one band per thread.
            (Conv2dConfig::square(4, 3, 3, 1, 1), [15, 13]),
        ];
        for (config, hw) in cases {
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let layer = random_layer(config, &mut rng);
            let shape = [1, config.in_channels, hw[0], hw[1]];
            let x = Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
            let (_, g) = layer.geometry(&shape).unwrap();
            let o = config.out_channels;
            // Per-channel steps of the layer's width (a chain of another is not applied).
            let affine = Epilogue::ChannelAffine {
                scale: [0.5, -2.0, 1.5][..o].to_vec(),
                shift: [0.25, 0.5, -0.125][..o].to_vec(),
            };
            let prelu = Epilogue::Prelu {
                slope: [0.25, -0.5, 0.0][..o].to_vec(),
            };
            let chains = [
                vec![],
                vec![affine.clone(), Epilogue::Relu],
                vec![affine.clone(), Epilogue::Relu, Epilogue::MaxPool2x2],
                vec![Epilogue::MaxPool2x2],
                vec![prelu.clone(), Epilogue::MaxPool2x2],
                vec![prelu, Epilogue::MaxPool2x2Ceil],
                vec![Epilogue::MaxPool2x2Ceil],
            ];
            let w = data(&layer.weight.value).into_owned();
            let prepared = Prepared::new(&g, &w, o, true, None);
            let form = prepared.form();
            let (y, ..) = naive(&layer, &x, &vec![0.0; o * g.ho * g.wo]);
            for chain in &chains {
                let (ho, wo) = super::epilogue::output_hw(chain, g.ho, g.wo);
                let want = chained(&y, chain, (o, g.ho, g.wo));
                for threads in [2, 3] {
                    // Several bands, or this is a one-band test.
                    let step = image_band_rows(&g, o, form, threads);
                    assert!(step < g.ho, "{config:?} {threads} threads: one band");
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let (out, used) = pool.install(|| layer.infer_then(&x, chain)).unwrap();
                    assert_eq!(used, chain.len());
                    assert_eq!(out.shape(), &[1, o, ho, wo]);
                    close(
                        &format!("{config:?} {chain:?} {threads} threads"),
                        &data(&out),
                        &want,
                    );
                }
            }
        }
    }

    #[test]
    fn a_map_one_column_wide_pools_to_nothing_without_a_panic() {
        // 512 channels make 64 rows of one column several bands at batch 1.
        let layer = random_layer(
            Conv2dConfig::square(512, 1, 3, 1, 1),
            &mut ChaCha8Rng::seed_from_u64(4),
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for n in [1, 2] {
            let x = Tensor::zeros(vec![n, 512, 64, 1]);
            let (_, g) = layer.geometry(x.shape()).unwrap();
            assert!(band_rows(&g) < g.ho);
            let (out, _) = pool
                .install(|| layer.infer_then(&x, &[Epilogue::MaxPool2x2]))
                .unwrap();
            assert_eq!(out.shape(), &[n, 1, 32, 0]);
        }
    }

    #[test]
    fn a_batch_1_map_that_fits_one_band_is_cut_into_one_band_per_thread_when_wide_enough() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut geometry = |c: usize, h: usize, w: usize| {
            let layer = random_layer(Conv2dConfig::square(c, 8, 3, 1, 1), &mut rng);
            layer.geometry(&[1, c, h, w]).unwrap().1
        };
        // The reference CNN's three convolutions: one band each by the column budget.
        // On 3 threads the 14×12 map would leave 56 columns a band.
        for (c, h, w, two, three) in [
            (1, 56, 48, 28, 19),
            (32, 28, 24, 14, 10),
            (64, 14, 12, 7, 14),
        ] {
            let g = geometry(c, h, w);
            let step = even_bands(g.ho, band_rows(&g), 2);
            assert_eq!(step, g.ho);
            assert_eq!(thread_bands(&g, step, 1), g.ho);
            assert_eq!(thread_bands(&g, step, 2), two);
            assert_eq!(thread_bands(&g, step, 3), three);
        }
        // 21 columns a thread; and 3 rows, under two a thread.
        for (h, w) in [(7, 6), (3, 100)] {
            let g = geometry(128, h, w);
            assert_eq!(thread_bands(&g, g.ho, 2), g.ho);
        }
        // A map already cut by the column budget keeps its bands.
        let g = geometry(64, 112, 96);
        let step = even_bands(g.ho, band_rows(&g), 2);
        assert!(step < g.ho);
        assert_eq!(thread_bands(&g, step, 2), step);
    }

    #[test]
    fn a_winograd_map_that_fits_one_band_is_not_cut_per_thread() {
        // The ResNet-14's 128-channel convolutions at 28×24, which `thread_bands` would
        // cut in two at batch 1, keep one band whose 36 products the threads share.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let layer = random_layer(Conv2dConfig::square(128, 128, 3, 1, 1), &mut rng);
        let g = layer.geometry(&[1, 128, 28, 24]).unwrap().1;
        assert!(winograd_applies(&g, 128));
        assert!(thread_bands(&g, g.ho, 2) < g.ho);
        assert_eq!(image_band_rows(&g, 128, Form::Winograd(&[]), 2), g.ho);
    }

    #[test]
    fn bands_are_even_and_a_multiple_of_the_threads_running_them() {
        // 112 rows in bands of at most 26: five of 23 alone, six of 19 on two threads.
        assert_eq!(even_bands(112, 26, 1), 23);
        assert_eq!(even_bands(112, 26, 2), 19);
        // A map that fits stays one band, whatever the threads.
        assert_eq!(even_bands(35, 76, 2), 35);
        assert_eq!(even_bands(35, 35, 8), 35);
        for ho in 1..60 {
            for most in 1..20 {
                for threads in 1..5 {
                    let step = even_bands(ho, most, threads);
                    if ho <= most {
                        assert_eq!(step, ho);
                    } else {
                        // Within the budget, and no more bands than the budget's count
                        // rounded up to the threads.
                        assert!((1..=most).contains(&step), "{ho} {most} {threads}");
                        let most_bands = ho.div_ceil(most).next_multiple_of(threads);
                        assert!(ho.div_ceil(step) <= most_bands, "{ho} {most} {threads}");
                    }
                }
            }
        }
    }

    #[test]
    fn image_groups_cover_the_batch_in_order_in_two_groups_per_thread_power() {
        assert_eq!(image_groups(64, 1), vec![(0, 32), (32, 32)]);
        assert_eq!(
            image_groups(64, 2),
            vec![(0, 16), (16, 16), (32, 16), (48, 16)]
        );
        assert_eq!(image_groups(5, 1), vec![(0, 2), (2, 3)]);
        assert_eq!(image_groups(1, 4), vec![(0, 1)]);
        assert!(image_groups(0, 2).is_empty());
        for (n, threads) in [(63, 3), (7, 8), (100, 2)] {
            let groups = image_groups(n, threads);
            let mut next = 0;
            for (first, len) in groups {
                assert_eq!(first, next, "n {n}, threads {threads}");
                next += len;
            }
            assert_eq!(next, n);
        }
    }

    #[test]
    fn small_maps_of_several_images_together_in_winograds_form_equal_the_definition() {
        // Too few tiles an image for Winograd's form alone, enough together: dlib's
        // network's 17×17 (two images a group; four in F(6×6, 3×3), which takes these
        // maps where `winograd::by_six`), 9×9 at padding 1 and 0 (four, in F(4×4, 3×3)
        // on every machine); batches whose last group is short; point-wise chains through
        // the output transform, a pooled one the way it went before.
        let cases = [
            (Conv2dConfig::square(64, 64, 3, 1, 1), [17, 17], (2, 4)),
            (Conv2dConfig::square(64, 64, 3, 1, 1), [9, 9], (4, 4)),
            (Conv2dConfig::square(64, 64, 3, 1, 0), [11, 11], (4, 4)),
        ];
        for (config, hw, (four, six)) in cases {
            let mut rng = ChaCha8Rng::seed_from_u64(14);
            let layer = random_layer(config, &mut rng);
            let o = config.out_channels;
            let (_, g) = layer
                .geometry(&[1, config.in_channels, hw[0], hw[1]])
                .unwrap();
            let images = if winograd::by_six(&winograd_shape(&g, o)) {
                six
            } else {
                four
            };
            for threads in [1, 2] {
                let n = images * threads + 1;
                let shape = [n, config.in_channels, hw[0], hw[1]];
                let (_, g) = layer.geometry(&shape).unwrap();
                assert!(!winograd_applies(&g, o), "{config:?} {hw:?}");
                assert_eq!(
                    winograd_images(&g, o, n, threads),
                    images,
                    "{config:?} {hw:?}"
                );
                let x =
                    Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0f32..1.0));
                let (y, ..) = naive(&layer, &x, &vec![0.0; n * o * g.ho * g.wo]);
                let affine = Epilogue::ChannelAffine {
                    scale: (0..o).map(|_| rng.random_range(-2.0..2.0)).collect(),
                    shift: (0..o).map(|_| rng.random_range(-1.0..1.0)).collect(),
                };
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let what = format!("{config:?} {hw:?} n {n} threads {threads}");
                pool.install(|| {
                    close(&what, &data(&layer.infer(&x).unwrap()), &y);
                    // A slope of its own for each channel (the eight-channel form reads
                    // them eight at a time), within [-1, 0.25]: a slope of -7.6 multiplied
                    // the convolution's rounding past `close`'s tolerance.
                    let prelu = Epilogue::Prelu {
                        slope: (0..o).map(|c| 0.25 - c as f32 / o as f32).collect(),
                    };
                    for chain in [
                        vec![affine.clone(), Epilogue::Relu],
                        vec![affine.clone(), Epilogue::Relu, Epilogue::MaxPool2x2],
                        vec![affine.clone(), prelu],
                    ] {
                        let (got, used) = layer.infer_then(&x, &chain).unwrap();
                        assert_eq!(used, chain.len());
                        let want = chained(&y, &chain, (o, g.ho, g.wo));
                        close(&format!("{what} {chain:?}"), &data(&got), &want);
                    }
                });
            }
        }
    }

    #[test]
    fn a_training_step_after_another_equals_a_fresh_layers_first() {
        // The second forward hands the first step's cached input to the buffer pool and
        // may take it back for its output: its output, dE/dx and gradients must be those
        // of a fresh layer with the same weights, to the bit, in Winograd's form and the
        // column product's (in debug builds a taken buffer is all NaN first).
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for (config, hw) in [
            (Conv2dConfig::square(32, 32, 3, 1, 1), [32, 32]),
            (Conv2dConfig::square(3, 5, 3, 2, 1), [9, 8]),
        ] {
            let mut layer = random_layer(config, &mut rng);
            let mut fresh = layer.clone();
            let shape = [2, config.in_channels, hw[0], hw[1]];
            let input = |rng: &mut ChaCha8Rng| {
                Tensor::from_shape_simple_fn(shape.to_vec(), || rng.random_range(-1.0..1.0))
            };
            let (x1, x2) = (input(&mut rng), input(&mut rng));
            let y1 = layer.forward(&x1, Mode::Train).unwrap();
            let dy1 = y1.mapv(|v| 0.5 * v);
            layer.backward(&dy1).unwrap();
            layer.weight.zero_grad();
            layer.bias.zero_grad();
            let step = |layer: &mut Conv2d| {
                let y = layer.forward(&x2, Mode::Train).unwrap();
                let dx = layer.backward(&y.mapv(|v| v - 0.25)).unwrap();
                (y, dx, layer.weight.grad.clone(), layer.bias.grad.clone())
            };
            let winograd =
                winograd_applies(&layer.geometry(&shape).unwrap().1, config.out_channels);
            assert_eq!(winograd, config.stride == 1, "{config:?}");
            assert_eq!(step(&mut layer), step(&mut fresh), "{config:?}");
        }
    }

    #[test]
    fn sysfs_cache_sizes_are_read_in_bytes() {
        assert_eq!(cache_size("2048K\n"), Some(2 << 20));
        assert_eq!(cache_size("1M"), Some(1 << 20));
        assert_eq!(cache_size("512"), Some(512));
        assert_eq!(cache_size("32768K"), Some(32 << 20));
        for bad in ["", "K", "2048 K", "-1K", "lots"] {
            assert_eq!(cache_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn winograds_band_budget_follows_an_l2_of_two_to_four_megabytes_only() {
        assert_eq!(WINOGRAD_BYTES, 4 * COLUMN_BYTES);
        assert_eq!(band_budget(None), WINOGRAD_BYTES);
        assert_eq!(band_budget(Some(512 << 10)), WINOGRAD_BYTES);
        assert_eq!(band_budget(Some(1 << 20)), WINOGRAD_BYTES);
        assert_eq!(band_budget(Some(2 << 20)), 2 << 20);
        assert_eq!(band_budget(Some(3 << 20)), 3 << 20);
        assert_eq!(band_budget(Some(8 << 20)), WINOGRAD_BYTES);
    }
}
