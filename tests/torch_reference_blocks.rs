//! The angular-margin heads and residual blocks against PyTorch on identical inputs and
//! weights (the fixtures `margins.safetensors` and `resblock.safetensors` of the seeded
//! script `scripts/torch_reference.py`; see `tests/torch_reference.rs` for how to
//! regenerate them and for the tolerances, which are the same here).
//!
//! The margins go through the trainer's own path, `Objective::forward_backward` (cosine
//! head → margin on the true-class logit → mean cross-entropy → backward), with the head's
//! weight set to the fixture's. The blocks are two `Residual::basic_block`s (projection
//! shortcut at stride 2, then the identity) with PyTorch's weights; PyTorch's convolutions
//! have no bias, so the engine's (zero) conv biases must get gradients that are zero up to
//! rounding.

mod support;

use faceprint::nn::residual::{BlockActivation, Residual};
use faceprint::nn::sequential::Sequential;
use faceprint::nn::{Mode, Tensor};
use faceprint::train::config::{LossConfig, SoftmaxConfig};
use faceprint::train::head::HeadConfig;
use faceprint::train::objective::Objective;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use support::torch::{Fixture, Report};

const FORWARD: f64 = 1e-4;
const GRADIENT: f64 = 1e-3;
/// The floor for the conv biases' gradients, exactly 0 in exact arithmetic: each is a
/// sum of 80–320 values of dE/d(conv output) of order 1 (E = Σ r ⊙ y with r ~ N(0, 1),
/// whose sums, the β gradients, are of order 1–10), so f32 cancellation leaves a few
/// 1e-6. The tolerance then means |gradient| ≤ 1e-5. (The CNN test's floor of 1e-3
/// suits its smaller gradients.)
const BIAS_GRADIENT_FLOOR: f64 = 1e-2;

#[test]
fn arcface_sphereface_and_cosface_heads_agree_with_pytorch() {
    let fx = Fixture::load("margins.safetensors");
    let (x, weight, labels) = (fx.tensor("x"), fx.tensor("weight"), fx.indices("labels"));
    let (classes, dim) = (weight.shape()[0], weight.shape()[1]);
    let cases: BTreeMap<String, HeadConfig> =
        serde_json::from_str(&fx.meta("cases")).expect("cases are head configurations");
    assert_eq!(cases.len(), 5, "{cases:?}");
    let mut r = Report::default();
    for (name, head) in cases {
        let loss = LossConfig::Softmax(SoftmaxConfig { head });
        let mut objective = Objective::new(&loss, dim, classes, 0).expect("objective");
        let net = objective.head_mut().expect("a softmax head");
        net.visit_tensors_mut(&mut |tensor, t| {
            assert_eq!(tensor, "0.cosine_head.weight");
            *t = weight.clone();
        });

        // The logits after the margin, as the loss sees them.
        let (margin, scale) = head.margin().expect("every case has a margin");
        let mut logits = net.infer(&x).expect("logits");
        margin.apply(scale, &mut logits, &labels).expect("margin");
        r.tensor(
            &format!("{name}.logits"),
            &logits,
            &fx.tensor(&format!("{name}.logits")),
            FORWARD,
            0.0,
        );

        net.zero_grad();
        let (batch, dx) = objective.forward_backward(&x, &labels).expect("loss");
        r.scalar(
            &format!("{name}.loss"),
            batch.value,
            fx.scalar(&format!("{name}.loss")),
            FORWARD,
        );
        r.tensor(
            &format!("{name}.grad.x"),
            &dx,
            &fx.tensor(&format!("{name}.grad.x")),
            GRADIENT,
            0.0,
        );
        let head_net = objective.head().expect("a softmax head");
        let dw = &head_net.params()[0].grad;
        r.tensor(
            &format!("{name}.grad.weight"),
            dw,
            &fx.tensor(&format!("{name}.grad.weight")),
            GRADIENT,
            0.0,
        );
    }
    r.finish("arcface_sphereface_and_cosface_heads_agree_with_pytorch");
}

/// Two blocks with the fixture's parameters (conv biases stay zero).
fn blocks(fx: &Fixture) -> Sequential {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut net = Sequential::new();
    net.push(Residual::basic_block(3, 4, 2, BlockActivation::Relu, &mut rng).expect("block"))
        .push(Residual::basic_block(4, 4, 1, BlockActivation::Relu, &mut rng).expect("block"));
    let mut set = 0;
    net.visit_tensors_mut(&mut |name, t| {
        if name.ends_with("conv2d.bias") || name.contains("running_") {
            return;
        }
        *t = fx.tensor(&format!("param.{name}"));
        set += 1;
    });
    assert_eq!(set, 15, "parameters taken from the fixture");
    net
}

#[test]
fn residual_blocks_forward_backward_and_eval_agree_with_pytorch() {
    let fx = Fixture::load("resblock.safetensors");
    let mut net = blocks(&fx);
    let x = fx.tensor("input");
    let mut r = Report::default();

    net.zero_grad();
    let y = net.forward(&x, Mode::Train).expect("forward");
    r.tensor("train.output", &y, &fx.tensor("train.output"), FORWARD, 0.0);
    let dx = net.backward(&fx.tensor("projection")).expect("backward");
    r.tensor("grad.input", &dx, &fx.tensor("grad.input"), GRADIENT, 0.0);
    r.checkpoint("forward and input gradient");

    let names: Vec<String> = net.named_tensors().into_iter().map(|(n, _)| n).collect();
    let params = net.params();
    let param_names = names.iter().filter(|n| !n.contains("running_"));
    for (name, p) in param_names.zip(&params) {
        if name.ends_with("conv2d.bias") {
            let zero = Tensor::zeros(p.grad.raw_dim());
            r.tensor(
                &format!("grad.{name}"),
                &p.grad,
                &zero,
                GRADIENT,
                BIAS_GRADIENT_FLOOR,
            );
        } else {
            let expected = fx.tensor(&format!("grad.{name}"));
            r.tensor(&format!("grad.{name}"), &p.grad, &expected, GRADIENT, 0.0);
        }
    }
    for (name, t) in net.named_tensors() {
        if name.contains("running_") {
            r.tensor(
                &format!("train.{name}"),
                t,
                &fx.tensor(&format!("train.{name}")),
                FORWARD,
                0.0,
            );
        }
    }
    r.checkpoint("parameter gradients and running statistics");

    let y_eval = net.infer(&x).expect("eval");
    r.tensor(
        "eval.output",
        &y_eval,
        &fx.tensor("eval.output"),
        FORWARD,
        0.0,
    );
    r.finish("residual_blocks_forward_backward_and_eval_agree_with_pytorch");
}
