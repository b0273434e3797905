//! Gradient clipping by global norm.

use crate::nn::{NnError, Param, Result};

/// Scales all gradients together so that their global norm ‖(g₁, …, g_n)‖₂ is at most
/// `max_norm`, and returns the norm *before* clipping (worth logging: spikes show
/// instability). As `torch.nn.utils.clip_grad_norm_`: the factor is
/// `max_norm / (norm + 1e-6)`, applied only when below 1.
///
/// A non-finite norm is an error and leaves the gradients untouched, so a diverged step
/// is reported rather than written into the weights.
pub fn clip_grad_norm(params: &mut [&mut Param], max_norm: f32) -> Result<f32> {
    if !(max_norm.is_finite() && max_norm > 0.0) {
        return Err(NnError::Invalid(format!(
            "clip_grad_norm: max_norm must be finite and > 0, got {max_norm}"
        )));
    }
    let sum_sq: f64 = params
        .iter()
        .flat_map(|p| p.grad.iter())
        .map(|&g| f64::from(g) * f64::from(g))
        .sum();
    let norm = sum_sq.sqrt() as f32;
    if !norm.is_finite() {
        return Err(NnError::Invalid(format!(
            "clip_grad_norm: the gradients' global norm is {norm}"
        )));
    }
    let factor = max_norm / (norm + 1e-6);
    if factor < 1.0 {
        for p in params.iter_mut() {
            p.grad.mapv_inplace(|g| g * factor);
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    fn param(grad: &[f32]) -> Param {
        let mut p = Param::weight("weight", ArrayD::zeros(IxDyn(&[grad.len()])));
        p.grad = ArrayD::from_shape_vec(IxDyn(&[grad.len()]), grad.to_vec()).unwrap();
        p
    }

    #[test]
    fn clipping_scales_all_gradients_by_one_factor_and_returns_the_old_norm() {
        // global norm of (3) and (0, 4) is 5; clip to 1 → factor ≈ 0.2
        let (mut a, mut b) = (param(&[3.0]), param(&[0.0, 4.0]));
        let norm = clip_grad_norm(&mut [&mut a, &mut b], 1.0).unwrap();
        assert!((norm - 5.0).abs() < 1e-6);
        assert!((a.grad[[0]] - 0.6).abs() < 1e-6 && (b.grad[[1]] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn gradients_within_the_bound_are_untouched() {
        let mut a = param(&[0.3, -0.4]);
        assert!((clip_grad_norm(&mut [&mut a], 1.0).unwrap() - 0.5).abs() < 1e-6);
        assert_eq!(a.grad.as_slice().unwrap(), &[0.3, -0.4]);
    }

    #[test]
    fn a_non_finite_norm_or_bound_is_an_error() {
        let mut a = param(&[f32::INFINITY, 1.0]);
        assert!(clip_grad_norm(&mut [&mut a], 1.0).is_err());
        assert_eq!(a.grad[[1]], 1.0, "gradients untouched on error");
        let mut b = param(&[1.0]);
        assert!(clip_grad_norm(&mut [&mut b], 0.0).is_err());
    }
}
