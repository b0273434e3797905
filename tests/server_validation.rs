//! Inputs a hostile client might send, each refused with its 4xx in the JSON error shape:
//! a JPEG cut after an EXIF thumbnail, a 1×1 "face crop", invisible or look-alike
//! identity names, repeated fields, oversized WebP and BMP, an oversized request line or
//! header block.

mod support;

use std::io::Cursor;

use image::{DynamicImage, ImageFormat};
use serde_json::{Value, json};
use support::app::{TestApp, json_of};
use support::db::TestDb;
use support::fixtures::{b64, face};

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode");
    out.into_inner()
}

/// Fixture `s1/1` as a JPEG whose APP1 (EXIF) segment carries a thumbnail JPEG with its
/// own end-of-image marker, as cameras write them.
fn jpeg_with_exif_thumbnail() -> Vec<u8> {
    let photo = image::load_from_memory(&face("s1", 1)).expect("fixture decodes");
    let main = encode(&photo, ImageFormat::Jpeg);
    let thumbnail = encode(&photo.thumbnail(23, 28), ImageFormat::Jpeg);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&thumbnail);
    let length = u16::try_from(app1.len() + 2).expect("segment fits");
    let mut jpeg = main[..2].to_vec(); // SOI
    jpeg.extend_from_slice(&[0xFF, 0xE1]);
    jpeg.extend_from_slice(&length.to_be_bytes());
    jpeg.extend_from_slice(&app1);
    jpeg.extend_from_slice(&main[2..]);
    jpeg
}

/// A server on a fresh SQLite file, and a face image in base64.
async fn app_and_face() -> (TestApp, String) {
    (TestApp::spawn(TestDb::sqlite()).await, b64(&face("s1", 1)))
}

/// `POST /embed` of one image read whole (no detection): the status and body.
async fn embed_whole(app: &TestApp, image: &[u8]) -> (u16, Value) {
    json_of(
        app.post_json("/embed", &json!({"image": b64(image), "detect": false}))
            .await,
    )
    .await
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or("(no JSON error shape)")
}

fn message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or("")
}

/// The answer must be `want` (status and error code); `context` says which case.
fn expect_error((status, body): (u16, Value), want: (u16, &str), context: &str) {
    assert_eq!((status, code(&body)), want, "{context}: {body}");
}

#[tokio::test]
async fn a_jpeg_cut_after_its_exif_thumbnail_is_refused_and_the_whole_one_is_not() {
    let mut app = TestApp::spawn(TestDb::sqlite()).await;
    let jpeg = jpeg_with_exif_thumbnail();
    let (status, body) = embed_whole(&app, &jpeg).await;
    assert_eq!(
        status, 200,
        "the uncut JPEG with a thumbnail embeds: {body}"
    );
    for fraction in [0.5, 0.75, 0.95] {
        // The cut falls after the thumbnail's FF D9 in every case.
        let cut = &jpeg[..(jpeg.len() as f64 * fraction) as usize];
        let answer = embed_whole(&app, cut).await;
        expect_error(
            answer,
            (422, "undecodable_image"),
            &format!("cut at {fraction}"),
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_face_crop_read_whole_must_be_as_large_as_the_smallest_embedded_face() {
    let mut app = TestApp::spawn(TestDb::sqlite()).await;
    let dot = encode(
        &DynamicImage::ImageLuma8(image::GrayImage::from_pixel(1, 1, image::Luma([255]))),
        ImageFormat::Png,
    );
    let (status, body) = json_of(
        app.post_json(
            "/enroll",
            &json!({"identity": "dot", "images": [b64(&dot)], "detect": false}),
        )
        .await,
    )
    .await;
    assert_eq!((status, code(&body)), (422, "face_too_small"), "{body}");
    assert!(message(&body).contains("1×1"), "{body}");
    let (status, body) = embed_whole(&app, &dot).await;
    assert_eq!((status, code(&body)), (422, "face_too_small"), "{body}");
    let (status, body) = embed_whole(&app, &face("s1", 1)).await;
    assert_eq!(status, 200, "a 92×112 crop is large enough: {body}");
    app.stop().await;
}

#[tokio::test]
async fn identity_names_are_nfc_normalised_and_invisible_characters_refused() {
    let (mut app, image) = app_and_face().await;
    for (name, why) in [
        ("\u{202E}ecila", "a right-to-left override"),
        ("ali\u{200B}ce", "a zero-width space"),
        ("alice\u{2067}", "a bidi isolate"),
        ("\u{FEFF}alice", "a byte-order mark"),
        ("ali\u{7}ce", "a control character"),
    ] {
        let body = json!({"identity": name, "images": [image]});
        let answer = json_of(app.post_json("/enroll", &body).await).await;
        expect_error(answer, (400, "invalid_field"), why);
    }
    // "Zoë" decomposed (e + combining diaeresis) is the same identity as "Zoë" composed.
    let (status, body) = json_of(
        app.post_json(
            "/enroll",
            &json!({"identity": "Zoe\u{0308}", "images": [image]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = json_of(app.get_identity("Zo%C3%AB").await).await;
    assert_eq!(status, 200, "found by its composed name: {body}");
    assert_eq!(body["identity"], "Zo\u{00EB}", "{body}");
    app.stop().await;
}

/// `request` gets a 400 naming `field` as given twice.
async fn expect_duplicate(request: reqwest::RequestBuilder, field: &str) {
    let (status, body) = json_of(request.send().await.expect("request sent")).await;
    assert_eq!((status, code(&body)), (400, "malformed_body"), "{body}");
    let named = format!("duplicate field `{field}`");
    assert!(message(&body).contains(&named), "{body}");
}

#[tokio::test]
async fn a_field_given_twice_is_refused_with_a_400_naming_it() {
    let (mut app, image) = app_and_face().await;
    for (body, field) in [
        (
            format!(r#"{{"identity": "alice", "identity": "mallory", "images": ["{image}"]}}"#),
            "identity",
        ),
        (
            format!(
                r#"{{"identity": "alice", "images": ["{image}"], "metadata": {{"role": "a", "role": "b"}}}}"#
            ),
            "role",
        ),
    ] {
        let request = app.client.post(app.url("/enroll"));
        let request = request
            .header("content-type", "application/json")
            .body(body);
        expect_duplicate(request, field).await;
    }
    let form = reqwest::multipart::Form::new()
        .text("identity", "alice")
        .text("identity", "mallory")
        .part(
            "image",
            reqwest::multipart::Part::bytes(face("s1", 1)).file_name("1.png"),
        );
    expect_duplicate(
        app.client.post(app.url("/enroll")).multipart(form),
        "identity",
    )
    .await;
    let (status, body) = json_of(app.get_identity("alice").await).await;
    assert_eq!(status, 404, "nothing was enrolled: {body}");
    app.stop().await;
}

#[tokio::test]
async fn every_oversized_format_gets_413_before_it_is_decoded() {
    let mut app = TestApp::spawn(TestDb::sqlite()).await;
    // One pixel wider than `limits.max_image_side` (4096): small files, every format.
    let wide = DynamicImage::ImageRgb8(image::RgbImage::new(4097, 1));
    for format in [
        ImageFormat::WebP,
        ImageFormat::Bmp,
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::Tiff,
        ImageFormat::Pnm,
    ] {
        let bytes = encode(&wide, format);
        let answer = embed_whole(&app, &bytes).await;
        expect_error(answer, (413, "image_too_large"), &format!("{format:?}"));
    }
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_request_line_or_header_block_gets_414_or_431_in_json() {
    let mut app = TestApp::spawn(TestDb::sqlite()).await;
    let long_query = format!("/healthz?pad={}", "x".repeat(10_000));
    let (status, body) = json_of(app.get(&long_query).await).await;
    assert_eq!((status, code(&body)), (414, "uri_too_long"), "{body}");

    let mut many = app.client.get(app.url("/healthz"));
    for i in 0..80 {
        many = many.header(format!("x-pad-{i}"), "1");
    }
    let (status, body) = json_of(many.send().await.expect("sent")).await;
    assert_eq!((status, code(&body)), (431, "headers_too_large"), "{body}");

    let big = app
        .client
        .get(app.url("/healthz"))
        .header("x-pad", "y".repeat(20_000));
    let (status, body) = json_of(big.send().await.expect("sent")).await;
    assert_eq!((status, code(&body)), (431, "headers_too_large"), "{body}");

    let (status, _) = json_of(app.get("/healthz?ordinary=1").await).await;
    assert_eq!(status, 200);
    app.stop().await;
}
