//! Replicas on PostgreSQL: two server processes share one database (through a TCP proxy
//! the test can cut), a third talks to it directly. Enrollments and deletions made
//! through one replica reach the others' indexes; a replica that loses the database keeps
//! answering identify, reports not ready, and catches up once the database is back.

mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use support::db::TestDb;
use support::fixtures::{b64, face};
use support::process::ServerProcess;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long a change may take to reach another replica before the test fails. The
/// target is 1 s; the margin is for a loaded machine.
const DEADLINE: Duration = Duration::from_secs(10);

/// A TCP proxy in front of PostgreSQL that can drop every connection and refuse new ones.
struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (accept_open, accept_links) = (Arc::clone(&open), Arc::clone(&links));
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accept_open.load(Ordering::SeqCst) {
                    continue; // dropped: the connection is closed at once
                }
                let upstream = upstream.clone();
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                accept_links.lock().expect("links").push(link);
            }
        });
        Proxy {
            addr,
            open,
            links,
            accept,
        }
    }

    /// Close every open connection and refuse new ones.
    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().expect("links").drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `postgres://user@host:port/db?…` → (`host:port`, the URL with `addr` in its place).
fn through(url: &str, addr: SocketAddr) -> (String, String) {
    let start = url
        .find('@')
        .map_or_else(|| url.find("://").expect("URL") + 3, |a| a + 1);
    let end = start + url[start..].find('/').expect("database name in the URL");
    let upstream = url[start..end].to_owned();
    let upstream = if upstream.contains(':') {
        upstream
    } else {
        format!("{upstream}:5432")
    };
    (upstream, format!("{}{addr}{}", &url[..start], &url[end..]))
}

/// A server process (killed when dropped) and a client for it.
struct Replica {
    _process: ServerProcess,
    base: String,
    client: reqwest::Client,
}

impl Replica {
    async fn start(url: &str) -> Replica {
        let process = ServerProcess::start_url(url).await;
        Replica {
            base: process.base.clone(),
            _process: process,
            client: reqwest::Client::new(),
        }
    }

    async fn ready(&self) -> u16 {
        match self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
        {
            Ok(r) => r.status().as_u16(),
            Err(_) => 0,
        }
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn enroll(&self, who: &str, images: &[Vec<u8>]) -> (u16, Value) {
        let images: Vec<_> = images.iter().map(|i| b64(i)).collect();
        let body = json!({ "identity": who, "images": images });
        self.call(
            self.client
                .post(format!("{}/enroll", self.base))
                .json(&body),
        )
        .await
    }

    async fn delete(&self, who: &str) -> (u16, Value) {
        self.call(
            self.client
                .delete(format!("{}/identities/{who}", self.base)),
        )
        .await
    }

    /// The matched identity for `image` (`None` = unknown), or the status of a failed
    /// request. The probes are the enrolled images themselves (similarity 1), so a
    /// threshold of 0.99 keeps other people out whatever the model.
    async fn identify(&self, image: &[u8]) -> Result<Option<String>, u16> {
        let body = json!({ "image": b64(image), "threshold": 0.99 });
        let (status, answer) = self
            .call(
                self.client
                    .post(format!("{}/identify", self.base))
                    .json(&body),
            )
            .await;
        if status != 200 {
            return Err(status);
        }
        Ok(answer["match"]["identity"].as_str().map(str::to_owned))
    }
}

/// Poll `replica` until identify of `image` answers `expected`; panic after the deadline.
async fn await_identify(replica: &Replica, name: &str, image: &[u8], expected: Option<&str>) {
    let start = std::time::Instant::now();
    let mut last = Err(0);
    while start.elapsed() < DEADLINE {
        last = replica.identify(image).await;
        if last.as_ref().ok().map(Option::as_deref) == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name}: identify answered {last:?}, expected {expected:?} within {DEADLINE:?}");
}

/// Poll until `/readyz` of `replica` answers `status`.
async fn await_ready(replica: &Replica, name: &str, status: u16) {
    let start = std::time::Instant::now();
    while start.elapsed() < DEADLINE {
        if replica.ready().await == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name}: /readyz never answered {status} within {DEADLINE:?}");
}

needs_postgres! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_see_each_others_changes_and_catch_up_after_losing_the_database() {
    let db = TestDb::postgres().await;
    let placeholder: SocketAddr = "127.0.0.1:1".parse().expect("address");
    let (upstream, _) = through(&db.url, placeholder);
    let proxy = Proxy::start(upstream).await;
    let (_, proxied) = through(&db.url, proxy.addr);

    let a = Replica::start(&proxied).await;
    let b = Replica::start(&proxied).await;
    let direct = Replica::start(&db.url).await;
    let (alice, bob, carol, dave) = (face("s1", 1), face("s2", 1), face("s3", 1), face("s4", 1));

    // Enroll through A → B identifies; delete through B → gone from A.
    let (status, body) = a.enroll("alice", std::slice::from_ref(&alice)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(b.enroll("bob", std::slice::from_ref(&bob)).await.0, 201);
    await_identify(&b, "B", &alice, Some("alice")).await;
    await_identify(&a, "A", &bob, Some("bob")).await;
    let (status, body) = b.delete("alice").await;
    assert_eq!(status, 200, "{body}");
    await_identify(&a, "A", &alice, None).await;
    assert_eq!(b.identify(&alice).await, Ok(None), "B deleted alice itself");

    // Enroll carol, then cut A and B off the database.
    assert_eq!(
        direct.enroll("carol", std::slice::from_ref(&carol)).await.0,
        201
    );
    await_identify(&a, "A", &carol, Some("carol")).await;
    await_identify(&b, "B", &carol, Some("carol")).await;
    proxy.cut();
    await_ready(&a, "A", 503).await;
    await_ready(&b, "B", 503).await;
    // Cut off, both still answer from their indexes.
    assert_eq!(a.identify(&carol).await, Ok(Some("carol".into())));
    assert_eq!(b.identify(&bob).await, Ok(Some("bob".into())));

    // Changes made meanwhile through the third server, which A and B cannot hear about.
    assert_eq!(
        direct.enroll("dave", std::slice::from_ref(&dave)).await.0,
        201
    );
    assert_eq!(direct.delete("carol").await.0, 200);
    assert_eq!(
        a.identify(&dave).await,
        Ok(None),
        "A cannot know of dave yet"
    );

    // Back: both catch up and are ready again.
    proxy.restore();
    for (replica, name) in [(&a, "A"), (&b, "B")] {
        await_ready(replica, name, 200).await;
        await_identify(replica, name, &dave, Some("dave")).await;
        await_identify(replica, name, &carol, None).await;
        assert_eq!(
            replica.identify(&bob).await,
            Ok(Some("bob".into())),
            "{name}"
        );
    }
}
}

#[test]
fn urls_are_rewritten_to_go_through_the_proxy() {
    let addr: SocketAddr = "127.0.0.1:6000".parse().expect("address");
    let cases = [
        (
            "postgres://postgres@127.0.0.1:5432/db?options=x",
            "127.0.0.1:5432",
            "postgres://postgres@127.0.0.1:6000/db?options=x",
        ),
        (
            "postgres://u:p@localhost/db",
            "localhost:5432",
            "postgres://u:p@127.0.0.1:6000/db",
        ),
    ];
    for (url, upstream, proxied) in cases {
        assert_eq!(
            through(url, addr),
            (upstream.into(), proxied.into()),
            "{url}"
        );
    }
}
