//! L2 normalisation of embeddings.

use super::tensor::{data, from_vec, same_shape};
use super::{Layer, Mode, NnError, Result, Tensor};

/// `y = x / max(‖x‖, ε)` for every row x, ε = 1e-12 (PyTorch's `F.normalize`).
///
/// Shapes: `(N, D)` → `(N, D)`. Backward, with `r = ‖x‖`:
/// for r > ε, `dx = (dy − y·⟨y, dy⟩) / r` (the projection removing the radial part);
/// for r ≤ ε the map is `x/ε`, so `dx = dy / ε`.
#[derive(Debug, Clone)]
pub struct L2Norm {
    pub eps: f32,
    cache: Option<Cache>,
}

#[derive(Debug, Clone)]
struct Cache {
    /// Output of the last training forward. (N, D)
    y: Tensor,
    /// max(‖x‖, ε) per row. (N)
    norms: Vec<f32>,
}

impl Default for L2Norm {
    fn default() -> Self {
        L2Norm {
            eps: 1e-12,
            cache: None,
        }
    }
}

impl L2Norm {
    pub fn new() -> Self {
        Self::default()
    }

    fn run(&self, x: &Tensor) -> Result<(Tensor, Vec<f32>)> {
        let [n, d] = *x.shape() else {
            return Err(NnError::shape("l2norm", "[N, D]", x.shape()));
        };
        let xs = data(x);
        let mut y = vec![0.0f32; n * d];
        let mut norms = Vec::with_capacity(n);
        for (row_y, row_x) in y.chunks_exact_mut(d.max(1)).zip(xs.chunks_exact(d.max(1))) {
            let sq: f64 = row_x.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
            let r = (sq.sqrt() as f32).max(self.eps);
            for (o, &v) in row_y.iter_mut().zip(row_x) {
                *o = v / r;
            }
            norms.push(r);
        }
        Ok((from_vec(&[n, d], y)?, norms))
    }
}

impl Layer for L2Norm {
    fn kind(&self) -> &'static str {
        "l2norm"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        match input {
            [_, _] => Ok(input.to_vec()),
            _ => Err(NnError::shape("l2norm", "[N, D]", input)),
        }
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (y, norms) = self.run(x)?;
        if mode == Mode::Train {
            self.cache = Some(Cache {
                y: y.clone(),
                norms,
            });
        }
        Ok(y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.run(x)?.0)
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let cache = self
            .cache
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "l2norm" })?;
        same_shape("l2norm", dy, cache.y.shape())?;
        let d = cache.y.shape()[1].max(1);
        let (ys, dys) = (data(&cache.y), data(dy));
        let mut dx = vec![0.0f32; ys.len()];
        for (((row_dx, row_y), row_dy), &r) in dx
            .chunks_exact_mut(d)
            .zip(ys.chunks_exact(d))
            .zip(dys.chunks_exact(d))
            .zip(&cache.norms)
        {
            // At r = ε the row was scaled, not projected: no radial term.
            let dot: f32 = if r > self.eps {
                row_y.iter().zip(row_dy).map(|(a, b)| a * b).sum()
            } else {
                0.0
            };
            for ((o, &yv), &g) in row_dx.iter_mut().zip(row_y).zip(row_dy) {
                *o = (g - yv * dot) / r;
            }
        }
        from_vec(cache.y.shape(), dx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_out_with_unit_norm_and_zero_rows_stay_zero() {
        let x = Tensor::from_shape_vec(vec![2, 2], vec![3.0, 4.0, 0.0, 0.0]).unwrap();
        let y = L2Norm::new().infer(&x).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[0.6, 0.8, 0.0, 0.0]);
    }
}
