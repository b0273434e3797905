//! The web page at `/`, used in headless Chromium through WebDriver against a real server
//! on a free port with the shipped default model and committed photos.
//!
//! These tests need Debian's `chromium` and `chromium-driver`. They are `#[ignore]`d so
//! that `cargo test` reports them as skipped (with the reason) where no browser is
//! installed; `.ci/run` installs both and runs them with `cargo test --test web_page --
//! --ignored`. Run that command yourself after `apt-get install chromium chromium-driver`.
//! Without the browser, running them with `--ignored` fails and says what is missing.

mod common;
mod web_support;

use common::app::{TestApp, json_of, test_settings};
use common::db::TestDb;
use common::fixtures::face;
use faceprint::server::Secret;
use serde_json::json;
use web_support::{
    PageTest, choose_enroll_photos, enroll_api, enroll_on_page, enter_key, fixture,
    identify_on_page, open_tab, submit_enrollment, two_face_photo, wait_for_thumbnails,
};

/// A server with the admin key `admin-key` and the query key `query-key`.
async fn keyed_app() -> TestApp {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.auth.admin_keys = vec![Secret::new("admin-key")];
    settings.auth.query_keys = vec![Secret::new("query-key")];
    TestApp::spawn_with(db, settings).await
}

#[tokio::test]
#[ignore = "drives headless Chromium: needs chromium and chromedriver (.ci/run installs them and runs `cargo test --test web_page -- --ignored`)"]
async fn a_person_enrolled_on_the_page_is_named_when_identified_and_a_stranger_is_unknown() {
    let page = PageTest::open(TestApp::spawn(TestDb::sqlite()).await, 1280, 900).await;
    let browser = &page.browser;

    let answer = enroll_on_page(browser, "alice", &[&fixture("s1", 1), &fixture("s1", 2)]).await;
    assert_eq!(answer, "Enrolled alice: 2 face(s) in gallery default.");

    assert_eq!(
        identify_on_page(browser, &fixture("s1", 3)).await,
        ["alice"]
    );
    let threshold = browser.find("#identify-threshold").await;
    let words = browser.text(&threshold).await;
    assert!(
        words.starts_with("Threshold 0.") && words.contains("false-accept rate of 1%"),
        "{words}"
    );
    // The box and the five landmarks are drawn over the photo.
    let drawn = browser
        .execute(
            "const p = document.getElementById('identify-photo'); \
             return [p.querySelectorAll('rect.match').length, p.querySelectorAll('circle').length];",
            json!([]),
        )
        .await;
    assert_eq!(drawn, json!([1, 5]));

    assert_eq!(
        identify_on_page(browser, &fixture("s3", 1)).await,
        ["unknown"]
    );
    // A click on the face lists its candidates: alice, under the threshold.
    let face = browser.find("#identify-faces li").await;
    browser.click(&face).await;
    browser
        .wait_for_text("#identify-candidates tbody td", "alice")
        .await;

    page.finish().await;
}

#[tokio::test]
#[ignore = "drives headless Chromium: needs chromium and chromedriver (.ci/run installs them and runs `cargo test --test web_page -- --ignored`)"]
async fn one_face_of_a_two_face_photo_is_enrolled_by_clicking_its_box() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (photo, right_x) = two_face_photo(dir.path(), "s2", "s4");
    let page = PageTest::open(TestApp::spawn(TestDb::sqlite()).await, 1280, 900).await;
    let (app, browser) = (&page.app, &page.browser);
    open_tab(browser, "enroll").await;

    choose_enroll_photos(browser, "dave", &[&photo]).await;
    let caption = browser.find("#enroll-photos figcaption").await;
    assert_eq!(
        browser.text(&caption).await,
        "2 faces: click the one to enroll."
    );
    // Enrolling before a face is picked is refused on the page, in words.
    assert_eq!(
        submit_enrollment(browser).await,
        "Photo 1: 2 faces: click the one to enroll."
    );
    // Pick the right-hand face (s4) by its box.
    let boxes = browser.find_all("#enroll-photos rect").await;
    assert_eq!(boxes.len(), 2);
    let xs = browser
        .execute(
            "return Array.from(document.querySelectorAll('#enroll-photos rect'), \
             r => Number(r.getAttribute('x')));",
            json!([]),
        )
        .await;
    let xs: Vec<f64> = serde_json::from_value(xs).expect("box positions");
    let right = if xs[0] > xs[1] { 0 } else { 1 };
    browser.click(&boxes[right]).await;
    browser
        .wait_for_text(
            "#enroll-photos figcaption",
            &format!("Face {} of 2 picked (click another to change).", right + 1),
        )
        .await;
    assert_eq!(
        submit_enrollment(browser).await,
        "Enrolled dave: 1 face(s) in gallery default."
    );

    // The server stored the face that was clicked: its box lies on the right...
    let (status, body) = json_of(app.get_identity("dave").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faces"].as_array().map(Vec::len), Some(1));
    // ...and another photo of that person is named dave.
    assert_eq!(identify_on_page(browser, &fixture("s4", 2)).await, ["dave"]);
    let both = identify_on_page(browser, &photo).await;
    assert_eq!(both.len(), 2, "{both:?}");
    let names = browser
        .execute(
            "return Array.from(document.querySelectorAll('#identify-photo rect'), \
             r => [Number(r.getAttribute('x')), r.querySelector('title').textContent]);",
            json!([]),
        )
        .await;
    let named: Vec<(f64, String)> = serde_json::from_value(names).expect("boxes and names");
    for (x, name) in named {
        let expected = if x >= f64::from(right_x) - 40.0 {
            "dave"
        } else {
            "unknown"
        };
        assert_eq!(name, expected, "the face at x = {x}");
    }
    page.finish().await;
}

#[tokio::test]
#[ignore = "drives headless Chromium: needs chromium and chromedriver (.ci/run installs them and runs `cargo test --test web_page -- --ignored`)"]
async fn people_shows_thumbnails_searches_and_deletes_after_confirmation() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    enroll_api(&app, "alice", "s1", &[1, 2]).await;
    enroll_api(&app, "bob", "s2", &[1, 2]).await;
    let page = PageTest::open(app, 1280, 900).await;
    let (app, browser) = (&page.app, &page.browser);
    open_tab(browser, "people").await;
    browser
        .wait_for_text("#people-message", "2 of 2 people.")
        .await;
    // Each face's thumbnail is the stored crop, loaded with the page's key.
    wait_for_thumbnails(browser, 4).await;
    let meta = browser
        .find("#people-list li[data-identity='alice'] .meta")
        .await;
    assert!(
        browser
            .text(&meta)
            .await
            .starts_with("2 face(s), enrolled ")
    );

    let search = browser.find("#people-search").await;
    browser.send_keys(&search, "BO").await;
    browser
        .wait_for_text("#people-message", "1 of 2 people match.")
        .await;
    browser
        .wait_for_text("#people-list .person-name", "bob")
        .await;
    browser.clear(&search).await;
    browser.send_keys(&search, " ").await;
    browser
        .wait_for_text("#people-message", "2 of 2 people.")
        .await;

    // Delete one of alice's faces: asked first, then gone from the page and the server.
    let delete_face = browser
        .find("#people-list li[data-identity='alice'] .delete-face")
        .await;
    browser.click(&delete_face).await;
    let yes = browser
        .find("#people-list li[data-identity='alice'] .thumb .confirm-yes")
        .await;
    browser.click(&yes).await;
    browser
        .wait_for(
            "one face left",
            "return document.querySelectorAll(\"#people-list li[data-identity='alice'] .thumb\").length === 1;",
        )
        .await;
    let (_, alice) = json_of(app.get_identity("alice").await).await;
    assert_eq!(alice["faces"].as_array().map(Vec::len), Some(1), "{alice}");

    // Delete bob: Cancel keeps him; Delete removes him.
    let delete_person = browser
        .find("#people-list li[data-identity='bob'] .delete-person")
        .await;
    browser.click(&delete_person).await;
    let no = browser
        .find("#people-list li[data-identity='bob'] .confirm-no")
        .await;
    browser.click(&no).await;
    assert_eq!(json_of(app.get_identity("bob").await).await.0, 200);
    let delete_person = browser
        .find("#people-list li[data-identity='bob'] .delete-person")
        .await;
    browser.click(&delete_person).await;
    let yes = browser
        .find("#people-list li[data-identity='bob'] .confirm-yes")
        .await;
    browser.click(&yes).await;
    browser
        .wait_for_text("#people-message", "bob was deleted.")
        .await;
    assert!(
        browser
            .find_all("#people-list li[data-identity='bob']")
            .await
            .is_empty()
    );
    assert_eq!(json_of(app.get_identity("bob").await).await.0, 404);
    // bob's photo no longer matches anyone.
    assert_eq!(
        identify_on_page(browser, &fixture("s2", 3)).await,
        ["unknown"]
    );
    page.finish().await;
}

#[tokio::test]
#[ignore = "drives headless Chromium: needs chromium and chromedriver (.ci/run installs them and runs `cargo test --test web_page -- --ignored`)"]
async fn a_name_written_as_html_is_shown_literally_and_never_run() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let name = "<img src=x onerror=alert(1)>";
    enroll_api(&app, name, "s1", &[1, 2]).await;
    let page = PageTest::open(app, 1280, 900).await;
    let browser = &page.browser;

    assert_eq!(identify_on_page(browser, &fixture("s1", 3)).await, [name]);
    let shown = browser.find("#identify-faces .face-name").await;
    assert_eq!(browser.text(&shown).await, name);
    open_tab(browser, "people").await;
    browser
        .wait_for_text("#people-list .person-name", name)
        .await;
    let images_named_x = browser
        .execute(
            "return document.querySelectorAll('img[src=\"x\"], img[src$=\"/x\"]').length;",
            json!([]),
        )
        .await;
    assert_eq!(images_named_x, json!(0));
    assert!(!browser.dialog_open().await, "a script in the name ran");
    page.finish().await;
}

#[tokio::test]
#[ignore = "drives headless Chromium: needs chromium and chromedriver (.ci/run installs them and runs `cargo test --test web_page -- --ignored`)"]
async fn with_keys_the_page_asks_for_one_and_a_query_key_sees_no_admin_actions() {
    let mut app = keyed_app().await;
    app.api_key = Some("admin-key".into());
    enroll_api(&app, "alice", "s1", &[1, 2]).await;
    let page = PageTest::open(app, 1280, 900).await;
    let browser = &page.browser;

    let prompt = browser.find("#view-key").await;
    assert!(browser.is_displayed(&prompt).await, "no key prompt");
    let refused = "The server does not accept this API key. Enter one to go on.";
    enter_key(browser, "wrong-key", refused).await;
    let accepted = "Key accepted — a query key: identify only.";
    enter_key(browser, "query-key", accepted).await;
    for view in ["enroll", "people"] {
        let tab = browser
            .find(&format!("#tabs button[data-view='{view}']"))
            .await;
        assert!(
            !browser.is_displayed(&tab).await,
            "{view} shown to a query key"
        );
    }
    assert_eq!(
        identify_on_page(browser, &fixture("s1", 3)).await,
        ["alice"]
    );
    // Kept for the browser session only: in sessionStorage, not localStorage.
    let stored = browser
        .execute(
            "return [sessionStorage.getItem('faceprint.key'), localStorage.length];",
            json!([]),
        )
        .await;
    assert_eq!(stored, json!(["query-key", 0]));

    open_tab(browser, "key").await;
    browser.click(&browser.find("#key-forget").await).await;
    let accepted = "Key accepted — an admin key: every action.";
    enter_key(browser, "admin-key", accepted).await;
    let people = browser.find("#tabs button[data-view='people']").await;
    assert!(browser.is_displayed(&people).await);
    open_tab(browser, "people").await;
    browser
        .wait_for_text("#people-list .person-name", "alice")
        .await;
    // The wrong key's refusal was answered by /status without a failed request.
    page.finish().await;
}

#[tokio::test]
#[ignore = "drives headless Chromium: needs chromium and chromedriver (.ci/run installs them and runs `cargo test --test web_page -- --ignored`)"]
async fn the_page_fits_a_phone_and_status_shows_the_model_and_galleries() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    enroll_api(&app, "alice", "s1", &[1]).await;
    let (_, server) = json_of(app.get("/status").await).await;
    let page = PageTest::open(app, 360, 740).await;
    let browser = &page.browser;
    for view in ["identify", "enroll", "people", "status"] {
        open_tab(browser, view).await;
        let overflow = browser
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                json!([]),
            )
            .await;
        assert_eq!(overflow, json!(0), "the {view} view is wider than 360 px");
    }
    let model = server["model"].as_str().expect("model version");
    let dim = server["dim"].as_u64().expect("dim");
    browser
        .wait_for_text(
            "#status-summary dd",
            &format!("{model} ({dim}-d embeddings)"),
        )
        .await;
    browser
        .wait_for_text("#status-galleries tbody td", "default")
        .await;
    let row = browser
        .execute(
            "return Array.from(document.querySelectorAll('#status-galleries tbody td'), c => c.textContent);",
            json!([]),
        )
        .await;
    let threshold = format!(
        "{:.3}",
        server["default_threshold"].as_f64().expect("threshold")
    );
    assert_eq!(row, json!(["default", "1", "1", "exact", threshold]));
    page.finish().await;
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_types_and_a_strict_policy() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        let body = response.text().await.expect("body");
        assert!(!body.is_empty(), "{path}");
    }
    // The HTML has no inline script or style, which the policy would block anyway.
    let html = app.get("/").await.text().await.expect("html");
    assert!(!html.contains("<style"), "inline style");
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script src=\"/assets/app.js\" defer></script>"));
    assert!(!html.contains(" style="), "a style attribute");
    assert!(!html.contains(" onclick="), "an inline handler");
    // Unknown assets are a JSON 404 like any unknown path.
    let (status, body) = json_of(app.get("/assets/nope.js").await).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "route_not_found");
}

#[tokio::test]
async fn status_says_whether_keys_are_needed_and_what_the_key_sent_may_do() {
    let open = TestApp::spawn(TestDb::sqlite()).await;
    let (status, body) = json_of(open.get("/status").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["keys_required"], false);
    assert_eq!(body["role"], "admin");
    assert_eq!(body["ready"], true);
    assert_eq!(body["threshold_policy"], "far_1pct");
    assert_eq!(body["galleries"], json!([]));

    let mut app = keyed_app().await;
    for (key, role) in [
        (None, "none"),
        (Some("wrong"), "none"),
        (Some("query-key"), "query"),
        (Some("admin-key"), "admin"),
    ] {
        app.api_key = key.map(str::to_owned);
        let (status, body) = json_of(app.get("/status").await).await;
        assert_eq!(status, 200, "key {key:?}: {body}");
        assert_eq!(body["keys_required"], true);
        assert_eq!(body["role"], role, "key {key:?}");
    }
    app.api_key = Some("admin-key".into());
    enroll_api(&app, "alice", "s1", &[1]).await;
    let (_, body) = json_of(app.put_gallery("default", &json!({"threshold": 0.5})).await).await;
    assert_eq!(body["threshold"], 0.5);
    let (_, body) = json_of(app.get("/status").await).await;
    assert_eq!(
        body["galleries"],
        json!([{"gallery": "default", "identities": 1, "faces": 1, "index": "exact",
                "building": false, "threshold": 0.5, "own_threshold": true}])
    );
}

#[tokio::test]
async fn a_face_image_is_a_png_thumbnail_of_the_stored_crop_for_admin_keys() {
    let mut app = keyed_app().await;
    app.api_key = Some("admin-key".into());
    let (status, body) = json_of(app.enroll("alice", &[face("s1", 1)]).await).await;
    assert_eq!(status, 201, "{body}");
    let id = body["face_ids"][0].as_i64().expect("face id");

    let response = app
        .get(&format!("/identities/alice/faces/{id}/image"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/png");
    let png = response.bytes().await.expect("body");
    let image = image::load_from_memory_with_format(&png, image::ImageFormat::Png).expect("a PNG");
    assert!(image.width() <= 128 && image.height() <= 128);
    assert!(image.width() >= 64, "{}x{}", image.width(), image.height());

    for (path, code) in [
        (
            format!("/identities/alice/faces/{}/image", id + 1),
            "face_not_found",
        ),
        (
            format!("/identities/bob/faces/{id}/image"),
            "face_not_found",
        ),
        (
            format!("/identities/alice/faces/{id}/image?gallery=other"),
            "gallery_not_found",
        ),
    ] {
        let (status, body) = json_of(app.get(&path).await).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some(code)),
            "{path}"
        );
    }
    let (status, body) = json_of(app.get("/identities/alice/faces/x/image").await).await;
    assert_eq!(status, 400, "{body}");
    app.api_key = Some("query-key".into());
    let (status, _) = json_of(
        app.get(&format!("/identities/alice/faces/{id}/image"))
            .await,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_face_enrolled_without_its_image_kept_has_no_thumbnail() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.database.store_images = false;
    let app = TestApp::spawn_with(db, settings).await;
    let (status, body) = json_of(app.enroll("alice", &[face("s1", 1)]).await).await;
    assert_eq!(status, 201, "{body}");
    let id = body["face_ids"][0].as_i64().expect("face id");
    let (status, body) = json_of(
        app.get(&format!("/identities/alice/faces/{id}/image"))
            .await,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "face_image_not_stored");
}
