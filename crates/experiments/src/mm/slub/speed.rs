//! Part 3 of the `slub` experiment: SLUB (2.6.24, the page's) against
//! SLAB (2.6.23) and SLOB, timed on the host through the same
//! `ObjectAllocator` interface, the allocators interleaved in every round
//! (the first one rotating), and reported as ratios per round.
//!
//! Workloads, kernel-style:
//! * **bursts**: [`klab_slab::workload::object_churn`]: caches of
//!   [`CHURN_SIZES`], bursts of 200 allocations per cache freed in order,
//!   on one thread (one CPU).
//! * **remote frees**: [`klab_slab::workload::remote_frees`], two real
//!   threads: one allocates bursts of [`REMOTE_BATCH`] objects of each
//!   cache and hands them over a channel to the other, which frees them
//!   with its own per-CPU state.

use std::sync::Arc;
use std::time::Duration;

use klab_slab::workload::{object_churn, remote_frees};
use klab_slab::{CollectSink, HostPages, Slab, SlabConfig, Slob, Slub, SlubConfig};
use serde::{Deserialize, Serialize};

/// Object sizes of the workloads' caches.
pub const CHURN_SIZES: [usize; 6] = [32, 64, 128, 256, 512, 1024];
/// Objects per burst of the remote-free workload.
pub const REMOTE_BATCH: usize = 64;
/// The allocators of each row, in order.
pub const PEERS: [&str; 3] = ["SLUB", "SLAB", "SLOB"];
/// The workloads, in order.
pub const WORKLOADS: [&str; 2] = [
    "bursts: 6 caches, 200 allocations then 200 frees, 1 thread",
    "remote frees: 6 caches, bursts of 64 allocated on one thread, freed on another",
];

/// One workload: nanoseconds per allocation or free of each allocator of
/// [`PEERS`], per round.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SpeedRow {
    /// The workload.
    pub workload: String,
    /// Per round: ns per op of SLUB, SLAB, SLOB.
    pub ns: Vec<[f64; 3]>,
}

/// (min, median, max) of `v`; NaN for an empty one.
pub fn spread(v: &[f64]) -> (f64, f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (s[0], median, s[n - 1])
}

impl SpeedRow {
    /// SLUB's speed over peer `i`'s (1 SLAB, 2 SLOB), per round: the
    /// peer's time over SLUB's (above 1: SLUB faster).
    pub fn ratios(&self, i: usize) -> Vec<f64> {
        self.ns.iter().map(|r| r[i] / r[0]).collect()
    }

    /// (min, median, max) of [`Self::ratios`].
    pub fn spread(&self, i: usize) -> (f64, f64, f64) {
        spread(&self.ratios(i))
    }
}

fn ns_per_op((ops, t): (u64, Duration)) -> f64 {
    t.as_secs_f64() * 1e9 / ops.max(1) as f64
}

/// Both workloads, `reps` interleaved rounds after one untimed round;
/// `churn_rounds` and `bursts` size them.
pub fn measure(
    reps: usize,
    churn_rounds: usize,
    bursts: usize,
    progress: &dyn Fn(),
) -> Vec<SpeedRow> {
    let slub = Slub::new(
        Arc::new(HostPages),
        SlubConfig::default(),
        Arc::new(CollectSink::new()),
    );
    let slab = Slab::new(Arc::new(HostPages), SlabConfig { nr_cpus: 2 });
    let slob = Slob::new(Arc::new(HostPages));
    let run = |w: usize, a: usize| -> f64 {
        match (w, a) {
            (0, 0) => ns_per_op(pair(object_churn(&slub, &CHURN_SIZES, churn_rounds, 200))),
            (0, 1) => ns_per_op(pair(object_churn(&slab, &CHURN_SIZES, churn_rounds, 200))),
            (0, _) => ns_per_op(pair(object_churn(&slob, &CHURN_SIZES, churn_rounds, 200))),
            (_, 0) => ns_per_op(pair(remote_frees(
                &slub,
                &CHURN_SIZES,
                bursts,
                REMOTE_BATCH,
            ))),
            (_, 1) => ns_per_op(pair(remote_frees(
                &slab,
                &CHURN_SIZES,
                bursts,
                REMOTE_BATCH,
            ))),
            (_, _) => ns_per_op(pair(remote_frees(
                &slob,
                &CHURN_SIZES,
                bursts,
                REMOTE_BATCH,
            ))),
        }
    };
    WORKLOADS
        .iter()
        .enumerate()
        .map(|(w, name)| {
            for a in 0..3 {
                run(w, a);
            }
            let ns = (0..reps)
                .map(|r| {
                    let mut row = [0.0; 3];
                    for k in 0..3 {
                        let a = (r + k) % 3;
                        row[a] = run(w, a);
                    }
                    progress();
                    row
                })
                .collect();
            SpeedRow {
                workload: (*name).to_owned(),
                ns,
            }
        })
        .collect()
}

fn pair(r: klab_slab::workload::Run) -> (u64, Duration) {
    (r.ops, r.elapsed)
}
