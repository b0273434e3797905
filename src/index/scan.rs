//! The exact scan of several queries in one pass over the gallery: a blocked product of
//! the `(B, D)` queries with the `(N, D)` rows.
//!
//! A block of rows small enough to stay in the core's cache is scored against every
//! query before the next block is read, so the gallery crosses the memory bus once per
//! batch instead of once per query. At 100 000 × 128 the matrix is 51 MB — far larger
//! than any cache here — and a lone query spends most of its time waiting for it.
//!
//! With the rows' int8 codes ([`super::quant`]) the pass reads the codes instead, a
//! quarter of the bytes, and keeps every row whose score interval could reach the answer;
//! those few rows are then scored exactly from the f32 rows. Why that is exact: the scan
//! keeps the top `K` identities by their intervals' *lower* ends, whose worst is a floor
//! `L`; there are `K` distinct identities scoring at least `L`, so every identity of the
//! exact answer has a best row scoring at least `L`, and a row whose interval's upper end
//! is below `L` cannot be one. The floor only rises during the pass, so a row kept
//! against an earlier floor is checked again against the final one. With the integer
//! kernel a block is first tested as a whole: a bound above every row's exact score, from
//! the block's largest raw product and its rows' largest scale and radius
//! ([`Probe::group_upper`]); below the floor, the block holds no row of the answer and
//! its rows' intervals are never computed.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use rayon::prelude::*;

use super::FaceId;
use super::dot::{dot, dot_many};
use super::quant::{Codes, GROUP_ROWS, Probe};
use super::top::{Entry, TopIdentities};

/// Rows scored against every query while they sit in L1/L2 (64 KiB at D = 128).
const BLOCK_ROWS: usize = 128;
/// Rows per rayon task in a parallel scan (2 MiB of vectors at D = 128).
const CHUNK_ROWS: usize = 4_096;
// Blocks and chunks start on a group of the integer layout ([`Codes::integer_products`]).
const _: () =
    assert!(BLOCK_ROWS.is_multiple_of(GROUP_ROWS) && CHUNK_ROWS.is_multiple_of(BLOCK_ROWS));

/// The rows of an exact index, borrowed for one scan.
pub(crate) struct Rows<'a> {
    pub dim: usize,
    /// `(N, D)` row-major.
    pub vectors: &'a [f32],
    /// `(N)`.
    pub faces: &'a [FaceId],
    /// `(N)` identity slot of each row.
    pub owners: &'a [u32],
    /// The rows' int8 codes, when the index keeps them: then the pass reads these and
    /// re-scores its candidates from `vectors`.
    pub codes: Option<&'a Codes>,
}

impl Rows<'_> {
    fn len(&self) -> usize {
        self.faces.len()
    }
}

/// One query of a batch: the vector `(D)` and how many identities it wants.
pub(crate) struct Query<'a> {
    pub vector: &'a [f32],
    pub k: usize,
}

/// Each query's top-`k` distinct identities over every row, best first; on rayon chunks
/// of [`CHUNK_ROWS`] when `parallel`, merged exactly (see [`TopIdentities::merge`]).
pub(crate) fn scan(rows: &Rows<'_>, queries: &[Query<'_>], parallel: bool) -> Vec<Vec<Entry>> {
    if let Some(codes) = rows.codes {
        return scan_codes(rows, codes, queries, parallel);
    }
    let n = rows.len();
    let tops = if parallel && n > CHUNK_ROWS {
        (0..n.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .map(|c| scan_range(rows, queries, c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(n)))
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(x, y)| x.merge(y));
                a
            })
            .unwrap_or_else(|| fresh(queries))
    } else {
        scan_range(rows, queries, 0, n)
    };
    tops.into_iter().map(TopIdentities::into_sorted).collect()
}

fn fresh(queries: &[Query<'_>]) -> Vec<TopIdentities> {
    queries.iter().map(|q| TopIdentities::new(q.k)).collect()
}

/// Rows `start..end`, block by block, every query per block.
fn scan_range(
    rows: &Rows<'_>,
    queries: &[Query<'_>],
    start: usize,
    end: usize,
) -> Vec<TopIdentities> {
    let dim = rows.dim;
    let mut tops = fresh(queries);
    let mut scores = [0.0f32; BLOCK_ROWS]; // (block)
    let mut first = start;
    while first < end {
        let last = (first + BLOCK_ROWS).min(end);
        let block = &rows.vectors[first * dim..last * dim];
        let out = &mut scores[..last - first];
        for (q, top) in queries.iter().zip(tops.iter_mut()) {
            dot_many(block, q.vector, out);
            let mut floor = top.floor();
            for (i, &s) in out.iter().enumerate() {
                if s >= floor {
                    let r = first + i;
                    top.offer(Entry {
                        score: s,
                        face: rows.faces[r],
                        slot: rows.owners[r],
                    });
                    floor = top.floor();
                }
            }
        }
        first = last;
    }
    tops
}

/// One query's share of a pass over the codes: the top identities by lower bound, and
/// every row whose upper bound reached the floor when it was read.
struct Candidates {
    lower: TopIdentities,
    /// `(row, upper bound)`.
    rows: Vec<(u32, f32)>,
}

/// [`scan`] over the int8 codes, then the exact re-score (see the module docs).
fn scan_codes(
    rows: &Rows<'_>,
    codes: &Codes,
    queries: &[Query<'_>],
    parallel: bool,
) -> Vec<Vec<Entry>> {
    let n = rows.len();
    let probes: Vec<Probe<'_>> = queries
        .iter()
        .map(|q| Probe::new(q.vector, codes))
        .collect();
    let shared: Vec<SharedFloor> = queries.iter().map(|_| SharedFloor::new()).collect();
    let range = |start, end| scan_codes_range(rows, codes, queries, &probes, &shared, start, end);
    let parts = if parallel && n > CHUNK_ROWS {
        (0..n.div_ceil(CHUNK_ROWS))
            .into_par_iter()
            .map(|c| range(c * CHUNK_ROWS, ((c + 1) * CHUNK_ROWS).min(n)))
            .reduce_with(|mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    x.lower.merge(&y.lower);
                    x.rows.extend(y.rows);
                }
                a
            })
            .unwrap_or_else(|| range(0, 0))
    } else {
        range(0, n)
    };
    parts
        .into_iter()
        .zip(queries)
        .map(|(part, q)| {
            let floor = part.lower.floor();
            let mut top = TopIdentities::new(q.k);
            for &(r, upper) in &part.rows {
                if upper >= floor {
                    let r = r as usize;
                    top.offer(Entry {
                        score: dot(&rows.vectors[r * rows.dim..(r + 1) * rows.dim], q.vector),
                        face: rows.faces[r],
                        slot: rows.owners[r],
                    });
                }
            }
            top.into_sorted()
        })
        .collect()
}

/// A query's floor as far as any chunk of the pass knows it: the highest of the chunks'
/// own floors so far (f32 bits; it only rises).
///
/// Each chunk's floor is the `K`-th best lower bound among the rows it has read, never
/// above the final floor over every row, so a row whose upper bound is below any chunk's
/// floor cannot be in the answer, and its lower bound cannot be among the top `K`
/// either. Without it every chunk starts from −∞ and keeps most of its first rows.
struct SharedFloor(AtomicU32);

impl SharedFloor {
    fn new() -> Self {
        SharedFloor(AtomicU32::new(f32::NEG_INFINITY.to_bits()))
    }

    fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Relaxed))
    }

    /// Raises the floor to `x` if `x` is higher.
    fn raise(&self, x: f32) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |bits| {
            (x > f32::from_bits(bits)).then_some(x.to_bits())
        });
    }
}

fn scan_codes_range(
    rows: &Rows<'_>,
    codes: &Codes,
    queries: &[Query<'_>],
    probes: &[Probe<'_>],
    shared: &[SharedFloor],
    start: usize,
    end: usize,
) -> Vec<Candidates> {
    let mut parts: Vec<Candidates> = queries
        .iter()
        .map(|q| Candidates {
            lower: TopIdentities::new(q.k),
            rows: Vec::new(),
        })
        .collect();
    let mut products = [0.0f32; BLOCK_ROWS]; // (block)
    let mut halves = [0.0f32; BLOCK_ROWS]; // (block)
    // (B, block): every query's integer products of a block, taken together so that
    // each load of the codes serves the whole batch (unused without the integer kernel).
    let per_query = if codes.integer() { BLOCK_ROWS } else { 0 };
    let mut raw = vec![0i32; queries.len() * per_query];
    let words: Vec<&[u32]> = probes.iter().filter_map(Probe::words).collect();
    let mut first = start;
    while first < end {
        let last = (first + BLOCK_ROWS).min(end);
        let products = &mut products[..last - first];
        let halves = &mut halves[..last - first];
        if codes.integer() {
            codes.integer_products(rows.dim, &words, first, last - first, &mut raw, BLOCK_ROWS);
        }
        for (q, ((probe, part), shared)) in
            probes.iter().zip(parts.iter_mut()).zip(shared).enumerate()
        {
            // This block's rows (none without the integer kernel).
            let raw = &raw[q * per_query..][..per_query.min(last - first)];
            let mut floor = part.lower.floor().max(shared.get());
            let block = Block {
                codes,
                first,
                raw,
                products: &mut *products,
                halves: &mut *halves,
            };
            // Once the floor has risen, most blocks hold no row that could reach it.
            if bounds(probe, block, floor) < floor {
                continue;
            }
            for (i, (&approx, &half)) in products.iter().zip(halves.iter()).enumerate() {
                let r = first + i;
                if approx + half >= floor {
                    part.rows.push((r as u32, approx + half));
                    if approx - half >= floor {
                        part.lower.offer(Entry {
                            score: approx - half,
                            face: rows.faces[r],
                            slot: rows.owners[r],
                        });
                        let own = part.lower.floor();
                        if own > floor {
                            shared.raise(own);
                            floor = own;
                        }
                    }
                }
            }
        }
        first = last;
    }
    parts
}

/// One block of rows as a query's bounds are computed over it: rows `first..`, their
/// integer products with the query (`raw`, unread without the integer kernel), and the
/// outputs, one per row.
struct Block<'a> {
    codes: &'a Codes,
    first: usize,
    raw: &'a [i32],
    products: &'a mut [f32],
    halves: &'a mut [f32],
}

/// A block's approximate scores into `products` and their intervals' half-widths into
/// `halves` ([`Probe::products`], [`Probe::intervals`]); returns the highest upper end.
/// With the integer kernel the block is first tested whole ([`block_upper`]): when that
/// bound is below `floor` it is returned and the intervals are not computed. Compiled
/// for AVX-512 where the CPU has it: at the build's baseline (SSE2) these loops run four
/// lanes wide.
fn bounds(probe: &Probe<'_>, block: Block<'_>, floor: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU supports AVX-512F (checked just above).
        return unsafe { bounds_avx512(probe, block, floor) };
    }
    bounds_body(probe, block, floor)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn bounds_avx512(probe: &Probe<'_>, block: Block<'_>, floor: f32) -> f32 {
    bounds_body(probe, block, floor)
}

#[inline(always)]
fn bounds_body(probe: &Probe<'_>, b: Block<'_>, floor: f32) -> f32 {
    if b.codes.integer() {
        let upper = block_upper(probe, b.codes, b.first, b.raw);
        if upper < floor {
            return upper;
        }
    }
    probe.products(b.codes, b.first, b.raw, b.products);
    probe.intervals(b.codes, b.first, b.products, b.halves);
    highest_upper(b.products, b.halves)
}

/// An upper bound on the exact score of every row of a block (rows `first..`, `first` a
/// multiple of [`GROUP_ROWS`]) from their raw integer products: the highest of its groups'
/// [`Probe::group_upper`]. A lane-wide maximum per group instead of an interval per row.
#[inline(always)]
fn block_upper(probe: &Probe<'_>, codes: &Codes, first: usize, raw: &[i32]) -> f32 {
    debug_assert!(first.is_multiple_of(GROUP_ROWS));
    raw.chunks(GROUP_ROWS)
        .enumerate()
        .map(|(j, group)| {
            let top = group.iter().fold(i32::MIN, |m, &p| m.max(p));
            probe.group_upper(codes, first / GROUP_ROWS + j, top)
        })
        .fold(f32::NEG_INFINITY, f32::max)
}

/// The largest `approx + half` of a block (−∞ when empty), lane by lane so that the
/// compiler vectorises it: the per-row test of the scan then runs only for the blocks
/// where some row passes.
#[inline(always)]
fn highest_upper(approx: &[f32], halves: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut top = [f32::NEG_INFINITY; LANES];
    let (a, a_tail) = approx.as_chunks::<LANES>();
    let (h, h_tail) = halves.as_chunks::<LANES>();
    for (a, h) in a.iter().zip(h) {
        for i in 0..LANES {
            let u = a[i] + h[i];
            top[i] = if u > top[i] { u } else { top[i] };
        }
    }
    let tail = a_tail.iter().zip(h_tail).map(|(a, h)| a + h);
    top.into_iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_rows(n: usize, d: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        let mut v: Vec<f32> = (0..n * d)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        for row in v.chunks_mut(d) {
            let norm = dot(row, row).sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        v
    }

    #[test]
    fn the_highest_upper_bound_is_the_largest_sum_whatever_the_length() {
        assert_eq!(highest_upper(&[], &[]), f32::NEG_INFINITY);
        for n in [1, 15, 16, 37, 128] {
            let approx: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
                .collect();
            let halves: Vec<f32> = (0..n).map(|i| (i % 5) as f32 * 0.01).collect();
            let want = approx
                .iter()
                .zip(&halves)
                .map(|(a, h)| a + h)
                .fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(highest_upper(&approx, &halves), want, "n = {n}");
            // The largest in the tail past the last full group of sixteen.
            let mut tail = approx.clone();
            tail[n - 1] = 5.0;
            assert_eq!(
                highest_upper(&tail, &halves),
                5.0 + halves[n - 1],
                "n = {n}"
            );
        }
    }

    /// Both kernels of the int8 pass (whichever the CPU prefers, the server uses one)
    /// against the f32 scan, serial and in parallel chunks, with near-duplicate rows.
    #[test]
    fn both_kernels_of_the_int8_pass_equal_the_f32_scan() {
        let (n, d) = (9_000, 48);
        let mut vectors = unit_rows(n, d, 3);
        // Rows 100..300 nearly repeat rows 0..200 (scores closer than the rounding).
        for r in 100..300 {
            let (src, dst) = vectors.split_at_mut(r * d);
            for (x, y) in dst[..d].iter_mut().zip(&src[(r - 100) * d..(r - 99) * d]) {
                *x = y * 0.999_9 + *x * 1e-3;
            }
            let norm = dot(&dst[..d], &dst[..d]).sqrt();
            dst[..d].iter_mut().for_each(|x| *x /= norm);
        }
        let faces: Vec<FaceId> = (0..n as FaceId).collect();
        let owners: Vec<u32> = (0..n as u32).map(|r| r % 2_500).collect();
        let mut both = [Codes::new(false), Codes::new(true)];
        for codes in &mut both {
            vectors.chunks(d).for_each(|v| codes.push(v));
        }
        let plain = Rows {
            dim: d,
            vectors: &vectors,
            faces: &faces,
            owners: &owners,
            codes: None,
        };
        let queries_v = unit_rows(12, d, 9);
        let mut queries: Vec<Query<'_>> = queries_v
            .chunks(d)
            .enumerate()
            .map(|(i, v)| Query {
                vector: v,
                k: 1 + i % 7,
            })
            .collect();
        // Queries equal to stored rows: their own row ties the near-duplicates closely.
        queries.extend((0..4).map(|r| Query {
            vector: &vectors[r * d..(r + 1) * d],
            k: 5,
        }));
        for parallel in [false, true] {
            let want = scan(&plain, &queries, parallel);
            for codes in &both {
                let got = scan_codes(&plain, codes, &queries, parallel);
                assert_eq!(got, want, "parallel {parallel} integer {}", codes.integer());
            }
        }
    }
}
