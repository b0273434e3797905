//! Opening the database: backend from the URL, SQLite durability settings, migrations.

use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, Executor};

use super::{Backend, Store, StoreError};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// How long a SQLite writer waits for another writer's lock before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// How long opening the database waits for a first connection. sqlx keeps retrying a
/// server that refuses connections (one still starting beside this one, as in a compose
/// file) for this long; a server that answers with an error (unknown role, wrong
/// password) fails at once.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// After this long without a first connection, the wait is logged with its reason.
const CONNECT_NOTICE: Duration = Duration::from_secs(2);

/// The longest a single diagnostic connection attempt may take (a host that drops
/// packets never refuses).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections idle this long are closed, so a pool that grew under a burst shrinks back
/// (and its file descriptors with it) within a minute rather than sqlx's default ten;
/// opening one again costs milliseconds.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

impl Store {
    /// Connect to `url` (`sqlite://path` — the file is created if missing — or
    /// `postgres://…`), then apply pending migrations.
    ///
    /// SQLite connections run in WAL mode with `synchronous = FULL` (a commit is on disk
    /// before it is acknowledged), a busy timeout and foreign keys on. On PostgreSQL,
    /// `sqlx` takes an advisory lock while migrating, so replicas may start together.
    ///
    /// A server that cannot be reached within 30 s is an [`StoreError::Unreachable`] naming
    /// its address and why a direct attempt failed (not sqlx's "pool timed out"); the
    /// wait is logged after two seconds.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Store, StoreError> {
        Self::connect_waiting(url, max_connections, CONNECT_WAIT).await
    }

    /// [`Self::connect`] with the wait for a first connection given.
    pub(crate) async fn connect_waiting(
        url: &str,
        max_connections: u32,
        wait: Duration,
    ) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalise_url(url)?;
        if backend == Backend::Sqlite {
            check_directory(&url)?;
        }
        let options = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .idle_timeout(IDLE_TIMEOUT);
        let options = match backend {
            Backend::Sqlite => options
                .after_connect(|conn, _meta| Box::pin(async move { sqlite_pragmas(conn).await })),
            Backend::Postgres => options,
        };
        let pool = options.connect_lazy(&url)?;
        first_connection(&pool, &url, backend, wait).await?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&pool).await?;
        Ok(Store {
            pool,
            backend,
            origin: Arc::from(format!("{:016x}", rand::random::<u64>())),
        })
    }
}

/// Opens the pool's first connection within `wait`, or says which server did not answer
/// and why. After [`CONNECT_NOTICE`] one direct attempt ([`probe`]) runs beside the
/// pool's own and the wait is logged with its reason; the pool is still polled meanwhile,
/// so a server that comes up is taken at once and the wait ends at `wait` even on a host
/// that drops packets. The error gives that attempt's reason, or, if none finished in
/// time (a `wait` shorter than the notice and a probe), one more attempt's.
async fn first_connection(
    pool: &sqlx::AnyPool,
    url: &str,
    backend: Backend,
    wait: Duration,
) -> Result<(), StoreError> {
    let acquire = tokio::time::timeout(wait, pool.acquire());
    tokio::pin!(acquire);
    let notice = async {
        tokio::time::sleep(CONNECT_NOTICE).await;
        let reason = probe(url).await;
        tracing::warn!(
            address = %address(url, backend),
            reason = %reason,
            "waiting up to {} s for the database",
            wait.as_secs()
        );
        reason
    };
    let mut reason = None;
    let first = tokio::select! {
        first = &mut acquire => first,
        noticed = notice => {
            reason = Some(noticed);
            (&mut acquire).await
        }
    };
    match first {
        Ok(Ok(_connection)) => Ok(()),
        Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => Err(StoreError::Unreachable {
            address: address(url, backend),
            seconds: wait.as_secs(),
            reason: match reason {
                Some(reason) => reason,
                None => probe(url).await,
            },
        }),
        Ok(Err(e)) => Err(e.into()),
    }
}

/// Why a connection to `url` fails now: one attempt outside the pool, whose retries
/// hide the reason behind "pool timed out".
async fn probe(url: &str) -> String {
    use sqlx::Connection;
    match tokio::time::timeout(PROBE_TIMEOUT, AnyConnection::connect(url)).await {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(connection)) => {
            let _ = connection.close().await;
            "it answers now".to_owned()
        }
        Err(_) => format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
    }
}

/// The server `url` names, without credentials: `host:port` (or the socket directory)
/// for PostgreSQL, the URL itself for SQLite.
fn address(url: &str, backend: Backend) -> String {
    use std::str::FromStr;
    match backend {
        Backend::Sqlite => url.to_owned(),
        Backend::Postgres => match sqlx::postgres::PgConnectOptions::from_str(url) {
            Ok(o) => match o.get_socket() {
                Some(dir) => dir.display().to_string(),
                None => format!("{}:{}", o.get_host(), o.get_port()),
            },
            Err(_) => redact_password(url),
        },
    }
}

/// The `Any` driver opens SQLite with sqlx's defaults, which set neither the journal mode
/// nor `synchronous`; set both explicitly so durability never depends on how SQLite was
/// compiled.
async fn sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode = WAL").await?;
    conn.execute("PRAGMA synchronous = FULL").await?;
    conn.execute("PRAGMA foreign_keys = ON").await?;
    let busy = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
    conn.execute(sqlx::AssertSqlSafe(busy)).await?;
    Ok(())
}

/// A SQLite file in a directory that does not exist: SQLite's own answer is "unable to
/// open database file" (code 14), which names neither the file nor the reason.
fn check_directory(url: &str) -> Result<(), StoreError> {
    let Some(file) = super::sqlite_path(url) else {
        return Ok(());
    };
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => {
            Err(StoreError::MissingDirectory {
                file: file.display().to_string(),
                dir: dir.display().to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// The backend of `url`; SQLite URLs get `mode=rwc` (create if missing) unless they name
/// a mode themselves.
fn normalise_url(url: &str) -> Result<(Backend, String), StoreError> {
    if url.starts_with("sqlite:") {
        if url.contains("mode=") || url.contains(":memory:") {
            return Ok((Backend::Sqlite, url.to_owned()));
        }
        let separator = if url.contains('?') { '&' } else { '?' };
        Ok((Backend::Sqlite, format!("{url}{separator}mode=rwc")))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_owned()))
    } else {
        Err(StoreError::UnsupportedUrl {
            url: redact_password(url),
        })
    }
}

/// `scheme://user:secret@host` → `scheme://user:***@host`, for error messages.
fn redact_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_are_created_if_missing_unless_they_choose_a_mode() {
        let cases = [
            ("sqlite://faceprint.db", "sqlite://faceprint.db?mode=rwc"),
            (
                "sqlite://a.db?cache=shared",
                "sqlite://a.db?cache=shared&mode=rwc",
            ),
            ("sqlite://a.db?mode=ro", "sqlite://a.db?mode=ro"),
        ];
        for (given, expected) in cases {
            let (backend, url) = normalise_url(given).expect("sqlite URL");
            assert_eq!(backend, Backend::Sqlite, "{given}");
            assert_eq!(url, expected, "{given}");
        }
    }

    #[tokio::test]
    async fn a_sqlite_file_in_a_missing_directory_is_refused_by_name_and_nothing_is_created() {
        let root = std::env::temp_dir().join(format!("faceprint-nodir-{}", std::process::id()));
        let file = root.join("missing").join("faceprint.db");
        let url = format!("sqlite://{}", file.display());
        let err = match Store::connect(&url, 1).await {
            Ok(_) => panic!("connected to {url}"),
            Err(e) => e,
        };
        let message = err.to_string();
        assert!(
            matches!(err, StoreError::MissingDirectory { .. }),
            "{message}"
        );
        assert!(message.contains(&file.display().to_string()), "{message}");
        assert!(message.contains("does not exist"), "{message}");
        assert!(!root.exists(), "{} was created", root.display());
        // A file name alone (the working directory) and an existing directory still open.
        let dir = std::env::temp_dir().join(format!("faceprint-dir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("ok.db").display());
        let opened = Store::connect(&url, 1).await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(opened.is_ok(), "{url}: {:?}", opened.err());
        assert!(check_directory("sqlite://faceprint.db?mode=rwc").is_ok());
        assert!(check_directory("sqlite::memory:").is_ok());
    }

    #[tokio::test]
    async fn a_postgres_server_that_refuses_is_named_with_the_reason_not_a_pool_timeout() {
        // A port just released: nothing listens there, so each attempt is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let url = format!("postgres://faceprint:hunter2@127.0.0.1:{port}/faceprint");
        let err = match Store::connect_waiting(&url, 1, Duration::from_secs(1)).await {
            Ok(_) => panic!("connected to {url}"),
            Err(e) => e,
        };
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unreachable { .. }), "{message}");
        assert!(
            message.contains(&format!("at 127.0.0.1:{port} within 1 s")),
            "{message}"
        );
        assert!(message.to_lowercase().contains("refused"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!message.contains("timed out"), "{message}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_ends_the_wait_on_time_with_the_reason() {
        // A host that drops packets, as far as a client can tell: the connection is
        // accepted, the startup message never answered.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let port = listener.local_addr().expect("its address").port();
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        // Long enough for the notice's attempt (after 2 s) to give up (after 5 more).
        let wait = Duration::from_secs(8);
        let url = format!("postgres://faceprint@127.0.0.1:{port}/faceprint");
        let started = std::time::Instant::now();
        let err = match Store::connect_waiting(&url, 1, wait).await {
            Ok(_) => panic!("connected to {url}"),
            Err(e) => e,
        };
        let waited = started.elapsed();
        silent.abort();
        let message = err.to_string();
        assert!(matches!(err, StoreError::Unreachable { .. }), "{message}");
        assert!(message.contains("within 8 s"), "{message}");
        assert!(message.contains("no answer within 5 s"), "{message}");
        // The pool was waited on while the attempt ran, and that attempt's reason was
        // reported: the wait is the 8 s it says. Before, the wait went on after the
        // logged attempt and another attempt followed it: 13 s here, where no subscriber
        // enables the log (so its attempt never ran), longer in a server that logs.
        assert!(waited < wait + Duration::from_secs(3), "waited {waited:?}");
    }

    #[test]
    fn unsupported_urls_are_refused_without_printing_the_password() {
        let err = normalise_url("mysql://root:hunter2@db/faceprint").expect_err("mysql");
        let message = err.to_string();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            message.contains("mysql://root:***@db/faceprint"),
            "{message}"
        );
    }
}
