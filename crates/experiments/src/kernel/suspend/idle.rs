//! The 15-minute rule: each model experiment's ticks counted busy or idle
//! by the driver's idle monitor (`klab_model::kernel::power::IdleMonitor`),
//! and when its machine would suspend.
//!
//! A tick is busy when the model did work (an access, a work item, a
//! packet, a system call) and idle when its clock moved with nothing to
//! run (a memory-controller scenario waiting for its next task to start, a
//! 10 ms workqueue tick with no work queued, sysfs ticks between
//! operations). Ticks become time through each experiment's stated tick
//! length; the machine suspends 15 minutes into an idle stretch, or, never
//! idle that long during the run, 15 minutes after its last work. The
//! figures are reported, not judged: the tick lengths are klab's choices.

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Run};
use klab_lab::hibernate;
use klab_lab::report::Table;
use klab_model::kernel::power::IdleMonitor;
use serde::{Deserialize, Serialize};

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

pub(super) fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
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
    pub(super) fn idle_share(&self) -> f64 {
        self.monitor.idle_ns as f64 / self.monitor.now_ns.max(1) as f64
    }
}

/// Runs each of `models` once under a driver and keeps its idle
/// accounting.
pub(super) fn measure(
    ctx: &Ctx<'_>,
    models: &[&'static dyn Run],
) -> Result<Vec<IdleRow>, ExperimentError> {
    let inner = Ctx {
        progress: &klab_lab::experiment::NoProgress,
        driver: None,
        ..*ctx
    };
    let mut rows = Vec::with_capacity(models.len());
    for e in models {
        let (tick_is, tick_ns) = tick_of(e.name());
        let drv = hibernate::Driver::new(None);
        e.run(&inner.with_driver(&drv))?;
        rows.push(IdleRow {
            name: e.name().to_owned(),
            tick_is: tick_is.to_owned(),
            tick_ns,
            ticks: drv.clock(),
            monitor: drv.idle(),
        });
        ctx.progress.advance(1);
    }
    Ok(rows)
}

/// The idle table.
pub(super) fn table(rows: &[IdleRow]) -> Table {
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
