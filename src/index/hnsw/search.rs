//! Identity-level and face-level search on one generation of the graph.

use std::collections::{HashMap, HashSet};

use hnsw_rs::hnsw::Neighbour;

use super::state::State;
use crate::index::select::top_k_by;
use crate::index::{FaceId, IdentityHit, dot, dot_many};

/// Widening stops asking the graph once it would ask for more than `1/EXHAUSTIVE_SHARE`
/// of all points: a walk that wide costs more than scanning them all, and near-duplicate
/// clusters can leave parts of an HNSW graph unreachable anyway.
const EXHAUSTIVE_SHARE: usize = 8;

/// Top `k` distinct identities (k ≤ live identities), each by its best live face.
///
/// Asks the graph for `want = max(ef, 2k)` neighbours and doubles `want` while fewer than
/// `k` identities come back; past `S / EXHAUSTIVE_SHARE` it scans every stored vector.
pub(super) fn identities(
    state: &State,
    dim: usize,
    query: &[f32],
    k: usize,
    ef: usize,
) -> Vec<IdentityHit> {
    let total = state.slots.len();
    let mut want = (2 * k).max(ef);
    loop {
        let found = graph_search(state, query, want, ef);
        let hits = distinct(state, dim, query, &found, k);
        if hits.len() >= k {
            return hits;
        }
        want *= 2;
        if want > total / EXHAUSTIVE_SHARE {
            return exhaustive(state, query, k);
        }
    }
}

/// The `k` nearest live faces as `(face, similarity)`, closest first.
pub(super) fn faces(state: &State, query: &[f32], k: usize, ef: usize) -> Vec<(FaceId, f32)> {
    graph_search(state, query, k, ef)
        .iter()
        .filter(|n| state.is_live(n.d_id))
        .map(|n| (state.slots[n.d_id].face, 1.0 - n.distance))
        .collect()
}

/// The graph's `k` nearest points with candidate list `max(ef, k)`, skipping dead points
/// during the walk (`search_filter`) when there are any: the filtered walk gives up
/// hnsw_rs's early exit, so it is used only when it has something to filter.
fn graph_search(state: &State, query: &[f32], k: usize, ef: usize) -> Vec<Neighbour> {
    let ef = ef.max(k);
    if state.dead == 0 {
        state.graph.search(query, k, ef)
    } else {
        let live = |id: &usize| state.is_live(*id);
        state.graph.search_filter(query, k, ef, Some(&live))
    }
}

/// The first (closest) live face of each identity among `found`, top `k` of them, with
/// similarities recomputed from the stored vectors.
fn distinct(
    state: &State,
    dim: usize,
    query: &[f32],
    found: &[Neighbour],
    k: usize,
) -> Vec<IdentityHit> {
    let mut seen = HashSet::with_capacity(found.len());
    let hits: Vec<IdentityHit> = found
        .iter()
        .map(|n| n.d_id)
        .filter(|&j| state.is_live(j) && seen.insert(state.slots[j].identity))
        .map(|j| hit(state, j, dot(query, state.vector(j, dim))))
        .collect();
    top_k_by(hits, k, |h| (h.similarity, h.face))
}

/// Exact answer from the stored vectors: every slot scored, dead ones skipped.
fn exhaustive(state: &State, query: &[f32], k: usize) -> Vec<IdentityHit> {
    let mut scores = vec![0.0f32; state.slots.len()]; // (S)
    dot_many(&state.vectors, query, &mut scores);
    let mut best: HashMap<_, IdentityHit> = HashMap::with_capacity(state.identities.len());
    for (j, &s) in scores.iter().enumerate().filter(|&(j, _)| state.is_live(j)) {
        let h = hit(state, j, s);
        best.entry(h.identity)
            .and_modify(|b| {
                if h.similarity > b.similarity {
                    *b = h;
                }
            })
            .or_insert(h);
    }
    top_k_by(best.into_values().collect(), k, |h| (h.similarity, h.face))
}

fn hit(state: &State, slot: usize, similarity: f32) -> IdentityHit {
    let s = &state.slots[slot];
    IdentityHit {
        identity: s.identity,
        face: s.face,
        similarity: similarity.clamp(-1.0, 1.0),
    }
}
