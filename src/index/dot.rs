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
    dot_body::<f32, false>(a, b)
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
    dot_many_body::<f32, false>(rows, q, out)
}

/// `out[r] = Σⱼ rows[r, j] · q[j]` for int8 `rows` of shape `(R, D)` with `D = q.len()`:
/// the unscaled product of a compact row with an f32 query ([`super::quant`]). Each code
/// is widened to f32 in the loop, so the row costs a quarter of an f32 row's memory
/// traffic and the same arithmetic.
pub fn dot_many_i8(rows: &[i8], q: &[f32], out: &mut [f32]) {
    debug_assert_eq!(rows.len(), q.len() * out.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { x86::dot_many_i8_avx512(rows, q, out) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { x86::dot_many_i8_avx2(rows, q, out) };
        }
    }
    dot_many_body::<i8, false>(rows, q, out)
}

/// Whether [`dot_many_u8i8`] runs on integer dot-product instructions (AVX-512 VNNI:
/// 64 multiply-adds of bytes per instruction); without them it is portable and slow, and
/// callers use [`dot_many_i8`] instead.
pub fn integer_dot_is_fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[r] = Σⱼ rows[r, j] · q[j]` exactly, in integers, for int8 `rows` of shape
/// `(R, D)` and unsigned bytes `q` of length `D`. No overflow below `D` = 66 000
/// (`|rows·q| ≤ 127·255` per term).
pub fn dot_many_u8i8(rows: &[i8], q: &[u8], out: &mut [i32]) {
    debug_assert_eq!(rows.len(), q.len() * out.len());
    #[cfg(target_arch = "x86_64")]
    if integer_dot_is_fast() {
        // SAFETY: the CPU supports AVX-512F, BW and VNNI (checked just above).
        return unsafe { x86::dot_many_u8i8_vnni(rows, q, out) };
    }
    dot_many_u8i8_portable(rows, q, out)
}

fn dot_many_u8i8_portable(rows: &[i8], q: &[u8], out: &mut [i32]) {
    if q.is_empty() {
        out.fill(0);
        return;
    }
    for (row, o) in rows.chunks_exact(q.len()).zip(out.iter_mut()) {
        *o = row
            .iter()
            .zip(q)
            .map(|(&c, &b)| i32::from(c) * i32::from(b))
            .sum();
    }
}

/// The shared kernel. `FMA` selects fused multiply-add, which is only fast inside a
/// function compiled with the `fma` target feature (elsewhere it is a libm call). `T` is
/// f32, or i8 for compact rows (widened exactly: every i8 is an f32).
#[inline(always)]
fn dot_body<T: Copy + Into<f32>, const FMA: bool>(a: &[T], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a_chunks, a_tail) = a[..n].as_chunks::<LANES>();
    let (b_chunks, b_tail) = b[..n].as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for i in 0..LANES {
            let xi: f32 = x[i].into();
            acc[i] = if FMA {
                xi.mul_add(y[i], acc[i])
            } else {
                xi * y[i] + acc[i]
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
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(&x, y)| x.into() * y).sum();
    acc[0] + tail
}

#[inline(always)]
fn dot_many_body<T: Copy + Into<f32>, const FMA: bool>(rows: &[T], q: &[f32], out: &mut [f32]) {
    if q.is_empty() {
        out.fill(0.0);
        return;
    }
    for (row, o) in rows.chunks_exact(q.len()).zip(out.iter_mut()) {
        *o = dot_body::<T, FMA>(row, q);
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{dot_body, dot_many_body};

    #[target_feature(enable = "avx512f")]
    pub(super) fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        dot_body::<f32, true>(a, b)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        dot_body::<f32, true>(a, b)
    }

    #[target_feature(enable = "avx512f")]
    pub(super) fn dot_many_avx512(rows: &[f32], q: &[f32], out: &mut [f32]) {
        dot_many_body::<f32, true>(rows, q, out)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_many_avx2(rows: &[f32], q: &[f32], out: &mut [f32]) {
        dot_many_body::<f32, true>(rows, q, out)
    }

    /// 64 byte products per `vpdpbusd`: a 128-d row is two instructions. Rows go
    /// sixteen at a time: each row's sixteen partial sums stay in a register and the
    /// sixteen registers are reduced together into one register of sixteen totals
    /// ([`sum16`]), which costs under three instructions a row instead of the nine of a
    /// reduction per row. Integer sums are exact, so any order gives the same totals.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn dot_many_u8i8_vnni(rows: &[i8], q: &[u8], out: &mut [i32]) {
        use std::arch::x86_64::*;
        let d = q.len();
        if d == 0 {
            out.fill(0);
            return;
        }
        let groups = rows.chunks_exact(16 * d).zip(out.chunks_exact_mut(16));
        match d {
            64 => groups_of_pieces::<1>(groups, q),
            128 => groups_of_pieces::<2>(groups, q),
            192 => groups_of_pieces::<3>(groups, q),
            256 => groups_of_pieces::<4>(groups, q),
            _ => {
                for (group, o) in groups {
                    let mut acc = [_mm512_setzero_si512(); 16];
                    for (a, row) in acc.iter_mut().zip(group.chunks_exact(d)) {
                        *a = row_partials(row, q);
                    }
                    // SAFETY: `o` holds 16 i32 = 64 bytes; unaligned store.
                    unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), sum16(acc)) };
                }
            }
        }
        let done = out.len() - out.len() % 16;
        for (row, o) in rows[done * d..].chunks_exact(d).zip(&mut out[done..]) {
            *o = _mm512_reduce_add_epi32(row_partials(row, q));
        }
    }

    /// Groups of sixteen rows of `P` 64-byte pieces (`D = 64·P`, the common embedding
    /// sizes): the query stays in registers and the loops unroll, which halves the time
    /// a row takes against the general loop (0.8–1.1 against 2.3–2.4 ns at D = 128,
    /// codes in L1).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn groups_of_pieces<'a, const P: usize>(
        groups: impl Iterator<Item = (&'a [i8], &'a mut [i32])>,
        q: &[u8],
    ) {
        use std::arch::x86_64::*;
        let d = 64 * P;
        debug_assert_eq!(q.len(), d);
        // SAFETY: q.len() = 64·P; unaligned loads.
        let b: [__m512i; P] =
            std::array::from_fn(|p| unsafe { _mm512_loadu_si512(q.as_ptr().add(64 * p).cast()) });
        for (group, o) in groups {
            debug_assert!(group.len() == 16 * d && o.len() == 16);
            let acc: [__m512i; 16] = std::array::from_fn(|r| {
                let mut a = _mm512_setzero_si512();
                for (p, &b) in b.iter().enumerate() {
                    // SAFETY: r·d + 64·p + 64 ≤ 16·d = group.len(); unaligned load.
                    let c =
                        unsafe { _mm512_loadu_si512(group.as_ptr().add(r * d + 64 * p).cast()) };
                    a = _mm512_dpbusd_epi32(a, b, c);
                }
                a
            });
            // SAFETY: `o` holds 16 i32 = 64 bytes; unaligned store.
            unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), sum16(acc)) };
        }
    }

    /// Sixteen partial sums of `⟨row, q⟩` (their total is the product); the last piece
    /// of fewer than 64 bytes is read through a mask that zeroes the rest.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn row_partials(row: &[i8], q: &[u8]) -> std::arch::x86_64::__m512i {
        use std::arch::x86_64::*;
        let d = q.len().min(row.len());
        let mut acc = _mm512_setzero_si512();
        let mut j = 0;
        while j + 64 <= d {
            // SAFETY: j + 64 ≤ d ≤ row.len(), q.len(); unaligned loads.
            let (c, b) = unsafe {
                (
                    _mm512_loadu_si512(row.as_ptr().add(j).cast()),
                    _mm512_loadu_si512(q.as_ptr().add(j).cast()),
                )
            };
            acc = _mm512_dpbusd_epi32(acc, b, c);
            j += 64;
        }
        if j < d {
            let mask: __mmask64 = (1u64 << (d - j)) - 1; // d − j < 64
            // SAFETY: the mask reads only bytes j..d, inside both slices.
            let (c, b) = unsafe {
                (
                    _mm512_maskz_loadu_epi8(mask, row.as_ptr().add(j)),
                    _mm512_maskz_loadu_epi8(mask, q.as_ptr().add(j).cast()),
                )
            };
            acc = _mm512_dpbusd_epi32(acc, b, c);
        }
        acc
    }

    /// The sixteen totals of sixteen registers: element `r` of the result is the sum of
    /// `a[r]`'s elements. Pairs are interleaved and added three times — 32-bit elements,
    /// then 64-bit pairs within each 128-bit lane, then the lanes — so every addition
    /// joins halves of the same row.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn sum16(a: [std::arch::x86_64::__m512i; 16]) -> std::arch::x86_64::__m512i {
        use std::arch::x86_64::*;
        // Per 128-bit lane, x = [x0 x1 x2 x3]: [x0+x2, y0+y2, x1+x3, y1+y3].
        let pairs: [__m512i; 8] = std::array::from_fn(|i| {
            let (x, y) = (a[2 * i], a[2 * i + 1]);
            _mm512_add_epi32(_mm512_unpacklo_epi32(x, y), _mm512_unpackhi_epi32(x, y))
        });
        // Per lane: the lane's share of rows 4i..4i+4, in order.
        let quads: [__m512i; 4] = std::array::from_fn(|i| {
            let (x, y) = (pairs[2 * i], pairs[2 * i + 1]);
            _mm512_add_epi32(_mm512_unpacklo_epi64(x, y), _mm512_unpackhi_epi64(x, y))
        });
        // Lanes: quads[k]'s four lanes summed into lane k.
        let halves = |x: __m512i, y: __m512i| {
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0b10_00_10_00>(x, y),
                _mm512_shuffle_i32x4::<0b11_01_11_01>(x, y),
            )
        };
        halves(halves(quads[0], quads[1]), halves(quads[2], quads[3]))
    }

    /// The int8 kernels are written with intrinsics: auto-vectorised, the widening of
    /// the codes came out two lanes wide.
    #[target_feature(enable = "avx512f")]
    pub(super) fn dot_many_i8_avx512(rows: &[i8], q: &[f32], out: &mut [f32]) {
        use std::arch::x86_64::*;
        let d = q.len();
        if d == 0 {
            out.fill(0.0);
            return;
        }
        let full = d - d % 16;
        for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
            let (mut acc0, mut acc1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
            let mut j = 0;
            while j + 32 <= full {
                // SAFETY: j + 32 ≤ d = row.len() = q.len(); unaligned loads.
                let (c0, c1, q0, q1) = unsafe {
                    (
                        _mm_loadu_si128(row.as_ptr().add(j).cast()),
                        _mm_loadu_si128(row.as_ptr().add(j + 16).cast()),
                        _mm512_loadu_ps(q.as_ptr().add(j)),
                        _mm512_loadu_ps(q.as_ptr().add(j + 16)),
                    )
                };
                acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c0)), q0, acc0);
                acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c1)), q1, acc1);
                j += 32;
            }
            if j < full {
                // SAFETY: j + 16 ≤ full ≤ d.
                let (c0, q0) = unsafe {
                    (
                        _mm_loadu_si128(row.as_ptr().add(j).cast()),
                        _mm512_loadu_ps(q.as_ptr().add(j)),
                    )
                };
                acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c0)), q0, acc0);
            }
            let tail: f32 = row[full..]
                .iter()
                .zip(&q[full..])
                .map(|(&c, y)| f32::from(c) * y)
                .sum();
            *o = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + tail;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn dot_many_i8_avx2(rows: &[i8], q: &[f32], out: &mut [f32]) {
        use std::arch::x86_64::*;
        let d = q.len();
        if d == 0 {
            out.fill(0.0);
            return;
        }
        let full = d - d % 8;
        for (row, o) in rows.chunks_exact(d).zip(out.iter_mut()) {
            let (mut acc0, mut acc1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut j = 0;
            while j + 16 <= full {
                // SAFETY: j + 16 ≤ d = row.len() = q.len(); unaligned 8-byte and 32-byte loads.
                let (c0, c1, q0, q1) = unsafe {
                    (
                        _mm_loadl_epi64(row.as_ptr().add(j).cast()),
                        _mm_loadl_epi64(row.as_ptr().add(j + 8).cast()),
                        _mm256_loadu_ps(q.as_ptr().add(j)),
                        _mm256_loadu_ps(q.as_ptr().add(j + 8)),
                    )
                };
                acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c0)), q0, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c1)), q1, acc1);
                j += 16;
            }
            if j < full {
                // SAFETY: j + 8 ≤ full ≤ d.
                let (c0, q0) = unsafe {
                    (
                        _mm_loadl_epi64(row.as_ptr().add(j).cast()),
                        _mm256_loadu_ps(q.as_ptr().add(j)),
                    )
                };
                acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c0)), q0, acc0);
            }
            let acc = _mm256_add_ps(acc0, acc1);
            let half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
            let pair = _mm_add_ps(half, _mm_movehl_ps(half, half));
            let one = _mm_add_ss(pair, _mm_shuffle_ps(pair, pair, 1));
            let tail: f32 = row[full..]
                .iter()
                .zip(&q[full..])
                .map(|(&c, y)| f32::from(c) * y)
                .sum();
            *o = _mm_cvtss_f32(one) + tail;
        }
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
                ("portable", dot_body::<f32, false>(&a, &b)),
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

    #[test]
    fn integer_products_are_exact_on_every_path() {
        // 37 rows: two groups of sixteen and five alone; d below, at and past 64-byte
        // pieces, with a masked remainder.
        let rows = 37;
        for d in [5, 64, 128, 192, 200, 256, 320] {
            let mut codes: Vec<i8> = (0..d * rows)
                .map(|i| ((i * 53 % 255) as i32 - 127) as i8)
                .collect();
            // The extremes: a row of −127 and one of 127 (against bytes up to 255).
            codes[..d].fill(-127);
            codes[17 * d..18 * d].fill(127);
            let q: Vec<u8> = (0..d).map(|i| (i * 97 % 256) as u8).collect();
            let want: Vec<i32> = codes
                .chunks(d)
                .map(|r| r.iter().zip(&q).map(|(&c, &b)| c as i32 * b as i32).sum())
                .collect();
            let mut got = vec![0; rows];
            dot_many_u8i8(&codes, &q, &mut got);
            assert_eq!(got, want, "dispatched d={d}");
            dot_many_u8i8_portable(&codes, &q, &mut got);
            assert_eq!(got, want, "portable d={d}");
        }
    }

    #[test]
    fn int8_rows_equal_their_f32_widening() {
        // 133 = 4·32 + 5: the 32-wide loop, no 16-wide step, a scalar tail; 150 adds one.
        for d in [133, 150] {
            let codes: Vec<i8> = (0..d * 4)
                .map(|i| ((i * 37 % 255) as i32 - 127) as i8)
                .collect();
            let wide: Vec<f32> = codes.iter().map(|&c| f32::from(c)).collect();
            let q = pseudo_random(d, 5);
            let mut got = vec![f32::NAN; 4];
            let mut want = vec![f32::NAN; 4];
            dot_many(&wide, &q, &mut want);
            let mut paths = vec![("dispatched", {
                dot_many_i8(&codes, &q, &mut got);
                got.clone()
            })];
            dot_many_body::<i8, false>(&codes, &q, &mut got);
            paths.push(("portable", got.clone()));
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                unsafe { x86::dot_many_i8_avx2(&codes, &q, &mut got) };
                paths.push(("avx2", got.clone()));
            }
            for (name, got) in paths {
                for (g, w) in got.iter().zip(&want) {
                    assert!(
                        (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                        "{name}: {g} vs {w}"
                    );
                }
            }
        }
    }
}
