//! A second, hand-crafted view of an aligned face beside the network: local binary
//! pattern histograms (Ojala et al. 2002; on faces Ahonen et al. 2006) projected by a
//! linear map learned from the training identities, after Chen et al. 2013 ("Blessing
//! of dimensionality"): whitened PCA, then a within-class whitening and LDA.
//!
//! Why it is here: trained on the few thousand in-the-wild photos of LFW's development
//! identities, the network and this descriptor make different mistakes, and the
//! weighted sum of their two cosines separates unseen people better than either alone
//! (BENCHMARKS.md, "Faces in the wild"). The fused embedding is the concatenation
//! `[√w · e_net, √(1−w) · e_lbp]` of the two unit vectors, itself of unit length, so
//! the index, the thresholds and the API see one embedding whose cosine is
//! `w · cos_net + (1 − w) · cos_lbp`.
//!
//! The descriptor: the grey crop is resized to the branch's size; each pixel gets the
//! 8-neighbour pattern on a circle of radius `r` (neighbours sampled bilinearly,
//! `bit p = neighbour p ≥ centre`), mapped to one of 59 labels (the 58 patterns with at
//! most two 0/1 transitions, and one label for all others); the image is cut into
//! square cells per scale; each cell's label histogram is appended; the whole vector is
//! divided by its total count and square-rooted (the Hellinger map, so the dot product
//! compares histograms as the Bhattacharyya coefficient does).

use image::GrayImage;
use image::imageops::{FilterType, resize};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::linalg::{principal_components, symmetric_eigen};

/// Labels of the uniform 8-neighbour patterns: 58 uniform ones, then one for the rest.
pub const LABELS: usize = 59;

/// One scale of the descriptor: the crop resized by `resize` (1 = as is), neighbours
/// at `radius` pixels, histograms over non-overlapping `cell`×`cell` squares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LbpScale {
    pub radius: f32,
    pub cell: usize,
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub resize: f32,
}

fn one() -> f32 {
    1.0
}

fn is_one(v: &f32) -> bool {
    *v == 1.0
}

impl LbpScale {
    /// The (height, width) this scale describes, for a crop of `h`×`w`.
    pub fn size(&self, h: usize, w: usize) -> (usize, usize) {
        if self.resize == 1.0 {
            return (h, w);
        }
        let f = |v: usize| ((v as f32 * self.resize).round() as usize).max(1);
        (f(h), f(w))
    }
}

/// What the descriptor is computed on, and how the two views are weighted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LbpSpec {
    /// The crop is resized to `height`×`width` first (the alignment template's 112×96).
    pub height: usize,
    pub width: usize,
    pub scales: Vec<LbpScale>,
    /// Weight `w` of the network's cosine in the fused cosine; `1 − w` is the
    /// descriptor's.
    pub weight: f32,
    /// Length of the projected descriptor.
    pub dim: usize,
}

impl LbpSpec {
    /// Length of the raw descriptor: 59 labels per cell, over every scale's cells.
    pub fn raw_dim(&self) -> usize {
        self.scales
            .iter()
            .map(|s| {
                let (h, w) = s.size(self.height, self.width);
                (h / s.cell) * (w / s.cell) * LABELS
            })
            .sum()
    }
}

/// The label of each of the 256 patterns.
fn label_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut next = 0u8;
    for (code, slot) in table.iter_mut().enumerate() {
        let rotated = ((code << 1) | (code >> 7)) & 0xff;
        if (code ^ rotated).count_ones() <= 2 {
            *slot = next;
            next += 1;
        } else {
            *slot = (LABELS - 1) as u8;
        }
    }
    debug_assert_eq!(usize::from(next), LABELS - 1);
    table
}

/// The square-rooted, normalised histogram descriptor of a grey face crop.
pub fn describe(face: &GrayImage, spec: &LbpSpec) -> Vec<f32> {
    let (h, w) = (spec.height, spec.width);
    let sized;
    let face = if face.dimensions() == (w as u32, h as u32) {
        face
    } else {
        sized = resize(face, w as u32, h as u32, FilterType::Triangle);
        &sized
    };
    let table = label_table();
    let mut out = Vec::with_capacity(spec.raw_dim());
    for scale in &spec.scales {
        let (h, w) = scale.size(spec.height, spec.width);
        let rescaled;
        let face = if (h, w) == (spec.height, spec.width) {
            face
        } else {
            rescaled = resize(face, w as u32, h as u32, FilterType::Triangle);
            &rescaled
        };
        let px = |y: isize, x: isize| -> f32 {
            let y = y.clamp(0, h as isize - 1) as u32;
            let x = x.clamp(0, w as isize - 1) as u32;
            f32::from(face.get_pixel(x, y)[0])
        };
        // Neighbour offsets (dy, dx) on the circle, as skimage's local_binary_pattern.
        let offsets: Vec<(f32, f32)> = (0..8)
            .map(|p| {
                let angle = 2.0 * std::f32::consts::PI * p as f32 / 8.0;
                (-scale.radius * angle.sin(), scale.radius * angle.cos())
            })
            .collect();
        let mut labels = vec![0u8; h * w];
        for y in 0..h {
            for x in 0..w {
                let centre = px(y as isize, x as isize);
                let mut code = 0usize;
                for (p, &(dy, dx)) in offsets.iter().enumerate() {
                    let (fy, fx) = (y as f32 + dy, x as f32 + dx);
                    let (y0, x0) = (fy.floor(), fx.floor());
                    let (ty, tx) = (fy - y0, fx - x0);
                    let (y0, x0) = (y0 as isize, x0 as isize);
                    let v = (1.0 - ty) * ((1.0 - tx) * px(y0, x0) + tx * px(y0, x0 + 1))
                        + ty * ((1.0 - tx) * px(y0 + 1, x0) + tx * px(y0 + 1, x0 + 1));
                    // A small tolerance: bilinear rounding must not flip equal pixels.
                    if v >= centre - 1e-3 {
                        code |= 1 << p;
                    }
                }
                labels[y * w + x] = table[code];
            }
        }
        let c = scale.cell;
        for cy in 0..h / c {
            for cx in 0..w / c {
                let mut hist = [0u32; LABELS];
                for y in cy * c..(cy + 1) * c {
                    for &l in &labels[y * w + cx * c..y * w + (cx + 1) * c] {
                        hist[usize::from(l)] += 1;
                    }
                }
                out.extend(hist.iter().map(|&n| n as f32));
            }
        }
    }
    let total: f32 = out.iter().sum();
    if total > 0.0 {
        out.iter_mut().for_each(|v| *v = (*v / total).sqrt());
    }
    out
}

/// The learned projection of the descriptor: `e = normalise((d − mean) · proj)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LbpBranch {
    pub spec: LbpSpec,
    /// `(raw_dim,)`
    pub mean: Array1<f32>,
    /// `(raw_dim, dim)`
    pub proj: Array2<f32>,
}

/// Why a projection could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("the descriptor projection needs {need}, got {got}")]
    TooFew { need: &'static str, got: usize },
    #[error("descriptor projection: {0}")]
    Linalg(String),
}

impl LbpBranch {
    /// Unit-length projected descriptors of grey crops, one row each.
    pub fn embed(&self, faces: &[GrayImage]) -> Array2<f32> {
        let rows: Vec<Vec<f32>> = faces
            .par_iter()
            .map(|f| {
                let d = Array1::from(describe(f, &self.spec)) - &self.mean;
                let mut e = d.dot(&self.proj);
                let norm = e.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
                if norm > 0.0 {
                    e.mapv_inplace(|v| (f64::from(v) / norm) as f32);
                }
                e.to_vec()
            })
            .collect();
        let mut out = Array2::zeros((rows.len(), self.spec.dim));
        for (mut row, e) in out.outer_iter_mut().zip(rows) {
            row.assign(&Array1::from(e));
        }
        out
    }

    /// Fits the projection on the descriptors `(N, raw_dim)` of training faces with
    /// their identity labels: whitened PCA to `pca` dimensions (fitted on at most
    /// `max_pca_samples` rows taken at an even stride, which bounds the eigen-problem),
    /// then the within-identity scatter (identities with two or more faces) is whitened
    /// and the `spec.dim` directions of largest between-identity scatter are kept.
    pub fn fit(
        spec: LbpSpec,
        descriptors: ArrayView2<f32>,
        labels: &[usize],
        pca: usize,
        max_pca_samples: usize,
    ) -> Result<LbpBranch, FitError> {
        let n = descriptors.nrows();
        if n < 3 || n != labels.len() {
            return Err(FitError::TooFew {
                need: "three or more labelled faces",
                got: n,
            });
        }
        let stride = n.div_ceil(max_pca_samples.max(2));
        let sample = descriptors
            .select(Axis(0), &(0..n).step_by(stride).collect::<Vec<_>>())
            .mapv(f64::from);
        let principal =
            principal_components(&sample, pca).map_err(|e| FitError::Linalg(e.to_string()))?;
        let k = principal.variances.len();
        // Whitened PCA basis (D, k): each component scaled to unit variance.
        let mut basis = principal.basis.t().to_owned();
        for (mut col, &v) in basis.axis_iter_mut(Axis(1)).zip(principal.variances.iter()) {
            col /= v.max(1e-12).sqrt();
        }
        let x = descriptors.mapv(f64::from) - &principal.mean;
        let z = x.dot(&basis); // (N, k)

        // Within-identity scatter of identities with at least two faces.
        let classes = labels.iter().copied().max().unwrap_or(0) + 1;
        let mut count = vec![0usize; classes];
        let mut sums = Array2::<f64>::zeros((classes, k));
        for (row, &l) in z.outer_iter().zip(labels) {
            count[l] += 1;
            let mut s = sums.row_mut(l);
            s += &row;
        }
        let mut centred = Vec::new();
        for (row, &l) in z.outer_iter().zip(labels) {
            if count[l] >= 2 {
                let mean = sums.row(l).mapv(|v| v / count[l] as f64);
                centred.push((&row - &mean).to_vec());
            }
        }
        let multi: Vec<usize> = (0..classes).filter(|&c| count[c] >= 2).collect();
        if multi.len() < 2 {
            return Err(FitError::TooFew {
                need: "two or more identities with two or more faces",
                got: multi.len(),
            });
        }
        let m = centred.len();
        let within = Array2::from_shape_vec((m, k), centred.concat())
            .map_err(|e| FitError::Linalg(e.to_string()))?;
        let mut sw = within.t().dot(&within) / m as f64;
        for i in 0..k {
            sw[[i, i]] += 1e-3;
        }
        let (wv, wvec) = symmetric_eigen(&sw).map_err(|e| FitError::Linalg(e.to_string()))?;
        let mut white = wvec;
        for (mut col, &v) in white.axis_iter_mut(Axis(1)).zip(wv.iter()) {
            col /= v.max(1e-12).sqrt();
        }
        // Between-identity scatter of the identity means, in the within-whitened space.
        let means = Array2::from_shape_fn((multi.len(), k), |(i, j)| {
            sums[[multi[i], j]] / count[multi[i]] as f64
        })
        .dot(&white);
        let centre = means.mean_axis(Axis(0)).expect("two or more identities");
        let mc = &means - &centre;
        let sb = mc.t().dot(&mc) / (multi.len() - 1) as f64;
        let (_, bvec) = symmetric_eigen(&sb).map_err(|e| FitError::Linalg(e.to_string()))?;
        let dim = spec.dim.min(k);
        let lda = bvec.slice(ndarray::s![.., ..dim]).to_owned();
        let proj = basis.dot(&white).dot(&lda).mapv(|v| v as f32);
        Ok(LbpBranch {
            spec: LbpSpec { dim, ..spec },
            mean: principal.mean.mapv(|v| v as f32),
            proj,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> LbpSpec {
        LbpSpec {
            height: 16,
            width: 16,
            scales: vec![LbpScale {
                radius: 1.0,
                cell: 8,
                resize: 1.0,
            }],
            weight: 0.5,
            dim: 2,
        }
    }

    #[test]
    fn the_table_has_58_uniform_labels_and_one_for_the_rest() {
        let table = label_table();
        let uniform = table
            .iter()
            .filter(|&&l| usize::from(l) < LABELS - 1)
            .count();
        assert_eq!(uniform, 58);
        assert_eq!(table[0b0101_0101], (LABELS - 1) as u8);
        assert_ne!(table[0b0000_0111], table[0b0000_1111]);
    }

    #[test]
    fn a_flat_image_is_all_one_pattern_and_the_descriptor_has_unit_norm() {
        let flat = GrayImage::from_pixel(16, 16, image::Luma([90]));
        let d = describe(&flat, &spec());
        assert_eq!(d.len(), spec().raw_dim());
        assert_eq!(d.len(), 4 * LABELS);
        // All-ones pattern everywhere: one label per cell holds everything.
        let label = usize::from(label_table()[255]);
        for cell in d.chunks(LABELS) {
            assert!((cell[label] - 0.5).abs() < 1e-6, "{cell:?}");
        }
        let norm: f32 = d.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
    }

    #[test]
    fn a_resized_scale_describes_the_smaller_image() {
        let mut spec = spec();
        spec.scales.push(LbpScale {
            radius: 1.0,
            cell: 4,
            resize: 0.5,
        });
        assert_eq!(spec.raw_dim(), (4 + 4) * LABELS);
        let img = GrayImage::from_fn(16, 16, |x, y| image::Luma([((x * 7 + y * 13) % 256) as u8]));
        assert_eq!(describe(&img, &spec).len(), spec.raw_dim());
    }

    #[test]
    fn a_bright_centre_pixel_has_no_neighbour_above_it() {
        let mut img = GrayImage::from_pixel(16, 16, image::Luma([10]));
        img.put_pixel(4, 4, image::Luma([200]));
        let d = describe(&img, &spec());
        // Pattern 0 (all neighbours darker) appears exactly once, in the first cell.
        let zero = usize::from(label_table()[0]);
        let total = 16.0 * 16.0;
        assert!((d[zero] - (1.0f32 / total).sqrt()).abs() < 1e-6);
        assert_eq!(d[LABELS + zero], 0.0);
    }

    #[test]
    fn the_fitted_projection_separates_identities_it_was_fitted_on() {
        // Two identities whose descriptors differ along one direction, noise elsewhere.
        let mut rng = 1u64;
        let mut noise = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((rng >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let dim = 6;
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..40 {
            let l = i % 4;
            let mut r: Vec<f32> = (0..dim).map(|_| 0.1 * noise()).collect();
            r[l] += 1.0;
            rows.extend(r);
            labels.push(l);
        }
        let x = Array2::from_shape_vec((40, dim), rows).unwrap();
        let spec = LbpSpec { dim: 3, ..spec() };
        let branch = LbpBranch::fit(spec, x.view(), &labels, 5, 1000).unwrap();
        assert_eq!(branch.proj.dim(), (dim, 3));
        let z = (&x - &branch.mean).dot(&branch.proj);
        let unit = |r: ndarray::ArrayView1<f32>| &r / r.dot(&r).sqrt();
        let (a, b, c) = (unit(z.row(0)), unit(z.row(4)), unit(z.row(1)));
        assert!(a.dot(&b) > 0.9, "same identity: {}", a.dot(&b));
        assert!(a.dot(&c) < 0.5, "different identities: {}", a.dot(&c));
    }

    #[test]
    fn too_few_identities_is_an_error_not_a_panic() {
        let x = Array2::<f32>::ones((4, 3));
        let err = LbpBranch::fit(spec(), x.view(), &[0, 0, 0, 0], 2, 10).unwrap_err();
        assert!(matches!(err, FitError::TooFew { .. }), "{err}");
    }
}
