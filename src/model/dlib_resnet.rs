//! The residual network of dlib's face-recognition model (King 2017, `dlib_face_
//! recognition_resnet_model_v1`): a ResNet-34 with layers removed and half the filters,
//! 29 convolutions, trained by its author on about 3 million faces. Its weights are
//! public domain (CC0); `scripts/convert_dlib_resnet.py` turns dlib's file into this
//! architecture's tensors, so the engine runs it like any model it trained itself.
//!
//! What makes it dlib's rather than torchvision's ResNet, all reproduced here:
//! - convolutions with a stride other than 1 have no padding (dlib's default), so the
//!   maps go 150 → 72 (7×7 stem, stride 2) → 35 (3×3 max pool, stride 2) → 17 → 8 → 3
//!   → 1;
//! - a down-sampling block's shortcut is a 2×2 average pool of its input, added with
//!   zero padding ([`SumRule::ZeroPadded`]) to a body with twice the channels (and, from
//!   8×8 on, a smaller map than the pooled one: 3×3 against 4×4);
//! - batch norm was replaced after training by a per-channel affine map (`affine`),
//!   which the converter folds into the convolution before it, so a block is conv →
//!   ReLU → conv here;
//! - the embedding layer has no bias (it is stored as zeros).
//!
//! The input is one grey `(N, 1, 150, 150)` chip, pixels in [0, 1]: dlib's network reads
//! RGB minus a mean colour, divided by 256; with R = G = B, the stem's three input
//! channels fold into one exactly (the stem has no padding, so no border sees the
//! mean differently), and the converter folds the mean and the scale in too.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::nn::activation::Activation;
use crate::nn::avg_pool::AvgPool2d;
use crate::nn::conv2d::{Conv2d, Conv2dConfig};
use crate::nn::init::Init;
use crate::nn::l2norm::L2Norm;
use crate::nn::linear::Linear;
use crate::nn::pool::{GlobalAvgPool, MaxPool2d};
use crate::nn::residual::{Residual, SumRule};
use crate::nn::sequential::Sequential;
use crate::nn::{NnError, Result};

/// `(width, blocks)` per level, input side first; every level after the first starts
/// with a down-sampling block (dlib's `alevel4` … `alevel0`).
pub const LEVELS: [(usize, usize); 5] = [(32, 3), (64, 4), (128, 3), (256, 3), (256, 1)];

/// Channels of the 7×7 stem.
pub const STEM: usize = 32;

/// The network's size: dlib's is a 150×150 input and a 128-dimensional embedding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DlibResnetSpec {
    /// 56×48 when left out, like every architecture's (see
    /// `arch::ArchSpec`); dlib's weights need 150×150.
    #[serde(default = "super::default_input")]
    pub input: [usize; 2],
    pub embedding_dim: usize,
}

impl Default for DlibResnetSpec {
    fn default() -> Self {
        DlibResnetSpec {
            input: [150, 150],
            embedding_dim: 128,
        }
    }
}

/// A 3×3 convolution: padding 1 at stride 1, none otherwise (dlib's default).
fn conv3(i: usize, o: usize, stride: usize, rng: &mut ChaCha8Rng) -> Result<Conv2d> {
    let padding = if stride == 1 { 1 } else { 0 };
    Conv2d::new(
        Conv2dConfig::square(i, o, 3, stride, padding),
        Init::HeNormal,
        rng,
    )
}

/// One block: body conv 3×3 (stride 1 or 2) → ReLU → conv 3×3; shortcut the identity,
/// or a 2×2 average pool when down-sampling; zero-padded sum; ReLU.
fn block(i: usize, o: usize, down: bool, rng: &mut ChaCha8Rng) -> Result<Residual> {
    let stride = if down { 2 } else { 1 };
    let mut body = Sequential::new();
    body.push(conv3(i, o, stride, rng)?)
        .push(Activation::relu())
        .push(conv3(o, o, 1, rng)?);
    let shortcut = if down {
        let mut s = Sequential::new();
        s.push(AvgPool2d::new(2, 2)?);
        Some(s)
    } else {
        None
    };
    Ok(Residual::new(body, shortcut, Box::new(Activation::relu())).with_sum(SumRule::ZeroPadded))
}

/// The last map's side for an input side, `None` when some window does not fit: the
/// stem (7, stride 2) and max pool (3, stride 2), then per down-sampling block the larger
/// of its body (3, stride 2) and its 2×2 average-pooled shortcut.
fn final_side(side: usize) -> Option<usize> {
    let down = |x: usize, k: usize| (x >= k).then(|| (x - k) / 2 + 1);
    let mut x = down(down(side, 7)?, 3)?;
    for _ in 1..LEVELS.len() {
        x = down(x, 3)?.max(down(x, 2)?);
    }
    Some(x)
}

impl DlibResnetSpec {
    /// The input must reach the last level with a map of at least 1×1 (checked by
    /// arithmetic: building the network to ask it would draw 5.6 M weights twice on
    /// every model load).
    pub fn validate(&self) -> Result<()> {
        let [h, w] = self.input;
        if self.embedding_dim == 0 {
            return Err(NnError::Invalid(
                "architecture: embedding_dim must be positive".into(),
            ));
        }
        if final_side(h).is_none() || final_side(w).is_none() {
            return Err(NnError::Invalid(format!(
                "architecture: input {h}×{w} is too small for dlib's ResNet"
            )));
        }
        Ok(())
    }

    /// The network, weights drawn from `seed` (He normal; the embedding layer Xavier
    /// normal, biases zero), so it can also be trained from scratch.
    pub fn build(&self, seed: u64) -> Result<Sequential> {
        self.validate()?;
        self.build_unchecked(seed)
    }

    fn build_unchecked(&self, seed: u64) -> Result<Sequential> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut net = Sequential::new();
        let mut stem = Conv2d::new(
            Conv2dConfig::square(1, STEM, 7, 2, 0),
            Init::HeNormal,
            &mut rng,
        )?;
        // The stem's input is the image: nothing needs dE/dx there.
        stem.input_grad = false;
        net.push(stem)
            .push(Activation::relu())
            .push(MaxPool2d::new(3, 2)?);
        let mut channels = STEM;
        for (level, &(width, blocks)) in LEVELS.iter().enumerate() {
            for b in 0..blocks {
                net.push(block(channels, width, level > 0 && b == 0, &mut rng)?);
                channels = width;
            }
        }
        net.push(GlobalAvgPool::new())
            .push(Linear::new(
                channels,
                self.embedding_dim,
                Init::XavierNormal,
                &mut rng,
            )?)
            .push(L2Norm::new());
        Ok(net)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maps_shrink_as_dlibs_do_and_the_weights_count_as_dlibs() {
        let net = DlibResnetSpec::default().build(1).unwrap();
        assert_eq!(net.output_shape(&[2, 1, 150, 150]).unwrap(), vec![2, 128]);
        // Stem 72×72 → pool 35×35 → levels 35, 17, 8, 4 (the pooled shortcut's 4×4 is
        // larger than the body's 3×3), 2.
        let maps: Vec<Vec<usize>> = net
            .layers()
            .iter()
            .scan(vec![1, 1, 150, 150], |shape, layer| {
                *shape = layer.output_shape(shape).unwrap();
                Some(shape.clone())
            })
            .collect();
        assert_eq!(maps[0], vec![1, 32, 72, 72]);
        assert_eq!(maps[2], vec![1, 32, 35, 35]);
        let level_ends = [2 + 3, 2 + 7, 2 + 10, 2 + 13, 2 + 14];
        let sizes: Vec<usize> = level_ends.iter().map(|&i| maps[i][2]).collect();
        assert_eq!(sizes, vec![35, 17, 8, 4, 2]);
        // dlib's file: 29 convolutions of 5,574,720 filter and bias values (the affine
        // maps fold into them); here the stem has 1 input channel, not 3, and the
        // embedding layer 32,768 weights plus the 128 zero biases stored for them.
        let convs = net
            .named_tensors()
            .iter()
            .filter(|(n, _)| n.ends_with("conv2d.weight"))
            .count();
        assert_eq!(convs, 29);
        assert_eq!(
            net.num_parameters(),
            5_574_720 - 2 * 7 * 7 * 32 + 32_768 + 128
        );
    }

    #[test]
    fn too_small_an_input_is_refused() {
        let spec = DlibResnetSpec {
            input: [40, 40],
            embedding_dim: 128,
        };
        assert!(spec.validate().is_err());
        assert!(DlibResnetSpec::default().validate().is_ok());
        // The arithmetic agrees with the layers: 150 ends at 2 (as the built net shows).
        assert_eq!(final_side(150), Some(2));
    }
}
