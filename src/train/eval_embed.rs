//! `eval-embed`: the open-set protocol on identities a model never saw, optionally beside
//! the raw-pixel and Fisherfaces baselines fitted on a training folder with the model's
//! own preprocessing. Writes `report.json` and `roc.png`; `--export` writes every
//! image's embedding as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Parser;
use ndarray::Array2;
use serde::Serialize;

use super::error::{Result, TrainError};
use crate::data::ImageFolder;
use crate::eval::compare::baseline_reports;
use crate::eval::report::{write_json, write_roc_png};
use crate::eval::{ProtocolReport, open_set_protocol};
use crate::model::{Embedder, ModelFile, Thresholds};

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
    /// Images of identities the model never saw: one sub-folder per identity.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
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
    /// Write a copy of the model (same weights, same version) whose thresholds are the
    /// open-set ones measured here, at FAR 0.1%, 1% and 10% of unknown probes: the
    /// server's default is then calibrated on these identities and this gallery size
    /// (half of --data known). May name --model itself.
    #[arg(long, value_name = "FILE")]
    pub calibrate_into: Option<PathBuf>,
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
}

/// Runs the evaluation; returns what `report.json` holds.
pub fn eval_embed(args: &EvalArgs) -> Result<EvalReport> {
    let model = ModelFile::load(&args.model)?;
    let pre = model.meta.preprocessing.clone();
    let version = model.meta.version.clone();
    let embedder = Embedder::new(model);
    let folder = scan(&args.data)?;
    let protocol = super::validate::protocol(args.seed, args.rounds, args.enroll);
    let images: Vec<image::DynamicImage> = folder
        .images()
        .iter()
        .map(|g| image::DynamicImage::ImageLuma8(g.clone()))
        .collect();
    let rows = embedder.embed(&images)?;
    let dim = embedder.dim();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    let embeddings = Array2::from_shape_vec((rows.len(), dim), flat)
        .map_err(|e| TrainError::Config(format!("embeddings: {e}")))?;
    let mut methods = vec![MethodReport {
        name: "model".into(),
        report: open_set_protocol(embeddings.view(), folder.labels(), &protocol)?,
    }];
    if let Some(train_dir) = &args.baseline_train {
        let train = scan(train_dir)?;
        let baselines = baseline_reports(&train, &folder, &pre, &protocol)?;
        methods.extend(
            baselines
                .into_iter()
                .map(|(name, report)| MethodReport { name, report }),
        );
    }
    std::fs::create_dir_all(&args.out).map_err(|e| TrainError::io(&args.out, e))?;
    let report = EvalReport {
        model: args.model.display().to_string(),
        model_version: version,
        data: args.data.display().to_string(),
        identities: folder.identities().len(),
        images: folder.len(),
        baseline_train: args
            .baseline_train
            .as_ref()
            .map(|p| p.display().to_string()),
        methods,
    };
    write_json(&args.out.join("report.json"), &report)?;
    let curves: Vec<(&str, &[crate::eval::RocPoint])> = report
        .methods
        .iter()
        .map(|m| (m.name.as_str(), m.report.roc.as_slice()))
        .collect();
    write_roc_png(&args.out.join("roc.png"), &curves)?;
    if let Some(path) = &args.export {
        export(path, &folder, &rows)?;
    }
    if let Some(path) = &args.calibrate_into {
        calibrate_into(args, &report, path)?;
    }
    Ok(report)
}

/// Writes the model with the open-set thresholds of `report` (the `model` method) to
/// `path`, and records where they came from in its training summary.
fn calibrate_into(args: &EvalArgs, report: &EvalReport, path: &Path) -> Result<()> {
    let mut model = ModelFile::load(&args.model)?;
    let measured = &report.methods[0].report.open_set_thresholds;
    let at = |far: f64| {
        measured
            .iter()
            .find(|t| (t.far_target - far).abs() < 1e-12)
            .map(|t| t.threshold)
            .ok_or_else(|| TrainError::Config(format!("no threshold measured at FAR {far}")))
    };
    model.meta.thresholds = Thresholds {
        far_0_1pct: at(0.001)?,
        far_1pct: at(0.01)?,
        far_10pct: at(0.1)?,
    };
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
                "unknown_probes": measured.first().map_or(0, |t| t.impostors),
            }),
        );
    }
    model.save(path)?;
    Ok(())
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
    out
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
fn export(path: &std::path::Path, folder: &ImageFolder, rows: &[Vec<f32>]) -> Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        path: String,
        identity: &'a str,
        embedding: &'a [f32],
    }
    let io = |e: std::io::Error| TrainError::io(path, e);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for ((p, &label), embedding) in folder.paths().iter().zip(folder.labels()).zip(rows) {
        let line = Line {
            path: p.display().to_string(),
            identity: folder.identities().get(label).map_or("", String::as_str),
            embedding,
        };
        let json = serde_json::to_string(&line).map_err(|e| TrainError::io(path, e))?;
        writeln!(out, "{json}").map_err(io)?;
    }
    out.flush().map_err(io)
}
