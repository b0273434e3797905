//! The exact index's compact copy of its rows: each vector as int8 codes with one scale,
//! and a bound on what the rounding can change in any score.
//!
//! A row `v` is stored as `c = round(v / s)` with `s = max|vⱼ| / 127`, so its approximate
//! score against a query `q` is `s·⟨c, q⟩`. The rounding error `e = s·c − v` is known
//! when the row is stored; by Cauchy–Schwarz `|s·⟨c, q⟩ − ⟨v, q⟩| ≤ ‖e‖·‖q‖`, so
//! [`Codes::radius`] keeps `‖e‖` (rounded up) and a scan knows, for every row, an
//! interval that surely holds the exact score. The scan ([`super::scan`]) uses the
//! intervals to pick the few rows that could be in the answer and re-scores only those
//! from the f32 rows: the answer is the exact index's, bit for bit, at a quarter of the
//! memory traffic (100 000 × 128 codes are 12.8 MB, which fits this machine's L3 cache;
//! the f32 rows are 51 MB and do not).
//!
//! Where the CPU multiplies bytes (AVX-512 VNNI) the query is coded too, as
//! `q ≈ t·b` with `t = max|qⱼ| / 127`, and the product `⟨c, b⟩` is exact integer
//! arithmetic; the query's own rounding `e_q = q − t·b` widens the interval by
//! `‖s·c‖·‖e_q‖`. Without VNNI the codes are widened to f32 and multiplied with `q`.

#[cfg(doc)]
use super::dot::integer_dot_is_fast;
use super::dot::{dot_many_i8, dot_many_u8i8};
use crate::embedding::UNIT_NORM_TOLERANCE;

/// Largest code magnitude: the scale maps `max|vⱼ|` to it.
const LEVEL: f32 = 127.0;
/// Offset making a query's codes unsigned bytes for `vpdpbusd` (`b = c + 128`).
const OFFSET: i32 = 128;

/// The int8 codes of every row, `(N, D)` row-major, with each row's scale and radius.
#[derive(Default)]
pub(crate) struct Codes {
    pub codes: Vec<i8>,
    /// `(N)`: `s` of each row.
    pub scales: Vec<f32>,
    /// `(N)`: an upper bound on `‖s·c − v‖₂` of each row.
    pub radii: Vec<f32>,
    /// `(N)`: `Σⱼ cⱼ` of each row, to undo the query's byte offset.
    pub sums: Vec<i32>,
}

impl Codes {
    /// Appends the codes of `v`.
    pub fn push(&mut self, v: &[f32]) {
        let start = self.codes.len();
        self.codes.resize(start + v.len(), 0);
        let (scale, radius) = encode(v, &mut self.codes[start..]);
        self.scales.push(scale);
        self.radii.push(radius);
        self.sums.push(code_sum(&self.codes[start..]));
    }

    /// Replaces row `r` (of dimension `dim`) with the codes of `v`.
    pub fn set(&mut self, dim: usize, r: usize, v: &[f32]) {
        let (scale, radius) = encode(v, &mut self.codes[r * dim..(r + 1) * dim]);
        self.scales[r] = scale;
        self.radii[r] = radius;
        self.sums[r] = code_sum(&self.codes[r * dim..(r + 1) * dim]);
    }

    /// Moves row `from` into row `to` (a removal keeping the rows dense).
    pub fn move_row(&mut self, dim: usize, from: usize, to: usize) {
        self.codes
            .copy_within(from * dim..(from + 1) * dim, to * dim);
        self.scales[to] = self.scales[from];
        self.radii[to] = self.radii[from];
        self.sums[to] = self.sums[from];
    }

    /// Keeps the first `rows` rows.
    pub fn truncate(&mut self, dim: usize, rows: usize) {
        self.codes.truncate(rows * dim);
        self.scales.truncate(rows);
        self.radii.truncate(rows);
        self.sums.truncate(rows);
    }

    pub fn reserve(&mut self, dim: usize, rows: usize) {
        self.codes.reserve(rows * dim);
        self.scales.reserve(rows);
        self.radii.reserve(rows);
        self.sums.reserve(rows);
    }
}

fn code_sum(codes: &[i8]) -> i32 {
    codes.iter().map(|&c| i32::from(c)).sum()
}

/// Writes the codes of `v` into `out` and returns `(scale, radius)`.
fn encode(v: &[f32], out: &mut [i8]) -> (f32, f32) {
    let top = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if top == 0.0 {
        out.fill(0);
        return (0.0, 0.0);
    }
    let scale = top / LEVEL;
    let mut err2 = 0.0f64;
    for (o, &x) in out.iter_mut().zip(v) {
        let c = (x / scale).round().clamp(-LEVEL, LEVEL);
        *o = c as i8;
        let e = f64::from(scale) * f64::from(c) - f64::from(x);
        err2 += e * e;
    }
    // Rounded up: the f64 sum is exact to ~1e-16 relative, the cast to f32 is not.
    let radius = (err2.sqrt() * (1.0 + 1e-6)) as f32;
    (scale, radius.next_up())
}

/// A query as the scan reads it: its bytes for the integer kernel (when used) and what
/// turns a row's raw product into an interval for its exact score.
pub(crate) struct Probe<'a> {
    vector: &'a [f32],
    /// `b = round(q / t) + 128` for the integer kernel; `None`: widen the rows to f32.
    bytes: Option<Vec<u8>>,
    /// `t`, the query's scale (1 without bytes).
    scale: f32,
    /// `‖q‖₂`, rounded up.
    norm: f32,
    /// `‖e_q‖₂ = ‖q − t·(b − 128)‖₂`, rounded up; 0 without bytes.
    error: f32,
    /// Per unit of a row's scale: the f32 rounding of the widened product `⟨c, q⟩`
    /// (at most `D·ε·127·‖q‖₁`; the integer product has none).
    per_scale: f32,
    /// The f32 rounding of the exact product the answer is scored with (`D·ε·‖v‖·‖q‖`)
    /// and of turning the raw product into a score, doubled for margin.
    fixed: f32,
}

impl<'a> Probe<'a> {
    /// `integer`: the integer kernel (fast only where [`integer_dot_is_fast`]), else
    /// the f32 widening.
    pub fn with_kernel(q: &'a [f32], integer: bool) -> Self {
        let d = q.len() as f64;
        let eps = f64::from(f32::EPSILON);
        let norm = q.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let up = |x: f64| ((x * (1.0 + 1e-6)) as f32).next_up();
        let fixed = (2.0 * d * eps * norm.max(1.0) + 8.0 * eps) as f32;
        if !integer {
            let l1 = q.iter().map(|&x| f64::from(x).abs()).sum::<f64>();
            return Probe {
                vector: q,
                bytes: None,
                scale: 1.0,
                norm: up(norm),
                error: 0.0,
                per_scale: (2.0 * d * eps * f64::from(LEVEL) * l1) as f32,
                fixed,
            };
        }
        let mut codes = vec![0i8; q.len()];
        let (scale, error) = encode(q, &mut codes);
        let bytes = codes
            .iter()
            .map(|&c| (i32::from(c) + OFFSET) as u8)
            .collect();
        // Past D = 1 040 the integer product (≤ 127²·D) is rounded once converting to f32.
        let per_scale = if d > 1_040.0 {
            (2.0 * eps * f64::from(LEVEL).powi(2) * d * f64::from(scale)) as f32
        } else {
            0.0
        };
        Probe {
            vector: q,
            bytes: Some(bytes),
            scale,
            norm: up(norm),
            error,
            per_scale,
            fixed,
        }
    }

    /// `out[i]` = row `first + i`'s product with the query before its own scale: the
    /// integer product (offset undone) times `t`, or the widened f32 product. `raw` is
    /// scratch of the same length.
    pub fn products(&self, codes: &Codes, first: usize, out: &mut [f32], raw: &mut [i32]) {
        let dim = self.vector.len();
        let block = &codes.codes[first * dim..(first + out.len()) * dim];
        match &self.bytes {
            None => dot_many_i8(block, self.vector, out),
            Some(bytes) => {
                dot_many_u8i8(block, bytes, raw);
                let sums = &codes.sums[first..first + out.len()];
                for ((o, &p), &sum) in out.iter_mut().zip(raw.iter()).zip(sums) {
                    // `p − 128·Σc = Σ cⱼ·(bⱼ − 128)`: exact in i32 below D = 66 000, and
                    // exact in f32 below D = 1 040 (`per_scale` covers larger D).
                    *o = (p - OFFSET * sum) as f32 * self.scale;
                }
            }
        }
    }

    /// Turns `products` (from [`Self::products`], rows `first..`) into each row's
    /// approximate score `s·product` and writes the half-width of the interval around it
    /// that holds the row's exact score into `halves`. Plain multiply-adds over the
    /// block, which the compiler vectorises; the rounding of this arithmetic (~1e-9) is
    /// far inside `fixed`.
    pub fn intervals(&self, codes: &Codes, first: usize, products: &mut [f32], halves: &mut [f32]) {
        // half = radius·‖q‖ + (1 + tol + radius)·‖e_q‖ + s·per_scale + fixed
        let per_radius = self.norm + self.error;
        let constant = (1.0 + UNIT_NORM_TOLERANCE) * self.error + self.fixed;
        let rows = first..first + products.len();
        for (((p, h), &s), &radius) in products
            .iter_mut()
            .zip(halves.iter_mut())
            .zip(&codes.scales[rows.clone()])
            .zip(&codes.radii[rows])
        {
            *p *= s;
            *h = radius * per_radius + s * self.per_scale + constant;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::dot::dot;

    fn unit(d: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        let v: Vec<f32> = (0..d)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect();
        let n = dot(&v, &v).sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn every_exact_score_lies_in_its_interval_and_the_intervals_are_narrow() {
        let d = 128;
        let mut codes = Codes::default();
        let rows: Vec<Vec<f32>> = (0..300).map(|i| unit(d, 7 + i)).collect();
        rows.iter().for_each(|r| codes.push(r));
        let mut widest = 0.0f32;
        for (qi, integer) in (0..40).map(|i| (i / 2, i % 2 == 1)) {
            let q = unit(d, 10_000 + qi);
            let probe = Probe::with_kernel(&q, integer);
            let mut products = vec![0.0; rows.len()];
            let mut halves = vec![0.0; rows.len()];
            let mut raw = vec![0; rows.len()];
            probe.products(&codes, 0, &mut products, &mut raw);
            probe.intervals(&codes, 0, &mut products, &mut halves);
            for (r, row) in rows.iter().enumerate() {
                let (approx, half) = (products[r], halves[r]);
                let exact = dot(row, &q);
                assert!(
                    (exact - approx).abs() <= half,
                    "row {r} (integer {integer}): exact {exact}, approx {approx} ± {half}"
                );
                widest = widest.max(half);
            }
        }
        // The bound is what makes re-scoring cheap: it must stay near ‖e‖ ≈ s/√12·√D
        // (twice that with the query's own rounding).
        assert!(widest < 0.04, "half-width up to {widest}");
    }

    #[test]
    fn moved_and_replaced_rows_keep_their_codes() {
        let d = 16;
        let (a, b, c) = (unit(d, 1), unit(d, 2), unit(d, 3));
        let mut codes = Codes::default();
        codes.push(&a);
        codes.push(&b);
        let mut alone = Codes::default();
        alone.push(&c);
        codes.set(d, 0, &c);
        assert_eq!(&codes.codes[..d], &alone.codes[..]);
        codes.move_row(d, 0, 1);
        codes.truncate(d, 1);
        assert_eq!(codes.codes, alone.codes);
        assert_eq!(codes.scales, alone.scales);
        assert_eq!(codes.radii, alone.radii);
        assert_eq!(codes.sums, alone.sums);
        let mut zero = Codes::default();
        zero.push(&[0.0; 4]);
        assert_eq!((zero.scales[0], zero.radii[0]), (0.0, 0.0));
    }
}
