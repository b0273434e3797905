//! `eval-embed --pairs` on a tiny LFW-layout folder (built from committed fixtures, see
//! `tests/fixtures/lfw/README.md`) with the shipped model: the report's numbers, the
//! photo without a face counted as a wrong answer, clear errors; `--detect` on a plain
//! folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn pairs_file() -> PathBuf {
    repo().join("tests/fixtures/lfw/pairs.txt")
}

/// `s1`–`s4` with photos 1–3 (ORL faces) and `s4_0004.jpg`, a photograph of coffee.
fn lfw_folder(dir: &Path) -> PathBuf {
    let root = dir.join("lfw");
    for who in ["s1", "s2", "s3", "s4"] {
        std::fs::create_dir_all(root.join(who)).unwrap();
        for n in 1..=3 {
            let source = repo().join(format!("tests/fixtures/server/{who}/{n}.png"));
            let image = image::open(&source).unwrap();
            image
                .save(root.join(who).join(format!("{who}_{n:04}.jpg")))
                .unwrap();
        }
    }
    std::fs::copy(
        repo().join("tests/fixtures/detect/coffee.jpg"),
        root.join("s4/s4_0004.jpg"),
    )
    .unwrap();
    root
}

fn eval_embed(data: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eval-embed"))
        .arg("--model")
        .arg(repo().join("models/default.safetensors"))
        .arg("--pairs")
        .arg(pairs_file())
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(["--enroll", "1", "--rounds", "2"])
        .args(extra)
        .output()
        .unwrap()
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn eval_embed_pairs_reports_fold_accuracy_and_open_set_on_the_fold_identities() {
    let dir = tempfile::tempdir().unwrap();
    let data = lfw_folder(dir.path());
    let out = dir.path().join("whole");
    let run = eval_embed(&data, &out, &[]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("accuracy"), "{stdout}");
    let r = report(&out);
    let pairs = &r["pairs"];
    assert_eq!(pairs["folds"], serde_json::json!([1, 2]));
    assert_eq!(pairs["pairs"], 8);
    assert_eq!(pairs["pairs_without_face"], 0);
    let folds = pairs["fold_accuracy"].as_array().unwrap();
    assert_eq!(folds.len(), 2);
    let accuracies: Vec<f64> = folds
        .iter()
        .map(|f| f["accuracy"].as_f64().unwrap())
        .collect();
    for a in &accuracies {
        // 4 pairs a fold: a multiple of 1/4.
        assert!((a * 4.0 - (a * 4.0).round()).abs() < 1e-9, "{accuracies:?}");
    }
    let mean = pairs["accuracy"]["mean"].as_f64().unwrap();
    assert!((mean - (accuracies[0] + accuracies[1]) / 2.0).abs() < 1e-12);
    assert_eq!(pairs["tar_at_far"].as_array().map(Vec::len), Some(2));
    assert!((0.0..=1.0).contains(&pairs["eer"].as_f64().unwrap()));
    assert!(r["detection"].is_null());
    // Open set: s1–s4 all have at least two photos; enroll 1, half known.
    assert_eq!(r["identities"], 4);
    assert_eq!(r["images"], 13);
    let open_set = &r["methods"][0]["report"];
    assert_eq!(open_set["config"]["enroll"], 1);
    assert_eq!(open_set["rounds"][0]["known_identities"], 2);
    assert!(open_set["rank1"]["mean"].as_f64().is_some());
    assert!(image::open(out.join("roc.png")).is_ok());

    // With detection the coffee photo has no face: its pair is a wrong answer, and s4
    // keeps its three faces.
    let out = dir.path().join("detect");
    let run = eval_embed(&data, &out, &["--detect", "--folds", "2,1"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let r = report(&out);
    assert_eq!(r["detection"]["no_face"], 1, "{}", r["detection"]);
    assert!(
        r["detection"]["no_face_examples"][0]
            .as_str()
            .is_some_and(|p| p.ends_with("s4_0004.jpg"))
    );
    assert_eq!(r["detection"]["photos"], 13);
    assert_eq!(r["pairs"]["folds"], serde_json::json!([2, 1]));
    assert_eq!(r["pairs"]["pairs"], 8);
    assert_eq!(r["pairs"]["pairs_without_face"], 1);
    let fold2 = &r["pairs"]["fold_accuracy"][0];
    assert_eq!(fold2["fold"], 2);
    assert!(fold2["accuracy"].as_f64().unwrap() <= 0.75, "{fold2}");
    assert_eq!(r["images"], 12);
}

#[test]
fn eval_embed_pairs_names_a_missing_photo_a_bad_line_or_a_bad_fold() {
    let dir = tempfile::tempdir().unwrap();
    let data = lfw_folder(dir.path());
    std::fs::remove_file(data.join("s3/s3_0002.jpg")).unwrap();
    let bad_pairs = dir.path().join("bad-pairs.txt");
    std::fs::write(&bad_pairs, "1\t1\ns1\t1\ns1\t1\ts2\t1\n").unwrap();
    let cases: [(&str, Vec<&str>, Vec<String>); 3] = [
        (
            "a photo the pairs name is missing",
            vec![],
            vec![
                data.join("s3/s3_0002.jpg").display().to_string(),
                "pairs.txt line 6".into(),
            ],
        ),
        (
            "a fold the file does not have",
            vec!["--folds", "1,3"],
            vec!["fold 3".into()],
        ),
        (
            "a single fold leaves no other fold to choose its threshold",
            vec!["--folds", "1"],
            vec!["at least 2".into()],
        ),
    ];
    for (what, extra, expected) in cases {
        let run = eval_embed(&data, &dir.path().join("out"), &extra);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{what}: {stderr}");
        for e in expected {
            assert!(stderr.contains(&e), "{what}: {stderr}");
        }
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    }
    let run = Command::new(env!("CARGO_BIN_EXE_eval-embed"))
        .arg("--model")
        .arg(repo().join("models/default.safetensors"))
        .arg("--pairs")
        .arg(&bad_pairs)
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad-pairs.txt line 2") && stderr.contains("matched pair"),
        "{stderr}"
    );
}

#[test]
fn eval_embed_detect_on_a_folder_leaves_out_and_counts_the_images_without_a_face() {
    let dir = tempfile::tempdir().unwrap();
    let data = lfw_folder(dir.path());
    let out = dir.path().join("out");
    let run = Command::new(env!("CARGO_BIN_EXE_eval-embed"))
        .arg("--model")
        .arg(repo().join("models/default.safetensors"))
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(&out)
        .args(["--detect", "--enroll", "1", "--rounds", "2"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    assert!(
        stderr.contains("s4_0004.jpg"),
        "the warning names it: {stderr}"
    );
    let r = report(&out);
    assert_eq!(r["detection"]["photos"], 13);
    assert_eq!(r["detection"]["no_face"], 1);
    assert_eq!(
        (r["identities"].clone(), r["images"].clone()),
        (4.into(), 12.into())
    );
    assert!(r["pairs"].is_null());
}
