//! Dot products of f32 vectors, dispatched at run time to AVX-512, AVX2+FMA or portable
//! code. The build targets baseline x86-64 (SSE2), so without run-time dispatch the
//! scan would use a quarter of the vector width this machine has.
//!
//! One body serves every path: [`dot_body`] keeps `LANES` independent partial sums, which
//! the compiler maps onto vector registers without reassociating any addition (so it
//! vectorises without fast-math), and reduces them pairwise at the end.

/// Independent partial sums: two AVX-512 registers, four AVX2 registers — enough to hide
/// the add latency at D = 128.
const LANES: usize = 32;

/// `⟨a, b⟩ = Σᵢ aᵢ bᵢ` over the common length of `a` and `b`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { x86::dot_avx512(a, b) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::dot_avx2(a, b) };
        }
    }
    dot_body::<false>(a, b)
}

/// `out[r] = ⟨rows[r], q⟩` for a row-major `rows` of shape `(R, D)` with `D = q.len()`;
/// `R = out.len()`. The feature check runs once per call, not once per row.
pub fn dot_many(rows: &[f32], q: &[f32], out: &mut [f32]) {
    debug_assert_eq!(rows.len(), q.len() * out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { x86::dot_many_avx512(rows, q, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::dot_many_avx2(rows, q, out) };
        }
    }
    dot_many_body::<false>(rows, q, out)
}

/// The shared kernel. `FMA` selects fused multiply-add, which is only fast inside a
/// function compiled with the `fma` target feature (elsewhere it is a libm call).
#[inline(always)]
fn dot_body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..n].as_chunks::<LANES>();
    let (b_chunks, b_tail) = b[..n].as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for i in 0..LANES {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                x[i] * y[i] + acc[i]
            };
        }
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    acc[0] + tail
}

#[inline(always)]
fn dot_many_body<const FMA: bool>(rows: &[f32], q: &[f32], out: &mut [f32]) {
    if q.is_empty() {
        out.fill(0.0);
        return;
    }
    for (row, o) in rows.chunks_exact(q.len()).zip(out.iter_mut()) {
        *o = dot_body::<FMA>(row, q);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{dot_body, dot_many_body};

    #[target_feature(enable = "avx512f")]
    pub(super) fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        dot_body::<true>(a, b)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        dot_body::<true>(a, b)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn dot_many_avx512(rows: &[f32], q: &[f32], out: &mut [f32]) {
        dot_many_body::<true>(rows, q, out)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_many_avx2(rows: &[f32], q: &[f32], out: &mut [f32]) {
        dot_many_body::<true>(rows, q, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive reference: f64 accumulation, one term at a time.
    fn dot_naive(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        // A small LCG is enough to exercise every lane with distinct values.
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn fast_paths_match_the_naive_sum_for_lengths_around_the_lane_count() {
        for n in [0, 1, 7, 31, 32, 33, 64, 127, 128, 129, 512, 1000] {
            let a = pseudo_random(n, 1);
            let b = pseudo_random(n, 2);
            let want = dot_naive(&a, &b);
            for (name, got) in [
                ("dispatched", dot(&a, &b)),
                ("portable", dot_body::<false>(&a, &b)),
            ] {
                assert!(
                    (got as f64 - want).abs() <= 1e-5 * (1.0 + n as f64).sqrt(),
                    "{name} n={n}: got {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn dot_many_equals_dot_per_row() {
        let d = 96;
        let rows = pseudo_random(d * 5, 3);
        let q = pseudo_random(d, 4);
        let mut out = vec![f32::NAN; 5];
        dot_many(&rows, &q, &mut out);
        for (r, &o) in out.iter().enumerate() {
            assert_eq!(o, dot(&rows[r * d..(r + 1) * d], &q), "row {r}");
        }
    }
}
