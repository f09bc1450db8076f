//! Workqueues: creation, queueing, flushing, cancelling, destruction
//! (kernel/workqueue.c: `__create_workqueue_key()`, `queue_work_on()`,
//! `queue_delayed_work_on()`, `flush_workqueue()`, `flush_work()`,
//! `cancel_work_sync()`, `cancel_delayed_work()`, `destroy_workqueue()`).

use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::time::{Duration, Instant};

use crate::cpu;
use crate::cwq::{Cwq, CwqState, Slot, Timer};
use crate::error::CreateError;
use crate::primitive::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::primitive::{Arc, Condvar, Mutex, MutexGuard, lock, thread};
use crate::rules::{self, Kind, LAZY_CORE_CPU, Route};
use crate::work::{DelayedWork, TimerKey, Work, WorkInner};
use crate::worker;

/// Ids for workqueues and timers. std's even under loom: they only name
/// things and are no part of the state loom checks.
static NEXT_ID: StdAtomicU64 = StdAtomicU64::new(1);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What the workqueue's threads and lists share (kernel:
/// `struct workqueue_struct`). Aligned so the `Arc` reference counts, which
/// every queueing and every finished item touch, sit on another cache line
/// than the read-mostly fields every worker reads.
#[repr(align(128))]
pub(crate) struct WqShared {
    /// I: unique id, recorded in work items and worker threads.
    pub(crate) id: u64,
    /// I: the name; threads are `name/cpu` (or `name`).
    pub(crate) name: String,
    /// I: per-CPU, single-threaded or lazy.
    pub(crate) kind: Kind,
    /// I: logical CPUs.
    pub(crate) nr_cpus: usize,
    /// I: the lists, `kind.nr_cwqs(nr_cpus)` of them.
    pub(crate) cwqs: Box<[Cwq]>,
    /// A: lazy idle timeout in nanoseconds.
    idle_timeout_ns: AtomicU64,
    /// I: lazy: at most this many live threads (`None`: no limit).
    pub(crate) max_threads: Option<usize>,
    /// A + T: thread accounting.
    pub(crate) threads: Threads,
}

impl WqShared {
    /// The lazy idle timeout.
    pub(crate) fn idle_timeout(&self) -> Duration {
        Duration::from_nanos(self.idle_timeout_ns.load(Ordering::Relaxed))
    }
}

/// Thread accounting. A: the counters are atomics; T: `gate` serialises
/// the wake-ups of [`Workqueue::wait_threads`] callers.
pub(crate) struct Threads {
    live: AtomicUsize,
    created: AtomicU64,
    exited_idle: AtomicU64,
    spawn_failures: AtomicU64,
    ran_on_core: AtomicU64,
    gate: Mutex<()>,
    changed: Condvar,
}

impl Threads {
    fn new() -> Threads {
        Threads {
            live: AtomicUsize::new(0),
            created: AtomicU64::new(0),
            exited_idle: AtomicU64::new(0),
            spawn_failures: AtomicU64::new(0),
            ran_on_core: AtomicU64::new(0),
            gate: Mutex::new(()),
            changed: Condvar::new(),
        }
    }

    /// Live threads now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    fn notify(&self) {
        let _g = lock(&self.gate);
        self.changed.notify_all();
    }

    /// A thread is being started (counted before it runs).
    pub(crate) fn started(&self) {
        self.live.fetch_add(1, Ordering::AcqRel);
        self.created.fetch_add(1, Ordering::Relaxed);
        self.notify();
    }

    /// Starting it failed.
    pub(crate) fn failed(&self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.created.fetch_sub(1, Ordering::Relaxed);
        self.spawn_failures.fetch_add(1, Ordering::Relaxed);
        self.notify();
    }

    /// A thread returned from its loop (last thing it does).
    pub(crate) fn exited(&self, idle: bool) {
        self.exited_idle
            .fetch_add(u64::from(idle), Ordering::Relaxed);
        self.live.fetch_sub(1, Ordering::AcqRel);
        self.notify();
    }

    /// The lazy core ran an item for a thread it could not create.
    pub(crate) fn ran_on_core(&self) {
        self.ran_on_core.fetch_add(1, Ordering::Relaxed);
    }
}

/// A workqueue: lists of work items and the threads that run them.
///
/// Dropping it is `destroy_workqueue()`: it flushes, then stops and joins
/// its threads. Armed delayed-work timers are cancelled (their items are no
/// longer pending). A workqueue must not be dropped, nor flushed, from one
/// of its own work items: that would wait for itself.
pub struct Workqueue {
    pub(crate) shared: Arc<WqShared>,
}

/// Counters of a workqueue, read at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Threads alive now.
    pub nr_threads: usize,
    /// Threads ever started.
    pub threads_created: u64,
    /// Lazy threads that exited after their idle period.
    pub threads_exited_idle: u64,
    /// Thread creations the host refused.
    pub spawn_failures: u64,
    /// Lazy: items run on the core CPU because no thread could be created.
    pub ran_on_core: u64,
    /// Items run, per list (per CPU; one entry for a single-threaded queue).
    pub runs_per_cpu: Vec<u64>,
    /// Work functions that panicked (caught; the worker lives on).
    pub panicked: u64,
}

/// How to build a [`Workqueue`].
#[derive(Clone, Debug)]
pub struct Builder {
    name: String,
    kind: Kind,
    nr_cpus: usize,
    idle_timeout: Duration,
    max_threads: Option<usize>,
}

/// Default idle period after which a lazy thread exits.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

impl Builder {
    /// A per-CPU workqueue named `name` on `nr_cpus` logical CPUs.
    pub fn new(name: &str, nr_cpus: usize) -> Builder {
        Builder {
            name: name.to_owned(),
            kind: Kind::PerCpu,
            nr_cpus,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_threads: None,
        }
    }

    /// The kind: per-CPU (the default), single-threaded or lazy.
    pub fn kind(mut self, kind: Kind) -> Builder {
        self.kind = kind;
        self
    }

    /// Lazy: how long a thread stays idle before it exits.
    pub fn idle_timeout(mut self, d: Duration) -> Builder {
        self.idle_timeout = d;
        self
    }

    /// Lazy: refuse to create threads beyond `max` live ones; work for a
    /// CPU that then has no thread runs on the core CPU.
    pub fn max_threads(mut self, max: usize) -> Builder {
        self.max_threads = Some(max);
        self
    }

    /// Creates the workqueue and starts its initial threads.
    pub fn build(self) -> Result<Workqueue, CreateError> {
        if self.nr_cpus == 0 {
            return Err(CreateError::NoCpus { name: self.name });
        }
        let now = Instant::now();
        let cwqs: Box<[Cwq]> = (0..self.kind.nr_cwqs(self.nr_cpus))
            .map(|cpu| Cwq::new(cpu, now))
            .collect();
        let shared = Arc::new(WqShared {
            id: next_id(),
            name: self.name,
            kind: self.kind,
            nr_cpus: self.nr_cpus,
            cwqs,
            idle_timeout_ns: AtomicU64::new(
                u64::try_from(self.idle_timeout.as_nanos()).unwrap_or(u64::MAX),
            ),
            max_threads: self.max_threads,
            threads: Threads::new(),
        });
        let wq = Workqueue { shared };
        let first: Vec<usize> = match wq.shared.kind {
            Kind::PerCpu => (0..wq.shared.nr_cpus).collect(),
            Kind::SingleThread => vec![0],
            Kind::Lazy => vec![LAZY_CORE_CPU],
        };
        debug_assert_eq!(
            first.len(),
            wq.shared.kind.initial_threads(wq.shared.nr_cpus)
        );
        for cpu in first {
            let cwq = &wq.shared.cwqs[cpu];
            let mut g = lock(&cwq.lock);
            g.worker = Slot::Running;
            match worker::spawn(&wq.shared, cpu) {
                Ok(h) => g.handle = Some(h),
                Err(source) => {
                    g.worker = Slot::None;
                    drop(g);
                    let name = wq.shared.name.clone();
                    drop(wq); // stops the threads started so far
                    return Err(CreateError::Spawn { name, cpu, source });
                }
            }
        }
        Ok(wq)
    }
}

impl Workqueue {
    /// `create_workqueue(name)`: one thread per logical CPU.
    pub fn create(name: &str, nr_cpus: usize) -> Result<Workqueue, CreateError> {
        Builder::new(name, nr_cpus).build()
    }

    /// `create_singlethread_workqueue(name)`: one thread, whatever CPU
    /// queues. `nr_cpus` only bounds the CPU numbers callers may name.
    pub fn create_singlethread(name: &str, nr_cpus: usize) -> Result<Workqueue, CreateError> {
        Builder::new(name, nr_cpus).kind(Kind::SingleThread).build()
    }

    /// `create_lazy_workqueue(name)`: starts the core CPU's thread only;
    /// other CPUs' threads are created when work is queued for them and
    /// exit after `idle_timeout` without work.
    pub fn create_lazy(
        name: &str,
        nr_cpus: usize,
        idle_timeout: Duration,
    ) -> Result<Workqueue, CreateError> {
        Builder::new(name, nr_cpus)
            .kind(Kind::Lazy)
            .idle_timeout(idle_timeout)
            .build()
    }

    /// A builder, for the less common settings.
    pub fn builder(name: &str, nr_cpus: usize) -> Builder {
        Builder::new(name, nr_cpus)
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.shared.kind
    }

    /// Logical CPUs.
    pub fn nr_cpus(&self) -> usize {
        self.shared.nr_cpus
    }

    /// Threads alive now.
    pub fn nr_threads(&self) -> usize {
        self.shared.threads.live()
    }

    /// Whether CPU `cpu`'s list has a thread now.
    pub fn cpu_has_thread(&self, cpu: usize) -> bool {
        let idx = self.shared.kind.cwq_index(cpu);
        self.shared
            .cwqs
            .get(idx)
            .is_some_and(|c| lock(&c.lock).worker == Slot::Running)
    }

    /// Lazy: changes the idle period and wakes the threads so they apply
    /// it at once.
    pub fn set_idle_timeout(&self, d: Duration) {
        self.shared.idle_timeout_ns.store(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        for c in self.shared.cwqs.iter() {
            let g = lock(&c.lock);
            c.wake(&g);
        }
    }

    /// Waits until the live thread count satisfies `pred`, or `timeout`
    /// passes; returns whether it did. (A bound on a wait, for callers that
    /// watch lazy threads exit; not a measurement.)
    pub fn wait_threads(&self, pred: impl Fn(usize) -> bool, timeout: Duration) -> bool {
        let t = &self.shared.threads;
        let start = Instant::now();
        let mut g = lock(&t.gate);
        loop {
            if pred(t.live()) {
                return true;
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return false;
            }
            g = crate::primitive::wait_timeout(&t.changed, g, left);
        }
    }

    /// Counters now.
    pub fn stats(&self) -> Stats {
        let t = &self.shared.threads;
        let mut runs = Vec::with_capacity(self.shared.cwqs.len());
        let mut panicked = 0;
        for c in self.shared.cwqs.iter() {
            let g = lock(&c.lock);
            runs.push(g.nr_run);
            panicked += g.nr_panicked;
        }
        Stats {
            nr_threads: t.live(),
            threads_created: t.created.load(Ordering::Relaxed),
            threads_exited_idle: t.exited_idle.load(Ordering::Relaxed),
            spawn_failures: t.spawn_failures.load(Ordering::Relaxed),
            ran_on_core: t.ran_on_core.load(Ordering::Relaxed),
            runs_per_cpu: runs,
            panicked,
        }
    }

    /// `queue_work(wq, work)`: queues on the calling thread's logical CPU
    /// (see [`crate::cpu`]). Returns false, doing nothing, if the item was
    /// already pending.
    #[inline]
    pub fn queue_work(&self, work: &Work) -> bool {
        self.queue_work_on(cpu::current_cpu(self.shared.nr_cpus), work)
    }

    /// `queue_work_on(cpu, wq, work)`: queues for CPU `cpu`. Returns false,
    /// doing nothing, if the item was already pending.
    ///
    /// # Panics
    /// If `cpu >= nr_cpus()`.
    #[inline]
    pub fn queue_work_on(&self, cpu: usize, work: &Work) -> bool {
        self.check_cpu(cpu);
        if !work.inner.grab_pending() {
            return false;
        }
        insert(&self.shared, cpu, &work.inner);
        true
    }

    /// `queue_delayed_work(wq, dwork, delay)`: queues on the calling
    /// thread's CPU once `delay` has passed (at once if it is zero).
    /// Returns false if the item was already pending.
    pub fn queue_delayed_work(&self, dwork: &DelayedWork, delay: Duration) -> bool {
        self.queue_delayed_work_on(cpu::current_cpu(self.shared.nr_cpus), dwork, delay)
    }

    /// `queue_delayed_work_on(cpu, wq, dwork, delay)`: arms a timer that
    /// queues the item for `cpu` when it fires. The timer is kept by the
    /// worker of `cpu`'s list (a lazy queue's by its core thread, which
    /// always exists). Returns false if the item was already pending.
    ///
    /// # Panics
    /// If `cpu >= nr_cpus()`.
    pub fn queue_delayed_work_on(&self, cpu: usize, dwork: &DelayedWork, delay: Duration) -> bool {
        if delay.is_zero() {
            return self.queue_work_on(cpu, dwork.work());
        }
        self.check_cpu(cpu);
        let work = &dwork.work().inner;
        if !work.grab_pending() {
            return false;
        }
        let s = &self.shared;
        let target = s.kind.cwq_index(cpu);
        let owner = if s.kind == Kind::Lazy {
            LAZY_CORE_CPU
        } else {
            target
        };
        let cwq = &s.cwqs[owner];
        let mut g = lock(&cwq.lock);
        let key = TimerKey {
            deadline: Instant::now() + delay,
            id: next_id(),
            owner,
        };
        {
            let mut st = lock(&work.state);
            st.wq = Some(s.clone());
            st.cwq = owner;
            st.timer = Some(key);
        }
        let earliest = g.timers.first_key_value().is_none_or(|(k, _)| key < *k);
        g.timers.insert(
            key,
            Timer {
                work: work.clone(),
                target,
            },
        );
        if earliest {
            cwq.wake(&g);
        }
        true
    }

    /// `flush_workqueue(wq)`: waits until every item queued on this
    /// workqueue before the call has finished, on every CPU. Items queued
    /// after the call starts are not waited for.
    ///
    /// # Panics
    /// If called from one of this workqueue's work items (it would wait
    /// for itself; the kernel deadlocks there).
    pub fn flush(&self) {
        let s = &self.shared;
        if let Some((id, _)) = worker::current_worker() {
            assert!(
                id != s.id,
                "flush_workqueue({}) called from its own work item: it would wait for itself",
                s.name
            );
        }
        let targets: Vec<u64> = s.cwqs.iter().map(|c| lock(&c.lock).last_seq).collect();
        for (c, target) in s.cwqs.iter().zip(targets) {
            let g = lock(&c.lock);
            drop(c.wait_until(g, |st| st.flushed(target)));
        }
    }

    /// Checks every list's invariants (see the `cwq` module), each under
    /// its own lock, so it may run while work is queued and run.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        let s = &self.shared;
        for c in s.cwqs.iter() {
            c.assert_invariants(s.kind, s.id);
        }
    }

    #[inline]
    fn check_cpu(&self, cpu: usize) {
        assert!(
            cpu < self.shared.nr_cpus,
            "workqueue {}: CPU {cpu} out of range 0..{}",
            self.shared.name,
            self.shared.nr_cpus
        );
    }
}

impl std::fmt::Debug for Workqueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workqueue")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind)
            .field("nr_cpus", &self.shared.nr_cpus)
            .field("nr_threads", &self.nr_threads())
            .finish()
    }
}

/// Links an item whose PENDING the caller owns, for CPU `cpu` (kernel:
/// `__queue_work()`, with the lazy patch's rerouting).
#[inline]
fn insert(s: &Arc<WqShared>, cpu: usize, work: &Arc<WorkInner>) {
    let idx = s.kind.cwq_index(cpu);
    let cwq = &s.cwqs[idx];
    let mut g = lock(&cwq.lock);
    match rules::route(s.kind, cpu, g.worker == Slot::Running) {
        Route::Direct(_) => {
            let seq = cwq.link(&mut g, s, work, None, None);
            // Drop the lock before alerting the worker: a worker woken or
            // spinning would otherwise run straight into it.
            let sleeping = g.sleeping;
            drop(g);
            cwq.publish(seq);
            if sleeping {
                cwq.more_work.notify_one();
            }
        }
        Route::ViaCore { core, target } => {
            drop(g);
            insert_via_core(s, core, target, work);
        }
    }
}

/// The lazy slow path: the CPU has no thread, so the item goes on the core
/// list tagged for it.
#[cold]
fn insert_via_core(s: &Arc<WqShared>, core: usize, target: usize, work: &Arc<WorkInner>) {
    let cwq = &s.cwqs[core];
    let mut g = lock(&cwq.lock);
    let seq = cwq.link(&mut g, s, work, Some(target), None);
    let sleeping = g.sleeping;
    drop(g);
    cwq.publish(seq);
    if sleeping {
        cwq.more_work.notify_one();
    }
}

/// The workqueue and list an item was last queued on, if any.
fn last_queue(work: &WorkInner) -> Option<(Arc<WqShared>, usize)> {
    let st = lock(&work.state);
    st.wq.clone().map(|wq| (wq, st.cwq))
}

/// Panics if the calling thread is the worker of list `cpu` of `wq`, about
/// to wait for its own current item.
fn check_not_self(wq: &WqShared, cpu: usize, what: &str) {
    assert!(
        worker::current_worker() != Some((wq.id, cpu)),
        "{what} called on the running work item from its own worker ({}/{cpu}): it would wait for itself",
        wq.name
    );
}

/// `flush_work(work)`: waits until the item's last queueing has finished
/// running, if it is still queued or running on the list it was last
/// queued on. Returns whether it waited.
pub fn flush_work(work: &Work) -> bool {
    let (wq, cpu, seq) = loop {
        let Some((wq, cpu)) = last_queue(&work.inner) else {
            return false;
        };
        let g = lock(&wq.cwqs[cpu].lock);
        if let Some(seq) = g.seq_of(wq.id, cpu, &work.inner) {
            break (wq.clone(), cpu, seq);
        }
        // A lazy core may have moved the item to its target CPU between
        // our reading where it was and taking that list's lock: the move
        // relinks it with both locks held, so the item's state now names
        // the new list. Follow it; a move happens once per queueing.
        let moved = last_queue(&work.inner).is_some_and(|(w, c)| w.id == wq.id && c != cpu);
        drop(g);
        if !moved {
            return false;
        }
    };
    // `flushed(seq)` only ever turns true, and a move of entry `seq` keeps
    // it unflushed on this list until the moved instance finishes, so
    // dropping the lock above lost nothing.
    let cwq = &wq.cwqs[cpu];
    let g = lock(&cwq.lock);
    if g.current.as_ref().is_some_and(|c| c.seq == seq) {
        check_not_self(&wq, cpu, "flush_work");
    }
    drop(cwq.wait_until(g, |st| st.flushed(seq)));
    true
}

/// `try_to_grab_pending()`: 1 if the item was linked and is now unlinked
/// (we own PENDING), 0 if it was idle and we now own PENDING, -1 if it is
/// being queued, moved or run right now (try again).
fn try_to_grab_pending(work: &Arc<WorkInner>) -> i32 {
    if work.grab_pending() {
        return 0;
    }
    let Some((wq, cpu)) = last_queue(work) else {
        return -1;
    };
    let cwq = &wq.cwqs[cpu];
    let _g = lock(&cwq.lock);
    let mut st = lock(&work.state);
    if let Some(seq) = st.linked
        && st.is_linked_at(wq.id, cpu, seq)
    {
        // Leave the entry as a tombstone: the worker retires it unrun.
        st.linked = None;
        return 1;
    }
    -1
}

/// `del_timer()` on a delayed item's timer: true if it was armed and is
/// now disarmed (PENDING stays set, owned by the caller).
fn del_timer(work: &Arc<WorkInner>) -> bool {
    let (wq, key) = {
        let st = lock(&work.state);
        match (&st.wq, st.timer) {
            (Some(wq), Some(key)) => (wq.clone(), key),
            _ => return false,
        }
    };
    let cwq = &wq.cwqs[key.owner];
    let mut g = lock(&cwq.lock);
    let mut st = lock(&work.state);
    if st.timer != Some(key) {
        return false;
    }
    st.timer = None;
    drop(st);
    g.timers.remove(&key);
    true
}

/// `wait_on_work()`: waits for every running instance of the item, on
/// every list of the workqueue it was last queued on.
fn wait_on_work(work: &Arc<WorkInner>) {
    let Some((wq, _)) = last_queue(work) else {
        return;
    };
    for (cpu, cwq) in wq.cwqs.iter().enumerate() {
        let g: MutexGuard<'_, CwqState> = lock(&cwq.lock);
        let running = g
            .current
            .as_ref()
            .filter(|c| Arc::ptr_eq(&c.work, work))
            .map(|c| c.seq);
        if let Some(seq) = running {
            check_not_self(&wq, cpu, "cancel_work_sync");
            drop(cwq.wait_until(g, |st| st.retired >= seq));
        }
    }
}

/// `__cancel_work_timer()`: disarm or unlink, wait for running instances,
/// repeat while the item is in flight; then clear PENDING and the queue it
/// remembers (`clear_wq_data()`).
fn cancel_work_timer(work: &Arc<WorkInner>) -> bool {
    loop {
        let ret = if del_timer(work) {
            1
        } else {
            try_to_grab_pending(work)
        };
        wait_on_work(work);
        if ret >= 0 {
            {
                let mut st = lock(&work.state);
                debug_assert!(st.linked.is_none() && st.timer.is_none());
                st.wq = None;
            }
            work.clear_pending();
            return ret == 1;
        }
        thread::yield_now();
    }
}

/// `cancel_work_sync(work)`: removes the item if it is queued (or its
/// timer armed) and waits for any running instance to finish, even one
/// that queues itself again. Returns whether it was pending.
///
/// Unlike the kernel's, it also disarms a delayed item's timer (the kernel
/// spins until the timer fires, then cancels): the outcome is the same.
pub fn cancel_work_sync(work: &Work) -> bool {
    cancel_work_timer(&work.inner)
}

/// `cancel_delayed_work_sync(dwork)`: disarms the timer or removes the
/// queued item, and waits for a running instance. Returns whether it was
/// pending.
pub fn cancel_delayed_work_sync(dwork: &DelayedWork) -> bool {
    cancel_work_timer(&dwork.work().inner)
}

/// `cancel_delayed_work(dwork)`: disarms the timer only, without waiting.
/// Returns true if the timer was armed (the item will not run); false if
/// it has fired already (the item may be queued or running).
pub fn cancel_delayed_work(dwork: &DelayedWork) -> bool {
    let work = &dwork.work().inner;
    if del_timer(work) {
        work.clear_pending();
        true
    } else {
        false
    }
}

/// `flush_delayed_work(dwork)`: if the timer is armed, queue the item now
/// on the CPU the timer was for; then wait for it to finish.
pub fn flush_delayed_work(dwork: &DelayedWork) {
    let work = &dwork.work().inner;
    let armed = {
        let st = lock(&work.state);
        st.wq.clone().zip(st.timer)
    };
    if let Some((wq, key)) = armed {
        let target = {
            let g = lock(&wq.cwqs[key.owner].lock);
            g.timers.get(&key).map(|t| t.target)
        };
        if let (Some(target), true) = (target, del_timer(work)) {
            insert(&wq, target, work);
        }
    }
    flush_work(dwork.work());
}

impl Drop for Workqueue {
    /// `destroy_workqueue()`: flush, disarm timers, stop and join threads.
    fn drop(&mut self) {
        let s = &self.shared;
        if worker::current_worker().is_none_or(|(id, _)| id != s.id) {
            self.flush();
        }
        for c in s.cwqs.iter() {
            let mut g = lock(&c.lock);
            g.should_stop = true;
            let timers = std::mem::take(&mut g.timers);
            for t in timers.into_values() {
                lock(&t.work.state).timer = None;
                t.work.clear_pending();
            }
            c.more_work.notify_all();
        }
        for c in s.cwqs.iter() {
            let h = lock(&c.lock).handle.take();
            if let Some(h) = h {
                let _ = h.join();
            }
        }
        // A lazy core that moved work during the joins may have started a
        // thread after its list was visited; join until none is left.
        loop {
            let mut any = false;
            for c in s.cwqs.iter() {
                let h = lock(&c.lock).handle.take();
                if let Some(h) = h {
                    any = true;
                    let _ = h.join();
                }
            }
            if !any {
                break;
            }
        }
    }
}
