//! Softmax and cross-entropy, fused.

use ndarray::Array2;

use super::{LossOutput, batch_matrix};
use crate::nn::{NnError, Result};

/// Softmax cross-entropy of logits z `(N, K)` against class indices y (N of them):
///
/// ```text
/// E = (1/N) Σᵢ [ log Σₖ exp(zᵢₖ) − zᵢ,yᵢ ]        dE/dzᵢₖ = (softmax(zᵢ)ₖ − [k = yᵢ]) / N
/// ```
///
/// The log-sum-exp is taken after subtracting each row's maximum, so logits of ±1e4
/// neither overflow nor lose the row's small differences. Equals
/// `F.cross_entropy(z, y)` (mean reduction).
pub fn softmax_cross_entropy(logits: &crate::nn::Tensor, targets: &[usize]) -> Result<LossOutput> {
    const OP: &str = "softmax_cross_entropy";
    let z = batch_matrix(OP, logits, targets.len())?;
    let (n, k) = z.dim();
    if let Some((i, &t)) = targets.iter().enumerate().find(|&(_, &t)| t >= k) {
        return Err(NnError::Invalid(format!(
            "{OP}: target {t} of row {i} is out of range for {k} classes"
        )));
    }
    let scale = 1.0 / n as f64;
    let mut grad = Array2::<f32>::zeros((n, k));
    let mut total = 0.0_f64;
    for ((row, mut g), &t) in z.outer_iter().zip(grad.outer_iter_mut()).zip(targets) {
        let max = row
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let sum: f64 = row.iter().map(|&v| (f64::from(v) - max).exp()).sum();
        let log_sum_exp = max + sum.ln();
        total += log_sum_exp - f64::from(row[t]);
        for (gk, &v) in g.iter_mut().zip(row) {
            *gk = ((f64::from(v) - log_sum_exp).exp() * scale) as f32;
        }
        g[t] -= scale as f32;
    }
    Ok(LossOutput {
        value: (total * scale) as f32,
        grad: grad.into_dyn(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Tensor;
    use ndarray::{ArrayD, IxDyn};

    fn logits(n: usize, k: usize, values: &[f32]) -> Tensor {
        ArrayD::from_shape_vec(IxDyn(&[n, k]), values.to_vec()).unwrap()
    }

    #[test]
    fn uniform_logits_cost_log_k() {
        let out = softmax_cross_entropy(&logits(2, 4, &[0.0; 8]), &[0, 3]).unwrap();
        assert!((out.value - 4f32.ln()).abs() < 1e-6);
        // softmax 1/4 everywhere, minus 1 at the target, over N = 2
        assert!((out.grad[[0, 0]] + 0.375).abs() < 1e-7 && (out.grad[[1, 0]] - 0.125).abs() < 1e-7);
    }

    #[test]
    fn huge_logits_neither_overflow_nor_underflow() {
        // row 0: the target wins by 2e4 → loss 0; row 1: the target loses by 2e4 → loss 2e4
        let z = logits(2, 3, &[1e4, -1e4, 0.0, 1e4, -1e4, 0.0]);
        let out = softmax_cross_entropy(&z, &[0, 1]).unwrap();
        assert!((out.value - 1e4).abs() < 1e-2, "loss {}", out.value);
        assert!(out.grad.iter().all(|g| g.is_finite()));
        let expect = [0.0, 0.0, 0.0, 0.5, -0.5, 0.0];
        for (g, e) in out.grad.iter().zip(expect) {
            assert!((g - e).abs() < 1e-6, "{:?}", out.grad);
        }
    }

    #[test]
    fn gradient_rows_sum_to_zero() {
        let z = logits(2, 3, &[0.3, -1.2, 2.0, 0.5, 0.5, -0.1]);
        let out = softmax_cross_entropy(&z, &[2, 0]).unwrap();
        for row in out.grad.outer_iter() {
            assert!(row.sum().abs() < 1e-7);
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let cases: [(Tensor, Vec<usize>, &str); 5] = [
            (logits(2, 3, &[0.0; 6]), vec![0, 3], "out of range"),
            (logits(2, 3, &[0.0; 6]), vec![0], "2 rows but 1 labels"),
            (Tensor::zeros(IxDyn(&[0, 3])), vec![], "N ≥ 1"),
            (Tensor::zeros(IxDyn(&[2, 3, 1])), vec![0, 1], "(N, K)"),
            (logits(1, 2, &[f32::NAN, 0.0]), vec![0], "not finite"),
        ];
        for (z, t, expect) in cases {
            let err = softmax_cross_entropy(&z, &t).unwrap_err().to_string();
            assert!(err.contains(expect), "expected '{expect}' in '{err}'");
        }
    }
}
