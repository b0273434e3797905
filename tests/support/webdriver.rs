//! A small WebDriver (W3C) client over `reqwest`, enough to drive headless Chromium
//! through Debian's `chromedriver`: sessions, navigation, elements, scripts, screenshots
//! and the browser's console log.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::{Client, Method};
use serde_json::{Value, json};

/// The key W3C WebDriver gives an element reference under.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a condition may take to come true before the test fails with what it saw.
const WAIT: Duration = Duration::from_secs(60);

/// A chromedriver process and one browser session in it.
pub struct Browser {
    http: Client,
    base: String,
    session: String,
    driver: Child,
}

/// An element of the page.
#[derive(Clone, Debug)]
pub struct Element(String);

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Browser {
    /// Start chromedriver and a headless Chromium window of `width` × `height` CSS pixels.
    /// Panics, naming what to install, when either is missing.
    pub async fn start(width: u32, height: u32) -> Browser {
        let driver_path = which("chromedriver").expect(
            "chromedriver is not on PATH: install Debian's chromium and chromium-driver \
             (.ci/run does) to run the browser tests",
        );
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|name| which(name))
            .expect("no chromium on PATH: install Debian's chromium (.ci/run does)");
        let port = free_port();
        // Its own process group, so that the whole tree (chromedriver and the Chromium it
        // started) can be ended together if a test fails.
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                started.elapsed() < WAIT,
                "chromedriver did not answer on port {port}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut browser = Browser {
            http,
            base,
            session: String::new(),
            driver,
        };
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium.to_string_lossy(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    "--no-first-run",
                    "--hide-scrollbars",
                    // A camera that shows a test pattern, allowed without asking.
                    "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream",
                    format!("--window-size={width},{height}"),
                ]
            }
        }}});
        let created = browser
            .command(Method::POST, "/session", Some(capabilities))
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.set_viewport(width, height).await;
        browser
    }

    async fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{}", self.base, path);
        let mut request = self.http.request(method.clone(), &url);
        if let Some(body) = body {
            request = request.json(&body);
        } else if method == Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON answer");
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body["value"].clone()
    }

    async fn session_command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{}", self.session, path);
        self.command(method, &path, body).await
    }

    /// Make the page's viewport (not the window) `width` × `height` CSS pixels.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.session_command(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
        let inner = self
            .execute("return [window.innerWidth, window.innerHeight];", json!([]))
            .await;
        let dw = i64::from(width) - inner[0].as_i64().unwrap_or(0);
        let dh = i64::from(height) - inner[1].as_i64().unwrap_or(0);
        if dw != 0 || dh != 0 {
            self.session_command(
                Method::POST,
                "/window/rect",
                Some(json!({"width": i64::from(width) + dw, "height": i64::from(height) + dh})),
            )
            .await;
        }
    }

    pub async fn goto(&self, url: &str) {
        self.session_command(Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// Every element matching a CSS selector, in document order.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .session_command(
                Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .expect("a list of elements")
            .iter()
            .map(|e| Element(e[ELEMENT_KEY].as_str().expect("element id").to_owned()))
            .collect()
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> Element {
        let started = Instant::now();
        loop {
            if let Some(first) = self.find_all(css).await.into_iter().next() {
                return first;
            }
            assert!(started.elapsed() < WAIT, "no element matches {css:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn click(&self, element: &Element) {
        self.session_command(Method::POST, &format!("/element/{}/click", element.0), None)
            .await;
    }

    /// Type into an input; for `<input type=file>`, `text` is a file path.
    pub async fn send_keys(&self, element: &Element, text: &str) {
        self.session_command(
            Method::POST,
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Choose files in an `<input type=file>`.
    pub async fn choose_files(&self, element: &Element, files: &[&Path]) {
        let paths: Vec<String> = files
            .iter()
            .map(|p| {
                p.canonicalize()
                    .expect("fixture exists")
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        self.send_keys(element, &paths.join("\n")).await;
    }

    pub async fn clear(&self, element: &Element) {
        self.session_command(Method::POST, &format!("/element/{}/clear", element.0), None)
            .await;
    }

    /// The rendered text of an element (empty when it is hidden).
    pub async fn text(&self, element: &Element) -> String {
        let text = self
            .session_command(Method::GET, &format!("/element/{}/text", element.0), None)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    pub async fn is_displayed(&self, element: &Element) -> bool {
        self.session_command(
            Method::GET,
            &format!("/element/{}/displayed", element.0),
            None,
        )
        .await
        .as_bool()
        .unwrap_or(false)
    }

    /// Run a script in the page (`arguments` from `args`) and return its value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.session_command(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Poll `script` until it returns something other than null/false; panics after a
    /// minute with `what` and the last value seen.
    pub async fn wait_for(&self, what: &str, script: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.execute(script, json!([])).await;
            if !(value.is_null() || value == Value::Bool(false)) {
                return value;
            }
            assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the element matching `css` shows exactly `expected` as its text.
    pub async fn wait_for_text(&self, css: &str, expected: &str) {
        let started = Instant::now();
        let mut last = String::new();
        loop {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                last = self.text(&e).await;
                if last == expected {
                    return;
                }
            }
            assert!(
                started.elapsed() < WAIT,
                "{css}: expected text {expected:?}, last saw {last:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether an `alert`, `confirm` or `prompt` dialog is open.
    pub async fn dialog_open(&self) -> bool {
        let url = format!("{}/session/{}/alert/text", self.base, self.session);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .expect("chromedriver answers");
        response.status().is_success()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self.session_command(Method::GET, "/screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 PNG"))
            .expect("a PNG")
    }

    /// The browser console's entries since the last call (`level`, `message`, `source`).
    pub async fn console(&self) -> Vec<Value> {
        let entries = self
            .session_command(Method::POST, "/se/log", Some(json!({"type": "browser"})))
            .await;
        entries.as_array().cloned().unwrap_or_default()
    }

    /// Fail if the console has an error or a warning since the last call.
    pub async fn assert_console_clean(&self) {
        let bad: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|e| matches!(e["level"].as_str(), Some("SEVERE" | "WARNING")))
            .collect();
        assert!(bad.is_empty(), "the browser console has errors: {bad:#?}");
    }

    /// Close the browser; chromedriver ends when the value is dropped.
    pub async fn quit(self) {
        let path = format!("/session/{}", self.session);
        self.command(Method::DELETE, &path, None).await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test must not leave chromedriver or its Chromium behind: end the
        // process group this value started.
        let _ = Command::new("kill")
            .arg("--")
            .arg(format!("-{}", self.driver.id()))
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
