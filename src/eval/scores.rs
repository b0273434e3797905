//! Identity-level similarity scores between probes and a gallery.
//!
//! Embeddings are rows of `(N, K)` arrays, compared by cosine similarity. An identity's
//! score for a probe is the best score over its enrolled faces (as the server answers),
//! so one identity never appears twice among the candidates.

use ndarray::{Array2, ArrayView2, Axis};

use super::error::{EvalError, Result};

/// Probe × identity similarities: `scores[[p, j]]` is probe `p` against identity
/// `identities[j]` (identities sorted ascending).
#[derive(Debug, Clone)]
pub struct IdentityScores {
    pub identities: Vec<usize>,
    /// `(P, I)` best cosine similarity per enrolled identity.
    pub scores: Array2<f32>,
}

impl IdentityScores {
    /// Identity-level scores of `probes` `(P, K)` against the `gallery` `(G, K)` whose
    /// row `g` is enrolled as `gallery_labels[g]`. Rows are L2-normalised here, so any
    /// non-zero embedding works; a zero row is an error.
    pub fn compute(
        gallery: ArrayView2<f32>,
        gallery_labels: &[usize],
        probes: ArrayView2<f32>,
    ) -> Result<IdentityScores> {
        if gallery.nrows() != gallery_labels.len() {
            return Err(EvalError::mismatch(
                "gallery labels",
                format!("{} (one per gallery row)", gallery.nrows()),
                gallery_labels.len(),
            ));
        }
        if gallery.ncols() != probes.ncols() {
            return Err(EvalError::mismatch(
                "probe embedding dimension",
                gallery.ncols(),
                probes.ncols(),
            ));
        }
        if gallery.nrows() == 0 {
            return Err(EvalError::Invalid("the gallery is empty".into()));
        }
        let mut identities = gallery_labels.to_vec();
        identities.sort_unstable();
        identities.dedup();
        let column: Vec<usize> = gallery_labels
            .iter()
            .map(|l| identities.binary_search(l).unwrap_or(0))
            .collect();
        let faces = normalised(gallery, "gallery")?.dot(&normalised(probes, "probe")?.t()); // (G, P)
        let mut scores = Array2::from_elem((probes.nrows(), identities.len()), f32::NEG_INFINITY);
        for (g, row) in faces.outer_iter().enumerate() {
            let j = column[g];
            for (p, &s) in row.iter().enumerate() {
                let best = &mut scores[[p, j]];
                *best = best.max(s);
            }
        }
        Ok(IdentityScores { identities, scores })
    }

    /// For each probe: `(identity, score)` of its best-scoring identity.
    pub fn top1(&self) -> Vec<(usize, f32)> {
        self.scores
            .outer_iter()
            .map(|row| {
                let (j, &s) = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .unwrap_or((0, &f32::NEG_INFINITY));
                (self.identities.get(j).copied().unwrap_or(usize::MAX), s)
            })
            .collect()
    }

    /// Whether identity `label` is enrolled.
    pub fn is_enrolled(&self, label: usize) -> bool {
        self.identities.binary_search(&label).is_ok()
    }

    /// Verification pairs: every probe against every enrolled identity, split into
    /// genuine (same identity) and impostor scores.
    pub fn pairs(&self, probe_labels: &[usize]) -> (Vec<f32>, Vec<f32>) {
        let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
        for (row, &label) in self.scores.outer_iter().zip(probe_labels) {
            for (&id, &s) in self.identities.iter().zip(row) {
                if id == label {
                    genuine.push(s);
                } else {
                    impostor.push(s);
                }
            }
        }
        (genuine, impostor)
    }
}

/// Rows divided by their L2 norm; an error names the first zero or non-finite row.
pub fn normalised(x: ArrayView2<f32>, what: &str) -> Result<Array2<f32>> {
    let mut out = x.to_owned();
    for (i, mut row) in out.axis_iter_mut(Axis(0)).enumerate() {
        let norm = row.dot(&row).sqrt();
        if !(norm.is_finite() && norm > 0.0) {
            return Err(EvalError::Invalid(format!(
                "{what} embedding {i} has norm {norm}: cannot compare by cosine"
            )));
        }
        row /= norm;
    }
    Ok(out)
}
