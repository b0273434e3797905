//! Nearest-neighbour search over unit-length embeddings.
//!
//! Glossary for shapes: `D` embedding dimension, `N` stored faces, `K` requested hits.
//!
//! Every index stores L2-normalised vectors of one dimension `D` and scores by cosine
//! similarity, `s(q, x) = ⟨q, x⟩ ∈ [-1, 1]` (for unit vectors). Results are per identity:
//! an identity's score is the best score over its stored faces, so a result list never
//! names the same identity twice.
//!
//! - [`ExactIndex`]: a vectorised scan over a contiguous `(N, D)` matrix with streaming
//!   top-`K` selection; concurrent queries share one blocked pass, which reads int8
//!   copies of the rows and re-scores its candidates in f32. Exact; the reference in
//!   tests; the fastest choice below [`IndexConfig::crossover`].
//! - [`HnswIndex`]: an `hnsw_rs` graph; deletion by filtering plus background rebuilds.
//! - [`GalleryIndex`]: what a gallery uses — exact below [`IndexConfig::crossover`]
//!   faces, HNSW above, switching in the background as the gallery grows.
//!
//! The SQL store is the source of truth and an index is rebuilt from it at start-up
//! (`insert_batch`). The one exception is an HNSW graph, which takes minutes to build
//! for millions of faces: given a graph directory it is saved there and loaded at the
//! next start, then checked against the store ([`GalleryIndex::restore`]).

mod config;
mod dot;
mod error;
mod exact;
mod gallery;
mod hnsw;
mod identity_map;
mod quant;
mod scan;
mod select;
mod top;
mod vector;
mod worker;

pub use crate::embedding::{Embedding, UNIT_NORM_TOLERANCE};
pub use config::{DEFAULT_PARALLEL_SCAN_MIN_ROWS, IndexConfig, ScanPrecision};
pub use dot::{dot, dot_many, dot_many_i8, integer_dot_is_fast};
pub use error::IndexError;
pub use exact::ExactIndex;
pub use gallery::{GalleryIndex, IndexKind, Restored};
pub use hnsw::distance::UnitCosine;
pub use hnsw::{GraphFileError, HnswIndex};

/// Database id of one stored face (one embedding).
pub type FaceId = i64;
/// Database id of one enrolled identity (a person; owns one or more faces).
pub type IdentityId = i64;

/// One identity's best face for a query; `similarity` is cosine in [-1, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IdentityHit {
    pub identity: IdentityId,
    pub face: FaceId,
    pub similarity: f32,
}

/// Read side and write side of an index over unit vectors; all methods take `&self`
/// (interior mutability) so one `Arc<dyn FaceIndex>` serves many threads.
///
/// Inserting a face id that is already stored replaces its embedding and identity.
pub trait FaceIndex: Send + Sync {
    /// Embedding dimension `D` every stored vector and query must have.
    fn dim(&self) -> usize;
    /// Live (not deleted) faces.
    fn len(&self) -> usize;
    /// True when no live face is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Stores one face. Fails, storing nothing, on a wrong dimension (an [`Embedding`]
    /// is finite and unit length already).
    fn insert(
        &self,
        face: FaceId,
        identity: IdentityId,
        embedding: &Embedding,
    ) -> Result<(), IndexError>;
    /// Stores many faces (in parallel where it helps). Every item is checked before any
    /// is stored: on error nothing is stored and the error names the item's position.
    fn insert_batch(&self, items: &[(FaceId, IdentityId, Embedding)]) -> Result<(), IndexError>;
    /// Removes one face; false if it was not stored. It is never returned afterwards.
    fn remove_face(&self, face: FaceId) -> bool;
    /// Removes every face of an identity; returns how many faces were removed.
    fn remove_identity(&self, identity: IdentityId) -> usize;
    /// Top-k *distinct* identities, each scored by its best face, highest first.
    /// `k == 0` or an empty index gives an empty list.
    fn search(&self, query: &Embedding, k: usize) -> Result<Vec<IdentityHit>, IndexError>;
}
