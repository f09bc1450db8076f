//! Grace periods: `rcu_read_lock()`, `rcu_read_unlock()` and `call_rcu()`
//! for the shared tree.
//!
//! A reader *pins* ([`Domain::pin`]) for as long as it holds references
//! into the tree; a writer that unlinks a node or removes an item hands its
//! destructor to [`Guard::defer`], which runs it only after every reader
//! pinned at that moment has unpinned: a grace period.
//!
//! Built on crossbeam-epoch (the default global collector): a pin is a
//! thread-local counter and one fence, and deferred destructors are batched
//! per thread and run when the global epoch has moved on twice.
//!
//! Under `--cfg loom` and under Miri the module is instead a small model of
//! the same contract: readers count themselves in, a writer queues
//! destructors, and they run when the writer, after its operation, finds no
//! reader pinned. Loom can see through it (crossbeam-epoch's own internals
//! would multiply the interleavings loom explores), and under loom a node
//! destructor marks the node freed instead of freeing it, so a reader that
//! reaches a node after its grace period fails an assertion (see
//! `layout.rs`). Miri runs it because crossbeam-epoch's intrusive list of
//! participants breaks Stacked Borrows, Miri's default aliasing model
//! (crossbeam-rs/crossbeam#545; crossbeam checks itself with Tree Borrows);
//! with the model, Miri checks this crate's own unsafe code (slot words,
//! pointer provenance, frees after the grace period) with real frees.

#[cfg(not(any(loom, miri)))]
mod imp {
    /// Where grace periods are counted: crossbeam-epoch's global collector,
    /// shared by every tree (a pin is per thread, not per tree).
    pub(crate) struct Domain;

    impl Domain {
        pub(crate) fn new() -> Self {
            Domain
        }

        /// `rcu_read_lock()`.
        #[inline]
        pub(crate) fn pin(&self) -> Guard<'_> {
            Guard(crossbeam_epoch::pin(), std::marker::PhantomData)
        }

        /// Called by a writer after it unpinned; crossbeam collects on its
        /// own as threads pin.
        #[inline]
        pub(crate) fn collect(&self) {}
    }

    /// A pinned section; unpins on drop (`rcu_read_unlock()`).
    pub(crate) struct Guard<'d>(crossbeam_epoch::Guard, std::marker::PhantomData<&'d Domain>);

    impl Guard<'_> {
        /// `call_rcu()`: runs `f` once every thread pinned now has unpinned.
        #[inline]
        pub(crate) fn defer(&self, f: impl FnOnce() + Send + 'static) {
            self.0.defer(f);
        }
    }
}

#[cfg(any(loom, miri))]
mod imp {
    use super::super::sync::{AtomicUsize, Mutex, Ordering, fence};

    type Deferred = Box<dyn FnOnce() + Send>;

    /// Where freed nodes wait, marked, until the domain goes (so a stale
    /// reader finds the mark rather than freed memory). Loom only.
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
        #[cfg_attr(not(loom), allow(dead_code))]
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
