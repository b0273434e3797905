//! SQL persistence of galleries, identities and faces — the source of truth from which
//! every index is rebuilt.
//!
//! One code path serves SQLite and PostgreSQL through sqlx's `Any` driver: the schema
//! keeps to the types `Any` decodes on both (BIGINT ids and epoch-millisecond times,
//! TEXT, REAL/DOUBLE, BLOB/BYTEA), and each backend has its own migration folder.

mod connect;
mod embedding_bytes;
mod error;
mod faces;
mod galleries;
mod identities;
mod records;

pub use embedding_bytes::{decode_embedding, encode_embedding};
pub use error::StoreError;
pub use records::{
    Enrolled, FaceRecord, Gallery, IdentityDetail, IdentitySummary, NewEnrollment, NewFace,
    RemovedIdentity, StoredFace, StoredImage,
};

use sqlx::AnyPool;

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
}

impl Store {
    /// The backend chosen by the database URL.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Round-trip to the database (readiness probe).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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
