//! The model half of `paravirt`: one model kernel booted on the platforms
//! this machine is not (Moorestown, the VMI and Xen-style guests), and the
//! paravirtual calls the model machine's kernel paths make under each
//! backend. Deterministic; shown beside the host measurements, not counted
//! in the verdict (the model was built to run the same kernel under every
//! backend, so agreeing with itself is a check, not a measurement).

use klab_mm_policy::LruBalance;
use klab_model::arch::paravirt::{BackendKind, Paravirt, PvOp, PvStats};
use klab_model::arch::platform::{Hardware, Selection, boot, boot_with};
use klab_model::mm::direct_io::LoopDevice;
use klab_model::{Machine, MachineConfig};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::ExperimentError;
use klab_lab::hibernate::{Job, Step};
use klab_lab::report::{Axis, Series, Table};

/// One model boot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRow {
    /// The machine, and whether the PC's operations were forced on it.
    pub label: String,
    /// The platform whose operations ran.
    pub platform: String,
    /// Interrupt controller, clock events, TSC kHz, where CPUs came from.
    pub irq_chip: String,
    /// Clock event device.
    pub timer: String,
    /// TSC rate found.
    pub tsc_khz: u64,
    /// CPUs from.
    pub smp_config: String,
    /// i8042 found.
    pub i8042: bool,
    /// Legacy ports touched.
    pub legacy_probes: u32,
    /// The paravirt backend bound.
    pub paravirt: String,
    /// Failed hooks.
    pub errors: Vec<String>,
    /// The operations were forced (a PC-only kernel).
    pub forced: bool,
}

/// Boots the model kernel on every model machine, then forces the PC's
/// operations onto Moorestown.
pub fn boots() -> Vec<BootRow> {
    let row = |hw: &Hardware, sel: Selection| {
        let b = boot_with(hw, sel);
        BootRow {
            label: match sel {
                Selection::Detect => hw.name.clone(),
                Selection::PcOnly => format!("{} with the PC's operations forced", hw.name),
            },
            platform: b.platform.to_owned(),
            irq_chip: b.state.irq_chip.clone(),
            timer: b.state.timer.clone(),
            tsc_khz: b.state.tsc_khz,
            smp_config: b.state.smp_config.clone(),
            i8042: b.state.i8042,
            legacy_probes: b.state.legacy_probes,
            paravirt: b.state.paravirt.name().to_owned(),
            errors: b.state.errors.clone(),
            forced: sel == Selection::PcOnly,
        }
    };
    let mut rows: Vec<BootRow> = Hardware::all()
        .iter()
        .map(|hw| row(hw, Selection::Detect))
        .collect();
    rows.push(row(&Hardware::moorestown(), Selection::PcOnly));
    rows
}

/// The boot table.
pub fn boot_table(rows: &[BootRow]) -> Table {
    let mut t = Table::new(
        "the model kernel booted on the machines this one is not, platform operations chosen at run time",
        &[
            "machine",
            "platform operations",
            "interrupts",
            "clock events",
            "TSC (kHz)",
            "CPUs from",
            "i8042",
            "legacy port probes",
            "paravirt ops bound to",
            "hooks failed",
        ],
    );
    for b in rows {
        t.row(cells![
            b.label.clone(),
            b.platform.clone(),
            b.irq_chip.clone(),
            b.timer.clone(),
            b.tsc_khz,
            b.smp_config.clone(),
            b.i8042,
            u64::from(b.legacy_probes),
            b.paravirt.clone(),
            if b.errors.is_empty() {
                "none".to_owned()
            } else {
                b.errors.join("; ")
            }
        ]);
    }
    t
}

/// A paravirt table bound the way the model boot binds it on the machine
/// of `backend`, with counters from zero.
fn booted_pv(backend: BackendKind) -> Paravirt {
    let hw = match backend {
        BackendKind::Native => Hardware::pc(),
        BackendKind::Hv(h) => Hardware::guest(h),
    };
    Paravirt::bind(boot(&hw).pv.backend())
}

/// What one workload did under one backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// The workload.
    pub workload: String,
    /// What an event is.
    pub unit: String,
    /// The backend.
    pub backend: BackendKind,
    /// Events run.
    pub events: u64,
    /// Calls counted.
    pub pv: PvStats,
    /// The machine's own counters, to compare across backends.
    pub fingerprint: String,
}

pub(crate) fn page_cache_run(
    accesses: &[(klab_model::Access, bool)],
    frames: u64,
    backend: BackendKind,
) -> (u64, PvStats, String) {
    let mut m = Machine::new(MachineConfig::new(frames, LruBalance::Classic)).expect("valid");
    m.boot_paravirt(booted_pv(backend));
    for (a, _) in accesses {
        m.access(*a);
    }
    m.paravirt().assert_invariants();
    (
        accesses.len() as u64,
        m.paravirt().stats().clone(),
        format!("{:?}", m.stat()),
    )
}

fn loop_run(frames: u64, reads: u64, backend: BackendKind, seed: u64) -> (u64, PvStats, String) {
    let mut m = Machine::new(MachineConfig::new(frames, LruBalance::Classic)).expect("valid");
    m.boot_paravirt(booted_pv(backend));
    let dev = LoopDevice {
        backing: 100,
        direct_io: false,
        layout: vec![(1, 1000)],
    };
    let mut rng = klab_model::rng::seeded(seed, 11);
    for _ in 0..reads {
        let page = rng.random_range(0..frames * 3 / 4);
        m.loop_read(&dev, 1, page);
    }
    (
        m.stat().accesses,
        m.paravirt().stats().clone(),
        format!("{:?}", m.stat()),
    )
}

fn oom_run(
    leak: u64,
    backend: BackendKind,
    seed: u64,
) -> Result<(u64, PvStats, String), ExperimentError> {
    let s = crate::mm::memcg::scenario::parse(&crate::mm::memcg::oom_scenario(leak), "oom")
        .expect("generated scenario parses");
    let mut j = crate::mm::memcg::runner::ScenarioJob::new(&s, klab_model::rng::seeded(seed, 1))?
        .with_paravirt(booted_pv(backend));
    while j.step(&s) != Step::Done {}
    let m = j.machine();
    m.paravirt().assert_invariants();
    Ok((
        m.stat().accesses,
        m.paravirt().stats().clone(),
        format!("{:?} {:?}", m.stat(), m.memcgs()),
    ))
}

fn wq_run(lazy: bool, duration_ms: u64, backend: BackendKind, seed: u64) -> (u64, PvStats, String) {
    let (runs, pv) = crate::kernel::lazy_workqueue::model::run_counted(
        lazy,
        5_000,
        duration_ms,
        klab_model::rng::seeded(seed, 1),
        booted_pv(backend),
    );
    pv.assert_invariants();
    (runs, pv.stats().clone(), format!("{runs}"))
}

/// Sizes of the model workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSizes {
    /// Frames of the page-cache machines.
    pub frames: u64,
    /// Rounds of the hot-and-stream workload.
    pub ws_rounds: u64,
    /// Virtual milliseconds of the workqueue workload.
    pub wq_ms: u64,
}

/// Runs every model workload under every backend.
///
/// # Errors
/// A generated scenario the runner refuses.
pub fn counts(sizes: ModelSizes, seed: u64) -> Result<Vec<Counted>, ExperimentError> {
    let mut rng = klab_model::rng::seeded(seed, 1);
    let frames = sizes.frames;
    let hot = crate::mm::workload::hot_and_stream(frames, sizes.ws_rounds, &mut rng);
    let stream = crate::mm::workload::streaming(frames, &mut rng);
    type RunFn<'a> =
        Box<dyn Fn(BackendKind) -> Result<(u64, PvStats, String), ExperimentError> + 'a>;
    let workloads: Vec<(String, &str, RunFn<'_>)> = vec![
        (
            format!("workingset: {}", hot.name),
            "accesses",
            Box::new(|b| Ok(page_cache_run(&hot.accesses, frames, b))),
        ),
        (
            format!("workingset: {}", stream.name),
            "accesses",
            Box::new(|b| Ok(page_cache_run(&stream.accesses, frames, b))),
        ),
        (
            "loop-dio: buffered loop, working set 3/4 of memory".to_owned(),
            "accesses",
            Box::new(|b| Ok(loop_run(frames, frames * 8, b, seed))),
        ),
        (
            "memcg-oom: a leak in a container".to_owned(),
            "accesses",
            Box::new(|b| oom_run(frames, b, seed)),
        ),
        (
            "lazy-workqueue: 64 CPUs, lazy queues".to_owned(),
            "work items",
            Box::new(|b| Ok(wq_run(true, sizes.wq_ms, b, seed))),
        ),
        (
            "lazy-workqueue: 64 CPUs, per-CPU queues".to_owned(),
            "work items",
            Box::new(|b| Ok(wq_run(false, sizes.wq_ms, b, seed))),
        ),
    ];
    let mut out = Vec::new();
    for (name, unit, f) in &workloads {
        for &b in &BackendKind::ALL {
            let (events, pv, fingerprint) = f(b)?;
            out.push(Counted {
                workload: name.clone(),
                unit: (*unit).to_owned(),
                backend: b,
                events,
                pv,
                fingerprint,
            });
        }
    }
    Ok(out)
}

fn group(p: &PvStats, name: &str) -> u64 {
    PvOp::ALL
        .iter()
        .filter(|op| op.group() == name)
        .map(|&op| p.of(op))
        .sum()
}

/// Whether each workload left the same machine under every backend, and
/// natively made no exit and no ROM call.
pub fn consistent(counts: &[Counted]) -> (bool, bool) {
    let same = counts
        .chunks(BackendKind::ALL.len())
        .all(|c| c.iter().all(|x| x.fingerprint == c[0].fingerprint));
    let native_free = counts
        .iter()
        .filter(|c| c.backend == BackendKind::Native)
        .all(|c| c.pv.exits() == 0 && c.pv.rom_calls == 0);
    (same, native_free)
}

/// The counts table and the exits plot.
pub fn counts_report(counts: &[Counted]) -> (Table, Series) {
    let mut t = Table::new(
        "paravirtual calls in the model, by workload and backend",
        &[
            "workload",
            "backend",
            "events",
            "calls",
            "interrupt flag",
            "page tables and TLB",
            "MSR",
            "control registers",
            "timer",
            "native",
            "ROM calls (no exit)",
            "hypercalls",
            "batched (flushes)",
            "exits per 1000 events",
            "modelled cycles per event",
        ],
    );
    let mut exits = Series::new(
        "hypervisor exits per 1000 events, by workload (table order)",
        Axis::linear("workload", "#"),
        Axis::log("exits per 1000 events", ""),
    );
    let mut lines: Vec<Vec<[f64; 2]>> = vec![Vec::new(); BackendKind::ALL.len()];
    for (i, c) in counts.iter().enumerate() {
        let wi = i / BackendKind::ALL.len();
        let bi = i % BackendKind::ALL.len();
        let per = |x: u64| 1000.0 * x as f64 / c.events.max(1) as f64;
        t.row(cells![
            format!("{} ({})", c.workload, c.unit),
            c.backend.name(),
            c.events,
            c.pv.total_calls(),
            group(&c.pv, "interrupts"),
            group(&c.pv, "page protections"),
            group(&c.pv, "model-specific registers"),
            group(&c.pv, "control registers"),
            group(&c.pv, "timer events"),
            c.pv.native,
            c.pv.rom_calls,
            c.pv.hypercalls,
            format!("{} ({})", c.pv.batched, c.pv.flushes),
            per(c.pv.exits()),
            c.pv.cycles as f64 / c.events.max(1) as f64
        ]);
        if c.backend != BackendKind::Native {
            lines[bi].push([wi as f64, per(c.pv.exits()).max(1e-3)]);
        }
    }
    for (bi, &b) in BackendKind::ALL.iter().enumerate().skip(1) {
        exits.line(b.name(), lines[bi].clone());
    }
    (t, exits)
}
