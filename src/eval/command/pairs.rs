//! `eval-embed --pairs`: the LFW View 2 verification protocol on a pairs file and a
//! folder of photos in the LFW layout (`<dir>/<name>/<name>_<idx:04>.jpg`).
//!
//! Every photo is embedded once: whole, or (with a detector) the crop of the
//! embeddable face nearest the image centre, since LFW photos are framed on the person
//! they name. A pair's score is the cosine similarity of its two embeddings. Accuracy
//! is [`folded_accuracy`] over the chosen folds; TAR@FAR, EER and the ROC pool their
//! pairs. A photo without a face leaves its pairs unscored: wrong in every accuracy,
//! rejected in the pooled metrics
//! ([`NO_FACE_SCORE`](crate::eval::verification::NO_FACE_SCORE)).
//!
//! The same photos also feed the open-set protocol: every identity named in the chosen
//! folds with at least two embedded photos in `<dir>/<name>/` (all of them, not only
//! those the pairs name). LFW's folds are identity-disjoint, so folds kept aside stay
//! unseen.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use image::GrayImage;
use rayon::prelude::*;
use serde::Serialize;

use crate::data::folder::decode;
use crate::data::{Pick, face_crop};
use crate::detect::FaceDetector;
use crate::embedding::Embedding;
use crate::eval::error::{EvalError, Result};
use crate::eval::metrics::{AtFar, RocPoint, eer, roc, tar_at_far};
use crate::eval::protocol::MeanStd;
use crate::eval::verification::genuine_and_impostor;
use crate::eval::{FoldAccuracy, PairsFile, ScoredPair, folded_accuracy};
use crate::model::Embedder;

/// Photos decoded, cropped and embedded at a time (bounds memory on large folders).
const CHUNK: usize = 256;
/// TAR is reported at these FARs, as in the open-set protocol.
const TAR_FARS: [f64; 2] = [0.001, 0.01];
const ROC_POINTS: usize = 60;
/// Paths of photos without a face quoted in the report.
const QUOTED: usize = 10;

/// What the LFW pairs protocol measured.
#[derive(Debug, Clone, Serialize)]
pub struct PairsReport {
    pub file: String,
    /// The folds used, numbered from 1 as in the file.
    pub folds: Vec<usize>,
    pub pairs: usize,
    /// Pairs with a photo in which no face was found: counted as wrong answers.
    pub pairs_without_face: usize,
    /// Mean and sample standard deviation of the folds' accuracies.
    pub accuracy: MeanStd,
    /// Each fold's threshold (chosen on the other folds) and accuracy.
    pub fold_accuracy: Vec<FoldAccuracy>,
    /// Pooled over the chosen folds.
    pub tar_at_far: Vec<AtFar>,
    pub eer: f64,
    pub roc: Vec<RocPoint>,
}

/// What face detection left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DetectionSummary {
    /// Photos searched for a face.
    pub photos: usize,
    /// Photos without an embeddable face.
    pub no_face: usize,
    /// The first few of them.
    pub no_face_examples: Vec<String>,
    /// Identities of the open-set protocol left out for want of photos with a face.
    pub identities_left_out: usize,
}

impl DetectionSummary {
    pub fn new(photos: usize, no_face: &[PathBuf], identities_left_out: usize) -> Self {
        DetectionSummary {
            photos,
            no_face: no_face.len(),
            no_face_examples: no_face
                .iter()
                .take(QUOTED)
                .map(|p| p.display().to_string())
                .collect(),
            identities_left_out,
        }
    }
}

/// Embedded images of several identities: row `i` is `paths[i]`, of `labels[i]`.
#[derive(Debug, Clone, Default)]
pub struct Embedded {
    pub identities: Vec<String>,
    pub paths: Vec<PathBuf>,
    pub labels: Vec<usize>,
    pub rows: Vec<Embedding>,
}

/// One run of the pairs protocol.
#[derive(Debug, Clone)]
pub struct PairsRun {
    pub report: PairsReport,
    /// `None` without a detector.
    pub detection: Option<DetectionSummary>,
    /// The open-set identities of the chosen folds.
    pub open_set: Embedded,
}

/// Runs the protocol on the folds `chosen` (all when `None`) of `file` with photos
/// under `dir`.
pub fn run_pairs(
    file: &Path,
    chosen: Option<&[usize]>,
    dir: &Path,
    embedder: &Embedder,
    detector: Option<&FaceDetector>,
) -> Result<PairsRun> {
    let pairs_file = PairsFile::read(file)?;
    let folds = pairs_file.select(chosen)?;
    pairs_file.check_images(folds.iter().flat_map(|(_, p)| p.iter()), dir)?;

    // Every photo once: those the pairs name, then all photos of their identities.
    let mut index: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut add = |path: PathBuf| -> usize {
        *index.entry(path.clone()).or_insert_with(|| {
            paths.push(path);
            paths.len() - 1
        })
    };
    let pair_rows: Vec<Vec<(usize, usize, bool)>> = folds
        .iter()
        .map(|(_, pairs)| {
            pairs
                .iter()
                .map(|p| (add(p.a.path(dir)), add(p.b.path(dir)), p.same))
                .collect()
        })
        .collect();
    let names: BTreeSet<&str> = folds
        .iter()
        .flat_map(|(_, p)| p.iter())
        .flat_map(|p| [p.a.name.as_str(), p.b.name.as_str()])
        .collect();
    let mut candidates: Vec<(String, Vec<usize>)> = Vec::new();
    for name in names {
        let photos = identity_photos(&dir.join(name))?;
        if photos.len() >= 2 {
            candidates.push((name.to_string(), photos.into_iter().map(&mut add).collect()));
        }
    }

    let rows = embed_photos(&paths, embedder, detector)?;
    let cosine =
        |i: usize, j: usize| -> Option<f32> { Some(rows[i].as_ref()?.cosine(rows[j].as_ref()?)) };
    let scored: Vec<(usize, Vec<ScoredPair>)> = folds
        .iter()
        .zip(&pair_rows)
        .map(|((fold, _), rows)| {
            let pairs = rows
                .iter()
                .map(|&(a, b, same)| ScoredPair {
                    score: cosine(a, b),
                    same,
                })
                .collect();
            (*fold, pairs)
        })
        .collect();
    let all = scored.iter().flat_map(|(_, p)| p.iter());
    let (genuine, impostor) = genuine_and_impostor(all.clone());
    let folded = folded_accuracy(&scored)?;
    let report = PairsReport {
        file: file.display().to_string(),
        folds: scored.iter().map(|(f, _)| *f).collect(),
        pairs: genuine.len() + impostor.len(),
        pairs_without_face: all.filter(|p| p.score.is_none()).count(),
        accuracy: folded.accuracy,
        fold_accuracy: folded.folds,
        tar_at_far: tar_at_far(&genuine, &impostor, &TAR_FARS)?,
        eer: eer(&genuine, &impostor)?,
        roc: roc(&genuine, &impostor, ROC_POINTS)?,
    };

    let mut open_set = Embedded::default();
    let mut left_out = 0;
    for (name, photos) in candidates {
        let found: Vec<usize> = photos.into_iter().filter(|&i| rows[i].is_some()).collect();
        if found.len() < 2 {
            left_out += 1;
            continue;
        }
        let label = open_set.identities.len();
        open_set.identities.push(name);
        for i in found {
            if let Some(row) = &rows[i] {
                open_set.paths.push(paths[i].clone());
                open_set.labels.push(label);
                open_set.rows.push(row.clone());
            }
        }
    }
    let detection = detector.map(|_| {
        let no_face: Vec<PathBuf> = paths
            .iter()
            .zip(&rows)
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        DetectionSummary::new(paths.len(), &no_face, left_out)
    });
    Ok(PairsRun {
        report,
        detection,
        open_set,
    })
}

/// The photos of one identity: the visible files of its folder, sorted by name.
fn identity_photos(dir: &Path) -> Result<Vec<PathBuf>> {
    let io = |e: std::io::Error| EvalError::io(dir, e);
    let mut photos = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let visible = !entry.file_name().to_string_lossy().starts_with('.');
        if visible && entry.file_type().map_err(io)?.is_file() {
            photos.push(entry.path());
        }
    }
    photos.sort();
    Ok(photos)
}

/// The embedding of each photo, `None` where `detector` found no embeddable face.
fn embed_photos(
    paths: &[PathBuf],
    embedder: &Embedder,
    detector: Option<&FaceDetector>,
) -> Result<Vec<Option<Embedding>>> {
    let mut out = Vec::with_capacity(paths.len());
    for (n, chunk) in paths.chunks(CHUNK).enumerate() {
        let crops: Vec<Option<GrayImage>> = chunk
            .par_iter()
            .map(|path| {
                let image = decode(path).map_err(|e| EvalError::io(path, e))?;
                Ok(match detector {
                    Some(d) => face_crop(d, &image, Pick::NearestCentre),
                    None => Some(image),
                })
            })
            .collect::<Result<_>>()?;
        let found: Vec<bool> = crops.iter().map(Option::is_some).collect();
        let faces: Vec<GrayImage> = crops.into_iter().flatten().collect();
        let mut rows = embedder.embed(&faces)?.into_iter();
        out.extend(
            found
                .into_iter()
                .map(|f| if f { rows.next() } else { None }),
        );
        tracing::info!(
            "embedded {} of {} photos",
            (n * CHUNK + chunk.len()),
            paths.len()
        );
    }
    Ok(out)
}

/// The pairs report as lines of text.
pub fn table(report: &PairsReport) -> String {
    let folds: Vec<String> = report.folds.iter().map(usize::to_string).collect();
    let per_fold: Vec<String> = report
        .fold_accuracy
        .iter()
        .map(|f| format!("{}: {:.3}", f.fold, f.accuracy))
        .collect();
    let tar: Vec<String> = report
        .tar_at_far
        .iter()
        .map(|t| format!("TAR@FAR{}% {:.3}", t.far * 100.0, t.value))
        .collect();
    format!(
        "pairs {} (folds {}): {} pairs, {} without a face (counted wrong)\n\
         accuracy {:.4} ± {:.4} over folds ({})\n{}  EER {:.3} (pooled)\n",
        report.file,
        folds.join(","),
        report.pairs,
        report.pairs_without_face,
        report.accuracy.mean,
        report.accuracy.std,
        per_fold.join(", "),
        tar.join("  "),
        report.eer,
    )
}
