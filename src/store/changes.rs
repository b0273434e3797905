//! The change log: what replicas follow to keep their in-memory indexes in step.
//!
//! Each enrollment, deletion and gallery change writes rows here in its own transaction
//! (PostgreSQL only: a SQLite database has one server and nobody to tell). A row names
//! what changed, not the data: [`Store::changes_by_id`] joins each row to the current
//! state of the face, identity and gallery it names, so a follower applies *the present*,
//! and applying a row twice or out of order does no harm.
//!
//! Ordering: identity values commit out of order, so "rows with `id > last`" can skip a
//! row for good. Rows carry their transaction id instead; a follower keeps
//! [`Store::change_xmin`] from before each read and next reads rows with `txid >= xmin`.
//! Every transaction below that xmin had finished before the read began, so its rows
//! were in it; rows of transactions still running are re-read (their ids) until they
//! are settled.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{Backend, Gallery, Store, StoreError, now_ms, stored_embedding};
use crate::embedding::Embedding;

/// What a change-log row says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    FaceAdded,
    FaceRemoved,
    IdentityRemoved,
    GalleryChanged,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::FaceAdded => "face_added",
            ChangeKind::FaceRemoved => "face_removed",
            ChangeKind::IdentityRemoved => "identity_removed",
            ChangeKind::GalleryChanged => "gallery_changed",
        }
    }

    fn parse(text: &str) -> Option<ChangeKind> {
        [
            ChangeKind::FaceAdded,
            ChangeKind::FaceRemoved,
            ChangeKind::IdentityRemoved,
            ChangeKind::GalleryChanged,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

/// One change-log row: what it says happened, with the current state of what it names.
#[derive(Clone, Debug)]
pub struct ChangeRow {
    pub id: i64,
    pub txid: i64,
    /// The process that wrote the row (see [`Store::origin`]).
    pub origin: String,
    pub change: Change,
}

/// What a change-log row says happened, each kind with what applying it needs: the
/// gallery as it is now, the ids the row names, and whether what they name still exists.
#[derive(Clone, Debug)]
pub enum Change {
    /// A face was enrolled; `embedding` is `None` if the face has been deleted since.
    FaceAdded {
        gallery: Gallery,
        identity_id: i64,
        face_id: i64,
        /// The identity's external id, if the identity still exists.
        identity_name: Option<String>,
        embedding: Option<Embedding>,
    },
    FaceRemoved {
        gallery: Gallery,
        face_id: i64,
        face_exists: bool,
    },
    IdentityRemoved {
        gallery: Gallery,
        identity_id: i64,
        identity_exists: bool,
    },
    GalleryChanged {
        gallery: Gallery,
    },
    /// Nothing this version can apply: a kind written by a newer server, a gallery that
    /// no longer exists, or a row without the ids its kind names (none is written so).
    Unknown,
}

impl Change {
    /// The gallery the change happened in; `None` for [`Change::Unknown`].
    pub fn gallery(&self) -> Option<&Gallery> {
        match self {
            Change::FaceAdded { gallery, .. }
            | Change::FaceRemoved { gallery, .. }
            | Change::IdentityRemoved { gallery, .. }
            | Change::GalleryChanged { gallery } => Some(gallery),
            Change::Unknown => None,
        }
    }

    /// The kind of the row; `None` for [`Change::Unknown`].
    pub fn kind(&self) -> Option<ChangeKind> {
        match self {
            Change::FaceAdded { .. } => Some(ChangeKind::FaceAdded),
            Change::FaceRemoved { .. } => Some(ChangeKind::FaceRemoved),
            Change::IdentityRemoved { .. } => Some(ChangeKind::IdentityRemoved),
            Change::GalleryChanged { .. } => Some(ChangeKind::GalleryChanged),
            Change::Unknown => None,
        }
    }
}

impl Store {
    /// Append one change to the log inside the caller's transaction (PostgreSQL only).
    pub(crate) async fn record_change(
        &self,
        conn: &mut AnyConnection,
        kind: ChangeKind,
        gallery_id: i64,
        identity_id: Option<i64>,
        face_id: Option<i64>,
    ) -> Result<(), StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO changes (kind, gallery_id, identity_id, face_id, origin, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(kind.as_str())
        .bind(gallery_id)
        .bind(identity_id)
        .bind(face_id)
        .bind(&*self.origin)
        .bind(now_ms())
        .execute(conn)
        .await?;
        Ok(())
    }

    /// The oldest transaction id still running anywhere in the cluster (PostgreSQL):
    /// every transaction below it has committed or aborted.
    pub async fn change_xmin(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin")
                .fetch_one(&self.pool)
                .await?;
        Ok(row.try_get("xmin")?)
    }

    /// `(id, txid)` of every change row with `txid >= xmin`, by id. Ids only: a long
    /// transaction elsewhere holds xmin back, and these rows are then read again and again.
    pub async fn change_ids_since(&self, xmin: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query("SELECT id, txid FROM changes WHERE txid >= $1 ORDER BY id")
            .bind(xmin)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("txid")?)))
            .collect()
    }

    /// The change rows `ids` not written by `origin`, by id, each joined to the current
    /// state of its gallery, identity and face.
    pub async fn changes_by_id(
        &self,
        ids: &[i64],
        origin: &str,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Integers formatted by us: nothing a client wrote reaches this SQL text.
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let sql = format!(
            "SELECT c.id, c.txid, c.kind, c.gallery_id, c.identity_id, c.face_id, c.origin, \
               g.name AS gallery_name, g.threshold, g.far, g.created_at AS gallery_created_at, \
               i.external_id, f.embedding \
             FROM changes c \
             LEFT JOIN galleries g ON g.id = c.gallery_id \
             LEFT JOIN identities i ON i.id = c.identity_id \
             LEFT JOIN faces f ON f.id = c.face_id \
             WHERE c.id IN ({list}) AND c.origin <> $1 ORDER BY c.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(origin)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(change_from_row).collect()
    }

    /// Delete change rows older than `age_ms`; the number deleted. Followers that were
    /// away longer than that reconcile in full when they come back.
    pub async fn prune_changes(&self, age_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM changes WHERE created_at < $1")
            .bind(now_ms().saturating_sub(age_ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    /// `(face id, identity id)` of every face in a gallery (reconciliation).
    pub async fn gallery_face_ids(&self, gallery_id: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.id, f.identity_id FROM faces f \
             JOIN identities i ON i.id = f.identity_id WHERE i.gallery_id = $1",
        )
        .bind(gallery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("identity_id")?)))
            .collect()
    }

    /// The embedding of one face, if it exists.
    pub async fn face_embedding(&self, face_id: i64) -> Result<Option<Embedding>, StoreError> {
        let row = sqlx::query("SELECT embedding FROM faces WHERE id = $1")
            .bind(face_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            let bytes: Vec<u8> = row.try_get("embedding")?;
            stored_embedding(face_id, &bytes)
        })
        .transpose()
    }
}

fn change_from_row(row: &AnyRow) -> Result<ChangeRow, StoreError> {
    let gallery = match row.try_get::<Option<String>, _>("gallery_name")? {
        None => None,
        Some(name) => Some(Gallery {
            id: row.try_get("gallery_id")?,
            name,
            threshold: row.try_get("threshold")?,
            far: row.try_get("far")?,
            created_at: row.try_get("gallery_created_at")?,
        }),
    };
    // Decoded whatever the kind, so that a corrupt stored embedding is always reported.
    let embedding = match row.try_get::<Option<Vec<u8>>, _>("embedding")? {
        None => None,
        Some(bytes) => Some(stored_embedding(row.try_get("face_id")?, &bytes)?),
    };
    let kind = ChangeKind::parse(&row.try_get::<String, _>("kind")?);
    let identity_id: Option<i64> = row.try_get("identity_id")?;
    let face_id: Option<i64> = row.try_get("face_id")?;
    let identity_name: Option<String> = row.try_get("external_id")?;
    let change = match (kind, gallery, identity_id, face_id) {
        (Some(ChangeKind::FaceAdded), Some(gallery), Some(identity_id), Some(face_id)) => {
            Change::FaceAdded {
                gallery,
                identity_id,
                face_id,
                identity_name,
                embedding,
            }
        }
        (Some(ChangeKind::FaceRemoved), Some(gallery), _, Some(face_id)) => Change::FaceRemoved {
            gallery,
            face_id,
            face_exists: embedding.is_some(),
        },
        (Some(ChangeKind::IdentityRemoved), Some(gallery), Some(identity_id), _) => {
            Change::IdentityRemoved {
                gallery,
                identity_id,
                identity_exists: identity_name.is_some(),
            }
        }
        (Some(ChangeKind::GalleryChanged), Some(gallery), ..) => Change::GalleryChanged { gallery },
        _ => Change::Unknown,
    };
    Ok(ChangeRow {
        id: row.try_get("id")?,
        txid: row.try_get("txid")?,
        origin: row.try_get("origin")?,
        change,
    })
}
