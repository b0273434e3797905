//! Angular margins on the true class's logit of a cosine head (training only): CosFace,
//! ArcFace and SphereFace. The head outputs `s · cos θ_c` for every class c; a margin
//! replaces the true class's entry by `s · ψ(cos θ)` with ψ(cos θ) ≤ cos θ, so a face
//! must beat every other identity by a margin to be classified confidently. Evaluation
//! and the saved model never see the margin (the embedding network is what is kept).

use ndarray::Axis;

use crate::nn::{NnError, Result, Tensor};

/// The function ψ of the true class's cosine, and its parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Margin {
    /// CosFace (Wang et al. 2018): `ψ = cos θ − m`.
    CosFace { m: f32 },
    /// ArcFace (Deng et al. 2019), as insightface's `ArcMarginProduct`:
    /// `ψ = cos(θ + m) = cos θ · cos m − sin θ · sin m` while `θ + m < π`, i.e.
    /// `cos θ > cos(π − m)`; beyond it (where cos(θ + m) would rise again) insightface's
    /// fallback `ψ = cos θ − m · sin m`, a CosFace-like margin that keeps ψ decreasing in
    /// θ (it is not continuous at the switch: for m = 0.5, ψ steps from −1 to −1.117).
    /// With `easy`: `ψ = cos(θ + m)` for `cos θ > 0` and `ψ = cos θ` otherwise.
    ArcFace { m: f32, easy: bool },
    /// SphereFace (Liu et al. 2017, A-Softmax) on normalised features: with
    /// θ ∈ [kπ/m, (k+1)π/m], `ψ(θ) = (−1)^k cos(mθ) − 2k` (monotonic in θ), computed from
    /// cos θ by the Chebyshev polynomial `cos(mθ) = T_m(cos θ)`, blended as the paper
    /// trains it: `(λ cos θ + ψ(θ)) / (1 + λ)`. Deliberate difference from the paper:
    /// λ is held fixed (the paper anneals it from 1000 down to a minimum of 5 over the
    /// iterations); λ = 0 is the pure A-Softmax margin. The feature norm ‖x‖ of the
    /// original is replaced by the head's scale s, as the embedding is unit length.
    SphereFace { m: u32, lambda: f32 },
}

/// `(T_m(c), T'_m(c))` with `T'_m = m · U_{m−1}` (Chebyshev polynomials of the first
/// and second kind, by their three-term recurrences).
fn chebyshev(m: u32, c: f64) -> (f64, f64) {
    let (mut t0, mut t1) = (1.0, c); // T_0, T_1
    let (mut u0, mut u1) = (0.0, 1.0); // U_{-1}, U_0
    for _ in 1..m {
        (t0, t1) = (t1, 2.0 * c * t1 - t0);
        (u0, u1) = (u1, 2.0 * c * u1 - u0);
    }
    if m == 0 {
        return (1.0, 0.0);
    }
    (t1, f64::from(m) * u1)
}

/// Below this sin θ the derivative of cos(θ + m), `cos m + sin m · cos θ / sin θ`,
/// is taken at sin θ = `MIN_SIN` (it grows without bound as θ → 0; PyTorch returns
/// inf/NaN there).
const MIN_SIN: f64 = 1e-6;

impl Margin {
    /// `(ψ(c), dψ/dc)` for `c = cos θ`, clamped to [−1, 1] first.
    pub fn psi(&self, c: f32) -> (f32, f32) {
        let c = f64::from(c).clamp(-1.0, 1.0);
        let (psi, slope) = match *self {
            Margin::CosFace { m } => (c - f64::from(m), 1.0),
            Margin::ArcFace { m, easy } => {
                let m = f64::from(m);
                let sin = (1.0 - c * c).max(0.0).sqrt();
                let on_arc = if easy {
                    c > 0.0
                } else {
                    c > (std::f64::consts::PI - m).cos()
                };
                if on_arc {
                    let slope = m.cos() + m.sin() * c / sin.max(MIN_SIN);
                    (c * m.cos() - sin * m.sin(), slope)
                } else if easy {
                    (c, 1.0)
                } else {
                    (c - m * m.sin(), 1.0)
                }
            }
            Margin::SphereFace { m, lambda } => {
                let theta = c.acos();
                let k = (f64::from(m) * theta / std::f64::consts::PI)
                    .floor()
                    .min(f64::from(m.saturating_sub(1)));
                let sign = if k as i64 % 2 == 0 { 1.0 } else { -1.0 };
                let (t, dt) = chebyshev(m, c);
                let (psi, dpsi) = (sign * t - 2.0 * k, sign * dt);
                let l = f64::from(lambda);
                ((l * c + psi) / (1.0 + l), (l + dpsi) / (1.0 + l))
            }
        };
        (psi as f32, slope as f32)
    }

    /// The new true-class logit for the logit `v = s · cos θ`, and d(new)/dv.
    fn logit(&self, scale: f32, v: f32) -> (f32, f32) {
        match *self {
            // A constant shift, exactly as before the other margins existed.
            Margin::CosFace { m } => (v - scale * m, 1.0),
            _ => {
                let (psi, slope) = self.psi(v / scale);
                (scale * psi, slope)
            }
        }
    }

    /// Replaces each row's true-class logit of `logits (N, C) = s · cos θ` by
    /// `s · ψ(cos θ)`; returns each row's d(new)/d(old) for [`Margin::backward`]. (N)
    pub fn apply(&self, scale: f32, logits: &mut Tensor, labels: &[usize]) -> Result<Vec<f32>> {
        check("margin", logits, labels)?;
        let mut slopes = Vec::with_capacity(labels.len());
        for (mut row, &label) in logits.axis_iter_mut(Axis(0)).zip(labels) {
            let (new, slope) = self.logit(scale, row[label]);
            row[label] = new;
            slopes.push(slope);
        }
        Ok(slopes)
    }

    /// Turns dE/d(logits after `apply`) into dE/d(logits before it), in place: the
    /// true-class entries are multiplied by their slopes, the others pass unchanged.
    pub fn backward(grad: &mut Tensor, labels: &[usize], slopes: &[f32]) -> Result<()> {
        check("margin backward", grad, labels)?;
        for ((mut row, &label), &slope) in grad.axis_iter_mut(Axis(0)).zip(labels).zip(slopes) {
            row[label] *= slope;
        }
        Ok(())
    }
}

/// `logits` must be `(N, C)` with N = labels.len() and every label < C.
fn check(op: &'static str, logits: &Tensor, labels: &[usize]) -> Result<()> {
    match *logits.shape() {
        [n, c] if n == labels.len() => match labels.iter().find(|&&l| l >= c) {
            Some(l) => Err(NnError::Invalid(format!(
                "{op}: label {l} is out of range for {c} classes"
            ))),
            None => Ok(()),
        },
        _ => Err(NnError::shape(
            op,
            format!("[{}, C] (one row per label)", labels.len()),
            logits.shape(),
        )),
    }
}

#[cfg(test)]
#[path = "margin_tests.rs"]
mod tests;
