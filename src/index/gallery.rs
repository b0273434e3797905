//! The index a gallery uses: exact scan while small, HNSW once large.

use std::borrow::Cow;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use super::worker::Worker;
use super::{
    ExactIndex, FaceId, FaceIndex, GraphFileError, HnswIndex, IdentityHit, IdentityId, IndexConfig,
    IndexError,
};
use crate::embedding::Embedding;

type Item = (FaceId, IdentityId, Embedding);

/// Which structure currently answers a [`GalleryIndex`]'s queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexKind {
    Exact,
    Hnsw,
}

/// Exact search below [`IndexConfig::crossover`] live faces, HNSW from there on.
///
/// Growing past the crossover starts a background thread that builds the HNSW graph
/// from a snapshot while the exact index keeps answering; changes made meanwhile are
/// logged and replayed into the graph, which then replaces the exact index in one
/// assignment. Shrinking below half the crossover (hysteresis, so a gallery at the
/// boundary does not flip back and forth) goes back to an exact index, built on the spot.
///
/// With a graph directory the HNSW graph is saved there once built (and after each
/// rebuild), and [`Self::restore`] starts from it: the store's faces are then checked
/// against it page by page ([`Self::restore_batch`]) instead of being inserted, and
/// [`Self::finish_restore`] removes what the store no longer has.
pub struct GalleryIndex {
    shared: Arc<Shared>,
}

struct Shared {
    dim: usize,
    config: IndexConfig,
    backend: RwLock<Backend>,
    /// `Some` while an exact → HNSW switch is being built: changes to replay. Lock order:
    /// `backend` before `log`.
    log: Mutex<Option<Vec<Op<'static>>>>,
    worker: Worker,
    /// Where the HNSW graph is saved; `None` keeps it in memory only.
    graph_dir: Option<PathBuf>,
    /// `Some` between [`GalleryIndex::restore`] and [`GalleryIndex::finish_restore`].
    restoring: Mutex<Option<Restoring>>,
    /// What the finished restore found; `None` for an index not restored from disk.
    restored: Mutex<Option<Restored>>,
}

/// A restore under way: the loaded graph's faces the store has not confirmed yet, and
/// the counts so far.
struct Restoring {
    unconfirmed: HashSet<FaceId>,
    counts: Restored,
}

/// What [`GalleryIndex::finish_restore`] found: faces the saved graph already held as
/// stored, faces inserted (new or changed since it was saved), faces removed (gone).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Restored {
    pub kept: usize,
    pub added: usize,
    pub removed: usize,
}

#[derive(Clone)]
enum Backend {
    Exact(Arc<ExactIndex>),
    Hnsw(Arc<HnswIndex>),
}

impl Backend {
    fn index(&self) -> &dyn FaceIndex {
        match self {
            Backend::Exact(e) => e.as_ref(),
            Backend::Hnsw(h) => h.as_ref(),
        }
    }
}

/// One change, as applied to a backend and, during a switch, logged (owned) for replay.
enum Op<'a> {
    Insert(FaceId, IdentityId, Cow<'a, Embedding>),
    InsertBatch(Cow<'a, [Item]>),
    RemoveFace(FaceId),
    RemoveIdentity(IdentityId),
}

impl Op<'_> {
    fn into_owned(self) -> Op<'static> {
        match self {
            Op::Insert(f, i, v) => Op::Insert(f, i, Cow::Owned(v.into_owned())),
            Op::InsertBatch(items) => Op::InsertBatch(Cow::Owned(items.into_owned())),
            Op::RemoveFace(f) => Op::RemoveFace(f),
            Op::RemoveIdentity(i) => Op::RemoveIdentity(i),
        }
    }

    /// Applies the change; `Ok(n)` counts faces inserted or removed.
    fn apply(&self, index: &dyn FaceIndex) -> Result<usize, IndexError> {
        match self {
            Op::Insert(face, identity, v) => index.insert(*face, *identity, v).map(|()| 1),
            Op::InsertBatch(items) => index.insert_batch(items).map(|()| items.len()),
            Op::RemoveFace(face) => Ok(usize::from(index.remove_face(*face))),
            Op::RemoveIdentity(identity) => Ok(index.remove_identity(*identity)),
        }
    }
}

/// Logged changes at most this many are replayed while searches wait.
const REPLAY_UNDER_LOCK: usize = 16;

impl Shared {
    fn backend(&self) -> RwLockReadGuard<'_, Backend> {
        self.backend.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self) -> MutexGuard<'_, Option<Vec<Op<'static>>>> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn restored(&self) -> MutexGuard<'_, Option<Restored>> {
        self.restored.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn restoring(&self) -> MutexGuard<'_, Option<Restoring>> {
        self.restoring
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn exact_from(&self, items: &[Item]) -> Arc<ExactIndex> {
        let exact = ExactIndex::with_config(self.dim, &self.config)
            .expect("dim and config were checked in GalleryIndex::new");
        // The items come from an index, so they have the index's dimension.
        if let Err(e) = exact.insert_batch(items) {
            tracing::error!(error = %e, "stored embeddings failed their check");
        }
        Arc::new(exact)
    }
}

impl GalleryIndex {
    /// An empty gallery index; HNSW from the start if `config.crossover == 0`.
    pub fn new(dim: usize, config: IndexConfig) -> Result<Self, IndexError> {
        Self::with_graph_dir(dim, config, None)
    }

    /// [`Self::new`], saving the HNSW graph to `graph_dir` whenever one is built.
    pub fn with_graph_dir(
        dim: usize,
        config: IndexConfig,
        graph_dir: Option<PathBuf>,
    ) -> Result<Self, IndexError> {
        config.validate()?;
        let backend = if config.crossover == 0 {
            let hnsw = HnswIndex::with_graph_dir(dim, config.clone(), graph_dir.clone())?;
            Backend::Hnsw(Arc::new(hnsw))
        } else {
            Backend::Exact(Arc::new(ExactIndex::with_config(dim, &config)?))
        };
        Ok(Self::from_backend(dim, config, backend, graph_dir, None))
    }

    fn from_backend(
        dim: usize,
        config: IndexConfig,
        backend: Backend,
        graph_dir: Option<PathBuf>,
        restoring: Option<Restoring>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                dim,
                config,
                backend: RwLock::new(backend),
                log: Mutex::new(None),
                worker: Worker::default(),
                graph_dir,
                restoring: Mutex::new(restoring),
                restored: Mutex::new(None),
            }),
        }
    }

    /// A gallery index answering from the HNSW graph saved in `dir`, every face of which
    /// is unconfirmed until the store's faces go through [`Self::restore_batch`] and
    /// [`Self::finish_restore`] ends the check. Fails if the graph cannot be used (see
    /// [`HnswIndex::load`]); the caller then builds the index from the store as usual.
    pub fn restore(dim: usize, config: IndexConfig, dir: &Path) -> Result<Self, GraphFileError> {
        let hnsw = HnswIndex::load(dir, dim, config.clone())?;
        let restoring = Restoring {
            unconfirmed: hnsw.faces().into_iter().collect(),
            counts: Restored::default(),
        };
        let backend = Backend::Hnsw(Arc::new(hnsw));
        Ok(Self::from_backend(
            dim,
            config,
            backend,
            Some(dir.to_path_buf()),
            Some(restoring),
        ))
    }

    /// While restoring: the store's faces, a page at a time. Faces the graph holds as
    /// stored are confirmed; the others (new, or changed since the graph was saved) are
    /// inserted. Outside a restore this is [`FaceIndex::insert_batch`].
    ///
    /// If the graph holds fewer than half of the first page's faces as stored (the
    /// embeddings were recomputed by another model, or the database was replaced), the
    /// restore is abandoned: checking it would insert nearly every face into it and then
    /// rebuild it, twice the work of building a new graph. The index starts empty and
    /// exact and goes on as if no graph had been saved.
    pub fn restore_batch(&self, items: &[Item]) -> Result<(), IndexError> {
        let (hnsw, first) = match (&*self.shared.backend(), &*self.shared.restoring()) {
            (Backend::Hnsw(h), Some(r)) => (Arc::clone(h), r.counts == Restored::default()),
            _ => return self.insert_batch(items),
        };
        let fresh: Vec<Item> = items
            .iter()
            .filter(|(face, identity, v)| !hnsw.holds(*face, *identity, v))
            .cloned()
            .collect();
        if first && 2 * fresh.len() > items.len() {
            tracing::warn!(
                held = items.len() - fresh.len(),
                of = items.len(),
                "the saved HNSW graph does not match the store; building the index from it"
            );
            self.abandon_restore()?;
            return self.insert_batch(items);
        }
        self.insert_batch(&fresh)?;
        if let Some(r) = self.shared.restoring().as_mut() {
            for (face, _, _) in items {
                r.unconfirmed.remove(face);
            }
            r.counts.kept += items.len() - fresh.len();
            r.counts.added += fresh.len();
        }
        Ok(())
    }

    /// Drops the loaded graph for an empty exact index; the restore is over.
    fn abandon_restore(&self) -> Result<(), IndexError> {
        let exact = ExactIndex::with_config(self.shared.dim, &self.shared.config)?;
        let mut backend = self
            .shared
            .backend
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        *self.shared.restoring() = None;
        let loaded = std::mem::replace(&mut *backend, Backend::Exact(Arc::new(exact)));
        drop(backend);
        drop(loaded); // hnsw_rs's Drop walks every point: outside the lock
        Ok(())
    }

    /// Ends a restore: removes the faces the store did not confirm, saves the graph if
    /// anything changed, and reports the counts. `None` if no restore was under way.
    pub fn finish_restore(&self) -> Option<Restored> {
        let Restoring {
            unconfirmed,
            counts,
        } = self.shared.restoring().take()?;
        for face in &unconfirmed {
            self.remove_face(*face);
        }
        let restored = Restored {
            removed: unconfirmed.len(),
            ..counts
        };
        *self.shared.restored() = Some(restored);
        if (restored.added > 0 || restored.removed > 0)
            && let Backend::Hnsw(h) = &*self.shared.backend()
            && let Err(e) = h.save()
        {
            tracing::warn!(error = %e, "could not save the restored HNSW graph");
        }
        // A gallery restored far below the crossover (faces removed, or the crossover
        // raised) goes back to the exact scan, as it would have on its last removal.
        self.shrink();
        Some(restored)
    }

    pub fn kind(&self) -> IndexKind {
        match &*self.shared.backend() {
            Backend::Exact(_) => IndexKind::Exact,
            Backend::Hnsw(_) => IndexKind::Hnsw,
        }
    }

    /// What [`Self::finish_restore`] found, if this index was restored from disk.
    pub fn restored(&self) -> Option<Restored> {
        *self.shared.restored()
    }

    /// True while an exact → HNSW switch is being built.
    pub fn is_switching(&self) -> bool {
        self.shared.log().is_some()
    }

    /// Blocks until no switch and no HNSW rebuild is running (start-up, tests, benches).
    pub fn wait_idle(&self) {
        self.shared.worker.wait(|| self.is_switching());
        if let Backend::Hnsw(h) = &*self.shared.backend() {
            h.wait_for_rebuild();
        }
    }

    /// Every live face as `(face, identity, embedding)`.
    pub fn items(&self) -> Vec<Item> {
        match &*self.shared.backend() {
            Backend::Exact(e) => e.items(),
            Backend::Hnsw(h) => h.items(),
        }
    }

    fn mutate(&self, op: Op<'_>) -> Result<usize, IndexError> {
        let backend = self.shared.backend();
        match &*backend {
            Backend::Exact(exact) => {
                let mut log = self.shared.log();
                let done = op.apply(exact.as_ref())?;
                if let Some(pending) = log.as_mut() {
                    pending.push(op.into_owned());
                } else if exact.len() >= self.shared.config.crossover
                    // Snapshot under the log lock: every later change is logged.
                    && self.spawn_switch(exact.items())
                {
                    *log = Some(Vec::new());
                }
                Ok(done)
            }
            Backend::Hnsw(hnsw) => {
                let done = op.apply(hnsw.as_ref())?;
                let small = hnsw.len() < self.shared.config.crossover / 2;
                drop(backend);
                if small {
                    self.shrink();
                }
                Ok(done)
            }
        }
    }

    /// Starts the switch thread; false (and a warning) if it could not be started.
    fn spawn_switch(&self, snapshot: Vec<Item>) -> bool {
        let shared = Arc::clone(&self.shared);
        let spawned =
            (self.shared.worker).spawn("index-switch", move || switch_to_hnsw(&shared, snapshot));
        if let Err(e) = &spawned {
            // Exact search stays correct; the next insert tries again.
            tracing::warn!(error = %e, "could not start the HNSW build thread");
        }
        spawned.is_ok()
    }

    /// Back to an exact index when the HNSW one has shrunk below half the crossover.
    fn shrink(&self) {
        let mut backend = self
            .shared
            .backend
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Backend::Hnsw(h) = &*backend
            && h.len() < self.shared.config.crossover / 2
        {
            *backend = Backend::Exact(self.shared.exact_from(&h.items()));
        }
    }
}

/// Builds the HNSW index from `snapshot`, replays the changes logged meanwhile, swaps.
fn switch_to_hnsw(shared: &Shared, snapshot: Vec<Item>) {
    let hnsw =
        HnswIndex::with_graph_dir(shared.dim, shared.config.clone(), shared.graph_dir.clone());
    let hnsw = match hnsw {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the HNSW index");
            *shared.log() = None;
            return;
        }
    };
    let replay = |ops: Vec<Op<'_>>| {
        for op in ops {
            // Each op already succeeded on the exact index with the same checks.
            if let Err(e) = op.apply(&hnsw) {
                tracing::error!(error = %e, "replaying a change into the HNSW index");
            }
        }
    };
    replay(vec![Op::InsertBatch(Cow::Owned(snapshot))]);
    loop {
        let ops = match shared.log().as_mut() {
            Some(pending) if pending.len() > REPLAY_UNDER_LOCK => std::mem::take(pending),
            _ => break,
        };
        replay(ops);
    }
    let mut backend = shared
        .backend
        .write()
        .unwrap_or_else(PoisonError::into_inner);
    replay(shared.log().take().unwrap_or_default());
    let hnsw = Arc::new(hnsw);
    *backend = Backend::Hnsw(Arc::clone(&hnsw));
    drop(backend);
    if let Err(e) = hnsw.save() {
        // The graph in memory is complete; only the next start-up pays for this.
        tracing::warn!(error = %e, "could not save the HNSW graph");
    }
}

impl FaceIndex for GalleryIndex {
    fn dim(&self) -> usize {
        self.shared.dim
    }

    fn len(&self) -> usize {
        self.shared.backend().index().len()
    }

    fn insert(
        &self,
        face: FaceId,
        identity: IdentityId,
        embedding: &Embedding,
    ) -> Result<(), IndexError> {
        self.mutate(Op::Insert(face, identity, Cow::Borrowed(embedding)))
            .map(|_| ())
    }

    fn insert_batch(&self, items: &[(FaceId, IdentityId, Embedding)]) -> Result<(), IndexError> {
        self.mutate(Op::InsertBatch(Cow::Borrowed(items)))
            .map(|_| ())
    }

    fn remove_face(&self, face: FaceId) -> bool {
        matches!(self.mutate(Op::RemoveFace(face)), Ok(1))
    }

    fn remove_identity(&self, identity: IdentityId) -> usize {
        self.mutate(Op::RemoveIdentity(identity)).unwrap_or(0)
    }

    fn search(&self, query: &Embedding, k: usize) -> Result<Vec<IdentityHit>, IndexError> {
        // Search outside the lock, so a switch never waits for a slow query.
        let backend = self.shared.backend().clone();
        backend.index().search(query, k)
    }
}
