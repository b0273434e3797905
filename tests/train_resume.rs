//! Checkpoint + resume continues a run exactly: the weights equal an uninterrupted run's.

mod support;

use faceprint::train::cli::LossArg;
use faceprint::train::record::EpochRecord;
use faceprint::train::train_embed;
use support::train::{tiny_args, weight_bits};

fn last_checkpoint_bits(run: &std::path::Path) -> Vec<(String, Vec<u32>)> {
    use faceprint::train::checkpoint::Checkpoint;
    use faceprint::train::record::RunState;
    let ckpt: Checkpoint<RunState> =
        Checkpoint::load(&run.join("checkpoint.safetensors")).expect("checkpoint loads");
    let mut out = Vec::new();
    for (group, tensors) in &ckpt.groups {
        for (name, t) in tensors {
            out.push((
                format!("{group}/{name}"),
                t.iter().map(|v| v.to_bits()).collect(),
            ));
        }
    }
    out
}

#[test]
fn resuming_from_a_checkpoint_equals_an_uninterrupted_run() {
    for loss in [LossArg::Softmax, LossArg::Triplet] {
        let (straight, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut args = tiny_args(straight.path(), loss);
        args.epochs = Some(4);
        train_embed(&args, true).unwrap();

        let mut first = tiny_args(split.path(), loss);
        first.epochs = Some(2);
        train_embed(&first, true).unwrap();
        let mut rest = tiny_args(split.path(), loss);
        rest.epochs = Some(4);
        rest.resume = true;
        train_embed(&rest, true).unwrap();

        let a = weight_bits(&straight.path().join("model.safetensors"));
        let b = weight_bits(&split.path().join("model.safetensors"));
        assert_eq!(
            a, b,
            "{loss:?}: the resumed model differs from the uninterrupted one"
        );
        let ca = last_checkpoint_bits(&straight.path().join("run"));
        let cb = last_checkpoint_bits(&split.path().join("run"));
        assert_eq!(
            ca.iter().map(|x| &x.0).collect::<Vec<_>>(),
            cb.iter().map(|x| &x.0).collect::<Vec<_>>()
        );
        assert!(
            ca == cb,
            "{loss:?}: checkpoint tensors (network, head, optimiser) differ"
        );

        let log = |d: &std::path::Path| -> Vec<EpochRecord> {
            std::fs::read_to_string(d.join("run/log.jsonl"))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let (la, lb) = (log(straight.path()), log(split.path()));
        assert_eq!(la.len(), 4);
        assert_eq!(lb.len(), 4);
        for (x, y) in la.iter().zip(&lb) {
            assert_eq!((x.epoch, x.loss, x.val), (y.epoch, y.loss, y.val));
        }
    }
}
