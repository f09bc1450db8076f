//! `klab-workqueue`: the Linux workqueue of the 2.6.2x kernels, and Jens
//! Axboe's lazy workqueues, on real threads.
//!
//! Mirrors kernel/workqueue.c as of 2.6.31 (before concurrency-managed
//! workqueues, 2.6.36): `create_workqueue()`, `create_singlethread_workqueue()`,
//! `queue_work()`, `queue_work_on()`, `queue_delayed_work()`,
//! `flush_workqueue()`, `flush_work()`, `cancel_work_sync()`,
//! `cancel_delayed_work()`, the keventd queue and `schedule_work()`; and
//! the lazy workqueue of "[PATCH 0/6] Lazy workqueues" (LKML 2009-08-20),
//! described in seed 001 ("Lazy workqueues") as the answer to seed 003's
//! "Too many threads".
//!
//! # What it is
//!
//! A workqueue is a set of lists of *work items* (functions to run later)
//! and the threads that run them, one list per logical CPU:
//!
//! ```text
//!   Workqueue "kblockd", 4 CPUs (create_workqueue)
//!     cpu 0: [w3][w7]   <- kblockd/0 runs them FIFO
//!     cpu 1: []         <- kblockd/1 sleeps
//!     cpu 2: [w1]       <- kblockd/2
//!     cpu 3: []         <- kblockd/3
//!
//!   Workqueue "rpciod", 4 CPUs (create_lazy_workqueue)
//!     cpu 0: [w5 for cpu 2]   <- rpciod/0, the core thread: creates rpciod/2
//!     cpu 1: (no thread)         and moves w5 there
//!     cpu 2: (no thread yet)
//!     cpu 3: [w9]             <- rpciod/3, created earlier; exits after an
//!                                idle period
//! ```
//!
//! * **Per-CPU** ([`Workqueue::create`]): one thread per logical CPU, all
//!   started at creation. The number of logical CPUs is a parameter, so a
//!   64-CPU machine is modelled on a 2-core host. Work queued with
//!   [`Workqueue::queue_work`] goes to the submitting thread's CPU; how a
//!   host thread gets a CPU is described in [`cpu`].
//! * **Single-threaded** ([`Workqueue::create_singlethread`]): one list and
//!   one thread, whatever CPU queues.
//! * **Lazy** ([`Workqueue::create_lazy`]): created with the core CPU's
//!   thread alone. Work for a CPU without a thread goes on the core list,
//!   and the core thread creates that CPU's thread and moves the work to
//!   it (if creation is refused, it runs the work itself). A thread other
//!   than the core's exits after an idle period. [`Workqueue::nr_threads`]
//!   gives the live thread count at any time.
//! * **keventd** ([`keventd()`], [`schedule_work`]): the shared default
//!   per-CPU queue.
//!
//! # Semantics kept from the kernel
//!
//! * A work item is never on a queue twice: queueing a pending item
//!   returns false and does nothing (the PENDING bit, [`work`]).
//! * Each list runs FIFO. PENDING is cleared just before the function
//!   runs, so it may queue itself again, possibly on another CPU, where
//!   it can run concurrently with itself (no non-reentrancy before 3.7).
//! * [`Workqueue::flush`] waits for everything queued before the call on
//!   every CPU, not for later work; [`flush_work`] waits for one item.
//! * [`cancel_work_sync`] removes a queued item and waits for a running
//!   one, also when it requeues itself; [`cancel_delayed_work`] only
//!   disarms the timer and does not wait.
//! * Flushing a workqueue from one of its own items would wait for itself:
//!   the kernel deadlocks; klab panics with a message saying so.
//!
//! # Structure and locking
//!
//! ```text
//!   Workqueue ─Arc─► WqShared            (struct workqueue_struct)
//!                      id, name, kind, nr_cpus, max_threads   I
//!                      idle_timeout_ns, threads.{live,..}      A
//!                      cwqs[i]: Cwq                           (struct cpu_workqueue_struct)
//!                        lock: Mutex<CwqState>                 L
//!                          worklist, last_seq, retired, current, moved_out,
//!                          timers, worker, sleeping, should_stop, ...
//!   Work ─Arc─► WorkInner                (struct work_struct)
//!                 func     I
//!                 pending  A             (the PENDING bit)
//!                 state    W: Mutex      (wq/cwq it was last queued on, linked seq, timer)
//! ```
//!
//! Field rules, as kernel/workqueue.c tags them:
//!
//! * `I`: set at creation, read-only afterwards.
//! * `L`: the list's lock (`Cwq::lock`) held.
//! * `A`: atomic.
//! * `W`: the work item's `state` lock held; `linked` is written with both
//!   the list's lock and `state` held.
//!
//! Lock order: **list lock → work `state`**. Only the lazy core thread holds
//! two list locks, the core's first, then a target CPU's. Nothing is called
//! with a lock held: the worker drops its list lock around each function.
//! `Threads::gate` is a leaf lock used only for wake-ups.
//!
//! Differences from the kernel, each for a reason given where it is made:
//! flush waits on per-list sequence numbers instead of queueing barrier
//! works ([`cwq`] header); a cancelled item leaves a tombstone the worker
//! skips instead of being unlinked from the middle of the list; timers are
//! kept and fired by the worker of the CPU they are for (the kernel's are
//! per-CPU timer-wheel entries run in softirq); a panicking work function is
//! caught and counted and the worker lives on.
//!
//! The synchronisation primitives come from [`primitive`], so
//! `RUSTFLAGS="--cfg loom" cargo test -p klab-workqueue --release --lib loom`
//! model-checks the core (the `loom_tests` module).
#![forbid(unsafe_code)]

pub mod cpu;
mod cwq;
mod error;
#[cfg(not(loom))]
mod keventd;
mod primitive;
mod queue;
pub mod rules;
pub mod work;
mod worker;

pub use error::CreateError;
#[cfg(not(loom))]
pub use keventd::{
    flush_scheduled_work, keventd, schedule_delayed_work, schedule_on_each_cpu, schedule_work,
    schedule_work_on,
};
pub use queue::{
    Builder, DEFAULT_IDLE_TIMEOUT, Stats, Workqueue, cancel_delayed_work, cancel_delayed_work_sync,
    cancel_work_sync, flush_delayed_work, flush_work,
};
pub use rules::Kind;
pub use work::{DelayedWork, Work};

#[cfg(all(test, not(loom)))]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;
