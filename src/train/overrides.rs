//! How command-line flags override the loss, optimiser and schedule of a
//! configuration (the `--config` file or the defaults).

use super::cli::{DistanceArg, HeadArg, LossArg, MiningArg, OptimizerArg, ScheduleArg, TrainArgs};
use super::config::{LossConfig, TrainConfig};
use super::error::{Result, TrainError};
use super::head::HeadConfig;
use crate::nn::loss::{ContrastiveConfig, Distance, Mining, TripletConfig};
use crate::nn::optim::{AdagradConfig, AdamConfig, OptimizerConfig, SgdConfig, WeightDecay};
use crate::nn::schedule::{Decay, PlateauMode};

/// `--loss`, `--margin`, `--mining`, `--distance`, `--head`, `--head-scale`.
pub fn apply_loss(args: &TrainArgs, cfg: &mut TrainConfig) -> Result<()> {
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
            loss_name(loss)
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
pub fn apply_optimizer(args: &TrainArgs, cfg: &mut TrainConfig) -> Result<()> {
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
pub fn apply_schedule(args: &TrainArgs, cfg: &mut TrainConfig) {
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
pub fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *slot = v;
    }
}

/// Overwrites an optional `slot` when a flag gave a value.
pub fn set_some<T>(slot: &mut Option<T>, value: Option<T>) {
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

/// The loss's name as on the command line.
pub fn loss_name(loss: &LossConfig) -> &'static str {
    match loss {
        LossConfig::Triplet(_) => "triplet",
        LossConfig::Contrastive(_) => "contrastive",
        LossConfig::Softmax(_) => "softmax",
    }
}
