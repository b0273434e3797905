//! Lossless serde form of `f32` arrays: the shape plus the little-endian bytes in base64.
//!
//! Decimal text would need care to round-trip every `f32` exactly; raw bytes cannot lose
//! a bit, so a deserialised [`Preprocessing`](super::Preprocessing) reproduces its
//! outputs bit for bit. The bytes are also a quarter the size of decimal text.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An `f32` array of any rank that serialises losslessly.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredArray(pub ArrayD<f32>);

#[derive(Serialize, Deserialize)]
struct Wire {
    shape: Vec<usize>,
    /// Row-major `f32` values, little-endian, base64 (standard alphabet, padded).
    f32le_base64: String,
}

impl Serialize for StoredArray {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|v| v.to_le_bytes()).collect();
        Wire {
            shape: self.0.shape().to_vec(),
            f32le_base64: STANDARD.encode(bytes),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for StoredArray {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = Wire::deserialize(deserializer)?;
        let bytes = STANDARD
            .decode(wire.f32le_base64.as_bytes())
            .map_err(|e| D::Error::custom(format!("array bytes: {e}")))?;
        let expected: usize = wire.shape.iter().product();
        if bytes.len() != expected * 4 {
            return Err(D::Error::custom(format!(
                "array of shape {:?} needs {} bytes, got {}",
                wire.shape,
                expected * 4,
                bytes.len()
            )));
        }
        let values: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        ArrayD::from_shape_vec(IxDyn(&wire.shape), values)
            .map(StoredArray)
            .map_err(|e| D::Error::custom(format!("array shape {:?}: {e}", wire.shape)))
    }
}
