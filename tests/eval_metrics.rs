//! Metrics and calibration on hand-made score sets whose answers are worked out in the
//! comments.

use faceprint::eval::{IdentityScores, calibrate, dir_at_far, eer, rank1, roc, tar_at_far};
use ndarray::{Array2, array};

/// Identities 0, 1, 2 enrolled; four known probes, four unknown (label 9).
fn hand_made() -> (IdentityScores, Vec<usize>) {
    let scores = array![
        [0.9, 0.2, 0.1],  // label 0: correct, 0.9
        [0.3, 0.7, 0.1],  // label 1: correct, 0.7
        [0.6, 0.1, 0.5],  // label 2: wrong (identity 0 wins)
        [0.4, 0.3, 0.2],  // label 0: correct, 0.4
        [0.65, 0.1, 0.0], // unknown, best 0.65
        [0.2, 0.5, 0.1],  // unknown, best 0.5
        [0.1, 0.0, 0.35], // unknown, best 0.35
        [0.2, 0.1, 0.0],  // unknown, best 0.2
    ];
    let ids = IdentityScores {
        identities: vec![0, 1, 2],
        scores,
    };
    (ids, vec![0, 1, 2, 0, 9, 9, 9, 9])
}

#[test]
fn rank1_counts_known_probes_only() {
    let (scores, labels) = hand_made();
    assert_eq!(rank1(&scores, &labels).expect("rank-1"), 0.75);
    let none_known = vec![9; 8];
    assert!(rank1(&scores, &none_known).is_err());
}

#[test]
fn dir_at_far_thresholds_on_unknown_probes() {
    let (scores, labels) = hand_made();
    let dir = dir_at_far(&scores, &labels, &[0.0, 0.25, 0.5]).expect("DIR");
    // FAR 0: t just above 0.65 → 0.9, 0.7 detected → 2/4.
    // FAR 0.25 (1 of 4 unknowns may pass): t just above 0.5 → 2/4.
    // FAR 0.5: t just above 0.35 → 0.9, 0.7, 0.4 → 3/4 (the wrong 0.6 never counts).
    let values: Vec<f64> = dir.iter().map(|d| d.value).collect();
    assert_eq!(values, [0.5, 0.5, 0.75]);
    assert_eq!(dir[1].threshold, 0.5f32.next_up());
}

#[test]
fn identity_score_is_the_best_enrolled_face() {
    let gallery = array![[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]];
    let probes = array![[0.6, 0.8], [-3.0, 0.0]];
    let s = IdentityScores::compute(gallery.view(), &[4, 4, 7], probes.view()).expect("scores");
    assert_eq!(s.identities, [4, 7]);
    let expected = array![[0.8, -0.6], [0.0, 1.0]];
    assert!(
        (&s.scores - &expected).iter().all(|d| d.abs() < 1e-6),
        "{:?}",
        s.scores
    );
    assert_eq!(s.top1(), [(4, s.scores[[0, 0]]), (7, s.scores[[1, 1]])]);
    let (genuine, impostor) = s.pairs(&[4, 9]);
    assert_eq!(genuine.len(), 1);
    assert_eq!(impostor.len(), 3);
    let zero = Array2::<f32>::zeros((1, 2));
    assert!(IdentityScores::compute(gallery.view(), &[4, 4, 7], zero.view()).is_err());
    assert!(IdentityScores::compute(gallery.view(), &[4, 4], probes.view()).is_err());
}

#[test]
fn calibration_picks_the_smallest_threshold_within_the_target() {
    let impostors = [0.9, 0.8, 0.8, 0.7, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0];
    let t = calibrate(&impostors, &[0.1, 0.2, 0.3, 0.05, 1.0]).expect("calibrate");
    // 0.1: one impostor may pass → just above 0.8.
    assert_eq!(t[0].threshold, 0.8f32.next_up());
    assert_eq!(t[0].far_measured, 0.1);
    // 0.2: two may pass, but the second and third tie at 0.8 → both rejected, FAR 0.1.
    assert_eq!(t[1].threshold, 0.8f32.next_up());
    assert_eq!(t[1].far_measured, 0.1);
    // 0.3: three pass (0.9, 0.8, 0.8) → just above 0.7.
    assert_eq!(t[2].threshold, 0.7f32.next_up());
    assert_eq!(t[2].far_measured, 0.3);
    // 0.05 cannot be resolved with 10 impostors: above every impostor.
    assert_eq!(t[3].threshold, 0.9f32.next_up());
    assert!(!t[3].resolvable && t[0].resolvable);
    // 1.0: everything may pass.
    assert_eq!(t[4].far_measured, 1.0);
    for th in &t {
        // Smallest: one f32 step lower breaks the target.
        let below = impostors
            .iter()
            .filter(|&&s| s >= th.threshold.next_down())
            .count();
        assert!(
            th.far_target >= 1.0 || below as f64 / 10.0 > th.far_target,
            "{th:?}"
        );
    }
    assert!(calibrate(&[], &[0.1]).is_err());
    assert!(calibrate(&[0.1, f32::NAN], &[0.1]).is_err());
    assert!(calibrate(&[0.1], &[1.5]).is_err());
}

#[test]
fn eer_and_tar_on_known_score_sets() {
    let genuine = [0.9, 0.8, 0.7, 0.4];
    let impostor = [0.5, 0.3, 0.2, 0.1];
    // At t = 0.5: FAR 1/4 (0.5), FRR 1/4 (0.4).
    assert_eq!(eer(&genuine, &impostor).expect("EER"), 0.25);
    assert_eq!(eer(&[0.9, 0.8], &[0.1, 0.2]).expect("EER"), 0.0);
    assert_eq!(eer(&[0.1, 0.2], &[0.9, 0.8]).expect("EER"), 1.0);
    let tar = tar_at_far(&genuine, &impostor, &[0.0, 0.25]).expect("TAR");
    // FAR 0: t above 0.5 → 3/4; FAR 0.25: t above 0.3 → 4/4.
    assert_eq!(tar[0].value, 0.75);
    assert_eq!(tar[1].value, 1.0);
}

#[test]
fn roc_is_monotone_from_zero_to_one() {
    let genuine: Vec<f32> = (0..50).map(|i| 0.3 + i as f32 / 100.0).collect();
    let impostor: Vec<f32> = (0..200).map(|i| i as f32 / 300.0).collect();
    let curve = roc(&genuine, &impostor, 40).expect("ROC");
    assert_eq!((curve[0].far, curve[0].tar), (0.0, 0.0));
    let last = curve.last().expect("points");
    assert_eq!((last.far, last.tar), (1.0, 1.0));
    for w in curve.windows(2) {
        assert!(w[1].far >= w[0].far && w[1].tar >= w[0].tar, "{w:?}");
        assert!(w[1].threshold < w[0].threshold);
    }
}
