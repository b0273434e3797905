//! The request deadline and the concurrency limit, through a real socket: a client that
//! sends its headers and then stalls holds a slot until its deadline cuts it off with
//! the JSON 503 `timeout`; with one slot, the next request waits for that (the probes
//! do not: see `server_exposure.rs`).

mod support;

use std::time::Duration;

use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The real server on a fresh SQLite file with `slots` concurrent requests and a
/// `timeout_ms` deadline.
async fn spawn(slots: usize, timeout_ms: u64) -> TestApp {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.limits.max_concurrent_requests = slots;
    settings.limits.request_timeout_ms = timeout_ms;
    TestApp::spawn_with(db, settings).await
}

/// A POST whose body never finishes: 10 of its announced 1000 bytes are sent.
async fn stalled_upload(app: &TestApp) -> TcpStream {
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    let head = format!(
        "POST /identify HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"image\": ",
        app.addr
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    stream
}

#[tokio::test]
async fn a_stalled_request_times_out_and_the_limit_queues_the_next_one_behind_it() {
    let mut app = spawn(1, 3_000).await;

    // Nothing in flight: served.
    let (status, _) = json_of(app.get("/healthz").await).await;
    assert_eq!(status, 200);

    // The stalled upload takes the only slot; a request arriving a second later waits.
    let mut stalled = stalled_upload(&app).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let queued = {
        let (client, url) = (app.client.clone(), app.url("/openapi.json"));
        tokio::spawn(async move { client.get(url).send().await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        !queued.is_finished(),
        "a second request was answered while the only slot was taken"
    );

    // The stalled request is cut off at its deadline with the JSON timeout error...
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stalled.read_to_end(&mut answer))
        .await
        .expect("the server answers the stalled request")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""code":"timeout""#), "{answer}");

    // ...which frees the slot for the queued request, inside its own deadline.
    let response = queued.await.expect("task").expect("queued request");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn with_room_for_two_the_second_request_is_served_beside_a_stalled_one() {
    let mut app = spawn(2, 2_000).await;

    let _stalled = stalled_upload(&app).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = json_of(app.get("/openapi.json").await).await;
    assert_eq!(status, 200, "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_a_json_408_before_the_request_deadline() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.limits.request_timeout_ms = 60_000;
    settings.limits.body_read_timeout_ms = 1_000;
    let mut app = TestApp::spawn_with(db, settings).await;
    let mut stalled = stalled_upload(&app).await;
    let mut answer = Vec::new();
    // Well inside the 60 s request deadline: only the body deadline can answer by then.
    tokio::time::timeout(Duration::from_secs(30), stalled.read_to_end(&mut answer))
        .await
        .expect("the server answers the stalled upload before its request deadline")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
    app.stop().await;
}
