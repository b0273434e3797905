//! Finite-difference checks of every loss's input gradient.
//!
//! Central differences (E(x + h) − E(x − h)) / 2h per input element, against the
//! analytic gradient, through `nn::gradcheck::compare`. Inputs come from a seeded generator and are kept away from kinks:
//! every triplet's D(a,p) − D(a,n) + m, every pair's D − m, and every difference between
//! two distances from the same anchor is at least a gap from 0 that a step of h cannot
//! cross (a step moves a Euclidean distance by at most h, a squared one by at most
//! 2h‖xᵢ − xⱼ‖ + h²), so the mining picks the same triplets on both sides.

use ndarray::{ArrayD, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

use super::distance::Pairwise;
use super::*;
use crate::nn::Tensor;
use crate::nn::gradcheck::{Tolerance, compare};

const H: f32 = 2e-3;

/// Central differences with step h through the shared helper; an element fails when
/// |analytic − numeric| > 2e-3 · max(|numeric|, |analytic|) + 2e-4 (rounding the loss
/// value to f32 limits the quotient to about 1e-4). Every element is checked.
fn check_input_gradient(name: &str, x: &Tensor, f: impl Fn(&Tensor) -> Result<LossOutput>) {
    let analytic: Vec<f32> = f(x).unwrap().grad.iter().copied().collect();
    let tol = Tolerance {
        eps: H,
        rtol: 2e-3,
        atol: 2e-4,
        max_checks: usize::MAX,
    };
    let mut shifted = x.clone();
    let result = compare(name, &analytic, &tol, 0, |i, delta| {
        let Some(v) = shifted.iter_mut().nth(i) else {
            return f64::NAN;
        };
        let old = *v;
        *v = old + delta;
        let value = f(&shifted).map_or(f64::NAN, |out| f64::from(out.value));
        if let Some(v) = shifted.iter_mut().nth(i) {
            *v = old;
        }
        value
    });
    if let Err(report) = result {
        panic!("{report}");
    }
}

fn normal(rng: &mut ChaCha8Rng, shape: &[usize], scale: f32) -> Tensor {
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        scale * rng.sample::<f32, _>(StandardNormal)
    })
}

/// A P×K batch (3 identities × 3, dimension 4): identity centres plus noise.
fn clustered(seed: u64) -> (Tensor, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = normal(&mut rng, &[3, 4], 1.0);
    let labels: Vec<usize> = (0..9).map(|i| i / 3).collect();
    let noise = normal(&mut rng, &[9, 4], 0.6);
    let x = ArrayD::from_shape_fn(IxDyn(&[9, 4]), |ix| {
        centres[[labels[ix[0]], ix[1]]] + noise[[ix[0], ix[1]]]
    });
    (x, labels)
}

/// Whether no margin, mining comparison or tie is within reach of a step h.
fn away_from_kinks(x: &Tensor, labels: &[usize], distance: Distance, margin: f64) -> bool {
    let Ok(view) = x.view().into_dimensionality::<ndarray::Ix2>() else {
        return false;
    };
    let gap = match distance {
        Distance::Euclidean => 5.0 * f64::from(H),
        Distance::Squared => 20.0 * f64::from(H),
    };
    let d = Pairwise::new(view, distance).d;
    let n = labels.len();
    (0..n).all(|a| {
        (0..n).filter(|&i| i != a).all(|i| {
            (d[[a, i]] - margin).abs() > gap
                && (0..n).filter(|&j| j != a && j != i).all(|j| {
                    let diff = d[[a, i]] - d[[a, j]];
                    let m = if labels[i] == labels[a] && labels[j] != labels[a] {
                        margin
                    } else {
                        0.0
                    };
                    diff.abs() > gap && (diff + m).abs() > gap
                })
        })
    })
}

/// The first seeded batch that is away from kinks and where `mixed` holds (some terms
/// active, some not, …), so that every branch of the loss is exercised.
fn batch_for(
    distance: Distance,
    margin: f32,
    mixed: impl Fn(&Tensor, &[usize]) -> bool,
) -> (Tensor, Vec<usize>) {
    (0..500)
        .map(clustered)
        .find(|(x, l)| away_from_kinks(x, l, distance, f64::from(margin)) && mixed(x, l))
        .expect("a seed below 500 gives a batch away from kinks")
}

#[test]
fn softmax_cross_entropy_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let z = normal(&mut rng, &[5, 7], 2.0);
    let targets = [0, 6, 3, 3, 1];
    check_input_gradient("softmax_cross_entropy", &z, |z| {
        softmax_cross_entropy(z, &targets)
    });
}

#[test]
fn squared_error_gradient_matches_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (d, y) = (
        normal(&mut rng, &[4, 3], 1.0),
        normal(&mut rng, &[4, 3], 1.0),
    );
    check_input_gradient("squared_error", &d, |d| squared_error(d, &y));
}

#[test]
fn triplet_gradients_match_finite_differences_for_every_mining_and_distance() {
    for soft in [false, true] {
        for distance in [Distance::Euclidean, Distance::Squared] {
            let margin = match distance {
                Distance::Euclidean => 0.7,
                Distance::Squared => 1.5,
            };
            for mining in [Mining::All, Mining::BatchHard, Mining::SemiHard] {
                let cfg = TripletConfig {
                    margin,
                    distance,
                    mining,
                    soft,
                };
                let loss = |x: &Tensor, l: &[usize]| triplet_loss(x, l, &cfg);
                let (x, labels) = batch_for(distance, margin, |x, l| {
                    let Ok(out) = loss(x, l) else { return false };
                    let partly_active = out.stats.active > 0 && out.stats.active < out.stats.terms;
                    partly_active
                        && (mining != Mining::SemiHard || semi_hard_falls_back(x, l, distance))
                });
                let name = format!("triplet {mining:?} {distance:?} soft {soft}");
                check_input_gradient(&name, &x, |x| loss(x, &labels).map(|out| out.output));
            }
        }
    }
}

/// Whether some anchor–positive pair has every negative nearer than the positive, so
/// semi-hard mining takes its fallback there.
fn semi_hard_falls_back(x: &Tensor, labels: &[usize], distance: Distance) -> bool {
    let Ok(view) = x.view().into_dimensionality::<ndarray::Ix2>() else {
        return false;
    };
    let d = Pairwise::new(view, distance).d;
    let n = labels.len();
    (0..n).any(|a| {
        (0..n)
            .filter(|&p| p != a && labels[p] == labels[a])
            .any(|p| {
                (0..n)
                    .filter(|&k| labels[k] != labels[a])
                    .all(|k| d[[a, k]] < d[[a, p]])
            })
    })
}

#[test]
fn contrastive_gradients_match_finite_differences_for_both_weightings() {
    for weighting in [PairWeighting::AllPairs, PairWeighting::Balanced] {
        let cfg = ContrastiveConfig {
            margin: 2.0,
            weighting,
        };
        let loss = |x: &Tensor, l: &[usize]| contrastive_loss(x, l, &cfg);
        let (x, labels) = batch_for(Distance::Euclidean, cfg.margin, |x, l| {
            loss(x, l).is_ok_and(|out| out.stats.active < out.stats.terms)
        });
        let name = format!("contrastive {weighting:?}");
        check_input_gradient(&name, &x, |x| loss(x, &labels).map(|out| out.output));
    }
}
