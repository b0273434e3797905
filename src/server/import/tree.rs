//! The folder tree an import reads: `DIR/<identity>/<image>`, like the trainer's input.
//!
//! Checked before anything is embedded or stored, so a mistyped path or a folder name
//! the API would refuse fails at once with the reason, not an hour into the import:
//! - `DIR` must be a readable directory with at least one identity folder;
//! - each identity folder's name must be a valid external id (the rules of `/enroll`);
//! - hidden entries (name starting with `.`) are ignored, as the trainer ignores them;
//!   files directly under `DIR` belong to nobody and are ignored (counted).
//!
//! Identities and files are sorted by name, so every run visits them in the same order.

use std::path::{Path, PathBuf};

use crate::data::error::DataError;
use crate::data::folder::sorted_visible_entries;
use crate::server::names::ExternalId;

/// Why a tree cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("{path}: not a directory (expected DIR/<identity>/<image files>)")]
    NotADirectory { path: PathBuf },
    #[error("cannot read {0}")]
    Io(#[from] DataError),
    #[error("{path}: no identity folders (expected DIR/<identity>/<image files>)")]
    NoIdentities { path: PathBuf },
    #[error("folder {path}: its name is not a valid identity: {reason}")]
    BadIdentity { path: PathBuf, reason: String },
}

/// One identity folder: its external id and its files, sorted.
#[derive(Debug, Clone)]
pub struct IdentityFolder {
    pub external_id: String,
    pub files: Vec<PathBuf>,
}

/// The identities of `dir`, sorted, and how many stray files lay directly under it.
pub fn scan_tree(dir: &Path) -> Result<(Vec<IdentityFolder>, usize), TreeError> {
    if !dir.is_dir() {
        return Err(TreeError::NotADirectory {
            path: dir.to_path_buf(),
        });
    }
    let mut identities = Vec::new();
    let mut stray = 0;
    for path in sorted_visible_entries(dir)? {
        if !path.is_dir() {
            stray += 1;
            continue;
        }
        let name =
            path.file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| TreeError::BadIdentity {
                    path: path.clone(),
                    reason: "the name is not valid UTF-8".into(),
                })?;
        let external_id = ExternalId::parse(name)
            .map_err(|e| TreeError::BadIdentity {
                path: path.clone(),
                reason: e.to_string(),
            })?
            .as_str()
            .to_owned();
        let files = sorted_visible_entries(&path)?
            .into_iter()
            .filter(|f| f.is_file())
            .collect();
        identities.push(IdentityFolder { external_id, files });
    }
    if identities.is_empty() {
        return Err(TreeError::NoIdentities {
            path: dir.to_path_buf(),
        });
    }
    Ok((identities, stray))
}
