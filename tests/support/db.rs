//! A fresh database per test: a SQLite file in a temporary directory, or a new schema in
//! the PostgreSQL database named by `FACEPRINT_TEST_DATABASE_URL`.

use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Connection;

/// The environment variable naming the PostgreSQL database that tests may use.
pub const POSTGRES_ENV: &str = "FACEPRINT_TEST_DATABASE_URL";

/// A database URL that no other test uses; the SQLite file lives as long as this value.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A new SQLite file (not yet created: the server creates it).
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("faceprint.db").display());
        TestDb {
            url,
            _dir: Some(dir),
        }
    }

    /// A new empty schema in the test PostgreSQL database named by
    /// `FACEPRINT_TEST_DATABASE_URL`. Tests that call this carry [`needs_postgres!`]'s
    /// attribute, so they run only in a build made with the variable set; a run without it
    /// fails here, loudly, rather than passing without PostgreSQL.
    pub async fn postgres() -> TestDb {
        let base = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
            panic!(
                "{POSTGRES_ENV} was set when the tests were built but is unset now: \
                 set it again (or unset it and rebuild, and the PostgreSQL tests are ignored)"
            )
        });
        let schema = unique_name();
        let mut conn = sqlx::PgConnection::connect(&base)
            .await
            .unwrap_or_else(|e| panic!("connect to {POSTGRES_ENV}={base}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await
            .expect("create schema");
        conn.close().await.ok();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        TestDb { url, _dir: None }
    }
}

/// `t_<pid>_<nanos>_<counter>`: unique across parallel tests and test binaries.
fn unique_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t_{}_{}_{}", std::process::id(), nanos, n)
}

/// Put before a test that needs PostgreSQL: the test is ignored, with the reason, unless
/// the tests were built with `FACEPRINT_TEST_DATABASE_URL` set (`build.rs` then sets
/// `cfg(faceprint_postgres)`; `.ci/run` does this).
#[macro_export]
macro_rules! needs_postgres {
    ($item:item) => {
        #[cfg_attr(
            not(faceprint_postgres),
            ignore = "needs PostgreSQL: build and run with FACEPRINT_TEST_DATABASE_URL set (as .ci/run does)"
        )]
        $item
    };
}

/// Define `mod $name { sqlite, postgres }`: the async test `$body(TestDb)` run once per
/// backend; the PostgreSQL run is ignored, with the reason, when no database is configured.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body($crate::support::db::TestDb::sqlite()).await
            }

            $crate::needs_postgres! {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $body($crate::support::db::TestDb::postgres().await).await
                }
            }
        }
    };
}
