//! What the web page stands on, checked over HTTP without a browser: the page and its
//! assets with their types and Content-Security-Policy, `GET /status`, and the face
//! thumbnails of `GET /identities/{id}/faces/{face_id}/image`.

mod support;

use serde_json::json;
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::face;
use support::web::keyed_app;

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
    assert_eq!(body["threshold_policy"], "gallery");
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
    let (status, body) = json_of(app.enroll("alice", &[face("s1", 1)]).await).await;
    assert_eq!(status, 201, "{body}");
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
