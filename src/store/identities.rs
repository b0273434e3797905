//! Identities: enrollment (one transaction), lookup, listing, deletion.

use sqlx::Row;

use super::{
    ChangeKind, Enrolled, FaceRecord, IdentityDetail, IdentitySummary, NewEnrollment,
    RemovedIdentity, Store, StoreError, encode_embedding, now_ms,
};

impl Store {
    /// Store one enrollment in one transaction: the gallery and identity are created if
    /// new, then every face is inserted; all of it is committed, or none of it.
    ///
    /// Every statement before the first read is a write, so on SQLite the transaction
    /// takes the write lock up front (waiting out other writers with the busy timeout)
    /// instead of failing when a read transaction tries to upgrade.
    pub async fn enroll(&self, enrollment: &NewEnrollment) -> Result<Enrolled, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO galleries (name, threshold, created_at) VALUES ($1, NULL, $2) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&enrollment.gallery)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let gallery_id: i64 = sqlx::query("SELECT id FROM galleries WHERE name = $1")
            .bind(&enrollment.gallery)
            .fetch_one(&mut *tx)
            .await?
            .try_get("id")?;
        let inserted = sqlx::query(
            "INSERT INTO identities (gallery_id, external_id, metadata, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (gallery_id, external_id) DO NOTHING \
             RETURNING id",
        )
        .bind(gallery_id)
        .bind(&enrollment.external_id)
        .bind(enrollment.metadata.as_deref())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let (identity_id, created) = match inserted {
            Some(row) => (row.try_get::<i64, _>("id")?, true),
            None => {
                let row = sqlx::query(
                    "SELECT id FROM identities WHERE gallery_id = $1 AND external_id = $2",
                )
                .bind(gallery_id)
                .bind(&enrollment.external_id)
                .fetch_one(&mut *tx)
                .await?;
                (row.try_get::<i64, _>("id")?, false)
            }
        };
        if let (false, Some(metadata)) = (created, enrollment.metadata.as_deref()) {
            sqlx::query("UPDATE identities SET metadata = $1 WHERE id = $2")
                .bind(metadata)
                .bind(identity_id)
                .execute(&mut *tx)
                .await?;
        }
        let mut face_ids = Vec::with_capacity(enrollment.faces.len());
        for face in &enrollment.faces {
            let row = sqlx::query(
                "INSERT INTO faces \
                 (identity_id, embedding, model_version, image_sha256, image, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(identity_id)
            .bind(encode_embedding(&face.embedding))
            .bind(&enrollment.model_version)
            .bind(&face.image_sha256)
            .bind(face.image.as_deref())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let face_id: i64 = row.try_get("id")?;
            self.record_change(
                &mut tx,
                ChangeKind::FaceAdded,
                gallery_id,
                Some(identity_id),
                Some(face_id),
            )
            .await?;
            face_ids.push(face_id);
        }
        tx.commit().await?;
        Ok(Enrolled {
            gallery_id,
            identity_id,
            created,
            face_ids,
        })
    }

    /// One page of a gallery's identities ordered by external id, starting after `after`.
    pub async fn identities(
        &self,
        gallery_id: i64,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<IdentitySummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.id, i.external_id, i.created_at, \
               (SELECT COUNT(*) FROM faces f WHERE f.identity_id = i.id) AS face_count \
             FROM identities i \
             WHERE i.gallery_id = $1 AND i.external_id > $2 \
             ORDER BY i.external_id LIMIT $3",
        )
        .bind(gallery_id)
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(IdentitySummary {
                    id: row.try_get("id")?,
                    external_id: row.try_get("external_id")?,
                    face_count: row.try_get("face_count")?,
                    created_at: row.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// `(identity id, external id)` of every identity in a gallery.
    pub async fn identity_names(&self, gallery_id: i64) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, external_id FROM identities WHERE gallery_id = $1")
            .bind(gallery_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("id")?, row.try_get("external_id")?)))
            .collect()
    }

    /// An identity with its metadata and faces, if it exists.
    pub async fn identity(
        &self,
        gallery_id: i64,
        external_id: &str,
    ) -> Result<Option<IdentityDetail>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT id, external_id, metadata, created_at FROM identities \
             WHERE gallery_id = $1 AND external_id = $2",
        )
        .bind(gallery_id)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get("id")?;
        let metadata = match row.try_get::<Option<String>, _>("metadata")? {
            None => None,
            Some(text) => {
                Some(
                    serde_json::from_str(&text).map_err(|e| StoreError::CorruptMetadata {
                        identity: id,
                        reason: e.to_string(),
                    })?,
                )
            }
        };
        let faces = sqlx::query(
            "SELECT id, model_version, image_sha256, image IS NOT NULL AS has_image, \
             created_at FROM faces WHERE identity_id = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|face| {
            Ok(FaceRecord {
                id: face.try_get("id")?,
                model_version: face.try_get("model_version")?,
                image_sha256: face.try_get("image_sha256")?,
                has_image: read_flag(face, "has_image")?,
                created_at: face.try_get("created_at")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Some(IdentityDetail {
            id,
            external_id: row.try_get("external_id")?,
            metadata,
            created_at: row.try_get("created_at")?,
            faces,
        }))
    }

    /// Delete an identity and all its faces in one transaction; `None` if it did not exist.
    pub async fn delete_identity(
        &self,
        gallery_id: i64,
        external_id: &str,
    ) -> Result<Option<RemovedIdentity>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let face_ids = sqlx::query(
            "DELETE FROM faces WHERE identity_id IN \
             (SELECT id FROM identities WHERE gallery_id = $1 AND external_id = $2) \
             RETURNING id",
        )
        .bind(gallery_id)
        .bind(external_id)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<Vec<i64>, _>>()?;
        let removed = sqlx::query(
            "DELETE FROM identities WHERE gallery_id = $1 AND external_id = $2 RETURNING id",
        )
        .bind(gallery_id)
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await?;
        let removed = match removed {
            Some(row) => Some(RemovedIdentity {
                identity_id: row.try_get("id")?,
                face_ids,
            }),
            None => None,
        };
        if let Some(removed) = &removed {
            self.record_change(
                &mut tx,
                ChangeKind::IdentityRemoved,
                gallery_id,
                Some(removed.identity_id),
                None,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(removed)
    }
}

/// A boolean expression's value: SQLite yields an INTEGER, PostgreSQL a BOOLEAN, and
/// `Any` decodes each only as its own type.
fn read_flag(row: &sqlx::any::AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    match row.try_get::<bool, _>(column) {
        Ok(flag) => Ok(flag),
        Err(_) => Ok(row.try_get::<i64, _>(column)? != 0),
    }
}
