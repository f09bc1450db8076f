//! CLOCK (second chance), as libCacheSim's `Clock` with its defaults
//! (`n-bit-counter=1`, `init-freq=0`): objects enter at the head with a
//! clear reference bit; a hit sets it; eviction looks at the tail, and an
//! object whose bit is set has it cleared and goes back to the head
//! instead of being evicted.

use rustc_hash::FxHashMap;

use crate::Cache;
use crate::list::{Arena, List};

/// CLOCK with one reference bit.
#[derive(Clone, Debug)]
pub struct Clock {
    arena: Arena,
    map: FxHashMap<u64, u32>,
    list: List,
    capacity: u64,
    evictions: u64,
}

impl Clock {
    /// An empty CLOCK cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Clock {
            arena: Arena::with_capacity(1024),
            map: FxHashMap::default(),
            list: List::new(0),
            capacity,
            evictions: 0,
        }
    }

    fn evict_one(&mut self) {
        loop {
            let t = self.list.tail;
            if self.arena.node(t).bits >= 1 {
                self.arena.node_mut(t).bits -= 1;
                self.arena.move_to_front(&mut self.list, t);
            } else {
                self.arena.unlink(&mut self.list, t);
                self.map.remove(&self.arena.node(t).key);
                self.arena.release(t);
                self.evictions += 1;
                return;
            }
        }
    }
}

impl Cache for Clock {
    fn name(&self) -> &'static str {
        "clock"
    }
    fn capacity(&self) -> u64 {
        self.capacity
    }
    fn used(&self) -> u64 {
        self.list.bytes
    }
    fn len(&self) -> usize {
        self.list.len
    }
    fn evictions(&self) -> u64 {
        self.evictions
    }
    fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    #[inline]
    fn access(&mut self, key: u64, size: u32) -> bool {
        if let Some(&i) = self.map.get(&key) {
            self.arena.node_mut(i).bits = 1;
            return true;
        }
        if u64::from(size) > self.capacity {
            return false;
        }
        while self.list.bytes + u64::from(size) > self.capacity {
            self.evict_one();
        }
        let i = self.arena.alloc(key, size);
        self.arena.push_front(&mut self.list, i);
        self.map.insert(key, i);
        false
    }

    fn assert_invariants(&self) {
        self.arena.check_list(&self.list);
        assert_eq!(self.map.len(), self.list.len);
        assert!(self.list.bytes <= self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_objects_get_a_second_chance() {
        let mut c = Clock::new(3);
        for k in [1, 2, 3] {
            c.access(k, 1);
        }
        assert!(c.access(1, 1)); // sets 1's bit
        assert!(!c.access(4, 1)); // tail 1 is referenced: cleared, moved to head; evicts 2
        assert!(c.contains(1) && !c.contains(2));
        assert!(!c.access(5, 1)); // tail is now 3 (bit clear): evicted
        assert!(c.contains(1) && !c.contains(3));
        assert!(!c.access(6, 1)); // tail is 1 again, bit now clear: evicted
        assert!(!c.contains(1));
        c.assert_invariants();
    }
}
