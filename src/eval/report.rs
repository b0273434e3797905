//! Writing evaluation results: numbers as JSON, ROC curves as PNG.

use std::path::Path;

use serde::Serialize;

use super::error::{EvalError, Result};
use super::metrics::RocPoint;
use super::plot::{Axes, Series, lines_with};

/// Writes `value` as pretty-printed JSON.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let output = |message: String| EvalError::Output {
        path: path.display().to_string(),
        message,
    };
    let json = serde_json::to_string_pretty(value).map_err(|e| output(e.to_string()))?;
    std::fs::write(path, json + "\n").map_err(|e| output(e.to_string()))
}

/// Plots ROC curves (TAR against log₁₀ FAR; points at FAR 0 are left out, as a log
/// axis cannot show them) to a PNG, one named curve per method.
pub fn write_roc_png(path: &Path, curves: &[(&str, &[RocPoint])]) -> Result<()> {
    let series: Vec<Series> = curves
        .iter()
        .map(|(name, points)| {
            let xy = points
                .iter()
                .filter(|p| p.far > 0.0)
                .map(|p| (p.far.log10(), p.tar))
                .collect();
            Series::new(*name, xy)
        })
        .collect();
    let axes = Axes {
        x_label: "log10 FAR".into(),
        y_label: "TAR".into(),
    };
    lines_with(
        path,
        "ROC: verification on held-out identities",
        &axes,
        &series,
    )
}
