//! The exact index's compact copy of its rows: each vector as int8 codes with one scale,
//! and a bound on what the rounding can change in any score.
//!
//! A row `v` is stored as `c = round(v / s)` with `s = max|vⱼ| / 127`, so its approximate
//! score against a query `q` is `s·⟨c, q⟩`. The rounding error `e = s·c − v` is known
//! when the row is stored; by Cauchy–Schwarz `|s·⟨c, q⟩ − ⟨v, q⟩| ≤ ‖e‖·‖q‖`, so
//! [`Codes::radii`] keeps `‖e‖` (rounded up) and a scan knows, for every row, an
//! interval that surely holds the exact score. The scan ([`super::scan`]) uses the
//! intervals to pick the few rows that could be in the answer and re-scores only those
//! from the f32 rows: the answer is the exact index's, bit for bit, at a quarter of the
//! memory traffic (100 000 × 128 codes are 12.8 MB, which fits this machine's L3 cache;
//! the f32 rows are 51 MB and do not).
//!
//! Where the CPU multiplies bytes (AVX-512 VNNI) the query is coded too, as
//! `q ≈ t·b` with `t = max|qⱼ| / 127`, and the product `⟨c, b⟩` is exact integer
//! arithmetic; the query's own rounding `e_q = q − t·b` widens the interval by
//! `‖s·c‖·‖e_q‖`. There the codes are kept in groups of sixty-four rows interleaved by
//! four-byte words ([`dot_groups_u8i8`]), so that one load serves sixteen rows and every
//! query of a batch, and a group is read as one stream. Without VNNI the codes are
//! row-major, widened to f32 and multiplied with `q`.

pub(super) use super::dot::GROUP_ROWS;
use super::dot::{dot_groups_u8i8, dot_many_i8, integer_dot_is_fast};
use crate::embedding::UNIT_NORM_TOLERANCE;

/// Largest code magnitude: the scale maps `max|vⱼ|` to it.
const LEVEL: f32 = 127.0;
/// Offset making a query's codes unsigned bytes for `vpdpbusd` (`b = c + 128`).
const OFFSET: i32 = 128;

/// The int8 codes of every row, with each row's scale and radius.
pub(crate) struct Codes {
    /// Whether scans multiply bytes ([`Probe`]'s integer kernel): then the codes are in
    /// [`dot_groups_u8i8`]'s layout, the last group padded with zero codes; else `(N, D)`
    /// row-major.
    integer: bool,
    codes: Vec<i8>,
    /// `(N)`: `s` of each row.
    pub scales: Vec<f32>,
    /// `(N)`: an upper bound on `‖s·c − v‖₂` of each row.
    pub radii: Vec<f32>,
    /// `(N` rounded up to a group of [`GROUP_ROWS`]`)`: `−128·Σⱼ cⱼ` of each row (0 past the
    /// last), where the integer kernel starts the row's sum: it undoes the query's byte
    /// offset ([`OFFSET`]), so a raw product is `⟨c, b − 128⟩`.
    biases: Vec<i32>,
    /// `(⌈N / GROUP_ROWS⌉)`: the largest scale among each group's rows, for a bound on a
    /// whole group ([`Probe::group_upper`]).
    group_scales: Vec<f32>,
    /// `(⌈N / GROUP_ROWS⌉)`: the largest radius among each group's rows.
    group_radii: Vec<f32>,
}

/// The kernel this CPU runs fast ([`integer_dot_is_fast`]).
impl Default for Codes {
    fn default() -> Self {
        Codes::new(integer_dot_is_fast())
    }
}

impl Codes {
    /// No rows yet; `integer`: products in integers (see [`Codes::integer`]).
    pub fn new(integer: bool) -> Self {
        Codes {
            integer,
            codes: Vec::new(),
            scales: Vec::new(),
            radii: Vec::new(),
            biases: Vec::new(),
            group_scales: Vec::new(),
            group_radii: Vec::new(),
        }
    }

    /// Whether scans multiply the codes with a coded query in integers (else the codes
    /// are widened to f32).
    pub fn integer(&self) -> bool {
        self.integer
    }

    fn len(&self) -> usize {
        self.scales.len()
    }

    /// Bytes of a group of rows of dimension `dim` in the integer layout.
    fn group_len(dim: usize) -> usize {
        GROUP_ROWS * 4 * dim.div_ceil(4)
    }

    /// Index of code `j` of row `r` in `codes`.
    fn at(&self, dim: usize, r: usize, j: usize) -> usize {
        if self.integer {
            r / GROUP_ROWS * Self::group_len(dim)
                + j / 4 * (4 * GROUP_ROWS)
                + r % GROUP_ROWS * 4
                + j % 4
        } else {
            r * dim + j
        }
    }

    /// Writes the codes of row `r`.
    fn put_row(&mut self, r: usize, row: &[i8]) {
        let dim = row.len();
        if !self.integer {
            return self.codes[r * dim..(r + 1) * dim].copy_from_slice(row);
        }
        for (k, word) in row.chunks(4).enumerate() {
            let at = self.at(dim, r, 4 * k);
            self.codes[at..at + word.len()].copy_from_slice(word);
        }
    }

    /// The codes of row `r`.
    fn row(&self, dim: usize, r: usize) -> Vec<i8> {
        (0..dim).map(|j| self.codes[self.at(dim, r, j)]).collect()
    }

    /// Bytes `codes` holds for `rows` rows.
    fn bytes_for(&self, dim: usize, rows: usize) -> usize {
        if self.integer {
            rows.div_ceil(GROUP_ROWS) * Self::group_len(dim)
        } else {
            rows * dim
        }
    }

    /// Appends the codes of `v`.
    pub fn push(&mut self, v: &[f32]) {
        let r = self.len();
        self.codes.resize(self.bytes_for(v.len(), r + 1), 0);
        self.scales.push(0.0);
        self.radii.push(0.0);
        self.biases.resize((r + 1).next_multiple_of(GROUP_ROWS), 0);
        self.group_scales.resize((r + 1).div_ceil(GROUP_ROWS), 0.0);
        self.group_radii.resize((r + 1).div_ceil(GROUP_ROWS), 0.0);
        self.set(v.len(), r, v);
    }

    /// Replaces row `r` (of dimension `dim`) with the codes of `v`.
    pub fn set(&mut self, dim: usize, r: usize, v: &[f32]) {
        debug_assert_eq!(v.len(), dim);
        let mut row = vec![0i8; dim];
        let (scale, radius) = encode(v, &mut row);
        self.put_row(r, &row);
        self.scales[r] = scale;
        self.radii[r] = radius;
        self.biases[r] = -OFFSET * code_sum(&row);
        self.refresh_group(r / GROUP_ROWS);
    }

    /// Recomputes group `g`'s largest scale and radius from its rows.
    fn refresh_group(&mut self, g: usize) {
        let rows = g * GROUP_ROWS..((g + 1) * GROUP_ROWS).min(self.len());
        let top = |x: &[f32]| x.iter().fold(0.0f32, |m, &v| m.max(v));
        self.group_scales[g] = top(&self.scales[rows.clone()]);
        self.group_radii[g] = top(&self.radii[rows]);
    }

    /// Moves row `from` into row `to` (a removal keeping the rows dense).
    pub fn move_row(&mut self, dim: usize, from: usize, to: usize) {
        let row = self.row(dim, from);
        self.put_row(to, &row);
        self.scales[to] = self.scales[from];
        self.radii[to] = self.radii[from];
        self.biases[to] = self.biases[from];
        self.refresh_group(to / GROUP_ROWS);
    }

    /// Keeps the first `rows` rows (the rest of a group, zero codes).
    pub fn truncate(&mut self, dim: usize, rows: usize) {
        let rows = rows.min(self.len());
        self.codes.truncate(self.bytes_for(dim, rows));
        if self.integer {
            let zeros = vec![0; dim];
            for r in rows..rows.next_multiple_of(GROUP_ROWS).min(self.len()) {
                self.put_row(r, &zeros);
            }
        }
        self.scales.truncate(rows);
        self.radii.truncate(rows);
        self.biases.truncate(rows.next_multiple_of(GROUP_ROWS));
        self.biases[rows..].fill(0);
        self.group_scales.truncate(rows.div_ceil(GROUP_ROWS));
        self.group_radii.truncate(rows.div_ceil(GROUP_ROWS));
        if !rows.is_multiple_of(GROUP_ROWS) {
            self.refresh_group(rows / GROUP_ROWS);
        }
    }

    pub fn reserve(&mut self, dim: usize, rows: usize) {
        let more = self.bytes_for(dim, self.len() + rows) - self.codes.len();
        self.codes.reserve(more);
        self.scales.reserve(rows);
        self.radii.reserve(rows);
        self.biases.reserve(rows);
        self.group_scales.reserve(rows.div_ceil(GROUP_ROWS));
        self.group_radii.reserve(rows.div_ceil(GROUP_ROWS));
    }

    /// The integer products of rows `first..first + len` (`first` a multiple of
    /// [`GROUP_ROWS`]) with queries coded as [`Probe::words`]: `raw[i·stride + r]` for
    /// query `i` and row `first + r`, `stride ≥ len` rounded up to a group.
    pub fn integer_products(
        &self,
        dim: usize,
        words: &[&[u32]],
        first: usize,
        len: usize,
        raw: &mut [i32],
        stride: usize,
    ) {
        debug_assert!(self.integer && first.is_multiple_of(GROUP_ROWS));
        let group = Self::group_len(dim);
        let start = first / GROUP_ROWS * group;
        let n = len.div_ceil(GROUP_ROWS);
        let groups = &self.codes[start..start + n * group];
        let biases = &self.biases[first..first + n * GROUP_ROWS];
        dot_groups_u8i8(groups, biases, words, raw, stride);
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
    /// `b = round(q / t) + 128` for the integer kernel, as little-endian words of four
    /// bytes (the last padded with 128, a zero code); `None`: widen the rows to f32.
    words: Option<Vec<u32>>,
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
    /// The query `q` as a scan of `codes` reads it: coded to bytes where the codes
    /// are multiplied in integers ([`Codes::integer`]).
    pub fn new(q: &'a [f32], codes: &Codes) -> Self {
        let integer = codes.integer();
        let d = q.len() as f64;
        let eps = f64::from(f32::EPSILON);
        let norm = q.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let up = |x: f64| ((x * (1.0 + 1e-6)) as f32).next_up();
        let fixed = (2.0 * d * eps * norm.max(1.0) + 8.0 * eps) as f32;
        if !integer {
            let l1 = q.iter().map(|&x| f64::from(x).abs()).sum::<f64>();
            return Probe {
                vector: q,
                words: None,
                scale: 1.0,
                norm: up(norm),
                error: 0.0,
                per_scale: (2.0 * d * eps * f64::from(LEVEL) * l1) as f32,
                fixed,
            };
        }
        let mut codes = vec![0i8; q.len()];
        let (scale, error) = encode(q, &mut codes);
        let words = codes
            .chunks(4)
            .map(|word| {
                let mut four = [OFFSET as u8; 4];
                for (b, &c) in four.iter_mut().zip(word) {
                    *b = (i32::from(c) + OFFSET) as u8;
                }
                u32::from_le_bytes(four)
            })
            .collect();
        // Past D = 1 040 the integer product (≤ 127²·D) is rounded once converting to f32.
        let per_scale = if d > 1_040.0 {
            (2.0 * eps * f64::from(LEVEL).powi(2) * d * f64::from(scale)) as f32
        } else {
            0.0
        };
        Probe {
            vector: q,
            words: Some(words),
            scale,
            norm: up(norm),
            error,
            per_scale,
            fixed,
        }
    }

    /// The query's bytes as words for [`Codes::integer_products`]; `None` where the
    /// codes are widened to f32 instead.
    pub fn words(&self) -> Option<&[u32]> {
        self.words.as_deref()
    }

    /// `out[i]` = row `first + i`'s product with the query before its own scale: the
    /// integer product `raw[i]` ([`Codes::integer_products`], its offset undone by the
    /// row's bias) times `t`; or, without the integer kernel, the widened f32 product
    /// (`raw` unread).
    #[inline(always)]
    pub fn products(&self, codes: &Codes, first: usize, raw: &[i32], out: &mut [f32]) {
        let dim = self.vector.len();
        if self.words.is_none() {
            let block = &codes.codes[first * dim..(first + out.len()) * dim];
            return dot_many_i8(block, self.vector, out);
        }
        for (o, &p) in out.iter_mut().zip(raw) {
            // `p = Σ cⱼ·(bⱼ − 128)`: exact in i32 below D = 44 000, and exact in f32
            // below D = 1 040 (`per_scale` covers larger D).
            *o = p as f32 * self.scale;
        }
    }

    /// An upper bound on the exact score of every row of group `g` (integer codes),
    /// given the largest raw product `top` among its rows: what [`Self::intervals`]
    /// would give its highest row, with the group's largest scale and radius in place
    /// of the row's own. A scan skips a group below its floor without turning each
    /// row's product into an interval.
    ///
    /// Each row's upper end is `t·s·p + r·(‖q‖ + ‖e_q‖) + s·per_scale + constant` with
    /// `s ≤ S`, `r ≤ R` and `t·s·p ≤ t·S·max(p, 0)`; the f32 rounding of this sum (a few
    /// ulps of values below 2) is covered by the last `1e-6`, so the result is at least
    /// every row's exact score.
    pub fn group_upper(&self, codes: &Codes, g: usize, top: i32) -> f32 {
        let (s, r) = (codes.group_scales[g], codes.group_radii[g]);
        let constant = (1.0 + UNIT_NORM_TOLERANCE) * self.error + self.fixed;
        let upper = self.scale * s * top.max(0) as f32
            + r * (self.norm + self.error)
            + s * self.per_scale
            + constant;
        upper * (1.0 + 1e-6) + 1e-6
    }

    /// Turns `products` (from [`Self::products`], rows `first..`) into each row's
    /// approximate score `s·product` and writes the half-width of the interval around it
    /// that holds the row's exact score into `halves`. Plain multiply-adds over the
    /// block, which the compiler vectorises; the rounding of this arithmetic (~1e-9) is
    /// far inside `fixed`.
    #[inline(always)]
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
        let rows: Vec<Vec<f32>> = (0..300).map(|i| unit(d, 7 + i)).collect();
        let mut widest = 0.0f32;
        for integer in [false, true] {
            let mut codes = Codes::new(integer);
            rows.iter().for_each(|r| codes.push(r));
            for qi in 0..20 {
                let q = unit(d, 10_000 + qi);
                let probe = Probe::new(&q, &codes);
                let mut products = vec![0.0; rows.len()];
                let mut halves = vec![0.0; rows.len()];
                let mut raw = vec![0; rows.len().next_multiple_of(GROUP_ROWS)];
                if integer {
                    let (words, stride) = ([probe.words().unwrap()], raw.len());
                    codes.integer_products(d, &words, 0, rows.len(), &mut raw, stride);
                }
                probe.products(&codes, 0, &raw, &mut products);
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
                if !integer {
                    continue;
                }
                // A group's bound is above every one of its rows' upper ends, and not by
                // more than the spread of their scales and radii can explain.
                for (g, group) in raw.chunks(GROUP_ROWS).enumerate() {
                    let rows = g * GROUP_ROWS..((g + 1) * GROUP_ROWS).min(rows.len());
                    let top = group[..rows.len()].iter().copied().max().unwrap();
                    let bound = probe.group_upper(&codes, g, top);
                    let highest = rows
                        .map(|r| products[r] + halves[r])
                        .fold(f32::NEG_INFINITY, f32::max);
                    assert!(bound >= highest, "group {g}: {bound} < {highest}");
                    assert!(bound < highest + 0.1, "group {g}: {bound} ≫ {highest}");
                }
            }
        }
        // The bound is what makes re-scoring cheap: it must stay near ‖e‖ ≈ s/√12·√D
        // (twice that with the query's own rounding).
        assert!(widest < 0.04, "half-width up to {widest}");
    }

    #[test]
    fn moved_and_replaced_rows_keep_their_codes() {
        // 18 = 4·4 + 2: the integer layout's last word half full.
        let d = 18;
        for integer in [false, true] {
            let rows: Vec<Vec<f32>> = (0..70).map(|i| unit(d, 1 + i)).collect();
            let c = unit(d, 99);
            let mut codes = Codes::new(integer);
            rows.iter().for_each(|r| codes.push(r));
            let mut alone = Codes::new(integer);
            alone.push(&c);
            codes.set(d, 3, &c);
            assert_eq!(codes.row(d, 3), alone.row(d, 0), "integer {integer}");
            // Row 69 (in the second group) into row 3, then 67 rows kept.
            codes.move_row(d, 69, 3);
            codes.truncate(d, 67);
            let mut want = Codes::new(integer);
            rows[..67].iter().for_each(|r| want.push(r));
            want.set(d, 3, &rows[69]);
            assert_eq!(codes.codes, want.codes, "integer {integer}");
            assert_eq!(codes.scales, want.scales);
            assert_eq!(codes.radii, want.radii);
            assert_eq!(codes.biases, want.biases);
            assert_eq!(codes.group_scales, want.group_scales);
            assert_eq!(codes.group_radii, want.group_radii);
            // Pushed again past the truncation: the rows cut off left nothing behind.
            codes.push(&c);
            want.push(&c);
            assert_eq!(codes.codes, want.codes, "integer {integer}");
        }
        let mut zero = Codes::default();
        zero.push(&[0.0; 4]);
        assert_eq!((zero.scales[0], zero.radii[0]), (0.0, 0.0));
    }
}
