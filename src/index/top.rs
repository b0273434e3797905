//! Streaming exact top-`K` distinct identities: rows arrive one at a time, and only the
//! `K` best identities seen so far are kept — no per-identity array of the whole gallery
//! per query, which at a million faces costs more memory traffic than the scan itself.
//!
//! Keys are totally ordered: higher score first, then lower face id ([`by_score_desc`]).
//! An identity's key is the best key over its rows. Because keys are distinct, the kept
//! set is always exactly the top `K` identities over the rows offered so far:
//! - a row of a kept identity can only raise that identity's key;
//! - a row of an identity outside the set enters only if it beats the worst kept key,
//!   and then it *is* that identity's best so far (its earlier rows were all worse than
//!   a key the worst has since risen above).
//!
//! Offering another set's entries ([`TopIdentities::merge`]) is exact too: every global
//! top-`K` identity's best row is in the top `K` of the chunk that holds it, so chunks
//! scanned in parallel merge into the global answer.

use std::cmp::Ordering;

use super::FaceId;
use super::select::by_score_desc;

/// One identity's best row so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Entry {
    pub score: f32,
    pub face: FaceId,
    /// The identity's slot ([`super::identity_map::IdentitySlots`]).
    pub slot: u32,
}

impl Entry {
    fn beats(&self, other: &Entry) -> bool {
        by_score_desc((self.score, self.face), (other.score, other.face)) == Ordering::Less
    }
}

/// The `K` best distinct identities among the rows offered so far.
#[derive(Clone, Debug)]
pub(crate) struct TopIdentities {
    k: usize,
    /// `(≤ K)` distinct slots, unordered.
    entries: Vec<Entry>,
    /// Position in `entries` of the worst entry; meaningful once `entries` is full.
    worst: usize,
}

impl TopIdentities {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            entries: Vec::with_capacity(k),
            worst: 0,
        }
    }

    /// Scores below this cannot enter (ties can: the face id decides), so a scan calls
    /// [`Self::offer`] only for `score >= floor()` — rarely, once the set is full.
    #[inline]
    pub(crate) fn floor(&self) -> f32 {
        if self.k > 0 && self.entries.len() == self.k {
            self.entries[self.worst].score
        } else if self.k == 0 {
            f32::INFINITY
        } else {
            f32::NEG_INFINITY
        }
    }

    /// Offers one row (see the module docs for why this stays exact).
    pub(crate) fn offer(&mut self, e: Entry) {
        if self.k == 0 {
            return;
        }
        if let Some(i) = self.entries.iter().position(|x| x.slot == e.slot) {
            if e.beats(&self.entries[i]) {
                self.entries[i] = e;
                if i == self.worst {
                    self.find_worst();
                }
            }
            return;
        }
        if self.entries.len() < self.k {
            self.entries.push(e);
            if self.entries.len() == self.k {
                self.find_worst();
            }
        } else if e.beats(&self.entries[self.worst]) {
            self.entries[self.worst] = e;
            self.find_worst();
        }
    }

    /// Offers every entry of `other` (a top set over other rows of the same gallery).
    pub(crate) fn merge(&mut self, other: &TopIdentities) {
        for &e in &other.entries {
            self.offer(e);
        }
    }

    /// The kept identities, best first.
    pub(crate) fn into_sorted(mut self) -> Vec<Entry> {
        self.entries
            .sort_unstable_by(|a, b| by_score_desc((a.score, a.face), (b.score, b.face)));
        self.entries
    }

    fn find_worst(&mut self) {
        self.worst = (0..self.entries.len())
            .reduce(|w, i| {
                if self.entries[w].beats(&self.entries[i]) {
                    i
                } else {
                    w
                }
            })
            .unwrap_or(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Reference: each slot's best (score, face) key, all sorted, first `k`.
    fn naive(rows: &[Entry], k: usize) -> Vec<Entry> {
        let mut best: HashMap<u32, Entry> = HashMap::new();
        for &r in rows {
            let b = best.entry(r.slot).or_insert(r);
            if r.beats(b) {
                *b = r;
            }
        }
        let mut all: Vec<Entry> = best.into_values().collect();
        all.sort_by(|a, b| by_score_desc((a.score, a.face), (b.score, b.face)));
        all.truncate(k);
        all
    }

    fn rows(n: usize, slots: u32, seed: u32) -> Vec<Entry> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                // Coarse scores, so equal scores (ties decided by face id) are common.
                let score = ((s >> 24) % 16) as f32 / 16.0;
                Entry {
                    score,
                    face: i as FaceId,
                    slot: (s >> 4) % slots,
                }
            })
            .collect()
    }

    #[test]
    fn streaming_and_merged_chunks_equal_the_naive_top_k_with_many_ties() {
        for (n, slots, k) in [(500, 40, 5), (500, 3, 5), (2_000, 300, 17), (50, 50, 1)] {
            let all = rows(n, slots, n as u32 + slots);
            let mut whole = TopIdentities::new(k);
            for &r in &all {
                if r.score >= whole.floor() {
                    whole.offer(r);
                }
            }
            let want = naive(&all, k);
            assert_eq!(whole.into_sorted(), want, "n={n} slots={slots} k={k}");
            let mut merged = TopIdentities::new(k);
            for chunk in all.chunks(97) {
                let mut part = TopIdentities::new(k);
                chunk.iter().for_each(|&r| part.offer(r));
                merged.merge(&part);
            }
            assert_eq!(merged.into_sorted(), want, "merged n={n} slots={slots}");
        }
    }

    #[test]
    fn k_zero_keeps_nothing() {
        let mut t = TopIdentities::new(0);
        t.offer(Entry {
            score: 1.0,
            face: 1,
            slot: 0,
        });
        assert!(t.into_sorted().is_empty());
    }
}
