//! One generation of the HNSW index: the graph plus the table saying, for each point in
//! it, which face it is and whether that face is still live.

use std::collections::HashMap;
use std::sync::Arc;

use hnsw_rs::hnsw::Hnsw;

use super::distance::UnitCosine;
use crate::index::{FaceId, IdentityId, IndexConfig};

/// hnsw_rs's graph; `'static` because it owns its vectors (no mmap).
pub(crate) type Graph = Hnsw<'static, f32, UnitCosine>;

/// Layers the graph may use. NOTES.md: dumps fail with any other value; 16 layers of
/// `M = 16` address far more points than a gallery holds.
const MAX_LAYER: usize = 16;

pub(crate) fn new_graph(config: &IndexConfig, capacity_hint: usize) -> Graph {
    Hnsw::new(
        config.m,
        capacity_hint.max(1),
        MAX_LAYER,
        config.ef_construction,
        UnitCosine,
    )
}

/// What a graph point (its hnsw_rs `DataId`, an index into [`State::slots`]) holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Slot {
    pub face: FaceId,
    pub identity: IdentityId,
    /// False once the face was removed or replaced; the point stays in the graph (hnsw_rs
    /// cannot delete) and is filtered out until the next rebuild.
    pub live: bool,
}

/// Slots are append-only within a generation and a slot's vector never changes; only
/// `live` goes from true to false. A rebuild relies on both.
pub(crate) struct State {
    pub graph: Arc<Graph>,
    /// `(S)`: one per point ever inserted into `graph`, live or not.
    pub slots: Vec<Slot>,
    /// `(S, D)`: each slot's embedding, the source for rebuilds (hnsw_rs keeps its own
    /// copy, but cannot hand back a point by id while inserts run).
    pub vectors: Vec<f32>,
    /// Live face → its slot.
    pub by_face: HashMap<FaceId, usize>,
    /// Live faces per identity (identities with none are absent).
    pub identities: HashMap<IdentityId, usize>,
    /// Slots with `live == false`.
    pub dead: usize,
    /// Rebuilds finished so far.
    pub generation: u64,
    /// A rebuild thread is working from this generation.
    pub rebuilding: bool,
}

impl State {
    pub(crate) fn empty(config: &IndexConfig) -> Self {
        Self {
            graph: Arc::new(new_graph(config, 1024)),
            slots: Vec::new(),
            vectors: Vec::new(),
            by_face: HashMap::new(),
            identities: HashMap::new(),
            dead: 0,
            generation: 0,
            rebuilding: false,
        }
    }

    /// Records a face in a new slot (replacing any live slot of the same face) and
    /// returns the slot; the caller inserts the vector into the graph.
    pub(crate) fn add(&mut self, face: FaceId, identity: IdentityId, v: &[f32]) -> usize {
        let slot = self.slots.len();
        if let Some(old) = self.by_face.insert(face, slot) {
            self.kill(old);
        }
        *self.identities.entry(identity).or_default() += 1;
        self.slots.push(Slot {
            face,
            identity,
            live: true,
        });
        self.vectors.extend_from_slice(v);
        slot
    }

    /// Marks a live slot dead; the caller has already unmapped or remapped its face.
    pub(crate) fn kill(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        s.live = false;
        self.dead += 1;
        if let Some(n) = self.identities.get_mut(&s.identity) {
            *n -= 1;
            if *n == 0 {
                self.identities.remove(&s.identity);
            }
        }
    }

    pub(crate) fn vector(&self, slot: usize, dim: usize) -> &[f32] {
        &self.vectors[slot * dim..(slot + 1) * dim]
    }

    pub(crate) fn is_live(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.live)
    }

    /// Dead points are at least `rebuild_fraction` of the graph and at least
    /// `rebuild_min_deleted`, and no rebuild is running.
    pub(crate) fn wants_rebuild(&self, config: &IndexConfig) -> bool {
        !self.rebuilding
            && self.dead >= config.rebuild_min_deleted.max(1)
            && self.dead as f64 >= config.rebuild_fraction * self.slots.len() as f64
    }
}
