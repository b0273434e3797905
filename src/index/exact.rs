//! Exact search: a vectorised scan over every stored face.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use super::config::ScanPrecision;
use super::identity_map::IdentitySlots;
use super::quant::Codes;
use super::scan::{Query, Rows, scan};
use super::vector::{check_batch, check_dim};
use super::{FaceId, FaceIndex, IdentityHit, IdentityId, IndexConfig, IndexError};
use crate::batch::{BatchConfig, Batcher, Job};
use crate::embedding::Embedding;

/// A query waiting for its batch: `(D)` vector and the identities it wants.
type Pending = (Vec<f32>, usize);

/// Exact top-k over all stored faces.
///
/// Query cost: `N` dot products of length `D` (SIMD, see [`super::dot_many`]) and a
/// streaming top-`K` of distinct identities (`super::top`) — `O(N·D + N)`, no sort, no
/// per-identity array. By default the products read int8 codes of the rows
/// (`super::quant`) and only the few rows that could be in the answer are re-scored in
/// f32, so answers are those of the f32 scan. Concurrent queries are batched
/// (`super::batch`): one blocked pass over the rows answers all of them
/// (`super::scan`). Memory: `4·D + 20` bytes per face (`5·D + 32` with the int8 codes)
/// plus hash-map overhead.
///
/// Among faces of one identity with equal scores, the lowest face id is reported; among
/// identities with equal scores, the one whose face id is lower ranks first.
pub struct ExactIndex {
    dim: usize,
    flat: RwLock<Flat>,
    batcher: Batcher<Pending, Vec<IdentityHit>>,
    /// False when `batch_max_queries == 1`: each query scans alone, concurrently with
    /// others (the behaviour before batching, kept for comparison).
    batching: bool,
    /// [`IndexConfig::parallel_scan_min_rows`].
    parallel_scan_min_rows: usize,
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
    /// The rows' int8 codes ([`ScanPrecision::Int8`]).
    codes: Option<Codes>,
}

impl ExactIndex {
    /// An empty index for `dim`-dimensional embeddings (`dim ≥ 1`), batching queries
    /// as [`IndexConfig::default`] does.
    pub fn new(dim: usize) -> Result<Self, IndexError> {
        Self::with_config(dim, &IndexConfig::default())
    }

    /// An empty index batching queries as `config` says (its HNSW fields are unused).
    pub fn with_config(dim: usize, config: &IndexConfig) -> Result<Self, IndexError> {
        config.validate()?;
        if dim == 0 {
            return Err(IndexError::Config {
                field: "dim",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        Ok(Self {
            dim,
            flat: RwLock::new(Flat {
                codes: (config.scan == ScanPrecision::Int8).then(Codes::default),
                ..Flat::default()
            }),
            batching: config.batch_max_queries > 1,
            parallel_scan_min_rows: config.parallel_scan_min_rows,
            batcher: Batcher::new(BatchConfig {
                max: config.batch_max_queries,
                window: Duration::from_micros(config.batch_window_us),
            }),
        })
    }

    /// One blocked scan answering every query of a batch.
    fn scan_batch(&self, jobs: &[Job<Pending>]) -> Vec<Vec<IdentityHit>> {
        let flat = self.read();
        let rows = Rows {
            dim: self.dim,
            vectors: &flat.vectors,
            faces: &flat.faces,
            owners: &flat.owners,
            codes: flat.codes.as_ref(),
        };
        let queries: Vec<Query<'_>> = jobs
            .iter()
            .map(|j| Query {
                vector: &j.query.0,
                k: j.query.1,
            })
            .collect();
        let parallel = flat.faces.len() >= self.parallel_scan_min_rows;
        scan(&rows, &queries, parallel)
            .into_iter()
            .map(|top| {
                top.into_iter()
                    .map(|e| IdentityHit {
                        identity: flat.identities.identity(e.slot),
                        face: e.face,
                        similarity: e.score.clamp(-1.0, 1.0),
                    })
                    .collect()
            })
            .collect()
    }

    /// Each query's top-`k` distinct identities (as [`FaceIndex::search`]) from one pass
    /// over the rows, outside the batcher (on the calling thread, or split over rayon's
    /// from [`IndexConfig::parallel_scan_min_rows`] rows): the pass a batch of concurrent
    /// searches shares, for callers that hold many queries at once, and for timing the
    /// pass alone (`benches/index.rs`, `--pass`). Fails, answering nothing, if any query
    /// has the wrong dimension.
    pub fn search_many(
        &self,
        queries: &[&Embedding],
        k: usize,
    ) -> Result<Vec<Vec<IdentityHit>>, IndexError> {
        for q in queries {
            check_dim(self.dim, q)?;
        }
        if k == 0 || self.is_empty() {
            return Ok(vec![Vec::new(); queries.len()]);
        }
        let jobs: Vec<Job<Pending>> = queries.iter().map(|q| Job::new((q.to_vec(), k))).collect();
        Ok(self.scan_batch(&jobs))
    }

    /// Every live face as `(face, identity, embedding)`, in storage order.
    pub fn items(&self) -> Vec<(FaceId, IdentityId, Embedding)> {
        let flat = self.read();
        (0..flat.faces.len())
            .map(|r| {
                (
                    flat.faces[r],
                    flat.identities.identity(flat.owners[r]),
                    Embedding::stored(flat.vectors[r * self.dim..(r + 1) * self.dim].to_vec()),
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
                if let Some(codes) = &mut self.codes {
                    codes.set(dim, r, v);
                }
                self.identities.release(self.owners[r]);
                self.owners[r] = slot;
            }
            None => {
                self.row_of.insert(face, self.faces.len());
                self.vectors.extend_from_slice(v);
                if let Some(codes) = &mut self.codes {
                    codes.push(v);
                }
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
            if let Some(codes) = &mut self.codes {
                codes.move_row(dim, last, r);
            }
            self.faces[r] = self.faces[last];
            self.owners[r] = self.owners[last];
            self.row_of.insert(self.faces[r], r);
        }
        self.vectors.truncate(last * dim);
        if let Some(codes) = &mut self.codes {
            codes.truncate(dim, last);
        }
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
        embedding: &Embedding,
    ) -> Result<(), IndexError> {
        check_dim(self.dim, embedding)?;
        self.write().upsert(self.dim, face, identity, embedding);
        Ok(())
    }

    fn insert_batch(&self, items: &[(FaceId, IdentityId, Embedding)]) -> Result<(), IndexError> {
        check_batch(self.dim, items.iter().map(|(_, _, v)| v))?;
        // Copying rows is memory-bound: one thread is as fast as several.
        let mut flat = self.write();
        flat.vectors.reserve(items.len() * self.dim);
        if let Some(codes) = &mut flat.codes {
            codes.reserve(self.dim, items.len());
        }
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

    fn search(&self, query: &Embedding, k: usize) -> Result<Vec<IdentityHit>, IndexError> {
        check_dim(self.dim, query)?;
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        let run = |jobs: &[Job<Pending>]| self.scan_batch(jobs);
        if self.batching {
            Ok(self.batcher.submit((query.to_vec(), k), run))
        } else {
            let mut alone = run(&[Job::new((query.to_vec(), k))]);
            Ok(alone.pop().unwrap_or_default())
        }
    }
}
