//! Bad requests, each with the 4xx it must get in the JSON error shape — never a 500.

mod support;

use faceprint::server::Secret;
use reqwest::Method;
use serde_json::{Value, json};
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::{b64, face, png_header_claiming, truncated_jpeg};

/// How a case's body is sent.
enum Body {
    Json(Value),
    Raw(&'static str, Vec<u8>),
    Multipart(Vec<(&'static str, Vec<u8>)>),
    None,
}

struct Case {
    description: &'static str,
    method: Method,
    path: &'static str,
    body: Body,
    status: u16,
    code: &'static str,
}

fn case(
    description: &'static str,
    path: &'static str,
    body: Body,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        description,
        method: Method::POST,
        path,
        body,
        status,
        code,
    }
}

/// The request body limit in these tests: 1 MiB.
const BODY_LIMIT: usize = 1 << 20;

async fn send(app: &TestApp, case: &Case) -> (u16, Value) {
    let request = app.client.request(case.method.clone(), app.url(case.path));
    let request = match &app.api_key {
        Some(key) => request.header("X-API-Key", key),
        None => request,
    };
    let request = match &case.body {
        Body::Json(value) => request.json(value),
        Body::Raw(content_type, bytes) => request
            .header("content-type", *content_type)
            .body(bytes.clone()),
        Body::Multipart(parts) => {
            let mut form = reqwest::multipart::Form::new();
            for (name, bytes) in parts {
                let part = reqwest::multipart::Part::bytes(bytes.clone());
                let part = if *name == "image" {
                    part.file_name("upload.png")
                } else {
                    part
                };
                form = form.part(*name, part);
            }
            request.multipart(form)
        }
        Body::None => request,
    };
    json_of(request.send().await.expect("request sent")).await
}

async fn check(app: &TestApp, cases: &[Case]) {
    let mut failures = Vec::new();
    for case in cases {
        let (status, body) = send(app, case).await;
        let code = body["error"]["code"]
            .as_str()
            .unwrap_or("(no JSON error shape)");
        let message_ok = body["error"]["message"].is_string();
        if status != case.status || code != case.code || !message_ok {
            failures.push(format!(
                "{}: expected {} {}, got {status} {body}",
                case.description, case.status, case.code
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every bad input with the status and error code it must get. One line per case.
#[rustfmt::skip]
fn bad_inputs(image: &str) -> Vec<Case> {
    use Body::*;
    let huge = "A".repeat(2 * BODY_LIMIT);
    vec![
        case("empty JSON body", "/identify", Raw("application/json", vec![]), 400, "malformed_body"),
        case("empty body without content type", "/identify", None, 400, "malformed_body"),
        case("body that is not JSON", "/identify", Raw("application/json", b"{not json".to_vec()), 400, "malformed_body"),
        case("JSON array instead of an object", "/identify", Json(json!([image])), 400, "malformed_body"),
        case("text that is not an image", "/identify", Json(json!({"image": b64(b"hello, world")})), 422, "undecodable_image"),
        case("truncated JPEG", "/identify", Json(json!({"image": b64(&truncated_jpeg())})), 422, "undecodable_image"),
        case("PNG header claiming 50 000 x 50 000 pixels", "/identify", Json(json!({"image": b64(&png_header_claiming(50_000, 50_000))})), 413, "image_too_large"),
        case("image given as a number", "/identify", Json(json!({"image": 42})), 400, "invalid_field"),
        case("images given as a string", "/enroll", Json(json!({"identity": "x", "images": image})), 400, "invalid_field"),
        case("image that is not base64", "/identify", Json(json!({"image": "%%% not base64 %%%"})), 400, "invalid_field"),
        case("top_k that is not a number", "/identify", Json(json!({"image": image, "top_k": "many"})), 400, "malformed_body"),
        case("top_k of zero", "/identify", Json(json!({"image": image, "top_k": 0})), 400, "invalid_field"),
        case("top_k above the maximum", "/identify", Json(json!({"image": image, "top_k": 100_000})), 400, "invalid_field"),
        case("threshold outside [-1, 1]", "/identify", Json(json!({"image": image, "threshold": 5})), 400, "invalid_field"),
        case("misspelt field", "/identify", Json(json!({"image": image, "topk": 3})), 400, "malformed_body"),
        case("two images to identify", "/identify", Json(json!({"images": [image, image]})), 400, "invalid_field"),
        case("identify without an image", "/identify", Json(json!({"top_k": 3})), 400, "invalid_field"),
        case("enroll without identity", "/enroll", Json(json!({"images": [image]})), 400, "malformed_body"),
        case("identity given as a number", "/enroll", Json(json!({"identity": 5, "images": [image]})), 400, "malformed_body"),
        case("blank identity", "/enroll", Json(json!({"identity": "  ", "images": [image]})), 400, "invalid_field"),
        case("enroll without images", "/enroll", Json(json!({"identity": "x", "images": []})), 400, "invalid_field"),
        case("metadata that is not an object", "/enroll", Json(json!({"identity": "x", "images": [image], "metadata": [1]})), 400, "malformed_body"),
        case("gallery name with spaces", "/enroll", Json(json!({"identity": "x", "images": [image], "gallery": "a b"})), 400, "invalid_field"),
        case("unknown gallery", "/identify", Json(json!({"image": image, "gallery": "nobody"})), 404, "gallery_not_found"),
        case("verify against an unknown identity", "/verify", Json(json!({"image": image, "identity": "nobody"})), 404, "identity_not_found"),
        case("verify with one image and no identity", "/verify", Json(json!({"image": image})), 400, "invalid_field"),
        case("huge base64 over the body limit", "/identify", Json(json!({"image": huge})), 413, "payload_too_large"),
        case("huge multipart upload over the body limit", "/enroll", Multipart(vec![("identity", b"x".to_vec()), ("image", vec![0; 2 * BODY_LIMIT])]), 413, "payload_too_large"),
        case("multipart file that is not an image", "/enroll", Multipart(vec![("identity", b"x".to_vec()), ("image", b"GIF89a...".to_vec())]), 422, "undecodable_image"),
        case("plain-text content type", "/identify", Raw("text/plain", b"hello".to_vec()), 415, "unsupported_media_type"),
        case("unknown route", "/no/such/route", Json(json!({})), 404, "route_not_found"),
        Case { method: Method::GET, ..case("GET on a POST route", "/enroll", None, 405, "method_not_allowed") },
        Case { method: Method::GET, ..case("unknown identity", "/identities/nobody", None, 404, "identity_not_found") },
        Case { method: Method::DELETE, ..case("delete an unknown identity", "/identities/nobody", None, 404, "identity_not_found") },
        Case { method: Method::DELETE, ..case("face id that is not a number", "/identities/alice/faces/first", None, 400, "malformed_body") },
        Case { method: Method::DELETE, ..case("unknown face of a known identity", "/identities/alice/faces/999999", None, 404, "face_not_found") },
        Case { method: Method::GET, ..case("page size of zero", "/identities?limit=0", None, 400, "invalid_field") },
        Case { method: Method::GET, ..case("unknown query parameter", "/identities?colour=red", None, 400, "malformed_body") },
    ]
}

#[tokio::test]
async fn every_bad_input_gets_its_4xx_in_the_json_error_shape() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.limits.max_body_bytes = BODY_LIMIT;
    let app = TestApp::spawn_with(db, settings).await;
    let (status, _) = json_of(app.enroll("alice", &[face("s1", 1)]).await).await;
    assert_eq!(status, 201);
    let cases = bad_inputs(&b64(&face("s1", 1)));
    check(&app, &cases).await;
    let (status, ready) = json_of(app.get("/readyz").await).await;
    assert_eq!(
        status, 200,
        "the server is still healthy after every bad input: {ready}"
    );
}

#[tokio::test]
async fn api_keys_are_required_and_roles_are_enforced() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.auth.admin_keys = vec![Secret::new("admin-key")];
    settings.auth.query_keys = vec![Secret::new("query-key")];
    let mut app = TestApp::spawn_with(db, settings).await;
    let image = b64(&face("s1", 1));
    let enroll = || Body::Json(json!({"identity": "alice", "images": [image.clone()]}));
    let identify = || Body::Json(json!({"image": image.clone()}));

    check(
        &app,
        &[
            case(
                "enroll without a key",
                "/enroll",
                enroll(),
                401,
                "missing_api_key",
            ),
            case(
                "identify without a key",
                "/identify",
                identify(),
                401,
                "missing_api_key",
            ),
            Case {
                method: Method::GET,
                ..case(
                    "list identities without a key",
                    "/identities",
                    Body::None,
                    401,
                    "missing_api_key",
                )
            },
        ],
    )
    .await;
    app.api_key = Some("wrong-key".into());
    check(
        &app,
        &[case(
            "enroll with an unknown key",
            "/enroll",
            enroll(),
            401,
            "invalid_api_key",
        )],
    )
    .await;
    app.api_key = Some("query-key".into());
    check(
        &app,
        &[
            case(
                "enroll with a query key",
                "/enroll",
                enroll(),
                403,
                "forbidden",
            ),
            Case {
                method: Method::DELETE,
                ..case(
                    "delete with a query key",
                    "/identities/alice",
                    Body::None,
                    403,
                    "forbidden",
                )
            },
        ],
    )
    .await;

    app.api_key = Some("admin-key".into());
    let (status, body) = send(
        &app,
        &case("enroll with the admin key", "/enroll", enroll(), 0, ""),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    app.api_key = Some("query-key".into());
    let (status, body) = send(
        &app,
        &case(
            "identify with the query key",
            "/identify",
            identify(),
            0,
            "",
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"]["identity"], "alice", "{body}");
    // Bearer works as well as X-API-Key.
    let (status, _) = json_of(app.identify(&face("s1", 1)).await).await;
    assert_eq!(status, 200);
}
