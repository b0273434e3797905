//! Approximate search on an `hnsw_rs` graph, with deletion and background rebuilds.

pub(crate) mod distance;
mod persist;
mod rebuild;
mod search;
mod state;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use self::state::State;
use super::vector::{check_batch, check_dim};
use super::worker::Worker;
use super::{FaceId, FaceIndex, IdentityHit, IdentityId, IndexConfig, IndexError};
use crate::embedding::Embedding;

pub use self::persist::GraphFileError;

/// Below this many items a batch is inserted on the calling thread.
const PARALLEL_INSERT_MIN: usize = 64;

/// The rayon pool that parallel graph inserts run on, separate from the global pool.
///
/// hnsw_rs's `parallel_insert_slice` is a rayon `par_iter`. On the global pool, a build
/// of 100 000 points keeps every worker busy with its own queue for a minute or more,
/// and the inference jobs that `/identify` injects into the same pool wait behind it
/// (measured: a request timed out after 30 s while the start-up switch to HNSW ran).
/// On their own pool the build and the requests share the cores through the OS
/// scheduler instead.
fn build_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .thread_name(|i| format!("hnsw-build-{i}"))
            .build()
            .map_err(
                |e| tracing::warn!(error = %e, "no separate HNSW build pool; using the global one"),
            )
            .ok()
    })
    .as_ref()
}

/// `graph.parallel_insert_slice(items)` on [`build_pool`].
#[allow(clippy::ptr_arg)] // hnsw_rs takes `&Vec`
pub(crate) fn parallel_insert(graph: &state::Graph, items: &Vec<(&[f32], usize)>) {
    match build_pool() {
        Some(pool) => pool.install(|| graph.parallel_insert_slice(items)),
        None => graph.parallel_insert_slice(items),
    }
}

/// HNSW (Malkov & Yashunin) over unit vectors with distance `1 − ⟨a, b⟩`.
///
/// - **Deletion**: hnsw_rs cannot delete, so a removed face's point stays in the graph,
///   marked dead, and searches skip it at once (`search_filter`). When dead points reach
///   [`IndexConfig::rebuild_fraction`] of the graph, a background thread rebuilds it from
///   the live points and swaps it in; inserts and removals made meanwhile are carried
///   over (see `rebuild.rs`).
/// - **Identity results**: a search asks the graph for `max(ef, 2K)` neighbours and,
///   while fewer than `K` distinct identities come back, doubles that; past an eighth of
///   the points it scans them all instead (`search.rs`). Similarities are recomputed
///   exactly from the stored vectors.
/// - **On disk** (optional, [`Self::with_graph_dir`]): the graph is saved after each
///   rebuild and whenever [`Self::save`] is called, and [`Self::load`] reads it back
///   (`persist.rs`), so a restart need not build it again.
/// - **Memory**: hnsw_rs's graph (vector + links, about 3.5 KB per point at D = 128,
///   M = 16; NOTES.md) plus this index's copy of each vector (`4·D` bytes) and tables.
pub struct HnswIndex {
    shared: Arc<Shared>,
}

/// Everything the rebuild thread needs too.
pub(crate) struct Shared {
    dim: usize,
    config: IndexConfig,
    state: RwLock<State>,
    worker: Worker,
    /// Where the graph is saved; `None` keeps it in memory only.
    graph_dir: Option<PathBuf>,
    /// Held shared by every insert into the current graph and exclusively by a save:
    /// hnsw_rs's dump is not consistent while points are being added. Searches and
    /// removals do not take it.
    inserting: RwLock<()>,
}

impl Shared {
    // A panic elsewhere (only hnsw_rs can panic here) leaves `State` consistent: every
    // mutation of it completes before any graph call, so poisoning is ignored.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn inserting(&self) -> RwLockReadGuard<'_, ()> {
        self.inserting
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Saves the current generation to `graph_dir`; `Ok(false)` when there is no
    /// directory, nothing to save, or a rebuild is running (it saves when it is done).
    fn save(&self) -> Result<bool, GraphFileError> {
        let Some(dir) = &self.graph_dir else {
            return Ok(false);
        };
        let _no_inserts = self
            .inserting
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let state = self.read();
        if state.rebuilding || state.slots.is_empty() {
            return Ok(false);
        }
        persist::save(dir, &state.graph, &state.slots, self.dim, &self.config)?;
        Ok(true)
    }
}

impl HnswIndex {
    /// An empty index for `dim`-dimensional embeddings; fails on an invalid `config`.
    pub fn new(dim: usize, config: IndexConfig) -> Result<Self, IndexError> {
        Self::with_graph_dir(dim, config, None)
    }

    /// [`Self::new`], saving the graph to `graph_dir` after each rebuild and on
    /// [`Self::save`].
    pub fn with_graph_dir(
        dim: usize,
        config: IndexConfig,
        graph_dir: Option<PathBuf>,
    ) -> Result<Self, IndexError> {
        config.validate()?;
        if dim == 0 {
            return Err(IndexError::Config {
                field: "dim",
                value: "0".into(),
                expected: "at least 1",
            });
        }
        let state = State::empty(&config);
        Ok(Self::from_state(dim, config, state, graph_dir))
    }

    fn from_state(
        dim: usize,
        config: IndexConfig,
        state: State,
        graph_dir: Option<PathBuf>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                dim,
                config,
                state: RwLock::new(state),
                worker: Worker::default(),
                graph_dir,
                inserting: RwLock::new(()),
            }),
        }
    }

    /// The graph saved in `dir` (by [`Self::save`] or a rebuild), which it goes on saving
    /// to. Fails, reading nothing into hnsw_rs, when the files are missing or damaged or
    /// were built for another `dim`, `m` or `ef_construction`.
    pub fn load(dir: &Path, dim: usize, config: IndexConfig) -> Result<Self, GraphFileError> {
        config
            .validate()
            .map_err(|e| persist::invalid(dir, e.to_string()))?;
        let state = persist::load(dir, dim, &config)?;
        Ok(Self::from_state(
            dim,
            config,
            state,
            Some(dir.to_path_buf()),
        ))
    }

    /// Writes the graph to its directory, replacing the copy there; `Ok(false)` without
    /// a directory, with no points, or while a rebuild runs (which saves when it ends).
    /// Inserts wait while it writes (seconds for millions of faces); searches do not.
    pub fn save(&self) -> Result<bool, GraphFileError> {
        self.shared.save()
    }

    /// True if `face` is stored, live, under `identity` and with exactly `embedding`:
    /// what a loaded graph is checked against the store with.
    pub fn holds(&self, face: FaceId, identity: IdentityId, embedding: &Embedding) -> bool {
        let state = self.shared.read();
        state.by_face.get(&face).is_some_and(|&j| {
            state.slots[j].identity == identity
                && state.vector(j, self.shared.dim) == embedding.as_slice()
        })
    }

    /// Every live face id.
    pub fn faces(&self) -> Vec<FaceId> {
        self.shared.read().by_face.keys().copied().collect()
    }

    pub fn config(&self) -> &IndexConfig {
        &self.shared.config
    }

    /// Rebuilds finished so far.
    pub fn generation(&self) -> u64 {
        self.shared.read().generation
    }

    /// Dead points still in the graph (removed or replaced faces awaiting a rebuild).
    pub fn deleted(&self) -> usize {
        self.shared.read().dead
    }

    pub fn is_rebuilding(&self) -> bool {
        self.shared.read().rebuilding
    }

    /// Starts a rebuild now unless one is running; false if one was already running.
    pub fn rebuild(&self) -> bool {
        let mut state = self.shared.write();
        if state.rebuilding {
            return false;
        }
        self.spawn_rebuild(&mut state);
        true
    }

    /// Blocks until no rebuild is running.
    pub fn wait_for_rebuild(&self) {
        self.shared.worker.wait(|| self.is_rebuilding());
    }

    /// Every live face as `(face, identity, embedding)`.
    pub fn items(&self) -> Vec<(FaceId, IdentityId, Embedding)> {
        let state = self.shared.read();
        let dim = self.shared.dim;
        state
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.live)
            .map(|(j, s)| {
                let v = Embedding::stored(state.vector(j, dim).to_vec());
                (s.face, s.identity, v)
            })
            .collect()
    }

    /// [`FaceIndex::search`] with an explicit `ef` instead of the configured one.
    pub fn search_with_ef(
        &self,
        query: &Embedding,
        k: usize,
        ef: usize,
    ) -> Result<Vec<IdentityHit>, IndexError> {
        check_dim(self.shared.dim, query)?;
        let state = self.shared.read();
        // Never more identities than exist: the widening loop then ends on `K` found.
        let k = k.min(state.identities.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        Ok(search::identities(&state, self.shared.dim, query, k, ef))
    }

    /// The `k` nearest live faces as `(face, similarity)`, closest first — face-level
    /// search, for comparing with other HNSW libraries.
    pub fn nearest_faces(
        &self,
        query: &Embedding,
        k: usize,
        ef: usize,
    ) -> Result<Vec<(FaceId, f32)>, IndexError> {
        check_dim(self.shared.dim, query)?;
        Ok(search::faces(&self.shared.read(), query, k, ef))
    }

    /// Marks `state` as rebuilding and starts the thread (caller holds the write lock).
    fn spawn_rebuild(&self, state: &mut State) {
        state.rebuilding = true;
        let end = state.slots.len();
        let shared = Arc::clone(&self.shared);
        let spawned =
            (self.shared.worker).spawn("hnsw-rebuild", move || rebuild::run(&shared, end));
        if let Err(e) = spawned {
            // Searches stay correct without the rebuild (dead points are filtered); the
            // next removal tries again.
            tracing::warn!(error = %e, "could not start the HNSW rebuild thread");
            state.rebuilding = false;
        }
    }

    fn rebuild_if_due(&self, mut state: RwLockWriteGuard<'_, State>) {
        if state.wants_rebuild(&self.shared.config) {
            self.spawn_rebuild(&mut state);
        }
    }
}

impl FaceIndex for HnswIndex {
    fn dim(&self) -> usize {
        self.shared.dim
    }

    fn len(&self) -> usize {
        self.shared.read().by_face.len()
    }

    fn insert(
        &self,
        face: FaceId,
        identity: IdentityId,
        embedding: &Embedding,
    ) -> Result<(), IndexError> {
        check_dim(self.shared.dim, embedding)?;
        let (slot, graph) = {
            let mut state = self.shared.write();
            let slot = state.add(face, identity, embedding);
            let graph = Arc::clone(&state.graph);
            self.rebuild_if_due(state);
            (slot, graph)
        };
        // Outside the lock: a graph insert takes about a millisecond. If a rebuild swaps
        // generations meanwhile, it has already copied this slot from the table.
        let _inserting = self.shared.inserting();
        graph.insert_slice((embedding.as_slice(), slot));
        Ok(())
    }

    fn insert_batch(&self, items: &[(FaceId, IdentityId, Embedding)]) -> Result<(), IndexError> {
        check_batch(self.shared.dim, items.iter().map(|(_, _, v)| v))?;
        let (points, graph) = {
            let mut state = self.shared.write();
            let points: Vec<(&[f32], usize)> = items
                .iter()
                .map(|(face, identity, v)| (v.as_slice(), state.add(*face, *identity, v)))
                .collect();
            let graph = Arc::clone(&state.graph);
            self.rebuild_if_due(state);
            (points, graph)
        };
        let _inserting = self.shared.inserting();
        if points.len() >= PARALLEL_INSERT_MIN {
            parallel_insert(&graph, &points);
        } else {
            points.iter().for_each(|&p| graph.insert_slice(p));
        }
        Ok(())
    }

    fn remove_face(&self, face: FaceId) -> bool {
        let mut state = self.shared.write();
        let Some(slot) = state.by_face.remove(&face) else {
            return false;
        };
        state.kill(slot);
        self.rebuild_if_due(state);
        true
    }

    fn remove_identity(&self, identity: IdentityId) -> usize {
        let mut state = self.shared.write();
        if !state.identities.contains_key(&identity) {
            return 0;
        }
        let slots: Vec<usize> = (0..state.slots.len())
            .filter(|&j| state.slots[j].live && state.slots[j].identity == identity)
            .collect();
        for &j in &slots {
            let face = state.slots[j].face;
            state.by_face.remove(&face);
            state.kill(j);
        }
        self.rebuild_if_due(state);
        slots.len()
    }

    fn search(&self, query: &Embedding, k: usize) -> Result<Vec<IdentityHit>, IndexError> {
        self.search_with_ef(query, k, self.shared.config.ef_search)
    }
}
