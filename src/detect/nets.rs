//! MTCNN's three networks (Zhang et al. 2016) on the project's own layers, with the
//! weights of `models/mtcnn.safetensors` (converted from facenet-pytorch by
//! `scripts/convert_mtcnn.py`, MIT; see `models/mtcnn.LICENSE`).
//!
//! The service works on grey images, so each network's first convolution is given grey
//! input: its weights are summed over the three colour channels, which is exactly the
//! RGB network run on a grey image copied into R, G and B. Each network's output heads
//! (face/non-face logits, box offsets, landmarks) are one layer whose outputs are
//! concatenated: P-Net `(N, 6, h, w)` = 2 logits + 4 offsets; R-Net `(N, 6)`; O-Net
//! `(N, 16)` = 2 logits + 4 offsets + 10 landmark coordinates.

use ndarray::{Axis, concatenate};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::DetectError;
use crate::nn::conv2d::{Conv2d, Conv2dConfig};
use crate::nn::flatten::Flatten;
use crate::nn::init::Init;
use crate::nn::linear::Linear;
use crate::nn::pool::MaxPool2d;
use crate::nn::prelu::PRelu;
use crate::nn::sequential::Sequential;
use crate::nn::tensor_file::{self, Tensors};
use crate::nn::{NnError, Tensor};

/// The converted weights, compiled in: detection reads no file.
const WEIGHTS: &[u8] = include_bytes!("../../models/mtcnn.safetensors");

/// The three networks, ready for inference (`&self`, shareable across threads).
#[derive(Debug)]
pub struct Nets {
    pub pnet: Sequential,
    pub rnet: Sequential,
    pub onet: Sequential,
}

/// Tensors by name, as f32 arrays.
struct Weights(Tensors);

impl Weights {
    fn parse(bytes: &[u8]) -> Result<Weights, DetectError> {
        let file = tensor_file::decode(bytes).map_err(|e| model_error(e.to_string()))?;
        Ok(Weights(file.tensors))
    }

    fn take(&self, name: &str, shape: &[usize]) -> Result<Tensor, DetectError> {
        let t = self
            .0
            .get(name)
            .ok_or_else(|| model_error(format!("missing tensor {name}")))?;
        if t.shape() != shape {
            return Err(model_error(format!(
                "{name}: expected shape {shape:?}, got {:?}",
                t.shape()
            )));
        }
        Ok(t.clone())
    }

    /// A convolution `net.layer` of `i → o` channels, `k×k`; `grey` sums the RGB weights.
    fn conv(
        &self,
        layer: &str,
        i: usize,
        o: usize,
        k: usize,
        grey: bool,
    ) -> Result<Conv2d, DetectError> {
        let mut weight = self.take(&format!("{layer}.weight"), &[o, i, k, k])?;
        let inputs = if grey {
            weight = weight.sum_axis(Axis(1)).insert_axis(Axis(1));
            1
        } else {
            i
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut conv = Conv2d::new(
            Conv2dConfig::square(inputs, o, k, 1, 0),
            Init::Constant(0.0),
            &mut rng,
        )
        .map_err(nn_error)?;
        conv.weight_mut().value = weight;
        conv.bias_mut().value = self.take(&format!("{layer}.bias"), &[o])?;
        Ok(conv)
    }

    fn prelu(&self, layer: &str, c: usize) -> Result<PRelu, DetectError> {
        let mut prelu = PRelu::new(c).map_err(nn_error)?;
        prelu.slope.value = self.take(&format!("{layer}.weight"), &[c])?;
        Ok(prelu)
    }

    /// The weights and biases of several layers `net.layer` with `o_j` outputs each,
    /// concatenated along the output axis; `tail` is the weight shape after it.
    fn joined(
        &self,
        layers: &[(&str, usize)],
        tail: &[usize],
    ) -> Result<(Tensor, Tensor), DetectError> {
        let mut weights = Vec::new();
        let mut biases = Vec::new();
        for &(layer, o) in layers {
            let shape: Vec<usize> = std::iter::once(o).chain(tail.iter().copied()).collect();
            weights.push(self.take(&format!("{layer}.weight"), &shape)?);
            biases.push(self.take(&format!("{layer}.bias"), &[o])?);
        }
        let join = |parts: &[Tensor]| {
            let views: Vec<_> = parts.iter().map(|t| t.view()).collect();
            concatenate(Axis(0), &views).map_err(|e| model_error(e.to_string()))
        };
        Ok((join(&weights)?, join(&biases)?))
    }

    /// Several linear layers `i → o_j` joined into one whose outputs are concatenated.
    fn linear(&self, layers: &[(&str, usize)], i: usize) -> Result<Linear, DetectError> {
        let (weight, bias) = self.joined(layers, &[i])?;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let mut linear =
            Linear::new(i, bias.len(), Init::Constant(0.0), &mut rng).map_err(nn_error)?;
        (linear.weight.value, linear.bias.value) = (weight, bias);
        Ok(linear)
    }

    /// 1×1 convolutions joined like [`Weights::linear`].
    fn heads_1x1(&self, layers: &[(&str, usize)], i: usize) -> Result<Conv2d, DetectError> {
        let (weight, bias) = self.joined(layers, &[i, 1, 1])?;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let config = Conv2dConfig::square(i, bias.len(), 1, 1, 0);
        let mut conv = Conv2d::new(config, Init::Constant(0.0), &mut rng).map_err(nn_error)?;
        conv.weight_mut().value = weight;
        conv.bias_mut().value = bias;
        Ok(conv)
    }
}

fn model_error(message: String) -> DetectError {
    DetectError::Model(format!("models/mtcnn.safetensors: {message}"))
}

fn nn_error(e: NnError) -> DetectError {
    model_error(e.to_string())
}

fn pool(k: usize, s: usize) -> Result<MaxPool2d, DetectError> {
    MaxPool2d::ceil(k, s).map_err(nn_error)
}

impl Nets {
    /// The shipped weights.
    pub fn load() -> Result<Nets, DetectError> {
        Nets::from_bytes(WEIGHTS)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Nets, DetectError> {
        let w = Weights::parse(bytes)?;
        let mut pnet = Sequential::new();
        pnet.push(w.conv("pnet.conv1", 3, 10, 3, true)?)
            .push(w.prelu("pnet.prelu1", 10)?)
            .push(pool(2, 2)?)
            .push(w.conv("pnet.conv2", 10, 16, 3, false)?)
            .push(w.prelu("pnet.prelu2", 16)?)
            .push(w.conv("pnet.conv3", 16, 32, 3, false)?)
            .push(w.prelu("pnet.prelu3", 32)?)
            .push(w.heads_1x1(&[("pnet.conv4_1", 2), ("pnet.conv4_2", 4)], 32)?);
        let mut rnet = Sequential::new();
        rnet.push(w.conv("rnet.conv1", 3, 28, 3, true)?)
            .push(w.prelu("rnet.prelu1", 28)?)
            .push(pool(3, 2)?)
            .push(w.conv("rnet.conv2", 28, 48, 3, false)?)
            .push(w.prelu("rnet.prelu2", 48)?)
            .push(pool(3, 2)?)
            .push(w.conv("rnet.conv3", 48, 64, 2, false)?)
            .push(w.prelu("rnet.prelu3", 64)?)
            .push(Flatten::new())
            .push(w.linear(&[("rnet.dense4", 128)], 576)?)
            .push(w.prelu("rnet.prelu4", 128)?)
            .push(w.linear(&[("rnet.dense5_1", 2), ("rnet.dense5_2", 4)], 128)?);
        let mut onet = Sequential::new();
        onet.push(w.conv("onet.conv1", 3, 32, 3, true)?)
            .push(w.prelu("onet.prelu1", 32)?)
            .push(pool(3, 2)?)
            .push(w.conv("onet.conv2", 32, 64, 3, false)?)
            .push(w.prelu("onet.prelu2", 64)?)
            .push(pool(3, 2)?)
            .push(w.conv("onet.conv3", 64, 64, 3, false)?)
            .push(w.prelu("onet.prelu3", 64)?)
            .push(pool(2, 2)?)
            .push(w.conv("onet.conv4", 64, 128, 2, false)?)
            .push(w.prelu("onet.prelu4", 128)?)
            .push(Flatten::new())
            .push(w.linear(&[("onet.dense5", 256)], 1152)?)
            .push(w.prelu("onet.prelu5", 256)?)
            .push(w.linear(
                &[
                    ("onet.dense6_1", 2),
                    ("onet.dense6_2", 4),
                    ("onet.dense6_3", 10),
                ],
                256,
            )?);
        Ok(Nets { pnet, rnet, onet })
    }
}

/// Probability of "face" from the two logits (the 2-way softmax).
#[inline]
pub fn face_probability(non_face: f32, face: f32) -> f32 {
    1.0 / (1.0 + (non_face - face).exp())
}
