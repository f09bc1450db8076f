//! One CPU's list of a workqueue: `struct cpu_workqueue_struct`, and the
//! state machine every queue, run, flush and cancel goes through.
//!
//! ```text
//!   Cwq { cpu: I, lock: Mutex<CwqState>, more_work: Condvar, flushed: Condvar }
//!
//!   CwqState (L: this list's lock)
//!     worklist   [ seq r+c+1 | seq r+c+2 | ... | seq last_seq ]   FIFO, popped at the front
//!     current    the item running now, seq r+1        (kernel: cwq->current_work)
//!     retired    r: every entry with seq <= r has been popped and is finished
//!     moved_out  lazy core only: seqs moved to another CPU's list, not finished there
//!     timers     delayed-work timers this list's worker fires
//!     worker     Running | None (a lazy thread that exited idle, or not started)
//! ```
//!
//! # Sequence numbers instead of barrier works
//!
//! The kernel flushes by queueing a `wq_barrier` work behind the items to
//! wait for and sleeping until it runs (`insert_wq_barrier()`). klab gives
//! every entry a sequence number when it is linked (`last_seq += 1`) and
//! the worker advances `retired` as it finishes entries in FIFO order, so
//! "everything queued on this list before now has finished" is
//! `flushed(last_seq at that moment)`. The guarantee is the barrier's (FIFO
//! order, later work not waited for) without an allocation or a list
//! insertion in the middle; `flush_work()` waits for the item's own seq,
//! where the kernel inserts the barrier right behind the item.
//!
//! # Invariants (checked by [`Cwq::assert_invariants`])
//!
//! * `retired + [current is some] + |worklist| == last_seq`
//! * worklist seqs are `retired + [current] + 1 ..= last_seq`, in order
//! * `current = Some(s) ⇒ s == retired + 1`
//! * `moved_out ⊆ (0, retired]`
//! * an entry whose work is not linked at that seq is a *tombstone* (the
//!   item was cancelled after being linked); the worker retires it
//!   without running it. Cancel is O(1): it unlinks the item and leaves
//!   the tombstone.
//! * a lazy non-core list with no worker is empty and runs nothing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Instant;

use crate::primitive::atomic::{AtomicU64, Ordering};
use crate::primitive::{Arc, Condvar, Mutex, MutexGuard, lock, thread};
use crate::rules::{Kind, LAZY_CORE_CPU};
use crate::work::{TimerKey, WorkInner};

/// One CPU's list and the worker that runs it. Aligned to two cache lines
/// (the kernel's `____cacheline_aligned`, doubled for adjacent-line
/// prefetch) so neighbouring CPUs' lists do not share a line.
#[repr(align(128))]
pub(crate) struct Cwq {
    /// I: the index of this list in its workqueue (the CPU, or 0).
    pub(crate) cpu: usize,
    /// The list lock (kernel: `cwq->lock`), guarding [`CwqState`].
    pub(crate) lock: Mutex<CwqState>,
    /// The worker sleeps here for work or a timer (kernel: `cwq->more_work`).
    pub(crate) more_work: Condvar,
    /// Flushers and cancellers sleep here until `retired` moves.
    pub(crate) flushed: Condvar,
    /// A: `last_seq`, published after each link, so a worker that spins
    /// before sleeping sees new work without taking the lock.
    pub(crate) queued_hint: AtomicU64,
}

/// The state of one list. L: every field is guarded by `Cwq::lock`.
pub(crate) struct CwqState {
    /// Entries to run, FIFO (kernel: `cwq->worklist`).
    pub(crate) worklist: VecDeque<Entry>,
    /// Seq given to the last entry linked (0: none yet).
    pub(crate) last_seq: u64,
    /// Every entry with seq `<= retired` was popped and has finished (run,
    /// skipped as a tombstone, or moved away).
    pub(crate) retired: u64,
    /// The entry being run (kernel: `cwq->current_work`).
    pub(crate) current: Option<Current>,
    /// Lazy core list: seqs of entries moved to another CPU's list whose
    /// run has not finished there yet.
    pub(crate) moved_out: BTreeSet<u64>,
    /// Armed delayed-work timers this list's worker fires, by deadline.
    pub(crate) timers: BTreeMap<TimerKey, Timer>,
    /// Whether a thread serves this list.
    pub(crate) worker: Slot,
    /// The thread last started for this list, joined when it is replaced
    /// or the workqueue is destroyed.
    pub(crate) handle: Option<thread::JoinHandle<()>>,
    /// The worker is waiting on `more_work` (so a queuer must notify it).
    pub(crate) sleeping: bool,
    /// Threads waiting on `flushed`.
    pub(crate) waiters: usize,
    /// `destroy_workqueue()` asked the worker to drain the list and exit.
    pub(crate) should_stop: bool,
    /// When the worker last finished an entry or started (lazy idle rule).
    pub(crate) idle_since: Instant,
    /// Entries run to completion on this list.
    pub(crate) nr_run: u64,
    /// Work functions that panicked (caught; the worker lives on).
    pub(crate) nr_panicked: u64,
}

/// Whether a list has a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// No thread: never started (lazy), exited when idle, or stopped.
    None,
    /// A thread serves the list (it may still be starting up).
    Running,
}

/// The entry being run.
pub(crate) struct Current {
    /// The item.
    pub(crate) work: Arc<WorkInner>,
    /// Its seq on this list.
    pub(crate) seq: u64,
}

/// One linked entry (kernel: the `work->entry` list node).
pub(crate) struct Entry {
    /// The item.
    pub(crate) work: Arc<WorkInner>,
    /// Its seq on this list.
    pub(crate) seq: u64,
    /// Lazy core list: the CPU this item was queued for, which has no
    /// thread yet; the core thread moves it there.
    pub(crate) target: Option<usize>,
    /// Lazy non-core list: the seq the item had on the core list before it
    /// was moved here; finishing it clears that seq from the core's
    /// `moved_out`.
    pub(crate) origin: Option<u64>,
}

/// An armed delayed-work timer.
pub(crate) struct Timer {
    /// The item to queue when the timer fires.
    pub(crate) work: Arc<WorkInner>,
    /// The CPU to queue it for.
    pub(crate) target: usize,
}

/// What the worker found at the front of its list.
pub(crate) enum Pop {
    /// Nothing to do.
    Empty,
    /// A cancelled entry, retired without running. Carries the core seq to
    /// release when it was a moved entry.
    Tombstone(Option<u64>),
    /// Run this item; it is now `current`.
    Run(Entry),
    /// Lazy core: move this item to its target CPU. It is unlinked but its
    /// seq is neither retired nor current: the caller does one or the
    /// other before dropping the lock.
    Move(Entry),
}

impl Cwq {
    /// An empty list for CPU `cpu`, with no worker.
    pub(crate) fn new(cpu: usize, now: Instant) -> Cwq {
        Cwq {
            cpu,
            lock: Mutex::new(CwqState {
                worklist: VecDeque::new(),
                last_seq: 0,
                retired: 0,
                current: None,
                moved_out: BTreeSet::new(),
                timers: BTreeMap::new(),
                worker: Slot::None,
                handle: None,
                sleeping: false,
                waiters: 0,
                should_stop: false,
                idle_since: now,
                nr_run: 0,
                nr_panicked: 0,
            }),
            more_work: Condvar::new(),
            flushed: Condvar::new(),
            queued_hint: AtomicU64::new(0),
        }
    }

    /// Links `work` at the tail as the next seq; the caller owns PENDING
    /// and holds this list's lock `g` (kernel: `insert_work()`). The caller
    /// then [`publish`](Cwq::publish)es the seq for a spinning worker.
    pub(crate) fn link(
        &self,
        g: &mut CwqState,
        wq: &Arc<crate::queue::WqShared>,
        work: &Arc<WorkInner>,
        target: Option<usize>,
        origin: Option<u64>,
    ) -> u64 {
        g.last_seq += 1;
        let seq = g.last_seq;
        {
            let mut st = lock(&work.state);
            debug_assert!(st.linked.is_none() && st.timer.is_none());
            st.wq = Some(wq.clone());
            st.cwq = self.cpu;
            st.linked = Some(seq);
        }
        g.worklist.push_back(Entry {
            work: work.clone(),
            seq,
            target,
            origin,
        });
        seq
    }

    /// Tells a worker spinning for work that entry `seq` is linked. A
    /// queuer calls it after dropping the list lock, so the worker it
    /// alerts does not run into a lock still held.
    #[inline]
    pub(crate) fn publish(&self, seq: u64) {
        self.queued_hint.fetch_max(seq, Ordering::Release);
    }

    /// Wakes the worker if it sleeps (kernel: `wake_up(&cwq->more_work)`).
    #[inline]
    pub(crate) fn wake(&self, g: &CwqState) {
        if g.sleeping {
            self.more_work.notify_one();
        }
    }

    /// Wakes flushers and cancellers if any wait.
    #[inline]
    pub(crate) fn wake_flushers(&self, g: &CwqState) {
        if g.waiters > 0 {
            self.flushed.notify_all();
        }
    }

    /// Sleeps until `done(state)` holds, with the lock held on return.
    pub(crate) fn wait_until<'a>(
        &self,
        mut g: MutexGuard<'a, CwqState>,
        done: impl Fn(&CwqState) -> bool,
    ) -> MutexGuard<'a, CwqState> {
        while !done(&g) {
            g.waiters += 1;
            g = crate::primitive::wait(&self.flushed, g);
            g.waiters -= 1;
        }
        g
    }

    /// Checks the invariants in the module header for the list of CPU
    /// `self.cpu` of a queue of `kind` whose id is `wq_id`.
    ///
    /// # Panics
    /// If one does not hold.
    pub(crate) fn assert_invariants(&self, kind: Kind, wq_id: u64) {
        let g = lock(&self.lock);
        let cur = u64::from(g.current.is_some());
        assert_eq!(
            g.retired + cur + g.worklist.len() as u64,
            g.last_seq,
            "cpu {}: retired + current + |worklist| != last_seq",
            self.cpu
        );
        if let Some(c) = &g.current {
            assert_eq!(
                c.seq,
                g.retired + 1,
                "cpu {}: current is not next",
                self.cpu
            );
        }
        for (i, e) in g.worklist.iter().enumerate() {
            assert_eq!(
                e.seq,
                g.retired + cur + 1 + i as u64,
                "cpu {}: seq gap",
                self.cpu
            );
            assert!(
                e.target.is_none() || (kind == Kind::Lazy && self.cpu == LAZY_CORE_CPU),
                "cpu {}: a targeted entry off the lazy core list",
                self.cpu
            );
            assert!(
                e.origin.is_none() || (kind == Kind::Lazy && self.cpu != LAZY_CORE_CPU),
                "cpu {}: a moved entry on the core list",
                self.cpu
            );
            let st = lock(&e.work.state);
            if st.is_linked_at(wq_id, self.cpu, e.seq) {
                assert!(
                    e.work
                        .pending
                        .load(crate::primitive::atomic::Ordering::Acquire),
                    "cpu {}: linked entry {} without PENDING",
                    self.cpu,
                    e.seq
                );
            }
        }
        assert!(
            g.moved_out.iter().all(|&s| s >= 1 && s <= g.retired),
            "cpu {}: moved_out outside (0, retired]",
            self.cpu
        );
        for (key, t) in &g.timers {
            let st = lock(&t.work.state);
            assert_eq!(
                st.timer,
                Some(*key),
                "cpu {}: stale timer in the map",
                self.cpu
            );
            assert_eq!(
                key.owner, self.cpu,
                "cpu {}: timer owned by another list",
                self.cpu
            );
        }
        if kind.thread_can_exit(self.cpu) && g.worker == Slot::None {
            assert!(
                g.worklist.is_empty() && g.current.is_none(),
                "cpu {}: lazy list without a thread holds work",
                self.cpu
            );
        }
    }
}

impl CwqState {
    /// Pops the front entry for the worker of list `cpu` of workqueue
    /// `wq_id`: unlinks a live item and makes it current (or hands a
    /// targeted one back to be moved), retires a tombstone (kernel: the
    /// head of `run_workqueue()`'s loop).
    pub(crate) fn pop(&mut self, wq_id: u64, cpu: usize) -> Pop {
        let Some(e) = self.worklist.pop_front() else {
            return Pop::Empty;
        };
        let live = {
            let mut st = lock(&e.work.state);
            if st.is_linked_at(wq_id, cpu, e.seq) {
                st.linked = None;
                true
            } else {
                false
            }
        };
        if !live {
            self.retired = e.seq;
            return Pop::Tombstone(e.origin);
        }
        if e.target.is_some() {
            return Pop::Move(e);
        }
        self.current = Some(Current {
            work: e.work.clone(),
            seq: e.seq,
        });
        Pop::Run(e)
    }

    /// The current entry `seq` finished (kernel: `cwq->current_work = NULL`).
    pub(crate) fn finish(&mut self, seq: u64, panicked: bool) {
        debug_assert_eq!(self.current.as_ref().map(|c| c.seq), Some(seq));
        self.current = None;
        self.retired = seq;
        self.nr_run += 1;
        self.nr_panicked += u64::from(panicked);
    }

    /// Whether every entry with seq `<= target` has finished, including
    /// entries moved from here to another CPU.
    #[inline]
    pub(crate) fn flushed(&self, target: u64) -> bool {
        self.retired >= target && self.moved_out.first().is_none_or(|&s| s > target)
    }

    /// The seq `work` holds on this list: linked at, or running as. `None`
    /// if neither (kernel: the two cases of `flush_work()`).
    pub(crate) fn seq_of(&self, wq_id: u64, cpu: usize, work: &Arc<WorkInner>) -> Option<u64> {
        {
            let st = lock(&work.state);
            if let Some(seq) = st.linked
                && st.is_linked_at(wq_id, cpu, seq)
            {
                return Some(seq);
            }
        }
        match &self.current {
            Some(c) if Arc::ptr_eq(&c.work, work) => Some(c.seq),
            _ => None,
        }
    }
}
