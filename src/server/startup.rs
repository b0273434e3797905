//! Building and running the application: load the model, open and check the store,
//! build the indexes, bind the listener — then serve until SIGTERM or ctrl-c.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::TcpListener;

use super::config::Settings;
use super::follow::{AbortOnDrop, Follower};
use super::galleries::{Galleries, LoadError};
use super::metrics::Metrics;
use super::router::router;
use super::serve::serve;
use super::state::AppState;
use super::work::PixelBudget;
use crate::model::Embedder;
use crate::store::{Backend, Store, StoreError};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(
        "refusing to serve {addr} without API keys: anyone who can reach it could enroll, \
         identify and delete faces. Set FACEPRINT_AUTH__ADMIN_KEYS (and optionally \
         FACEPRINT_AUTH__QUERY_KEYS) to secret keys, e.g. from `openssl rand -hex 32`; or \
         bind a loopback address (FACEPRINT_SERVER__BIND=127.0.0.1:8080); or, to serve an \
         open API on purpose, set auth.allow_open = true (FACEPRINT_AUTH__ALLOW_OPEN=true)"
    )]
    OpenOnNetwork { addr: SocketAddr },
    #[error("cannot load model {path}: {reason}")]
    Model { path: String, reason: String },
    #[error(transparent)]
    Detector(#[from] crate::detect::DetectError),
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    #[error(
        "the database holds {faces} face(s) embedded by model {found}, but the loaded model \
         is {loaded}; embeddings of different models cannot be compared. Re-embed them with \
         `faceprint-server reembed --model {path}` (needs stored images), or start with the \
         model they were made with"
    )]
    ModelMismatch {
        found: String,
        faces: i64,
        loaded: String,
        path: String,
    },
    #[error("cannot build the indexes: {0}")]
    Index(#[from] LoadError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A server ready to run: listener bound, indexes built.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    /// PostgreSQL: where the change-log follower starts (see [`Follower`]).
    follow_from: Option<i64>,
}

impl Application {
    /// Everything up to accepting connections; binds `settings.server.bind` (port 0 picks
    /// a free port, which [`Application::local_addr`] reports).
    pub async fn build(mut settings: Settings) -> Result<Application, StartupError> {
        check_exposure(&settings)?;
        if settings.index.graph_dir.is_none() {
            // HNSW graphs beside a SQLite file by default; PostgreSQL replicas set theirs.
            settings.index.graph_dir = crate::store::sqlite_path(settings.database.url.expose())
                .map(|db| {
                    let mut dir = db.into_os_string();
                    dir.push(".graphs");
                    dir.into()
                });
        }
        let (embedder, store) = open_model_and_store(&settings).await?;
        let detector = detector_for(&settings, &embedder)?;
        let store = store?;
        check_model_versions(&store, &embedder, &settings).await?;
        // Taken before the indexes load: the follower re-reads every change from here.
        let follow_from = match store.backend() {
            Backend::Postgres => Some(store.change_xmin().await?),
            Backend::Sqlite => None,
        };
        let galleries = Galleries::load(&store, &settings.index, embedder.dim()).await?;
        // Loading decoded every stored embedding and name into short-lived buffers;
        // hand their pages back now rather than at the first periodic trim.
        super::memory::trim();
        let addr = settings.server.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let pixels = Arc::new(PixelBudget::new(settings.limits.max_pixels_in_flight));
        let state = AppState {
            settings: Arc::new(settings),
            store,
            embedder: Arc::new(embedder),
            detector: Arc::new(detector),
            galleries: Arc::new(galleries),
            metrics: Arc::new(Metrics::default()),
            pixels,
            writes: Arc::new(tokio::sync::Mutex::new(())),
            ready: Arc::new(AtomicBool::new(true)),
            in_sync: Arc::new(AtomicBool::new(true)),
        };
        Ok(Application {
            listener,
            state,
            follow_from,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until SIGTERM or ctrl-c, then finish in-flight requests and close the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serve until `shutdown` completes (tests pass their own trigger).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let store = self.state.store.clone();
        let ready = Arc::clone(&self.state.ready);
        let follower = self.follow_from.map(|xmin| {
            let url = self.state.settings.database.url.expose().to_owned();
            AbortOnDrop(tokio::spawn(
                Follower::new(self.state.clone(), url, xmin).run(),
            ))
        });
        let trimmer = AbortOnDrop(tokio::spawn(crate::server::memory::trim_periodically()));
        let server_settings = self.state.settings.server.clone();
        let app = router(self.state);
        tracing::info!(addr = %self.listener.local_addr()?, "serving");
        serve(self.listener, app, &server_settings, async move {
            shutdown.await;
            ready.store(false, Ordering::Release);
        })
        .await;
        drop(follower);
        drop(trimmer);
        store.close().await;
        Ok(())
    }
}

/// Safe by default: no keys is fine on loopback (a developer's machine), not on an
/// address other hosts can reach unless `auth.allow_open` is set on purpose.
fn check_exposure(settings: &Settings) -> Result<(), StartupError> {
    let auth = &settings.auth;
    let addr = settings.server.bind;
    let open = auth.admin_keys.is_empty() && auth.query_keys.is_empty();
    if open && !addr.ip().is_loopback() && !auth.allow_open {
        return Err(StartupError::OpenOnNetwork { addr });
    }
    if open && !addr.ip().is_loopback() {
        tracing::warn!(%addr, "serving an open API (auth.allow_open = true): no keys needed");
    }
    Ok(())
}

/// The configured detector, else the one the model file names, else the default.
pub(super) fn detector_for(
    settings: &Settings,
    embedder: &Embedder,
) -> Result<crate::detect::FaceDetector, StartupError> {
    let config = settings
        .detector
        .clone()
        .or_else(|| embedder.meta().detector.clone())
        .unwrap_or_default();
    // Faces are cut in the frame the model reads (its metadata), whatever `[detector]`.
    Ok(crate::detect::FaceDetector::new(config)?.with_frame(embedder.meta().frame))
}

/// The model, and the database opened (and migrated) while it loads: the model's error
/// first; the database's is handed back for the caller to report after its own checks of
/// the model. A model file that cannot be opened, or whose header says it is not a model
/// this build reads, fails before the database is touched ([`check_model_header`]).
pub(super) async fn open_model_and_store(
    settings: &Settings,
) -> Result<(Embedder, Result<Store, StoreError>), StartupError> {
    check_model_header(settings)?;
    let (embedder, store) = tokio::join!(
        load_embedder(settings),
        Store::connect(
            settings.database.url.expose(),
            settings.database.max_connections,
        )
    );
    Ok((embedder?, store))
}

/// Loading parses and checks the whole weight file: off the runtime.
async fn load_embedder(settings: &Settings) -> Result<Embedder, StartupError> {
    let path = settings.model.path.clone();
    tokio::task::spawn_blocking(move || Embedder::load(&path).map_err(|e| model_error(&path, e)))
        .await?
}

/// Fails, before the database is touched, when the model file cannot be opened or its
/// header is not a faceprint model's of a format this build reads (a mistyped path, an
/// image or a checkpoint given as the model): the model loads beside the database's
/// opening, and such a start must not leave a new SQLite file, created and migrated,
/// behind. It reads the header only; a file whose header is a model's but whose tensors
/// are damaged still fails in [`load_embedder`], after the database has opened.
fn check_model_header(settings: &Settings) -> Result<(), StartupError> {
    let path = &settings.model.path;
    crate::model::ModelFile::read_meta(path)
        .map(drop)
        .map_err(|e| model_error(path, e))
}

/// `e` as a start-up error naming `path` once: a file error's own text names it too.
pub(super) fn model_error(path: &std::path::Path, e: crate::model::ModelError) -> StartupError {
    let reason = match e {
        crate::model::ModelError::File { message, .. } => message,
        other => other.to_string(),
    };
    StartupError::Model {
        path: path.display().to_string(),
        reason,
    }
}

/// Refuse to start when stored faces were embedded by another model.
pub(super) async fn check_model_versions(
    store: &Store,
    embedder: &Embedder,
    settings: &Settings,
) -> Result<(), StartupError> {
    let versions = store.model_versions().await?;
    match versions.iter().find(|(v, _)| v != embedder.version()) {
        None => Ok(()),
        Some((found, faces)) => Err(StartupError::ModelMismatch {
            found: found.clone(),
            faces: *faces,
            loaded: embedder.version().to_owned(),
            path: settings.model.path.display().to_string(),
        }),
    }
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
