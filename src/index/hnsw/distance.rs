//! The graph's distance: `1 − ⟨a, b⟩`, clamped at 0.
//!
//! For unit vectors this orders neighbours exactly like cosine similarity. hnsw_rs's own
//! `DistDot` asserts the distance is non-negative and panics when rounding makes
//! `⟨v, v⟩ > 1` (NOTES.md: 39% of f32-normalised vectors); the clamp removes that, and
//! [`crate::index::dot()`] gives the AVX-512/AVX2 kernel without the `simdeez_f` feature.

use anndists::dist::Distance;

use crate::index::dot;

/// `d(a, b) = max(0, 1 − ⟨a, b⟩)` for unit vectors `a`, `b` (cosine distance).
#[derive(Clone, Copy, Debug, Default)]
pub struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_never_negative_even_when_rounding_makes_a_self_product_exceed_one() {
        let mut over_one = 0;
        for seed in 1..200u32 {
            // Deterministic pseudo-random vectors, normalised in f32 as embeddings are.
            let mut s = seed;
            let v: Vec<f32> = (0..128)
                .map(|_| {
                    s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
                })
                .collect();
            let norm = dot(&v, &v).sqrt();
            let v: Vec<f32> = v.iter().map(|x| x / norm).collect();
            over_one += usize::from(dot(&v, &v) > 1.0);
            let d = UnitCosine.eval(&v, &v);
            assert!((0.0..1e-6).contains(&d), "seed {seed}: {d}");
            let w: Vec<f32> = v.iter().map(|x| -x).collect();
            assert!((UnitCosine.eval(&v, &w) - 2.0).abs() < 1e-5);
        }
        assert!(over_one > 0, "the case the clamp exists for was exercised");
    }
}
