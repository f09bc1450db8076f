//! The rules that decide how many threads a workqueue has and where a work
//! item goes, as pure functions of the queue's kind and state.
//!
//! The real workqueue ([`crate::Workqueue`]) takes every such decision
//! through this module, and so does the deterministic model of the thread
//! lifecycle in `klab-model` (`kernel/workqueue.rs`), which replays the
//! lazy-workqueue measurement of seed 001 in virtual time. One set of
//! rules, two drivers: the model's thread counts are what these rules give,
//! and the real threads cross-check them.
//!
//! | rule | kernel | here |
//! | --- | --- | --- |
//! | threads at creation | `__create_workqueue_key()`: one per online CPU, or one | [`Kind::initial_threads`] |
//! | which list a CPU uses | `wq_per_cpu()`: the CPU's, or `singlethread_cpu`'s | [`Kind::cwq_index`] |
//! | where queued work goes | `queue_work_on()`; lazy: the core list if the CPU has no thread | [`route`] |
//! | what the core thread does with it | lazy patch: create the thread and move the work, or run it on the core CPU | [`core_move`] |
//! | when a thread exits | lazy patch: idle for a certain time, never the core | [`idle_expired`], [`Kind::thread_can_exit`] |
//!
//! Times are plain `u64` counts in whatever unit the caller uses
//! (nanoseconds for real threads, ticks in the model), the same unit for
//! every argument.
//!
//! Lazy workqueues were proposed by Jens Axboe, "[PATCH 0/6] Lazy
//! workqueues", LKML 2009-08-20, and never merged (cmwq replaced them in
//! 2.6.36); the rules follow the cover letter (see the crate header).

/// What kind of workqueue: the constructor it was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `create_workqueue()`: one list and one thread per CPU.
    PerCpu,
    /// `create_singlethread_workqueue()`: one list, one thread, whatever CPU
    /// queues.
    SingleThread,
    /// `create_lazy_workqueue()`: one list per CPU, but only the core CPU's
    /// thread is started; the others are created on demand and exit when
    /// idle.
    Lazy,
}

/// The CPU whose thread a lazy workqueue starts with and never stops (the
/// patch's "core thread"; the kernel's `singlethread_cpu`, the first CPU).
pub const LAZY_CORE_CPU: usize = 0;

impl Kind {
    /// Per-CPU lists (`cpu_workqueue_struct`s) a queue of this kind has on
    /// a machine of `nr_cpus` CPUs.
    pub fn nr_cwqs(self, nr_cpus: usize) -> usize {
        match self {
            Kind::PerCpu | Kind::Lazy => nr_cpus,
            Kind::SingleThread => 1,
        }
    }

    /// Threads started when the queue is created: every CPU's
    /// (`create_workqueue`), one (`create_singlethread_workqueue`), or the
    /// core CPU's alone (lazy).
    pub fn initial_threads(self, nr_cpus: usize) -> usize {
        match self {
            Kind::PerCpu => nr_cpus,
            Kind::SingleThread | Kind::Lazy => 1,
        }
    }

    /// The list work queued for `cpu` goes to before any lazy rerouting
    /// (mirrors `wq_per_cpu()`: a single-threaded queue has one list).
    pub fn cwq_index(self, cpu: usize) -> usize {
        match self {
            Kind::PerCpu | Kind::Lazy => cpu,
            Kind::SingleThread => 0,
        }
    }

    /// Whether the thread of list `cwq` may exit while the queue lives:
    /// only a lazy queue's threads, and never its core thread.
    pub fn thread_can_exit(self, cwq: usize) -> bool {
        self == Kind::Lazy && cwq != LAZY_CORE_CPU
    }

    /// The name of the kind as the kernel's constructor spells it.
    pub fn constructor(self) -> &'static str {
        match self {
            Kind::PerCpu => "create_workqueue",
            Kind::SingleThread => "create_singlethread_workqueue",
            Kind::Lazy => "create_lazy_workqueue",
        }
    }
}

/// Where `queue_work_on(cpu)` links a work item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// On list `cwq`, whose thread runs it.
    Direct(usize),
    /// On the core CPU's list, tagged for `target`: the core thread creates
    /// `target`'s thread if it still has none, and moves the work there.
    ViaCore {
        /// The lazy queue's core CPU.
        core: usize,
        /// The CPU the work was queued for.
        target: usize,
    },
}

/// Where work queued for `cpu` goes, given whether that CPU's list has a
/// live thread. Per-CPU and single-threaded queues always have one; a lazy
/// queue sends work for a thread-less CPU through its core thread.
pub fn route(kind: Kind, cpu: usize, target_has_thread: bool) -> Route {
    let cwq = kind.cwq_index(cpu);
    if kind != Kind::Lazy || cwq == LAZY_CORE_CPU || target_has_thread {
        Route::Direct(cwq)
    } else {
        Route::ViaCore {
            core: LAZY_CORE_CPU,
            target: cwq,
        }
    }
}

/// What a lazy queue's core thread does with a work item tagged for
/// another CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// The target CPU has a thread by now: move the work to its list.
    ToTarget,
    /// Create the target CPU's thread, then move the work to it.
    Spawn,
    /// Thread creation is not possible: run the work on the core CPU
    /// ("Should task creation fail, the queued work will be executed on
    /// the core CPU instead").
    RunOnCore,
}

/// The core thread's decision for a work item tagged for another CPU.
/// `may_create` is whether a new thread may be created (see
/// [`may_create`]).
pub fn core_move(target_has_thread: bool, may_create: bool) -> Move {
    if target_has_thread {
        Move::ToTarget
    } else if may_create {
        Move::Spawn
    } else {
        Move::RunOnCore
    }
}

/// Whether one more thread may be created when `live` threads exist and
/// at most `max` are allowed (`None`: no limit). A refused creation is how
/// klab exercises the patch's fallback, and how a machine out of process
/// ids (pid_max, seed 003) would refuse `kthread_create()`.
pub fn may_create(live: usize, max: Option<usize>) -> bool {
    max.is_none_or(|m| live < m)
}

/// The idle-exit rule: a lazy thread that may exit
/// ([`Kind::thread_can_exit`]) does so once it has been idle for at least
/// `timeout`.
pub fn idle_expired(idle_for: u64, timeout: u64) -> bool {
    idle_for >= timeout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_queues_start_a_thread_per_cpu_lazy_ones_start_one() {
        assert_eq!(Kind::PerCpu.initial_threads(64), 64);
        assert_eq!(Kind::SingleThread.initial_threads(64), 1);
        assert_eq!(Kind::Lazy.initial_threads(64), 1);
        assert_eq!(Kind::SingleThread.nr_cwqs(64), 1);
        assert_eq!(Kind::Lazy.nr_cwqs(64), 64);
    }

    #[test]
    fn lazy_work_for_a_threadless_cpu_goes_through_the_core() {
        assert_eq!(
            route(Kind::Lazy, 5, false),
            Route::ViaCore { core: 0, target: 5 }
        );
        assert_eq!(route(Kind::Lazy, 5, true), Route::Direct(5));
        assert_eq!(route(Kind::Lazy, LAZY_CORE_CPU, false), Route::Direct(0));
        assert_eq!(route(Kind::PerCpu, 5, false), Route::Direct(5));
        assert_eq!(route(Kind::SingleThread, 5, true), Route::Direct(0));
    }

    #[test]
    fn the_core_runs_work_itself_when_no_thread_may_be_created() {
        assert_eq!(core_move(true, false), Move::ToTarget);
        assert_eq!(core_move(false, true), Move::Spawn);
        assert_eq!(core_move(false, false), Move::RunOnCore);
        assert!(may_create(3, None));
        assert!(may_create(3, Some(4)));
        assert!(!may_create(4, Some(4)));
    }

    #[test]
    fn only_lazy_non_core_threads_exit_and_only_after_the_timeout() {
        assert!(!Kind::Lazy.thread_can_exit(LAZY_CORE_CPU));
        assert!(Kind::Lazy.thread_can_exit(1));
        assert!(!Kind::PerCpu.thread_can_exit(1));
        assert!(!idle_expired(9, 10));
        assert!(idle_expired(10, 10));
    }
}
