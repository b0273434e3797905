//! Flags over a configuration: each replaces its option, switching a kind starts from
//! that kind's defaults, and flags for another kind are errors that name them.

use clap::Parser;

use super::*;
use crate::data::{Augmentation, NormalisationKind, PreprocessingSpec, TanTriggs};
use crate::nn::schedule::ScheduleConfig;
use crate::train::config::{AugmentConfig, Selection};

fn args(flags: &[&str]) -> TrainArgs {
    TrainArgs::parse_from(std::iter::once("train-embed").chain(flags.iter().copied()))
}

/// `cfg` with `flags` applied, or the error they cause.
fn apply(mut cfg: TrainConfig, flags: &[&str]) -> Result<TrainConfig> {
    args(flags).apply(&mut cfg)?;
    Ok(cfg)
}

#[test]
fn no_flags_leave_every_shipped_configuration_as_it_is() {
    for text in [
        include_str!("../../examples/train-cnn-triplet.toml"),
        include_str!("../../examples/train-mlp-softmax.toml"),
        include_str!("../../examples/train-resnet-arcface.toml"),
        include_str!("../../models/lfw-cnn.toml"),
        include_str!("../../models/orl-yaleb.toml"),
    ] {
        let cfg: TrainConfig = toml::from_str(text).unwrap();
        assert_eq!(apply(cfg.clone(), &[]).unwrap(), cfg);
    }
}

#[test]
fn every_general_flag_replaces_its_option() {
    let flags = [
        "--data",
        "faces",
        "--output",
        "m.safetensors",
        "--run-dir",
        "runs/x",
        "--epochs",
        "5",
        "--seed",
        "9",
        "--threads",
        "2",
        "--val-fraction",
        "0.3",
        "--selection",
        "last",
        "--flip-average",
        "false",
        "--detect",
        "--p",
        "8",
        "--k",
        "2",
        "--height",
        "28",
        "--width",
        "24",
        "--normalisation",
        "zca",
        "--tan-triggs",
        "tau=5",
        "--augment",
        "false",
        "--flip",
        "false",
        "--max-shift",
        "4",
        "--shadow",
        "0.5",
        "--brightness",
        "0.3",
        "--contrast",
        "0.1",
        "--lr",
        "0.01",
        "--warmup",
        "2",
        "--clip-grad-norm",
        "3",
    ];
    let expected = TrainConfig {
        data: "faces".into(),
        output: "m.safetensors".into(),
        run_dir: "runs/x".into(),
        epochs: 5,
        seed: 9,
        threads: Some(2),
        val_fraction: 0.3,
        selection: Selection::Last,
        flip_average: false,
        detect: true,
        batch: crate::train::config::BatchConfig { p: 8, k: 2 },
        preprocessing: PreprocessingSpec {
            tan_triggs: TanTriggs {
                tau: 5.0,
                ..TanTriggs::default()
            },
            ..PreprocessingSpec::new(28, 24, NormalisationKind::Zca)
        },
        augmentation: AugmentConfig {
            enabled: false,
            settings: Augmentation {
                flip: false,
                max_shift: 4,
                shadow: 0.5,
                brightness: 0.3,
                contrast: 0.1,
            },
        },
        schedule: ScheduleConfig {
            lr: 0.01,
            decay: Decay::Constant,
            warmup: 2,
        },
        clip_grad_norm: Some(3.0),
        ..TrainConfig::default()
    };
    assert_eq!(apply(TrainConfig::default(), &flags).unwrap(), expected);
}

#[test]
fn switching_the_architecture_starts_from_its_defaults_on_the_same_input() {
    let on_input = TrainConfig {
        arch: ArchSpec::reference_cnn().with_input([28, 24]),
        ..TrainConfig::default()
    };
    let arch = |flags: &[&str]| apply(on_input.clone(), flags).unwrap().arch;
    assert_eq!(arch(&["--arch", "mlp"]), ArchSpec::mlp([28, 24]));
    assert_eq!(
        arch(&["--arch", "resnet"]),
        ArchSpec::Resnet(ResnetSpec::with_input([28, 24]))
    );
    let ArchSpec::Cnn { widths, fc, .. } = arch(&["--arch", "cnn", "--fc", "64"]) else {
        panic!("not a CNN")
    };
    assert_eq!(
        (widths, fc),
        (vec![32, 64, 128], 64),
        "the file's CNN, its fc changed"
    );
    let mlp = apply(on_input, &["--arch", "mlp", "--hidden", "64"]).unwrap();
    let again = apply(mlp, &["--arch", "mlp", "--dropout", "0.2"]).unwrap();
    let ArchSpec::Mlp { hidden, .. } = again.arch else {
        panic!("not an MLP")
    };
    assert_eq!(hidden, [64], "the same kind keeps its options");
}

#[test]
fn flags_for_another_kind_are_errors_that_name_them() {
    let dlib = TrainConfig {
        arch: ArchSpec::DlibResnet(crate::model::arch::DlibResnetSpec::default()),
        ..TrainConfig::default()
    };
    let default = TrainConfig::default;
    let cases = [
        (
            "an MLP flag on the CNN",
            default(),
            &["--hidden", "8"][..],
            "--arch mlp only",
        ),
        (
            "a CNN flag on an MLP",
            default(),
            &["--arch", "mlp", "--widths", "8"],
            "--arch cnn only",
        ),
        (
            "a ResNet flag on the CNN",
            default(),
            &["--stem", "8"],
            "--arch resnet only",
        ),
        (
            "maxout pieces for ReLU",
            default(),
            &["--arch", "mlp", "--maxout-k", "3"],
            "maxout only",
        ),
        (
            "a CNN flag on a ResNet",
            default(),
            &["--arch", "resnet", "--fc", "8"],
            "--arch resnet",
        ),
        (
            "dropout on dlib's ResNet",
            dlib,
            &["--dropout", "0.1"],
            "only --embedding-dim",
        ),
        (
            "a head for the triplet loss",
            default(),
            &["--loss", "triplet", "--head", "linear"],
            "triplet loss",
        ),
        (
            "mining for the softmax loss",
            default(),
            &["--mining", "all"],
            "softmax loss",
        ),
        (
            "momentum for Adam",
            default(),
            &["--momentum", "0.9"],
            "--optimizer sgd only",
        ),
        (
            "an unknown Tan–Triggs name",
            default(),
            &["--tan-triggs", "beta=1"],
            "name=value",
        ),
    ];
    for (what, cfg, flags, expected) in cases {
        let err = apply(cfg, flags).expect_err(what).to_string();
        assert!(
            err.contains(expected),
            "{what}: {err:?} does not mention {expected:?}"
        );
    }
}

#[test]
fn loss_optimiser_and_schedule_flags_replace_their_options() {
    let cfg = apply(
        TrainConfig::default(),
        &[
            "--loss",
            "contrastive",
            "--margin",
            "2",
            "--optimizer",
            "adamw",
            "--weight-decay",
            "0.01",
            "--schedule",
            "step",
            "--epochs",
            "10",
        ],
    )
    .unwrap();
    assert_eq!(
        cfg.loss,
        LossConfig::Contrastive(ContrastiveConfig {
            margin: 2.0,
            ..ContrastiveConfig::default()
        })
    );
    let OptimizerConfig::Adam(adam) = &cfg.optimizer else {
        panic!("{:?}", cfg.optimizer)
    };
    assert_eq!(adam.weight_decay, Some(WeightDecay::Decoupled(0.01)));
    assert_eq!(
        cfg.schedule.decay,
        Decay::Step {
            milestones: vec![5, 7],
            gamma: 0.1
        }
    );
}
