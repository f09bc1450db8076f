//! `paravirt`: seed 004's VMI claims, and seed 001's platform setup, on
//! this machine and in the model.
//!
//! 1. **This machine, found as a kernel finds it.** CPUID leaf 0x40000000
//!    names the hypervisor (`KVMKVMKVM` under KVM; nothing on bare metal),
//!    DMI, the ACPI table headers or a device tree name the machine
//!    (`klab_paravirt::probe`), and this machine's `x86_platform`
//!    operations are chosen from that at run time and run
//!    (`klab_paravirt::platform`): the TSC rate, the wall clock, the i8042,
//!    and whether the running kernel registered the paravirtual clock the
//!    chosen platform brings.
//! 2. **What VMI was about, timed here.** A privileged operation that
//!    traps to the hypervisor (CPUID, which always exits under KVM), against
//!    the same kind of operation reached through the `pv_ops` table (an
//!    indirect call), bound at boot to a direct call (VMI's patched call
//!    into its ROM), and inline (no paravirt), natively and for each model
//!    hypervisor's backend (`klab_paravirt::timing`), in interleaved
//!    repetitions with their spread. Natively, the patcher copies short
//!    instructions into the call site: that form is the same code as
//!    inline and is listed, not timed.
//! 3. **The verdict.** "VMI Linux has negligible overheads on native
//!    machines": the extra cost of a native direct call over the inline
//!    instruction, times the paravirtual calls of a real kernel path, as a
//!    share of that path timed on this machine (a minor page fault, 4
//!    calls). Negligible is at most [`timing::NEGLIGIBLE_SHARE`].
//! 4. **The model, for the machines this one is not.** The model kernel
//!    boots on a PC, Moorestown and two guests with operations chosen at
//!    run time, and the model machine's workloads count their paravirtual
//!    calls under each backend ([`model`]). Deterministic, reported beside
//!    the measurements and not counted in the verdict: the model was built
//!    to run the same kernel under every backend.
//!
//! The report times real work, so it is not deterministic.
//!
//! # When the claim fails
//!
//! When the path the calls sit on is itself nothing but privileged
//! operations ([`timing::Yardstick::StandIn`]: the 16-operation stand-in
//! path, a few nanoseconds of work), a direct call per operation costs a
//! large share of it and the overhead is not negligible; the test
//! `the_claim_fails_on_a_path_made_of_calls` runs that configuration.

pub mod model;
pub mod timing;

use klab_paravirt::platform::{self, HostSetup};
use klab_paravirt::probe::{self, HostProbe};
use klab_paravirt::timing::Form;
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Host, Report, Table, Verdict};

use self::model::{BootRow, Counted, ModelSizes};
use self::timing::{Timings, Yardstick};

/// The experiment.
pub struct ParavirtExperiment;

/// The benchmark (`klab bench paravirt`).
pub struct ParavirtBench;

/// What the experiment measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ParavirtData {
    /// This machine, probed (or why the firmware could not be read).
    pub probe: Result<HostProbe, String>,
    /// Its platform operations, chosen and run.
    pub setup: Option<HostSetup>,
    /// The timings and the yardstick path.
    pub timings: Timings,
    /// The model boots.
    pub boots: Vec<BootRow>,
    /// The model workloads' sizes.
    pub sizes: ModelSizes,
    /// The model workloads' calls.
    pub counts: Vec<Counted>,
}

impl ParavirtExperiment {
    /// Measures with the given yardstick (the default run uses
    /// [`Yardstick::PageFault`]).
    ///
    /// # Errors
    /// A model workload the runner refuses.
    pub fn measure_with(
        &self,
        ctx: &Ctx<'_>,
        yardstick: Yardstick,
    ) -> Result<ParavirtData, ExperimentError> {
        ctx.progress.begin("paravirt", 3);
        let probe = probe::probe(&probe::Roots::default()).map_err(|e| e.to_string());
        let setup = probe.as_ref().ok().map(platform::setup);
        let timings = timing::measure(
            ctx.size(40_000, 10_000),
            ctx.size(31, 11),
            ctx.size(2_000, 500),
            yardstick,
        )?;
        ctx.progress.advance(1);
        let boots = model::boots();
        ctx.progress.advance(1);
        let sizes = ModelSizes {
            frames: ctx.size(2048, 512),
            ws_rounds: ctx.size(12, 6),
            wq_ms: ctx.size(60_000, 20_000),
        };
        let counts = model::counts(sizes, ctx.seed)?;
        ctx.progress.advance(1);
        ctx.progress.end();
        Ok(ParavirtData {
            probe,
            setup,
            timings,
            boots,
            sizes,
            counts,
        })
    }
}

fn hypervisor_name(p: &Result<HostProbe, String>) -> String {
    match p {
        Ok(p) => match &p.hypervisor {
            Some(h) => format!(
                "{} (\"{}\" at CPUID {:#x})",
                h.vendor.name(),
                h.signature,
                h.base
            ),
            None if p.hypervisor_bit => "a hypervisor without a signature".into(),
            None => "none (bare metal: no hypervisor bit)".into(),
        },
        Err(e) => format!("unknown ({e})"),
    }
}

impl Experiment for ParavirtExperiment {
    type Data = ParavirtData;

    const ID: Identity = Identity {
        name: "paravirt",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "a kernel that finds its hypervisor's ROM at boot and binds its privileged operations to it (no table lookup per call) runs unchanged on bare hardware and under any such hypervisor, with negligible overhead natively; and one kernel sets itself up on any platform through a structure of operations chosen at run time",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<ParavirtData, ExperimentError> {
        self.measure_with(ctx, Yardstick::PageFault)
    }

    fn judge(&self, d: &ParavirtData) -> Verdict {
        let t = &d.timings;
        let (holds, bound, table) = timing::judge(t);
        let trap = t
            .trap_ns
            .as_ref()
            .map_or(f64::NAN, |v| klab_paravirt::timing::Spread::of(v).median);
        let platform = d.setup.as_ref().map_or_else(
            || "no platform chosen".to_owned(),
            |s| format!("{} on {}", s.platform, s.machine),
        );
        let measured = format!(
            "hypervisor: {}; platform operations chosen: {platform}. A CPUID trap to the hypervisor costs {trap:.0} ns; natively an operation inline costs {:.2} ns, bound at boot as a direct call {:.2} ns, through pv_ops {:.2} ns. On {} ({:.0} ns, {} paravirtual calls) the direct calls add {:.3}% and the table {:.3}% (negligible: at most {:.1}%).",
            hypervisor_name(&d.probe),
            t.median(Form::Inline, klab_paravirt::BackendKind::Native),
            t.median(Form::BoundCall, klab_paravirt::BackendKind::Native),
            t.median(Form::Table, klab_paravirt::BackendKind::Native),
            t.yardstick.name(),
            t.path_median(),
            t.path_calls,
            bound * 100.0,
            table * 100.0,
            timing::NEGLIGIBLE_SHARE * 100.0,
        );
        let note = match (&t.path_error, holds) {
            (Some(e), _) => format!("The kernel path could not be timed ({e}), so the overhead has no yardstick."),
            (None, None) => "The kernel path could not be timed.".into(),
            _ => "The host cannot run cli or wrmsr in user space: the call forms change a stand-in CPU's registers, so they time the binding (inline, direct call, indirect call), not the instructions; the trap and the page fault are real. The model boots and call counts are deterministic and not part of the verdict: the model runs the same kernel under every backend by construction.".into(),
        };
        Verdict {
            holds,
            measured,
            note,
        }
    }

    fn report(&self, d: &ParavirtData, _: &Verdict, r: &mut Report) {
        let t = &d.timings;
        r.config("timing_rounds", t.rounds)
            .config("timing_repetitions", t.reps as u64)
            .config("ops_per_round", klab_paravirt::OPS_PER_ROUND)
            .config("trap_calls", t.trap_calls)
            .config("yardstick", t.yardstick.name())
            .config("yardstick_calls", t.path_calls)
            .config("threshold.negligible_share", timing::NEGLIGIBLE_SHARE)
            .config("frames", d.sizes.frames)
            .config("rom_call_cycles", klab_model::arch::paravirt::ROM_CALL_COST)
            .config("vmi_exit_cycles", klab_model::arch::paravirt::VMI_EXIT_COST)
            .config(
                "xen_hypercall_cycles",
                klab_model::arch::paravirt::XEN_HYPERCALL_COST,
            );
        r.table(probe_table(&d.probe));
        if let Some(s) = &d.setup {
            r.table(setup_table(s));
        }
        r.table(timing::table(t)).table(timing::yardstick_table(t));
        r.table(model::boot_table(&d.boots));
        let (counts, exits) = model::counts_report(&d.counts);
        r.table(counts);
        r.series(timing::series(t)).series(exits);
        let (same, native_free) = model::consistent(&d.counts);
        r.host = Host::measured(vec![
            "timed on a shared, loaded 2-core machine".into(),
            format!(
                "{} rounds x {} operations, {} interleaved repetitions",
                t.rounds,
                klab_paravirt::OPS_PER_ROUND,
                t.reps
            ),
            format!(
                "model: the same machine counters under every backend: {same}; natively no exit and no ROM call: {native_free}"
            ),
        ]);
    }
}

fn probe_table(p: &Result<HostProbe, String>) -> Table {
    let mut t = Table::new(
        "this machine, probed as a booting kernel probes it",
        &["source", "found"],
    );
    let p = match p {
        Ok(p) => p,
        Err(e) => {
            t.row(cells!["firmware tables", format!("unreadable: {e}")]);
            return t;
        }
    };
    t.row(cells!["CPUID 0: vendor", p.cpu_vendor.clone()])
        .row(cells!["CPUID 1: ECX bit 31 (hypervisor)", p.hypervisor_bit])
        .row(cells![
            "CPUID hypervisor leaf",
            hypervisor_name(&Ok(p.clone()))
        ]);
    if let Some(h) = &p.hypervisor {
        t.row(cells![
            "  highest hypervisor leaf",
            format!("{:#x}", h.max_leaf)
        ])
        .row(cells![
            "  feature bits (base + 1, EAX)",
            format!("{:#x}", h.features)
        ]);
    }
    t.row(cells![
        "DMI",
        p.dmi.as_ref().map_or("absent".to_owned(), |d| format!(
            "{} {} (BIOS {} {})",
            d.sys_vendor, d.product_name, d.bios_vendor, d.bios_version
        ))
    ]);
    for a in &p.acpi {
        t.row(cells![
            format!("ACPI {}", a.signature),
            format!(
                "OEM {} {} rev {}, creator {}, {} bytes",
                a.oem_id, a.oem_table_id, a.oem_revision, a.creator_id, a.length
            )
        ]);
    }
    t.row(cells![
        "device tree",
        p.devicetree
            .as_ref()
            .map_or("absent".to_owned(), |d| format!(
                "{} ({})",
                d.model,
                d.compatible.join(", ")
            ))
    ])
    .row(cells![
        "clock sources registered (current)",
        format!("{} ({})", p.clocksources.0.join(" "), p.clocksources.1)
    ])
    .row(cells!["machine", p.machine_name()]);
    for n in &p.notes {
        t.row(cells!["note", n.clone()]);
    }
    t
}

fn setup_table(s: &HostSetup) -> Table {
    let mut t = Table::new(
        &format!(
            "this machine's platform operations, chosen at run time: {}",
            s.platform
        ),
        &["hook", "implementation", "result"],
    );
    for h in &s.hooks {
        t.row(cells![
            h.hook.clone(),
            h.implementation.clone(),
            match &h.result {
                Ok(v) => v.clone(),
                Err(e) => format!("FAILED: {e}"),
            }
        ]);
    }
    if let Some((clock, registered)) = &s.paravirt_clock {
        t.row(cells![
            "paravirtual clock source",
            clock.clone(),
            if *registered {
                "registered by the running kernel"
            } else {
                "NOT registered by the running kernel"
            }
        ]);
    }
    t
}

impl Experiment for ParavirtBench {
    type Data = Timings;

    const ID: Identity = Identity {
        name: "paravirt",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "natively, privileged operations bound at boot add a negligible share to a kernel path; a trap to the hypervisor costs far more than any call",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Timings, ExperimentError> {
        timing::measure(
            ctx.size(200_000, 20_000),
            ctx.size(51, 9),
            ctx.size(5_000, 500),
            Yardstick::PageFault,
        )
    }

    fn judge(&self, t: &Timings) -> Verdict {
        let (holds, bound, table) = timing::judge(t);
        let native = |f| t.median(f, klab_paravirt::BackendKind::Native);
        Verdict {
            holds,
            measured: format!(
                "native: a direct call {:.3}x inline, the table {:.3}x inline ({:.3}, {:.3}, {:.3} ns per operation); on a minor fault ({:.0} ns) they add {:.3}% and {:.3}%",
                native(Form::BoundCall) / native(Form::Inline),
                native(Form::Table) / native(Form::Inline),
                native(Form::BoundCall),
                native(Form::Table),
                native(Form::Inline),
                t.path_median(),
                bound * 100.0,
                table * 100.0
            ),
            note: "criterion: cargo bench -p klab-paravirt".into(),
        }
    }

    fn report(&self, t: &Timings, _: &Verdict, r: &mut Report) {
        r.config("rounds", t.rounds)
            .config("repetitions", t.reps as u64)
            .config("trap_calls", t.trap_calls)
            .config("threshold.negligible_share", timing::NEGLIGIBLE_SHARE);
        r.table(timing::table(t)).table(timing::yardstick_table(t));
        r.host = Host::measured(vec!["timed on a shared, loaded 2-core machine".into()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::{Inputs, Run};
    use klab_model::arch::paravirt::PvOp;
    use klab_paravirt::BackendKind;

    #[test]
    fn the_model_counts_are_exact_and_the_machine_is_the_same_under_every_backend() {
        // Eight anonymous first touches by one task, then a file read.
        let accesses: Vec<(klab_model::Access, bool)> = (0..8)
            .map(|p| (klab_model::Access::anon(1, p), false))
            .chain([(klab_model::Access::read(1, 0), false)])
            .collect();
        let (_, n, nf) = model::page_cache_run(&accesses, 64, BackendKind::Native);
        // One switch to task 1 (CR3, MSR), then task 0 for the read (CR3,
        // MSR); per anon fault set_pte + irqsave (4 calls, the
        // ANON_FAULT_PV_CALLS of the verdict); the read's insert
        // (lock_irq) and LRU add (irqsave): 5 calls.
        assert_eq!(n.total_calls(), 4 + 8 * timing::ANON_FAULT_PV_CALLS + 5);
        assert_eq!(n.of(PvOp::SetPte), 8);
        assert_eq!((n.native, n.exits()), (n.total_calls(), 0));
        let (_, v, vf) = model::page_cache_run(
            &accesses,
            64,
            BackendKind::Hv(klab_model::arch::paravirt::Hypervisor::Vmi),
        );
        // VMI: CR3 and MSR exit (4 of them); every other call is a ROM
        // call that stays in the guest.
        assert_eq!(v.hypercalls, 4);
        assert_eq!(v.rom_calls, v.total_calls() - 4);
        assert_eq!(vf, nf);
        let (_, x, xf) = model::page_cache_run(
            &accesses,
            64,
            BackendKind::Hv(klab_model::arch::paravirt::Hypervisor::Xen),
        );
        // Xen: CR3, MSR and every pte write exit.
        assert_eq!(x.hypercalls, 4 + 8);
        assert_eq!(xf, nf);
    }

    #[test]
    fn the_quick_run_names_this_machine_and_times_every_form() {
        let inputs = Inputs::default();
        let r = ParavirtExperiment.run(&Ctx::new(1, true, &inputs)).unwrap();
        let titles: Vec<&str> = r.tables.iter().map(|t| t.title.as_str()).collect();
        assert!(titles[0].starts_with("this machine, probed"), "{titles:?}");
        let timing = r
            .tables
            .iter()
            .find(|t| t.title.starts_with("cost per privileged operation"))
            .unwrap();
        // 3 native forms + the untimed patched-inline row + 2 x 2
        // hypervisor forms + the trap.
        assert_eq!(timing.rows.len(), 3 + 1 + 4 + 1);
        let boots = r
            .tables
            .iter()
            .find(|t| t.title.starts_with("the model kernel booted"))
            .unwrap();
        assert_eq!(boots.rows.len(), 5, "four machines and the forced boot");
        assert!(!r.host.deterministic);
        assert!(r.verdict.holds.is_some(), "{}", r.verdict.note);
    }

    #[test]
    fn the_claim_fails_on_a_path_made_of_calls() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let e = ParavirtExperiment;
        let fault = e.measure_with(&ctx, Yardstick::PageFault).unwrap();
        let stand_in = e.measure_with(&ctx, Yardstick::StandIn).unwrap();
        let (a, b) = (e.judge(&fault), e.judge(&stand_in));
        assert_eq!(a.holds, Some(true), "{}", a.measured);
        assert_eq!(b.holds, Some(false), "{}", b.measured);
    }

    #[test]
    fn this_machine_is_probed_consistently() {
        let p = probe::probe(&probe::Roots::default()).unwrap();
        // Whatever the host, a leaf is only read behind the hypervisor bit,
        // and a platform is chosen whose paravirtual clock the kernel
        // registered.
        if p.hypervisor.is_some() {
            assert!(p.hypervisor_bit);
        }
        let s = platform::setup(&p);
        assert!(s.agrees_with_kernel(), "{s:?}");
        if p.hypervisor.is_none() {
            assert_eq!(s.platform, "standard PC");
        }
    }
}
