//! Seeded training augmentation on resized `(H, W)` images in [0, 1], applied before
//! the photometric normalisation (so a normalisation that removes brightness and contrast
//! also removes their jitter, as it would at test time).
//!
//! Per image, in this order:
//! 1. horizontal flip with probability 1/2 (if `flip`);
//! 2. shift by `(dy, dx)`, each uniform in `[−max_shift, max_shift]` pixels, replicating
//!    the edge (a crop of a padded image, keeping the size);
//! 3. with probability `shadow`, a cast shadow: the image is multiplied by
//!    `f + (1 − f) · σ((u − t) / s)`, where `u` is the signed distance from the centre
//!    along a uniformly random direction, `t ~ U[−r/2, r/2]` (`r` half the diagonal),
//!    the softness `s ~ U[1, 6]` pixels and the darkness `f = 50^(−U[0, 1])` (the dark
//!    side keeps 2%–100% of its light); then every value is rounded to 1/255, as an 8-bit
//!    camera would, so the detail a deep shadow destroys is really gone. This is the
//!    side lighting of Extended Yale B, which a smooth brightness change (undone by any
//!    illumination normalisation) does not imitate;
//! 4. `y = clamp((x − m) · c + m + b, 0, 1)` with `m` the image mean,
//!    `c ~ U[1 − contrast, 1 + contrast]`, `b ~ U[−brightness, brightness]`.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Augmentation parameters; see the module documentation. In a TOML or JSON table, a
/// field left out takes its default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Augmentation {
    /// Random horizontal flips.
    pub flip: bool,
    /// Largest shift in pixels, each direction.
    pub max_shift: usize,
    /// Probability of a cast shadow (side lighting), in [0, 1].
    pub shadow: f32,
    /// Largest brightness offset (pixels in [0, 1]).
    pub brightness: f32,
    /// Largest relative contrast change.
    pub contrast: f32,
}

impl Default for Augmentation {
    /// Flip, ±2 pixel shifts (±4% of 48), no shadows, brightness ±0.1, contrast ±20%.
    fn default() -> Self {
        Augmentation {
            flip: true,
            max_shift: 2,
            shadow: 0.0,
            brightness: 0.1,
            contrast: 0.2,
        }
    }
}

impl Augmentation {
    /// No change at all.
    pub fn none() -> Self {
        Augmentation {
            flip: false,
            max_shift: 0,
            shadow: 0.0,
            brightness: 0.0,
            contrast: 0.0,
        }
    }

    /// Augments one image with the given generator.
    pub fn apply<R: Rng>(&self, image: &Array2<f32>, rng: &mut R) -> Array2<f32> {
        let (h, w) = image.dim();
        let flip = self.flip && rng.random_bool(0.5);
        let s = self.max_shift as i64;
        let (dy, dx) = if s > 0 {
            (rng.random_range(-s..=s), rng.random_range(-s..=s))
        } else {
            (0, 0)
        };
        let shadow = (self.shadow > 0.0 && rng.random_bool(f64::from(self.shadow.min(1.0))))
            .then(|| Shadow::draw(rng, h, w));
        let c = 1.0 + uniform(rng, self.contrast);
        let b = uniform(rng, self.brightness);
        let clamp = |i: i64, n: usize| i.clamp(0, n as i64 - 1) as usize;
        let mut out = Array2::from_shape_fn((h, w), |(y, x)| {
            let sx = if flip { w - 1 - x } else { x };
            image[[clamp(y as i64 - dy, h), clamp(sx as i64 - dx, w)]]
        });
        if let Some(shadow) = shadow {
            shadow.cast(&mut out);
        }
        let m = out.mean().unwrap_or(0.0);
        // (x − m)·c + m + b, arranged so c = 1, b = 0 returns x exactly.
        let offset = (1.0 - c) * m + b;
        out.mapv_inplace(|v| (v * c + offset).clamp(0.0, 1.0));
        out
    }

    /// Augments a batch in parallel; image `i` uses a generator seeded from `(seed, i)`,
    /// so the result depends on the seed only, never on the number of threads.
    pub fn apply_batch(&self, images: &[&Array2<f32>], seed: u64) -> Vec<Array2<f32>> {
        images
            .par_iter()
            .enumerate()
            .map(|(i, image)| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(i as u64);
                self.apply(image, &mut rng)
            })
            .collect()
    }
}

/// A cast shadow's geometry; see the module documentation (step 3).
#[derive(Debug, Clone, Copy)]
struct Shadow {
    /// Unit direction across the edge: pixels whose offset from the centre projects
    /// beyond `edge` along `(cos, sin)` are lit, the others shaded.
    cos: f32,
    sin: f32,
    /// Offset of the edge from the centre, in pixels.
    edge: f32,
    softness: f32,
    /// Fraction of light the dark side keeps.
    darkness: f32,
    centre: (f32, f32),
}

impl Shadow {
    fn draw<R: Rng>(rng: &mut R, h: usize, w: usize) -> Shadow {
        let angle = rng.random_range(0.0..std::f32::consts::TAU);
        let reach = 0.5 * ((h * h + w * w) as f32).sqrt();
        Shadow {
            cos: angle.cos(),
            sin: angle.sin(),
            edge: uniform(rng, 0.5 * reach),
            softness: rng.random_range(1.0..=6.0),
            darkness: 50f32.powf(-rng.random_range(0.0..=1.0)),
            centre: ((h as f32 - 1.0) / 2.0, (w as f32 - 1.0) / 2.0),
        }
    }

    fn cast(&self, image: &mut Array2<f32>) {
        for ((y, x), v) in image.indexed_iter_mut() {
            let u = (x as f32 - self.centre.1) * self.cos + (y as f32 - self.centre.0) * self.sin;
            let lit = 1.0 / (1.0 + (-(u - self.edge) / self.softness).exp());
            let gain = self.darkness + (1.0 - self.darkness) * lit;
            *v = ((*v * gain).clamp(0.0, 1.0) * 255.0).round() / 255.0;
        }
    }
}

/// Uniform in `[−r, r]` (0 when `r` is 0).
fn uniform<R: Rng>(rng: &mut R, r: f32) -> f32 {
    if r > 0.0 {
        rng.random_range(-r..=r)
    } else {
        0.0
    }
}
