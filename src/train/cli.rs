//! Command-line flags of `train-embed`. Every flag overrides the same option of the
//! `--config` file (or the default when there is no file); see [`TrainConfig`].

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

use super::config::{LossConfig, TrainConfig};
use super::error::{Result, TrainError};
use super::head::HeadConfig;
use crate::data::NormalisationKind;
use crate::nn::loss::{ContrastiveConfig, Distance, Mining, TripletConfig};
use crate::nn::optim::{AdagradConfig, AdamConfig, OptimizerConfig, SgdConfig, WeightDecay};
use crate::nn::schedule::Decay;

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
    /// Turn training augmentation on or off [default: on].
    #[arg(long)]
    pub augment: Option<bool>,

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
    /// Embedding dimension [default: 128].
    #[arg(long)]
    pub embedding_dim: Option<usize>,

    /// Training loss [default: softmax].
    #[arg(long, value_enum)]
    pub loss: Option<LossArg>,
    /// Margin of the triplet (default 0.2) or contrastive (default 1.0) loss.
    #[arg(long)]
    pub margin: Option<f32>,
    /// Triplet mining: all valid triplets, batch-hard, or FaceNet semi-hard.
    #[arg(long, value_enum)]
    pub mining: Option<MiningArg>,
    /// Triplet distance: Euclidean or squared Euclidean.
    #[arg(long, value_enum)]
    pub distance: Option<DistanceArg>,
    /// Softmax classifier head: cosine (scaled, normalised weights) or linear.
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
        set(&mut cfg.batch.p, self.p);
        set(&mut cfg.batch.k, self.k);
        set(&mut cfg.preprocessing.height, self.height);
        set(&mut cfg.preprocessing.width, self.width);
        set(&mut cfg.preprocessing.normalisation, self.normalisation);
        set(&mut cfg.augmentation.enabled, self.augment);
        super::arch_options::apply(self, cfg)?;
        self.apply_loss(cfg)?;
        self.apply_optimizer(cfg)?;
        self.apply_schedule(cfg);
        if self.clip_grad_norm.is_some() {
            cfg.clip_grad_norm = self.clip_grad_norm;
        }
        Ok(())
    }

    fn apply_loss(&self, cfg: &mut TrainConfig) -> Result<()> {
        if let Some(kind) = self.loss
            && kind_of(&cfg.loss) != kind
        {
            cfg.loss = match kind {
                LossArg::Triplet => LossConfig::Triplet(TripletConfig::default()),
                LossArg::Contrastive => LossConfig::Contrastive(ContrastiveConfig::default()),
                LossArg::Softmax => LossConfig::default(),
            };
        }
        let triplet_flags = self.mining.is_some() || self.distance.is_some();
        let head_flags = self.head.is_some() || self.head_scale.is_some();
        let unused = |flags: &str, loss: &LossConfig| {
            Err(TrainError::Config(format!(
                "{flags} do not apply to the {} loss",
                loss_name(loss)
            )))
        };
        if head_flags && !matches!(cfg.loss, LossConfig::Softmax(_)) {
            return unused("--head and --head-scale", &cfg.loss);
        }
        if triplet_flags && !matches!(cfg.loss, LossConfig::Triplet(_)) {
            return unused("--mining and --distance", &cfg.loss);
        }
        match &mut cfg.loss {
            LossConfig::Triplet(t) => {
                set(&mut t.margin, self.margin);
                if let Some(m) = self.mining {
                    t.mining = match m {
                        MiningArg::All => Mining::All,
                        MiningArg::BatchHard => Mining::BatchHard,
                        MiningArg::SemiHard => Mining::SemiHard,
                    };
                }
                if let Some(d) = self.distance {
                    t.distance = match d {
                        DistanceArg::Euclidean => Distance::Euclidean,
                        DistanceArg::Squared => Distance::Squared,
                    };
                }
            }
            LossConfig::Contrastive(c) => set(&mut c.margin, self.margin),
            LossConfig::Softmax(s) => {
                if self.margin.is_some() {
                    return unused("--margin", &cfg.loss);
                }
                s.head = match (self.head, self.head_scale, s.head) {
                    (Some(HeadArg::Linear), Some(_), _) => {
                        return Err(TrainError::Config(
                            "--head-scale applies to the cosine head only".into(),
                        ));
                    }
                    (Some(HeadArg::Linear), None, _) => HeadConfig::Linear,
                    (_, Some(scale), _) => HeadConfig::Cosine { scale },
                    (Some(HeadArg::Cosine), None, HeadConfig::Linear) => HeadConfig::default(),
                    (_, None, current) => current,
                };
            }
        }
        Ok(())
    }

    fn apply_optimizer(&self, cfg: &mut TrainConfig) -> Result<()> {
        if let Some(kind) = self.optimizer {
            cfg.optimizer = match (kind, &cfg.optimizer) {
                (OptimizerArg::Sgd, o @ OptimizerConfig::Sgd(_))
                | (OptimizerArg::Adagrad, o @ OptimizerConfig::Adagrad(_))
                | (OptimizerArg::Adam | OptimizerArg::Adamw, o @ OptimizerConfig::Adam(_)) => {
                    o.clone()
                }
                (OptimizerArg::Sgd, _) => OptimizerConfig::Sgd(SgdConfig::default()),
                (OptimizerArg::Adagrad, _) => OptimizerConfig::Adagrad(AdagradConfig::default()),
                (OptimizerArg::Adam | OptimizerArg::Adamw, _) => {
                    OptimizerConfig::Adam(AdamConfig::default())
                }
            };
        }
        let decoupled = self.optimizer == Some(OptimizerArg::Adamw);
        let decay = self.weight_decay.map(|l| {
            if decoupled {
                WeightDecay::Decoupled(l)
            } else {
                WeightDecay::L2(l)
            }
        });
        let sgd_only = self.momentum.is_some() || self.nesterov.is_some();
        match &mut cfg.optimizer {
            OptimizerConfig::Sgd(c) => {
                set(&mut c.momentum, self.momentum);
                set(&mut c.nesterov, self.nesterov);
                set_some(&mut c.weight_decay, decay);
                set_some(&mut c.max_norm, self.max_norm);
            }
            OptimizerConfig::Adagrad(c) => {
                set_some(&mut c.weight_decay, decay);
                set_some(&mut c.max_norm, self.max_norm);
            }
            OptimizerConfig::Adam(c) => {
                set_some(&mut c.weight_decay, decay);
                set_some(&mut c.max_norm, self.max_norm);
            }
        }
        if sgd_only && !matches!(cfg.optimizer, OptimizerConfig::Sgd(_)) {
            return Err(TrainError::Config(
                "--momentum and --nesterov apply to --optimizer sgd only".into(),
            ));
        }
        Ok(())
    }

    /// `--schedule` lengths are the run's epochs: cosine decays over all of them, step
    /// decays ×0.1 at 50% and 75%, plateau watches the validation metric (patience 3).
    fn apply_schedule(&self, cfg: &mut TrainConfig) {
        set(&mut cfg.schedule.lr, self.lr);
        set(&mut cfg.schedule.warmup, self.warmup);
        let epochs = cfg.epochs.max(1);
        if let Some(kind) = self.schedule {
            cfg.schedule.decay = match kind {
                ScheduleArg::Constant => Decay::Constant,
                ScheduleArg::Cosine => Decay::Cosine {
                    total: epochs,
                    min_lr: 0.0,
                },
                ScheduleArg::Step => Decay::Step {
                    milestones: vec![(epochs / 2).max(1), (epochs * 3 / 4).max(2)],
                    gamma: 0.1,
                },
                ScheduleArg::Plateau => {
                    toml_default::<Decay>("kind = 'plateau'\npatience = 3\nmode = 'max'")
                        .unwrap_or_default()
                }
            };
        }
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

/// A value with serde's field defaults, from a tiny TOML snippet.
fn toml_default<T: serde::de::DeserializeOwned>(snippet: &str) -> Result<T> {
    toml::from_str(snippet).map_err(|e| TrainError::Config(format!("{snippet}: {e}")))
}

fn kind_of(loss: &LossConfig) -> LossArg {
    match loss {
        LossConfig::Triplet(_) => LossArg::Triplet,
        LossConfig::Contrastive(_) => LossArg::Contrastive,
        LossConfig::Softmax(_) => LossArg::Softmax,
    }
}

/// The loss's name as on the command line.
pub fn loss_name(loss: &LossConfig) -> &'static str {
    match loss {
        LossConfig::Triplet(_) => "triplet",
        LossConfig::Contrastive(_) => "contrastive",
        LossConfig::Softmax(_) => "softmax",
    }
}
