//! The HTTP API end to end: the real server on port 0 over a fresh database per test
//! (SQLite, and PostgreSQL when `FACEPRINT_TEST_DATABASE_URL` is set), the real model.

mod support;

use faceprint::server::Secret;
use serde_json::json;
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::{b64, face};

/// Enroll images 1 and 2 of fixture `who` as `identity`; panics unless it succeeds.
async fn enroll_two(app: &TestApp, identity: &str, who: &str) -> Vec<i64> {
    let (status, body) = json_of(app.enroll(identity, &[face(who, 1), face(who, 2)]).await).await;
    assert_eq!(status, 201, "enroll {identity}: {body}");
    body["face_ids"]
        .as_array()
        .expect("face ids")
        .iter()
        .map(|v| v.as_i64().expect("integer id"))
        .collect()
}

async fn identify_finds_an_enrolled_person_from_an_unseen_image(db: TestDb) {
    let app = TestApp::spawn(db).await;
    enroll_two(&app, "alice", "s1").await;
    enroll_two(&app, "bob", "s2").await;
    let (status, body) = json_of(app.identify(&face("s1", 3)).await).await;
    assert_eq!(status, 200, "{body}");
    let candidates = body["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 2, "{body}");
    assert_eq!(candidates[0]["identity"], "alice", "{body}");
    assert_eq!(candidates[1]["identity"], "bob", "{body}");
    assert!(body["model"].is_string(), "{body}");
    // The server's rule: `match` is the best identity exactly when its similarity reaches
    // the threshold. Whether the shipped model's calibrated threshold accepts this pose
    // of a person it never saw is the model's quality, measured by eval-embed
    // (BENCHMARKS.md), so both outcomes are checked against the rule here.
    let best = candidates[0]["similarity"].as_f64().expect("similarity");
    let threshold = body["threshold"].as_f64().expect("threshold");
    if best >= threshold {
        assert_eq!(body["match"]["identity"], "alice", "{body}");
    } else {
        assert!(body["match"].is_null(), "{body}");
    }
    let request = json!({"image": b64(&face("s1", 3)), "threshold": best - 1e-3});
    let (_, lowered) = json_of(app.post_json("/identify", &request).await).await;
    assert_eq!(lowered["match"]["identity"], "alice", "{lowered}");
    assert_eq!(
        lowered["match"]["similarity"], candidates[0]["similarity"],
        "{lowered}"
    );
}
on_both_backends!(
    identify_finds_an_enrolled_person_from_an_unseen_image,
    super::identify_finds_an_enrolled_person_from_an_unseen_image
);

async fn identify_returns_no_match_for_a_face_never_enrolled(db: TestDb) {
    let app = TestApp::spawn(db).await;
    enroll_two(&app, "alice", "s1").await;
    let (status, body) = json_of(app.identify(&face("s3", 1)).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["match"].is_null(), "a stranger must not match: {body}");
    let best = body["candidates"][0]["similarity"]
        .as_f64()
        .expect("candidate");
    assert!(
        best < body["threshold"].as_f64().expect("threshold"),
        "{body}"
    );
}
on_both_backends!(
    identify_returns_no_match_for_a_face_never_enrolled,
    super::identify_returns_no_match_for_a_face_never_enrolled
);

async fn identify_before_any_enrollment_answers_no_match_for_the_face_it_embedded(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (status, body) = json_of(app.identify(&face("s1", 1)).await).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["match"].is_null(), "{body}");
    assert_eq!(body["candidates"], json!([]), "{body}");
    assert_eq!(body["gallery_size"], 0, "{body}");
    let faces = body["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 1, "{body}");
    assert_eq!(faces[0]["embedded"], true, "{body}");
    assert_eq!(faces[0]["candidates"], json!([]), "{body}");
}
on_both_backends!(
    identify_before_any_enrollment_answers_no_match_for_the_face_it_embedded,
    super::identify_before_any_enrollment_answers_no_match_for_the_face_it_embedded
);

async fn a_deleted_identity_is_no_longer_found(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let faces = enroll_two(&app, "alice", "s1").await;
    let (status, body) = json_of(app.delete_identity("alice").await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deleted_faces"], json!(faces));
    let (_, body) = json_of(app.identify(&face("s1", 1)).await).await;
    assert!(body["match"].is_null(), "{body}");
    assert_eq!(body["candidates"], json!([]), "{body}");
    let (status, body) = json_of(app.get_identity("alice").await).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "identity_not_found");
}
on_both_backends!(
    a_deleted_identity_is_no_longer_found,
    super::a_deleted_identity_is_no_longer_found
);

async fn a_deleted_face_stops_matching_while_the_others_still_do(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let faces = enroll_two(&app, "alice", "s1").await;
    let (status, body) = json_of(app.delete_face("alice", faces[0]).await).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = json_of(app.identify(&face("s1", 1)).await).await;
    assert_eq!(body["candidates"][0]["face_id"], faces[1], "{body}");
    let (status, _) = json_of(app.delete_face("alice", faces[0]).await).await;
    assert_eq!(status, 404, "a face can be deleted once");
}
on_both_backends!(
    a_deleted_face_stops_matching_while_the_others_still_do,
    super::a_deleted_face_stops_matching_while_the_others_still_do
);

async fn everything_is_still_there_after_a_restart(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let faces = enroll_two(&app, "alice", "s1").await;
    let app = app.restart().await;
    let (status, body) = json_of(app.get_identity("alice").await).await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<_> = body["faces"]
        .as_array()
        .expect("faces")
        .iter()
        .map(|f| f["id"].as_i64())
        .collect();
    assert_eq!(ids, faces.iter().map(|&f| Some(f)).collect::<Vec<_>>());
    let (_, body) = json_of(app.identify(&face("s1", 1)).await).await;
    assert_eq!(body["match"]["identity"], "alice", "{body}");
}
on_both_backends!(
    everything_is_still_there_after_a_restart,
    super::everything_is_still_there_after_a_restart
);

async fn enrolling_again_adds_faces_and_keeps_metadata(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let body =
        json!({"identity": "alice", "images": [b64(&face("s1", 1))], "metadata": {"team": "red"}});
    let (status, first) = json_of(app.post_json("/enroll", &body).await).await;
    assert_eq!(
        (status, first["created"].clone()),
        (201, json!(true)),
        "{first}"
    );
    let (status, second) = json_of(app.enroll_multipart("alice", &[face("s1", 2)]).await).await;
    assert_eq!(
        (status, second["created"].clone()),
        (200, json!(false)),
        "{second}"
    );
    let (_, detail) = json_of(app.get_identity("alice").await).await;
    assert_eq!(
        detail["faces"].as_array().map(Vec::len),
        Some(2),
        "{detail}"
    );
    assert_eq!(detail["metadata"], json!({"team": "red"}), "{detail}");
    assert_eq!(
        detail["faces"][0]["has_image"], true,
        "images are kept by default"
    );
}
on_both_backends!(
    enrolling_again_adds_faces_and_keeps_metadata,
    super::enrolling_again_adds_faces_and_keeps_metadata
);

async fn identities_are_listed_in_pages(db: TestDb) {
    let app = TestApp::spawn(db).await;
    for (name, who) in [("carol", "s3"), ("alice", "s1"), ("bob", "s2")] {
        enroll_two(&app, name, who).await;
    }
    let (status, first) = json_of(app.list_identities("?limit=2").await).await;
    assert_eq!(status, 200, "{first}");
    let names: Vec<_> = first["identities"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["identity"].clone())
        .collect();
    assert_eq!(names, [json!("alice"), json!("bob")]);
    assert_eq!(first["next"], "bob");
    let (_, second) = json_of(app.list_identities("?limit=2&after=bob").await).await;
    assert_eq!(second["identities"][0]["identity"], "carol", "{second}");
    assert_eq!(second["identities"][0]["faces"], 2, "{second}");
    assert!(second["next"].is_null(), "{second}");
}
on_both_backends!(
    identities_are_listed_in_pages,
    super::identities_are_listed_in_pages
);

async fn embed_returns_a_unit_vector_and_verify_compares_faces(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (status, body) = json_of(app.embed(&face("s1", 1)).await).await;
    assert_eq!(status, 200, "{body}");
    let v: Vec<f64> = body["embedding"]
        .as_array()
        .expect("embedding")
        .iter()
        .filter_map(|x| x.as_f64())
        .collect();
    assert_eq!(Some(v.len() as u64), body["dim"].as_u64());
    let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");

    // `same` is exactly "similarity ≥ threshold"; the same person must score above a
    // different one (how often the calibrated threshold accepts a person never seen is
    // the model's quality, measured by eval-embed).
    let similarity = |v: &serde_json::Value| v["similarity"].as_f64().expect("similarity");
    let follows_rule = |v: &serde_json::Value| {
        assert_eq!(
            v["same"].as_bool(),
            Some(similarity(v) >= v["threshold"].as_f64().expect("threshold")),
            "{v}"
        );
    };
    let (_, same) = json_of(app.verify_pair(&face("s1", 1), &face("s1", 2)).await).await;
    follows_rule(&same);
    let (_, different) = json_of(app.verify_pair(&face("s1", 1), &face("s3", 1)).await).await;
    follows_rule(&different);
    assert!(
        similarity(&same) > similarity(&different),
        "{same} vs {different}"
    );
    assert_eq!(different["same"], false, "{different}");
    enroll_two(&app, "alice", "s1").await;
    let (status, against) = json_of(app.verify_identity(&face("s1", 3), "alice").await).await;
    assert_eq!(status, 200, "{against}");
    follows_rule(&against);
    // The identity's score is its best enrolled face, so it is at least the pair score.
    let (_, pair) = json_of(app.verify_pair(&face("s1", 3), &face("s1", 1)).await).await;
    assert!(
        similarity(&against) >= similarity(&pair) - 1e-6,
        "{against} vs {pair}"
    );
}
on_both_backends!(
    embed_returns_a_unit_vector_and_verify_compares_faces,
    super::embed_returns_a_unit_vector_and_verify_compares_faces
);

async fn a_gallery_threshold_overrides_the_default_and_a_request_overrides_both(db: TestDb) {
    let app = TestApp::spawn(db).await;
    enroll_two(&app, "alice", "s1").await;
    let (status, body) = json_of(
        app.put_gallery("default", &json!({"threshold": 0.999}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, strict) = json_of(app.identify(&face("s1", 3)).await).await;
    assert!(
        (strict["threshold"].as_f64().expect("threshold") - 0.999).abs() < 1e-6,
        "{strict}"
    );
    assert!(strict["match"].is_null(), "{strict}");
    let request = json!({"image": b64(&face("s1", 3)), "threshold": -1.0});
    let (_, lenient) = json_of(app.post_json("/identify", &request).await).await;
    assert_eq!(lenient["match"]["identity"], "alice", "{lenient}");
}
on_both_backends!(
    a_gallery_threshold_overrides_the_default_and_a_request_overrides_both,
    super::a_gallery_threshold_overrides_the_default_and_a_request_overrides_both
);

async fn galleries_are_separate(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let body = json!({"identity": "alice", "gallery": "staff", "images": [b64(&face("s1", 1))]});
    let (status, _) = json_of(app.post_json("/enroll", &body).await).await;
    assert_eq!(status, 201);
    let (_, default) = json_of(app.identify(&face("s1", 1)).await).await;
    assert!(default["match"].is_null(), "{default}");
    let query = json!({"image": b64(&face("s1", 1)), "gallery": "staff"});
    let (_, staff) = json_of(app.post_json("/identify", &query).await).await;
    assert_eq!(staff["match"]["identity"], "alice", "{staff}");
    let (status, _) = json_of(app.get("/identities/alice?gallery=staff").await).await;
    assert_eq!(status, 200);
}
on_both_backends!(galleries_are_separate, super::galleries_are_separate);

#[tokio::test]
async fn metrics_count_requests_per_route_and_report_index_sizes() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    enroll_two(&app, "alice", "s1").await;
    app.identify(&face("s1", 1)).await;
    let text = app.get("/metrics").await.text().await.expect("metrics");
    for expected in [
        "faceprint_http_requests_total{method=\"POST\",route=\"/enroll\",status=\"201\"} 1",
        "faceprint_http_requests_total{method=\"POST\",route=\"/identify\",status=\"200\"} 1",
        "faceprint_http_request_duration_seconds_count{method=\"POST\",route=\"/identify\"} 1",
        "faceprint_index_faces{gallery=\"default\"} 2",
        "faceprint_index_identities{gallery=\"default\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "missing {expected:?} in\n{text}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let (status, doc) = json_of(app.get("/openapi.json").await).await;
    assert_eq!(status, 200);
    for (method, path) in faceprint::server::openapi::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
}

#[tokio::test]
async fn every_described_route_is_served() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    for (method, path) in faceprint::server::openapi::ROUTES {
        let concrete = path
            .replace("{identity}", "nobody")
            .replace("{face_id}", "1")
            .replace("{gallery}", "default");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .expect("request sent");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        // Whatever the route makes of an empty request (a 4xx naming what is missing is
        // fine), it must not be the router's answer for a path or method it lacks.
        assert!(
            !body.contains("route_not_found") && !body.contains("method_not_allowed"),
            "{method} {concrete}: {status} {body}"
        );
    }
}

#[tokio::test]
async fn health_and_readiness_answer_without_a_key() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.auth.admin_keys = vec![Secret::new("admin-key")];
    let app = TestApp::spawn_with(db, settings).await;
    let (status, _) = json_of(app.get("/healthz").await).await;
    assert_eq!(status, 200);
    let (status, ready) = json_of(app.get("/readyz").await).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["status"], "ready");
}
