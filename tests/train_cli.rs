//! `train-embed` refuses bad input with a clear message, never a panic.

mod support;

use std::path::Path;
use std::process::Command;

use faceprint::train::cli::{LossArg, TrainArgs};
use faceprint::train::train_embed;
use support::train::{fixtures, tiny_args};

/// Copies `n` identity folders of the training fixtures into `dst`.
fn copy_identities(dst: &Path, n: usize) {
    let src = fixtures().join("faces");
    let mut ids: Vec<_> = std::fs::read_dir(&src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    ids.sort();
    for id in ids.into_iter().take(n) {
        let to = dst.join(id.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(&id).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn invalid_runs_are_errors_that_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let single = dir.path().join("single");
    copy_identities(&single, 1);
    let toml = dir.path().join("typo.toml");
    std::fs::write(&toml, "epochs = 3\nlearning_rate = 0.1\n").unwrap();
    let occupied = dir.path().join("occupied");
    std::fs::create_dir_all(occupied.join("run")).unwrap();
    std::fs::write(occupied.join("run/checkpoint.safetensors"), b"x").unwrap();

    let base = || tiny_args(&dir.path().join("out"), LossArg::Triplet);
    let cases: Vec<(&str, TrainArgs, &str)> = vec![
        (
            "a data folder that does not exist",
            TrainArgs {
                data: Some(dir.path().join("nope")),
                ..base()
            },
            "no such directory",
        ),
        (
            "an empty data folder",
            TrainArgs {
                data: Some(empty),
                ..base()
            },
            "usable identities",
        ),
        (
            "a single identity",
            TrainArgs {
                data: Some(single),
                ..base()
            },
            "usable identities",
        ),
        (
            "fewer training identities than P",
            TrainArgs {
                p: Some(12),
                ..base()
            },
            "lower --p",
        ),
        (
            "a validation fraction of 1.5",
            TrainArgs {
                val_fraction: Some(1.5),
                ..base()
            },
            "val_fraction must be in (0, 1)",
        ),
        (
            "zero epochs",
            TrainArgs {
                epochs: Some(0),
                ..base()
            },
            "epochs must be at least 1",
        ),
        (
            "zero threads",
            TrainArgs {
                threads: Some(0),
                ..base()
            },
            "threads must be at least 1",
        ),
        (
            "K = 1",
            TrainArgs {
                k: Some(1),
                ..base()
            },
            "k ≥ 2",
        ),
        (
            "dropout 1.5",
            TrainArgs {
                dropout: Some(1.5),
                ..base()
            },
            "dropout",
        ),
        (
            "a negative learning rate",
            TrainArgs {
                lr: Some(-1.0),
                ..base()
            },
            "lr",
        ),
        (
            "a softmax head option with the triplet loss",
            TrainArgs {
                head_scale: Some(10.0),
                ..base()
            },
            "do not apply to the triplet loss",
        ),
        (
            "SGD momentum with Adam",
            TrainArgs {
                momentum: Some(0.9),
                ..base()
            },
            "--optimizer sgd only",
        ),
        (
            "a CNN option with an MLP",
            TrainArgs {
                widths: Some(vec![4, 8]),
                ..base()
            },
            "--arch cnn only",
        ),
        (
            "an unknown key in the configuration file",
            TrainArgs {
                config: Some(toml),
                ..base()
            },
            "learning_rate",
        ),
        (
            "--resume without a checkpoint",
            TrainArgs {
                resume: true,
                ..base()
            },
            "no checkpoint.safetensors",
        ),
        (
            "--resume from a corrupt checkpoint",
            TrainArgs {
                run_dir: Some(occupied.join("run")),
                resume: true,
                ..base()
            },
            "not a valid checkpoint",
        ),
        (
            "a run directory holding another run",
            TrainArgs {
                run_dir: Some(occupied.join("run")),
                ..base()
            },
            "--resume",
        ),
    ];
    for (what, args, expected) in cases {
        match train_embed(&args, true) {
            Ok(_) => panic!("{what}: trained instead of failing"),
            Err(e) => {
                let message = e.to_string();
                assert!(
                    message.contains(expected),
                    "{what}: the error {message:?} does not mention {expected:?}"
                );
            }
        }
    }
}

#[test]
fn resuming_with_a_different_option_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = tiny_args(dir.path(), LossArg::Triplet);
    args.epochs = Some(1);
    train_embed(&args, true).unwrap();
    let mut changed = tiny_args(dir.path(), LossArg::Triplet);
    changed.resume = true;
    changed.lr = Some(0.1);
    let err = train_embed(&changed, true).expect_err("a changed learning rate is refused");
    assert!(err.to_string().contains("schedule"), "{err}");
}

#[test]
fn the_binary_exits_with_status_2_and_a_message_instead_of_panicking() {
    let out = Command::new(env!("CARGO_BIN_EXE_train-embed"))
        .args(["--data", "/nonexistent/faces", "--epochs", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("error") && stderr.contains("/nonexistent/faces"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let bad_flag = Command::new(env!("CARGO_BIN_EXE_train-embed"))
        .args(["--loss", "hinge"])
        .output()
        .unwrap();
    assert_eq!(bad_flag.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_flag.stderr).contains("triplet"));

    let help = Command::new(env!("CARGO_BIN_EXE_train-embed"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--config",
        "--resume",
        "--mining",
        "--normalisation",
        "--threads",
        "--head",
    ] {
        assert!(help.contains(flag), "--help does not explain {flag}");
    }
}
