//! Pooling: max pooling over windows and global average pooling.

use super::epilogue::Epilogue;
use super::tensor::{data, from_vec, nchw, same_shape};
use super::{Layer, Mode, NnError, Result, Tensor};
use rayon::prelude::*;

/// Max pooling: `y[n, c, oy, ox] = max over the kernel×kernel window at (oy·s, ox·s)`.
///
/// Shapes: `(N, C, H, W)` → `(N, C, Ho, Wo)` with `Ho = (H − k) / s + 1` (floor, no
/// padding, as PyTorch's `MaxPool2d(k, s)`). Ties go to the first maximum in row-major
/// window order; the gradient flows only to that element.
///
/// [`MaxPool2d::ceil`] is PyTorch's `ceil_mode=True` (used by MTCNN):
/// `Ho = ⌈(H − k) / s⌉ + 1`, the last window cut off by the edge and taking the maximum
/// of what is inside (a window must start inside the input, as in PyTorch).
#[derive(Debug, Clone)]
pub struct MaxPool2d {
    kernel: usize,
    stride: usize,
    ceil_mode: bool,
    cache: Option<PoolCache>,
}

#[derive(Debug, Clone)]
struct PoolCache {
    input_shape: [usize; 4],
    /// Position of each output's maximum inside its input plane. (N, C, Ho, Wo)
    argmax: Vec<u32>,
}

/// Whether `v` replaces the running maximum: strictly greater (ties keep the first),
/// and a NaN input wins so that it propagates, as in PyTorch.
///
/// Bitwise `|`/`&` and the selects below keep this free of branches: on real feature
/// maps which element wins is close to random, and mispredicted branches made the 2×2
/// pooling cost several times its memory traffic.
#[inline]
fn beats(v: f32, best: f32) -> bool {
    (v > best) | (v.is_nan() & !best.is_nan())
}

/// The 2×2, stride-2 window of the reference CNN, without the general loop's bounds
/// arithmetic: `y (Ho, Wo)` and `argmax` from one input plane `x (H, W)`. Batch norm
/// calls it too when it applies the pooling after it in training (`BatchNorm::forward_then`).
/// Sixteen windows at a time with AVX-512 where the CPU has it ([`pool_2x2_avx512`]),
/// the same comparisons in the same order: the same outputs and argmax.
pub(super) fn pool_2x2(x: &[f32], w: usize, wo: usize, y: &mut [f32], argmax: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") && x.len() <= i32::MAX as usize {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        return unsafe { pool_2x2_avx512(x, w, wo, y, argmax) };
    }
    pool_2x2_rows(x, w, wo, y, argmax);
}

/// [`pool_2x2`] one window at a time.
fn pool_2x2_rows(x: &[f32], w: usize, wo: usize, y: &mut [f32], argmax: &mut [u32]) {
    for (oy, (y_row, arg_row)) in y
        .chunks_exact_mut(wo)
        .zip(argmax.chunks_exact_mut(wo))
        .enumerate()
    {
        let top = 2 * oy * w;
        let (r0, r1) = (&x[top..top + 2 * wo], &x[top + w..top + w + 2 * wo]);
        for (ox, (out, arg)) in y_row.iter_mut().zip(arg_row.iter_mut()).enumerate() {
            let j = 2 * ox;
            let (mut best, mut at) = (r0[j], top + j);
            for (v, pos) in [
                (r0[j + 1], top + j + 1),
                (r1[j], top + w + j),
                (r1[j + 1], top + w + j + 1),
            ] {
                let take = beats(v, best);
                best = if take { v } else { best };
                at = if take { pos } else { at };
            }
            *out = best;
            *arg = at as u32;
        }
    }
}

/// [`pool_2x2`] sixteen windows at a time: each pair of input rows loaded 32 values at a
/// time and split into even and odd columns, then [`beats`] lane by lane in the scalar
/// loop's order (`v > best` ordered, or `v` NaN and `best` not). A row's last block of
/// fewer than sixteen windows is loaded and stored under masks (the reference CNN's
/// maps pool to rows of 24, 12 and 6 windows: finishing them one window at a time made
/// the training step 7 % slower than no vectorisation at all). The one-window loop took
/// 7 % of that step, and compiled under [`super::tensor::wide`] it measured no faster.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn pool_2x2_avx512(x: &[f32], w: usize, wo: usize, y: &mut [f32], argmax: &mut [u32]) {
    use std::arch::x86_64::*;
    const LANES: usize = 16;
    let ho = y.len() / wo.max(1);
    assert!(argmax.len() == y.len() && y.len() == ho * wo && 2 * wo <= w);
    assert!(ho == 0 || (2 * ho - 1) * w + 2 * wo <= x.len());
    assert!(x.len() <= i32::MAX as usize, "positions are 32-bit lanes");
    let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    let beats = |v: __m512, best: __m512| -> __mmask16 {
        let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best);
        let v_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
        let best_nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(best, best);
        greater | (v_nan & !best_nan)
    };
    for oy in 0..ho {
        let top = 2 * oy * w;
        for block in 0..wo.div_ceil(LANES) {
            let lanes = (wo - block * LANES).min(LANES);
            let j = 2 * block * LANES;
            // Masks for a last block of fewer than sixteen windows: its 2·lanes inputs
            // and its outputs.
            let inputs = |half: usize| {
                let n = (2 * lanes).saturating_sub(half * LANES).min(LANES);
                ((1u32 << n) - 1) as __mmask16
            };
            let (lo_mask, hi_mask, out_mask) =
                (inputs(0), inputs(1), ((1u32 << lanes) - 1) as __mmask16);
            // SAFETY: the asserts above keep columns j..j + 2·lanes of rows 2·oy and
            // 2·oy + 1 inside `x`, and outputs oy·wo + 16·block.. + lanes inside `y` and
            // `argmax`; masked lanes are neither read nor written.
            unsafe {
                let row = |r: usize| {
                    let at = x.as_ptr().add(top + r * w + j);
                    let lo = _mm512_maskz_loadu_ps(lo_mask, at);
                    // Past the end of `x` when masked off entirely: not dereferenced.
                    let hi = _mm512_maskz_loadu_ps(hi_mask, at.wrapping_add(LANES));
                    (
                        _mm512_permutex2var_ps(lo, even, hi),
                        _mm512_permutex2var_ps(lo, odd, hi),
                    )
                };
                let ((e0, o0), (e1, o1)) = (row(0), row(1));
                let first = _mm512_add_epi32(_mm512_set1_epi32((top + j) as i32), even);
                let (mut best, mut at) = (e0, first);
                for (v, offset) in [(o0, 1), (e1, w), (o1, w + 1)] {
                    let take = beats(v, best);
                    best = _mm512_mask_blend_ps(take, best, v);
                    let pos = _mm512_add_epi32(first, _mm512_set1_epi32(offset as i32));
                    at = _mm512_mask_blend_epi32(take, at, pos);
                }
                let out = oy * wo + block * LANES;
                _mm512_mask_storeu_ps(y.as_mut_ptr().add(out), out_mask, best);
                _mm512_mask_storeu_epi32(argmax.as_mut_ptr().add(out).cast(), out_mask, at);
            }
        }
    }
}

impl MaxPool2d {
    pub fn new(kernel: usize, stride: usize) -> Result<Self> {
        if kernel == 0 || stride == 0 {
            return Err(NnError::Invalid(format!(
                "max_pool2d: kernel and stride must be positive, got {kernel} and {stride}"
            )));
        }
        Ok(MaxPool2d {
            kernel,
            stride,
            ceil_mode: false,
            cache: None,
        })
    }

    /// The same pooling with PyTorch's `ceil_mode=True`: partial windows at the right and
    /// bottom edges count.
    pub fn ceil(kernel: usize, stride: usize) -> Result<Self> {
        Ok(MaxPool2d {
            ceil_mode: true,
            ..Self::new(kernel, stride)?
        })
    }

    /// Output length of one axis of `len` input elements.
    fn out_len(&self, len: usize) -> usize {
        let span = len - self.kernel;
        if !self.ceil_mode {
            return span / self.stride + 1;
        }
        let out = span.div_ceil(self.stride) + 1;
        // PyTorch: the last window must start inside the input.
        if (out - 1) * self.stride >= len {
            out - 1
        } else {
            out
        }
    }

    fn dims(&self, shape: &[usize]) -> Result<([usize; 4], usize, usize)> {
        let [n, c, h, w] = nchw("max_pool2d", shape, None)?;
        if h < self.kernel || w < self.kernel || h * w > u32::MAX as usize {
            return Err(NnError::shape(
                "max_pool2d",
                format!("[N, C, H, W] with H, W ≥ {}", self.kernel),
                shape,
            ));
        }
        Ok(([n, c, h, w], self.out_len(h), self.out_len(w)))
    }

    fn run(&self, x: &Tensor) -> Result<(Tensor, Vec<u32>, [usize; 4])> {
        let ([n, c, h, w], ho, wo) = self.dims(x.shape())?;
        let x = data(x);
        let mut y = vec![0.0f32; n * c * ho * wo];
        let mut argmax = vec![0u32; y.len()];
        let (k, s) = (self.kernel, self.stride);
        y.par_chunks_mut(ho * wo)
            .zip(argmax.par_chunks_mut(ho * wo))
            .zip(x.par_chunks(h * w))
            .for_each(|((y_pl, arg_pl), x_pl)| {
                if k == 2 && s == 2 && 2 * ho <= h && 2 * wo <= w {
                    return pool_2x2(x_pl, w, wo, y_pl, arg_pl);
                }
                for oy in 0..ho {
                    // Rows and columns of the window inside the input (all of them
                    // unless ceil mode cut the last window).
                    let ky_end = k.min(h - oy * s);
                    for ox in 0..wo {
                        let kx_end = k.min(w - ox * s);
                        let (mut best, mut at) = (f32::NEG_INFINITY, (oy * s) * w + ox * s);
                        for ky in 0..ky_end {
                            let row = (oy * s + ky) * w + ox * s;
                            for (kx, &v) in x_pl[row..row + kx_end].iter().enumerate() {
                                if beats(v, best) {
                                    best = v;
                                    at = row + kx;
                                }
                            }
                        }
                        y_pl[oy * wo + ox] = best;
                        arg_pl[oy * wo + ox] = at as u32;
                    }
                }
            });
        Ok((from_vec(&[n, c, ho, wo], y)?, argmax, [n, c, h, w]))
    }
}

/// The running maximum `best` after seeing `v`, as a value: what [`beats`] keeps, up to
/// which NaN (a NaN `v` is taken whatever `best` is, a NaN `best` kept against any
/// number). One comparison fewer than [`beats`], which also needs the first NaN's
/// position for the gradient.
#[inline]
pub(super) fn nan_max(best: f32, v: f32) -> f32 {
    if (v > best) | v.is_nan() { v } else { best }
}

impl MaxPool2d {
    /// Eval-mode pooling without the argmax backward needs: a window's maximum is the
    /// maximum over its columns of each column's maximum. For each output row the `k`
    /// input rows are reduced element by element first (contiguous, so vectorised; two or
    /// three rows in one pass over them, which made MTCNN's 3×3 pooling 1.6–1.8× faster
    /// than a copy of the first row and a pass per further row), then
    /// the windows of that one reduced row: the strided, scalar part runs over `Ho` rows
    /// instead of `H`. Equal to [`MaxPool2d::run`]'s values (`layer_tests.rs`:
    /// `max_pool_infer_equals_the_training_forward_nan_included`).
    fn run_max(&self, x: &Tensor) -> Result<Tensor> {
        let ([n, c, h, w], ho, wo) = self.dims(x.shape())?;
        let x = data(x);
        let (k, s) = (self.kernel, self.stride);
        let mut y = vec![0.0f32; n * c * ho * wo];
        // MTCNN pools many small planes (a 24×24 R-Net input has 28 of 22×22 per face):
        // a rayon task and a buffer per plane cost more than pooling it.
        let per_task = (MIN_TASK_INPUTS / (h * w)).max(1);
        y.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .with_min_len(per_task)
            .for_each_init(
                || vec![0.0f32; w],
                |cols, (y_pl, x_pl)| {
                    // `cols`: column maxima over one output row's input rows, (W).
                    for (oy, y_row) in y_pl.chunks_exact_mut(wo).enumerate() {
                        let start = oy * s;
                        let end = (start + k).min(h);
                        let rows = &x_pl[start * w..end * w];
                        match rows.len() / w {
                            // MTCNN's 3-row windows in one pass over the three rows.
                            3 => {
                                let (r0, rest) = rows.split_at(w);
                                let (r1, r2) = rest.split_at(w);
                                for (((m, &a), &b), &c) in cols.iter_mut().zip(r0).zip(r1).zip(r2) {
                                    *m = nan_max(nan_max(a, b), c);
                                }
                            }
                            2 => {
                                let (r0, r1) = rows.split_at(w);
                                for ((m, &a), &b) in cols.iter_mut().zip(r0).zip(r1) {
                                    *m = nan_max(a, b);
                                }
                            }
                            _ => {
                                cols.copy_from_slice(&rows[..w]);
                                for x_row in rows[w..].chunks_exact(w) {
                                    for (m, &v) in cols.iter_mut().zip(x_row) {
                                        *m = nan_max(*m, v);
                                    }
                                }
                            }
                        }
                        window_maxima(cols, k, s, y_row);
                    }
                },
            );
        from_vec(&[n, c, ho, wo], y)
    }
}

/// Input elements one rayon task of [`MaxPool2d::run_max`] pools at least.
const MIN_TASK_INPUTS: usize = 16 * 1024;

/// `out[ox]` = the maximum of `cols[ox·s .. min(ox·s + k, W)]`, taken left to right as
/// the general fold does (so ties and NaN resolve the same way). MTCNN's windows — 2
/// and 3 wide at stride 2 — skip the general fold's slicing and bounds arithmetic.
#[inline]
fn window_maxima(cols: &[f32], k: usize, s: usize, out: &mut [f32]) {
    match (k, s) {
        (2, 2) => {
            let (pairs, rest) = cols.as_chunks::<2>();
            for (o, p) in out.iter_mut().zip(pairs) {
                *o = nan_max(p[0], p[1]);
            }
            // Ceil mode with an odd width: the last window holds one column.
            if let (Some(o), [last]) = (out.get_mut(pairs.len()), rest) {
                *o = *last;
            }
        }
        (3, 2) => {
            // Window `ox` is pair `ox` and the first of pair `ox + 1`: no index
            // arithmetic or bounds checks in the loop, which then vectorises.
            let (pairs, _) = cols.as_chunks::<2>();
            for ((o, p), q) in out.iter_mut().zip(pairs).zip(pairs.iter().skip(1)) {
                *o = nan_max(nan_max(p[0], p[1]), q[0]);
            }
            // The zip above stops at the shortest of its three sequences.
            let done = out.len().min(pairs.len().saturating_sub(1));
            fold_windows(cols, k, s, out, done);
        }
        _ => fold_windows(cols, k, s, out, 0),
    }
}

/// [`window_maxima`] for windows `from..` by the general fold.
fn fold_windows(cols: &[f32], k: usize, s: usize, out: &mut [f32], from: usize) {
    for (ox, o) in out.iter_mut().enumerate().skip(from) {
        let first = ox * s;
        let last = (first + k).min(cols.len());
        *o = cols[first..last]
            .iter()
            .fold(f32::NEG_INFINITY, |m, &v| nan_max(m, v));
    }
}

impl Layer for MaxPool2d {
    fn kind(&self) -> &'static str {
        "max_pool2d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let ([n, c, _, _], ho, wo) = self.dims(input)?;
        Ok(vec![n, c, ho, wo])
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (y, argmax, input_shape) = self.run(x)?;
        if mode == Mode::Train {
            self.cache = Some(PoolCache {
                input_shape,
                argmax,
            });
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.run_max(x)
    }

    fn as_epilogue(&self) -> Option<Epilogue> {
        match (self.kernel, self.stride, self.ceil_mode) {
            (2, 2, false) => Some(Epilogue::MaxPool2x2),
            (2, 2, true) => Some(Epilogue::MaxPool2x2Ceil),
            _ => None,
        }
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "max_pool2d" })?;
        let [n, c, h, w] = cache.input_shape;
        let plane_out = cache.argmax.len() / (n * c).max(1);
        let (_, ho, wo) = self.dims(&cache.input_shape)?;
        same_shape("max_pool2d", dy, &[n, c, ho, wo])?;
        let dy = data(dy);
        let mut dx = vec![0.0f32; n * c * h * w];
        dx.par_chunks_mut(h * w)
            .zip(dy.par_chunks(plane_out))
            .zip(cache.argmax.par_chunks(plane_out))
            .for_each(|((dx_pl, dy_pl), arg_pl)| scatter(dy_pl, arg_pl, dx_pl));
        from_vec(&[n, c, h, w], dx)
    }
}

/// The backward of one plane: each output's gradient `dy` added to the input element that
/// was its window's maximum (`argmax`), into `dx (H, W)`, which the caller has zeroed.
pub(super) fn scatter(dy: &[f32], argmax: &[u32], dx: &mut [f32]) {
    for (&g, &at) in dy.iter().zip(argmax) {
        dx[at as usize] += g;
    }
}

/// Global average pooling: `y[n, c] = mean over (h, w) of x[n, c, h, w]`.
///
/// Shapes: `(N, C, H, W)` → `(N, C)`; backward spreads `dy / (H·W)` evenly.
#[derive(Debug, Clone, Default)]
pub struct GlobalAvgPool {
    input_shape: Option<[usize; 4]>,
}

impl GlobalAvgPool {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Layer for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "global_avg_pool"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let [n, c, _, _] = nchw("global_avg_pool", input, None)?;
        Ok(vec![n, c])
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.infer(x)?;
        if mode == Mode::Train {
            self.input_shape = Some(nchw("global_avg_pool", x.shape(), None)?);
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let [n, c, h, w] = nchw("global_avg_pool", x.shape(), None)?;
        let area = (h * w) as f32;
        let y = data(x)
            .chunks(h * w)
            .map(|plane| plane.iter().sum::<f32>() / area)
            .collect();
        from_vec(&[n, c], y)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let [n, c, h, w] = self.input_shape.ok_or(NnError::NoForwardCache {
            op: "global_avg_pool",
        })?;
        same_shape("global_avg_pool", dy, &[n, c])?;
        let area = (h * w) as f32;
        let dx = data(dy)
            .iter()
            .flat_map(|&g| std::iter::repeat_n(g / area, h * w))
            .collect();
        from_vec(&[n, c, h, w], dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// [`pool_2x2`] (also batch norm's, in training) against the window-by-window
    /// definition: the first maximum in row-major order, a NaN winning (the first NaN),
    /// with odd widths and heights (the last column and row unused), widths of whole,
    /// partial and no blocks of sixteen windows; the one-window loop alone too (the
    /// only path on CPUs without AVX-512).
    #[test]
    fn the_2x2_pooling_equals_the_definition_ties_and_nan_included() {
        type Pooling = fn(&[f32], usize, usize, &mut [f32], &mut [u32]);
        for pooling in [pool_2x2 as Pooling, pool_2x2_rows] {
            for (h, w) in [(7, 75), (4, 64), (5, 33), (3, 9)] {
                let (ho, wo) = (h / 2, w / 2);
                // Few distinct values (ties everywhere, between any two of a window's
                // elements), a few NaN.
                let mut rng = ChaCha8Rng::seed_from_u64(w as u64);
                let x: Vec<f32> = (0..h * w)
                    .map(|_| match rng.random_range(0..40) {
                        0..5 => f32::NAN,
                        r => (r % 4) as f32 - 2.0,
                    })
                    .collect();
                let (mut y, mut argmax) = (vec![0.0f32; ho * wo], vec![0u32; ho * wo]);
                pooling(&x, w, wo, &mut y, &mut argmax);
                for oy in 0..ho {
                    for ox in 0..wo {
                        let at = |dy: usize, dx: usize| (2 * oy + dy) * w + 2 * ox + dx;
                        let mut best = at(0, 0);
                        for pos in [at(0, 1), at(1, 0), at(1, 1)] {
                            if beats(x[pos], x[best]) {
                                best = pos;
                            }
                        }
                        let o = oy * wo + ox;
                        let window = format!("{h}×{w}, window ({oy}, {ox})");
                        assert_eq!(argmax[o] as usize, best, "{window}");
                        assert_eq!(y[o].to_bits(), x[best].to_bits(), "{window}");
                    }
                }
                if h * w > 100 {
                    assert!(y.iter().any(|v| v.is_nan()) && argmax.iter().any(|&a| a % 2 == 1));
                }
            }
        }
    }
}
