//! Maxout units (Goodfellow et al., 2013).

use super::tensor::{data, from_vec, same_shape};
use super::{Layer, Mode, NnError, Result, Tensor};

/// `y[n, u, …] = max_{j < k} x[n, u·k + j, …]`: each output unit is the maximum of `k`
/// consecutive features ("pieces") of axis 1. The preceding linear layer provides the
/// pieces, so `Linear(I, U·k)` followed by `Maxout(k)` is the paper's maxout layer.
///
/// Shapes: `(N, U·k, …)` → `(N, U, …)`. Ties go to the first piece, which alone receives
/// the gradient.
#[derive(Debug, Clone)]
pub struct Maxout {
    k: usize,
    cache: Option<Cache>,
}

#[derive(Debug, Clone)]
struct Cache {
    input_shape: Vec<usize>,
    /// The winning piece `j` of every output. Same shape as y.
    winner: Vec<u32>,
}

impl Maxout {
    pub fn new(k: usize) -> Result<Self> {
        if k == 0 {
            return Err(NnError::Invalid("maxout: k must be positive".into()));
        }
        Ok(Maxout { k, cache: None })
    }

    pub fn pieces(&self) -> usize {
        self.k
    }

    /// `(N, U, S)` for an input shape, S the product of the axes after 1.
    fn dims(&self, shape: &[usize]) -> Result<(usize, usize, usize)> {
        match shape {
            [n, c, rest @ ..] if c % self.k == 0 && *c > 0 => {
                Ok((*n, c / self.k, rest.iter().product()))
            }
            _ => Err(NnError::shape(
                "maxout",
                format!("[N, a multiple of {}, …]", self.k),
                shape,
            )),
        }
    }

    fn run(&self, x: &Tensor) -> Result<(Tensor, Vec<u32>)> {
        let (n, u, s) = self.dims(x.shape())?;
        let xs = data(x);
        let mut y = vec![0.0f32; n * u * s];
        let mut winner = vec![0u32; y.len()];
        for img in 0..n {
            for unit in 0..u {
                for pos in 0..s {
                    let out = (img * u + unit) * s + pos;
                    let piece = |j: usize| xs[((img * u + unit) * self.k + j) * s + pos];
                    let (mut best, mut at) = (piece(0), 0);
                    for j in 1..self.k {
                        if piece(j) > best {
                            (best, at) = (piece(j), j);
                        }
                    }
                    y[out] = best;
                    winner[out] = at as u32;
                }
            }
        }
        let mut shape = x.shape().to_vec();
        shape[1] = u;
        Ok((from_vec(&shape, y)?, winner))
    }
}

impl Layer for Maxout {
    fn kind(&self) -> &'static str {
        "maxout"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        let (_, u, _) = self.dims(input)?;
        let mut shape = input.to_vec();
        shape[1] = u;
        Ok(shape)
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let (y, winner) = self.run(x)?;
        if mode == Mode::Train {
            self.cache = Some(Cache {
                input_shape: x.shape().to_vec(),
                winner,
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
            .ok_or(NnError::NoForwardCache { op: "maxout" })?;
        same_shape("maxout", dy, &self.output_shape(&cache.input_shape)?)?;
        let (n, u, s) = self.dims(&cache.input_shape)?;
        let dys = data(dy);
        let mut dx = vec![0.0f32; n * u * self.k * s];
        for (out, (&d, &j)) in dys.iter().zip(&cache.winner).enumerate() {
            let (group, pos) = (out / s, out % s);
            dx[(group * self.k + j as usize) * s + pos] = d;
        }
        from_vec(&cache.input_shape, dx)
    }
}
