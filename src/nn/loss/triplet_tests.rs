use super::*;
use ndarray::{ArrayD, IxDyn};

/// Four 1-D embeddings: identity 0 at 0 and 1, identity 1 at 1.5 and 4. Euclidean
/// distances: d01 = 1, d02 = 1.5, d03 = 4, d12 = 0.5, d13 = 3, d23 = 2.5.
fn line() -> (Tensor, Vec<usize>) {
    let x = ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![0.0, 1.0, 1.5, 4.0]).unwrap();
    (x, vec![0, 0, 1, 1])
}

fn run(mining: Mining, distance: Distance, margin: f32) -> EmbeddingLoss {
    let (x, labels) = line();
    triplet_loss(
        &x,
        &labels,
        &TripletConfig {
            margin,
            distance,
            mining,
            soft: false,
        },
    )
    .unwrap()
}

fn assert_loss(out: &EmbeddingLoss, value: f32, terms: usize, active: usize) {
    let s = out.stats;
    assert!(
        (out.output.value - value).abs() < 1e-5,
        "loss {} ≠ {value}",
        out.output.value
    );
    assert_eq!((s.terms, s.active), (terms, active), "{s:?}");
    assert!((s.fraction_active - active as f32 / terms as f32).abs() < 1e-7);
}

#[test]
fn all_triplets_average_over_the_active_ones() {
    // (a,p,n) → ℓ with m = 1: (0,1,2) 0.5, (0,1,3) −2, (1,0,2) 1.5, (1,0,3) −1,
    // (2,3,0) 2, (2,3,1) 3, (3,2,0) −0.5, (3,2,1) 0.5 → 5 active, sum 7.5, E = 1.5
    assert_loss(&run(Mining::All, Distance::Euclidean, 1.0), 1.5, 8, 5);
}

#[test]
fn batch_hard_takes_the_nearest_negative_per_anchor() {
    // anchors 0..3: nearest negatives 2, 2, 1, 1 → ℓ = 0.5, 1.5, 3, 0.5; E = 5.5/4
    assert_loss(
        &run(Mining::BatchHard, Distance::Euclidean, 1.0),
        1.375,
        4,
        4,
    );
}

#[test]
fn semi_hard_takes_the_nearest_farther_negative_or_falls_back_to_the_farthest() {
    // (0,1): negatives farther than 1 are 2 (1.5) and 3 (4) → 2, ℓ = 0.5
    // (1,0): only 3 (3) is farther → ℓ = 1 − 3 + 1 < 0
    // (2,3): none farther than 2.5 → the farthest negative, 0 (1.5): ℓ = 2
    // (3,2): both farther → 1 (3): ℓ = 0.5; E = 3/4 over all 4 pairs
    assert_loss(&run(Mining::SemiHard, Distance::Euclidean, 1.0), 0.75, 4, 3);
}

#[test]
fn squared_distance_compares_squared_lengths_with_the_margin() {
    // squared: d01 = 1, d02 = 2.25, d03 = 16, d12 = 0.25, d13 = 9, d23 = 6.25
    // batch-hard ℓ: −0.25, 1.75, 7, −1.75 → E = 8.75/4
    let out = run(Mining::BatchHard, Distance::Squared, 1.0);
    assert_loss(&out, 2.1875, 4, 2);
    assert_eq!(out.stats.mean_positive, Some(3.625));
}

#[test]
fn stats_report_mean_positive_and_negative_distances() {
    let s = run(Mining::All, Distance::Euclidean, 1.0).stats;
    let (pos, neg) = (s.mean_positive.unwrap(), s.mean_negative.unwrap());
    assert!(
        (pos - 1.75).abs() < 1e-5 && (neg - 2.25).abs() < 1e-5,
        "{s:?}"
    );
}

#[test]
fn a_satisfied_margin_gives_zero_loss_and_gradient() {
    // two tight, far-apart clusters: every triplet satisfies a margin of 1
    let x = ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![0.0, 0.1, 10.0, 10.2]).unwrap();
    for mining in [Mining::All, Mining::BatchHard, Mining::SemiHard] {
        let cfg = TripletConfig {
            margin: 1.0,
            distance: Distance::Euclidean,
            mining,
            soft: false,
        };
        let out = triplet_loss(&x, &[0, 0, 1, 1], &cfg).unwrap();
        assert_eq!(out.output.value, 0.0, "{mining:?}");
        assert_eq!(out.stats.active, 0);
        assert!(out.output.grad.iter().all(|&g| g == 0.0));
    }
}

#[test]
fn coincident_embeddings_give_a_finite_gradient() {
    let x = ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![1.0, 1.0, 1.0, 1.0, 1.0, 1.0]).unwrap();
    let out = triplet_loss(&x, &[0, 0, 1], &TripletConfig::default()).unwrap();
    assert!((out.output.value - 0.2).abs() < 1e-5);
    assert!(out.output.grad.iter().all(|g| g.is_finite()));
}

#[test]
fn batches_without_a_valid_triplet_are_errors() {
    let x = Tensor::zeros(IxDyn(&[3, 2]));
    let cfg = TripletConfig::default();
    for (labels, why) in [
        (vec![5, 5, 5], "one identity"),
        (vec![1, 2, 3], "no positive pair"),
    ] {
        let err = triplet_loss(&x, &labels, &cfg).unwrap_err().to_string();
        assert!(err.contains("no valid triplet"), "{why}: {err}");
    }
}

#[test]
fn bad_shapes_and_margins_are_errors() {
    let cfg = TripletConfig::default();
    let cases: [(Tensor, Vec<usize>, &str); 3] = [
        (
            Tensor::zeros(IxDyn(&[3, 2])),
            vec![0, 0],
            "3 rows but 2 labels",
        ),
        (Tensor::zeros(IxDyn(&[4])), vec![0, 0, 1, 1], "(N, K)"),
        (Tensor::zeros(IxDyn(&[0, 2])), vec![], "N ≥ 1"),
    ];
    for (x, labels, expect) in cases {
        let err = triplet_loss(&x, &labels, &cfg).unwrap_err().to_string();
        assert!(err.contains(expect), "expected '{expect}' in '{err}'");
    }
    let (x, labels) = line();
    let negative = TripletConfig {
        margin: -0.1,
        ..cfg
    };
    assert!(triplet_loss(&x, &labels, &negative).is_err());
}

#[test]
fn config_parses_from_toml() {
    let cfg: TripletConfig =
        toml::from_str("margin = 0.3\ndistance = 'squared'\nmining = 'semi_hard'").unwrap();
    assert_eq!(
        cfg,
        TripletConfig {
            margin: 0.3,
            distance: Distance::Squared,
            mining: Mining::SemiHard,
            soft: false,
        }
    );
    assert!(toml::from_str::<TripletConfig>("mining = 'hardest'").is_err());
}

#[test]
fn soft_margin_is_the_softplus_of_the_hinge_argument_and_never_stops_pulling() {
    // two tight, far-apart clusters: the hinge at margin 1 is satisfied everywhere
    let x = ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![0.0, 0.1, 10.0, 10.2]).unwrap();
    let labels = [0, 0, 1, 1];
    let soft = |mining, margin| TripletConfig {
        margin,
        distance: Distance::Euclidean,
        mining,
        soft: true,
    };
    let out = triplet_loss(&x, &labels, &soft(Mining::BatchHard, 1.0)).unwrap();
    // anchors 0, 1: D(a, p) 0.1, nearest negatives 10 and 9.9; anchors 2, 3: D(a, p)
    // 0.2, nearest negatives 9.9 and 10.1
    let expected: f64 = [
        0.1 - 10.0 + 1.0,
        0.1 - 9.9 + 1.0,
        0.2 - 9.9 + 1.0,
        0.2 - 10.1 + 1.0,
    ]
    .iter()
    .map(|z: &f64| z.exp().ln_1p())
    .sum::<f64>()
        / 4.0;
    assert!(
        (f64::from(out.output.value) - expected).abs() < 1e-6,
        "{} vs {expected}",
        out.output.value
    );
    assert_eq!((out.stats.terms, out.stats.active), (4, 0));
    // still pulls each cluster together (a step along −g moves 0 and 1 towards each
    // other, and 2 and 3), where the hinge's gradient is zero
    let g = &out.output.grad;
    assert!(g[[0, 0]] < 0.0 && g[[1, 0]] > 0.0, "{g}");
    assert!(g[[2, 0]] < 0.0 && g[[3, 0]] > 0.0, "{g}");
    // margin 0 is allowed, huge arguments neither overflow nor lose the linear part
    let far = ArrayD::from_shape_vec(IxDyn(&[4, 1]), vec![0.0, 1000.0, 1.0, 2.0]).unwrap();
    for mining in [Mining::All, Mining::BatchHard, Mining::SemiHard] {
        let out = triplet_loss(&far, &labels, &soft(mining, 0.0)).unwrap();
        assert!(
            out.output.value.is_finite() && out.output.value > 100.0,
            "{mining:?}"
        );
        assert!(out.output.grad.iter().all(|g| g.is_finite()));
    }
}
