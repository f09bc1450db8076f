//! Criterion benchmarks of lockless lookups (`RcuRadixTree`).
//!
//! * `rcu_single/{keys}/{reader}`: one thread, no writer: the lockless read
//!   path against today's single-threaded tree holding the same items
//!   (`Box<u64>`), with a pinned section per lookup (`rcu`) and one per
//!   1024 lookups (`rcu_batch`), so the cost of pinning shows apart from
//!   the walk.
//! * `rcu_contended/{keys}/{n}r/{map}`: the time of one lookup on the
//!   measured thread while `n - 1` other readers and one writer run
//!   (`klab_radix_tree::contention`: the writer deletes and inserts back
//!   20,000 keys a second, 40,000 writes), for the shared tree, the same
//!   tree under `std::sync::RwLock`, `BTreeMap` under a `RwLock`, dashmap
//!   and papaya. Criterion's elements per second is one reader's
//!   throughput; all readers together do `n` times that.
//!
//! Keys: 10^5, dense and clustered (`klab_radix_tree::keysets`), looked up
//! in a random order. Reader counts: 1, 2 and all cores
//! (`contention::reader_counts`).
//!
//! Run: `cargo bench -p klab-radix-tree --bench rcu`.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use klab_radix_tree::RadixTree;
use klab_radix_tree::contention::{self, ConcurrentMap, Dash, Papaya, Writer};
use klab_radix_tree::keysets::{KeySet, shuffled};

const N: usize = 100_000;
const SEED: u64 = 1;
const PAIRS_PER_SEC: u64 = 20_000;

fn single(c: &mut Criterion) {
    for set in [KeySet::Dense, KeySet::Clustered] {
        let keys = set.keys(N, SEED);
        let probes = shuffled(&keys, SEED);
        let mut plain = RadixTree::<Box<u64>>::new();
        for &k in &keys {
            plain.insert(k, Box::new(k)).unwrap();
        }
        let shared = contention::rcu_tree(&keys);
        let mut g = c.benchmark_group(format!("rcu_single/{}", set.name()));
        g.throughput(Throughput::Elements(1024));
        g.bench_function("radix", |b| {
            let mut i = 0;
            b.iter(|| {
                let mut s = 0u64;
                for _ in 0..1024 {
                    s = s.wrapping_add(plain.get(probes[i]).map_or(0, |v| **v));
                    i = (i + 1) % probes.len();
                }
                black_box(s)
            })
        });
        g.bench_function("rcu", |b| {
            let mut i = 0;
            b.iter(|| {
                let mut s = 0u64;
                for _ in 0..1024 {
                    s = s.wrapping_add(shared.read().get(probes[i]).map_or(0, |v| *v));
                    i = (i + 1) % probes.len();
                }
                black_box(s)
            })
        });
        g.bench_function("rcu_batch", |b| {
            let mut i = 0;
            b.iter(|| {
                let r = shared.read();
                let mut s = 0u64;
                for _ in 0..1024 {
                    s = s.wrapping_add(r.get(probes[i]).map_or(0, |v| *v));
                    i = (i + 1) % probes.len();
                }
                black_box(s)
            })
        });
        g.finish();
    }
}

/// Times one reader on criterion's thread while the writer and
/// `readers - 1` other readers run on background threads.
fn contended_one<M: ConcurrentMap>(
    c: &mut Criterion,
    group: &str,
    name: &str,
    map: &M,
    probes: &[u64],
    readers: usize,
    writer: &Writer,
) {
    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    std::thread::scope(|s| {
        for r in 1..readers {
            let stop = &stop;
            s.spawn(move || contention::reader_loop(map, probes, r * probes.len() / readers, stop));
        }
        s.spawn(|| contention::writer_loop(map, writer, &stop, &writes));
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            let mut i = 0;
            b.iter_custom(|iters| {
                let t = Instant::now();
                let mut sum = 0u64;
                for _ in 0..iters {
                    sum = sum.wrapping_add(map.read(probes[i]));
                    i = (i + 1) % probes.len();
                }
                black_box(sum);
                t.elapsed()
            })
        });
        g.finish();
        stop.store(true, Ordering::Relaxed);
    });
}

fn contended(c: &mut Criterion) {
    for set in [KeySet::Dense, KeySet::Clustered] {
        let keys = set.keys(N, SEED);
        let probes = shuffled(&keys, SEED);
        let writer = Writer {
            pairs_per_sec: PAIRS_PER_SEC,
            churn: shuffled(&keys, SEED + 1),
        };
        for readers in contention::reader_counts() {
            let group = format!("rcu_contended/{}/{readers}r", set.name());
            let t = contention::rcu_tree(&keys);
            contended_one(c, &group, "rcu", &t, &probes, readers, &writer);
            drop(t);
            let t = contention::rwlock_tree(&keys);
            contended_one(c, &group, "rwlock_radix", &t, &probes, readers, &writer);
            drop(t);
            let t = contention::rwlock_btree(&keys);
            contended_one(c, &group, "rwlock_btree", &t, &probes, readers, &writer);
            drop(t);
            let d = Dash::with_keys(&keys);
            contended_one(c, &group, "dashmap", &d, &probes, readers, &writer);
            drop(d);
            let p = Papaya::with_keys(&keys);
            contended_one(c, &group, "papaya", &p, &probes, readers, &writer);
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    single(&mut c);
    contended(&mut c);
    c.final_summary();
}
