//! The one check an index adds to an [`Embedding`]: its length. Finiteness and unit
//! length were checked where the embedding was made (`crate::embedding`).

use super::IndexError;
use crate::embedding::Embedding;

/// Checks that `v` has `expected_dim` entries.
pub(crate) fn check_dim(expected_dim: usize, v: &Embedding) -> Result<(), IndexError> {
    if v.len() != expected_dim {
        return Err(IndexError::Dimension {
            expected: expected_dim,
            got: v.len(),
        });
    }
    Ok(())
}

/// [`check_dim`] over a batch; the error names the first bad item's position.
pub(crate) fn check_batch<'a>(
    expected_dim: usize,
    vectors: impl IntoIterator<Item = &'a Embedding>,
) -> Result<(), IndexError> {
    for (position, v) in vectors.into_iter().enumerate() {
        check_dim(expected_dim, v).map_err(|e| IndexError::InBatch {
            position,
            source: Box::new(e),
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: Vec<f32>) -> Embedding {
        Embedding::new(v).unwrap()
    }

    #[test]
    fn accepts_the_right_length_and_names_a_wrong_one() {
        let e = unit(vec![0.6, 0.8, 0.0]);
        assert_eq!(check_dim(3, &e), Ok(()));
        assert_eq!(
            check_dim(4, &e),
            Err(IndexError::Dimension {
                expected: 4,
                got: 3
            })
        );
    }

    #[test]
    fn batch_errors_name_the_position() {
        let good = unit(vec![1.0, 0.0]);
        let bad = unit(vec![1.0, 0.0, 0.0]);
        let err = check_batch(2, [&good, &good, &bad]);
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
