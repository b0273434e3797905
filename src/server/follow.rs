//! Following the change log (PostgreSQL): every replica keeps its own in-memory indexes,
//! and learns here of enrollments and deletions made through the others.
//!
//! - **Wake-up**: `LISTEN faceprint_changes`; a trigger notifies at each commit that
//!   writes the log. A wake-up carries nothing: it only says "catch up now".
//! - **Catch-up** (after each wake-up, every `sync.poll_interval_ms`, and after every
//!   (re)connect): read the rows with `txid >= xmin` (see `store::changes` for why this
//!   misses nothing), skip those already applied and those this process wrote itself,
//!   and apply the current state of what each names.
//! - **Reconciliation** (every `sync.reconcile_interval_s` and after every reconnect):
//!   diff each gallery's face ids against the database and repair the index — the
//!   safety net for anything the log cannot tell (rows pruned while a replica was away).
//! - **Losing the database**: identify keeps answering from the indexes; `/readyz` says
//!   not ready until the follower has reconnected and caught up.
//!
//! Reads and index updates run under the server's write lock, so a local enrollment or
//! deletion never interleaves with applying a remote one (which could resurrect a face).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::sync::{Notify, oneshot};
use tokio::time::{MissedTickBehavior, interval, interval_at};

use super::galleries::GalleryState;
use super::state::AppState;
use crate::embedding::Embedding;
use crate::index::FaceIndex;
use crate::store::{Change, ChangeRow, StoreError};

/// The channel the change-log trigger notifies (see the migration).
const CHANNEL: &str = "faceprint_changes";
/// Change rows read (with their faces' embeddings) per query.
const PAGE: usize = 500;
/// How long connecting the listener may take before counting as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Wait between reconnection attempts: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(2));

type Item = (i64, i64, Embedding);

/// Why a follower session ended.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listener: {0}")]
    Listener(#[from] sqlx::Error),
    #[error("the notification connection was lost")]
    Lost,
    #[error("index update task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Keeps one server's indexes in step with the change log.
pub struct Follower {
    state: AppState,
    url: String,
    /// Every transaction below this had finished before the last catch-up read.
    xmin: i64,
    /// Change id → txid of rows applied (or skipped) that may be read again.
    seen: HashMap<i64, i64>,
}

impl Follower {
    /// A follower of the log from `xmin`, taken before the indexes were loaded.
    pub fn new(state: AppState, url: String, xmin: i64) -> Follower {
        Follower {
            state,
            url,
            xmin,
            seen: HashMap::new(),
        }
    }

    /// Follow until the task is aborted (at shutdown).
    pub async fn run(mut self) {
        let mut backoff = BACKOFF.0;
        let mut reconnect = false;
        loop {
            let Err(error) = self.session(reconnect, &mut backoff).await;
            self.state.in_sync.store(false, Ordering::Release);
            tracing::warn!(%error, retry_in = ?backoff, "change-log follower lost the database");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
            reconnect = true;
        }
    }

    /// Connect, catch up, then follow until something fails.
    async fn session(
        &mut self,
        reconnect: bool,
        backoff: &mut Duration,
    ) -> Result<Infallible, FollowError> {
        let Listening {
            wake,
            mut lost,
            task: _listening,
        } = self.listen().await?;
        if reconnect {
            self.reconcile().await?;
        }
        self.catch_up().await?;
        if !self.state.in_sync.swap(true, Ordering::AcqRel) {
            tracing::info!("change-log follower caught up");
        }
        *backoff = BACKOFF.0;
        let sync = &self.state.settings.sync;
        let mut poll = interval(Duration::from_millis(sync.poll_interval_ms.max(10)));
        poll.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let every = Duration::from_secs(sync.reconcile_interval_s.max(1));
        let mut reconcile = interval_at(tokio::time::Instant::now() + every, every);
        reconcile.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = wake.notified() => self.catch_up().await?,
                _ = poll.tick() => self.catch_up().await?,
                _ = reconcile.tick() => {
                    self.reconcile().await?;
                    self.prune().await?;
                }
                _ = &mut lost => return Err(FollowError::Lost),
            }
        }
    }

    /// Subscribe to the channel on a connection of its own, read by a task of its own
    /// (so no notification read is ever cancelled half-way); the task ends, reporting on
    /// `lost`, when its connection fails, and is aborted when the guard drops.
    async fn listen(&self) -> Result<Listening, FollowError> {
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(&self.url)
            .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.eager_reconnect(false);
        listener.listen(CHANNEL).await?;
        let wake = Arc::new(Notify::new());
        let (lost_tx, lost) = oneshot::channel();
        let notify = Arc::clone(&wake);
        let task = tokio::spawn(async move {
            let _pool = pool;
            while let Ok(Some(_)) = listener.try_recv().await {
                notify.notify_one();
            }
            let _ = lost_tx.send(());
        });
        Ok(Listening {
            wake,
            lost,
            task: AbortOnDrop(task),
        })
    }

    /// Apply every change row not yet seen.
    async fn catch_up(&mut self) -> Result<(), FollowError> {
        let store = self.state.store.clone();
        let _writes = self.state.writes.lock().await;
        let next_xmin = store.change_xmin().await?;
        let fresh: Vec<(i64, i64)> = store
            .change_ids_since(self.xmin)
            .await?
            .into_iter()
            .filter(|(id, _)| !self.seen.contains_key(id))
            .collect();
        for chunk in fresh.chunks(PAGE) {
            let ids: Vec<i64> = chunk.iter().map(|&(id, _)| id).collect();
            let changes = store.changes_by_id(&ids, store.origin()).await?;
            self.apply(changes).await?;
            self.seen.extend(chunk.iter().copied());
        }
        self.xmin = self.xmin.max(next_xmin);
        let xmin = self.xmin;
        self.seen.retain(|_, txid| *txid >= xmin);
        Ok(())
    }

    /// Bring the indexes to the state the rows report (in row order; inserts batched
    /// until the next removal).
    async fn apply(&self, rows: Vec<ChangeRow>) -> Result<(), FollowError> {
        let mut inserts: Vec<(Arc<GalleryState>, Item)> = Vec::new();
        for row in rows {
            let Some(gallery) = row.change.gallery() else {
                continue;
            };
            let target = match self.state.galleries.get_or_create(gallery) {
                Ok(target) => target,
                Err(error) => {
                    tracing::error!(gallery = %gallery.name, %error, "cannot create the gallery index");
                    continue;
                }
            };
            let kind = row.change.kind();
            tracing::debug!(id = row.id, ?kind, gallery = %gallery.name, "applying change");
            match row.change {
                Change::FaceAdded {
                    identity_id,
                    face_id,
                    identity_name,
                    embedding: Some(embedding),
                    ..
                } => {
                    if let Some(name) = &identity_name {
                        target.set_name(identity_id, name);
                    }
                    inserts.push((target, (face_id, identity_id, embedding)));
                }
                // Deleted since (or now): the face must not stay in the index.
                Change::FaceAdded {
                    face_id,
                    embedding: None,
                    ..
                }
                | Change::FaceRemoved {
                    face_id,
                    face_exists: false,
                    ..
                } => {
                    flush(&mut inserts).await?;
                    target.index.remove_face(face_id);
                }
                Change::IdentityRemoved {
                    identity_id,
                    identity_exists: false,
                    ..
                } => {
                    flush(&mut inserts).await?;
                    target.index.remove_identity(identity_id);
                    target.forget_name(identity_id);
                }
                Change::GalleryChanged { gallery } => target.set_policy(&gallery),
                Change::FaceRemoved {
                    face_exists: true, ..
                }
                | Change::IdentityRemoved {
                    identity_exists: true,
                    ..
                }
                | Change::Unknown => {}
            }
        }
        flush(&mut inserts).await
    }

    /// Diff every gallery against the database and repair what differs.
    async fn reconcile(&self) -> Result<(), FollowError> {
        let store = &self.state.store;
        for gallery in store.galleries().await? {
            let _writes = self.state.writes.lock().await;
            let Ok(target) = self.state.galleries.get_or_create(&gallery) else {
                continue;
            };
            target.set_policy(&gallery);
            let stored: HashMap<i64, i64> = store
                .gallery_face_ids(gallery.id)
                .await?
                .into_iter()
                .collect();
            let names = store.identity_names(gallery.id).await?;
            let held_in = Arc::clone(&target);
            let held: HashSet<i64> = tokio::task::spawn_blocking(move || {
                held_in
                    .index
                    .items()
                    .into_iter()
                    .map(|(face, _, _)| face)
                    .collect()
            })
            .await?;
            let mut missing = Vec::new();
            for (&face, &identity) in &stored {
                if !held.contains(&face)
                    && let Some(embedding) = store.face_embedding(face).await?
                {
                    missing.push((Arc::clone(&target), (face, identity, embedding)));
                }
            }
            let mut removed = 0;
            for face in held.iter().filter(|f| !stored.contains_key(f)) {
                removed += usize::from(target.index.remove_face(*face));
            }
            target.replace_names(names);
            let added = missing.len();
            flush(&mut missing).await?;
            if added + removed > 0 {
                tracing::info!(gallery = %gallery.name, added, removed, "reconciled the index");
            }
        }
        Ok(())
    }

    /// Drop log rows older than the retention (any replica may; deleting twice is harmless).
    async fn prune(&self) -> Result<(), FollowError> {
        let age_ms = self
            .state
            .settings
            .sync
            .retention_hours
            .saturating_mul(3_600_000);
        let pruned = self
            .state
            .store
            .prune_changes(i64::try_from(age_ms).unwrap_or(i64::MAX))
            .await?;
        if pruned > 0 {
            tracing::info!(rows = pruned, "pruned the change log");
        }
        Ok(())
    }
}

/// Insert the pending faces, one batch per gallery, off the async runtime.
async fn flush(pending: &mut Vec<(Arc<GalleryState>, Item)>) -> Result<(), FollowError> {
    let mut by_gallery: HashMap<i64, (Arc<GalleryState>, Vec<Item>)> = HashMap::new();
    for (gallery, item) in pending.drain(..) {
        by_gallery
            .entry(gallery.id)
            .or_insert_with(|| (gallery, Vec::new()))
            .1
            .push(item);
    }
    for (gallery, items) in by_gallery.into_values() {
        let name = gallery.name.clone();
        let inserted =
            tokio::task::spawn_blocking(move || gallery.index.insert_batch(&items)).await?;
        if let Err(error) = inserted {
            tracing::error!(gallery = %name, %error, "stored faces were refused by the index");
        }
    }
    Ok(())
}

/// A subscribed listener: `wake` on each notification, `lost` when its connection fails.
struct Listening {
    wake: Arc<Notify>,
    lost: oneshot::Receiver<()>,
    task: AbortOnDrop,
}

/// Aborts the task when dropped (the listener of a session that ended).
pub(crate) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
