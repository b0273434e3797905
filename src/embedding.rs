//! The embedding: the vector a face becomes, from the model to the index.
//!
//! [`Embedding`] is finite and unit-length by construction — checked once, where it is
//! made (the model's output, a stored row read back, a vector a client sends) — so the
//! index and every cosine after it take it as it is. Its length is the model's
//! dimension, which only the holder of a model or an index knows: they check that.

use serde::{Serialize, Serializer};

/// Largest accepted `|‖v‖ − 1|`. f32 normalisation leaves errors near 1e-7·√D; a looser
/// bound accepts vectors written by other tools (or read back from f16) while still
/// rejecting anything that was never normalised.
pub const UNIT_NORM_TOLERANCE: f32 = 1e-3;

/// Why a vector is not an embedding.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbeddingError {
    #[error("embedding value at position {position} is not finite ({value})")]
    NonFinite { position: usize, value: f32 },
    #[error("embedding is not unit length: norm {norm}, expected 1 ± {tolerance}")]
    NotUnit { norm: f32, tolerance: f32 },
}

/// A finite vector of unit length (within [`UNIT_NORM_TOLERANCE`]). Reads as a slice of
/// `f32`; serialises as a JSON array of numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// `values` as an embedding: every value finite and `‖v‖₂ = 1` within
    /// [`UNIT_NORM_TOLERANCE`].
    pub fn new(values: Vec<f32>) -> Result<Embedding, EmbeddingError> {
        if let Some((position, &value)) = values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(EmbeddingError::NonFinite { position, value });
        }
        let norm = norm(&values);
        if (norm - 1.0).abs() > UNIT_NORM_TOLERANCE {
            return Err(EmbeddingError::NotUnit {
                norm,
                tolerance: UNIT_NORM_TOLERANCE,
            });
        }
        Ok(Embedding(values))
    }

    /// A row an index stored: it was an `Embedding` when it went in.
    pub(crate) fn stored(values: Vec<f32>) -> Embedding {
        Embedding(values)
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Cosine similarity with `other`: their dot product (both are unit length). Vectors
    /// of different lengths compare over the shorter one.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        self.0.iter().zip(&other.0).map(|(a, b)| a * b).sum()
    }
}

impl std::ops::Deref for Embedding {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Embedding {
    type Item = &'a f32;
    type IntoIter = std::slice::Iter<'a, f32>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for Embedding {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

/// ‖v‖₂, accumulated in f64 (a 512-d vector's f32 sum drifts by ~1e-6).
fn norm(values: &[f32]) -> f32 {
    values
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .sqrt() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_unit_vector_and_names_each_kind_of_bad_one() {
        let unit = Embedding::new(vec![0.6, 0.8, 0.0]).unwrap();
        assert_eq!(unit.as_slice(), &[0.6, 0.8, 0.0]);
        assert!(matches!(
            Embedding::new(vec![0.6, f32::NAN, 0.8]),
            Err(EmbeddingError::NonFinite { position: 1, .. })
        ));
        assert!(matches!(
            Embedding::new(vec![0.6, 0.0, f32::INFINITY]),
            Err(EmbeddingError::NonFinite { position: 2, .. })
        ));
        assert!(matches!(
            Embedding::new(vec![1.0, 1.0, 0.0]),
            Err(EmbeddingError::NotUnit { .. })
        ));
        assert!(matches!(
            Embedding::new(vec![0.0, 0.0, 0.0]),
            Err(EmbeddingError::NotUnit { .. })
        ));
    }

    #[test]
    fn cosine_of_unit_vectors_and_json_as_an_array() {
        let a = Embedding::new(vec![1.0, 0.0]).unwrap();
        let b = Embedding::new(vec![0.6, 0.8]).unwrap();
        assert!((a.cosine(&b) - 0.6).abs() < 1e-7);
        assert_eq!(serde_json::to_string(&b).unwrap(), "[0.6,0.8]");
    }
}
