//! The residual CNN: its layers and tensor names, forward passes, and invalid specs.

use super::*;
use crate::model::arch::ArchSpec;
use crate::nn::{Mode, Tensor};

#[test]
fn the_default_resnet_has_three_stages_of_two_basic_blocks() {
    let spec: ArchSpec = serde_json::from_str(r#"{"type": "resnet", "input": [56, 48]}"#).unwrap();
    assert_eq!(spec, ArchSpec::Resnet(ResnetSpec::with_input([56, 48])));
    let net = spec.build(0).unwrap();
    let kinds: Vec<&str> = net.layers().iter().map(|l| l.kind()).collect();
    let stem = ["conv2d", "batch_norm", "relu"];
    let blocks = ["residual"; 6];
    let head = [
        "global_avg_pool",
        "dropout",
        "linear",
        "batch_norm",
        "l2norm",
    ];
    assert_eq!(kinds, [&stem[..], &blocks, &head].concat());
    let shapes: Vec<(String, Vec<usize>)> = net
        .named_tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    let expect = |name: &str, shape: &[usize]| {
        assert!(
            shapes.iter().any(|(n, s)| n == name && s == shape),
            "{name} {shape:?} in {shapes:?}"
        );
    };
    expect("0.conv2d.weight", &[32, 1, 3, 3]);
    expect("3.residual.body.0.conv2d.weight", &[32, 32, 3, 3]);
    expect("3.residual.body.4.batch_norm.running_var", &[32]);
    expect("5.residual.body.0.conv2d.weight", &[64, 32, 3, 3]);
    expect("5.residual.shortcut.0.conv2d.weight", &[64, 32, 1, 1]);
    expect("7.residual.shortcut.1.batch_norm.gamma", &[128]);
    expect("11.linear.weight", &[128, 128]);
    expect("12.batch_norm.running_mean", &[128]);
    // Projections exactly where a stage starts with stride 2.
    let projected: Vec<bool> = (3..9)
        .map(|i| {
            shapes
                .iter()
                .any(|(n, _)| n.starts_with(&format!("{i}.residual.shortcut")))
        })
        .collect();
    assert_eq!(projected, [false, false, true, false, true, false]);
    assert_eq!(net.output_shape(&[2, 1, 56, 48]).unwrap(), vec![2, 128]);
}

#[test]
fn small_resnets_embed_to_unit_vectors_and_the_same_seed_gives_the_same_weights() {
    let flatten = ResnetSpec {
        input: [11, 9],
        stem: 4,
        stages: vec![(4, 1), (6, 2)],
        activation: ResnetActivation::Prelu,
        pooling: ResnetPooling::Flatten,
        embedding_dim: 5,
        dropout: 0.3,
    };
    assert_eq!(flatten.final_map(), [6, 5]);
    let average = ResnetSpec {
        pooling: ResnetPooling::Average,
        activation: ResnetActivation::Relu,
        ..flatten.clone()
    };
    for spec in [flatten, average] {
        let x = Tensor::from_shape_fn(vec![3, 1, 11, 9], |i| {
            ((i[0] * 5 + i[2] * 3 + i[3]) % 7) as f32 / 7.0 - 0.4
        });
        let mut net = spec.build(3).unwrap();
        for y in [
            net.forward(&x, Mode::Train).unwrap(),
            net.infer(&x).unwrap(),
        ] {
            assert_eq!(y.shape(), &[3, 5]);
            for row in y.rows() {
                let norm = row.dot(&row).sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "{spec:?}: norm {norm}");
            }
        }
        let dx = net.backward(&Tensor::ones(vec![3, 5])).unwrap();
        assert_eq!(dx.shape(), x.shape());
        let values = |n: &Sequential| -> Vec<Tensor> {
            n.params().iter().map(|p| p.value.clone()).collect()
        };
        assert_eq!(
            values(&spec.build(3).unwrap()),
            values(&spec.build(3).unwrap())
        );
        assert_ne!(
            values(&spec.build(3).unwrap()),
            values(&spec.build(4).unwrap())
        );
    }
}

#[test]
fn invalid_resnets_are_refused() {
    let bad = [
        (
            "no stages",
            r#"{"type": "resnet", "input": [56, 48], "stages": []}"#,
        ),
        (
            "a stage without blocks",
            r#"{"type": "resnet", "input": [56, 48], "stages": [[8, 0]]}"#,
        ),
        (
            "a zero width",
            r#"{"type": "resnet", "input": [56, 48], "stages": [[0, 2]]}"#,
        ),
        (
            "a zero stem",
            r#"{"type": "resnet", "input": [56, 48], "stem": 0}"#,
        ),
        (
            "dropout of one",
            r#"{"type": "resnet", "input": [56, 48], "dropout": 1.0}"#,
        ),
        ("an empty input", r#"{"type": "resnet", "input": [0, 48]}"#),
    ];
    for (what, json) in bad {
        let spec: ArchSpec = serde_json::from_str(json).unwrap();
        assert!(
            spec.validate().is_err() && spec.build(0).is_err(),
            "{what} was accepted"
        );
    }
}
