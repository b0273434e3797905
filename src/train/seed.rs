//! Every random choice of a run derives from the run's seed, a purpose and an index
//! (usually the epoch), so epoch `e` draws the same numbers whether the run got there
//! directly or by resuming a checkpoint.

/// What a derived seed is for; distinct purposes never share a generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The identity-disjoint train/validation split.
    Split = 1,
    /// Initial weights of the network.
    Init = 2,
    /// Initial weights of the softmax head.
    Head = 3,
    /// The P×K batch sampler (its epochs are its own streams).
    Sampler = 4,
    /// Augmentation, per (epoch, batch).
    Augment = 5,
    /// Dropout masks, per epoch.
    Dropout = 6,
}

/// A 64-bit seed for `(seed, stream, index)`: SplitMix64's finaliser over a combination
/// of the three, so nearby inputs give unrelated seeds.
pub fn derive(seed: u64, stream: Stream, index: u64) -> u64 {
    let mut z = seed
        ^ (stream as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_seeds_differ_by_stream_and_index_and_repeat_for_equal_inputs() {
        let a = derive(42, Stream::Augment, 3);
        assert_eq!(a, derive(42, Stream::Augment, 3));
        assert_ne!(a, derive(42, Stream::Augment, 4));
        assert_ne!(a, derive(42, Stream::Dropout, 3));
        assert_ne!(a, derive(43, Stream::Augment, 3));
    }
}
