//! The training objective on a batch of embeddings: the configured loss, plus the
//! softmax classifier head when the loss is `softmax`.

use ndarray::Axis;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::config::LossConfig;
use super::error::Result;
use super::margin::Margin;
use crate::nn::loss::{contrastive_loss, softmax_cross_entropy, triplet_loss};
use crate::nn::sequential::Sequential;
use crate::nn::{Mode, Param, Tensor};

/// The loss on one batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLoss {
    pub value: f32,
    /// Fraction of active triplets / pairs, or of misclassified samples (softmax).
    pub active: f32,
}

/// The configured loss, with the classifier head it owns for `softmax`.
#[derive(Debug)]
pub struct Objective {
    loss: LossConfig,
    /// `Some` for the softmax loss: embeddings (N, K) → logits (N, C).
    head: Option<Sequential>,
}

impl Objective {
    /// `dim` is the embedding dimension, `classes` the number of training identities.
    pub fn new(loss: &LossConfig, dim: usize, classes: usize, seed: u64) -> Result<Self> {
        let head = match loss {
            LossConfig::Softmax(s) => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                Some(s.head.build(dim, classes, &mut rng)?)
            }
            LossConfig::Triplet(_) | LossConfig::Contrastive(_) => None,
        };
        Ok(Objective {
            loss: loss.clone(),
            head,
        })
    }

    pub fn head(&self) -> Option<&Sequential> {
        self.head.as_ref()
    }

    pub fn head_mut(&mut self) -> Option<&mut Sequential> {
        self.head.as_mut()
    }

    /// The head's parameters (none for metric losses), after the network's in the
    /// optimiser's list.
    pub fn params_mut(&mut self) -> Vec<&mut Param> {
        self.head
            .as_mut()
            .map(|h| h.params_mut())
            .unwrap_or_default()
    }

    /// Loss of the embeddings (N, K) with labels in `0..classes`; returns the loss and
    /// dE/d(embeddings) (N, K). The head's gradients are accumulated (zero them first).
    pub fn forward_backward(
        &mut self,
        embeddings: &Tensor,
        labels: &[usize],
    ) -> Result<(BatchLoss, Tensor)> {
        match (&self.loss, self.head.as_mut()) {
            (LossConfig::Triplet(cfg), _) => {
                let out = triplet_loss(embeddings, labels, cfg)?;
                let loss = BatchLoss {
                    value: out.output.value,
                    active: out.stats.fraction_active,
                };
                Ok((loss, out.output.grad))
            }
            (LossConfig::Contrastive(cfg), _) => {
                let out = contrastive_loss(embeddings, labels, cfg)?;
                let loss = BatchLoss {
                    value: out.output.value,
                    active: out.stats.fraction_active,
                };
                Ok((loss, out.output.grad))
            }
            (LossConfig::Softmax(softmax), Some(head)) => {
                let mut logits = head.forward(embeddings, Mode::Train)?; // (N, C)
                // CosFace / ArcFace / SphereFace: the true logit s·cos θ becomes s·ψ(cos θ);
                // the chain rule then scales its gradient by dψ/dcos θ.
                let margin = softmax.head.margin();
                let slopes = match margin {
                    Some((m, scale)) => Some(m.apply(scale, &mut logits, labels)?),
                    None => None,
                };
                let mut out = softmax_cross_entropy(&logits, labels)?;
                let wrong = logits
                    .axis_iter(Axis(0))
                    .zip(labels)
                    .filter(|(row, label)| argmax(row.iter().copied()) != Some(**label))
                    .count();
                if let Some(slopes) = &slopes {
                    Margin::backward(&mut out.grad, labels, slopes)?;
                }
                let grad = head.backward(&out.grad)?;
                let loss = BatchLoss {
                    value: out.value,
                    active: wrong as f32 / labels.len().max(1) as f32,
                };
                Ok((loss, grad))
            }
            (LossConfig::Softmax(_), None) => Err(crate::nn::NnError::Invalid(
                "softmax loss without its classifier head".into(),
            )
            .into()),
        }
    }
}

/// Index of the largest value (the first on ties), `None` if empty.
fn argmax(values: impl Iterator<Item = f32>) -> Option<usize> {
    values
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (i, v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}
