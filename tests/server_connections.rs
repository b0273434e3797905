//! Connection hygiene through a real socket: connections that never finish their headers,
//! or sit idle after a response, are closed after `server.header_read_timeout_ms`; at
//! `server.max_connections` new connections wait until one closes; SIGTERM-style
//! shutdown gives a half-sent request `server.shutdown_grace_ms`, not forever.

mod support;

use std::time::Duration;

use faceprint::server::Settings;
use support::app::{TestApp, test_settings};
use support::db::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn spawn(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    adjust(&mut settings);
    TestApp::spawn_with(db, settings).await
}

/// A connection that has sent `bytes` and nothing more.
async fn connect_and_send(app: &TestApp, bytes: &str) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(bytes.as_bytes()).await.expect("write");
    stream
}

/// Everything the server sends until it closes the connection, or `None` if it is
/// still open after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut answer)).await {
        Ok(Ok(_)) | Ok(Err(_)) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

/// `stream` gets its 200 and is then closed by the server.
async fn expect_200_then_close(stream: &mut TcpStream, what: &str) {
    let answer = read_until_closed(stream, Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("{what}: still open"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{what}: {answer}");
}

#[tokio::test]
async fn unfinished_headers_and_idle_keep_alive_connections_are_closed() {
    let mut app = spawn(|s| s.server.header_read_timeout_ms = 500).await;
    let mut half_sent = Vec::new();
    for _ in 0..20 {
        half_sent.push(connect_and_send(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n").await);
    }
    let mut idle = connect_and_send(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    for (i, stream) in half_sent.iter_mut().enumerate() {
        let closed = read_until_closed(stream, Duration::from_secs(20)).await;
        assert!(
            closed.is_some(),
            "connection {i} with unfinished headers is still open"
        );
    }
    expect_200_then_close(&mut idle, "the idle keep-alive connection").await;
    app.stop().await;
}

#[tokio::test]
async fn at_the_connection_cap_a_new_connection_waits_until_one_closes() {
    let mut app = spawn(|s| {
        s.server.max_connections = 2;
        s.server.header_read_timeout_ms = 60_000;
    })
    .await;
    let first = connect_and_send(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    let _second = connect_and_send(&app, "GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = connect_and_send(
        &app,
        "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        read_until_closed(&mut third, Duration::from_millis(500))
            .await
            .is_none(),
        "a third connection was served beside two at a cap of two"
    );
    drop(first);
    expect_200_then_close(&mut third, "the third connection, once one closed").await;
    app.stop().await;
}

#[tokio::test]
async fn shutdown_waits_for_a_half_sent_request_only_until_its_grace_period() {
    let mut app = spawn(|s| {
        s.server.shutdown_grace_ms = 500;
        s.limits.request_timeout_ms = 120_000;
        s.limits.body_read_timeout_ms = 120_000;
    })
    .await;
    let _stalled = connect_and_send(
        &app,
        "POST /identify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{\"image\": ",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(30), app.stop())
        .await
        .expect("shutdown finished long before the stalled request's deadline");
}
