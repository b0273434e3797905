//! Face detection on real images: database faces (one face each), composites of several
//! of them pasted at known places on a real photograph without faces, that photograph
//! alone, and a real photograph of a person (`tests/fixtures/detect/README.md`).

use std::path::{Path, PathBuf};

use faceprint::data::{ImageFolder, Pick, crop_faces};
use faceprint::detect::{
    DetectConfig, FRAME_HEIGHT, FRAME_WIDTH, FaceBox, FaceDetector, TEMPLATE, box_landmarks,
    crop_face,
};
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

/// Database crops: ORL's frame the head like a photo crop; Yale B's are tighter (the
/// face fills the frame), found by the detector's second look inside a border.
const DATABASE_FACES: &[&str] = &[
    "orl_s6_1.pgm",
    "orl_s7_1.pgm",
    "orl_s10_1.pgm",
    "orl_s11_1.pgm",
    "yale_yaleB06.pgm",
    "yale_yaleB09.pgm",
    "yale_yaleB10.pgm",
];

fn detector() -> FaceDetector {
    FaceDetector::new(DetectConfig::default()).expect("default detector")
}

/// Eyes above the nose above the mouth, each left point left of its right one.
fn assert_plausible_landmarks(face: &FaceBox, what: &str) {
    let p = face
        .landmarks
        .unwrap_or_else(|| panic!("{what}: no landmarks"));
    assert!(p[0].x < p[1].x && p[3].x < p[4].x, "{what}: {p:?}");
    let eyes = (p[0].y + p[1].y) / 2.0;
    let mouth = (p[3].y + p[4].y) / 2.0;
    assert!(eyes < p[2].y && p[2].y < mouth, "{what}: {p:?}");
    // Inside the box, give or take a tenth of it (a box clipped by the image border
    // can cut off a landmark the cascade placed just past the edge).
    let (mx, my) = (face.width as f32 / 10.0, face.height as f32 / 10.0);
    for q in p {
        let inside_x = q.x >= face.x as f32 - mx && q.x <= (face.x + face.width) as f32 + mx;
        let inside_y = q.y >= face.y as f32 - my && q.y <= (face.y + face.height) as f32 + my;
        assert!(
            inside_x && inside_y,
            "{what}: landmark {q:?} outside {face:?}"
        );
    }
}

/// Whether `face` is the face of database crop `name` placed at `(x, y)` with size
/// `w × h`: its centre inside the crop and its side between 0.4 and 1.2 of the crop's
/// width (ORL), or 0.8 and 2 (Yale B: the face fills the crop, and the detector's box
/// of a face reaches from above the brows to below the chin).
fn is_face_of(face: &FaceBox, name: &str, (x, y, w, h): (u32, u32, u32, u32)) -> bool {
    let cx = face.x + face.width / 2;
    let cy = face.y + face.height / 2;
    let side = f64::from(face.width.max(face.height)) / f64::from(w);
    let sides = if name.starts_with("yale") {
        0.8..=2.0
    } else {
        0.4..=1.2
    };
    (x..x + w).contains(&cx) && (y..y + h).contains(&cy) && sides.contains(&side)
}

#[test]
fn every_database_face_is_found_once_with_its_landmarks() {
    let detector = detector();
    for name in DATABASE_FACES {
        let image = fixture(name);
        let faces = detector.detect(&image);
        assert_eq!(faces.len(), 1, "{name}: {faces:?}");
        let placed = (0, 0, image.width(), image.height());
        assert!(
            is_face_of(&faces[0], name, placed),
            "{name}: {:?}",
            faces[0]
        );
        assert!(faces[0].embeddable(detector.config()), "{name}: {faces:?}");
        assert!(
            faces[0].score > 0.7 && faces[0].score <= 1.0,
            "{name}: {faces:?}"
        );
        assert_plausible_landmarks(&faces[0], name);
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
        assert!(
            found.iter().any(|f| is_face_of(f, name, (x, y, w, h))),
            "{what}: no face found for {name} at {x}, {y} ({w}×{h}): {found:?}"
        );
    }
    for face in &found {
        assert_plausible_landmarks(face, what);
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
        landmarks: None,
    };
    assert!(faces[0].iou(&truth) >= 0.5, "{:?} vs {truth:?}", faces[0]);
    assert_plausible_landmarks(&faces[0], "astronaut");
}

/// A tight crop lit from the side and below: P-Net and R-Net never propose it, even
/// inside the second look's border; the tight-crop look (O-Net on the whole image and
/// its mirror) finds it, and only when `tight_crops` is on.
#[test]
fn a_tight_crop_the_cascade_misses_is_found_by_the_tight_crop_look_only() {
    let name = "yale_yaleB06_tight.pgm";
    let image = fixture(name);
    let off = FaceDetector::new(DetectConfig {
        tight_crops: false,
        ..DetectConfig::default()
    })
    .expect("detector");
    assert_eq!(off.detect(&image), Vec::new(), "the cascade alone");
    let faces = detector().detect(&image);
    assert_eq!(faces.len(), 1, "{faces:?}");
    let whole = (0, 0, image.width(), image.height());
    assert!(is_face_of(&faces[0], name, whole), "{:?}", faces[0]);
    assert!(
        faces[0].score >= 0.5 && faces[0].score <= 1.0,
        "{:?}",
        faces[0]
    );
    assert_plausible_landmarks(&faces[0], name);
}

/// The tight-crop look takes crop-shaped images only: a strip more than twice as long
/// as it is wide is never taken whole, even the tight crop above stretched to 3:1
/// (which O-Net, fed the strip squeezed back to a square, would take for a face).
#[test]
fn a_strip_is_not_taken_as_a_tight_crop() {
    let face = fixture("yale_yaleB06_tight.pgm");
    let (w, h) = face.dimensions();
    let strip = imageops::resize(&face, 3 * w, h, imageops::FilterType::Triangle);
    assert_eq!(detector().detect(&strip), Vec::new());
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
fn an_aligned_face_has_its_landmarks_on_the_template() {
    // Detecting again in the aligned crop finds the landmarks where the alignment put
    // them: on the 96×112 template, within a few pixels (the cascade's own scatter on a
    // face that fills its frame; the eyes are 35 pixels apart).
    let detector = detector();
    let names = [
        "orl_s6_1.pgm",
        "orl_s7_1.pgm",
        "astronaut.jpg",
        "lfw_Andre_Agassi_0001.jpg",
        "lfw_Gordon_Brown_0006.jpg",
    ];
    for name in names {
        let image = fixture(name);
        let face = detector.detect(&image)[0];
        let crop = crop_face(&image, &face);
        assert_eq!(crop.dimensions(), (FRAME_WIDTH, FRAME_HEIGHT));
        let again = detector.detect(&crop);
        let points = again
            .first()
            .and_then(|f| f.landmarks)
            .unwrap_or_else(|| panic!("{name}: no face in the aligned crop: {again:?}"));
        let mean_error = points
            .iter()
            .zip(TEMPLATE)
            .map(|(p, [tx, ty])| ((p.x - tx).powi(2) + (p.y - ty).powi(2)).sqrt())
            .sum::<f32>()
            / 5.0;
        assert!(
            mean_error < 7.0,
            "{name}: landmarks {points:?}, mean error {mean_error:.2} px"
        );
    }
}

#[test]
fn orl_crops_frame_a_face_as_the_template_does() {
    // Why `detect=false` on an ORL-style crop and the aligned crop of the same face give
    // the model nearly the same picture: the landmarks, as fractions of the image, sit
    // where the template puts them (medians over all of ORL: within 0.05).
    let detector = detector();
    let errors: Vec<f32> = DATABASE_FACES[..4]
        .iter()
        .map(|name| {
            let image = fixture(name);
            let (w, h) = (image.width() as f32, image.height() as f32);
            let points = detector.detect(&image)[0].landmarks.expect("landmarks");
            points
                .iter()
                .zip(TEMPLATE)
                .map(|(p, [tx, ty])| {
                    let dx = p.x / w - tx / FRAME_WIDTH as f32;
                    let dy = p.y / h - ty / FRAME_HEIGHT as f32;
                    (dx * dx + dy * dy).sqrt()
                })
                .sum::<f32>()
                / 5.0
        })
        .collect();
    let mean = errors.iter().sum::<f32>() / errors.len() as f32;
    // s10 turns his head: his landmarks sit 0.19 off; the others within 0.08.
    assert!(mean < 0.1, "mean error {mean:.3} (per image {errors:?})");
}

#[test]
fn a_crop_is_aligned_on_the_landmarks_detection_gives_it() {
    // `detect=false` and detection must see a face crop alike: its landmarks are those of
    // the face detection finds filling it (ORL's crops), the tight crops' those of the
    // tight-crop look.
    let detector = detector();
    for name in [
        "orl_s6_1.pgm",
        "orl_s7_1.pgm",
        "orl_s10_1.pgm",
        "orl_s11_1.pgm",
        "yale_yaleB06_tight.pgm",
    ] {
        let image = fixture(name);
        let detected = detector.detect(&image)[0].landmarks;
        assert!(detected.is_some(), "{name}: no landmarks");
        assert_eq!(detector.crop_landmarks(&image), detected, "{name}");
    }
    // A small face in a large picture is not the picture's face: O-Net's look at the
    // whole picture decides, and finds no face-shaped landmarks in a face-free border.
    let face = fixture("orl_s6_1.pgm");
    let mut canvas = GrayImage::from_pixel(400, 400, image::Luma([128]));
    imageops::replace(&mut canvas, &face, 154, 144);
    let found = detector.detect(&canvas);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_ne!(detector.crop_landmarks(&canvas), found[0].landmarks);
}

#[test]
fn a_box_without_landmarks_is_cropped_from_typical_ones_repeating_the_border() {
    let image = GrayImage::from_fn(60, 60, |x, y| image::Luma([(x + 2 * y) as u8]));
    let face = FaceBox {
        x: 0,
        y: 0,
        width: 40,
        height: 40,
        score: 0.0,
        landmarks: None,
    };
    let points = box_landmarks(&face);
    assert!(
        points[0].x < points[1].x && points[2].y < points[3].y,
        "{points:?}"
    );
    let crop = crop_face(&image, &face);
    assert_eq!(crop.dimensions(), (FRAME_WIDTH, FRAME_HEIGHT));
    // The template frame reaches above and left of the box: past the image's edge the
    // crop repeats pixel (0, 0).
    assert_eq!(crop.get_pixel(0, 0)[0], 0);
    // No rotation: a row of the crop inside the image increases to the right.
    let row: Vec<u8> = (20..60).map(|x| crop.get_pixel(x, 60)[0]).collect();
    assert!(row.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
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
            "min face above 1000",
            DetectConfig {
                min_face_size: 1001,
                ..DetectConfig::default()
            },
        ),
        (
            "pyramid factor 1",
            DetectConfig {
                pyramid_factor: 1.0,
                ..DetectConfig::default()
            },
        ),
        (
            "pyramid factor NaN",
            DetectConfig {
                pyramid_factor: f32::NAN,
                ..DetectConfig::default()
            },
        ),
        (
            "threshold 0",
            DetectConfig {
                thresholds: [0.6, 0.0, 0.7],
                ..DetectConfig::default()
            },
        ),
        (
            "threshold 1",
            DetectConfig {
                thresholds: [0.6, 0.7, 1.0],
                ..DetectConfig::default()
            },
        ),
        (
            "threshold NaN",
            DetectConfig {
                thresholds: [f32::NAN, 0.7, 0.7],
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
    let (cropped, report) = crop_faces(&folder, &detector, 2, Pick::Largest).expect("crops");
    assert_eq!(cropped.identities(), ["a", "b"]);
    assert_eq!(cropped.labels(), [0, 0, 1, 1]);
    assert_eq!(report.no_face, vec![fixture_path("coffee.jpg"); 2]);
    assert_eq!(report.left_out, vec![("c".to_owned(), 1)]);
    // Each image became the crop the server would embed.
    let face = detector.detect(&fixture("orl_s6_1.pgm"))[0];
    assert_eq!(
        cropped.images()[0],
        crop_face(&fixture("orl_s6_1.pgm"), &face)
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
