//! `eval-embed`: the open-set protocol on identities a model never saw, optionally beside
//! the raw-pixel and Fisherfaces baselines fitted on a training folder with the model's
//! own preprocessing; with `--pairs`, the LFW verification protocol
//! ([`super::eval_pairs`]) and the open-set protocol on the identities of its folds;
//! with `--detect`, on the face crops of photographs. Writes `report.json` and
//! `roc.png`; `--export` writes every image's embedding as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use ndarray::Array2;
use serde::Serialize;

use super::error::{Result, TrainError};
use super::eval_calibrate as calib;
use super::eval_pairs::{DetectionSummary, Embedded, PairsReport, run_pairs};
use crate::data::{ImageFolder, Pick, crop_faces};
use crate::detect::FaceDetector;
use crate::eval::compare::baseline_reports;
use crate::eval::promise::PromiseRow;
use crate::eval::report::{write_json, write_roc_png};
use crate::eval::{ProtocolReport, open_set_protocol};
use crate::model::Embedder;

/// Judge a faceprint model on identities it never saw: half of the identities are known
/// (each enrolls --enroll images), the rest unknown; several seeded rounds. Prints
/// rank-1, DIR@FAR 1% and 10%, TAR@FAR 0.1% and 1%, EER (mean ± std over rounds) and
/// writes report.json and roc.png to --out.
#[derive(Debug, Clone, Parser)]
#[command(name = "eval-embed", version)]
pub struct EvalArgs {
    /// The model file (.safetensors) written by train-embed.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Images of identities the model never saw: one sub-folder per identity. With
    /// --pairs, the photos in the LFW layout (`DIR/<name>/<name>_0001.jpg`).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// An LFW View 2 pairs file (`<folds> <n>`, then per fold n matched lines
    /// `name idx1 idx2` and n mismatched lines `name1 idx1 name2 idx2`): report the
    /// accuracy over folds, each at the threshold chosen on the other folds, pooled
    /// TAR@FAR and EER, and the open-set protocol on the identities of the folds with at
    /// least two photos.
    #[arg(long, value_name = "FILE")]
    pub pairs: Option<PathBuf>,
    /// The folds of --pairs to use, numbered from 1 (e.g. `1,2,5`); all by default.
    #[arg(long, value_delimiter = ',', requires = "pairs")]
    pub folds: Option<Vec<usize>>,
    /// Embed the crop of a face found by the server's detector instead of the whole
    /// image: the largest embeddable face, or with --pairs the one nearest the image
    /// centre. Images without a face are counted and left out (a pair missing one is a
    /// wrong answer).
    #[arg(long)]
    pub detect: bool,
    /// Fit the classical baselines on this folder (other identities than --data), with
    /// the model's preprocessing, and report them beside the model: raw pixels,
    /// Eigenfaces, and PCA+LDA (Fisherfaces, as published and on 100 PCA components).
    #[arg(long, value_name = "DIR")]
    pub baseline_train: Option<PathBuf>,
    /// Protocol rounds (seeded splits into known and unknown identities).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Images enrolled per known identity (at most all but one of its images).
    #[arg(long, default_value_t = 5)]
    pub enroll: usize,
    /// Seed of the rounds.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output directory for report.json and roc.png.
    #[arg(long, value_name = "DIR", default_value = "eval-out")]
    pub out: PathBuf,
    /// Write every image's embedding as JSON lines {"path", "identity", "embedding"}.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Write a copy of the model (same weights, same version) carrying the impostor
    /// tail fitted on the strangers-against-identity scores of --data (or of the
    /// --impostors files), from which the server derives each gallery's threshold; with
    /// no --impostors, its fixed thresholds also become the open-set ones measured here
    /// at FAR 0.1%, 1% and 10%. May name --model itself.
    #[arg(long, value_name = "FILE")]
    pub calibrate_into: Option<PathBuf>,
    /// Write the strangers-against-identity scores of --data (1 to 3 enrolled faces per
    /// identity) as JSON, to be pooled by a later --calibrate-into --impostors
    /// (cross-fitting: each file scored by a model that never saw its identities).
    #[arg(long, value_name = "FILE")]
    pub impostors_out: Option<PathBuf>,
    /// --impostors-out files of other runs, pooled: --calibrate-into fits the tail on
    /// them instead of on --data.
    #[arg(long, value_name = "FILE", value_delimiter = ',', num_args = 1..)]
    pub impostors: Vec<PathBuf>,
    /// Check the model's impostor tail (or the one --calibrate-into just fitted) on
    /// --data, identities it must never have seen: the measured open-set FAR at the
    /// default decision against the promised FAR 1% and 0.1%, at gallery sizes 5 to the
    /// most the data allow, with DIR; writes promise.csv and promise.png.
    #[arg(long)]
    pub check_promise: bool,
    /// Galleries drawn per size for --check-promise.
    #[arg(long, default_value_t = 20)]
    pub promise_draws: usize,
    /// Faces enrolled per gallery identity for --check-promise.
    #[arg(long, default_value_t = 1)]
    pub promise_enroll: usize,
}

/// One evaluated method: the model, or a baseline of [`baseline_reports`].
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    pub name: String,
    pub report: ProtocolReport,
}

/// Everything `report.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub model_version: String,
    pub data: String,
    pub identities: usize,
    pub images: usize,
    pub baseline_train: Option<String>,
    pub methods: Vec<MethodReport>,
    /// With --pairs: the verification protocol's numbers.
    pub pairs: Option<PairsReport>,
    /// With --detect: images searched and those without a face.
    pub detection: Option<DetectionSummary>,
    /// With --check-promise: measured against promised open-set FAR.
    pub promise: Option<Vec<PromiseRow>>,
}

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
            .map_err(|e| TrainError::Config(format!("face detector: {e}")))?
            .with_frame(frame);
        Some(detector)
    } else {
        None
    };
    let (set, folder, pairs, detection) = match &args.pairs {
        Some(file) => {
            if args.baseline_train.is_some() {
                return Err(TrainError::Config(
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
            let images: Vec<image::DynamicImage> = folder
                .images()
                .iter()
                .map(|g| image::DynamicImage::ImageLuma8(g.clone()))
                .collect();
            let set = Embedded {
                identities: folder.identities().to_vec(),
                paths: folder.paths().to_vec(),
                labels: folder.labels().to_vec(),
                rows: embedder.embed(&images)?,
            };
            (set, Some(folder), None, detection)
        }
    };
    let protocol = super::validate::protocol(args.seed, args.rounds, args.enroll);
    let dim = embedder.dim();
    let flat: Vec<f32> = set.rows.iter().flatten().copied().collect();
    let embeddings = Array2::from_shape_vec((set.rows.len(), dim), flat)
        .map_err(|e| TrainError::Config(format!("embeddings: {e}")))?;
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
    std::fs::create_dir_all(&args.out).map_err(|e| TrainError::io(&args.out, e))?;
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
            TrainError::Config(
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
        out.insert_str(0, &super::eval_pairs::table(pairs));
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
        return Err(TrainError::io(
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
    let io = |e: std::io::Error| TrainError::io(path, e);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for ((p, &label), embedding) in set.paths.iter().zip(&set.labels).zip(&set.rows) {
        let line = Line {
            path: p.display().to_string(),
            identity: set.identities.get(label).map_or("", String::as_str),
            embedding,
        };
        let json = serde_json::to_string(&line).map_err(|e| TrainError::io(path, e))?;
        writeln!(out, "{json}").map_err(io)?;
    }
    out.flush().map_err(io)
}
