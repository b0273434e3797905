//! Pair verification over folds, as in the LFW protocol: each fold's accuracy is measured
//! at the threshold that maximises the accuracy on the *other* folds, so no fold chooses
//! its own threshold.
//!
//! A pair is accepted ("same person") when its score is `≥ t`. Candidate thresholds lie
//! midway between consecutive distinct scores of the other folds, below the lowest and
//! above the highest; of several that maximise the accuracy, the lowest is chosen. A
//! pair without a score (no face found in one of its photos) is a wrong answer at every
//! threshold: it counts in every accuracy, and never changes which threshold is chosen.

use serde::{Deserialize, Serialize};

use super::error::{EvalError, Result};
use super::protocol::{MeanStd, mean_std};

/// One pair's cosine similarity (`None`: a face was not found), and whether its two
/// photos show the same person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    pub score: Option<f32>,
    pub same: bool,
}

/// One fold's accuracy at the threshold chosen on the other folds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FoldAccuracy {
    /// The fold's number in the pairs file (from 1).
    pub fold: usize,
    pub threshold: f32,
    pub accuracy: f64,
    pub pairs: usize,
}

/// Accuracy over folds: mean and sample standard deviation, and each fold's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldedAccuracy {
    pub accuracy: MeanStd,
    pub folds: Vec<FoldAccuracy>,
}

/// The score a pair without a face takes in pooled metrics (TAR@FAR, EER, ROC): below
/// every cosine similarity, so every threshold they calibrate rejects it — a genuine pair
/// is a false reject, an impostor pair a true reject (the "generalised" rates of
/// ISO/IEC 19795-1, where a failure to acquire is a rejection).
pub const NO_FACE_SCORE: f32 = -2.0;

/// The genuine and the impostor scores of `pairs`, [`NO_FACE_SCORE`] for a pair
/// without a face.
pub fn genuine_and_impostor<'a>(
    pairs: impl IntoIterator<Item = &'a ScoredPair>,
) -> (Vec<f32>, Vec<f32>) {
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for p in pairs {
        let s = p.score.unwrap_or(NO_FACE_SCORE);
        if p.same {
            genuine.push(s);
        } else {
            impostor.push(s);
        }
    }
    (genuine, impostor)
}

/// The fraction of `pairs` answered right at threshold `t`.
pub fn accuracy_at(pairs: &[ScoredPair], t: f32) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let right = pairs
        .iter()
        .filter(|p| p.score.is_some_and(|s| (s >= t) == p.same))
        .count();
    right as f64 / pairs.len() as f64
}

/// The lowest threshold of highest accuracy on `pairs` (see the module documentation);
/// an error when no pair has a finite score.
pub fn best_threshold<'a>(pairs: impl IntoIterator<Item = &'a ScoredPair>) -> Result<f32> {
    let mut scored: Vec<(f32, bool)> = pairs
        .into_iter()
        .filter_map(|p| p.score.map(|s| (s, p.same)))
        .collect();
    if let Some((s, _)) = scored.iter().find(|(s, _)| !s.is_finite()) {
        return Err(EvalError::Invalid(format!("pair score {s} is not finite")));
    }
    if scored.is_empty() {
        return Err(EvalError::Invalid(
            "no scored pair to choose a threshold on".into(),
        ));
    }
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Below the lowest score every pair is accepted: the genuine ones are right.
    let mut right = scored.iter().filter(|(_, same)| *same).count() as i64;
    let mut best = (right, scored[0].0);
    let mut i = 0;
    while i < scored.len() {
        let value = scored[i].0;
        // Raising the threshold past `value` rejects every pair scoring it.
        while i < scored.len() && scored[i].0 == value {
            right += if scored[i].1 { -1 } else { 1 };
            i += 1;
        }
        let t = match scored.get(i) {
            Some(&(next, _)) => midway(value, next),
            None => value.next_up(),
        };
        if right > best.0 {
            best = (right, t);
        }
    }
    Ok(best.1)
}

/// A threshold strictly above `low` and at most `high` (`low < high`), midway if the
/// floats allow it.
fn midway(low: f32, high: f32) -> f32 {
    let mid = ((f64::from(low) + f64::from(high)) / 2.0) as f32;
    if mid > low { mid } else { high }
}

/// Each fold's accuracy at the threshold chosen on the others; `folds` are
/// `(number, pairs)`. Needs at least two folds.
pub fn folded_accuracy(folds: &[(usize, Vec<ScoredPair>)]) -> Result<FoldedAccuracy> {
    if folds.len() < 2 {
        return Err(EvalError::mismatch(
            "folds for threshold choice",
            "at least 2",
            folds.len(),
        ));
    }
    let per_fold = folds
        .iter()
        .enumerate()
        .map(|(i, (fold, pairs))| {
            let others = folds
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .flat_map(|(_, (_, p))| p);
            let threshold = best_threshold(others)?;
            Ok(FoldAccuracy {
                fold: *fold,
                threshold,
                accuracy: accuracy_at(pairs, threshold),
                pairs: pairs.len(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(FoldedAccuracy {
        accuracy: mean_std(per_fold.iter().map(|f| f.accuracy)),
        folds: per_fold,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(scored: &[(f32, bool)]) -> Vec<ScoredPair> {
        scored
            .iter()
            .map(|&(s, same)| ScoredPair {
                score: Some(s),
                same,
            })
            .collect()
    }

    #[test]
    fn perfectly_separable_folds_are_all_right() {
        let folds: Vec<(usize, Vec<ScoredPair>)> = (1..=3)
            .map(|f| {
                let shift = f as f32 * 0.01;
                let p = pairs(&[
                    (0.9 - shift, true),
                    (0.7 + shift, true),
                    (0.3 - shift, false),
                    (0.1 + shift, false),
                ]);
                (f, p)
            })
            .collect();
        let r = folded_accuracy(&folds).unwrap();
        assert_eq!(r.accuracy.mean, 1.0);
        assert_eq!(r.accuracy.std, 0.0);
        for f in &r.folds {
            assert!(f.threshold > 0.33 && f.threshold < 0.68, "{f:?}");
        }
    }

    #[test]
    fn a_hand_computed_case_and_a_pair_without_a_face() {
        // Fold 1: G 0.9, G 0.4, I 0.5, I 0.1. Fold 2: G 0.8, G 0.6, I 0.3, I 0.2, and a
        // genuine pair without a face.
        // Fold 2 alone separates at 0.45 (midway 0.3–0.6): fold 1 gets 0.9 ✓ 0.4 ✗ 0.5 ✗
        // 0.1 ✓ = 2/4. Fold 1 alone: right answers by threshold 2, 3 (t = 0.25), 2
        // (0.45), 3 (0.7), 2: the lowest best is 0.25; fold 2 gets 0.8 ✓ 0.6 ✓ 0.3 ✗
        // 0.2 ✓ and the faceless pair ✗ = 3/5.
        let mut fold2 = pairs(&[(0.8, true), (0.6, true), (0.3, false), (0.2, false)]);
        fold2.push(ScoredPair {
            score: None,
            same: true,
        });
        let folds = vec![
            (
                1,
                pairs(&[(0.9, true), (0.4, true), (0.5, false), (0.1, false)]),
            ),
            (2, fold2),
        ];
        let r = folded_accuracy(&folds).unwrap();
        assert!((r.folds[0].threshold - 0.45).abs() < 1e-6, "{r:?}");
        assert!((r.folds[1].threshold - 0.25).abs() < 1e-6, "{r:?}");
        assert_eq!(r.folds[0].accuracy, 0.5);
        assert_eq!(r.folds[1].accuracy, 0.6);
        assert_eq!((r.folds[0].pairs, r.folds[1].pairs), (4, 5));
        assert!((r.accuracy.mean - 0.55).abs() < 1e-12);
        let std = (2.0 * 0.05f64.powi(2)).sqrt(); // sample std of 0.5 and 0.6
        assert!((r.accuracy.std - std).abs() < 1e-12, "{r:?}");
    }

    #[test]
    fn ties_move_together_and_extreme_thresholds_are_reachable() {
        // All impostors: reject everything, above the highest score.
        let t = best_threshold(&pairs(&[(0.2, false), (0.4, false)])).unwrap();
        assert!(t > 0.4);
        // All genuine: accept everything, at the lowest score.
        let t = best_threshold(&pairs(&[(0.2, true), (0.4, true)])).unwrap();
        assert_eq!(t, 0.2);
        // A genuine and an impostor at the same score cannot be split: 2 of 3 at best.
        let p = pairs(&[(0.5, true), (0.5, false), (0.9, true)]);
        assert!((accuracy_at(&p, best_threshold(&p).unwrap()) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn too_few_folds_or_no_scores_are_errors() {
        assert!(folded_accuracy(&[(1, pairs(&[(0.5, true)]))]).is_err());
        let faceless = [ScoredPair {
            score: None,
            same: true,
        }];
        assert!(best_threshold(&faceless).is_err());
        assert!(best_threshold(&pairs(&[(f32::NAN, true)])).is_err());
    }
}
