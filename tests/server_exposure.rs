//! What the server shows and to whom: keys only in headers (a key in the URL is refused
//! and never logged), the auth scheme in any case, no open API on a network address by
//! default, a bounded metrics label set, and probes that answer beside the request limit.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use faceprint::server::{Application, Secret, StartupError};
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::model_path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.auth.admin_keys = vec![Secret::new("admin-key")];
    let mut app = TestApp::spawn_with(db, settings).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let response = app
            .client
            .get(app.url("/galleries"))
            .header("authorization", format!("{scheme} admin-key"))
            .send()
            .await
            .expect("sent");
        let (status, body) = json_of(response).await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    let response = app
        .client
        .get(app.url("/identities"))
        .header("authorization", "Basic admin-key")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 401, "another scheme is no key");
    app.stop().await;
}

/// Send `path` over HTTP/1.1 on a fresh connection and return the status line.
async fn status_line(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or("").to_owned()
}

#[tokio::test]
async fn a_key_in_the_query_string_is_refused_and_never_logged() {
    let db = TestDb::sqlite();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_faceprint-server"))
        .env("FACEPRINT_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("FACEPRINT_DATABASE__URL", &db.url)
        .env("FACEPRINT_MODEL__PATH", model_path())
        .env("FACEPRINT_AUTH__ADMIN_KEYS", "the-admin-key")
        .env("RUST_LOG", "debug")
        .stdout(log.reopen().expect("log"))
        .stderr(Stdio::null())
        .spawn()
        .expect("start faceprint-server");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut ready = false;
    for _ in 0..600 {
        if TcpStream::connect(addr).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the server listens");
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");
    // A request whose URL the debug log does show: proof that URLs reach the log at all.
    let seen = client
        .get(format!("{base}/healthz?marker=visible-in-the-log"))
        .send()
        .await
        .expect("sent");
    assert_eq!(seen.status().as_u16(), 200);
    for query in [
        "api_key=the-admin-key",
        "limit=5&API_KEY=the-admin-key",
        "access_token=the-admin-key",
        "x-api-key=the-admin-key",
    ] {
        let (status, body) = json_of(
            client
                .get(format!("{base}/identities?{query}"))
                .send()
                .await
                .expect("sent"),
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "api_key_in_query", "{body}");
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(log.path()).expect("read log");
    assert!(
        text.contains("visible-in-the-log"),
        "the debug log shows request URLs:\n{text}"
    );
    assert!(
        !text.contains("the-admin-key"),
        "a key sent in the URL reached the log:\n{text}"
    );
}

#[tokio::test]
async fn an_open_api_on_a_network_address_refuses_to_start_unless_allowed() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.server.bind = SocketAddr::from(([0, 0, 0, 0], 0));
    let refused = Application::build(settings.clone()).await;
    let Err(error @ StartupError::OpenOnNetwork { .. }) = refused else {
        panic!("an open API on 0.0.0.0 started");
    };
    let message = error.to_string();
    for hint in ["FACEPRINT_AUTH__ADMIN_KEYS", "allow_open", "127.0.0.1"] {
        assert!(message.contains(hint), "the refusal says {hint}: {message}");
    }
    let mut allowed = settings.clone();
    allowed.auth.allow_open = true;
    assert!(Application::build(allowed).await.is_ok(), "allow_open");
    let mut keyed = settings.clone();
    keyed.auth.query_keys = vec![Secret::new("query-key")];
    assert!(Application::build(keyed).await.is_ok(), "with a key");
    let mut loopback = settings;
    loopback.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    assert!(Application::build(loopback).await.is_ok(), "on loopback");
}

#[tokio::test]
async fn metrics_label_made_up_methods_as_other_and_unknown_paths_as_unmatched() {
    let mut app = TestApp::spawn(TestDb::sqlite()).await;
    for i in 0..20 {
        let method = format!("M{i}{}", "X".repeat(4_000));
        let line = status_line(app.addr, &method, &format!("/healthz/{i}")).await;
        assert!(line.starts_with("HTTP/1.1 4"), "{line}");
    }
    let line = status_line(app.addr, "BREW", "/enroll").await;
    assert!(line.starts_with("HTTP/1.1 405"), "{line}");
    let text = app.get("/metrics").await.text().await.expect("metrics");
    assert!(!text.contains("XXXX"), "a made-up method became a label");
    assert!(
        !text.contains("/healthz/1"),
        "a concrete path became a label"
    );
    assert!(
        text.contains(r#"method="other",route="unmatched",status="404""#),
        "{text}"
    );
    assert!(
        text.contains(r#"method="other",route="/enroll",status="405""#),
        "{text}"
    );
    assert!(text.len() < 20_000, "metrics grew to {} bytes", text.len());
    app.stop().await;
}

#[tokio::test]
async fn probes_answer_while_a_stalled_upload_holds_the_only_request_slot() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.limits.max_concurrent_requests = 1;
    settings.limits.request_timeout_ms = 60_000;
    let mut app = TestApp::spawn_with(db, settings).await;
    let mut stalled = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /identify HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"image\": ",
        app.addr
    );
    stalled.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;
    for probe in ["/healthz", "/readyz"] {
        let (status, body) = json_of(app.get(probe).await).await;
        assert_eq!(status, 200, "{probe}: {body}");
    }
    // The slot is still taken: the stalled upload has had no answer.
    let mut byte = [0u8; 1];
    let pending = tokio::time::timeout(Duration::from_millis(200), stalled.read(&mut byte)).await;
    assert!(pending.is_err(), "the stalled upload was answered already");
    drop(stalled);
    app.stop().await;
}
