//! Weight initialisation, seeded.
//!
//! `fan_in` and `fan_out` follow PyTorch: for a weight `(O, I, kh, kw)` (or `(O, I)`),
//! `fan_in = I·kh·kw` and `fan_out = O·kh·kw`.

use std::cell::Cell;

use super::{NnError, Result, Tensor};
use rand::Rng;
use rand_distr::{Distribution, Normal, Uniform};

thread_local! {
    /// Set on this thread while [`undrawn`] runs its closure.
    static UNDRAWN: Cell<bool> = const { Cell::new(false) };
}

/// Runs `build` with every drawn initialisation on this thread ([`Init::tensor`] other
/// than [`Init::Constant`]) filled with zeros instead, nothing drawn from its generator:
/// for a network whose every weight is read from a file next, where drawing them first
/// only wastes time (dlib's network's 5.6 M weights were two fifths of loading the
/// default model, BENCHMARKS.md "Bulk import"). Since nothing is drawn, whatever the builder
/// draws afterwards from the same generator (dropout layers' seeds) differs from
/// a seeded build's: the network is for weights read in, not for training from a seed.
pub fn undrawn<T>(build: impl FnOnce() -> T) -> T {
    /// Puts the flag back as it was, also when `build` unwinds.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            UNDRAWN.set(self.0);
        }
    }
    let _restore = Restore(UNDRAWN.replace(true));
    build()
}

/// How to draw a weight tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Init {
    /// Glorot & Bengio (2010): N(0, σ²) with σ = √(2 / (fan_in + fan_out)).
    XavierNormal,
    /// Glorot & Bengio (2010): U(−a, a) with a = √(6 / (fan_in + fan_out)).
    XavierUniform,
    /// He et al. (2015), for ReLU networks: N(0, σ²) with σ = √(2 / fan_in).
    HeNormal,
    /// Every element the same value (biases: 0; PReLU slopes: 0.25).
    Constant(f32),
}

/// `(fan_in, fan_out)` of a weight shape `(O, I, …)`; a 1-D shape `(O)` has both = O.
pub fn fans(shape: &[usize]) -> Result<(usize, usize)> {
    match shape {
        [] => Err(NnError::Invalid("init: a scalar has no fans".into())),
        [o] => Ok((*o, *o)),
        [o, i, rest @ ..] => {
            let receptive: usize = rest.iter().product();
            Ok((i * receptive, o * receptive))
        }
    }
}

impl Init {
    /// A tensor of `shape` drawn from this distribution with `rng`.
    pub fn tensor(self, shape: &[usize], rng: &mut impl Rng) -> Result<Tensor> {
        let len: usize = shape.iter().product();
        let values: Vec<f32> = match self {
            Init::Constant(v) => vec![v; len],
            // The same shape checks as a draw, then zeros.
            _ if UNDRAWN.get() => {
                fans(shape)?;
                vec![0.0; len]
            }
            Init::XavierNormal | Init::HeNormal => {
                let (fan_in, fan_out) = fans(shape)?;
                let var = if self == Init::HeNormal {
                    2.0 / fan_in as f32
                } else {
                    2.0 / (fan_in + fan_out) as f32
                };
                let normal = Normal::new(0.0, var.sqrt())
                    .map_err(|e| NnError::Invalid(format!("init: {e}")))?;
                (0..len).map(|_| normal.sample(rng)).collect()
            }
            Init::XavierUniform => {
                let (fan_in, fan_out) = fans(shape)?;
                let a = (6.0 / (fan_in + fan_out) as f32).sqrt();
                let uniform = Uniform::new_inclusive(-a, a)
                    .map_err(|e| NnError::Invalid(format!("init: {e}")))?;
                (0..len).map(|_| uniform.sample(rng)).collect()
            }
        };
        Tensor::from_shape_vec(shape.to_vec(), values)
            .map_err(|e| NnError::Invalid(format!("init: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn std_dev(t: &Tensor) -> f64 {
        let n = t.len() as f64;
        let mean = t.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        (t.iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt()
    }

    #[test]
    fn fans_follow_pytorch_for_conv_and_linear_shapes() {
        assert_eq!(fans(&[64, 32, 3, 3]).unwrap(), (288, 576));
        assert_eq!(fans(&[256, 5376]).unwrap(), (5376, 256));
        assert!(fans(&[]).is_err());
    }

    #[test]
    fn undrawn_initialisations_are_zeros_drawing_nothing_until_the_closure_ends() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (w, c, next) = undrawn(|| {
            let w = Init::HeNormal.tensor(&[4, 3, 3, 3], &mut rng).unwrap();
            let c = Init::Constant(0.25).tensor(&[3], &mut rng).unwrap();
            (w, c, rng.random::<u64>())
        });
        assert!(w.shape() == [4, 3, 3, 3] && w.iter().all(|&v| v == 0.0));
        assert!(c.iter().all(|&v| v == 0.25));
        // Nothing was drawn: the generator's next value is its first.
        assert_eq!(next, ChaCha8Rng::seed_from_u64(3).random::<u64>());
        assert!(undrawn(|| Init::XavierUniform.tensor(&[], &mut rng)).is_err());
        // Draws again after it, also after a closure that panicked.
        let fresh = || Init::XavierNormal.tensor(&[8, 8], &mut ChaCha8Rng::seed_from_u64(4));
        assert!(std::panic::catch_unwind(|| undrawn(|| panic!("in the build"))).is_err());
        let drawn = fresh().unwrap();
        assert!(drawn.iter().any(|&v| v != 0.0));
        assert_eq!(drawn, fresh().unwrap());
    }

    #[test]
    fn he_normal_has_the_stated_spread() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let w = Init::HeNormal.tensor(&[200, 50, 3, 3], &mut rng).unwrap();
        let expected = (2.0f64 / 450.0).sqrt();
        assert!(
            (std_dev(&w) / expected - 1.0).abs() < 0.02,
            "{}",
            std_dev(&w)
        );
    }

    #[test]
    fn xavier_normal_and_uniform_have_the_stated_spread_and_range() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let expected = (2.0f64 / (300.0 + 200.0)).sqrt();
        let n = Init::XavierNormal.tensor(&[200, 300], &mut rng).unwrap();
        assert!((std_dev(&n) / expected - 1.0).abs() < 0.02);
        let u = Init::XavierUniform.tensor(&[200, 300], &mut rng).unwrap();
        // U(−a, a) has σ = a/√3 = √(2 / (fan_in + fan_out)), the same as the normal.
        assert!((std_dev(&u) / expected - 1.0).abs() < 0.02);
        let a = (6.0f32 / 500.0).sqrt();
        assert!(u.iter().all(|&v| v.abs() <= a));
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_and_another_seed_does_not() {
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            Init::HeNormal.tensor(&[8, 4], &mut rng).unwrap()
        };
        assert_eq!(draw(3), draw(3));
        assert_ne!(draw(3), draw(4));
    }
}
