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
//!
//! The verdict holds when every experiment resumed checked comes back to
//! the same report, job states, clock and idle time; it is false when one
//! does not, and null when none was checked. The idle figures are
//! reported, not judged: their tick lengths are klab's choices.
//!
//! # When the claim fails
//!
//! An experiment that keeps state outside its jobs (glue that counts its
//! own runs, reads a clock or draws from a generator the image does not
//! hold) resumes to a different end: the resumed report differs from the
//! uninterrupted one and the verdict is false. [`Suspend::measure_with`]
//! takes the list of experiments to round-trip, and the test
//! `an_experiment_with_state_outside_its_jobs_fails_the_round_trip` runs
//! such an experiment end to end.

#![warn(clippy::too_many_lines)]

use klab_model::kernel::power::{IdleMonitor, SUSPEND_AFTER_NS};
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity, Run};
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

/// Where each run is hibernated, as a share of its ticks.
pub const HIBERNATE_AT: f64 = 0.5;

fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// One experiment hibernated and resumed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trip {
    /// The experiment.
    pub name: String,
    /// Ticks of the uninterrupted run.
    pub ticks: u64,
    /// Where the run stopped.
    pub stopped_at: u64,
    /// Jobs finished before it.
    pub jobs_before: u64,
    /// The image's size, bytes.
    pub image_bytes: u64,
    /// The resumed report is the uninterrupted one, byte for byte.
    pub same_report: bool,
    /// Every job ended in the same state.
    pub same_states: bool,
    /// Clock and idle monitor end in the same place.
    pub same_clock: bool,
}

impl Trip {
    /// Resumed to the same end in every respect.
    pub fn same(&self) -> bool {
        self.same_report && self.same_states && self.same_clock
    }
}

/// One experiment's idle accounting.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct IdleRow {
    /// The experiment.
    pub name: String,
    /// What a tick is.
    pub tick_is: String,
    /// How long a tick is, ns.
    pub tick_ns: u64,
    /// Ticks of the run.
    pub ticks: u64,
    /// The idle monitor at the end of the run.
    pub monitor: IdleMonitor,
}

impl IdleRow {
    /// The share of virtual time idle.
    fn idle_share(&self) -> f64 {
        self.monitor.idle_ns as f64 / self.monitor.now_ns.max(1) as f64
    }
}

/// What the experiment measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuspendData {
    /// Model experiments looked at, in order.
    pub models: usize,
    /// Experiments left out of the round trip (`--quick`).
    pub skipped: Vec<String>,
    /// The round trips.
    pub trips: Vec<Trip>,
    /// Idle accounting of every model experiment.
    pub idle: Vec<IdleRow>,
}

impl Suspend {
    /// Hibernates and resumes each of `models`, and keeps every one's idle
    /// accounting (the default run takes every experiment of
    /// [`crate::all`] that hibernates).
    ///
    /// # Errors
    /// What an experiment's run returns.
    pub fn measure_with(
        &self,
        ctx: &Ctx<'_>,
        models: &[&'static dyn Run],
    ) -> Result<SuspendData, ExperimentError> {
        ctx.progress.begin("suspend", models.len() as u64);
        let inner = Ctx {
            progress: &klab_lab::experiment::NoProgress,
            driver: None,
            ..*ctx
        };
        let mut d = SuspendData {
            models: models.len(),
            skipped: Vec::new(),
            trips: Vec::new(),
            idle: Vec::new(),
        };
        for e in models {
            let (tick_is, tick_ns) = tick_of(e.name());
            let (ticks, monitor) = if ctx.quick && SLOW.contains(&e.name()) {
                let drv = hibernate::Driver::new(None);
                e.run(&inner.with_driver(&drv))?;
                d.skipped.push(e.name().to_owned());
                (drv.clock(), drv.idle())
            } else {
                let t = round_trip(*e, &inner, HIBERNATE_AT)?;
                d.trips.push(Trip {
                    name: e.name().to_owned(),
                    ticks: t.total,
                    stopped_at: t.stopped_at,
                    jobs_before: t.jobs_before as u64,
                    image_bytes: t.image_bytes as u64,
                    same_report: t.same_report,
                    same_states: t.same_states,
                    same_clock: t.same_clock,
                });
                (t.total, t.idle)
            };
            d.idle.push(IdleRow {
                name: e.name().to_owned(),
                tick_is: tick_is.to_owned(),
                tick_ns,
                ticks,
                monitor,
            });
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        Ok(d)
    }
}

impl Experiment for Suspend {
    type Data = SuspendData;

    const ID: Identity = Identity {
        name: "suspend",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "a machine can hibernate (its state written out and read back) and resume exactly where it was, and should suspend automatically within 15 minutes of idle",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<SuspendData, ExperimentError> {
        let models: Vec<&'static dyn Run> = crate::all()
            .iter()
            .copied()
            .filter(|e| e.hibernates().is_ok())
            .collect();
        self.measure_with(ctx, &models)
    }

    fn judge(&self, d: &SuspendData) -> Verdict {
        let checked = d.trips.len();
        let differ: Vec<&str> = d
            .trips
            .iter()
            .filter(|t| !t.same())
            .map(|t| t.name.as_str())
            .collect();
        let all_same = differ.is_empty();
        let during = d
            .idle
            .iter()
            .filter(|r| r.monitor.suspended_at_ns.is_some())
            .count();
        // The first experiment with the longest idle stretch.
        let longest = d.idle.iter().fold(None::<&IdleRow>, |best, r| match best {
            Some(b) if b.monitor.longest_idle_ns >= r.monitor.longest_idle_ns => Some(b),
            _ if r.monitor.longest_idle_ns > 0 => Some(r),
            _ => best,
        });
        let mut measured = format!(
            "{checked} model experiments hibernated halfway and resumed to the same report and the same job states: {all_same}. {during} of {} machines sat idle 15 minutes during their run; the longest idle stretch is {:.3} s ({}); the others would suspend 15 minutes after their last work.",
            d.models,
            secs(longest.map_or(0, |r| r.monitor.longest_idle_ns)),
            longest.map_or("none", |r| r.name.as_str())
        );
        if !all_same {
            measured.push_str(&format!(
                " Resumed to a different end: {}.",
                differ.join(", ")
            ));
        }
        Verdict {
            holds: (checked > 0).then_some(all_same),
            measured,
            note: "Ticks are model events; their lengths are klab's stated choices (a page access 1 us, a workqueue tick 10 ms, ...), not measurements, so the idle seconds are as good as those choices. Work runs back to back in every built-in workload: idle comes only from the clock moving with nothing to run.".into(),
        }
    }

    fn report(&self, d: &SuspendData, _: &Verdict, r: &mut Report) {
        r.config("hibernate_at", "half of each run's ticks")
            .config("suspend_after_s", secs(SUSPEND_AFTER_NS))
            .config("round_trip_skips", d.skipped.join(", "));
        r.table(trips_table(&d.trips)).table(idle_table(&d.idle));
        let mut s = Series::new(
            "share of virtual time idle, by model experiment (table order)",
            Axis::linear("experiment", "#"),
            Axis::linear("idle share", ""),
        );
        s.line(
            "idle share",
            d.idle
                .iter()
                .enumerate()
                .map(|(i, row)| [i as f64, row.idle_share()])
                .collect(),
        );
        r.series(s);
    }
}

fn trips_table(trips: &[Trip]) -> Table {
    let mut t = Table::new(
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
    for x in trips {
        t.row(cells![
            x.name.clone(),
            x.ticks,
            x.stopped_at,
            x.jobs_before,
            x.image_bytes,
            x.same_report,
            x.same_states,
            x.same_clock
        ]);
    }
    t
}

fn idle_table(rows: &[IdleRow]) -> Table {
    let mut t = Table::new(
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
    for row in rows {
        let mon = &row.monitor;
        t.row(cells![
            row.name.clone(),
            row.tick_is.clone(),
            row.tick_ns,
            row.ticks,
            secs(mon.busy_ns),
            secs(mon.idle_ns),
            row.idle_share(),
            mon.stretches,
            secs(mon.longest_idle_ns),
            secs(mon.suspend_time_ns()),
            if mon.suspended_at_ns.is_some() {
                "during the run"
            } else {
                "15 min after its last work"
            }
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

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

    /// A model experiment whose glue counts its own runs outside any job:
    /// its report depends on how often it was run, not only on its jobs.
    struct Forgetful;

    static RUNS: AtomicU64 = AtomicU64::new(0);

    impl Experiment for Forgetful {
        type Data = (u64, u64);
        const ID: Identity = Identity {
            name: "forgetful",
            seed_page: "000_2fa08a6962ebae3f.txt",
            claim: "none",
            inputs: &[],
            hibernates: Ok(()),
        };
        fn measure(&self, ctx: &Ctx<'_>) -> Result<(u64, u64), ExperimentError> {
            let runs = RUNS.fetch_add(1, Ordering::Relaxed);
            let mut work = 0;
            for _ in 0..4 {
                work += ctx.once("forgetful", hibernate::ACCESS_TICK_NS, |s| {
                    s.busy(10);
                    Ok(10u64)
                })?;
            }
            Ok((work, runs))
        }
        fn judge(&self, _: &(u64, u64)) -> Verdict {
            Verdict {
                holds: None,
                measured: String::new(),
                note: String::new(),
            }
        }
        fn report(&self, d: &(u64, u64), _: &Verdict, r: &mut Report) {
            r.config("work", d.0).config("runs", d.1);
        }
    }

    static FORGETFUL: Forgetful = Forgetful;

    #[test]
    fn an_experiment_with_state_outside_its_jobs_fails_the_round_trip() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let d = Suspend.measure_with(&ctx, &[&FORGETFUL]).unwrap();
        assert_eq!(d.trips.len(), 1);
        let t = &d.trips[0];
        assert_eq!((t.ticks, t.stopped_at), (40, 20));
        assert!(!t.same_report, "the resumed run counted itself again");
        assert!(t.same_states && t.same_clock);
        let v = Suspend.judge(&d);
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        assert!(
            v.measured
                .ends_with("Resumed to a different end: forgetful."),
            "{}",
            v.measured
        );
    }

    fn trip(name: &str, same_report: bool) -> Trip {
        Trip {
            name: name.into(),
            ticks: 100,
            stopped_at: 50,
            jobs_before: 1,
            image_bytes: 4096,
            same_report,
            same_states: true,
            same_clock: true,
        }
    }

    #[test]
    fn the_verdict_holds_only_when_every_checked_run_resumes_to_the_same_end() {
        let mut d = SuspendData {
            models: 2,
            skipped: Vec::new(),
            trips: vec![trip("a", true), trip("b", true)],
            idle: Vec::new(),
        };
        assert_eq!(Suspend.judge(&d).holds, Some(true));
        d.trips[1].same_report = false;
        assert_eq!(Suspend.judge(&d).holds, Some(false));
        // Nothing round-tripped: nothing to judge.
        d.trips.clear();
        d.skipped = vec!["a".into(), "b".into()];
        let v = Suspend.judge(&d);
        assert_eq!(v.holds, None);
        assert!(
            v.measured.starts_with("0 model experiments"),
            "{}",
            v.measured
        );
    }
}
