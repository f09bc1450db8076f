//! `klab bench workqueue`: klab's workqueues against rayon and a
//! thread per task, in one process, on the host's real threads.
//!
//! Three measurements, the ones the workqueue crate's criterion benches
//! (`crates/kernel/workqueue/benches/workqueue.rs`) take more thoroughly:
//!
//! * **queue-to-start latency**: the time from just before the submit call
//!   to the first instruction of the task, one task at a time, each waited
//!   for before the next; median and 99th percentile of the samples,
//!   taken in rounds that visit every peer in turn.
//!   klab queues one reused work item (the kernel's pattern: the
//!   `work_struct` lives in its owner); rayon and the thread spawn box a
//!   closure per task.
//! * **throughput of tiny tasks**: submit `n` tasks that each bump a
//!   counter, then wait for all; time per task. klab allocates a work item
//!   per task (as rayon boxes one) and spreads them over the CPUs with
//!   `queue_work_on(i % nr_cpus)`.
//! * **threads alive while idle**: how many threads each keeps once the
//!   work is done (a count, not a timing): a per-CPU queue keeps one per
//!   CPU, a lazy queue falls back to its core thread, rayon keeps its pool,
//!   a thread per task keeps none.
//!
//! The ratios are klab over rayon's `spawn` (below 1 is faster). Numbers
//! vary from run to run and with the host's load: the report says
//! `Host::measured`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use klab_workqueue::{Work, Workqueue};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// The experiment (see the module documentation).
pub struct WorkqueueBench;

/// Who runs the tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// klab per-CPU workqueue, one logical CPU per host CPU.
    KlabPerCpu,
    /// klab lazy workqueue (its target CPU's thread created on first use).
    KlabLazy,
    /// `rayon::ThreadPool::spawn`, a pool of one thread per host CPU.
    RayonSpawn,
    /// `rayon::ThreadPool::scope` with one `spawn` per task.
    RayonScope,
    /// `std::thread::spawn` per task.
    ThreadPerTask,
}

impl Peer {
    /// Every peer, klab first.
    pub const ALL: [Peer; 5] = [
        Peer::KlabPerCpu,
        Peer::KlabLazy,
        Peer::RayonSpawn,
        Peer::RayonScope,
        Peer::ThreadPerTask,
    ];

    /// Name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Peer::KlabPerCpu => "klab per-CPU workqueue",
            Peer::KlabLazy => "klab lazy workqueue",
            Peer::RayonSpawn => "rayon spawn",
            Peer::RayonScope => "rayon scope",
            Peer::ThreadPerTask => "thread per task",
        }
    }
}

/// Host CPUs.
fn host_cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Waits for `flag` without hogging a core the worker may need.
fn wait_flag(flag: &AtomicBool) {
    let mut spins = 0u32;
    while !flag.load(Ordering::Acquire) {
        if spins < 64 {
            std::hint::spin_loop();
            spins += 1;
        } else {
            thread::yield_now();
        }
    }
}

/// What a latency task does: record when it started, then raise `done`.
struct Probe {
    epoch: Instant,
    started_ns: AtomicU64,
    done: AtomicBool,
}

impl Probe {
    fn new() -> Arc<Probe> {
        Arc::new(Probe {
            epoch: Instant::now(),
            started_ns: AtomicU64::new(0),
            done: AtomicBool::new(false),
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn hit(&self) {
        self.started_ns.store(self.now_ns(), Ordering::Relaxed);
        self.done.store(true, Ordering::Release);
    }
}

/// Rounds the latency samples are taken in, all peers in each round.
const LATENCY_ROUNDS: usize = 10;

/// Queue-to-start latencies in nanoseconds, `warmup` discarded first.
pub fn latency_ns(peer: Peer, samples: usize, warmup: usize) -> Result<Vec<u64>, String> {
    let cpus = host_cpus();
    let probe = Probe::new();
    let mut out = Vec::with_capacity(samples);
    let mut submit: Box<dyn FnMut()> = match peer {
        Peer::KlabPerCpu | Peer::KlabLazy => {
            let wq = if peer == Peer::KlabPerCpu {
                Workqueue::create("bench", cpus)
            } else {
                Workqueue::create_lazy("bench", cpus, Duration::from_secs(3600))
            }
            .map_err(|e| e.to_string())?;
            let p = probe.clone();
            let work = Work::new(move |_| p.hit());
            // Submit from the last CPU: for the lazy queue that is not the
            // core, so the first sample creates the thread (warm-up).
            let cpu = cpus - 1;
            Box::new(move || {
                wq.queue_work_on(cpu, &work);
            })
        }
        Peer::RayonSpawn | Peer::RayonScope => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(cpus)
                .build()
                .map_err(|e| e.to_string())?;
            let p = probe.clone();
            if peer == Peer::RayonSpawn {
                Box::new(move || {
                    let p = p.clone();
                    pool.spawn(move || p.hit());
                })
            } else {
                Box::new(move || {
                    let p = p.clone();
                    pool.scope(|s| s.spawn(move |_| p.hit()));
                })
            }
        }
        Peer::ThreadPerTask => {
            let p = probe.clone();
            Box::new(move || {
                let p = p.clone();
                thread::spawn(move || p.hit());
            })
        }
    };
    for i in 0..samples + warmup {
        probe.done.store(false, Ordering::Relaxed);
        let t0 = probe.now_ns();
        submit();
        wait_flag(&probe.done);
        let t1 = probe.started_ns.load(Ordering::Relaxed);
        if i >= warmup {
            out.push(t1.saturating_sub(t0));
        }
    }
    Ok(out)
}

/// Nanoseconds per task to run `n` tiny tasks (each bumps a counter).
pub fn throughput_ns_per_task(peer: Peer, n: usize) -> Result<f64, String> {
    let cpus = host_cpus();
    let count = Arc::new(AtomicUsize::new(0));
    let start;
    match peer {
        Peer::KlabPerCpu | Peer::KlabLazy => {
            let wq = if peer == Peer::KlabPerCpu {
                Workqueue::create("bench", cpus)
            } else {
                Workqueue::create_lazy("bench", cpus, Duration::from_secs(3600))
            }
            .map_err(|e| e.to_string())?;
            start = Instant::now();
            for i in 0..n {
                let c = count.clone();
                let w = Work::new(move |_| {
                    c.fetch_add(1, Ordering::Relaxed);
                });
                wq.queue_work_on(i % cpus, &w);
            }
            wq.flush();
        }
        Peer::RayonSpawn | Peer::RayonScope => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(cpus)
                .build()
                .map_err(|e| e.to_string())?;
            start = Instant::now();
            if peer == Peer::RayonSpawn {
                for _ in 0..n {
                    let c = count.clone();
                    pool.spawn(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                    });
                }
                while count.load(Ordering::Acquire) < n {
                    thread::yield_now();
                }
            } else {
                pool.scope(|s| {
                    for _ in 0..n {
                        let c = count.clone();
                        s.spawn(move |_| {
                            c.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        }
        Peer::ThreadPerTask => {
            start = Instant::now();
            let handles: Vec<_> = (0..n)
                .map(|_| {
                    let c = count.clone();
                    thread::spawn(move || {
                        c.fetch_add(1, Ordering::Relaxed);
                    })
                })
                .collect();
            for h in handles {
                h.join().map_err(|_| "a task thread panicked".to_owned())?;
            }
        }
    }
    let elapsed = start.elapsed();
    if count.load(Ordering::Acquire) != n {
        return Err(format!(
            "{}: {} of {n} tasks ran",
            peer.name(),
            count.load(Ordering::Acquire)
        ));
    }
    Ok(elapsed.as_nanos() as f64 / n as f64)
}

/// Threads a peer keeps once its work is done, on a machine of
/// `logical_cpus` CPUs (klab) or the host's (rayon).
pub fn idle_threads(peer: Peer, logical_cpus: usize) -> Result<usize, String> {
    match peer {
        Peer::KlabPerCpu => {
            let wq = Workqueue::create("idle", logical_cpus).map_err(|e| e.to_string())?;
            Ok(wq.nr_threads())
        }
        Peer::KlabLazy => {
            let wq = Workqueue::create_lazy("idle", logical_cpus, Duration::from_millis(10))
                .map_err(|e| e.to_string())?;
            // Use a handful of CPUs, then let their threads go idle.
            let w = Work::new(|_| {});
            for cpu in (0..logical_cpus).step_by((logical_cpus / 8).max(1)) {
                wq.queue_work_on(cpu, &w);
                wq.flush();
            }
            if !wq.wait_threads(|n| n <= 1, Duration::from_secs(30)) {
                return Err("lazy threads did not exit within 30 s".to_owned());
            }
            Ok(wq.nr_threads())
        }
        Peer::RayonSpawn | Peer::RayonScope => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(host_cpus())
                .build()
                .map_err(|e| e.to_string())?;
            pool.install(|| ());
            Ok(pool.current_num_threads())
        }
        Peer::ThreadPerTask => Ok(0),
    }
}

/// The `q`-quantile of sorted samples (nearest rank).
fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl WorkqueueBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "workqueue",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "klab's workqueues start work about as fast as rayon's spawn, and an idle lazy workqueue holds one thread",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for WorkqueueBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let samples = ctx.size(5000, 300);
        let warmup = ctx.size(200, 20);
        let items = ctx.size(100_000, 5_000);
        let thread_items = ctx.size(2_000, 200);
        let cpus = host_cpus();
        r.config("latency_samples", samples)
            .config("throughput_tasks", items)
            .config("thread_per_task_tasks", thread_items)
            .config("host_cpus", cpus);

        ctx.progress
            .begin("workqueue bench", (Peer::ALL.len() * 3) as u64);
        // Latency samples are taken in rounds, every peer in each round, so
        // that a change in the host's state (a core's frequency, another
        // process waking up) weighs on all peers alike rather than on the
        // one measured at that moment.
        let mut lat = vec![Vec::with_capacity(samples); Peer::ALL.len()];
        for round in 0..LATENCY_ROUNDS {
            let n = samples / LATENCY_ROUNDS + usize::from(round < samples % LATENCY_ROUNDS);
            for (peer, l) in Peer::ALL.into_iter().zip(&mut lat) {
                l.extend(latency_ns(peer, n, warmup).map_err(ExperimentError::Host)?);
            }
        }
        for l in &mut lat {
            l.sort_unstable();
        }
        let mut thr = Vec::new();
        let mut idle = Vec::new();
        for peer in Peer::ALL {
            ctx.progress.advance(1);
            let n = if peer == Peer::ThreadPerTask {
                thread_items
            } else {
                items
            };
            thr.push(throughput_ns_per_task(peer, n).map_err(ExperimentError::Host)?);
            ctx.progress.advance(1);
            idle.push((
                idle_threads(peer, cpus).map_err(ExperimentError::Host)?,
                idle_threads(peer, 64).map_err(ExperimentError::Host)?,
            ));
            ctx.progress.advance(1);
        }
        ctx.progress.end();

        let rayon = Peer::ALL
            .iter()
            .position(|p| *p == Peer::RayonSpawn)
            .unwrap_or(0);
        let (r50, r99) = (quantile(&lat[rayon], 0.5), quantile(&lat[rayon], 0.99));
        let ratio = |a: u64, b: u64| {
            if b == 0 {
                f64::NAN
            } else {
                a as f64 / b as f64
            }
        };
        let mut t = Table::new(
            "queue-to-start latency, one task at a time",
            &[
                "peer",
                "median (µs)",
                "p99 (µs)",
                "median / rayon spawn",
                "p99 / rayon spawn",
            ],
        );
        for (peer, l) in Peer::ALL.iter().zip(&lat) {
            let (m, p) = (quantile(l, 0.5), quantile(l, 0.99));
            t.row(cells![
                peer.name(),
                m as f64 / 1e3,
                p as f64 / 1e3,
                ratio(m, r50),
                ratio(p, r99)
            ]);
        }
        r.table(t);

        let mut t = Table::new(
            "throughput of tiny tasks (submit all, wait for all)",
            &["peer", "tasks", "ns per task", "vs rayon spawn"],
        );
        for (peer, ns) in Peer::ALL.iter().zip(&thr) {
            let n = if *peer == Peer::ThreadPerTask {
                thread_items
            } else {
                items
            };
            t.row(cells![peer.name(), n, *ns, *ns / thr[rayon]]);
        }
        r.table(t);

        let mut t = Table::new(
            "threads alive while idle",
            &[
                "peer",
                "host CPUs",
                "64 logical CPUs (klab) / host pool (rayon)",
            ],
        );
        for (peer, (h, l)) in Peer::ALL.iter().zip(&idle) {
            t.row(cells![peer.name(), *h, *l]);
        }
        r.table(t);

        let mut s = Series::new(
            "queue-to-start latency distribution",
            Axis::linear("percentile", "%"),
            Axis::log("latency", "µs"),
        );
        for (peer, l) in Peer::ALL.iter().zip(&lat) {
            let pts = [1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9]
                .iter()
                .map(|q| [*q, quantile(l, q / 100.0) as f64 / 1e3])
                .collect();
            s.line(peer.name(), pts);
        }
        r.series(s);

        let k50 = quantile(&lat[0], 0.5);
        let lazy50 = quantile(&lat[1], 0.5);
        let lazy_idle = idle[1].1;
        let holds = lazy_idle <= 1 && (k50 as f64) <= 1.5 * r50 as f64;
        r.verdict = Verdict {
            holds: Some(holds),
            measured: format!(
                "median queue-to-start: klab per-CPU {:.1} µs, lazy {:.1} µs, rayon spawn {:.1} µs (klab/rayon {:.2}, target <= 1.5); idle lazy workqueue on 64 CPUs: {} thread(s) (target <= 1); tiny tasks: klab {:.0} ns, rayon spawn {:.0} ns per task",
                k50 as f64 / 1e3,
                lazy50 as f64 / 1e3,
                r50 as f64 / 1e3,
                ratio(k50, r50),
                lazy_idle,
                thr[0],
                thr[rayon]
            ),
            note: "Timings vary between runs and with the host's load; ratios are klab over rayon's spawn in the same process.".to_owned(),
        };
        r.host = Host::measured(vec![
            format!("{cpus} host CPUs; klab per-CPU queues use {cpus} logical CPUs"),
            "rayon pools built with one thread per host CPU".to_owned(),
        ]);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let s = [10, 20, 30, 40];
        assert_eq!(quantile(&s, 0.5), 20);
        assert_eq!(quantile(&s, 0.99), 40);
        assert_eq!(quantile(&s, 0.0), 10);
        assert_eq!(quantile(&[], 0.5), 0);
    }

    #[test]
    fn every_peer_runs_every_task_and_reports_its_idle_threads() {
        for peer in Peer::ALL {
            assert_eq!(latency_ns(peer, 5, 1).unwrap().len(), 5);
            assert!(throughput_ns_per_task(peer, 50).is_ok());
        }
        assert_eq!(idle_threads(Peer::KlabPerCpu, 8).unwrap(), 8);
        assert_eq!(idle_threads(Peer::KlabLazy, 8).unwrap(), 1);
        assert_eq!(idle_threads(Peer::ThreadPerTask, 8).unwrap(), 0);
    }
}
