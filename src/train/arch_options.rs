//! Architecture options: the `[arch]` table of a configuration (with defaults filled in,
//! and without `input`, which always comes from the preprocessing) and the `--arch …`
//! flags.

use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::cli::{ActivationArg, ArchArg, TrainArgs};
use super::config::TrainConfig;
use super::error::{Result, TrainError};
use crate::model::arch::{ArchSpec, HiddenActivation, ResnetSpec};

/// Defaults of an MLP's fields when the configuration leaves them out.
fn mlp_defaults() -> Value {
    json!({
        "hidden": [512],
        "activation": "relu",
        "batch_norm": true,
        "dropout": 0.0,
        "embedding_dim": 128,
    })
}

/// The default network: the reference CNN.
pub fn default_arch() -> ArchSpec {
    ArchSpec::reference_cnn()
}

/// `spec` with its input size set (the trainer sets it to the preprocessing's output).
pub fn with_input(spec: &ArchSpec, shape: [usize; 2]) -> ArchSpec {
    let mut spec = spec.clone();
    match &mut spec {
        ArchSpec::Mlp { input, .. } | ArchSpec::Cnn { input, .. } => *input = shape,
        ArchSpec::Resnet(r) => r.input = shape,
        ArchSpec::DlibResnet(d) => d.input = shape,
    }
    spec
}

/// Deserialises `[arch]` with `type = "mlp" | "cnn" | "resnet"`; a missing `input` is
/// taken from the preprocessing later, missing MLP fields take [`mlp_defaults`], missing
/// CNN fields the reference CNN's, missing ResNet fields [`ResnetSpec`]'s defaults.
pub fn deserialize_arch<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<ArchSpec, D::Error> {
    let mut value = Value::deserialize(d)?;
    complete(&mut value);
    serde_json::from_value(value).map_err(serde::de::Error::custom)
}

fn complete(value: &mut Value) {
    let Value::Object(map) = value else { return };
    let [h, w] = default_arch().input();
    map.entry("input").or_insert(json!([h, w]));
    if map.get("type") == Some(&json!("mlp"))
        && let Value::Object(defaults) = mlp_defaults()
    {
        for (k, v) in defaults {
            map.entry(k).or_insert(v);
        }
    }
}

/// Applies the `--arch`, `--hidden`, `--activation`, `--maxout-k`, `--batch-norm`,
/// `--dropout`, `--widths`, `--fc`, `--stem`, `--stages` and `--embedding-dim` flags.
pub fn apply(args: &TrainArgs, cfg: &mut TrainConfig) -> Result<()> {
    let input = cfg.arch.input();
    match (args.arch, &cfg.arch) {
        (
            Some(ArchArg::Mlp),
            ArchSpec::Cnn { .. } | ArchSpec::Resnet(_) | ArchSpec::DlibResnet(_),
        ) => {
            let mut v = json!({"type": "mlp", "input": input});
            complete(&mut v);
            cfg.arch = serde_json::from_value(v)
                .map_err(|e| TrainError::Config(format!("mlp defaults: {e}")))?;
        }
        (
            Some(ArchArg::Cnn),
            ArchSpec::Mlp { .. } | ArchSpec::Resnet(_) | ArchSpec::DlibResnet(_),
        ) => cfg.arch = with_input(&default_arch(), input),
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

/// A `--stages` item: `WIDTHxBLOCKS`, e.g. `64x2`.
pub fn parse_stage(s: &str) -> std::result::Result<(usize, usize), String> {
    let bad = || format!("expected WIDTHxBLOCKS such as 64x2, got '{s}'");
    let (width, blocks) = s.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let width = width.trim().parse().map_err(|_| bad())?;
    let blocks = blocks.trim().parse().map_err(|_| bad())?;
    Ok((width, blocks))
}
