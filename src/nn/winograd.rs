//! Winograd's minimal filtering F(4×4, 3×3) (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016; interpolation points 0, ±1, ±2): a 3×3
//! convolution at stride 1 computed a 4×4 block of outputs at a time from a 6×6 tile of
//! its input, in 36 multiplications per input channel where the direct form needs 144.
//!
//! Over a band of output rows: every tile of every input channel is transformed,
//! `V = Bᵀ d B`, into 36 matrices `V[ξ] (C, T)` (one column per tile); the weights are
//! transformed once per call, `U = G g Gᵀ`, into `U[ξ] (O, C)`; 36 products
//! `M[ξ] (O, T) = U[ξ] · V[ξ]` do all the multiply-adds, 4× fewer than the direct
//! form's one product `(O, 9·C) · (9·C, 16·T)`; and each output block is `Aᵀ M A` plus
//! the bias ([`band`]). The input gradient is the same convolution of `dy` by the
//! rotated kernel ([`input_grad_weights`]); the weight gradient is the adjoint of these
//! steps, 36 products `dU[ξ] = (A dy Aᵀ)[ξ] · V[ξ]ᵀ` taken back by `Gᵀ dU G`
//! ([`add_weight_grad_band`], [`add_weight_grad`]). With
//!
//! ```text
//!      ⎡4  0 −5  0  1  0⎤         ⎡ ¼     0     0 ⎤
//!      ⎢0 −4 −4  1  1  0⎥         ⎢−⅙    −⅙    −⅙ ⎥        ⎡1  1  1  1  1  0⎤
//! Bᵀ = ⎢0  4 −4 −1  1  0⎥     G = ⎢−⅙     ⅙    −⅙ ⎥   Aᵀ = ⎢0  1 −1  2 −2  0⎥
//!      ⎢0 −2 −1  2  1  0⎥         ⎢1/24  1/12  ⅙ ⎥        ⎢0  1  1  4  4  0⎥
//!      ⎢0  2 −1 −2  1  0⎥         ⎢1/24 −1/12  ⅙ ⎥        ⎣0  1 −1  8 −8  1⎦
//!      ⎣0  4  0 −5  0  1⎦         ⎣ 0     0     1 ⎦
//! ```
//!
//! this is cross-correlation, exactly in real arithmetic. In `f32` its rounding error is
//! larger than the direct form's (the transforms scale values by up to 8 and 25 before
//! they cancel); the tests bound it against the definition in f64.

use super::epilogue::{self, Epilogue, Rectify};
use super::gemm::{Gemm, Op, unpacked};
use super::tensor::wide;
use rayon::prelude::*;
use std::ops::Range;

pub mod lanes;
pub mod six;

/// Matrices of the transform: a tile's 6×6 values `ξ = 6·i + j`.
pub const TILE: usize = 36;

/// Outputs per tile side.
pub const STEP: usize = 4;

/// Sizes of one image's convolution: channels in and out, input height and width, and
/// the zero padding on every side. The output is `(h + 2p − 2) × (w + 2p − 2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub c: usize,
    pub o: usize,
    pub h: usize,
    pub w: usize,
    pub pad: usize,
}

impl Shape {
    pub fn ho(&self) -> usize {
        (self.h + 2 * self.pad).saturating_sub(2)
    }

    pub fn wo(&self) -> usize {
        (self.w + 2 * self.pad).saturating_sub(2)
    }

    /// Row `r − p` of a `(H, W)` plane (`r` counts padded rows), `None` in the padding.
    fn input_row<'a>(&self, plane: &'a [f32], r: usize) -> Option<&'a [f32]> {
        let y = r.checked_sub(self.pad).filter(|&y| y < self.h)?;
        Some(&plane[y * self.w..(y + 1) * self.w])
    }
}

/// Each of `channels` rows of the matrices `(k, channels, t)`, as the channel's `k`
/// slices: what the transforms of one channel write.
fn rows_by_channel(matrices: &mut [f32], channels: usize, t: usize) -> Vec<Vec<&mut [f32]>> {
    let k = matrices.len() / (channels * t).max(1);
    let mut by_channel: Vec<Vec<&mut [f32]>> =
        (0..channels).map(|_| Vec::with_capacity(k)).collect();
    for matrix in matrices.chunks_exact_mut(channels * t) {
        for (rows, row) in by_channel.iter_mut().zip(matrix.chunks_exact_mut(t)) {
            rows.push(row);
        }
    }
    by_channel
}

/// `G` (6×3).
const G: [[f32; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// The weights `(O, C, 3, 3)` transformed: 36 matrices `U[ξ] (O, C)`,
/// `U[·][o][c] = G · w[o, c] · Gᵀ`. As one product, `U (36, O·C) = (G ⊗ G) (36, 9) ·
/// wᵀ (9, O·C)`: a loop over the kernels, each scattering its 36 values, took a fifth
/// of a residual network's batch-1 inference when every forward transformed its
/// weights. A training forward still does (its weights change every step); an inference
/// keeps them in the layer while its weights stay the same (`conv2d`'s `Transformed`).
pub fn weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    transform_weights(&G, w, o, c)
}

/// The weights `(O, C, 3, 3)` transformed by a form whose `G` is `g` (`n`×3): `n²`
/// matrices `(O, C)`, as one product `(G ⊗ G) (n², 9) · wᵀ (9, O·C)`.
fn transform_weights(g: &[[f32; 3]], w: &[f32], o: usize, c: usize) -> Vec<f32> {
    assert_eq!(w.len(), o * c * 9, "winograd: weights are (O, C, 3, 3)");
    let tile = g.len() * g.len();
    let mut u = vec![0.0f32; tile * o * c];
    Gemm::new(tile, o * c, 9)
        .ops(Op::N, Op::T)
        .run(&kron(g), w, &mut u);
    u
}

/// `G ⊗ G` (`n²`, 9) of a `G` of `n` rows: `[n·i + j][3a + b] = G[i][a]·G[j][b]`, so that
/// `G k Gᵀ` of a kernel `k` (9 values) is this matrix times `k`.
fn kron(g: &[[f32; 3]]) -> Vec<f32> {
    let n = g.len();
    let mut kron = vec![0.0f32; n * n * 9];
    for (xi, row) in kron.chunks_exact_mut(9).enumerate() {
        for (tap, v) in row.iter_mut().enumerate() {
            *v = g[xi / n][tap / 3] * g[xi % n][tap % 3];
        }
    }
    kron
}

/// The transformed weights of the convolution that carries `dE/dy (O, H', W')` back to
/// `dE/dx (C, H, W)` for a 3×3 convolution at stride 1 and padding `p`: the kernel
/// rotated by 180° with input and output channels swapped, `w'[c, o] = rot180(w[o, c])`,
/// at padding `2 − p`. 36 matrices `(C, O)`.
pub fn input_grad_weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    assert_eq!(w.len(), o * c * 9, "winograd: weights are (O, C, 3, 3)");
    let mut rotated = vec![0.0f32; w.len()];
    for oi in 0..o {
        for ci in 0..c {
            let src = &w[(oi * c + ci) * 9..][..9];
            let dst = &mut rotated[(ci * o + oi) * 9..][..9];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    weights(&rotated, c, o)
}

/// Floats of scratch one band of `rows` output rows takes: its `V` and `M`.
pub fn scratch_len(s: &Shape, rows: usize) -> usize {
    TILE * (s.c + s.o) * rows.div_ceil(STEP) * s.wo().div_ceil(STEP)
}

/// Output rows per band whose scratch stays within `bytes`: a multiple of four, four at
/// least, or the whole output where it fits.
pub fn band_rows(s: &Shape, bytes: usize) -> usize {
    let block = scratch_len(s, STEP) * std::mem::size_of::<f32>();
    (STEP * (bytes / block.max(1))).clamp(STEP, s.ho().max(STEP))
}

/// Output rows `band` (its start a multiple of four) of one image's convolution, into
/// `outs` (one slice of `|band|·W'` per output channel): `chain` applied to `bias + Σ_c
/// w[·, c] ⋆ x[c]` (`bias` `None`: no bias; `chain` point-wise steps only, applied as
/// the output transform writes each value, so the outputs are written once), from the
/// transformed weights `u` ([`weights`]) and the image `x (C, H, W)`. `scratch` grows to
/// [`scratch_len`]. With `parallel` the transforms and the 36 products are shared among
/// rayon's threads.
#[allow(clippy::too_many_arguments)]
pub fn band(
    s: &Shape,
    u: &[f32],
    (bias, chain): (Option<&[f32]>, &[Epilogue]),
    x: &[f32],
    band: Range<usize>,
    outs: &mut [&mut [f32]],
    scratch: &mut Vec<f32>,
    parallel: bool,
) {
    let (c, o, wo) = (s.c, s.o, s.wo());
    check_band(s, &band);
    assert_eq!(u.len(), TILE * o * c, "winograd: transformed weights");
    assert_eq!(x.len(), c * s.h * s.w, "winograd: input");
    assert!(
        !epilogue::pools(chain),
        "winograd: point-wise epilogues only"
    );
    assert!(
        outs.len() == o && outs.iter().all(|y| y.len() >= band.len() * wo),
        "winograd: output"
    );
    if band.is_empty() || wo == 0 {
        return;
    }
    let ((th, tw), v, m) = band_buffers(s, &band, scratch);
    let t = th * tw;

    let mut v_rows = rows_by_channel(v, c, t);
    let input = |work: &mut Work, (ch, rows): (usize, &mut Vec<&mut [f32]>)| {
        let plane = &x[ch * s.h * s.w..(ch + 1) * s.h * s.w];
        transform_input(s, plane, band.start, (th, tw), rows, work);
    };
    if parallel {
        v_rows
            .par_iter_mut()
            .enumerate()
            .for_each_init(Work::default, input);
    } else {
        let mut work = Work::default();
        v_rows
            .iter_mut()
            .enumerate()
            .for_each(|channel| input(&mut work, channel));
    }
    drop(v_rows);

    let product = |(xi, m_xi): (usize, &mut [f32])| {
        unpacked::product(
            o,
            t,
            c,
            &u[xi * o * c..(xi + 1) * o * c],
            &v[xi * c * t..(xi + 1) * c * t],
            m_xi,
        );
    };
    if parallel {
        m.par_chunks_exact_mut(o * t).enumerate().for_each(product);
    } else {
        m.chunks_exact_mut(o * t).enumerate().for_each(product);
    }

    let rows = band.len();
    let m = &*m;
    let output = |work: &mut Work, (oc, y): (usize, &mut &mut [f32])| {
        let m_o: [&[f32]; TILE] = std::array::from_fn(|xi| &m[(xi * o + oc) * t..][..t]);
        let y = &mut y[..rows * wo];
        output_channel(&m_o, (bias, chain, oc), (rows, wo, tw), y, work);
    };
    if parallel {
        outs.par_iter_mut()
            .enumerate()
            .for_each_init(Work::default, output);
    } else {
        let mut work = Work::default();
        outs.iter_mut()
            .enumerate()
            .for_each(|channel| output(&mut work, channel));
    }
}

/// Output channel `oc`'s blocks from `m_o[ξ]` into `y`, through `bias[oc]` and the
/// point-wise `chain` (see [`transform_output`]).
fn output_channel(
    m_o: &[&[f32]; TILE],
    (bias, chain, oc): (Option<&[f32]>, &[Epilogue], usize),
    at: (usize, usize, usize),
    y: &mut [f32],
    w: &mut Work,
) {
    let b = bias.map_or(0.0, |b| b[oc]);
    // One loop per kind of step, so that each vectorises without a test per value.
    match epilogue::pointwise(chain, oc) {
        (Some((a, sh)), Rectify::Relu) => {
            transform_output(m_o, b, |v| (a * v + sh).max(0.0), at, y, w)
        }
        (Some((a, sh)), f @ Rectify::Prelu(_)) => {
            transform_output(m_o, b, |v| f.apply(a * v + sh), at, y, w)
        }
        (Some((a, sh)), Rectify::None) => transform_output(m_o, b, |v| a * v + sh, at, y, w),
        (None, Rectify::Relu) => transform_output(m_o, b, |v| v.max(0.0), at, y, w),
        (None, f @ Rectify::Prelu(_)) => transform_output(m_o, b, |v| f.apply(v), at, y, w),
        (None, Rectify::None) => transform_output(m_o, b, |v| v, at, y, w),
    }
}

/// The scratch [`images`] needs for `images` whole maps.
pub fn images_scratch_len(s: &Shape, images: usize) -> usize {
    if by_six(s) {
        return six::scratch_len(s, images);
    }
    if by_lanes(s) {
        return lanes::scratch_len(s, images);
    }
    images * scratch_len(s, s.ho())
}

/// Whether [`images`] transforms eight channels a step ([`lanes`]): when the channels
/// fill whole steps and the `gemm` crate computes the products anyway. The AVX-512
/// product kernel ([`unpacked`]) reads `V[ξ]` as `(C, T)`, which the per-image
/// transforms write; that path was not measured against this one.
fn by_lanes(s: &Shape) -> bool {
    lanes::applies(s) && !unpacked::own_kernel()
}

/// Whether [`images`] computes F(6×6, 3×3) ([`six::images`]): in the eight-channel form
/// (`by_lanes`), where its 8×8 tiles take at most three quarters of the multiplications
/// of this form's 6×6 ones. dlib's network's 17×17 maps take 9 tiles of 64 against 25 of
/// 36 (0.64), and ran faster (`conv2d::winograd_images`); the ResNet-14's 14×12 maps at
/// batch 16 take 6 of 64 against 12 of 36 (0.89), and were no faster beyond the noise of
/// a 2-core AMD EPYC (family 25 model 1; blocks of 17.6–19.9 ms against 17.4–22.2);
/// 8×8 maps take 4 of 64 against 4 of 36 (BENCHMARKS.md).
pub fn by_six(s: &Shape) -> bool {
    by_lanes(s) && 4 * six::TILE * six_tiles(s) <= 3 * TILE * four_tiles(s)
}

fn six_tiles(s: &Shape) -> usize {
    let (th, tw) = six::tiles(s);
    th * tw
}

fn four_tiles(s: &Shape) -> usize {
    s.ho().div_ceil(STEP) * s.wo().div_ceil(STEP)
}

/// Tiles of one image's map in the form [`images`] computes it in.
pub fn images_tiles(s: &Shape) -> usize {
    if by_six(s) {
        six_tiles(s)
    } else {
        four_tiles(s)
    }
}

/// The weights `(O, C, 3, 3)` transformed for [`images`]: by [`weights`], or by
/// [`six::weights`] where [`by_six`].
pub fn images_weights(s: &Shape, w: &[f32]) -> Vec<f32> {
    if by_six(s) {
        six::weights(w, s.o, s.c)
    } else {
        weights(w, s.o, s.c)
    }
}

/// The whole outputs of several images at once, `x (G, C, H, W)` into `outs` (one
/// plane of `H'·W'` per image and output channel, image by image): as [`band`] with
/// every image's whole map as its band, but the 36 products run once for all the
/// images' tiles side by side (`T = G·th·tw`), one thread. For maps too small to give a
/// product enough tiles alone (dlib's network's 17×17: 25 tiles an image), from the
/// weights of [`images_weights`]. With channels in multiples of eight and no AVX-512,
/// [`lanes::images`] computes it, or [`six::images`] where [`by_six`].
pub fn images(
    s: &Shape,
    u: &[f32],
    (bias, chain): (Option<&[f32]>, &[Epilogue]),
    x: &[f32],
    outs: &mut [&mut [f32]],
    scratch: &mut Vec<f32>,
) {
    if by_six(s) {
        return six::images(s, u, (bias, chain), x, outs, scratch);
    }
    if by_lanes(s) {
        return lanes::images(s, u, (bias, chain), x, outs, scratch);
    }
    let (c, o, ho, wo) = (s.c, s.o, s.ho(), s.wo());
    let plane = s.h * s.w;
    assert_eq!(u.len(), TILE * o * c, "winograd: transformed weights");
    let images = check_images(s, chain, x, outs);
    if images == 0 || ho == 0 || wo == 0 {
        return;
    }
    let (th, tw) = (ho.div_ceil(STEP), wo.div_ceil(STEP));
    let (t1, t) = (th * tw, images * th * tw);
    let len = images_scratch_len(s, images);
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    let (v, rest) = scratch.split_at_mut(TILE * c * t);
    let m = &mut rest[..TILE * o * t];
    let mut work = Work::default();
    // Image `i`'s tiles are columns `i·t1 … (i + 1)·t1` of every matrix.
    for (ch, rows) in rows_by_channel(v, c, t).iter_mut().enumerate() {
        for (i, x_img) in x.chunks_exact(c * plane).enumerate() {
            let mut piece: Vec<&mut [f32]> =
                rows.iter_mut().map(|r| &mut r[i * t1..][..t1]).collect();
            let x_plane = &x_img[ch * plane..][..plane];
            transform_input(s, x_plane, 0, (th, tw), &mut piece, &mut work);
        }
    }
    for (xi, m_xi) in m.chunks_exact_mut(o * t).enumerate() {
        let u_xi = &u[xi * o * c..(xi + 1) * o * c];
        unpacked::product(o, t, c, u_xi, &v[xi * c * t..(xi + 1) * c * t], m_xi);
    }
    for (k, y) in outs.iter_mut().enumerate() {
        let (i, oc) = (k / o, k % o);
        let m_o: [&[f32]; TILE] = std::array::from_fn(|xi| &m[(xi * o + oc) * t + i * t1..][..t1]);
        output_channel(
            &m_o,
            (bias, chain, oc),
            (ho, wo, tw),
            &mut y[..ho * wo],
            &mut work,
        );
    }
}

/// The number of images in `x`; panics unless the shapes agree with `s` and `chain` is
/// point-wise (what [`images`], [`lanes::images`] and [`six::images`] need).
fn check_images(s: &Shape, chain: &[Epilogue], x: &[f32], outs: &[&mut [f32]]) -> usize {
    let plane = s.h * s.w;
    let images = x.len() / (s.c * plane).max(1);
    assert_eq!(x.len(), images * s.c * plane, "winograd: input");
    assert!(
        !epilogue::pools(chain),
        "winograd: point-wise epilogues only"
    );
    assert!(
        outs.len() == images * s.o && outs.iter().all(|y| y.len() >= s.ho() * s.wo()),
        "winograd: output"
    );
    images
}

/// Panics unless `band` starts on a multiple of four rows and ends inside the output.
fn check_band(s: &Shape, band: &Range<usize>) {
    assert!(
        band.start.is_multiple_of(STEP),
        "winograd: a band starts on a multiple of four"
    );
    assert!(band.end <= s.ho(), "winograd: band past the output");
}

/// `scratch`, grown to [`scratch_len`], lent as the band's input tiles `V (36, C, T)`
/// and a block `(36, O, T)`; with the tiles' rows and columns `(th, tw)`.
fn band_buffers<'a>(
    s: &Shape,
    band: &Range<usize>,
    scratch: &'a mut Vec<f32>,
) -> ((usize, usize), &'a mut [f32], &'a mut [f32]) {
    let (th, tw) = (band.len().div_ceil(STEP), s.wo().div_ceil(STEP));
    let t = th * tw;
    if scratch.len() < scratch_len(s, band.len()) {
        scratch.resize(scratch_len(s, band.len()), 0.0);
    }
    let (v, rest) = scratch.split_at_mut(TILE * s.c * t);
    ((th, tw), v, &mut rest[..TILE * s.o * t])
}

/// The whole output `out (O, H', W')` of one image `x (C, H, W)`, no bias, in bands of
/// output rows whose scratch stays within `bytes`, one thread.
pub fn image(
    s: &Shape,
    u: &[f32],
    x: &[f32],
    out: &mut [f32],
    scratch: &mut Vec<f32>,
    bytes: usize,
) {
    let step = band_rows(s, bytes);
    let (ho, wo) = (s.ho(), s.wo());
    for start in (0..ho).step_by(step) {
        let rows = start..(start + step).min(ho);
        let mut outs = strided_rows(&mut out[start * wo..], ho * wo, rows.len() * wo);
        band(s, u, (None, &[]), x, rows, &mut outs, scratch, false);
    }
}

/// The first `len` values of each row of stride `ld` of `out` (the last row may be
/// short): one slice per output channel, as [`band`] writes them.
pub fn strided_rows(out: &mut [f32], ld: usize, len: usize) -> Vec<&mut [f32]> {
    out.chunks_mut(ld.max(1))
        .map(|row| &mut row[..len])
        .collect()
}

/// Adds one band's share of the weight gradient, in the transformed domain: for the
/// output rows `band` (its start a multiple of four) of an image `x (C, H, W)` with
/// upstream gradient `dy (O, H', W')` (the whole image's), `du[ξ] (O, C) += Ỹ[ξ] · V[ξ]ᵀ`,
/// where `V` are the input's tiles as in the forward and `Ỹ = A dy Aᵀ` each 4×4 block
/// of `dy` (zero past the band or the map). The forward's adjoint: `y = Aᵀ (U ⊙ V) A`
/// gives `dU = Σ_tiles (A dy Aᵀ) ⊙ V`, and [`add_weight_grad`] takes `dU` back to the
/// kernel. 36 products of depth `T`. `scratch` grows to [`scratch_len`]; one thread.
pub fn add_weight_grad_band(
    s: &Shape,
    x: &[f32],
    dy: &[f32],
    band: Range<usize>,
    du: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (c, o, wo) = (s.c, s.o, s.wo());
    check_band(s, &band);
    assert_eq!(x.len(), c * s.h * s.w, "winograd: input");
    assert_eq!(dy.len(), o * s.ho() * wo, "winograd: output gradient");
    assert_eq!(du.len(), TILE * o * c, "winograd: transformed gradient");
    if band.is_empty() || wo == 0 {
        return;
    }
    let ((th, tw), v, dm) = band_buffers(s, &band, scratch);
    let t = th * tw;
    let mut work = Work::default();
    for (ch, rows) in rows_by_channel(v, c, t).iter_mut().enumerate() {
        let plane = &x[ch * s.h * s.w..(ch + 1) * s.h * s.w];
        transform_input(s, plane, band.start, (th, tw), rows, &mut work);
    }
    for (oc, rows) in rows_by_channel(dm, o, t).iter_mut().enumerate() {
        let plane = &dy[oc * s.ho() * wo..(oc + 1) * s.ho() * wo];
        transform_output_grad(plane, wo, band.clone(), tw, rows, &mut work);
    }
    for xi in 0..TILE {
        Gemm::new(o, c, t).ops(Op::N, Op::T).accumulate(true).run(
            &dm[xi * o * t..(xi + 1) * o * t],
            &v[xi * c * t..(xi + 1) * c * t],
            &mut du[xi * o * c..(xi + 1) * o * c],
        );
    }
}

/// `dw (O, C, 3, 3) += Gᵀ du[·][o][c] G` for every `(o, c)`: the kernel's gradient from
/// the transformed one that [`add_weight_grad_band`] sums. As one product,
/// `dw (O·C, 9) += duᵀ (O·C, 36) · (G ⊗ G) (36, 9)`.
pub fn add_weight_grad(du: &[f32], o: usize, c: usize, dw: &mut [f32]) {
    assert_eq!(du.len(), TILE * o * c, "winograd: transformed gradient");
    assert_eq!(dw.len(), o * c * 9, "winograd: weight gradient");
    Gemm::new(o * c, 9, TILE)
        .ops(Op::T, Op::N)
        .accumulate(true)
        .run(du, &kron(&G), dw);
}

/// One output channel's gradient `dy (H', W')` over the rows `band` as the tiles'
/// `A dy Aᵀ`: block `(ty, tx)` (rows `band.start + 4ty + {0…3}`, columns `4tx + {0…3}`,
/// zero past the band or the map) to `rows[ξ][ty·tw + tx]`. `work`'s buffers are
/// reused from channel to channel (allocated and zeroed per channel, they were 16 and
/// 24 values a tile for each of the layer's output channels, image and band).
fn transform_output_grad(
    plane: &[f32],
    wo: usize,
    band: Range<usize>,
    tw: usize,
    rows: &mut [&mut [f32]],
    work: &mut Work,
) {
    // Every row `4y + r` of the band by phase of column, `g[r][k][y·tw + x] =
    // dy[4y + r][4x + k]`; then `A dy` (six rows `i`, each by phase of column) and
    // `(A dy) Aᵀ`, each over all the band's tiles at once (`th·tw` long, as the input
    // transform's second pass).
    let th = band.len().div_ceil(STEP);
    let t = th * tw;
    let (g, p) = work.lend(16 * t, 24 * t);
    wide(
        #[inline(always)]
        || {
            // Rows past the band (in the last block) are zero; every other value of `g`
            // and `p` is written before it is read.
            for r in 0..STEP * th {
                let row = (r < band.len()).then(|| &plane[(band.start + r) * wo..][..wo]);
                split_row(row, 0, &mut g[4 * (r % 4) * t + (r / 4) * tw..], tw, t);
            }
            for k in 0..4 {
                let g_r = |r: usize| &g[(4 * r + k) * t..][..t];
                let [o0, o1, o2, o3, o4, o5] = six_strided(p, k, t);
                a_expand(t, (g_r(0), g_r(1), g_r(2), g_r(3)), o0, o1, o2, o3, o4, o5);
            }
            for i in 0..6 {
                let p_k = |k: usize| &p[(4 * i + k) * t..][..t];
                let [o0, o1, o2, o3, o4, o5] =
                    pick_six(rows, std::array::from_fn(|j| 6 * i + j), 0..t);
                let y = (p_k(0), p_k(1), p_k(2), p_k(3));
                a_expand(t, y, o0, o1, o2, o3, o4, o5);
            }
        },
    );
}

/// The slices `at` of six distinct matrices `rows[idx[·]]`.
#[inline(always)]
fn pick_six<'a>(
    rows: &'a mut [&mut [f32]],
    idx: [usize; 6],
    at: Range<usize>,
) -> [&'a mut [f32]; 6] {
    let Ok([a, b, c, d, e, f]) = rows.get_disjoint_mut(idx) else {
        unreachable!("six distinct matrices")
    };
    [
        &mut a[at.clone()],
        &mut b[at.clone()],
        &mut c[at.clone()],
        &mut d[at.clone()],
        &mut e[at.clone()],
        &mut f[at],
    ]
}

/// Slices `(4i + k)·n …+n` of `v` for `i < 6`: row `i` of `A dy`, phase `k`.
#[inline(always)]
fn six_strided(v: &mut [f32], k: usize, n: usize) -> [&mut [f32]; 6] {
    let mut picked = v.chunks_exact_mut(n).skip(k).step_by(4);
    let mut next = || picked.next().expect("six rows");
    let (a, b, c) = (next(), next(), next());
    let (d, e, f) = (next(), next(), next());
    [a, b, c, d, e, f]
}

/// `o[i][t] = Σ_k A[i][k] y[k][t]` for `t < n` (`A = (Aᵀ)ᵀ`, 6×4): four values of a
/// block's row or column expanded to six, each slice its own argument as in
/// [`b_transpose`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn a_expand(
    n: usize,
    (y0, y1, y2, y3): (&[f32], &[f32], &[f32], &[f32]),
    o0: &mut [f32],
    o1: &mut [f32],
    o2: &mut [f32],
    o3: &mut [f32],
    o4: &mut [f32],
    o5: &mut [f32],
) {
    let (y0, y1, y2, y3) = (&y0[..n], &y1[..n], &y2[..n], &y3[..n]);
    let (o0, o1, o2, o3, o4, o5) = (
        &mut o0[..n],
        &mut o1[..n],
        &mut o2[..n],
        &mut o3[..n],
        &mut o4[..n],
        &mut o5[..n],
    );
    for t in 0..n {
        let (a, b, c, d) = (y0[t], y1[t], y2[t], y3[t]);
        let (even, odd) = (a + c, b + d);
        let (even4, odd2) = (a + 4.0 * c, 2.0 * b + 8.0 * d);
        o0[t] = a;
        o1[t] = even + odd;
        o2[t] = even - odd;
        o3[t] = even4 + odd2;
        o4[t] = even4 - odd2;
        o5[t] = d;
    }
}

/// Six slices read along a row of tiles.
type Six<'a> = (
    &'a [f32],
    &'a [f32],
    &'a [f32],
    &'a [f32],
    &'a [f32],
    &'a [f32],
);

/// `o[i][t] = Σ_k Bᵀ[i][k] d[k][t]` for `t < n`: `Bᵀ` on six values (a row or a column of
/// each tile) along a row of tiles. Each slice is its own argument: the compiler then
/// knows that they do not overlap and vectorises the loop (as arrays of slices, it did
/// not).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn b_transpose(
    n: usize,
    (d0, d1, d2, d3, d4, d5): Six,
    o0: &mut [f32],
    o1: &mut [f32],
    o2: &mut [f32],
    o3: &mut [f32],
    o4: &mut [f32],
    o5: &mut [f32],
) {
    let (d0, d1, d2, d3, d4, d5) = (&d0[..n], &d1[..n], &d2[..n], &d3[..n], &d4[..n], &d5[..n]);
    let (o0, o1, o2, o3, o4, o5) = (
        &mut o0[..n],
        &mut o1[..n],
        &mut o2[..n],
        &mut o3[..n],
        &mut o4[..n],
        &mut o5[..n],
    );
    for t in 0..n {
        let (a, b, c, d, e, f) = (d0[t], d1[t], d2[t], d3[t], d4[t], d5[t]);
        o0[t] = 4.0 * a - 5.0 * c + e;
        o1[t] = (d + e) - 4.0 * (b + c);
        o2[t] = (e - d) + 4.0 * (b - c);
        o3[t] = (e - c) + 2.0 * (d - b);
        o4[t] = (e - c) - 2.0 * (d - b);
        o5[t] = 4.0 * b - 5.0 * d + f;
    }
}

/// Six consecutive slices of `n` from `v`.
#[inline(always)]
fn six(v: &mut [f32], n: usize) -> [&mut [f32]; 6] {
    let (a, v) = v.split_at_mut(n);
    let (b, v) = v.split_at_mut(n);
    let (c, v) = v.split_at_mut(n);
    let (d, v) = v.split_at_mut(n);
    let (e, f) = v.split_at_mut(n);
    [a, b, c, d, e, &mut f[..n]]
}

/// Two buffers that the transforms of one channel after another reuse (allocated and
/// zeroed per channel, they were 2 % of a residual network's batch-1 inference). Each
/// transform writes every value of them that it reads.
#[derive(Default)]
struct Work(Vec<f32>, Vec<f32>);

impl Work {
    /// The two buffers, grown to at least `a` and `b` values, cut to those lengths.
    fn lend(&mut self, a: usize, b: usize) -> (&mut [f32], &mut [f32]) {
        for (v, len) in [(&mut self.0, a), (&mut self.1, b)] {
            if v.len() < len {
                v.resize(len, 0.0);
            }
        }
        (&mut self.0[..a], &mut self.1[..b])
    }
}

/// One channel's tiles for the output rows from `start` (a multiple of four): tile
/// `(ty, tx)` reads input rows `start + 4ty − p …+5` and columns `4tx − p …+5` (zero
/// outside the plane); its 36 transformed values go to `rows[ξ][ty·tw + tx]`.
fn transform_input(
    s: &Shape,
    plane: &[f32],
    start: usize,
    (th, tw): (usize, usize),
    rows: &mut [&mut [f32]],
    work: &mut Work,
) {
    let (n, t) = (tw + 1, th * tw);
    // An input row's columns by phase, `q[k][x] = x[4x + k − p]` (x ≤ tw). Then `d·B` of
    // every input row `r = 4y + k` of the band, its six values per tile `j` at
    // `h[k][j][y·tw + x]`: by phase of row, so that `Bᵀ` down the columns of all tile
    // rows at once reads rows `4y + k` (k < 4) and `4(y + 1) + k` (k < 2) as six
    // slices `th·tw` long (a row of tiles alone is 6 to 24 long at the residual
    // network's widths, mostly the scalar remainder of a 16-lane loop).
    // Of `h`, tile row `th` of phases 2 and 3 is neither written nor read.
    let len = (th + 1) * tw;
    let (q, h) = work.lend(4 * n, 4 * 6 * len);
    wide(
        #[inline(always)]
        || {
            for r in 0..4 * th + 2 {
                let row = s.input_row(plane, start + r);
                split_row(row, s.pad, q, n, n);
                let (q0, rest) = q.split_at(n);
                let (q1, rest) = rest.split_at(n);
                let (q2, q3) = rest.split_at(n);
                let at = (r / 4) * tw..(r / 4 + 1) * tw;
                let [o0, o1, o2, o3, o4, o5] = six(&mut h[(r % 4) * 6 * len..], len);
                let d = (q0, q1, q2, q3, &q0[1..], &q1[1..]);
                b_transpose(
                    tw,
                    d,
                    &mut o0[at.clone()],
                    &mut o1[at.clone()],
                    &mut o2[at.clone()],
                    &mut o3[at.clone()],
                    &mut o4[at.clone()],
                    &mut o5[at],
                );
            }
            let by_row = |k: usize, j: usize, y: usize| &h[(6 * k + j) * len + y * tw..][..t];
            for j in 0..6 {
                let d = (
                    by_row(0, j, 0),
                    by_row(1, j, 0),
                    by_row(2, j, 0),
                    by_row(3, j, 0),
                    by_row(0, j, 1),
                    by_row(1, j, 1),
                );
                let [o0, o1, o2, o3, o4, o5] =
                    pick_six(rows, std::array::from_fn(|i| 6 * i + j), 0..t);
                b_transpose(t, d, o0, o1, o2, o3, o4, o5);
            }
        },
    );
}

/// An input row (`None`: a padding row) by phase: `q[k·stride + t] = x[4t + k − p]` for
/// k < 4, t < n, zero outside the row.
#[inline(always)]
fn split_row(row: Option<&[f32]>, pad: usize, q: &mut [f32], n: usize, stride: usize) {
    let (q0, rest) = q.split_at_mut(stride);
    let (q1, rest) = rest.split_at_mut(stride);
    let (q2, q3) = rest.split_at_mut(stride);
    let (q0, q1, q2, q3) = (&mut q0[..n], &mut q1[..n], &mut q2[..n], &mut q3[..n]);
    let Some(row) = row else {
        for q in [q0, q1, q2, q3] {
            q.fill(0.0);
        }
        return;
    };
    let at = |col: usize| {
        col.checked_sub(pad)
            .and_then(|x| row.get(x))
            .copied()
            .unwrap_or(0.0)
    };
    // Inside: 4t − p ≥ 0 and 4t + 3 − p ≤ w − 1.
    let lo = pad.div_ceil(4).min(n);
    let hi = ((row.len() + pad) / 4).clamp(lo, n);
    for t in (0..lo).chain(hi..n) {
        q0[t] = at(4 * t);
        q1[t] = at(4 * t + 1);
        q2[t] = at(4 * t + 2);
        q3[t] = at(4 * t + 3);
    }
    // Slices of one length and indices the compiler can see are in bounds: the loop
    // then vectorises as a de-interleave (indexing `q0[t]` over `lo..hi` left it scalar,
    // a tenth of a residual network's training step).
    let m = hi - lo;
    let quads = &row[4 * lo - pad..][..4 * m];
    let (q0, q1, q2, q3) = (
        &mut q0[lo..hi],
        &mut q1[lo..hi],
        &mut q2[lo..hi],
        &mut q3[lo..hi],
    );
    for t in 0..m {
        q0[t] = quads[4 * t];
        q1[t] = quads[4 * t + 1];
        q2[t] = quads[4 * t + 2];
        q3[t] = quads[4 * t + 3];
    }
}

/// `o[i][t] = post(bias + Σ_k Aᵀ[i][k] m[k][t])` for `t < n`: `Aᵀ` on six values along a
/// row of tiles, each slice its own argument as in [`b_transpose`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn a_transpose(
    n: usize,
    (m0, m1, m2, m3, m4, m5): Six,
    bias: f32,
    post: impl Fn(f32) -> f32,
    o0: &mut [f32],
    o1: &mut [f32],
    o2: &mut [f32],
    o3: &mut [f32],
) {
    let (m0, m1, m2, m3, m4, m5) = (&m0[..n], &m1[..n], &m2[..n], &m3[..n], &m4[..n], &m5[..n]);
    let (o0, o1, o2, o3) = (&mut o0[..n], &mut o1[..n], &mut o2[..n], &mut o3[..n]);
    for t in 0..n {
        let (p1, n1) = (m1[t] + m2[t], m1[t] - m2[t]);
        let (p3, n3) = (m3[t] + m4[t], m3[t] - m4[t]);
        o0[t] = post(bias + (m0[t] + p1 + p3));
        o1[t] = post(bias + (n1 + 2.0 * n3));
        o2[t] = post(bias + (p1 + 4.0 * p3));
        o3[t] = post(bias + (n1 + 8.0 * n3 + m5[t]));
    }
}

/// One output channel's blocks `post(Aᵀ M A + bias)` into `y` (`rows` rows of `wo` at
/// stride `wo`), from `m[ξ][t]`; a block's rows or columns past the band are dropped.
fn transform_output(
    m: &[&[f32]; TILE],
    bias: f32,
    post: impl Fn(f32) -> f32 + Copy,
    (rows, wo, tw): (usize, usize, usize),
    y: &mut [f32],
    work: &mut Work,
) {
    // `s[i][j]`: row i of `Aᵀ M` for every tile of the band at once (`th·tw` long, as
    // the input transform's second pass); then a block row by phase of column,
    // interleaved into the output row (the last block cut to `wo`).
    let t = rows.div_ceil(STEP) * tw;
    let (s, phase) = work.lend(4 * 6 * t, 4 * tw);
    wide(
        #[inline(always)]
        || {
            for j in 0..6 {
                let m_k = |k: usize| &m[6 * k + j][..t];
                let col = (m_k(0), m_k(1), m_k(2), m_k(3), m_k(4), m_k(5));
                // Rows `6i + j` of `s`, i < 4.
                let mut rows_j = s.chunks_exact_mut(t).skip(j).step_by(6);
                let mut next = || rows_j.next().expect("four rows");
                let (s0, s1, s2, s3) = (next(), next(), next(), next());
                a_transpose(t, col, 0.0, |v| v, s0, s1, s2, s3);
            }
            for (ty, out) in y[..rows * wo].chunks_mut(STEP * wo).enumerate() {
                let at = ty * tw..(ty + 1) * tw;
                for (i, out_i) in out.chunks_mut(wo).enumerate() {
                    let s_j = |j: usize| &s[(6 * i + j) * t..][at.clone()];
                    let src = (s_j(0), s_j(1), s_j(2), s_j(3), s_j(4), s_j(5));
                    let (p0, rest) = phase.split_at_mut(tw);
                    let (p1, rest) = rest.split_at_mut(tw);
                    let (p2, p3) = rest.split_at_mut(tw);
                    a_transpose(tw, src, bias, post, p0, p1, p2, p3);
                    let (p0, p1, p2, p3) = (&p0[..tw], &p1[..tw], &p2[..tw], &p3[..tw]);
                    let mut blocks = out_i.chunks_exact_mut(STEP);
                    for (x, dst) in (&mut blocks).enumerate() {
                        dst[0] = p0[x];
                        dst[1] = p1[x];
                        dst[2] = p2[x];
                        dst[3] = p3[x];
                    }
                    let last = wo / STEP;
                    for (d, p) in blocks.into_remainder().iter_mut().zip([p0, p1, p2]) {
                        *d = p[last];
                    }
                }
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `len` values drawn from [−1, 1).
    pub(super) fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// `bias + Σ_c w[o, c] ⋆ x[c]` by its definition, in f64: `(O, Ho, Wo)`.
    pub(super) fn definition(s: &Shape, w: &[f32], bias: &[f32], x: &[f32]) -> Vec<f64> {
        let (ho, wo) = (s.ho(), s.wo());
        let mut y = vec![0.0f64; s.o * ho * wo];
        for o in 0..s.o {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut sum = bias[o] as f64;
                    for c in 0..s.c {
                        for ki in 0..3 {
                            for kj in 0..3 {
                                let (iy, ix) = (
                                    (oy + ki) as isize - s.pad as isize,
                                    (ox + kj) as isize - s.pad as isize,
                                );
                                if (0..s.h as isize).contains(&iy)
                                    && (0..s.w as isize).contains(&ix)
                                {
                                    sum += w[((o * s.c + c) * 3 + ki) * 3 + kj] as f64
                                        * x[(c * s.h + iy as usize) * s.w + ix as usize] as f64;
                                }
                            }
                        }
                    }
                    y[(o * ho + oy) * wo + ox] = sum;
                }
            }
        }
        y
    }

    /// The weights' transform, the outputs of several images and the scratch they take,
    /// of one form that computes [`images`].
    pub(super) type ImagesForm = (
        fn(&[f32], usize, usize) -> Vec<f32>,
        fn(&Shape, &[f32], (Option<&[f32]>, &[Epilogue]), &[f32], &mut [&mut [f32]], &mut Vec<f32>),
        fn(&Shape, usize) -> usize,
    );

    /// Every case `(c, o, h, w, pad, images)` of `form` with random weights, bias and
    /// inputs and each kind of point-wise chain: every output within rounding of the f64
    /// definition ([`assert_within_rounding`]), from a scratch longer than needed and not
    /// zero (every value read is written).
    pub(super) fn images_equal_the_definition(
        seed: u64,
        cases: &[(usize, usize, usize, usize, usize, usize)],
        (transform, images, scratch_len): ImagesForm,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for &(c, o, h, w, pad, n) in cases {
            let s = Shape { c, o, h, w, pad };
            let wt = random(&mut rng, o * c * 9);
            let u = transform(&wt, o, c);
            let bias = random(&mut rng, o);
            let x = random(&mut rng, n * c * h * w);
            let abs_w: Vec<f32> = wt.iter().map(|v| v.abs()).collect();
            let (want, scale): (Vec<f64>, Vec<f64>) = x
                .chunks(c * h * w)
                .flat_map(|x_img| {
                    let abs_x: Vec<f32> = x_img.iter().map(|v| v.abs()).collect();
                    let want = definition(&s, &wt, &bias, x_img);
                    let scale = definition(&s, &abs_w, &vec![1.0; o], &abs_x);
                    want.into_iter().zip(scale)
                })
                .unzip();
            let plane = s.ho() * s.wo();
            for chain in chains(&mut rng, o) {
                let mut got = vec![f32::NAN; n * o * plane];
                let mut outs: Vec<&mut [f32]> = got.chunks_mut(plane).collect();
                let mut scratch = vec![f32::NAN; scratch_len(&s, n) + 7];
                images(&s, &u, (Some(&bias), &chain), &x, &mut outs, &mut scratch);
                let what = format!("{s:?}, {n} images, {chain:?}");
                assert_within_rounding(&got, (&want, &scale), &chain, (plane, o), &what);
            }
        }
    }

    /// Each kind of point-wise chain for `o` channels: none, ReLU, PReLU, an affine map,
    /// and the map followed by each rectifier.
    pub(super) fn chains(rng: &mut ChaCha8Rng, o: usize) -> [Vec<Epilogue>; 6] {
        let affine = Epilogue::ChannelAffine {
            scale: random(rng, o),
            shift: random(rng, o),
        };
        let prelu = Epilogue::Prelu {
            slope: random(rng, o),
        };
        [
            vec![],
            vec![Epilogue::Relu],
            vec![prelu.clone()],
            vec![affine.clone()],
            vec![affine.clone(), Epilogue::Relu],
            vec![affine, prelu],
        ]
    }

    /// Every value of `got` within `1e-4` of the f64 definition `want` with `chain`
    /// applied, relative to `scale` (`Σ |w|·|x|`, the scale its rounding works at) times
    /// the chain's scale; value `i` is of output channel `(i / plane) % o`.
    pub(super) fn assert_within_rounding(
        got: &[f32],
        (want, scale): (&[f64], &[f64]),
        chain: &[Epilogue],
        (plane, o): (usize, usize),
        what: &str,
    ) {
        assert_eq!(got.len(), want.len());
        for (i, (g, (want, scale))) in got.iter().zip(want.iter().zip(scale)).enumerate() {
            let (affine, rectify) = epilogue::pointwise(chain, (i / plane) % o);
            let (a, b) = affine.map_or((1.0, 0.0), |(a, b)| (a as f64, b as f64));
            let want = epilogue::rectified(rectify, a * want + b);
            assert!(
                (*g as f64 - want).abs() <= 1e-4 * a.abs() * scale,
                "{what} at {i}: {g} vs {want}"
            );
        }
    }

    /// F(6×6, 3×3) takes a map only where its tiles save a quarter of the products, and
    /// only in the eight-channel form (machines without the engine's AVX-512 kernel).
    #[test]
    fn f6x6_takes_the_maps_where_it_saves_a_quarter_of_the_products() {
        let at = |h, w, pad| Shape {
            c: 64,
            o: 64,
            h,
            w,
            pad,
        };
        // 17×17: 9 tiles of 64 against 25 of 36.
        assert_eq!(by_six(&at(17, 17, 1)), by_lanes(&at(17, 17, 1)));
        // 14×12 (6 of 64 against 12 of 36), 9×9 (4 of 64 against 9 of 36), 8×8, 3×3: not.
        for (h, w) in [(14, 12), (9, 9), (8, 8), (3, 3)] {
            assert!(!by_six(&at(h, w, 1)), "{h}×{w}");
        }
        // Channels that do not fill the eight lanes: not.
        assert!(!by_six(&Shape {
            c: 12,
            ..at(17, 17, 1)
        }));
    }

    /// Bands of 4 and 8 rows (the last one short) and of all rows, serial and parallel,
    /// on maps whose sides are not multiples of four, at paddings 0, 1 and 2, with each
    /// kind of point-wise chain: every output within `1e-4` of the f64 definition (the
    /// chain applied to it), relative to the sum of the magnitudes it adds
    /// (`Σ |w|·|x|`, times the chain's scale), the scale its rounding works at.
    #[test]
    fn bands_equal_the_definition() {
        let mut rng = ChaCha8Rng::seed_from_u64(41);
        for (c, o, h, w, pad) in [
            (3, 5, 9, 11, 1),
            (4, 2, 6, 6, 0),
            (2, 3, 7, 5, 2),
            (5, 4, 13, 10, 1),
            (1, 1, 3, 3, 1),
        ] {
            let s = Shape { c, o, h, w, pad };
            let wt: Vec<f32> = (0..o * c * 9)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let bias: Vec<f32> = (0..o).map(|_| rng.random_range(-1.0..1.0)).collect();
            let x: Vec<f32> = (0..c * h * w)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            let abs_w: Vec<f32> = wt.iter().map(|v| v.abs()).collect();
            let abs_x: Vec<f32> = x.iter().map(|v| v.abs()).collect();
            let want = definition(&s, &wt, &bias, &x);
            let scale = definition(&s, &abs_w, &vec![1.0; o], &abs_x);
            let u = weights(&wt, o, c);
            let (ho, wo) = (s.ho(), s.wo());
            let chains = chains(&mut rng, o);
            for (step, chain) in [4, 8, ho.next_multiple_of(4)]
                .into_iter()
                .flat_map(|step| chains.iter().map(move |chain| (step, chain)))
            {
                for parallel in [false, true] {
                    let mut got = vec![f32::NAN; o * ho * wo];
                    let mut scratch = Vec::new();
                    for start in (0..ho).step_by(step) {
                        let rows = start..(start + step).min(ho);
                        let mut outs =
                            strided_rows(&mut got[start * wo..], ho * wo, rows.len() * wo);
                        let post = (Some(&bias[..]), &chain[..]);
                        band(&s, &u, post, &x, rows, &mut outs, &mut scratch, parallel);
                    }
                    let what = format!("{s:?} step {step} parallel {parallel} {chain:?}");
                    assert_within_rounding(&got, (&want, &scale), chain, (ho * wo, o), &what);
                }
            }
        }
    }

    #[test]
    fn an_image_gives_the_same_values_whatever_its_band_budget() {
        // `conv2d` sizes the outputs' bands by the machine's cache: four rows a band,
        // and the whole map as one band, must agree.
        let mut rng = ChaCha8Rng::seed_from_u64(47);
        for (c, o, h, w, pad) in [(16, 8, 22, 13, 1), (5, 3, 17, 9, 0)] {
            let s = Shape { c, o, h, w, pad };
            let u = weights(&random(&mut rng, o * c * 9), o, c);
            let x = random(&mut rng, c * h * w);
            let plane = s.ho() * s.wo();
            let run = |bytes: usize| {
                let mut out = vec![f32::NAN; o * plane];
                image(&s, &u, &x, &mut out, &mut Vec::new(), bytes);
                out
            };
            let (narrow, whole) = (run(1), run(usize::MAX));
            assert_eq!(band_rows(&s, 1), STEP);
            assert_eq!(band_rows(&s, usize::MAX), s.ho());
            if unpacked::own_kernel() {
                // The engine's kernel sums each output over the channels in one order.
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&narrow), bits(&whole), "{s:?}");
            } else {
                // The `gemm` crate may block a product of another width differently.
                for (a, b) in narrow.iter().zip(&whole) {
                    assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{s:?}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn images_at_once_equal_each_image_by_itself() {
        // `band` over each whole map is checked against the definition above.
        let mut rng = ChaCha8Rng::seed_from_u64(43);
        for (c, o, h, w, pad, n) in [
            (3, 5, 9, 11, 1, 3),
            (5, 4, 13, 10, 1, 2),
            (2, 3, 7, 5, 2, 4),
            (4, 2, 6, 6, 0, 1),
        ] {
            let s = Shape { c, o, h, w, pad };
            let u = weights(&random(&mut rng, o * c * 9), o, c);
            let bias = random(&mut rng, o);
            let x = random(&mut rng, n * c * h * w);
            let plane = s.ho() * s.wo();
            let affine = Epilogue::ChannelAffine {
                scale: random(&mut rng, o),
                shift: random(&mut rng, o),
            };
            for chain in [vec![], vec![affine, Epilogue::Relu]] {
                let post = (Some(&bias[..]), &chain[..]);
                let mut want = vec![f32::NAN; n * o * plane];
                for (x_img, y_img) in x.chunks(c * h * w).zip(want.chunks_mut(o * plane)) {
                    let mut outs = strided_rows(y_img, plane, plane);
                    band(
                        &s,
                        &u,
                        post,
                        x_img,
                        0..s.ho(),
                        &mut outs,
                        &mut Vec::new(),
                        false,
                    );
                }
                let mut got = vec![f32::NAN; n * o * plane];
                let mut outs: Vec<&mut [f32]> = got.chunks_mut(plane).collect();
                // A scratch longer than needed and not zero: every value read is written.
                let mut scratch = vec![f32::NAN; images_scratch_len(&s, n) + 7];
                images(&s, &u, post, &x, &mut outs, &mut scratch);
                // The same sums; a product kernel may block a wider product differently.
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert!(
                        (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                        "{s:?}, {n} images, {chain:?}, at {i}: {g} vs {w}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_input_gradient_weights_carry_dy_back_as_the_transposed_convolution() {
        // ⟨conv(x), dy⟩ = ⟨x, conv'(dy)⟩ for the adjoint conv' at padding 2 − p.
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut random = |len: usize| random(&mut rng, len);
        for pad in [0, 1, 2] {
            let s = Shape {
                c: 3,
                o: 4,
                h: 6,
                w: 7,
                pad,
            };
            let (ho, wo) = (s.ho(), s.wo());
            let (w, x, dy) = (
                random(s.o * s.c * 9),
                random(s.c * s.h * s.w),
                random(s.o * ho * wo),
            );
            let y = definition(&s, &w, &vec![0.0; s.o], &x);
            let back = Shape {
                c: s.o,
                o: s.c,
                h: ho,
                w: wo,
                pad: 2 - pad,
            };
            assert_eq!((back.ho(), back.wo()), (s.h, s.w));
            let mut dx = vec![0.0f32; s.c * s.h * s.w];
            let u = input_grad_weights(&w, s.o, s.c);
            image(&back, &u, &dy, &mut dx, &mut Vec::new(), 1 << 20);
            let lhs: f64 = y.iter().zip(&dy).map(|(a, b)| a * *b as f64).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
                "pad {pad}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn the_weight_gradient_summed_over_bands_equals_its_definition() {
        // dW[o, c, ki, kj] = Σ dy[o, y, x] · x[c, y + ki − p, x + kj − p], from bands of
        // several heights (a last band short, part blocks at the right edge), added to
        // what dW holds.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut random = |len: usize| random(&mut rng, len);
        for ((c, o, h, w, pad), step) in [
            ((3, 4, 7, 9, 1), 4),
            ((2, 3, 10, 6, 0), 8),
            ((5, 2, 5, 5, 2), 100),
        ] {
            let s = Shape { c, o, h, w, pad };
            let (ho, wo) = (s.ho(), s.wo());
            let (x, dy) = (random(c * h * w), random(o * ho * wo));
            let mut want = vec![0.0f64; o * c * 9];
            let mut scale = vec![0.0f64; o * c * 9];
            for (i, (v, sc)) in want.iter_mut().zip(&mut scale).enumerate() {
                let (oi, ci, ki, kj) = (i / (9 * c), i / 9 % c, i / 3 % 3, i % 3);
                for oy in 0..ho {
                    for ox in 0..wo {
                        let (iy, ix) = (
                            (oy + ki) as isize - pad as isize,
                            (ox + kj) as isize - pad as isize,
                        );
                        if (0..h as isize).contains(&iy) && (0..w as isize).contains(&ix) {
                            let term = dy[(oi * ho + oy) * wo + ox] as f64
                                * x[(ci * h + iy as usize) * w + ix as usize] as f64;
                            *v += term;
                            *sc += term.abs();
                        }
                    }
                }
            }
            let mut du = vec![0.0f32; TILE * o * c];
            let mut scratch = Vec::new();
            for start in (0..ho).step_by(step) {
                let rows = start..(start + step).min(ho);
                add_weight_grad_band(&s, &x, &dy, rows, &mut du, &mut scratch);
            }
            let mut dw = vec![1.0f32; o * c * 9];
            add_weight_grad(&du, o, c, &mut dw);
            for (i, ((&got, &want), &scale)) in dw.iter().zip(&want).zip(&scale).enumerate() {
                assert!(
                    (got as f64 - 1.0 - want).abs() <= 1e-4 * (1.0 + scale),
                    "{s:?} [{i}]: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_output_gradient_transform_reads_nothing_it_did_not_write() {
        // Its buffers come from the previous channel (or transform): filled with NaN
        // first, the result must be that of fresh buffers, for a band of every height
        // mod 4 (rows past the band are zero) and a width not a multiple of 4.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (ho, wo) = (11, 10);
        let plane = random(&mut rng, ho * wo);
        let tw = wo.div_ceil(STEP);
        for band in [0..4, 4..7, 8..10, 0..11, 10..11] {
            let t = band.len().div_ceil(STEP) * tw;
            let run = |work: &mut Work| {
                let mut out = vec![0.0f32; TILE * t];
                let mut rows: Vec<&mut [f32]> = out.chunks_mut(t).collect();
                transform_output_grad(&plane, wo, band.clone(), tw, &mut rows, work);
                out
            };
            let fresh = run(&mut Work::default());
            let mut stale = Work::default();
            let (a, b) = stale.lend(16 * 3 * tw + 7, 24 * 3 * tw + 7);
            a.fill(f32::NAN);
            b.fill(f32::NAN);
            assert_eq!(run(&mut stale), fresh, "band {band:?}");
            assert!(fresh.iter().all(|v| v.is_finite()));
        }
    }
}
