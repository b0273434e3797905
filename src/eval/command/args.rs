//! `eval-embed`'s command line.

use std::path::PathBuf;

use clap::Parser;

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
