//! The model file: round trip, inference, and every way a file can be wrong.

use std::collections::HashMap;
use std::path::Path;

use faceprint::data::Preprocessing;
use faceprint::data::preprocess::Normalisation;
use faceprint::embedding::Embedding;
use faceprint::model::arch::{ArchSpec, ResnetActivation, ResnetPooling, ResnetSpec};
use faceprint::model::lbp::{LbpBranch, LbpScale, LbpSpec, describe};
use faceprint::model::{
    Embedder, FORMAT_VERSION, METADATA_KEY, ModelError, ModelFile, ModelMeta, TailBucket,
    TailModel, Thresholds, UpperBound,
};
use faceprint::nn::sequential::Sequential;
use faceprint::nn::{Mode, Tensor};
use image::GrayImage;
use safetensors::tensor::{Dtype, TensorView};

/// A small CNN on 28×24 inputs, so the tests run in milliseconds.
fn small_arch() -> ArchSpec {
    ArchSpec::Cnn {
        input: [28, 24],
        widths: vec![4, 8],
        fc: 16,
        embedding_dim: 8,
        dropout: 0.5,
    }
}

fn small_model(seed: u64) -> ModelFile {
    small_model_with(seed, false)
}

fn small_model_with(seed: u64, flip_average: bool) -> ModelFile {
    let arch = small_arch();
    let net = arch.build(seed).expect("the small CNN builds");
    model_of(arch, net, flip_average)
}

fn model_of(arch: ArchSpec, net: Sequential, flip_average: bool) -> ModelFile {
    let meta = ModelMeta {
        format: 0,
        embedding_dim: arch.embedding_dim(),
        architecture: arch,
        preprocessing: Preprocessing {
            height: 28,
            width: 24,
            normalisation: Normalisation::PerImage,
        },
        loss: serde_json::json!({"type": "triplet", "margin": 0.2}),
        training: serde_json::json!({"epochs": 0}),
        thresholds: Thresholds {
            far_0_1pct: 0.9,
            far_1pct: 0.8,
            far_10pct: 0.6,
        },
        tail: None,
        flip_average,
        detector: None,
        frame: Default::default(),
        lbp: None,
        version: String::new(),
    };
    ModelFile::new(meta, net)
}

fn fixture_faces() -> Vec<GrayImage> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faces");
    [
        "orl_s1/1.pgm",
        "orl_s1/5.pgm",
        "orl_s2/1.pgm",
        "yaleb_B02",
        "yaleb_B03",
    ]
    .iter()
    .map(|rel| {
        let mut path = root.join(rel);
        if path.is_dir() {
            let mut files: Vec<_> = std::fs::read_dir(&path)
                .expect("fixture folder")
                .map(|e| e.expect("entry").path())
                .collect();
            files.sort();
            path = files.remove(0);
        }
        image::open(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .into_luma8()
    })
    .collect()
}

#[test]
fn a_saved_model_loads_back_with_the_same_version_and_embeddings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.safetensors");
    let model = small_model(7);
    model.save(&path).expect("save");
    let version = model.meta.version.clone();
    assert_eq!(version.len(), 16, "version is 16 hex digits: {version}");

    let original = Embedder::new(model);
    let loaded = Embedder::load(&path).expect("load");
    assert_eq!(loaded.version(), version);
    assert_eq!(loaded.dim(), 8);
    assert_eq!(loaded.thresholds().far_1pct, 0.8);

    let faces = fixture_faces();
    let a = original.embed(&faces).expect("embed");
    let b = loaded.embed(&faces).expect("embed");
    assert_eq!(
        a, b,
        "a loaded model must embed bit for bit like the saved one"
    );
}

/// A descriptor branch fitted on the fixture faces (each its own identity, twice: the
/// face and its mirror image), small enough for a test.
fn small_lbp(faces: &[GrayImage]) -> LbpBranch {
    let spec = LbpSpec {
        height: 28,
        width: 24,
        scales: vec![LbpScale {
            radius: 1.0,
            cell: 8,
            resize: 1.0,
        }],
        weight: 0.6,
        dim: 3,
    };
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for (i, face) in faces.iter().enumerate() {
        for img in [face.clone(), image::imageops::flip_horizontal(face)] {
            rows.extend(describe(&img, &spec));
            labels.push(i);
        }
    }
    let x = ndarray::Array2::from_shape_vec((labels.len(), spec.raw_dim()), rows).unwrap();
    LbpBranch::fit(spec, x.view(), &labels, 6, 100).expect("fit")
}

#[test]
fn a_model_with_a_descriptor_branch_round_trips_and_embeds_the_fused_vector() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.safetensors");
    let faces = fixture_faces();
    let plain = small_model(7);
    let plain_version = plain.meta.version.clone();
    assert_eq!(
        plain.meta.format, 1,
        "a file without the branch stays format 1"
    );
    let fused = small_model(7).with_lbp(small_lbp(&faces));
    assert_eq!(fused.meta.format, 2);
    assert_ne!(
        fused.meta.version, plain_version,
        "the branch is part of the version"
    );
    fused.save(&path).expect("save");

    let loaded = Embedder::load(&path).expect("load");
    assert_eq!(loaded.version(), fused.meta.version);
    assert_eq!(loaded.dim(), 8 + 3);
    let a = loaded.embed(&faces).expect("embed");
    let b = Embedder::new(fused).embed(&faces).expect("embed");
    assert_eq!(
        a, b,
        "the loaded branch embeds bit for bit like the saved one"
    );
    let net_only = Embedder::new(small_model(7)).embed(&faces).expect("embed");
    for (fused, net) in a.iter().zip(&net_only) {
        assert_eq!(fused.len(), 11);
        let norm: f32 = fused.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4, "unit length: {norm}");
        // The first part is the network's embedding scaled by √w.
        for (f, n) in fused.iter().zip(net) {
            assert!((f - 0.6f32.sqrt() * n).abs() < 1e-6);
        }
        let tail: f32 = fused[8..].iter().map(|v| v * v).sum();
        assert!(
            (tail - 0.4).abs() < 1e-4,
            "the branch carries 1 − w: {tail}"
        );
    }
}

#[test]
fn a_descriptor_branch_with_a_wrong_shape_is_refused() {
    let faces = fixture_faces();
    let mut fused = small_model(7).with_lbp(small_lbp(&faces));
    // Metadata that promises a longer projection than the tensors hold.
    fused.meta.lbp.as_mut().unwrap().dim = 4;
    let bytes = fused.to_bytes().expect("bytes");
    let err = ModelFile::from_bytes(&bytes).unwrap_err().to_string();
    assert!(err.contains("lbp.proj"), "{err}");
}

#[test]
fn a_resnet_model_saves_and_loads_its_nested_tensors_and_embeds_the_same() {
    let arch = ArchSpec::Resnet(ResnetSpec {
        input: [28, 24],
        stem: 4,
        stages: vec![(4, 1), (8, 1)],
        activation: ResnetActivation::Prelu,
        pooling: ResnetPooling::Flatten,
        embedding_dim: 8,
        dropout: 0.0,
    });
    let mut net = arch.build(5).expect("the small ResNet builds");
    // One training forward moves the running statistics off their initial values, so
    // loading them is tested too.
    let x = Tensor::from_shape_fn(vec![4, 1, 28, 24], |i| {
        ((i[0] * 7 + i[2] * 3 + i[3]) % 11) as f32 / 11.0
    });
    net.forward(&x, Mode::Train).expect("forward");
    let model = model_of(arch.clone(), net, false);
    let names: Vec<String> = model
        .net
        .named_tensors()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    for name in [
        "4.residual.shortcut.0.conv2d.weight",
        "4.residual.shortcut.1.batch_norm.running_var",
        "3.residual.activation.slope",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("resnet.safetensors");
    model.save(&path).expect("save");
    let loaded = ModelFile::load(&path).expect("load");
    assert_eq!(loaded.meta.architecture, arch);
    assert_eq!(loaded.meta.version, model.meta.version);
    for ((n1, t1), (n2, t2)) in model
        .net
        .named_tensors()
        .into_iter()
        .zip(loaded.net.named_tensors())
    {
        assert_eq!((n1.as_str(), t1), (n2.as_str(), t2));
    }
    let faces = fixture_faces();
    let a = Embedder::new(model).embed(&faces).expect("embed");
    let b = Embedder::new(loaded).embed(&faces).expect("embed");
    assert_eq!(
        a, b,
        "a loaded ResNet must embed bit for bit like the saved one"
    );
}

#[test]
fn different_weights_get_different_versions() {
    assert_ne!(small_model(1).meta.version, small_model(2).meta.version);
}

#[test]
fn embeddings_are_unit_length_and_do_not_depend_on_the_batch() {
    let embedder = Embedder::new(small_model(3));
    let faces = fixture_faces();
    let batch = embedder.embed(&faces).expect("embed");
    assert_eq!(batch.len(), faces.len());
    for (i, face) in faces.iter().enumerate() {
        let single = embedder
            .embed(std::slice::from_ref(face))
            .expect("embed one");
        let norm: f32 = single[0].iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "image {i}: norm {norm}");
        let diff = single[0]
            .iter()
            .zip(&batch[i])
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "image {i}: batch and single differ by {diff}");
    }
    // Different people should not all map to one point.
    let spread = batch[0]
        .iter()
        .zip(&batch[2])
        .map(|(x, y)| (x - y).abs())
        .sum::<f32>();
    assert!(spread > 1e-3, "two different faces got the same embedding");
}

/// Threads embedding at the same time share forward passes: each still gets its own
/// images' embeddings, in its own order, equal to what it gets alone.
#[test]
fn threads_embedding_at_once_each_get_their_own_embeddings() {
    let embedder = Embedder::new(small_model(5));
    let faces = fixture_faces();
    let alone: Vec<Embedding> = faces
        .iter()
        .map(|f| embedder.embed(std::slice::from_ref(f)).expect("embed")[0].clone())
        .collect();
    std::thread::scope(|s| {
        for t in 0..8 {
            let (embedder, faces, alone) = (&embedder, &faces, &alone);
            s.spawn(move || {
                for round in 0..20 {
                    // Each thread asks for a different subset, in a different order.
                    let picks: Vec<usize> = (0..1 + (t + round) % 3)
                        .map(|i| (t * 7 + round * 3 + i * 5) % faces.len())
                        .collect();
                    let images: Vec<_> = picks.iter().map(|&i| faces[i].clone()).collect();
                    let got = embedder.embed(&images).expect("embed");
                    assert_eq!(got.len(), picks.len());
                    for (g, &i) in got.iter().zip(&picks) {
                        let diff = g
                            .iter()
                            .zip(&alone[i])
                            .map(|(x, y)| (x - y).abs())
                            .fold(0.0f32, f32::max);
                        assert!(diff < 1e-5, "thread {t} round {round} image {i}: {diff}");
                    }
                }
            });
        }
    });
}

type Owned = Vec<(String, Vec<usize>, Vec<u8>)>;

/// A model file's tensors as owned (name, shape, bytes) and its header metadata.
fn take_apart(bytes: &[u8]) -> (Owned, Option<HashMap<String, String>>) {
    let file = safetensors::SafeTensors::deserialize(bytes).expect("valid file");
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).expect("header");
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.shape().to_vec(), view.data().to_vec()))
        .collect();
    (tensors, header.metadata().clone())
}

fn put_together(tensors: &Owned, metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d).expect("view"),
            )
        })
        .collect();
    safetensors::serialize(views, metadata).expect("serialize")
}

/// Rewrites a model file with some tensors changed, keeping its metadata.
fn rewrite(bytes: &[u8], edit: impl Fn(&mut Owned)) -> Vec<u8> {
    let (mut tensors, metadata) = take_apart(bytes);
    edit(&mut tensors);
    put_together(&tensors, metadata)
}

/// Rewrites a model file with its faceprint metadata changed, keeping its tensors.
fn with_metadata(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let (tensors, metadata) = take_apart(bytes);
    let mut meta: serde_json::Value =
        serde_json::from_str(&metadata.expect("metadata")[METADATA_KEY]).expect("json");
    edit(&mut meta);
    put_together(
        &tensors,
        Some(HashMap::from([(
            METADATA_KEY.to_string(),
            meta.to_string(),
        )])),
    )
}

#[test]
fn broken_model_files_are_clear_errors() {
    let good = small_model(5).to_bytes().expect("bytes");
    let first_tensor = |t: &mut Owned| t.sort_by(|a, b| a.0.cmp(&b.0));
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("an empty file", Vec::new(), "not a safetensors file"),
        (
            "random bytes",
            (0..999u32).map(|i| (i * 7919 % 251) as u8).collect(),
            "not a safetensors file",
        ),
        (
            "a truncated file",
            good[..good.len() / 2].to_vec(),
            "not a safetensors file",
        ),
        (
            "a safetensors file without faceprint metadata",
            safetensors::serialize(Vec::<(String, TensorView)>::new(), None).expect("empty"),
            "no `faceprint` metadata",
        ),
        (
            "an unknown architecture",
            with_metadata(&good, |m| m["architecture"]["type"] = "transformer".into()),
            "unknown variant `transformer`",
        ),
        (
            "a newer format version",
            with_metadata(&good, |m| m["format"] = 99.into()),
            "format version 99",
        ),
        (
            "a missing tensor",
            rewrite(&good, |t| {
                first_tensor(t);
                t.remove(0);
            }),
            "missing tensor",
        ),
        (
            "a tensor of the wrong shape",
            rewrite(&good, |t| {
                let weight = t
                    .iter_mut()
                    .find(|(name, ..)| name.ends_with("conv2d.weight"));
                let (_, shape, _) = weight.expect("a convolution weight");
                *shape = vec![shape.iter().product()];
            }),
            "expects shape",
        ),
        (
            "weights that do not match the recorded version",
            rewrite(&good, |t| {
                first_tensor(t);
                t[0].2[0] ^= 0x40;
            }),
            "the weights hash to version",
        ),
    ];
    // Those wrong in the header `read_meta` (the server's check before it touches its
    // database) refuses with `load`'s message; these are wrong in the tensors (or cut
    // after the header), which it does not read.
    let in_tensors = [
        "a truncated file",
        "a missing tensor",
        "a tensor of the wrong shape",
        "weights that do not match the recorded version",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (what, bytes, expected)) in cases.into_iter().enumerate() {
        match ModelFile::from_bytes(&bytes) {
            Ok(_) => panic!("{what}: loaded without error"),
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(expected),
                    "{what}: error `{msg}` lacks `{expected}`"
                );
            }
        }
        let path = dir.path().join(format!("case{i}.safetensors"));
        std::fs::write(&path, &bytes).expect("write");
        let loaded = ModelFile::load(&path).expect_err(what).to_string();
        match ModelFile::read_meta(&path) {
            Err(e) if !in_tensors.contains(&what) => {
                let msg = e.to_string();
                assert!(msg.contains(expected), "{what}: header check `{msg}`");
                assert!(msg.contains(&*path.to_string_lossy()), "{what}: `{msg}`");
                // The same kind of error as the load's, and the same words after the
                // safetensors crate's own (the header check parses the header itself).
                let kind = |m: &str| m.split(" (").next().unwrap_or(m).to_string();
                assert_eq!(kind(&msg), kind(&loaded), "{what}");
            }
            Err(e) => panic!("{what}: the header check read the tensors: {e}"),
            Ok(meta) if in_tensors.contains(&what) => {
                assert_eq!(meta.version, small_model(5).meta.version, "{what}")
            }
            Ok(_) => panic!("{what}: the header check passed"),
        }
    }
}

#[test]
fn the_header_check_reads_a_good_models_metadata_and_names_a_missing_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = small_model(3);
    let path = dir.path().join("good.safetensors");
    model.save(&path).expect("save");
    let meta = ModelFile::read_meta(&path).expect("a model's header");
    assert_eq!(meta.version, model.meta.version);
    assert_eq!(meta.embedding_dim, model.meta.embedding_dim);
    let missing = dir.path().join("missing.safetensors");
    let msg = ModelFile::read_meta(&missing)
        .expect_err("missing")
        .to_string();
    let loaded = ModelFile::load(&missing).expect_err("missing").to_string();
    assert_eq!(msg, loaded);
    assert!(msg.contains("missing.safetensors"), "{msg}");
}

fn a_bucket(u: f64) -> TailBucket {
    TailBucket {
        faces: 1,
        u,
        zeta: 0.05,
        xi: -0.2,
        sigma: 0.06,
        scores: 5000,
        body: vec![0.7, 0.4, 0.1, -0.2, -0.5],
        body_p: vec![0.05, 0.1, 0.3, 0.6, 1.0],
    }
}

fn a_tail() -> TailModel {
    TailModel {
        buckets: vec![a_bucket(0.4)],
        source: serde_json::json!({"by": "test"}),
        upper: Some(UpperBound {
            confidence: 0.8,
            replicates: vec![vec![a_bucket(0.39)], vec![a_bucket(0.42)]],
        }),
    }
}

#[test]
fn a_model_with_an_impostor_tail_saves_it_and_loads_it_back() {
    let mut model = small_model(3);
    model.meta.tail = Some(a_tail());
    let loaded = ModelFile::from_bytes(&model.to_bytes().expect("serialises")).expect("loads");
    assert_eq!(loaded.meta.format, FORMAT_VERSION);
    assert_eq!(loaded.meta.tail, Some(a_tail()));
    assert_eq!(loaded.meta.version, model.meta.version);
}

#[test]
fn a_tail_calibrated_without_the_upper_bound_still_loads_and_answers_with_its_point_estimate() {
    let mut model = small_model(3);
    model.meta.tail = Some(a_tail());
    let old = with_metadata(&model.to_bytes().expect("serialises"), |m| {
        if let Some(tail) = m["tail"].as_object_mut() {
            assert!(
                tail.remove("upper").is_some(),
                "the bound is stored as `upper`"
            );
        }
    });
    let loaded = ModelFile::from_bytes(&old).expect("an older tail loads");
    let tail = loaded.meta.tail.expect("the tail is kept");
    assert_eq!(tail.upper, None);
    let point = TailModel {
        upper: None,
        ..a_tail()
    };
    assert_eq!(tail, point);
    // The bound's threshold is the stricter one here: one replicate's tail starts higher.
    let (bounded, plain) = (a_tail().threshold(0.01, 10, 1), tail.threshold(0.01, 10, 1));
    assert!(bounded > plain, "{bounded} vs {plain}");
}

#[test]
fn a_format_1_file_without_a_tail_still_loads_with_its_thresholds() {
    let good = small_model(4).to_bytes().expect("serialises");
    let old = with_metadata(&good, |m| {
        m["format"] = 1.into();
        if let Some(o) = m.as_object_mut() {
            o.remove("tail");
        }
    });
    let loaded = ModelFile::from_bytes(&old).expect("a format-1 file loads");
    assert_eq!(loaded.meta.format, 1);
    assert_eq!(loaded.meta.tail, None);
    assert_eq!(loaded.meta.thresholds.far_1pct, 0.8);
}

#[test]
fn a_missing_model_file_names_its_path() {
    let err = Embedder::load("/nonexistent/dir/model.safetensors").expect_err("no such file");
    assert!(matches!(err, ModelError::File { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("/nonexistent/dir/model.safetensors"),
        "{err}"
    );
}

#[test]
fn flip_averaging_embeds_a_face_and_its_mirror_alike_and_is_part_of_the_version() {
    let faces = fixture_faces();
    let mirrored: Vec<GrayImage> = faces.iter().map(image::imageops::flip_horizontal).collect();
    let plain = Embedder::new(small_model_with(3, false));
    let flip = Embedder::new(small_model_with(3, true));
    assert_ne!(
        plain.version(),
        flip.version(),
        "same weights, different embeddings"
    );

    let (a, b) = (flip.embed(&faces).unwrap(), flip.embed(&mirrored).unwrap());
    for (x, y) in a.iter().zip(&b) {
        let dist: f32 = x.iter().zip(y).map(|(p, q)| (p - q).abs()).sum();
        assert!(dist < 1e-5, "a face and its mirror embed {dist} apart");
        let norm: f32 = x.iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "unit length, got {norm}");
    }
    // Without it, the network alone does not see a mirror image as the same input.
    let (c, d) = (
        plain.embed(&faces).unwrap(),
        plain.embed(&mirrored).unwrap(),
    );
    let apart: f32 = c[0].iter().zip(&d[0]).map(|(p, q)| (p - q).abs()).sum();
    assert!(
        apart > 1e-3,
        "the untrained network is not mirror-symmetric: {apart}"
    );

    // The flag survives the file round trip, version check included.
    let bytes = small_model_with(3, true).to_bytes().unwrap();
    let loaded = ModelFile::from_bytes(&bytes).expect("loads with its version");
    assert!(loaded.meta.flip_average);
}
