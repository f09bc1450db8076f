//! The shared default workqueue, keventd's role (kernel: `keventd_wq`, the
//! `events/N` threads, created by `init_workqueues()`), and the
//! `schedule_*` helpers that queue on it.
//!
//! It is a per-CPU workqueue with one logical CPU per host CPU
//! (`std::thread::available_parallelism`), created on first use and never
//! destroyed. Work that sleeps for long on it delays everyone's items, as
//! on keventd ("running a function with multi-second delays in keventd is
//! considered impolite", seed 003).

use std::sync::OnceLock;
use std::time::Duration;

use crate::queue::{Workqueue, cancel_work_sync, flush_work};
use crate::work::{DelayedWork, Work};

static KEVENTD: OnceLock<Workqueue> = OnceLock::new();

/// The default workqueue (`events`), created on first use.
///
/// # Panics
/// If the host refuses its threads at creation.
pub fn keventd() -> &'static Workqueue {
    KEVENTD.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        match Workqueue::create("events", n) {
            Ok(wq) => wq,
            Err(e) => panic!("cannot create the default workqueue: {e}"),
        }
    })
}

/// `schedule_work(work)`: queues on the default workqueue, on the calling
/// thread's CPU. Returns false if the item was already pending.
pub fn schedule_work(work: &Work) -> bool {
    keventd().queue_work(work)
}

/// `schedule_work_on(cpu, work)`.
///
/// # Panics
/// If `cpu` is not below the host's CPU count.
pub fn schedule_work_on(cpu: usize, work: &Work) -> bool {
    keventd().queue_work_on(cpu, work)
}

/// `schedule_delayed_work(dwork, delay)`.
pub fn schedule_delayed_work(dwork: &DelayedWork, delay: Duration) -> bool {
    keventd().queue_delayed_work(dwork, delay)
}

/// `flush_scheduled_work()`: flushes the default workqueue (everyone's
/// items on it, the kernel's notorious deadlock source when called with a
/// lock some item needs).
pub fn flush_scheduled_work() {
    keventd().flush();
}

/// `schedule_on_each_cpu(f)`: runs `f` once on every CPU of the default
/// workqueue and waits for all of them. `f` gets the CPU number.
pub fn schedule_on_each_cpu(f: impl Fn(usize) + Send + Sync + 'static) {
    let wq = keventd();
    let f = std::sync::Arc::new(f);
    let works: Vec<Work> = (0..wq.nr_cpus())
        .map(|cpu| {
            let f = f.clone();
            Work::new(move |_| f(cpu))
        })
        .collect();
    for (cpu, w) in works.iter().enumerate() {
        wq.queue_work_on(cpu, w);
    }
    for w in &works {
        flush_work(w);
    }
    for w in &works {
        cancel_work_sync(w);
    }
}
