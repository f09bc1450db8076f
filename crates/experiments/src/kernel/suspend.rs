//! `suspend`: seed 000's "Suspend and hibernation status report" and its
//! quote of the Energy Star rule ("systems which can not automatically go
//! into suspend within 15 minutes of idle can _not_ earn a sticker"), for
//! the model machines.
//!
//! 1. **Hibernation, counter for counter.** Every model experiment is run
//!    to its end, then again hibernated halfway through its virtual time
//!    (`klab_lab::hibernate`: the machine, workload cursors, generators and
//!    results so far written to an image), resumed from the image, and
//!    compared: the report byte for byte, and the final state of every job
//!    (machines included) byte for byte.
//! 2. **Idle and suspend.** The driver's idle monitor
//!    (`klab_model::kernel::power::IdleMonitor`) counts each experiment's
//!    ticks as busy (the model did work: an access, a work item, a packet,
//!    a system call) or idle (its clock moved with nothing to run: a
//!    memory-controller scenario waiting for its next task to start, a
//!    10 ms workqueue tick with no work queued, sysfs ticks between
//!    operations). Ticks become time through each experiment's stated tick
//!    length; the machine suspends 15 minutes into an idle stretch, or,
//!    never idle that long during the run, 15 minutes after its last work.
//!
//! Under `--quick` the round trip skips the three slowest experiments
//! (radix-tree, lro, too-many-threads; the idle figures still cover them);
//! the tests resume every one of them.

use klab_model::kernel::power::SUSPEND_AFTER_NS;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::hibernate::{self, round_trip};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The experiment.
pub struct Suspend;

/// What one tick of each model experiment is, and how long (see the
/// constants in `klab_lab::hibernate`).
fn tick_of(name: &str) -> (&'static str, u64) {
    match name {
        "radix-tree" => ("a tree operation", hibernate::TREE_TICK_NS),
        "o-nostd" | "packet-pipes" => ("a system call", hibernate::SYSCALL_TICK_NS),
        "sysfs-active" => ("a model sysfs tick", hibernate::SYSFS_TICK_NS),
        "lro" => ("a frame", hibernate::FRAME_TICK_NS),
        "too-many-threads" => (
            "a task created or list node visited",
            hibernate::TASK_TICK_NS,
        ),
        _ => ("a page access", hibernate::ACCESS_TICK_NS),
    }
}

const SLOW: [&str; 3] = ["radix-tree", "lro", "too-many-threads"];

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

impl Suspend {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "suspend",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "a machine can hibernate (its state written out and read back) and resume exactly where it was, and should suspend automatically within 15 minutes of idle",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for Suspend {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let models: Vec<&'static dyn Run> = crate::all()
            .iter()
            .copied()
            .filter(|e| e.hibernates().is_ok())
            .collect();
        r.config("hibernate_at", "half of each run's ticks")
            .config("suspend_after_s", secs(SUSPEND_AFTER_NS))
            .config(
                "round_trip_skips",
                if ctx.quick {
                    SLOW.join(", ")
                } else {
                    String::new()
                },
            );
        ctx.progress.begin("suspend", models.len() as u64);
        let mut trips = Table::new(
            "hibernated halfway and resumed: the same end, counter for counter",
            &[
                "experiment",
                "ticks",
                "stopped at",
                "jobs finished before",
                "image (bytes)",
                "same report",
                "same job states",
                "same clock and idle time",
            ],
        );
        let mut idle = Table::new(
            "idle time and when each machine would suspend (15 minutes of idle)",
            &[
                "experiment",
                "a tick is",
                "tick (ns)",
                "ticks",
                "busy (s)",
                "idle (s)",
                "idle share",
                "idle stretches",
                "longest idle (s)",
                "would suspend at (s)",
                "when",
            ],
        );
        let mut share = Vec::new();
        let mut all_same = true;
        let mut checked = 0usize;
        let mut longest = (0u64, "");
        let mut suspended_during = 0usize;
        let inner = Ctx {
            progress: &klab_lab::experiment::NoProgress,
            driver: None,
            ..*ctx
        };
        for (i, e) in models.iter().enumerate() {
            let (what, tick_ns) = tick_of(e.name());
            let skip = ctx.quick && SLOW.contains(&e.name());
            let (total, mon) = if skip {
                let d = hibernate::Driver::new(None);
                e.run(&inner.with_driver(&d))?;
                (d.clock(), d.idle())
            } else {
                let t = round_trip(*e, &inner, 0.5)?;
                let same = t.same_report && t.same_states && t.same_clock;
                all_same &= same;
                checked += 1;
                trips.row(cells![
                    e.name(),
                    t.total,
                    t.stopped_at,
                    t.jobs_before as u64,
                    t.image_bytes as u64,
                    t.same_report,
                    t.same_states,
                    t.same_clock
                ]);
                (t.total, t.idle)
            };
            if mon.longest_idle_ns > longest.0 {
                longest = (mon.longest_idle_ns, e.name());
            }
            let during = mon.suspended_at_ns.is_some();
            suspended_during += usize::from(during);
            idle.row(cells![
                e.name(),
                what,
                tick_ns,
                total,
                secs(mon.busy_ns),
                secs(mon.idle_ns),
                mon.idle_ns as f64 / mon.now_ns.max(1) as f64,
                mon.stretches,
                secs(mon.longest_idle_ns),
                secs(mon.suspend_time_ns()),
                if during {
                    "during the run"
                } else {
                    "15 min after its last work"
                }
            ]);
            share.push([i as f64, mon.idle_ns as f64 / mon.now_ns.max(1) as f64]);
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        r.table(trips).table(idle);
        let mut s = Series::new(
            "share of virtual time idle, by model experiment (table order)",
            Axis::linear("experiment", "#"),
            Axis::linear("idle share", ""),
        );
        s.line("idle share", share);
        r.series(s);
        r.verdict = Verdict {
            holds: Some(all_same && checked > 0),
            measured: format!(
                "{checked} model experiments hibernated halfway and resumed to the same report and the same job states: {all_same}. {suspended_during} of {} machines sat idle 15 minutes during their run; the longest idle stretch is {:.3} s ({}); the others would suspend 15 minutes after their last work.",
                models.len(),
                secs(longest.0),
                if longest.1.is_empty() { "none" } else { longest.1 }
            ),
            note: "Ticks are model events; their lengths are klab's stated choices (a page access 1 us, a workqueue tick 10 ms, ...), not measurements, so the idle seconds are as good as those choices. Work runs back to back in every built-in workload: idle comes only from the clock moving with nothing to run.".into(),
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

    #[test]
    fn the_quick_run_resumes_every_checked_experiment_identically() {
        let inputs = Inputs::default();
        let r = Suspend.run(&Ctx::new(2, true, &inputs)).unwrap();
        assert_eq!(r.verdict.holds, Some(true), "{}", r.verdict.measured);
        // 12 model experiments (lazy-workqueue counts real threads,
        // loop-dio does real work on the host), 3 skipped by --quick in the
        // round trip.
        assert_eq!(r.tables[0].rows.len(), 9);
        assert_eq!(r.tables[1].rows.len(), 12);
        let row = |name: &str| {
            r.tables[1]
                .rows
                .iter()
                .find(|x| x[0].display() == name)
                .unwrap()
                .clone()
        };
        // workingset's accesses run back to back: never idle.
        assert_eq!(row("workingset")[5].display(), "0");
        // sysfs-active's model ticks include idle ones.
        assert_ne!(row("sysfs-active")[5].display(), "0");
    }
}
