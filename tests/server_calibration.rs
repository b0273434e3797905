//! Gallery-size-aware open-set thresholds over real HTTP: the threshold follows the
//! gallery's identity count through the model's impostor tail, a gallery or a request
//! may set its own target FAR, and an explicit threshold still wins.

mod support;

use faceprint::eval::tail::{ImpostorScores, fit_tail};
use faceprint::model::{ModelFile, TailModel};
use serde_json::{Value, json};
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::{face, model_path};

/// A tail fitted on the quantiles of an exponential distribution (scale 0.05, from 0.1).
fn a_tail() -> TailModel {
    let n = 20_000;
    let scores: Vec<f32> = (0..n)
        .map(|i| (0.1 - 0.05 * (1.0 - (i as f64 + 0.5) / n as f64).ln()) as f32)
        .collect();
    fit_tail(
        &[ImpostorScores::unlabelled(1, scores)],
        json!({"by": "test"}),
    )
    .expect("the tail fits")
}

/// The server on a copy of the shipped model that carries [`a_tail`].
async fn spawn_with_tail(db: TestDb, dir: &tempfile::TempDir) -> TestApp {
    let mut model = ModelFile::load(&model_path()).expect("the shipped model loads");
    model.meta.tail = Some(a_tail());
    let path = dir.path().join("calibrated.safetensors");
    model.save(&path).expect("the calibrated copy saves");
    let mut settings = test_settings(&db);
    settings.model.path = path;
    TestApp::spawn_with(db, settings).await
}

async fn gallery(app: &TestApp) -> Value {
    let (status, body) = json_of(app.get("/galleries/default").await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn enroll(app: &TestApp, identity: &str, who: &str) {
    let (status, body) = json_of(app.enroll(identity, &[face(who, 1)]).await).await;
    assert_eq!(status, 201, "enroll {identity}: {body}");
}

async fn enrolling_more_identities_raises_the_threshold(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_with_tail(db, &dir).await;
    enroll(&app, "alice", "s1").await;
    let one = gallery(&app).await;
    assert_eq!(one["identities"], 1, "{one}");
    assert_eq!(one["current_far"], 0.01, "{one}");
    let t1 = one["current_threshold"].as_f64().expect("threshold");
    // p(t) = 0.01 → t ≈ 0.1 + 0.05·ln 100 for the exponential the tail was fitted on.
    assert!((t1 - a_tail().threshold(0.01, 1, 1)).abs() < 1e-6, "{one}");
    assert!((t1 - (0.1 + 0.05 * 100f64.ln())).abs() < 0.01, "{one}");
    for (identity, who) in [("bob", "s2"), ("carol", "s3"), ("dave", "s4")] {
        enroll(&app, identity, who).await;
    }
    let four = gallery(&app).await;
    let t4 = four["current_threshold"].as_f64().expect("threshold");
    assert!(t4 > t1, "4 identities: {t4}, 1 identity: {t1}");

    let (status, body) = json_of(app.identify(&face("s1", 2)).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["far"], 0.01, "{body}");
    assert_eq!(body["gallery_size"], 4, "{body}");
    assert!(
        (body["threshold"].as_f64().expect("threshold") - t4).abs() < 1e-6,
        "{body}"
    );
    let candidates = body["candidates"].as_array().expect("candidates");
    assert!(!candidates.is_empty(), "{body}");
    for c in candidates {
        let rate = c["false_accept_rate"]
            .as_f64()
            .expect("a rate per candidate");
        assert!((0.0..=1.0).contains(&rate), "{c}");
    }
    // A candidate at the threshold would carry the target FAR; higher similarities less.
    let best = &candidates[0];
    let s = best["similarity"].as_f64().expect("similarity");
    let rate = best["false_accept_rate"].as_f64().expect("rate");
    assert_eq!(s >= t4, rate <= 0.01 + 1e-9, "{best} at threshold {t4}");

    // Deleting identities lowers it again.
    let (status, _) = json_of(app.delete_identity("dave").await).await;
    assert_eq!(status, 200);
    let three = gallery(&app).await;
    let t3 = three["current_threshold"].as_f64().expect("threshold");
    assert!(t3 < t4 && t3 > t1, "{t1} < {t3} < {t4}");
}
on_both_backends!(
    enrolling_more_identities_raises_the_threshold,
    super::enrolling_more_identities_raises_the_threshold
);

async fn request_far_gallery_far_and_explicit_thresholds_take_precedence(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = spawn_with_tail(db, &dir).await;
    enroll(&app, "alice", "s1").await;
    enroll(&app, "bob", "s2").await;
    let identify = |body: Value| {
        let app = &app;
        async move {
            let mut body = body;
            body["image"] = json!(support::fixtures::b64(&face("s1", 3)));
            let (status, answer) = json_of(app.post_json("/identify", &body).await).await;
            assert_eq!(status, 200, "{answer}");
            answer
        }
    };
    let default = identify(json!({})).await;
    let strict = identify(json!({"far": 0.001})).await;
    assert_eq!(strict["far"], 0.001, "{strict}");
    assert!(strict["threshold"].as_f64() > default["threshold"].as_f64());

    // The gallery's own far, then its own threshold, replace the server default.
    let (status, body) = json_of(app.put_gallery("default", &json!({"far": 0.001})).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["far"], 0.001, "{body}");
    let by_gallery = identify(json!({})).await;
    assert_eq!(by_gallery["threshold"], strict["threshold"], "{by_gallery}");
    let (status, body) = json_of(
        app.put_gallery("default", &json!({"threshold": 0.5, "far": 0.001}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["current_threshold"], 0.5, "{body}");
    assert_eq!(body["current_far"], Value::Null, "{body}");
    let fixed = identify(json!({})).await;
    assert_eq!(fixed["threshold"], 0.5, "{fixed}");
    assert_eq!(fixed["far"], Value::Null, "{fixed}");
    // A request's far beats the gallery's threshold; its threshold beats everything.
    let requested = identify(json!({"far": 0.001})).await;
    assert_eq!(requested["threshold"], strict["threshold"], "{requested}");
    let explicit = identify(json!({"far": 0.001, "threshold": 0.25})).await;
    assert_eq!(explicit["threshold"], 0.25, "{explicit}");
    assert_eq!(explicit["far"], Value::Null, "{explicit}");
}
on_both_backends!(
    request_far_gallery_far_and_explicit_thresholds_take_precedence,
    super::request_far_gallery_far_and_explicit_thresholds_take_precedence
);

async fn bad_far_values_are_422_naming_the_field(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let image = support::fixtures::b64(&face("s1", 1));
    for bad in [
        json!(0),
        json!(-0.5),
        json!(1),
        json!(3),
        json!("NaN"),
        json!("often"),
        json!(true),
    ] {
        for (what, response) in [
            (
                "identify",
                app.post_json("/identify", &json!({"image": image, "far": bad}))
                    .await,
            ),
            (
                "gallery",
                app.put_gallery("default", &json!({"far": bad})).await,
            ),
        ] {
            let (status, body) = json_of(response).await;
            assert_eq!(status, 422, "{what} far = {bad}: {body}");
            assert_eq!(body["error"]["code"], "out_of_range", "{body}");
            let message = body["error"]["message"].as_str().unwrap_or("");
            assert!(message.contains("`far`"), "{what} far = {bad}: {body}");
        }
    }
}
on_both_backends!(
    bad_far_values_are_422_naming_the_field,
    super::bad_far_values_are_422_naming_the_field
);

async fn a_model_without_a_tail_falls_back_to_its_fixed_threshold(db: TestDb) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut model = ModelFile::load(&model_path()).expect("the shipped model loads");
    model.meta.tail = None;
    let path = dir.path().join("plain.safetensors");
    model.save(&path).expect("the copy saves");
    let mut settings = test_settings(&db);
    settings.model.path = path;
    let app = TestApp::spawn_with(db, settings).await;
    enroll(&app, "alice", "s1").await;
    enroll(&app, "bob", "s2").await;
    let body = gallery(&app).await;
    // f32 values, compared as f32 (JSON writes their shortest decimal form).
    let fixed = model.meta.thresholds.far_1pct;
    let as_f32 = |v: &Value| v.as_f64().map(|x| x as f32);
    assert_eq!(as_f32(&body["current_threshold"]), Some(fixed), "{body}");
    let (status, answer) = json_of(app.identify(&face("s1", 3)).await).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(as_f32(&answer["threshold"]), Some(fixed), "{answer}");
    assert_eq!(
        answer["candidates"][0]["false_accept_rate"],
        Value::Null,
        "{answer}"
    );
}
on_both_backends!(
    a_model_without_a_tail_falls_back_to_its_fixed_threshold,
    super::a_model_without_a_tail_falls_back_to_its_fixed_threshold
);
