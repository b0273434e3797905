//! Winograd's F(4×4, 3×3) (Lavin and Gray 2016, interpolation points 0, ±1, ±2): a 3×3
//! convolution at stride 1 computed a 4×4 block of outputs at a time from a 6×6 tile of
//! its input, in 36 multiplications per input channel where the direct form needs 144
//! and F(2×2, 3×3) ([`super::winograd`]) 64.
//!
//! The same steps as [`super::winograd::band`]: the band's tiles transformed,
//! `V = Bᵀ d B`, into 36 matrices `V[ξ] (C, T)`; 36 products `M[ξ] = U[ξ] · V[ξ]` with
//! the transformed weights `U = G g Gᵀ`; each output block `Aᵀ M A` plus the bias. With
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
//! larger than F(2×2, 3×3)'s (the transforms scale values by up to 8 and 25 before they
//! cancel); the tests bound it against the definition in f64.

use super::gemm::{Gemm, Op};
use super::tensor::wide;
use super::winograd::{Shape, rows_by_channel};
use rayon::prelude::*;
use std::ops::Range;

/// Matrices of the transform: a tile's 6×6 values `ξ = 6·i + j`.
pub const TILE: usize = 36;

/// Outputs per tile side.
pub const STEP: usize = 4;

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
/// wᵀ (9, O·C)`: a forward at batch 1 transforms its weights on every call, and a loop
/// over the kernels, each scattering its 36 values, took a fifth of a residual
/// network's inference there.
pub fn weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    assert_eq!(w.len(), o * c * 9, "winograd4: weights are (O, C, 3, 3)");
    let mut kron = [0.0f32; TILE * 9];
    for (xi, row) in kron.chunks_exact_mut(9).enumerate() {
        for (tap, v) in row.iter_mut().enumerate() {
            *v = G[xi / 6][tap / 3] * G[xi % 6][tap % 3];
        }
    }
    let mut u = vec![0.0f32; TILE * o * c];
    Gemm::new(TILE, o * c, 9)
        .ops(Op::N, Op::T)
        .run(&kron, w, &mut u);
    u
}

/// The transformed weights of the convolution that carries `dE/dy (O, H', W')` back to
/// `dE/dx (C, H, W)` for a 3×3 convolution at stride 1 and padding `p`: the kernel
/// rotated by 180° with input and output channels swapped, `w'[c, o] = rot180(w[o, c])`,
/// at padding `2 − p`. 36 matrices `(C, O)`.
pub fn input_grad_weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    assert_eq!(w.len(), o * c * 9, "winograd4: weights are (O, C, 3, 3)");
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

/// Output rows `band` (its start a multiple of four) of one image's convolution,
/// `out (O, |band|·W')` with row stride `ld`: `bias + Σ_c w[·, c] ⋆ x[c]` (`bias`
/// `None`: no bias), from the transformed weights `u` ([`weights`]) and the image
/// `x (C, H, W)`. `scratch` grows to [`scratch_len`]. With `parallel` the transforms
/// and the 36 products are shared among rayon's threads.
#[allow(clippy::too_many_arguments)]
pub fn band(
    s: &Shape,
    u: &[f32],
    bias: Option<&[f32]>,
    x: &[f32],
    band: Range<usize>,
    out: &mut [f32],
    ld: usize,
    scratch: &mut Vec<f32>,
    parallel: bool,
) {
    let (c, o, wo) = (s.c, s.o, s.wo());
    assert!(
        band.start.is_multiple_of(STEP),
        "winograd4: a band starts on a multiple of four"
    );
    assert!(band.end <= s.ho(), "winograd4: band past the output");
    assert_eq!(u.len(), TILE * o * c, "winograd4: transformed weights");
    assert_eq!(x.len(), c * s.h * s.w, "winograd4: input");
    if band.is_empty() || wo == 0 {
        return;
    }
    let (th, tw) = (band.len().div_ceil(STEP), wo.div_ceil(STEP));
    let t = th * tw;
    if scratch.len() < scratch_len(s, band.len()) {
        scratch.resize(scratch_len(s, band.len()), 0.0);
    }
    let (v, rest) = scratch.split_at_mut(TILE * c * t);
    let m = &mut rest[..TILE * o * t];

    let mut v_rows = rows_by_channel(v, c, t);
    let input = |(ch, rows): (usize, &mut Vec<&mut [f32]>)| {
        let plane = &x[ch * s.h * s.w..(ch + 1) * s.h * s.w];
        transform_input(s, plane, band.start, (th, tw), rows);
    };
    if parallel {
        v_rows.par_iter_mut().enumerate().for_each(input);
    } else {
        v_rows.iter_mut().enumerate().for_each(input);
    }
    drop(v_rows);

    let product = |(xi, m_xi): (usize, &mut [f32])| {
        Gemm::new(o, t, c).run(
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
    let output = |(oc, y): (usize, &mut [f32])| {
        let b = bias.map_or(0.0, |b| b[oc]);
        let m_o: [&[f32]; TILE] = std::array::from_fn(|xi| &m[(xi * o + oc) * t..][..t]);
        transform_output(&m_o, b, (rows, wo, tw), y);
    };
    let need = (o - 1) * ld + rows * wo;
    assert!(out.len() >= need && ld >= rows * wo, "winograd4: output");
    if parallel {
        out[..need].par_chunks_mut(ld).enumerate().for_each(output);
    } else {
        out[..need].chunks_mut(ld).enumerate().for_each(output);
    }
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
        band(
            s,
            u,
            None,
            x,
            rows,
            &mut out[start * wo..],
            ho * wo,
            scratch,
            false,
        );
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

/// One channel's tiles for the output rows from `start` (a multiple of four): tile
/// `(ty, tx)` reads input rows `start + 4ty − p …+5` and columns `4tx − p …+5` (zero
/// outside the plane); its 36 transformed values go to `rows[ξ][ty·tw + tx]`.
fn transform_input(
    s: &Shape,
    plane: &[f32],
    start: usize,
    (th, tw): (usize, usize),
    rows: &mut [&mut [f32]],
) {
    let n = tw + 1;
    // An input row's columns by phase, `q[k][t] = x[4t + k − p]` (t ≤ tw); and for each
    // of eight slots, the six values `d·B` of an input row, one per tile. Input row
    // `start − p + r` sits in slot `r mod 8`, so a tile row finds the two rows it shares
    // with the one above already done.
    let mut q = vec![0.0f32; 4 * n];
    let mut a = vec![0.0f32; 8 * 6 * tw];
    wide(
        #[inline(always)]
        || {
            for ty in 0..th {
                let first = if ty == 0 { 0 } else { 2 };
                for r in 4 * ty + first..4 * ty + 6 {
                    let row = s.input_row(plane, start + r);
                    split_row(row, s.pad, &mut q, n);
                    let (q0, rest) = q.split_at(n);
                    let (q1, rest) = rest.split_at(n);
                    let (q2, q3) = rest.split_at(n);
                    let [o0, o1, o2, o3, o4, o5] = six(&mut a[(r % 8) * 6 * tw..], tw);
                    let d = (q0, q1, q2, q3, &q0[1..], &q1[1..]);
                    b_transpose(tw, d, o0, o1, o2, o3, o4, o5);
                }
                let at = ty * tw..(ty + 1) * tw;
                for j in 0..6 {
                    let a_k = |k: usize| &a[(6 * ((4 * ty + k) % 8) + j) * tw..][..tw];
                    let d = (a_k(0), a_k(1), a_k(2), a_k(3), a_k(4), a_k(5));
                    let Ok([o0, o1, o2, o3, o4, o5]) =
                        rows.get_disjoint_mut([j, 6 + j, 12 + j, 18 + j, 24 + j, 30 + j])
                    else {
                        unreachable!("36 distinct matrices")
                    };
                    b_transpose(
                        tw,
                        d,
                        &mut o0[at.clone()],
                        &mut o1[at.clone()],
                        &mut o2[at.clone()],
                        &mut o3[at.clone()],
                        &mut o4[at.clone()],
                        &mut o5[at.clone()],
                    );
                }
            }
        },
    );
}

/// An input row (`None`: a padding row) by phase: `q[k·n + t] = x[4t + k − p]` for
/// k < 4, t < n, zero outside the row.
#[inline(always)]
fn split_row(row: Option<&[f32]>, pad: usize, q: &mut [f32], n: usize) {
    let Some(row) = row else {
        q.fill(0.0);
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
        for k in 0..4 {
            q[k * n + t] = at(4 * t + k);
        }
    }
    let (q0, rest) = q.split_at_mut(n);
    let (q1, rest) = rest.split_at_mut(n);
    let (q2, q3) = rest.split_at_mut(n);
    let quads = row[4 * lo - pad..].chunks_exact(4);
    for (t, quad) in (lo..hi).zip(quads) {
        q0[t] = quad[0];
        q1[t] = quad[1];
        q2[t] = quad[2];
        q3[t] = quad[3];
    }
}

/// `o[i][t] = bias + Σ_k Aᵀ[i][k] m[k][t]` for `t < n`: `Aᵀ` on six values along a row
/// of tiles, each slice its own argument as in [`b_transpose`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn a_transpose(
    n: usize,
    (m0, m1, m2, m3, m4, m5): Six,
    bias: f32,
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
        o0[t] = bias + (m0[t] + p1 + p3);
        o1[t] = bias + (n1 + 2.0 * n3);
        o2[t] = bias + (p1 + 4.0 * p3);
        o3[t] = bias + (n1 + 8.0 * n3 + m5[t]);
    }
}

/// One output channel's blocks `Aᵀ M A + bias` into `y` (`rows` rows of `wo` at stride
/// `wo`), from `m[ξ][t]`; a block's rows or columns past the band are dropped.
fn transform_output(
    m: &[&[f32]; TILE],
    bias: f32,
    (rows, wo, tw): (usize, usize, usize),
    y: &mut [f32],
) {
    // `s[i][j]`: row i of `Aᵀ M`, one value per tile; then a block row by phase of
    // column, and interleaved (whole blocks, before the cut to `wo`).
    let mut s = vec![0.0f32; 4 * 6 * tw];
    let mut phase = vec![0.0f32; 4 * tw];
    let mut row = vec![0.0f32; 4 * tw];
    wide(
        #[inline(always)]
        || {
            for (ty, out) in y[..rows * wo].chunks_mut(STEP * wo).enumerate() {
                let at = ty * tw..(ty + 1) * tw;
                for j in 0..6 {
                    let m_k = |k: usize| &m[6 * k + j][at.clone()];
                    let col = (m_k(0), m_k(1), m_k(2), m_k(3), m_k(4), m_k(5));
                    let (s0, rest) = s.split_at_mut(6 * tw);
                    let (s1, rest) = rest.split_at_mut(6 * tw);
                    let (s2, s3) = rest.split_at_mut(6 * tw);
                    let at_j = j * tw..(j + 1) * tw;
                    a_transpose(
                        tw,
                        col,
                        0.0,
                        &mut s0[at_j.clone()],
                        &mut s1[at_j.clone()],
                        &mut s2[at_j.clone()],
                        &mut s3[at_j],
                    );
                }
                for (s_i, out_i) in s.chunks_exact(6 * tw).zip(out.chunks_mut(wo)) {
                    let s_j = |j: usize| &s_i[j * tw..(j + 1) * tw];
                    let src = (s_j(0), s_j(1), s_j(2), s_j(3), s_j(4), s_j(5));
                    let (p0, rest) = phase.split_at_mut(tw);
                    let (p1, rest) = rest.split_at_mut(tw);
                    let (p2, p3) = rest.split_at_mut(tw);
                    a_transpose(tw, src, bias, p0, p1, p2, p3);
                    let (p0, p1, p2, p3) = (&p0[..tw], &p1[..tw], &p2[..tw], &p3[..tw]);
                    for (t, dst) in row.chunks_exact_mut(4).enumerate().take(tw) {
                        dst[0] = p0[t];
                        dst[1] = p1[t];
                        dst[2] = p2[t];
                        dst[3] = p3[t];
                    }
                    out_i.copy_from_slice(&row[..wo]);
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

    /// `bias + Σ_c w[o, c] ⋆ x[c]` by its definition, in f64: `(O, Ho, Wo)`.
    fn definition(s: &Shape, w: &[f32], bias: &[f32], x: &[f32]) -> Vec<f64> {
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

    /// Bands of 4 and 8 rows (the last one short) and of all rows, serial and parallel,
    /// on maps whose sides are not multiples of four, at paddings 0, 1 and 2: every
    /// output within `1e-4` of the f64 definition, relative to the sum of the
    /// magnitudes it adds (`Σ |w|·|x|`), the scale its rounding works at.
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
            for step in [4, 8, ho.next_multiple_of(4)] {
                for parallel in [false, true] {
                    let mut got = vec![f32::NAN; o * ho * wo];
                    let mut scratch = Vec::new();
                    for start in (0..ho).step_by(step) {
                        let rows = start..(start + step).min(ho);
                        band(
                            &s,
                            &u,
                            Some(&bias),
                            &x,
                            rows,
                            &mut got[start * wo..],
                            ho * wo,
                            &mut scratch,
                            parallel,
                        );
                    }
                    for (i, (g, (want, scale))) in
                        got.iter().zip(want.iter().zip(&scale)).enumerate()
                    {
                        assert!(
                            (*g as f64 - want).abs() <= 1e-4 * scale,
                            "{s:?} step {step} parallel {parallel} at {i}: {g} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_input_gradient_weights_carry_dy_back_as_the_transposed_convolution() {
        // ⟨conv(x), dy⟩ = ⟨x, conv'(dy)⟩ for the adjoint conv' at padding 2 − p.
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        let mut random =
            |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0..1.0)).collect() };
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
}
