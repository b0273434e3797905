//! The web page at `/`, used in headless Chromium through WebDriver against a real server
//! on a free port with the shipped default model and committed photos.
//!
//! These tests need Debian's `chromium` and `chromium-driver`. They are `#[ignore]`d so
//! that `cargo test` reports them as skipped (with the reason) where no browser is
//! installed; `.ci/run` installs both and runs them with `cargo test --test web_page --
//! --ignored`. Run that command yourself after `apt-get install chromium chromium-driver`.
//! Without the browser, running them with `--ignored` fails and says what is missing.
//! What the page stands on without a browser (serving, CSP, `/status`, thumbnails) is
//! in tests/web_serving.rs.

mod support;

use serde_json::json;
use support::app::{TestApp, json_of};
use support::db::TestDb;
use support::web::{
    PageTest, choose_enroll_photos, enroll_api, enroll_on_page, enter_key, fixture,
    identify_on_page, keyed_app, open_tab, submit_enrollment, two_face_photo, wait_for_thumbnails,
};

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
        // The default model carries an impostor tail: the page names the gallery-size rule.
        words.starts_with("Threshold 0.")
            && words.contains("at most 1% of strangers would match someone in this gallery of 1"),
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
#[ignore = "drives headless Chromium: needs chromium and chromedriver (.ci/run installs them and runs `cargo test --test web_page -- --ignored`)"]
async fn a_photo_taken_with_the_camera_is_identified() {
    let page = PageTest::open(TestApp::spawn(TestDb::sqlite()).await, 1280, 900).await;
    let browser = &page.browser;
    // Chromium's fake camera shows a test pattern: a photo without a face.
    browser.click(&browser.find("#identify-camera").await).await;
    browser
        .wait_for(
            "the camera's picture",
            "return document.getElementById('identify-video').videoWidth > 0;",
        )
        .await;
    browser
        .click(&browser.find("#identify-capture").await)
        .await;
    browser
        .wait_for_text("#identify-message", "No face found in this photo.")
        .await;
    let shown = browser
        .execute(
            "return [document.getElementById('identify-result').hidden, \
             document.querySelector('#identify-photo img').naturalWidth > 0, \
             document.getElementById('identify-webcam').hidden];",
            json!([]),
        )
        .await;
    assert_eq!(shown, json!([false, true, true]));
    page.finish().await;
}
