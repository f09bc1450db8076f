//! A userspace RCU of the "memb" flavour (liburcu's urcu-memb, on the
//! kernel's membarrier(2)): readers enter and leave a read-side section
//! with a store to a counter of their own and a compiler barrier, no
//! atomic read-modify-write and no fence; the writer, which is rare, pays
//! for both sides with one `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`
//! per grace period and then waits for each reader it saw inside a section
//! to leave it.
//!
//! Why not crossbeam-epoch's pin: its pin is a sequentially consistent
//! fence (a `lock cmpxchg` on x86) on every read-side section, and a full
//! fence stops the CPU overlapping one lookup's cache misses with the
//! next's. Measured on this crate's read path (10^5 `Box<u64>` items,
//! random order, one thread): 33-37 ns a lookup with a pin per lookup
//! against 9-12 ns with one pin per 1024 lookups (dense keys; the
//! `RwLock`'d tree took 44 ns). With this RCU a section per lookup costs
//! about what one per 1024 does (see the crate README).
//!
//! # The protocol
//!
//! * Each reader thread has a [`ReaderState`]: a counter that is odd while
//!   the thread is inside its outermost read-side section and even outside.
//!   Only its own thread writes it: [`ReaderState::enter`] stores `c + 1`
//!   and issues the reader barrier, [`ReaderState::exit`] stores `c + 2`.
//!   Both stores are release stores, plain stores on x86.
//! * The reader barrier is a compiler barrier when membarrier is in use
//!   (registered with `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED` before any
//!   reader's first section), and a full fence when it is not (no
//!   membarrier: an old kernel, a seccomp filter, another OS, Miri). Under
//!   `--cfg loom` it is a `SeqCst` fence, the model of what membarrier
//!   makes of the compiler barrier (below).
//! * A grace period ([`Registry::start`]): the writer has already unlinked
//!   what it will free; it issues the writer barrier (membarrier, or a
//!   `SeqCst` fence in the fallback and under loom), then loads every
//!   registered reader's counter (acquire) and keeps those that are odd.
//!   The grace period is over ([`GracePeriod::poll`]) when each kept
//!   counter has changed; it never waits for a reader to be outside (a
//!   reader that enters section after section still lets it end), and it
//!   never blocks: the writer polls it after later writes.
//!
//! # Memory ordering: why a reader never holds what the writer frees
//!
//! The argument of membarrier(2) and liburcu's urcu-memb, for the
//! store-buffering pattern between a reader's counter store `S` and its
//! first load `L` of the tree, and the writer's unlinking store `U` and its
//! load `R` of the reader's counter:
//!
//! 1. **Barrier pairing.** membarrier(`PRIVATE_EXPEDITED`) returns once
//!    every thread of the process has executed a full memory barrier at a
//!    point of its program between the call's entry and return (a thread
//!    not running is "de facto" in that state: the scheduler's switch is a
//!    full barrier). The reader's compiler barrier keeps the compiler from
//!    moving `L` before `S`, so in the reader's program `S` comes before
//!    `L`, and the membarrier's barrier `B` falls somewhere in it.
//!    - `B` before `S`: `U` (before the call) is ordered before `B`, so
//!      before `S` and `L`: `L` sees `U`, the new tree, and cannot reach
//!      what the writer unlinked.
//!    - `B` after `S`: `S` is visible to every CPU by the time the call
//!      returns, so `R` reads it (or a later value): the writer waits for
//!      this section.
//!
//!    In the C++ model this is the rule for two `SeqCst` fences (either the
//!    writer's load sees the reader's store, or the reader's load sees the
//!    writer's store), which is how the loom model states it. A reader
//!    between `S` and `L` loses nothing either way: both cases are safe.
//! 2. **Leaving.** The writer frees only after loading a value of the
//!    counter other than the odd one it saw. Every store to the counter is
//!    a release store by its reader, so the acquire load that reads any
//!    later value synchronises with that store, which follows the section's
//!    `exit` in the reader's program: every load of the section happened
//!    before the free. (Both stores are release stores because a relaxed
//!    `enter` store would not carry the `exit` before it: since C++20 only
//!    read-modify-writes continue a release sequence.)
//! 3. **Counters skipped as even.** An even counter seen by `R` is either a
//!    reader outside any section, whose next section is the `B before S`
//!    case above, or the end of a section, read with acquire (2).
//! 4. **New readers.** A reader registers under the registry's lock before
//!    its first section; a grace period reads the list under the same
//!    lock, after its barrier. A reader missing from the list registered
//!    after that, so its sections come after `U`.
//! 5. **Nesting.** Only the outermost section of a thread stores the
//!    counter (the caller counts nesting, `rcu_read_lock()` nesting as in
//!    urcu's `URCU_GP_CTR_NEST_MASK`); a writer waiting for a reader thread
//!    waits for its outermost section to end.
//!
//! A reader that never leaves its section (a `ReadGuard` passed to
//! `mem::forget`) holds every later grace period open, so nothing retired
//! after it is freed until its thread exits, as with any RCU. The writer
//! never blocks on it unless the garbage grows past a bound (see
//! `epoch.rs`).

#[cfg(loom)]
use super::sync::fence;
use super::sync::{Arc, AtomicU64, Mutex, Ordering};

/// One reader thread's section counter: odd while inside its outermost
/// read-side section. Aligned to two cache lines so that readers do not
/// share a line (the adjacent-line prefetcher pairs lines).
#[repr(align(128))]
pub(crate) struct ReaderState {
    ctr: AtomicU64,
    #[cfg(loom)]
    barriers: bool,
}

impl ReaderState {
    /// `rcu_read_lock()` at nesting 0: the counter becomes odd, then the
    /// reader barrier orders that store before the section's loads.
    #[inline]
    pub(crate) fn enter(&self) {
        let c = self.ctr.load(Ordering::Relaxed);
        debug_assert!(c.is_multiple_of(2), "entered a section twice");
        self.ctr.store(c.wrapping_add(1), Ordering::Release);
        #[cfg(loom)]
        if self.barriers {
            fence(Ordering::SeqCst);
        }
        #[cfg(not(loom))]
        membarrier::reader_barrier();
    }

    /// `rcu_read_unlock()` at nesting 1: the counter becomes even, with a
    /// release store after every load of the section.
    #[inline]
    pub(crate) fn exit(&self) {
        let c = self.ctr.load(Ordering::Relaxed);
        debug_assert!(!c.is_multiple_of(2), "left a section not entered");
        self.ctr.store(c.wrapping_add(1), Ordering::Release);
    }
}

/// Every reader thread, for the grace periods (liburcu's `registry`).
pub(crate) struct Registry {
    readers: Mutex<Vec<Arc<ReaderState>>>,
    #[cfg(loom)]
    barriers: bool,
}

impl Registry {
    pub(crate) fn new() -> Self {
        Registry {
            readers: Mutex::new(Vec::new()),
            #[cfg(loom)]
            barriers: true,
        }
    }

    /// A registry whose reader and writer barriers are left out: the loom
    /// model checks that it then frees memory a reader still reads.
    #[cfg(loom)]
    pub(crate) fn without_barriers() -> Self {
        Registry {
            readers: Mutex::new(Vec::new()),
            barriers: false,
        }
    }

    /// Adds a reader (a thread, before its first section). Registers the
    /// process for membarrier first, so every reader knows which reader
    /// barrier is in force before it enters a section.
    pub(crate) fn register(&self) -> Arc<ReaderState> {
        #[cfg(not(loom))]
        membarrier::init();
        let r = Arc::new(ReaderState {
            ctr: AtomicU64::new(0),
            #[cfg(loom)]
            barriers: self.barriers,
        });
        self.readers
            .lock()
            .expect("reader registry")
            .push(Arc::clone(&r));
        r
    }

    /// Removes a reader: its thread is exiting, and reads nothing more. A
    /// section it never left (a guard passed to `mem::forget`) ends here,
    /// so a grace period under way does not wait for it for ever.
    pub(crate) fn unregister(&self, r: &Arc<ReaderState>) {
        let c = r.ctr.load(Ordering::Relaxed);
        if !c.is_multiple_of(2) {
            r.ctr.store(c.wrapping_add(1), Ordering::Release);
        }
        self.readers
            .lock()
            .expect("reader registry")
            .retain(|x| !Arc::ptr_eq(x, r));
    }

    /// Starts a grace period, after the writer unlinked what it will free:
    /// the writer barrier, then the readers now inside a section.
    pub(crate) fn start(&self) -> GracePeriod {
        #[cfg(loom)]
        if self.barriers {
            fence(Ordering::SeqCst);
        }
        #[cfg(not(loom))]
        membarrier::writer_barrier();
        let readers = self.readers.lock().expect("reader registry");
        let inside = readers
            .iter()
            .filter_map(|r| {
                let c = r.ctr.load(Ordering::Acquire);
                (!c.is_multiple_of(2)).then(|| (Arc::clone(r), c))
            })
            .collect();
        GracePeriod { inside }
    }
}

/// A grace period under way: the readers that were inside a section when
/// it started, with their counters then.
pub(crate) struct GracePeriod {
    inside: Vec<(Arc<ReaderState>, u64)>,
}

impl GracePeriod {
    /// True once every reader inside a section at the start has left it
    /// (`poll_state_synchronize_rcu()`). Never blocks.
    pub(crate) fn poll(&mut self) -> bool {
        self.inside
            .retain(|(r, c)| r.ctr.load(Ordering::Acquire) == *c);
        self.inside.is_empty()
    }

    /// Waits for [`poll`](Self::poll) (`synchronize_rcu()`): spins briefly,
    /// then yields, then sleeps, for a reader the scheduler preempted.
    /// The caller must not be inside a section itself.
    pub(crate) fn wait(mut self) {
        let mut tries = 0u32;
        while !self.poll() {
            tries = tries.saturating_add(1);
            if tries < 64 {
                super::sync::spin_loop();
            } else {
                #[cfg(loom)]
                loom::thread::yield_now();
                #[cfg(not(loom))]
                if tries < 1024 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
        }
    }
}

/// membarrier(2) (include/uapi/linux/membarrier.h; kernel/sched/membarrier.c),
/// and the two barriers built on it.
#[cfg(not(loom))]
mod membarrier {
    use std::sync::Once;
    use std::sync::atomic::{AtomicBool, Ordering, compiler_fence, fence};

    /// True once the process registered for private expedited membarrier;
    /// set (or left false) before any reader enters a section.
    static IN_USE: AtomicBool = AtomicBool::new(false);
    static INIT: Once = Once::new();

    /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (Linux 4.14).
    #[cfg(all(target_os = "linux", not(miri)))]
    const CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
    /// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED` (Linux 4.14).
    #[cfg(all(target_os = "linux", not(miri)))]
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

    #[cfg(all(target_os = "linux", not(miri)))]
    fn membarrier(cmd: libc::c_long) -> bool {
        // SAFETY: membarrier(cmd, flags = 0, cpu_id = 0) reads and writes no
        // memory of ours; it returns 0 or -1 with errno.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_long,
                0 as libc::c_long,
            ) == 0
        }
    }

    /// Registers the process once (`urcu_memb`'s `rcu_sys_membarrier_init`):
    /// after this, [`in_use`] never changes.
    pub(super) fn init() {
        INIT.call_once(|| {
            #[cfg(all(target_os = "linux", not(miri)))]
            IN_USE.store(
                membarrier(CMD_REGISTER_PRIVATE_EXPEDITED),
                Ordering::Relaxed,
            );
        });
    }

    /// True when readers use a compiler barrier and grace periods
    /// membarrier.
    #[inline]
    pub(crate) fn in_use() -> bool {
        IN_USE.load(Ordering::Relaxed)
    }

    /// The reader's side: a compiler barrier that membarrier promotes to a
    /// full barrier when a writer needs one, or a full fence without it.
    #[inline(always)]
    pub(super) fn reader_barrier() {
        if in_use() {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The writer's side: every running thread of the process executes a
    /// full barrier (and this one, by the fence).
    pub(super) fn writer_barrier() {
        init();
        fence(Ordering::SeqCst);
        #[cfg(all(target_os = "linux", not(miri)))]
        if in_use() {
            assert!(
                membarrier(CMD_PRIVATE_EXPEDITED),
                "membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after the process registered: {}",
                std::io::Error::last_os_error()
            );
        }
        fence(Ordering::SeqCst);
    }
}

#[cfg(not(loom))]
pub(crate) use membarrier::in_use as membarrier_in_use;

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_grace_period_waits_for_a_reader_inside_and_not_for_one_outside() {
        let reg = std::sync::Arc::new(Registry::new());
        let outside = reg.register();
        let (entered_tx, entered_rx) = mpsc::channel();
        let (leave_tx, leave_rx) = mpsc::channel::<()>();
        let reader = {
            let reg = std::sync::Arc::clone(&reg);
            std::thread::spawn(move || {
                let me = reg.register();
                me.enter();
                entered_tx.send(()).unwrap();
                leave_rx.recv().unwrap();
                me.exit();
                // A second section: the grace period started before it
                // does not wait for it.
                me.enter();
                entered_tx.send(()).unwrap();
                leave_rx.recv().unwrap();
                me.exit();
                reg.unregister(&me);
            })
        };
        entered_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("reader entered");
        let mut gp = reg.start();
        // `outside` was never inside: only the reader is waited for, and it
        // stays inside until told to leave.
        assert_eq!(gp.inside.len(), 1);
        assert!(!gp.poll());
        assert!(!gp.poll());
        leave_tx.send(()).unwrap();
        entered_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("reader entered again");
        // It left the first section and is inside another: over.
        assert!(gp.poll());
        let mut gp2 = reg.start();
        assert!(!gp2.poll());
        leave_tx.send(()).unwrap();
        reader.join().unwrap();
        assert!(gp2.poll());
        gp2.wait();
        reg.unregister(&outside);
        assert!(reg.start().inside.is_empty());
    }

    #[test]
    fn counters_are_odd_inside_and_even_outside() {
        let reg = Registry::new();
        let r = reg.register();
        assert_eq!(r.ctr.load(Ordering::Relaxed), 0);
        r.enter();
        assert_eq!(r.ctr.load(Ordering::Relaxed), 1);
        r.exit();
        r.enter();
        r.exit();
        assert_eq!(r.ctr.load(Ordering::Relaxed), 4);
    }

    /// On Linux outside Miri the process registers for membarrier (the
    /// kernels klab runs on have it; a seccomp filter that forbids it
    /// would leave the fence fallback, which this test then names).
    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn linux_uses_membarrier() {
        let _ = Registry::new().register();
        if !membarrier::in_use() {
            println!(
                "skipped: membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) refused here ({}); readers use fences",
                std::io::Error::last_os_error()
            );
            return;
        }
        // A grace period with no reader inside is over at once.
        assert!(Registry::new().start().poll());
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    //! The protocol under loom: a reader reads a node through a pointer the
    //! writer swaps, and the writer "frees" the old node (writes to it)
    //! after a grace period. Loom reports a write that is not ordered after
    //! the reader's read as a causality violation; the reader also checks
    //! the value. The membarrier is modelled by `SeqCst` fences on both
    //! sides (module header, 1).

    use loom::cell::UnsafeCell;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    use super::Registry;

    const LIVE: u64 = 7;
    const FREED: u64 = 0xdead;

    struct Nodes {
        /// Which node the tree points to.
        slot: AtomicUsize,
        nodes: [UnsafeCell<u64>; 2],
    }

    fn run(reg: Registry, sections: usize) {
        let reg = Arc::new(reg);
        let t = Arc::new(Nodes {
            slot: AtomicUsize::new(0),
            nodes: [UnsafeCell::new(LIVE), UnsafeCell::new(LIVE)],
        });
        let reader = {
            let (reg, t) = (Arc::clone(&reg), Arc::clone(&t));
            thread::spawn(move || {
                let me = reg.register();
                for _ in 0..sections {
                    me.enter();
                    let i = t.slot.load(Ordering::Acquire);
                    // SAFETY: loom checks the access against the writer's.
                    let v = t.nodes[i].with(|p| unsafe { *p });
                    assert_eq!(v, LIVE, "a reader read a node after its grace period");
                    me.exit();
                }
                reg.unregister(&me);
            })
        };
        // The writer: unlink node 0, wait for a grace period, free it.
        t.slot.store(1, Ordering::Release);
        reg.start().wait();
        // SAFETY: loom checks the access against the reader's.
        t.nodes[0].with_mut(|p| unsafe { *p = FREED });
        reader.join().unwrap();
    }

    #[test]
    fn loom_memb_reader_never_reads_a_freed_node() {
        loom::model(|| run(Registry::new(), 1));
    }

    #[test]
    fn loom_memb_reader_with_two_sections() {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(|| run(Registry::new(), 2));
    }

    /// Without the barriers the writer can miss a reader's odd counter
    /// while the reader loads the old pointer: loom finds it.
    #[test]
    #[should_panic(expected = "Causality violation")]
    fn loom_memb_without_barriers_frees_under_a_reader() {
        loom::model(|| run(Registry::without_barriers(), 1));
    }
}
