//! Residual blocks (He et al., "Deep Residual Learning for Image Recognition", 2016).

use super::activation::Activation;
use super::batch_norm::BatchNorm;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::epilogue::Epilogue;
use super::init::Init;
use super::prelu::PRelu;
use super::recycle;
use super::sequential::Sequential;
use super::tensor::{data, from_vec, into_data, par_add_assign};
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use ndarray::Slice;
use rand::Rng;

/// `y = act(body(x) + shortcut(x))`, the shortcut being the identity or a projection.
///
/// Shapes: `body` and `shortcut` must map the input `(N, I, H, W)` to the same
/// `(N, O, Ho, Wo)`; the identity shortcut needs `(N, O, Ho, Wo) = (N, I, H, W)`. Backward,
/// with `s = body(x) + shortcut(x)` and `G = dE/ds = act'(s) · dE/dy`:
/// `dE/dx = body'(x)ᵀ G + shortcut'(x)ᵀ G` (`= … + G` for the identity).
///
/// With [`SumRule::ZeroPadded`] (dlib's `add_prev`) the branches may disagree in
/// channels, height and width: the sum takes the larger size on each axis, a branch
/// adding zeros where it has no values, and each branch's gradient is `G` cut to its
/// own shape.
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
    sum: SumRule,
    /// The branch output shapes of the last training forward (`ZeroPadded` backward).
    branch_shapes: Option<(Vec<usize>, Vec<usize>)>,
}

/// How the two branches' outputs are added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SumRule {
    /// Same shape required (ResNet, with projection shortcuts where shapes change).
    #[default]
    Equal,
    /// Shapes may differ (batch aside): the sum is as large as the larger branch on each
    /// axis, the smaller one counting as zero past its end. This is dlib's `add_prev`,
    /// whose down-sampling blocks add a 2×2 average-pooled shortcut with half the
    /// channels (and, from 8×8 to 3×3 maps, a larger map) to the body's output.
    ZeroPadded,
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
            sum: SumRule::Equal,
            branch_shapes: None,
        }
    }

    /// The same block with branches added by `rule`.
    pub fn with_sum(mut self, rule: SumRule) -> Self {
        self.sum = rule;
        self
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
        let padded = self.sum == SumRule::ZeroPadded
            && body.len() == skip.len()
            && body.first() == skip.first();
        if body == skip {
            Ok(body)
        } else if padded {
            Ok(body.iter().zip(&skip).map(|(&a, &b)| a.max(b)).collect())
        } else {
            Err(NnError::shape(
                "residual",
                format!("an input on which body ({body:?}) and shortcut ({skip:?}) agree"),
                input,
            ))
        }
    }

    /// `body + shortcut`, elementwise; the shapes were checked by `sum_shape`.
    fn add(&self, body: Tensor, skip: &Tensor) -> Result<Tensor> {
        self.add_then(body, skip, false)
    }

    /// `body + shortcut`, then with `relu` `max(0, ·)` of it. Equal shapes take one
    /// parallel pass over `body`'s own buffer.
    fn add_then(&self, body: Tensor, skip: &Tensor, relu: bool) -> Result<Tensor> {
        if body.shape() == skip.shape() {
            let shape = body.shape().to_vec();
            let mut sum = into_data(body);
            par_add_assign(&mut sum, &data(skip), relu);
            return from_vec(&shape, sum);
        }
        if self.sum != SumRule::ZeroPadded {
            return Err(NnError::shape(
                "residual",
                format!("{:?} (the shortcut's output)", skip.shape()),
                body.shape(),
            ));
        }
        let shape: Vec<usize> = body
            .shape()
            .iter()
            .zip(skip.shape())
            .map(|(&a, &b)| a.max(b))
            .collect();
        let mut sum = Tensor::zeros(shape);
        for branch in [&body, skip] {
            sum.slice_each_axis_mut(|ax| Slice::from(0..branch.shape()[ax.axis.index()]))
                .zip_mut_with(branch, |s, &v| *s += v);
        }
        if relu {
            sum.mapv_inplace(|v| v.max(0.0));
        }
        Ok(sum)
    }
}

/// `g` cut to `shape` (its leading part on every axis), or `g` itself when it has it.
fn cut(g: &Tensor, shape: &[usize]) -> Tensor {
    if g.shape() == shape {
        return g.clone();
    }
    g.slice_each_axis(|ax| Slice::from(0..shape[ax.axis.index()]))
        .to_owned()
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
        // The identity shortcut reads `x` where it is: a copy of it was 0.8 % of the
        // ResNet-14's training step and 22 MB of its peak memory (BENCHMARKS.md).
        let projected = self
            .shortcut
            .as_mut()
            .map(|s| s.forward(x, mode))
            .transpose()?;
        let skip = projected.as_ref().unwrap_or(x);
        if mode == Mode::Train {
            self.branch_shapes = Some((body.shape().to_vec(), skip.shape().to_vec()));
        }
        let sum = self.add(body, skip)?;
        self.activation.forward(&sum, mode)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.sum_shape(x.shape())?;
        let body = self.body.infer(x)?;
        // A ReLU after the sum is applied in the same pass.
        let relu = self.activation.as_epilogue() == Some(Epilogue::Relu);
        let sum = match &self.shortcut {
            Some(s) => {
                let skip = s.infer(x)?;
                let sum = self.add_then(body, &skip, relu)?;
                recycle::give_tensor(skip);
                sum
            }
            None => self.add_then(body, x, relu)?,
        };
        if relu {
            return Ok(sum);
        }
        self.activation.infer(&sum)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let g = self.activation.backward(dy)?; // (N, O, Ho, Wo)
        // Zero-padded sums: each branch gets the part of G its own output covers.
        let shapes = match self.sum {
            SumRule::ZeroPadded => self.branch_shapes.clone(),
            SumRule::Equal => None,
        };
        let dx = match &shapes {
            Some((body, _)) => self.body.backward(&cut(&g, body))?,
            None => self.body.backward(&g)?,
        }; // (N, I, H, W)
        let g_skip = match &shapes {
            Some((_, skip)) => cut(&g, skip),
            None => g,
        };
        let skip = match &mut self.shortcut {
            Some(s) => s.backward(&g_skip)?,
            None => g_skip,
        };
        self.add(dx, &skip)
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
