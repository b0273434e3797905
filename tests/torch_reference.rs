//! The engine against PyTorch on identical inputs and weights (issue #2, "Correctness").
//!
//! The fixtures under `tests/fixtures/torch/` come from the seeded script
//! `scripts/torch_reference.py`; regenerate them from the repository root with
//!
//! ```sh
//! python3 -m venv .venv && .venv/bin/pip install torch safetensors numpy
//! .venv/bin/python scripts/torch_reference.py
//! ```
//!
//! The references are computed in float64 from float32 (or float16-exact) inputs, and
//! stored as float32. Agreement (relative error as defined in `support::torch`, floor =
//! the reference tensor's RMS): ≤ 1e-4 for forward values (losses, embeddings, batch-norm
//! running statistics), ≤ 1e-3 for gradients (absolute floor 1e-3, for the exactly-zero
//! gradients of biases feeding a batch norm) and for parameters after 5 optimiser steps.
//! The Adam trajectory runs with ε̂ = 1e-3 (the script says why: at PyTorch's 1e-8,
//! rounding noise in exactly-zero gradients drives full-size steps, and float32 PyTorch
//! itself strays 20% from the float64 reference); SGD uses momentum 0.9 and L2 decay.
//! On a mismatch a test prints the first mismatching elements and the largest error of
//! every tensor that disagrees, then fails. The angular-margin heads and residual blocks
//! are compared in `tests/torch_reference_blocks.rs`, from the same script.

mod support;

use std::sync::{Arc, Mutex};

use faceprint::model::arch::ArchSpec;
use faceprint::nn::dropout::Dropout;
use faceprint::nn::loss::{
    ContrastiveConfig, Distance, EmbeddingLoss, Mining, PairWeighting, TripletConfig,
    contrastive_loss, softmax_cross_entropy, squared_error, triplet_loss,
};
use faceprint::nn::optim::{Adam, AdamConfig, Optimizer, Sgd, SgdConfig, WeightDecay};
use faceprint::nn::sequential::Sequential;
use faceprint::nn::{Layer, Mode, NnError, Result, Tensor};
use ndarray::Axis;
use serde_json::Value;
use support::torch::{Fixture, Report, f16_to_f32};

const FORWARD: f64 = 1e-4;
const GRADIENT: f64 = 1e-3;
const GRADIENT_FLOOR: f64 = 1e-3;

#[test]
fn f16_values_widen_exactly() {
    let cases = [
        (0x3c00, 1.0),
        (0xc000, -2.0),
        (0x7bff, 65504.0),
        (0x0001, 2f32.powi(-24)),
        (0x3555, 0.333_251_95),
        (0x0000, 0.0),
    ];
    for (bits, value) in cases {
        assert_eq!(f16_to_f32(bits), value, "{bits:#06x}");
    }
    assert!(f16_to_f32(0x7c00).is_infinite() && f16_to_f32(0x7e00).is_nan());
}

// ------------------------------------------------------------------------------ losses

fn check_embedding_loss(r: &mut Report, fx: &Fixture, key: &str, out: Result<EmbeddingLoss>) {
    let out = out.unwrap_or_else(|e| panic!("{key}: {e}"));
    r.scalar(
        &format!("{key}.loss"),
        out.output.value,
        fx.scalar(&format!("{key}.loss")),
        FORWARD,
    );
    let grad = fx.tensor(&format!("{key}.grad"));
    r.tensor(
        &format!("{key}.grad"),
        &out.output.grad,
        &grad,
        GRADIENT,
        0.0,
    );
    r.count(
        &format!("{key}.terms"),
        out.stats.terms,
        fx.indices(&format!("{key}.terms"))[0],
    );
    r.count(
        &format!("{key}.active"),
        out.stats.active,
        fx.indices(&format!("{key}.active"))[0],
    );
}

#[test]
fn every_loss_agrees_with_pytorch() {
    let fx = Fixture::load("losses.safetensors");
    let mut r = Report::default();
    for key in ["ce", "ce_big"] {
        let out = softmax_cross_entropy(
            &fx.tensor(&format!("{key}.logits")),
            &fx.indices(&format!("{key}.targets")),
        )
        .unwrap_or_else(|e| panic!("{key}: {e}"));
        r.scalar(
            &format!("{key}.loss"),
            out.value,
            fx.scalar(&format!("{key}.loss")),
            FORWARD,
        );
        r.tensor(
            &format!("{key}.grad"),
            &out.grad,
            &fx.tensor(&format!("{key}.grad")),
            GRADIENT,
            0.0,
        );
    }
    let out = squared_error(&fx.tensor("mse.output"), &fx.tensor("mse.target")).expect("mse");
    r.scalar("mse.loss", out.value, fx.scalar("mse.loss"), FORWARD);
    r.tensor("mse.grad", &out.grad, &fx.tensor("mse.grad"), GRADIENT, 0.0);

    let (x, labels) = (fx.tensor("emb.x"), fx.indices("emb.labels"));
    for (distance, dname) in [
        (Distance::Euclidean, "euclidean"),
        (Distance::Squared, "squared"),
    ] {
        let margin = fx.scalar(&format!("triplet.{dname}.margin"));
        for (mining, mname) in [
            (Mining::All, "all"),
            (Mining::BatchHard, "batch_hard"),
            (Mining::SemiHard, "semi_hard"),
        ] {
            for (soft, prefix) in [(false, "triplet"), (true, "triplet_soft")] {
                let cfg = TripletConfig {
                    margin,
                    distance,
                    mining,
                    soft,
                };
                let key = format!("{prefix}.{mname}.{dname}");
                check_embedding_loss(&mut r, &fx, &key, triplet_loss(&x, &labels, &cfg));
            }
        }
    }
    let margin = fx.scalar("contrastive.margin");
    for (weighting, wname) in [
        (PairWeighting::AllPairs, "all_pairs"),
        (PairWeighting::Balanced, "balanced"),
    ] {
        let cfg = ContrastiveConfig { margin, weighting };
        let key = format!("contrastive.{wname}");
        check_embedding_loss(&mut r, &fx, &key, contrastive_loss(&x, &labels, &cfg));
    }
    r.finish("every_loss_agrees_with_pytorch");
}

// ------------------------------------------------------------------------ reference CNN

/// The network's dropout, fed the masks PyTorch used: the test sets `next` before each
/// training forward.
#[derive(Debug)]
struct ScriptedDropout {
    inner: Dropout,
    next: Arc<Mutex<Option<Tensor>>>,
}

impl Layer for ScriptedDropout {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.inner.output_shape(input)
    }
    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        if mode == Mode::Train {
            let mask = self.next.lock().ok().and_then(|mut m| m.take());
            let mask = mask.ok_or_else(|| NnError::Invalid("no dropout mask scripted".into()))?;
            self.inner.set_next_mask(mask)?;
        }
        self.inner.forward(x, mode)
    }
    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        self.inner.infer(x)
    }
    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        self.inner.backward(dy)
    }
}

/// `model::arch`'s reference CNN with PyTorch's initial weights and scripted dropout.
struct Reference {
    fx: Fixture,
    net: Sequential,
    next_mask: Arc<Mutex<Option<Tensor>>>,
    masks: Tensor,
    x: Tensor,
    labels: Vec<usize>,
    loss: TripletConfig,
}

impl Reference {
    fn new() -> Reference {
        let fx = Fixture::load("cnn.safetensors");
        let mut net = ArchSpec::reference_cnn().build(0).expect("reference CNN");
        let p: f32 = fx.meta("dropout").parse().expect("dropout p");
        let next_mask = Arc::new(Mutex::new(None));
        let layers = net.layers_mut();
        let at = layers
            .iter()
            .position(|l| l.kind() == "dropout")
            .expect("a dropout layer");
        let inner = Dropout::new(p, 0).expect("dropout");
        layers[at] = Box::new(ScriptedDropout {
            inner,
            next: next_mask.clone(),
        });

        let names: Vec<String> = serde_json::from_str(&fx.meta("param_names")).expect("names");
        let mut params = net.params_mut();
        assert_eq!(
            params.len(),
            names.len(),
            "parameter count: ours vs PyTorch's {names:?}"
        );
        for (i, p) in params.iter_mut().enumerate() {
            let value = fx.tensor(&format!("param.{i:02}"));
            let ours = p.value.shape().to_vec();
            assert_eq!(
                ours,
                value.shape(),
                "parameter {i}: our {} vs PyTorch's {}",
                p.name,
                names[i]
            );
            p.value = value;
        }
        let margin = fx.meta("margin").parse().expect("margin");
        Reference {
            masks: fx.tensor("dropout.masks"),
            x: fx.tensor("input"),
            labels: fx.indices("labels"),
            loss: TripletConfig {
                margin,
                distance: Distance::Euclidean,
                mining: Mining::BatchHard,
                soft: false,
            },
            net,
            next_mask,
            fx,
        }
    }

    /// Zeroes the gradients, then a training forward with dropout mask `step`, the loss
    /// and the backward. Returns the embeddings and the loss value.
    fn forward_backward(&mut self, step: usize) -> (Tensor, f32) {
        let mask = self.masks.index_axis(Axis(0), step).to_owned();
        *self.next_mask.lock().expect("mask lock") = Some(mask);
        self.net.zero_grad();
        let emb = self.net.forward(&self.x, Mode::Train).expect("forward");
        let loss = triplet_loss(&emb, &self.labels, &self.loss).expect("loss");
        self.net.backward(&loss.output.grad).expect("backward");
        (emb, loss.output.value)
    }

    fn check_batch_norm_statistics(&self, r: &mut Report, prefix: &str, tol: f64) {
        let norms = self
            .net
            .layers()
            .iter()
            .filter(|l| l.kind() == "batch_norm");
        for (k, layer) in norms.enumerate() {
            for (name, ours) in layer.buffers() {
                let key = format!("{prefix}.bn.{k}.{name}");
                r.tensor(&key, ours, &self.fx.tensor(&key), tol, 0.0);
            }
        }
    }

    fn run_trajectory(&mut self, opt: &mut dyn Optimizer, lr: f32, name: &str) {
        let steps: usize = self.fx.meta("steps").parse().expect("steps");
        for step in 0..steps {
            self.forward_backward(step);
            opt.step(&mut self.net.params_mut(), lr)
                .expect("optimiser step");
        }
        let mut r = Report::default();
        for (i, p) in self.net.params().iter().enumerate() {
            let key = format!("{name}.param.{i:02}");
            r.tensor(&key, &p.value, &self.fx.tensor(&key), GRADIENT, 0.0);
        }
        self.check_batch_norm_statistics(&mut r, name, GRADIENT);
        r.finish(&format!("{name} trajectory"));
    }

    fn hyper(&self, optimiser: &str) -> Value {
        serde_json::from_str(&self.fx.meta(optimiser)).expect("optimiser settings")
    }
}

fn number(v: &Value, key: &str) -> f32 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {v}")) as f32
}

#[test]
fn reference_cnn_forward_backward_and_eval_agree_with_pytorch() {
    let mut net = Reference::new();
    let (emb, loss) = net.forward_backward(0);
    let mut r = Report::default();
    r.tensor(
        "train.embeddings",
        &emb,
        &net.fx.tensor("train.embeddings"),
        FORWARD,
        0.0,
    );
    r.scalar("train.loss", loss, net.fx.scalar("train.loss"), FORWARD);
    net.check_batch_norm_statistics(&mut r, "train", FORWARD);
    r.checkpoint("training forward (embeddings, loss, running statistics)");
    for (i, p) in net.net.params().iter().enumerate() {
        let key = format!("grad.{i:02}");
        let what = format!("{key} (d loss / d {})", p.name);
        r.tensor(
            &what,
            &p.grad,
            &net.fx.tensor(&key),
            GRADIENT,
            GRADIENT_FLOOR,
        );
    }
    r.checkpoint("parameter gradients");
    let eval = net.net.infer(&net.x).expect("eval forward");
    r.tensor(
        "eval.embeddings",
        &eval,
        &net.fx.tensor("eval.embeddings"),
        FORWARD,
        0.0,
    );
    r.finish("reference CNN forward/backward/eval");
}

#[test]
fn reference_cnn_after_five_adam_steps_agrees_with_pytorch() {
    let mut net = Reference::new();
    let h = net.hyper("adam");
    let betas = h["betas"].as_array().expect("betas");
    let beta = |i: usize| betas[i].as_f64().expect("beta") as f32;
    let cfg = AdamConfig {
        beta1: beta(0),
        beta2: beta(1),
        eps: number(&h, "eps"),
        ..Default::default()
    };
    let mut adam = Adam::new(&cfg).expect("adam");
    net.run_trajectory(&mut adam, number(&h, "lr"), "adam");
}

#[test]
fn reference_cnn_after_five_sgd_momentum_steps_agrees_with_pytorch() {
    let mut net = Reference::new();
    let h = net.hyper("sgd");
    // PyTorch decays the weights only (a parameter group), as Param::decay does here.
    let cfg = SgdConfig {
        momentum: number(&h, "momentum"),
        weight_decay: Some(WeightDecay::L2(number(&h, "weight_decay"))),
        ..Default::default()
    };
    let mut sgd = Sgd::new(&cfg).expect("sgd");
    net.run_trajectory(&mut sgd, number(&h, "lr"), "sgd");
}
