//! What `eval-embed` reports (`report.json`).

use serde::Serialize;

use super::pairs::{DetectionSummary, PairsReport};
use crate::eval::ProtocolReport;
use crate::eval::promise::PromiseRow;

/// One evaluated method: the model, or a baseline of
/// [`baseline_reports`](crate::eval::compare::baseline_reports).
#[derive(Debug, Clone, Serialize)]
pub struct MethodReport {
    pub name: String,
    pub report: ProtocolReport,
}

/// Everything `report.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub model_version: String,
    pub data: String,
    pub identities: usize,
    pub images: usize,
    pub baseline_train: Option<String>,
    pub methods: Vec<MethodReport>,
    /// With --pairs: the verification protocol's numbers.
    pub pairs: Option<PairsReport>,
    /// With --detect: images searched and those without a face.
    pub detection: Option<DetectionSummary>,
    /// With --check-promise: measured against promised open-set FAR.
    pub promise: Option<Vec<PromiseRow>>,
}
