//! `too-many-threads`: seed 003 on SGI's 4096-CPU machines. Per-CPU kernel
//! threads outnumber the 32768 pids; init's child list grows long; a
//! module load's stop_machine creates a thread per CPU whose deaths init
//! must find by walking that list. How much does each proposed fix save?
//!
//! Everything runs in `klab_model::kernel` (task lists, pids, reparenting,
//! `wait()`, stop_machine), which follows 2.6.20's rules; see that module
//! for who is whose child and why. For each CPU count the machine boots
//! the kernel threads of [`KTHREADS_2007`], and a module is loaded from
//! CPU 0. Measured: tasks at boot against `pid_max`, threads created per
//! load, the list nodes init's `wait()` loop looks at to reap
//! stop_machine's threads, and the memory the tasks hold after boot (each
//! a `task_struct` from a real SLUB cache and an 8 KiB kernel stack).
//!
//! The variants are the page's: exiting children moved to the head of the
//! list (Robin Holt), a separate zombie list (Linus), kernel threads no
//! longer children of init (what kthreadd did in 2.6.22), and fewer threads
//! through lazy workqueues (seed 001); plus where the kernel went later
//! (kthreadd and persistent per-CPU stopper threads, 2.6.35).
//!
//! # Verdict
//!
//! The claim holds when the page's 2.6.20 kernel stops fitting in the
//! default 32768 pids at some CPU count up to the largest machine; init's
//! `wait()` walk after a module load grows at least as CPUs to the power
//! [`MIN_WALK_EXPONENT`] between a quarter of the largest machine and the
//! largest (the exponent is fitted, and named, from the two counts); and
//! each of the page's three fixes (exiting children to the head, a zombie
//! list, kernel threads off init's list) visits at most [`MAX_FIX_SHARE`]
//! of 2.6.20's nodes on the largest machine.
//!
//! # When the claim fails
//!
//! On a kernel built without libata, XFS, aio and the connector
//! ([`KthreadList::Minimal`]): five per-CPU threads (migration,
//! ksoftirqd, watchdog, events, kblockd) instead of ten, so 4096 CPUs need
//! about 21,500 pids and boot with the default limit. The walk is still
//! quadratic, but the pids are not exhausted. The test
//! `a_kernel_with_fewer_per_cpu_threads_fits_in_the_pids` runs it.

use klab_model::kernel::boot::{
    BootConfig, Kernel, Kthread, ModuleLoad, Parentage, Per, Stage, Stopper,
};
use klab_model::kernel::task::{PID_MAX_DEFAULT, Pid, ZombiePlacement, scaled_pid_max};
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The experiment (see the module documentation).
pub struct TooManyThreads;

const fn k(name: &'static str, per: Per, stage: Stage, workqueue: bool) -> Kthread {
    Kthread {
        name,
        per,
        stage,
        workqueue,
    }
}

/// Kernel threads of a 2.6.20 distribution kernel on an XFS storage server
/// (the first seven per-CPU ones are RHEL5's `ps` listing; ata, xfslogd and
/// xfsdatad come with libata and XFS), in creation order.
pub const KTHREADS_2007: &[Kthread] = &[
    k("migration", Per::Cpu, Stage::SmpBoot, false),
    k("ksoftirqd", Per::Cpu, Stage::SmpBoot, false),
    k("watchdog", Per::Cpu, Stage::SmpBoot, false),
    k("events", Per::Cpu, Stage::EarlyInit, true),
    k("khelper", Per::Machine, Stage::EarlyInit, true),
    k("kblockd", Per::Cpu, Stage::Initcall, true),
    k("cqueue", Per::Cpu, Stage::Initcall, true),
    k("aio", Per::Cpu, Stage::Initcall, true),
    k("ata", Per::Cpu, Stage::Initcall, true),
    k("xfslogd", Per::Cpu, Stage::Initcall, true),
    k("xfsdatad", Per::Cpu, Stage::Initcall, true),
    k("kacpid", Per::Machine, Stage::Initcall, true),
    k("kseriod", Per::Machine, Stage::Initcall, false),
    k("khubd", Per::Machine, Stage::Initcall, false),
    k("pdflush", Per::Machine, Stage::Initcall, false),
    k("pdflush", Per::Machine, Stage::Initcall, false),
    k("kswapd", Per::Node, Stage::Initcall, false),
    k("xfsbufd", Per::Machine, Stage::Initcall, false),
    k("xfssyncd", Per::Machine, Stage::Initcall, false),
    k("scsi_eh", Per::Machine, Stage::Initcall, false),
];

/// The per-CPU threads every 2.6.20 kernel has, and the machine-wide
/// ones: [`KTHREADS_2007`] without libata, XFS, aio and the connector.
pub const KTHREADS_MINIMAL: &[Kthread] = &[
    k("migration", Per::Cpu, Stage::SmpBoot, false),
    k("ksoftirqd", Per::Cpu, Stage::SmpBoot, false),
    k("watchdog", Per::Cpu, Stage::SmpBoot, false),
    k("events", Per::Cpu, Stage::EarlyInit, true),
    k("khelper", Per::Machine, Stage::EarlyInit, true),
    k("kblockd", Per::Cpu, Stage::Initcall, true),
    k("kacpid", Per::Machine, Stage::Initcall, true),
    k("kseriod", Per::Machine, Stage::Initcall, false),
    k("khubd", Per::Machine, Stage::Initcall, false),
    k("pdflush", Per::Machine, Stage::Initcall, false),
    k("pdflush", Per::Machine, Stage::Initcall, false),
    k("kswapd", Per::Node, Stage::Initcall, false),
    k("scsi_eh", Per::Machine, Stage::Initcall, false),
];

/// Which kernel threads boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KthreadList {
    /// [`KTHREADS_2007`]: the page's storage server.
    Server2007,
    /// [`KTHREADS_MINIMAL`].
    Minimal,
}

impl KthreadList {
    /// The threads, in creation order.
    pub fn threads(self) -> &'static [Kthread] {
        match self {
            KthreadList::Server2007 => KTHREADS_2007,
            KthreadList::Minimal => KTHREADS_MINIMAL,
        }
    }

    /// A name for the report's configuration.
    pub fn name(self) -> &'static str {
        match self {
            KthreadList::Server2007 => "2.6.20 XFS storage server (10 per CPU)",
            KthreadList::Minimal => "2.6.20 without libata, XFS, aio, connector (5 per CPU)",
        }
    }
}

/// The least exponent `e` of init's walk (nodes visited ~ CPUs^e) for
/// "walk its long child list for each of them" to hold.
pub const MIN_WALK_EXPONENT: f64 = 1.5;
/// The most a fix may visit, as a share of 2.6.20's nodes, to fix the walk.
pub const MAX_FIX_SHARE: f64 = 0.1;

/// CPUs per NUMA node (an Altix 4700 blade: two dual-core sockets).
pub const CPUS_PER_NODE: usize = 4;

/// User processes that are init's children (daemons, gettys).
pub const USER_CHILDREN_OF_INIT: usize = 30;

/// One way the kernel could be.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    /// Name in tables and plots.
    pub name: &'static str,
    /// Who parents kernel threads.
    pub parentage: Parentage,
    /// Where zombies wait.
    pub placement: ZombiePlacement,
    /// Lazy per-CPU workqueues.
    pub lazy: bool,
    /// How stop_machine gets its threads.
    pub stopper: Stopper,
}

/// The variants, the page's 2.6.20 first.
pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "2.6.20 (the page)",
        parentage: Parentage::Linux2620,
        placement: ZombiePlacement::InPlace,
        lazy: false,
        stopper: Stopper::PerCall,
    },
    Variant {
        name: "exiting children to the head (Holt)",
        parentage: Parentage::Linux2620,
        placement: ZombiePlacement::Head,
        lazy: false,
        stopper: Stopper::PerCall,
    },
    Variant {
        name: "separate zombie list (Linus)",
        parentage: Parentage::Linux2620,
        placement: ZombiePlacement::ZombieList,
        lazy: false,
        stopper: Stopper::PerCall,
    },
    Variant {
        name: "kernel threads not init's children (kthreadd)",
        parentage: Parentage::Kthreadd,
        placement: ZombiePlacement::InPlace,
        lazy: false,
        stopper: Stopper::PerCall,
    },
    Variant {
        name: "fewer threads: lazy workqueues",
        parentage: Parentage::Linux2620,
        placement: ZombiePlacement::InPlace,
        lazy: true,
        stopper: Stopper::PerCall,
    },
    Variant {
        name: "later: kthreadd + cpu_stop (2.6.35)",
        parentage: Parentage::Kthreadd,
        placement: ZombiePlacement::InPlace,
        lazy: false,
        stopper: Stopper::Persistent,
    },
];

/// The boot configuration of `v` with `threads` on `nr_cpus` CPUs with
/// `pid_max`.
pub fn config(threads: KthreadList, v: &Variant, nr_cpus: usize, pid_max: Pid) -> BootConfig {
    BootConfig {
        nr_cpus,
        cpus_per_node: CPUS_PER_NODE,
        kthreads: threads.threads().to_vec(),
        user_children_of_init: USER_CHILDREN_OF_INIT,
        parentage: v.parentage,
        placement: v.placement,
        lazy_workqueues: v.lazy,
        stopper: v.stopper,
        pid_max,
        task_slab: false,
    }
}

/// Tasks the boot of `v` on `nr_cpus` CPUs wants (those that got a pid and
/// those refused), with the default `pid_max`; and whether it booted.
fn boot_default(l: KthreadList, v: &Variant, nr_cpus: usize) -> (usize, bool) {
    let k = Kernel::boot(config(l, v, nr_cpus, PID_MAX_DEFAULT));
    let b = k.boot_report();
    (b.tasks + b.failed_forks as usize, b.booted())
}

/// The fewest CPUs on which `v` no longer boots with the default
/// `pid_max`, searched up to `limit` (`None` if it boots everywhere).
fn first_failing(l: KthreadList, v: &Variant, limit: usize) -> Option<usize> {
    if boot_default(l, v, limit).1 {
        return None;
    }
    let (mut lo, mut hi) = (1, limit); // boots at lo (1 CPU), fails at hi
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if boot_default(l, v, mid).1 {
            lo = mid
        } else {
            hi = mid
        }
    }
    Some(hi)
}

/// Memory the tasks of `v`'s boot on `nr_cpus` CPUs hold (`pid_max`
/// raised so every thread boots): tasks, `task_struct` slab bytes, stack
/// bytes.
fn boot_memory(l: KthreadList, v: &Variant, nr_cpus: usize) -> (u64, u64, u64) {
    let mut cfg = config(l, v, nr_cpus, scaled_pid_max(nr_cpus));
    cfg.task_slab = true;
    let k = Kernel::boot(cfg);
    let m = k.tasks().memory().expect("booted with the slab");
    (m.task_structs, m.slab_bytes, m.stack_bytes)
}

/// A module load on `nr_cpus` CPUs under `v`, with `pid_max` raised as
/// later kernels do so the machine boots.
fn module_load(l: KthreadList, v: &Variant, nr_cpus: usize) -> (Kernel, ModuleLoad) {
    let mut k = Kernel::boot(config(l, v, nr_cpus, scaled_pid_max(nr_cpus)));
    let load = k.load_module(0);
    (k, load)
}

/// What a run is measured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The largest machine.
    pub max_cpus: usize,
    /// CPU counts are 1, `cpu_step`, `cpu_step`^2, ... up to `max_cpus`.
    pub cpu_step: usize,
    /// The kernel threads that boot.
    pub kthreads: KthreadList,
}

impl Config {
    /// The page's machine: up to 4096 CPUs in steps of 2 (of 4 with
    /// `--quick`), the 2007 storage server's threads.
    pub fn page(quick: bool) -> Self {
        Config {
            max_cpus: 4096,
            cpu_step: if quick { 4 } else { 2 },
            kthreads: KthreadList::Server2007,
        }
    }

    /// The CPU counts measured.
    pub fn cpus(&self) -> Vec<usize> {
        std::iter::successors(Some(1usize), |&c| {
            (c * self.cpu_step <= self.max_cpus).then_some(c * self.cpu_step)
        })
        .collect()
    }
}

/// One machine's boots against the default `pid_max`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BootRow {
    /// CPUs.
    pub cpus: usize,
    /// Tasks 2.6.20 wants, and whether it booted.
    pub eager: (usize, bool),
    /// The same with lazy workqueues.
    pub lazy: (usize, bool),
}

/// One machine's task memory after boot (`pid_max` raised).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemoryRow {
    /// CPUs.
    pub cpus: usize,
    /// 2.6.20: tasks, `task_struct` slab bytes, stack bytes.
    pub eager: (u64, u64, u64),
    /// The same with lazy workqueues.
    pub lazy: (u64, u64, u64),
}

/// What the run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Data {
    /// The configuration.
    pub config: Config,
    /// The CPU counts.
    pub cpus: Vec<usize>,
    /// Per CPU count, per variant of [`VARIANTS`]: the module load and
    /// init's children after boot.
    pub loads: Vec<Vec<(ModuleLoad, usize)>>,
    /// Per CPU count: boots against the default `pid_max`.
    pub boots: Vec<BootRow>,
    /// The fewest CPUs on which 2.6.20 no longer boots (up to `max_cpus`).
    pub fail_eager: Option<usize>,
    /// The same with lazy workqueues.
    pub fail_lazy: Option<usize>,
    /// Tasks of a 1-CPU boot.
    pub one_cpu_tasks: usize,
    /// Per CPU count: memory after boot.
    pub memory: Vec<MemoryRow>,
}

const EAGER: usize = 0;
const LAZY: usize = 4;

impl Data {
    /// Nodes init's `wait()` visited under variant `i` on `cpus` CPUs.
    fn visited(&self, cpus: usize, i: usize) -> Option<u64> {
        let at = self.cpus.iter().position(|&c| c == cpus)?;
        Some(self.loads[at].get(i)?.0.init_wait.visited)
    }

    /// 2.6.20's walk on the largest machine against a quarter of it (or
    /// the next smaller count measured): `(smaller CPUs, growth, exponent)`.
    fn walk_growth(&self) -> Option<(usize, f64, f64)> {
        let max = *self.cpus.last()?;
        let from = self
            .cpus
            .iter()
            .copied()
            .find(|&c| c >= max / 4 && c < max)
            .or_else(|| self.cpus.iter().rev().nth(1).copied())?;
        let (a, b) = (self.visited(from, EAGER)?, self.visited(max, EAGER)?);
        let growth = b as f64 / a.max(1) as f64;
        Some((from, growth, growth.ln() / (max as f64 / from as f64).ln()))
    }
}

/// The name of the power nearest `e`.
fn power_name(e: f64) -> &'static str {
    match e.round() as i64 {
        i64::MIN..=0 => "constant",
        1 => "linear",
        2 => "quadratic",
        3 => "cubic",
        _ => "steeper than cubic",
    }
}

impl TooManyThreads {
    /// Measures with `cfg` (the built-in run uses [`Config::page`]).
    ///
    /// # Errors
    /// A run stopped to hibernate.
    pub fn measure_with(&self, ctx: &Ctx<'_>, cfg: Config) -> Result<Data, ExperimentError> {
        let cpus = cfg.cpus();
        let l = cfg.kthreads;
        ctx.progress
            .begin("too-many-threads", (cpus.len() * VARIANTS.len()) as u64);
        let mut loads = Vec::new();
        for &n in &cpus {
            let mut row = Vec::new();
            for v in VARIANTS {
                row.push(ctx.once(
                    "too-many-threads: boot and a module load",
                    klab_lab::hibernate::TASK_TICK_NS,
                    |span| {
                        let (k, load) = module_load(l, v, n);
                        k.assert_invariants();
                        let b = k.boot_report();
                        span.busy(b.tasks as u64 + load.threads_created + load.init_wait.visited);
                        Ok((load, b.init_children))
                    },
                )?);
                ctx.progress.advance(1);
            }
            loads.push(row);
        }
        ctx.progress.end();
        let (eager, lazy) = (&VARIANTS[EAGER], &VARIANTS[LAZY]);
        let mut boots = Vec::new();
        for &n in &cpus {
            boots.push(ctx.once(
                "too-many-threads: boots against pid_max",
                klab_lab::hibernate::TASK_TICK_NS,
                |span| {
                    let (e, z) = (boot_default(l, eager, n), boot_default(l, lazy, n));
                    span.busy((e.0 + z.0) as u64);
                    Ok(BootRow {
                        cpus: n,
                        eager: e,
                        lazy: z,
                    })
                },
            )?);
        }
        let (fail_eager, fail_lazy, one_cpu_tasks) = ctx.once(
            "too-many-threads: where boot stops",
            klab_lab::hibernate::TASK_TICK_NS,
            |span| {
                let out = (
                    first_failing(l, eager, cfg.max_cpus),
                    first_failing(l, lazy, cfg.max_cpus),
                    boot_default(l, eager, 1).0,
                );
                // The searches' boots are not counted one by one: one tick.
                span.busy(1);
                Ok(out)
            },
        )?;
        let mut memory = Vec::new();
        for &n in &cpus {
            memory.push(ctx.once(
                "too-many-threads: memory at boot",
                klab_lab::hibernate::TASK_TICK_NS,
                |span| {
                    let (e, z) = (boot_memory(l, eager, n), boot_memory(l, lazy, n));
                    span.busy(e.0 + z.0);
                    Ok(MemoryRow {
                        cpus: n,
                        eager: e,
                        lazy: z,
                    })
                },
            )?);
        }
        Ok(Data {
            config: cfg,
            cpus,
            loads,
            boots,
            fail_eager,
            fail_lazy,
            one_cpu_tasks,
            memory,
        })
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / f64::from(1u32 << 20)
}

impl Experiment for TooManyThreads {
    type Data = Data;

    const ID: Identity = Identity {
        name: "too-many-threads",
        seed_page: "003_1b710cf080fd5ed1.txt",
        claim: "on 4096 CPUs per-CPU kernel threads exhaust the 32768 pids, and a module load's stop_machine threads make init's wait() walk its long child list for each of them; exiting-to-head, a zombie list, or taking kernel threads off init's list fix the walk",
        inputs: &[],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        self.measure_with(ctx, Config::page(ctx.quick))
    }

    fn judge(&self, d: &Data) -> Verdict {
        let max = d.config.max_cpus;
        let at_max = |i| d.visited(max, i).unwrap_or(0);
        let (from, growth, exponent) = d.walk_growth().unwrap_or((0, f64::NAN, f64::NAN));
        let fixes_ok = [1, 2, 3]
            .iter()
            .all(|&i| at_max(i) as f64 <= MAX_FIX_SHARE * at_max(EAGER) as f64);
        let mem = |f: fn(&MemoryRow) -> (u64, u64, u64)| {
            d.memory.last().map_or(0.0, |m| {
                let (_, slab, stacks) = f(m);
                mib(slab + stacks)
            })
        };
        let (mem_eager, mem_lazy) = (mem(|m| m.eager), mem(|m| m.lazy));
        let measured = format!(
            "2.6.20's threads stop fitting in {} pids at {} (lazy workqueues: {}); with pid_max raised, their task_structs and stacks hold {mem_eager:.0} MiB on {max} CPUs ({mem_lazy:.0} MiB with lazy workqueues). One module load on {max} CPUs makes init's wait() visit {} list nodes ({growth:.1}x the count at {from} CPUs: CPUs^{exponent:.2}, {}); exiting-to-head {}, zombie list {}, kthreadd {}, lazy workqueues {}, kthreadd + cpu_stop {}",
            PID_MAX_DEFAULT - 1,
            d.fail_eager
                .map_or(format!("no count up to {max} CPUs"), |c| format!(
                    "{c} CPUs"
                )),
            d.fail_lazy
                .map_or(format!("never up to {max}"), |c| format!("at {c}")),
            at_max(EAGER),
            power_name(exponent),
            at_max(1),
            at_max(2),
            at_max(3),
            at_max(4),
            at_max(5)
        );
        Verdict {
            holds: Some(d.fail_eager.is_some() && exponent >= MIN_WALK_EXPONENT && fixes_ok),
            measured,
            note: format!(
                "Kernel threads: {}. Parentage follows 2.6.20 (kthreads made before the kthread workqueue are init's children; stop_machine's threads reach init by reparenting when kstopmachine exits). Lazy workqueues shrink the pid count a lot but init's list little: most of init's kernel children are migration, ksoftirqd and watchdog, and stop_machine still makes a thread per CPU. The module loads run with pid_max raised (max(32768, 1024 x CPUs)) so every machine boots.",
                d.config.kthreads.name()
            ),
        }
    }

    fn report(&self, d: &Data, _verdict: &Verdict, r: &mut Report) {
        r.config("max_cpus", d.config.max_cpus)
            .config("cpus_per_node", CPUS_PER_NODE)
            .config("user_children_of_init", USER_CHILDREN_OF_INIT)
            .config("pid_max_default", PID_MAX_DEFAULT)
            .config("module_loaded_from_cpu", 0u64)
            .config("kthreads", d.config.kthreads.name())
            .config("threshold.min_walk_exponent", MIN_WALK_EXPONENT)
            .config("threshold.max_fix_share", MAX_FIX_SHARE);
        load_table(d, r);
        boot_tables(d, r);
        memory_table(d, r);
        series(d, r);
    }
}

/// The module load on the largest machine, every variant.
fn load_table(d: &Data, r: &mut Report) {
    let mut t = Table::new(
        &format!(
            "a module load on {} CPUs: init's wait() after stop_machine",
            d.config.max_cpus
        ),
        &[
            "kernel",
            "init's children after boot",
            "threads created for the load",
            "threads init reaps",
            "wait() calls",
            "list nodes visited",
            "vs 2.6.20",
        ],
    );
    let Some(at_max) = d
        .cpus
        .iter()
        .position(|&c| c == d.config.max_cpus)
        .map(|i| &d.loads[i])
    else {
        r.table(t);
        return;
    };
    let base = at_max
        .first()
        .map_or(1, |(l, _)| l.init_wait.visited.max(1));
    for (v, (load, init_children)) in VARIANTS.iter().zip(at_max) {
        t.row(cells![
            v.name,
            *init_children,
            load.threads_created,
            load.init_wait.reaped,
            load.init_wait.calls,
            load.init_wait.visited,
            load.init_wait.visited as f64 / base as f64
        ]);
    }
    r.table(t);
}

/// Tasks at boot against the default limit, and where boot stops.
fn boot_tables(d: &Data, r: &mut Report) {
    let mut t = Table::new(
        "tasks at boot against pid_max = 32768 (pids 1-32767)",
        &[
            "CPUs",
            "tasks (2.6.20)",
            "boots",
            "tasks (lazy workqueues)",
            "boots (lazy)",
            "later default pid_max",
        ],
    );
    for b in &d.boots {
        t.row(cells![
            b.cpus,
            b.eager.0,
            b.eager.1,
            b.lazy.0,
            b.lazy.1,
            scaled_pid_max(b.cpus)
        ]);
    }
    r.table(t);
    let searched = format!(
        "fewest CPUs that fail to boot with pid_max {PID_MAX_DEFAULT} (searched up to {})",
        d.config.max_cpus
    );
    let mut t = Table::new("where boot stops", &["kernel", &searched]);
    let fail = |f: Option<usize>| f.map_or("boots".to_owned(), |c| c.to_string());
    t.row(cells![VARIANTS[EAGER].name, fail(d.fail_eager)]);
    t.row(cells![VARIANTS[LAZY].name, fail(d.fail_lazy)]);
    t.row(cells![
        "for scale: kernel threads on 1 CPU, this list / the page's desktop",
        format!("{} / 39", d.one_cpu_tasks - 1 - USER_CHILDREN_OF_INIT)
    ]);
    r.table(t);
}

/// Memory the tasks hold at boot: task_struct slabs and stacks.
fn memory_table(d: &Data, r: &mut Report) {
    let mut t = Table::new(
        "memory the tasks hold after boot (task_struct from SLUB, 8 KiB kernel stacks)",
        &[
            "CPUs",
            "tasks (2.6.20)",
            "task_struct slabs (MiB)",
            "stacks (MiB)",
            "tasks (lazy)",
            "task_struct slabs (MiB, lazy)",
            "stacks (MiB, lazy)",
        ],
    );
    for m in &d.memory {
        let (e, l) = (m.eager, m.lazy);
        t.row(cells![
            m.cpus,
            e.0,
            mib(e.1),
            mib(e.2),
            l.0,
            mib(l.1),
            mib(l.2)
        ]);
    }
    r.table(t);
}

/// Memory, the walk and the tasks against the CPU count.
fn series(d: &Data, r: &mut Report) {
    let mut s = Series::new(
        "memory the tasks hold after boot",
        Axis::log("CPUs", ""),
        Axis::log("task_structs and stacks", "MiB"),
    );
    let mem = |f: fn(&MemoryRow) -> (u64, u64, u64)| {
        d.memory
            .iter()
            .map(|m| {
                let (_, slab, stacks) = f(m);
                [m.cpus as f64, mib(slab + stacks)]
            })
            .collect()
    };
    s.line("2.6.20", mem(|m| m.eager));
    s.line("lazy workqueues", mem(|m| m.lazy));
    r.series(s);
    let mut s = Series::new(
        "list nodes init's wait() visits per module load",
        Axis::log("CPUs", ""),
        Axis::log("nodes visited", ""),
    );
    for (i, v) in VARIANTS.iter().enumerate() {
        let pts = d
            .cpus
            .iter()
            .zip(&d.loads)
            .map(|(&n, row)| [n as f64, row[i].0.init_wait.visited as f64])
            .collect();
        s.line(v.name, pts);
    }
    r.series(s);
    let mut s = Series::new(
        "tasks at boot against the pid limit",
        Axis::log("CPUs", ""),
        Axis::log("tasks", ""),
    );
    s.line(
        "2.6.20",
        d.boots
            .iter()
            .map(|b| [b.cpus as f64, b.eager.0 as f64])
            .collect(),
    );
    s.line(
        "lazy workqueues",
        d.boots
            .iter()
            .map(|b| [b.cpus as f64, b.lazy.0 as f64])
            .collect(),
    );
    s.line(
        "pid_max 32768",
        d.cpus
            .iter()
            .map(|&n| [n as f64, f64::from(PID_MAX_DEFAULT)])
            .collect(),
    );
    r.series(s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

    fn measured(cfg: Config) -> Data {
        let inputs = Inputs::default();
        TooManyThreads
            .measure_with(&Ctx::new(1, true, &inputs), cfg)
            .unwrap()
    }

    #[test]
    fn the_2007_list_fails_to_boot_on_4096_cpus_and_lazy_workqueues_fit() {
        let (tasks, booted) = boot_default(KthreadList::Server2007, &VARIANTS[0], 4096);
        // 10 per-CPU kinds x 4096 + 1024 kswapd + init + khelper + kthread
        // + kacpid kseriod khubd 2 pdflush xfsbufd xfssyncd scsi_eh + 30.
        assert_eq!(tasks, 40_960 + 1024 + 1 + 2 + 8 + 30);
        assert!(!booted);
        let (lazy, booted) = boot_default(KthreadList::Server2007, &VARIANTS[4], 4096);
        // 3 per-CPU kinds x 4096 + 7 workqueue core threads + the rest.
        assert_eq!(lazy, 3 * 4096 + 7 + 1024 + 1 + 2 + 8 + 30);
        assert!(booted);
    }

    #[test]
    fn every_thread_holds_a_task_struct_and_a_stack() {
        // 64 CPUs, 2.6.20: 10 per-CPU kinds x 64 + 16 kswapd + init +
        // khelper + kthread + 8 daemons + 30 user children = 697 tasks;
        // task_structs 4 to an 8 KiB slab.
        let (tasks, slab, stacks) = boot_memory(KthreadList::Server2007, &VARIANTS[0], 64);
        assert_eq!(tasks, 640 + 16 + 1 + 2 + 8 + 30);
        assert_eq!(slab, tasks.div_ceil(4) * 8192);
        assert_eq!(stacks, tasks * 8192);
    }

    #[test]
    fn the_2_6_20_walk_is_quadratic_and_the_fixes_are_not() {
        // 64 CPUs: init's children: 4 x 64 + khelper + kthread + 30 = 288.
        // 63 zombies arrive at the tail: the i-th wait looks at 288 + 1
        // nodes; the last finds nothing after 288: 63 x 289 + 288.
        let (_, load) = module_load(KthreadList::Server2007, &VARIANTS[0], 64);
        assert_eq!(load.threads_created, 64);
        assert_eq!(load.init_wait.visited, 63 * 289 + 288);
        let (_, holt) = module_load(KthreadList::Server2007, &VARIANTS[1], 64);
        assert_eq!(holt.init_wait.visited, 63 + 288);
        let (_, zl) = module_load(KthreadList::Server2007, &VARIANTS[2], 64);
        assert_eq!(zl.init_wait.visited, 63);
        let (_, kt) = module_load(KthreadList::Server2007, &VARIANTS[3], 64);
        assert_eq!(kt.init_wait.visited, 30);
        let (_, lazy) = module_load(KthreadList::Server2007, &VARIANTS[4], 64);
        // events is lazy: 3 x 64 + events/0 + khelper + kthread + 30 = 225.
        assert_eq!(lazy.init_wait.visited, 63 * 226 + 225);
        let (_, later) = module_load(KthreadList::Server2007, &VARIANTS[5], 64);
        assert_eq!((later.threads_created, later.init_wait.visited), (0, 30));
    }

    #[test]
    fn the_first_failing_cpu_count_is_where_tasks_pass_the_pid_limit() {
        let c = first_failing(KthreadList::Server2007, &VARIANTS[0], 4096).unwrap();
        assert!(!boot_default(KthreadList::Server2007, &VARIANTS[0], c).1);
        assert!(boot_default(KthreadList::Server2007, &VARIANTS[0], c - 1).1);
        // tasks(c) = 10c + ceil(c/4) + 41: 32759 at c = 3192, 32770 at
        // c = 3193, the first count above the 32767 pids.
        assert_eq!(c, 3193);
    }

    #[test]
    fn a_kernel_with_fewer_per_cpu_threads_fits_in_the_pids() {
        let d = measured(Config {
            kthreads: KthreadList::Minimal,
            ..Config::page(true)
        });
        let v = TooManyThreads.judge(&d);
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        assert_eq!(d.fail_eager, None);
        // 5 per-CPU kinds x 4096 + 1024 kswapd + init + khelper + kthread +
        // kacpid kseriod khubd 2 pdflush scsi_eh + 30 user children.
        assert_eq!(
            d.boots.last().unwrap().eager.0,
            5 * 4096 + 1024 + 3 + 6 + 30
        );
        // The walk is as quadratic as ever.
        let (_, _, e) = d.walk_growth().unwrap();
        assert!(e > 1.9, "{e}");
        assert!(
            v.measured.contains("no count up to 4096 CPUs"),
            "{}",
            v.measured
        );
    }

    #[test]
    fn the_verdict_names_the_walks_power_and_fails_on_a_linear_walk_or_a_weak_fix() {
        let d = measured(Config::page(true));
        let v = TooManyThreads.judge(&d);
        assert_eq!(v.holds, Some(true), "{}", v.measured);
        assert!(
            v.measured.contains(": CPUs^2.00, quadratic)"),
            "{}",
            v.measured
        );
        // A walk that only grows as fast as the machine.
        let mut linear = d.clone();
        let quarter = linear.cpus.iter().position(|&c| c == 1024).unwrap();
        let v4096 = linear.visited(4096, EAGER).unwrap();
        linear.loads[quarter][EAGER].0.init_wait.visited = v4096 / 4;
        let v = TooManyThreads.judge(&linear);
        assert_eq!(v.holds, Some(false));
        assert!(v.measured.contains("CPUs^1.00, linear"), "{}", v.measured);
        // A zombie list that saves only half the walk.
        let mut weak = d.clone();
        let max = weak.cpus.len() - 1;
        weak.loads[max][2].0.init_wait.visited = v4096 / 2;
        assert_eq!(TooManyThreads.judge(&weak).holds, Some(false));
        // Pids that never run out.
        let mut roomy = d;
        roomy.fail_eager = None;
        assert_eq!(TooManyThreads.judge(&roomy).holds, Some(false));
    }
}
