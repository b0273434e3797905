//! Squared error for regression outputs.

use ndarray::Zip;

use super::LossOutput;
use crate::nn::{NnError, Result, Tensor};

/// Squared error of outputs d against targets y, both `(N, …)`:
///
/// ```text
/// E = (1/N) Σᵢ ½‖dᵢ − yᵢ‖²        dE/dd = (d − y) / N
/// ```
///
/// A mean over the batch axis and a sum over the rest; PyTorch equivalent:
/// `0.5 * ((d - y) ** 2).flatten(1).sum(1).mean()`.
pub fn squared_error(output: &Tensor, target: &Tensor) -> Result<LossOutput> {
    const OP: &str = "squared_error";
    if output.shape() != target.shape() {
        return Err(NnError::shape(
            OP,
            format!("outputs shaped like the targets {:?}", target.shape()),
            output.shape(),
        ));
    }
    let n = output.shape().first().copied().unwrap_or(0);
    if n == 0 {
        return Err(NnError::shape(OP, "(N, …) with N ≥ 1", output.shape()));
    }
    let scale = 1.0 / n as f64;
    let mut grad = Tensor::zeros(output.raw_dim());
    let mut total = 0.0_f64;
    Zip::from(&mut grad)
        .and(output)
        .and(target)
        .for_each(|g, &d, &y| {
            let diff = f64::from(d) - f64::from(y);
            total += 0.5 * diff * diff;
            *g = (diff * scale) as f32;
        });
    let value = (total * scale) as f32;
    if !value.is_finite() {
        return Err(NnError::Invalid(format!("{OP}: non-finite loss {value}")));
    }
    Ok(LossOutput { value, grad })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn half_squared_distance_averaged_over_rows() {
        let d = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1.0, 2.0, 0.0, 0.0]).unwrap();
        let y = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![0.0, 0.0, 0.0, 3.0]).unwrap();
        let out = squared_error(&d, &y).unwrap();
        // (½·5 + ½·9) / 2 = 3.5; gradient (d − y)/2
        assert!((out.value - 3.5).abs() < 1e-6);
        assert_eq!(out.grad.as_slice().unwrap(), &[0.5, 1.0, 0.0, -1.5]);
    }

    #[test]
    fn mismatched_or_empty_inputs_are_errors() {
        let a = Tensor::zeros(IxDyn(&[2, 3]));
        let err = squared_error(&a, &Tensor::zeros(IxDyn(&[3, 2]))).unwrap_err();
        assert!(
            err.to_string().contains("[3, 2]") && err.to_string().contains("[2, 3]"),
            "{err}"
        );
        let empty = Tensor::zeros(IxDyn(&[0, 3]));
        assert!(squared_error(&empty, &empty).is_err());
        let nan = ArrayD::from_elem(IxDyn(&[1, 1]), f32::NAN);
        assert!(squared_error(&nan, &nan).is_err());
    }
}
