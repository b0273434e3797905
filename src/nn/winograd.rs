//! Winograd's minimal filtering F(2×2, 3×3) (Lavin and Gray, "Fast Algorithms for
//! Convolutional Neural Networks", 2016) for the weight gradient of a 3×3 convolution at
//! stride 1; its forward and input gradient run as F(4×4, 3×3) ([`super::winograd4`]).
//! F(2×2, 3×3) computes a 2×2 block of outputs from a 4×4 tile of the input in 16
//! multiplications per input channel, where the direct form needs 36.
//!
//! The forward of this form would transform every tile of a band, `V = Bᵀ d B`, into 16
//! matrices `V[ξ] (C, T)` (one column per tile), multiply them by the transformed weights
//! `U[ξ] = G g Gᵀ (O, C)` and take each output block back as `Aᵀ M A`. The weight
//! gradient is the adjoint of these steps: sixteen products
//! `dU[ξ] = (A dy Aᵀ)[ξ] · V[ξ]ᵀ` of depth `T`, 2.25× fewer multiply-adds than
//! `dY · colsᵀ`, taken back by `Gᵀ dU G` ([`add_weight_grad_band`],
//! [`add_weight_grad`]). (The forward's F(4×4, 3×3) has no weight-gradient form yet.)
//! With
//!
//! ```text
//!      ⎡1  0 −1  0⎤        ⎡1    0    0 ⎤        ⎡1  1  1  0⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢½    ½    ½ ⎥   Aᵀ = ⎣0  1 −1 −1⎦
//!      ⎢0 −1  1  0⎥        ⎢½   −½    ½ ⎥
//!      ⎣0  1  0 −1⎦        ⎣0    0    1 ⎦
//! ```
//!
//! this is cross-correlation (PyTorch's convolution), exactly in real arithmetic; in
//! `f32` it rounds differently from the direct sum, by a few units in the last place of
//! the inputs' scale (the tests bound it).

use super::gemm::{Gemm, Op};
use super::tensor::wide;
use std::ops::Range;

/// Matrices of the transform: a tile's 4×4 values `ξ = 4·i + j`.
pub const TILE: usize = 16;

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

    /// Floats of scratch one band of `rows` output rows takes: its `V` and `M`.
    pub fn scratch_len(&self, rows: usize) -> usize {
        TILE * (self.c + self.o) * rows.div_ceil(2) * self.wo().div_ceil(2)
    }

    /// Output rows per band whose scratch stays within `bytes`: an even number, two at
    /// least, or the whole output where it fits.
    pub fn band_rows(&self, bytes: usize) -> usize {
        let pair = self.scratch_len(2) * std::mem::size_of::<f32>();
        (2 * (bytes / pair.max(1))).clamp(2, self.ho().max(2))
    }

    /// Row `r − p` of a `(H, W)` plane (`r` counts padded rows), `None` in the padding.
    pub(super) fn input_row<'a>(&self, plane: &'a [f32], r: usize) -> Option<&'a [f32]> {
        let y = r.checked_sub(self.pad).filter(|&y| y < self.h)?;
        Some(&plane[y * self.w..(y + 1) * self.w])
    }

    /// Panics unless `band` starts on an even row and ends inside the output.
    fn check_band(&self, band: &Range<usize>) {
        assert!(
            band.start.is_multiple_of(2),
            "winograd: a band starts on an even row"
        );
        assert!(band.end <= self.ho(), "winograd: band past the output");
    }

    /// `scratch`, grown to [`Shape::scratch_len`], lent as the band's input tiles
    /// `V (16, C, T)` and a block `(16, O, T)`; with the tiles' rows and columns
    /// `(th, tw)`.
    fn band_buffers<'a>(
        &self,
        band: &Range<usize>,
        scratch: &'a mut Vec<f32>,
    ) -> ((usize, usize), &'a mut [f32], &'a mut [f32]) {
        let (th, tw) = (band.len().div_ceil(2), self.wo().div_ceil(2));
        let t = th * tw;
        if scratch.len() < self.scratch_len(band.len()) {
            scratch.resize(self.scratch_len(band.len()), 0.0);
        }
        let (v, rest) = scratch.split_at_mut(TILE * self.c * t);
        ((th, tw), v, &mut rest[..TILE * self.o * t])
    }
}

/// Each of `channels` rows of the sixteen matrices `(16, channels, t)`, as the
/// channel's sixteen slices: what the transforms of one channel write. (For any number
/// of matrices `(k, channels, t)`: F(4×4, 3×3) has 36.)
pub(super) fn rows_by_channel(
    matrices: &mut [f32],
    channels: usize,
    t: usize,
) -> Vec<Vec<&mut [f32]>> {
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

/// `V[ξ] (C, T)` of the output rows from `start` (`th × tw` tiles): each channel's
/// tiles ([`transform_input`]) written into its rows of the sixteen matrices.
fn input_tiles(s: &Shape, x: &[f32], start: usize, (th, tw): (usize, usize), v: &mut [f32]) {
    for (ch, rows) in rows_by_channel(v, s.c, th * tw).iter_mut().enumerate() {
        let plane = &x[ch * s.h * s.w..(ch + 1) * s.h * s.w];
        transform_input(s, plane, start, (th, tw), rows);
    }
}

/// Adds one band's share of the weight gradient, in the transformed domain: for the
/// output rows `band` (its start even) of an image `x (C, H, W)` with upstream gradient
/// `dy (O, H', W')` (the whole image's), `du[ξ] (O, C) += Ỹ[ξ] · V[ξ]ᵀ`, where `V` are
/// the input's tiles as in the forward and `Ỹ = A dy Aᵀ` each 2×2 block of `dy` (zero
/// past the band). This is the forward's adjoint: `y = Aᵀ (U ⊙ V) A` gives
/// `dU = Σ_tiles (A dy Aᵀ) ⊙ V`, and [`add_weight_grad`] takes `dU` back to the
/// kernel. Sixteen products of depth `T`, 2.25× fewer multiply-adds than
/// `dY · colsᵀ`. `scratch` grows to [`Shape::scratch_len`]; one thread.
pub fn add_weight_grad_band(
    s: &Shape,
    x: &[f32],
    dy: &[f32],
    band: Range<usize>,
    du: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    let (c, o, wo) = (s.c, s.o, s.wo());
    s.check_band(&band);
    assert_eq!(x.len(), c * s.h * s.w, "winograd: input");
    assert_eq!(dy.len(), o * s.ho() * wo, "winograd: output gradient");
    assert_eq!(du.len(), TILE * o * c, "winograd: transformed gradient");
    if band.is_empty() || wo == 0 {
        return;
    }
    let ((th, tw), v, dm) = s.band_buffers(&band, scratch);
    let t = th * tw;
    input_tiles(s, x, band.start, (th, tw), v);
    for (oc, rows) in rows_by_channel(dm, o, t).iter_mut().enumerate() {
        let plane = &dy[oc * s.ho() * wo..(oc + 1) * s.ho() * wo];
        transform_output_grad(plane, wo, band.clone(), tw, rows);
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
/// the transformed one that [`add_weight_grad_band`] sums.
pub fn add_weight_grad(du: &[f32], o: usize, c: usize, dw: &mut [f32]) {
    assert_eq!(du.len(), TILE * o * c, "winograd: transformed gradient");
    assert_eq!(dw.len(), o * c * 9, "winograd: weight gradient");
    for (oc, g) in dw.chunks_exact_mut(9).enumerate() {
        let d: [f32; TILE] = std::array::from_fn(|xi| du[xi * o * c + oc]);
        // Gᵀ D (3×4), then (Gᵀ D) G (3×3).
        let gd: [[f32; 4]; 3] = std::array::from_fn(|k| {
            std::array::from_fn(|j| {
                let (d0, d1, d2, d3) = (d[j], d[4 + j], d[8 + j], d[12 + j]);
                match k {
                    0 => d0 + 0.5 * (d1 + d2),
                    1 => 0.5 * (d1 - d2),
                    _ => 0.5 * (d1 + d2) + d3,
                }
            })
        });
        for (k, [x0, x1, x2, x3]) in gd.into_iter().enumerate() {
            g[3 * k] += x0 + 0.5 * (x1 + x2);
            g[3 * k + 1] += 0.5 * (x1 - x2);
            g[3 * k + 2] += 0.5 * (x1 + x2) + x3;
        }
    }
}

/// One output channel's gradient `dy (H', W')` over the rows `band` as the tiles'
/// `A dy Aᵀ`: block `(ty, tx)` (rows `band.start + 2ty + {0, 1}`, columns
/// `2tx + {0, 1}`, zero past the band or the map) to `rows[ξ][ty·tw + tx]`.
fn transform_output_grad(
    plane: &[f32],
    wo: usize,
    band: Range<usize>,
    tw: usize,
    rows: &mut [&mut [f32]],
) {
    // A block row's two rows as even and odd columns; then `A dy` row by row.
    let mut y = vec![0.0f32; 4 * tw];
    let mut p = vec![0.0f32; 8 * tw];
    wide(
        #[inline(always)]
        || {
            for (ty, r0) in band.clone().step_by(2).enumerate() {
                let (top, bottom) = y.split_at_mut(2 * tw);
                for (r, half) in [(r0, top), (r0 + 1, bottom)] {
                    let row = (r < band.end).then(|| &plane[r * wo..(r + 1) * wo]);
                    let (even, odd) = half.split_at_mut(tw);
                    split_row(row, 0, even, odd);
                }
                let (y00, y01, y10, y11) = (
                    &y[..tw],
                    &y[tw..2 * tw],
                    &y[2 * tw..3 * tw],
                    &y[3 * tw..4 * tw],
                );
                // Rows of A·dy: (y0, y0 + y1, y0 − y1, −y1), each an even and an odd
                // column.
                let (p0, rest) = p.split_at_mut(2 * tw);
                let (p1, rest) = rest.split_at_mut(2 * tw);
                let (p2, p3) = rest.split_at_mut(2 * tw);
                for t in 0..tw {
                    p0[t] = y00[t];
                    p0[tw + t] = y01[t];
                    p1[t] = y00[t] + y10[t];
                    p1[tw + t] = y01[t] + y11[t];
                    p2[t] = y00[t] - y10[t];
                    p2[tw + t] = y01[t] - y11[t];
                    p3[t] = -y10[t];
                    p3[tw + t] = -y11[t];
                }
                let at = ty * tw..(ty + 1) * tw;
                for (i, p_i) in p.chunks_exact(2 * tw).enumerate() {
                    // Row i of (A dy) Aᵀ: (a, a + b, a − b, −b).
                    let (a, b) = (&p_i[..tw], &p_i[tw..][..tw]);
                    let [v0, v1, v2, v3] = rows_of_row(rows, i, at.clone());
                    let (v0, v1, v2, v3) =
                        (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
                    for t in 0..tw {
                        v0[t] = a[t];
                        v1[t] = a[t] + b[t];
                        v2[t] = a[t] - b[t];
                        v3[t] = -b[t];
                    }
                }
            }
        },
    );
}

/// The slices `at` of matrices `4i … 4i + 3`: row `i` of the tiles' 4×4 values.
#[inline(always)]
fn rows_of_row<'a>(rows: &'a mut [&mut [f32]], i: usize, at: Range<usize>) -> [&'a mut [f32]; 4] {
    let mut picked = rows[4 * i..4 * i + 4]
        .iter_mut()
        .map(|row| &mut row[at.clone()]);
    std::array::from_fn(|_| picked.next().expect("sixteen matrices"))
}

/// One channel's tiles for the output rows from `start` (even): tile `(ty, tx)` covers
/// output rows `start + 2ty + {0, 1}` and columns `2tx + {0, 1}`, so it reads input rows
/// `start + 2ty − p …+3` and columns `2tx − p …+3` (zero outside the plane). Its
/// sixteen transformed values go to `rows[ξ][ty·tw + tx]`. Each step is a loop along a
/// row of tiles over at most eight contiguous slices, which the compiler vectorises
/// (one loop over all sixteen values of a tile stayed scalar).
fn transform_input(
    s: &Shape,
    plane: &[f32],
    start: usize,
    (th, tw): (usize, usize),
    rows: &mut [&mut [f32]],
) {
    let n = tw + 1;
    // An input row's even and odd columns, `e[t] = x[2t − p]` and `d[t] = x[2t + 1 − p]`
    // (t ≤ tw); and for each of four input rows, `a[j]`: column j of `d·B`, one value
    // per tile. Input row `start − p + r` sits in slot `r mod 4`, so a tile row finds
    // the two rows it shares with the one above already done.
    let (mut e, mut d) = (vec![0.0f32; n], vec![0.0f32; n]);
    let mut a = vec![0.0f32; 16 * tw];
    wide(
        #[inline(always)]
        || {
            for ty in 0..th {
                let first = if ty == 0 { 0 } else { 2 };
                for r in 2 * ty + first..2 * ty + 4 {
                    let row = s.input_row(plane, start + r);
                    split_row(row, s.pad, &mut e, &mut d);
                    let a_r = &mut a[(r % 4) * 4 * tw..][..4 * tw];
                    let (a0, rest) = a_r.split_at_mut(tw);
                    let (a1, rest) = rest.split_at_mut(tw);
                    let (a2, a3) = rest.split_at_mut(tw);
                    // Every slice re-cut to `tw`, so the loop needs no bounds checks.
                    let (a0, a1, a2, a3) =
                        (&mut a0[..tw], &mut a1[..tw], &mut a2[..tw], &mut a3[..tw]);
                    let (e0, e1, d0, d1) = (&e[..tw], &e[1..][..tw], &d[..tw], &d[1..][..tw]);
                    for t in 0..tw {
                        a0[t] = e0[t] - e1[t];
                        a1[t] = d0[t] + e1[t];
                        a2[t] = e1[t] - d0[t];
                        a3[t] = d0[t] - d1[t];
                    }
                }
                let at = ty * tw..(ty + 1) * tw;
                for j in 0..4 {
                    let a_kj = |k: usize| &a[(4 * ((2 * ty + k) % 4) + j) * tw..][..tw];
                    let (a0, a1, a2, a3) = (a_kj(0), a_kj(1), a_kj(2), a_kj(3));
                    let [v0, v1, v2, v3] = rows_of_column(rows, j, at.clone());
                    let (v0, v1, v2, v3) =
                        (&mut v0[..tw], &mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
                    for t in 0..tw {
                        v0[t] = a0[t] - a2[t];
                        v1[t] = a1[t] + a2[t];
                        v2[t] = a2[t] - a1[t];
                        v3[t] = a1[t] - a3[t];
                    }
                }
            }
        },
    );
}

/// An input row (`None`: a padding row) as its even and odd padded columns,
/// `even[t] = x[2t − p]` and `odd[t] = x[2t + 1 − p]`, zero outside the row. The columns
/// where both lie inside go two at a time; the few at the edges one by one.
#[inline(always)]
fn split_row(row: Option<&[f32]>, pad: usize, even: &mut [f32], odd: &mut [f32]) {
    let Some(row) = row else {
        even.fill(0.0);
        odd.fill(0.0);
        return;
    };
    let at = |col: usize| {
        col.checked_sub(pad)
            .and_then(|x| row.get(x))
            .copied()
            .unwrap_or(0.0)
    };
    // Inside: 2t − p ≥ 0 and 2t + 1 − p ≤ w − 1.
    let lo = pad.div_ceil(2).min(even.len());
    let hi = ((row.len() + pad) / 2).clamp(lo, even.len());
    for t in (0..lo).chain(hi..even.len()) {
        even[t] = at(2 * t);
        odd[t] = at(2 * t + 1);
    }
    let pairs = row[2 * lo - pad..].chunks_exact(2);
    for ((e, d), pair) in even[lo..hi].iter_mut().zip(&mut odd[lo..hi]).zip(pairs) {
        *e = pair[0];
        *d = pair[1];
    }
}

/// The slices `at` of matrices `j`, `4 + j`, `8 + j` and `12 + j`: row `i` of the
/// tiles' `Bᵀ (d B)` in column `j`.
#[inline(always)]
fn rows_of_column<'a>(
    rows: &'a mut [&mut [f32]],
    j: usize,
    at: Range<usize>,
) -> [&'a mut [f32]; 4] {
    let mut picked = rows
        .iter_mut()
        .skip(j)
        .step_by(4)
        .map(|row| &mut row[at.clone()]);
    std::array::from_fn(|_| picked.next().expect("sixteen matrices"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(rng: &mut ChaCha8Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn the_weight_gradient_summed_over_bands_equals_its_definition() {
        // dW[o, c, ki, kj] = Σ dy[o, y, x] · x[c, y + ki − p, x + kj − p], from bands of
        // several heights (a last band of odd height, half blocks at the right edge).
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for (s, step) in [
            (
                Shape {
                    c: 3,
                    o: 4,
                    h: 7,
                    w: 9,
                    pad: 1,
                },
                2,
            ),
            (
                Shape {
                    c: 2,
                    o: 3,
                    h: 8,
                    w: 6,
                    pad: 0,
                },
                4,
            ),
            (
                Shape {
                    c: 5,
                    o: 2,
                    h: 5,
                    w: 5,
                    pad: 2,
                },
                100,
            ),
        ] {
            let (ho, wo) = (s.ho(), s.wo());
            let x = random(&mut rng, s.c * s.h * s.w);
            let dy = random(&mut rng, s.o * ho * wo);
            let mut want = vec![0.0f64; s.o * s.c * 9];
            for (i, v) in want.iter_mut().enumerate() {
                let (o, c, ki, kj) = (i / (9 * s.c), i / 9 % s.c, i / 3 % 3, i % 3);
                for oy in 0..ho {
                    for ox in 0..wo {
                        let (iy, ix) = (
                            (oy + ki) as isize - s.pad as isize,
                            (ox + kj) as isize - s.pad as isize,
                        );
                        if (0..s.h as isize).contains(&iy) && (0..s.w as isize).contains(&ix) {
                            *v += dy[(o * ho + oy) * wo + ox] as f64
                                * x[(c * s.h + iy as usize) * s.w + ix as usize] as f64;
                        }
                    }
                }
            }
            let mut du = vec![0.0f32; TILE * s.o * s.c];
            let mut scratch = Vec::new();
            for start in (0..ho).step_by(step) {
                let rows = start..(start + step).min(ho);
                add_weight_grad_band(&s, &x, &dy, rows, &mut du, &mut scratch);
            }
            // Added to what is there.
            let mut dw = vec![1.0f32; s.o * s.c * 9];
            add_weight_grad(&du, s.o, s.c, &mut dw);
            for (i, (&got, &want)) in dw.iter().zip(&want).enumerate() {
                assert!(
                    (got as f64 - 1.0 - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{s:?} [{i}]: {got} vs {want}"
                );
            }
        }
    }
}
