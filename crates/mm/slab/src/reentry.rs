//! The allocator's rule against re-entry, and its checker.
//!
//! # The rule
//!
//! No code of the allocator that holds one of its locks calls anything
//! that can allocate: a node's `list_lock` ([`crate::slub`]), a zone lock
//! ([`crate::page_alloc`]), a slab's bit lock (2.6.24) and the global
//! allocator's list of threads ([`crate::global`]). Lists are intrusive
//! (linked through the slab frames' `next`, as mm/slub.c links its
//! `discard_page` list), and scratch space is on the stack or allocated
//! before the lock is taken (as 2.6.24's `kmem_cache_shrink()` allocates
//! its `slabs_by_inuse` array before `list_lock`).
//!
//! The rule is what keeps the allocator usable as *the* allocator: in the
//! `klab-slab-preload` library every `Vec` the allocator's own code grows
//! calls `malloc`, which is klab's; under `#[global_allocator]` the same
//! holds for a Rust program. A nested allocation on a thread that holds a
//! node's `list_lock` needs that very lock as soon as its CPU slab and
//! partial list are used up (a thread exiting has flushed both), and a
//! `std::sync::Mutex` is not re-entrant: the thread waits for itself for
//! ever. Even when it does not need the lock, the nested call would edit
//! the CPU state the outer call is in the middle of changing.
//!
//! # The checker
//!
//! In builds with debug assertions each thread counts the allocator locks
//! it holds ([`Held`]: taken with the lock, dropped with it), and the
//! global allocator's entry points call [`assert_no_lock_held`]. A
//! violation writes one line to standard error without allocating and
//! aborts: a panic would format its message with the allocator whose lock
//! is held. Release builds count nothing. Under loom the count is off (a
//! model's threads share the host thread that runs them).

#[cfg(all(debug_assertions, not(loom)))]
use std::cell::Cell;

#[cfg(all(debug_assertions, not(loom)))]
thread_local! {
    /// Allocator locks the thread holds (const-initialised and without a
    /// destructor, so it is usable while the thread exits).
    static HELD: Cell<u32> = const { Cell::new(0) };
}

/// The calling thread has taken an allocator lock (for locks without a
/// guard, such as a slab's bit lock; pair with [`released`]).
#[inline(always)]
pub(crate) fn acquired() {
    #[cfg(all(debug_assertions, not(loom)))]
    HELD.with(|h| h.set(h.get() + 1));
}

/// The calling thread has dropped an allocator lock.
#[inline(always)]
pub(crate) fn released() {
    #[cfg(all(debug_assertions, not(loom)))]
    HELD.with(|h| h.set(h.get() - 1));
}

/// A token for one allocator lock the thread holds; counts while it
/// lives (debug builds only; zero-sized).
#[must_use = "the count drops with the token"]
pub(crate) struct Held(());

impl Held {
    /// The calling thread has taken an allocator lock.
    #[inline(always)]
    pub(crate) fn acquire() -> Held {
        acquired();
        Held(())
    }
}

impl Drop for Held {
    #[inline(always)]
    fn drop(&mut self) {
        released();
    }
}

/// A lock's guard, counted as an allocator lock while it lives: the
/// lock is released first, then the count (fields drop in order).
pub(crate) struct Locked<G> {
    guard: G,
    _held: Held,
}

impl<G> Locked<G> {
    /// Counts `guard`, just taken.
    #[inline(always)]
    pub(crate) fn new(guard: G) -> Self {
        Locked {
            guard,
            _held: Held::acquire(),
        }
    }
}

impl<G: std::ops::Deref> std::ops::Deref for Locked<G> {
    type Target = G::Target;
    #[inline(always)]
    fn deref(&self) -> &G::Target {
        &self.guard
    }
}

impl<G: std::ops::DerefMut> std::ops::DerefMut for Locked<G> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut G::Target {
        &mut self.guard
    }
}

/// Allocator locks the calling thread holds (always 0 in release builds).
#[inline(always)]
pub fn locks_held() -> u32 {
    #[cfg(all(debug_assertions, not(loom)))]
    {
        HELD.with(Cell::get)
    }
    #[cfg(not(all(debug_assertions, not(loom))))]
    {
        0
    }
}

/// Aborts the process, with a message, if the calling thread holds an
/// allocator lock: it is allocating or freeing from inside the allocator
/// (see the module header). Free in release builds.
#[inline(always)]
pub(crate) fn assert_no_lock_held() {
    #[cfg(all(debug_assertions, not(loom)))]
    if HELD.with(Cell::get) != 0 {
        reentered();
    }
}

#[cfg(all(debug_assertions, not(loom)))]
#[cold]
#[inline(never)]
fn reentered() -> ! {
    const MSG: &[u8] = b"klab-slab: allocation while this thread holds an allocator lock \
(a re-entrant malloc from inside the allocator; see klab_slab::reentry)\n";
    // SAFETY: write(2) of a static buffer to standard error; nothing here
    // allocates.
    unsafe { libc::write(2, MSG.as_ptr().cast(), MSG.len()) };
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_count_follows_the_locks_a_thread_holds() {
        let debug = u32::from(cfg!(all(debug_assertions, not(loom))));
        let (m, n) = (
            crate::slub::KmemCacheNode::NEW,
            crate::slub::KmemCacheNode::NEW,
        );
        assert_eq!(locks_held(), 0);
        {
            let _a = m.lock();
            assert_eq!(locks_held(), debug);
            let _b = n.lock();
            assert_eq!(locks_held(), 2 * debug);
            // Another thread's count is its own.
            std::thread::scope(|s| s.spawn(|| assert_eq!(locks_held(), 0)).join().unwrap());
        }
        assert_eq!(locks_held(), 0);
    }
}
