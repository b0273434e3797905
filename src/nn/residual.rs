//! Residual blocks (He et al., "Deep Residual Learning for Image Recognition", 2016).

use super::activation::Activation;
use super::batch_norm::BatchNorm;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::init::Init;
use super::prelu::PRelu;
use super::sequential::Sequential;
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use rand::Rng;

/// `y = act(body(x) + shortcut(x))`, the shortcut being the identity or a projection.
///
/// Shapes: `body` and `shortcut` must map the input `(N, I, H, W)` to the same
/// `(N, O, Ho, Wo)`; the identity shortcut needs `(N, O, Ho, Wo) = (N, I, H, W)`. Backward,
/// with `s = body(x) + shortcut(x)` and `G = dE/ds = act'(s) · dE/dy`:
/// `dE/dx = body'(x)ᵀ G + shortcut'(x)ᵀ G` (`= … + G` for the identity).
///
/// Tensor names (`Layer::named_tensors`) are `body.{i}.{kind}.{name}`,
/// `shortcut.{i}.{kind}.{name}` and `activation.{name}` (a PReLU's slope), so in a
/// `Sequential` e.g. `3.residual.body.0.conv2d.weight`.
#[derive(Debug)]
pub struct Residual {
    body: Sequential,
    /// `None`: the identity.
    shortcut: Option<Sequential>,
    /// Applied to the sum (ReLU in ResNet).
    activation: Box<dyn Layer>,
}

/// The nonlinearity of a [`Residual::basic_block`], inside the body and after the sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockActivation {
    /// ResNet's.
    #[default]
    Relu,
    /// One slope per channel, as in the face-recognition ResNets of ArcFace's authors;
    /// the block's two PReLUs have separate slopes.
    Prelu,
}

impl BlockActivation {
    fn layer(self, channels: usize) -> Result<Box<dyn Layer>> {
        Ok(match self {
            BlockActivation::Relu => Box::new(Activation::relu()),
            BlockActivation::Prelu => Box::new(PRelu::new(channels)?),
        })
    }
}

/// A 3×3 convolution with padding 1, or the 1×1 projection (padding 0).
fn conv(i: usize, o: usize, k: usize, stride: usize, rng: &mut impl Rng) -> Result<Conv2d> {
    Conv2d::new(
        Conv2dConfig::square(i, o, k, stride, k / 2),
        Init::HeNormal,
        rng,
    )
}

impl Residual {
    /// A block from its parts; `shortcut = None` is the identity.
    pub fn new(body: Sequential, shortcut: Option<Sequential>, activation: Box<dyn Layer>) -> Self {
        Residual {
            body,
            shortcut,
            activation,
        }
    }

    /// ResNet's BasicBlock: body conv 3×3 (stride `stride`) → batch norm → act → conv
    /// 3×3 → batch norm; shortcut the identity, or conv 1×1 (stride `stride`) → batch
    /// norm when the stride is not 1 or the channels change (ResNet's option B); act
    /// after the sum. Convolutions are He-normal initialised.
    ///
    /// Differences from torchvision's `BasicBlock`: the convolutions keep a bias (zero at
    /// the start; in front of a batch norm it changes nothing but costs O parameters),
    /// and the last batch norm's γ starts at 1 (no `zero_init_residual`).
    pub fn basic_block(
        in_channels: usize,
        out_channels: usize,
        stride: usize,
        activation: BlockActivation,
        rng: &mut impl Rng,
    ) -> Result<Self> {
        let mut body = Sequential::new();
        body.push(conv(in_channels, out_channels, 3, stride, rng)?)
            .push(BatchNorm::new(out_channels)?);
        body.push_boxed(activation.layer(out_channels)?);
        body.push(conv(out_channels, out_channels, 3, 1, rng)?)
            .push(BatchNorm::new(out_channels)?);
        let shortcut = if stride != 1 || in_channels != out_channels {
            let mut s = Sequential::new();
            s.push(conv(in_channels, out_channels, 1, stride, rng)?)
                .push(BatchNorm::new(out_channels)?);
            Some(s)
        } else {
            None
        };
        Ok(Residual::new(
            body,
            shortcut,
            activation.layer(out_channels)?,
        ))
    }

    pub fn body(&self) -> &Sequential {
        &self.body
    }

    pub fn shortcut(&self) -> Option<&Sequential> {
        self.shortcut.as_ref()
    }

    /// The shape `body(x) + shortcut(x)` has, or a shape error naming both branches.
    fn sum_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let body = self.body.output_shape(input)?;
        let skip = match &self.shortcut {
            Some(s) => s.output_shape(input)?,
            None => input.to_vec(),
        };
        if body == skip {
            Ok(body)
        } else {
            Err(NnError::shape(
                "residual",
                format!("an input on which body ({body:?}) and shortcut ({skip:?}) agree"),
                input,
            ))
        }
    }

    /// `body + shortcut`, elementwise; the shapes were checked by `sum_shape`.
    fn add(body: Tensor, skip: &Tensor) -> Result<Tensor> {
        if body.shape() != skip.shape() {
            return Err(NnError::shape(
                "residual",
                format!("{:?} (the shortcut's output)", skip.shape()),
                body.shape(),
            ));
        }
        Ok(body + skip)
    }
}

/// Prefixes every name of `named` with `prefix.`.
fn prefixed<'a>(prefix: &str, named: Vec<(String, &'a Tensor)>) -> Vec<(String, &'a Tensor)> {
    named
        .into_iter()
        .map(|(name, t)| (format!("{prefix}.{name}"), t))
        .collect()
}

impl Layer for Residual {
    fn kind(&self) -> &'static str {
        "residual"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let sum = self.sum_shape(input)?;
        self.activation.output_shape(&sum)
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.sum_shape(x.shape())?;
        let body = self.body.forward(x, mode)?; // (N, O, Ho, Wo)
        let sum = match &mut self.shortcut {
            Some(s) => Self::add(body, &s.forward(x, mode)?)?,
            None => Self::add(body, x)?,
        };
        self.activation.forward(&sum, mode)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.sum_shape(x.shape())?;
        let body = self.body.infer(x)?;
        let sum = match &self.shortcut {
            Some(s) => Self::add(body, &s.infer(x)?)?,
            None => Self::add(body, x)?,
        };
        self.activation.infer(&sum)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let g = self.activation.backward(dy)?; // (N, O, Ho, Wo)
        let dx = self.body.backward(&g)?; // (N, I, H, W)
        let skip = match &mut self.shortcut {
            Some(s) => s.backward(&g)?,
            None => g,
        };
        Self::add(dx, &skip)
    }

    fn params(&self) -> Vec<&Param> {
        let mut params = self.body.params();
        if let Some(s) = &self.shortcut {
            params.extend(s.params());
        }
        params.extend(self.activation.params());
        params
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        let mut params = self.body.params_mut();
        if let Some(s) = &mut self.shortcut {
            params.extend(s.params_mut());
        }
        params.extend(self.activation.params_mut());
        params
    }

    /// The body's, the shortcut's and the activation's tensors, in that order.
    fn named_tensors(&self) -> Vec<(String, &Tensor)> {
        let mut all = prefixed("body", self.body.named_tensors());
        if let Some(s) = &self.shortcut {
            all.extend(prefixed("shortcut", s.named_tensors()));
        }
        all.extend(prefixed("activation", self.activation.named_tensors()));
        all
    }

    fn visit_tensors_mut(&mut self, f: &mut dyn FnMut(&str, &mut Tensor)) {
        self.body
            .visit_tensors_mut(&mut |name, t| f(&format!("body.{name}"), t));
        if let Some(s) = &mut self.shortcut {
            s.visit_tensors_mut(&mut |name, t| f(&format!("shortcut.{name}"), t));
        }
        self.activation
            .visit_tensors_mut(&mut |name, t| f(&format!("activation.{name}"), t));
    }
}
