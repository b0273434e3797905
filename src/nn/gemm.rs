//! Matrix multiplication: the fast kernel every heavy layer calls, and a naive reference.
//!
//! All matrices are row-major `f32` slices. An operand may be used transposed, which
//! only changes its strides, so backward passes never copy a transpose.
//!
//! Kernel choice (measured, see BENCHMARKS.md): the `gemm` crate (used by candle) is the
//! fastest pure-Rust f32 kernel available here; it dispatches to AVX-512/AVX2 micro-kernels.

use gemm::Parallelism;

pub mod unpacked;

/// Whether an operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// As stored.
    N,
    /// Transposed.
    T,
}

/// One product `c (m, n) = [c +] op(a) (m, k) · op(b) (k, n)`.
///
/// `a` holds `m·k` values stored `(m, k)` for `Op::N` or `(k, m)` for `Op::T`; likewise
/// `b` is stored `(k, n)` or `(n, k)`; `c` is `(m, n)`. Each may be a block of a wider
/// matrix: `ld` gives the distance between the starts of consecutive stored rows
/// (`None`: packed, the stored width).
#[derive(Debug, Clone, Copy)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub op_a: Op,
    pub op_b: Op,
    /// Add into `c` instead of overwriting it (gradient accumulation).
    pub accumulate: bool,
    /// Let the kernel use the rayon pool. Off when the caller already runs one product
    /// per rayon task (convolution over the batch).
    pub parallel: bool,
    /// Row strides of `a`, `b` and `c` as stored.
    pub ld: [Option<usize>; 3],
}

impl Gemm {
    /// `c = a · b` with both operands as stored, overwriting, single-threaded.
    pub fn new(m: usize, n: usize, k: usize) -> Self {
        Gemm {
            m,
            n,
            k,
            op_a: Op::N,
            op_b: Op::N,
            accumulate: false,
            parallel: false,
            ld: [None; 3],
        }
    }

    pub fn ops(self, op_a: Op, op_b: Op) -> Self {
        Gemm { op_a, op_b, ..self }
    }

    pub fn accumulate(self, accumulate: bool) -> Self {
        Gemm { accumulate, ..self }
    }

    pub fn parallel(self, parallel: bool) -> Self {
        Gemm { parallel, ..self }
    }

    /// Row strides of `a`, `b` and `c` as stored (`None`: packed).
    pub fn leading(self, lda: Option<usize>, ldb: Option<usize>, ldc: Option<usize>) -> Self {
        Gemm {
            ld: [lda, ldb, ldc],
            ..self
        }
    }

    /// `(rows, width, row stride)` of `a`, `b` and `c` as stored.
    fn stored(&self) -> [(usize, usize, usize); 3] {
        let (m, n, k) = (self.m, self.n, self.k);
        let a = match self.op_a {
            Op::N => (m, k),
            Op::T => (k, m),
        };
        let b = match self.op_b {
            Op::N => (k, n),
            Op::T => (n, k),
        };
        let mut out = [(a.0, a.1, a.1), (b.0, b.1, b.1), (m, n, n)];
        for (shape, ld) in out.iter_mut().zip(self.ld) {
            if let Some(ld) = ld {
                shape.2 = ld;
            }
        }
        out
    }

    /// Row and column strides of `a` and `b` as the kernel sees them (element (i, p) of
    /// op(a) sits at `i·rs + p·cs`).
    fn strides(&self) -> ((isize, isize), (isize, isize)) {
        let [(_, _, lda), (_, _, ldb), _] = self.stored();
        let (lda, ldb) = (lda as isize, ldb as isize);
        let a = match self.op_a {
            Op::N => (lda, 1),
            Op::T => (1, lda),
        };
        let b = match self.op_b {
            Op::N => (ldb, 1),
            Op::T => (1, ldb),
        };
        (a, b)
    }

    /// The lengths are internal invariants of the layers (shapes are checked with proper
    /// errors before any product), so a mismatch is a bug and must not reach `unsafe`:
    /// each slice must reach the last element of its last stored row, and a row stride
    /// must not be shorter than a row.
    fn check_lengths(&self, a: &[f32], b: &[f32], c: &[f32]) {
        for ((name, len), (rows, width, ld)) in [("a", a.len()), ("b", b.len()), ("c", c.len())]
            .into_iter()
            .zip(self.stored())
        {
            assert!(ld >= width, "gemm: row stride of {name}");
            let needed = if rows == 0 || width == 0 {
                0
            } else {
                (rows - 1) * ld + width
            };
            assert!(len >= needed, "gemm: length of {name}");
            if self.ld.iter().all(Option::is_none) {
                assert_eq!(len, rows * width, "gemm: length of {name}");
            }
        }
    }

    /// The row stride of `c`.
    fn ldc(&self) -> usize {
        self.stored()[2].2
    }

    /// The fast product.
    pub fn run(&self, a: &[f32], b: &[f32], c: &mut [f32]) {
        self.check_lengths(a, b, c);
        if self.m == 0 || self.n == 0 {
            return;
        }
        if self.k == 0 {
            if !self.accumulate {
                let ldc = self.ldc();
                for i in 0..self.m {
                    c[i * ldc..i * ldc + self.n].fill(0.0);
                }
            }
            return;
        }
        let ((a_rs, a_cs), (b_rs, b_cs)) = self.strides();
        let parallelism = if self.parallel {
            Parallelism::Rayon(0)
        } else {
            Parallelism::None
        };
        // SAFETY: the lengths were checked above, so every offset `i·rs + p·cs` the kernel
        // forms for i < m (or n), p < k lies inside its slice; `c` is borrowed mutably and
        // does not alias `a` or `b`.
        unsafe {
            gemm::gemm(
                self.m,
                self.n,
                self.k,
                c.as_mut_ptr(),
                1,
                self.ldc() as isize,
                self.accumulate,
                a.as_ptr(),
                a_cs,
                a_rs,
                b.as_ptr(),
                b_cs,
                b_rs,
                // gemm's convention: dst = alpha·dst + beta·lhs·rhs.
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    }

    /// The reference: three loops, f64 accumulation, no cleverness.
    pub fn run_naive(&self, a: &[f32], b: &[f32], c: &mut [f32]) {
        self.check_lengths(a, b, c);
        let ((a_rs, a_cs), (b_rs, b_cs)) = self.strides();
        let ldc = self.ldc();
        for i in 0..self.m {
            for j in 0..self.n {
                let mut sum = 0.0f64;
                for p in 0..self.k {
                    let av = a[(i as isize * a_rs + p as isize * a_cs) as usize];
                    let bv = b[(p as isize * b_rs + j as isize * b_cs) as usize];
                    sum += f64::from(av) * f64::from(bv);
                }
                let out = &mut c[i * ldc + j];
                *out = if self.accumulate {
                    *out + sum as f32
                } else {
                    sum as f32
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(len: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
        (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    #[test]
    fn fast_kernel_equals_naive_for_every_transpose_and_odd_sizes() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let sizes = [(1, 1, 1), (3, 5, 7), (17, 1, 33), (65, 31, 9), (2, 130, 67)];
        for &(m, n, k) in &sizes {
            for op_a in [Op::N, Op::T] {
                for op_b in [Op::N, Op::T] {
                    for accumulate in [false, true] {
                        for parallel in [false, true] {
                            let g = Gemm::new(m, n, k)
                                .ops(op_a, op_b)
                                .accumulate(accumulate)
                                .parallel(parallel);
                            let a = random(m * k, &mut rng);
                            let b = random(k * n, &mut rng);
                            let c0 = random(m * n, &mut rng);
                            let (mut fast, mut slow) = (c0.clone(), c0.clone());
                            g.run(&a, &b, &mut fast);
                            g.run_naive(&a, &b, &mut slow);
                            for (idx, (x, y)) in fast.iter().zip(&slow).enumerate() {
                                assert!(
                                    (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                                    "{g:?}: element {idx}: fast {x} vs naive {y}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    /// Rows `[.., width)` of every `ld`-wide stored row, packed.
    fn pack(m: &[f32], rows: usize, width: usize, ld: usize) -> Vec<f32> {
        (0..rows)
            .flat_map(|r| m[r * ld..r * ld + width].iter().copied())
            .collect()
    }

    #[test]
    fn blocks_of_wider_matrices_multiply_as_their_packed_copies_and_leave_the_rest() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (m, n, k) = (9, 13, 7);
        for op_a in [Op::N, Op::T] {
            for op_b in [Op::N, Op::T] {
                let (a_rows, a_width) = if op_a == Op::N { (m, k) } else { (k, m) };
                let (b_rows, b_width) = if op_b == Op::N { (k, n) } else { (n, k) };
                let (lda, ldb, ldc) = (a_width + 3, b_width + 5, n + 4);
                let a = random((a_rows - 1) * lda + a_width, &mut rng);
                let b = random((b_rows - 1) * ldb + b_width, &mut rng);
                let c0 = random(m * ldc, &mut rng);
                let g = Gemm::new(m, n, k).ops(op_a, op_b).accumulate(true);
                let mut strided = c0.clone();
                g.leading(Some(lda), Some(ldb), Some(ldc))
                    .run(&a, &b, &mut strided);
                let mut packed = pack(&c0, m, n, ldc);
                g.run_naive(
                    &pack(&a, a_rows, a_width, lda),
                    &pack(&b, b_rows, b_width, ldb),
                    &mut packed,
                );
                for i in 0..m {
                    for j in 0..ldc {
                        let got = strided[i * ldc + j];
                        let want = if j < n {
                            packed[i * n + j]
                        } else {
                            c0[i * ldc + j]
                        };
                        assert!(
                            (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{op_a:?} {op_b:?}: ({i}, {j}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn naive_kernel_matches_a_hand_computed_product() {
        // [[1, 2], [3, 4]] · [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [0.0; 4];
        Gemm::new(2, 2, 2).run_naive(&a, &b, &mut c);
        assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
        // aᵀ · b = [[1, 3], [2, 4]] · b = [[26, 30], [38, 44]]
        Gemm::new(2, 2, 2).ops(Op::T, Op::N).run(&a, &b, &mut c);
        assert_eq!(c, [26.0, 30.0, 38.0, 44.0]);
    }

    #[test]
    fn empty_inner_dimension_gives_zeros_or_leaves_c() {
        let mut c = [3.0f32; 6];
        Gemm::new(2, 3, 0).accumulate(true).run(&[], &[], &mut c);
        assert_eq!(c, [3.0; 6]);
        Gemm::new(2, 3, 0).run(&[], &[], &mut c);
        assert_eq!(c, [0.0; 6]);
    }
}
