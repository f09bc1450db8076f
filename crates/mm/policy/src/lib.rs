//! Page replacement and LRU balancing policies, as values.
//!
//! Two families live here, pure and without machine state:
//!
//! * [`balance`]: the kernel's rules for its active and inactive lists
//!   ([`LruBalance`]: the classic 1:1 rule, the LWN page's refault-distance
//!   proposal, and the rule merged in 3.15), used by the machine model's
//!   reclaim (`klab-model`, `mm/vmscan.rs`) and by `klab replay` in page
//!   mode.
//! * Textbook policies for object caches behind the [`Cache`] trait: [`Lru`],
//!   [`Fifo`], [`Clock`], [`TwoQ`], [`Arc`]; and Belady's optimal policy
//!   [`Opt`], the limit every curve is measured against, which needs each
//!   request's next access ([`opt`]) and so is not a [`Cache`]. They validate the replay
//!   engine against other simulators (LRU and FIFO reproduce libCacheSim's
//!   miss counts exactly; see the tests) and give the kernel rules a
//!   familiar yardstick.
//!
//! A closed set of policies is an enum ([`PolicyKind`], parsed from the
//! command line); [`Cache`] is a trait because users may bring their own.
//! Adding a textbook policy is one file and one enum arm.
//!
//! All textbook policies share one structure ([`list`]): intrusive
//! doubly-linked lists over an arena of 24-byte nodes addressed by `u32`,
//! and an FxHash map from key to node. A hit is one hash lookup and a few
//! stores.
#![forbid(unsafe_code)]

mod arc;
pub mod balance;
mod clock;
mod list;
pub mod opt;
mod queue;
pub mod sim;
mod twoq;

use std::fmt;
use std::str::FromStr;

pub use arc::Arc;
pub use balance::{LruBalance, RefaultAction};
pub use clock::Clock;
pub use opt::Opt;
pub use queue::{Fifo, Lru};
pub use sim::{ObjectRequest, SimStats, replay};
pub use twoq::TwoQ;

/// Bytes of state a textbook policy keeps per resident object: one arena
/// node and one hash-map slot (key and node index, plus hashbrown's control
/// byte) at the map's highest load factor, 7/8. Ghost entries (2Q's A1out,
/// ARC's B1 and B2) cost the same.
pub fn bytes_per_object() -> f64 {
    let node = std::mem::size_of::<list::Node>() as f64;
    let slot = (std::mem::size_of::<(u64, u32)>() + 1) as f64;
    node + slot * 8.0 / 7.0
}

/// An object cache with a replacement policy.
///
/// Sizes are in bytes (or 1 per object when a replay ignores sizes). A miss
/// inserts the object when it fits in the whole cache, evicting as the
/// policy decides until it does; an object keeps the size it was inserted
/// with while it stays cached.
pub trait Cache {
    /// The policy's name (`lru`).
    fn name(&self) -> &'static str;
    /// Capacity in bytes.
    fn capacity(&self) -> u64;
    /// Bytes held.
    fn used(&self) -> u64;
    /// Objects held.
    fn len(&self) -> usize;
    /// True when nothing is held.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Objects evicted so far.
    fn evictions(&self) -> u64;
    /// Whether `key` is resident.
    fn contains(&self, key: u64) -> bool;
    /// One request: true on a hit.
    fn access(&mut self, key: u64, size: u32) -> bool;
    /// Checks every internal invariant; panics on a violation.
    fn assert_invariants(&self);
}

/// Every policy `klab replay` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Least recently used.
    Lru,
    /// First in, first out.
    Fifo,
    /// CLOCK with one reference bit.
    Clock,
    /// 2Q (full version).
    TwoQ,
    /// Adaptive replacement cache.
    Arc,
    /// Belady's optimal policy: evicts the object whose next use is
    /// farthest; needs the whole trace first ([`opt`]).
    Opt,
    /// The kernel's active/inactive lists with a balancing rule (page mode:
    /// runs in the machine model).
    Kernel(LruBalance),
}

impl PolicyKind {
    /// Every policy, textbook first.
    pub const ALL: [PolicyKind; 10] = [
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::Clock,
        PolicyKind::TwoQ,
        PolicyKind::Arc,
        PolicyKind::Opt,
        PolicyKind::Kernel(LruBalance::Classic),
        PolicyKind::Kernel(LruBalance::RefaultDistance),
        PolicyKind::Kernel(LruBalance::Workingset315),
        PolicyKind::Kernel(LruBalance::Workingset6),
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Lru => "lru",
            PolicyKind::Fifo => "fifo",
            PolicyKind::Clock => "clock",
            PolicyKind::TwoQ => "2q",
            PolicyKind::Arc => "arc",
            PolicyKind::Opt => "opt",
            PolicyKind::Kernel(b) => b.name(),
        }
    }

    /// True for OPT, which needs every request's next access.
    pub fn needs_future(self) -> bool {
        self == PolicyKind::Opt
    }

    /// True for the kernel's rules.
    pub fn is_kernel(self) -> bool {
        matches!(self, PolicyKind::Kernel(_))
    }

    /// A textbook cache of `capacity` bytes; `None` for the kernel's rules,
    /// which need the machine model, and for OPT, which needs the future.
    pub fn cache(self, capacity: u64) -> Option<Box<dyn Cache + Send>> {
        Some(match self {
            PolicyKind::Lru => Box::new(Lru::new(capacity)),
            PolicyKind::Fifo => Box::new(Fifo::new(capacity)),
            PolicyKind::Clock => Box::new(Clock::new(capacity)),
            PolicyKind::TwoQ => Box::new(TwoQ::new(capacity)),
            PolicyKind::Arc => Box::new(Arc::new(capacity)),
            PolicyKind::Opt | PolicyKind::Kernel(_) => return None,
        })
    }

    /// Replays `requests` through a new textbook cache of `capacity`
    /// bytes, with the policy's code inlined into the loop (no dynamic
    /// dispatch per request); OPT computes the next accesses first. `None`
    /// for the kernel's rules.
    pub fn replay(self, capacity: u64, requests: &[ObjectRequest]) -> Option<SimStats> {
        Some(match self {
            PolicyKind::Lru => replay(&mut Lru::new(capacity), requests),
            PolicyKind::Fifo => replay(&mut Fifo::new(capacity), requests),
            PolicyKind::Clock => replay(&mut Clock::new(capacity), requests),
            PolicyKind::TwoQ => replay(&mut TwoQ::new(capacity), requests),
            PolicyKind::Arc => replay(&mut Arc::new(capacity), requests),
            PolicyKind::Opt => opt::replay_opt(capacity, requests),
            PolicyKind::Kernel(_) => return None,
        })
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PolicyKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.to_ascii_lowercase();
        PolicyKind::ALL
            .into_iter()
            .find(|p| p.name() == lower)
            .ok_or_else(|| {
                let names: Vec<&str> = PolicyKind::ALL.iter().map(|p| p.name()).collect();
                format!("unknown policy {s:?}; known policies: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn state_per_object_is_a_24_byte_node_and_a_map_slot() {
        assert_eq!(std::mem::size_of::<list::Node>(), 24);
        assert!((bytes_per_object() - (24.0 + 17.0 * 8.0 / 7.0)).abs() < 1e-9);
    }

    #[test]
    fn policy_names_parse_back() {
        for p in PolicyKind::ALL {
            assert_eq!(p.name().parse::<PolicyKind>(), Ok(p));
        }
        assert!(
            "mru"
                .parse::<PolicyKind>()
                .unwrap_err()
                .contains("known policies: lru, fifo")
        );
    }

    proptest! {
        /// Every textbook policy keeps its invariants and counts every
        /// request, on random streams with random sizes.
        #[test]
        fn textbook_policies_keep_their_invariants(
            cap in 1u64..64,
            reqs in proptest::collection::vec((0u64..40, 1u32..12), 0..400),
        ) {
            for kind in PolicyKind::ALL.into_iter().filter(|p| !p.is_kernel() && !p.needs_future()) {
                let mut c = kind.cache(cap).unwrap();
                let mut hits = 0;
                for &(k, s) in &reqs {
                    let was = c.contains(k);
                    let hit = c.access(k, s);
                    prop_assert_eq!(hit, was, "{}: hit iff resident before", kind);
                    hits += u64::from(hit);
                    if u64::from(s) <= cap && !hit {
                        prop_assert!(c.contains(k), "{}: a fitting miss is inserted", kind);
                    }
                    c.assert_invariants();
                    prop_assert!(c.used() <= cap);
                }
                let reqs: Vec<ObjectRequest> = reqs.iter().map(|&(key, size)| ObjectRequest { key, size }).collect();
                let s = kind.replay(cap, &reqs).unwrap();
                prop_assert_eq!(s.hits, hits);
                prop_assert_eq!(s.hits + s.misses, reqs.len() as u64);
            }
        }

        /// LRU against a naive model: a vector ordered by recency.
        #[test]
        fn lru_matches_a_naive_model(
            cap in 1u64..20,
            reqs in proptest::collection::vec((0u64..30, 1u32..6), 0..300),
        ) {
            let mut c = Lru::new(cap);
            let mut model: Vec<(u64, u32)> = Vec::new(); // most recent first
            for &(k, s) in &reqs {
                let hit = c.access(k, s);
                if let Some(pos) = model.iter().position(|e| e.0 == k) {
                    prop_assert!(hit);
                    let e = model.remove(pos);
                    model.insert(0, e);
                } else {
                    prop_assert!(!hit);
                    if u64::from(s) <= cap {
                        while model.iter().map(|e| u64::from(e.1)).sum::<u64>() + u64::from(s) > cap {
                            model.pop();
                        }
                        model.insert(0, (k, s));
                    }
                }
                prop_assert_eq!(c.keys(), model.iter().map(|e| e.0).collect::<Vec<_>>());
            }
        }
    }
}
