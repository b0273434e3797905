//! P×K identity-balanced batches for metric learning: each batch holds `P` distinct
//! identities with `K` images each, sample indices ordered identity by identity
//! (`batch[p·K + k]`), so every anchor has `K − 1` positives in its batch.
//!
//! Epoch semantics: an epoch is `ceil(N / (P·K))` batches, about one pass over the `N`
//! images. Identities are drawn from a shuffled queue, reshuffled when it runs out (no
//! identity twice in one batch), so identities are used evenly whatever their sizes;
//! each identity's images come from its own shuffled queue, also refilled when empty, so
//! every image is used before any is repeated. An identity with fewer than `K` images
//! fills its `K` slots *with replacement* (its images repeat within the batch; with
//! augmentation they still differ). Epoch `e` depends only on `(seed, e)`, so training
//! resumed at epoch `e` sees the batches it would have seen.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::error::{DataError, Result};

/// A seeded P×K batch sampler over sample labels.
#[derive(Debug, Clone)]
pub struct PkSampler {
    /// Sample indices of each identity present in the labels.
    groups: Vec<Vec<usize>>,
    p: usize,
    k: usize,
    seed: u64,
    samples: usize,
}

impl PkSampler {
    /// `labels[i]` is the identity of sample `i`. Needs `P ≥ 1`, `K ≥ 1` and at least
    /// `P` distinct identities.
    pub fn new(labels: &[usize], p: usize, k: usize, seed: u64) -> Result<PkSampler> {
        if p == 0 || k == 0 {
            return Err(DataError::Invalid(format!(
                "P×K sampler needs P ≥ 1 and K ≥ 1, got P={p} K={k}"
            )));
        }
        let max_label = labels.iter().copied().max().map_or(0, |m| m + 1);
        let mut groups = vec![Vec::new(); max_label];
        for (i, &l) in labels.iter().enumerate() {
            groups[l].push(i);
        }
        groups.retain(|g| !g.is_empty());
        if groups.len() < p {
            return Err(DataError::Invalid(format!(
                "P×K sampler: P={p} identities per batch, but only {} identities",
                groups.len()
            )));
        }
        Ok(PkSampler {
            groups,
            p,
            k,
            seed,
            samples: labels.len(),
        })
    }

    /// Batches in one epoch: `ceil(N / (P·K))`.
    pub fn batches_per_epoch(&self) -> usize {
        self.samples.div_ceil(self.p * self.k).max(1)
    }

    /// The batches of epoch `epoch`: each `P·K` sample indices.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(epoch);
        let mut identity_queue: Vec<usize> = Vec::new();
        let mut image_queues: Vec<Vec<usize>> = vec![Vec::new(); self.groups.len()];
        let mut batches = Vec::with_capacity(self.batches_per_epoch());
        for _ in 0..self.batches_per_epoch() {
            let mut chosen: Vec<usize> = Vec::with_capacity(self.p);
            while chosen.len() < self.p {
                if identity_queue.is_empty() {
                    identity_queue = (0..self.groups.len()).collect();
                    identity_queue.shuffle(&mut rng);
                }
                if let Some(id) = identity_queue.pop()
                    && !chosen.contains(&id)
                {
                    chosen.push(id);
                }
                // A skipped duplicate stays consumed: it was used in this very batch.
            }
            let mut batch = Vec::with_capacity(self.p * self.k);
            for id in chosen {
                batch.extend(self.draw(id, &mut image_queues[id], &mut rng));
            }
            batches.push(batch);
        }
        batches
    }

    /// `K` images of identity `id`: distinct when it has at least `K`.
    fn draw(&self, id: usize, queue: &mut Vec<usize>, rng: &mut ChaCha8Rng) -> Vec<usize> {
        let group = &self.groups[id];
        if group.len() < self.k {
            let mut out = group.clone();
            out.shuffle(rng);
            while out.len() < self.k {
                out.push(group[rng.random_range(0..group.len())]);
            }
            return out;
        }
        let mut out = Vec::with_capacity(self.k);
        while out.len() < self.k {
            if queue.is_empty() {
                *queue = group.iter().copied().filter(|i| !out.contains(i)).collect();
                queue.shuffle(rng);
            }
            if let Some(i) = queue.pop() {
                out.push(i);
            }
        }
        out
    }
}
