//! Rebuilding the graph from its live points on a background thread.
//!
//! 1. Under a write lock the state is marked `rebuilding` and its slot count `end` noted.
//! 2. Under read locks only, the live slots below `end` are copied and inserted into a
//!    fresh graph (parallel insert); searches and inserts go on against the old graph.
//! 3. Catch-up: slots appended since (inserts during the rebuild) are copied and inserted
//!    the same way, until few remain.
//! 4. Under a write lock the last few are inserted, the new slot table takes each
//!    point's *current* liveness from the old one (so removals made during the rebuild
//!    hold), and the new generation replaces the old in one assignment.
//!
//! 5. The new generation is saved if the index has a graph directory.
//!
//! Slots are append-only and their vectors immutable within a generation, so a slot
//! copied in step 2 or 3 cannot change afterwards except by dying — which step 4 reads.

use std::collections::HashMap;
use std::sync::Arc;

use super::Shared;
use super::state::{Graph, Slot, State, new_graph};

/// Inserts this few (or fewer) are done while holding the write lock in step 4.
const CATCH_UP_UNDER_LOCK: usize = 64;

/// The new generation being built: `origin[j]` is the old slot of new slot `j`.
struct Build {
    graph: Graph,
    origin: Vec<usize>,
    /// `(S', D)` vectors of the new slots.
    vectors: Vec<f32>,
}

impl Build {
    /// Copies the live old slots in `range` (under the caller's lock) into `self`,
    /// returning the new slot numbers and their vectors' offset for [`Self::insert`].
    fn take(&mut self, old: &State, dim: usize, range: std::ops::Range<usize>) -> usize {
        let first = self.origin.len();
        for o in range.filter(|&o| old.slots[o].live) {
            self.origin.push(o);
            self.vectors.extend_from_slice(old.vector(o, dim));
        }
        first
    }

    /// Inserts new slots `first..` into the graph, in parallel.
    fn insert(&self, dim: usize, first: usize) {
        let items: Vec<(&[f32], usize)> = (first..self.origin.len())
            .map(|j| (&self.vectors[j * dim..(j + 1) * dim], j))
            .collect();
        super::parallel_insert(&self.graph, &items);
    }
}

/// Clears `rebuilding` if the thread ends without swapping (a panic in hnsw_rs), so a
/// later removal can start a new rebuild.
struct ResetOnExit<'a> {
    shared: &'a Shared,
    armed: bool,
}

impl Drop for ResetOnExit<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.write().rebuilding = false;
        }
    }
}

/// Runs steps 2–4 for a state marked `rebuilding` with `end` slots (see module docs).
pub(super) fn run(shared: &Arc<Shared>, end: usize) {
    let mut reset = ResetOnExit {
        shared,
        armed: true,
    };
    let dim = shared.dim;
    let mut build = {
        let old = shared.read();
        let live = old.by_face.len();
        let mut build = Build {
            graph: new_graph(&shared.config, live + live / 4),
            origin: Vec::with_capacity(live),
            vectors: Vec::with_capacity(live * dim),
        };
        build.take(&old, dim, 0..end);
        build
    };
    build.insert(dim, 0);

    let mut done = end;
    loop {
        let first = {
            let old = shared.read();
            if old.slots.len() - done <= CATCH_UP_UNDER_LOCK {
                break;
            }
            let now = old.slots.len();
            let first = build.take(&old, dim, done..now);
            done = now;
            first
        };
        build.insert(dim, first);
    }

    let mut state = shared.write();
    let now = state.slots.len();
    let first = build.take(&state, dim, done..now);
    build.insert(dim, first);
    let fresh = swap_in(&state, build);
    // The old graph is dropped here, after the lock is released: hnsw_rs's Drop walks
    // every point, which should not stall searches.
    let old = std::mem::replace(&mut *state, fresh);
    reset.armed = false;
    drop(state);
    drop(old);
    match shared.save() {
        Ok(_) => {}
        // The graph in memory is complete; only the next start-up pays for this.
        Err(e) => tracing::warn!(error = %e, "could not save the rebuilt HNSW graph"),
    }
}

/// The new generation: slots carry the old slots' current liveness.
fn swap_in(old: &State, build: Build) -> State {
    let slots: Vec<Slot> = build.origin.iter().map(|&o| old.slots[o]).collect();
    let mut by_face = HashMap::with_capacity(old.by_face.len());
    let mut identities: HashMap<_, usize> = HashMap::with_capacity(old.identities.len());
    for (j, s) in slots.iter().enumerate().filter(|(_, s)| s.live) {
        by_face.insert(s.face, j);
        *identities.entry(s.identity).or_default() += 1;
    }
    let dead = slots.len() - by_face.len();
    State {
        graph: Arc::new(build.graph),
        slots,
        vectors: build.vectors,
        by_face,
        identities,
        dead,
        generation: old.generation + 1,
        rebuilding: false,
    }
}
