//! The in-memory side of each gallery: its search index and the identity names its hits
//! are reported under, rebuilt from the store at start-up.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use crate::index::{FaceIndex, GalleryIndex, IndexConfig, IndexError, IndexKind};
use crate::store::{Gallery, Store, StoreError};

/// Faces read from the store per page while building an index.
const LOAD_PAGE: i64 = 10_000;

/// Why the indexes could not be built.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("gallery {gallery:?}: {source}")]
    Index { gallery: String, source: IndexError },
    #[error("index build task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One gallery in memory.
pub struct GalleryState {
    pub id: i64,
    pub name: String,
    /// The gallery's own threshold and target FAR, overriding the server's default.
    policy: RwLock<GalleryPolicy>,
    /// Exact below the configured crossover, HNSW above (see [`GalleryIndex`]).
    pub index: GalleryIndex,
    /// Identity id → external id, for reporting hits.
    names: RwLock<HashMap<i64, Arc<str>>>,
}

impl GalleryState {
    fn new(gallery: &Gallery, index: GalleryIndex) -> GalleryState {
        GalleryState {
            id: gallery.id,
            name: gallery.name.clone(),
            policy: RwLock::new(GalleryPolicy::of(gallery)),
            index,
            names: RwLock::new(HashMap::new()),
        }
    }

    pub fn name_of(&self, identity: i64) -> Option<Arc<str>> {
        read(&self.names).get(&identity).cloned()
    }

    pub fn set_name(&self, identity: i64, name: &str) {
        write(&self.names).insert(identity, Arc::from(name));
    }

    pub fn forget_name(&self, identity: i64) {
        write(&self.names).remove(&identity);
    }

    /// Replace every identity name (reconciliation with the store).
    pub fn replace_names(&self, names: Vec<(i64, String)>) {
        *write(&self.names) = names
            .into_iter()
            .map(|(id, name)| (id, Arc::from(name)))
            .collect();
    }

    pub fn identity_count(&self) -> usize {
        read(&self.names).len()
    }

    pub fn threshold(&self) -> Option<f64> {
        read(&self.policy).threshold
    }

    pub fn far(&self) -> Option<f64> {
        read(&self.policy).far
    }

    /// Adopt the stored gallery's threshold and target FAR.
    pub fn set_policy(&self, gallery: &Gallery) {
        *write(&self.policy) = GalleryPolicy::of(gallery);
    }

    /// Mean enrolled faces per identity (at least 1): the `k` of the impostor tail.
    pub fn faces_per_identity(&self) -> usize {
        let identities = self.identity_count().max(1);
        (self.index.len() as f64 / identities as f64)
            .round()
            .max(1.0) as usize
    }
}

/// A gallery's own decision settings; `None` = the server's default.
#[derive(Clone, Copy, Debug, Default)]
struct GalleryPolicy {
    threshold: Option<f64>,
    far: Option<f64>,
}

impl GalleryPolicy {
    fn of(gallery: &Gallery) -> Self {
        GalleryPolicy {
            threshold: gallery.threshold,
            far: gallery.far,
        }
    }
}

/// Where gallery `id`'s HNSW graph is saved, if graphs are saved at all.
fn graph_dir(config: &IndexConfig, id: i64) -> Option<PathBuf> {
    (config.graph_dir.as_ref()).map(|d| d.join(format!("gallery-{id}")))
}

/// Every gallery's in-memory state, by name.
pub struct Galleries {
    config: IndexConfig,
    dim: usize,
    by_name: RwLock<HashMap<String, Arc<GalleryState>>>,
}

impl Galleries {
    /// Build every gallery's index from the store (faces inserted in pages, off the
    /// async runtime). A gallery whose HNSW graph was saved starts from it instead, and
    /// its pages are checked against the graph ([`GalleryIndex::restore_batch`]); a graph
    /// that cannot be used is logged and the index is built as if there were none.
    pub async fn load(
        store: &Store,
        config: &IndexConfig,
        dim: usize,
    ) -> Result<Galleries, LoadError> {
        config.validate().map_err(|source| LoadError::Index {
            gallery: "(configuration)".into(),
            source,
        })?;
        let galleries = Galleries {
            config: config.clone(),
            dim,
            by_name: RwLock::new(HashMap::new()),
        };
        for gallery in store.galleries().await? {
            let index_error = |source| LoadError::Index {
                gallery: gallery.name.clone(),
                source,
            };
            let dir = graph_dir(config, gallery.id);
            let saved = match dir.clone().filter(|d| d.exists()) {
                Some(dir) => {
                    let config = config.clone();
                    tokio::task::spawn_blocking(move || GalleryIndex::restore(dim, config, &dir))
                        .await?
                        .inspect_err(|e| {
                            tracing::warn!(gallery = %gallery.name, error = %e,
                                "saved HNSW graph not used; building the index from the store");
                        })
                        .ok()
                }
                None => None,
            };
            let index = match saved {
                Some(index) => index,
                None => {
                    GalleryIndex::with_graph_dir(dim, config.clone(), dir).map_err(index_error)?
                }
            };
            let state = Arc::new(GalleryState::new(&gallery, index));
            write(&galleries.by_name).insert(gallery.name.clone(), Arc::clone(&state));
            for (id, name) in store.identity_names(gallery.id).await? {
                state.set_name(id, &name);
            }
            let mut after = 0;
            loop {
                let page = store.faces_page(gallery.id, after, LOAD_PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.id;
                let batch: Vec<_> = page
                    .into_iter()
                    .map(|f| (f.id, f.identity_id, f.embedding))
                    .collect();
                let target = Arc::clone(&state);
                tokio::task::spawn_blocking(move || target.index.restore_batch(&batch))
                    .await?
                    .map_err(index_error)?;
            }
            let target = Arc::clone(&state);
            if let Some(r) =
                tokio::task::spawn_blocking(move || target.index.finish_restore()).await?
            {
                tracing::info!(gallery = %gallery.name, kept = r.kept, added = r.added,
                    removed = r.removed, "HNSW graph loaded from disk and checked against the store");
            }
            tracing::info!(gallery = %gallery.name, faces = state.index.len(), "index built");
        }
        Ok(galleries)
    }

    pub fn get(&self, name: &str) -> Option<Arc<GalleryState>> {
        read(&self.by_name).get(name).cloned()
    }

    /// The state of `gallery`, created (empty) if this server has not seen it yet.
    pub fn get_or_create(&self, gallery: &Gallery) -> Result<Arc<GalleryState>, IndexError> {
        let mut by_name = write(&self.by_name);
        if let Some(existing) = by_name.get(&gallery.name) {
            return Ok(Arc::clone(existing));
        }
        let index = GalleryIndex::with_graph_dir(
            self.dim,
            self.config.clone(),
            graph_dir(&self.config, gallery.id),
        )?;
        let created = Arc::new(GalleryState::new(gallery, index));
        by_name.insert(gallery.name.clone(), Arc::clone(&created));
        Ok(created)
    }

    /// Each gallery's index as JSON for `/readyz`, by name: `kind` (`exact` or `hnsw`),
    /// `faces`, `building` while a switch to HNSW is being built in the background
    /// (the exact index answers meanwhile), and `restored`: `null`, or what checking a
    /// graph loaded from disk against the store found (`kept`, `added`, `removed`).
    pub fn index_status(&self) -> Vec<serde_json::Value> {
        let mut galleries: Vec<_> = read(&self.by_name).values().cloned().collect();
        galleries.sort_by(|a, b| a.name.cmp(&b.name));
        galleries
            .iter()
            .map(|g| {
                let kind = match g.index.kind() {
                    IndexKind::Exact => "exact",
                    IndexKind::Hnsw => "hnsw",
                };
                serde_json::json!({
                    "gallery": g.name,
                    "kind": kind,
                    "faces": g.index.len(),
                    "building": g.index.is_switching(),
                    "restored": g.index.restored(),
                })
            })
            .collect()
    }

    /// `(name, identities, faces)` of every gallery, by name.
    pub fn sizes(&self) -> Vec<(String, usize, usize)> {
        let mut sizes: Vec<_> = read(&self.by_name)
            .values()
            .map(|g| (g.name.clone(), g.identity_count(), g.index.len()))
            .collect();
        sizes.sort();
        sizes
    }
}

/// Lock for reading; a panic elsewhere while holding the lock leaves plain data that is
/// still consistent (every writer replaces whole entries), so poisoning is ignored.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
