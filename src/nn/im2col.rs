//! Unfolding image patches into columns (im2col) and folding them back (col2im), the
//! data movement that turns a convolution into one matrix product per image.

use std::ops::Range;

/// Geometry of one convolution over one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Input channels, height, width.
    pub c: usize,
    pub h: usize,
    pub w: usize,
    /// Kernel height and width.
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    /// Output height and width.
    pub ho: usize,
    pub wo: usize,
}

impl Geometry {
    /// Rows of the column matrix: `C·kh·kw`.
    pub fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Columns of the column matrix: `Ho·Wo`.
    pub fn cols(&self) -> usize {
        self.ho * self.wo
    }

    /// For kernel offset `kj`, the output columns `ox` whose input column
    /// `ox·stride + kj − pad` lies inside `[0, w)`, as a half-open range.
    fn valid_ox(&self, kj: usize) -> (usize, usize) {
        range_inside(self.wo, self.stride, kj, self.pad, self.w)
    }

    fn valid_oy(&self, ki: usize) -> (usize, usize) {
        range_inside(self.ho, self.stride, ki, self.pad, self.h)
    }
}

/// The outputs `o < len` with `0 ≤ o·stride + k − pad < size`.
fn range_inside(len: usize, stride: usize, k: usize, pad: usize, size: usize) -> (usize, usize) {
    // o·s + k ≥ pad  ⇔  o ≥ ceil((pad − k) / s)
    let lo = if k >= pad {
        0
    } else {
        (pad - k).div_ceil(stride)
    };
    // o·s + k − pad ≤ size − 1  ⇔  o ≤ (size − 1 + pad − k) / s
    let hi = if size + pad > k {
        ((size - 1 + pad - k) / stride + 1).min(len)
    } else {
        0
    };
    (lo.min(hi), hi)
}

/// `cols (C·kh·kw, Ho·Wo)` from `x (C, H, W)`; row `(c, ki, kj)`, column `(oy, ox)` holds
/// `x[c, oy·s + ki − p, ox·s + kj − p]`, zero outside the image. The whole image's
/// matrix, the definition the bands are checked against (the convolution unfolds band
/// by band).
#[cfg(test)]
pub fn im2col(g: &Geometry, x: &[f32], cols: &mut [f32]) {
    im2col_band(g, x, 0..g.ho, cols);
}

/// The columns of output rows `band` only: `cols (C·kh·kw, |band|·Wo)`, the block of
/// `im2col`'s matrix a convolution computes one band of its output from.
pub fn im2col_band(g: &Geometry, x: &[f32], band: Range<usize>, cols: &mut [f32]) {
    let width = band.len() * g.wo;
    debug_assert_eq!(cols.len(), g.rows() * width);
    im2col_band_strided(g, x, band, cols, width);
}

/// [`im2col_band`] into a block of a wider matrix whose rows start `ld` floats apart
/// (`ld ≥ |band|·Wo`): the column matrices of several images side by side, so that one
/// product computes all of them (`Conv2d`'s small maps). Only the block is written.
pub fn im2col_band_strided(
    g: &Geometry,
    x: &[f32],
    band: Range<usize>,
    cols: &mut [f32],
    ld: usize,
) {
    let width = band.len() * g.wo;
    debug_assert_eq!(x.len(), g.c * g.h * g.w);
    debug_assert!(band.end <= g.ho);
    debug_assert!(ld >= width);
    debug_assert!(g.rows() == 0 || cols.len() >= (g.rows() - 1) * ld + width);
    if band.is_empty() || g.wo == 0 {
        return;
    }
    let mut rows = cols.chunks_mut(ld).map(|row| &mut row[..width]);
    if g.stride == 1 && g.wo == g.w {
        return im2col_band_same(g, x, band, rows);
    }
    for c in 0..g.c {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oy_lo, oy_hi) = g.valid_oy(ki);
            for kj in 0..g.kw {
                let Some(row) = rows.next() else { return };
                let (ox_lo, ox_hi) = g.valid_ox(kj);
                for (out, oy) in row.chunks_exact_mut(g.wo).zip(band.clone()) {
                    if oy < oy_lo || oy >= oy_hi || ox_lo == ox_hi {
                        out.fill(0.0);
                        continue;
                    }
                    zero_short(&mut out[..ox_lo]);
                    zero_short(&mut out[ox_hi..]);
                    let iy = oy * g.stride + ki - g.pad;
                    let src = &plane[iy * g.w..(iy + 1) * g.w];
                    let ix0 = ox_lo * g.stride + kj - g.pad;
                    if g.stride == 1 {
                        copy_row(&mut out[ox_lo..ox_hi], &src[ix0..ix0 + (ox_hi - ox_lo)]);
                    } else if g.stride == 2 {
                        copy_even(&mut out[ox_lo..ox_hi], &src[ix0..]);
                    } else {
                        for (o, s) in out[ox_lo..ox_hi]
                            .iter_mut()
                            .zip(src[ix0..].iter().step_by(g.stride))
                        {
                            *o = *s;
                        }
                    }
                }
            }
        }
    }
}

/// `dst.copy_from_slice(src)` for the short rows of small maps (MTCNN's are 10 to 46
/// wide): eight floats at a time in registers, not a library call per row.
#[inline]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    if !(8..128).contains(&n) {
        dst.copy_from_slice(src);
        return;
    }
    let (d8, _) = dst.as_chunks_mut::<8>();
    let (s8, _) = src.as_chunks::<8>();
    for (d, s) in d8.iter_mut().zip(s8) {
        *d = *s;
    }
    // The last eight again, overlapping: the 1–7 left over without a loop.
    let (d, s): (&mut [f32; 8], &[f32; 8]) = (
        (&mut dst[n - 8..]).try_into().expect("8 floats"),
        src[n - 8..].try_into().expect("8 floats"),
    );
    *d = *s;
}

/// `dst[i] = src[2·i]`, the row of a stride-2 convolution (`src` holds at least
/// `2·len(dst) − 1` floats): indexed with a constant stride, which the compiler turns
/// into vector loads and shuffles, where an iterator stepping by the run-time stride
/// copied one float at a time. dlib's 7×7 stem took a quarter less time
/// (BENCHMARKS.md, "Bulk import").
#[inline]
fn copy_even(dst: &mut [f32], src: &[f32]) {
    let n = dst.len();
    debug_assert!(
        src.len() + 1 >= 2 * n,
        "{} floats for {n} outputs",
        src.len()
    );
    let pairs = (src.len() / 2).min(n);
    let (head, tail) = dst.split_at_mut(pairs);
    let src_pairs = &src[..2 * pairs];
    for (i, d) in head.iter_mut().enumerate() {
        *d = src_pairs[2 * i];
    }
    // At most one left: its pair would run past the end of `src`.
    if let Some(last) = tail.first_mut() {
        *last = src[2 * pairs];
    }
}

/// `out.fill(0.0)` for the padding at a row's ends, mostly one or two floats: stores,
/// not a library call.
#[inline]
fn zero_short(out: &mut [f32]) {
    match out {
        [] => {}
        [a] => *a = 0.0,
        [a, b] => (*a, *b) = (0.0, 0.0),
        _ => out.fill(0.0),
    }
}

/// [`im2col_band`] for stride 1 and an output as wide as the input (`2·pad = kw − 1`,
/// the "same" convolutions of residual networks). A column-matrix row's valid output
/// rows then read the plane as one contiguous run, shifted by `kj − pad`: it is copied
/// at once, and only the `|kj − pad|` entries per row that ran over from the
/// neighbouring input row are zeroed. Row by row, a 3×3 convolution on a 36-wide map
/// made one library call per 36 floats.
fn im2col_band_same<'a>(
    g: &Geometry,
    x: &[f32],
    band: Range<usize>,
    mut rows: impl Iterator<Item = &'a mut [f32]>,
) {
    let w = g.w;
    for plane in x.chunks_exact(g.h * w) {
        for ki in 0..g.kh {
            let (oy_lo, oy_hi) = g.valid_oy(ki);
            let a = oy_lo.clamp(band.start, band.end);
            let b = oy_hi.clamp(a, band.end);
            for kj in 0..g.kw {
                let Some(row) = rows.next() else { return };
                let (head, rest) = row.split_at_mut((a - band.start) * w);
                let (valid, tail) = rest.split_at_mut((b - a) * w);
                head.fill(0.0);
                tail.fill(0.0);
                if valid.is_empty() {
                    continue;
                }
                // Output (a, 0) reads input (a + ki − pad, kj − pad): the run starts there,
                // before the plane by up to `pad` and past its end by up to `pad` at most.
                let start = ((a + ki - g.pad) * w + kj) as isize - g.pad as isize;
                let n = valid.len();
                let before = start.min(0).unsigned_abs().min(n);
                let after =
                    (start + n as isize - plane.len() as isize).clamp(0, n as isize) as usize;
                let after = after.min(n - before);
                valid[..before].fill(0.0);
                valid[n - after..].fill(0.0);
                let inside = n - before - after;
                if inside > 0 {
                    // `before` is `−start` when the run starts before the plane.
                    let from = (start + before as isize) as usize;
                    valid[before..n - after].copy_from_slice(&plane[from..from + inside]);
                }
                let (wrapped, left) = if kj < g.pad {
                    (g.pad - kj, true)
                } else {
                    (kj - g.pad, false)
                };
                let wrapped = wrapped.min(w);
                if wrapped == 0 {
                    continue;
                }
                for out in valid.chunks_exact_mut(w) {
                    let zero = if left {
                        &mut out[..wrapped]
                    } else {
                        &mut out[w - wrapped..]
                    };
                    zero_short(zero);
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds every column entry back into `dx (C, H, W)`.
#[cfg(test)]
pub fn col2im(g: &Geometry, cols: &[f32], dx: &mut [f32]) {
    col2im_band(g, cols, 0..g.ho, dx);
}

/// The adjoint of `im2col_band`: adds the columns of output rows `band` into `dx`.
pub fn col2im_band(g: &Geometry, cols: &[f32], band: Range<usize>, dx: &mut [f32]) {
    debug_assert_eq!(dx.len(), g.c * g.h * g.w);
    debug_assert!(band.end <= g.ho);
    debug_assert_eq!(cols.len(), g.rows() * band.len() * g.wo);
    if band.is_empty() || g.wo == 0 {
        return;
    }
    let mut rows = cols.chunks_exact(band.len() * g.wo);
    for c in 0..g.c {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for ki in 0..g.kh {
            let (oy_lo, oy_hi) = g.valid_oy(ki);
            for kj in 0..g.kw {
                let Some(row) = rows.next() else { return };
                let (ox_lo, ox_hi) = g.valid_ox(kj);
                if ox_lo == ox_hi {
                    continue;
                }
                for oy in oy_lo.max(band.start)..oy_hi.min(band.end) {
                    let at = (oy - band.start) * g.wo;
                    let src = &row[at + ox_lo..at + ox_hi];
                    let iy = oy * g.stride + ki - g.pad;
                    let ix0 = ox_lo * g.stride + kj - g.pad;
                    let dst = &mut plane[iy * g.w..(iy + 1) * g.w];
                    if g.stride == 1 {
                        for (d, s) in dst[ix0..ix0 + src.len()].iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (d, s) in dst[ix0..].iter_mut().step_by(g.stride).zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Geometry {
        Geometry {
            c,
            h,
            w,
            kh: k,
            kw: k,
            stride,
            pad,
            ho: (h + 2 * pad - k) / stride + 1,
            wo: (w + 2 * pad - k) / stride + 1,
        }
    }

    /// The definition, one element at a time.
    fn im2col_naive(g: &Geometry, x: &[f32]) -> Vec<f32> {
        let mut cols = vec![0.0; g.rows() * g.cols()];
        for c in 0..g.c {
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let row = (c * g.kh + ki) * g.kw + kj;
                    for oy in 0..g.ho {
                        for ox in 0..g.wo {
                            let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                            let ix = (ox * g.stride + kj) as isize - g.pad as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                cols[row * g.cols() + oy * g.wo + ox] =
                                    x[(c * g.h + iy as usize) * g.w + ix as usize];
                            }
                        }
                    }
                }
            }
        }
        cols
    }

    #[test]
    fn im2col_matches_the_definition_for_strides_and_paddings() {
        for (c, h, w, k, s, p) in [
            (2, 5, 4, 3, 1, 1),
            (1, 7, 6, 3, 2, 1),
            (3, 6, 7, 2, 2, 0),
            (1, 4, 4, 3, 3, 2),
            (2, 3, 3, 1, 1, 0),
            // Stride 1, output as wide as the input (`im2col_band_same`).
            (2, 6, 5, 5, 1, 2),
            (1, 4, 3, 7, 1, 3),
            (1, 2, 1, 5, 1, 2),
            (3, 1, 4, 3, 1, 1),
            // Rows of 8 or more (`copy_row`'s overlapping tail), with and without padding.
            (2, 5, 13, 3, 1, 0),
            (1, 4, 20, 2, 1, 0),
            (1, 5, 12, 3, 1, 2),
            (1, 3, 9, 1, 1, 0),
            // Stride 2 (`copy_even`): a row's last element with and without the float
            // after it inside the input row, with padding, a 7×7 stem.
            (1, 21, 21, 7, 2, 0),
            (1, 20, 20, 7, 2, 0),
            (2, 9, 10, 3, 2, 1),
            (1, 9, 9, 3, 2, 0),
        ] {
            let g = geometry(c, h, w, k, s, p);
            let x: Vec<f32> = (0..c * h * w).map(|v| v as f32 + 1.0).collect();
            let mut cols = vec![f32::NAN; g.rows() * g.cols()];
            im2col(&g, &x, &mut cols);
            let want = im2col_naive(&g, &x);
            assert_eq!(cols, want, "{g:?}");
            // The same block inside a wider matrix, two columns in: the rest untouched.
            let ld = g.cols() + 5;
            let mut wide = vec![-7.0; g.rows() * ld];
            im2col_band_strided(&g, &x, 0..g.ho, &mut wide[2..], ld);
            for (r, row) in wide.chunks_exact(ld).enumerate() {
                let block = &row[2..2 + g.cols()];
                assert_eq!(
                    block,
                    &want[r * g.cols()..(r + 1) * g.cols()],
                    "{g:?} row {r}"
                );
                assert!(
                    row[..2]
                        .iter()
                        .chain(&row[2 + g.cols()..])
                        .all(|&v| v == -7.0)
                );
            }
        }
    }

    #[test]
    fn bands_of_rows_are_blocks_of_the_whole_matrix_and_fold_back_the_same() {
        for (c, h, w, k, s, p) in [
            (2, 7, 5, 3, 1, 1),
            (1, 9, 6, 3, 2, 1),
            (3, 6, 7, 2, 2, 0),
            (2, 7, 4, 5, 1, 2),
        ] {
            let g = geometry(c, h, w, k, s, p);
            let x: Vec<f32> = (0..c * h * w).map(|v| v as f32 + 1.0).collect();
            let whole = im2col_naive(&g, &x);
            let mut folded_whole = vec![0.0; x.len()];
            col2im(&g, &whole, &mut folded_whole);
            let mut folded_bands = vec![0.0; x.len()];
            for band in [0..2, 2..3, 3..g.ho] {
                let width = band.len() * g.wo;
                let mut cols = vec![f32::NAN; g.rows() * width];
                im2col_band(&g, &x, band.clone(), &mut cols);
                for (r, row) in cols.chunks_exact(width.max(1)).enumerate() {
                    let from = r * g.cols() + band.start * g.wo;
                    assert_eq!(row, &whole[from..from + width], "{g:?} {band:?} row {r}");
                }
                col2im_band(&g, &cols, band, &mut folded_bands);
            }
            assert_eq!(folded_bands, folded_whole, "{g:?}");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩ for all x, y.
        for (c, h, w, k, s, p) in [(2, 5, 4, 3, 1, 1), (1, 7, 6, 3, 2, 1), (1, 4, 4, 3, 3, 2)] {
            let g = geometry(c, h, w, k, s, p);
            let x: Vec<f32> = (0..c * h * w)
                .map(|v| ((v * 7) % 11) as f32 - 5.0)
                .collect();
            let y: Vec<f32> = (0..g.rows() * g.cols())
                .map(|v| ((v * 5) % 13) as f32 - 6.0)
                .collect();
            let mut cols = vec![0.0; y.len()];
            im2col(&g, &x, &mut cols);
            let mut back = vec![0.0; x.len()];
            col2im(&g, &y, &mut back);
            let lhs: f32 = cols.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&back).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }
}
