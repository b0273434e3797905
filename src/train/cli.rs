//! Command-line flags of `train-embed`. Every flag overrides the same option of the
//! `--config` file (or the default when there is no file; see
//! [`TrainConfig`](super::config::TrainConfig)); `train::overrides` applies them.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Parser, ValueEnum};

use super::config::Selection;
use crate::data::NormalisationKind;

/// Learn a face-embedding network from a folder of face images (one sub-folder per
/// identity) and write it as a faceprint model file.
///
/// Options come from `--config FILE` (TOML, same names as below with `_` for `-`), then
/// from these flags. Each epoch validates on held-out identities, writes a checkpoint,
/// a line of `log.jsonl` and `curves.png` in the run directory.
#[derive(Debug, Clone, Default, Parser)]
#[command(name = "train-embed", version)]
pub struct TrainArgs {
    /// TOML file with any of the options below; flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue the run in --run-dir from its last checkpoint (only --epochs may change).
    #[arg(long)]
    pub resume: bool,

    /// Training images: one sub-folder per identity, any format the `image` crate reads.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// Output model file (.safetensors) [default: model.safetensors].
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run directory for checkpoints, log.jsonl and curves.png [default: runs/train].
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Number of epochs [default: 30].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed of every random choice [default: 42].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Worker threads; same seed + same threads = same weights [default: all cores].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Fraction of identities held out for validation, in (0, 1) [default: 0.2].
    #[arg(long)]
    pub val_fraction: Option<f32>,
    /// Which epoch's network is saved: `best` on validation or the `last` [default: best].
    #[arg(long, value_enum)]
    pub selection: Option<Selection>,
    /// Embed each face and its mirror image and average them [default: true].
    #[arg(long)]
    pub flip_average: Option<bool>,
    /// Crop each image around its largest face with the server's detector and crop
    /// settings (`[detector]` in the file) before training [default: false].
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub detect: Option<bool>,
    /// Identities per batch (P of P×K) [default: 16].
    #[arg(long)]
    pub p: Option<usize>,
    /// Images per identity in a batch (K of P×K) [default: 4].
    #[arg(long)]
    pub k: Option<usize>,

    /// Network input height in pixels [default: 56].
    #[arg(long)]
    pub height: Option<usize>,
    /// Network input width in pixels [default: 48].
    #[arg(long)]
    pub width: Option<usize>,
    /// Photometric normalisation after greyscale + resize [default: per-image].
    #[arg(long, value_enum)]
    pub normalisation: Option<NormalisationKind>,
    /// Tan–Triggs parameters to change, e.g. `sigma0=0.5,sigma1=2` (of gamma, sigma0,
    /// sigma1, alpha, tau; the others keep their configured or paper values:
    /// 0.2, 1, 2, 0.1, 10).
    #[arg(long, value_name = "NAME=VALUE,...")]
    pub tan_triggs: Option<String>,
    /// Turn training augmentation on or off [default: true].
    #[arg(long)]
    pub augment: Option<bool>,
    /// Augmentation: random horizontal flips [default: true].
    #[arg(long)]
    pub flip: Option<bool>,
    /// Augmentation: largest random shift in pixels, each direction [default: 2].
    #[arg(long)]
    pub max_shift: Option<usize>,
    /// Augmentation: probability of a random cast shadow (side lighting), in [0, 1]
    /// [default: 0].
    #[arg(long)]
    pub shadow: Option<f32>,
    /// Augmentation: largest brightness offset, pixels in [0, 1] [default: 0.1].
    #[arg(long)]
    pub brightness: Option<f32>,
    /// Augmentation: largest relative contrast change [default: 0.2].
    #[arg(long)]
    pub contrast: Option<f32>,

    /// Network family [default: cnn].
    #[arg(long, value_enum)]
    pub arch: Option<ArchArg>,
    /// MLP hidden layer sizes, comma-separated (e.g. 512,256).
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// MLP activation.
    #[arg(long, value_enum)]
    pub activation: Option<ActivationArg>,
    /// Pieces per maxout unit (with --activation maxout) [default: 2].
    #[arg(long)]
    pub maxout_k: Option<usize>,
    /// MLP: batch normalisation after each hidden linear layer.
    #[arg(long)]
    pub batch_norm: Option<bool>,
    /// Dropout probability before the embedding layer, in [0, 1).
    #[arg(long)]
    pub dropout: Option<f32>,
    /// CNN channel widths, comma-separated [default: 32,64,128].
    #[arg(long, value_delimiter = ',')]
    pub widths: Option<Vec<usize>>,
    /// CNN fully connected width before the embedding [default: 256].
    #[arg(long)]
    pub fc: Option<usize>,
    /// ResNet stem width [default: 32].
    #[arg(long)]
    pub stem: Option<usize>,
    /// ResNet stages as WIDTHxBLOCKS, comma-separated [default: 32x2,64x2,128x2].
    #[arg(long, value_delimiter = ',', value_parser = parse_stage)]
    pub stages: Option<Vec<(usize, usize)>>,
    /// Embedding dimension [default: 128].
    #[arg(long)]
    pub embedding_dim: Option<usize>,

    /// Training loss [default: softmax].
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// Margin of the triplet (default 0.2) or contrastive (default 1.0) loss, or of the
    /// softmax loss's head: CosFace's for the cosine head (default 0), ArcFace's angle
    /// in radians (default 0.5), SphereFace's integer m (default 4).
    #[arg(long)]
    pub margin: Option<f32>,
    /// Triplet mining: all valid triplets, batch-hard, or FaceNet semi-hard.
    #[arg(long, value_enum)]
    pub mining: Option<MiningArg>,
    /// Triplet distance: Euclidean or squared Euclidean.
    #[arg(long, value_enum)]
    pub distance: Option<DistanceArg>,
    /// Triplet soft margin: ln(1 + exp(D(a,p) − D(a,n) + margin)) instead of the hinge,
    /// so satisfied triplets keep pulling; the margin may then be 0 [default: false].
    #[arg(long)]
    pub soft_margin: Option<bool>,
    /// Softmax classifier head: cosine (scaled, normalised weights), linear, or the
    /// cosine head with an ArcFace or SphereFace margin.
    #[arg(long, value_enum)]
    pub head: Option<HeadArg>,
    /// Scale s of the cosine head's logits s·cos θ [default: 16].
    #[arg(long)]
    pub head_scale: Option<f32>,

    /// Optimiser [default: adam]; adamw = adam with decoupled weight decay.
    #[arg(long, value_enum)]
    pub optimizer: Option<OptimizerArg>,
    /// Base learning rate [default: 0.001].
    #[arg(long)]
    pub lr: Option<f32>,
    /// SGD momentum μ.
    #[arg(long)]
    pub momentum: Option<f32>,
    /// SGD: Nesterov momentum.
    #[arg(long)]
    pub nesterov: Option<bool>,
    /// Weight decay λ (L2 for sgd/adagrad/adam, decoupled for adamw).
    #[arg(long)]
    pub weight_decay: Option<f32>,
    /// Max-norm constraint c on each unit's incoming weights.
    #[arg(long)]
    pub max_norm: Option<f32>,
    /// Clip the gradients' global norm to this value.
    #[arg(long)]
    pub clip_grad_norm: Option<f32>,
    /// Learning-rate decay over epochs [default: constant].
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleArg>,
    /// Linear warm-up length in epochs.
    #[arg(long)]
    pub warmup: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    Mlp,
    Cnn,
    /// Residual CNN of BasicBlocks.
    Resnet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ActivationArg {
    Relu,
    Prelu,
    Maxout,
    Tanh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    Triplet,
    Contrastive,
    Softmax,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MiningArg {
    All,
    BatchHard,
    SemiHard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DistanceArg {
    Euclidean,
    Squared,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeadArg {
    Cosine,
    Linear,
    /// Cosine head with ArcFace's additive angular margin.
    Arcface,
    /// Cosine head with SphereFace's multiplicative angular margin.
    Sphereface,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OptimizerArg {
    Sgd,
    Adagrad,
    Adam,
    Adamw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScheduleArg {
    Constant,
    Cosine,
    Step,
    Plateau,
}

/// `--selection best|last`: the command line's side of [`Selection`], which the
/// configuration keeps free of clap.
impl ValueEnum for Selection {
    fn value_variants<'a>() -> &'a [Self] {
        &[Selection::Best, Selection::Last]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Selection::Best => PossibleValue::new("best").help(
                "The epoch with the best validation metrics (see `ValMetrics::selection_key`); \
                 equal metrics go to the later epoch",
            ),
            Selection::Last => PossibleValue::new("last").help(
                "The last epoch, whatever validation says: the honest choice when the \
                 validation identities are too few to rank epochs (validation is still run \
                 and logged, and thresholds are still calibrated on it)",
            ),
        })
    }
}

/// A `--stages` item: `WIDTHxBLOCKS`, e.g. `64x2`.
pub fn parse_stage(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("expected WIDTHxBLOCKS such as 64x2, got '{s}'");
    let (width, blocks) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let width = width.trim().parse().map_err(|_| bad())?;
    let blocks = blocks.trim().parse().map_err(|_| bad())?;
    Ok((width, blocks))
}
