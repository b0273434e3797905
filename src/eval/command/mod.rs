//! `eval-embed`: the open-set protocol on identities a model never saw, optionally beside
//! the raw-pixel and Fisherfaces baselines fitted on a training folder with the model's
//! own preprocessing; with `--pairs`, the LFW verification protocol
//! ([`pairs`]) and the open-set protocol on the identities of its folds;
//! with `--detect`, on the face crops of photographs. Writes `report.json` and
//! `roc.png`; `--export` writes every image's embedding as JSON lines.

mod args;
mod calibrate;
pub mod pairs;
mod report;

use std::io::Write;
use std::path::Path;

use ndarray::Array2;
use serde::Serialize;

pub use args::EvalArgs;
use calibrate as calib;
use pairs::{DetectionSummary, Embedded, run_pairs};
pub use report::{EvalReport, MethodReport};

use crate::data::{ImageFolder, Pick, crop_faces};
use crate::detect::FaceDetector;
use crate::eval::compare::baseline_reports;
use crate::eval::error::{EvalError, Result};
use crate::eval::open_set_protocol;
use crate::eval::report::{write_json, write_roc_png};
use crate::model::Embedder;

/// Runs the evaluation; returns what `report.json` holds.
pub fn eval_embed(args: &EvalArgs) -> Result<EvalReport> {
    let model = crate::model::ModelFile::load(&args.model)?;
    let pre = model.meta.preprocessing.clone();
    let stored_tail = model.meta.tail.clone();
    let stored_thresholds = model.meta.thresholds;
    let version = model.meta.version.clone();
    // The settings the model was trained with, as the server uses them.
    let detect_config = model.meta.detector.clone().unwrap_or_default();
    let frame = model.meta.frame;
    let embedder = Embedder::new(model);
    let detector = if args.detect {
        let detector = FaceDetector::new(detect_config)
            .map_err(|e| EvalError::Invalid(format!("face detector: {e}")))?
            .with_frame(frame);
        Some(detector)
    } else {
        None
    };
    let (set, folder, pairs, detection) = match &args.pairs {
        Some(file) => {
            if args.baseline_train.is_some() {
                return Err(EvalError::Invalid(
                    "--baseline-train compares on a --data folder of identities; it does not \
                     combine with --pairs"
                        .into(),
                ));
            }
            let run = run_pairs(
                file,
                args.folds.as_deref(),
                &args.data,
                &embedder,
                detector.as_ref(),
            )?;
            (run.open_set, None, Some(run.report), run.detection)
        }
        None => {
            let (folder, detection) = scan_and_crop(&args.data, detector.as_ref(), 1)?;
            let set = Embedded {
                identities: folder.identities().to_vec(),
                paths: folder.paths().to_vec(),
                labels: folder.labels().to_vec(),
                rows: embedder.embed(folder.images())?,
            };
            (set, Some(folder), None, detection)
        }
    };
    let protocol = crate::eval::ProtocolConfig::rounds(args.seed, args.rounds, args.enroll);
    let dim = embedder.dim();
    let flat: Vec<f32> = set.rows.iter().flat_map(|r| r.iter().copied()).collect();
    let embeddings = Array2::from_shape_vec((set.rows.len(), dim), flat)
        .map_err(|e| EvalError::Invalid(format!("embeddings: {e}")))?;
    let mut methods = vec![MethodReport {
        name: "model".into(),
        report: open_set_protocol(embeddings.view(), &set.labels, &protocol)?,
    }];
    if let (Some(train_dir), Some(folder)) = (&args.baseline_train, &folder) {
        let min_images = crate::data::ScanOptions::default().min_images;
        let (train, _) = scan_and_crop(train_dir, detector.as_ref(), min_images)?;
        let baselines = baseline_reports(&train, folder, &pre, &protocol)?;
        methods.extend(
            baselines
                .into_iter()
                .map(|(name, report)| MethodReport { name, report }),
        );
    }
    std::fs::create_dir_all(&args.out).map_err(|e| EvalError::io(&args.out, e))?;
    let mut report = EvalReport {
        model: args.model.display().to_string(),
        model_version: version,
        data: args.data.display().to_string(),
        identities: set.identities.len(),
        images: set.rows.len(),
        baseline_train: args
            .baseline_train
            .as_ref()
            .map(|p| p.display().to_string()),
        methods,
        pairs,
        detection,
        promise: None,
    };
    let scores = if args.impostors_out.is_some()
        || (args.calibrate_into.is_some() && args.impostors.is_empty())
    {
        calib::run_scores(embeddings.view(), &set.labels, args.seed)?
    } else {
        Vec::new()
    };
    if let Some(path) = &args.impostors_out {
        calib::write_scores(path, &scores)?;
    }
    let mut tail = stored_tail;
    if let Some(path) = &args.calibrate_into {
        tail = Some(calib::calibrate_into(args, &report, path, &scores)?);
    }
    if args.check_promise {
        let tail = tail.as_ref().ok_or_else(|| {
            EvalError::Invalid(
                "--check-promise: the model carries no impostor tail (calibrate it with \
                 --calibrate-into first)"
                    .into(),
            )
        })?;
        let rows = calib::promise(
            args,
            embeddings.view(),
            &set.labels,
            tail,
            &stored_thresholds,
        )?;
        report.promise = Some(rows);
    }
    write_json(&args.out.join("report.json"), &report)?;
    let mut curves: Vec<(&str, &[crate::eval::RocPoint])> = report
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.report.roc.as_slice()))
        .collect();
    if let Some(pairs) = &report.pairs {
        curves.push(("LFW pairs", pairs.roc.as_slice()));
    }
    write_roc_png(&args.out.join("roc.png"), &curves)?;
    if let Some(path) = &args.export {
        export(path, &set)?;
    }
    Ok(report)
}

/// The report as a table, one line per method.
pub fn table(report: &EvalReport) -> String {
    let mut out = format!(
        "{} identities, {} images; mean ± std over rounds\n{:<24} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}\n",
        report.identities,
        report.images,
        "method",
        "rank-1",
        "DIR@FAR1%",
        "DIR@FAR10%",
        "TAR@FAR0.1%",
        "TAR@FAR1%",
        "EER"
    );
    if let Some(d) = &report.detection {
        out.insert_str(
            0,
            &format!(
                "face detection: no face in {} of {} images; {} identit(y/ies) left out\n",
                d.no_face, d.photos, d.identities_left_out
            ),
        );
    }
    if let Some(pairs) = &report.pairs {
        out.insert_str(0, &pairs::table(pairs));
    }
    for m in &report.methods {
        let r = &m.report;
        let at = |rates: &[crate::eval::protocol::RateAtFar], far: f64| {
            rates
                .iter()
                .find(|x| (x.far - far).abs() < 1e-12)
                .map_or_else(
                    || "-".to_string(),
                    |x| format!("{:.3}±{:.3}", x.mean, x.std),
                )
        };
        out.push_str(&format!(
            "{:<24} {:>13} {:>13} {:>13} {:>13} {:>13} {:>13}\n",
            m.name,
            format!("{:.3}±{:.3}", r.rank1.mean, r.rank1.std),
            at(&r.dir_at_far, 0.01),
            at(&r.dir_at_far, 0.1),
            at(&r.tar_at_far, 0.001),
            at(&r.tar_at_far, 0.01),
            format!("{:.3}±{:.3}", r.eer.mean, r.eer.std),
        ));
    }
    if let Some(rows) = &report.promise {
        out.push_str(&calib::promise_table(rows));
    }
    out
}

/// The folder at `dir`; with a detector, each image replaced by its largest face's crop,
/// images without one left out, then identities with fewer than `min_images` crops.
fn scan_and_crop(
    dir: &Path,
    detector: Option<&FaceDetector>,
    min_images: usize,
) -> Result<(ImageFolder, Option<DetectionSummary>)> {
    let folder = scan(dir)?;
    let Some(detector) = detector else {
        return Ok((folder, None));
    };
    let (cropped, report) = crop_faces(&folder, detector, min_images, Pick::Largest)?;
    if let Some(message) = report.message() {
        eprintln!("warning: {}: {message}", dir.display());
    }
    let summary = DetectionSummary::new(folder.len(), &report.no_face, report.left_out.len());
    Ok((cropped, Some(summary)))
}

fn scan(dir: &std::path::Path) -> Result<ImageFolder> {
    if !dir.is_dir() {
        return Err(EvalError::io(
            dir,
            "no such directory (expected one sub-folder of images per identity)",
        ));
    }
    let folder = ImageFolder::scan(dir)?;
    if let Some(message) = folder.report().message(folder.root()) {
        eprintln!("warning: {message}");
    }
    Ok(folder)
}

/// One JSON line per image: `{"path", "identity", "embedding"}`.
fn export(path: &std::path::Path, set: &Embedded) -> Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        path: String,
        identity: &'a str,
        embedding: &'a [f32],
    }
    let io = |e: std::io::Error| EvalError::io(path, e);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for ((p, &label), embedding) in set.paths.iter().zip(&set.labels).zip(&set.rows) {
        let line = Line {
            path: p.display().to_string(),
            identity: set.identities.get(label).map_or("", String::as_str),
            embedding,
        };
        let json = serde_json::to_string(&line).map_err(|e| EvalError::io(path, e))?;
        writeln!(out, "{json}").map_err(io)?;
    }
    out.flush().map_err(io)
}
