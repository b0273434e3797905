//! The MTCNN cascade against facenet-pytorch's own MTCNN on the committed photographs
//! and crops (`tests/fixtures/detect/mtcnn_reference.json`, made by
//! `scripts/mtcnn_reference.py` on the same grey images): the same faces, boxes with
//! IoU ≥ 0.9, landmarks within 2 pixels, probabilities within 0.01.

use std::collections::BTreeMap;
use std::path::PathBuf;

use faceprint::detect::mtcnn::Detection;
use faceprint::detect::{DetectConfig, FaceDetector};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Reference {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    prob: f32,
    landmarks: [[f32; 2]; 5],
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/detect")
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// Each reference face matched to the detection with the highest IoU; failures listed.
fn compare(file: &str, size: &str, ours: &[Detection], refs: &[Reference]) -> Vec<String> {
    let mut problems = Vec::new();
    if ours.len() != refs.len() {
        problems.push(format!(
            "{file} @ {size}: {} faces, reference {}: ours {:?}",
            ours.len(),
            refs.len(),
            ours.iter().map(|d| d.bbox).collect::<Vec<_>>()
        ));
    }
    for r in refs {
        let Some(best) = ours
            .iter()
            .max_by(|a, b| iou(&a.bbox, &r.bbox).total_cmp(&iou(&b.bbox, &r.bbox)))
        else {
            problems.push(format!(
                "{file} @ {size}: no face where the reference has {:?}",
                r.bbox
            ));
            continue;
        };
        let overlap = iou(&best.bbox, &r.bbox);
        let worst_point = best
            .landmarks
            .iter()
            .zip(&r.landmarks)
            .map(|(a, b)| ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt())
            .fold(0.0f32, f32::max);
        if overlap < 0.9 || worst_point > 2.0 || (best.score - r.prob).abs() > 0.01 {
            problems.push(format!(
                "{file} @ {size}: box {:?} vs {:?} (IoU {overlap:.3}), landmarks off by up to \
                 {worst_point:.2} px, probability {} vs {}",
                best.bbox, r.bbox, best.score, r.prob
            ));
        }
    }
    problems
}

#[test]
fn mtcnn_finds_the_faces_facenet_pytorch_finds_with_the_same_boxes_and_landmarks() {
    let text = std::fs::read_to_string(fixtures().join("mtcnn_reference.json")).expect("reference");
    let reference: BTreeMap<String, BTreeMap<String, Vec<Reference>>> =
        serde_json::from_str(&text).expect("reference JSON");
    assert!(reference.len() >= 10, "expected every fixture image");
    let mut problems = Vec::new();
    let mut faces = 0;
    for (file, per_size) in &reference {
        let image = image::open(fixtures().join(file))
            .expect("fixture")
            .to_luma8();
        for (size, refs) in per_size {
            let config = DetectConfig {
                min_face_size: size.parse().expect("size"),
                ..DetectConfig::default()
            };
            let detector = FaceDetector::new(config).expect("detector");
            let ours = detector.detections(&image);
            faces += refs.len();
            problems.extend(compare(file, size, &ours, refs));
        }
    }
    assert!(
        faces >= 20,
        "the reference should hold faces to compare, got {faces}"
    );
    assert!(
        problems.is_empty(),
        "{} mismatches:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
