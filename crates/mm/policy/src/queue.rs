//! LRU and FIFO: one queue, evicted from the tail; LRU moves an object to
//! the head on every hit, FIFO never does.
//!
//! Insertion follows libCacheSim's `cache_get_base` so that miss counts
//! agree with it exactly on the same trace: a miss inserts the object
//! unless it is larger than the whole cache, evicting from the tail until
//! `used <= capacity`.

use std::collections::hash_map::Entry;

use rustc_hash::FxHashMap;

use crate::Cache;
use crate::list::{Arena, List};

/// Least recently used.
#[derive(Clone, Debug)]
pub struct Lru(Queue);

/// First in, first out.
#[derive(Clone, Debug)]
pub struct Fifo(Queue);

#[derive(Clone, Debug)]
struct Queue {
    arena: Arena,
    map: FxHashMap<u64, u32>,
    list: List,
    capacity: u64,
    evictions: u64,
}

impl Queue {
    fn new(capacity: u64) -> Self {
        Queue {
            arena: Arena::with_capacity(1024),
            map: FxHashMap::default(),
            list: List::new(0),
            capacity,
            evictions: 0,
        }
    }

    /// One request. A miss inserts the new object at the head *before*
    /// evicting from the tail: the evicted objects are the same as
    /// libCacheSim's evict-then-insert (the head is never the tail while
    /// the new object alone fits), and the map is searched once instead of
    /// twice.
    #[inline]
    fn access(&mut self, key: u64, size: u32, promote: bool) -> bool {
        match self.map.entry(key) {
            Entry::Occupied(e) => {
                if promote {
                    self.arena.move_to_front(&mut self.list, *e.get());
                }
                true
            }
            Entry::Vacant(v) => {
                if u64::from(size) <= self.capacity {
                    let i = self.arena.alloc(key, size);
                    self.arena.push_front(&mut self.list, i);
                    v.insert(i);
                    if self.list.bytes > self.capacity {
                        self.evict_to_fit();
                    }
                }
                false
            }
        }
    }

    #[cold]
    fn evict_to_fit(&mut self) {
        while self.list.bytes > self.capacity {
            let v = self
                .arena
                .pop_back(&mut self.list)
                .expect("non-empty while over capacity");
            self.map.remove(&self.arena.node(v).key);
            self.arena.release(v);
            self.evictions += 1;
        }
    }

    fn assert_invariants(&self) {
        self.arena.check_list(&self.list);
        assert_eq!(self.map.len(), self.list.len);
        assert!(self.list.bytes <= self.capacity);
        for (k, &i) in &self.map {
            assert_eq!(self.arena.node(i).key, *k);
        }
    }
}

impl Lru {
    /// An empty LRU cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Lru(Queue::new(capacity))
    }

    /// Keys from most to least recently used.
    pub fn keys(&self) -> Vec<u64> {
        self.0.arena.keys(&self.0.list)
    }
}

impl Fifo {
    /// An empty FIFO cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Fifo(Queue::new(capacity))
    }

    /// Keys from newest to oldest.
    pub fn keys(&self) -> Vec<u64> {
        self.0.arena.keys(&self.0.list)
    }
}

macro_rules! queue_cache {
    ($t:ty, $name:expr, $promote:expr) => {
        impl Cache for $t {
            fn name(&self) -> &'static str {
                $name
            }
            fn capacity(&self) -> u64 {
                self.0.capacity
            }
            fn used(&self) -> u64 {
                self.0.list.bytes
            }
            fn len(&self) -> usize {
                self.0.list.len
            }
            fn evictions(&self) -> u64 {
                self.0.evictions
            }
            fn contains(&self, key: u64) -> bool {
                self.0.map.contains_key(&key)
            }
            #[inline]
            fn access(&mut self, key: u64, size: u32) -> bool {
                self.0.access(key, size, $promote)
            }
            fn assert_invariants(&self) {
                self.0.assert_invariants()
            }
        }
    };
}

queue_cache!(Lru, "lru", true);
queue_cache!(Fifo, "fifo", false);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used() {
        let mut c = Lru::new(3);
        for k in [1, 2, 3] {
            assert!(!c.access(k, 1));
        }
        assert!(c.access(1, 1)); // 1 becomes most recent
        assert!(!c.access(4, 1)); // evicts 2
        assert_eq!(c.keys(), vec![4, 1, 3]);
        assert!(!c.contains(2));
        assert_eq!(c.evictions(), 1);
        c.assert_invariants();
    }

    #[test]
    fn fifo_ignores_hits() {
        let mut c = Fifo::new(3);
        for k in [1, 2, 3] {
            c.access(k, 1);
        }
        assert!(c.access(1, 1));
        assert!(!c.access(4, 1)); // evicts 1, the oldest, despite the hit
        assert_eq!(c.keys(), vec![4, 3, 2]);
        c.assert_invariants();
    }

    #[test]
    fn sizes_evict_until_the_object_fits_and_oversize_is_not_inserted() {
        let mut c = Lru::new(10);
        c.access(1, 4);
        c.access(2, 4);
        assert!(!c.access(3, 6)); // 4+4+6 > 10: evicts 1, then 8+... 4+6 = 10 fits
        assert_eq!(c.keys(), vec![3, 2]);
        assert_eq!(c.used(), 10);
        assert!(!c.access(9, 11)); // larger than the cache: a miss, nothing changes
        assert_eq!(c.keys(), vec![3, 2]);
        // A hit keeps the size the object was inserted with.
        assert!(c.access(2, 9));
        assert_eq!(c.used(), 10);
        c.assert_invariants();
    }
}
