//! Worker threads: `worker_thread()` and `run_workqueue()`, the lazy core
//! thread's create-and-move, timers, and idle exit.
//!
//! ```text
//!   worker_thread(cpu):                        (one per list that has a thread)
//!     lock list
//!     loop
//!       fire due timers            -> link their items (lazy core: route them)
//!       pop front entry
//!         Run       -> current = it; unlock; clear PENDING; call f; lock; retire
//!         Move      -> (lazy core) lock target list; if it has no thread,
//!                      create one (or, if that is refused, run it here);
//!                      link the item there; moved_out += seq
//!         Tombstone -> retired = seq
//!         Empty     -> stop? exit.  lazy, not core, idle >= timeout? exit.
//!                      else sleep until queued to, the next timer, or the
//!                      idle deadline
//! ```
//!
//! Lock order: a list's lock, then a work item's `state`. The lazy core
//! thread is the only code that holds two list locks, always the core's
//! first, then the target's; no other path nests list locks.

use std::time::{Duration, Instant};

use crate::cpu;
use crate::cwq::{Current, CwqState, Entry, Pop, Slot};
use crate::primitive::atomic::Ordering;
use crate::primitive::{Arc, MutexGuard, lock, thread, thread_local, wait, wait_timeout};
use crate::queue::WqShared;
use crate::rules::{self, LAZY_CORE_CPU, Move};

use std::cell::Cell;

thread_local! {
    /// I (per thread): the (workqueue id, list) a worker thread serves.
    // loom's `thread_local!` takes no `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static WORKER: Cell<Option<(u64, usize)>> = Cell::new(None);
}

/// The (workqueue id, list) the calling thread is a worker of, if any.
pub(crate) fn current_worker() -> Option<(u64, usize)> {
    WORKER.with(|w| w.get())
}

/// Starts a thread for list `cpu` of `wq` (kernel:
/// `create_workqueue_thread()` + `start_workqueue_thread()`). The caller
/// holds that list's lock and has set its slot to `Running`.
pub(crate) fn spawn(wq: &Arc<WqShared>, cpu: usize) -> std::io::Result<thread::JoinHandle<()>> {
    let name = if wq.kind == rules::Kind::SingleThread {
        wq.name.clone()
    } else {
        format!("{}/{}", wq.name, cpu)
    };
    wq.threads.started();
    let shared = wq.clone();
    match thread::Builder::new()
        .name(name)
        .spawn(move || worker_thread(shared, cpu))
    {
        Ok(h) => Ok(h),
        Err(e) => {
            wq.threads.failed();
            Err(e)
        }
    }
}

/// The body of a worker thread.
fn worker_thread(wq: Arc<WqShared>, cpu: usize) {
    cpu::set_current_cpu(cpu);
    WORKER.with(|w| w.set(Some((wq.id, cpu))));
    let can_exit = wq.kind.thread_can_exit(cpu);
    let cwq = &wq.cwqs[cpu];
    let mut g = lock(&cwq.lock);
    g.idle_since = Instant::now();
    let mut spun = false;
    let idle_exit = loop {
        if !g.timers.is_empty() {
            g = fire_timers(&wq, cpu, g);
        }
        match g.pop(wq.id, cpu) {
            Pop::Run(e) => {
                g = run(&wq, cpu, g, e, can_exit);
                spun = false;
                continue;
            }
            Pop::Move(e) => {
                g = move_to_target(&wq, g, e);
                spun = false;
                continue;
            }
            Pop::Tombstone(origin) => {
                spun = false;
                cwq.wake_flushers(&g);
                if let Some(seq) = origin {
                    drop(g);
                    release_origin(&wq, seq);
                    g = lock(&cwq.lock);
                }
                continue;
            }
            Pop::Empty => {}
        }
        if g.should_stop {
            break false;
        }
        let mut deadline = g.timers.first_key_value().map(|(k, _)| k.deadline);
        if can_exit {
            let timeout = wq.idle_timeout();
            let now = Instant::now();
            let idle_for = now.saturating_duration_since(g.idle_since);
            if rules::idle_expired(nanos(idle_for), nanos(timeout)) {
                g.worker = Slot::None;
                break true;
            }
            let idle_deadline = g.idle_since + timeout;
            deadline = Some(deadline.map_or(idle_deadline, |d| d.min(idle_deadline)));
        }
        if !spun {
            let seen = g.last_seq;
            drop(g);
            spin_for_work(cwq, seen);
            g = lock(&cwq.lock);
            spun = true;
            continue;
        }
        g.sleeping = true;
        g = match deadline {
            None => wait(&cwq.more_work, g),
            Some(d) => {
                let dur = d.saturating_duration_since(Instant::now());
                if dur.is_zero() {
                    g
                } else {
                    wait_timeout(&cwq.more_work, g, dur)
                }
            }
        };
        g.sleeping = false;
    };
    drop(g);
    WORKER.with(|w| w.set(None));
    wq.threads.exited(idle_exit);
}

/// Busy-wait rounds (`spin_loop` hints) a worker spends looking for new
/// work before it yields, and yields before it sleeps. Not in the kernel,
/// whose `wake_up()` is cheap: here a sleeping worker costs the queuer a
/// futex wake-up and itself a trip through the scheduler, and a worker that
/// looks again for some tens of microseconds catches the next item of a
/// burst without either (rayon's workers do the same). Zero under loom,
/// which checks the sleeping path.
const SPIN_PAUSES: u32 = if cfg!(loom) { 0 } else { 64 };
/// See [`SPIN_PAUSES`].
const SPIN_YIELDS: u32 = if cfg!(loom) { 0 } else { 32 };

/// Spins, then yields, until an item is linked after `seen` or the rounds
/// run out.
fn spin_for_work(cwq: &crate::cwq::Cwq, seen: u64) {
    for i in 0..SPIN_PAUSES + SPIN_YIELDS {
        if cwq.queued_hint.load(Ordering::Acquire) != seen {
            return;
        }
        if i < SPIN_PAUSES {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Nanoseconds in `d`, saturating.
#[inline]
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Runs the popped entry `e` (now current) without the lock, then retires
/// it (kernel: the body of `run_workqueue()`).
fn run<'a>(
    wq: &'a Arc<WqShared>,
    cpu: usize,
    g: MutexGuard<'a, CwqState>,
    e: Entry,
    can_exit: bool,
) -> MutexGuard<'a, CwqState> {
    let cwq = &wq.cwqs[cpu];
    drop(g);
    e.work.clear_pending();
    let panicked =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| crate::work::call(&e.work)))
            .is_err();
    let mut g = lock(&cwq.lock);
    g.finish(e.seq, panicked);
    if can_exit {
        g.idle_since = Instant::now();
    }
    cwq.wake_flushers(&g);
    if let Some(seq) = e.origin {
        drop(g);
        release_origin(wq, seq);
        g = lock(&cwq.lock);
    }
    g
}

/// A moved entry finished on its target list: clear its core seq from the
/// core list's `moved_out` and wake the core's flushers.
fn release_origin(wq: &WqShared, seq: u64) {
    let core = &wq.cwqs[LAZY_CORE_CPU];
    let mut g = lock(&core.lock);
    let was = g.moved_out.remove(&seq);
    debug_assert!(was, "moved entry {seq} not in moved_out");
    core.wake_flushers(&g);
}

/// The lazy core thread's handling of an entry tagged for another CPU: the
/// patch's "create and move the work to the right target", or run it here
/// if no thread may be created. `g` is the core list's lock; the entry is
/// unlinked and its seq not yet retired: moving retires it (and records it
/// in `moved_out` until it finishes on the target), running it here makes
/// it `current`.
fn move_to_target<'a>(
    wq: &'a Arc<WqShared>,
    mut g: MutexGuard<'a, CwqState>,
    e: Entry,
) -> MutexGuard<'a, CwqState> {
    let target = e.target.unwrap_or(LAZY_CORE_CPU);
    debug_assert_ne!(target, LAZY_CORE_CPU);
    let tcwq = &wq.cwqs[target];
    let mut tg = lock(&tcwq.lock);
    let has_thread = tg.worker == Slot::Running;
    let may_create = !tg.should_stop && rules::may_create(wq.threads.live(), wq.max_threads);
    let mut old = None;
    let decision = match rules::core_move(has_thread, may_create) {
        Move::Spawn => {
            tg.worker = Slot::Running;
            match spawn(wq, target) {
                Ok(h) => {
                    old = tg.handle.replace(h);
                    Move::Spawn
                }
                Err(_) => {
                    tg.worker = Slot::None;
                    Move::RunOnCore
                }
            }
        }
        other => other,
    };
    match decision {
        Move::ToTarget | Move::Spawn => {
            g.retired = e.seq;
            g.moved_out.insert(e.seq);
            let seq = tcwq.link(&mut tg, wq, &e.work, None, Some(e.seq));
            tcwq.publish(seq);
            tcwq.wake(&tg);
            drop(tg);
            if let Some(h) = old {
                // The replaced thread exited idle; reap it without locks.
                drop(g);
                let _ = h.join();
                g = lock(&wq.cwqs[LAZY_CORE_CPU].lock);
            }
            g
        }
        Move::RunOnCore => {
            drop(tg);
            wq.threads.ran_on_core();
            {
                let mut st = lock(&e.work.state);
                st.wq = Some(wq.clone());
                st.cwq = LAZY_CORE_CPU;
            }
            g.current = Some(Current {
                work: e.work.clone(),
                seq: e.seq,
            });
            run(wq, LAZY_CORE_CPU, g, e, false)
        }
    }
}

/// Fires every timer of list `cpu` whose deadline has passed, queueing its
/// item (kernel: `delayed_work_timer_fn()`: `__queue_work()` on the CPU
/// the timer ran on).
fn fire_timers<'a>(
    wq: &'a Arc<WqShared>,
    cpu: usize,
    mut g: MutexGuard<'a, CwqState>,
) -> MutexGuard<'a, CwqState> {
    let now = Instant::now();
    while let Some(entry) = g.timers.first_entry() {
        if entry.key().deadline > now {
            break;
        }
        let (key, t) = entry.remove_entry();
        {
            let mut st = lock(&t.work.state);
            debug_assert_eq!(st.timer, Some(key));
            st.timer = None;
        }
        let cwq = &wq.cwqs[cpu];
        if t.target == cpu {
            cwq.link(&mut g, wq, &t.work, None, None);
        } else {
            // Lazy core: the item was queued for another CPU.
            let tcwq = &wq.cwqs[t.target];
            let mut tg = lock(&tcwq.lock);
            match rules::route(wq.kind, t.target, tg.worker == Slot::Running) {
                rules::Route::Direct(_) => {
                    let seq = tcwq.link(&mut tg, wq, &t.work, None, None);
                    tcwq.publish(seq);
                    tcwq.wake(&tg);
                }
                rules::Route::ViaCore { target, .. } => {
                    drop(tg);
                    cwq.link(&mut g, wq, &t.work, Some(target), None);
                }
            }
        }
    }
    g
}
