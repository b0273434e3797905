//! Command-line flags of `train-embed`. Every flag overrides the same option of the
//! `--config` file (or the default when there is no file); see [`TrainConfig`].

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::config::TrainConfig;
use super::error::{Result, TrainError};
use super::overrides::set;
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
    pub selection: Option<super::config::Selection>,
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
    #[arg(long, value_delimiter = ',', value_parser = super::arch_options::parse_stage)]
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

impl TrainArgs {
    /// The configuration: the `--config` file (or the defaults), then every flag given.
    pub fn to_config(&self) -> Result<TrainConfig> {
        let mut cfg = match &self.config {
            Some(path) => TrainConfig::from_toml_file(path)?,
            None => TrainConfig::default(),
        };
        self.apply(&mut cfg)?;
        Ok(cfg)
    }

    /// Overrides the options of `cfg` that were given as flags.
    pub fn apply(&self, cfg: &mut TrainConfig) -> Result<()> {
        set(&mut cfg.data, self.data.clone());
        set(&mut cfg.output, self.output.clone());
        set(&mut cfg.run_dir, self.run_dir.clone());
        set(&mut cfg.epochs, self.epochs);
        set(&mut cfg.seed, self.seed);
        if self.threads.is_some() {
            cfg.threads = self.threads;
        }
        set(&mut cfg.val_fraction, self.val_fraction);
        set(&mut cfg.selection, self.selection);
        set(&mut cfg.flip_average, self.flip_average);
        set(&mut cfg.detect, self.detect);
        set(&mut cfg.batch.p, self.p);
        set(&mut cfg.batch.k, self.k);
        set(&mut cfg.preprocessing.height, self.height);
        set(&mut cfg.preprocessing.width, self.width);
        set(&mut cfg.preprocessing.normalisation, self.normalisation);
        if let Some(params) = &self.tan_triggs {
            set_tan_triggs(&mut cfg.preprocessing.tan_triggs, params)?;
        }
        set(&mut cfg.augmentation.enabled, self.augment);
        set(&mut cfg.augmentation.flip, self.flip);
        set(&mut cfg.augmentation.max_shift, self.max_shift);
        set(&mut cfg.augmentation.shadow, self.shadow);
        set(&mut cfg.augmentation.brightness, self.brightness);
        set(&mut cfg.augmentation.contrast, self.contrast);
        super::arch_options::apply(self, cfg)?;
        super::overrides::apply_loss(self, cfg)?;
        super::overrides::apply_optimizer(self, cfg)?;
        super::overrides::apply_schedule(self, cfg);
        if self.clip_grad_norm.is_some() {
            cfg.clip_grad_norm = self.clip_grad_norm;
        }
        Ok(())
    }
}

/// Applies `name=value,...` to Tan–Triggs parameters; unknown names and unparsable
/// values are errors (ranges are checked with the rest of the configuration).
fn set_tan_triggs(params: &mut crate::data::TanTriggs, list: &str) -> Result<()> {
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || {
            TrainError::Config(format!(
                "--tan-triggs: expected name=value with name one of gamma, sigma0, sigma1, \
                 alpha, tau; got '{item}'"
            ))
        };
        let (name, value) = item.split_once('=').ok_or_else(bad)?;
        let value: f32 = value.trim().parse().map_err(|_| bad())?;
        let field = match name.trim() {
            "gamma" => &mut params.gamma,
            "sigma0" => &mut params.sigma0,
            "sigma1" => &mut params.sigma1,
            "alpha" => &mut params.alpha,
            "tau" => &mut params.tau,
            _ => return Err(bad()),
        };
        *field = value;
    }
    Ok(())
}
