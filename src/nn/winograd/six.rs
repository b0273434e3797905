//! Winograd's F(6×6, 3×3) over whole maps, eight channels a step: [`super::lanes`]'s
//! form (the input copied into a zero-padded layout with eight channels interleaved, the
//! products read and written transposed) with 8×8 tiles and 6×6 blocks of outputs. A
//! block takes 64 multiplications per input channel, 1.78 an output against F(4×4,
//! 3×3)'s 2.25, and a map whose side six divides better than four loses less to the
//! tiles past its edge: dlib's network's 17×17 maps take 9 tiles of 64 products (576)
//! where F(4×4, 3×3) takes 25 of 36 (900). With the interpolation points 0, ±1, ±2,
//! ±½ (Lavin and Gray 2016; the matrices of NNPACK's and wincnn's F(6×6, 3×3)):
//!
//! ```text
//!      ⎡1   0   −21/4  0     21/4  0    −1  0⎤       ⎡ 1      0      0   ⎤
//!      ⎢0   1    1    −17/4 −17/4  1     1  0⎥       ⎢−2/9   −2/9   −2/9 ⎥
//!      ⎢0  −1    1     17/4 −17/4 −1     1  0⎥       ⎢−2/9    2/9   −2/9 ⎥
//! Bᵀ = ⎢0   ½    ¼    −5/2  −5/4   2     1  0⎥   G = ⎢1/90   1/45   2/45 ⎥
//!      ⎢0  −½    ¼     5/2  −5/4  −2     1  0⎥       ⎢1/90  −1/45   2/45 ⎥
//!      ⎢0   2    4    −5/2  −5     ½     1  0⎥       ⎢32/45  16/45  8/45 ⎥
//!      ⎢0  −2    4     5/2  −5    −½     1  0⎥       ⎢32/45 −16/45  8/45 ⎥
//!      ⎣0  −1    0     21/4  0   −21/4   0  1⎦       ⎣ 0      0      1   ⎦
//!
//!      ⎡1  1  1   1   1   1     1     0⎤
//!      ⎢0  1 −1   2  −2   ½    −½     0⎥
//! Aᵀ = ⎢0  1  1   4   4   ¼     ¼     0⎥
//!      ⎢0  1 −1   8  −8   1/8  −1/8   0⎥
//!      ⎢0  1  1  16  16   1/16  1/16  0⎥
//!      ⎣0  1 −1  32 −32   1/32 −1/32  1⎦
//! ```
//!
//! Its rounding error is larger than F(4×4, 3×3)'s (the transforms scale values by up to
//! 32 before they cancel): relative to `Σ |w|·|x|`, a tile's largest error over 200 draws
//! of 64 channels in f32 against f64 was 8.4e-7 at the median against 2.7e-7, and 2.5e-6
//! at worst against 1.3e-6 (`scripts/winograd_rounding.py`). Inference only: the
//! training step's backward keeps the form of [`super`].

use super::Shape;
use super::lanes::{self, LANES, Lanes, Transforms};
use crate::nn::epilogue::Epilogue;

/// Matrices of the transform: a tile's 8×8 values `ξ = 8·i + j`.
pub const TILE: usize = SIDE * SIDE;

/// Outputs per tile side.
pub const STEP: usize = 6;

/// A tile's side.
const SIDE: usize = 8;

/// `G` (8×3).
const G: [[f32; 3]; SIDE] = [
    [1.0, 0.0, 0.0],
    [-2.0 / 9.0, -2.0 / 9.0, -2.0 / 9.0],
    [-2.0 / 9.0, 2.0 / 9.0, -2.0 / 9.0],
    [1.0 / 90.0, 1.0 / 45.0, 2.0 / 45.0],
    [1.0 / 90.0, -1.0 / 45.0, 2.0 / 45.0],
    [32.0 / 45.0, 16.0 / 45.0, 8.0 / 45.0],
    [32.0 / 45.0, -16.0 / 45.0, 8.0 / 45.0],
    [0.0, 0.0, 1.0],
];

/// The weights `(O, C, 3, 3)` transformed: 64 matrices `U[ξ] (O, C)`, `G · w[o, c] · Gᵀ`.
pub fn weights(w: &[f32], o: usize, c: usize) -> Vec<f32> {
    super::transform_weights(&G, w, o, c)
}

/// Tiles down and across one image's output.
pub fn tiles(s: &Shape) -> (usize, usize) {
    lanes::tiles::<STEP>(s)
}

/// The scratch [`images`] needs for `images` maps: the padded input, `Vᵀ` and `Mᵀ`.
pub fn scratch_len(s: &Shape, images: usize) -> usize {
    lanes::scratch_len_of::<SIDE, STEP>(s, images)
}

/// [`super::images`] (same arguments, the same outputs within rounding) in F(6×6, 3×3),
/// from the weights of [`weights`]; needs [`lanes::applies`].
pub fn images(
    s: &Shape,
    u: &[f32],
    (bias, chain): (Option<&[f32]>, &[Epilogue]),
    x: &[f32],
    outs: &mut [&mut [f32]],
    scratch: &mut Vec<f32>,
) {
    lanes::images_of::<F6x6, SIDE, STEP>(s, u, (bias, chain), x, outs, scratch);
}

/// This form's transforms, eight channels at a time.
struct F6x6;

impl Transforms<SIDE, STEP> for F6x6 {
    /// `Bᵀ` on eight values (NNPACK's grouping of its terms).
    #[inline(always)]
    fn b_t(d: [Lanes; SIDE]) -> [Lanes; SIDE] {
        let mut o = [[0.0; LANES]; SIDE];
        for l in 0..LANES {
            let [d0, d1, d2, d3, d4, d5, d6, d7] = std::array::from_fn::<f32, SIDE, _>(|k| d[k][l]);
            o[0][l] = (d0 - d6) + 5.25 * (d4 - d2);
            o[7][l] = (d7 - d1) + 5.25 * (d3 - d5);
            let (even, odd) = ((d2 + d6) - 4.25 * d4, (d1 + d5) - 4.25 * d3);
            o[1][l] = even + odd;
            o[2][l] = even - odd;
            let (even, odd) = (
                (d6 + 0.25 * d2) - 1.25 * d4,
                (0.5 * d1 - 2.5 * d3) + 2.0 * d5,
            );
            o[3][l] = even + odd;
            o[4][l] = even - odd;
            let (even, odd) = ((d6 + 4.0 * d2) - 5.0 * d4, (2.0 * d1 - 2.5 * d3) + 0.5 * d5);
            o[5][l] = even + odd;
            o[6][l] = even - odd;
        }
        o
    }

    /// `post(bias + Aᵀ m)` on eight values.
    #[inline(always)]
    fn a_t(m: [Lanes; SIDE], bias: &Lanes, post: impl Fn(f32, usize) -> f32) -> [Lanes; STEP] {
        let mut o = [[0.0; LANES]; STEP];
        for l in 0..LANES {
            let (p1, n1) = (m[1][l] + m[2][l], m[1][l] - m[2][l]);
            let (p3, n3) = (m[3][l] + m[4][l], m[3][l] - m[4][l]);
            let (p5, n5) = (m[5][l] + m[6][l], m[5][l] - m[6][l]);
            o[0][l] = post(bias[l] + (m[0][l] + p1 + p3 + p5), l);
            o[1][l] = post(bias[l] + (n1 + 2.0 * n3 + 0.5 * n5), l);
            o[2][l] = post(bias[l] + (p1 + 4.0 * p3 + 0.25 * p5), l);
            o[3][l] = post(bias[l] + (n1 + 8.0 * n3 + 0.125 * n5), l);
            o[4][l] = post(bias[l] + (p1 + 16.0 * p3 + 0.0625 * p5), l);
            o[5][l] = post(bias[l] + (n1 + 32.0 * n3 + 0.03125 * n5 + m[7][l]), l);
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::images_equal_the_definition;
    use super::*;

    /// As [`super::super::lanes`]'s test: several images at once, paddings 0, 1 and 2,
    /// maps from 3×3 to 17×17 whose sides are mostly not multiples of six, one and two
    /// steps of channels in and out (and 64 in, dlib's 17×17 maps' depth), each kind of
    /// point-wise chain: every output within rounding of the f64 definition.
    #[test]
    fn f6x6_equals_the_definition() {
        let cases = [
            (8, 16, 17, 17, 1, 2),
            (64, 8, 17, 17, 1, 1),
            (16, 8, 8, 8, 1, 3),
            (8, 8, 9, 11, 1, 1),
            (16, 16, 6, 6, 0, 2),
            (8, 8, 7, 5, 2, 2),
            (8, 24, 3, 3, 1, 4),
            (8, 8, 12, 13, 1, 1),
        ];
        images_equal_the_definition(46, &cases, (weights, images, scratch_len));
    }

    /// The kernel's transform: `G k Gᵀ` of a single tap is the outer product of `G`'s
    /// column with itself, so the 64 values of a kernel that is 1 at its centre are
    /// `G[i][1]·G[j][1]`.
    #[test]
    fn a_centre_tap_transforms_to_the_outer_product_of_gs_middle_column() {
        let mut w = vec![0.0f32; 9];
        w[4] = 1.0;
        let u = weights(&w, 1, 1);
        for (xi, &v) in u.iter().enumerate() {
            let want = G[xi / SIDE][1] * G[xi % SIDE][1];
            assert!((v - want).abs() <= 1e-7, "ξ {xi}: {v} against {want}");
        }
    }
}
