//! Face detection on real images: database faces (one face each), composites of several
//! of them pasted at known places on a real photograph without faces, that photograph
//! alone, and a real photograph of a person (`tests/fixtures/detect/README.md`).

use std::path::{Path, PathBuf};

use faceprint::data::{ImageFolder, crop_faces};
use faceprint::detect::{DetectConfig, FaceBox, FaceDetector, crop_face, crop_rect};
use faceprint::train::cli::TrainArgs;
use image::{GrayImage, imageops};

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/detect")
        .join(name)
}

fn fixture(name: &str) -> GrayImage {
    let path = fixture_path(name);
    image::open(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
        .to_luma8()
}

/// ORL crops, in which the detector finds the face on its own. Yale B crops are
/// tighter than the detector's box (the face fills the frame) and are found once they
/// are part of a larger picture: the composites below.
const ORL_FACES: &[&str] = &[
    "orl_s6_1.pgm",
    "orl_s7_1.pgm",
    "orl_s10_1.pgm",
    "orl_s11_1.pgm",
];

fn detector() -> FaceDetector {
    FaceDetector::new(DetectConfig::default()).expect("default detector")
}

/// How a database frames a face, from `examples/detect-calibrate.rs` (medians over the
/// database): frame width and height in box sizes, and how far the frame's centre lies
/// below the box's (in box sizes).
struct Framing {
    width: f64,
    height: f64,
    shift_y: f64,
}

const ORL: Framing = Framing {
    width: 1.095,
    height: 1.333,
    shift_y: -0.082,
};
const YALE_B: Framing = Framing {
    width: 0.669,
    height: 0.765,
    shift_y: 0.06,
};

fn framing(name: &str) -> &'static Framing {
    if name.starts_with("yale") {
        &YALE_B
    } else {
        &ORL
    }
}

/// Where the face of a database crop of `framing` placed at `(x, y)` with size `w × h`
/// is: independent of what the detector finds in this particular image.
fn expected_face(x: u32, y: u32, w: u32, h: u32, framing: &Framing) -> FaceBox {
    let side = (f64::from(w) / framing.width + f64::from(h) / framing.height) / 2.0;
    let cx = f64::from(x) + f64::from(w) / 2.0;
    let cy = f64::from(y) + f64::from(h) / 2.0 - framing.shift_y * side;
    FaceBox {
        x: (cx - side / 2.0).round().max(0.0) as u32,
        y: (cy - side / 2.0).round().max(0.0) as u32,
        width: side.round() as u32,
        height: side.round() as u32,
        score: 0.0,
    }
}

#[test]
fn every_orl_face_is_found_once_where_its_face_is() {
    let detector = detector();
    for name in ORL_FACES {
        let image = fixture(name);
        let faces = detector.detect(&image);
        assert_eq!(faces.len(), 1, "{name}: {faces:?}");
        let expected = expected_face(0, 0, image.width(), image.height(), &ORL);
        let iou = faces[0].iou(&expected);
        assert!(
            iou >= 0.5,
            "{name}: {:?} vs {expected:?}: IoU {iou:.2}",
            faces[0]
        );
        assert!(faces[0].embeddable(detector.config()), "{name}: {faces:?}");
        assert!(faces[0].score >= detector.config().score_threshold);
    }
}

/// A fixture pasted into a composite: its name, and x, y, width, height.
type Placed = (&'static str, u32, u32, u32, u32);

/// The coffee photograph, resized to `w × h`, with `faces` (fixture name, scale) pasted
/// left to right, top to bottom; returns the canvas and where each face was put, with
/// the fixture's name.
fn composite(w: u32, h: u32, faces: &[(&'static str, u32)]) -> (GrayImage, Vec<Placed>) {
    let mut canvas = imageops::resize(&fixture("coffee.jpg"), w, h, imageops::FilterType::Triangle);
    let (mut x, mut y, mut row_h) = (16u32, 16u32, 0u32);
    let mut placed = Vec::new();
    for &(name, scale) in faces {
        let face = fixture(name);
        let face = imageops::resize(
            &face,
            face.width() * scale,
            face.height() * scale,
            imageops::FilterType::Triangle,
        );
        if x + face.width() > w {
            x = 16;
            y += row_h + 24;
            row_h = 0;
        }
        assert!(y + face.height() <= h, "composite too small for its faces");
        imageops::replace(&mut canvas, &face, i64::from(x), i64::from(y));
        placed.push((name, x, y, face.width(), face.height()));
        x += face.width() + 40;
        row_h = row_h.max(face.height());
    }
    (canvas, placed)
}

fn assert_finds_exactly(canvas: &GrayImage, placed: &[(&str, u32, u32, u32, u32)], what: &str) {
    let found = detector().detect(canvas);
    assert_eq!(found.len(), placed.len(), "{what}: found {found:?}");
    for &(name, x, y, w, h) in placed {
        let expected = expected_face(x, y, w, h, framing(name));
        let best = found.iter().map(|f| f.iou(&expected)).fold(0.0, f64::max);
        assert!(
            best >= 0.5,
            "{what}: no box overlaps {expected:?} by IoU ≥ 0.5: {found:?}"
        );
    }
    let areas: Vec<u64> = found.iter().map(FaceBox::area).collect();
    assert!(
        areas.windows(2).all(|a| a[0] >= a[1]),
        "largest first: {found:?}"
    );
}

#[test]
fn a_640x480_composite_of_five_faces_gives_every_face_at_its_place() {
    let (canvas, placed) = composite(
        640,
        480,
        &[
            ("orl_s6_1.pgm", 1),
            ("orl_s7_1.pgm", 1),
            ("orl_s10_1.pgm", 1),
            ("orl_s11_1.pgm", 1),
            ("yale_yaleB06.pgm", 1),
        ],
    );
    assert_finds_exactly(&canvas, &placed, "640×480, five faces");
}

#[test]
fn faces_of_different_sizes_are_all_found_largest_first() {
    let (canvas, placed) = composite(
        900,
        560,
        &[
            ("yale_yaleB09.pgm", 2),
            ("orl_s6_1.pgm", 2),
            ("yale_yaleB10.pgm", 1),
            ("orl_s11_1.pgm", 1),
        ],
    );
    assert_finds_exactly(&canvas, &placed, "900×560, two sizes");
}

#[test]
fn a_photograph_without_faces_gives_none() {
    assert_eq!(detector().detect(&fixture("coffee.jpg")), Vec::new());
}

#[test]
fn the_astronaut_photograph_gives_her_face() {
    let faces = detector().detect(&fixture("astronaut.jpg"));
    assert_eq!(faces.len(), 1, "{faces:?}");
    // Eileen Collins' face in the 512×512 picture, read off the image by eye on a 10-pixel
    // grid: brows at y ≈ 90, eyes at y ≈ 100, chin at y ≈ 172, cheeks from x ≈ 177 to 265.
    let truth = FaceBox {
        x: 175,
        y: 85,
        width: 90,
        height: 90,
        score: 0.0,
    };
    assert!(faces[0].iou(&truth) >= 0.5, "{:?} vs {truth:?}", faces[0]);
}

#[test]
fn images_too_small_for_the_detector_give_no_face_and_no_panic() {
    let detector = detector();
    for side in [
        1, 2, 19, 20, 23, 24, 25, 30, 39, 40, 41, 49, 50, 51, 63, 64, 79, 80,
    ] {
        for other in [1, 40, 50, 97] {
            let image = GrayImage::from_pixel(side, other, image::Luma([128]));
            assert_eq!(detector.detect(&image), Vec::new(), "{side}×{other}");
            let image = GrayImage::from_pixel(other, side, image::Luma([128]));
            assert_eq!(detector.detect(&image), Vec::new(), "{other}×{side}");
        }
    }
}

#[test]
fn a_crop_frames_an_orl_face_like_the_database_does() {
    let detector = detector();
    for name in ORL_FACES {
        let image = fixture(name);
        let face = detector.detect(&image)[0];
        let rect = crop_rect(&face, detector.config());
        let (w, h) = (f64::from(image.width()), f64::from(image.height()));
        // The default crop follows ORL's framing: it nearly reproduces the original frame.
        let frame = FaceBox {
            x: 0,
            y: 0,
            width: w as u32,
            height: h as u32,
            score: 0.0,
        };
        let crop = FaceBox {
            x: rect.x.max(0) as u32,
            y: rect.y.max(0) as u32,
            width: rect.width,
            height: rect.height,
            score: 0.0,
        };
        assert!(frame.iou(&crop) >= 0.7, "{name}: {rect:?} vs {w}×{h}");
        let crop = crop_face(&image, &face, detector.config());
        assert_eq!((crop.width(), crop.height()), (rect.width, rect.height));
    }
}

#[test]
fn a_crop_past_the_edge_repeats_the_border_pixels() {
    let image = GrayImage::from_fn(60, 60, |x, y| image::Luma([(x + 2 * y) as u8]));
    let face = FaceBox {
        x: 0,
        y: 0,
        width: 40,
        height: 40,
        score: 3.0,
    };
    let config = DetectConfig {
        crop_width: 1.5,
        crop_height: 1.5,
        crop_shift_y: 0.0,
        ..DetectConfig::default()
    };
    let rect = crop_rect(&face, &config);
    assert!(rect.x < 0 && rect.y < 0, "{rect:?}");
    let crop = crop_face(&image, &face, &config);
    // Top-left of the crop lies outside the image: it repeats pixel (0, 0).
    assert_eq!(crop.get_pixel(0, 0)[0], 0);
    let inside_x = (-rect.x) as u32 + 5;
    let inside_y = (-rect.y) as u32 + 7;
    assert_eq!(crop.get_pixel(inside_x, inside_y)[0], (5 + 2 * 7) as u8);
}

#[test]
fn invalid_detector_settings_are_refused() {
    let cases: Vec<(&str, DetectConfig)> = vec![
        (
            "min face below 20",
            DetectConfig {
                min_face_size: 19,
                ..DetectConfig::default()
            },
        ),
        (
            "zero score",
            DetectConfig {
                score_threshold: 0.0,
                ..DetectConfig::default()
            },
        ),
        (
            "NaN score",
            DetectConfig {
                score_threshold: f64::NAN,
                ..DetectConfig::default()
            },
        ),
        (
            "pyramid 1",
            DetectConfig {
                pyramid_scale: 1.0,
                ..DetectConfig::default()
            },
        ),
        (
            "step 0",
            DetectConfig {
                slide_step: 0,
                ..DetectConfig::default()
            },
        ),
        (
            "crop 0",
            DetectConfig {
                crop_width: 0.0,
                ..DetectConfig::default()
            },
        ),
        (
            "shift NaN",
            DetectConfig {
                crop_shift_y: f32::NAN,
                ..DetectConfig::default()
            },
        ),
    ];
    for (what, config) in cases {
        assert!(FaceDetector::new(config).is_err(), "{what} accepted");
    }
}

#[test]
fn training_crops_keep_images_with_a_face_and_list_the_others() {
    let names = [
        ("a", "orl_s6_1.pgm"),
        ("a", "orl_s7_1.pgm"),
        ("b", "orl_s10_1.pgm"),
        ("b", "orl_s11_1.pgm"),
        ("b", "coffee.jpg"),
        ("c", "orl_s10_1.pgm"),
        ("c", "coffee.jpg"),
    ];
    let folder = ImageFolder::from_parts(
        PathBuf::from("fixtures"),
        vec!["a".into(), "b".into(), "c".into()],
        names.iter().map(|(_, n)| fixture_path(n)).collect(),
        names
            .iter()
            .map(|(id, _)| (id.as_bytes()[0] - b'a') as usize)
            .collect(),
        names.iter().map(|(_, n)| fixture(n)).collect(),
    )
    .expect("folder");
    let detector = detector();
    let (cropped, report) = crop_faces(&folder, &detector, 2).expect("crops");
    assert_eq!(cropped.identities(), ["a", "b"]);
    assert_eq!(cropped.labels(), [0, 0, 1, 1]);
    assert_eq!(report.no_face, vec![fixture_path("coffee.jpg"); 2]);
    assert_eq!(report.left_out, vec![("c".to_owned(), 1)]);
    // Each image became the crop the server would embed.
    let face = detector.detect(&fixture("orl_s6_1.pgm"))[0];
    assert_eq!(
        cropped.images()[0],
        crop_face(&fixture("orl_s6_1.pgm"), &face, detector.config())
    );
}

#[test]
fn train_embed_detect_is_off_by_default_and_on_by_flag_or_file() {
    use clap::Parser;
    let parse = |args: &[&str]| {
        TrainArgs::try_parse_from(std::iter::once("train-embed").chain(args.iter().copied()))
            .expect("arguments")
            .to_config()
            .expect("config")
    };
    assert!(!parse(&[]).detect);
    assert!(parse(&["--detect"]).detect);
    assert!(!parse(&["--detect", "false"]).detect);
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("train.toml");
    std::fs::write(&file, "detect = true\n[detector]\nmin_embed_size = 40\n").expect("write");
    let cfg = parse(&["--config", file.to_str().expect("utf-8 path")]);
    assert!(cfg.detect);
    assert_eq!(cfg.detector.min_embed_size, 40);
}
