//! ARC, the Adaptive Replacement Cache (Megiddo and Modha, FAST 2003), with
//! sizes in bytes.
//!
//! ```text
//!   T1  resident, seen once recently        B1  ghosts evicted from T1
//!   T2  resident, seen at least twice       B2  ghosts evicted from T2
//!   p   target bytes for T1, adapted on ghost hits
//! ```
//!
//! The paper counts pages; here every count is a byte count and every
//! "one page" step is the size of the object at hand: a ghost hit in B1
//! raises p by `size * max(1, |B2| / |B1|)`, one in B2 lowers it by
//! `size * max(1, |B1| / |B2|)`; REPLACE repeats until the new object fits;
//! the directory bounds are `|T1| + |B1| <= c` and `|T1|+|T2|+|B1|+|B2| <= 2c`
//! in bytes. With every size 1 this is exactly the paper's algorithm.

use rustc_hash::FxHashMap;

use crate::Cache;
use crate::list::{Arena, List};

const T1: u8 = 0;
const T2: u8 = 1;
const B1: u8 = 2;
const B2: u8 = 3;

/// The ARC policy.
#[derive(Clone, Debug)]
pub struct Arc {
    arena: Arena,
    map: FxHashMap<u64, u32>,
    t1: List,
    t2: List,
    b1: List,
    b2: List,
    capacity: u64,
    p: u64,
    evictions: u64,
}

impl Arc {
    /// An empty ARC cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Arc {
            arena: Arena::with_capacity(1024),
            map: FxHashMap::default(),
            t1: List::new(T1),
            t2: List::new(T2),
            b1: List::new(B1),
            b2: List::new(B2),
            capacity,
            p: 0,
            evictions: 0,
        }
    }

    /// The current target size of T1, in bytes.
    pub fn target_t1(&self) -> u64 {
        self.p
    }

    fn resident(&self) -> u64 {
        self.t1.bytes + self.t2.bytes
    }

    /// REPLACE of the paper, repeated until `size` more bytes fit.
    fn replace(&mut self, hit_in_b2: bool, size: u64) {
        while self.resident() + size > self.capacity {
            let from_t1 = self.t1.len > 0
                && (self.t1.bytes > self.p
                    || (hit_in_b2 && self.t1.bytes == self.p)
                    || self.t2.len == 0);
            let (src, dst) = if from_t1 {
                (&mut self.t1, &mut self.b1)
            } else {
                (&mut self.t2, &mut self.b2)
            };
            let v = self
                .arena
                .pop_back(src)
                .expect("resident object to replace");
            self.arena.push_front(dst, v);
            self.evictions += 1;
        }
    }

    fn drop_ghost(&mut self, b2: bool) {
        let list = if b2 { &mut self.b2 } else { &mut self.b1 };
        if let Some(g) = self.arena.pop_back(list) {
            self.map.remove(&self.arena.node(g).key);
            self.arena.release(g);
        }
    }

    fn insert(&mut self, key: u64, size: u32, list: u8) {
        let i = self.arena.alloc(key, size);
        let l = if list == T1 {
            &mut self.t1
        } else {
            &mut self.t2
        };
        self.arena.push_front(l, i);
        self.map.insert(key, i);
    }
}

impl Cache for Arc {
    fn name(&self) -> &'static str {
        "arc"
    }
    fn capacity(&self) -> u64 {
        self.capacity
    }
    fn used(&self) -> u64 {
        self.resident()
    }
    fn len(&self) -> usize {
        self.t1.len + self.t2.len
    }
    fn evictions(&self) -> u64 {
        self.evictions
    }
    fn contains(&self, key: u64) -> bool {
        self.map
            .get(&key)
            .is_some_and(|&i| matches!(self.arena.node(i).list, T1 | T2))
    }

    fn access(&mut self, key: u64, size: u32) -> bool {
        let c = self.capacity;
        let s = u64::from(size);
        let found = self.map.get(&key).copied();
        match found.map(|i| (i, self.arena.node(i).list)) {
            Some((i, T1)) => {
                self.arena.unlink(&mut self.t1, i);
                self.arena.push_front(&mut self.t2, i);
                true
            }
            Some((i, T2)) => {
                self.arena.move_to_front(&mut self.t2, i);
                true
            }
            Some((g, list)) => {
                let in_b2 = list == B2;
                if in_b2 {
                    let delta = if self.b2.bytes >= self.b1.bytes {
                        s
                    } else {
                        s.saturating_mul(self.b1.bytes / self.b2.bytes.max(1))
                    };
                    self.p = self.p.saturating_sub(delta);
                    self.arena.unlink(&mut self.b2, g);
                } else {
                    let delta = if self.b1.bytes >= self.b2.bytes {
                        s
                    } else {
                        s.saturating_mul(self.b2.bytes / self.b1.bytes.max(1))
                    };
                    self.p = (self.p + delta).min(c);
                    self.arena.unlink(&mut self.b1, g);
                }
                self.map.remove(&key);
                self.arena.release(g);
                if s <= c {
                    self.replace(in_b2, s);
                    self.insert(key, size, T2);
                }
                false
            }
            None => {
                if s > c {
                    return false;
                }
                // Case IV of the paper: keep |T1| + |B1| <= c ...
                while self.t1.bytes + self.b1.bytes + s > c && self.b1.len > 0 {
                    self.drop_ghost(false);
                }
                while self.t1.bytes + s > c {
                    // T1 alone fills the cache: evict its LRU outright.
                    let v = self.arena.pop_back(&mut self.t1).expect("T1 over capacity");
                    self.map.remove(&self.arena.node(v).key);
                    self.arena.release(v);
                    self.evictions += 1;
                }
                // ... and the whole directory within 2c.
                while self.resident() + self.b1.bytes + self.b2.bytes + s > 2 * c && self.b2.len > 0
                {
                    self.drop_ghost(true);
                }
                self.replace(false, s);
                self.insert(key, size, T1);
                false
            }
        }
    }

    fn assert_invariants(&self) {
        for l in [&self.t1, &self.t2, &self.b1, &self.b2] {
            self.arena.check_list(l);
        }
        assert_eq!(
            self.map.len(),
            self.t1.len + self.t2.len + self.b1.len + self.b2.len
        );
        assert!(self.resident() <= self.capacity);
        assert!(self.p <= self.capacity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ghost_hits_adapt_the_target() {
        let mut c = Arc::new(4);
        for k in 0..4 {
            c.access(k, 1);
        }
        // A second touch moves 0 to T2.
        assert!(c.access(0, 1));
        assert_eq!(c.arena.keys(&c.t2), vec![0]);
        assert_eq!(c.target_t1(), 0);
        // Object 4: T1 (3 bytes) is above p = 0, so REPLACE moves T1's
        // LRU, 1, to B1.
        c.access(4, 1);
        assert!(!c.contains(1));
        assert_eq!(c.arena.keys(&c.b1), vec![1]);
        // 1 again: a B1 ghost hit raises p by one and brings 1 into T2.
        assert!(!c.access(1, 1));
        assert_eq!(c.target_t1(), 1);
        assert_eq!(c.arena.keys(&c.t2), vec![1, 0]);
        c.assert_invariants();
    }

    #[test]
    fn a_full_t1_evicts_without_a_ghost() {
        // Case IV(A) of the paper with |T1| = c: T1's LRU is deleted outright.
        let mut c = Arc::new(4);
        for k in 0..5 {
            c.access(k, 1);
        }
        assert!(!c.contains(0));
        assert_eq!(c.b1.len, 0);
        c.assert_invariants();
    }

    #[test]
    fn frequently_used_objects_survive_a_scan() {
        let mut c = Arc::new(10);
        for _ in 0..3 {
            for k in 0..5 {
                c.access(k, 1);
            }
        }
        for k in 100..200 {
            c.access(k, 1);
            c.assert_invariants();
        }
        assert!(
            (0..5).all(|k| c.contains(k)),
            "T2 keeps the hot set through a scan"
        );
    }
}
