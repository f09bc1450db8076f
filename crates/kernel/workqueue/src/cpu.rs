//! The "submitting CPU" on the host.
//!
//! In the kernel `queue_work()` queues on `smp_processor_id()`, the CPU the
//! caller runs on, and a worker thread is bound to its CPU, so work a work
//! function queues stays on that CPU. A workqueue here has a number of
//! *logical* CPUs chosen at creation (64 on a 2-core host is fine), so the
//! host's real CPU number means nothing to it. Instead every thread has a
//! logical CPU id:
//!
//! * a worker thread's id is its list's CPU (set when it starts);
//! * any other thread may set its own with [`set_current_cpu`] (or for a
//!   scope with [`with_cpu`]), the way a kernel thread is bound with
//!   `kthread_bind()`;
//! * a thread that never set one gets a stable *ordinal* the first time it
//!   asks: 0 for the first such thread, 1 for the next, and so on.
//!
//! A queue of `n` CPUs maps a thread's id to CPU `id % n` ([`current_cpu`]),
//! so the mapping is stable for the thread's life and spreads distinct
//! submitting threads over the CPUs. No thread is pinned to a host CPU:
//! a logical CPU is a list and its worker, not a core.

use std::cell::Cell;

// The ordinal counter is std's even under loom: it only names threads and
// is no part of the state loom checks (and loom atomics are not `const`).
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::primitive::thread_local;

/// Next ordinal for a thread that never set its CPU.
static NEXT_ORDINAL: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// I (per thread): this thread's logical CPU id, once set or assigned.
    // loom's `thread_local!` takes no `const { }` initialiser.
    #[allow(clippy::missing_const_for_thread_local)]
    static CURRENT: Cell<Option<usize>> = Cell::new(None);
}

/// Sets the calling thread's logical CPU: work it queues with
/// `queue_work()` goes to CPU `cpu % nr_cpus` of the queue.
pub fn set_current_cpu(cpu: usize) {
    CURRENT.with(|c| c.set(Some(cpu)));
}

/// Runs `f` with the calling thread's logical CPU set to `cpu`, then
/// restores the previous setting.
pub fn with_cpu<R>(cpu: usize, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<usize>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0;
            CURRENT.with(|c| c.set(prev));
        }
    }
    let _restore = Restore(CURRENT.with(|c| c.replace(Some(cpu))));
    f()
}

/// The calling thread's logical CPU id, assigning the next ordinal if it
/// has none yet.
pub fn current_id() -> usize {
    CURRENT.with(|c| match c.get() {
        Some(id) => id,
        None => {
            let id = NEXT_ORDINAL.fetch_add(1, Ordering::Relaxed);
            c.set(Some(id));
            id
        }
    })
}

/// The CPU, of a queue with `nr_cpus` CPUs, the calling thread submits
/// from: `current_id() % nr_cpus`.
#[inline]
pub fn current_cpu(nr_cpus: usize) -> usize {
    current_id() % nr_cpus.max(1)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_set_cpu_maps_modulo_the_queue_size_and_with_cpu_restores_it() {
        std::thread::spawn(|| {
            set_current_cpu(70);
            assert_eq!(current_cpu(64), 6);
            assert_eq!(with_cpu(3, || current_cpu(64)), 3);
            assert_eq!(current_cpu(64), 6);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn an_unset_thread_keeps_the_ordinal_it_was_given() {
        std::thread::spawn(|| {
            let first = current_id();
            assert_eq!(current_id(), first);
            assert_eq!(current_cpu(1), 0);
        })
        .join()
        .unwrap();
    }
}
