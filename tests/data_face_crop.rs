//! `face_crop`: which face of a photograph is cut out — the largest (the server's rule)
//! or the one nearest the centre (LFW's framing) — on ORL faces pasted on a photograph
//! without faces (`tests/fixtures/detect/README.md`).

use std::path::Path;

use faceprint::data::{Pick, face_crop};
use faceprint::detect::{DetectConfig, FaceDetector, crop_face};
use image::{GrayImage, imageops};

fn fixture(name: &str) -> GrayImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/detect")
        .join(name);
    image::open(&path)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
        .to_luma8()
}

#[test]
fn the_centre_pick_cuts_the_small_centred_face_and_the_largest_pick_the_big_corner_one() {
    let (w, h) = (640, 480);
    let mut canvas = imageops::resize(&fixture("coffee.jpg"), w, h, imageops::FilterType::Triangle);
    let big = fixture("orl_s6_1.pgm");
    let big = imageops::resize(
        &big,
        big.width() * 2,
        big.height() * 2,
        imageops::FilterType::Triangle,
    );
    imageops::replace(&mut canvas, &big, 16, 16);
    let small = fixture("orl_s11_1.pgm");
    let (sx, sy) = (w / 2 - small.width() / 2, h / 2 - small.height() / 2);
    imageops::replace(&mut canvas, &small, i64::from(sx), i64::from(sy));

    let detector = FaceDetector::new(DetectConfig::default()).expect("default detector");
    let faces = detector.detect(&canvas);
    assert_eq!(faces.len(), 2, "{faces:?}");
    let largest = face_crop(&detector, &canvas, Pick::Largest).expect("a face");
    let centred = face_crop(&detector, &canvas, Pick::NearestCentre).expect("a face");
    // Faces come largest first: the big corner face, then the small centred one. Each
    // pick is that face's aligned crop, and the two differ.
    assert!(faces[0].area() > faces[1].area(), "{faces:?}");
    assert_eq!(largest, crop_face(&canvas, &faces[0]));
    assert_eq!(centred, crop_face(&canvas, &faces[1]));
    assert_ne!(largest, centred);
    assert_eq!(Pick::default(), Pick::Largest);
}

#[test]
fn a_photograph_without_a_face_gives_no_crop_either_way() {
    let detector = FaceDetector::new(DetectConfig::default()).expect("default detector");
    let coffee = fixture("coffee.jpg");
    for pick in [Pick::Largest, Pick::NearestCentre] {
        assert!(face_crop(&detector, &coffee, pick).is_none(), "{pick:?}");
    }
}
