//! Finite-difference gradient checks of every layer, w.r.t. inputs and parameters,
//! and the shape errors of every layer.

use super::activation::{Activation, ActivationKind};
use super::avg_pool::AvgPool2d;
use super::batch_norm::BatchNorm;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::dropout::Dropout;
use super::flatten::Flatten;
use super::gradcheck::{Tolerance, check_layer};
use super::init::Init;
use super::l2norm::L2Norm;
use super::linear::Linear;
use super::maxout::Maxout;
use super::pool::{GlobalAvgPool, MaxPool2d};
use super::prelu::PRelu;
use super::{Layer, Mode, NnError, Param, Result, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Uniform in [−1, 1).
fn uniform(shape: &[usize], seed: u64) -> Tensor {
    let mut r = rng(seed);
    Tensor::from_shape_simple_fn(shape.to_vec(), || r.random_range(-1.0f32..1.0))
}

/// Uniform in ±[0.1, 1): at least 10 ε away from the ReLU kink.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor {
    let mut r = rng(seed);
    Tensor::from_shape_simple_fn(shape.to_vec(), || {
        let v = r.random_range(0.1f32..1.0);
        if r.random::<bool>() { v } else { -v }
    })
}

/// All values distinct, 0.05 apart (> 2 ε), shuffled: no ties in any max.
fn distinct(shape: &[usize], seed: u64) -> Tensor {
    let len: usize = shape.iter().product();
    let mut values: Vec<f32> = (0..len)
        .map(|i| (i as f32 - len as f32 / 2.0) * 0.05)
        .collect();
    values.shuffle(&mut rng(seed));
    Tensor::from_shape_vec(shape.to_vec(), values).unwrap()
}

/// Gives every parameter random values, so no gradient check passes by zeros or ones.
fn randomise(layer: &mut dyn Layer, seed: u64) {
    for (i, p) in layer.params_mut().into_iter().enumerate() {
        let shape = p.value.shape().to_vec();
        p.value = uniform(&shape, seed + i as u64)
            .mapv(|v| 0.5 * v + if p.name == "gamma" { 1.0 } else { 0.0 });
    }
}

fn check(layer: &mut dyn Layer, x: &Tensor) {
    check_with(layer, x, &Tolerance::default());
}

fn check_with(layer: &mut dyn Layer, x: &Tensor, tol: &Tolerance) {
    if let Err(report) = check_layer(layer, x, tol, 42, |_| {}) {
        panic!("{report}");
    }
}

#[test]
fn linear_gradients_match_finite_differences() {
    let mut layer = Linear::new(5, 3, Init::XavierNormal, &mut rng(1)).unwrap();
    randomise(&mut layer, 2);
    check(&mut layer, &uniform(&[4, 5], 3));
}

/// The forward runs as `W · Xᵀ` cut between the threads and transposed back: every
/// batch size (none, one, several) and an output width the threads cannot share evenly
/// must still give `x · Wᵀ + b`.
#[test]
fn linear_outputs_equal_the_definition_for_every_batch_size() {
    let mut layer = Linear::new(6, 5, Init::XavierNormal, &mut rng(4)).unwrap();
    randomise(&mut layer, 5);
    let (w, b) = (&layer.weight.value, &layer.bias.value);
    for n in [0, 1, 2, 7] {
        let x = uniform(&[n, 6], 6 + n as u64);
        let y = layer.infer(&x).unwrap();
        assert_eq!(y.shape(), &[n, 5]);
        for r in 0..n {
            for j in 0..5 {
                let want: f64 = f64::from(b[j])
                    + (0..6)
                        .map(|k| f64::from(x[[r, k]]) * f64::from(w[[j, k]]))
                        .sum::<f64>();
                let got = f64::from(y[[r, j]]);
                assert!(
                    (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                    "{n}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn conv2d_gradients_match_finite_differences_with_padding_and_stride() {
    let configs = [
        (Conv2dConfig::square(2, 3, 3, 1, 1), [2, 2, 5, 4]),
        (
            Conv2dConfig {
                kernel: (2, 3),
                ..Conv2dConfig::square(1, 2, 0, 2, 0)
            },
            [2, 1, 5, 7],
        ),
        (Conv2dConfig::square(3, 2, 3, 2, 2), [1, 3, 4, 5]),
    ];
    for (i, (config, shape)) in configs.into_iter().enumerate() {
        let mut layer = Conv2d::new(config, Init::HeNormal, &mut rng(i as u64)).unwrap();
        randomise(&mut layer, 10 + i as u64);
        check(&mut layer, &uniform(&shape, 20 + i as u64));
    }
}

#[test]
fn conv2d_in_winograd_form_gradients_match_finite_differences() {
    // 32 channels in and out on a 64×66 map: enough work per image for Winograd's
    // F(4×4, 3×3) in the forward, dE/dx and dE/dW (`conv2d::winograd_applies`; the
    // layer's own tests check that it applies at this size).
    let config = Conv2dConfig::square(32, 32, 3, 1, 1);
    let mut layer = Conv2d::new(config, Init::HeNormal, &mut rng(3)).unwrap();
    randomise(&mut layer, 13);
    check(&mut layer, &uniform(&[1, 32, 64, 66], 23));
}

#[test]
fn conv2d_without_input_gradient_returns_zeros_and_the_same_parameter_gradients() {
    let config = Conv2dConfig::square(2, 3, 3, 1, 1);
    let x = uniform(&[2, 2, 5, 4], 1);
    let dy = uniform(&[2, 3, 5, 4], 2);
    let grads = |input_grad: bool| {
        let mut layer = Conv2d::new(config, Init::HeNormal, &mut rng(0)).unwrap();
        layer.input_grad = input_grad;
        layer.forward(&x, Mode::Train).unwrap();
        let dx = layer.backward(&dy).unwrap();
        (dx, layer.weight().grad.clone(), layer.bias().grad.clone())
    };
    let (dx_full, dw_full, db_full) = grads(true);
    let (dx_none, dw_none, db_none) = grads(false);
    assert!(dx_full.iter().any(|&v| v != 0.0));
    assert!(dx_none.iter().all(|&v| v == 0.0));
    assert_eq!((dw_full, db_full), (dw_none, db_none));
}

#[test]
fn max_pool_gradients_match_finite_differences_for_disjoint_and_overlapping_windows() {
    for (k, s) in [(2, 2), (3, 2), (2, 1)] {
        let mut layer = MaxPool2d::new(k, s).unwrap();
        check(&mut layer, &distinct(&[2, 3, 7, 6], k as u64));
    }
}

#[test]
fn avg_pool_gradients_match_finite_differences_for_disjoint_and_overlapping_windows() {
    // 7×6 with k 2, s 2 leaves the last row unused, as dlib's 35×35 → 17×17 does.
    for (k, s) in [(2, 2), (3, 2), (2, 1)] {
        let mut layer = AvgPool2d::new(k, s).unwrap();
        check(&mut layer, &uniform(&[2, 3, 7, 6], k as u64));
    }
}

#[test]
fn avg_pool_averages_each_window_and_drops_a_partial_last_one() {
    // One 3×3 plane 0..9: 2×2 windows at stride 2 → only the top-left one fits.
    let x = Tensor::from_shape_vec(vec![1, 1, 3, 3], (0..9).map(|v| v as f32).collect()).unwrap();
    let y = AvgPool2d::new(2, 2).unwrap().infer(&x).unwrap();
    assert_eq!(y.shape(), &[1, 1, 1, 1]);
    assert_eq!(y[[0, 0, 0, 0]], (0.0 + 1.0 + 3.0 + 4.0) / 4.0);
    let y = AvgPool2d::new(2, 1).unwrap().infer(&x).unwrap();
    assert_eq!(
        y.iter().copied().collect::<Vec<_>>(),
        vec![2.0, 3.0, 5.0, 6.0]
    );
    assert!(AvgPool2d::new(4, 1).unwrap().infer(&x).is_err());
    assert!(AvgPool2d::new(0, 1).is_err());
}

#[test]
fn max_pool_infer_equals_the_training_forward_nan_included() {
    for (k, s, ceil) in [
        (2, 2, false),
        (3, 2, false),
        (2, 1, false),
        (2, 2, true),
        (3, 2, true),
    ] {
        // 46 wide: O-Net's first pooling, long enough for the vectorised window loops.
        for (h, w) in [(7, 6), (6, 6), (5, 9), (5, 46), (6, 47)] {
            let mut layer = if ceil {
                MaxPool2d::ceil(k, s).unwrap()
            } else {
                MaxPool2d::new(k, s).unwrap()
            };
            let mut x = uniform(&[2, 3, h, w], (k + h) as u64);
            // NaN in the first, a middle and the last row and column of some window,
            // and in a plane of its own at the last (in ceil mode partial) corner.
            x[[1, 2, 3, 4]] = f32::NAN;
            x[[0, 0, 0, 0]] = f32::NAN;
            x[[0, 1, 1, 1]] = f32::NAN;
            x[[1, 0, h - 1, w - 1]] = f32::NAN;
            let trained = layer.forward(&x, Mode::Train).unwrap();
            let inferred = layer.infer(&x).unwrap();
            assert_eq!(trained.shape(), inferred.shape());
            for (a, b) in trained.iter().zip(inferred.iter()) {
                assert!(
                    a == b || (a.is_nan() && b.is_nan()),
                    "k {k} s {s} ceil {ceil} {h}×{w}: {a} vs {b}"
                );
            }
            assert!(inferred.iter().any(|v| v.is_nan()), "NaN must propagate");
        }
    }
}

#[test]
fn ceil_mode_max_pool_keeps_the_partial_edge_windows_and_their_gradients() {
    // PyTorch: MaxPool2d(3, 2, ceil_mode=True) on 7×6 gives 3×3 (last column window
    // starts at 4 and holds columns 4..6); (2, 2) on 5×5 gives 3×3 with 1-wide edges.
    for (k, s, hw, out) in [
        (3, 2, [7, 6], [3, 3]),
        (2, 2, [5, 5], [3, 3]),
        (3, 2, [6, 6], [3, 3]),
    ] {
        let mut layer = MaxPool2d::ceil(k, s).unwrap();
        let x = distinct(&[2, 3, hw[0], hw[1]], k as u64);
        assert_eq!(
            layer.output_shape(x.shape()).unwrap(),
            vec![2, 3, out[0], out[1]]
        );
        check(&mut layer, &x);
    }
    // The partial window's maximum is the edge value itself.
    let x = Tensor::from_shape_vec(vec![1, 1, 1, 3], vec![1.0, 5.0, 9.0])
        .unwrap()
        .into_shape_with_order(vec![1, 1, 1, 3])
        .unwrap();
    let pooled = MaxPool2d::ceil(1, 2).unwrap().infer(&x).unwrap();
    assert_eq!(pooled.iter().copied().collect::<Vec<_>>(), vec![1.0, 9.0]);
}

#[test]
fn global_average_pool_and_flatten_gradients_match_finite_differences() {
    check(&mut GlobalAvgPool::new(), &uniform(&[2, 3, 4, 5], 1));
    check(&mut Flatten::new(), &uniform(&[2, 3, 4, 5], 2));
}

#[test]
fn batch_norm_gradients_match_finite_differences_for_vectors_and_maps() {
    for (seed, shape) in [(1, vec![6, 4]), (2, vec![3, 2, 3, 3])] {
        let mut layer = BatchNorm::new(shape[1]).unwrap();
        randomise(&mut layer, seed);
        check(&mut layer, &uniform(&shape, seed + 5));
    }
}

#[test]
fn dropout_gradient_matches_finite_differences_under_a_fixed_mask() {
    let mut layer = Dropout::new(0.4, 3).unwrap();
    let x = uniform(&[4, 6], 1);
    let result = check_layer(&mut layer, &x, &Tolerance::default(), 42, |d| d.reseed(11));
    result.unwrap_or_else(|report| panic!("{report}"));
}

#[test]
fn elementwise_activation_gradients_match_finite_differences() {
    use ActivationKind::*;
    for kind in [Relu, Tanh, Sigmoid, Identity] {
        check(
            &mut Activation::new(kind),
            &away_from_zero(&[3, 2, 2, 3], 7),
        );
    }
}

#[test]
fn prelu_gradients_match_finite_differences_for_vectors_and_maps() {
    for (seed, shape) in [(1, vec![5, 3]), (2, vec![2, 3, 2, 4])] {
        let mut layer = PRelu::new(3).unwrap();
        randomise(&mut layer, seed);
        check(&mut layer, &away_from_zero(&shape, seed + 3));
    }
}

#[test]
fn maxout_gradients_match_finite_differences() {
    check(&mut Maxout::new(3).unwrap(), &distinct(&[4, 6], 1));
    check(&mut Maxout::new(2).unwrap(), &distinct(&[2, 4, 3, 2], 2));
}

#[test]
fn l2norm_gradient_matches_finite_differences() {
    check(&mut L2Norm::new(), &uniform(&[4, 7], 3));
}

/// A layer whose backward is 5 % off: the check must notice.
#[derive(Debug)]
struct Skewed(Linear);

impl Layer for Skewed {
    fn kind(&self) -> &'static str {
        "skewed"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.0.output_shape(input)
    }
    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        self.0.forward(x, mode)
    }
    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.0.infer(x)
    }
    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        Ok(self.0.backward(dy)? * 1.05)
    }
    fn params(&self) -> Vec<&Param> {
        self.0.params()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.0.params_mut()
    }
}

#[test]
fn the_gradient_check_rejects_a_gradient_five_percent_off() {
    let mut layer = Skewed(Linear::new(5, 3, Init::XavierNormal, &mut rng(1)).unwrap());
    let report = check_layer(
        &mut layer,
        &uniform(&[4, 5], 3),
        &Tolerance::default(),
        42,
        |_| {},
    )
    .expect_err("a 5 % error must fail");
    assert!(
        report.contains("dE/dx") && report.contains("largest difference"),
        "{report}"
    );
}

#[test]
fn batch_norm_updates_running_statistics_like_pytorch_and_uses_them_in_eval() {
    let mut bn = BatchNorm::new(2).unwrap();
    // Channel 0 holds 1, 2, 3, 4 (mean 2.5, biased var 1.25, unbiased 5/3); channel 1 is 0.
    let x =
        Tensor::from_shape_vec(vec![4, 2], vec![1.0, 0.0, 2.0, 0.0, 3.0, 0.0, 4.0, 0.0]).unwrap();
    let y = bn.forward(&x, Mode::Train).unwrap();
    let expected0 = (1.0 - 2.5) / (1.25f32 + 1e-5).sqrt();
    assert!((y[[0, 0]] - expected0).abs() < 1e-5);
    assert!((bn.running_mean[0] - 0.25).abs() < 1e-6);
    assert!((bn.running_var[0] - (0.9 + 0.1 * 5.0 / 3.0)).abs() < 1e-6);
    assert!((bn.running_var[1] - 0.9).abs() < 1e-6);
    let y_eval = bn.forward(&x, Mode::Eval).unwrap();
    let expected_eval = (1.0 - 0.25) / (bn.running_var[0] + 1e-5).sqrt();
    assert!((y_eval[[0, 0]] - expected_eval).abs() < 1e-5);
    assert_eq!(y_eval, bn.infer(&x).unwrap());
}

#[test]
fn batch_norm_refuses_training_on_one_value_per_channel() {
    let mut bn = BatchNorm::new(3).unwrap();
    assert!(bn.forward(&Tensor::zeros(vec![1, 3]), Mode::Train).is_err());
    assert!(bn.forward(&Tensor::zeros(vec![1, 3]), Mode::Eval).is_ok());
}

#[test]
fn wrong_input_shapes_are_errors_naming_actual_and_expected_shapes() {
    let conv = Conv2dConfig::square(3, 4, 3, 1, 0);
    let padded = Conv2dConfig::square(3, 4, 3, 1, 2);
    type Case = (&'static str, Box<dyn Layer>, Vec<usize>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "linear with the wrong width",
            Box::new(Linear::new(5, 2, Init::HeNormal, &mut rng(0)).unwrap()),
            vec![2, 4],
            "[N, 5]",
        ),
        (
            "linear on images",
            Box::new(Linear::new(5, 2, Init::HeNormal, &mut rng(0)).unwrap()),
            vec![2, 5, 1, 1],
            "[N, 5]",
        ),
        (
            "conv2d with the wrong channels",
            Box::new(Conv2d::new(conv, Init::HeNormal, &mut rng(0)).unwrap()),
            vec![1, 2, 8, 8],
            "[N, 3, H, W]",
        ),
        (
            "conv2d on an image smaller than its kernel",
            Box::new(Conv2d::new(conv, Init::HeNormal, &mut rng(0)).unwrap()),
            vec![1, 3, 2, 8],
            "≥ 3",
        ),
        (
            "conv2d on an empty map that its padding would make large enough",
            Box::new(Conv2d::new(padded, Init::HeNormal, &mut rng(0)).unwrap()),
            vec![1, 3, 0, 8],
            "H, W ≥ 1",
        ),
        (
            "conv2d on vectors",
            Box::new(Conv2d::new(conv, Init::HeNormal, &mut rng(0)).unwrap()),
            vec![1, 3],
            "[N, 3, H, W]",
        ),
        (
            "max pooling a too small map",
            Box::new(MaxPool2d::new(2, 2).unwrap()),
            vec![1, 1, 1, 4],
            "H, W ≥ 2",
        ),
        (
            "batch norm with the wrong channels",
            Box::new(BatchNorm::new(4).unwrap()),
            vec![2, 3, 5, 5],
            "[N, 4]",
        ),
        (
            "batch norm on an empty map",
            Box::new(BatchNorm::new(3).unwrap()),
            vec![2, 3, 0, 5],
            "H, W ≥ 1",
        ),
        (
            "prelu on an empty map",
            Box::new(PRelu::new(3).unwrap()),
            vec![2, 3, 5, 0],
            "H, W ≥ 1",
        ),
        (
            "prelu with the wrong channels",
            Box::new(PRelu::new(4).unwrap()),
            vec![2, 3],
            "[N, 4]",
        ),
        (
            "maxout on a width not divisible by k",
            Box::new(Maxout::new(3).unwrap()),
            vec![2, 7],
            "multiple of 3",
        ),
        (
            "l2norm on maps",
            Box::new(L2Norm::new()),
            vec![2, 3, 4, 4],
            "[N, D]",
        ),
        (
            "global average pool on vectors",
            Box::new(GlobalAvgPool::new()),
            vec![2, 3],
            "[N, C, H, W]",
        ),
        (
            "global average pool on an empty map",
            Box::new(GlobalAvgPool::new()),
            vec![2, 3, 4, 0],
            "H, W ≥ 1",
        ),
        (
            "average pooling an empty map",
            Box::new(AvgPool2d::new(1, 1).unwrap()),
            vec![1, 2, 0, 3],
            "H, W ≥ 1",
        ),
        (
            "flatten on a vector",
            Box::new(Flatten::new()),
            vec![6],
            "at least 2",
        ),
    ];
    for (what, mut layer, shape, expected) in cases {
        let x = Tensor::zeros(shape.clone());
        let actual = format!("{shape:?}");
        for result in [layer.infer(&x), layer.forward(&x, Mode::Train)] {
            match result {
                Err(e @ NnError::Shape { .. }) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(expected) && msg.contains(&actual),
                        "{what}: {msg}"
                    );
                }
                other => panic!("{what}: expected a shape error, got {other:?}"),
            }
        }
        assert!(layer.output_shape(&shape).is_err(), "{what}: output_shape");
    }
}

#[test]
fn backward_with_a_gradient_of_the_wrong_shape_is_an_error() {
    let mut layer = Linear::new(3, 2, Init::HeNormal, &mut rng(0)).unwrap();
    layer
        .forward(&Tensor::zeros(vec![4, 3]), Mode::Train)
        .unwrap();
    match layer.backward(&Tensor::zeros(vec![4, 3])) {
        Err(NnError::Shape { actual, .. }) => assert_eq!(actual, vec![4, 3]),
        other => panic!("expected a shape error, got {other:?}"),
    }
}
