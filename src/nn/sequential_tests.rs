//! Tests of the model container: order, gradients through a whole network, files.

use super::activation::{Activation, ActivationKind};
use super::batch_norm::BatchNorm;
use super::conv2d::{Conv2d, Conv2dConfig};
use super::flatten::Flatten;
use super::gradcheck::{Tolerance, check_layer};
use super::init::Init;
use super::l2norm::L2Norm;
use super::linear::Linear;
use super::pool::MaxPool2d;
use super::sequential::Sequential;
use super::{Layer, Mode, NnError, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// conv 2→3 → BN → ReLU → pool 2 → flatten → linear 12→4 → L2 norm, on (N, 2, 4, 4).
fn small_cnn(seed: u64) -> Sequential {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut net = Sequential::new();
    net.push(
        Conv2d::new(
            Conv2dConfig::square(2, 3, 3, 1, 1),
            Init::HeNormal,
            &mut rng,
        )
        .unwrap(),
    )
    .push(BatchNorm::new(3).unwrap())
    .push(Activation::relu())
    .push(MaxPool2d::new(2, 2).unwrap())
    .push(Flatten::new())
    .push(Linear::new(12, 4, Init::XavierNormal, &mut rng).unwrap())
    .push(L2Norm::new());
    net
}

fn input(seed: u64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Tensor::from_shape_simple_fn(vec![3, 2, 4, 4], || rng.random_range(-1.0f32..1.0))
}

#[test]
fn names_follow_index_kind_and_name_with_parameters_in_pytorch_order() {
    let net = small_cnn(0);
    let names: Vec<String> = net.named_tensors().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "0.conv2d.weight",
            "0.conv2d.bias",
            "1.batch_norm.gamma",
            "1.batch_norm.beta",
            "1.batch_norm.running_mean",
            "1.batch_norm.running_var",
            "5.linear.weight",
            "5.linear.bias"
        ]
    );
    let params: Vec<&str> = net.params().iter().map(|p| p.name).collect();
    assert_eq!(
        params,
        ["weight", "bias", "gamma", "beta", "weight", "bias"]
    );
    assert_eq!(net.num_parameters(), 3 * 2 * 9 + 3 + 3 + 3 + 12 * 4 + 4);
}

#[test]
fn gradients_through_a_whole_network_match_finite_differences() {
    let mut net = small_cnn(1);
    // Keep the ReLU off its kink: β = 2 with γ = 0.5 puts every BN output above 0 unless
    // its normalised value is below −4. (Each layer's own check covers both ReLU sides.)
    // Max pooling cannot be kept off ties by construction here, since every input moves
    // every BN output: a smaller step, ε = 1e-3, makes a switch of the maximum unlikely.
    for p in net.params_mut() {
        match p.name {
            "gamma" => p.value.fill(0.5),
            "beta" => p.value.fill(2.0),
            _ => {}
        }
    }
    let tol = Tolerance {
        eps: 1e-3,
        rtol: 2e-2,
        atol: 1e-3,
        ..Tolerance::default()
    };
    check_layer(&mut net, &input(2), &tol, 3, |_| {}).unwrap_or_else(|r| panic!("{r}"));
}

#[test]
fn backward_adds_into_gradients_until_zero_grad() {
    let mut net = small_cnn(1);
    let x = input(2);
    let dy = Tensor::from_elem(vec![3, 4], 0.5);
    net.forward(&x, Mode::Train).unwrap();
    net.backward(&dy).unwrap();
    let once: Vec<Tensor> = net.params().iter().map(|p| p.grad.clone()).collect();
    net.forward(&x, Mode::Train).unwrap();
    net.backward(&dy).unwrap();
    for (p, g) in net.params().iter().zip(&once) {
        let doubled = g * 2.0;
        let close = p
            .grad
            .iter()
            .zip(doubled.iter())
            .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + b.abs()));
        assert!(close, "{} did not accumulate", p.name);
    }
    net.zero_grad();
    assert!(
        net.params()
            .iter()
            .all(|p| p.grad.iter().all(|&g| g == 0.0))
    );
}

#[test]
fn a_saved_model_loads_back_with_its_metadata_and_the_same_outputs() {
    let mut net = small_cnn(4);
    net.forward(&input(5), Mode::Train).unwrap(); // moves the running statistics
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let metadata = HashMap::from([("arch".to_string(), "small".to_string())]);
    net.save(&path, &metadata).unwrap();

    let mut other = small_cnn(99);
    assert_ne!(
        other.infer(&input(6)).unwrap(),
        net.infer(&input(6)).unwrap()
    );
    assert_eq!(other.load(&path).unwrap(), metadata);
    assert_eq!(
        other.infer(&input(6)).unwrap(),
        net.infer(&input(6)).unwrap()
    );
    for ((n1, t1), (n2, t2)) in net.named_tensors().into_iter().zip(other.named_tensors()) {
        assert_eq!((n1, t1), (n2, t2));
    }
}

#[test]
fn loading_reports_missing_tensors_and_wrong_shapes_and_changes_nothing() {
    let net = small_cnn(4);
    let bytes = net.to_safetensors(&HashMap::new()).unwrap();

    // A model with one more layer misses a tensor in the file.
    let mut bigger = small_cnn(4);
    bigger.push(Linear::new(4, 2, Init::XavierNormal, &mut ChaCha8Rng::seed_from_u64(0)).unwrap());
    match bigger.load_safetensors(&bytes) {
        Err(NnError::TensorFile(msg)) => {
            assert!(msg.contains("missing tensor 7.linear.weight"), "{msg}")
        }
        other => panic!("expected a missing-tensor error, got {other:?}"),
    }

    // Same names, other shapes: both shapes are named, and nothing is overwritten.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut wider = Sequential::new();
    wider.push(
        Conv2d::new(
            Conv2dConfig::square(2, 5, 3, 1, 1),
            Init::HeNormal,
            &mut rng,
        )
        .unwrap(),
    );
    let before: Vec<Tensor> = wider.params().iter().map(|p| p.value.clone()).collect();
    match wider.load_safetensors(&bytes) {
        Err(NnError::TensorFile(msg)) => {
            assert!(
                msg.contains("0.conv2d.weight")
                    && msg.contains("[5, 2, 3, 3]")
                    && msg.contains("[3, 2, 3, 3]"),
                "{msg}"
            )
        }
        other => panic!("expected a shape error, got {other:?}"),
    }
    let after: Vec<Tensor> = wider.params().iter().map(|p| p.value.clone()).collect();
    assert_eq!(before, after);

    assert!(small_cnn(0).load_safetensors(b"not a tensor file").is_err());
}

#[test]
fn infer_matches_an_eval_forward() {
    let mut net = small_cnn(7);
    net.forward(&input(1), Mode::Train).unwrap();
    assert_eq!(
        net.infer(&input(2)).unwrap(),
        net.forward(&input(2), Mode::Eval).unwrap()
    );
}

/// Batch norm applies the ReLU and the 2×2 pooling after it in its own training pass
/// (`BatchNorm::forward_then`): outputs, input gradients and parameter gradients must be
/// those of the layers run one by one, to the bit, ties between window elements included,
/// whether batch norm borrows its input (first layer) or is handed it (after another).
#[test]
fn a_fused_training_pass_equals_the_layers_run_one_by_one() {
    type Build = fn() -> Box<dyn super::Layer>;
    let bn: Build = || {
        let mut bn = BatchNorm::new(3).unwrap();
        bn.gamma.value = Tensor::from_shape_vec(vec![3], vec![0.7, -1.3, 2.0]).unwrap();
        bn.beta.value = Tensor::from_shape_vec(vec![3], vec![0.1, 0.4, -0.2]).unwrap();
        Box::new(bn)
    };
    let relu: Build = || Box::new(Activation::relu());
    let pool: Build = || Box::new(MaxPool2d::new(2, 2).unwrap());
    let identity: Build = || Box::new(Activation::new(ActivationKind::Identity));
    // Each chain with the position of its batch norm.
    let chains: [(usize, &[Build]); 6] = [
        (0, &[bn, relu, pool]),
        (0, &[bn, pool]),
        (0, &[bn, relu]),
        (1, &[identity, bn, relu, pool]),
        (1, &[identity, bn, pool]),
        (1, &[identity, bn, relu]),
    ];
    for (at, chain) in chains {
        for shape in [[2, 3, 5, 7], [3, 3, 4, 4]] {
            let mut rng = ChaCha8Rng::seed_from_u64(shape[2] as u64);
            // Quarter steps: equal values in a window, besides the ReLU's zeros.
            let x = Tensor::from_shape_simple_fn(shape.to_vec(), || {
                rng.random_range(-8i32..8) as f32 / 4.0
            });
            let mut fused = Sequential::new();
            let mut alone: Vec<Box<dyn super::Layer>> = Vec::new();
            for build in chain {
                fused.push_boxed(build());
                alone.push(build());
            }
            // Batch norm does take the rest in its pass.
            let rest = &fused.layers()[at + 1..];
            let (_, used) = bn()
                .forward_then(&x, Mode::Train, &super::epilogue::chain(rest))
                .unwrap();
            assert_eq!(used, rest.len());
            let y = fused.forward(&x, Mode::Train).unwrap();
            let y_alone = alone
                .iter_mut()
                .try_fold(x.clone(), |x, layer| layer.forward(&x, Mode::Train))
                .unwrap();
            assert_eq!(y, y_alone, "{} layers, {shape:?}", chain.len());
            let dy =
                Tensor::from_shape_simple_fn(y.shape().to_vec(), || rng.random_range(-1.0f32..1.0));
            let dx = fused.backward(&dy).unwrap();
            let dx_alone = alone
                .iter_mut()
                .rev()
                .try_fold(dy.clone(), |d, layer| layer.backward(&d))
                .unwrap();
            assert_eq!(dx, dx_alone, "{} layers, {shape:?}", chain.len());
            let grads =
                |ps: Vec<&super::Param>| ps.iter().map(|p| p.grad.clone()).collect::<Vec<_>>();
            assert_eq!(grads(fused.params()), grads(alone[at].params()));
            assert!(
                grads(fused.params())
                    .iter()
                    .all(|g| g.iter().any(|&v| v != 0.0))
            );
        }
    }
}

/// Batch norm's backward writes dE/dx over the input it kept, so it spends its cache: a
/// second backward is refused until the next forward. A gradient of the wrong shape is
/// refused without spending it.
#[test]
fn batch_norm_backward_spends_its_cache_but_not_on_a_wrong_gradient() {
    let mut bn = BatchNorm::new(2).unwrap();
    let x = Tensor::from_shape_fn(vec![2, 2, 3, 3], |i| {
        (i[0] * 5 + i[1] * 3 + i[2] * i[3]) as f32
    });
    let y = bn.forward(&x, Mode::Train).unwrap();
    let wrong = Tensor::zeros(vec![2, 2, 3, 2]);
    assert!(matches!(bn.backward(&wrong), Err(NnError::Shape { .. })));
    let dy = y.mapv(|v| v.sin());
    let dx = bn.backward(&dy).unwrap();
    assert!(matches!(
        bn.backward(&dy),
        Err(NnError::NoForwardCache { op: "batch_norm" })
    ));
    bn.forward(&x, Mode::Train).unwrap();
    assert_eq!(bn.backward(&dy).unwrap(), dx);
}

#[test]
fn taken_tensors_equal_assigned_ones_and_others_stay() {
    let mut net = small_cnn(4);
    net.forward(&input(5), Mode::Train).unwrap(); // moves the running statistics
    let mut tensors = net.snapshot();
    let extra = Tensor::from_elem(vec![2], 7.0);
    tensors.insert("extra".to_owned(), extra.clone());

    let mut assigned = small_cnn(99);
    assigned.assign_tensors(&tensors).unwrap();
    let mut taken = small_cnn(99);
    taken.take_tensors(&mut tensors).unwrap();
    assert_eq!(taken.snapshot(), net.snapshot());
    assert_eq!(taken.snapshot(), assigned.snapshot());
    assert_eq!(
        taken.infer(&input(6)).unwrap(),
        net.infer(&input(6)).unwrap()
    );
    // Only the network's own tensors were moved out.
    assert_eq!(tensors.len(), 1);
    assert_eq!(tensors.get("extra"), Some(&extra));

    // A missing or misshapen tensor: an error, and nothing moved or changed.
    let mut partial = net.snapshot();
    partial.remove("5.linear.bias");
    let count = partial.len();
    let mut other = small_cnn(99);
    let before = other.snapshot();
    assert!(other.take_tensors(&mut partial).is_err());
    assert_eq!((partial.len(), other.snapshot()), (count, before));
}

/// A 3×3 convolution `c → o` at stride 1 with padding `pad`, He-initialised from `rng`.
fn conv3(c: usize, o: usize, pad: usize, rng: &mut ChaCha8Rng) -> Conv2d {
    Conv2d::new(Conv2dConfig::square(c, o, 3, 1, pad), Init::HeNormal, rng).unwrap()
}

/// MTCNN's patterns, conv → PReLU → 2×2 pool in ceil mode (P-Net) and conv → PReLU → 3×3
/// pool (R-Net and O-Net; not an epilogue), on maps of odd sides: the convolutions apply
/// the PReLUs and the 2×2 pooling in their own pass, and give the layers' bits.
#[test]
fn a_convolution_applies_the_prelu_and_ceil_pooling_after_it_to_the_bit() {
    use super::prelu::PRelu;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let prelu = |c: usize, rng: &mut ChaCha8Rng| {
        let mut p = PRelu::new(c).unwrap();
        p.slope.value = Tensor::from_shape_simple_fn(vec![c], || rng.random_range(-0.5..0.5));
        p
    };
    let mut net = Sequential::new();
    net.push(conv3(3, 8, 0, &mut rng))
        .push(prelu(8, &mut rng))
        .push(MaxPool2d::ceil(2, 2).unwrap())
        .push(conv3(8, 16, 0, &mut rng))
        .push(prelu(16, &mut rng))
        .push(MaxPool2d::ceil(3, 2).unwrap());
    let x = Tensor::from_shape_simple_fn(vec![3, 3, 25, 27], || rng.random_range(-1.0..1.0));
    let fused = net.infer(&x).unwrap();
    let one_by_one = net
        .layers()
        .iter()
        .try_fold(x.clone(), |y, layer| layer.infer(&y))
        .unwrap();
    assert_eq!(fused.shape(), one_by_one.shape());
    let bits = |t: &Tensor| t.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&fused), bits(&one_by_one));
    assert!(
        fused.iter().any(|&v| v < 0.0),
        "no value took the negative slope"
    );
}

/// A PReLU of another width than the convolution before it fails as it does alone: an
/// error, not an index past its slopes.
#[test]
fn a_prelu_of_the_wrong_width_after_a_convolution_is_an_error() {
    use super::prelu::PRelu;
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let mut net = Sequential::new();
    net.push(conv3(2, 4, 1, &mut rng))
        .push(PRelu::new(3).unwrap());
    let x = Tensor::from_shape_simple_fn(vec![1, 2, 6, 6], || rng.random_range(-1.0..1.0));
    assert!(net.infer(&x).is_err());
}

/// A 2×2 pooling in ceil mode after a convolution whose maps are one row high fails as
/// the pooling layer does on its own, not pooled by the convolution.
#[test]
fn a_ceil_pooling_of_maps_under_two_rows_after_a_convolution_is_an_error() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut net = Sequential::new();
    net.push(conv3(2, 4, 0, &mut rng))
        .push(MaxPool2d::ceil(2, 2).unwrap());
    let x = Tensor::from_shape_simple_fn(vec![1, 2, 3, 8], || rng.random_range(-1.0..1.0));
    assert!(net.infer(&x).is_err());
    let x = Tensor::from_shape_simple_fn(vec![1, 2, 4, 8], || rng.random_range(-1.0..1.0));
    assert_eq!(net.infer(&x).unwrap().shape(), &[1, 4, 1, 3]);
}
