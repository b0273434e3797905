//! Faces: loading embeddings for the index, deleting one face, model versions, re-embedding,
//! the image hashes an import resumes from.

use sqlx::Row;

use crate::embedding::Embedding;

use super::{
    ChangeKind, Store, StoreError, StoredFace, StoredImage, encode_embedding, stored_embedding,
};

impl Store {
    /// One page of a gallery's faces with embeddings, ordered by face id, after `after`.
    ///
    /// The `+` in the join keeps SQLite from reaching the faces through their
    /// `identity_id` index: with it, every page walked all of the gallery's identities,
    /// sorted their faces and kept the first `limit`, so loading a million faces took
    /// 100 such walks (393 ms a page against 8.5 ms). Without the index the faces are
    /// read in id order from `after` and each one's identity is found by primary key,
    /// stopping at `limit`. PostgreSQL reads `+x` as `x`.
    pub async fn faces_page(
        &self,
        gallery_id: i64,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredFace>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.id, f.identity_id, f.embedding FROM faces f \
             JOIN identities i ON i.id = +f.identity_id \
             WHERE i.gallery_id = $1 AND f.id > $2 ORDER BY f.id LIMIT $3",
        )
        .bind(gallery_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_face).collect()
    }

    /// `(external id, image SHA-256)` of every face in the gallery named `gallery` (none
    /// if it does not exist): what a resumed import has already stored.
    pub async fn gallery_image_hashes(
        &self,
        gallery: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.external_id, f.image_sha256 FROM faces f \
             JOIN identities i ON i.id = f.identity_id \
             JOIN galleries g ON g.id = i.gallery_id WHERE g.name = $1",
        )
        .bind(gallery)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("external_id")?, r.try_get("image_sha256")?)))
            .collect()
    }

    /// Delete face `face_id` of identity `external_id`; its identity id if it existed.
    pub async fn delete_face(
        &self,
        gallery_id: i64,
        external_id: &str,
        face_id: i64,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "DELETE FROM faces WHERE id = $1 AND identity_id = \
             (SELECT id FROM identities WHERE gallery_id = $2 AND external_id = $3) \
             RETURNING identity_id",
        )
        .bind(face_id)
        .bind(gallery_id)
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await?;
        let identity_id: Option<i64> = row.map(|r| r.try_get("identity_id")).transpose()?;
        if identity_id.is_some() {
            let kind = ChangeKind::FaceRemoved;
            self.record_change(&mut tx, kind, gallery_id, identity_id, Some(face_id))
                .await?;
        }
        tx.commit().await?;
        Ok(identity_id)
    }

    /// `(model version, number of faces)` for every version present.
    pub async fn model_versions(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT model_version, COUNT(*) AS n FROM faces \
             GROUP BY model_version ORDER BY model_version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("model_version")?, row.try_get("n")?)))
            .collect()
    }

    /// Number of faces not embedded by `model_version` that have no stored image.
    pub async fn count_stale_without_image(&self, model_version: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM faces WHERE model_version <> $1 AND image IS NULL",
        )
        .bind(model_version)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    /// One page of stored images of faces not embedded by `model_version`, after face `after`.
    pub async fn stale_images_page(
        &self,
        model_version: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredImage>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, image FROM faces \
             WHERE model_version <> $1 AND image IS NOT NULL AND id > $2 \
             ORDER BY id LIMIT $3",
        )
        .bind(model_version)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StoredImage {
                    face_id: row.try_get("id")?,
                    image: row.try_get("image")?,
                })
            })
            .collect()
    }

    /// Replace the embeddings of `faces` (face id, new embedding) in one transaction.
    pub async fn replace_embeddings(
        &self,
        model_version: &str,
        faces: &[(i64, Embedding)],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for (face_id, embedding) in faces {
            sqlx::query("UPDATE faces SET embedding = $1, model_version = $2 WHERE id = $3")
                .bind(encode_embedding(embedding))
                .bind(model_version)
                .bind(*face_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl Store {
    /// Every face of one identity with its embedding (for verify against an identity).
    pub async fn identity_embeddings(
        &self,
        identity_id: i64,
    ) -> Result<Vec<StoredFace>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, identity_id, embedding FROM faces WHERE identity_id = $1 ORDER BY id",
        )
        .bind(identity_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_face).collect()
    }
}

fn stored_face(row: &sqlx::any::AnyRow) -> Result<StoredFace, StoreError> {
    let id: i64 = row.try_get("id")?;
    let bytes: Vec<u8> = row.try_get("embedding")?;
    let embedding = stored_embedding(id, &bytes)?;
    Ok(StoredFace {
        id,
        identity_id: row.try_get("identity_id")?,
        embedding,
    })
}

impl Store {
    /// The stored image of face `face_id` of identity `external_id` in a gallery:
    /// `None` when there is no such face, `Some(None)` when its image was not kept.
    pub async fn face_image(
        &self,
        gallery_id: i64,
        external_id: &str,
        face_id: i64,
    ) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let row = sqlx::query(
            "SELECT f.image FROM faces f JOIN identities i ON i.id = f.identity_id \
             WHERE f.id = $1 AND i.gallery_id = $2 AND i.external_id = $3",
        )
        .bind(face_id)
        .bind(gallery_id)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| r.try_get::<Option<Vec<u8>>, _>("image"))
            .transpose()
            .map_err(StoreError::from)
    }
}
