//! `TestApp`: the real server on port 0 over a fresh database, with one helper per endpoint.

use std::net::SocketAddr;

use faceprint::server::{Application, Secret, Settings};
use reqwest::multipart::{Form, Part};
use reqwest::{Client, Response};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::db::TestDb;
use super::fixtures::{b64, model_path};

/// A running server and an HTTP client for it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: Client,
    pub db: TestDb,
    /// The key sent with every request, if any.
    pub api_key: Option<String>,
    settings: Settings,
    stop: Option<oneshot::Sender<()>>,
    served: Option<JoinHandle<std::io::Result<()>>>,
}

/// Settings for a test: port 0, the test database, the test model.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut settings = Settings::load(None, Vec::new()).expect("default settings");
    settings.server.bind = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.database.url = Secret::new(db.url.clone());
    settings.database.max_connections = 4;
    settings.model.path = model_path();
    settings
}

impl TestApp {
    pub async fn spawn(db: TestDb) -> TestApp {
        let settings = test_settings(&db);
        TestApp::spawn_with(db, settings).await
    }

    pub async fn spawn_with(db: TestDb, settings: Settings) -> TestApp {
        let app = Application::build(settings.clone())
            .await
            .expect("the application starts");
        let addr = app.local_addr().expect("bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            client: Client::new(),
            db,
            api_key: None,
            settings,
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Shut down gracefully and start a new server on the same database.
    pub async fn restart(mut self) -> TestApp {
        self.stop().await;
        let api_key = self.api_key.take();
        let mut app = TestApp::spawn_with(self.db, self.settings).await;
        app.api_key = api_key;
        app
    }

    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(served) = self.served.take() {
            served
                .await
                .expect("server task")
                .expect("server ran cleanly");
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn with_key(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.with_key(self.client.post(self.url(path)).json(body))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.with_key(self.client.get(self.url(path)))
            .send()
            .await
            .expect("request sent")
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.with_key(self.client.delete(self.url(path)))
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /enroll` (JSON, base64 images) into the default gallery.
    pub async fn enroll(&self, identity: &str, images: &[Vec<u8>]) -> Response {
        let images: Vec<_> = images.iter().map(|i| b64(i)).collect();
        self.post_json(
            "/enroll",
            &json!({ "identity": identity, "images": images }),
        )
        .await
    }

    /// `POST /enroll` as a multipart form.
    pub async fn enroll_multipart(&self, identity: &str, images: &[Vec<u8>]) -> Response {
        let mut form = Form::new().text("identity", identity.to_owned());
        for (i, image) in images.iter().enumerate() {
            form = form.part(
                "image",
                Part::bytes(image.clone()).file_name(format!("{i}.png")),
            );
        }
        self.with_key(self.client.post(self.url("/enroll")).multipart(form))
            .send()
            .await
            .expect("request sent")
    }

    /// `POST /identify` with default options.
    pub async fn identify(&self, image: &[u8]) -> Response {
        self.post_json("/identify", &json!({ "image": b64(image) }))
            .await
    }

    pub async fn embed(&self, image: &[u8]) -> Response {
        self.post_json("/embed", &json!({ "image": b64(image) }))
            .await
    }

    pub async fn verify_pair(&self, a: &[u8], b: &[u8]) -> Response {
        self.post_json("/verify", &json!({ "images": [b64(a), b64(b)] }))
            .await
    }

    pub async fn verify_identity(&self, image: &[u8], identity: &str) -> Response {
        self.post_json(
            "/verify",
            &json!({ "image": b64(image), "identity": identity }),
        )
        .await
    }

    pub async fn get_identity(&self, identity: &str) -> Response {
        self.get(&format!("/identities/{identity}")).await
    }

    pub async fn list_identities(&self, query: &str) -> Response {
        self.get(&format!("/identities{query}")).await
    }

    pub async fn delete_identity(&self, identity: &str) -> Response {
        self.delete(&format!("/identities/{identity}")).await
    }

    pub async fn delete_face(&self, identity: &str, face: i64) -> Response {
        self.delete(&format!("/identities/{identity}/faces/{face}"))
            .await
    }

    pub async fn put_gallery(&self, gallery: &str, body: &Value) -> Response {
        self.with_key(
            self.client
                .put(self.url(&format!("/galleries/{gallery}")))
                .json(body),
        )
        .send()
        .await
        .expect("request sent")
    }
}

/// The status and JSON body of a response.
pub async fn json_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
    (status, body)
}
