//! The open-set protocol on synthetic embeddings, the classical baselines on the
//! committed fixture faces, and the report files.

use std::path::Path;

use faceprint::data::{ImageFolder, NormalisationKind, PreprocessingSpec};
use faceprint::eval::baselines::flatten;
use faceprint::eval::plot::{Series, lines};
use faceprint::eval::report::{write_json, write_roc_png};
use faceprint::eval::{
    Eigenfaces, Fisherfaces, IdentityScores, ProtocolConfig, ProtocolReport, RawPixels,
    open_set_protocol, rank1,
};
use ndarray::{Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `ids` identities × `per` images in 16-D: a random centre per identity plus noise.
fn clusters(ids: usize, per: usize, noise: f32, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let centres = Array2::from_shape_fn((ids, 16), |_| rng.random_range(-1.0f32..1.0));
    let x = Array2::from_shape_fn((ids * per, 16), |(i, j)| {
        centres[[i / per, j]] + noise * rng.random_range(-1.0f32..1.0)
    });
    (x, (0..ids * per).map(|i| i / per).collect())
}

#[test]
fn protocol_separates_clusters_and_not_noise() {
    let config = ProtocolConfig {
        enroll: 3,
        rounds: 4,
        ..ProtocolConfig::default()
    };
    let (x, labels) = clusters(20, 6, 0.1, 1);
    let good = open_set_protocol(x.view(), &labels, &config).expect("protocol");
    assert_eq!(good.rounds.len(), 4);
    let r = &good.rounds[0];
    assert_eq!((r.known_identities, r.unknown_identities), (10, 10));
    assert_eq!(
        (r.enrolled_images, r.known_probes, r.unknown_probes),
        (30, 30, 60)
    );
    assert_eq!(good.rank1.mean, 1.0);
    assert!(good.dir_at_far[1].mean > 0.9, "{good}");
    assert!(good.eer.mean < 0.05, "{good}");

    let (noise, labels) = clusters(20, 6, 0.0, 2);
    let noise = noise.mapv(|_| 0.0) + &clusters(1, 120, 1.0, 3).0;
    let bad = open_set_protocol(noise.view(), &labels, &config).expect("protocol");
    // Chance rank-1 among 10 enrolled identities is 0.1.
    assert!(bad.rank1.mean < 0.4, "{bad}");
    assert!(bad.eer.mean > 0.25, "{bad}");
}

#[test]
fn protocol_rounds_are_seeded_and_summarised() {
    let (x, labels) = clusters(12, 5, 0.8, 4);
    let config = ProtocolConfig::default();
    let a = open_set_protocol(x.view(), &labels, &config).expect("protocol");
    let b = open_set_protocol(x.view(), &labels, &config).expect("protocol");
    assert_eq!(a, b);
    let c = open_set_protocol(
        x.view(),
        &labels,
        &ProtocolConfig {
            seed: 9,
            ..config.clone()
        },
    )
    .expect("protocol");
    assert_ne!(a.rounds, c.rounds);
    let ranks: Vec<f64> = a.rounds.iter().map(|r| r.rank1).collect();
    let mean = ranks.iter().sum::<f64>() / ranks.len() as f64;
    let var = ranks.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (ranks.len() - 1) as f64;
    assert!((a.rank1.mean - mean).abs() < 1e-12);
    assert!((a.rank1.std - var.sqrt()).abs() < 1e-12);
    assert_eq!(a.open_set_thresholds.len(), 3);
    assert!(
        a.open_set_thresholds
            .windows(2)
            .all(|w| w[0].threshold >= w[1].threshold)
    );
    let one = vec![0; 60];
    assert!(
        open_set_protocol(x.view(), &one, &config).is_err(),
        "one identity"
    );
}

/// Closed-set rank-1 of `embed` fitted on 3 images per fixture identity and probed
/// with the other 2, gallery = the 3 training images.
fn fixture_rank1(
    embed: impl Fn(ArrayView2<f32>) -> Array2<f32>,
    x: &Array2<f32>,
    labels: &[usize],
) -> f64 {
    let (train, test): (Vec<usize>, Vec<usize>) = (0..labels.len()).partition(|&i| i % 5 < 3);
    let pick = |rows: &[usize]| x.select(Axis(0), rows);
    let pick_labels = |rows: &[usize]| rows.iter().map(|&i| labels[i]).collect::<Vec<_>>();
    let scores = IdentityScores::compute(
        embed(pick(&train).view()).view(),
        &pick_labels(&train),
        embed(pick(&test).view()).view(),
    )
    .expect("scores");
    rank1(&scores, &pick_labels(&test)).expect("rank-1")
}

#[test]
fn fisherfaces_separate_fixture_identities_better_than_chance() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faces");
    let folder = ImageFolder::scan(root).expect("fixtures");
    let pre = PreprocessingSpec::new(28, 24, NormalisationKind::TanTriggs)
        .fit(folder.images())
        .expect("fit");
    let x = flatten(&pre.batch(folder.images()).expect("batch")).expect("flatten");
    let labels = folder.labels();
    let train: Vec<usize> = (0..labels.len()).filter(|&i| i % 5 < 3).collect();
    let fisher = Fisherfaces::fit(
        x.select(Axis(0), &train).view(),
        &train.iter().map(|&i| labels[i]).collect::<Vec<_>>(),
        None,
    )
    .expect("fit");
    assert_eq!(fisher.dim(), 7, "c − 1 for 8 identities");
    let fisher_rank1 = fixture_rank1(|v| fisher.embed(v).expect("embed"), &x, labels);
    let eigen = Eigenfaces::fit(x.select(Axis(0), &train).view(), 16).expect("fit");
    let eigen_rank1 = fixture_rank1(|v| eigen.embed(v).expect("embed"), &x, labels);
    let raw_rank1 = fixture_rank1(|v| RawPixels.embed(v).expect("embed"), &x, labels);
    println!(
        "fixture rank-1: fisherfaces {fisher_rank1}, eigenfaces {eigen_rank1}, raw {raw_rank1}"
    );
    // Chance is 1/8 = 0.125 over 16 probes.
    assert!(fisher_rank1 >= 0.5, "Fisherfaces rank-1 {fisher_rank1}");
    assert!(
        eigen_rank1 >= 0.5 && raw_rank1 >= 0.5,
        "{eigen_rank1} {raw_rank1}"
    );
    let wrong = Fisherfaces::fit(x.view(), &vec![0; x.nrows()], None);
    assert!(wrong.is_err(), "one identity");
}

#[test]
fn reports_are_written_as_json_and_png() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (x, labels) = clusters(10, 6, 0.5, 5);
    let report =
        open_set_protocol(x.view(), &labels, &ProtocolConfig::default()).expect("protocol");
    let json = dir.path().join("report.json");
    write_json(&json, &report).expect("json");
    let back: ProtocolReport =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("read")).expect("parse");
    assert_eq!(back, report);

    let png = dir.path().join("roc.png");
    write_roc_png(&png, &[("clusters", &report.roc)]).expect("png");
    let image = image::open(&png).expect("decode").to_rgb8();
    assert_eq!(image.dimensions(), (800, 500));
    let blue = image.pixels().filter(|p| p.0 == [31, 119, 180]).count();
    assert!(blue > 200, "the curve is drawn ({blue} pixels)");

    let curves = dir.path().join("loss.png");
    let series = [
        Series::new(
            "train loss",
            (0..30)
                .map(|e| (e as f64, 1.0 / (1.0 + e as f64)))
                .collect(),
        ),
        Series::new(
            "val rank-1",
            (0..30).map(|e| (e as f64, e as f64 / 30.0)).collect(),
        ),
    ];
    lines(&curves, "loss and validation", &series).expect("png");
    assert!(image::open(&curves).is_ok());
    assert!(lines(&dir.path().join("missing/x.png"), "t", &series).is_err());
}

#[test]
fn baseline_reports_run_on_a_held_out_half_of_the_fixtures() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faces");
    let folder = ImageFolder::scan(root).expect("fixtures");
    let (train, test) = folder
        .split(faceprint::data::SplitSize::Fraction(0.5), 1)
        .expect("split");
    let pre = PreprocessingSpec::new(28, 24, NormalisationKind::TanTriggs)
        .fit(train.images())
        .expect("fit");
    let config = ProtocolConfig {
        enroll: 3,
        ..ProtocolConfig::default()
    };
    let reports = faceprint::eval::baseline_reports(&train, &test, &pre, &config).expect("reports");
    let names: Vec<&str> = reports.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    for (name, report) in &reports {
        // 2 known identities with 2 probes each: rank-1 is a multiple of 1/4.
        assert_eq!(report.rounds.len(), 5, "{name}");
        assert!(
            (report.rank1.mean * 4.0 * 5.0).fract().abs() < 1e-9,
            "{name}: {report}"
        );
    }
}
