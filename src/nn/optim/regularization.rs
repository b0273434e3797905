//! Weight decay (L2 or decoupled) and the max-norm constraint, shared by all optimisers.

use serde::{Deserialize, Serialize};

use crate::nn::{NnError, Param, Result, Tensor};

/// Weight decay with coefficient λ, applied only to parameters with `Param::decay`.
///
/// In TOML: `weight_decay = { l2 = 5e-4 }` or `weight_decay = { decoupled = 1e-2 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum WeightDecay {
    /// λw is added to the gradient before the update: the gradient of E + ½λ‖w‖². This is
    /// `weight_decay` of PyTorch's SGD, Adagrad and Adam. Under Adam the decay is then
    /// rescaled by the adaptive step, which is why AdamW exists.
    L2(f32),
    /// w ← (1 − ελ)w before the update, outside the gradient statistics (Loshchilov &
    /// Hutter; PyTorch's `AdamW(weight_decay=λ)`).
    Decoupled(f32),
}

/// The regularisation one optimiser applies around its update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Regularization {
    decay: Option<WeightDecay>,
    max_norm: Option<f32>,
}

impl Regularization {
    pub(crate) fn new(
        op: &'static str,
        decay: Option<WeightDecay>,
        max_norm: Option<f32>,
    ) -> Result<Self> {
        if let Some(WeightDecay::L2(l) | WeightDecay::Decoupled(l)) = decay
            && (!l.is_finite() || l < 0.0)
        {
            return Err(NnError::Invalid(format!(
                "{op}: weight decay must be finite and ≥ 0, got {l}"
            )));
        }
        if let Some(c) = max_norm
            && (!c.is_finite() || c <= 0.0)
        {
            return Err(NnError::Invalid(format!(
                "{op}: max-norm bound must be finite and > 0, got {c}"
            )));
        }
        Ok(Regularization { decay, max_norm })
    }

    /// The λ to add (times w) to this parameter's gradient: non-zero only under L2 decay.
    pub(crate) fn l2(&self, p: &Param) -> f32 {
        match self.decay {
            Some(WeightDecay::L2(l)) if p.decay => l,
            _ => 0.0,
        }
    }

    /// Step 1: decoupled decay w ← (1 − ελ)w, if configured and the parameter decays.
    pub(crate) fn decouple(&self, p: &mut Param, lr: f32) {
        if let Some(WeightDecay::Decoupled(l)) = self.decay
            && p.decay
        {
            let keep = 1.0 - lr * l;
            p.value.mapv_inplace(|w| w * keep);
        }
    }

    /// Step 3: the max-norm constraint, if configured and the parameter is constrained.
    pub(crate) fn constrain(&self, p: &mut Param) {
        if let Some(c) = self.max_norm
            && p.max_norm
        {
            max_norm_rows(&mut p.value, c);
        }
    }
}

/// Rescales each slice along axis 0 (one unit's incoming weights: a row of a linear
/// weight `(O, I)`, one filter of a convolution `(O, I, kh, kw)`) whose Euclidean norm
/// exceeds `c` to norm exactly `c`; slices within the bound are untouched. A 0-d tensor
/// is treated as a single unit.
pub fn max_norm_rows(value: &mut Tensor, c: f32) {
    if value.ndim() == 0 {
        let n = value.iter().map(|w| w * w).sum::<f32>().sqrt();
        if n > c {
            value.mapv_inplace(|w| w * c / n);
        }
        return;
    }
    for mut unit in value.outer_iter_mut() {
        let n = unit
            .iter()
            .map(|&w| f64::from(w) * f64::from(w))
            .sum::<f64>()
            .sqrt() as f32;
        if n > c {
            let scale = c / n;
            unit.mapv_inplace(|w| w * scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn};

    #[test]
    fn max_norm_rescales_only_the_units_above_the_bound() {
        // rows: norm 5 (3,4) → rescaled to 2; norm 1 (0.6, 0.8) → unchanged
        let mut w = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![3.0, 4.0, 0.6, 0.8]).unwrap();
        max_norm_rows(&mut w, 2.0);
        let expect = [1.2, 1.6, 0.6, 0.8];
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn max_norm_treats_each_convolution_filter_as_one_unit() {
        // (O=2, I=1, 2, 2): filter 0 has norm 4, filter 1 norm 0.5; bound 1
        let mut w = ArrayD::from_shape_vec(IxDyn(&[2, 1, 2, 2]), vec![2.0; 8]).unwrap();
        w.index_axis_mut(ndarray::Axis(0), 1).fill(0.25);
        max_norm_rows(&mut w, 1.0);
        for (o, unit) in w.outer_iter().enumerate() {
            let n = unit.iter().map(|x| x * x).sum::<f32>().sqrt();
            let expect = if o == 0 { 1.0 } else { 0.5 };
            assert!((n - expect).abs() < 1e-6, "filter {o} norm {n}");
        }
    }

    #[test]
    fn invalid_coefficients_are_errors() {
        assert!(Regularization::new("t", Some(WeightDecay::L2(-1.0)), None).is_err());
        assert!(Regularization::new("t", Some(WeightDecay::Decoupled(f32::NAN)), None).is_err());
        assert!(Regularization::new("t", None, Some(0.0)).is_err());
        assert!(Regularization::new("t", Some(WeightDecay::L2(0.0)), Some(3.0)).is_ok());
    }
}
