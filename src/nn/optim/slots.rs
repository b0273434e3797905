//! Per-parameter optimiser state (momentum, moments, accumulators).

use crate::nn::{NnError, Param, Result, Tensor};

/// One state tensor per parameter, created on the first step with the parameters'
/// shapes and checked against them on every later step.
#[derive(Debug, Default, Clone)]
pub(crate) struct Slots {
    tensors: Vec<Tensor>,
}

impl Slots {
    /// Creates the state (filled with `init`) on the first call; afterwards checks that
    /// the parameter list still has the same length and shapes.
    pub(crate) fn prepare(
        &mut self,
        op: &'static str,
        params: &[&mut Param],
        init: f32,
    ) -> Result<()> {
        if self.tensors.is_empty() {
            self.tensors = params
                .iter()
                .map(|p| Tensor::from_elem(p.value.raw_dim(), init))
                .collect();
            return Ok(());
        }
        if self.tensors.len() != params.len() {
            return Err(NnError::Invalid(format!(
                "{op}: got {} parameters, but the optimiser state was built for {}",
                params.len(),
                self.tensors.len()
            )));
        }
        for (i, (s, p)) in self.tensors.iter().zip(params).enumerate() {
            if s.shape() != p.value.shape() {
                return Err(NnError::Invalid(format!(
                    "{op}: parameter {i} ({}) has shape {:?}, but its optimiser state has {:?}",
                    p.name,
                    p.value.shape(),
                    s.shape()
                )));
            }
        }
        Ok(())
    }

    /// Adds the state tensors to `out` as `"{name}.{index}"`.
    pub(crate) fn export(&self, name: &str, out: &mut super::OptimizerState) {
        for (i, t) in self.tensors.iter().enumerate() {
            out.insert(format!("{name}.{i}"), t.clone());
        }
    }

    /// Replaces the state by the tensors `"{name}.0"`, `"{name}.1"`, … of `state` (none:
    /// the state before the first step).
    pub(crate) fn import(&mut self, name: &str, state: &super::OptimizerState) -> Result<()> {
        let count = state
            .keys()
            .filter(|k| k.strip_prefix(name).is_some_and(|r| r.starts_with('.')))
            .count();
        self.tensors = (0..count)
            .map(|i| {
                state.get(&format!("{name}.{i}")).cloned().ok_or_else(|| {
                    NnError::Invalid(format!(
                        "optimiser state: {name}.{i} missing ({count} {name} tensors given)"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(())
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Result<&mut Tensor> {
        let len = self.tensors.len();
        self.tensors
            .get_mut(i)
            .ok_or_else(|| NnError::Invalid(format!("optimiser state {i} of {len} missing")))
    }
}

/// Checks what every step needs: a finite, non-negative learning rate and gradients of
/// the same shape as their values.
pub(crate) fn check_step(op: &'static str, params: &[&mut Param], lr: f32) -> Result<()> {
    if !lr.is_finite() || lr < 0.0 {
        return Err(NnError::Invalid(format!(
            "{op}: learning rate must be finite and ≥ 0, got {lr}"
        )));
    }
    for p in params {
        if p.grad.shape() != p.value.shape() {
            return Err(NnError::shape(
                op,
                format!(
                    "gradient of {} shaped like its value {:?}",
                    p.name,
                    p.value.shape()
                ),
                p.grad.shape(),
            ));
        }
    }
    Ok(())
}
