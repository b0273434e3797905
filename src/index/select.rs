//! Partial selection of the best `K` identities: `O(N + K log K)`, no full sort.

use std::cmp::Ordering;

/// Highest score first; ties go to the lower key so results are deterministic.
pub(crate) fn by_score_desc(a: (f32, i64), b: (f32, i64)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

/// Keeps the `k` best of `candidates` (ordered by [`by_score_desc`] on `key`), sorted
/// best first. Uses `select_nth_unstable_by` so only the kept `k` are sorted.
pub(crate) fn top_k_by<T>(
    mut candidates: Vec<T>,
    k: usize,
    key: impl Fn(&T) -> (f32, i64),
) -> Vec<T> {
    let cmp = |a: &T, b: &T| by_score_desc(key(a), key(b));
    if k == 0 {
        return Vec::new();
    }
    if candidates.len() > k {
        candidates.select_nth_unstable_by(k - 1, cmp);
        candidates.truncate(k);
    }
    candidates.sort_unstable_by(cmp);
    candidates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_highest_in_order_with_ties_broken_by_key() {
        let c = vec![(0.1f32, 5i64), (0.9, 3), (0.5, 1), (0.9, 2), (-1.0, 0)];
        let got = top_k_by(c.clone(), 3, |&x| x);
        assert_eq!(got, vec![(0.9, 2), (0.9, 3), (0.5, 1)]);
        assert_eq!(top_k_by(c.clone(), 0, |&x| x), vec![]);
        assert_eq!(top_k_by(c, 10, |&x| x).len(), 5);
    }
}
