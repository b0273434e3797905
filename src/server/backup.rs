//! `faceprint-server backup` and `restore`: snapshots of the configured SQLite database.
//!
//! - `backup --out FILE` works while servers run (see `store::backup`); it refuses to
//!   overwrite `FILE`, and writes `FILE.partial` first so a failed run leaves no `FILE`.
//! - `restore --from FILE` replaces the contents of the configured database with the
//!   backup's, in one transaction. It refuses a database that already holds galleries or
//!   faces unless `force`, and never writes `FILE` (a copy is brought up to the current
//!   schema). Stop the servers first: a running server keeps its indexes from before.

use std::path::{Path, PathBuf};

use super::config::Settings;
use crate::store::{RestoreError, Store, sqlite_path};

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub path: PathBuf,
    pub bytes: u64,
}

/// What a restore brought back.
#[derive(Debug)]
pub struct RestoreReport {
    pub galleries: i64,
    pub faces: i64,
}

/// Write a consistent snapshot of the configured SQLite database to `out`.
pub async fn backup(settings: &Settings, out: &Path) -> Result<BackupReport, RestoreError> {
    let url = settings.database.url.expose();
    let db = sqlite_path(url).ok_or(RestoreError::NotSqlite)?;
    if !db.is_file() {
        return Err(io(format!("the database {} does not exist", db.display())));
    }
    if out.exists() {
        return Err(io(format!(
            "{} already exists; choose a new file",
            out.display()
        )));
    }
    let mut partial = out.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // A stale partial file from an interrupted run: VACUUM INTO refuses existing files.
    let _ = std::fs::remove_file(&partial);
    let store = Store::connect(url, 1).await?;
    let written = store.backup_into(&partial).await;
    store.close().await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, out).map_err(|e| {
        io(format!(
            "cannot rename {} to {}: {e}",
            partial.display(),
            out.display()
        ))
    })?;
    let bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        path: out.to_owned(),
        bytes,
    })
}

/// Replace the configured SQLite database's contents with the backup `from`.
pub async fn restore(
    settings: &Settings,
    from: &Path,
    force: bool,
) -> Result<RestoreReport, RestoreError> {
    let url = settings.database.url.expose();
    let db = sqlite_path(url).ok_or(RestoreError::NotSqlite)?;
    if !from.is_file() {
        return Err(io(format!("the backup {} does not exist", from.display())));
    }
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
    let staged = Staged(dir.join(format!(".faceprint-restore-{}.db", std::process::id())));
    std::fs::copy(from, &staged.0)
        .map_err(|e| io(format!("cannot copy {}: {e}", from.display())))?;
    let not_a_backup = |reason: String| RestoreError::NotABackup {
        path: from.display().to_string(),
        reason,
    };
    let staged_url = format!("sqlite://{}", staged.0.display());
    let (galleries, faces) = {
        let copy = Store::connect(&staged_url, 1)
            .await
            .map_err(|e| not_a_backup(e.to_string()))?;
        let checked = copy.check_integrity().await;
        let counts = copy.counts().await;
        copy.close().await;
        checked?.map_err(not_a_backup)?;
        counts?
    };
    let target = Store::connect(url, 1).await?;
    let outcome = async {
        let (held_galleries, held_faces) = target.counts().await?;
        if (held_galleries > 0 || held_faces > 0) && !force {
            return Err(RestoreError::NotEmpty {
                path: db.display().to_string(),
                galleries: held_galleries,
                faces: held_faces,
            });
        }
        target.replace_all_from(&staged.0).await
    }
    .await;
    target.close().await;
    outcome?;
    Ok(RestoreReport { galleries, faces })
}

fn io(message: String) -> RestoreError {
    RestoreError::Io(message)
}

/// The staged copy of a backup and its SQLite side files, deleted when dropped.
struct Staged(PathBuf);

impl Drop for Staged {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = self.0.as_os_str().to_owned();
            path.push(suffix);
            let _ = std::fs::remove_file(PathBuf::from(path));
        }
    }
}
