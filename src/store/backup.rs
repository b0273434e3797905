//! Backup and restore of a SQLite database.
//!
//! Backup is `VACUUM INTO`: one read transaction, so the copy is a consistent snapshot
//! of a live database while servers keep writing (WAL mode), compacted on the way.
//! Restore copies every table of a backup into the configured database in one
//! transaction — all of it or none of it — after bringing a copy of the backup up to the
//! current schema (the backup file itself is never written).

use std::path::{Path, PathBuf};

use sqlx::{Connection, Row};

use super::{Backend, Store, StoreError};

/// The tables a restore copies, parents before children (foreign keys).
const TABLES: [&str; 4] = ["galleries", "identities", "faces", "changes"];

/// Why a restore was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(String),
    #[error(
        "backup and restore work on SQLite databases; for PostgreSQL use pg_dump and pg_restore"
    )]
    NotSqlite,
    #[error("{path} is not a faceprint SQLite backup: {reason}")]
    NotABackup { path: String, reason: String },
    #[error(
        "the database {path} already holds {galleries} galleries and {faces} faces; \
         pass --force to replace them with the backup"
    )]
    NotEmpty {
        path: String,
        galleries: i64,
        faces: i64,
    },
}

/// The file of a `sqlite://PATH[?options]` URL; `None` for other URLs and in-memory
/// databases.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

impl Store {
    /// `path` as the text SQLite's `VACUUM INTO` and `ATTACH` take; an error unless this
    /// store is SQLite and the path is UTF-8.
    fn sqlite_file_arg<'p>(&self, path: &'p Path) -> Result<&'p str, RestoreError> {
        if self.backend != Backend::Sqlite {
            return Err(RestoreError::NotSqlite);
        }
        path.to_str()
            .ok_or_else(|| RestoreError::Io(format!("{} is not UTF-8", path.display())))
    }

    /// Write a consistent snapshot of this SQLite database to `out`, which must not exist.
    pub async fn backup_into(&self, out: &Path) -> Result<(), RestoreError> {
        let target = self.sqlite_file_arg(out)?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// `(galleries, faces)` stored: what a restore would replace.
    pub async fn counts(&self) -> Result<(i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM galleries) AS galleries, \
                    (SELECT COUNT(*) FROM faces) AS faces",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("galleries")?, row.try_get("faces")?))
    }

    /// `PRAGMA integrity_check` of a SQLite database: `Ok(())` when it reports "ok".
    pub async fn check_integrity(&self) -> Result<Result<(), String>, StoreError> {
        let row = sqlx::query("PRAGMA integrity_check")
            .fetch_one(&self.pool)
            .await?;
        let verdict: String = row.try_get(0)?;
        Ok(if verdict == "ok" {
            Ok(())
        } else {
            Err(verdict)
        })
    }

    /// Replace every row of this SQLite database with those of the SQLite database file
    /// `source` (already migrated to the same schema), in one transaction.
    pub async fn replace_all_from(&self, source: &Path) -> Result<(), RestoreError> {
        let source = self.sqlite_file_arg(source)?;
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        // ATTACH cannot run inside a transaction; the attachment belongs to this connection
        // only and is dropped below (or with the connection on error).
        sqlx::query("ATTACH DATABASE $1 AS restored")
            .bind(source)
            .execute(&mut *conn)
            .await
            .map_err(StoreError::from)?;
        let copied = copy_tables(&mut conn).await;
        let detached = sqlx::query("DETACH DATABASE restored")
            .execute(&mut *conn)
            .await;
        copied?;
        detached.map_err(StoreError::from)?;
        Ok(())
    }
}

async fn copy_tables(conn: &mut sqlx::AnyConnection) -> Result<(), StoreError> {
    let mut tx = conn.begin().await?;
    for table in TABLES.iter().rev() {
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM main.{table}")))
            .execute(&mut *tx)
            .await?;
    }
    for table in TABLES {
        let copy = format!("INSERT INTO main.{table} SELECT * FROM restored.{table}");
        sqlx::query(sqlx::AssertSqlSafe(copy))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        let cases = [
            ("sqlite://faceprint.db", Some("faceprint.db")),
            ("sqlite:///data/faceprint.db", Some("/data/faceprint.db")),
            ("sqlite://a.db?mode=rwc", Some("a.db")),
            ("sqlite:a.db", Some("a.db")),
            ("sqlite::memory:", None),
            ("postgres://u@h/db", None),
        ];
        for (url, expected) in cases {
            assert_eq!(sqlite_path(url), expected.map(PathBuf::from), "{url}");
        }
    }
}
