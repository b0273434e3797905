//! Embeddings as BLOBs: `dim` f32 values in little-endian order, `4 × dim` bytes.
//! Little-endian is fixed (not native order) so a database moves between machines.

use super::StoreError;
use crate::embedding::Embedding;

/// `[f32; dim]` → `[u8; 4 × dim]`, little-endian.
pub fn encode_embedding(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// `[u8; 4 × dim]` → `[f32; dim]`; `None` when the length is not a multiple of 4.
pub fn decode_embedding(bytes: &[u8]) -> Option<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// The embedding stored for face `face`, checked as every embedding is where it is made
/// (finite, unit length): a row written by other tools, or damaged, is an error here.
pub(crate) fn stored_embedding(face: i64, bytes: &[u8]) -> Result<Embedding, StoreError> {
    let values = decode_embedding(bytes).ok_or_else(|| StoreError::CorruptEmbedding {
        face,
        reason: format!("has {} bytes, expected a multiple of 4", bytes.len()),
    })?;
    Embedding::new(values).map_err(|e| StoreError::CorruptEmbedding {
        face,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_round_trip_bit_for_bit() {
        let values = [0.0, -0.0, 1.0, -1.5e-38, f32::MIN_POSITIVE, 0.123_456_79];
        let back = decode_embedding(&encode_embedding(&values)).expect("multiple of 4");
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back), bits(&values));
    }

    #[test]
    fn a_blob_whose_length_is_not_a_multiple_of_four_is_rejected() {
        assert_eq!(decode_embedding(&[1, 2, 3]), None);
    }
}
