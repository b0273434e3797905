//! Exact search: a vectorised scan over every stored face.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use rayon::prelude::*;

use super::dot::dot_many;
use super::identity_map::IdentitySlots;
use super::select::{Best, top_k_by};
use super::vector::{check_batch, check_embedding};
use super::{FaceId, FaceIndex, IdentityHit, IdentityId, IndexError};

/// Below this many rows a query scans on its own thread: splitting costs more than it
/// saves, and the server already runs many queries at once. Measured by
/// `cargo bench --bench index` (BENCHMARKS.md, index section).
pub const PARALLEL_SCAN_MIN_ROWS: usize = 32_768;
/// Rows per rayon task in a parallel scan (2 MiB of vectors at D = 128).
const SCAN_CHUNK_ROWS: usize = 4_096;

/// Exact top-k over all stored faces.
///
/// Query cost: `N` dot products of length `D` (SIMD, see [`super::dot_many`]), then one
/// pass keeping each identity's best row, then partial selection of the best `K`
/// identities — `O(N·D + N + K log K)`, no full sort. Memory: `4·D + 20` bytes per face
/// plus hash-map overhead.
pub struct ExactIndex {
    dim: usize,
    flat: RwLock<Flat>,
}

/// Rows are kept dense: removing a face moves the last row into its place.
#[derive(Default)]
struct Flat {
    /// `(N, D)` row-major embeddings.
    vectors: Vec<f32>,
    /// `(N)` face of each row.
    faces: Vec<FaceId>,
    /// `(N)` identity slot of each row.
    owners: Vec<u32>,
    row_of: HashMap<FaceId, usize>,
    identities: IdentitySlots,
}

impl ExactIndex {
    /// An empty index for `dim`-dimensional embeddings (`dim ≥ 1`).
    pub fn new(dim: usize) -> Result<Self, IndexError> {
        if dim == 0 {
            return Err(IndexError::Config {
                field: "dim",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        Ok(Self {
            dim,
            flat: RwLock::new(Flat::default()),
        })
    }

    /// Every live face as `(face, identity, embedding)`, in storage order.
    pub fn items(&self) -> Vec<(FaceId, IdentityId, Vec<f32>)> {
        let flat = self.read();
        (0..flat.faces.len())
            .map(|r| {
                (
                    flat.faces[r],
                    flat.identities.identity(flat.owners[r]),
                    flat.vectors[r * self.dim..(r + 1) * self.dim].to_vec(),
                )
            })
            .collect()
    }

    /// Faces of `identity` currently stored.
    pub fn faces_of(&self, identity: IdentityId) -> Vec<FaceId> {
        let flat = self.read();
        let Some(slot) = flat.identities.slot(identity) else {
            return Vec::new();
        };
        (0..flat.faces.len())
            .filter(|&r| flat.owners[r] == slot)
            .map(|r| flat.faces[r])
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Flat> {
        // A panic elsewhere cannot leave `Flat` half-updated in a way that breaks reads:
        // every mutation keeps the row arrays the same length before returning.
        self.flat.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Flat> {
        self.flat.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Flat {
    fn upsert(&mut self, dim: usize, face: FaceId, identity: IdentityId, v: &[f32]) {
        let slot = self.identities.acquire(identity);
        match self.row_of.get(&face) {
            Some(&r) => {
                self.vectors[r * dim..(r + 1) * dim].copy_from_slice(v);
                self.identities.release(self.owners[r]);
                self.owners[r] = slot;
            }
            None => {
                self.row_of.insert(face, self.faces.len());
                self.vectors.extend_from_slice(v);
                self.faces.push(face);
                self.owners.push(slot);
            }
        }
    }

    /// Removes row `r` by moving the last row into it.
    fn remove_row(&mut self, dim: usize, r: usize) {
        let last = self.faces.len() - 1;
        self.row_of.remove(&self.faces[r]);
        self.identities.release(self.owners[r]);
        if r != last {
            self.vectors
                .copy_within(last * dim..(last + 1) * dim, r * dim);
            self.faces[r] = self.faces[last];
            self.owners[r] = self.owners[last];
            self.row_of.insert(self.faces[r], r);
        }
        self.vectors.truncate(last * dim);
        self.faces.truncate(last);
        self.owners.truncate(last);
    }
}

impl FaceIndex for ExactIndex {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.read().faces.len()
    }

    fn insert(
        &self,
        face: FaceId,
        identity: IdentityId,
        embedding: &[f32],
    ) -> Result<(), IndexError> {
        check_embedding(self.dim, embedding)?;
        self.write().upsert(self.dim, face, identity, embedding);
        Ok(())
    }

    fn insert_batch(&self, items: &[(FaceId, IdentityId, Vec<f32>)]) -> Result<(), IndexError> {
        check_batch(self.dim, items.iter().map(|(_, _, v)| v.as_slice()))?;
        // Copying rows is memory-bound: one thread is as fast as several.
        let mut flat = self.write();
        flat.vectors.reserve(items.len() * self.dim);
        for (face, identity, v) in items {
            flat.upsert(self.dim, *face, *identity, v);
        }
        Ok(())
    }

    fn remove_face(&self, face: FaceId) -> bool {
        let mut flat = self.write();
        match flat.row_of.get(&face) {
            Some(&r) => {
                flat.remove_row(self.dim, r);
                true
            }
            None => false,
        }
    }

    fn remove_identity(&self, identity: IdentityId) -> usize {
        let mut flat = self.write();
        let Some(slot) = flat.identities.slot(identity) else {
            return 0;
        };
        let rows: Vec<usize> = (0..flat.faces.len())
            .filter(|&r| flat.owners[r] == slot)
            .collect();
        // Highest row first: the row moved into a removed one is then never one of ours.
        for &r in rows.iter().rev() {
            flat.remove_row(self.dim, r);
        }
        rows.len()
    }

    fn search(&self, query: &[f32], k: usize) -> Result<Vec<IdentityHit>, IndexError> {
        check_embedding(self.dim, query)?;
        let flat = self.read();
        let n = flat.faces.len();
        if k == 0 || n == 0 {
            return Ok(Vec::new());
        }
        let mut scores = vec![0.0f32; n]; // (N)
        if n >= PARALLEL_SCAN_MIN_ROWS {
            scores
                .par_chunks_mut(SCAN_CHUNK_ROWS)
                .zip(flat.vectors.par_chunks(SCAN_CHUNK_ROWS * self.dim))
                .for_each(|(out, rows)| dot_many(rows, query, out));
        } else {
            dot_many(&flat.vectors, query, &mut scores);
        }
        let mut best = vec![Best::NONE; flat.identities.capacity()]; // (identity slots)
        for (r, (&s, &slot)) in scores.iter().zip(&flat.owners).enumerate() {
            let b = &mut best[slot as usize];
            if s > b.score {
                *b = Best { score: s, row: r };
            }
        }
        let candidates: Vec<Best> = best.into_iter().filter(|b| b.row != usize::MAX).collect();
        let hits = top_k_by(candidates, k, |b| (b.score, flat.faces[b.row]))
            .into_iter()
            .map(|b| IdentityHit {
                identity: flat.identities.identity(flat.owners[b.row]),
                face: flat.faces[b.row],
                similarity: b.score.clamp(-1.0, 1.0),
            })
            .collect();
        Ok(hits)
    }
}
