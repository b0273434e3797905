//! Inverted dropout (Srivastava et al., 2014).

use super::tensor::{data, from_vec, same_shape};
use super::{Layer, Mode, NnError, Result, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Training: each element is kept with probability `q = 1 − p` and scaled by `1/q`,
/// `y = x · m / q` with `m ~ Bernoulli(q)`; eval: `y = x`.
///
/// Why this equals the paper's rule: the original dropout trains with `y = x · m` and, at
/// prediction time, multiplies each unit's outgoing activations by `q` so that the next
/// layer sees the *expected* training input, `E[x · m] = q · x`. Dividing by `q` during
/// training instead makes the expected training output `E[x · m / q] = x`, which is what
/// eval passes on unchanged. The two networks differ only by the constant factor `q` on
/// every weight leaving the layer, which the learning absorbs: they compute the same
/// function, and inference costs nothing. (PyTorch's `nn.Dropout` does the same.)
///
/// Shapes: any; masks are drawn from a seeded ChaCha8 generator in row-major order.
#[derive(Debug, Clone)]
pub struct Dropout {
    p: f32,
    /// Where `rng` started (`Layer::seed`).
    seed: u64,
    rng: ChaCha8Rng,
    /// A keep mask (0 or 1 per element) to use in the next training forward instead of
    /// a random one: reproduces another framework's mask in tests.
    next_mask: Option<Tensor>,
    /// The scaled mask `m / q` of the last training forward. Same shape as x.
    mask: Option<Tensor>,
}

impl Dropout {
    /// `p` is the drop probability, `0 ≤ p < 1`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        if !(0.0..1.0).contains(&p) {
            return Err(NnError::Invalid(format!(
                "dropout: drop probability must be in [0, 1), got {p}"
            )));
        }
        Ok(Dropout {
            p,
            seed,
            rng: ChaCha8Rng::seed_from_u64(seed),
            next_mask: None,
            mask: None,
        })
    }

    pub fn p(&self) -> f32 {
        self.p
    }

    /// Uses `keep` (1 = keep, 0 = drop, shape of the next input) as the next training
    /// mask; kept elements are still scaled by `1/(1 − p)`.
    pub fn set_next_mask(&mut self, keep: Tensor) -> Result<()> {
        if let Some(bad) = keep.iter().find(|&&v| v != 0.0 && v != 1.0) {
            return Err(NnError::Invalid(format!(
                "dropout: mask values must be 0 or 1, got {bad}"
            )));
        }
        self.next_mask = Some(keep);
        Ok(())
    }
}

impl Layer for Dropout {
    fn kind(&self) -> &'static str {
        "dropout"
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        Ok(input.to_vec())
    }

    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode == Mode::Eval {
            return self.infer(x);
        }
        let q = 1.0 - self.p;
        let scale = 1.0 / q;
        let mask: Vec<f32> = match self.next_mask.take() {
            Some(keep) => {
                same_shape("dropout", &keep, x.shape())?;
                keep.iter().map(|&k| k * scale).collect()
            }
            None => (0..x.len())
                .map(|_| {
                    if self.rng.random::<f32>() < q {
                        scale
                    } else {
                        0.0
                    }
                })
                .collect(),
        };
        let y = data(x).iter().zip(&mask).map(|(&v, &m)| v * m).collect();
        self.mask = Some(from_vec(x.shape(), mask)?);
        from_vec(x.shape(), y)
    }

    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.as_standard_layout().into_owned())
    }

    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let mask = self
            .mask
            .as_ref()
            .ok_or(NnError::NoForwardCache { op: "dropout" })?;
        same_shape("dropout", dy, mask.shape())?;
        Ok(dy * mask)
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    /// Restarts the mask generator (the same seed gives the same masks again).
    fn reseed(&mut self, seed: u64) {
        self.seed = seed;
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_keeps_about_one_minus_p_and_preserves_the_mean() {
        let mut d = Dropout::new(0.3, 5).unwrap();
        let x = Tensor::ones(vec![100, 200]);
        let y = d.forward(&x, Mode::Train).unwrap();
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
        assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / x.len() as f64;
        assert!((mean - 1.0).abs() < 0.02, "mean {mean}");
    }

    #[test]
    fn dropout_is_the_identity_in_eval() {
        let mut d = Dropout::new(0.5, 1).unwrap();
        let x = Tensor::from_shape_fn(vec![3, 4], |i| i[0] as f32 - i[1] as f32);
        assert_eq!(d.forward(&x, Mode::Eval).unwrap(), x);
        assert_eq!(d.infer(&x).unwrap(), x);
    }

    #[test]
    fn an_explicit_mask_is_used_once_and_checked() {
        let mut d = Dropout::new(0.5, 1).unwrap();
        let keep = Tensor::from_shape_vec(vec![1, 4], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        d.set_next_mask(keep).unwrap();
        let x = Tensor::from_shape_vec(vec![1, 4], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let y = d.forward(&x, Mode::Train).unwrap();
        assert_eq!(y.as_slice().unwrap(), &[2.0, 0.0, 0.0, 8.0]);
        let dx = d.backward(&Tensor::ones(vec![1, 4])).unwrap();
        assert_eq!(dx.as_slice().unwrap(), &[2.0, 0.0, 0.0, 2.0]);
        assert!(d.set_next_mask(Tensor::from_elem(vec![1, 4], 0.5)).is_err());
        d.set_next_mask(Tensor::ones(vec![2, 2])).unwrap();
        assert!(matches!(
            d.forward(&x, Mode::Train),
            Err(NnError::Shape { .. })
        ));
    }

    #[test]
    fn the_same_seed_draws_the_same_masks() {
        let x = Tensor::ones(vec![4, 16]);
        let mut a = Dropout::new(0.5, 9).unwrap();
        let mut b = Dropout::new(0.5, 9).unwrap();
        assert_eq!(
            a.forward(&x, Mode::Train).unwrap(),
            b.forward(&x, Mode::Train).unwrap()
        );
        assert_ne!(
            a.forward(&x, Mode::Train).unwrap(),
            a.forward(&x, Mode::Train).unwrap()
        );
    }

    #[test]
    fn dropout_rejects_a_probability_outside_zero_to_one() {
        for p in [-0.1, 1.0, f32::NAN] {
            assert!(Dropout::new(p, 0).is_err(), "p = {p}");
        }
    }
}
