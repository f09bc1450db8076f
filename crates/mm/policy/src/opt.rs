//! Belady's optimal policy (OPT, or MIN): on a miss that needs room, evict
//! the resident object whose next use is farthest in the future (objects
//! never used again first). It needs the future, so it is not a [`Cache`]
//! (crate::Cache): every access names the index of the key's next access,
//! computed by a pass over the whole trace first ([`next_accesses`]).
//!
//! With objects of one size (pages, or `--ignore-size`) this is the
//! optimal demand-paging policy: no policy that loads each missed object
//! has fewer misses (Belady 1966; Mattson et al. 1970 proved it). With
//! objects of different sizes, the farthest-next-use rule is what
//! libCacheSim's `Belady` does; it is no longer optimal there (minimising
//! misses with sizes is NP-hard), but it is the usual yardstick.
//!
//! Insertion follows the other textbook policies (libCacheSim's rules): a
//! miss inserts the object unless it is larger than the whole cache.
//!
//! State: a map from key to (size, next use), and an ordered map from next
//! use to key, so the farthest is its last entry. Next uses are distinct
//! (each request index is the next use of at most one earlier request),
//! and "never" is made distinct by the request's own index
//! (`NEVER - index`), so the order is total.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::sim::{ObjectRequest, SimStats};

/// The next access of a request whose key is never requested again.
pub const NEVER: u64 = u64::MAX;

/// For every request, the index of the next request to the same key, or
/// [`NEVER`]. One pass; memory: 8 bytes per request and one map entry per
/// distinct key.
pub fn next_accesses(keys: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut tracker = NextTracker::default();
    for k in keys {
        tracker.push(k);
    }
    tracker.finish()
}

/// [`next_accesses`] fed one key at a time (a trace read as a stream).
#[derive(Debug, Default)]
pub struct NextTracker {
    last: FxHashMap<u64, u64>,
    next: Vec<u64>,
}

impl NextTracker {
    /// The next key of the trace.
    pub fn push(&mut self, key: u64) {
        let i = self.next.len() as u64;
        self.next.push(NEVER);
        if let Some(j) = self.last.insert(key, i) {
            self.next[j as usize] = i;
        }
    }

    /// Distinct keys so far.
    pub fn distinct(&self) -> u64 {
        self.last.len() as u64
    }

    /// Every request's next access.
    pub fn finish(self) -> Vec<u64> {
        self.next
    }
}

/// Belady's OPT over objects sized in bytes (or 1 each).
#[derive(Clone, Debug)]
pub struct Opt {
    capacity: u64,
    used: u64,
    /// key -> (size, its entry in `by_next`).
    map: FxHashMap<u64, (u32, u64)>,
    /// next use -> key.
    by_next: BTreeMap<u64, u64>,
    evictions: u64,
    /// Requests seen, to make "never" distinct.
    clock: u64,
}

impl Opt {
    /// An empty cache of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Opt {
            capacity,
            used: 0,
            map: FxHashMap::default(),
            by_next: BTreeMap::new(),
            evictions: 0,
            clock: 0,
        }
    }

    /// One request, whose key is next requested at index `next` (or
    /// [`NEVER`]): true on a hit.
    pub fn access(&mut self, key: u64, size: u32, next: u64) -> bool {
        let order = if next == NEVER {
            NEVER - self.clock
        } else {
            next
        };
        self.clock += 1;
        if let Some((_, at)) = self.map.get_mut(&key) {
            self.by_next.remove(at);
            *at = order;
            self.by_next.insert(order, key);
            return true;
        }
        if u64::from(size) > self.capacity {
            return false;
        }
        while self.used + u64::from(size) > self.capacity {
            let (_, victim) = self
                .by_next
                .pop_last()
                .expect("something is resident while over capacity");
            let (s, _) = self.map.remove(&victim).expect("indexed keys are resident");
            self.used -= u64::from(s);
            self.evictions += 1;
        }
        self.map.insert(key, (size, order));
        self.by_next.insert(order, key);
        self.used += u64::from(size);
        false
    }

    /// Bytes held.
    pub fn used(&self) -> u64 {
        self.used
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `key` is resident.
    pub fn contains(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    /// Objects evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Checks that the two maps agree and the bytes add up; panics if not.
    pub fn assert_invariants(&self) {
        assert_eq!(self.map.len(), self.by_next.len());
        let mut used = 0;
        for (&order, &key) in &self.by_next {
            let (size, at) = self.map[&key];
            assert_eq!(at, order, "key {key}");
            used += u64::from(size);
        }
        assert_eq!(used, self.used);
        assert!(self.used <= self.capacity);
    }
}

/// Replays `requests` (held in memory) through OPT of `capacity` bytes,
/// the next accesses computed first.
pub fn replay_opt(capacity: u64, requests: &[ObjectRequest]) -> SimStats {
    let next = next_accesses(requests.iter().map(|r| r.key));
    let mut c = Opt::new(capacity);
    let mut s = SimStats::default();
    for (r, &n) in requests.iter().zip(&next) {
        let hit = c.access(r.key, r.size, n);
        s.hits += u64::from(hit);
        if !hit {
            s.miss_bytes += u64::from(r.size);
        }
        s.request_bytes += u64::from(r.size);
    }
    s.requests = requests.len() as u64;
    s.misses = s.requests - s.hits;
    s.evictions = c.evictions();
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cache, Lru};
    use proptest::prelude::*;

    fn unit(keys: &[u64]) -> Vec<ObjectRequest> {
        keys.iter()
            .map(|&key| ObjectRequest { key, size: 1 })
            .collect()
    }

    /// The reference string of Silberschatz, Galvin and Gagne's Operating
    /// System Concepts (chapter "Virtual Memory", page replacement): with
    /// three frames, OPT has 9 page faults, LRU 12 and FIFO 15.
    const TEXTBOOK: [u64; 20] = [7, 0, 1, 2, 0, 3, 0, 4, 2, 3, 0, 3, 2, 1, 2, 0, 1, 7, 0, 1];

    #[test]
    fn the_textbook_reference_string_has_nine_faults_in_three_frames() {
        let reqs = unit(&TEXTBOOK);
        assert_eq!(replay_opt(3, &reqs).misses, 9);
        assert_eq!(crate::PolicyKind::Lru.replay(3, &reqs).unwrap().misses, 12);
        assert_eq!(crate::PolicyKind::Fifo.replay(3, &reqs).unwrap().misses, 15);
        // Four frames: OPT 8 faults, LRU 8 - the working set fits better.
        assert_eq!(replay_opt(4, &reqs).misses, 8);
    }

    #[test]
    fn beladys_anomaly_string_under_opt_never_gets_worse_with_more_frames() {
        // 1 2 3 4 1 2 5 1 2 3 4 5: FIFO 9 faults in 3 frames, 10 in 4
        // (Belady's anomaly); OPT 7 and 6.
        let reqs = unit(&[1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5]);
        assert_eq!(crate::PolicyKind::Fifo.replay(3, &reqs).unwrap().misses, 9);
        assert_eq!(crate::PolicyKind::Fifo.replay(4, &reqs).unwrap().misses, 10);
        assert_eq!(replay_opt(3, &reqs).misses, 7);
        assert_eq!(replay_opt(4, &reqs).misses, 6);
    }

    #[test]
    fn next_accesses_point_at_the_next_use_of_the_same_key() {
        assert_eq!(
            next_accesses([5, 6, 5, 5, 7, 6]),
            vec![2, 5, 3, NEVER, NEVER, NEVER]
        );
    }

    #[test]
    fn sized_objects_evict_farthest_first_until_the_new_one_fits() {
        let mut c = Opt::new(10);
        // a(4) next at 3, b(4) next at 4, c(6) never again, inserted third.
        assert!(!c.access(1, 4, 3));
        assert!(!c.access(2, 4, 4));
        // c needs 6 bytes: evicting b (next 4) makes room; a stays.
        assert!(!c.access(3, 6, NEVER));
        assert_eq!((c.len(), c.used(), c.evictions()), (2, 10, 1));
        assert!(c.contains(1) && !c.contains(2));
        // d (8 bytes, next at 9): evicts c (never again) then a (next 3).
        assert!(!c.access(4, 8, 9));
        assert_eq!((c.len(), c.used(), c.evictions()), (1, 8, 3));
        // A request larger than the cache is a miss that inserts nothing.
        assert!(!c.access(9, 11, NEVER));
        assert_eq!(c.len(), 1);
        c.assert_invariants();
    }

    proptest! {
        /// OPT with unit sizes never misses more than LRU, and never more
        /// with more room (it has no Belady anomaly); its state stays
        /// consistent.
        #[test]
        fn opt_is_a_lower_bound_and_monotone(
            cap in 1u64..12,
            keys in proptest::collection::vec(0u64..30, 0..300),
        ) {
            let reqs = unit(&keys);
            let opt = replay_opt(cap, &reqs);
            let lru = crate::PolicyKind::Lru.replay(cap, &reqs).unwrap();
            prop_assert!(opt.misses <= lru.misses);
            prop_assert!(replay_opt(cap + 1, &reqs).misses <= opt.misses);
            prop_assert_eq!(opt.hits + opt.misses, reqs.len() as u64);
            let next = next_accesses(keys.iter().copied());
            let mut c = Opt::new(cap);
            let mut l = Lru::new(cap);
            for (&k, &n) in keys.iter().zip(&next) {
                c.access(k, 1, n);
                l.access(k, 1);
                c.assert_invariants();
                prop_assert!(c.len() as u64 <= cap);
            }
        }

        /// Against brute force: on short strings, OPT's misses equal the
        /// fewest misses any demand policy can have (every choice of
        /// victim tried).
        #[test]
        fn opt_matches_an_exhaustive_search(
            cap in 1usize..4,
            keys in proptest::collection::vec(0u64..6, 0..14),
        ) {
            fn best(keys: &[u64], cache: &mut Vec<u64>, cap: usize) -> u64 {
                let Some((&k, rest)) = keys.split_first() else { return 0 };
                if cache.contains(&k) {
                    return best(rest, cache, cap);
                }
                if cache.len() < cap {
                    cache.push(k);
                    let m = 1 + best(rest, cache, cap);
                    cache.pop();
                    return m;
                }
                let mut m = u64::MAX;
                for i in 0..cache.len() {
                    let old = std::mem::replace(&mut cache[i], k);
                    m = m.min(1 + best(rest, cache, cap));
                    cache[i] = old;
                }
                m
            }
            let want = best(&keys, &mut Vec::new(), cap);
            prop_assert_eq!(replay_opt(cap as u64, &unit(&keys)).misses, want);
        }
    }
}
