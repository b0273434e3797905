//! Does a stored calibration keep its promise? On identities the model and its
//! calibration never saw, galleries of `N` identities (each enrolling `k` faces) are
//! drawn; every photo of every identity outside the gallery is a stranger. At the
//! threshold the impostor tail gives for a target FAR and `N`, the measured open-set FAR
//! is the fraction of strangers whose best identity reaches it; DIR is the fraction of
//! the enrolled identities' other photos whose best identity is their own and reaches
//! it. The same is measured at the model's fixed one-comparison threshold for that FAR
//! (the decision before gallery-size-aware thresholds).

use std::fmt::Write as _;
use std::path::Path;

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::error::{EvalError, Result};
use super::plot::{Axes, Series, lines_with};
use super::protocol::{MeanStd, mean_std};
use super::scores::normalised;
use super::tail::by_identity;
use crate::model::{TailModel, Thresholds};

/// What to draw.
#[derive(Debug, Clone)]
pub struct PromiseConfig {
    pub fars: Vec<f64>,
    /// Faces enrolled per gallery identity.
    pub enroll: usize,
    pub draws: usize,
    pub seed: u64,
}

/// One (target FAR, gallery size) cell.
#[derive(Debug, Clone, Serialize)]
pub struct PromiseRow {
    pub far: f64,
    pub gallery_size: usize,
    /// The tail's threshold for `far` at this size.
    pub threshold: f64,
    /// Measured open-set FAR over draws (mean ± std, min, max).
    pub measured: MeanStd,
    pub measured_min: f64,
    pub measured_max: f64,
    /// `measured.mean / far`.
    pub ratio: f64,
    /// Correct-and-accepted rate of the enrolled identities' other photos.
    pub dir: MeanStd,
    /// The model's fixed threshold for this FAR, and the FAR and DIR measured at it.
    pub fixed_threshold: f64,
    pub fixed_far: MeanStd,
    pub fixed_dir: MeanStd,
    pub strangers: usize,
    pub genuine: usize,
}

/// Gallery sizes 5, 10, 20, 50, 100, 200, 500, … up to `max` (which is included).
pub fn gallery_sizes(max: usize) -> Vec<usize> {
    let mut sizes: Vec<usize> = [1usize, 2, 5]
        .iter()
        .flat_map(|&m| (0..7).map(move |e| m * 10usize.pow(e)))
        .filter(|&n| (5..max).contains(&n))
        .collect();
    sizes.sort_unstable();
    if max >= 5 {
        sizes.push(max);
    }
    sizes
}

/// The fixed one-comparison threshold a model file carries for `far` (its nearest).
fn fixed_for(stored: &Thresholds, far: f64) -> f64 {
    f64::from(if far >= 0.1 {
        stored.far_10pct
    } else if far >= 0.01 {
        stored.far_1pct
    } else {
        stored.far_0_1pct
    })
}

/// One draw's best score and best identity for every probe.
struct Drawn {
    /// Per stranger photo: best score over the gallery.
    strangers: Vec<f32>,
    /// Per genuine photo: (best score, whether the best identity is its own).
    genuine: Vec<(f32, bool)>,
}

fn draw(
    sims: &Array2<f32>,
    groups: &[Vec<usize>],
    labels: &[usize],
    gallery: &[usize],
    enroll: usize,
    rng: &mut ChaCha8Rng,
) -> Drawn {
    let mut enrolled: Vec<(usize, Vec<usize>)> = Vec::with_capacity(gallery.len());
    let mut is_probe_of = vec![None; labels.len()];
    let mut in_gallery = vec![false; labels.len()];
    for &g in gallery {
        let mut rows = groups[g].clone();
        rows.shuffle(rng);
        for &r in &rows {
            in_gallery[r] = true;
        }
        for &r in &rows[enroll..] {
            is_probe_of[r] = Some(g);
        }
        rows.truncate(enroll);
        enrolled.push((g, rows));
    }
    let mut out = Drawn {
        strangers: Vec::new(),
        genuine: Vec::new(),
    };
    for p in 0..labels.len() {
        let enrolled_face = in_gallery[p] && is_probe_of[p].is_none();
        if enrolled_face {
            continue;
        }
        let (mut best, mut who) = (f32::NEG_INFINITY, usize::MAX);
        for (g, rows) in &enrolled {
            let s = rows
                .iter()
                .map(|&r| sims[[r, p]])
                .fold(f32::NEG_INFINITY, f32::max);
            if s > best {
                (best, who) = (s, *g);
            }
        }
        match is_probe_of[p] {
            Some(own) => out.genuine.push((best, who == own)),
            None => out.strangers.push(best),
        }
    }
    out
}

/// Measured against promised, for each target FAR and gallery size the data allow
/// (galleries of identities with more than `enroll` photos, at most half of all).
pub fn check_promise(
    embeddings: ArrayView2<f32>,
    labels: &[usize],
    tail: &TailModel,
    stored: &Thresholds,
    cfg: &PromiseConfig,
) -> Result<Vec<PromiseRow>> {
    if embeddings.nrows() != labels.len() {
        return Err(EvalError::mismatch(
            "labels",
            format!("{} (one per row)", embeddings.nrows()),
            labels.len(),
        ));
    }
    let groups = by_identity(labels);
    // by_identity drops empty labels: relabel rows by group index.
    let mut group_of = vec![0; labels.len()];
    for (g, rows) in groups.iter().enumerate() {
        for &r in rows {
            group_of[r] = g;
        }
    }
    let eligible: Vec<usize> = (0..groups.len())
        .filter(|&g| groups[g].len() > cfg.enroll)
        .collect();
    // At least half of the identities stay strangers, so every size has enough of them.
    let sizes = gallery_sizes(eligible.len().min(groups.len() / 2));
    if sizes.is_empty() {
        return Err(EvalError::Invalid(format!(
            "{} identities with more than {} photos: at least 5 are needed",
            eligible.len(),
            cfg.enroll
        )));
    }
    let x = normalised(embeddings, "embeddings")?;
    let sims = x.dot(&x.t());
    let mut rows = Vec::new();
    for &n in &sizes {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ (n as u64).wrapping_mul(0x9E37));
        let draws: Vec<Drawn> = (0..cfg.draws)
            .map(|_| {
                let mut pool = eligible.clone();
                pool.shuffle(&mut rng);
                pool.truncate(n);
                draw(&sims, &groups, &group_of, &pool, cfg.enroll, &mut rng)
            })
            .collect();
        for &far in &cfg.fars {
            let t = tail.threshold(far, n, cfg.enroll);
            let fixed = fixed_for(stored, far);
            let rates = |t: f64| {
                let fars: Vec<f64> = draws.iter().map(|d| accepted(&d.strangers, t)).collect();
                let dirs: Vec<f64> = draws.iter().map(|d| identified(&d.genuine, t)).collect();
                (fars, dirs)
            };
            let (fars, dirs) = rates(t);
            let (fixed_fars, fixed_dirs) = rates(fixed);
            let measured = mean_std(fars.iter().copied());
            rows.push(PromiseRow {
                far,
                gallery_size: n,
                threshold: t,
                ratio: measured.mean / far,
                measured_min: fars.iter().copied().fold(f64::INFINITY, f64::min),
                measured_max: fars.iter().copied().fold(0.0, f64::max),
                measured,
                dir: mean_std(dirs.into_iter()),
                fixed_threshold: fixed,
                fixed_far: mean_std(fixed_fars.into_iter()),
                fixed_dir: mean_std(fixed_dirs.into_iter()),
                strangers: draws.first().map_or(0, |d| d.strangers.len()),
                genuine: draws.first().map_or(0, |d| d.genuine.len()),
            });
        }
    }
    Ok(rows)
}

fn accepted(strangers: &[f32], t: f64) -> f64 {
    let n = strangers.iter().filter(|&&s| f64::from(s) >= t).count();
    n as f64 / strangers.len().max(1) as f64
}

fn identified(genuine: &[(f32, bool)], t: f64) -> f64 {
    let n = genuine
        .iter()
        .filter(|&&(s, own)| own && f64::from(s) >= t)
        .count();
    n as f64 / genuine.len().max(1) as f64
}

/// The rows as CSV, one line per (FAR, gallery size).
pub fn promise_csv(rows: &[PromiseRow]) -> String {
    let mut out = String::from(
        "far,gallery_size,threshold,measured_far_mean,measured_far_std,measured_far_min,\
         measured_far_max,ratio,dir_mean,dir_std,fixed_threshold,fixed_far_mean,fixed_dir_mean,\
         strangers,genuine\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{:.4},{:.5},{:.5},{:.5},{:.5},{:.3},{:.4},{:.4},{:.4},{:.5},{:.4},{},{}",
            r.far,
            r.gallery_size,
            r.threshold,
            r.measured.mean,
            r.measured.std,
            r.measured_min,
            r.measured_max,
            r.ratio,
            r.dir.mean,
            r.dir.std,
            r.fixed_threshold,
            r.fixed_far.mean,
            r.fixed_dir.mean,
            r.strangers,
            r.genuine
        );
    }
    out
}

/// Promised and measured FAR (log₁₀) against gallery size (log₁₀), per target FAR; a
/// measured mean of 0 is drawn at the floor 1e-5.
pub fn write_promise_png(path: &Path, rows: &[PromiseRow]) -> Result<()> {
    let mut fars: Vec<f64> = rows.iter().map(|r| r.far).collect();
    fars.sort_by(f64::total_cmp);
    fars.dedup();
    let mut series = Vec::new();
    for far in fars {
        let of = |f: &dyn Fn(&PromiseRow) -> f64| -> Vec<(f64, f64)> {
            rows.iter()
                .filter(|r| r.far == far)
                .map(|r| ((r.gallery_size as f64).log10(), f(r).max(1e-5).log10()))
                .collect()
        };
        series.push(Series::new(format!("promised {far}"), of(&|r| r.far)));
        series.push(Series::new(
            format!("measured {far}"),
            of(&|r| r.measured.mean),
        ));
        series.push(Series::new(
            format!("fixed threshold {far}"),
            of(&|r| r.fixed_far.mean),
        ));
    }
    let axes = Axes {
        x_label: "log10 gallery size".into(),
        y_label: "log10 FAR".into(),
    };
    lines_with(path, "Open-set FAR by gallery size", &axes, &series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::tail::{fit_tail, impostor_scores};
    use rand::Rng;
    use rand_distr::StandardNormal;

    /// `identities` people, each a random direction in 16-d with `photos` noisy photos.
    fn people(identities: usize, photos: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let dim = 16;
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for id in 0..identities {
            let centre: Vec<f32> = (0..dim).map(|_| rng.sample(StandardNormal)).collect();
            for _ in 0..photos {
                rows.extend(
                    centre
                        .iter()
                        .map(|c| c + 0.5 * rng.sample::<f32, _>(StandardNormal)),
                );
                labels.push(id);
            }
        }
        let x = Array2::from_shape_vec((labels.len(), dim), rows).expect("shape");
        (x, labels)
    }

    #[test]
    fn a_tail_fitted_on_some_people_keeps_its_promise_on_others() {
        let (calibration, calibration_labels) = people(600, 3, 1);
        let scores = impostor_scores(calibration.view(), &calibration_labels, 1, 0).unwrap();
        let tail = fit_tail(&[scores], serde_json::Value::Null).unwrap();
        // As many held-out people as calibration ones: with half as many, the largest
        // gallery left 450 stranger photos and one population's make-up moved the
        // measured FAR by a third.
        let (held_out, labels) = people(600, 3, 2);
        let stored = Thresholds {
            far_0_1pct: 0.9,
            far_1pct: 0.8,
            far_10pct: 0.7,
        };
        let cfg = PromiseConfig {
            fars: vec![0.01],
            enroll: 1,
            draws: 20,
            seed: 3,
        };
        // The point estimate keeps the promise to within 1.5× either way ...
        let point = TailModel {
            upper: None,
            ..tail.clone()
        };
        let rows = check_promise(held_out.view(), &labels, &point, &stored, &cfg).unwrap();
        let sizes: Vec<usize> = rows.iter().map(|r| r.gallery_size).collect();
        assert_eq!(sizes, vec![5, 10, 20, 50, 100, 200, 300]);
        for r in &rows {
            assert!(
                r.ratio > 1.0 / 1.5 && r.ratio < 1.5,
                "gallery {}: measured {:.4} for a promise of {}",
                r.gallery_size,
                r.measured.mean,
                r.far
            );
            assert!(r.dir.mean > 0.0 && r.dir.mean <= 1.0);
        }
        // Thresholds rise with the gallery.
        assert!(rows.windows(2).all(|w| w[1].threshold > w[0].threshold));
        // ... and the upper bound errs on the strict side of it: never a lower threshold,
        // never more than the promise's 1.5×.
        let bounded = check_promise(held_out.view(), &labels, &tail, &stored, &cfg).unwrap();
        for (b, p) in bounded.iter().zip(&rows) {
            assert!(b.threshold >= p.threshold, "{b:?} vs {p:?}");
            assert!(
                b.ratio < 1.5,
                "gallery {}: ratio {:.2}",
                b.gallery_size,
                b.ratio
            );
        }
    }

    #[test]
    fn sizes_run_from_5_to_the_largest_the_data_allow() {
        assert_eq!(gallery_sizes(4), Vec::<usize>::new());
        assert_eq!(gallery_sizes(5), vec![5]);
        assert_eq!(gallery_sizes(230), vec![5, 10, 20, 50, 100, 200, 230]);
    }
}
