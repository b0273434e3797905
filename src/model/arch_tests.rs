//! Building, validating and serialising architecture specifications.

use super::*;
use crate::nn::{Mode, Tensor};

#[test]
fn the_default_cnn_is_the_reference_cnn() {
    let spec: ArchSpec = serde_json::from_str(r#"{"type": "cnn", "input": [56, 48]}"#).unwrap();
    assert_eq!(spec, ArchSpec::reference_cnn());
    let net = spec.build(0).unwrap();
    let kinds: Vec<&str> = net.layers().iter().map(|l| l.kind()).collect();
    let block = ["conv2d", "batch_norm", "relu", "max_pool2d"];
    let head = [
        "flatten",
        "linear",
        "batch_norm",
        "relu",
        "dropout",
        "linear",
        "l2norm",
    ];
    assert_eq!(kinds, [&block[..], &block, &block, &head].concat());
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
    expect("4.conv2d.weight", &[64, 32, 3, 3]);
    expect("8.conv2d.weight", &[128, 64, 3, 3]);
    expect("9.batch_norm.running_var", &[128]);
    expect("13.linear.weight", &[256, 128 * 7 * 6]);
    expect("14.batch_norm.gamma", &[256]);
    expect("17.linear.weight", &[128, 256]);
    assert_eq!(net.output_shape(&[2, 1, 56, 48]).unwrap(), vec![2, 128]);
}

#[test]
fn built_networks_produce_unit_embeddings_and_the_same_seed_the_same_weights() {
    let specs = [
        ArchSpec::Cnn {
            input: [16, 12],
            widths: vec![4, 8],
            fc: 16,
            embedding_dim: 8,
            dropout: 0.2,
        },
        ArchSpec::Mlp {
            input: [6, 5],
            hidden: vec![12, 10],
            activation: HiddenActivation::Maxout { k: 3 },
            batch_norm: true,
            dropout: 0.1,
            embedding_dim: 4,
        },
        ArchSpec::Mlp {
            input: [6, 5],
            hidden: vec![7],
            activation: HiddenActivation::Prelu,
            batch_norm: false,
            dropout: 0.0,
            embedding_dim: 3,
        },
    ];
    for spec in specs {
        let [h, w] = spec.input();
        let x = Tensor::from_shape_fn(vec![4, 1, h, w], |i| {
            ((i[0] * 7 + i[2] * 3 + i[3]) % 11) as f32 / 11.0
        });
        let mut net = spec.build(5).unwrap();
        for y in [
            net.forward(&x, Mode::Train).unwrap(),
            net.infer(&x).unwrap(),
        ] {
            assert_eq!(y.shape(), &[4, spec.embedding_dim()]);
            for row in y.rows() {
                let norm: f32 = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!((norm - 1.0).abs() < 1e-5, "{spec:?}: norm {norm}");
            }
        }
        let again = spec.build(5).unwrap();
        let other = spec.build(6).unwrap();
        let values = |n: &Sequential| -> Vec<Tensor> {
            n.params().iter().map(|p| p.value.clone()).collect()
        };
        assert_eq!(values(&net), values(&again));
        assert_ne!(values(&again), values(&other));
    }
}

#[test]
fn specs_round_trip_through_json_and_invalid_ones_are_refused() {
    let mlp = ArchSpec::Mlp {
        input: [8, 8],
        hidden: vec![16],
        activation: HiddenActivation::Maxout { k: 2 },
        batch_norm: false,
        dropout: 0.0,
        embedding_dim: 4,
    };
    let json = serde_json::to_string(&mlp).unwrap();
    assert_eq!(serde_json::from_str::<ArchSpec>(&json).unwrap(), mlp);
    let bad = [
        (
            "too small for three poolings",
            r#"{"type": "cnn", "input": [7, 48]}"#,
        ),
        (
            "dropout of one",
            r#"{"type": "cnn", "input": [56, 48], "dropout": 1.0}"#,
        ),
        (
            "no widths",
            r#"{"type": "cnn", "input": [56, 48], "widths": []}"#,
        ),
        (
            "zero embedding",
            r#"{"type": "cnn", "input": [56, 48], "embedding_dim": 0}"#,
        ),
        (
            "zero hidden width",
            r#"{"type": "mlp", "input": [8, 8], "hidden": [0], "activation": "relu", "batch_norm": false, "dropout": 0.0, "embedding_dim": 4}"#,
        ),
        (
            "maxout with no pieces",
            r#"{"type": "mlp", "input": [8, 8], "hidden": [4], "activation": {"maxout": {"k": 0}}, "batch_norm": false, "dropout": 0.0, "embedding_dim": 4}"#,
        ),
    ];
    for (what, json) in bad {
        let spec: ArchSpec = serde_json::from_str(json).unwrap();
        assert!(
            spec.validate().is_err() && spec.build(0).is_err(),
            "{what} was accepted"
        );
    }
}

#[test]
fn fields_left_out_take_the_defaults_of_their_architecture() {
    let parse = |json: &str| serde_json::from_str::<ArchSpec>(json).unwrap();
    assert_eq!(parse(r#"{"type": "mlp"}"#), ArchSpec::mlp([56, 48]));
    assert_eq!(
        parse(r#"{"type": "mlp"}"#),
        ArchSpec::Mlp {
            input: [56, 48],
            hidden: vec![512],
            activation: HiddenActivation::Relu,
            batch_norm: true,
            dropout: 0.0,
            embedding_dim: 128,
        }
    );
    assert_eq!(parse(r#"{"type": "cnn"}"#), ArchSpec::reference_cnn());
    assert_eq!(
        parse(r#"{"type": "resnet"}"#),
        ArchSpec::Resnet(ResnetSpec::with_input([56, 48]))
    );
    assert_eq!(
        parse(r#"{"type": "dlib_resnet", "embedding_dim": 128}"#).input(),
        [56, 48]
    );
    let mlp = parse(r#"{"type": "mlp", "hidden": [64], "activation": "tanh"}"#);
    let ArchSpec::Mlp {
        hidden, activation, ..
    } = &mlp
    else {
        panic!("{mlp:?}")
    };
    assert_eq!(
        (hidden.as_slice(), *activation),
        (&[64][..], HiddenActivation::Tanh)
    );
}

#[test]
fn with_input_changes_the_input_and_nothing_else() {
    for spec in [
        ArchSpec::mlp([56, 48]),
        ArchSpec::reference_cnn(),
        ArchSpec::Resnet(ResnetSpec::with_input([56, 48])),
        ArchSpec::DlibResnet(DlibResnetSpec::default()),
    ] {
        let moved = spec.with_input([28, 24]);
        assert_eq!(moved.input(), [28, 24]);
        assert_eq!(moved.with_input(spec.input()), spec);
    }
}
