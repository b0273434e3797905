//! Seeded training augmentation on resized `(H, W)` images in [0, 1], applied before
//! the photometric normalisation (so a normalisation that removes brightness and contrast
//! also removes their jitter, as it would at test time).
//!
//! Per image, in this order:
//! 1. horizontal flip with probability 1/2 (if `flip`);
//! 2. shift by `(dy, dx)`, each uniform in `[−max_shift, max_shift]` pixels, replicating
//!    the edge (a crop of a padded image, keeping the size);
//! 3. `y = clamp((x − m) · c + m + b, 0, 1)` with `m` the image mean,
//!    `c ~ U[1 − contrast, 1 + contrast]`, `b ~ U[−brightness, brightness]`.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Augmentation parameters; see the module documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Augmentation {
    pub flip: bool,
    pub max_shift: usize,
    pub brightness: f32,
    pub contrast: f32,
}

impl Default for Augmentation {
    /// Flip, ±2 pixel shifts (±4% of 48), brightness ±0.1, contrast ±20%.
    fn default() -> Self {
        Augmentation {
            flip: true,
            max_shift: 2,
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
        let c = 1.0 + uniform(rng, self.contrast);
        let b = uniform(rng, self.brightness);
        let clamp = |i: i64, n: usize| i.clamp(0, n as i64 - 1) as usize;
        let mut out = Array2::from_shape_fn((h, w), |(y, x)| {
            let sx = if flip { w - 1 - x } else { x };
            image[[clamp(y as i64 - dy, h), clamp(sx as i64 - dx, w)]]
        });
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

/// Uniform in `[−r, r]` (0 when `r` is 0).
fn uniform<R: Rng>(rng: &mut R, r: f32) -> f32 {
    if r > 0.0 {
        rng.random_range(-r..=r)
    } else {
        0.0
    }
}
