//! Deterministic key sets for benchmarks and experiments: dense, clustered
//! like a page cache, and sparse.
//!
//! * [`dense`]: `0..n`, the pages of a file read from start to end.
//! * [`clustered`]: runs of consecutive page indices, as readahead leaves in
//!   the page caches of several files: file `f`'s pages live at
//!   `f << 32 | offset`, each run starts at a random offset below `2^24`
//!   (64 GiB of 4 KiB pages) and is 8 to 128 pages long.
//! * [`sparse`]: uniformly random 64-bit keys, the radix tree's worst case.
//!
//! Keys come in insertion order (ascending for dense, run by run for
//! clustered, random for sparse) without duplicates; [`shuffled`] gives a
//! random probe order. Everything derives from a seed through SplitMix64, so
//! the same seed gives the same keys on every machine.

/// Which key set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum KeySet {
    /// `0..n`.
    Dense,
    /// Runs of consecutive pages in several files.
    Clustered,
    /// Uniformly random 64-bit keys.
    Sparse,
}

impl KeySet {
    /// Every key set, in the order reports list them.
    pub const ALL: [KeySet; 3] = [KeySet::Dense, KeySet::Clustered, KeySet::Sparse];

    /// Lowercase name (`dense`, `clustered`, `sparse`).
    pub const fn name(self) -> &'static str {
        match self {
            KeySet::Dense => "dense",
            KeySet::Clustered => "clustered",
            KeySet::Sparse => "sparse",
        }
    }

    /// `n` keys of this set, in insertion order.
    pub fn keys(self, n: usize, seed: u64) -> Vec<u64> {
        match self {
            KeySet::Dense => dense(n),
            KeySet::Clustered => clustered(n, seed),
            KeySet::Sparse => sparse(n, seed),
        }
    }
}

/// Files the clustered set spreads over.
pub const CLUSTERED_FILES: u64 = 16;

/// `0..n`.
pub fn dense(n: usize) -> Vec<u64> {
    (0..n as u64).collect()
}

/// `n` keys in runs of 8 to 128 consecutive pages, in
/// [`CLUSTERED_FILES`] files (`file << 32 | page`).
pub fn clustered(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64(seed ^ 0xC1u64);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let file = rng.below(CLUSTERED_FILES);
        let start = rng.below(1 << 24);
        let len = 8 + rng.below(121);
        for page in start..start + len {
            if keys.len() == n {
                break;
            }
            let key = (file << 32) | page;
            if seen.insert(key) {
                keys.push(key);
            }
        }
    }
    keys
}

/// `n` distinct uniformly random keys.
pub fn sparse(n: usize, seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64(seed ^ 0x5Au64);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    while keys.len() < n {
        let key = rng.next();
        if seen.insert(key) {
            keys.push(key);
        }
    }
    keys
}

/// `keys` in a random order (Fisher-Yates), for probes.
pub fn shuffled(keys: &[u64], seed: u64) -> Vec<u64> {
    let mut rng = SplitMix64(seed ^ 0x5Fu64);
    let mut v = keys.to_vec();
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// SplitMix64 (Steele, Lea, Flood 2014): small, fixed, portable.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (bound > 0), by multiply-high.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(bound)) >> 64) as u64
    }
}

// Not under Miri (safe code; minutes there).
#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn key_sets_are_distinct_sized_and_reproducible() {
        for set in KeySet::ALL {
            let a = set.keys(5000, 9);
            assert_eq!(a.len(), 5000);
            let mut s = a.clone();
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), 5000, "{set:?} has duplicates");
            assert_eq!(a, set.keys(5000, 9));
        }
        assert_eq!(dense(3), [0, 1, 2]);
        let c = clustered(1000, 1);
        assert!(
            c.iter()
                .all(|k| k >> 32 < CLUSTERED_FILES && k & 0xffff_ffff < (1 << 24) + 128)
        );
        // Runs: most keys follow their predecessor.
        let follow = c.windows(2).filter(|w| w[1] == w[0] + 1).count();
        assert!(follow > 900, "{follow}");
        let mut sh = shuffled(&c, 2);
        assert_ne!(sh, c);
        sh.sort_unstable();
        let mut cs = c.clone();
        cs.sort_unstable();
        assert_eq!(sh, cs);
    }
}
