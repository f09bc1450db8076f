//! Readers against one writer: the workload of the lockless-lookup
//! benchmarks, shared by the criterion bench (`benches/rcu.rs`) and
//! `klab bench radix-tree`, as [`keysets`](crate::keysets) is.
//!
//! Reader threads look keys up (a random order over the key set, each
//! lookup a read-side section of its own: `rcu_read_lock()` or a read
//! lock, the lookup, reading the value, unlock) while one writer thread
//! deletes a key and inserts it back, at a fixed rate: every millisecond
//! it does `rate / 1000` delete-and-insert pairs, then sleeps to the next
//! millisecond, so it takes a core only for the time its writes take (on a
//! machine with few cores the readers keep the rest).
//!
//! The maps are behind [`ConcurrentMap`]; this module has the shared tree,
//! the single-threaded tree under a `std::sync::RwLock` and `BTreeMap`
//! under a `RwLock`, and with the `peers` feature the concurrent hash maps
//! made for the job, [`Dash`] and [`Papaya`].

use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::{RadixTree, RcuRadixTree};

/// A map the benchmark's readers and writer share.
pub trait ConcurrentMap: Sync {
    /// One lookup as a reader does it, with its own read-side section; the
    /// value, or 0 when absent.
    fn read(&self, key: u64) -> u64;
    /// Inserts `key -> value` (absent before).
    fn insert(&self, key: u64, value: u64);
    /// Deletes `key` (present before).
    fn delete(&self, key: u64);
}

/// The shared tree: a pinned section per lookup, no lock.
impl ConcurrentMap for RcuRadixTree<Box<u64>> {
    #[inline]
    fn read(&self, key: u64) -> u64 {
        self.read().get(key).map_or(0, |v| *v)
    }

    fn insert(&self, key: u64, value: u64) {
        let r = self.lock().insert(key, Box::new(value));
        debug_assert!(r.is_ok());
    }

    fn delete(&self, key: u64) {
        self.lock().delete(key);
    }
}

/// The single-threaded tree, with the same items, under a reader-writer
/// lock: what a shared tree was before lockless lookups.
impl ConcurrentMap for RwLock<RadixTree<Box<u64>>> {
    #[inline]
    fn read(&self, key: u64) -> u64 {
        self.read()
            .expect("no panic under the lock")
            .get(key)
            .map_or(0, |v| **v)
    }

    fn insert(&self, key: u64, value: u64) {
        let r = self
            .write()
            .expect("no panic under the lock")
            .insert(key, Box::new(value));
        debug_assert!(r.is_ok());
    }

    fn delete(&self, key: u64) {
        self.write().expect("no panic under the lock").delete(key);
    }
}

/// `BTreeMap` under a reader-writer lock.
impl ConcurrentMap for RwLock<BTreeMap<u64, u64>> {
    #[inline]
    fn read(&self, key: u64) -> u64 {
        self.read()
            .expect("no panic under the lock")
            .get(&key)
            .copied()
            .unwrap_or(0)
    }

    fn insert(&self, key: u64, value: u64) {
        self.write()
            .expect("no panic under the lock")
            .insert(key, value);
    }

    fn delete(&self, key: u64) {
        self.write().expect("no panic under the lock").remove(&key);
    }
}

#[cfg(feature = "peers")]
pub use peers::{Dash, Fx, Papaya};

/// Concurrent hash maps as benchmark peers (feature `peers`).
#[cfg(feature = "peers")]
mod peers {
    use std::hash::BuildHasherDefault;

    use rustc_hash::FxHasher;

    use super::ConcurrentMap;

    /// The peers' hasher: FxHash, as fast as a hash of a `u64` gets, so the
    /// maps are not held back by SipHash.
    pub type Fx = BuildHasherDefault<FxHasher>;

    /// dashmap: shards, each under an `RwLock`; values inline.
    pub struct Dash(pub dashmap::DashMap<u64, u64, Fx>);

    impl Dash {
        /// A map holding `keys` (each key's value is the key).
        pub fn with_keys(keys: &[u64]) -> Self {
            let d = Dash(dashmap::DashMap::with_hasher(Fx::default()));
            for &k in keys {
                d.0.insert(k, k);
            }
            d
        }
    }

    impl ConcurrentMap for Dash {
        #[inline]
        fn read(&self, key: u64) -> u64 {
            self.0.get(&key).map_or(0, |v| *v)
        }
        fn insert(&self, key: u64, value: u64) {
            self.0.insert(key, value);
        }
        fn delete(&self, key: u64) {
            self.0.remove(&key);
        }
    }

    /// papaya: lock-free reads, a guard (seize) per lookup.
    pub struct Papaya(pub papaya::HashMap<u64, u64, Fx>);

    impl Papaya {
        /// A map holding `keys` (each key's value is the key).
        pub fn with_keys(keys: &[u64]) -> Self {
            let p = Papaya(papaya::HashMap::with_hasher(Fx::default()));
            {
                let m = p.0.pin();
                for &k in keys {
                    m.insert(k, k);
                }
            }
            p
        }
    }

    impl ConcurrentMap for Papaya {
        #[inline]
        fn read(&self, key: u64) -> u64 {
            self.0.pin().get(&key).copied().unwrap_or(0)
        }
        fn insert(&self, key: u64, value: u64) {
            self.0.pin().insert(key, value);
        }
        fn delete(&self, key: u64) {
            self.0.pin().remove(&key);
        }
    }
}

/// The shared tree holding `keys` (each key's value is the key).
pub fn rcu_tree(keys: &[u64]) -> RcuRadixTree<Box<u64>> {
    let t = RcuRadixTree::new();
    {
        let mut w = t.lock();
        for &k in keys {
            let r = w.insert(k, Box::new(k));
            assert!(r.is_ok(), "duplicate key {k}");
        }
    }
    t
}

/// The single-threaded tree holding `keys`, under a `RwLock`.
pub fn rwlock_tree(keys: &[u64]) -> RwLock<RadixTree<Box<u64>>> {
    let mut t = RadixTree::new();
    for &k in keys {
        let r = t.insert(k, Box::new(k));
        assert!(r.is_ok(), "duplicate key {k}");
    }
    RwLock::new(t)
}

/// `BTreeMap` holding `keys`, under a `RwLock`.
pub fn rwlock_btree(keys: &[u64]) -> RwLock<BTreeMap<u64, u64>> {
    RwLock::new(keys.iter().map(|&k| (k, k)).collect())
}

/// The writer's pace and the keys it churns.
#[derive(Clone, Debug)]
pub struct Writer {
    /// Delete-and-insert pairs per second.
    pub pairs_per_sec: u64,
    /// Keys deleted and inserted back, in turn.
    pub churn: Vec<u64>,
}

/// What a timed run measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    /// Lookups per second, all readers together.
    pub lookups_per_sec: f64,
    /// Writes (deletes and inserts) per second the writer achieved.
    pub writes_per_sec: f64,
    /// Lookups per second of the reader threads' own CPU time (all their
    /// lookups over the CPU time they used): unlike the wall-clock figure,
    /// it does not move with the share of the CPUs other processes leave
    /// the readers (their caches' state still counts). NaN where there is
    /// no per-thread CPU clock.
    pub lookups_per_cpu_sec: f64,
}

/// The calling thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), where the
/// OS has one.
#[allow(unsafe_code)]
pub fn thread_cpu_time() -> Option<Duration> {
    #[cfg(all(target_os = "linux", not(loom)))]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call's
        // duration; the call writes only it.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (r == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }
    #[cfg(not(all(target_os = "linux", not(loom))))]
    {
        None
    }
}

/// One reader's loop: lookups over `probes` from `start`, cyclically, until
/// `stop`; returns how many it did. The stop flag is read every 64
/// lookups. (The criterion bench runs it on background threads beside the
/// reader it times.)
pub fn reader_loop<M: ConcurrentMap>(
    map: &M,
    probes: &[u64],
    start: usize,
    stop: &AtomicBool,
) -> u64 {
    let mut i = start % probes.len();
    let mut done = 0u64;
    let mut sum = 0u64;
    // At least one batch, even when `stop` is already set: a reader the
    // scheduler started late still measures something.
    loop {
        for _ in 0..64 {
            sum = sum.wrapping_add(map.read(probes[i]));
            i += 1;
            if i == probes.len() {
                i = 0;
            }
        }
        done += 64;
        if stop.load(Ordering::Relaxed) {
            break;
        }
    }
    black_box(sum);
    done
}

/// The writer's loop: `pairs_per_sec / 1000` delete-and-insert pairs each
/// millisecond (carrying fractions over), sleeping between, until `stop`;
/// adds the writes it did to `writes`.
pub fn writer_loop<M: ConcurrentMap>(map: &M, w: &Writer, stop: &AtomicBool, writes: &AtomicU64) {
    let start = Instant::now();
    let mut next = 0usize;
    let mut pairs_done = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let elapsed = start.elapsed();
        let due = (elapsed.as_nanos() * u128::from(w.pairs_per_sec) / 1_000_000_000) as u64;
        while pairs_done < due {
            let k = w.churn[next];
            next = (next + 1) % w.churn.len();
            map.delete(k);
            map.insert(k, k);
            pairs_done += 1;
        }
        writes.store(2 * pairs_done, Ordering::Relaxed);
        let next_ms = Duration::from_millis(elapsed.as_millis() as u64 + 1);
        if let Some(wait) = next_ms.checked_sub(start.elapsed()) {
            thread::sleep(wait);
        }
    }
}

/// Runs `readers` reader threads (0 means only the writer) and the writer
/// for `duration` on `map`, and measures lookups per second. `probes` is
/// the lookup order (each reader starts at its own offset).
pub fn run<M: ConcurrentMap>(
    map: &M,
    probes: &[u64],
    readers: usize,
    writer: &Writer,
    duration: Duration,
) -> Measured {
    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let started = AtomicUsize::new(0);
    let (lookups, cpu, elapsed) = thread::scope(|s| {
        let w = s.spawn(|| writer_loop(map, writer, &stop, &writes));
        let start = Instant::now();
        let handles: Vec<_> = (0..readers)
            .map(|r| {
                let stop = &stop;
                let started = &started;
                s.spawn(move || {
                    started.fetch_add(1, Ordering::Relaxed);
                    let cpu = thread_cpu_time();
                    let n = reader_loop(map, probes, r * probes.len() / readers.max(1), stop);
                    let cpu = cpu.zip(thread_cpu_time()).map(|(a, b)| b - a);
                    (n, cpu)
                })
            })
            .collect();
        thread::sleep(duration);
        // On a loaded machine a reader may not have run yet: the run lasts
        // until every reader has started (at most ten seconds more), so
        // none reports zero lookups for want of a CPU.
        let deadline = Instant::now() + Duration::from_secs(10);
        while started.load(Ordering::Relaxed) < readers && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        stop.store(true, Ordering::Relaxed);
        let mut lookups = 0u64;
        let mut cpu = Some(Duration::ZERO);
        for h in handles {
            let (n, c) = h.join().expect("reader panicked");
            lookups += n;
            cpu = cpu.zip(c).map(|(a, b)| a + b);
        }
        let elapsed = start.elapsed();
        w.join().expect("writer panicked");
        (lookups, cpu, elapsed)
    });
    Measured {
        lookups_per_sec: lookups as f64 / elapsed.as_secs_f64(),
        writes_per_sec: writes.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        lookups_per_cpu_sec: cpu
            .filter(|c| !c.is_zero())
            .map_or(f64::NAN, |c| lookups as f64 / c.as_secs_f64()),
    }
}

/// `1, 2, ..., all cores`: the reader counts the benchmarks measure
/// (1, 2 and the machine's available parallelism, without repeats).
pub fn reader_counts() -> Vec<usize> {
    let all = thread::available_parallelism().map_or(1, |n| n.get());
    let mut v = vec![1, 2, all];
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(all(test, not(miri), not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_run_counts_lookups_and_the_writer_keeps_its_pace() {
        let keys: Vec<u64> = (0..1000).collect();
        let w = Writer {
            pairs_per_sec: 10_000,
            churn: keys.iter().copied().step_by(7).collect(),
        };
        let t = rcu_tree(&keys);
        let m = run(&t, &keys, 1, &w, Duration::from_millis(100));
        assert!(m.lookups_per_sec > 0.0);
        if cfg!(target_os = "linux") {
            // The reader's CPU time is at most the run's wall-clock time.
            assert!(m.lookups_per_cpu_sec >= m.lookups_per_sec * 0.99, "{m:?}");
        }
        // Whatever the pace achieved, the tree ends with every key.
        let r = t.read();
        assert!(keys.iter().all(|&k| r.get(k) == Some(&k)));
        assert!(m.writes_per_sec <= 2.0 * 10_000.0 * 1.1, "{m:?}");
        let l = rwlock_tree(&keys);
        let m = run(&l, &keys, 2, &w, Duration::from_millis(50));
        assert!(m.lookups_per_sec > 0.0);
        let b = rwlock_btree(&keys);
        assert_eq!(ConcurrentMap::read(&b, 5), 5);
        assert_eq!(reader_counts()[0], 1);
    }

    #[cfg(feature = "peers")]
    #[test]
    fn the_peers_hold_their_keys_through_a_run() {
        let keys: Vec<u64> = (0..500).collect();
        let w = Writer {
            pairs_per_sec: 10_000,
            churn: keys.iter().copied().step_by(3).collect(),
        };
        let d = Dash::with_keys(&keys);
        let p = Papaya::with_keys(&keys);
        assert!(run(&d, &keys, 1, &w, Duration::from_millis(30)).lookups_per_sec > 0.0);
        assert!(run(&p, &keys, 1, &w, Duration::from_millis(30)).lookups_per_sec > 0.0);
        for k in keys {
            assert_eq!(
                (ConcurrentMap::read(&d, k), ConcurrentMap::read(&p, k)),
                (k, k)
            );
        }
    }
}
