//! Booting a machine's kernel threads, and loading a module: who creates
//! each kernel thread, whose child it becomes, how many pids that takes,
//! and what init's `wait()` pays when stop_machine's threads die
//! (seed 003, "Too many threads").
//!
//! # Who is whose child (2.6.20, faithful to the code of the time)
//!
//! `kthread_create()` hands creation to the single-threaded `kthread`
//! workqueue (`helper_wq`), whose worker calls `kernel_thread(...,
//! SIGCHLD)`; before that workqueue exists, the work function runs in the
//! caller's context. Early in boot the caller is init (pid 1, still in the
//! kernel), so:
//!
//! ```text
//!   Stage::SmpBoot    migration/N, ksoftirqd/N, watchdog/N   children of init
//!   Stage::EarlyInit  events/N (init_workqueues), khelper    children of init
//!   (the kthread workqueue's own thread)                     child of init
//!   Stage::Initcall   kblockd/N, aio/N, xfs..., kswapdN, ... children of the kthread
//!                                                            worker, which sets SIGCHLD
//!                                                            to SIG_IGN: reaped at exit
//!   user daemons                                             children of init
//! ```
//!
//! A module load calls `stop_machine_run()`: a `kstopmachine` kthread
//! (child of the kthread worker) creates `kernel_thread(stopmachine, cpu,
//! CLONE_KERNEL)` for every other CPU, children of `kstopmachine` with
//! `exit_signal` 0. They exit as zombies nobody is told about; when
//! `kstopmachine` exits, they are reparented to the tail of init's list and
//! init is signalled: its `wait()` loop walks past every long-lived child
//! of init for each of them.
//!
//! # The alternatives (values of [`BootConfig`])
//!
//! * [`ZombiePlacement`]: Holt's exiting-to-the-head, Linus's zombie list.
//! * [`Parentage::Kthreadd`]: kernel threads are children of kthreadd
//!   (2.6.22, "kthread: don't depend on work queues"), which ignores
//!   SIGCHLD; stop_machine's threads are kthreads too (as 2.6.27 made
//!   them). Nothing of the kernel's lands on init's list.
//! * `lazy_workqueues`: per-CPU workqueues start their core thread only
//!   (Axboe's lazy workqueues, the rules of `klab_workqueue::rules`), on an
//!   idle machine.
//! * [`Stopper::Persistent`]: one stopper thread per CPU for good
//!   (`cpu_stop`, 2.6.35, which took over the `migration/N` threads): no
//!   thread is created per module load.

use klab_workqueue::rules::Kind as WqKind;

use super::stop_machine::{StopRun, stop_machine};
use super::task::{
    ExitSignal, Pid, ReapResult, TaskError, TaskId, TaskKind, TaskTable, ZombiePlacement,
};

/// When in boot a kernel thread is created, which decides its parent in
/// 2.6.20.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// As each CPU comes up (`do_pre_smp_initcalls()`, `smp_init()`):
    /// created in init's context.
    SmpBoot,
    /// In `do_basic_setup()` before the initcalls (`init_workqueues()`,
    /// `usermodehelper_init()`): still in init's context.
    EarlyInit,
    /// From the initcalls on: through the kthread workqueue.
    Initcall,
}

/// How many of a kernel thread there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Per {
    /// One per CPU (`name/N`).
    Cpu,
    /// One per NUMA node (`nameN`).
    Node,
    /// One.
    Machine,
}

/// One kind of kernel thread in the boot list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kthread {
    /// Its name, as `ps` shows it without the `/N`.
    pub name: &'static str,
    /// How many.
    pub per: Per,
    /// When it is created.
    pub stage: Stage,
    /// It is a workqueue's worker (`create_workqueue()` for `Per::Cpu`),
    /// which a lazy workqueue would start only on its core CPU.
    pub workqueue: bool,
}

/// Who parents kernel threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Parentage {
    /// 2.6.20, as in the module header.
    #[default]
    Linux2620,
    /// kthreadd (2.6.22): every kernel thread, stop_machine's included, is
    /// a child of kthreadd, which reaps them at exit.
    Kthreadd,
}

/// How stop_machine gets its per-CPU threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Stopper {
    /// Created for each call and exiting after it (2.6.20).
    #[default]
    PerCall,
    /// One persistent stopper per CPU (`cpu_stop`, 2.6.35, in the
    /// `migration/N` threads): nothing created per call.
    Persistent,
}

/// A machine and the kernel it boots.
#[derive(Clone, Debug)]
pub struct BootConfig {
    /// Logical CPUs.
    pub nr_cpus: usize,
    /// CPUs per NUMA node (for `Per::Node` threads).
    pub cpus_per_node: usize,
    /// Kernel threads, in creation order within each stage.
    pub kthreads: Vec<Kthread>,
    /// User processes that end up as init's children (daemons, gettys).
    pub user_children_of_init: usize,
    /// Who parents kernel threads.
    pub parentage: Parentage,
    /// Where zombies wait.
    pub placement: ZombiePlacement,
    /// Per-CPU workqueues are lazy: only the core CPU's thread at boot.
    pub lazy_workqueues: bool,
    /// How stop_machine gets its threads.
    pub stopper: Stopper,
    /// The pid limit.
    pub pid_max: Pid,
    /// Tasks take `task_struct` objects from SLUB and kernel stacks
    /// ([`TaskTable::with_slab`]).
    pub task_slab: bool,
}

impl BootConfig {
    /// NUMA nodes: `ceil(nr_cpus / cpus_per_node)`.
    pub fn nr_nodes(&self) -> usize {
        self.nr_cpus.div_ceil(self.cpus_per_node.max(1))
    }

    /// Instances of `k` this machine boots: for a lazy per-CPU workqueue,
    /// what `klab_workqueue::rules` starts at creation.
    pub fn instances(&self, k: &Kthread) -> usize {
        match k.per {
            Per::Cpu if k.workqueue && self.lazy_workqueues => {
                WqKind::Lazy.initial_threads(self.nr_cpus)
            }
            Per::Cpu if k.workqueue => WqKind::PerCpu.initial_threads(self.nr_cpus),
            Per::Cpu => self.nr_cpus,
            Per::Node => self.nr_nodes(),
            Per::Machine => 1,
        }
    }
}

/// What booting did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BootReport {
    /// Tasks alive after boot (init, kernel threads, daemons).
    pub tasks: usize,
    /// Kernel threads alive after boot.
    pub kernel_threads: usize,
    /// Forks refused for want of a pid: the boot failed if non-zero.
    pub failed_forks: u64,
    /// Nodes on init's children list.
    pub init_children: usize,
}

impl BootReport {
    /// Whether every task of the boot got a pid.
    pub fn booted(&self) -> bool {
        self.failed_forks == 0
    }
}

/// What one module load did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModuleLoad {
    /// Threads created for the load (kstopmachine and the stoppers).
    pub threads_created: u64,
    /// Thread creations refused for want of a pid.
    pub failed_forks: u64,
    /// The stop_machine run (absent if thread creation failed).
    pub stop: Option<StopRun>,
    /// init's `wait()` loop after the load.
    pub init_wait: ReapResult,
}

/// A booted kernel: its task table and who is who.
#[derive(Clone, Debug)]
pub struct Kernel {
    cfg: BootConfig,
    tasks: TaskTable,
    init: TaskId,
    /// The parent of kernel threads created from the initcalls on: the
    /// kthread workqueue's worker (2.6.20) or kthreadd.
    kthread_parent: TaskId,
    report: BootReport,
}

impl Kernel {
    /// Boots `cfg`: init, the kernel threads in stage order, the daemons.
    /// A fork refused for want of a pid is counted and boot goes on (the
    /// report says it failed).
    pub fn boot(cfg: BootConfig) -> Kernel {
        let mut tasks = if cfg.task_slab {
            TaskTable::with_slab(cfg.pid_max, cfg.placement)
        } else {
            TaskTable::new(cfg.pid_max, cfg.placement)
        };
        let mut failed = 0;
        let init = tasks.spawn_init("init").expect("a fresh pid map has pid 1");
        let early_parent = match cfg.parentage {
            Parentage::Linux2620 => init,
            Parentage::Kthreadd => {
                let k = tasks
                    .spawn_orphan_kthread("kthreadd")
                    .expect("a fresh pid map has pid 2");
                tasks.ignore_sigchld(k);
                k
            }
        };
        let mut fork_k = |tasks: &mut TaskTable, parent: TaskId, name: String| match tasks.fork(
            parent,
            &name,
            TaskKind::Kernel,
            ExitSignal::Sigchld,
        ) {
            Ok(id) => Some(id),
            Err(TaskError::NoPid { .. } | TaskError::NoMemory) => {
                failed += 1;
                None
            }
        };
        let name_of = |k: &Kthread, i: usize| match k.per {
            Per::Cpu => format!("{}/{i}", k.name),
            Per::Node => format!("{}{i}", k.name),
            Per::Machine => k.name.to_owned(),
        };
        // SmpBoot: CPU by CPU, each CPU's threads in list order.
        let smp: Vec<&Kthread> = cfg
            .kthreads
            .iter()
            .filter(|k| k.stage == Stage::SmpBoot)
            .collect();
        for cpu in 0..cfg.nr_cpus {
            for k in &smp {
                let n = cfg.instances(k);
                if cpu < n {
                    fork_k(&mut tasks, early_parent, name_of(k, cpu));
                }
            }
        }
        for k in cfg.kthreads.iter().filter(|k| k.stage == Stage::EarlyInit) {
            for i in 0..cfg.instances(k) {
                fork_k(&mut tasks, early_parent, name_of(k, i));
            }
        }
        let kthread_parent = match cfg.parentage {
            Parentage::Kthreadd => early_parent,
            Parentage::Linux2620 => match fork_k(&mut tasks, init, "kthread".to_owned()) {
                Some(h) => {
                    tasks.ignore_sigchld(h);
                    h
                }
                // No pid for the helper: later threads cannot be created
                // anyway; keep init as a stand-in parent.
                None => init,
            },
        };
        for k in cfg.kthreads.iter().filter(|k| k.stage == Stage::Initcall) {
            for i in 0..cfg.instances(k) {
                fork_k(&mut tasks, kthread_parent, name_of(k, i));
            }
        }
        for i in 0..cfg.user_children_of_init {
            if let Err(TaskError::NoPid { .. } | TaskError::NoMemory) = tasks.fork(
                init,
                &format!("daemon{i}"),
                TaskKind::User,
                ExitSignal::Sigchld,
            ) {
                failed += 1;
            }
        }
        let report = BootReport {
            tasks: tasks.nr_tasks(),
            kernel_threads: tasks.count_kind(TaskKind::Kernel),
            failed_forks: failed,
            init_children: tasks.children(init).len(),
        };
        Kernel {
            cfg,
            tasks,
            init,
            kthread_parent,
            report,
        }
    }

    /// What booting did.
    pub fn boot_report(&self) -> &BootReport {
        &self.report
    }

    /// The task table.
    pub fn tasks(&self) -> &TaskTable {
        &self.tasks
    }

    /// init's slot.
    pub fn init(&self) -> TaskId {
        self.init
    }

    /// Loads a module from CPU `caller`: `stop_machine_run()` as the
    /// configuration has it, the threads' exit, and init's `wait()` loop.
    pub fn load_module(&mut self, caller: usize) -> ModuleLoad {
        let mut load = ModuleLoad::default();
        let n = self.cfg.nr_cpus;
        let caller = caller.min(n.saturating_sub(1));
        if self.cfg.stopper == Stopper::Persistent {
            load.stop = Some(stop_machine(n, caller, |_| {}));
            load.init_wait = self.tasks.reap_all(self.init);
            return load;
        }
        let kstop = match self.tasks.fork(
            self.kthread_parent,
            "kstopmachine",
            TaskKind::Kernel,
            ExitSignal::Sigchld,
        ) {
            Ok(id) => id,
            Err(_) => {
                load.failed_forks += 1;
                return load;
            }
        };
        load.threads_created += 1;
        // 2.6.20: kernel_thread(stopmachine, CLONE_KERNEL) from kstopmachine;
        // with kthreadd, kthreads of kthreadd.
        let (parent, sig) = match self.cfg.parentage {
            Parentage::Linux2620 => (kstop, ExitSignal::Zero),
            Parentage::Kthreadd => (self.kthread_parent, ExitSignal::Sigchld),
        };
        let mut stoppers = Vec::with_capacity(n);
        for cpu in (0..n).filter(|&c| c != caller) {
            match self
                .tasks
                .fork(parent, &format!("stopmachine/{cpu}"), TaskKind::Kernel, sig)
            {
                Ok(id) => {
                    load.threads_created += 1;
                    stoppers.push(id);
                }
                Err(_) => {
                    load.failed_forks += 1;
                    break;
                }
            }
        }
        if load.failed_forks == 0 {
            load.stop = Some(stop_machine(n, caller, |_| {}));
        }
        for id in stoppers {
            self.tasks.exit(id);
        }
        self.tasks.exit(kstop);
        load.init_wait = self.tasks.reap_all(self.init);
        load
    }

    /// Checks the task table's invariants.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        self.tasks.assert_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::task::PID_MAX_DEFAULT;

    /// A two-CPU machine: three per-CPU kthreads at CPU bring-up, the
    /// keventd workqueue and khelper in early init, kblockd later, two
    /// daemons.
    fn small(parentage: Parentage, placement: ZombiePlacement, lazy: bool) -> BootConfig {
        let k = |name, per, stage, workqueue| Kthread {
            name,
            per,
            stage,
            workqueue,
        };
        BootConfig {
            nr_cpus: 2,
            cpus_per_node: 2,
            kthreads: vec![
                k("migration", Per::Cpu, Stage::SmpBoot, false),
                k("ksoftirqd", Per::Cpu, Stage::SmpBoot, false),
                k("watchdog", Per::Cpu, Stage::SmpBoot, false),
                k("events", Per::Cpu, Stage::EarlyInit, true),
                k("khelper", Per::Machine, Stage::EarlyInit, true),
                k("kblockd", Per::Cpu, Stage::Initcall, true),
            ],
            user_children_of_init: 2,
            parentage,
            placement,
            lazy_workqueues: lazy,
            stopper: Stopper::PerCall,
            pid_max: PID_MAX_DEFAULT,
            task_slab: false,
        }
    }

    #[test]
    fn a_small_2_6_20_machine_by_hand() {
        // init's children after boot, in order:
        //   migration/0 ksoftirqd/0 watchdog/0 migration/1 ksoftirqd/1
        //   watchdog/1 events/0 events/1 khelper kthread daemon0 daemon1
        // = 12 nodes. kblockd/0, kblockd/1 are the kthread worker's.
        // Tasks: init + 12 + 2 kblockd = 15.
        let mut k = Kernel::boot(small(Parentage::Linux2620, ZombiePlacement::InPlace, false));
        k.assert_invariants();
        assert_eq!(
            *k.boot_report(),
            BootReport {
                tasks: 15,
                kernel_threads: 12,
                failed_forks: 0,
                init_children: 12
            }
        );
        let names: Vec<String> = k
            .tasks()
            .children_pids(k.init())
            .iter()
            .map(|&p| k.tasks().task(k.tasks().find(p).unwrap()).name.clone())
            .collect();
        assert_eq!(names[..3], ["migration/0", "ksoftirqd/0", "watchdog/0"]);
        assert_eq!(names[9..], ["kthread", "daemon0", "daemon1"]);
        // Module load from CPU 0: kstopmachine + stopmachine/1 (2 threads).
        // stopmachine/1 exits as a zombie of kstopmachine; kstopmachine
        // exits (reaped by the kthread worker), stopmachine/1 moves to the
        // tail of init's list: node 13. wait #1 looks at 13 nodes and reaps
        // it; wait #2 looks at the 12 others and finds nothing: 25.
        let load = k.load_module(0);
        k.assert_invariants();
        assert_eq!(load.threads_created, 2);
        assert_eq!(
            load.init_wait,
            ReapResult {
                reaped: 1,
                calls: 2,
                visited: 13 + 12
            }
        );
        let stop = load.stop.unwrap();
        assert_eq!((stop.fn_runs, stop.cpus_held_at_fn), (1, 2));
        assert_eq!(k.boot_report().tasks, k.tasks().nr_tasks(), "all reaped");
    }

    #[test]
    fn the_fixes_on_the_small_machine_by_hand() {
        // Holt: the reparented zombie goes to the head: 1 + 12 = 13.
        let mut k = Kernel::boot(small(Parentage::Linux2620, ZombiePlacement::Head, false));
        assert_eq!(k.load_module(0).init_wait.visited, 1 + 12);
        k.assert_invariants();
        // Zombie list: 1 node for the zombie, 0 for the empty list: 1.
        let mut k = Kernel::boot(small(
            Parentage::Linux2620,
            ZombiePlacement::ZombieList,
            false,
        ));
        assert_eq!(k.load_module(0).init_wait.visited, 1);
        k.assert_invariants();
        // kthreadd: init has the two daemons only; stop_machine's thread
        // is reaped by kthreadd; init's loop is not even woken, but if it
        // runs it looks at 2 nodes and finds nothing.
        let mut k = Kernel::boot(small(Parentage::Kthreadd, ZombiePlacement::InPlace, false));
        assert_eq!(k.boot_report().init_children, 2);
        let load = k.load_module(0);
        assert_eq!(
            load.init_wait,
            ReapResult {
                reaped: 0,
                calls: 1,
                visited: 2
            }
        );
        k.assert_invariants();
        // Lazy workqueues: events starts events/0 only, kblockd kblockd/0
        // only: init has 11 children; 12 + 11 = 23.
        let mut k = Kernel::boot(small(Parentage::Linux2620, ZombiePlacement::InPlace, true));
        assert_eq!(k.boot_report().init_children, 11);
        assert_eq!(k.boot_report().tasks, 13);
        assert_eq!(k.load_module(0).init_wait.visited, 12 + 11);
        k.assert_invariants();
    }

    #[test]
    fn a_persistent_stopper_creates_nothing_per_load() {
        let mut cfg = small(Parentage::Kthreadd, ZombiePlacement::InPlace, false);
        cfg.stopper = Stopper::Persistent;
        let mut k = Kernel::boot(cfg);
        let load = k.load_module(1);
        assert_eq!(load.threads_created, 0);
        assert_eq!(load.stop.unwrap().cpus_held_at_fn, 2);
    }

    #[test]
    fn boot_fails_when_the_threads_outnumber_the_pids() {
        // pid_max 12: pids 1..=11. init takes 1; the 2-CPU list wants 14
        // more tasks: 10 get pids, 4 forks fail.
        let mut cfg = small(Parentage::Linux2620, ZombiePlacement::InPlace, false);
        cfg.pid_max = 12;
        let k = Kernel::boot(cfg);
        assert_eq!(k.boot_report().tasks, 11);
        assert_eq!(k.boot_report().failed_forks, 4);
        assert!(!k.boot_report().booted());
        k.assert_invariants();
    }
}
