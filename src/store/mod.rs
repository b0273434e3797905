//! SQL persistence of galleries, identities and faces — the source of truth from which
//! every index is rebuilt.
//!
//! One code path serves SQLite and PostgreSQL through sqlx's `Any` driver: the schema
//! keeps to the types `Any` decodes on both (BIGINT ids and epoch-millisecond times,
//! TEXT, REAL/DOUBLE, BLOB/BYTEA), and each backend has its own migration folder.

mod backup;
mod changes;
mod connect;
mod embedding_bytes;
mod error;
mod faces;
mod galleries;
mod identities;
mod records;

pub use backup::{RestoreError, sqlite_path};
pub use changes::{Change, ChangeKind, ChangeRow};
use embedding_bytes::stored_embedding;
pub use embedding_bytes::{decode_embedding, encode_embedding};
pub use error::StoreError;
pub use records::{
    Enrolled, FaceRecord, Gallery, IdentityDetail, IdentitySummary, NewEnrollment, NewFace,
    RemovedIdentity, StoredFace, StoredImage,
};

use std::sync::Arc;
use std::time::Duration;

use sqlx::AnyPool;

/// How long a readiness ping may take before the database counts as unreachable (the
/// pool would otherwise keep retrying for its whole acquire timeout).
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Which SQL backend a [`Store`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A pool of connections to the database, migrated at connect time.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Random name of this connection pool's process, written into the change log so a
    /// follower skips the changes its own process has already applied.
    origin: Arc<str>,
}

impl Store {
    /// The backend chosen by the database URL.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Round-trip to the database (readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let ping = sqlx::query("SELECT 1").execute(&self.pool);
        match tokio::time::timeout(PING_TIMEOUT, ping).await {
            Ok(done) => done.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Database(sqlx::Error::PoolTimedOut)),
        }
    }

    /// The name this store writes into the change log as the origin of its changes.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Close every connection; waits for connections in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Milliseconds since the Unix epoch, the time unit of every `created_at` column.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
