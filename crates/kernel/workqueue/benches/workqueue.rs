//! klab's workqueues against rayon and a thread per task, in one process.
//!
//! * `queue_to_start/<peer>`: one task at a time, the time from just
//!   before the submit call to the first instruction of the task
//!   (`iter_custom` sums the per-task latencies; criterion reports their
//!   mean; `klab bench workqueue` reports the median and the 99th
//!   percentile).
//! * `tiny_tasks/<peer>`: submit 10,000 tasks that each bump a counter,
//!   wait for all of them.
//!
//! Peers: klab per-CPU workqueue (one logical CPU per host CPU), klab lazy
//! workqueue (same CPUs; the target CPU's thread exists after the first
//! task), `rayon::ThreadPool::spawn` and `::scope` (one thread per host
//! CPU), `std::thread::spawn` per task. klab queues one reused work item
//! in the latency bench (the kernel's pattern) and allocates one per task
//! in the throughput bench (as rayon boxes one per spawn).
//!
//! Run: `cargo bench -p klab-workqueue`. Threads alive while idle are
//! counts, not timings: `klab bench workqueue` reports them.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use klab_workqueue::{Work, Workqueue};

const TINY_TASKS: usize = 10_000;

fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

struct Probe {
    epoch: Instant,
    started_ns: AtomicU64,
    done: AtomicBool,
}

impl Probe {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
    fn hit(&self) {
        self.started_ns.store(self.now_ns(), Ordering::Relaxed);
        self.done.store(true, Ordering::Release);
    }
    fn wait(&self) {
        while !self.done.load(Ordering::Acquire) {
            thread::yield_now();
        }
    }
}

/// Sums `iters` queue-to-start latencies of `submit`.
fn latency(probe: &Probe, iters: u64, mut submit: impl FnMut()) -> Duration {
    let mut total = 0;
    for _ in 0..iters {
        probe.done.store(false, Ordering::Relaxed);
        let t0 = probe.now_ns();
        submit();
        probe.wait();
        total += probe.started_ns.load(Ordering::Relaxed).saturating_sub(t0);
    }
    Duration::from_nanos(total)
}

fn queue_to_start(c: &mut Criterion) {
    let n = cpus();
    let probe = Arc::new(Probe {
        epoch: Instant::now(),
        started_ns: AtomicU64::new(0),
        done: AtomicBool::new(false),
    });
    let mut g = c.benchmark_group("queue_to_start");

    for (name, wq) in [
        ("klab_per_cpu", Workqueue::create("bench", n).unwrap()),
        (
            "klab_lazy",
            Workqueue::create_lazy("bench", n, Duration::from_secs(3600)).unwrap(),
        ),
    ] {
        let p = probe.clone();
        let work = Work::new(move |_| p.hit());
        let cpu = n - 1;
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                latency(&probe, iters, || {
                    wq.queue_work_on(cpu, &work);
                })
            })
        });
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap();
    g.bench_function("rayon_spawn", |b| {
        b.iter_custom(|iters| {
            latency(&probe, iters, || {
                let p = probe.clone();
                pool.spawn(move || p.hit());
            })
        })
    });
    g.bench_function("rayon_scope", |b| {
        b.iter_custom(|iters| {
            latency(&probe, iters, || {
                let p = probe.clone();
                pool.scope(|s| s.spawn(move |_| p.hit()));
            })
        })
    });
    g.bench_function("thread_per_task", |b| {
        b.iter_custom(|iters| {
            latency(&probe, iters, || {
                let p = probe.clone();
                thread::spawn(move || p.hit());
            })
        })
    });
    g.finish();
}

fn tiny_tasks(c: &mut Criterion) {
    let n = cpus();
    let mut g = c.benchmark_group("tiny_tasks");
    g.throughput(Throughput::Elements(TINY_TASKS as u64));
    g.sample_size(20);

    for (name, wq) in [
        ("klab_per_cpu", Workqueue::create("bench", n).unwrap()),
        (
            "klab_lazy",
            Workqueue::create_lazy("bench", n, Duration::from_secs(3600)).unwrap(),
        ),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let count = Arc::new(AtomicUsize::new(0));
                for i in 0..TINY_TASKS {
                    let c = count.clone();
                    let w = Work::new(move |_| {
                        c.fetch_add(1, Ordering::Relaxed);
                    });
                    wq.queue_work_on(i % n, &w);
                }
                wq.flush();
                black_box(count.load(Ordering::Relaxed))
            })
        });
    }

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap();
    g.bench_function("rayon_spawn", |b| {
        b.iter(|| {
            let count = Arc::new(AtomicUsize::new(0));
            for _ in 0..TINY_TASKS {
                let c = count.clone();
                pool.spawn(move || {
                    c.fetch_add(1, Ordering::Relaxed);
                });
            }
            while count.load(Ordering::Acquire) < TINY_TASKS {
                thread::yield_now();
            }
        })
    });
    g.bench_function("rayon_scope", |b| {
        b.iter(|| {
            let count = AtomicUsize::new(0);
            pool.scope(|s| {
                for _ in 0..TINY_TASKS {
                    s.spawn(|_| {
                        count.fetch_add(1, Ordering::Relaxed);
                    });
                }
            });
            black_box(count.load(Ordering::Relaxed))
        })
    });
    g.finish();

    // A thread per task is two orders of magnitude slower: fewer tasks.
    let mut g = c.benchmark_group("tiny_tasks_thread_per_task");
    g.throughput(Throughput::Elements(1000));
    g.sample_size(10);
    g.bench_function("thread_per_task", |b| {
        b.iter(|| {
            let count = Arc::new(AtomicUsize::new(0));
            let hs: Vec<_> = (0..1000)
                .map(|_| {
                    let c = count.clone();
                    thread::spawn(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        })
    });
    g.finish();
}

// `criterion_group!` defines an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::queue_to_start, super::tiny_tasks);
}
criterion_main!(group::benches);
