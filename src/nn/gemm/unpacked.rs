//! A product that reads its operands where they lie: `c (m, n) = a (m, k) · b (k, n)`,
//! row-major and packed, for the many small products of Winograd's form (36 per band,
//! `k` = the convolution's input channels, 32–128 in the ResNet-14 and the reference
//! CNN).
//!
//! The `gemm` crate copies both operands into its own panel layout on every call, which
//! pays for itself on long products and not on these: a band's `V[ξ]` is written once by
//! the input transform and read once by its product. Here each block of `c`, up to eight
//! rows by 48 columns, keeps its sums in 24 AVX-512 registers while `k` runs: every step
//! loads three vectors of a row of `b` in place and multiplies them by eight values of
//! `a`, each broadcast from memory. A column block of `b` (`k` × 48 values: 6–24 KB at
//! 32–128 channels) stays in the L1 cache while every row block of `c` reads it.
//!
//! Each value of `c` is one chain of fused multiply-adds in the order of `k`. The `gemm`
//! crate's order is its own (it blocks the depth), so the two are not promised to agree
//! to the bit; at the reference CNN's depths (32 and 64) they did: its recipe retrains
//! into the same weights on an AVX2 machine (BENCHMARKS.md). Without AVX-512 the `gemm`
//! crate computes the product.

use super::Gemm;

/// Rows of `c` a block keeps in registers.
const ROWS: usize = 8;
/// Vectors of sixteen columns a block keeps in registers per row.
const VECTORS: usize = 3;
/// Columns of a block.
const COLS: usize = 16 * VECTORS;

/// Whether [`product`] runs its own kernel here (AVX-512); else it calls the `gemm` crate.
pub fn own_kernel() -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        return true;
    }
    false
}

/// `c = a · b`: `a (m, k)`, `b (k, n)`, `c (m, n)`, row-major and packed, `c`
/// overwritten, on the calling thread.
pub fn product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert_eq!(a.len(), m * k, "unpacked product: length of a");
    assert_eq!(b.len(), k * n, "unpacked product: length of b");
    assert_eq!(c.len(), m * n, "unpacked product: length of c");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above); the lengths were
        // checked against the shape.
        return unsafe { avx512::product(m, n, k, a, b, c) };
    }
    Gemm::new(m, n, k).run(a, b, c);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{COLS, ROWS, VECTORS};
    use std::arch::x86_64::*;

    /// [`super::product`] a block of `c` at a time.
    ///
    /// # Safety
    /// The CPU supports AVX-512F; `a`, `b` and `c` hold `m·k`, `k·n` and `m·n` values.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn product(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        for j in (0..n).step_by(COLS) {
            let cols = (n - j).min(COLS);
            for i in (0..m).step_by(ROWS) {
                let rows = (m - i).min(ROWS);
                // SAFETY: rows i..i + rows of `a` and `c` and columns j..j + cols of `b`
                // and `c` lie inside the operands (the caller's lengths).
                unsafe {
                    let (a, b, c) = (a.add(i * k), b.add(j), c.add(i * n + j));
                    block_rows(rows, cols, Block { k, ld: n, a, b, c });
                }
            }
        }
    }

    /// One block of `rows` ≤ 8 rows and `cols` ≤ 48 columns: the register count chosen
    /// at compile time for each size, so that the sums stay in registers.
    ///
    /// # Safety
    /// As [`block`].
    #[target_feature(enable = "avx512f")]
    unsafe fn block_rows(rows: usize, cols: usize, at: Block) {
        macro_rules! by_vectors {
            ($r:expr) => {
                match cols.div_ceil(16) {
                    1 => block::<$r, 1>(cols, at),
                    2 => block::<$r, 2>(cols, at),
                    _ => block::<$r, VECTORS>(cols, at),
                }
            };
        }
        // SAFETY: passed on from the caller.
        unsafe {
            match rows {
                1 => by_vectors!(1),
                2 => by_vectors!(2),
                3 => by_vectors!(3),
                4 => by_vectors!(4),
                5 => by_vectors!(5),
                6 => by_vectors!(6),
                7 => by_vectors!(7),
                _ => by_vectors!(ROWS),
            }
        }
    }

    /// Where a block of `c` and its operands start: `a` rows of `k` values, `b` (`k`
    /// rows) and `c` rows of stride `ld`.
    #[derive(Clone, Copy)]
    struct Block {
        k: usize,
        ld: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
    }

    /// `c[r][0..cols] = Σ_p a[r·k + p] · b[p·ld + 0..cols]` for `r < R`, `cols` in
    /// `16·(S − 1) + 1 ..= 16·S`, the last vector's missing columns masked off.
    ///
    /// # Safety
    /// The CPU supports AVX-512F; `a` holds `R` rows of `k` values; `b` holds `k` rows
    /// of stride `ld`, and `c` `R` rows of stride `ld`, each with `cols` values.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn block<const R: usize, const S: usize>(cols: usize, at: Block) {
        let Block { k, ld, a, b, c } = at;
        let masks: [__mmask16; S] = std::array::from_fn(|s| {
            let lanes = cols.saturating_sub(16 * s).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        });
        let mut sum = [[_mm512_setzero_ps(); S]; R];
        for p in 0..k {
            // SAFETY: row p < k of `b`, its columns under the masks (masked-off lanes
            // are not read), and values p of `a`'s R rows, as the caller promises.
            unsafe {
                let row = b.add(p * ld);
                let v: [__m512; S] =
                    std::array::from_fn(|s| _mm512_maskz_loadu_ps(masks[s], row.add(16 * s)));
                for (r, sum) in sum.iter_mut().enumerate() {
                    let u = _mm512_set1_ps(*a.add(r * k + p));
                    for (sum, v) in sum.iter_mut().zip(v) {
                        *sum = _mm512_fmadd_ps(u, v, *sum);
                    }
                }
            }
        }
        for (r, sum) in sum.iter().enumerate() {
            for (s, sum) in sum.iter().enumerate() {
                // SAFETY: row r < R of `c`, its columns under the mask.
                unsafe { _mm512_mask_storeu_ps(c.add(r * ld + 16 * s), masks[s], *sum) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Every block size and column remainder the kernel distinguishes (rows 1–8 and
    /// past, columns in one, two and three vectors and past a block, with and without a
    /// partial vector), and `k` of 0, 1 and more, against the f64 reference.
    #[test]
    fn products_of_every_block_shape_equal_the_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for m in [1, 3, 7, 8, 9, 16, 17, 32] {
            for n in [1, 15, 16, 17, 33, 47, 48, 49, 96, 100, 168] {
                for k in [0, 1, 5, 32] {
                    let a: Vec<f32> = (0..m * k).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let b: Vec<f32> = (0..k * n).map(|_| rng.random_range(-1.0..1.0)).collect();
                    let mut got = vec![f32::NAN; m * n];
                    let mut want = vec![0.0; m * n];
                    product(m, n, k, &a, &b, &mut got);
                    Gemm::new(m, n, k).run_naive(&a, &b, &mut want);
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (g - w).abs() <= 1e-5 * (1.0 + w.abs()),
                            "{m}×{n}×{k}: c[{}][{}] = {g}, want {w}",
                            i / n,
                            i % n
                        );
                    }
                }
            }
        }
    }

    /// The masked stores write nothing past a row's `n` values: `c` as a prefix of a
    /// longer buffer keeps the rest.
    #[test]
    fn nothing_is_written_past_the_last_column() {
        let (m, n, k) = (9, 50, 3);
        let a = vec![1.0f32; m * k];
        let b = vec![1.0f32; k * n];
        let mut c = vec![-7.0f32; m * n + 40];
        product(m, n, k, &a, &b, &mut c[..m * n]);
        assert!(c[..m * n].iter().all(|&v| v == 3.0));
        assert!(c[m * n..].iter().all(|&v| v == -7.0));
    }
}
