//! How command-line flags ([`TrainArgs`]) override a configuration (the `--config` file
//! or the defaults): every flag given replaces the same option; a flag that switches the
//! architecture, loss or optimiser to another kind starts from that kind's defaults; a
//! flag that does not apply to the configured kind is an error.

use super::cli::{
    ActivationArg, ArchArg, DistanceArg, HeadArg, LossArg, MiningArg, OptimizerArg, ScheduleArg,
    TrainArgs,
};
use super::config::{LossConfig, TrainConfig};
use super::error::{Result, TrainError};
use super::head::HeadConfig;
use crate::model::arch::{ArchSpec, HiddenActivation, ResnetSpec};
use crate::nn::loss::{ContrastiveConfig, Distance, Mining, TripletConfig};
use crate::nn::optim::{AdagradConfig, AdamConfig, OptimizerConfig, SgdConfig, WeightDecay};
use crate::nn::schedule::{Decay, PlateauMode};

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
        set_some(&mut cfg.threads, self.threads);
        set(&mut cfg.val_fraction, self.val_fraction);
        set(&mut cfg.selection, self.selection);
        set(&mut cfg.flip_average, self.flip_average);
        set(&mut cfg.detect, self.detect);
        set(&mut cfg.batch.p, self.p);
        set(&mut cfg.batch.k, self.k);
        set(&mut cfg.preprocessing.height, self.height);
        set(&mut cfg.preprocessing.width, self.width);
        set(&mut cfg.preprocessing.kind, self.normalisation);
        if let Some(params) = &self.tan_triggs {
            set_tan_triggs(&mut cfg.preprocessing.tan_triggs, params)?;
        }
        set(&mut cfg.augmentation.enabled, self.augment);
        set(&mut cfg.augmentation.settings.flip, self.flip);
        set(&mut cfg.augmentation.settings.max_shift, self.max_shift);
        set(&mut cfg.augmentation.settings.shadow, self.shadow);
        set(&mut cfg.augmentation.settings.brightness, self.brightness);
        set(&mut cfg.augmentation.settings.contrast, self.contrast);
        apply_arch(self, cfg)?;
        apply_loss(self, cfg)?;
        apply_optimizer(self, cfg)?;
        apply_schedule(self, cfg);
        set_some(&mut cfg.clip_grad_norm, self.clip_grad_norm);
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

/// Applies the `--arch`, `--hidden`, `--activation`, `--maxout-k`, `--batch-norm`,
/// `--dropout`, `--widths`, `--fc`, `--stem`, `--stages` and `--embedding-dim` flags.
fn apply_arch(args: &TrainArgs, cfg: &mut TrainConfig) -> Result<()> {
    let input = cfg.arch.input();
    match (args.arch, &cfg.arch) {
        (
            Some(ArchArg::Mlp),
            ArchSpec::Cnn { .. } | ArchSpec::Resnet(_) | ArchSpec::DlibResnet(_),
        ) => cfg.arch = ArchSpec::mlp(input),
        (
            Some(ArchArg::Cnn),
            ArchSpec::Mlp { .. } | ArchSpec::Resnet(_) | ArchSpec::DlibResnet(_),
        ) => cfg.arch = ArchSpec::reference_cnn().with_input(input),
        (
            Some(ArchArg::Resnet),
            ArchSpec::Mlp { .. } | ArchSpec::Cnn { .. } | ArchSpec::DlibResnet(_),
        ) => cfg.arch = ArchSpec::Resnet(ResnetSpec::with_input(input)),
        _ => {}
    }
    let mlp_only = args.hidden.is_some()
        || args.activation.is_some()
        || args.maxout_k.is_some()
        || args.batch_norm.is_some();
    let cnn_only = args.widths.is_some() || args.fc.is_some();
    let resnet_only = args.stem.is_some() || args.stages.is_some();
    if resnet_only && !matches!(cfg.arch, ArchSpec::Resnet(_)) {
        return Err(TrainError::Config(
            "--stem and --stages apply to --arch resnet only".into(),
        ));
    }
    match &mut cfg.arch {
        ArchSpec::Mlp {
            hidden,
            activation,
            batch_norm,
            dropout,
            embedding_dim,
            ..
        } => {
            if cnn_only {
                return Err(TrainError::Config(
                    "--widths and --fc apply to --arch cnn only".into(),
                ));
            }
            if let Some(h) = &args.hidden {
                hidden.clone_from(h);
            }
            if let Some(a) = args.activation {
                *activation = match a {
                    ActivationArg::Relu => HiddenActivation::Relu,
                    ActivationArg::Prelu => HiddenActivation::Prelu,
                    ActivationArg::Tanh => HiddenActivation::Tanh,
                    ActivationArg::Maxout => HiddenActivation::Maxout {
                        k: args.maxout_k.unwrap_or(2),
                    },
                };
            }
            match (args.maxout_k, &mut *activation) {
                (Some(k), HiddenActivation::Maxout { k: current }) => *current = k,
                (Some(_), _) => {
                    return Err(TrainError::Config(
                        "--maxout-k applies to --activation maxout only".into(),
                    ));
                }
                (None, _) => {}
            }
            if let Some(b) = args.batch_norm {
                *batch_norm = b;
            }
            if let Some(p) = args.dropout {
                *dropout = p;
            }
            if let Some(k) = args.embedding_dim {
                *embedding_dim = k;
            }
        }
        ArchSpec::Cnn {
            widths,
            fc,
            embedding_dim,
            dropout,
            ..
        } => {
            if mlp_only {
                return Err(TrainError::Config(
                    "--hidden, --activation, --maxout-k and --batch-norm apply to --arch mlp only"
                        .into(),
                ));
            }
            if let Some(w) = &args.widths {
                widths.clone_from(w);
            }
            if let Some(f) = args.fc {
                *fc = f;
            }
            if let Some(p) = args.dropout {
                *dropout = p;
            }
            if let Some(k) = args.embedding_dim {
                *embedding_dim = k;
            }
        }
        ArchSpec::Resnet(r) => {
            if mlp_only || cnn_only {
                return Err(TrainError::Config(
                    "--hidden, --activation, --maxout-k, --batch-norm, --widths and --fc do not \
                     apply to --arch resnet"
                        .into(),
                ));
            }
            if let Some(stem) = args.stem {
                r.stem = stem;
            }
            if let Some(stages) = &args.stages {
                r.stages.clone_from(stages);
            }
            if let Some(p) = args.dropout {
                r.dropout = p;
            }
            if let Some(k) = args.embedding_dim {
                r.embedding_dim = k;
            }
        }
        ArchSpec::DlibResnet(d) => {
            if mlp_only || cnn_only || args.dropout.is_some() {
                return Err(TrainError::Config(
                    "of the architecture flags only --embedding-dim applies to a dlib_resnet \
                     architecture"
                        .into(),
                ));
            }
            if let Some(k) = args.embedding_dim {
                d.embedding_dim = k;
            }
        }
    }
    Ok(())
}

/// `--loss`, `--margin`, `--mining`, `--distance`, `--head`, `--head-scale`.
fn apply_loss(args: &TrainArgs, cfg: &mut TrainConfig) -> Result<()> {
    if let Some(kind) = args.loss
        && kind_of(&cfg.loss) != kind
    {
        cfg.loss = match kind {
            LossArg::Triplet => LossConfig::Triplet(TripletConfig::default()),
            LossArg::Contrastive => LossConfig::Contrastive(ContrastiveConfig::default()),
            LossArg::Softmax => LossConfig::default(),
        };
    }
    let triplet_flags =
        args.mining.is_some() || args.distance.is_some() || args.soft_margin.is_some();
    let head_flags = args.head.is_some() || args.head_scale.is_some();
    let unused = |flags: &str, loss: &LossConfig| {
        Err(TrainError::Config(format!(
            "{flags} do not apply to the {} loss",
            loss.name()
        )))
    };
    if head_flags && !matches!(cfg.loss, LossConfig::Softmax(_)) {
        return unused("--head and --head-scale", &cfg.loss);
    }
    if triplet_flags && !matches!(cfg.loss, LossConfig::Triplet(_)) {
        return unused("--mining, --distance and --soft-margin", &cfg.loss);
    }
    match &mut cfg.loss {
        LossConfig::Triplet(t) => {
            set(&mut t.margin, args.margin);
            set(&mut t.soft, args.soft_margin);
            if let Some(m) = args.mining {
                t.mining = match m {
                    MiningArg::All => Mining::All,
                    MiningArg::BatchHard => Mining::BatchHard,
                    MiningArg::SemiHard => Mining::SemiHard,
                };
            }
            if let Some(d) = args.distance {
                t.distance = match d {
                    DistanceArg::Euclidean => Distance::Euclidean,
                    DistanceArg::Squared => Distance::Squared,
                };
            }
        }
        LossConfig::Contrastive(c) => set(&mut c.margin, args.margin),
        LossConfig::Softmax(s) => {
            s.head = match (args.head, s.head) {
                (Some(HeadArg::Linear), _) => HeadConfig::Linear,
                (Some(HeadArg::Cosine), HeadConfig::Cosine { .. }) => s.head,
                (Some(HeadArg::Cosine), _) => HeadConfig::default(),
                (Some(HeadArg::Arcface), HeadConfig::Arcface { .. }) => s.head,
                (Some(HeadArg::Arcface), _) => HeadConfig::arcface(),
                (Some(HeadArg::Sphereface), HeadConfig::Sphereface { .. }) => s.head,
                (Some(HeadArg::Sphereface), _) => HeadConfig::sphereface(),
                (None, current) => current,
            };
            match &mut s.head {
                HeadConfig::Linear if args.head_scale.is_some() || args.margin.is_some() => {
                    return Err(TrainError::Config(
                        "--head-scale and --margin apply to the cosine head only".into(),
                    ));
                }
                HeadConfig::Linear => {}
                HeadConfig::Cosine { scale, margin }
                | HeadConfig::Arcface { scale, margin, .. } => {
                    set(scale, args.head_scale);
                    set(margin, args.margin);
                }
                HeadConfig::Sphereface { scale, margin, .. } => {
                    set(scale, args.head_scale);
                    if let Some(m) = args.margin {
                        *margin = integral_margin(m)?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// SphereFace's `--margin`: a whole number of at least 1.
fn integral_margin(m: f32) -> Result<u32> {
    if m.fract() == 0.0 && (1.0..=8.0).contains(&m) {
        Ok(m as u32)
    } else {
        Err(TrainError::Config(format!(
            "--margin for the SphereFace head is an integer in 1..=8, got {m}"
        )))
    }
}

/// `--optimizer`, `--momentum`, `--nesterov`, `--weight-decay`, `--max-norm`.
fn apply_optimizer(args: &TrainArgs, cfg: &mut TrainConfig) -> Result<()> {
    if let Some(kind) = args.optimizer {
        cfg.optimizer = match (kind, &cfg.optimizer) {
            (OptimizerArg::Sgd, o @ OptimizerConfig::Sgd(_))
            | (OptimizerArg::Adagrad, o @ OptimizerConfig::Adagrad(_))
            | (OptimizerArg::Adam | OptimizerArg::Adamw, o @ OptimizerConfig::Adam(_)) => o.clone(),
            (OptimizerArg::Sgd, _) => OptimizerConfig::Sgd(SgdConfig::default()),
            (OptimizerArg::Adagrad, _) => OptimizerConfig::Adagrad(AdagradConfig::default()),
            (OptimizerArg::Adam | OptimizerArg::Adamw, _) => {
                OptimizerConfig::Adam(AdamConfig::default())
            }
        };
    }
    let decoupled = args.optimizer == Some(OptimizerArg::Adamw);
    let decay = args.weight_decay.map(|l| {
        if decoupled {
            WeightDecay::Decoupled(l)
        } else {
            WeightDecay::L2(l)
        }
    });
    let sgd_only = args.momentum.is_some() || args.nesterov.is_some();
    match &mut cfg.optimizer {
        OptimizerConfig::Sgd(c) => {
            set(&mut c.momentum, args.momentum);
            set(&mut c.nesterov, args.nesterov);
            set_some(&mut c.weight_decay, decay);
            set_some(&mut c.max_norm, args.max_norm);
        }
        OptimizerConfig::Adagrad(c) => {
            set_some(&mut c.weight_decay, decay);
            set_some(&mut c.max_norm, args.max_norm);
        }
        OptimizerConfig::Adam(c) => {
            set_some(&mut c.weight_decay, decay);
            set_some(&mut c.max_norm, args.max_norm);
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
fn apply_schedule(args: &TrainArgs, cfg: &mut TrainConfig) {
    set(&mut cfg.schedule.lr, args.lr);
    set(&mut cfg.schedule.warmup, args.warmup);
    let epochs = cfg.epochs.max(1);
    if let Some(kind) = args.schedule {
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
            ScheduleArg::Plateau => Decay::Plateau {
                patience: 3,
                mode: PlateauMode::Max,
                factor: 0.1,
                threshold: 1e-4,
                min_lr: 0.0,
            },
        };
    }
}

/// Overwrites `slot` when a flag gave a value.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Overwrites an optional `slot` when a flag gave a value.
fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn kind_of(loss: &LossConfig) -> LossArg {
    match loss {
        LossConfig::Triplet(_) => LossArg::Triplet,
        LossConfig::Contrastive(_) => LossArg::Contrastive,
        LossConfig::Softmax(_) => LossArg::Softmax,
    }
}

#[cfg(test)]
#[path = "overrides_tests.rs"]
mod tests;
