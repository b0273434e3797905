//! Architecture specifications: what network to build, as data (stored in model files).

pub use super::dlib_resnet::DlibResnetSpec;
pub use super::resnet::{ResnetActivation, ResnetPooling, ResnetSpec};
use crate::nn::activation::{Activation, ActivationKind};
use crate::nn::batch_norm::BatchNorm;
use crate::nn::conv2d::{Conv2d, Conv2dConfig};
use crate::nn::dropout::Dropout;
use crate::nn::flatten::Flatten;
use crate::nn::init::Init;
use crate::nn::l2norm::L2Norm;
use crate::nn::linear::Linear;
use crate::nn::maxout::Maxout;
use crate::nn::pool::MaxPool2d;
use crate::nn::prelu::PRelu;
use crate::nn::sequential::Sequential;
use crate::nn::{NnError, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The hidden-layer nonlinearity of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HiddenActivation {
    Relu,
    Prelu,
    /// `k` linear pieces per unit (the linear layer before it is `k` times wider).
    Maxout {
        k: usize,
    },
    Tanh,
}

/// An embedding network. Input images are `(N, 1, h, w)`; the output is `(N,
/// embedding_dim)` with unit rows (the last layer is L2 normalisation).
///
/// Fields left out of a TOML or JSON table take their defaults (a training
/// configuration's `[arch]` usually names only `type` and what it changes). A missing
/// `input` is the reference CNN's 56×48: the trainer always replaces it with its
/// preprocessing's output size, and model files always record it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ArchSpec {
    /// Flatten → per hidden width: linear → (batch norm) → activation → (dropout if > 0)
    /// → linear to `embedding_dim` → L2 normalisation. The defaults are [`ArchSpec::mlp`]'s.
    Mlp {
        #[serde(default = "super::default_input")]
        input: [usize; 2],
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        #[serde(default = "default_activation")]
        activation: HiddenActivation,
        #[serde(default = "default_batch_norm")]
        batch_norm: bool,
        #[serde(default)]
        dropout: f32,
        #[serde(default = "default_embedding_dim")]
        embedding_dim: usize,
    },
    /// Per width: conv 3×3 (stride 1, padding 1) → batch norm → ReLU → max pool 2; then
    /// flatten → linear `fc` → batch norm → ReLU → dropout → linear `embedding_dim` →
    /// L2 normalisation. The defaults are the reference CNN (input 56×48).
    Cnn {
        #[serde(default = "super::default_input")]
        input: [usize; 2],
        #[serde(default = "default_widths")]
        widths: Vec<usize>,
        #[serde(default = "default_fc")]
        fc: usize,
        #[serde(default = "default_embedding_dim")]
        embedding_dim: usize,
        #[serde(default = "default_dropout")]
        dropout: f32,
    },
    /// A residual CNN of BasicBlocks with a linear → batch norm embedding (see
    /// [`ResnetSpec`]; every field but `input` has a default).
    Resnet(ResnetSpec),
    /// The 29-convolution residual network of dlib's face-recognition model (see
    /// [`DlibResnetSpec`]), for its converted weights or trained from scratch.
    DlibResnet(DlibResnetSpec),
}

fn default_hidden() -> Vec<usize> {
    vec![512]
}
fn default_activation() -> HiddenActivation {
    HiddenActivation::Relu
}
fn default_batch_norm() -> bool {
    true
}
fn default_widths() -> Vec<usize> {
    vec![32, 64, 128]
}
fn default_fc() -> usize {
    256
}
fn default_embedding_dim() -> usize {
    128
}
fn default_dropout() -> f32 {
    0.5
}

fn invalid(msg: String) -> NnError {
    NnError::Invalid(format!("architecture: {msg}"))
}

impl ArchSpec {
    /// The reference CNN: input 56×48, widths 32-64-128, fc 256, embedding 128.
    pub fn reference_cnn() -> Self {
        ArchSpec::Cnn {
            input: super::default_input(),
            widths: default_widths(),
            fc: default_fc(),
            embedding_dim: default_embedding_dim(),
            dropout: default_dropout(),
        }
    }

    /// An MLP with every default on an `[h, w]` input: one hidden layer of 512 ReLU units
    /// with batch normalisation, no dropout, a 128-dimensional embedding.
    pub fn mlp(input: [usize; 2]) -> Self {
        ArchSpec::Mlp {
            input,
            hidden: default_hidden(),
            activation: default_activation(),
            batch_norm: default_batch_norm(),
            dropout: 0.0,
            embedding_dim: default_embedding_dim(),
        }
    }

    /// This specification with its input size set (the trainer sets it to the
    /// preprocessing's output shape).
    pub fn with_input(&self, shape: [usize; 2]) -> Self {
        let mut spec = self.clone();
        match &mut spec {
            ArchSpec::Mlp { input, .. } | ArchSpec::Cnn { input, .. } => *input = shape,
            ArchSpec::Resnet(r) => r.input = shape,
            ArchSpec::DlibResnet(d) => d.input = shape,
        }
        spec
    }

    /// Input image size `[h, w]`.
    pub fn input(&self) -> [usize; 2] {
        match self {
            ArchSpec::Mlp { input, .. } | ArchSpec::Cnn { input, .. } => *input,
            ArchSpec::Resnet(r) => r.input,
            ArchSpec::DlibResnet(d) => d.input,
        }
    }

    pub fn embedding_dim(&self) -> usize {
        match self {
            ArchSpec::Mlp { embedding_dim, .. } | ArchSpec::Cnn { embedding_dim, .. } => {
                *embedding_dim
            }
            ArchSpec::Resnet(r) => r.embedding_dim,
            ArchSpec::DlibResnet(d) => d.embedding_dim,
        }
    }

    /// Checks sizes: positive widths, a dropout in [0, 1), an input big enough to
    /// survive the CNN's poolings (and the ResNet's own checks).
    pub fn validate(&self) -> Result<()> {
        let [h, w] = self.input();
        if h == 0 || w == 0 {
            return Err(invalid(format!("input must be at least 1×1, got {h}×{w}")));
        }
        let (widths, dropout, embedding_dim) = match self {
            ArchSpec::Mlp {
                hidden,
                activation,
                dropout,
                embedding_dim,
                ..
            } => {
                if let HiddenActivation::Maxout { k: 0 } = activation {
                    return Err(invalid("maxout needs k ≥ 1 pieces".into()));
                }
                (hidden, *dropout, *embedding_dim)
            }
            ArchSpec::Cnn {
                widths,
                fc,
                dropout,
                embedding_dim,
                ..
            } => {
                if widths.is_empty() {
                    return Err(invalid("a CNN needs at least one convolution width".into()));
                }
                let shrink = 1usize
                    .checked_shl(widths.len() as u32)
                    .unwrap_or(usize::MAX);
                if h < shrink || w < shrink {
                    return Err(invalid(format!(
                        "input {h}×{w} is too small for {} poolings by 2 (needs ≥ {shrink}×{shrink})",
                        widths.len()
                    )));
                }
                if *fc == 0 {
                    return Err(invalid("fc width must be positive".into()));
                }
                (widths, *dropout, *embedding_dim)
            }
            ArchSpec::Resnet(r) => return r.validate(),
            ArchSpec::DlibResnet(d) => return d.validate(),
        };
        if widths.contains(&0) {
            return Err(invalid(format!(
                "layer widths must be positive, got {widths:?}"
            )));
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(invalid(format!("dropout must be in [0, 1), got {dropout}")));
        }
        if embedding_dim == 0 {
            return Err(invalid("embedding_dim must be positive".into()));
        }
        Ok(())
    }

    /// The seeds `build(seed)` gives its dropout layers, in layer order. A training run
    /// reseeds its network with them at the start of each epoch (`Sequential::reseed_each`),
    /// so epoch `e` draws the masks a network built for epoch `e` would, and runs from
    /// before reproduce. Building is the only way to know them: each is drawn from the
    /// initialisation's generator after the weights before it.
    pub fn dropout_seeds(&self, seed: u64) -> Result<Vec<u64>> {
        Ok(self.build(seed)?.seeds())
    }

    /// The network with weights drawn from `seed` (He normal before ReLU-like units,
    /// Xavier normal before tanh and for the embedding layer; biases zero).
    pub fn build(&self, seed: u64) -> Result<Sequential> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut net = Sequential::new();
        match self {
            // Its own output block, L2 normalisation included.
            ArchSpec::Resnet(r) => return r.build(seed),
            ArchSpec::DlibResnet(d) => return d.build(seed),
            ArchSpec::Mlp {
                input,
                hidden,
                activation,
                batch_norm,
                dropout,
                embedding_dim,
            } => {
                net.push(Flatten::new());
                let mut width = input[0] * input[1];
                let pieces = match activation {
                    HiddenActivation::Maxout { k } => *k,
                    _ => 1,
                };
                let init = match activation {
                    HiddenActivation::Tanh => Init::XavierNormal,
                    _ => Init::HeNormal,
                };
                for &units in hidden {
                    net.push(Linear::new(width, units * pieces, init, &mut rng)?);
                    if *batch_norm {
                        net.push(BatchNorm::new(units * pieces)?);
                    }
                    match activation {
                        HiddenActivation::Relu => net.push(Activation::relu()),
                        HiddenActivation::Prelu => net.push(PRelu::new(units)?),
                        HiddenActivation::Maxout { k } => net.push(Maxout::new(*k)?),
                        HiddenActivation::Tanh => net.push(Activation::new(ActivationKind::Tanh)),
                    };
                    if *dropout > 0.0 {
                        net.push(Dropout::new(*dropout, rng.random())?);
                    }
                    width = units;
                }
                net.push(Linear::new(
                    width,
                    *embedding_dim,
                    Init::XavierNormal,
                    &mut rng,
                )?);
            }
            ArchSpec::Cnn {
                input,
                widths,
                fc,
                embedding_dim,
                dropout,
            } => {
                let (mut channels, [mut h, mut w]) = (1, *input);
                for &width in widths {
                    let conv = Conv2dConfig::square(channels, width, 3, 1, 1);
                    let mut conv = Conv2d::new(conv, Init::HeNormal, &mut rng)?;
                    // The first layer's input is the image: nothing needs dE/dx there.
                    conv.input_grad = !net.is_empty();
                    net.push(conv);
                    net.push(BatchNorm::new(width)?);
                    net.push(Activation::relu());
                    net.push(MaxPool2d::new(2, 2)?);
                    (channels, h, w) = (width, h / 2, w / 2);
                }
                net.push(Flatten::new());
                net.push(Linear::new(
                    channels * h * w,
                    *fc,
                    Init::HeNormal,
                    &mut rng,
                )?);
                net.push(BatchNorm::new(*fc)?);
                net.push(Activation::relu());
                // Always present (even at p = 0) so tensor indices never depend on p.
                net.push(Dropout::new(*dropout, rng.random())?);
                net.push(Linear::new(
                    *fc,
                    *embedding_dim,
                    Init::XavierNormal,
                    &mut rng,
                )?);
            }
        }
        net.push(L2Norm::new());
        Ok(net)
    }
}

#[cfg(test)]
#[path = "arch_tests.rs"]
mod tests;
