//! Grace periods: `rcu_read_lock()`, `rcu_read_unlock()` and `call_rcu()`
//! for the shared tree.
//!
//! A reader *pins* ([`Domain::pin`]) for as long as it holds references
//! into the tree; a writer that unlinks a node or removes an item hands its
//! destructor to [`Guard::defer`], which runs it only after every reader
//! pinned at that moment has unpinned: a grace period.
//!
//! Built on this crate's own RCU (`memb.rs`, liburcu's urcu-memb flavour):
//! a pin is a per-thread nesting count and, for the outermost section, a
//! store to the thread's counter and a compiler barrier; the writer pays
//! with a membarrier per grace period. Each tree keeps the destructors its
//! writers deferred; the writer that unlocks the tree (not a reader, which
//! never runs a destructor or advances anything) polls the grace period
//! under way and starts the next one ([`Domain::collect`]), as the kernel's
//! `call_rcu()` callbacks run from the RCU core rather than in readers.
//! Readers are registered per thread, process-wide, on their first pin.
//!
//! Under `--cfg loom` the module is instead a small model of the same
//! contract: readers count themselves in, a writer queues destructors, and
//! they run when the writer, after its operation, finds no reader pinned.
//! Loom can see through it (the tree's models would multiply with the
//! registry's interleavings; `memb.rs` has loom models of its own), and
//! under loom a node destructor marks the node freed instead of freeing
//! it, so a reader that reaches a node after its grace period fails an
//! assertion (see `layout.rs`). Miri runs the real module, with fences in
//! place of membarrier (Miri has no such system call).

#[cfg(not(loom))]
mod imp {
    use std::cell::{Cell, OnceCell};
    use std::marker::PhantomData;
    use std::sync::{LazyLock, Mutex};

    use super::super::memb::{GracePeriod, ReaderState, Registry};
    use super::super::sync::Arc;

    type Deferred = Box<dyn FnOnce() + Send>;

    /// Destructors a grace period is started for once this many wait (one
    /// membarrier per this many retirements: 40,000 writes a second make
    /// ~300 grace periods a second).
    const BATCH: usize = 128;

    /// Destructors allowed to wait before the writer blocks for a grace
    /// period (a reader that stays inside a section holds them all).
    const MAX_WAITING: usize = 64 * 1024;

    /// Every reader thread of the process.
    static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

    /// This thread's reader: registered on its first pin, unregistered
    /// when the thread exits.
    struct Local {
        reader: OnceCell<Arc<ReaderState>>,
        /// `rcu_read_lock()` nesting.
        nesting: Cell<usize>,
    }

    impl Local {
        #[inline]
        fn reader(&self) -> &ReaderState {
            match self.reader.get() {
                Some(r) => r,
                None => self.register(),
            }
        }

        /// The thread's first section (out of the read path).
        #[cold]
        #[inline(never)]
        fn register(&self) -> &ReaderState {
            self.reader.get_or_init(|| REGISTRY.register())
        }
    }

    impl Drop for Local {
        fn drop(&mut self) {
            if let Some(r) = self.reader.get() {
                REGISTRY.unregister(r);
            }
        }
    }

    thread_local! {
        static LOCAL: Local = const {
            Local {
                reader: OnceCell::new(),
                nesting: Cell::new(0),
            }
        };
    }

    /// True when this thread is inside a read-side section (a grace period
    /// waited for here would wait for itself).
    fn in_section() -> bool {
        LOCAL.try_with(|l| l.nesting.get() > 0).unwrap_or(false)
    }

    /// What a tree's writers deferred.
    #[derive(Default)]
    struct State {
        /// Retired since the grace period under way started.
        pending: Vec<Deferred>,
        /// Waiting for `gp`.
        waiting: Vec<Deferred>,
        gp: Option<GracePeriod>,
    }

    /// A tree's deferred destructors (the readers are process-wide).
    pub(crate) struct Domain {
        state: Mutex<State>,
    }

    impl Domain {
        pub(crate) fn new() -> Self {
            Domain {
                state: Mutex::new(State::default()),
            }
        }

        /// `rcu_read_lock()`.
        #[inline]
        pub(crate) fn pin(&self) -> Guard<'_> {
            let local = LOCAL.try_with(|l| {
                let n = l.nesting.get();
                if n == 0 {
                    l.reader().enter();
                }
                l.nesting.set(n + 1);
            });
            // This thread's locals are gone (a pin from another
            // thread-local's destructor): a reader of its own for the
            // section.
            let temp = local.is_err().then(enter_temp);
            Guard {
                domain: self,
                temp,
                _not_send: PhantomData,
            }
        }

        /// Called by a writer after it unpinned and unlocked: runs the
        /// destructors whose grace period is over, and starts a grace
        /// period for those retired since, once there are [`BATCH`] of
        /// them. Never waits, unless [`MAX_WAITING`] destructors wait.
        pub(crate) fn collect(&self) {
            let (ready, backlog) = {
                let mut st = self.state.lock().expect("deferred destructors");
                let mut ready = Vec::new();
                if st.gp.as_mut().is_some_and(GracePeriod::poll) {
                    st.gp = None;
                    ready = std::mem::take(&mut st.waiting);
                }
                if st.gp.is_none() && st.pending.len() >= BATCH {
                    st.waiting = std::mem::take(&mut st.pending);
                    st.gp = Some(REGISTRY.start());
                }
                (ready, st.pending.len() + st.waiting.len())
            };
            // Outside the lock: a destructor may use the tree.
            run(ready);
            if backlog >= MAX_WAITING && !in_section() {
                self.barrier();
            }
        }

        /// `rcu_barrier()`: waits for grace periods until every destructor
        /// deferred so far has run.
        ///
        /// # Panics
        ///
        /// Inside a read-side section on this thread (it would wait for
        /// itself).
        pub(crate) fn barrier(&self) {
            assert!(
                !in_section(),
                "rcu_barrier() inside a read-side section would wait for that section"
            );
            // The grace period under way, then one for what came after.
            for _ in 0..2 {
                let (gp, waiting) = {
                    let mut st = self.state.lock().expect("deferred destructors");
                    let waiting = std::mem::take(&mut st.waiting);
                    let pending = std::mem::take(&mut st.pending);
                    match st.gp.take() {
                        Some(gp) => {
                            st.pending = pending;
                            (gp, waiting)
                        }
                        None => (REGISTRY.start(), pending),
                    }
                };
                // Not under the state lock: a reader on another thread
                // may defer (as a writer) before it leaves its section.
                gp.wait();
                run(waiting);
            }
        }
    }

    fn run(ready: Vec<Deferred>) {
        for f in ready {
            f();
        }
    }

    impl Drop for Domain {
        /// The tree is going (`&mut`): no reader of it is left.
        fn drop(&mut self) {
            let st = std::mem::take(self.state.get_mut().expect("deferred destructors"));
            run(st.waiting);
            run(st.pending);
        }
    }

    /// A pinned section; unpins on drop (`rcu_read_unlock()`). Not `Send`:
    /// it is this thread's section.
    pub(crate) struct Guard<'d> {
        domain: &'d Domain,
        temp: Option<Arc<ReaderState>>,
        _not_send: PhantomData<*const ()>,
    }

    impl Guard<'_> {
        /// `call_rcu()`: runs `f` once every thread pinned now has unpinned
        /// (queued on the tree; a later `collect` starts its grace period).
        #[inline]
        pub(crate) fn defer(&self, f: impl FnOnce() + Send + 'static) {
            self.domain
                .state
                .lock()
                .expect("deferred destructors")
                .pending
                .push(Box::new(f));
        }
    }

    impl Drop for Guard<'_> {
        #[inline]
        fn drop(&mut self) {
            if let Some(r) = self.temp.take() {
                leave_temp(r);
                return;
            }
            // If this thread's locals are gone, so is its registration, and
            // no grace period waits for it.
            let _ = LOCAL.try_with(|l| {
                let n = l.nesting.get() - 1;
                l.nesting.set(n);
                if n == 0 {
                    l.reader().exit();
                }
            });
        }
    }

    /// Ends a section of a reader made for it (out of the read path).
    #[cold]
    #[inline(never)]
    fn leave_temp(r: Arc<ReaderState>) {
        r.exit();
        REGISTRY.unregister(&r);
    }

    /// Begins a section on a reader made for it, when this thread's locals
    /// are gone (out of the read path).
    #[cold]
    #[inline(never)]
    fn enter_temp() -> Arc<ReaderState> {
        let r = REGISTRY.register();
        r.enter();
        r
    }
}

#[cfg(loom)]
mod imp {
    use super::super::sync::{AtomicUsize, Mutex, Ordering, fence};

    type Deferred = Box<dyn FnOnce() + Send>;

    /// Where freed nodes wait, marked, until the domain goes (so a stale
    /// reader finds the mark rather than freed memory).
    pub(crate) type Graveyard = std::sync::Arc<std::sync::Mutex<Vec<Box<dyn Send>>>>;

    /// Readers pinned now, and destructors waiting for a grace period.
    pub(crate) struct Domain {
        pinned: AtomicUsize,
        deferred: Mutex<Vec<Deferred>>,
        graveyard: Graveyard,
    }

    impl Domain {
        pub(crate) fn new() -> Self {
            Domain {
                pinned: AtomicUsize::new(0),
                deferred: Mutex::new(Vec::new()),
                graveyard: Graveyard::default(),
            }
        }

        /// Where a node destructor puts the node it marked freed.
        pub(crate) fn graveyard(&self) -> Graveyard {
            Graveyard::clone(&self.graveyard)
        }

        /// Counts the reader in. The fence orders the count before every
        /// load of the tree that follows, against the writer's fence
        /// between unlinking and reading the count (see [`collect`]).
        ///
        /// [`collect`]: Domain::collect
        pub(crate) fn pin(&self) -> Guard<'_> {
            self.pinned.fetch_add(1, Ordering::SeqCst);
            fence(Ordering::SeqCst);
            Guard(self)
        }

        /// Runs every queued destructor if no reader is pinned. A reader
        /// that pins after the writer's fence sees the unlinking stores
        /// that came before it, so cannot reach what was queued; one that
        /// pinned before it is still counted.
        pub(crate) fn collect(&self) {
            fence(Ordering::SeqCst);
            if self.pinned.load(Ordering::SeqCst) != 0 {
                return;
            }
            let ready = std::mem::take(&mut *self.deferred.lock().expect("deferred list"));
            for f in ready {
                f();
            }
        }
    }

    impl Domain {
        /// Waits for no reader to be pinned, then runs every queued
        /// destructor.
        pub(crate) fn barrier(&self) {
            loop {
                fence(Ordering::SeqCst);
                if self.pinned.load(Ordering::SeqCst) == 0 {
                    break;
                }
                super::super::sync::spin_loop();
            }
            self.collect();
        }
    }

    impl Drop for Domain {
        fn drop(&mut self) {
            for f in std::mem::take(&mut *self.deferred.lock().expect("deferred list")) {
                f();
            }
        }
    }

    /// A pinned section; unpins on drop.
    pub(crate) struct Guard<'d>(&'d Domain);

    impl Guard<'_> {
        /// Queues `f` for after a grace period.
        pub(crate) fn defer(&self, f: impl FnOnce() + Send + 'static) {
            self.0
                .deferred
                .lock()
                .expect("deferred list")
                .push(Box::new(f));
        }
    }

    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            self.0.pinned.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

pub(crate) use imp::{Domain, Guard};

/// The domain on real threads: readers read through a pointer that a
/// writer keeps replacing, retiring the old target with `defer`; the
/// destructor poisons it (and keeps the memory, so a too-early destructor
/// is seen, not undefined). A reader that finds the poison read an object
/// after its grace period.
#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use std::time::{Duration, Instant};

    use super::Domain;

    const LIVE: u64 = 0x1157;
    const POISON: u64 = 0xdead;

    /// Sends a pointer to the destructor's thread.
    struct Obj(*const AtomicU64);
    // SAFETY: the pointee is an `AtomicU64`, shared between threads by
    // design; the graveyard keeps it alive to the end of the test.
    unsafe impl Send for Obj {}

    #[test]
    fn readers_never_see_an_object_after_its_grace_period() {
        let swaps: usize = if cfg!(miri) { 60 } else { 200_000 };
        let readers = if cfg!(miri) { 2 } else { 3 };
        let graveyard: Arc<Mutex<Vec<Box<AtomicU64>>>> = Arc::default();
        let first = Box::into_raw(Box::new(AtomicU64::new(LIVE)));
        let slot = Arc::new(AtomicPtr::new(first));
        let domain = Arc::new(Domain::new());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        for id in 0..readers {
            let (slot, domain, stop, tx) = (
                Arc::clone(&slot),
                Arc::clone(&domain),
                Arc::clone(&stop),
                tx.clone(),
            );
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let g = domain.pin();
                    // A nested section now and then: its end must not end
                    // the outer one.
                    let inner = (reads % 7 == id).then(|| domain.pin());
                    drop(inner);
                    let p = slot.load(Ordering::Acquire);
                    // SAFETY: `p` was in the slot after this section began,
                    // so its destructor waits for the section; the memory
                    // itself is never freed before the test ends.
                    let v = unsafe { &*p }.load(Ordering::Relaxed);
                    drop(g);
                    if v != LIVE {
                        tx.send(Err(format!(
                            "reader {id} read {v:#x}: an object after its grace period"
                        )))
                        .unwrap();
                        return;
                    }
                    reads += 1;
                }
                tx.send(Ok(reads)).unwrap();
            });
        }
        drop(tx);
        let deadline = Instant::now() + Duration::from_secs(120);
        for _ in 0..swaps {
            if Instant::now() > deadline {
                break;
            }
            let g = domain.pin();
            let new = Box::into_raw(Box::new(AtomicU64::new(LIVE)));
            let old = Obj(slot.swap(new, Ordering::AcqRel));
            let gy = Arc::clone(&graveyard);
            g.defer(move || {
                let old = old;
                // SAFETY: from `Box::into_raw`, retired once, and its grace
                // period is over; the box is kept in the graveyard.
                let b = unsafe { Box::from_raw(old.0.cast_mut()) };
                b.store(POISON, Ordering::Relaxed);
                gy.lock().unwrap().push(b);
            });
            drop(g);
            domain.collect();
        }
        stop.store(true, Ordering::Relaxed);
        let mut total = 0;
        for _ in 0..readers {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => panic!("{e}"),
                Err(_) => panic!("a reader did not stop within 120 s"),
            }
        }
        domain.barrier();
        let poisoned = graveyard.lock().unwrap().len();
        assert!(total > 0, "no read was checked");
        // Every object but the one in the slot went through a grace period.
        assert!(poisoned > 0, "no grace period ended");
        drop(domain);
        // SAFETY: the last object, never retired, and no reader is left.
        drop(unsafe { Box::from_raw(slot.load(Ordering::Relaxed)) });
    }
}
