//! Criterion benchmarks: the radix tree against `BTreeMap`, `HashMap`
//! (std SipHash) and `FxHashMap` (rustc-hash), same keys, same process.
//!
//! Scenario: `u64` keys mapping to `u64` items, from three key sets
//! (`klab_radix_tree::keysets`): dense `0..n`, page-cache-like clustered
//! runs in 16 files, and sparse random keys; `n` from 10^3 to 10^6, and
//! 10^7 for lookups and gang lookups on dense and clustered keys when
//! `KLAB_BENCH_BIG=1` (it needs ~2 GiB and minutes to build).
//!
//! Operations, each timed per element:
//! * `insert`: build the structure from empty, keys in insertion order;
//! * `lookup`: point lookups in a random order over all keys;
//! * `delete`: remove every key, random order;
//! * `gang64`: 64 entries in key order from a random present key
//!   (`BTreeMap`: `range(k..).take(64)`; hash maps have no order);
//! * `gang_tag64`: 64 tagged entries from a random key with 1% of keys
//!   tagged (`BTreeMap` peer: a map of `(item, tag bits)` filtered on the
//!   range).
//!
//! Before timing, the bench prints the heap bytes per entry of each
//! structure, measured with a counting global allocator (`stats_alloc`),
//! and the radix tree's own accounting beside it. The counting allocator
//! adds a few atomic increments to every allocation, for every structure.
//!
//! Run: `cargo bench -p klab-radix-tree` (filter with e.g. `-- lookup/dense`).

use std::alloc::System;
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use klab_radix_tree::keysets::{KeySet, shuffled};
use klab_radix_tree::{RadixTree, Tag};
use rustc_hash::FxHashMap;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SEED: u64 = 1;
const PROBES: usize = 1024;
const GANGS: usize = 64;

/// Sparse random keys cost ~8 KB each in a radix tree (a private chain of
/// nodes per key): 10^6 of them would take 8 GB, so they stop at 10^5.
const SPARSE_MAX: usize = 100_000;

fn sizes(set: KeySet, big_ok: bool) -> Vec<usize> {
    let mut v = vec![1_000, 10_000, 100_000, 1_000_000];
    if set == KeySet::Sparse {
        v.retain(|&n| n <= SPARSE_MAX);
    }
    if big_ok && set != KeySet::Sparse && std::env::var_os("KLAB_BENCH_BIG").is_some() {
        v.push(10_000_000);
    }
    v
}

fn radix(keys: &[u64]) -> RadixTree<u64> {
    let mut t = RadixTree::new();
    for &k in keys {
        t.insert(k, k).unwrap();
    }
    t
}

/// Built by inserting one key at a time, as the radix tree is (and as a page
/// cache fills). `collect()` from sorted keys would bulk-build packed leaves
/// instead; the memory table shows that case too (`btree-bulk`).
fn btree(keys: &[u64]) -> BTreeMap<u64, u64> {
    let mut m = BTreeMap::new();
    for &k in keys {
        m.insert(k, k);
    }
    m
}

fn sip(keys: &[u64]) -> HashMap<u64, u64> {
    let mut m = HashMap::new();
    for &k in keys {
        m.insert(k, k);
    }
    m
}

fn fx(keys: &[u64]) -> FxHashMap<u64, u64> {
    let mut m = FxHashMap::default();
    for &k in keys {
        m.insert(k, k);
    }
    m
}

/// Heap bytes `build` leaves allocated, per key.
fn bytes_per_entry<M>(keys: &[u64], build: impl Fn(&[u64]) -> M) -> (f64, M) {
    let region = Region::new(GLOBAL);
    let m = build(keys);
    let s = region.change();
    let net = s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated;
    (net as f64 / keys.len() as f64, m)
}

fn memory_table() {
    println!("heap bytes per entry (u64 -> u64), counting allocator");
    println!(
        "{:<10} {:>9} {:>9} {:>11} {:>9} {:>11} {:>9} {:>9} {:>8}",
        "keys", "n", "radix", "(account)", "btree", "btree-bulk", "hash", "fxhash", "r/btree"
    );
    for set in KeySet::ALL {
        for n in [1_000, 100_000, 1_000_000] {
            if set == KeySet::Sparse && n > SPARSE_MAX {
                continue;
            }
            let keys = set.keys(n, SEED);
            let (r, t) = bytes_per_entry(&keys, radix);
            let account = t.memory().bytes as f64 / n as f64;
            drop(t);
            let (b, m) = bytes_per_entry(&keys, btree);
            drop(m);
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            let (bb, m) = bytes_per_entry(&sorted, |k: &[u64]| {
                k.iter().map(|&k| (k, k)).collect::<BTreeMap<_, _>>()
            });
            drop(m);
            let (h, m) = bytes_per_entry(&keys, sip);
            drop(m);
            let (f, m) = bytes_per_entry(&keys, fx);
            drop(m);
            println!(
                "{:<10} {n:>9} {r:>9.2} {account:>11.2} {b:>9.2} {bb:>11.2} {h:>9.2} {f:>9.2} {:>8.3}",
                set.name(),
                r / b
            );
        }
    }
}

fn bench_insert_delete(c: &mut Criterion) {
    for set in KeySet::ALL {
        for n in sizes(set, false) {
            let keys = set.keys(n, SEED);
            let probes = shuffled(&keys, SEED);
            let mut g = c.benchmark_group(format!("insert/{}", set.name()));
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new("radix", n), |b| {
                b.iter_with_large_drop(|| radix(&keys))
            });
            g.bench_function(BenchmarkId::new("btree", n), |b| {
                b.iter_with_large_drop(|| btree(&keys))
            });
            g.bench_function(BenchmarkId::new("hash", n), |b| {
                b.iter_with_large_drop(|| sip(&keys))
            });
            g.bench_function(BenchmarkId::new("fxhash", n), |b| {
                b.iter_with_large_drop(|| fx(&keys))
            });
            g.finish();
            let mut g = c.benchmark_group(format!("delete/{}", set.name()));
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(BenchmarkId::new("radix", n), |b| {
                b.iter_batched(
                    || radix(&keys),
                    |mut t| {
                        for &k in &probes {
                            black_box(t.delete(k));
                        }
                        t
                    },
                    BatchSize::LargeInput,
                )
            });
            g.bench_function(BenchmarkId::new("btree", n), |b| {
                b.iter_batched(
                    || btree(&keys),
                    |mut m| {
                        for &k in &probes {
                            black_box(m.remove(&k));
                        }
                        m
                    },
                    BatchSize::LargeInput,
                )
            });
            g.bench_function(BenchmarkId::new("hash", n), |b| {
                b.iter_batched(
                    || sip(&keys),
                    |mut m| {
                        for &k in &probes {
                            black_box(m.remove(&k));
                        }
                        m
                    },
                    BatchSize::LargeInput,
                )
            });
            g.bench_function(BenchmarkId::new("fxhash", n), |b| {
                b.iter_batched(
                    || fx(&keys),
                    |mut m| {
                        for &k in &probes {
                            black_box(m.remove(&k));
                        }
                        m
                    },
                    BatchSize::LargeInput,
                )
            });
            g.finish();
        }
    }
}

/// The next `count` (at most `PROBES`) probes, cycling through all of them
/// so a big structure is not measured on a cache-warm subset. `probes` holds
/// the keys followed by `PROBES` wrapped-around ones, so this is one slice:
/// no division per probe.
fn cycle<'a>(
    probes: &'a [u64],
    cursor: &mut usize,
    count: usize,
) -> impl Iterator<Item = u64> + 'a {
    debug_assert!(count <= PROBES);
    let keys = probes.len() - PROBES;
    let start = *cursor;
    *cursor = (start + count) % keys;
    probes[start..start + count].iter().copied()
}

/// Probe keys in random order, with the first `extra` repeated at the end.
fn probe_keys(keys: &[u64], extra: usize) -> Vec<u64> {
    let mut p = shuffled(keys, SEED);
    let wrap: Vec<u64> = p.iter().cycle().take(extra).copied().collect();
    p.extend(wrap);
    p
}

fn bench_lookups(c: &mut Criterion) {
    for set in KeySet::ALL {
        for n in sizes(set, true) {
            let keys = set.keys(n, SEED);
            let probes = probe_keys(&keys, PROBES);
            let mut t = radix(&keys);
            let b_map = btree(&keys);
            let h_map = sip(&keys);
            let f_map = fx(&keys);

            let mut g = c.benchmark_group(format!("lookup/{}", set.name()));
            g.throughput(Throughput::Elements(PROBES as u64));
            let mut cur = 0;
            g.bench_function(BenchmarkId::new("radix", n), |b| {
                b.iter(|| {
                    cycle(&probes, &mut cur, PROBES)
                        .map(|k| t.get(k).copied().unwrap_or(0))
                        .fold(0u64, u64::wrapping_add)
                })
            });
            g.bench_function(BenchmarkId::new("btree", n), |b| {
                b.iter(|| {
                    cycle(&probes, &mut cur, PROBES)
                        .map(|k| b_map.get(&k).copied().unwrap_or(0))
                        .fold(0u64, u64::wrapping_add)
                })
            });
            g.bench_function(BenchmarkId::new("hash", n), |b| {
                b.iter(|| {
                    cycle(&probes, &mut cur, PROBES)
                        .map(|k| h_map.get(&k).copied().unwrap_or(0))
                        .fold(0u64, u64::wrapping_add)
                })
            });
            g.bench_function(BenchmarkId::new("fxhash", n), |b| {
                b.iter(|| {
                    cycle(&probes, &mut cur, PROBES)
                        .map(|k| f_map.get(&k).copied().unwrap_or(0))
                        .fold(0u64, u64::wrapping_add)
                })
            });
            g.finish();
            drop(h_map);
            drop(f_map);

            let mut g = c.benchmark_group(format!("gang64/{}", set.name()));
            g.throughput(Throughput::Elements(GANGS as u64));
            let mut out = Vec::with_capacity(64);
            g.bench_function(BenchmarkId::new("radix", n), |b| {
                b.iter(|| {
                    let mut sum = 0;
                    for k in cycle(&probes, &mut cur, GANGS) {
                        out.clear();
                        sum += t.gang_lookup(k, 64, &mut out);
                    }
                    sum
                })
            });
            let mut bout: Vec<(&u64, &u64)> = Vec::with_capacity(64);
            g.bench_function(BenchmarkId::new("btree", n), |b| {
                b.iter(|| {
                    let mut sum = 0;
                    for k in cycle(&probes, &mut cur, GANGS) {
                        bout.clear();
                        bout.extend(b_map.range(k..).take(64));
                        sum += bout.len();
                    }
                    sum
                })
            });
            g.finish();
            drop(b_map);

            // 1% of the keys tagged (tag 0, "dirty").
            let tagged: Vec<u64> = probes[..n].iter().copied().step_by(100).collect();
            for &k in &tagged {
                t.tag_set(k, Tag::T0).unwrap();
            }
            let mut bt: BTreeMap<u64, (u64, u8)> = keys.iter().map(|&k| (k, (k, 0))).collect();
            for k in &tagged {
                bt.get_mut(k).unwrap().1 |= 1;
            }
            let mut tagged_out = Vec::with_capacity(64);
            let mut g = c.benchmark_group(format!("gang_tag64/{}", set.name()));
            g.throughput(Throughput::Elements(GANGS as u64));
            g.bench_function(BenchmarkId::new("radix", n), |b| {
                b.iter(|| {
                    let mut sum = 0;
                    for k in cycle(&probes, &mut cur, GANGS) {
                        tagged_out.clear();
                        sum += t.gang_lookup_tag(k, 64, Tag::T0, &mut tagged_out);
                    }
                    sum
                })
            });
            let mut tout: Vec<(&u64, &(u64, u8))> = Vec::with_capacity(64);
            g.bench_function(BenchmarkId::new("btree", n), |b| {
                b.iter(|| {
                    let mut sum = 0;
                    for k in cycle(&probes, &mut cur, GANGS) {
                        tout.clear();
                        tout.extend(
                            bt.range(k..)
                                .filter(|(_, (_, tags))| tags & 1 != 0)
                                .take(64),
                        );
                        sum += tout.len();
                    }
                    sum
                })
            });
            g.finish();
        }
    }
}

fn main() {
    memory_table();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bench_lookups(&mut c);
    bench_insert_delete(&mut c);
    c.final_summary();
}
