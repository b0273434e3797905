//! Configuration: the shipped examples parse and validate; flags override the file;
//! the configuration survives the JSON round trip that checkpoints rely on.

use std::path::{Path, PathBuf};

use clap::Parser;
use faceprint::model::arch::{ArchSpec, HiddenActivation};
use faceprint::nn::loss::Mining;
use faceprint::nn::optim::OptimizerConfig;
use faceprint::train::config::{LossConfig, Selection};
use faceprint::train::head::HeadConfig;
use faceprint::train::{TrainArgs, TrainConfig};

fn examples() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_configuration_parses_validates_and_round_trips() {
    let files = examples();
    assert!(files.len() >= 2, "examples/*.toml: {files:?}");
    for path in files {
        let cfg = TrainConfig::from_toml_file(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        cfg.validate()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let json = serde_json::to_string(&cfg).unwrap();
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cfg, "{}: JSON round trip", path.display());
    }
}

#[test]
fn flags_override_the_configuration_file() {
    let file = examples()
        .into_iter()
        .find(|p| p.to_string_lossy().contains("cnn-triplet"))
        .unwrap();
    let args = TrainArgs::parse_from([
        "train-embed",
        "--config",
        file.to_str().unwrap(),
        "--epochs",
        "3",
        "--mining",
        "all",
        "--widths",
        "8,16",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.5",
        "--selection",
        "last",
    ]);
    let cfg = args.to_config().unwrap();
    assert_eq!(cfg.epochs, 3);
    assert_eq!(cfg.selection, Selection::Last);
    assert_eq!(cfg.batch.p, 16, "untouched file value");
    let LossConfig::Triplet(t) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert_eq!((t.mining, t.margin), (Mining::All, 0.5));
    let ArchSpec::Cnn { widths, fc, .. } = &cfg.arch else {
        panic!("{:?}", cfg.arch)
    };
    assert_eq!((widths.as_slice(), *fc), (&[8, 16][..], 256));
    let OptimizerConfig::Sgd(sgd) = &cfg.optimizer else {
        panic!("{:?}", cfg.optimizer)
    };
    assert_eq!(sgd.momentum, 0.5);
}

#[test]
fn switching_architecture_or_loss_by_flag_starts_from_that_kind_s_defaults() {
    let args = TrainArgs::parse_from([
        "train-embed",
        "--data",
        "faces",
        "--arch",
        "mlp",
        "--activation",
        "maxout",
        "--maxout-k",
        "3",
        "--loss",
        "softmax",
        "--head",
        "linear",
    ]);
    let cfg = args.to_config().unwrap();
    let ArchSpec::Mlp {
        activation, hidden, ..
    } = &cfg.arch
    else {
        panic!("{:?}", cfg.arch)
    };
    assert_eq!(*activation, HiddenActivation::Maxout { k: 3 });
    assert_eq!(hidden, &vec![512]);
    assert_eq!(
        cfg.loss,
        LossConfig::Softmax(faceprint::train::config::SoftmaxConfig {
            head: HeadConfig::Linear
        })
    );
    cfg.validate().unwrap();
}

#[test]
fn margin_sets_the_cosine_head_s_cosface_margin_and_is_refused_for_a_linear_head() {
    let parse = |extra: &[&str]| {
        let mut argv = vec!["train-embed", "--data", "faces", "--loss", "softmax"];
        argv.extend_from_slice(extra);
        TrainArgs::parse_from(argv).to_config()
    };
    let cfg = parse(&["--head-scale", "24", "--margin", "0.3"]).unwrap();
    let LossConfig::Softmax(softmax) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert_eq!(
        softmax.head,
        HeadConfig::Cosine {
            scale: 24.0,
            margin: 0.3
        }
    );
    assert!((softmax.head.target_logit_offset() - 7.2).abs() < 1e-5);
    let err = parse(&["--head", "linear", "--margin", "0.3"]).unwrap_err();
    assert!(err.to_string().contains("cosine head only"), "{err}");
}

#[test]
fn a_minimal_file_takes_the_defaults_and_typos_are_rejected() {
    let cfg: TrainConfig = toml::from_str("data = 'faces'\n[arch]\ntype = 'mlp'\n").unwrap();
    assert_eq!(cfg.epochs, TrainConfig::default().epochs);
    assert!(matches!(cfg.arch, ArchSpec::Mlp { .. }));
    for bad in [
        "epochz = 3",
        "[loss]\nkind = 'triplet'\nmargn = 0.3",
        "[loss]\nkind = 'arcface'",
        "[arch]\ntype = 'transformer'",
        "[batch]\np = 'many'",
    ] {
        assert!(
            toml::from_str::<TrainConfig>(bad).is_err(),
            "accepted {bad:?}"
        );
    }
}

#[test]
fn illumination_options_come_from_the_file_or_flags_and_are_range_checked() {
    let toml = "data = 'faces'\n[preprocessing]\nnormalisation = 'tan-triggs'\n\
                tan_triggs = { sigma0 = 0.5 }\n[augmentation]\nshadow = 0.25\n";
    let cfg: TrainConfig = toml::from_str(toml).unwrap();
    let tt = cfg.preprocessing.tan_triggs;
    assert_eq!(
        (tt.gamma, tt.sigma0, tt.sigma1),
        (0.2, 0.5, 2.0),
        "paper values kept"
    );
    assert_eq!(cfg.augmentation.settings.shadow, 0.25);
    cfg.validate().unwrap();

    let parse = |extra: &[&str]| {
        let mut argv = vec![
            "train-embed",
            "--data",
            "faces",
            "--normalisation",
            "tan-triggs",
        ];
        argv.extend_from_slice(extra);
        TrainArgs::parse_from(argv).to_config()
    };
    let cfg = parse(&["--tan-triggs", "sigma0=0.5, gamma=0.1", "--shadow", "1"]).unwrap();
    let tt = cfg.preprocessing.tan_triggs;
    assert_eq!(
        (tt.gamma, tt.sigma0, tt.sigma1, tt.tau),
        (0.1, 0.5, 2.0, 10.0)
    );
    cfg.validate().unwrap();
    for (flags, expect) in [
        (&["--tan-triggs", "sigma=1"][..], "name=value"),
        (&["--tan-triggs", "sigma0=x"][..], "name=value"),
    ] {
        let err = parse(flags).unwrap_err();
        assert!(err.to_string().contains(expect), "{flags:?}: {err}");
    }
    for (flags, expect) in [
        (&["--tan-triggs", "sigma0=3"][..], "sigma1"),
        (&["--shadow", "1.5"][..], "shadow"),
    ] {
        let err = parse(flags).unwrap().validate().unwrap_err();
        assert!(err.to_string().contains(expect), "{flags:?}: {err}");
    }
}

#[test]
fn a_soft_triplet_margin_may_be_zero_and_is_refused_for_other_losses() {
    let parse = |extra: &[&str]| {
        let mut argv = vec!["train-embed", "--data", "faces"];
        argv.extend_from_slice(extra);
        TrainArgs::parse_from(argv).to_config()
    };
    let cfg = parse(&[
        "--loss",
        "triplet",
        "--soft-margin",
        "true",
        "--margin",
        "0",
    ])
    .unwrap();
    let LossConfig::Triplet(t) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert!(t.soft && t.margin == 0.0);
    cfg.validate().unwrap();
    let hard = parse(&["--loss", "triplet", "--margin", "0"]).unwrap();
    assert!(hard.validate().unwrap_err().to_string().contains("margin"));
    let err = parse(&["--loss", "softmax", "--soft-margin", "true"]).unwrap_err();
    assert!(err.to_string().contains("--soft-margin"), "{err}");
}

#[test]
fn the_resnet_arcface_example_selects_a_resnet_and_an_arcface_head() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/train-resnet-arcface.toml");
    let cfg = TrainConfig::from_toml_file(&path).unwrap();
    cfg.validate().unwrap();
    let ArchSpec::Resnet(resnet) = &cfg.arch else {
        panic!("{:?}", cfg.arch)
    };
    assert_eq!(resnet.input, [56, 48]);
    assert_eq!(resnet.stages, vec![(32, 2), (64, 2), (128, 2)]);
    let LossConfig::Softmax(softmax) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert_eq!(
        softmax.head,
        HeadConfig::Arcface {
            scale: 16.0,
            margin: 0.5,
            easy_margin: false
        }
    );
}

#[test]
fn a_minimal_resnet_sphereface_file_takes_their_defaults() {
    let text = r#"
        data = "faces"
        [arch]
        type = "resnet"
        [loss]
        kind = "softmax"
        head = { kind = "sphereface" }
    "#;
    let cfg: TrainConfig = toml::from_str(text).unwrap();
    cfg.validate().unwrap();
    let ArchSpec::Resnet(resnet) = &cfg.arch else {
        panic!("{:?}", cfg.arch)
    };
    assert_eq!(resnet.stem, 32);
    assert_eq!(resnet.embedding_dim, 128);
    let LossConfig::Softmax(softmax) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert_eq!(softmax.head, HeadConfig::sphereface());
    for (what, head) in [
        (
            "a SphereFace margin of 0",
            r#"{ kind = "sphereface", margin = 0 }"#,
        ),
        ("a negative λ", r#"{ kind = "sphereface", lambda = -1.0 }"#),
        (
            "an ArcFace margin of π",
            r#"{ kind = "arcface", margin = 3.2 }"#,
        ),
    ] {
        let text = format!("data = \"faces\"\n[loss]\nkind = \"softmax\"\nhead = {head}\n");
        let cfg: TrainConfig = toml::from_str(&text).unwrap();
        assert!(cfg.validate().is_err(), "{what} was accepted");
    }
}

#[test]
fn flags_select_the_resnet_and_the_angular_margin_heads() {
    let parse = |extra: &[&str]| {
        let mut argv = vec!["train-embed", "--data", "faces", "--loss", "softmax"];
        argv.extend_from_slice(extra);
        TrainArgs::parse_from(argv).to_config()
    };
    let cfg = parse(&[
        "--arch",
        "resnet",
        "--stages",
        "16x1,32x2",
        "--stem",
        "8",
        "--embedding-dim",
        "64",
        "--head",
        "arcface",
        "--margin",
        "0.4",
        "--head-scale",
        "30",
    ])
    .unwrap();
    cfg.validate().unwrap();
    let ArchSpec::Resnet(resnet) = &cfg.arch else {
        panic!("{:?}", cfg.arch)
    };
    assert_eq!((resnet.stem, resnet.embedding_dim), (8, 64));
    assert_eq!(resnet.stages, vec![(16, 1), (32, 2)]);
    let LossConfig::Softmax(softmax) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert_eq!(
        softmax.head,
        HeadConfig::Arcface {
            scale: 30.0,
            margin: 0.4,
            easy_margin: false
        }
    );
    let cfg = parse(&["--head", "sphereface", "--margin", "3"]).unwrap();
    let LossConfig::Softmax(softmax) = &cfg.loss else {
        panic!("{:?}", cfg.loss)
    };
    assert!(matches!(
        softmax.head,
        HeadConfig::Sphereface { margin: 3, .. }
    ));
    let err = parse(&["--head", "sphereface", "--margin", "2.5"]).unwrap_err();
    assert!(err.to_string().contains("integer"), "{err}");
    let err = parse(&["--stages", "16x1"]).unwrap_err();
    assert!(err.to_string().contains("resnet only"), "{err}");
    let err = parse(&["--arch", "resnet", "--widths", "8,16"]).unwrap_err();
    assert!(
        err.to_string().contains("do not apply to --arch resnet"),
        "{err}"
    );
}

#[test]
fn singletons_join_training_as_classes_and_never_validation() {
    use faceprint::train::dataset::RunData;
    // Six identities of the fixtures, and three more with one image each.
    let dir = tempfile::tempdir().expect("temporary directory");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/train/faces");
    let mut ids: Vec<_> = std::fs::read_dir(&source)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    ids.sort();
    for (i, id) in ids.iter().enumerate() {
        let mut files: Vec<_> = std::fs::read_dir(id)
            .expect("identity")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        let name = id.file_name().expect("name").to_string_lossy().into_owned();
        let keep = if i < 3 { 1 } else { files.len() };
        std::fs::create_dir_all(dir.path().join(&name)).expect("dir");
        for f in &files[..keep] {
            std::fs::copy(f, dir.path().join(&name).join(f.file_name().expect("file")))
                .expect("copy");
        }
    }
    let mut cfg = TrainConfig {
        data: dir.path().to_path_buf(),
        val_fraction: 0.34,
        ..TrainConfig::default()
    };
    cfg.batch.p = 2;
    let without = RunData::load(&cfg).expect("data without singletons");
    cfg.singletons = true;
    let with = RunData::load(&cfg).expect("data with singletons");
    let n = ids.len();
    assert_eq!(
        without.train_identities.len() + without.val_identities.len(),
        n - 3,
        "one-image identities are left out by default"
    );
    assert_eq!(
        with.train_identities.len(),
        without.train_identities.len() + 3
    );
    assert_eq!(with.val_identities, without.val_identities);
}
