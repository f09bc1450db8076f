//! Work items: `struct work_struct` and `struct delayed_work`.
//!
//! ```text
//!   Work ──Arc──► WorkInner
//!                   func      I   the function (kernel: work->func)
//!                   pending   A   the PENDING bit (kernel: bit 0 of work->data)
//!                   state     W   Mutex<WorkState>:
//!                                   wq, cwq   where it was last queued (work->data's cwq pointer)
//!                                   linked    Some(seq) while on that list (work->entry non-empty)
//!                                   timer     Some(key) while a delayed-work timer is armed
//! ```
//!
//! # The PENDING protocol (mirrors `queue_work_on()`, `run_workqueue()`,
//! `try_to_grab_pending()` in kernel/workqueue.c, 2.6.2x)
//!
//! * Whoever flips PENDING from 0 to 1 *owns* the work until it hands it
//!   on: `queue_work*` owns it and links it on a list (or arms its timer);
//!   a cancel that wins the flip owns it and never links it.
//! * A work item is linked on at most one list, and only while PENDING is
//!   set: `linked.is_some() || timer.is_some() ⇒ pending`. That is why a
//!   second `queue_work` of a pending item returns `false` and does
//!   nothing: a work item is never on a queue twice.
//! * The worker unlinks the item under its list's lock, drops the lock,
//!   clears PENDING, and only then calls the function, so the function may
//!   queue its own item again (and that instance may run on another CPU at
//!   the same time: no non-reentrancy guarantee before 3.7).
//!
//! # Locking
//!
//! `state` is the innermost lock: it is taken with the lock of the list
//! the item is (or is being) linked on already held, never the other way
//! round. `linked` is written only with both held; readers that hold only
//! `state` (to find the list) re-check it under the list's lock, as
//! `try_to_grab_pending()` re-reads `work->data` after taking `cwq->lock`.

use std::fmt;
use std::time::Instant;

use crate::primitive::atomic::{AtomicBool, Ordering};
use crate::primitive::{Arc, Mutex, lock};
use crate::queue::WqShared;

/// A work item: a function to run later in a worker thread.
///
/// Cloning a `Work` gives another handle to the same item (queueing either
/// handle queues the one item). The function receives the handle, so it can
/// queue itself again.
///
/// ```
/// use klab_workqueue::{Work, Workqueue};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
///
/// let wq = Workqueue::create("demo", 2).unwrap();
/// let hits = Arc::new(AtomicU32::new(0));
/// let h = hits.clone();
/// let work = Work::new(move |_| {
///     h.fetch_add(1, Ordering::Relaxed);
/// });
/// assert!(wq.queue_work_on(1, &work));
/// wq.flush();
/// assert_eq!(hits.load(Ordering::Relaxed), 1);
/// ```
#[derive(Clone)]
pub struct Work {
    pub(crate) inner: Arc<WorkInner>,
}

/// The shared part of a work item.
pub(crate) struct WorkInner {
    /// I: the function.
    func: Box<dyn Fn(&Work) + Send + Sync>,
    /// A: the PENDING bit (see the module header).
    pub(crate) pending: AtomicBool,
    /// W: where the item was last queued and what holds it now.
    pub(crate) state: Mutex<WorkState>,
}

/// Where a work item was last queued (kernel: the cwq pointer in
/// `work->data`), and whether a list or a timer holds it.
#[derive(Default)]
pub(crate) struct WorkState {
    /// The workqueue it was last queued on (`None`: never, or cleared by a
    /// cancel, as `clear_wq_data()` does).
    pub(crate) wq: Option<Arc<WqShared>>,
    /// Index of the list (`cpu_workqueue_struct`) within `wq`.
    pub(crate) cwq: usize,
    /// `Some(seq)` while linked on that list as entry `seq`.
    pub(crate) linked: Option<u64>,
    /// `Some(key)` while a delayed-work timer is armed on list `key.owner`.
    pub(crate) timer: Option<TimerKey>,
}

/// Identifies an armed delayed-work timer on its owner list's timer map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct TimerKey {
    /// When it fires.
    pub(crate) deadline: Instant,
    /// Unique among timers, so two with one deadline stay distinct.
    pub(crate) id: u64,
    /// The list whose worker keeps and fires the timer.
    pub(crate) owner: usize,
}

impl WorkState {
    /// Whether the item is linked as entry `seq` on list `cwq` of the
    /// workqueue with id `wq_id`.
    #[inline]
    pub(crate) fn is_linked_at(&self, wq_id: u64, cwq: usize, seq: u64) -> bool {
        self.linked == Some(seq)
            && self.cwq == cwq
            && self.wq.as_ref().is_some_and(|w| w.id == wq_id)
    }
}

impl Work {
    /// A work item running `f` (kernel: `INIT_WORK(&work, f)`).
    pub fn new<F>(f: F) -> Work
    where
        F: Fn(&Work) + Send + Sync + 'static,
    {
        Work {
            inner: Arc::new(WorkInner {
                func: Box::new(f),
                pending: AtomicBool::new(false),
                state: Mutex::new(WorkState::default()),
            }),
        }
    }

    /// Whether the item is queued or its timer armed and it has not started
    /// running yet (kernel: `work_pending()`).
    pub fn is_pending(&self) -> bool {
        self.inner.pending.load(Ordering::Acquire)
    }

    /// Whether two handles name the same item.
    pub fn ptr_eq(a: &Work, b: &Work) -> bool {
        Arc::ptr_eq(&a.inner, &b.inner)
    }

    /// Checks the work item's invariant:
    /// `linked.is_some() || timer.is_some() ⇒ pending`, and not both.
    ///
    /// # Panics
    /// If it does not hold.
    pub fn assert_invariants(&self) {
        let st = lock(&self.inner.state);
        assert!(
            !(st.linked.is_some() && st.timer.is_some()),
            "work both linked and timer-armed"
        );
        if st.linked.is_some() || st.timer.is_some() {
            assert!(self.is_pending(), "work linked or armed without PENDING");
        }
    }
}

/// Calls the function of `work`, handing it a handle to its own item.
#[inline]
pub(crate) fn call(work: &Arc<WorkInner>) {
    let handle = Work {
        inner: work.clone(),
    };
    (work.func)(&handle);
}

impl WorkInner {
    /// Test-and-set of PENDING: true if this caller flipped it from 0 to 1
    /// and so owns the item (kernel: `!test_and_set_bit(WORK_STRUCT_PENDING)`).
    #[inline]
    pub(crate) fn grab_pending(&self) -> bool {
        !self.pending.swap(true, Ordering::AcqRel)
    }

    /// Clears PENDING (kernel: `work_clear_pending()`), by the owner only.
    ///
    /// An atomic read-modify-write, as the kernel's `clear_bit()` is, not a
    /// plain store: every write to PENDING is then an RMW, totally ordered
    /// with the test-and-sets. (loom 0.7 also lets a plain store slip
    /// between the read and the write of a concurrent swap, tokio-rs/loom
    /// #254, and would report a false race.)
    #[inline]
    pub(crate) fn clear_pending(&self) {
        self.pending.swap(false, Ordering::AcqRel);
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Work")
            .field("pending", &self.is_pending())
            .finish_non_exhaustive()
    }
}

/// A work item queued after a delay (kernel: `struct delayed_work`, a
/// `work_struct` plus a `timer_list`). Queue it with
/// [`crate::Workqueue::queue_delayed_work`]; cancel it with
/// [`crate::cancel_delayed_work`] or [`crate::cancel_delayed_work_sync`].
#[derive(Clone, Debug)]
pub struct DelayedWork {
    work: Work,
}

impl DelayedWork {
    /// A delayed work item running `f` (kernel: `INIT_DELAYED_WORK`).
    pub fn new<F>(f: F) -> DelayedWork
    where
        F: Fn(&Work) + Send + Sync + 'static,
    {
        DelayedWork { work: Work::new(f) }
    }

    /// The work item inside (kernel: `&dwork->work`).
    pub fn work(&self) -> &Work {
        &self.work
    }

    /// Whether the timer is armed or the item queued and not yet started.
    pub fn is_pending(&self) -> bool {
        self.work.is_pending()
    }
}
