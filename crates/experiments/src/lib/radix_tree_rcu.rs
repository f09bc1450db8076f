//! Lookups without locking (seed 004: "Nick Piggin currently has a patch
//! circulating which would use read-copy-update to free tree nodes; this
//! patch would allow lookup operations to be performed without locking"):
//! `klab_radix_tree::RcuRadixTree` measured on this machine against the
//! same tree under a lock.
//!
//! Two users, both wall-clock and in one process (`Host::measured`):
//!
//! * the experiment `radix-tree-lockless` (`klab run`): read throughput of
//!   the lockless tree and of the single-threaded tree under
//!   `std::sync::RwLock`, as readers grow (1, 2, the machine's cores and
//!   twice that), with one writer deleting and inserting keys back at a
//!   fixed rate. Its own experiment, beside the deterministic `radix-tree`
//!   whose reports must be identical run to run (and across hibernation).
//! * `klab bench radix-tree`: the same with `BTreeMap` under a `RwLock`,
//!   dashmap and papaya beside them, on dense and clustered keys, and the
//!   single-threaded cost of the lockless read path against today's tree.
//!
//! The workload is `klab_radix_tree::contention` (the criterion bench in
//! crates/lib/radix-tree/benches/rcu.rs runs the same): each lookup is a
//! read-side section of its own (a pin, or a read lock), the writer does
//! `pairs_per_sec / 1000` delete-and-insert pairs each millisecond and
//! sleeps between. Structures are measured in turn, round after round
//! (interleaved, so a load that comes and goes on a shared machine falls on
//! all of them; the order rotates each round), and each figure is the
//! median of its rounds.
//!
//! # Verdict (`radix-tree-lockless`)
//!
//! The claim holds when, at every reader count, lookups without locking
//! are at least [`MIN_SPEEDUP`] times as many per second as under the
//! `RwLock`.
//!
//! # When the claim fails
//!
//! On one CPU (`taskset -c 0 klab run radix-tree-lockless`), readers and
//! the writer never run at once: the read lock's shared counter stays in
//! one cache and is taken uncontended, costing about what an epoch pin
//! costs, so the ratio falls to about 1 and the noise of a shared machine
//! decides the sign. The figures are wall-clock, so no test asserts a run's
//! outcome; `judge` is tested on data where the lock wins.

use std::hint::black_box;
use std::time::{Duration, Instant};

use klab_radix_tree::RadixTree;
use klab_radix_tree::contention::{self, Dash, Measured, Papaya, Writer};
use klab_radix_tree::keysets::{KeySet, shuffled};

use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// Delete-and-insert pairs the writer does each second (40,000 writes).
pub const PAIRS_PER_SEC: u64 = 20_000;

/// Lookups without locking over lookups under the `RwLock`, at least, at
/// every reader count.
pub const MIN_SPEEDUP: f64 = 1.0;

/// The structures, in table order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Structure {
    /// `RcuRadixTree`, lockless readers.
    Rcu,
    /// `RwLock<RadixTree>`.
    RwLockRadix,
    /// `RwLock<BTreeMap>`.
    RwLockBTree,
    /// dashmap.
    DashMap,
    /// papaya.
    Papaya,
}

impl Structure {
    /// Column name.
    pub fn name(self) -> &'static str {
        match self {
            Structure::Rcu => "lockless radix tree",
            Structure::RwLockRadix => "RwLock<RadixTree>",
            Structure::RwLockBTree => "RwLock<BTreeMap>",
            Structure::DashMap => "dashmap",
            Structure::Papaya => "papaya",
        }
    }
}

/// Every structure, built once over the key set; the writer's churn
/// deletes and inserts back, so each stays the same size across runs.
struct Built {
    rcu: klab_radix_tree::RcuRadixTree<Box<u64>>,
    rwlock_radix: std::sync::RwLock<RadixTree<Box<u64>>>,
    rwlock_btree: std::sync::RwLock<std::collections::BTreeMap<u64, u64>>,
    dash: Dash,
    papaya: Papaya,
}

impl Built {
    /// The structures asked for hold `keys`; the others stay empty.
    fn new(keys: &[u64], structures: &[Structure]) -> Self {
        let some = |s| {
            if structures.contains(&s) {
                keys.to_vec()
            } else {
                Vec::new()
            }
        };
        let dash = Dash::with_keys(&some(Structure::DashMap));
        let papaya = Papaya::with_keys(&some(Structure::Papaya));
        Built {
            rcu: contention::rcu_tree(&some(Structure::Rcu)),
            rwlock_radix: contention::rwlock_tree(&some(Structure::RwLockRadix)),
            rwlock_btree: contention::rwlock_btree(&some(Structure::RwLockBTree)),
            dash,
            papaya,
        }
    }

    /// Runs the workload on `s` once.
    fn run(
        &self,
        s: Structure,
        probes: &[u64],
        readers: usize,
        w: &Writer,
        d: Duration,
    ) -> Measured {
        match s {
            Structure::Rcu => contention::run(&self.rcu, probes, readers, w, d),
            Structure::RwLockRadix => contention::run(&self.rwlock_radix, probes, readers, w, d),
            Structure::RwLockBTree => contention::run(&self.rwlock_btree, probes, readers, w, d),
            Structure::DashMap => contention::run(&self.dash, probes, readers, w, d),
            Structure::Papaya => contention::run(&self.papaya, probes, readers, w, d),
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// One cell of the contended measurement.
#[derive(Clone, Debug)]
pub struct Contended {
    /// Key set.
    pub set: KeySet,
    /// Reader threads.
    pub readers: usize,
    /// Median lookups per second, per structure (in the order asked).
    pub lookups: Vec<(Structure, f64)>,
    /// Median writes per second the writer achieved beside the lockless
    /// tree's readers.
    pub writes: f64,
    /// Median lookups per second of the readers' own CPU time, per
    /// structure (NaN without a thread CPU clock).
    pub per_cpu: Vec<(Structure, f64)>,
}

impl Contended {
    /// Median lookups per second of `s`.
    pub fn of(&self, s: Structure) -> f64 {
        self.lookups
            .iter()
            .find(|(x, _)| *x == s)
            .map_or(f64::NAN, |&(_, v)| v)
    }

    /// Median lookups per reader CPU-second of `s`.
    pub fn per_cpu_of(&self, s: Structure) -> f64 {
        self.per_cpu
            .iter()
            .find(|(x, _)| *x == s)
            .map_or(f64::NAN, |&(_, v)| v)
    }
}

/// Measures `structures` on `set` (`n` keys) for each reader count,
/// interleaved over `rounds`, `d` a run.
pub fn contended(
    set: KeySet,
    n: usize,
    seed: u64,
    reader_counts: &[usize],
    structures: &[Structure],
    rounds: usize,
    d: Duration,
) -> Vec<Contended> {
    let keys = set.keys(n, seed);
    let probes = shuffled(&keys, seed);
    let writer = Writer {
        pairs_per_sec: PAIRS_PER_SEC,
        churn: shuffled(&keys, seed + 1),
    };
    let built = Built::new(&keys, structures);
    let mut samples: Vec<Vec<Vec<Measured>>> =
        vec![vec![Vec::new(); structures.len()]; reader_counts.len()];
    for round in 0..rounds {
        for (ri, &readers) in reader_counts.iter().enumerate() {
            // The order rotates from round to round, so no structure always
            // runs first, or after the same one.
            for k in 0..structures.len() {
                let si = (round + k) % structures.len();
                samples[ri][si].push(built.run(structures[si], &probes, readers, &writer, d));
            }
        }
    }
    reader_counts
        .iter()
        .zip(samples)
        .map(|(&readers, per)| Contended {
            set,
            readers,
            writes: median(per[0].iter().map(|m| m.writes_per_sec).collect::<Vec<_>>()),
            lookups: structures
                .iter()
                .zip(&per)
                .map(|(&s, ms)| (s, median(ms.iter().map(|m| m.lookups_per_sec).collect())))
                .collect(),
            per_cpu: structures
                .iter()
                .zip(&per)
                .map(|(&s, ms)| {
                    (
                        s,
                        median(ms.iter().map(|m| m.lookups_per_cpu_sec).collect()),
                    )
                })
                .collect(),
        })
        .collect()
}

/// Nanoseconds per lookup on one thread, no writer: today's tree, the
/// lockless read path with a pin per lookup, and with one pin per 1024.
#[derive(Clone, Copy, Debug)]
pub struct Single {
    /// Key set.
    pub set: KeySet,
    /// `RadixTree<Box<u64>>::get`.
    pub radix: f64,
    /// `RcuRadixTree<Box<u64>>`: `read().get()` per lookup.
    pub rcu: f64,
    /// One `read()` per 1024 lookups.
    pub rcu_batch: f64,
}

/// Measures [`Single`] for `set`: `rounds` rounds of one pass each over
/// every key in a random order, the order of the three rotating; the
/// fastest pass of each.
pub fn single(set: KeySet, n: usize, seed: u64, rounds: usize) -> Single {
    let keys = set.keys(n, seed);
    let probes = shuffled(&keys, seed);
    let mut plain = RadixTree::<Box<u64>>::new();
    for &k in &keys {
        plain.insert(k, Box::new(k)).expect("distinct keys");
    }
    let shared = contention::rcu_tree(&keys);
    let time = |f: &mut dyn FnMut() -> u64| {
        let t = Instant::now();
        black_box(f());
        t.elapsed().as_nanos() as f64 / probes.len() as f64
    };
    let mut best = [f64::INFINITY; 3];
    // The three in turn, each round starting with the next one, so none
    // always runs on caches the one before it warmed.
    for round in 0..rounds {
        for i in 0..3 {
            let which = (round + i) % 3;
            let ns = match which {
                0 => time(&mut || {
                    probes.iter().fold(0u64, |s, &k| {
                        s.wrapping_add(plain.get(k).map_or(0, |v| **v))
                    })
                }),
                1 => time(&mut || {
                    probes.iter().fold(0u64, |s, &k| {
                        s.wrapping_add(shared.read().get(k).map_or(0, |v| *v))
                    })
                }),
                _ => time(&mut || {
                    probes.chunks(1024).fold(0u64, |s, chunk| {
                        let r = shared.read();
                        chunk
                            .iter()
                            .fold(s, |s, &k| s.wrapping_add(r.get(k).map_or(0, |v| *v)))
                    })
                }),
            };
            best[which] = best[which].min(ns);
        }
    }
    Single {
        set,
        radix: best[0],
        rcu: best[1],
        rcu_batch: best[2],
    }
}

/// The machine's cores, as this process sees them.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What `klab bench radix-tree` adds: tables and target rows
/// `(target, keys, readers, measured, goal, met)`.
pub struct BenchPart {
    /// The contended table and the single-threaded table.
    pub tables: Vec<Table>,
    /// One row per (key set, reader count): lockless over RwLock'd tree.
    pub targets: Vec<(String, KeySet, usize, f64, &'static str, bool)>,
    /// Host notes.
    pub notes: Vec<String>,
}

/// The lockless part of `klab bench radix-tree`.
pub fn bench_part(ctx: &Ctx<'_>) -> BenchPart {
    let n: usize = ctx.size(100_000, 10_000);
    // Many short rounds: on a shared machine the share of the CPUs a run
    // gets varies from run to run, and the median of more runs moves less.
    let rounds: usize = ctx.size(21, 1);
    let d = Duration::from_millis(ctx.size(50, 30));
    let counts = contention::reader_counts();
    let all = [
        Structure::Rcu,
        Structure::RwLockRadix,
        Structure::RwLockBTree,
        Structure::DashMap,
        Structure::Papaya,
    ];
    let mut cols = vec!["keys", "readers"];
    cols.extend(all.iter().map(|s| s.name()));
    cols.extend([
        "lockless / RwLock<RadixTree>",
        "writes/s (lockless run)",
        "lockless / RwLock<RadixTree>, per reader CPU-second",
    ]);
    let mut t = Table::new(
        &format!(
            "Lookups per second, all readers, one writer at {} writes/s ({n} keys; median of {rounds} interleaved runs of {} ms)",
            2 * PAIRS_PER_SEC,
            d.as_millis()
        ),
        &cols,
    );
    let mut targets = Vec::new();
    let sets = [KeySet::Dense, KeySet::Clustered];
    ctx.progress
        .begin("radix-tree lockless", sets.len() as u64 + 1);
    for set in sets {
        for c in contended(set, n, ctx.seed, &counts, &all, rounds, d) {
            let ratio = c.of(Structure::Rcu) / c.of(Structure::RwLockRadix);
            let mut row = cells![set.name(), c.readers];
            row.extend(all.iter().map(|&s| c.of(s).into()));
            let cpu_ratio = c.per_cpu_of(Structure::Rcu) / c.per_cpu_of(Structure::RwLockRadix);
            row.extend(cells![ratio, c.writes, cpu_ratio]);
            t.row(row);
            targets.push((
                "lockless lookups vs RwLock<RadixTree>, writer running".to_owned(),
                set,
                c.readers,
                ratio,
                ">= 1.0",
                ratio >= 1.0,
            ));
        }
        ctx.progress.advance(1);
    }
    let mut s = Table::new(
        "Single-threaded lookup, no writer (ns; fastest of the rounds): the lockless read path against today's tree, same Box<u64> items",
        &[
            "keys",
            "RadixTree",
            "lockless, pin per lookup",
            "lockless, pin per 1024",
            "pin per lookup / RadixTree",
            "pin per 1024 / RadixTree",
        ],
    );
    for set in sets {
        let m = single(set, n, ctx.seed, ctx.size(9, 3));
        s.row(cells![
            set.name(),
            m.radix,
            m.rcu,
            m.rcu_batch,
            m.rcu / m.radix,
            m.rcu_batch / m.radix
        ]);
    }
    ctx.progress.advance(1);
    ctx.progress.end();
    BenchPart {
        tables: vec![t, s],
        targets,
        notes: vec![format!(
            "{} cores: readers {counts:?}; the writer is one more thread, so with all cores reading it takes time from them",
            cores()
        )],
    }
}

/// The `radix-tree-lockless` experiment.
pub struct RadixTreeLockless;

/// One reader count's medians.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReaderRow {
    /// Reader threads.
    pub readers: usize,
    /// Lookups per second without locking.
    pub lockless: f64,
    /// Lookups per second under the `RwLock`.
    pub rwlock: f64,
}

/// What the run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Data {
    /// CPUs available to the process.
    pub cores: usize,
    /// Dense keys in the tree.
    pub keys: usize,
    /// Interleaved rounds.
    pub rounds: usize,
    /// Length of one run.
    pub run_ms: u64,
    /// One row per reader count.
    pub rows: Vec<ReaderRow>,
}

impl Experiment for RadixTreeLockless {
    type Data = Data;

    const ID: Identity = Identity {
        name: "radix-tree-lockless",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "freeing radix-tree nodes by RCU lets lookups run without locking: readers outpace \
         the same tree under a lock while a writer changes it",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        let n: usize = ctx.size(100_000, 10_000);
        let rounds: usize = ctx.size(9, 1);
        let d = Duration::from_millis(ctx.size(100, 20));
        let cores = cores();
        let mut counts = vec![1, 2, cores, 2 * cores];
        counts.sort_unstable();
        counts.dedup();
        ctx.progress.begin("radix-tree-lockless", 1);
        let rows = contended(
            KeySet::Dense,
            n,
            ctx.seed,
            &counts,
            &[Structure::Rcu, Structure::RwLockRadix],
            rounds,
            d,
        );
        ctx.progress.advance(1);
        ctx.progress.end();
        Ok(Data {
            cores,
            keys: n,
            rounds,
            run_ms: d.as_millis() as u64,
            rows: rows
                .iter()
                .map(|c| ReaderRow {
                    readers: c.readers,
                    lockless: c.of(Structure::Rcu),
                    rwlock: c.of(Structure::RwLockRadix),
                })
                .collect(),
        })
    }

    fn judge(&self, d: &Data) -> Verdict {
        let note = "Wall-clock on this machine, interleaved runs, medians; other load on the \
                    machine moves the figures, the ratio less. Readers beyond the core count \
                    share cores with each other and with the writer. `klab bench radix-tree` \
                    adds BTreeMap, dashmap and papaya, clustered keys and the single-threaded \
                    cost."
            .to_owned();
        if d.rows.is_empty() {
            return Verdict {
                holds: None,
                measured: "no reader count was measured".to_owned(),
                note,
            };
        }
        let ratios: Vec<String> = d
            .rows
            .iter()
            .map(|c| format!("{} readers {:.2}x", c.readers, c.lockless / c.rwlock))
            .collect();
        Verdict {
            holds: Some(d.rows.iter().all(|c| c.lockless >= MIN_SPEEDUP * c.rwlock)),
            measured: format!(
                "lookups without locking / with an RwLock, on {} cores: {}",
                d.cores,
                ratios.join(", ")
            ),
            note,
        }
    }

    fn report(&self, d: &Data, _verdict: &Verdict, r: &mut Report) {
        let counts: Vec<usize> = d.rows.iter().map(|c| c.readers).collect();
        r.config("cores", d.cores)
            .config("keys", d.keys)
            .config("key_set", KeySet::Dense.name())
            .config("readers", format!("{counts:?}"))
            .config("writer_writes_per_sec", 2 * PAIRS_PER_SEC)
            .config("rounds", d.rounds)
            .config("run_ms", d.run_ms)
            .config("threshold.min_speedup", MIN_SPEEDUP);
        let mut t = Table::new(
            &format!(
                "Read throughput with and without the lock, one writer at {} writes/s ({} dense keys, {} cores)",
                2 * PAIRS_PER_SEC,
                d.keys,
                d.cores
            ),
            &[
                "readers",
                "without locking (lookups/s)",
                "RwLock (lookups/s)",
                "without / with",
                "without locking, per reader",
                "RwLock, per reader",
            ],
        );
        for c in &d.rows {
            let (a, b) = (c.lockless, c.rwlock);
            t.row(cells![
                c.readers,
                a,
                b,
                a / b,
                a / c.readers as f64,
                b / c.readers as f64
            ]);
        }
        let mut plot = Series::new(
            "Lookups per second against readers, one writer running",
            Axis::linear("readers", ""),
            Axis::linear("lookups per second", "/s"),
        );
        plot.line(
            "without locking",
            d.rows
                .iter()
                .map(|c| [c.readers as f64, c.lockless])
                .collect(),
        );
        plot.line(
            "RwLock<RadixTree>",
            d.rows
                .iter()
                .map(|c| [c.readers as f64, c.rwlock])
                .collect(),
        );
        r.table(t).series(plot);
        r.host = Host::measured(vec![
            format!("{} CPUs available to this process", d.cores),
            "each lookup a read-side section of its own: a crossbeam-epoch pin, or a read lock"
                .to_owned(),
        ]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::Run;
    use klab_lab::experiment::Inputs;

    #[test]
    fn quick_run_reports_every_reader_count_with_the_core_count() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let r = RadixTreeLockless.run(&ctx).unwrap();
        assert!(!r.host.deterministic && r.host.real);
        let mut counts = vec![1, 2, cores(), 2 * cores()];
        counts.sort_unstable();
        counts.dedup();
        assert_eq!(r.tables[0].rows.len(), counts.len());
        assert_eq!(r.config["cores"].display(), cores().to_string());
        for row in &r.tables[0].rows {
            assert!(row[1].display().parse::<f64>().unwrap() > 0.0);
        }
        assert!(r.verdict.holds.is_some());
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn the_verdict_fails_where_the_lock_wins_and_is_null_without_readers() {
        let row = |readers, lockless, rwlock| ReaderRow {
            readers,
            lockless,
            rwlock,
        };
        let mut d = Data {
            cores: 2,
            keys: 10_000,
            rounds: 1,
            run_ms: 20,
            rows: vec![
                row(1, 2.0e7, 1.5e7),
                row(2, 3.0e7, 1.0e7),
                row(4, 3.1e7, 0.8e7),
            ],
        };
        let v = RadixTreeLockless.judge(&d);
        assert_eq!(v.holds, Some(true));
        assert_eq!(
            v.measured,
            "lookups without locking / with an RwLock, on 2 cores: 1 readers 1.33x, 2 readers \
             3.00x, 4 readers 3.88x"
        );
        d.rows[0].rwlock = 2.5e7;
        assert_eq!(RadixTreeLockless.judge(&d).holds, Some(false));
        d.rows.clear();
        assert_eq!(RadixTreeLockless.judge(&d).holds, None);
    }
}
