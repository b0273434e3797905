//! Face detection time for a 640×480 and a 1920×1080 photograph-like image: the
//! real no-face photograph of the fixtures (coffee) scaled to size, with five database
//! faces pasted on it at a size typical of each (a webcam frame, a group photo).
//!
//! Run: `cargo bench --bench detect`. `FACEPRINT_BENCH_SECONDS` sets the time per
//! figure (default 5). Prints milliseconds per image (median, min, max over the runs)
//! and the faces found, at `min_face_size` 20, 40 (the default) and 80: the
//! detector's cost falls with the square of the smallest face it looks for. Last, the
//! landmarks of a face crop sent with `detect=false`, beside O-Net alone on it.

use std::path::Path;
use std::time::Duration;

mod support;

use faceprint::detect::{DetectConfig, FaceDetector};
use image::{GrayImage, imageops};

fn fixture(name: &str) -> GrayImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/detect")
        .join(name);
    match image::open(&path) {
        Ok(image) => image.to_luma8(),
        Err(e) => panic!("fixture {}: {e}", path.display()),
    }
}

/// The coffee photograph at `w × h` with five faces `scale` times their stored size.
fn scene(w: u32, h: u32, scale: u32) -> GrayImage {
    let mut canvas = imageops::resize(&fixture("coffee.jpg"), w, h, imageops::FilterType::Triangle);
    let faces = [
        "orl_s6_1.pgm",
        "orl_s7_1.pgm",
        "orl_s10_1.pgm",
        "orl_s11_1.pgm",
        "yale_yaleB06.pgm",
    ];
    let mut x = 20;
    for name in faces {
        let face = fixture(name);
        let face = imageops::resize(
            &face,
            face.width() * scale,
            face.height() * scale,
            imageops::FilterType::Triangle,
        );
        imageops::replace(&mut canvas, &face, x, i64::from(h / 3));
        x += i64::from(face.width()) + 20;
    }
    canvas
}

fn main() {
    let budget = support::budget();
    println!(
        "threads: {}, load average: {}",
        rayon::current_num_threads(),
        support::load_average()
    );
    let scenes = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-scenes");
    for (w, h, scale) in [(640, 480, 1), (1920, 1080, 3)] {
        let image = scene(w, h, scale);
        // The same pictures for the peers of scripts/bench_detect.sh.
        if std::fs::create_dir_all(&scenes).is_ok() {
            let _ = image.save(scenes.join(format!("{w}x{h}.png")));
        }
        for min_face_size in [20, 40, 80] {
            let config = DetectConfig {
                min_face_size,
                ..DetectConfig::default()
            };
            let detector = match FaceDetector::new(config) {
                Ok(d) => d,
                Err(e) => panic!("detector: {e}"),
            };
            time(
                &detector,
                &image,
                budget,
                &format!("{w}x{h} min_face_size {min_face_size}"),
            );
        }
    }
    crop_landmarks(budget);
}

/// Prints the time per detection of `image`.
fn time(detector: &FaceDetector, image: &GrayImage, budget: Duration, what: &str) {
    let faces = detector.detect(image).len();
    let summary = median_ms(budget, || {
        std::hint::black_box(detector.detect(std::hint::black_box(image)));
    });
    println!("detect {what}: {summary}, {faces} faces found");
}

/// The landmarks of a face crop sent with `detect=false`
/// ([`FaceDetector::crop_landmarks`]: detection first) beside O-Net alone on the whole
/// crop ([`FaceDetector::whole_crop`], what they were before detection came first).
fn crop_landmarks(budget: Duration) {
    let detector = match FaceDetector::new(DetectConfig::default()) {
        Ok(d) => d,
        Err(e) => panic!("detector: {e}"),
    };
    for name in ["orl_s6_1.pgm", "yale_yaleB06_tight.pgm"] {
        let crop = fixture(name);
        let landmarks = median_ms(budget, || {
            std::hint::black_box(detector.crop_landmarks(std::hint::black_box(&crop)));
        });
        let onet = median_ms(budget, || {
            std::hint::black_box(detector.whole_crop(std::hint::black_box(&crop)));
        });
        println!("crop landmarks {name}: {landmarks}; O-Net on the whole crop: {onet}");
    }
}

/// "m ms median (min–max, n runs)" of `run`, repeated for `budget` and at least 5 times.
fn median_ms(budget: Duration, run: impl FnMut()) -> String {
    let times = support::times_ms(budget, run);
    format!(
        "{:.2} ms median ({:.2}–{:.2}, {} runs)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    )
}
