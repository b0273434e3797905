//! The MTCNN cascade (Zhang et al. 2016), step for step as facenet-pytorch 2.6.0 runs
//! it (`detect_face`), so its output can be checked against that implementation:
//!
//! 1. an image pyramid from `12 / min_face_size`, × `factor` while the short side
//!    stays ≥ 12 pixels, each level area-resized to `⌊h·s + 1⌋ × ⌊w·s + 1⌋`;
//! 2. P-Net on every level (levels in parallel): each output cell is a 12×12 window at
//!    stride 2, kept above `thresholds[0]`; NMS 0.5 within a level, 0.7 across levels;
//!    box regression; boxes made square;
//! 3. R-Net on 24×24 crops of those boxes (one batch): kept above `thresholds[1]`,
//!    NMS 0.7, regression, square;
//! 4. O-Net on 48×48 crops (one batch): kept above `thresholds[2]`; the five
//!    landmarks; regression; NMS 0.7 by intersection over the smaller box.
//!
//! Inputs are normalised as `(v − 127.5) / 128`. Boxes are `[x1, y1, x2, y2]` in image
//! pixels. The NMS after P-Net and R-Net measures overlap without the `+1` pixel
//! convention (torchvision's `batched_nms`); the last one with it (the original
//! MATLAB code), as the reference does.

use ndarray::Array4;
use rayon::prelude::*;

use super::nets::{Nets, face_probability};
use super::resample::{Plane, area_resize, area_resize_region};
use crate::nn::Tensor;

/// Settings of the cascade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CascadeConfig {
    pub min_face_size: f32,
    pub factor: f32,
    pub thresholds: [f32; 3],
    /// Pyramid levels whose 12-pixel window spans fewer than this many pixels of the
    /// image (`12 / scale`) are left out; the others keep their scales. 0: every level.
    pub smallest_window: f32,
}

/// A face found by the cascade: box corners, probability and the five landmarks (left
/// eye, right eye, nose, left and right mouth corners, as seen in the image).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: [f32; 4],
    pub score: f32,
    pub landmarks: [[f32; 2]; 5],
}

/// A candidate box with score and regression offsets.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    bbox: [f32; 4],
    score: f32,
    reg: [f32; 4],
}

const NORM_MEAN: f32 = 127.5;
const NORM_SCALE: f32 = 0.0078125;

fn normalise(values: &mut [f32]) {
    values
        .iter_mut()
        .for_each(|v| *v = (*v - NORM_MEAN) * NORM_SCALE);
}

/// The pyramid's scales for a `w × h` image.
pub fn scales(w: usize, h: usize, config: &CascadeConfig) -> Vec<f64> {
    // In f64, as the reference's Python floats: level sizes are ⌊h·s + 1⌋.
    let m = 12.0 / f64::from(config.min_face_size);
    let factor = f64::from(config.factor);
    let mut min_side = w.min(h) as f64 * m;
    let mut scale = m;
    let mut out = Vec::new();
    while min_side >= 12.0 {
        if 12.0 / scale >= f64::from(config.smallest_window) {
            out.push(scale);
        }
        scale *= factor;
        min_side *= factor;
    }
    out
}

/// P-Net on one pyramid level: the candidates above `threshold`, NMS 0.5 applied.
fn pnet_level(nets: &Nets, plane: &Plane, scale: f64, threshold: f32) -> Vec<Candidate> {
    let lh = (plane.height as f64 * scale + 1.0) as usize;
    let lw = (plane.width as f64 * scale + 1.0) as usize;
    let scale = scale as f32;
    if lh < 12 || lw < 12 {
        return Vec::new();
    }
    let mut level = area_resize(plane, lw, lh);
    normalise(&mut level);
    let Ok(input) = Tensor::from_shape_vec(vec![1, 1, lh, lw], level) else {
        return Vec::new();
    };
    let Ok(out) = nets.pnet.infer(&input) else {
        return Vec::new();
    };
    let (oh, ow) = (out.shape()[2], out.shape()[3]);
    let out = out.as_standard_layout();
    let Some(o) = out.as_slice() else {
        return Vec::new();
    };
    let plane_len = oh * ow;
    let mut found = Vec::new();
    for y in 0..oh {
        for x in 0..ow {
            let at = y * ow + x;
            let p = face_probability(o[at], o[plane_len + at]);
            if p < threshold {
                continue;
            }
            let q = |v: usize, extra: f32| ((2 * v) as f32 + extra) / scale;
            found.push(Candidate {
                bbox: [
                    q(x, 1.0).floor(),
                    q(y, 1.0).floor(),
                    q(x, 12.0).floor(),
                    q(y, 12.0).floor(),
                ],
                score: p,
                reg: [
                    o[2 * plane_len + at],
                    o[3 * plane_len + at],
                    o[4 * plane_len + at],
                    o[5 * plane_len + at],
                ],
            });
        }
    }
    let keep = nms(&found, 0.5, Overlap::Union);
    keep.into_iter().map(|i| found[i]).collect()
}

/// How overlap is measured in NMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overlap {
    /// Intersection over union, areas `(x2 − x1)·(y2 − y1)` (torchvision).
    Union,
    /// Intersection over the smaller box, areas `(x2 − x1 + 1)·(y2 − y1 + 1)`.
    MinPlusOne,
}

/// Greedy non-maximum suppression: indices kept, best score first. A box is dropped
/// when its overlap with a kept one exceeds `threshold`.
fn nms(cands: &[Candidate], threshold: f32, overlap: Overlap) -> Vec<usize> {
    let mut order: Vec<usize> = (0..cands.len()).collect();
    // Stable: equal scores keep their order, as the reference's sort does.
    order.sort_by(|&a, &b| cands[b].score.total_cmp(&cands[a].score));
    let one = if overlap == Overlap::MinPlusOne {
        1.0
    } else {
        0.0
    };
    let area = |b: &[f32; 4]| (b[2] - b[0] + one) * (b[3] - b[1] + one);
    let mut suppressed = vec![false; cands.len()];
    let mut keep = Vec::new();
    for (k, &i) in order.iter().enumerate() {
        if suppressed[i] {
            continue;
        }
        keep.push(i);
        let a = &cands[i].bbox;
        for &j in &order[k + 1..] {
            if suppressed[j] {
                continue;
            }
            let b = &cands[j].bbox;
            let iw = (a[2].min(b[2]) - a[0].max(b[0]) + one).max(0.0);
            let ih = (a[3].min(b[3]) - a[1].max(b[1]) + one).max(0.0);
            let inter = iw * ih;
            let o = match overlap {
                Overlap::Union => inter / (area(a) + area(b) - inter),
                Overlap::MinPlusOne => inter / area(a).min(area(b)),
            };
            if o > threshold {
                suppressed[j] = true;
            }
        }
    }
    keep
}

/// The box moved by its regression offsets, in units of its size (`plus_one`: sizes
/// counted with the `+1` pixel convention, as after R-Net and O-Net).
fn regress(c: &Candidate, plus_one: bool) -> [f32; 4] {
    let one = if plus_one { 1.0 } else { 0.0 };
    let w = c.bbox[2] - c.bbox[0] + one;
    let h = c.bbox[3] - c.bbox[1] + one;
    [
        c.bbox[0] + c.reg[0] * w,
        c.bbox[1] + c.reg[1] * h,
        c.bbox[2] + c.reg[2] * w,
        c.bbox[3] + c.reg[3] * h,
    ]
}

/// The square of side `max(w, h)` with the same centre.
fn square(b: [f32; 4]) -> [f32; 4] {
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let l = w.max(h);
    let x1 = b[0] + w * 0.5 - l * 0.5;
    let y1 = b[1] + h * 0.5 - l * 0.5;
    [x1, y1, x1 + l, y1 + l]
}

/// The part of a box inside the image as pixel ranges `[x0, x1) × [y0, y1)`, the
/// reference's `pad` (coordinates truncated, 1-based, clipped); `None` when empty.
fn clip(b: &[f32; 4], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    // Truncation toward zero, as the reference's `.trunc().int()`.
    let x = (b[0] as i64).max(1);
    let y = (b[1] as i64).max(1);
    let ex = (b[2] as i64).min(w as i64);
    let ey = (b[3] as i64).min(h as i64);
    if ex < x || ey < y {
        return None;
    }
    Some(((x - 1) as usize, (y - 1) as usize, ex as usize, ey as usize))
}

/// Crops of `boxes` resized to `size × size` and normalised, as one batch `(N, 1, s, s)`;
/// the boxes with a non-empty crop, in order.
fn crops(plane: &Plane, boxes: &[[f32; 4]], size: usize) -> (Tensor, Vec<usize>) {
    let regions: Vec<(usize, (usize, usize, usize, usize))> = boxes
        .iter()
        .enumerate()
        .filter_map(|(i, b)| clip(b, plane.width, plane.height).map(|r| (i, r)))
        .collect();
    let per = size * size;
    let mut batch = Array4::<f32>::zeros((regions.len(), 1, size, size));
    if let Some(flat) = batch.as_slice_mut() {
        flat.par_chunks_mut(per)
            .zip(regions.par_iter())
            .for_each(|(out, &(_, region))| {
                out.copy_from_slice(&area_resize_region(plane, region, size, size));
                normalise(out);
            });
    }
    (batch.into_dyn(), regions.into_iter().map(|r| r.0).collect())
}

/// O-Net alone on `bbox` (made square), `rounds` times, each round on the box the one
/// before regressed to: the last round's face probability, box and landmarks. This is
/// the cascade's last stage without the search before it, for an image the caller
/// already believes to be one face (a tight face crop, which gives P-Net and R-Net too
/// little context to propose it); `None` when the box misses the image.
pub fn onet_at(nets: &Nets, plane: &Plane, bbox: [f32; 4], rounds: usize) -> Option<Detection> {
    let mut b = square(bbox);
    let mut found = None;
    for _ in 0..rounds.max(1) {
        let (batch, kept) = crops(plane, &[b], 48);
        if kept.is_empty() {
            return found;
        }
        let out = nets.onet.infer(&batch).ok()?;
        let d = onet_detection(out.outer_iter().next()?, b);
        b = square(d.bbox);
        found = Some(d);
    }
    found
}

/// What O-Net's output `row` says of the square box `b` it was given: the face
/// probability, the regressed box and the five landmarks, in image pixels.
fn onet_detection(row: ndarray::ArrayViewD<'_, f32>, b: [f32; 4]) -> Detection {
    let (w, h) = (b[2] - b[0] + 1.0, b[3] - b[1] + 1.0);
    let mut landmarks = [[0.0f32; 2]; 5];
    for (k, point) in landmarks.iter_mut().enumerate() {
        *point = [w * row[6 + k] + b[0] - 1.0, h * row[11 + k] + b[1] - 1.0];
    }
    let c = Candidate {
        bbox: b,
        score: face_probability(row[0], row[1]),
        reg: [row[2], row[3], row[4], row[5]],
    };
    Detection {
        bbox: regress(&c, true),
        score: c.score,
        landmarks,
    }
}

/// Every face in `plane`, as the reference cascade finds them (unsorted).
pub fn detect(nets: &Nets, plane: &Plane, config: &CascadeConfig) -> Vec<Detection> {
    detect_until(nets, plane, config, &|| false)
}

/// [`detect`], giving up (with no faces) as soon as `stop()` says so: it is asked before
/// each pyramid level and each stage, so abandoned work ends within one level.
pub fn detect_until(
    nets: &Nets,
    plane: &Plane,
    config: &CascadeConfig,
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<Detection> {
    if plane.width == 0 || plane.height == 0 {
        return Vec::new();
    }
    // Stage 1: P-Net over the pyramid, levels in parallel.
    let levels: Vec<Vec<Candidate>> = scales(plane.width, plane.height, config)
        .par_iter()
        .map(|&s| {
            if stop() {
                Vec::new()
            } else {
                pnet_level(nets, plane, s, config.thresholds[0])
            }
        })
        .collect();
    if stop() {
        return Vec::new();
    }
    let all: Vec<Candidate> = levels.into_iter().flatten().collect();
    let boxes: Vec<[f32; 4]> = nms(&all, 0.7, Overlap::Union)
        .into_iter()
        .map(|i| square(regress(&all[i], false)))
        .collect();
    if boxes.is_empty() {
        return Vec::new();
    }
    // Stage 2: R-Net on 24×24 crops.
    let (batch, kept) = crops(plane, &boxes, 24);
    if kept.is_empty() {
        return Vec::new();
    }
    let Ok(out) = nets.rnet.infer(&batch) else {
        return Vec::new();
    };
    let mut cands = Vec::new();
    for (row, &i) in out.outer_iter().zip(&kept) {
        let p = face_probability(row[0], row[1]);
        if p > config.thresholds[1] {
            cands.push(Candidate {
                bbox: boxes[i],
                score: p,
                reg: [row[2], row[3], row[4], row[5]],
            });
        }
    }
    let boxes: Vec<[f32; 4]> = nms(&cands, 0.7, Overlap::Union)
        .into_iter()
        .map(|i| square(regress(&cands[i], true)))
        .collect();
    if boxes.is_empty() {
        return Vec::new();
    }
    if stop() {
        return Vec::new();
    }
    // Stage 3: O-Net on 48×48 crops, with landmarks.
    let (batch, kept) = crops(plane, &boxes, 48);
    if kept.is_empty() {
        return Vec::new();
    }
    let Ok(out) = nets.onet.infer(&batch) else {
        return Vec::new();
    };
    let found: Vec<Detection> = out
        .outer_iter()
        .zip(&kept)
        .map(|(row, &i)| onet_detection(row, boxes[i]))
        .filter(|d| d.score > config.thresholds[2])
        .collect();
    let cands: Vec<Candidate> = found
        .iter()
        .map(|d| Candidate {
            bbox: d.bbox,
            score: d.score,
            reg: [0.0; 4],
        })
        .collect();
    nms(&cands, 0.7, Overlap::MinPlusOne)
        .into_iter()
        .map(|i| found[i])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(bbox: [f32; 4], score: f32) -> Candidate {
        Candidate {
            bbox,
            score,
            reg: [0.0; 4],
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_and_all_disjoint_ones() {
        let c = [
            cand([0.0, 0.0, 10.0, 10.0], 0.8),
            cand([1.0, 1.0, 11.0, 11.0], 0.9),
            cand([50.0, 50.0, 60.0, 60.0], 0.7),
        ];
        assert_eq!(nms(&c, 0.5, Overlap::Union), vec![1, 2]);
        // IoU of the first two is 81/119 ≈ 0.68: kept apart at 0.7.
        assert_eq!(nms(&c, 0.7, Overlap::Union), vec![1, 0, 2]);
        // A box inside another overlaps it fully by the smaller area.
        let nested = [
            cand([0.0, 0.0, 20.0, 20.0], 0.9),
            cand([5.0, 5.0, 9.0, 9.0], 0.95),
        ];
        assert_eq!(nms(&nested, 0.7, Overlap::MinPlusOne), vec![1]);
    }

    /// The reference implementation's settings, every level searched.
    fn reference_config() -> CascadeConfig {
        CascadeConfig {
            min_face_size: 20.0,
            factor: 0.709,
            thresholds: [0.6, 0.7, 0.7],
            smallest_window: 0.0,
        }
    }

    #[test]
    fn pyramid_follows_the_reference_rule() {
        let config = reference_config();
        let s = scales(250, 250, &config);
        // 250·0.6 = 150 ≥ 12, then × 0.709 while ≥ 12: 150, 106.4, …, 14.9 → 8 levels.
        assert_eq!(s.len(), 8);
        assert!((s[0] - 0.6).abs() < 1e-6);
        assert!(scales(19, 300, &config).is_empty());
    }

    #[test]
    fn levels_under_the_smallest_window_are_left_out_and_the_rest_keep_their_scales() {
        let mut config = reference_config();
        let all = scales(168, 192, &config);
        assert_eq!(all.len(), 7);
        // Windows of 20, 28.2 and 39.8 pixels are under 40.
        config.smallest_window = 40.0;
        assert_eq!(scales(168, 192, &config), all[3..]);
        config.smallest_window = 1000.0;
        assert!(scales(168, 192, &config).is_empty());
    }

    #[test]
    fn clipping_and_squaring_follow_the_reference() {
        assert_eq!(square([0.0, 0.0, 10.0, 4.0]), [0.0, -3.0, 10.0, 7.0]);
        assert_eq!(clip(&[-5.0, 2.7, 30.0, 8.0], 20, 20), Some((0, 1, 20, 8)));
        assert_eq!(clip(&[25.0, 2.0, 30.0, 8.0], 20, 20), None);
    }
}
