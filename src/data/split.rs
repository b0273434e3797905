//! Identity-disjoint train/validation splits: no person is in both halves, so
//! validation measures what the server faces — people never seen in training.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::error::{DataError, Result};
use super::folder::ImageFolder;

/// How many identities go to validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SplitSize {
    /// This fraction of the identities, rounded to the nearest count.
    Fraction(f64),
    /// Exactly this many identities.
    Count(usize),
}

/// Splits identities `0..n` into `(train, validation)`, each sorted ascending, after a
/// seeded shuffle. Both sides must end up non-empty.
pub fn split_identities(n: usize, size: SplitSize, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    let count = match size {
        SplitSize::Count(c) => c,
        SplitSize::Fraction(f) if (0.0..=1.0).contains(&f) => (f * n as f64).round() as usize,
        SplitSize::Fraction(f) => {
            return Err(DataError::Invalid(format!(
                "validation fraction must be in [0, 1], got {f}"
            )));
        }
    };
    if count == 0 || count >= n {
        return Err(DataError::Invalid(format!(
            "validation split of {size:?} gives {count} of {n} identities; \
             both training and validation need at least one"
        )));
    }
    let mut ids: Vec<usize> = (0..n).collect();
    ids.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut validation = ids.split_off(n - count);
    ids.sort_unstable();
    validation.sort_unstable();
    Ok((ids, validation))
}

impl ImageFolder {
    /// Identity-disjoint `(train, validation)` folders; see [`split_identities`].
    pub fn split(&self, size: SplitSize, seed: u64) -> Result<(ImageFolder, ImageFolder)> {
        let (train, validation) = split_identities(self.identities().len(), size, seed)?;
        Ok((self.subset(&train)?, self.subset(&validation)?))
    }
}
