//! The residual CNN: ResNet's BasicBlocks (He et al. 2016) sized for small face crops,
//! with a face-recognition output block (Deng et al. 2019, ArcFace's "E": linear → batch
//! norm → embedding).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::nn::activation::Activation;
use crate::nn::batch_norm::BatchNorm;
use crate::nn::conv2d::{Conv2d, Conv2dConfig};
use crate::nn::dropout::Dropout;
use crate::nn::flatten::Flatten;
use crate::nn::init::Init;
use crate::nn::l2norm::L2Norm;
use crate::nn::linear::Linear;
use crate::nn::pool::GlobalAvgPool;
use crate::nn::prelu::PRelu;
use crate::nn::residual::{BlockActivation, Residual};
use crate::nn::sequential::Sequential;
use crate::nn::{NnError, Result};

/// The nonlinearity of the stem and every block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResnetActivation {
    #[default]
    Relu,
    /// One learnable slope per channel, as insightface's IResNet.
    Prelu,
}

/// How the last feature map `(N, C, h, w)` becomes a vector before the embedding layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResnetPooling {
    /// Global average pooling to `(N, C)`, as ResNet.
    #[default]
    Average,
    /// Flatten to `(N, C·h·w)`, keeping where on the face a feature is, as ArcFace's
    /// output block (a larger embedding layer).
    Flatten,
}

/// A residual CNN on `(N, 1, h, w)` images:
/// stem conv 3×3 (stride 1, 1 → `stem` channels) → batch norm → act; then for each
/// stage `(width, blocks)` that many BasicBlocks ([`Residual::basic_block`]) of `width`
/// channels, the first block of every stage after the first with stride 2 (halving the
/// map, `h → ⌊(h − 1)/2⌋ + 1`; projection shortcuts where the shape changes); then
/// `pooling` → dropout → linear `embedding_dim` → batch norm → L2 normalisation.
///
/// The defaults (`stem` 32, stages `[[32, 2], [64, 2], [128, 2]]`, i.e. a ResNet-14 on
/// 56×48 crops ending in 14×12 maps) are sized for CPU training on a few hundred
/// identities; ResNet-18 is stages `[[64, 2], [128, 2], [256, 2], [512, 2]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResnetSpec {
    /// 56×48 when left out (see `arch::ArchSpec`).
    #[serde(default = "super::default_input")]
    pub input: [usize; 2],
    #[serde(default = "default_stem")]
    pub stem: usize,
    /// `(width, blocks)` per stage; TOML `[[64, 2], [128, 2]]`.
    #[serde(default = "default_stages")]
    pub stages: Vec<(usize, usize)>,
    #[serde(default)]
    pub activation: ResnetActivation,
    #[serde(default)]
    pub pooling: ResnetPooling,
    #[serde(default = "default_embedding_dim")]
    pub embedding_dim: usize,
    /// Dropout before the embedding layer (ArcFace's output block uses 0.4 on large
    /// data; none by default).
    #[serde(default)]
    pub dropout: f32,
}

fn default_stem() -> usize {
    32
}
fn default_stages() -> Vec<(usize, usize)> {
    vec![(32, 2), (64, 2), (128, 2)]
}
fn default_embedding_dim() -> usize {
    128
}

fn invalid(msg: String) -> NnError {
    NnError::Invalid(format!("architecture: {msg}"))
}

impl ResnetSpec {
    /// The defaults above on an `[h, w]` input.
    pub fn with_input(input: [usize; 2]) -> Self {
        ResnetSpec {
            input,
            stem: default_stem(),
            stages: default_stages(),
            activation: ResnetActivation::default(),
            pooling: ResnetPooling::default(),
            embedding_dim: default_embedding_dim(),
            dropout: 0.0,
        }
    }

    /// The size `[h, w]` of the last feature map.
    pub fn final_map(&self) -> [usize; 2] {
        let halve = |v: usize| v.saturating_sub(1) / 2 + 1;
        let [mut h, mut w] = self.input;
        for _ in 1..self.stages.len() {
            (h, w) = (halve(h), halve(w));
        }
        [h, w]
    }

    /// Positive sizes, at least one stage of at least one block, dropout in [0, 1).
    pub fn validate(&self) -> Result<()> {
        let [h, w] = self.input;
        if h == 0 || w == 0 {
            return Err(invalid(format!("input must be at least 1×1, got {h}×{w}")));
        }
        if self.stem == 0 || self.embedding_dim == 0 {
            return Err(invalid(format!(
                "stem width and embedding_dim must be positive, got {} and {}",
                self.stem, self.embedding_dim
            )));
        }
        if self.stages.is_empty() {
            return Err(invalid("a ResNet needs at least one stage".into()));
        }
        if self
            .stages
            .iter()
            .any(|&(width, blocks)| width == 0 || blocks == 0)
        {
            return Err(invalid(format!(
                "every stage needs a positive width and at least one block, got {:?}",
                self.stages
            )));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            let p = self.dropout;
            return Err(invalid(format!("dropout must be in [0, 1), got {p}")));
        }
        Ok(())
    }

    /// The network, weights drawn from `seed`: He normal for the convolutions, Xavier
    /// normal for the embedding layer (as the CNN), biases zero.
    pub fn build(&self, seed: u64) -> Result<Sequential> {
        self.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut net = Sequential::new();
        let stem = Conv2dConfig::square(1, self.stem, 3, 1, 1);
        let mut stem = Conv2d::new(stem, Init::HeNormal, &mut rng)?;
        // The stem's input is the image: nothing needs dE/dx there.
        stem.input_grad = false;
        net.push(stem).push(BatchNorm::new(self.stem)?);
        match self.activation {
            ResnetActivation::Relu => net.push(Activation::relu()),
            ResnetActivation::Prelu => net.push(PRelu::new(self.stem)?),
        };
        let block_act = match self.activation {
            ResnetActivation::Relu => BlockActivation::Relu,
            ResnetActivation::Prelu => BlockActivation::Prelu,
        };
        let mut channels = self.stem;
        for (stage, &(width, blocks)) in self.stages.iter().enumerate() {
            for block in 0..blocks {
                let stride = if stage > 0 && block == 0 { 2 } else { 1 };
                net.push(Residual::basic_block(
                    channels, width, stride, block_act, &mut rng,
                )?);
                channels = width;
            }
        }
        let features = match self.pooling {
            ResnetPooling::Average => {
                net.push(GlobalAvgPool::new());
                channels
            }
            ResnetPooling::Flatten => {
                net.push(Flatten::new());
                let [h, w] = self.final_map();
                channels * h * w
            }
        };
        // Always present (even at p = 0) so tensor indices never depend on p.
        net.push(Dropout::new(self.dropout, rng.random())?);
        net.push(Linear::new(
            features,
            self.embedding_dim,
            Init::XavierNormal,
            &mut rng,
        )?);
        net.push(BatchNorm::new(self.embedding_dim)?);
        net.push(L2Norm::new());
        Ok(net)
    }
}

#[cfg(test)]
#[path = "resnet_tests.rs"]
mod tests;
