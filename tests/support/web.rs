//! The web page's tests: a real server on a free port, headless Chromium driven through
//! WebDriver, and the page's own controls used the way a person would.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageFormat, imageops};
use tokio::sync::{Mutex, MutexGuard};

use super::app::{TestApp, json_of, test_settings};
use super::db::TestDb;
use super::fixtures::face;
use super::webdriver::Browser;
use faceprint::server::Secret;

/// One browser at a time: two Chromiums and the detector on two cores would only make
/// each test slower.
static ONE_BROWSER: Mutex<()> = Mutex::const_new(());

/// A server, and a browser with its page open, for one test.
pub struct PageTest {
    pub app: TestApp,
    pub browser: Browser,
    _one: MutexGuard<'static, ()>,
}

impl PageTest {
    /// Start a browser of `width` × `height` and open the page of `app`.
    pub async fn open(app: TestApp, width: u32, height: u32) -> PageTest {
        let one = ONE_BROWSER.lock().await;
        let browser = Browser::start(width, height).await;
        open_page(&browser, &app.url("/")).await;
        PageTest {
            app,
            browser,
            _one: one,
        }
    }

    /// Check that the console stayed clean, and close the browser.
    pub async fn finish(self) {
        self.browser.assert_console_clean().await;
        self.browser.quit().await;
    }
}

/// Enroll images `n` of fixture `who` under `name` through the API.
pub async fn enroll_api(app: &TestApp, name: &str, who: &str, images: &[u32]) {
    let images: Vec<Vec<u8>> = images.iter().map(|&n| face(who, n)).collect();
    let (status, body) = json_of(app.enroll(name, &images).await).await;
    assert_eq!(status, 201, "enroll {name}: {body}");
}

/// A committed fixture photo: `tests/fixtures/server/<who>/<n>.png`.
pub fn fixture(who: &str, n: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/server")
        .join(who)
        .join(format!("{n}.png"))
}

/// A photograph with two people: fixture faces `left` and `right` (image 1 of each,
/// doubled in size) pasted on the committed coffee photograph at 640×480, written as
/// PNG into `dir`. Returns the path and the x where the right face starts.
pub fn two_face_photo(dir: &Path, left: &str, right: &str) -> (PathBuf, u32) {
    let coffee_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detect/coffee.jpg");
    let coffee = image::open(&coffee_path)
        .expect("coffee fixture")
        .to_luma8();
    let mut canvas: GrayImage = imageops::resize(&coffee, 640, 480, imageops::FilterType::Triangle);
    let mut x = 60u32;
    let mut right_x = 0;
    for who in [left, right] {
        let crop = image::load_from_memory(&face(who, 1))
            .expect("fixture face")
            .to_luma8();
        let crop = imageops::resize(
            &crop,
            crop.width() * 2,
            crop.height() * 2,
            imageops::FilterType::Triangle,
        );
        imageops::replace(&mut canvas, &crop, i64::from(x), 120);
        right_x = x;
        x += crop.width() + 100;
    }
    let mut png = Cursor::new(Vec::new());
    canvas
        .write_to(&mut png, ImageFormat::Png)
        .expect("encode PNG");
    let path = dir.join("two-people.png");
    std::fs::write(&path, png.into_inner()).expect("write the photo");
    (path, right_x)
}

/// Open the page and wait until it has asked the server who it is.
pub async fn open_page(browser: &Browser, base: &str) {
    browser.goto(base).await;
    browser
        .wait_for(
            "the page to start",
            "return document.body.getAttribute('data-ready') === 'true';",
        )
        .await;
}

/// Open a tab of the page by its button.
pub async fn open_tab(browser: &Browser, view: &str) {
    let tab = browser
        .find(&format!("#tabs button[data-view='{view}']"))
        .await;
    browser.click(&tab).await;
}

/// Identify a photo on the page; returns the name (or "unknown") shown for each face.
pub async fn identify_on_page(browser: &Browser, photo: &Path) -> Vec<String> {
    open_tab(browser, "identify").await;
    browser
        .execute(
            "document.getElementById('identify-result').hidden = true; \
             document.getElementById('identify-file').value = '';",
            serde_json::json!([]),
        )
        .await;
    let input = browser.find("#identify-file").await;
    browser.choose_files(&input, &[photo]).await;
    browser
        .wait_for(
            "the identification",
            "return !document.getElementById('identify-result').hidden \
             || document.getElementById('identify-message').classList.contains('error');",
        )
        .await;
    let names = browser
        .execute(
            "return Array.from(document.querySelectorAll('#identify-faces .face-name'), \
             e => e.textContent);",
            serde_json::json!([]),
        )
        .await;
    serde_json::from_value(names).expect("a list of names")
}

/// Enroll `name` from `photos` on the page (each photo must show one face) and wait
/// for the page's answer, which is returned.
pub async fn enroll_on_page(browser: &Browser, name: &str, photos: &[&Path]) -> String {
    open_tab(browser, "enroll").await;
    choose_enroll_photos(browser, name, photos).await;
    submit_enrollment(browser).await
}

/// Fill the name and choose photos in the Enroll view; waits until every photo's faces
/// are found.
pub async fn choose_enroll_photos(browser: &Browser, name: &str, photos: &[&Path]) {
    let field = browser.find("#enroll-name").await;
    browser.clear(&field).await;
    browser.send_keys(&field, name).await;
    let input = browser.find("#enroll-files").await;
    browser.choose_files(&input, photos).await;
    browser
        .wait_for(
            "faces found in every photo",
            "const captions = document.querySelectorAll('#enroll-photos figcaption'); \
             return captions.length > 0 && Array.from(captions).every(c => \
             !c.textContent.startsWith('Looking'));",
        )
        .await;
}

pub async fn submit_enrollment(browser: &Browser) -> String {
    browser
        .execute(
            "document.getElementById('enroll-message').textContent = '';",
            serde_json::json!([]),
        )
        .await;
    let submit = browser.find("#enroll-submit").await;
    browser.click(&submit).await;
    let answer = browser
        .wait_for(
            "the enrollment's answer",
            "const m = document.getElementById('enroll-message'); \
             return (m.classList.contains('ok') || m.classList.contains('error')) \
             ? m.textContent : null;",
        )
        .await;
    answer.as_str().unwrap_or_default().to_owned()
}

/// Wait until the People view shows `count` face thumbnails, every one decoded.
pub async fn wait_for_thumbnails(browser: &Browser, count: usize) {
    let script = format!(
        "const imgs = document.querySelectorAll('#people-list .thumb img'); \
         return imgs.length === {count} \
         && Array.from(imgs).every(i => i.complete && i.naturalWidth > 0);"
    );
    browser
        .wait_for(&format!("{count} thumbnails"), &script)
        .await;
}

/// Type `key` into the key prompt, send it, and wait for the page to say `answer`.
pub async fn enter_key(browser: &Browser, key: &str, answer: &str) {
    let input = browser.find("#key-input").await;
    browser.clear(&input).await;
    browser.send_keys(&input, key).await;
    browser.click(&browser.find("#key-save").await).await;
    browser.wait_for_text("#key-message", answer).await;
}

/// A server with the admin key `admin-key` and the query key `query-key`.
pub async fn keyed_app() -> TestApp {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.auth.admin_keys = vec![Secret::new("admin-key")];
    settings.auth.query_keys = vec![Secret::new("query-key")];
    TestApp::spawn_with(db, settings).await
}
