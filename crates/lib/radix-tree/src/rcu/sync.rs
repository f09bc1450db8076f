//! The synchronisation primitives the shared tree is built from, gathered
//! here so that building with `RUSTFLAGS="--cfg loom"` swaps in loom's
//! model-checked versions (as `klab-workqueue`'s `primitive` module does).
//! Nothing else in `rcu/` names `std::sync` directly.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU8, AtomicU64, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

// For the grace-period model of `epoch.rs` (under loom and Miri).
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, fence};
#[cfg(all(miri, not(loom)))]
pub(crate) use std::sync::atomic::{AtomicUsize, fence};

/// A busy-wait step: the CPU's pause hint, or under loom a yield, which
/// tells the model checker this thread waits for another.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(loom))]
    std::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}
