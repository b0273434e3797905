//! A seeded mutation fuzzer over the real HTTP boundary: the committed corpus under
//! `tests/fixtures/fuzz/` (a small face in PNG, JPEG, BMP, WebP, PGM and TIFF; JSON and
//! multipart request bodies) is mutated — bytes flipped, set, inserted, repeated, cut —
//! and sent to `/embed`, `/detect`, `/enroll` and `/identify`. Every answer must be a
//! 2xx or a 4xx in the JSON error shape, never a 5xx or a dropped connection, and the
//! server must stay ready.
//!
//! `FUZZ_ITERATIONS` (default 400) and `FUZZ_SEED` (default 1) run it longer or
//! elsewhere; `FUZZ_SECONDS` instead runs cases until that much time has passed (the
//! recorded one-hour run: `FUZZ_SECONDS=3600 cargo test --release --test server_fuzz
//! -- --nocapture`). A failure prints the seed and case number that reproduce it.

mod support;

use std::path::PathBuf;

use base64::Engine;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use support::app::{TestApp, json_of};
use support::db::TestDb;

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("corpus {}: {e}", path.display()))
}

const IMAGES: [&str; 6] = [
    "face.png",
    "face.jpg",
    "face.bmp",
    "face.webp",
    "face.pgm",
    "face.tif",
];

/// Values that tend to break parsers: boundaries of the integer widths headers use.
const INTERESTING: [u8; 8] = [0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF, b'"', b'\\'];

/// One to eight random edits of `input`.
fn mutate(input: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        if out.is_empty() {
            out.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..out.len());
        match rng.random_range(0..7) {
            0 => out[at] ^= 1 << rng.random_range(0..8),
            1 => out[at] = INTERESTING[rng.random_range(0..INTERESTING.len())],
            2 => out[at] = rng.random(),
            3 => {
                let n = rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                out.splice(at..at, bytes);
            }
            4 => out.truncate(at.max(1)),
            5 => {
                // Repeat a run: duplicated chunks and segments.
                let end = (at + rng.random_range(1..=64)).min(out.len());
                let run = out[at..end].to_vec();
                out.splice(at..at, run);
            }
            _ => {
                // A header field set to a huge or zero 32-bit value.
                let end = (at + 4).min(out.len());
                let value: [u8; 4] = if rng.random() { [0xFF; 4] } else { [0; 4] };
                out[at..end].copy_from_slice(&value[..end - at]);
            }
        }
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_images_and_bodies_never_get_a_5xx() {
    let iterations: usize = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let deadline = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(|s| std::time::Instant::now() + std::time::Duration::from_secs(s));
    let seed: u64 = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut app = TestApp::spawn(TestDb::sqlite()).await;
    let images: Vec<Vec<u8>> = IMAGES.iter().map(|n| corpus(n)).collect();
    let bodies = [
        ("/enroll", "application/json", corpus("enroll.json")),
        ("/identify", "application/json", corpus("identify.json")),
        (
            "/enroll",
            "multipart/form-data; boundary=fuzzboundary",
            corpus("enroll.multipart"),
        ),
    ];
    // The unmutated corpus is accepted: the fuzzer starts from valid inputs.
    for (name, image) in IMAGES.iter().zip(&images) {
        let (status, body) = json_of(
            app.post_json("/embed", &json!({"image": b64(image), "detect": false}))
                .await,
        )
        .await;
        assert_eq!(status, 200, "corpus {name}: {body}");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut failures = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    let mut cases = 0;
    for case in 0.. {
        let done = match deadline {
            Some(deadline) => std::time::Instant::now() >= deadline,
            None => case >= iterations,
        };
        if done {
            break;
        }
        cases += 1;
        let (what, response) = if rng.random_bool(0.6) {
            let i = rng.random_range(0..images.len());
            let image = mutate(&images[i], &mut rng);
            let route = if rng.random_bool(0.8) {
                "/embed"
            } else {
                "/detect"
            };
            let body = json!({"image": b64(&image), "detect": route == "/detect"});
            (
                format!("{} to {route}", IMAGES[i]),
                app.client.post(app.url(route)).json(&body).send().await,
            )
        } else {
            let (route, content_type, body) = &bodies[rng.random_range(0..bodies.len())];
            let body = mutate(body, &mut rng);
            (
                format!("{content_type} body to {route}"),
                app.client
                    .post(app.url(route))
                    .header("content-type", *content_type)
                    .body(body)
                    .send()
                    .await,
            )
        };
        let Ok(response) = response else {
            failures.push(format!("case {case} ({what}): the connection failed"));
            continue;
        };
        let (status, body) = json_of(response).await;
        *statuses.entry(status).or_insert(0) += 1;
        let shaped = body["error"]["code"].is_string() && body["error"]["message"].is_string();
        if status >= 500 || (status >= 400 && !shaped) {
            failures.push(format!("case {case} ({what}): {status} {body}"));
        }
    }
    eprintln!("seed {seed}, {cases} cases, statuses {statuses:?}");
    assert!(
        failures.is_empty(),
        "seed {seed}: {} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    let (status, body) = json_of(app.get("/readyz").await).await;
    assert_eq!(status, 200, "still ready after the fuzzing: {body}");
    app.stop().await;
}
