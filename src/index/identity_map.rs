//! Dense small numbers for identities: a row of the exact index names its identity in
//! four bytes instead of eight, and a scan compares slots, not hash-map keys.

use std::collections::HashMap;

use super::IdentityId;

/// Maps each identity with at least one stored face to a slot in `0..capacity()`;
/// slots of identities that lost their last face are reused.
#[derive(Debug, Default)]
pub(crate) struct IdentitySlots {
    /// `(capacity)`: identity held by each slot (stale when `faces[slot] == 0`).
    ids: Vec<IdentityId>,
    /// `(capacity)`: stored faces per slot.
    faces: Vec<u32>,
    slot_of: HashMap<IdentityId, u32>,
    free: Vec<u32>,
}

impl IdentitySlots {
    /// Counts one more face for `identity`, giving it a slot if it has none.
    pub(crate) fn acquire(&mut self, identity: IdentityId) -> u32 {
        let slot = match self.slot_of.get(&identity) {
            Some(&slot) => slot,
            None => {
                let slot = match self.free.pop() {
                    Some(slot) => {
                        self.ids[slot as usize] = identity;
                        slot
                    }
                    None => {
                        self.ids.push(identity);
                        self.faces.push(0);
                        (self.ids.len() - 1) as u32
                    }
                };
                self.slot_of.insert(identity, slot);
                slot
            }
        };
        self.faces[slot as usize] += 1;
        slot
    }

    /// Counts one face fewer for the identity in `slot`, freeing the slot at zero.
    pub(crate) fn release(&mut self, slot: u32) {
        let count = &mut self.faces[slot as usize];
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.slot_of.remove(&self.ids[slot as usize]);
            self.free.push(slot);
        }
    }

    pub(crate) fn slot(&self, identity: IdentityId) -> Option<u32> {
        self.slot_of.get(&identity).copied()
    }

    pub(crate) fn identity(&self, slot: u32) -> IdentityId {
        self.ids[slot as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_per_identity_and_reused_after_the_last_face_goes() {
        let mut s = IdentitySlots::default();
        let a = s.acquire(10);
        let b = s.acquire(20);
        assert_ne!(a, b);
        assert_eq!(s.acquire(10), a);
        s.release(a);
        assert_eq!(s.slot(10), Some(a), "one face of 10 is left");
        s.release(a);
        assert_eq!(s.slot(10), None);
        let c = s.acquire(30);
        assert_eq!(c, a, "the freed slot is reused");
        assert_eq!(s.identity(c), 30);
    }
}
