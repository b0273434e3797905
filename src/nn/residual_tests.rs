//! Residual blocks: finite-difference gradients through both kinds of shortcut, tensor
//! names inside a `Sequential`, saving and loading, and shape errors.

use super::activation::{Activation, ActivationKind};
use super::avg_pool::AvgPool2d;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::gradcheck::{Tolerance, check_layer};
use super::init::Init;
use super::linear::Linear;
use super::residual::{BlockActivation, Residual, SumRule};
use super::sequential::Sequential;
use super::{Layer, Mode, NnError, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

fn uniform(shape: &[usize], seed: u64) -> Tensor {
    let mut r = rng(seed);
    Tensor::from_shape_simple_fn(shape.to_vec(), || r.random_range(-1.0f32..1.0))
}

/// Random parameters (γ around 1, slopes around 0.25), so no check passes by zeros.
fn randomise(layer: &mut dyn Layer, seed: u64) {
    for (i, p) in layer.params_mut().into_iter().enumerate() {
        let shape = p.value.shape().to_vec();
        let centre = match p.name {
            "gamma" => 1.0,
            "slope" => 0.25,
            _ => 0.0,
        };
        p.value = uniform(&shape, seed + i as u64).mapv(|v| 0.5 * v + centre);
    }
}

/// A much smaller step than the default: a block has ReLUs behind batch norms over few
/// values, so a step in one weight moves every activation of a channel, and some come
/// within 1e-3 of the kink (with ε = 1e-3, 1 to 5 of 36 elements disagreed, for some
/// seeds, and the disagreement shrank with ε: kinks, not a wrong gradient; the PyTorch
/// agreement test checks the same blocks exactly). The rounding error of E grows as ε
/// shrinks (to ~4e-3 here), hence the looser tolerances; a gradient 5 % off still fails.
const BLOCK: Tolerance = Tolerance {
    eps: 3e-4,
    rtol: 2e-2,
    atol: 5e-3,
    max_checks: 60,
};

#[test]
fn basic_block_gradients_match_finite_differences_with_both_shortcuts() {
    let cases = [
        (
            "identity shortcut, relu",
            3,
            3,
            1,
            BlockActivation::Relu,
            [2, 3, 5, 4],
        ),
        (
            "projection for a stride of 2",
            2,
            2,
            2,
            BlockActivation::Relu,
            [2, 2, 6, 5],
        ),
        (
            "projection for new channels, prelu",
            2,
            4,
            1,
            BlockActivation::Prelu,
            [2, 2, 4, 4],
        ),
    ];
    for (i, (what, c_in, c_out, stride, act, shape)) in cases.into_iter().enumerate() {
        let seed = 10 * i as u64;
        let mut block = Residual::basic_block(c_in, c_out, stride, act, &mut rng(seed)).unwrap();
        assert_eq!(block.shortcut().is_some(), i > 0, "{what}");
        randomise(&mut block, seed + 1);
        let x = uniform(&shape, seed + 2);
        if let Err(report) = check_layer(&mut block, &x, &BLOCK, 42, |_| {}) {
            panic!("{what}: {report}");
        }
    }
}

/// dlib's down-sampling block: body conv 3×3 stride 2 without padding (8×8 → 3×3, 2 →
/// 4 channels) → ReLU → conv 3×3; shortcut 2×2 average pooling (8×8 → 4×4, 2
/// channels); the zero-padded sum is 4 channels of 4×4, so both branches are padded.
fn dlib_down_block(seed: u64) -> Residual {
    let mut r = rng(seed);
    let mut body = Sequential::new();
    body.push(Conv2d::new(Conv2dConfig::square(2, 4, 3, 2, 0), Init::HeNormal, &mut r).unwrap())
        .push(Activation::relu())
        .push(Conv2d::new(Conv2dConfig::square(4, 4, 3, 1, 1), Init::HeNormal, &mut r).unwrap());
    let mut shortcut = Sequential::new();
    shortcut.push(AvgPool2d::new(2, 2).unwrap());
    Residual::new(body, Some(shortcut), Box::new(Activation::relu())).with_sum(SumRule::ZeroPadded)
}

#[test]
fn a_zero_padded_sum_pads_both_branches_and_its_gradients_match_finite_differences() {
    let mut block = dlib_down_block(30);
    randomise(&mut block, 31);
    let x = uniform(&[2, 2, 8, 8], 32);
    assert_eq!(block.output_shape(x.shape()).unwrap(), vec![2, 4, 4, 4]);
    let y = block.infer(&x).unwrap();
    // Where only the body reaches (channels 2, 3, rows and columns 0–2) and where only
    // the shortcut does (channels 0, 1, row 3), the sum is that branch alone.
    let body = block.body().infer(&x).unwrap();
    let skip = block.shortcut().unwrap().infer(&x).unwrap();
    let relu = |v: f32| v.max(0.0);
    assert_eq!(y[[1, 3, 2, 1]], relu(body[[1, 3, 2, 1]]));
    assert_eq!(y[[0, 1, 3, 2]], relu(skip[[0, 1, 3, 2]]));
    assert_eq!(y[[0, 3, 3, 3]], 0.0);
    assert_eq!(
        y[[1, 0, 1, 1]],
        relu(body[[1, 0, 1, 1]] + skip[[1, 0, 1, 1]])
    );
    if let Err(report) = check_layer(&mut block, &x, &BLOCK, 42, |_| {}) {
        panic!("{report}");
    }
    // Without the rule the same branches are a shape error, not a silent pad.
    let mut equal = dlib_down_block(30).with_sum(SumRule::Equal);
    assert!(equal.forward(&x, Mode::Train).is_err());
}

#[test]
fn a_residual_adds_its_shortcut_exactly() {
    // body = linear, shortcut = identity, act = identity: y = Wx + b + x, dE/dx = Wᵀg + g.
    let mut body = Sequential::new();
    body.push(Linear::new(3, 3, Init::XavierNormal, &mut rng(1)).unwrap());
    let act = Box::new(Activation::new(ActivationKind::Identity));
    let mut block = Residual::new(body, None, act);
    randomise(&mut block, 2);
    let x = uniform(&[4, 3], 3);
    let y = block.forward(&x, Mode::Train).unwrap();
    let body_only = block.body().infer(&x).unwrap();
    assert_eq!(y, &body_only + &x);
    check_layer(&mut block, &x, &Tolerance::default(), 7, |_| {}).unwrap_or_else(|r| panic!("{r}"));
}

#[test]
fn a_block_infers_its_branches_summed_then_activated_to_the_bit() {
    // Maps larger than one parallel chunk of the sum, with an identity and a projection
    // shortcut, a ReLU (summed and rectified in one pass) and a PReLU (applied after).
    let cases = [
        (8, 8, 1, BlockActivation::Relu),
        (4, 8, 2, BlockActivation::Relu),
        (8, 8, 1, BlockActivation::Prelu),
    ];
    for (seed, (i, o, stride, activation)) in (40..).zip(cases) {
        let mut block = Residual::basic_block(i, o, stride, activation, &mut rng(seed)).unwrap();
        randomise(&mut block, seed);
        // Train once so batch norm's running statistics are not the defaults.
        let x = uniform(&[2, i, 72, 64], seed + 100);
        block.forward(&x, Mode::Train).unwrap();
        let body = block.body().infer(&x).unwrap();
        let skip = match block.shortcut() {
            Some(s) => s.infer(&x).unwrap(),
            None => x.clone(),
        };
        let mut sum = body.clone();
        sum.zip_mut_with(&skip, |a, &b| *a += b);
        let slopes = block
            .named_tensors()
            .into_iter()
            .find_map(|(name, t)| (name == "activation.slope").then(|| t.clone()));
        let expected = match &slopes {
            Some(slope) => Tensor::from_shape_fn(sum.shape().to_vec(), |ix| {
                let v = sum[&ix];
                if v > 0.0 { v } else { slope[[ix[1]]] * v }
            }),
            None => sum.mapv(|v| v.max(0.0)),
        };
        assert!(sum.len() > super::tensor::CHUNK);
        let got = block.infer(&x).unwrap();
        let same = got
            .iter()
            .zip(&expected)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same,
            "case {seed}: inference differs from the branches' sum"
        );
        assert_eq!(block.forward(&x, Mode::Eval).unwrap(), got, "case {seed}");
        assert!(
            got.iter().any(|&v| v < 0.0) == slopes.is_some(),
            "case {seed}"
        );
    }
}

fn resnet_like(seed: u64) -> Sequential {
    let mut r = rng(seed);
    let mut net = Sequential::new();
    net.push(Residual::basic_block(2, 2, 1, BlockActivation::Relu, &mut r).unwrap())
        .push(Residual::basic_block(2, 3, 2, BlockActivation::Prelu, &mut r).unwrap());
    net
}

#[test]
fn nested_tensor_names_are_prefixed_and_cover_every_parameter_and_buffer() {
    let net = resnet_like(0);
    let names: Vec<String> = net.named_tensors().into_iter().map(|(n, _)| n).collect();
    for expected in [
        "0.residual.body.0.conv2d.weight",
        "0.residual.body.1.batch_norm.running_var",
        "0.residual.body.4.batch_norm.gamma",
        "1.residual.body.2.prelu.slope",
        "1.residual.shortcut.0.conv2d.weight",
        "1.residual.shortcut.1.batch_norm.running_mean",
        "1.residual.activation.slope",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.starts_with("0.residual.shortcut")),
        "{names:?}"
    );
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "{names:?}");
    // Every parameter is named once; a block has 2 convs + 2 BNs (+ projection) with
    // 4 running statistics per two BNs.
    let buffers = names.iter().filter(|n| n.contains("running_")).count();
    assert_eq!(buffers, 2 * (2 + 3));
    assert_eq!(names.len() - buffers, net.params().len());
    let mut seen = Vec::new();
    let mut net = net;
    net.visit_tensors_mut(&mut |name, _| seen.push(name.to_string()));
    assert_eq!(seen, names);
}

#[test]
fn a_network_of_residual_blocks_saves_and_loads_parameters_and_running_statistics() {
    let mut trained = resnet_like(1);
    randomise(&mut trained, 5);
    let x = uniform(&[3, 2, 6, 6], 9);
    trained.forward(&x, Mode::Train).unwrap(); // moves the running statistics
    let bytes = trained.to_safetensors(&HashMap::new()).unwrap();
    let mut loaded = resnet_like(2);
    loaded.load_safetensors(&bytes).unwrap();
    for ((n1, t1), (n2, t2)) in trained
        .named_tensors()
        .into_iter()
        .zip(loaded.named_tensors())
    {
        assert_eq!((n1.as_str(), t1), (n2.as_str(), t2));
    }
    assert_eq!(trained.infer(&x).unwrap(), loaded.infer(&x).unwrap());
}

#[test]
fn an_identity_shortcut_that_cannot_match_the_body_is_a_shape_error() {
    let mut body = Sequential::new();
    body.push(Linear::new(3, 4, Init::XavierNormal, &mut rng(1)).unwrap());
    let mut block = Residual::new(body, None, Box::new(Activation::relu()));
    let x = Tensor::zeros(vec![2, 3]);
    for result in [block.infer(&x), block.forward(&x, Mode::Train)] {
        match result {
            Err(e @ NnError::Shape { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("[2, 4]") && msg.contains("[2, 3]"), "{msg}");
            }
            other => panic!("expected a shape error, got {other:?}"),
        }
    }
    assert!(block.output_shape(&[2, 3]).is_err());
}
