//! Each preprocessing mode on the committed fixture faces: its defining property, its
//! output shape, and a bit-for-bit serde round trip.

use std::path::Path;

use faceprint::data::{
    ImageFolder, Normalisation, NormalisationKind, Preprocessing, PreprocessingSpec, TanTriggs,
};
use image::GrayImage;
use ndarray::{Array2, Axis};

fn fixture_images() -> Vec<GrayImage> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/faces");
    ImageFolder::scan(root).expect("fixtures").images().to_vec()
}

fn fit(kind: NormalisationKind, h: usize, w: usize, eps: f32) -> (Preprocessing, Vec<GrayImage>) {
    let images = fixture_images();
    let spec = PreprocessingSpec {
        whitening_eps: eps,
        ..PreprocessingSpec::new(h, w, kind)
    };
    (spec.fit(&images).expect("fit"), images)
}

/// Rows = flattened outputs of every image, `(N, D')`.
fn outputs(pre: &Preprocessing, images: &[GrayImage]) -> Array2<f32> {
    let batch = pre.batch(images).expect("batch");
    let n = batch.shape()[0];
    let d = batch.len() / n;
    batch.into_shape_with_order((n, d)).expect("flatten")
}

/// Population covariance of the rows, `(D, D)`, in f64.
fn covariance(x: &Array2<f32>) -> Array2<f64> {
    let x = x.mapv(f64::from);
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let c = &x - &mean;
    c.t().dot(&c) / x.nrows() as f64
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn resize_gives_the_model_size_in_the_unit_range() {
    let (pre, images) = fit(NormalisationKind::None, 56, 48, 0.01);
    for image in &images {
        let x = pre.resize(image).expect("resize");
        assert_eq!(x.dim(), (56, 48));
        assert!(x.iter().all(|v| (0.0..=1.0).contains(v)));
    }
    let batch = pre.batch(&images).expect("batch");
    assert_eq!(batch.shape(), [40, 1, 56, 48]);
}

#[test]
fn per_image_standardisation_gives_zero_mean_unit_std() {
    let (pre, images) = fit(NormalisationKind::PerImage, 56, 48, 0.01);
    for row in outputs(&pre, &images).outer_iter() {
        let mean = row.mean().expect("pixels");
        let std = row.std(0.0);
        assert!(mean.abs() < 1e-4, "mean {mean}");
        assert!((std - 1.0).abs() < 1e-3, "std {std}");
    }
}

#[test]
fn dataset_standardisation_gives_each_pixel_zero_mean_unit_std_on_the_training_set() {
    let (pre, images) = fit(NormalisationKind::Dataset, 56, 48, 0.01);
    let y = outputs(&pre, &images);
    let means = y.mean_axis(Axis(0)).expect("rows");
    let stds = y.std_axis(Axis(0), 0.0);
    assert!(
        means.iter().all(|m| m.abs() < 1e-3),
        "largest mean {:?}",
        means.iter().cloned().fold(0.0f32, f32::max)
    );
    assert!(
        stds.iter().all(|s| (s - 1.0).abs() < 1e-3),
        "a pixel std is not 1"
    );
}

#[test]
fn pca_whitening_has_identity_covariance_on_the_training_set() {
    let eps = 1e-6;
    let (pre, images) = fit(NormalisationKind::Pca, 56, 48, eps);
    let Normalisation::Pca(w) = &pre.normalisation else {
        panic!("PCA expected")
    };
    let k = w.components();
    assert!(k > 30 && k < images.len(), "K = {k} (rank ≤ N − 1 = 39)");
    assert_eq!(pre.output_shape(), (1, k));
    let y = outputs(&pre, &images);
    assert_eq!(y.ncols(), k);
    // Exactly diag(λ / (λ + ε)) = diag(1 − ε s²) with s = 1 / sqrt(λ + ε).
    let expected = Array2::from_diag(
        &w.scale
            .0
            .iter()
            .map(|&s| 1.0 - f64::from(eps * s * s))
            .collect::<ndarray::Array1<f64>>(),
    );
    let cov = covariance(&y);
    assert!(
        max_abs_diff(&cov, &expected) < 1e-2,
        "max |cov − diag| = {}",
        max_abs_diff(&cov, &expected)
    );
    assert!(
        expected.diag().iter().filter(|&&v| v > 0.9).count() > k / 2,
        "ε dominates"
    );
}

#[test]
fn zca_whitening_keeps_the_image_shape_and_whitens_the_training_set() {
    // 6×5 = 30 pixels < 40 images: the covariance path, full rank (K = D), so the
    // whitened covariance is Uᵀ diag(λ / (λ + ε)) U = Uᵀ diag(1 − ε s²) U ≈ I.
    let eps = 1e-6;
    let (pre, images) = fit(NormalisationKind::Zca, 6, 5, eps);
    assert_eq!(pre.output_shape(), (6, 5));
    let Normalisation::Zca(w) = &pre.normalisation else {
        panic!("ZCA expected")
    };
    assert_eq!(w.components(), 30, "full rank");
    let u = w
        .basis
        .0
        .view()
        .into_dimensionality::<ndarray::Ix2>()
        .expect("(K, D)")
        .mapv(f64::from);
    let shrink: ndarray::Array1<f64> = w
        .scale
        .0
        .iter()
        .map(|&s| 1.0 - f64::from(eps * s * s))
        .collect();
    let expected = u.t().dot(&Array2::from_diag(&shrink)).dot(&u);
    let cov = covariance(&outputs(&pre, &images));
    let diff = max_abs_diff(&cov, &expected);
    assert!(diff < 1e-3, "max |cov − Uᵀ diag(λ/(λ+ε)) U| = {diff}");
    let off_identity = max_abs_diff(&cov, &Array2::eye(30));
    assert!(off_identity < 0.1, "max |cov − I| = {off_identity}");
}

#[test]
fn zca_at_full_size_whitens_within_the_span_of_the_training_set() {
    // 2688 pixels, 40 images: the Gram path; on the training set y = Uᵀ diag(s) U (x − μ),
    // so its covariance is Uᵀ diag(1 − ε s²) U, whose trace is Σ (1 − ε s²).
    let eps = 1e-6;
    let (pre, images) = fit(NormalisationKind::Zca, 56, 48, eps);
    let Normalisation::Zca(w) = &pre.normalisation else {
        panic!("ZCA expected")
    };
    let y = outputs(&pre, &images);
    assert_eq!(y.ncols(), 56 * 48);
    let trace: f64 = covariance(&y).diag().sum();
    let expected: f64 = w
        .scale
        .0
        .iter()
        .map(|&s| 1.0 - f64::from(eps * s * s))
        .sum();
    assert!(
        (trace - expected).abs() < 0.05 * expected,
        "trace {trace}, expected {expected}"
    );
}

#[test]
fn tan_triggs_output_is_bounded_by_tau_and_ignores_global_brightness() {
    let (pre, images) = fit(NormalisationKind::TanTriggs, 56, 48, 0.01);
    for image in &images {
        let y = pre.apply_grey(image).expect("apply");
        assert!(y.iter().all(|v| v.is_finite() && v.abs() < 10.0));
        assert!(y.std(0.0) > 0.1, "flat output");
        let half = pre.resize(image).expect("resize").mapv(|v| v * 0.5);
        let y_half = pre.normalise(half).expect("normalise");
        let diff = (&y - &y_half)
            .iter()
            .map(|d| d.abs())
            .fold(0.0f32, f32::max);
        assert!(diff < 1e-3, "brightness changed the output by {diff}");
    }
}

#[test]
fn tan_triggs_parameters_are_fitted_as_given_and_checked() {
    let images = fixture_images();
    let wide = TanTriggs {
        sigma1: 4.0,
        ..TanTriggs::default()
    };
    let spec = |tan_triggs| PreprocessingSpec {
        tan_triggs,
        ..PreprocessingSpec::new(56, 48, NormalisationKind::TanTriggs)
    };
    let pre = spec(wide).fit(&images).expect("fit");
    assert_eq!(pre.normalisation, Normalisation::TanTriggs(wide));
    let paper = spec(TanTriggs::default()).fit(&images).expect("fit");
    let (a, b) = (outputs(&pre, &images), outputs(&paper, &images));
    assert!(
        a.iter().zip(&b).any(|(x, y)| (x - y).abs() > 0.1),
        "sigma1 changed nothing"
    );
    // A table that names one parameter keeps the paper's others.
    let parsed: TanTriggs = serde_json::from_str(r#"{"sigma1": 4.0}"#).expect("parse");
    assert_eq!(parsed, wide);
    for (bad, name) in [
        (
            TanTriggs {
                sigma1: 0.5,
                ..TanTriggs::default()
            },
            "sigma1",
        ),
        (
            TanTriggs {
                gamma: 0.0,
                ..TanTriggs::default()
            },
            "gamma",
        ),
        (
            TanTriggs {
                tau: f32::NAN,
                ..TanTriggs::default()
            },
            "tau",
        ),
    ] {
        let err = spec(bad).fit(&images).expect_err("out of range");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn serde_round_trip_reproduces_outputs_bit_for_bit() {
    use NormalisationKind::*;
    for kind in [None, PerImage, Dataset, Pca, Zca, TanTriggs] {
        let (pre, images) = fit(kind, 28, 24, 0.01);
        let json = serde_json::to_string(&pre).expect("serialise");
        let back: Preprocessing = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, pre, "{kind:?}");
        let a = outputs(&pre, &images);
        let b = outputs(&back, &images);
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{kind:?}"
        );
    }
}

#[test]
fn colour_and_greyscale_inputs_take_the_same_path() {
    let (pre, images) = fit(NormalisationKind::PerImage, 56, 48, 0.01);
    let grey = image::DynamicImage::ImageLuma8(images[0].clone());
    assert_eq!(
        pre.apply(&grey).expect("apply"),
        pre.apply_grey(&images[0]).expect("apply")
    );
    let rgb = image::DynamicImage::ImageRgb8(grey.to_rgb8());
    let diff = (&pre.apply(&rgb).expect("rgb") - &pre.apply(&grey).expect("grey"))
        .iter()
        .map(|d| d.abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 0.1, "grey stored as RGB differs by {diff}");
}

#[test]
fn wrong_shapes_and_corrupt_arrays_are_errors() {
    let (pre, _) = fit(NormalisationKind::Dataset, 56, 48, 0.01);
    let err = pre
        .normalise(Array2::zeros((10, 10)))
        .expect_err("wrong shape");
    assert!(err.to_string().contains("[56, 48]"), "{err}");
    pre.validate().expect("a fitted preprocessing is valid");
    let mut json: serde_json::Value = serde_json::to_value(&pre).expect("serialise");
    json["normalisation"]["mean"]["shape"] = serde_json::json!([56, 47]);
    let err = serde_json::from_value::<Preprocessing>(json).expect_err("corrupt");
    assert!(err.to_string().contains("needs"), "{err}");
    let spec = PreprocessingSpec::new(56, 48, NormalisationKind::Pca);
    assert!(
        spec.fit(&fixture_images()[..1]).is_err(),
        "one image cannot fit PCA"
    );
}

#[test]
fn validate_rejects_arrays_that_do_not_fit_the_size() {
    use NormalisationKind::*;
    for kind in [Dataset, Pca, Zca] {
        let (mut pre, _) = fit(kind, 14, 12, 0.01);
        pre.validate().expect("fitted");
        pre.height = 15;
        let err = pre.validate().expect_err("size changed after fitting");
        let message = err.to_string();
        assert!(
            message.contains("[180]") || message.contains("[15, 12]"),
            "{kind:?}: {message}"
        );
    }
}
