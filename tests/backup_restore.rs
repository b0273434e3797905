//! Backup and restore: `faceprint-server backup` snapshots a live SQLite database while
//! enrollments run, `restore` brings it back into a fresh file, and identify answers
//! exactly as before; `pg_dump`/`pg_restore` do the same for PostgreSQL.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use sqlx::Connection;
use support::app::{TestApp, json_of};
use support::db::{POSTGRES_ENV, TestDb};
use support::fixtures::{b64, face, model_path};

/// Run `faceprint-server ARGS` against the database `url`.
fn server_command(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_faceprint-server"))
        .args(args)
        .env("FACEPRINT_DATABASE__URL", url)
        .env("FACEPRINT_MODEL__PATH", model_path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run faceprint-server")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every identity enrolled before the backup: (name, images).
fn people() -> Vec<(String, Vec<Vec<u8>>)> {
    ["s1", "s2", "s3", "s4"]
        .iter()
        .map(|who| (format!("person-{who}"), vec![face(who, 1), face(who, 2)]))
        .collect()
}

/// Identify answers for a fixed set of probes, in full (candidates, similarities, face ids).
async fn answers(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    for who in ["s1", "s2", "s3", "s4"] {
        for n in 1..=3 {
            let body = json!({ "image": b64(&face(who, n)), "top_k": 10 });
            let (status, answer) = json_of(app.post_json("/identify", &body).await).await;
            assert_eq!(status, 200, "{answer}");
            all.push(answer);
        }
    }
    all
}

async fn enroll_people(app: &TestApp) {
    for (name, images) in people() {
        let (status, body) = json_of(app.enroll(&name, &images).await).await;
        assert_eq!(status, 201, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_enrollments_restores_to_the_same_answers() {
    let live = TestApp::spawn(TestDb::sqlite()).await;
    enroll_people(&live).await;
    let before = answers(&live).await;

    // Enrollments into another gallery keep running while the backup is taken.
    let busy_url = live.url("/enroll");
    let busy = tokio::spawn(async move {
        let client = reqwest::Client::new();
        let images = vec![b64(&face("s1", 3)), b64(&face("s2", 3))];
        let mut n = 0;
        loop {
            let body =
                json!({ "identity": format!("busy-{n}"), "gallery": "busy", "images": images });
            let response = client.post(&busy_url).json(&body).send().await;
            assert!(
                response.is_ok_and(|r| r.status() == 201),
                "busy enrollment {n}"
            );
            n += 1;
            tokio::task::yield_now().await;
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let snapshot = dir.path().join("snapshot.db");
    let url = live.db.url.clone();
    let out = snapshot.display().to_string();
    let backup =
        tokio::task::spawn_blocking(move || server_command(&url, &["backup", "--out", &out]))
            .await
            .expect("backup task");
    busy.abort();
    assert!(
        backup.status.success(),
        "backup failed: {}",
        stderr(&backup)
    );

    // A second backup to the same file is refused: nothing is overwritten.
    let again = server_command(
        &live.db.url,
        &["backup", "--out", &snapshot.display().to_string()],
    );
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );

    let fresh = TestDb::sqlite();
    let restored = server_command(
        &fresh.url,
        &["restore", "--from", &snapshot.display().to_string()],
    );
    assert!(
        restored.status.success(),
        "restore failed: {}",
        stderr(&restored)
    );
    let copy = TestApp::spawn(fresh).await;
    assert_eq!(
        answers(&copy).await,
        before,
        "identify answers after restore"
    );

    // The busy gallery came back whole: every enrollment in it has both its faces.
    let (status, listed) = json_of(copy.list_identities("?gallery=busy&limit=1000").await).await;
    assert_eq!(status, 200, "{listed}");
    let busy = listed["identities"].as_array().expect("identities");
    assert!(
        !busy.is_empty(),
        "the snapshot holds enrollments made during the backup"
    );
    for identity in busy {
        assert_eq!(
            identity["faces"], 2,
            "half an enrollment in the snapshot: {identity}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_a_database_that_holds_data_unless_forced() {
    let source = TestApp::spawn(TestDb::sqlite()).await;
    enroll_people(&source).await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let snapshot = dir.path().join("snapshot.db").display().to_string();
    assert!(
        server_command(&source.db.url, &["backup", "--out", &snapshot])
            .status
            .success()
    );

    let target = TestApp::spawn(TestDb::sqlite()).await;
    let (status, _) = json_of(target.enroll("someone-else", &[face("s4", 3)]).await).await;
    assert_eq!(status, 201);
    let url = target.db.url.clone();
    let refused = server_command(&url, &["restore", "--from", &snapshot]);
    assert!(
        !refused.status.success(),
        "restore over data without --force"
    );
    assert!(stderr(&refused).contains("--force"), "{}", stderr(&refused));
    let (status, _) = json_of(target.get_identity("someone-else").await).await;
    assert_eq!(
        status, 200,
        "the refused restore left the database as it was"
    );

    let forced = server_command(&url, &["restore", "--from", &snapshot, "--force"]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let restarted = target.restart().await;
    assert_eq!(answers(&restarted).await, answers(&source).await);
    let (status, _) = json_of(restarted.get_identity("someone-else").await).await;
    assert_eq!(status, 404, "the forced restore replaced the old contents");
}

#[test]
fn backup_and_restore_refuse_what_they_cannot_do_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = format!("sqlite://{}", dir.path().join("faceprint.db").display());
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is not a database, just some bytes").expect("write");
    let missing = dir.path().join("missing.db").display().to_string();
    let out = dir.path().join("out.db").display().to_string();
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "backup of a database that does not exist",
            vec!["backup", "--out", &out],
            "does not exist",
        ),
        (
            "restore from a missing file",
            vec!["restore", "--from", &missing],
            "does not exist",
        ),
        (
            "restore from a file that is not SQLite",
            vec!["restore", "--from", junk.to_str().expect("utf-8")],
            "not a faceprint SQLite backup",
        ),
        (
            "backup of PostgreSQL",
            vec!["backup", "--out", &out],
            "pg_dump",
        ),
    ];
    for (description, args, expected) in cases {
        let url = if description.contains("PostgreSQL") {
            "postgres://nobody@127.0.0.1:1/none"
        } else {
            &db
        };
        let output = server_command(url, &args);
        assert!(!output.status.success(), "{description}: succeeded");
        assert!(
            stderr(&output).contains(expected),
            "{description}: {}",
            stderr(&output)
        );
    }
    assert!(!Path::new(&out).exists(), "no backup file was left behind");
    assert!(
        !dir.path().join("faceprint.db").exists(),
        "the missing database was not created"
    );
}

/// `postgres://…/db?…` → `postgres://…/name`.
fn with_database(url: &str, name: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    let slash = base.rfind('/').expect("database in the URL");
    format!("{}/{name}", &base[..slash])
}

needs_postgres! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pg_dump_restored_with_pg_restore_answers_the_same() {
    let base = std::env::var(POSTGRES_ENV).expect("PostgreSQL test database");
    let db = TestDb::postgres().await;
    let schema = db
        .url
        .rsplit("search_path%3D")
        .next()
        .expect("schema")
        .to_owned();
    let live = TestApp::spawn(db).await;
    enroll_people(&live).await;
    let before = answers(&live).await;

    let dir = tempfile::tempdir().expect("temporary directory");
    let dump = dir.path().join("faceprint.dump");
    let dumped = Command::new("pg_dump")
        .args([
            "--format=custom",
            "--no-owner",
            "--schema",
            &schema,
            "--file",
        ])
        .arg(&dump)
        .arg(base.split('?').next().unwrap_or(&base))
        .output()
        .expect("run pg_dump");
    assert!(dumped.status.success(), "pg_dump: {}", stderr(&dumped));

    let restored_db = format!("faceprint_restore_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect");
    let create = format!("CREATE DATABASE {restored_db}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut admin)
        .await
        .expect("create database");
    let target = with_database(&base, &restored_db);
    let loaded = Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname", &target])
        .arg(&dump)
        .output()
        .expect("run pg_restore");
    assert!(loaded.status.success(), "pg_restore: {}", stderr(&loaded));

    let url = format!("{target}?options=-c%20search_path%3D{schema}");
    let mut settings = support::app::test_settings(&TestDb::sqlite());
    settings.database.url = faceprint::server::Secret::new(url);
    let mut copy = TestApp::spawn_with(TestDb::sqlite(), settings).await;
    let after = answers(&copy).await;
    copy.stop().await;
    let drop = format!("DROP DATABASE {restored_db} WITH (FORCE)");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&mut admin)
        .await
        .expect("drop database");
    assert_eq!(after, before, "identify answers after pg_restore");
}
}
