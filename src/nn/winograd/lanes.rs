//! [`super::images`] with eight channels side by side: each step transforms one tile of
//! eight channels, one channel per vector lane.
//!
//! Along a row of tiles (the other form's vectors) dlib's network's small maps give two
//! (8×8) to five (17×17) values: its transforms ran in scalar code, with a call and a
//! row split per channel, image and row, and cost as much as the 36 products. Here the
//! input is first copied into a zero-padded layout with eight channels interleaved
//! (`P[image][channel / 8][row][column][channel % 8]`), so that a tile of eight channels
//! is 36 contiguous loads; the 36 products read and write their matrices transposed,
//! `Mᵀ[ξ] (T, O) = Vᵀ[ξ] (T, C) · U[ξ]ᵀ`, so that a tile's 36 transformed values of eight
//! channels are contiguous too. Each value goes through the same operations in the same
//! order as in `super::transform_input` and `super::transform_output` (rows of a tile
//! first, then its columns; `Aᵀ` down the columns first, then along the rows with the
//! bias and the epilogue), so the transforms give the same bits; the products may sum in
//! another order. [`mod@super::six`] runs F(6×6, 3×3) through the same steps
//! (`images_of`, with its own `Transforms`).

use super::Shape;
use crate::nn::epilogue::{self, Epilogue, Rectify};
use crate::nn::gemm::{Gemm, Op};
use crate::nn::tensor::wide;

/// Channels a step.
pub const LANES: usize = 8;

/// One value of eight channels.
pub(super) type Lanes = [f32; LANES];

/// Whether the channels in and out fill whole steps.
pub fn applies(s: &Shape) -> bool {
    s.c > 0 && s.o > 0 && s.c.is_multiple_of(LANES) && s.o.is_multiple_of(LANES)
}

/// A form's transforms on eight channels at a time, for tiles of `SIDE`×`SIDE` inputs and
/// blocks of `STEP`×`STEP` outputs: `Bᵀ` on a tile's row or column, and `post(bias + Aᵀ
/// m)` from `SIDE` values to `STEP`.
pub(super) trait Transforms<const SIDE: usize, const STEP: usize> {
    fn b_t(d: [Lanes; SIDE]) -> [Lanes; SIDE];
    fn a_t(m: [Lanes; SIDE], bias: &Lanes, post: impl Fn(f32, usize) -> f32) -> [Lanes; STEP];
}

/// F(4×4, 3×3), the form of [`super`].
struct F4x4;

impl Transforms<6, 4> for F4x4 {
    /// [`super::b_transpose`]'s operations lane by lane.
    #[inline(always)]
    fn b_t(d: [Lanes; 6]) -> [Lanes; 6] {
        let mut o = [[0.0; LANES]; 6];
        for l in 0..LANES {
            let (a, b, c, d, e, f) = (d[0][l], d[1][l], d[2][l], d[3][l], d[4][l], d[5][l]);
            o[0][l] = 4.0 * a - 5.0 * c + e;
            o[1][l] = (d + e) - 4.0 * (b + c);
            o[2][l] = (e - d) + 4.0 * (b - c);
            o[3][l] = (e - c) + 2.0 * (d - b);
            o[4][l] = (e - c) - 2.0 * (d - b);
            o[5][l] = 4.0 * b - 5.0 * d + f;
        }
        o
    }

    /// [`super::a_transpose`]'s operations lane by lane.
    #[inline(always)]
    fn a_t(m: [Lanes; 6], bias: &Lanes, post: impl Fn(f32, usize) -> f32) -> [Lanes; 4] {
        let mut o = [[0.0; LANES]; 4];
        for l in 0..LANES {
            let (p1, n1) = (m[1][l] + m[2][l], m[1][l] - m[2][l]);
            let (p3, n3) = (m[3][l] + m[4][l], m[3][l] - m[4][l]);
            o[0][l] = post(bias[l] + (m[0][l] + p1 + p3), l);
            o[1][l] = post(bias[l] + (n1 + 2.0 * n3), l);
            o[2][l] = post(bias[l] + (p1 + 4.0 * p3), l);
            o[3][l] = post(bias[l] + (n1 + 8.0 * n3 + m[5][l]), l);
        }
        o
    }
}

/// Tiles down and across one image's output, for blocks of `STEP`×`STEP` outputs.
pub(super) fn tiles<const STEP: usize>(s: &Shape) -> (usize, usize) {
    (s.ho().div_ceil(STEP), s.wo().div_ceil(STEP))
}

/// The scratch [`images`] needs for `images` maps: the padded input, `Vᵀ` and `Mᵀ`.
pub fn scratch_len(s: &Shape, images: usize) -> usize {
    scratch_len_of::<6, 4>(s, images)
}

/// [`scratch_len`] for a form of `SIDE`×`SIDE` tiles and `STEP`×`STEP` blocks.
pub(super) fn scratch_len_of<const SIDE: usize, const STEP: usize>(
    s: &Shape,
    images: usize,
) -> usize {
    let (th, tw) = tiles::<STEP>(s);
    let t = images * th * tw;
    let (hp, wp) = (STEP * th + SIDE - STEP, STEP * tw + SIDE - STEP);
    images * s.c * hp * wp + SIDE * SIDE * t * (s.c + s.o)
}

/// Eight values from `v` at `at`.
#[inline(always)]
fn load(v: &[f32], at: usize) -> Lanes {
    v[at..at + LANES].try_into().expect("eight lanes")
}

/// [`super::images`] (same arguments and result) eight channels a step; needs
/// [`applies`].
pub fn images(
    s: &Shape,
    u: &[f32],
    (bias, chain): (Option<&[f32]>, &[Epilogue]),
    x: &[f32],
    outs: &mut [&mut [f32]],
    scratch: &mut Vec<f32>,
) {
    images_of::<F4x4, 6, 4>(s, u, (bias, chain), x, outs, scratch);
}

/// [`images`] in the form `F` (tiles of `SIDE`×`SIDE`, blocks of `STEP`×`STEP`), from
/// weights `u` transformed by its `G` (`SIDE²` matrices `(O, C)`).
pub(super) fn images_of<F: Transforms<SIDE, STEP>, const SIDE: usize, const STEP: usize>(
    s: &Shape,
    u: &[f32],
    (bias, chain): (Option<&[f32]>, &[Epilogue]),
    x: &[f32],
    outs: &mut [&mut [f32]],
    scratch: &mut Vec<f32>,
) {
    assert!(applies(s), "winograd lanes: channels in steps of {LANES}");
    let tile = SIDE * SIDE;
    let (c, o, ho, wo) = (s.c, s.o, s.ho(), s.wo());
    let plane = s.h * s.w;
    assert_eq!(u.len(), tile * o * c, "winograd lanes: transformed weights");
    let images = super::check_images(s, chain, x, outs);
    if images == 0 || ho == 0 || wo == 0 {
        return;
    }
    let (th, tw) = tiles::<STEP>(s);
    let (hp, wp) = (STEP * th + SIDE - STEP, STEP * tw + SIDE - STEP);
    let (t1, t) = (th * tw, images * th * tw);
    let len = scratch_len_of::<SIDE, STEP>(s, images);
    if scratch.len() < len {
        scratch.resize(len, 0.0);
    }
    let (p, rest) = scratch.split_at_mut(images * c * hp * wp);
    let (vt, rest) = rest.split_at_mut(tile * t * c);
    let mt = &mut rest[..tile * t * o];
    let block = hp * wp * LANES;
    wide(
        #[inline(always)]
        || {
            // The padded input: zero, then each plane's values into their lane.
            p.fill(0.0);
            for (i, x_img) in x.chunks_exact(c * plane).enumerate() {
                for (ch, x_plane) in x_img.chunks_exact(plane).enumerate() {
                    let p_block = &mut p[(i * c / LANES + ch / LANES) * block..][..block];
                    for (y, row) in x_plane.chunks_exact(s.w).enumerate() {
                        let at = ((y + s.pad) * wp + s.pad) * LANES + ch % LANES;
                        for (xx, &v) in row.iter().enumerate() {
                            p_block[at + xx * LANES] = v;
                        }
                    }
                }
            }
            // Vᵀ[ξ][tile][channel] = (Bᵀ d B)[ξ].
            for (b, p_block) in p.chunks_exact(block).enumerate() {
                let (i, cb) = (b / (c / LANES), b % (c / LANES));
                for ty in 0..th {
                    for tx in 0..tw {
                        // Rows of the tile first: `h[a] = Bᵀ d[a]`.
                        let mut h = [[[0.0; LANES]; SIDE]; SIDE];
                        for (a, h_a) in h.iter_mut().enumerate() {
                            let row = ((STEP * ty + a) * wp + STEP * tx) * LANES;
                            *h_a = F::b_t(std::array::from_fn(|k| load(p_block, row + k * LANES)));
                        }
                        // Then its columns: `V[SIDE·r + j] = (Bᵀ h[·][j])[r]`, stored as
                        // they come (a build that gathered all 36 of F(4×4, 3×3) into an
                        // array first, and the output transform's rows likewise, ran the
                        // 17×17 blocks slower).
                        let col = i * t1 + ty * tw + tx;
                        #[expect(clippy::needless_range_loop, reason = "j indexes h and V")]
                        for j in 0..SIDE {
                            let v = F::b_t(std::array::from_fn(|a| h[a][j]));
                            for (r, v_r) in v.iter().enumerate() {
                                let at = ((SIDE * r + j) * t + col) * c + cb * LANES;
                                vt[at..at + LANES].copy_from_slice(v_r);
                            }
                        }
                    }
                }
            }
        },
    );
    for xi in 0..tile {
        Gemm::new(t, o, c).ops(Op::N, Op::T).run(
            &vt[xi * t * c..][..t * c],
            &u[xi * o * c..][..o * c],
            &mut mt[xi * t * o..][..t * o],
        );
    }
    let mt = &*mt;
    wide(
        #[inline(always)]
        || {
            for ob in 0..o / LANES {
                let lanes = ob * LANES..(ob + 1) * LANES;
                let b: Lanes = std::array::from_fn(|l| bias.map_or(0.0, |b| b[lanes.start + l]));
                let steps: [_; LANES] =
                    std::array::from_fn(|l| epilogue::pointwise(chain, lanes.start + l));
                let (affine, rectify) = (steps[0].0, steps[0].1);
                let scale: Lanes = std::array::from_fn(|l| steps[l].0.map_or(1.0, |a| a.0));
                let shift: Lanes = std::array::from_fn(|l| steps[l].0.map_or(0.0, |a| a.1));
                let slope: Lanes = std::array::from_fn(|l| match steps[l].1 {
                    Rectify::Prelu(s) => s,
                    _ => 0.0,
                });
                let prelu = |v: f32, l: usize| Rectify::Prelu(slope[l]).apply(v);
                // One loop per kind of step, as `output_channel`.
                let at = ((ob, o, t, t1, tw), (ho, wo));
                match (affine.is_some(), rectify) {
                    (true, Rectify::Relu) => outputs::<F, SIDE, STEP>(
                        mt,
                        &b,
                        |v, l| (scale[l] * v + shift[l]).max(0.0),
                        at,
                        outs,
                    ),
                    (true, Rectify::Prelu(_)) => outputs::<F, SIDE, STEP>(
                        mt,
                        &b,
                        |v, l| prelu(scale[l] * v + shift[l], l),
                        at,
                        outs,
                    ),
                    (true, Rectify::None) => {
                        outputs::<F, SIDE, STEP>(mt, &b, |v, l| scale[l] * v + shift[l], at, outs)
                    }
                    (false, Rectify::Relu) => {
                        outputs::<F, SIDE, STEP>(mt, &b, |v, _| v.max(0.0), at, outs)
                    }
                    (false, Rectify::Prelu(_)) => outputs::<F, SIDE, STEP>(mt, &b, prelu, at, outs),
                    (false, Rectify::None) => outputs::<F, SIDE, STEP>(mt, &b, |v, _| v, at, outs),
                }
            }
        },
    );
}

/// Where [`outputs`] reads and writes: `(ob, o, t, t1, tw)`, the step of output channels,
/// the channels, the tiles in all, an image's and across, and `(ho, wo)`, an output map.
type OutputsAt = ((usize, usize, usize, usize, usize), (usize, usize));

/// Output channels `8·ob …+8` of every image, `post(Aᵀ M A + bias)`, from `Mᵀ`.
#[inline(always)]
fn outputs<F: Transforms<SIDE, STEP>, const SIDE: usize, const STEP: usize>(
    mt: &[f32],
    bias: &Lanes,
    post: impl Fn(f32, usize) -> f32 + Copy,
    ((ob, o, t, t1, tw), (ho, wo)): OutputsAt,
    outs: &mut [&mut [f32]],
) {
    let images = t / t1;
    for i in 0..images {
        for tile in 0..t1 {
            let (ty, tx) = (tile / tw, tile % tw);
            let col = i * t1 + tile;
            let m = |xi: usize| load(mt, (xi * t + col) * o + ob * LANES);
            // Rows `Aᵀ M` (down the columns), then along each row.
            let mut s = [[[0.0; LANES]; SIDE]; STEP];
            #[expect(clippy::needless_range_loop, reason = "j indexes m's rows and s")]
            for j in 0..SIDE {
                let down = F::a_t(
                    std::array::from_fn(|k| m(SIDE * k + j)),
                    &[0.0; LANES],
                    |v, _| v,
                );
                for (r, d) in down.into_iter().enumerate() {
                    s[r][j] = d;
                }
            }
            let rows = (ho - STEP * ty).min(STEP);
            let cols = (wo - STEP * tx).min(STEP);
            for (r, s_r) in s.iter().enumerate().take(rows) {
                let block = F::a_t(*s_r, bias, post);
                let at = (STEP * ty + r) * wo + STEP * tx;
                for l in 0..LANES {
                    let y = &mut outs[i * o + ob * LANES + l][at..at + cols];
                    for (k, v) in y.iter_mut().enumerate() {
                        *v = block[k][l];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::images_equal_the_definition;
    use super::super::weights;
    use super::*;

    /// Several images at once, at paddings 0, 1 and 2, maps from 3×3 to 17×17 whose
    /// sides are mostly not multiples of four, one and two steps of channels in and out,
    /// each kind of point-wise chain: every output within rounding of the f64 definition
    /// (the parent's [`images_equal_the_definition`]).
    #[test]
    fn eight_channels_a_step_equal_the_definition() {
        let cases = [
            (8, 16, 17, 17, 1, 2),
            (16, 8, 8, 8, 1, 3),
            (8, 8, 9, 11, 1, 1),
            (16, 16, 6, 6, 0, 2),
            (8, 8, 7, 5, 2, 2),
            (8, 24, 3, 3, 1, 4),
        ];
        images_equal_the_definition(44, &cases, (weights, images, scratch_len));
    }

    #[test]
    fn only_whole_steps_of_channels() {
        let s = |c, o| Shape {
            c,
            o,
            h: 8,
            w: 8,
            pad: 1,
        };
        assert!(applies(&s(8, 64)));
        assert!(!applies(&s(12, 64)));
        assert!(!applies(&s(64, 4)));
        assert!(!applies(&s(0, 8)));
    }
}
