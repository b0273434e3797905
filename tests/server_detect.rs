//! Whole photographs over HTTP: `/detect`, and `/identify`, `/embed`, `/verify` and
//! `/enroll` detecting faces first. Photographs are real: the coffee picture (no face),
//! and composites of the server's ORL fixture faces pasted on it at known places.

mod support;

use std::io::Cursor;
use std::path::Path;

use faceprint::detect::DetectConfig;
use faceprint::server::Application;
use image::{GrayImage, ImageFormat, imageops};
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use support::app::{TestApp, json_of, test_settings};
use support::db::TestDb;
use support::fixtures::{b64, face};

fn coffee() -> GrayImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detect/coffee.jpg");
    image::open(&path).expect("coffee fixture").to_luma8()
}

fn png(image: &GrayImage) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, ImageFormat::Png).expect("encode");
    out.into_inner()
}

fn jpeg_bytes(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/detect")
            .join(name),
    )
    .expect("fixture")
}

/// x, y, width, height.
type Rect = (u32, u32, u32, u32);

/// The coffee photograph at 640×480 with fixture faces `(who, n, scale)` pasted left to
/// right at y = 120; returns the PNG and the rectangle of each pasted face.
fn photo(faces: &[(&str, u32, u32)]) -> (Vec<u8>, Vec<Rect>) {
    let mut canvas = imageops::resize(&coffee(), 640, 480, imageops::FilterType::Triangle);
    let mut x = 20u32;
    let mut placed = Vec::new();
    for &(who, n, scale) in faces {
        let image = image::load_from_memory(&face(who, n))
            .expect("face")
            .to_luma8();
        let image = imageops::resize(
            &image,
            image.width() * scale,
            image.height() * scale,
            imageops::FilterType::Triangle,
        );
        imageops::replace(&mut canvas, &image, i64::from(x), 120);
        placed.push((x, 120, image.width(), image.height()));
        x += image.width() + 30;
    }
    (png(&canvas), placed)
}

/// The x centre of a JSON box.
fn centre_x(b: &Value) -> f64 {
    b["x"].as_f64().expect("x") + b["width"].as_f64().expect("width") / 2.0
}

/// Which pasted rectangle a JSON box lies in (by its centre).
fn which(b: &Value, placed: &[Rect]) -> Option<usize> {
    let cx = centre_x(b);
    placed
        .iter()
        .position(|&(x, _, w, _)| f64::from(x) <= cx && cx <= f64::from(x + w))
}

/// Enroll images 1 and 2 of fixture `who` (92×112 ORL crops, in which the detector finds
/// the face: enrollment and queries get the same kind of crop).
async fn enroll_crops(app: &TestApp, identity: &str, who: &str) {
    let (status, body) = json_of(app.enroll(identity, &[face(who, 1), face(who, 2)]).await).await;
    assert_eq!(status, 201, "{body}");
    let boxes = body["boxes"].as_array().expect("boxes");
    assert!(boxes.iter().all(|b| b["width"].is_number()), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_returns_every_face_box_largest_first() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let (image, placed) = photo(&[("s1", 3, 1), ("s2", 3, 2), ("s3", 3, 1)]);
    let (status, body) = json_of(
        app.post_json("/detect", &json!({"image": b64(&image)}))
            .await,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["width"].as_u64(), body["height"].as_u64()),
        (Some(640), Some(480))
    );
    let faces = body["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 3, "{body}");
    // The face pasted at twice the size comes first.
    assert_eq!(which(&faces[0]["box"], &placed), Some(1), "{body}");
    let mut seen: Vec<_> = faces
        .iter()
        .filter_map(|f| which(&f["box"], &placed))
        .collect();
    seen.sort_unstable();
    assert_eq!(seen, [0, 1, 2], "{body}");
    for f in faces {
        let score = f["box"]["score"].as_f64().expect("score");
        assert!(score > 0.7 && score <= 1.0, "a probability: {body}");
        assert_eq!(f["embeddable"], true, "{body}");
        // Five landmarks inside the box: eyes above the nose above the mouth.
        let points: Vec<(f64, f64)> = f["landmarks"]
            .as_array()
            .expect("landmarks")
            .iter()
            .map(|p| (p["x"].as_f64().expect("x"), p["y"].as_f64().expect("y")))
            .collect();
        assert_eq!(points.len(), 5, "{body}");
        let (x, y) = (
            f["box"]["x"].as_f64().expect("x"),
            f["box"]["y"].as_f64().expect("y"),
        );
        let w = f["box"]["width"].as_f64().expect("width");
        let h = f["box"]["height"].as_f64().expect("height");
        for &(px, py) in &points {
            assert!(px > x && px < x + w && py > y && py < y + h, "{body}");
        }
        assert!(
            points[0].1 < points[2].1 && points[2].1 < points[3].1,
            "{body}"
        );
    }
    let form = Form::new()
        .part("image", Part::bytes(image).file_name("photo.png"))
        .text("max_faces", "2");
    let response = app
        .client
        .post(app.url("/detect"))
        .multipart(form)
        .send()
        .await
        .expect("sent");
    let (status, limited) = json_of(response).await;
    assert_eq!(status, 200, "{limited}");
    assert_eq!(
        limited["faces"].as_array().map(Vec::len),
        Some(2),
        "{limited}"
    );
    assert_eq!(limited["faces"][0], faces[0], "{limited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_finds_nothing_in_a_photograph_without_faces() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let request = json!({"image": b64(&jpeg_bytes("coffee.jpg"))});
    let (status, body) = json_of(app.post_json("/detect", &request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faces"], json!([]), "{body}");
}

async fn identify_on_a_photograph_without_faces_answers_no_match(db: TestDb) {
    let app = TestApp::spawn(db).await;
    enroll_crops(&app, "alice", "s1").await;
    let (status, body) = json_of(app.identify(&jpeg_bytes("coffee.jpg")).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["match"], Value::Null, "{body}");
    assert_eq!(body["box"], Value::Null, "{body}");
    assert_eq!(body["faces"], json!([]), "{body}");
    assert_eq!(body["candidates"], json!([]), "{body}");
    assert!(body["threshold"].is_number(), "{body}");
}
on_both_backends!(
    identify_on_a_photograph_without_faces_answers_no_match,
    super::identify_on_a_photograph_without_faces_answers_no_match
);

/// `/identify` of `image` at threshold −1 (every candidate a match); panics unless 200.
async fn identify_accepting_all(app: &TestApp, image: &[u8]) -> Value {
    let request = json!({"image": b64(image), "threshold": -1.0});
    let (status, body) = json_of(app.post_json("/identify", &request).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn identify_answers_for_every_face_of_a_photograph(db: TestDb) {
    let app = TestApp::spawn(db).await;
    enroll_crops(&app, "alice", "s1").await;
    enroll_crops(&app, "bob", "s2").await;
    let (image, placed) = photo(&[("s2", 3, 1), ("s1", 3, 2)]);
    let body = identify_accepting_all(&app, &image).await;
    let faces = body["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 2, "{body}");
    // Largest first: alice's face, pasted twice as large, is the top-level answer.
    assert_eq!(which(&faces[0]["box"], &placed), Some(1), "{body}");
    assert_eq!(which(&faces[1]["box"], &placed), Some(0), "{body}");
    assert_eq!(body["box"], faces[0]["box"], "{body}");
    assert_eq!(body["candidates"], faces[0]["candidates"], "{body}");
    assert_eq!(body["match"], faces[0]["match"], "{body}");
    assert_eq!(faces[0]["candidates"][0]["identity"], "alice", "{body}");
    assert_eq!(faces[1]["candidates"][0]["identity"], "bob", "{body}");
    assert_eq!(
        faces[1]["match"]["identity"], "bob",
        "threshold −1 accepts: {body}"
    );
    let request = json!({"image": b64(&image), "max_faces": 1});
    let (_, one) = json_of(app.post_json("/identify", &request).await).await;
    assert_eq!(one["faces"].as_array().map(Vec::len), Some(1), "{one}");
    assert_eq!(one["faces"][0]["box"], faces[0]["box"], "{one}");
    for bad in [json!(0), json!(101), json!("many")] {
        let request = json!({"image": b64(&image), "max_faces": bad});
        let (status, error) = json_of(app.post_json("/identify", &request).await).await;
        assert_eq!(status, 400, "max_faces {bad}: {error}");
    }
}
on_both_backends!(
    identify_answers_for_every_face_of_a_photograph,
    super::identify_answers_for_every_face_of_a_photograph
);

async fn identify_reports_a_face_too_small_to_embed_without_searching_for_it(db: TestDb) {
    // The faces the detector finds in `photo`'s pasted crops (twice the fixture's 92×112)
    // are smaller than 200 pixels.
    let mut settings = test_settings(&db);
    settings.detector = Some(DetectConfig {
        min_embed_size: 200,
        ..DetectConfig::default()
    });
    let app = TestApp::spawn_with(db, settings).await;
    // A crop three times the fixture's size, read whole, is large enough to enroll.
    let crop = image::load_from_memory(&face("s1", 1))
        .expect("face")
        .to_luma8();
    let crop = imageops::resize(&crop, 276, 336, imageops::FilterType::Triangle);
    let request = json!({"identity": "alice", "images": [b64(&png(&crop))], "detect": false});
    let (status, body) = json_of(app.post_json("/enroll", &request).await).await;
    assert_eq!(status, 201, "{body}");
    let (image, placed) = photo(&[("s1", 3, 2)]);
    let body = identify_accepting_all(&app, &image).await;
    let faces = body["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 1, "{body}");
    assert_eq!(which(&faces[0]["box"], &placed), Some(0), "{body}");
    assert_eq!(faces[0]["embedded"], false, "{body}");
    assert_eq!(faces[0]["candidates"], json!([]), "{body}");
    assert!(faces[0]["match"].is_null(), "even at threshold −1: {body}");
    // The top-level answer is the largest embedded face's: there is none.
    assert!(body["match"].is_null() && body["box"].is_null(), "{body}");
    assert_eq!(body["candidates"], json!([]), "{body}");
}
on_both_backends!(
    identify_reports_a_face_too_small_to_embed_without_searching_for_it,
    super::identify_reports_a_face_too_small_to_embed_without_searching_for_it
);

async fn enroll_refuses_an_image_with_several_faces_and_names_it(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (group, _) = photo(&[("s1", 3, 1), ("s2", 3, 1)]);
    let (single, _) = photo(&[("s1", 1, 1)]);
    let (status, body) = json_of(app.enroll("alice", &[single.clone(), group.clone()]).await).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "several_faces", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("image 1") && message.contains("2 faces"),
        "{message}"
    );
    let (status, _) = json_of(app.get_identity("alice").await).await;
    assert_eq!(status, 404, "nothing of a refused enrollment is kept");
    // Saying which face to use makes the same images acceptable.
    let (_, detected) = json_of(
        app.post_json("/detect", &json!({"image": b64(&group)}))
            .await,
    )
    .await;
    let faces = detected["faces"].as_array().expect("faces");
    let alice_box = faces
        .iter()
        .map(|f| f["box"].clone())
        .min_by(|a, b| centre_x(a).total_cmp(&centre_x(b)))
        .expect("a face");
    let request = json!({
        "identity": "alice",
        "images": [b64(&single), b64(&group)],
        "boxes": [null, alice_box]
    });
    let (status, body) = json_of(app.post_json("/enroll", &request).await).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["face_ids"].as_array().map(Vec::len), Some(2), "{body}");
    assert_eq!(body["boxes"][1]["x"], alice_box["x"], "{body}");
    assert!(body["boxes"][0]["width"].is_number(), "{body}");
    // The face enrolled from the group photo is alice's: a new photo of her finds her.
    let (_, found) = json_of(
        app.post_json(
            "/identify",
            &json!({"image": b64(&face("s1", 2)), "detect": false}),
        )
        .await,
    )
    .await;
    assert_eq!(found["candidates"][0]["identity"], "alice", "{found}");
}
on_both_backends!(
    enroll_refuses_an_image_with_several_faces_and_names_it,
    super::enroll_refuses_an_image_with_several_faces_and_names_it
);

async fn enroll_refuses_an_image_without_a_face_and_names_it(db: TestDb) {
    let app = TestApp::spawn(db).await;
    let (single, _) = photo(&[("s1", 1, 1)]);
    let images = [single.clone(), single, jpeg_bytes("coffee.jpg")];
    let (status, body) = json_of(app.enroll_multipart("alice", &images).await).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "no_face", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("image 2"), "{message}");
    let (status, _) = json_of(app.get_identity("alice").await).await;
    assert_eq!(status, 404);
    // A box that misses the image, or a wrong number of boxes, is the client's error.
    let cases = [
        (
            json!([{"x": 700, "y": 10, "width": 50, "height": 50}]),
            "outside",
        ),
        (
            json!([{"x": 10, "y": 10, "width": 10, "height": 10}]),
            "smaller than",
        ),
        (json!([null, null]), "one entry"),
        (json!([{"x": 1}]), "missing field"),
    ];
    for (boxes, says) in cases {
        let request = json!({"identity": "alice", "images": [b64(&images[0])], "boxes": boxes});
        let (status, body) = json_of(app.post_json("/enroll", &request).await).await;
        assert_eq!(status, 400, "{boxes}: {body}");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(says), "{boxes}: {message}");
    }
}
on_both_backends!(
    enroll_refuses_an_image_without_a_face_and_names_it,
    super::enroll_refuses_an_image_without_a_face_and_names_it
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embed_and_verify_answer_for_the_largest_face_and_list_every_face() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let (image, placed) = photo(&[("s2", 3, 1), ("s1", 3, 2), ("s3", 3, 1)]);
    let (status, body) = json_of(app.embed(&image).await).await;
    assert_eq!(status, 200, "{body}");
    let faces = body["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 3, "{body}");
    assert_eq!(body["embedding"], faces[0]["embedding"], "{body}");
    assert_eq!(body["box"], faces[0]["box"], "{body}");
    assert_eq!(which(&body["box"], &placed), Some(1), "{body}");
    assert_eq!(
        body["dim"].as_u64().map(|d| d as usize),
        body["embedding"].as_array().map(Vec::len)
    );
    // detect=false: the whole picture is taken as one face crop, as before detection.
    let form = Form::new()
        .part("image", Part::bytes(image.clone()).file_name("photo.png"))
        .text("detect", "false");
    let response = app
        .client
        .post(app.url("/embed"))
        .multipart(form)
        .send()
        .await
        .expect("sent");
    let (status, whole) = json_of(response).await;
    assert_eq!(status, 200, "{whole}");
    assert_eq!(whole["box"], Value::Null, "{whole}");
    assert_eq!(whole["faces"].as_array().map(Vec::len), Some(1), "{whole}");
    assert_ne!(whole["embedding"], body["embedding"], "{whole}");
    // No face: nothing to embed, a 422 naming the image.
    let (status, error) = json_of(app.embed(&jpeg_bytes("coffee.jpg")).await).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "no_face", "{error}");
    // Verify: each face of the first image against the second image's largest face.
    let (status, verdict) = json_of(app.verify_pair(&image, &face("s1", 1)).await).await;
    assert_eq!(status, 200, "{verdict}");
    let faces = verdict["faces"].as_array().expect("faces");
    assert_eq!(faces.len(), 3, "{verdict}");
    let similarity = |f: &Value| f["similarity"].as_f64().expect("similarity");
    assert_eq!(verdict["similarity"], faces[0]["similarity"], "{verdict}");
    assert!(
        similarity(&faces[0]) > similarity(&faces[1])
            && similarity(&faces[0]) > similarity(&faces[2]),
        "alice's face is the most similar to alice: {verdict}"
    );
    assert!(verdict["reference_box"]["width"].is_number(), "{verdict}");
    let (status, error) = json_of(app.verify_pair(&image, &jpeg_bytes("coffee.jpg")).await).await;
    assert_eq!(status, 422, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .expect("message")
            .contains("image 1"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_face_crop_embeds_alike_with_detection_and_without() {
    // The shipped model learned aligned faces: a crop sent as one face (`detect=false`)
    // is aligned on the landmarks detection finds in it, so both answers are one picture.
    let app = TestApp::spawn(TestDb::sqlite()).await;
    for (who, n) in [("s1", 1), ("s2", 2), ("s3", 1)] {
        let crop = face(who, n);
        let (status, detected) = json_of(app.embed(&crop).await).await;
        assert_eq!(status, 200, "{detected}");
        assert!(detected["box"].is_object(), "{detected}");
        let response = app
            .post_json("/embed", &json!({ "image": b64(&crop), "detect": false }))
            .await;
        let (status, whole) = json_of(response).await;
        assert_eq!(status, 200, "{whole}");
        assert_eq!(whole["box"], Value::Null, "{whole}");
        let vector = |v: &Value| -> Vec<f64> {
            v["embedding"]
                .as_array()
                .expect("embedding")
                .iter()
                .map(|x| x.as_f64().expect("number"))
                .collect()
        };
        let cosine: f64 = vector(&detected)
            .iter()
            .zip(vector(&whole))
            .map(|(a, b)| a * b)
            .sum();
        assert!(cosine > 0.9999, "{who}/{n}: cosine {cosine}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_astronaut_photograph_is_one_face() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let request = json!({"image": b64(&jpeg_bytes("astronaut.jpg"))});
    let (status, body) = json_of(app.post_json("/detect", &request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faces"].as_array().map(Vec::len), Some(1), "{body}");
    let (status, body) = json_of(app.embed(&jpeg_bytes("astronaut.jpg")).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["faces"].as_array().map(Vec::len), Some(1), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_detector_settings_stop_the_server_at_start_up() {
    let db = TestDb::sqlite();
    let mut settings = test_settings(&db);
    settings.detector = Some(faceprint::detect::DetectConfig {
        min_face_size: 5,
        ..Default::default()
    });
    let Err(error) = Application::build(settings).await else {
        panic!("a detector that cannot search was accepted");
    };
    assert!(error.to_string().contains("min_face_size"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_detects_with_the_settings_its_model_was_trained_with() {
    // The shipped model with detector settings recorded as if trained with them: a
    // smallest face of 200 pixels, larger than the astronaut's (about 90).
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut model =
        faceprint::model::ModelFile::load(&support::fixtures::model_path()).expect("model");
    model.meta.detector = Some(faceprint::detect::DetectConfig {
        min_face_size: 200,
        ..Default::default()
    });
    let path = dir.path().join("model.safetensors");
    model.save(&path).expect("saved");
    let photo = jpeg_bytes("astronaut.jpg");
    for (explicit, faces) in [
        (None, 0),
        (Some(faceprint::detect::DetectConfig::default()), 1),
    ] {
        let db = TestDb::sqlite();
        let mut settings = test_settings(&db);
        settings.model.path = path.clone();
        // The server's own [detector] section, when set, wins over the model's.
        settings.detector = explicit;
        let app = TestApp::spawn_with(db, settings).await;
        let (status, body) = json_of(
            app.post_json("/detect", &json!({"image": b64(&photo)}))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["faces"].as_array().map(Vec::len),
            Some(faces),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_answers_colour_alpha_sixteen_bit_tiny_and_strip_images_without_error() {
    let app = TestApp::spawn(TestDb::sqlite()).await;
    let photo = image::load_from_memory(&jpeg_bytes("astronaut.jpg")).expect("decodes");
    let encode = |image: image::DynamicImage| {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).expect("encode");
        out.into_inner()
    };
    let grey = photo.to_luma8();
    let cases: Vec<(&str, Vec<u8>, usize)> = vec![
        (
            "RGBA 16-bit",
            encode(image::DynamicImage::ImageRgba16(photo.to_rgba16())),
            1,
        ),
        (
            "grey + alpha",
            encode(image::DynamicImage::ImageLumaA8(photo.to_luma_alpha8())),
            1,
        ),
        (
            "RGB",
            encode(image::DynamicImage::ImageRgb8(photo.to_rgb8())),
            1,
        ),
        (
            "11×11, under P-Net's window",
            encode(image::DynamicImage::ImageLuma8(imageops::resize(
                &grey,
                11,
                11,
                imageops::FilterType::Triangle,
            ))),
            0,
        ),
        (
            "1×300 strip",
            encode(image::DynamicImage::ImageLuma8(GrayImage::new(1, 300))),
            0,
        ),
        (
            "300×1 strip",
            encode(image::DynamicImage::ImageLuma8(GrayImage::new(300, 1))),
            0,
        ),
    ];
    for (what, bytes, faces) in cases {
        let (status, body) = json_of(
            app.post_json("/detect", &json!({"image": b64(&bytes)}))
                .await,
        )
        .await;
        assert_eq!(status, 200, "{what}: {body}");
        assert_eq!(
            body["faces"].as_array().map(Vec::len),
            Some(faces),
            "{what}: {body}"
        );
    }
}
