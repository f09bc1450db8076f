//! `paravirt`: seed 004's VMI claims, and seed 001's platform setup, put to
//! the test (`klab_model::arch`).
//!
//! 1. **One kernel, four machines.** The model kernel boots on a standard
//!    PC, a Moorestown handset without legacy devices, and two guests, the
//!    platform operations chosen at run time (`x86_init`); and, for
//!    contrast, with the PC's operations forced onto Moorestown (a kernel
//!    built for the PC only), which fails in every hook that touches a
//!    missing device.
//! 2. **The cost of a call, on this machine.** The same kernel paths (a
//!    fault, an unmap, a context switch, a timer; 16 paravirtual operations
//!    a round) run with the instructions inline (no paravirt), through the
//!    `pv_ops` table (an indirect call per operation) and bound at boot
//!    (the form the page describes: direct calls chosen once), native and
//!    under each model hypervisor; timed with `std::time::Instant`, the
//!    minimum over interleaved repetitions. The page's claim, "VMI Linux has
//!    negligible overheads on native machines", is the bound form's time
//!    against the inline one. `cargo bench -p klab-model --bench paravirt`
//!    measures the same with criterion; `klab bench paravirt` prints the
//!    ratios.
//! 3. **Hypervisor calls, in the model.** The page-cache workloads of
//!    `workingset` and `loop-dio`, `memcg-oom`'s container leak (anonymous
//!    memory, reclaim to swap, a task killed) and the `lazy-workqueue`
//!    workload run on the model machine with its paravirt table bound
//!    natively and to each hypervisor; the calls are counted where the
//!    kernel makes them (mm: `set_pte_at()`, `ptep_clear_flush()`, the LRU
//!    and mapping locks with interrupts off, CR3 and the FS base on a task
//!    switch, `exit_mmap()` in lazy MMU mode; workqueues: the queue and
//!    runqueue locks, wakeups, clock events). Every other counter of the
//!    machine is the same under each backend: the same kernel runs
//!    unchanged.
//!
//! The report times real calls on the host, so it is not deterministic
//! (`Host::measured`): the verdict is about real machines, and the page's
//! claim is about a real machine. The boot table and the model counts in
//! the same report are deterministic.

use std::hint::black_box;
use std::time::Instant;

use klab_mm_policy::LruBalance;
use klab_model::arch::paravirt::{BackendKind, Paravirt, PvOp, PvStats};
use klab_model::arch::platform::{Hardware, Selection, boot, boot_with};
use klab_model::mm::direct_io::LoopDevice;
use klab_model::{Machine, MachineConfig};
use klab_paravirt::{Cpu, OPS_PER_ROUND, PvOpsTable, boot_bound, direct, through_table};
use rand::Rng as _;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::hibernate::{Job, Step};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// The experiment.
pub struct ParavirtExperiment;

/// The benchmark (`klab bench paravirt`).
pub struct ParavirtBench;

/// How calls are bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Form {
    Direct,
    Table,
    Bound,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Direct => "inline (no paravirt)",
            Form::Table => "indirect through pv_ops",
            Form::Bound => "bound at boot",
        }
    }
}

/// One timed configuration: nanoseconds per operation.
struct Timing {
    form: Form,
    backend: BackendKind,
    ns_per_op: f64,
}

/// Times every form and backend, `reps` interleaved repetitions of
/// `rounds` rounds each, keeping each one's fastest.
fn time_forms(rounds: u64, reps: usize) -> Vec<Timing> {
    let mut configs = vec![(Form::Direct, BackendKind::Native)];
    for b in BackendKind::ALL {
        configs.push((Form::Table, b));
        configs.push((Form::Bound, b));
    }
    let tables: Vec<PvOpsTable> = BackendKind::ALL
        .iter()
        .map(|&b| black_box(PvOpsTable::bind(b)))
        .collect();
    let mut best = vec![f64::INFINITY; configs.len()];
    let mut cpu = Cpu::new(512);
    let mut sink = 0u64;
    for _ in 0..reps {
        for (i, &(form, backend)) in configs.iter().enumerate() {
            let start = Instant::now();
            sink ^= match form {
                Form::Direct => direct(&mut cpu, black_box(rounds)),
                Form::Table => {
                    let t = &tables[BackendKind::ALL
                        .iter()
                        .position(|&b| b == backend)
                        .unwrap_or(0)];
                    through_table(black_box(t), &mut cpu, black_box(rounds))
                }
                Form::Bound => boot_bound(black_box(backend), &mut cpu, black_box(rounds)),
            };
            let ns = start.elapsed().as_nanos() as f64 / (rounds * OPS_PER_ROUND) as f64;
            best[i] = best[i].min(ns);
        }
    }
    black_box(sink);
    configs
        .into_iter()
        .zip(best)
        .map(|((form, backend), ns_per_op)| Timing {
            form,
            backend,
            ns_per_op,
        })
        .collect()
}

fn ns(t: &[Timing], form: Form, backend: BackendKind) -> f64 {
    t.iter()
        .find(|x| x.form == form && x.backend == backend)
        .map_or(f64::NAN, |x| x.ns_per_op)
}

fn timing_table(t: &[Timing]) -> Table {
    let base = ns(t, Form::Direct, BackendKind::Native);
    let mut tab = Table::new(
        "cost per paravirtual operation on this machine (16-operation kernel paths, fastest of interleaved repetitions)",
        &[
            "binding",
            "backend",
            "ns per operation",
            "vs inline native",
            "extra ns per operation",
        ],
    );
    for x in t {
        tab.row(cells![
            x.form.name(),
            x.backend.name(),
            x.ns_per_op,
            x.ns_per_op / base,
            x.ns_per_op - base
        ]);
    }
    tab
}

/// A paravirt table bound the way the boot binds it on the machine of
/// `backend`, with counters from zero.
fn booted_pv(backend: BackendKind) -> Paravirt {
    let hw = match backend {
        BackendKind::Native => Hardware::pc(),
        BackendKind::Hv(h) => Hardware::guest(h),
    };
    Paravirt::bind(boot(&hw).pv.backend())
}

/// What one workload did under one backend.
struct Counted {
    events: u64,
    pv: PvStats,
    /// The machine's own counters, to compare across backends.
    fingerprint: String,
}

fn page_cache_run(
    accesses: &[(klab_model::Access, bool)],
    frames: u64,
    backend: BackendKind,
) -> Counted {
    let mut m = Machine::new(MachineConfig::new(frames, LruBalance::Classic)).expect("valid");
    m.boot_paravirt(booted_pv(backend));
    for (a, _) in accesses {
        m.access(*a);
    }
    m.paravirt().assert_invariants();
    Counted {
        events: accesses.len() as u64,
        pv: m.paravirt().stats().clone(),
        fingerprint: format!("{:?}", m.stat()),
    }
}

fn loop_run(frames: u64, reads: u64, backend: BackendKind, seed: u64) -> Counted {
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
    Counted {
        events: m.stat().accesses,
        pv: m.paravirt().stats().clone(),
        fingerprint: format!("{:?}", m.stat()),
    }
}

fn oom_run(leak: u64, backend: BackendKind, seed: u64) -> Result<Counted, ExperimentError> {
    let s = crate::mm::memcg::scenario::parse(&crate::mm::memcg::oom_scenario(leak), "oom")
        .expect("generated scenario parses");
    let mut j = crate::mm::memcg::runner::ScenarioJob::new(&s, klab_model::rng::seeded(seed, 1))?
        .with_paravirt(booted_pv(backend));
    while j.step(&s) != Step::Done {}
    let m = j.machine();
    m.paravirt().assert_invariants();
    Ok(Counted {
        events: m.stat().accesses,
        pv: m.paravirt().stats().clone(),
        fingerprint: format!("{:?} {:?}", m.stat(), m.memcgs()),
    })
}

fn wq_run(lazy: bool, duration_ms: u64, backend: BackendKind, seed: u64) -> Counted {
    let (runs, pv) = crate::kernel::lazy_workqueue::run_counted(
        lazy,
        5_000,
        duration_ms,
        klab_model::rng::seeded(seed, 1),
        booted_pv(backend),
    );
    pv.assert_invariants();
    Counted {
        events: runs,
        pv: pv.stats().clone(),
        fingerprint: format!("{runs}"),
    }
}

fn group(p: &PvStats, name: &str) -> u64 {
    PvOp::ALL
        .iter()
        .filter(|op| op.group() == name)
        .map(|&op| p.of(op))
        .sum()
}

/// Part 1: the boot table. Returns whether every detected boot succeeded
/// and the forced one failed.
fn boot_table(r: &mut Report) -> bool {
    let mut t = Table::new(
        "one model kernel booted on four machines, platform operations chosen at run time",
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
    let mut ok = true;
    let mut row = |hw: &Hardware, sel: Selection| {
        let b = boot_with(hw, sel);
        let label = match sel {
            Selection::Detect => hw.name.clone(),
            Selection::PcOnly => format!("{} with the PC's operations forced", hw.name),
        };
        t.row(cells![
            label,
            b.platform,
            b.state.irq_chip.clone(),
            b.state.timer.clone(),
            b.state.tsc_khz,
            b.state.smp_config.clone(),
            b.state.i8042,
            u64::from(b.state.legacy_probes),
            b.state.paravirt.name(),
            if b.state.errors.is_empty() {
                "none".to_owned()
            } else {
                b.state.errors.join("; ")
            }
        ]);
        b.ok()
    };
    for hw in Hardware::all() {
        ok &= row(&hw, Selection::Detect);
    }
    ok &= !row(&Hardware::moorestown(), Selection::PcOnly);
    r.table(t);
    ok
}

impl ParavirtExperiment {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "paravirt",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "a kernel that finds its hypervisor's ROM at boot and binds its privileged operations to it (no table lookup per call) runs unchanged on bare hardware and under any such hypervisor, with negligible overhead natively; and one kernel sets itself up on any platform through a structure of operations chosen at run time",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for ParavirtExperiment {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let rounds: u64 = ctx.size(40_000, 10_000);
        let reps: usize = ctx.size(31, 11);
        let frames: u64 = ctx.size(2048, 512);
        r.config("timing_rounds", rounds)
            .config("timing_repetitions", reps as u64)
            .config("ops_per_round", OPS_PER_ROUND)
            .config("frames", frames)
            .config("rom_call_cycles", klab_model::arch::paravirt::ROM_CALL_COST)
            .config("vmi_exit_cycles", klab_model::arch::paravirt::VMI_EXIT_COST)
            .config(
                "xen_hypercall_cycles",
                klab_model::arch::paravirt::XEN_HYPERCALL_COST,
            );
        ctx.progress.begin("paravirt", 3);

        let boots_ok = boot_table(&mut r);
        ctx.progress.advance(1);

        let timings = time_forms(rounds, reps);
        r.table(timing_table(&timings));
        let base = ns(&timings, Form::Direct, BackendKind::Native);
        let bound = ns(&timings, Form::Bound, BackendKind::Native);
        let table = ns(&timings, Form::Table, BackendKind::Native);
        let mut s = Series::new(
            "nanoseconds per paravirtual operation, by binding and backend",
            Axis::linear("backend (0 native, 1 vmi, 2 xen)", ""),
            Axis::linear("time", "ns"),
        );
        for form in [Form::Table, Form::Bound] {
            s.line(
                form.name(),
                BackendKind::ALL
                    .iter()
                    .enumerate()
                    .map(|(i, &b)| [i as f64, ns(&timings, form, b)])
                    .collect(),
            );
        }
        s.line("inline native", vec![[0.0, base], [2.0, base]]);
        r.series(s);
        ctx.progress.advance(1);

        // Part 3: the model's counts.
        let mut rng = ctx.rng(1);
        let rounds_ws: u64 = ctx.size(12, 6);
        let hot = crate::mm::workload::hot_and_stream(frames, rounds_ws, &mut rng);
        let stream = crate::mm::workload::streaming(frames, &mut rng);
        let wq_ms: u64 = ctx.size(60_000, 20_000);
        type Run<'a> = Box<dyn Fn(BackendKind) -> Result<Counted, ExperimentError> + 'a>;
        let workloads: Vec<(String, &str, Run<'_>)> = vec![
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
                Box::new(|b| Ok(loop_run(frames, frames * 8, b, ctx.seed))),
            ),
            (
                "memcg-oom: a leak in a container".to_owned(),
                "accesses",
                Box::new(|b| oom_run(frames, b, ctx.seed)),
            ),
            (
                "lazy-workqueue: 64 CPUs, lazy queues".to_owned(),
                "work items",
                Box::new(|b| Ok(wq_run(true, wq_ms, b, ctx.seed))),
            ),
            (
                "lazy-workqueue: 64 CPUs, per-CPU queues".to_owned(),
                "work items",
                Box::new(|b| Ok(wq_run(false, wq_ms, b, ctx.seed))),
            ),
        ];
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
        let mut same_machine = true;
        let mut native_exit_free = true;
        for (wi, (name, unit, f)) in workloads.iter().enumerate() {
            let mut first: Option<String> = None;
            for (bi, &b) in BackendKind::ALL.iter().enumerate() {
                let c = f(b)?;
                match &first {
                    None => first = Some(c.fingerprint.clone()),
                    Some(fp) => same_machine &= *fp == c.fingerprint,
                }
                if b == BackendKind::Native {
                    native_exit_free &= c.pv.exits() == 0 && c.pv.rom_calls == 0;
                }
                let per = |x: u64| 1000.0 * x as f64 / c.events.max(1) as f64;
                t.row(cells![
                    format!("{name} ({unit})"),
                    b.name(),
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
                if b != BackendKind::Native {
                    lines[bi].push([wi as f64, per(c.pv.exits()).max(1e-3)]);
                }
            }
        }
        r.table(t);
        for (bi, &b) in BackendKind::ALL.iter().enumerate().skip(1) {
            exits.line(b.name(), lines[bi].clone());
        }
        r.series(exits);
        ctx.progress.advance(1);
        ctx.progress.end();

        let overhead = bound / base - 1.0;
        let negligible = overhead <= 0.10;
        r.verdict = Verdict {
            holds: Some(negligible && boots_ok && same_machine && native_exit_free),
            measured: format!(
                "native, bound at boot: {bound:.3} ns per operation against {base:.3} inline ({:+.1}%); through the pv_ops table {table:.3} ns ({:+.1}%). The kernel booted on the PC, Moorestown and both guests with operations chosen at run time: {boots_ok}; the PC's operations forced onto Moorestown fail. Under each backend the model machine's own counters are identical: {same_machine}; natively no call leaves the CPU: {native_exit_free}.",
                overhead * 100.0,
                (table / base - 1.0) * 100.0
            ),
            note: "Negligible is taken as at most 10% on this shared, loaded machine (the two forms compile to the same inline instructions; the difference is noise). The host cannot execute cli or wrmsr in user space: each operation changes a model CPU's registers, so the timings compare the binding forms, not the instructions. Hypervisor costs in the model table are klab's parameters, not measurements.".into(),
        };
        r.host = Host::measured(vec![
            "timed on a shared, loaded 2-core machine".into(),
            format!("{rounds} rounds x {OPS_PER_ROUND} operations, fastest of {reps}"),
        ]);
        Ok(r)
    }
}

impl ParavirtBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "paravirt",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "paravirtual operations bound at boot cost what inline native instructions cost; indirect calls through the table cost more",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for ParavirtBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let rounds: u64 = ctx.size(200_000, 20_000);
        let reps: usize = ctx.size(51, 9);
        r.config("rounds", rounds)
            .config("repetitions", reps as u64);
        let t = time_forms(rounds, reps);
        r.table(timing_table(&t));
        let base = ns(&t, Form::Direct, BackendKind::Native);
        let bound = ns(&t, Form::Bound, BackendKind::Native);
        let table = ns(&t, Form::Table, BackendKind::Native);
        r.verdict = Verdict {
            holds: Some(bound / base <= 1.10),
            measured: format!(
                "native: bound {:.3}x inline, table {:.3}x inline ({bound:.3}, {table:.3}, {base:.3} ns per operation)",
                bound / base,
                table / base
            ),
            note: "criterion: cargo bench -p klab-model --bench paravirt".into(),
        };
        r.host = Host::measured(vec!["timed on a shared, loaded 2-core machine".into()]);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

    #[test]
    fn the_model_counts_are_exact_and_the_machine_is_the_same_under_every_backend() {
        // Eight anonymous first touches by one task, then a file read.
        let accesses: Vec<(klab_model::Access, bool)> = (0..8)
            .map(|p| (klab_model::Access::anon(1, p), false))
            .chain([(klab_model::Access::read(1, 0), false)])
            .collect();
        let n = page_cache_run(&accesses, 64, BackendKind::Native);
        // One switch to task 1 (CR3, MSR), then task 0 for the read (CR3,
        // MSR); per anon fault set_pte + irqsave (4 calls); the read's
        // insert (lock_irq) and LRU add (irqsave): 5 calls.
        assert_eq!(n.pv.total_calls(), 4 + 8 * 4 + 5);
        assert_eq!(n.pv.of(PvOp::SetPte), 8);
        assert_eq!((n.pv.native, n.pv.exits()), (n.pv.total_calls(), 0));
        let v = page_cache_run(
            &accesses,
            64,
            BackendKind::Hv(klab_model::arch::paravirt::Hypervisor::Vmi),
        );
        // VMI: CR3 and MSR exit (4 of them); every other call is a ROM
        // call that stays in the guest.
        assert_eq!(v.pv.hypercalls, 4);
        assert_eq!(v.pv.rom_calls, v.pv.total_calls() - 4);
        assert_eq!(v.fingerprint, n.fingerprint);
        let x = page_cache_run(
            &accesses,
            64,
            BackendKind::Hv(klab_model::arch::paravirt::Hypervisor::Xen),
        );
        // Xen: CR3, MSR and every pte write exit.
        assert_eq!(x.pv.hypercalls, 4 + 8);
        assert_eq!(x.fingerprint, n.fingerprint);
    }

    #[test]
    fn the_quick_run_holds_its_model_parts() {
        let inputs = Inputs::default();
        let r = ParavirtExperiment.run(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(r.tables.len(), 3);
        assert_eq!(
            r.tables[0].rows.len(),
            5,
            "four machines and the forced boot"
        );
        assert_eq!(r.tables[2].rows.len(), 6 * 3);
        assert!(
            r.verdict.measured.contains("identical: true"),
            "{}",
            r.verdict.measured
        );
        assert!(!r.host.deterministic);
    }
}
