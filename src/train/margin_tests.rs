//! The margins' ψ against their closed forms, and finite-difference gradients through a
//! cosine head with each margin.

use super::*;
use crate::nn::cosine_head::CosineHead;
use crate::nn::gradcheck::{Tolerance, check_layer, unit_rows};
use crate::nn::{Layer, Mode, Param};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

fn close(a: f32, b: f32) -> bool {
    (a - b).abs() < 1e-5
}

#[test]
fn arcface_adds_the_margin_to_the_angle_and_falls_back_past_pi() {
    let arc = Margin::ArcFace {
        m: 0.5,
        easy: false,
    };
    assert!(close(arc.psi(0.7f32.cos()).0, 1.2f32.cos()));
    // θ = 3.0: θ + m > π, so ψ = cos θ − m sin m.
    assert!(close(
        arc.psi(3.0f32.cos()).0,
        3.0f32.cos() - 0.5 * 0.5f32.sin()
    ));
    let easy = Margin::ArcFace { m: 0.5, easy: true };
    assert!(close(easy.psi(0.3).0, (0.3f32.acos() + 0.5).cos()));
    assert_eq!(easy.psi(-0.2), (-0.2, 1.0));
    assert!(close(Margin::CosFace { m: 0.35 }.psi(0.5).0, 0.15));
}

#[test]
fn sphereface_psi_is_the_papers_piecewise_cosine_and_decreases_in_theta() {
    let sphere = Margin::SphereFace { m: 4, lambda: 0.0 };
    // θ = 1 rad lies in [π/4, π/2]: k = 1, ψ = −cos 4θ − 2.
    assert!(close(sphere.psi(1.0f32.cos()).0, -(4.0f32).cos() - 2.0));
    assert!(close(sphere.psi(1.0).0, 1.0));
    assert!(close(sphere.psi(-1.0).0, 1.0 - 2.0 * 4.0));
    let mut last = f32::INFINITY;
    for i in 0..=200 {
        let theta = PI * i as f32 / 200.0;
        let psi = sphere.psi(theta.cos()).0;
        assert!(
            psi <= last + 1e-5,
            "ψ rises at θ = {theta}: {psi} after {last}"
        );
        last = psi;
    }
    // λ blends: (λ cos θ + ψ) / (1 + λ).
    let blended = Margin::SphereFace { m: 4, lambda: 5.0 };
    let c = 1.0f32.cos();
    assert!(close(blended.psi(c).0, (5.0 * c + sphere.psi(c).0) / 6.0));
}

/// A cosine head whose true-class logits get a margin, as the trainer applies it.
#[derive(Debug)]
struct WithMargin {
    head: CosineHead,
    margin: Margin,
    scale: f32,
    labels: Vec<usize>,
    slopes: Vec<f32>,
}

impl Layer for WithMargin {
    fn kind(&self) -> &'static str {
        "cosine_head_with_margin"
    }
    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>> {
        self.head.output_shape(input)
    }
    fn forward(&mut self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let mut y = self.head.forward(x, mode)?;
        self.slopes = self.margin.apply(self.scale, &mut y, &self.labels)?;
        Ok(y)
    }
    fn infer(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = self.head.infer(x)?;
        self.margin.apply(self.scale, &mut y, &self.labels)?;
        Ok(y)
    }
    fn backward(&mut self, dy: &Tensor) -> Result<Tensor> {
        let mut g = dy.clone();
        Margin::backward(&mut g, &self.labels, &self.slopes)?;
        self.head.backward(&g)
    }
    fn params(&self) -> Vec<&Param> {
        self.head.params()
    }
    fn params_mut(&mut self) -> Vec<&mut Param> {
        self.head.params_mut()
    }
}

#[test]
fn margin_heads_gradients_match_finite_differences() {
    // m = 1.2 moves ArcFace's switch to cos θ = −0.36, so random angles use both sides.
    let arc = Margin::ArcFace {
        m: 1.2,
        easy: false,
    };
    let cases = [
        ("cosface", Margin::CosFace { m: 0.35 }),
        ("arcface", arc),
        (
            "arcface, easy margin",
            Margin::ArcFace { m: 0.5, easy: true },
        ),
        ("sphereface", Margin::SphereFace { m: 4, lambda: 0.0 }),
        (
            "sphereface, λ = 5",
            Margin::SphereFace { m: 3, lambda: 5.0 },
        ),
    ];
    let tol = Tolerance {
        eps: 1e-3,
        ..Tolerance::default()
    };
    let (n, k, classes, scale) = (10, 5, 4, 3.0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let head = CosineHead::new(k, classes, scale, &mut rng).unwrap();
    let x = unit_rows(n, k, &mut rng);
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    // The true-class cosines: ArcFace's switch on both sides and ≥ 20 ε from it.
    let cos = head.infer(&x).unwrap() / scale;
    let switch = (PI - 1.2f32).cos();
    let target: Vec<f32> = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| cos[[i, l]])
        .collect();
    assert!(target.iter().any(|&c| c < switch) && target.iter().any(|&c| c > switch));
    assert!(
        target
            .iter()
            .all(|&c| (c - switch).abs() > 0.02 && c.abs() < 0.98)
    );
    for (what, margin) in cases {
        let mut layer = WithMargin {
            head: head.clone(),
            margin,
            scale,
            labels: labels.clone(),
            slopes: Vec::new(),
        };
        if let Err(report) = check_layer(&mut layer, &x, &tol, 3, |_| {}) {
            panic!("{what}: {report}");
        }
    }
}

#[test]
fn labels_out_of_range_and_mismatched_rows_are_errors() {
    let arc = Margin::ArcFace {
        m: 0.5,
        easy: false,
    };
    let mut logits = Tensor::zeros(vec![2, 3]);
    assert!(arc.apply(16.0, &mut logits, &[0, 3]).is_err());
    assert!(arc.apply(16.0, &mut logits, &[0]).is_err());
    assert_eq!(arc.apply(16.0, &mut logits, &[0, 2]).unwrap().len(), 2);
}
