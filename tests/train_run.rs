//! A short training run on the fixtures: it must separate the identities better than
//! the untrained network, write its run files, and reproduce itself exactly.

mod support;

use faceprint::model::Embedder;
use faceprint::train::cli::{ArchArg, LossArg};
use faceprint::train::config::Selection;
use faceprint::train::record::EpochRecord;
use faceprint::train::train_embed;
use support::train::{embed_folder, fixtures, separation, tiny_args, untrained, weight_bits};

#[test]
fn a_short_softmax_run_separates_fixture_identities_better_than_the_untrained_network() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = tiny_args(dir.path(), LossArg::Softmax);
    args.epochs = Some(12);
    let outcome = train_embed(&args, true).expect("training runs");
    let model = dir.path().join("model.safetensors");
    let trained = Embedder::load(&model).expect("the model file loads");

    for folder in ["faces", "unseen"] {
        let (emb, labels) = embed_folder(&trained, &fixtures().join(folder));
        let (gap, nn) = separation(&emb, &labels);
        let (mut base_gap, mut base_nn) = (0.0, 0.0);
        for seed in 0..3 {
            let (e, l) = embed_folder(&untrained(&model, seed), &fixtures().join(folder));
            let (g, n) = separation(&e, &l);
            base_gap += g / 3.0;
            base_nn += n / 3.0;
        }
        eprintln!(
            "{folder}: trained gap {gap:.3} nn {nn:.3}; untrained gap {base_gap:.3} nn {base_nn:.3}"
        );
        if folder == "faces" {
            assert!(
                gap > base_gap + 0.1,
                "genuine−impostor similarity gap {gap:.3} not above the untrained {base_gap:.3} + 0.1"
            );
            assert!(
                nn >= base_nn,
                "nearest-neighbour accuracy {nn:.3} < untrained {base_nn:.3}"
            );
        }
    }
    let t = outcome.thresholds;
    assert!(
        t.far_0_1pct >= t.far_1pct && t.far_1pct >= t.far_10pct,
        "thresholds must not increase with the FAR: {t:?}"
    );
    assert!(outcome.summary.best_epoch.is_some());
}

#[test]
fn a_run_writes_one_log_line_per_epoch_a_plot_and_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let args = tiny_args(dir.path(), LossArg::Triplet);
    train_embed(&args, true).expect("training runs");
    let run = dir.path().join("run");
    let log = std::fs::read_to_string(run.join("log.jsonl")).unwrap();
    let records: Vec<EpochRecord> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is an epoch record"))
        .collect();
    assert_eq!(records.len(), 6);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.epoch, i + 1);
        assert!(r.loss.is_finite() && r.loss >= 0.0, "{r:?}");
        assert!((0.0..=1.0).contains(&r.val.rank1), "{r:?}");
        assert!(r.batches > 0);
    }
    assert!(records[0].best, "the first epoch is always the best so far");
    let png = image::open(run.join("curves.png")).expect("curves.png is an image");
    assert!(png.width() > 100 && png.height() > 100);
    assert!(run.join("checkpoint.safetensors").is_file());
}

#[test]
fn the_same_seed_and_thread_count_give_bit_identical_weights() {
    assert_two_runs_identical(|dir| {
        let mut args = tiny_args(dir, LossArg::Triplet);
        args.epochs = Some(3);
        args
    });
}

/// The same for a CNN at two threads: its convolutions sum the weight gradient of a
/// batch in parallel, in groups that must not depend on which thread ran what.
#[test]
fn a_cnn_at_two_threads_gives_bit_identical_weights() {
    assert_two_runs_identical(|dir| {
        let mut args = tiny_args(dir, LossArg::Softmax);
        args.epochs = Some(2);
        args.arch = Some(ArchArg::Cnn);
        args.hidden = None;
        args.widths = Some(vec![8, 16]);
        args.fc = Some(32);
        args.threads = Some(2);
        args
    });
}

fn assert_two_runs_identical(args: impl Fn(&std::path::Path) -> faceprint::train::TrainArgs) {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    train_embed(&args(a.path()), true).unwrap();
    train_embed(&args(b.path()), true).unwrap();
    let (wa, wb) = (
        weight_bits(&a.path().join("model.safetensors")),
        weight_bits(&b.path().join("model.safetensors")),
    );
    assert!(!wa.is_empty());
    for ((name, x), (_, y)) in wa.iter().zip(&wb) {
        let diff = x.iter().zip(y).filter(|(p, q)| p != q).count();
        assert_eq!(
            diff,
            0,
            "{name}: {diff} of {} values differ between two runs",
            x.len()
        );
    }
}

#[test]
fn selection_last_saves_the_last_epoch_and_calibrates_on_unknown_probes() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = tiny_args(dir.path(), LossArg::Softmax);
    args.epochs = Some(4);
    args.selection = Some(Selection::Last);
    let outcome = train_embed(&args, true).expect("training runs");
    assert_eq!(outcome.summary.best_epoch, Some(4));
    assert!(
        outcome.summary.calibration_probes > 0,
        "thresholds calibrated on unknown probes: {:?}",
        outcome.summary
    );
    let model = Embedder::load(dir.path().join("model.safetensors")).unwrap();
    assert_eq!(*model.thresholds(), outcome.thresholds);
}

#[test]
fn a_run_with_a_descriptor_branch_ships_it_fused_and_calibrated_on_the_fused_embeddings() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lbp.toml");
    std::fs::write(
        &config,
        "[lbp]\nweight = 0.5\npca = 12\ndim = 6\nmax_pca_samples = 100\nheight = 28\n\
         width = 24\nscales = [{ radius = 1.0, cell = 8 }, { radius = 2.0, cell = 12 }]\n",
    )
    .unwrap();
    let mut args = tiny_args(dir.path(), LossArg::Softmax);
    args.config = Some(config);
    let outcome = train_embed(&args, true).expect("training with [lbp] runs");
    let trained = Embedder::load(dir.path().join("model.safetensors")).expect("model loads");
    let lbp = trained
        .meta()
        .lbp
        .clone()
        .expect("the model records its branch");
    assert_eq!(trained.meta().format, 2);
    assert_eq!(trained.dim(), 16 + lbp.dim);
    let (emb, labels) = embed_folder(&trained, &fixtures().join("faces"));
    assert!(emb.iter().all(|e| e.len() == 16 + lbp.dim));
    let (gap, _) = separation(&emb, &labels);
    assert!(
        gap > 0.1,
        "the fused embedding separates training identities: {gap:.3}"
    );
    let t = outcome.thresholds;
    assert!(
        t.far_0_1pct >= t.far_1pct && t.far_1pct >= t.far_10pct,
        "{t:?}"
    );
    assert_eq!(trained.thresholds().far_1pct, t.far_1pct);
}
