//! Workingset detection: shadow entries and refault distances.
//!
//! Mirrors mm/workingset.c as merged in 3.15 (Johannes Weiner, "mm: thrash
//! detection-based file cache sizing", a528910e12ec), which grew out of the
//! proposal the seed page describes (002_e13a334c23eac663.txt, "Better
//! active/inactive list balancing", LWN, May 2012).
//!
//! # The clock
//!
//! Each lruvec keeps `inactive_age` (the page's `workingset_time`): it is
//! bumped every time a file page leaves the inactive list, by eviction
//! ([`eviction`]) or by activation ([`activation`]).
//!
//! # Shadow entries
//!
//! When a file page is evicted, the clock's new value is packed with the
//! node it was evicted from into a *shadow entry*, stored as a radix-tree
//! value entry in the slot the page held ([`pack_shadow`], 3.15's
//! `pack_shadow()`):
//!
//! ```text
//!   payload = ((eviction << NODES_SHIFT) | nid) << ZONES_SHIFT | zid
//!   (the radix tree adds the exceptional-entry bits: 3.15 shifted by
//!    RADIX_TREE_EXCEPTIONAL_SHIFT = 2 and or'ed in 2)
//! ```
//!
//! so `EVICTION_BITS = 64 - NODES_SHIFT - ZONES_SHIFT - 2 = 54` bits of the
//! clock survive.
//!
//! # Refault distance
//!
//! On a fault that finds a shadow, `refault_distance = (inactive_age_now -
//! eviction) & EVICTION_MASK` ([`refault_distance`], 3.15's
//! `unpack_shadow()`): the number of pages that left the inactive list while
//! this one was out. Had the inactive list been that much longer, the page
//! would not have been evicted. What the distance decides depends on the
//! balancing rule (`klab_mm_policy::LruBalance::on_refault`).
//!
//! # Bounding the shadows
//!
//! Shadow entries keep radix-tree nodes alive after their pages are gone. A
//! node that holds only shadows is a *shadow node*; 3.15 keeps them on an LRU
//! (`workingset_shadow_nodes`) and a shrinker frees the oldest beyond
//! `max_nodes = present_pages >> (1 + RADIX_TREE_MAP_SHIFT - 3)`
//! (`count_shadow_nodes()`), deleting their shadows and counting
//! `workingset_nodereclaim` (`shadow_lru_isolate()`). [`ShadowNodes`] is
//! that LRU.

use std::collections::BTreeMap;

use super::page::FileId;

/// `CONFIG_NODES_SHIFT` of the modelled kernel (x86_64 NUMA default).
pub const NODES_SHIFT: u32 = 6;
/// `ZONES_SHIFT`: bits for the zone index.
pub const ZONES_SHIFT: u32 = 2;
/// `RADIX_TREE_EXCEPTIONAL_SHIFT`: bits the radix tree's value encoding takes.
pub const EXCEPTIONAL_SHIFT: u32 = 2;
/// Bits of the eviction counter a shadow keeps.
pub const EVICTION_BITS: u32 = 64 - NODES_SHIFT - ZONES_SHIFT - EXCEPTIONAL_SHIFT;
/// `mask` in 3.15's `unpack_shadow()`.
pub const EVICTION_MASK: u64 = !0u64 >> (NODES_SHIFT + ZONES_SHIFT + EXCEPTIONAL_SHIFT);
/// The model has one zone per node; its index in the shadow.
pub const ZONE_INDEX: u64 = 0;

/// A shadow entry's payload for a page evicted from node `nid` when the
/// clock read `eviction` (3.15 `pack_shadow()`).
pub fn pack_shadow(eviction: u64, nid: u8) -> u64 {
    let e = ((eviction & EVICTION_MASK) << NODES_SHIFT) | u64::from(nid) & ((1 << NODES_SHIFT) - 1);
    (e << ZONES_SHIFT) | ZONE_INDEX
}

/// The eviction time and node a shadow payload records.
pub fn unpack_shadow(payload: u64) -> (u64, u8) {
    let e = payload >> ZONES_SHIFT;
    let nid = (e & ((1 << NODES_SHIFT) - 1)) as u8;
    (e >> NODES_SHIFT, nid)
}

/// `(now - eviction) & EVICTION_MASK`: correct across clock wrap-around.
pub fn refault_distance(now: u64, eviction: u64) -> u64 {
    now.wrapping_sub(eviction) & EVICTION_MASK
}

/// Bumps the clock for an eviction and returns the value to store
/// (3.15 `workingset_eviction()`: `atomic_long_inc_return`).
pub fn eviction(inactive_age: &mut u64) -> u64 {
    *inactive_age = inactive_age.wrapping_add(1);
    *inactive_age
}

/// Bumps the clock for an activation (3.15 `workingset_activation()`).
pub fn activation(inactive_age: &mut u64) {
    *inactive_age = inactive_age.wrapping_add(1);
}

/// The LRU of radix-tree leaf nodes that hold only shadow entries
/// (3.15's `workingset_shadow_nodes` list_lru).
///
/// A leaf is named by its file and `index >> RADIX_TREE_MAP_SHIFT`. A node
/// joins at the tail when it becomes shadow-only and leaves when a page is
/// added to it or it is freed (3.15 `page_cache_tree_insert()` and
/// `page_cache_tree_delete()`); the shrinker takes from the head, the
/// oldest.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ShadowNodes {
    order: BTreeMap<u64, (FileId, u64)>,
    seq_of: BTreeMap<(FileId, u64), u64>,
    next_seq: u64,
}

impl ShadowNodes {
    /// Shadow-only nodes tracked.
    pub fn len(&self) -> u64 {
        self.order.len() as u64
    }

    /// True when none are tracked.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Records the state of a leaf after a change: tracked iff it holds
    /// shadows and no pages.
    pub fn update(&mut self, file: FileId, leaf: u64, items: usize, values: usize) {
        let shadow_only = items == 0 && values > 0;
        let key = (file, leaf);
        match (shadow_only, self.seq_of.get(&key).copied()) {
            (true, None) => {
                let s = self.next_seq;
                self.next_seq += 1;
                self.order.insert(s, key);
                self.seq_of.insert(key, s);
            }
            (false, Some(s)) => {
                self.order.remove(&s);
                self.seq_of.remove(&key);
            }
            _ => {}
        }
    }

    /// Forgets every node of a file (the file was truncated).
    pub fn forget_file(&mut self, file: FileId) {
        let keys: Vec<(FileId, u64)> = self
            .seq_of
            .range((file, 0)..=(file, u64::MAX))
            .map(|(k, _)| *k)
            .collect();
        for k in keys {
            if let Some(s) = self.seq_of.remove(&k) {
                self.order.remove(&s);
            }
        }
    }

    /// Removes and returns the oldest shadow node.
    pub fn pop_oldest(&mut self) -> Option<(FileId, u64)> {
        let (s, key) = self.order.pop_first()?;
        debug_assert_eq!(self.seq_of.get(&key), Some(&s));
        self.seq_of.remove(&key);
        Some(key)
    }

    /// The two maps are inverse of each other and sequence numbers are
    /// below the next one (for a deserialized machine).
    pub fn check(&self) -> Result<(), String> {
        if self.order.len() != self.seq_of.len() {
            return Err("shadow-node LRU: order and index differ in size".into());
        }
        for (s, key) in &self.order {
            if self.seq_of.get(key) != Some(s) || *s >= self.next_seq {
                return Err(format!(
                    "shadow-node LRU: entry {s} for leaf {} of file {}",
                    key.1, key.0.0
                ));
            }
        }
        Ok(())
    }

    /// Every tracked leaf, oldest first.
    pub fn leaves(&self) -> impl Iterator<Item = (FileId, u64)> + '_ {
        self.order.values().copied()
    }

    /// Whether a leaf is tracked.
    pub fn contains(&self, file: FileId, leaf: u64) -> bool {
        self.seq_of.contains_key(&(file, leaf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shadow_layout_matches_3_15() {
        assert_eq!(EVICTION_BITS, 54);
        assert_eq!(EVICTION_MASK, (1 << 54) - 1);
        // eviction 5 on node 3: ((5 << 6) | 3) << 2 = 1292
        assert_eq!(pack_shadow(5, 3), 1292);
        assert_eq!(unpack_shadow(1292), (5, 3));
        // The payload always fits a 63-bit value entry.
        assert!(pack_shadow(u64::MAX, 63) < 1 << 63);
        assert_eq!(unpack_shadow(pack_shadow(u64::MAX, 1)), (EVICTION_MASK, 1));
    }

    #[test]
    fn distance_survives_clock_wrap() {
        assert_eq!(refault_distance(105, 100), 5);
        // Evicted at 2^54 - 3 (stored masked), refaulting 7 ticks later when
        // the clock has wrapped the 54 bits: still 7.
        let evicted = (1u64 << 54) - 3;
        let (stored, _) = unpack_shadow(pack_shadow(evicted, 0));
        assert_eq!(refault_distance(evicted + 7, stored), 7);
    }

    #[test]
    fn clock_counts_evictions_and_activations() {
        let mut age = 0;
        assert_eq!(eviction(&mut age), 1);
        activation(&mut age);
        assert_eq!(eviction(&mut age), 3);
    }

    #[test]
    fn shadow_node_lru_is_oldest_first() {
        let mut s = ShadowNodes::default();
        s.update(FileId(1), 0, 0, 3);
        s.update(FileId(2), 5, 0, 1);
        s.update(FileId(1), 0, 0, 4); // still shadow-only: keeps its place
        s.update(FileId(3), 9, 2, 1); // has pages: not tracked
        assert_eq!(s.len(), 2);
        s.update(FileId(1), 0, 1, 4); // a page came back
        assert!(!s.contains(FileId(1), 0));
        s.update(FileId(1), 0, 0, 4);
        assert_eq!(s.pop_oldest(), Some((FileId(2), 5)));
        assert_eq!(s.pop_oldest(), Some((FileId(1), 0)));
        assert_eq!(s.pop_oldest(), None);
    }
}
