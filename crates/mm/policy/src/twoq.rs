//! 2Q (Johnson and Shasha, VLDB 1994, the "full version"), with sizes in
//! bytes.
//!
//! ```text
//!   A1in  resident FIFO of first-time objects     target Kin  = capacity / 4
//!   A1out ghost FIFO of keys evicted from A1in    limit  Kout = capacity / 2 (their sizes)
//!   Am    resident LRU of objects seen again after leaving A1in
//! ```
//!
//! A hit in Am moves the object to Am's head; a hit in A1in changes
//! nothing (correlated references). A miss whose key is in A1out goes to
//! Am; any other miss goes to A1in. To make room, A1in's tail moves to
//! A1out while A1in is above Kin (or Am is empty); otherwise Am's tail is
//! evicted. This is the page cache's active/inactive idea in its textbook
//! form, which is why klab keeps it beside the kernel rules.

use rustc_hash::FxHashMap;

use crate::Cache;
use crate::list::{Arena, List};

const A1IN: u8 = 0;
const AM: u8 = 1;
const A1OUT: u8 = 2;

/// The 2Q policy.
#[derive(Clone, Debug)]
pub struct TwoQ {
    arena: Arena,
    map: FxHashMap<u64, u32>,
    a1in: List,
    am: List,
    a1out: List,
    capacity: u64,
    kin: u64,
    kout: u64,
    evictions: u64,
}

impl TwoQ {
    /// An empty 2Q cache of `capacity` bytes, Kin = 25% and Kout = 50%.
    pub fn new(capacity: u64) -> Self {
        TwoQ {
            arena: Arena::with_capacity(1024),
            map: FxHashMap::default(),
            a1in: List::new(A1IN),
            am: List::new(AM),
            a1out: List::new(A1OUT),
            capacity,
            kin: capacity / 4,
            kout: capacity / 2,
            evictions: 0,
        }
    }

    fn resident(&self) -> u64 {
        self.a1in.bytes + self.am.bytes
    }

    fn reclaim_for(&mut self, size: u64) {
        while self.resident() + size > self.capacity {
            if self.a1in.bytes > self.kin || self.am.len == 0 {
                let v = self
                    .arena
                    .pop_back(&mut self.a1in)
                    .expect("resident object to evict");
                self.arena.push_front(&mut self.a1out, v);
                self.evictions += 1;
                while self.a1out.bytes > self.kout {
                    let g = self
                        .arena
                        .pop_back(&mut self.a1out)
                        .expect("ghost over limit");
                    self.map.remove(&self.arena.node(g).key);
                    self.arena.release(g);
                }
            } else {
                let v = self
                    .arena
                    .pop_back(&mut self.am)
                    .expect("resident object to evict");
                self.map.remove(&self.arena.node(v).key);
                self.arena.release(v);
                self.evictions += 1;
            }
        }
    }
}

impl Cache for TwoQ {
    fn name(&self) -> &'static str {
        "2q"
    }
    fn capacity(&self) -> u64 {
        self.capacity
    }
    fn used(&self) -> u64 {
        self.resident()
    }
    fn len(&self) -> usize {
        self.a1in.len + self.am.len
    }
    fn evictions(&self) -> u64 {
        self.evictions
    }
    fn contains(&self, key: u64) -> bool {
        self.map
            .get(&key)
            .is_some_and(|&i| self.arena.node(i).list != A1OUT)
    }

    fn access(&mut self, key: u64, size: u32) -> bool {
        let found = self.map.get(&key).copied();
        match found.map(|i| (i, self.arena.node(i).list)) {
            Some((i, AM)) => {
                self.arena.move_to_front(&mut self.am, i);
                true
            }
            Some((_, A1IN)) => true,
            Some((g, _)) => {
                // A ghost: the object comes back to Am (with its new size).
                self.arena.unlink(&mut self.a1out, g);
                self.map.remove(&key);
                self.arena.release(g);
                if u64::from(size) <= self.capacity {
                    self.reclaim_for(u64::from(size));
                    let i = self.arena.alloc(key, size);
                    self.arena.push_front(&mut self.am, i);
                    self.map.insert(key, i);
                }
                false
            }
            None => {
                if u64::from(size) <= self.capacity {
                    self.reclaim_for(u64::from(size));
                    let i = self.arena.alloc(key, size);
                    self.arena.push_front(&mut self.a1in, i);
                    self.map.insert(key, i);
                }
                false
            }
        }
    }

    fn assert_invariants(&self) {
        for l in [&self.a1in, &self.am, &self.a1out] {
            self.arena.check_list(l);
        }
        assert_eq!(self.map.len(), self.a1in.len + self.am.len + self.a1out.len);
        assert!(self.resident() <= self.capacity);
        assert!(self.a1out.bytes <= self.kout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_reference_after_eviction_goes_to_am() {
        // capacity 8: Kin = 2, Kout = 4.
        let mut c = TwoQ::new(8);
        for k in 0..8 {
            c.access(k, 1);
        }
        assert!(c.access(0, 1), "hit in A1in");
        // A ninth object: A1in (8 > Kin) gives up its tail, 0, to A1out.
        assert!(!c.access(8, 1));
        assert!(!c.contains(0));
        // 0 again: a ghost hit, a miss that goes to Am.
        assert!(!c.access(0, 1));
        assert_eq!(c.arena.keys(&c.am), vec![0]);
        c.assert_invariants();
        // A scan of new objects never pushes 0 out while A1in is above Kin.
        for k in 100..110 {
            c.access(k, 1);
            c.assert_invariants();
        }
        assert!(c.contains(0));
    }
}
