//! Parametric ReLU (He et al., 2015).

use super::epilogue::{Epilogue, Rectify};
use super::tensor::{data, from_vec, per_channel, same_shape};
use super::{Layer, Mode, NnError, Param, Result, Tensor};

/// `y = x` for x > 0, `y = a_c · x` otherwise, with one learnable slope `a_c` per
/// channel (axis 1). Shapes: `(N, C)` or `(N, C, H, W)` → the same; `slope (C)`.
///
/// As PyTorch's `nn.PReLU(num_parameters=C)`: slopes start at 0.25 and take no weight
/// decay (the paper's advice). PyTorch names the parameter `weight`; here it is `slope`.
#[derive(Debug, Clone)]
pub struct PRelu {
    pub slope: Param,
    /// The last training input. Same shape as x.
    input: Option<Tensor>,
}

impl PRelu {
    pub fn new(channels: usize) -> Result<Self> {
        if channels == 0 {
            return Err(NnError::Invalid("prelu: channels must be positive".into()));
        }
        Ok(PRelu {
            slope: Param::bias("slope", Tensor::from_elem(vec![channels], 0.25)),
            input: None,
        })
    }

    fn channels(&self) -> usize {
        self.slope.value.len()
    }
}

impl Layer for PRelu {
    fn kind(&self) -> &'static str {
        "prelu"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        per_channel("prelu", input, self.channels())?;
        Ok(input.to_vec())
    }

    fn as_epilogue(&self) -> Option<Epilogue> {
        Some(Epilogue::Prelu {
            slope: data(&self.slope.value).into_owned(),
        })
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.infer(x)?;
        if mode == Mode::Train {
            self.input = Some(x.as_standard_layout().into_owned());
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let (_, c, s) = per_channel("prelu", x.shape(), self.channels())?;
        let a = data(&self.slope.value);
        let mut y = data(x).into_owned();
        // One channel plane (s values) at a time: no index arithmetic per value.
        for (plane, ys) in y.chunks_mut(s).enumerate() {
            let slope = a[plane % c];
            let f = Rectify::Prelu(slope);
            // A select, not a branch: the loop vectorises.
            ys.iter_mut().for_each(|v| *v = f.apply(*v));
        }
        from_vec(x.shape(), y)
    }

    /// `dx = dy` where x > 0, else `a_c · dy`; `da_c += Σ_{x ≤ 0} dy · x`.
    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let x = self
            .input
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "prelu" })?;
        same_shape("prelu", dy, x.shape())?;
        let (_, c, s) = per_channel("prelu", x.shape(), self.channels())?;
        let a = data(&self.slope.value).into_owned();
        let (xs, dys) = (data(x), data(dy));
        let mut dx = vec![0.0f32; xs.len()];
        let mut da = vec![0.0f64; c];
        for (idx, ((o, &v), &d)) in dx.iter_mut().zip(xs.iter()).zip(dys.iter()).enumerate() {
            let ch = (idx / s) % c;
            if v > 0.0 {
                *o = d;
            } else {
                *o = a[ch] * d;
                da[ch] += f64::from(d) * f64::from(v);
            }
        }
        for (g, d) in self.slope.grad.iter_mut().zip(da) {
            *g += d as f32;
        }
        from_vec(x.shape(), dx)
    }

    fn params(&self) -> Vec<&Param> {
        vec![&self.slope]
    }

    fn params_mut(&mut self) -> Vec<&mut Param> {
        vec![&mut self.slope]
    }
}
