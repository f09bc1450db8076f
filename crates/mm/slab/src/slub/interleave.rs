//! Named points in SLUB's 3.1+ slow paths where a test can stop a thread
//! and let another run: deterministic interleavings of the real code
//! (`tests_interleave`). Outside `cfg(test)` a point is an empty inline
//! function.

/// Where a thread is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Point {
    /// About to take a node's `list_lock`.
    ListLock,
    /// About to compare-and-swap a slab's freelist and counters, the old
    /// word already read (another thread's change in between makes the
    /// swap fail and retry).
    Cas,
}

/// The calling thread passes `p`.
#[inline(always)]
pub(crate) fn point(p: Point) {
    #[cfg(test)]
    hook::call(p);
    #[cfg(not(test))]
    let _ = p;
}

#[cfg(test)]
pub(crate) mod hook {
    use super::Point;
    use std::cell::RefCell;

    type Hook = Box<dyn FnMut(Point)>;

    thread_local! {
        static HOOK: RefCell<Option<Hook>> = const { RefCell::new(None) };
    }

    /// Calls `f` at every point the calling thread passes until [`clear`].
    pub(crate) fn set(f: impl FnMut(Point) + 'static) {
        HOOK.with(|h| *h.borrow_mut() = Some(Box::new(f)));
    }

    /// Removes the calling thread's hook.
    pub(crate) fn clear() {
        HOOK.with(|h| *h.borrow_mut() = None);
    }

    /// Calls the hook, if any; none while the thread's locals are being
    /// destroyed (a thread's exit flush passes points too).
    pub(super) fn call(p: Point) {
        let _ = HOOK.try_with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(p);
            }
        });
    }
}
