//! `eval-embed` on the unseen fixture identities: report, ROC plot and export files
//! with sane values, baselines beside the model, clear errors.

mod support;

use std::process::Command;

use faceprint::eval::command::{EvalArgs, eval_embed};
use faceprint::train::cli::LossArg;
use faceprint::train::train_embed;
use support::train::{fixtures, tiny_args};

fn args(model: std::path::PathBuf, out: std::path::PathBuf) -> EvalArgs {
    EvalArgs {
        model,
        data: fixtures().join("unseen"),
        pairs: None,
        folds: None,
        detect: false,
        baseline_train: Some(fixtures().join("faces")),
        rounds: 3,
        enroll: 2,
        seed: 1,
        out,
        export: None,
        calibrate_into: None,
        impostors_out: None,
        impostors: Vec::new(),
        check_promise: false,
        promise_draws: 5,
        promise_enroll: 1,
    }
}

#[test]
fn eval_embed_writes_a_report_a_roc_plot_and_the_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let mut train = tiny_args(dir.path(), LossArg::Softmax);
    train.epochs = Some(8);
    train_embed(&train, true).unwrap();
    let model = dir.path().join("model.safetensors");
    let out = dir.path().join("eval");
    let mut a = args(model.clone(), out.clone());
    a.export = Some(dir.path().join("embeddings.jsonl"));
    let calibrated = dir.path().join("calibrated.safetensors");
    a.calibrate_into = Some(calibrated.clone());
    let report = eval_embed(&a).expect("evaluation runs");

    // The calibrated copy: same weights and version, the open-set thresholds measured.
    let (before, after) = (
        faceprint::model::ModelFile::load(&model).unwrap(),
        faceprint::model::ModelFile::load(&calibrated).unwrap(),
    );
    assert_eq!(before.meta.version, after.meta.version);
    let measured = &report.methods[0].report.open_set_thresholds;
    assert_eq!(after.meta.thresholds.far_1pct, measured[1].threshold);
    assert_eq!(after.meta.training["calibration"]["identities"], 8);
    // … and the impostor tail, one bucket per enrolled-face count, fitted on this run.
    let tail = after.meta.tail.as_ref().expect("an impostor tail");
    let faces: Vec<usize> = tail.buckets.iter().map(|b| b.faces).collect();
    assert_eq!(faces, [1, 2, 3]);
    // 8 identities, each against the 42 photos of the 7 others.
    assert_eq!(tail.buckets[0].scores, 8 * 42);
    assert_eq!(after.meta.format, faceprint::model::FORMAT_VERSION);

    // Cross-fitting: scores written by one run, pooled (twice here) by another.
    let scores = dir.path().join("impostors.json");
    let mut write = args(model.clone(), dir.path().join("eval-scores"));
    write.baseline_train = None;
    write.impostors_out = Some(scores.clone());
    eval_embed(&write).expect("scores written");
    let mut pool = args(model.clone(), dir.path().join("eval-pool"));
    pool.baseline_train = None;
    pool.impostors = vec![scores.clone(), scores];
    let pooled = dir.path().join("pooled.safetensors");
    pool.calibrate_into = Some(pooled.clone());
    eval_embed(&pool).expect("pooled calibration");
    let pooled = faceprint::model::ModelFile::load(&pooled).unwrap();
    let pooled_tail = pooled.meta.tail.expect("a pooled tail");
    assert_eq!(pooled_tail.buckets[0].scores, 2 * 8 * 42);
    // Pooled files leave the fixed thresholds as they were.
    assert_eq!(pooled.meta.thresholds, before.meta.thresholds);

    let names: Vec<&str> = report.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names[..2], ["model", "raw pixels"]);
    assert!(
        names.iter().any(|n| n.starts_with("fisherfaces")),
        "{names:?}"
    );
    assert_eq!((report.identities, report.images), (8, 48));
    for m in &report.methods {
        let r = &m.report;
        assert_eq!(r.rounds.len(), 3, "{}", m.name);
        for v in [r.rank1.mean, r.eer.mean] {
            assert!((0.0..=1.0).contains(&v), "{}: {v}", m.name);
        }
        let rank1_chance = 1.0 / 4.0; // 4 known identities per round
        assert!(
            r.rank1.mean > rank1_chance,
            "{}: rank-1 {} at chance",
            m.name,
            r.rank1.mean
        );
        assert_eq!(r.dir_at_far.len(), 2);
        assert_eq!(r.tar_at_far.len(), 2);
        assert!(!r.roc.is_empty());
    }
    eprintln!("{}", faceprint::eval::command::table(&report));

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["methods"].as_array().map(Vec::len), Some(names.len()));
    assert!(
        json["model_version"]
            .as_str()
            .is_some_and(|v| v.len() == 16)
    );
    let png = image::open(out.join("roc.png")).expect("roc.png is an image");
    assert!(png.width() > 100);

    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("embeddings.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(lines.len(), 48);
    for l in &lines {
        let e: Vec<f64> = l["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(e.len(), 16);
        let norm = e.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "embedding norm {norm}");
        let path = l["path"].as_str().unwrap();
        let identity = l["identity"].as_str().unwrap();
        assert!(
            path.contains(&format!("/{identity}/")),
            "{path} is not under {identity}"
        );
    }
}

#[test]
fn eval_embed_reports_a_missing_model_or_folder_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let missing = args(dir.path().join("nope.safetensors"), dir.path().join("out"));
    let err = eval_embed(&missing).expect_err("a missing model is an error");
    assert!(err.to_string().contains("nope.safetensors"), "{err}");

    let not_a_model = dir.path().join("garbage.safetensors");
    std::fs::write(&not_a_model, b"not a model at all").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_eval-embed"))
        .arg("--model")
        .arg(&not_a_model)
        .arg("--data")
        .arg(fixtures().join("unseen"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("garbage.safetensors") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
