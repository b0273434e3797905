//! The one check every stored vector and every query passes.

use super::IndexError;
use super::dot::dot;

/// Largest accepted `|‖v‖ − 1|`. f32 normalisation leaves errors near 1e-7·√D; a looser
/// bound accepts vectors written by other tools (or read back from f16) while still
/// rejecting anything that was never normalised.
pub const UNIT_NORM_TOLERANCE: f32 = 1e-3;

/// Checks that `v` has `expected_dim` entries, all finite, with `‖v‖₂ = 1` within
/// [`UNIT_NORM_TOLERANCE`].
pub fn check_embedding(expected_dim: usize, v: &[f32]) -> Result<(), IndexError> {
    if v.len() != expected_dim {
        return Err(IndexError::Dimension {
            expected: expected_dim,
            got: v.len(),
        });
    }
    if let Some((position, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(IndexError::NonFinite { position, value });
    }
    let norm = dot(v, v).sqrt();
    if (norm - 1.0).abs() > UNIT_NORM_TOLERANCE {
        return Err(IndexError::NotUnit {
            norm,
            tolerance: UNIT_NORM_TOLERANCE,
        });
    }
    Ok(())
}

/// [`check_embedding`] over a batch; the error names the first bad item's position.
pub(crate) fn check_batch<'a>(
    expected_dim: usize,
    vectors: impl IntoIterator<Item = &'a [f32]>,
) -> Result<(), IndexError> {
    for (position, v) in vectors.into_iter().enumerate() {
        check_embedding(expected_dim, v).map_err(|e| IndexError::InBatch {
            position,
            source: Box::new(e),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_unit_vector_and_names_each_kind_of_bad_one() {
        let unit = [0.6f32, 0.8, 0.0];
        assert_eq!(check_embedding(3, &unit), Ok(()));
        assert_eq!(
            check_embedding(4, &unit),
            Err(IndexError::Dimension {
                expected: 4,
                got: 3
            })
        );
        assert!(matches!(
            check_embedding(3, &[0.6, f32::NAN, 0.8]),
            Err(IndexError::NonFinite { position: 1, .. })
        ));
        assert!(matches!(
            check_embedding(3, &[0.6, 0.0, f32::INFINITY]),
            Err(IndexError::NonFinite { position: 2, .. })
        ));
        assert!(matches!(
            check_embedding(3, &[1.0, 1.0, 0.0]),
            Err(IndexError::NotUnit { .. })
        ));
        assert!(matches!(
            check_embedding(3, &[0.0, 0.0, 0.0]),
            Err(IndexError::NotUnit { .. })
        ));
    }

    #[test]
    fn batch_errors_name_the_position() {
        let good = vec![1.0f32, 0.0];
        let bad = vec![1.0f32, 0.0, 0.0];
        let err = check_batch(2, [good.as_slice(), good.as_slice(), bad.as_slice()]);
        assert_eq!(
            err,
            Err(IndexError::InBatch {
                position: 2,
                source: Box::new(IndexError::Dimension {
                    expected: 2,
                    got: 3
                })
            })
        );
    }
}
