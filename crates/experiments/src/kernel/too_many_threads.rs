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

use klab_model::kernel::boot::{
    BootConfig, Kernel, Kthread, ModuleLoad, Parentage, Per, Stage, Stopper,
};
use klab_model::kernel::task::{PID_MAX_DEFAULT, Pid, ZombiePlacement, scaled_pid_max};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
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

/// The boot configuration of `v` on `nr_cpus` CPUs with `pid_max`.
pub fn config(v: &Variant, nr_cpus: usize, pid_max: Pid) -> BootConfig {
    BootConfig {
        nr_cpus,
        cpus_per_node: CPUS_PER_NODE,
        kthreads: KTHREADS_2007.to_vec(),
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
fn boot_default(v: &Variant, nr_cpus: usize) -> (usize, bool) {
    let k = Kernel::boot(config(v, nr_cpus, PID_MAX_DEFAULT));
    let b = k.boot_report();
    (b.tasks + b.failed_forks as usize, b.booted())
}

/// The fewest CPUs on which `v` no longer boots with the default
/// `pid_max`, searched up to `limit` (`None` if it boots everywhere).
fn first_failing(v: &Variant, limit: usize) -> Option<usize> {
    if boot_default(v, limit).1 {
        return None;
    }
    let (mut lo, mut hi) = (1, limit); // boots at lo (1 CPU), fails at hi
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if boot_default(v, mid).1 {
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
fn boot_memory(v: &Variant, nr_cpus: usize) -> (u64, u64, u64) {
    let mut cfg = config(v, nr_cpus, scaled_pid_max(nr_cpus));
    cfg.task_slab = true;
    let k = Kernel::boot(cfg);
    let m = k.tasks().memory().expect("booted with the slab");
    (m.task_structs, m.slab_bytes, m.stack_bytes)
}

/// A module load on `nr_cpus` CPUs under `v`, with `pid_max` raised as
/// later kernels do so the machine boots.
fn module_load(v: &Variant, nr_cpus: usize) -> (Kernel, ModuleLoad) {
    let mut k = Kernel::boot(config(v, nr_cpus, scaled_pid_max(nr_cpus)));
    let load = k.load_module(0);
    (k, load)
}

impl TooManyThreads {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "too-many-threads",
        seed_page: "003_1b710cf080fd5ed1.txt",
        claim: "on 4096 CPUs per-CPU kernel threads exhaust the 32768 pids, and a module load's stop_machine threads make init's wait() walk its long child list for each of them; exiting-to-head, a zombie list, or taking kernel threads off init's list fix the walk",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for TooManyThreads {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let step = ctx.size(2, 4);
        let max_cpus = 4096usize;
        let cpus: Vec<usize> = std::iter::successors(Some(1usize), |&c| {
            (c * step <= max_cpus).then_some(c * step)
        })
        .collect();
        r.config("max_cpus", max_cpus)
            .config("cpus_per_node", CPUS_PER_NODE)
            .config("user_children_of_init", USER_CHILDREN_OF_INIT)
            .config("pid_max_default", PID_MAX_DEFAULT)
            .config("module_loaded_from_cpu", 0u64);
        ctx.progress
            .begin("too-many-threads", (cpus.len() * VARIANTS.len()) as u64);

        // Module loads over the CPU counts, every variant.
        let mut visits: Vec<Vec<[f64; 2]>> = vec![Vec::new(); VARIANTS.len()];
        let mut at_max: Vec<(usize, ModuleLoad, usize)> = Vec::new();
        for &n in &cpus {
            for (i, v) in VARIANTS.iter().enumerate() {
                let (load, init_children) = ctx.once(
                    "too-many-threads: boot and a module load",
                    klab_lab::hibernate::TASK_TICK_NS,
                    |span| {
                        let (k, load) = module_load(v, n);
                        k.assert_invariants();
                        let b = k.boot_report();
                        span.busy(b.tasks as u64 + load.threads_created + load.init_wait.visited);
                        Ok((load, b.init_children))
                    },
                )?;
                visits[i].push([n as f64, load.init_wait.visited as f64]);
                if n == max_cpus {
                    at_max.push((i, load, init_children));
                }
                ctx.progress.advance(1);
            }
        }
        ctx.progress.end();

        let mut t = Table::new(
            "a module load on 4096 CPUs: init's wait() after stop_machine",
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
        let base = at_max
            .first()
            .map_or(1, |(_, l, _)| l.init_wait.visited.max(1));
        for (i, load, init_children) in &at_max {
            t.row(cells![
                VARIANTS[*i].name,
                *init_children,
                load.threads_created,
                load.init_wait.reaped,
                load.init_wait.calls,
                load.init_wait.visited,
                load.init_wait.visited as f64 / base as f64
            ]);
        }
        r.table(t);

        // Pids at boot.
        let eager = &VARIANTS[0];
        let lazy = &VARIANTS[4];
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
        let mut boot_series_e = Vec::new();
        let mut boot_series_l = Vec::new();
        for &n in &cpus {
            let ((te, be), (tl, bl)) = ctx.once(
                "too-many-threads: boots against pid_max",
                klab_lab::hibernate::TASK_TICK_NS,
                |span| {
                    let (e, l) = (boot_default(eager, n), boot_default(lazy, n));
                    span.busy((e.0 + l.0) as u64);
                    Ok((e, l))
                },
            )?;
            boot_series_e.push([n as f64, te as f64]);
            boot_series_l.push([n as f64, tl as f64]);
            t.row(cells![n, te, be, tl, bl, scaled_pid_max(n)]);
        }
        r.table(t);
        let (fail_e, fail_l, one_cpu) = ctx.once(
            "too-many-threads: where boot stops",
            klab_lab::hibernate::TASK_TICK_NS,
            |span| {
                let out = (
                    first_failing(eager, max_cpus),
                    first_failing(lazy, max_cpus),
                    boot_default(eager, 1).0,
                );
                // The searches' boots are not counted one by one: one tick.
                span.busy(1);
                Ok(out)
            },
        )?;
        let mut t = Table::new(
            "where boot stops",
            &[
                "kernel",
                "fewest CPUs that fail to boot with pid_max 32768 (searched up to 4096)",
            ],
        );
        t.row(cells![
            eager.name,
            fail_e.map_or("boots".to_owned(), |c| c.to_string())
        ]);
        t.row(cells![
            lazy.name,
            fail_l.map_or("boots".to_owned(), |c| c.to_string())
        ]);
        t.row(cells![
            "for scale: kernel threads on 1 CPU, this list / the page's desktop",
            format!("{} / 39", one_cpu - 1 - USER_CHILDREN_OF_INIT)
        ]);
        r.table(t);

        // Memory the tasks hold at boot: task_struct slabs and stacks.
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
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
        let mut mem_e = Vec::new();
        let mut mem_l = Vec::new();
        for &n in &cpus {
            let (e, l) = ctx.once(
                "too-many-threads: memory at boot",
                klab_lab::hibernate::TASK_TICK_NS,
                |span| {
                    let (e, l) = (boot_memory(eager, n), boot_memory(lazy, n));
                    span.busy(e.0 + l.0);
                    Ok((e, l))
                },
            )?;
            t.row(cells![n, e.0, mib(e.1), mib(e.2), l.0, mib(l.1), mib(l.2)]);
            mem_e.push([n as f64, mib(e.1 + e.2)]);
            mem_l.push([n as f64, mib(l.1 + l.2)]);
        }
        r.table(t);
        let at_max_mem = |m: &[[f64; 2]]| m.last().map_or(0.0, |p| p[1]);
        let (mem_eager, mem_lazy) = (at_max_mem(&mem_e), at_max_mem(&mem_l));
        let mut s = Series::new(
            "memory the tasks hold after boot",
            Axis::log("CPUs", ""),
            Axis::log("task_structs and stacks", "MiB"),
        );
        s.line("2.6.20", mem_e);
        s.line("lazy workqueues", mem_l);
        r.series(s);

        let mut s = Series::new(
            "list nodes init's wait() visits per module load",
            Axis::log("CPUs", ""),
            Axis::log("nodes visited", ""),
        );
        for (v, pts) in VARIANTS.iter().zip(&visits) {
            s.line(v.name, pts.clone());
        }
        r.series(s);
        let mut s = Series::new(
            "tasks at boot against the pid limit",
            Axis::log("CPUs", ""),
            Axis::log("tasks", ""),
        );
        s.line("2.6.20", boot_series_e);
        s.line("lazy workqueues", boot_series_l);
        s.line(
            "pid_max 32768",
            cpus.iter()
                .map(|&n| [n as f64, f64::from(PID_MAX_DEFAULT)])
                .collect(),
        );
        r.series(s);

        let visited = |i: usize| {
            at_max
                .iter()
                .find(|(j, _, _)| *j == i)
                .map_or(0, |(_, l, _)| l.init_wait.visited)
        };
        let quarter = visits[0]
            .iter()
            .find(|p| p[0] as usize == max_cpus / 4)
            .map_or(f64::NAN, |p| p[1]);
        let growth = visited(0) as f64 / quarter;
        let fixes_ok = [1, 2, 3].iter().all(|&i| visited(i) * 10 <= visited(0));
        r.verdict = Verdict {
            holds: Some(fail_e.is_some_and(|c| c <= max_cpus) && growth >= 10.0 && fixes_ok),
            measured: format!(
                "2.6.20's threads stop fitting in 32767 pids at {} CPUs (lazy workqueues: {}); with pid_max raised, their task_structs and stacks hold {mem_eager:.0} MiB on 4096 CPUs ({mem_lazy:.0} MiB with lazy workqueues). One module load on 4096 CPUs makes init's wait() visit {} list nodes ({:.1}x the count at 1024 CPUs: quadratic); exiting-to-head {}, zombie list {}, kthreadd {}, lazy workqueues {}, kthreadd + cpu_stop {}",
                fail_e.map_or("no count up to 4096".to_owned(), |c| c.to_string()),
                fail_l.map_or("never up to 4096".to_owned(), |c| format!("at {c}")),
                visited(0),
                growth,
                visited(1),
                visited(2),
                visited(3),
                visited(4),
                visited(5)
            ),
            note: "Parentage follows 2.6.20 (kthreads made before the kthread workqueue are init's children; stop_machine's threads reach init by reparenting when kstopmachine exits). Lazy workqueues shrink the pid count a lot but init's list little: most of init's kernel children are migration, ksoftirqd and watchdog, and stop_machine still makes a thread per CPU. The module loads run with pid_max raised (max(32768, 1024 x CPUs)) so every machine boots.".to_owned(),
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_2007_list_fails_to_boot_on_4096_cpus_and_lazy_workqueues_fit() {
        let (tasks, booted) = boot_default(&VARIANTS[0], 4096);
        // 10 per-CPU kinds x 4096 + 1024 kswapd + init + khelper + kthread
        // + kacpid kseriod khubd 2 pdflush xfsbufd xfssyncd scsi_eh + 30.
        assert_eq!(tasks, 40_960 + 1024 + 1 + 2 + 8 + 30);
        assert!(!booted);
        let (lazy, booted) = boot_default(&VARIANTS[4], 4096);
        // 3 per-CPU kinds x 4096 + 7 workqueue core threads + the rest.
        assert_eq!(lazy, 3 * 4096 + 7 + 1024 + 1 + 2 + 8 + 30);
        assert!(booted);
    }

    #[test]
    fn every_thread_holds_a_task_struct_and_a_stack() {
        // 64 CPUs, 2.6.20: 10 per-CPU kinds x 64 + 16 kswapd + init +
        // khelper + kthread + 8 daemons + 30 user children = 697 tasks;
        // task_structs 4 to an 8 KiB slab.
        let (tasks, slab, stacks) = boot_memory(&VARIANTS[0], 64);
        assert_eq!(tasks, 640 + 16 + 1 + 2 + 8 + 30);
        assert_eq!(slab, tasks.div_ceil(4) * 8192);
        assert_eq!(stacks, tasks * 8192);
    }

    #[test]
    fn the_2_6_20_walk_is_quadratic_and_the_fixes_are_not() {
        // 64 CPUs: init's children: 4 x 64 + khelper + kthread + 30 = 288.
        // 63 zombies arrive at the tail: the i-th wait looks at 288 + 1
        // nodes; the last finds nothing after 288: 63 x 289 + 288.
        let (_, load) = module_load(&VARIANTS[0], 64);
        assert_eq!(load.threads_created, 64);
        assert_eq!(load.init_wait.visited, 63 * 289 + 288);
        let (_, holt) = module_load(&VARIANTS[1], 64);
        assert_eq!(holt.init_wait.visited, 63 + 288);
        let (_, zl) = module_load(&VARIANTS[2], 64);
        assert_eq!(zl.init_wait.visited, 63);
        let (_, kt) = module_load(&VARIANTS[3], 64);
        assert_eq!(kt.init_wait.visited, 30);
        let (_, lazy) = module_load(&VARIANTS[4], 64);
        // events is lazy: 3 x 64 + events/0 + khelper + kthread + 30 = 225.
        assert_eq!(lazy.init_wait.visited, 63 * 226 + 225);
        let (_, later) = module_load(&VARIANTS[5], 64);
        assert_eq!((later.threads_created, later.init_wait.visited), (0, 30));
    }

    #[test]
    fn the_first_failing_cpu_count_is_where_tasks_pass_the_pid_limit() {
        let c = first_failing(&VARIANTS[0], 4096).unwrap();
        assert!(!boot_default(&VARIANTS[0], c).1);
        assert!(boot_default(&VARIANTS[0], c - 1).1);
        // tasks(c) = 10c + ceil(c/4) + 41: 32759 at c = 3192, 32770 at
        // c = 3193, the first count above the 32767 pids.
        assert_eq!(c, 3193);
    }
}
