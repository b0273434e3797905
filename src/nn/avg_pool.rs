//! Average pooling over windows.

use super::tensor::{data, from_vec, nchw, same_shape};
use super::{Layer, Mode, NnError, Result, Tensor};
use rayon::prelude::*;

/// Average pooling: `y[n, c, oy, ox] = mean of the kernel×kernel window at (oy·s, ox·s)`.
///
/// Shapes: `(N, C, H, W)` → `(N, C, Ho, Wo)` with `Ho = (H − k) / s + 1` (floor, no
/// padding: PyTorch's `AvgPool2d(k, s)`, and dlib's `avg_pool<k, k, s, s>` whose padding
/// is 0 for strides other than 1). Backward spreads each `dy / k²` over its window.
///
/// It is the shortcut of a down-sampling residual block in the ResNet of dlib's
/// face-recognition model (`model::dlib_resnet`, which builds it from these layers).
#[derive(Debug, Clone)]
pub struct AvgPool2d {
    kernel: usize,
    stride: usize,
    input_shape: Option<[usize; 4]>,
}

impl AvgPool2d {
    pub fn new(kernel: usize, stride: usize) -> Result<Self> {
        if kernel == 0 || stride == 0 {
            return Err(NnError::Invalid(format!(
                "avg_pool2d: kernel and stride must be positive, got {kernel} and {stride}"
            )));
        }
        Ok(AvgPool2d {
            kernel,
            stride,
            input_shape: None,
        })
    }

    /// `([N, C, H, W], Ho, Wo)` for an input shape, or a shape error.
    fn dims(&self, shape: &[usize]) -> Result<([usize; 4], usize, usize)> {
        let [n, c, h, w] = nchw("avg_pool2d", shape, None)?;
        if h < self.kernel || w < self.kernel {
            return Err(NnError::shape(
                "avg_pool2d",
                format!("[N, C, H, W] with H, W ≥ {}", self.kernel),
                shape,
            ));
        }
        let out = |len: usize| (len - self.kernel) / self.stride + 1;
        Ok(([n, c, h, w], out(h), out(w)))
    }
}

impl Layer for AvgPool2d {
    fn kind(&self) -> &'static str {
        "avg_pool2d"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let ([n, c, _, _], ho, wo) = self.dims(input)?;
        Ok(vec![n, c, ho, wo])
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = self.infer(x)?;
        if mode == Mode::Train {
            self.input_shape = Some(self.dims(x.shape())?.0);
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let ([n, c, h, w], ho, wo) = self.dims(x.shape())?;
        let (k, s) = (self.kernel, self.stride);
        let scale = 1.0 / (k * k) as f32;
        let x = data(x);
        let mut y = vec![0.0f32; n * c * ho * wo];
        y.par_chunks_mut(ho * wo)
            .zip(x.par_chunks(h * w))
            .for_each(|(y_pl, x_pl)| {
                for (oy, y_row) in y_pl.chunks_exact_mut(wo).enumerate() {
                    for (ox, out) in y_row.iter_mut().enumerate() {
                        let sum: f32 = (0..k)
                            .map(|dy| {
                                let start = (oy * s + dy) * w + ox * s;
                                x_pl[start..start + k].iter().sum::<f32>()
                            })
                            .sum();
                        *out = sum * scale;
                    }
                }
            });
        from_vec(&[n, c, ho, wo], y)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let [n, c, h, w] = self
            .input_shape
            .ok_or(NnError::NoForwardCache { op: "avg_pool2d" })?;
        let (_, ho, wo) = self.dims(&[n, c, h, w])?;
        same_shape("avg_pool2d", dy, &[n, c, ho, wo])?;
        let (k, s) = (self.kernel, self.stride);
        let scale = 1.0 / (k * k) as f32;
        let dy = data(dy);
        let mut dx = vec![0.0f32; n * c * h * w];
        dx.par_chunks_mut(h * w)
            .zip(dy.par_chunks(ho * wo))
            .for_each(|(dx_pl, dy_pl)| {
                for (oy, dy_row) in dy_pl.chunks_exact(wo).enumerate() {
                    for (ox, &g) in dy_row.iter().enumerate() {
                        for ky in 0..k {
                            let start = (oy * s + ky) * w + ox * s;
                            dx_pl[start..start + k]
                                .iter_mut()
                                .for_each(|v| *v += g * scale);
                        }
                    }
                }
            });
        from_vec(&[n, c, h, w], dx)
    }
}
