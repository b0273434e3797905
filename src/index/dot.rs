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
/// the unscaled product of a compact row with an f32 query (`super::quant`). Each code
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

/// Whether `dot_groups_u8i8` runs on integer dot-product instructions (AVX-512 VNNI:
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

/// Rows of a group in [`dot_groups_u8i8`]'s layout: four loads of sixteen rows each.
pub(super) const GROUP_ROWS: usize = 64;

/// Bytes of one word (four bytes) of every row of a group: four 64-byte loads.
const GROUP_WORD: usize = 4 * GROUP_ROWS;

/// `out[q·stride + r] = bias[r] + Σⱼ c[r, j] · b_q[j]` exactly, in integers, for the int8
/// codes `c` of rows kept in groups of [`GROUP_ROWS`] and the unsigned bytes `b_q` of each
/// query. No overflow below `D` = 44 000 with `|bias| ≤ 128·127·D` (`|c·b| ≤ 127·255`
/// per term).
///
/// Layout: a vector of `D` bytes is `W = ⌈D/4⌉` words of four bytes (the last one padded
/// with zero codes); group `g` is `groups[256·W·g..256·W·(g + 1)]`, and word `k` of its
/// row `l` is its bytes `256·k + 4·l .. 256·k + 4·l + 4`: the 64-byte load at
/// `256·k + 64·s` holds word `k` of rows `16·s .. 16·s + 16`, and a group is read from
/// start to end, one stream, whatever the number of queries. Each query is its `W` words
/// (little-endian); `bias` has one value for each of the `64·G` rows of the `G` groups
/// read (`groups` may hold more). Writes those rows for every query; `stride ≥ 64·G`.
pub(super) fn dot_groups_u8i8(
    groups: &[i8],
    bias: &[i32],
    queries: &[&[u32]],
    out: &mut [i32],
    stride: usize,
) {
    let Some(w) = queries.first().map(|q| q.len()) else {
        return;
    };
    let n = bias.len() / GROUP_ROWS;
    assert!(
        queries.iter().all(|q| q.len() == w),
        "queries of one length"
    );
    assert!(bias.len() == n * GROUP_ROWS && groups.len() >= n * GROUP_WORD * w);
    assert!(stride >= GROUP_ROWS * n && out.len() >= stride * (queries.len() - 1) + GROUP_ROWS * n);
    if w == 0 {
        for q in 0..queries.len() {
            out[q * stride..][..bias.len()].copy_from_slice(bias);
        }
        return;
    }
    let groups = &groups[..n * GROUP_WORD * w];
    #[cfg(target_arch = "x86_64")]
    if integer_dot_is_fast() {
        // SAFETY: the CPU supports AVX-512F, BW and VNNI (checked just above).
        return unsafe { x86::dot_groups_u8i8_vnni(groups, bias, queries, out, stride) };
    }
    dot_groups_u8i8_portable(groups, bias, queries, out, stride)
}

fn dot_groups_u8i8_portable(
    groups: &[i8],
    bias: &[i32],
    queries: &[&[u32]],
    out: &mut [i32],
    stride: usize,
) {
    let w = queries[0].len();
    for (g, group) in groups.chunks_exact(GROUP_WORD * w).enumerate() {
        for (q, words) in queries.iter().enumerate() {
            for l in 0..GROUP_ROWS {
                let r = GROUP_ROWS * g + l;
                out[q * stride + r] = (0..w)
                    .flat_map(|k| {
                        let bytes = words[k].to_le_bytes();
                        (0..4).map(move |t| (k, t, bytes[t]))
                    })
                    .map(|(k, t, b)| i32::from(group[GROUP_WORD * k + 4 * l + t]) * i32::from(b))
                    .fold(bias[r], i32::wrapping_add);
            }
        }
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
    use super::{GROUP_ROWS, GROUP_WORD, dot_body, dot_many_body};

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

    /// 64 byte products per `vpdpbusd`, each a word of sixteen rows times one word of a
    /// query, summed in the sixteen lanes: no reduction across lanes. A group's four loads
    /// of a word serve up to four queries (up to sixteen independent sums, so the
    /// products are not held up by one sum's latency), and the group is read in order.
    /// Each sum starts from its row's bias.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn dot_groups_u8i8_vnni(
        groups: &[i8],
        bias: &[i32],
        queries: &[&[u32]],
        out: &mut [i32],
        stride: usize,
    ) {
        let w = queries[0].len();
        for (c, qs) in queries.chunks(4).enumerate() {
            let rows = groups
                .chunks_exact(GROUP_WORD * w)
                .zip(bias.chunks_exact(GROUP_ROWS));
            for (g, (group, bias)) in rows.enumerate() {
                let out = &mut out[4 * c * stride + GROUP_ROWS * g..];
                match qs.len() {
                    1 => group_tile::<1>(group, bias, qs, out, stride),
                    2 => group_tile::<2>(group, bias, qs, out, stride),
                    3 => group_tile::<3>(group, bias, qs, out, stride),
                    _ => group_tile::<4>(group, bias, qs, out, stride),
                }
            }
        }
    }

    /// How far ahead of the word a tile reads it asks for the codes: the next block of
    /// the scan at 128 dimensions (two groups). One thread's pass over a million faces
    /// waits on the memory, and the hardware's own prefetch leaves it short of what two
    /// threads read: with this, a Zen 5 EPYC's pass of one to sixteen queries on one
    /// thread took 16–25 % less time (BENCHMARKS.md, "Large galleries").
    const PREFETCH_AHEAD: usize = 16 * 1024;

    /// One group against `Q` queries, into `out[q·stride ..][..64]`; each word's cache
    /// lines [`PREFETCH_AHEAD`] bytes further on are asked for (again by each run of four
    /// queries: asked only by the first, a pass of eight or sixteen queries gained
    /// nothing).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn group_tile<const Q: usize>(
        group: &[i8],
        bias: &[i32],
        qs: &[&[u32]],
        out: &mut [i32],
        stride: usize,
    ) {
        use std::arch::x86_64::*;
        const LOADS: usize = GROUP_ROWS / 16;
        let w = qs[0].len();
        assert!(qs.len() == Q && group.len() == GROUP_WORD * w && bias.len() == GROUP_ROWS);
        let qs: [&[u32]; Q] = std::array::from_fn(|i| &qs[i][..w]);
        // SAFETY: 16·s + 16 ≤ GROUP_ROWS = bias.len(); unaligned loads.
        let start: [__m512i; LOADS] = std::array::from_fn(|s| unsafe {
            _mm512_loadu_si512(bias.as_ptr().add(16 * s).cast())
        });
        let mut acc = [start; Q];
        for (k, word) in group.chunks_exact(GROUP_WORD).enumerate() {
            for s in 0..LOADS {
                // A hint: an address past the codes' end is not read and cannot fault.
                let line = word.as_ptr().wrapping_add(PREFETCH_AHEAD + 64 * s);
                _mm_prefetch::<_MM_HINT_T0>(line.cast());
            }
            // SAFETY: 64·s + 64 ≤ GROUP_WORD = word.len(); unaligned loads.
            let c: [__m512i; LOADS] = std::array::from_fn(|s| unsafe {
                _mm512_loadu_si512(word.as_ptr().add(64 * s).cast())
            });
            for (acc, q) in acc.iter_mut().zip(qs) {
                let b = _mm512_set1_epi32(q[k] as i32);
                for (a, &c) in acc.iter_mut().zip(&c) {
                    *a = _mm512_dpbusd_epi32(*a, b, c);
                }
            }
        }
        for (q, acc) in acc.iter().enumerate() {
            for (s, &a) in acc.iter().enumerate() {
                let o = &mut out[q * stride + 16 * s..][..16];
                // SAFETY: `o` holds 16 i32 = 64 bytes; unaligned store.
                unsafe { _mm512_storeu_si512(o.as_mut_ptr().cast(), a) };
            }
        }
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

    /// Row-major codes `(R, d)` in [`dot_groups_u8i8`]'s layout (`R` a multiple of 64).
    fn grouped(codes: &[i8], d: usize) -> Vec<i8> {
        let w = d.div_ceil(4);
        let mut out = vec![0i8; codes.len() / d * 4 * w];
        for (r, row) in codes.chunks(d).enumerate() {
            for (j, &c) in row.iter().enumerate() {
                out[r / 64 * 256 * w + j / 4 * 256 + r % 64 * 4 + j % 4] = c;
            }
        }
        out
    }

    /// A query's bytes as little-endian words, the last padded with `pad`.
    fn words(bytes: &[u8], pad: u8) -> Vec<u32> {
        bytes
            .chunks(4)
            .map(|w| {
                let mut four = [pad; 4];
                four[..w.len()].copy_from_slice(w);
                u32::from_le_bytes(four)
            })
            .collect()
    }

    #[test]
    fn integer_products_are_exact_on_every_path() {
        // Three groups; one to six queries (a second run of queries past four); d below,
        // at and past a word, and between words.
        let rows = 3 * 64;
        for d in [3, 4, 5, 64, 128, 130, 256] {
            let mut codes: Vec<i8> = (0..d * rows)
                .map(|i| ((i * 53 % 255) as i32 - 127) as i8)
                .collect();
            // The extremes: a row of −127 and one of 127 (against bytes up to 255).
            codes[..d].fill(-127);
            codes[17 * d..18 * d].fill(127);
            let groups = grouped(&codes, d);
            // Biases of both signs, up to the largest a row's offset can need.
            let bias: Vec<i32> = (0..rows as i32)
                .map(|r| (r * 7_919 % 1_001 - 500) * 128 * 127 * d as i32 / 500)
                .collect();
            for n in 1..=6 {
                let queries: Vec<Vec<u8>> = (0..n)
                    .map(|q| (0..d).map(|i| ((i + 31 * q) * 97 % 256) as u8).collect())
                    .collect();
                let want: Vec<Vec<i32>> = queries
                    .iter()
                    .map(|q| {
                        codes
                            .chunks(d)
                            .zip(&bias)
                            .map(|(r, &bias)| {
                                bias + r
                                    .iter()
                                    .zip(q)
                                    .map(|(&c, &b)| c as i32 * b as i32)
                                    .sum::<i32>()
                            })
                            .collect()
                    })
                    .collect();
                // The padding bytes of the last word meet zero codes: any value will do.
                let packed: Vec<Vec<u32>> = queries.iter().map(|q| words(q, 255)).collect();
                let refs: Vec<&[u32]> = packed.iter().map(Vec::as_slice).collect();
                let stride = rows + 5;
                for (name, run) in [
                    (
                        "dispatched",
                        dot_groups_u8i8 as fn(&[i8], &[i32], &[&[u32]], &mut [i32], usize),
                    ),
                    ("portable", dot_groups_u8i8_portable),
                ] {
                    let mut got = vec![i32::MIN; stride * n];
                    run(&groups, &bias, &refs, &mut got, stride);
                    for (q, want) in want.iter().enumerate() {
                        assert_eq!(
                            &got[q * stride..q * stride + rows],
                            &want[..],
                            "{name} d={d}"
                        );
                        assert!(
                            got[q * stride + rows..(q + 1) * stride]
                                .iter()
                                .all(|&x| x == i32::MIN)
                        );
                    }
                }
            }
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
