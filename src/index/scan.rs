//! The exact scan of several queries in one pass over the gallery: a blocked product of
//! the `(B, D)` queries with the `(N, D)` rows.
//!
//! A block of rows small enough to stay in the core's cache is scored against every
//! query before the next block is read, so the gallery crosses the memory bus once per
//! batch instead of once per query. At 100 000 × 128 the matrix is 51 MB — far larger
//! than any cache here — and a lone query spends most of its time waiting for it.

use rayon::prelude::*;

use super::FaceId;
use super::dot::dot_many;
use super::top::{Entry, TopIdentities};

/// Rows scored against every query while they sit in L1/L2 (64 KiB at D = 128).
const BLOCK_ROWS: usize = 128;
/// Rows per rayon task in a parallel scan (2 MiB of vectors at D = 128).
const CHUNK_ROWS: usize = 4_096;

/// The rows of an exact index, borrowed for one scan.
pub(crate) struct Rows<'a> {
    pub dim: usize,
    /// `(N, D)` row-major.
    pub vectors: &'a [f32],
    /// `(N)`.
    pub faces: &'a [FaceId],
    /// `(N)` identity slot of each row.
    pub owners: &'a [u32],
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
