//! The server binary as a child process, for crash and signal tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::db::TestDb;
use super::fixtures::model_path;

/// The server binary as a child process, killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    pub base: String,
}

impl ServerProcess {
    pub async fn start(db: &TestDb) -> ServerProcess {
        ServerProcess::start_url(&db.url).await
    }

    /// A server on the database `url`, once its `/readyz` answers 200.
    pub async fn start_url(url: &str) -> ServerProcess {
        // Port 0 cannot be used across processes without parsing logs; take a free port.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_faceprint-server"))
            .env("FACEPRINT_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("FACEPRINT_DATABASE__URL", url)
            .env("FACEPRINT_MODEL__PATH", model_path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start faceprint-server");
        let server = ServerProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            let ready = client.get(format!("{}/readyz", server.base)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("faceprint-server did not become ready");
    }

    pub fn kill(&mut self) {
        // SIGKILL: no graceful shutdown, no flushing.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

impl ServerProcess {
    /// Send SIGTERM and wait for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid}");
        self.child.wait().expect("wait for the server")
    }
}
