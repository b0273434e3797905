//! Finite-difference gradient checks, shared by the tests of every layer and loss.
//!
//! A layer is reduced to a scalar by a fixed random projection of its output,
//! `E(x, θ) = Σ R ⊙ layer(x; θ)`, so `backward(R)` must return dE/dx and accumulate
//! dE/dθ. Each checked element is compared with the central difference
//! `(E(v + ε) − E(v − ε)) / 2ε`; E is summed in f64 from the f32 outputs.
//!
//! Choosing ε in f32: the truncation error of central differences is O(ε²·E'''), the
//! rounding error about `|E|·2⁻²⁴ / ε`. With inputs of order 1, ε = 1e-2 keeps both
//! near 1e-4 relative, so a tolerance of 1e-2 still catches a gradient that is off by
//! a few percent (a test below checks that a 5 % error fails). Inputs must stay more
//! than ε away from kinks (ReLU at 0, ties in max pooling and maxout).

use super::{Layer, Mode, Tensor};
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Step and acceptance of a check: element passes when
/// `|analytic − numeric| ≤ atol + rtol · max(|analytic|, |numeric|)`.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    pub eps: f32,
    pub rtol: f64,
    pub atol: f64,
    /// At most this many elements per tensor are checked (a seeded sample).
    pub max_checks: usize,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            eps: 1e-2,
            rtol: 1e-2,
            atol: 1e-3,
            max_checks: 150,
        }
    }
}

/// Compares `analytic` (dE/dv for every element of v) with central differences, where
/// `value(i, delta)` returns E with element `i` of v shifted by `delta`.
/// `Err` lists the first mismatches and the largest difference.
pub fn compare(
    what: &str,
    analytic: &[f32],
    tol: &Tolerance,
    seed: u64,
    mut value: impl FnMut(usize, f32) -> f64,
) -> Result<(), String> {
    let len = analytic.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut indices: Vec<usize> = if len <= tol.max_checks {
        (0..len).collect()
    } else {
        sample(&mut rng, len, tol.max_checks).into_vec()
    };
    indices.sort_unstable();
    let mut mismatches = Vec::new();
    let mut worst = (0.0f64, 0usize, 0.0f64, 0.0f64);
    for &i in &indices {
        let numeric = (value(i, tol.eps) - value(i, -tol.eps)) / (2.0 * f64::from(tol.eps));
        let a = f64::from(analytic[i]);
        let diff = (a - numeric).abs();
        if !diff.is_finite() || diff > tol.atol + tol.rtol * a.abs().max(numeric.abs()) {
            mismatches.push(format!("  [{i}] analytic {a:.6e}, numeric {numeric:.6e}"));
        }
        if diff.is_nan() || diff > worst.0 {
            worst = (diff, i, a, numeric);
        }
    }
    if mismatches.is_empty() {
        return Ok(());
    }
    let shown = mismatches.len().min(8);
    Err(format!(
        "{what}: {} of {} checked elements disagree; first:\n{}\n  largest difference {:.3e} at [{}]: analytic {:.6e}, numeric {:.6e}",
        mismatches.len(),
        indices.len(),
        mismatches[..shown].join("\n"),
        worst.0,
        worst.1,
        worst.2,
        worst.3
    ))
}

/// `Σ r·y` in f64.
fn project(r: &Tensor, y: &Tensor) -> f64 {
    r.iter()
        .zip(y.iter())
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Checks `layer`'s input gradient and every parameter gradient at input `x`.
/// `prepare` runs before every training forward (e.g. to reseed dropout so every
/// evaluation sees the same mask).
pub fn check_layer<L: Layer + ?Sized>(
    layer: &mut L,
    x: &Tensor,
    tol: &Tolerance,
    seed: u64,
    mut prepare: impl FnMut(&mut L),
) -> Result<(), String> {
    let fail = |e: super::NnError| e.to_string();
    prepare(layer);
    let y = layer.forward(x, Mode::Train).map_err(fail)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let r = y.mapv(|_| rng.random_range(-1.0f32..1.0));

    for p in layer.params_mut() {
        p.zero_grad();
    }
    prepare(layer);
    layer.forward(x, Mode::Train).map_err(fail)?;
    let dx = layer.backward(&r).map_err(fail)?;
    let analytic_params: Vec<(&'static str, Vec<f32>)> = layer
        .params()
        .iter()
        .map(|p| (p.name, p.grad.iter().copied().collect()))
        .collect();

    let mut energy = |layer: &mut L, input: &Tensor| -> f64 {
        prepare(layer);
        match layer.forward(input, Mode::Train) {
            Ok(y) => project(&r, &y),
            Err(_) => f64::NAN,
        }
    };

    let analytic_dx: Vec<f32> = dx.iter().copied().collect();
    let mut xs = x.as_standard_layout().into_owned();
    let kind = layer.kind();
    compare(
        &format!("{kind}: dE/dx"),
        &analytic_dx,
        tol,
        seed ^ 1,
        |i, delta| {
            let flat = xs.as_slice_mut().expect("standard layout");
            let old = flat[i];
            flat[i] = old + delta;
            let e = energy(layer, &xs);
            xs.as_slice_mut().expect("standard layout")[i] = old;
            e
        },
    )?;

    for (index, (name, analytic)) in analytic_params.iter().enumerate() {
        compare(
            &format!("{kind}: dE/d{name}"),
            analytic,
            tol,
            seed ^ 2,
            |i, delta| {
                let set = |layer: &mut L, to: f32| {
                    if let Some(v) = layer.params_mut()[index].value.iter_mut().nth(i) {
                        *v = to;
                    }
                };
                let old = layer.params()[index]
                    .value
                    .iter()
                    .nth(i)
                    .copied()
                    .unwrap_or(0.0);
                set(layer, old + delta);
                let e = energy(layer, x);
                set(layer, old);
                e
            },
        )?;
    }
    Ok(())
}

/// `n` random rows of length `k`, each scaled to unit length: inputs for the layers and
/// heads that expect embeddings.
pub fn unit_rows(n: usize, k: usize, rng: &mut ChaCha8Rng) -> Tensor {
    let mut x = ndarray::Array2::from_shape_fn((n, k), |_| rng.random_range(-1.0f32..1.0));
    for mut row in x.outer_iter_mut() {
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    x.into_dyn()
}
