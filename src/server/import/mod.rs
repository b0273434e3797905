//! `faceprint-server import DIR`: enroll a whole folder tree (`DIR/<identity>/<image>`,
//! the trainer's layout) into a gallery, with a progress bar.
//!
//! - **Nothing half-written**: each identity's new faces are one transaction (the same
//!   [`Store::enroll`](crate::store::Store::enroll) `/enroll` uses), so an interrupted
//!   import leaves every identity either with all of this run's faces or with none of
//!   them.
//! - **Resumable, no duplicates**: a face is identified by its identity and the SHA-256
//!   of its file's bytes (stored with every face). A run first reads which hashes the
//!   gallery holds and skips those files without decoding them, so running the same
//!   command again after an interruption adds exactly what is missing.
//! - **Fast**: folders are read in chunks of about [`CHUNK_FILES`] files; a chunk's
//!   images are decoded in parallel and embedded as one batch on the blocking pool while
//!   the previous chunk is being committed.
//!
//! A running server does not see imported faces until it restarts (SQLite), or until its
//! change-log follower picks them up (PostgreSQL replicas).

mod prepare;
mod tree;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use self::prepare::{Context, Prepared, Stored, prepare};
pub use self::tree::TreeError;
use self::tree::{IdentityFolder, scan_tree};
use super::config::Settings;
use super::names::GalleryName;
use super::startup::{StartupError, check_model_versions, detector_for, open_model_and_store};
use crate::store::StoreError;

/// Files per chunk: enough for a batched forward pass, small enough that an
/// interruption loses little work.
const CHUNK_FILES: usize = 256;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("invalid gallery name: {0}")]
    Gallery(String),
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Model(String),
}

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    pub gallery: String,
    /// Find the largest face in each image (photographs); else each image is a face crop
    /// (`detect=false`).
    pub detect: bool,
    /// Draw a progress bar on stderr (it stays hidden when stderr is not a terminal).
    pub progress: bool,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct ImportReport {
    /// Identity folders read.
    pub identities: usize,
    /// Faces enrolled by this run.
    pub faces_added: usize,
    /// Files whose faces the gallery already held (an earlier run), or repeated files.
    pub already_stored: usize,
    /// Files left out, with the reason (undecodable, too small, no face).
    pub skipped: Vec<(PathBuf, String)>,
    /// Files directly under DIR, which belong to no identity.
    pub stray_files: usize,
    pub seconds: f64,
}

impl ImportReport {
    /// Faces enrolled per second of the whole run.
    pub fn faces_per_second(&self) -> f64 {
        self.faces_added as f64 / self.seconds.max(1e-9)
    }
}

/// Imports `dir` into `options.gallery` (see the module docs).
pub async fn import(
    settings: &Settings,
    dir: &Path,
    options: &ImportOptions,
) -> Result<ImportReport, ImportError> {
    let start = Instant::now();
    let gallery = GalleryName::parse(Some(&options.gallery))
        .map_err(|e| ImportError::Gallery(e.to_string()))?;
    let (folders, stray_files) = scan_tree(dir)?;
    let (embedder, store) = open_model_and_store(settings).await?;
    let embedder = Arc::new(embedder);
    let detector = Arc::new(detector_for(settings, &embedder)?);
    let store = store.map_err(StartupError::from)?;
    check_model_versions(&store, &embedder, settings).await?;
    let mut stored = Stored::new();
    for (external_id, sha256) in store.gallery_image_hashes(gallery.as_str()).await? {
        stored.entry(external_id).or_default().insert(sha256);
    }
    let ctx = Arc::new(Context {
        embedder,
        detector,
        detect: options.detect,
        limits: settings.limits.clone(),
        store_images: settings.database.store_images,
        gallery: gallery.as_str().to_owned(),
    });
    let bar = progress_bar(
        folders.iter().map(|f| f.files.len()).sum(),
        options.progress,
    );
    let mut report = ImportReport {
        identities: folders.len(),
        stray_files,
        ..ImportReport::default()
    };
    let stored = Arc::new(stored);
    let mut chunks = chunks(folders).into_iter();
    let mut next = chunks.next().map(|c| spawn_prepare(&ctx, c, &stored));
    while let Some(task) = next.take() {
        let prepared = task
            .await
            .map_err(StartupError::from)?
            .map_err(ImportError::Model)?;
        // The next chunk is read and embedded while this one is committed.
        next = chunks.next().map(|c| spawn_prepare(&ctx, c, &stored));
        for enrollment in &prepared.enrollments {
            store.enroll(enrollment).await?;
            report.faces_added += enrollment.faces.len();
        }
        report.already_stored += prepared.already_stored;
        bar.inc(prepared.files as u64);
        bar.set_message(format!("{} added", report.faces_added));
        report.skipped.extend(prepared.skipped);
    }
    bar.finish_and_clear();
    store.close().await;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

type PrepareTask = tokio::task::JoinHandle<Result<Prepared, String>>;

fn spawn_prepare(
    ctx: &Arc<Context>,
    chunk: Vec<IdentityFolder>,
    stored: &Arc<Stored>,
) -> PrepareTask {
    let (ctx, stored) = (Arc::clone(ctx), Arc::clone(stored));
    tokio::task::spawn_blocking(move || prepare(&ctx, &chunk, &stored))
}

/// Consecutive identities grouped into chunks of about [`CHUNK_FILES`] files (an
/// identity is never split: its faces are one transaction).
fn chunks(folders: Vec<IdentityFolder>) -> Vec<Vec<IdentityFolder>> {
    let mut out = vec![Vec::new()];
    let mut files = 0;
    for folder in folders {
        if files >= CHUNK_FILES {
            out.push(Vec::new());
            files = 0;
        }
        files += folder.files.len();
        out.last_mut().expect("out starts non-empty").push(folder);
    }
    out
}

fn progress_bar(files: usize, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let template = "{elapsed_precise} [{bar:30}] {pos}/{len} files, {per_sec}, ETA {eta} {msg}";
    ProgressBar::new(files as u64).with_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    )
}
