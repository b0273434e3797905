//! The index a gallery uses: exact scan while small, HNSW once large.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard};

use super::worker::Worker;
use super::{
    ExactIndex, FaceId, FaceIndex, HnswIndex, IdentityHit, IdentityId, IndexConfig, IndexError,
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
        config.validate()?;
        let backend = if config.crossover == 0 {
            Backend::Hnsw(Arc::new(HnswIndex::new(dim, config.clone())?))
        } else {
            Backend::Exact(Arc::new(ExactIndex::with_config(dim, &config)?))
        };
        Ok(Self {
            shared: Arc::new(Shared {
                dim,
                config,
                backend: RwLock::new(backend),
                log: Mutex::new(None),
                worker: Worker::default(),
            }),
        })
    }

    pub fn kind(&self) -> IndexKind {
        match &*self.shared.backend() {
            Backend::Exact(_) => IndexKind::Exact,
            Backend::Hnsw(_) => IndexKind::Hnsw,
        }
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
    let hnsw = match HnswIndex::new(shared.dim, shared.config.clone()) {
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
    *backend = Backend::Hnsw(Arc::new(hnsw));
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
