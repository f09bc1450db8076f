//! `klab bench radix-tree`: the radix tree against `BTreeMap`, `HashMap`
//! (SipHash) and `FxHashMap`, timed with `Instant` in one process, and the
//! ratios checked against klab's targets.
//!
//! Same workloads as the criterion benches in `crates/lib/radix-tree/benches`
//! (`klab_radix_tree::keysets`: dense, clustered, sparse; `u64 -> u64`),
//! measured more briefly: each operation runs over every key (or 4096 gang
//! lookups) three times and the fastest pass counts. Sizes: 10^4 under
//! `--quick` (sparse: 10^3); 10^4 to 10^6 otherwise (sparse stops at 10^5:
//! ~8 KB a key).
//!
//! Targets (dense and clustered keys unless said):
//! * lookup at most 0.5x `BTreeMap`'s time, and no slower than `HashMap`;
//! * gang lookup of 64 at most 0.3x `BTreeMap`'s `range(k..).take(64)`;
//! * tagged gang lookup of 64, 1% tagged, at least 10x faster than filtering
//!   a `BTreeMap` of `(item, tag bits)`;
//! * memory per entry on dense keys at most 0.7x `BTreeMap`'s.
//!
//! Memory: the radix tree's bytes come from its exact accounting. The peers'
//! come from their layouts (this binary has no counting allocator; the
//! criterion bench measures them with one and agrees): `HashMap` from its
//! capacity and hashbrown's table (`buckets * (16 + 1) + 16`); `BTreeMap`
//! built by ascending inserts from std's split rule: a full leaf of 11 keys
//! splits 6 / 1 up / 5, so each leaf keeps 6 keys and passes 1 up: one leaf
//! per 7 keys, one internal node per 7 children above.

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::time::Instant;

use klab_radix_tree::keysets::{KeySet, shuffled};
use klab_radix_tree::{RadixTree, Tag};
use rustc_hash::FxHashMap;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// The `radix-tree` benchmark.
pub struct RadixTreeBench;

const REPS: usize = 3;
const GANGS: usize = 4096;

/// Nanoseconds per operation of each structure for one (operation, key set,
/// size).
#[derive(Clone, Copy, Debug)]
struct Row {
    op: &'static str,
    set: KeySet,
    n: usize,
    radix: f64,
    btree: f64,
    hash: Option<f64>,
    fx: Option<f64>,
}

/// Fastest of `REPS` passes of `f`, in ns per operation.
fn best(ops: usize, mut f: impl FnMut() -> u64) -> f64 {
    (0..REPS)
        .map(|_| {
            let t = Instant::now();
            black_box(f());
            t.elapsed().as_nanos() as f64 / ops as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Fastest of `REPS` builds, ns per insert; the structure is dropped
/// outside the timing.
fn best_build<M>(n: usize, build: impl Fn() -> M) -> f64 {
    (0..REPS)
        .map(|_| {
            let t = Instant::now();
            let m = build();
            let dt = t.elapsed().as_nanos() as f64 / n as f64;
            drop(black_box(m));
            dt
        })
        .fold(f64::INFINITY, f64::min)
}

/// Fastest of `REPS` passes deleting every key from a fresh structure.
fn best_delete<M>(n: usize, build: impl Fn() -> M, mut delete: impl FnMut(&mut M) -> u64) -> f64 {
    (0..REPS)
        .map(|_| {
            let mut m = build();
            let t = Instant::now();
            black_box(delete(&mut m));
            let dt = t.elapsed().as_nanos() as f64 / n as f64;
            drop(m);
            dt
        })
        .fold(f64::INFINITY, f64::min)
}

fn radix(keys: &[u64]) -> RadixTree<u64> {
    let mut t = RadixTree::new();
    for &k in keys {
        t.insert(k, k).expect("distinct keys, no node limit");
    }
    t
}

fn btree<V: Copy>(keys: &[u64], v: impl Fn(u64) -> V) -> BTreeMap<u64, V> {
    let mut m = BTreeMap::new();
    for &k in keys {
        m.insert(k, v(k));
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

/// Bytes of a `BTreeMap<u64, u64>` built by ascending inserts (see the
/// module header): leaves of 11 key/value pairs, a parent pointer, parent
/// index and length (192 bytes); internal nodes add 12 edges (288 bytes).
pub fn btree_ascending_bytes(n: usize) -> usize {
    const LEAF: usize = 192;
    const INTERNAL: usize = LEAF + 12 * 8;
    if n == 0 {
        return 0;
    }
    let mut bytes = n.div_ceil(7) * LEAF;
    let mut nodes = n.div_ceil(7);
    while nodes > 1 {
        nodes = nodes.div_ceil(7);
        bytes += nodes * INTERNAL;
    }
    bytes
}

/// Bytes of a hashbrown table with this capacity holding `(u64, u64)`:
/// `buckets = capacity * 8 / 7` (power of two), 16 bytes a bucket, one
/// control byte a bucket plus a 16-byte group.
pub fn hash_table_bytes(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        (capacity + 1).next_power_of_two()
    } else {
        (capacity * 8 / 7).next_power_of_two()
    };
    buckets * 16 + buckets + 16
}

/// Measures every operation on one key set and size; returns bytes per
/// entry of the radix tree, the `BTreeMap` (modelled for dense keys only,
/// which are inserted in ascending order) and the `HashMap`.
fn measure(set: KeySet, n: usize, seed: u64, rows: &mut Vec<Row>) -> (f64, Option<f64>, f64) {
    let keys = set.keys(n, seed);
    let probes = shuffled(&keys, seed);
    let starts: Vec<u64> = probes.iter().copied().cycle().take(GANGS).collect();

    rows.push(Row {
        op: "insert",
        set,
        n,
        radix: best_build(n, || radix(&keys)),
        btree: best_build(n, || btree(&keys, |k| k)),
        hash: Some(best_build(n, || sip(&keys))),
        fx: Some(best_build(n, || fx(&keys))),
    });
    rows.push(Row {
        op: "delete",
        set,
        n,
        radix: best_delete(
            n,
            || radix(&keys),
            |t| probes.iter().map(|&k| t.delete(k).is_some() as u64).sum(),
        ),
        btree: best_delete(
            n,
            || btree(&keys, |k| k),
            |m| {
                probes
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(m.remove(k).unwrap_or(0)))
            },
        ),
        hash: Some(best_delete(
            n,
            || sip(&keys),
            |m| {
                probes
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(m.remove(k).unwrap_or(0)))
            },
        )),
        fx: Some(best_delete(
            n,
            || fx(&keys),
            |m| {
                probes
                    .iter()
                    .fold(0u64, |a, k| a.wrapping_add(m.remove(k).unwrap_or(0)))
            },
        )),
    });

    let mut t = radix(&keys);
    let b = btree(&keys, |k| k);
    let h = sip(&keys);
    let f = fx(&keys);
    let mem = (
        t.memory().bytes as f64 / n as f64,
        (set == KeySet::Dense).then(|| btree_ascending_bytes(n) as f64 / n as f64),
        hash_table_bytes(h.capacity()) as f64 / n as f64,
    );
    let sum = |g: &dyn Fn(u64) -> u64| probes.iter().fold(0u64, |a, &k| a.wrapping_add(g(k)));
    rows.push(Row {
        op: "lookup",
        set,
        n,
        radix: best(n, || sum(&|k| t.get(k).copied().unwrap_or(0))),
        btree: best(n, || sum(&|k| b.get(&k).copied().unwrap_or(0))),
        hash: Some(best(n, || sum(&|k| h.get(&k).copied().unwrap_or(0)))),
        fx: Some(best(n, || sum(&|k| f.get(&k).copied().unwrap_or(0)))),
    });
    drop((h, f));

    let mut out = Vec::with_capacity(64);
    let radix_gang = best(GANGS, || {
        starts
            .iter()
            .map(|&k| {
                out.clear();
                t.gang_lookup(k, 64, &mut out) as u64
            })
            .sum()
    });
    drop(out);
    let mut bout: Vec<(&u64, &u64)> = Vec::with_capacity(64);
    let btree_gang = best(GANGS, || {
        starts
            .iter()
            .map(|&k| {
                bout.clear();
                bout.extend(b.range(k..).take(64));
                bout.len() as u64
            })
            .sum()
    });
    rows.push(Row {
        op: "gang64",
        set,
        n,
        radix: radix_gang,
        btree: btree_gang,
        hash: None,
        fx: None,
    });

    // 1% of the keys tagged.
    let tagged: Vec<u64> = probes.iter().copied().step_by(100).collect();
    for &k in &tagged {
        t.tag_set(k, Tag::T0).expect("tagging present keys");
    }
    let mut bt = btree(&keys, |k| (k, 0u8));
    for k in &tagged {
        if let Some(v) = bt.get_mut(k) {
            v.1 |= 1;
        }
    }
    let mut out = Vec::with_capacity(64);
    let radix_tag = best(GANGS, || {
        starts
            .iter()
            .map(|&k| {
                out.clear();
                t.gang_lookup_tag(k, 64, Tag::T0, &mut out) as u64
            })
            .sum()
    });
    let mut tout: Vec<(&u64, &(u64, u8))> = Vec::with_capacity(64);
    let btree_tag = best(GANGS, || {
        starts
            .iter()
            .map(|&k| {
                tout.clear();
                tout.extend(
                    bt.range(k..)
                        .filter(|(_, (_, tags))| tags & 1 != 0)
                        .take(64),
                );
                tout.len() as u64
            })
            .sum()
    });
    rows.push(Row {
        op: "gang_tag64",
        set,
        n,
        radix: radix_tag,
        btree: btree_tag,
        hash: None,
        fx: None,
    });
    mem
}

impl RadixTreeBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "radix-tree",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "a radix tree is quick on lookups: klab's beats BTreeMap and HashMap on page-cache keys",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for RadixTreeBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let sizes: Vec<usize> = ctx.size(vec![10_000, 100_000, 1_000_000], vec![10_000]);
        let sparse_max: usize = ctx.size(100_000, 1_000);
        r.config("sizes", format!("{sizes:?}"))
            .config("sparse_max", sparse_max)
            .config("reps", REPS)
            .config("gang_lookups", GANGS)
            .config("tagged_fraction", 0.01);
        let mut rows = Vec::new();
        let mut mem = Vec::new();
        // Sparse keys stop at sparse_max (a size above it is measured at
        // sparse_max, once).
        let mut cases: Vec<(KeySet, usize)> = Vec::new();
        for set in KeySet::ALL {
            for &n in &sizes {
                let n = if set == KeySet::Sparse {
                    n.min(sparse_max)
                } else {
                    n
                };
                if !cases.contains(&(set, n)) {
                    cases.push((set, n));
                }
            }
        }
        ctx.progress.begin("radix-tree bench", cases.len() as u64);
        for (set, n) in cases {
            let m = measure(set, n, ctx.seed, &mut rows);
            mem.push((set, n, m));
            ctx.progress.advance(1);
        }
        ctx.progress.end();

        let mut times = Table::new(
            "Time per operation (ns; fastest of 3 passes)",
            &[
                "op",
                "keys",
                "n",
                "radix",
                "BTreeMap",
                "HashMap",
                "FxHashMap",
            ],
        );
        for row in &rows {
            times.row(cells![
                row.op,
                row.set.name(),
                row.n,
                row.radix,
                row.btree,
                row.hash,
                row.fx
            ]);
        }

        let mut targets = Table::new(
            "Targets: klab / peer time ratios (memory: bytes ratio)",
            &["target", "keys", "n", "measured", "goal", "met"],
        );
        let mut met_all = true;
        let mut summary = Vec::new();
        let mut check =
            |t: &mut Table, name: &str, set: KeySet, n: usize, v: f64, goal: &str, ok: bool| {
                met_all &= ok;
                t.row(cells![name, set.name(), n, v, goal, ok]);
            };
        for row in &rows {
            if row.set == KeySet::Sparse {
                continue;
            }
            match row.op {
                "lookup" => {
                    let vs_b = row.radix / row.btree;
                    check(
                        &mut targets,
                        "lookup vs BTreeMap",
                        row.set,
                        row.n,
                        vs_b,
                        "<= 0.5",
                        vs_b <= 0.5,
                    );
                    if let Some(h) = row.hash {
                        let vs_h = row.radix / h;
                        check(
                            &mut targets,
                            "lookup vs HashMap",
                            row.set,
                            row.n,
                            vs_h,
                            "<= 1.0",
                            vs_h <= 1.0,
                        );
                    }
                }
                "gang64" => {
                    let v = row.radix / row.btree;
                    check(
                        &mut targets,
                        "gang lookup 64 vs BTreeMap range",
                        row.set,
                        row.n,
                        v,
                        "<= 0.3",
                        v <= 0.3,
                    );
                }
                "gang_tag64" => {
                    let speedup = row.btree / row.radix;
                    check(
                        &mut targets,
                        "tagged gang lookup speedup (1% tagged)",
                        row.set,
                        row.n,
                        speedup,
                        ">= 10",
                        speedup >= 10.0,
                    );
                }
                _ => {}
            }
        }
        let mut memory = Table::new(
            "Memory per entry (bytes; radix exact, peers from their layouts; BTreeMap modelled for dense keys)",
            &[
                "keys",
                "n",
                "radix",
                "BTreeMap (ascending inserts)",
                "HashMap",
                "radix / BTreeMap",
            ],
        );
        for &(set, n, (rm, bm, hm)) in &mem {
            memory.row(cells![set.name(), n, rm, bm, hm, bm.map(|b| rm / b)]);
            if let Some(b) = bm {
                check(
                    &mut targets,
                    "memory per entry vs BTreeMap",
                    set,
                    n,
                    rm / b,
                    "<= 0.7",
                    rm / b <= 0.7,
                );
            }
        }
        // Lookups without locking (RcuRadixTree): radix_tree_rcu.rs.
        let lockless = crate::lib::radix_tree_rcu::bench_part(ctx);
        for (name, set, readers, v, goal, ok) in lockless.targets {
            met_all &= ok;
            targets.row(cells![
                name,
                set.name(),
                format!("{readers} readers"),
                v,
                goal,
                ok
            ]);
        }
        for row in &targets.rows {
            summary.push(format!(
                "{} ({}, {}): {}",
                row[0].display(),
                row[1].display(),
                row[2].display(),
                row[3].display()
            ));
        }

        let mut plot = Series::new(
            "Lookup time against size, dense keys",
            Axis::log("entries", ""),
            Axis::log("time per lookup", "ns"),
        );
        let lookups: Vec<&Row> = rows
            .iter()
            .filter(|r| r.op == "lookup" && r.set == KeySet::Dense)
            .collect();
        plot.line(
            "radix tree",
            lookups.iter().map(|r| [r.n as f64, r.radix]).collect(),
        );
        plot.line(
            "BTreeMap",
            lookups.iter().map(|r| [r.n as f64, r.btree]).collect(),
        );
        plot.line(
            "HashMap (SipHash)",
            lookups
                .iter()
                .filter_map(|r| Some([r.n as f64, r.hash?]))
                .collect(),
        );
        plot.line(
            "FxHashMap",
            lookups
                .iter()
                .filter_map(|r| Some([r.n as f64, r.fx?]))
                .collect(),
        );

        r.table(targets).table(times).table(memory).series(plot);
        for t in lockless.tables {
            r.table(t);
        }
        r.verdict = Verdict {
            holds: Some(met_all),
            measured: summary.join("; "),
            note: "Wall-clock times on this machine in one process; they vary between runs and \
                   machines, the ratios less so. The criterion benches in \
                   crates/lib/radix-tree/benches measure the same operations with more samples \
                   and count the peers' heap bytes with a counting allocator."
                .to_owned(),
        };
        r.host = Host::measured(vec![
            format!("{} CPUs available to this process", std::thread::available_parallelism().map_or(0, |n| n.get())),
            "BTreeMap and HashMap memory from their layouts (see klab-experiments radix_tree_bench.rs)".to_owned(),
        ]
        .into_iter()
        .chain(lockless.notes)
        .collect());
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btree_layout_model_matches_ascending_insert_fill() {
        // 7 keys: one leaf of 6 plus a 1-key... the model counts
        // ceil(7 / 7) = 1 leaf: std's first split happens at the 12th key.
        assert_eq!(btree_ascending_bytes(0), 0);
        assert_eq!(btree_ascending_bytes(7), 192);
        // 49 keys: 7 leaves under one internal node.
        assert_eq!(btree_ascending_bytes(49), 7 * 192 + 288);
        // Per entry, large: 192/7 + 288/49 + 288/343 + ... ≈ 34.3 bytes,
        // which a counting allocator measures for 10^6 ascending inserts
        // (34.28 in the criterion bench).
        let per = btree_ascending_bytes(1_000_000) as f64 / 1e6;
        assert!((per - 34.28).abs() < 0.1, "{per}");
    }

    #[test]
    fn hash_table_layout_follows_capacity() {
        assert_eq!(hash_table_bytes(0), 0);
        assert_eq!(hash_table_bytes(3), 4 * 17 + 16);
        assert_eq!(hash_table_bytes(14), 16 * 17 + 16);
        // 1000 entries reserved up front: 1000 * 8 / 7 rounds up to 2048
        // buckets (capacity 1792).
        let m: HashMap<u64, u64> = (0..1000).map(|k| (k, k)).collect();
        assert_eq!(m.capacity(), 1792);
        assert_eq!(hash_table_bytes(m.capacity()), 2048 * 17 + 16);
    }

    #[test]
    fn quick_bench_reports_every_target() {
        let inputs = klab_lab::experiment::Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let r = RadixTreeBench.run(&ctx).unwrap();
        assert!(!r.host.deterministic);
        // Dense and clustered: 2 lookup rows, gang, tagged gang each; dense
        // memory; lockless against RwLock for each reader count.
        let counts = klab_radix_tree::contention::reader_counts().len();
        assert_eq!(r.tables[0].rows.len(), 2 * 4 + 1 + 2 * counts);
        assert_eq!(r.tables[1].rows.len(), 5 * 3);
        // The lockless tables: contended (per key set and reader count) and
        // single-threaded (per key set).
        assert_eq!(r.tables.len(), 5);
        assert_eq!(r.tables[3].rows.len(), 2 * counts);
        assert_eq!(r.tables[4].rows.len(), 2);
        assert!(r.verdict.holds.is_some());
    }
}
