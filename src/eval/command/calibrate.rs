//! `eval-embed`'s calibration side: stranger-against-identity scores written for
//! pooling (`--impostors-out`), the impostor tail fitted into a model file
//! (`--calibrate-into`, from this run's scores or pooled `--impostors` files of
//! cross-fitted runs), and the check of a tail's promise on held-out identities
//! (`--check-promise`).

use std::path::{Path, PathBuf};

use ndarray::ArrayView2;

use super::args::EvalArgs;
use super::report::EvalReport;
use crate::eval::error::{EvalError, Result};
use crate::eval::promise::{
    PromiseConfig, PromiseRow, check_promise, promise_csv, write_promise_png,
};
use crate::eval::report::write_json;
use crate::eval::tail::{ImpostorScores, fit_tail, impostor_scores};
use crate::model::{FORMAT_VERSION, ModelFile, TailModel, Thresholds};

/// Enrolled faces per identity the tail is measured for (1 to this; larger galleries'
/// identities use the last bucket, see [`TailModel::exceed`]).
pub const TAIL_FACES: usize = 3;

/// Target FARs the promise is checked at.
pub const PROMISE_FARS: [f64; 2] = [0.01, 0.001];

/// This run's stranger-against-identity scores for 1 to [`TAIL_FACES`] enrolled faces.
pub fn run_scores(
    embeddings: ArrayView2<f32>,
    labels: &[usize],
    seed: u64,
) -> Result<Vec<ImpostorScores>> {
    (1..=TAIL_FACES)
        .map(|k| impostor_scores(embeddings, labels, k, seed + k as u64))
        .collect()
}

pub fn write_scores(path: &Path, scores: &[ImpostorScores]) -> Result<()> {
    write_json(path, &scores)
}

fn read_scores(path: &PathBuf) -> Result<Vec<ImpostorScores>> {
    let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
    serde_json::from_str(&text)
        .map_err(|e| EvalError::io(path, format!("not an --impostors-out file: {e}")))
}

/// Writes the model with the impostor tail (fitted on the pooled `--impostors` files, or
/// on this run's `scores`) to `path`; without pooled files, the fixed thresholds become
/// the open-set ones measured here, as before. Returns the tail.
pub fn calibrate_into(
    args: &EvalArgs,
    report: &EvalReport,
    path: &Path,
    scores: &[ImpostorScores],
) -> Result<TailModel> {
    let mut model = ModelFile::load(&args.model)?;
    let (pooled, from) = if args.impostors.is_empty() {
        (scores.to_vec(), vec![args.data.display().to_string()])
    } else {
        let mut pooled = Vec::new();
        for file in &args.impostors {
            // Each file numbers its own people: move them past the ones pooled so far,
            // so the bootstrap draws every person of every file on their own.
            let next = pooled.iter().map(ImpostorScores::identities).max();
            let offset = u32::try_from(next.unwrap_or(0)).unwrap_or(u32::MAX);
            let scores = read_scores(file)?;
            pooled.extend(scores.into_iter().map(|s| s.offset(offset)));
        }
        let from = args.impostors.iter().map(|p| p.display().to_string());
        (pooled, from.collect())
    };
    let counts: Vec<(usize, usize)> = pooled.iter().map(|p| (p.faces, p.scores.len())).collect();
    let source = serde_json::json!({"by": "eval-embed", "scores_from": from, "scores": counts});
    let tail = fit_tail(&pooled, source)?;
    if args.impostors.is_empty() {
        model.meta.thresholds = open_set_thresholds(report)?;
    }
    model.meta.tail = Some(tail.clone());
    model.meta.format = FORMAT_VERSION;
    if let serde_json::Value::Object(summary) = &mut model.meta.training {
        summary.insert(
            "calibration".into(),
            serde_json::json!({
                "by": "eval-embed",
                "data": args.data.display().to_string(),
                "identities": report.identities,
                "images": report.images,
                "rounds": args.rounds,
                "enroll": args.enroll,
                "tail_from": tail.source,
            }),
        );
    }
    model.save(path)?;
    Ok(tail)
}

/// The open-set thresholds of `report`'s model at FAR 0.1%, 1% and 10% of unknown probes.
fn open_set_thresholds(report: &EvalReport) -> Result<Thresholds> {
    let measured = &report.methods[0].report.open_set_thresholds;
    let at = |far: f64| {
        measured
            .iter()
            .find(|t| (t.far_target - far).abs() < 1e-12)
            .map(|t| t.threshold)
            .ok_or_else(|| EvalError::Invalid(format!("no threshold measured at FAR {far}")))
    };
    Ok(Thresholds {
        far_0_1pct: at(0.001)?,
        far_1pct: at(0.01)?,
        far_10pct: at(0.1)?,
    })
}

/// The promise check of `tail` on this run's identities; writes `promise.csv` and
/// `promise.png` beside the ROC.
pub fn promise(
    args: &EvalArgs,
    embeddings: ArrayView2<f32>,
    labels: &[usize],
    tail: &TailModel,
    stored: &Thresholds,
) -> Result<Vec<PromiseRow>> {
    let cfg = PromiseConfig {
        fars: PROMISE_FARS.to_vec(),
        enroll: args.promise_enroll,
        draws: args.promise_draws,
        seed: args.seed,
    };
    let rows = check_promise(embeddings, labels, tail, stored, &cfg)?;
    let csv = args.out.join("promise.csv");
    std::fs::write(&csv, promise_csv(&rows)).map_err(|e| EvalError::io(&csv, e))?;
    write_promise_png(&args.out.join("promise.png"), &rows)?;
    Ok(rows)
}

/// The promise rows as a table.
pub fn promise_table(rows: &[PromiseRow]) -> String {
    let mut out = format!(
        "open-set FAR at the calibrated default, mean ± std over draws (min-max); DIR; \
         before: the fixed threshold\n{:>7} {:>8} {:>9} {:>26} {:>6} {:>13} {:>10} {:>10}\n",
        "target",
        "gallery",
        "threshold",
        "measured FAR",
        "ratio",
        "DIR",
        "FAR before",
        "DIR before"
    );
    for r in rows {
        out.push_str(&format!(
            "{:>7} {:>8} {:>9.4} {:>26} {:>6.2} {:>13} {:>10.4} {:>10.3}\n",
            r.far,
            r.gallery_size,
            r.threshold,
            format!(
                "{:.4}±{:.4} ({:.4}-{:.4})",
                r.measured.mean, r.measured.std, r.measured_min, r.measured_max
            ),
            r.ratio,
            format!("{:.3}±{:.3}", r.dir.mean, r.dir.std),
            r.fixed_far.mean,
            r.fixed_dir.mean,
        ));
    }
    out
}
