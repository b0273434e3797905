//! Screenshots of each view of the web page, desktop and 360 px wide, for the README.
//! Not a check: `scripts/screenshots.sh` runs it with `FACEPRINT_SCREENSHOTS_DIR` set
//! (it needs headless Chromium like tests/web_page.rs).

mod support;

use std::path::PathBuf;

use faceprint::server::Secret;
use support::app::{TestApp, test_settings};
use support::db::TestDb;
use support::web::{
    choose_enroll_photos, enroll_api, enter_key, identify_on_page, open_page, open_tab,
    two_face_photo, wait_for_thumbnails,
};
use support::webdriver::Browser;

const SIZES: &[(&str, u32, u32)] = &[("desktop", 1280, 860), ("phone", 360, 740)];

#[tokio::test]
#[ignore = "writes the README's screenshots: run scripts/screenshots.sh"]
async fn screenshots_of_every_view() {
    let out = PathBuf::from(
        std::env::var_os("FACEPRINT_SCREENSHOTS_DIR")
            .expect("set FACEPRINT_SCREENSHOTS_DIR (scripts/screenshots.sh does)"),
    );
    std::fs::create_dir_all(&out).expect("screenshot directory");
    let dir = tempfile::tempdir().expect("temporary directory");
    let (photo, _) = two_face_photo(dir.path(), "s2", "s4");

    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.auth.admin_keys = vec![Secret::new("admin-key")];
    let mut app = TestApp::spawn_with(db, settings).await;
    app.api_key = Some("admin-key".into());
    for (name, who) in [("alice", "s1"), ("dave", "s4"), ("erin", "s3")] {
        enroll_api(&app, name, who, &[1, 3]).await;
    }

    for &(label, width, height) in SIZES {
        let browser = Browser::start(width, height).await;
        let shot = |view: &'static str| {
            let path = out.join(format!("web-{view}-{label}.png"));
            let browser = &browser;
            async move {
                browser
                    .execute("window.scrollTo(0, 0);", serde_json::json!([]))
                    .await;
                std::fs::write(&path, browser.screenshot().await).expect("write screenshot");
            }
        };
        open_page(&browser, &app.url("/")).await;
        shot("key").await;
        let accepted = "Key accepted — an admin key: every action.";
        enter_key(&browser, "admin-key", accepted).await;

        identify_on_page(&browser, &photo).await;
        let first = browser.find("#identify-faces li").await;
        browser.click(&first).await;
        browser.find("#identify-candidates tbody td").await;
        shot("identify").await;

        open_tab(&browser, "enroll").await;
        choose_enroll_photos(&browser, "bob", &[&photo]).await;
        let boxes = browser.find_all("#enroll-photos rect").await;
        browser.click(&boxes[1]).await;
        shot("enroll").await;

        open_tab(&browser, "people").await;
        wait_for_thumbnails(&browser, 6).await;
        shot("people").await;

        open_tab(&browser, "status").await;
        browser
            .wait_for_text("#status-galleries tbody td", "default")
            .await;
        shot("status").await;
        browser.quit().await;
    }
}
