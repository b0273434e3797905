//! Galleries: named partitions of identities, each with an optional threshold.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{ChangeKind, Gallery, Store, StoreError, now_ms};

fn gallery_from_row(row: &AnyRow) -> Result<Gallery, sqlx::Error> {
    Ok(Gallery {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        threshold: row.try_get("threshold")?,
        far: row.try_get("far")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Every gallery, by name.
    pub async fn galleries(&self) -> Result<Vec<Gallery>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, threshold, far, created_at FROM galleries ORDER BY name")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .iter()
            .map(gallery_from_row)
            .collect::<Result<_, _>>()?)
    }

    /// The gallery called `name`, if it exists.
    pub async fn gallery(&self, name: &str) -> Result<Option<Gallery>, StoreError> {
        let row = sqlx::query(
            "SELECT id, name, threshold, far, created_at FROM galleries WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(gallery_from_row).transpose()?)
    }

    /// Create the gallery `name` or set its threshold and target FAR (`None` = the
    /// server's default).
    pub async fn put_gallery(
        &self,
        name: &str,
        threshold: Option<f64>,
        far: Option<f64>,
    ) -> Result<Gallery, StoreError> {
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "INSERT INTO galleries (name, threshold, far, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET threshold = excluded.threshold, far = excluded.far \
             RETURNING id, name, threshold, far, created_at",
        )
        // Not a cached prepared statement: on PostgreSQL, a statement first prepared
        // with a NULL threshold and reused on the same connection for a real one failed
        // now and then with "incorrect binary data format in bind parameter 2" (the
        // parameter's type fixed by the first binding), a 500 on `PUT /galleries`.
        .persistent(false)
        .bind(name)
        .bind(threshold)
        .bind(far)
        .bind(now_ms())
        .fetch_one(&mut *tx)
        .await?;
        let gallery = gallery_from_row(&row)?;
        let kind = ChangeKind::GalleryChanged;
        self.record_change(&mut tx, kind, gallery.id, None, None)
            .await?;
        tx.commit().await?;
        Ok(gallery)
    }
}
