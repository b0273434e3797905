//! The training configuration: every option of `train-embed`, as plain data readable
//! from a TOML file (`--config`); command-line flags (`train::cli`) are applied to it by
//! `train::overrides`.
//!
//! ```toml
//! data = "faces/train"
//! output = "model.safetensors"
//! run_dir = "runs/cnn-triplet"
//! epochs = 30
//! seed = 42
//!
//! [preprocessing]
//! height = 56
//! width = 48
//! normalisation = "per-image"
//!
//! [augmentation]
//! enabled = true
//! max_shift = 2
//!
//! [arch]
//! type = "cnn"
//!
//! [loss]
//! kind = "triplet"
//! margin = 0.2
//! mining = "batch_hard"
//!
//! [optimizer]
//! kind = "adam"
//!
//! [schedule]
//! lr = 0.001
//! ```
//!
//! Omitted fields take the defaults below; unknown fields are errors (a typo must not
//! silently train something else).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::{Result, TrainError};
use super::head::HeadConfig;
use crate::data::{Augmentation, NormalisationKind, PreprocessingSpec};
use crate::detect::DetectConfig;
use crate::model::arch::ArchSpec;
use crate::nn::loss::{ContrastiveConfig, TripletConfig};
use crate::nn::optim::OptimizerConfig;
use crate::nn::schedule::{Decay, ScheduleConfig};

/// Everything `train-embed` needs to know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Training images: one sub-folder per identity.
    pub data: PathBuf,
    /// Where the trained model file is written.
    pub output: PathBuf,
    /// Checkpoints, the JSON-lines log and the PNG plot go here.
    pub run_dir: PathBuf,
    pub epochs: usize,
    /// Every random choice (split, initialisation, batches, augmentation, dropout)
    /// derives from this seed.
    pub seed: u64,
    /// Size of the rayon pool; `None` means all cores. Same seed and same thread count
    /// give the same weights.
    pub threads: Option<usize>,
    /// Fraction of the identities held out for validation (identity-disjoint split).
    pub val_fraction: f32,
    /// Which epoch's network is saved: the best on validation, or the last one.
    pub selection: Selection,
    /// The model embeds each face and its mirror image and averages them (validation
    /// and calibration do too). Costs a second forward pass per face.
    pub flip_average: bool,
    /// Align every image's face with the detector before anything else, as the server
    /// does with photographs; images without a face are left out (and listed). Off by
    /// default: face-database crops need no detection. The settings are recorded in the
    /// model, and the server uses them.
    pub detect: bool,
    /// Which face of a photograph `detect` keeps: the largest (the server's rule for a
    /// query), or the one nearest the image centre (photographs framed on one person,
    /// like LFW's, where someone behind can be larger).
    pub detect_pick: crate::data::Pick,
    /// Identities with a single image join training as classes of their own (never
    /// validation, which needs two images of a person). Off by default: such folders
    /// are usually mistakes; on LFW most identities have one photo.
    pub singletons: bool,
    /// The detector and crop settings for `detect`: the server's `[detector]` section,
    /// whose defaults these are. Change them only together.
    pub detector: DetectConfig,
    pub batch: BatchConfig,
    /// The preprocessing to fit on the training identities (its statistics are fitted by
    /// the trainer and stored in the model file): `height`, `width`, `normalisation`
    /// (`none`, `per-image`, `dataset`, `pca`, `zca` or `tan-triggs`), `pca_components`,
    /// `whitening_eps` and `tan_triggs` (`[preprocessing.tan_triggs]`: gamma, sigma0,
    /// sigma1, alpha, tau; the paper's where left out).
    pub preprocessing: PreprocessingSpec,
    pub augmentation: AugmentConfig,
    /// The embedding network (`type = "mlp"`, `"cnn"`, `"resnet"` or `"dlib_resnet"`;
    /// fields left out take [`ArchSpec`]'s defaults). Its `input` is always the
    /// preprocessing's output shape, whatever the file says.
    pub arch: ArchSpec,
    pub loss: LossConfig,
    pub optimizer: OptimizerConfig,
    pub schedule: ScheduleConfig,
    /// Clip the gradients' global norm to this value before each update.
    pub clip_grad_norm: Option<f32>,
    /// Fuse a hand-crafted descriptor branch with the network (`[lbp]`, see
    /// [`crate::model::lbp`]): fitted on the training identities after the network is
    /// trained; thresholds are calibrated on the fused embeddings. Off when absent.
    pub lbp: Option<LbpConfig>,
}

/// `[lbp]`: the descriptor branch's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LbpConfig {
    /// Weight of the network's cosine in the fused cosine (the descriptor's is 1 − w).
    pub weight: f32,
    /// Whitened PCA dimensions before the within-identity whitening.
    pub pca: usize,
    /// Length of the projected descriptor (the directions of largest between-identity
    /// scatter kept).
    pub dim: usize,
    /// The PCA is fitted on at most this many training faces (an even stride), which
    /// bounds the eigen-problem; the rest of the fit uses every face.
    pub max_pca_samples: usize,
    /// Size the crop is resized to before description.
    pub height: usize,
    pub width: usize,
    pub scales: Vec<crate::model::lbp::LbpScale>,
}

impl Default for LbpConfig {
    fn default() -> Self {
        LbpConfig {
            weight: 0.5,
            pca: 200,
            dim: 100,
            max_pca_samples: 3000,
            height: 112,
            width: 96,
            scales: vec![
                crate::model::lbp::LbpScale {
                    radius: 1.0,
                    cell: 8,
                    resize: 1.0,
                },
                crate::model::lbp::LbpScale {
                    radius: 2.0,
                    cell: 12,
                    resize: 1.0,
                },
            ],
        }
    }
}

impl LbpConfig {
    /// The model's record of these settings.
    pub fn spec(&self) -> crate::model::lbp::LbpSpec {
        crate::model::lbp::LbpSpec {
            height: self.height,
            width: self.width,
            scales: self.scales.clone(),
            weight: self.weight,
            dim: self.dim,
        }
    }
}

/// Which epoch's network a run saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Selection {
    /// The epoch with the best validation metrics (see `ValMetrics::selection_key`);
    /// equal metrics go to the later epoch.
    #[default]
    Best,
    /// The last epoch, whatever validation says: the honest choice when the validation
    /// identities are too few to rank epochs (validation is still run and logged, and
    /// thresholds are still calibrated on it).
    Last,
}

/// A batch holds `p` identities with `k` images each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    pub p: usize,
    pub k: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig { p: 16, k: 4 }
    }
}

/// Training augmentation (seeded), applied before the photometric normalisation: the
/// [`Augmentation`]'s fields (`flip`, `max_shift`, `shadow`, `brightness`, `contrast`)
/// and a switch, in one `[augmentation]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Off: every epoch sees the images as they are.
    pub enabled: bool,
    /// In the same table as `enabled`; an unknown key is still an error (it names the
    /// key, though not the ones allowed).
    #[serde(flatten)]
    pub settings: Augmentation,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            enabled: true,
            settings: Augmentation::default(),
        }
    }
}

impl AugmentConfig {
    /// The augmentation to run, or `None` when disabled.
    pub fn augmentation(&self) -> Option<Augmentation> {
        self.enabled.then(|| self.settings.clone())
    }
}

/// The training objective; tagged by `kind` (`triplet`, `contrastive`, `softmax`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LossConfig {
    /// Triplet loss `max(0, D(a, p) − D(a, n) + margin)` over the triplets of a P×K
    /// batch (`margin`, `mining` = all | batch_hard | semi_hard, `distance` =
    /// euclidean | squared, `soft` = true for `ln(1 + exp(…))` instead of the hinge; see
    /// [`TripletConfig`]).
    Triplet(TripletConfig),
    /// Contrastive loss over all pairs of the batch: `½D²` for same-identity pairs,
    /// `½max(0, margin − D)²` for the others (see [`ContrastiveConfig`]).
    Contrastive(ContrastiveConfig),
    /// Cross-entropy over the training identities through a classifier head that exists
    /// during training only (the saved model is the embedding network).
    Softmax(SoftmaxConfig),
}

/// The softmax loss's classifier head (see [`HeadConfig`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SoftmaxConfig {
    pub head: HeadConfig,
}

impl Default for LossConfig {
    fn default() -> Self {
        LossConfig::Softmax(SoftmaxConfig::default())
    }
}

impl LossConfig {
    /// The loss's name: its `kind` in a file, its `--loss` value on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            LossConfig::Triplet(_) => "triplet",
            LossConfig::Contrastive(_) => "contrastive",
            LossConfig::Softmax(_) => "softmax",
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: PathBuf::new(),
            output: PathBuf::from("model.safetensors"),
            run_dir: PathBuf::from("runs/train"),
            epochs: 30,
            seed: 42,
            threads: None,
            val_fraction: 0.2,
            selection: Selection::Best,
            flip_average: true,
            detect: false,
            detect_pick: crate::data::Pick::Largest,
            singletons: false,
            detector: DetectConfig::default(),
            batch: BatchConfig::default(),
            preprocessing: PreprocessingSpec::default(),
            augmentation: AugmentConfig::default(),
            arch: ArchSpec::reference_cnn(),
            loss: LossConfig::default(),
            optimizer: OptimizerConfig::default(),
            schedule: ScheduleConfig {
                lr: 1e-3,
                decay: Decay::Constant,
                warmup: 0,
            },
            clip_grad_norm: None,
            lbp: None,
        }
    }
}

impl TrainConfig {
    /// Reads a TOML configuration file.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::io(path, e))?;
        toml::from_str(&text)
            .map_err(|e| TrainError::io(path, format!("not a valid configuration: {e}")))
    }

    /// Checks what the parts cannot check alone: sizes, fractions and ranges, and that
    /// the network accepts the preprocessed input.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        if self.data.as_os_str().is_empty() {
            return bad("no training data folder given (--data DIR)".into());
        }
        if self.epochs == 0 {
            return bad("epochs must be at least 1, got 0".into());
        }
        if !(self.val_fraction > 0.0 && self.val_fraction < 1.0) {
            return bad(format!(
                "val_fraction must be in (0, 1), got {}",
                self.val_fraction
            ));
        }
        if self.batch.p < 2 || self.batch.k < 2 {
            return bad(format!(
                "a batch needs p ≥ 2 identities with k ≥ 2 images each, got p = {}, k = {}",
                self.batch.p, self.batch.k
            ));
        }
        if self.threads == Some(0) {
            return bad("threads must be at least 1, got 0".into());
        }
        if let Some(lbp) = &self.lbp {
            if !(lbp.weight > 0.0 && lbp.weight < 1.0) {
                return bad(format!("lbp.weight must be in (0, 1), got {}", lbp.weight));
            }
            if lbp.dim == 0 || lbp.pca < lbp.dim || lbp.max_pca_samples < lbp.pca {
                return bad(format!(
                    "lbp needs 1 ≤ dim ≤ pca ≤ max_pca_samples, got dim = {}, pca = {}, \
                     max_pca_samples = {}",
                    lbp.dim, lbp.pca, lbp.max_pca_samples
                ));
            }
            if lbp.scales.is_empty()
                || lbp.scales.iter().any(|s| {
                    !(s.radius > 0.0 && s.radius < 8.0)
                        || s.cell < 2
                        || s.cell > lbp.height.min(lbp.width)
                })
            {
                return bad(format!(
                    "lbp.scales need a radius in (0, 8) and a cell of 2 to {} pixels, got {:?}",
                    lbp.height.min(lbp.width),
                    lbp.scales
                ));
            }
        }
        let PreprocessingSpec { height, width, .. } = self.preprocessing;
        if height < 4 || width < 4 {
            return bad(format!(
                "image size must be at least 4×4, got {height}×{width}"
            ));
        }
        let shadow = self.augmentation.settings.shadow;
        if !(0.0..=1.0).contains(&shadow) {
            return bad(format!(
                "augmentation shadow is a probability in [0, 1], got {shadow}"
            ));
        }
        if self.preprocessing.kind == NormalisationKind::TanTriggs {
            self.preprocessing
                .tan_triggs
                .validated()
                .map_err(|e| TrainError::Config(e.to_string()))?;
        }
        if let Some(c) = self.clip_grad_norm
            && !(c.is_finite() && c > 0.0)
        {
            return bad(format!("clip_grad_norm must be finite and > 0, got {c}"));
        }
        // A hinge needs a positive margin; the soft margin also works at 0.
        let margin = match &self.loss {
            LossConfig::Triplet(t) if t.soft => Some((t.margin, true)),
            LossConfig::Triplet(t) => Some((t.margin, false)),
            LossConfig::Contrastive(c) => Some((c.margin, false)),
            LossConfig::Softmax(_) => None,
        };
        if let Some((m, zero_ok)) = margin
            && !(m.is_finite() && (m > 0.0 || (zero_ok && m == 0.0)))
        {
            let bound = if zero_ok { "≥ 0" } else { "> 0" };
            return bad(format!(
                "the loss margin must be finite and {bound}, got {m}"
            ));
        }
        if let LossConfig::Softmax(softmax) = &self.loss {
            softmax.head.validate().map_err(TrainError::Config)?;
        }
        self.arch
            .with_input([height, width])
            .validate()
            .map_err(|e| TrainError::Config(e.to_string()))?;
        crate::nn::schedule::Schedule::new(self.schedule.clone())
            .map_err(|e| TrainError::Config(e.to_string()))?;
        self.optimizer
            .build()
            .map_err(|e| TrainError::Config(e.to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
