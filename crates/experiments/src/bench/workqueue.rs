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
//! `Host::measured`. The verdict: the per-CPU queue's median
//! queue-to-start latency at most [`MAX_LATENCY_OVER_RAYON`] times rayon
//! spawn's, and an idle lazy queue on 64 CPUs down to at most
//! [`MAX_IDLE_LAZY_THREADS`] thread.
//!
//! # When the claim fails
//!
//! When the host's CPUs are all busy: a queued work item waits for its
//! CPU's worker to be scheduled, and klab's per-CPU worker is bound to the
//! submitting CPU's queue while rayon's pool lets any idle thread steal it,
//! so on a loaded machine the per-CPU queue's median latency rises past
//! rayon's. The idle-thread half fails for a lazy queue whose idle timeout
//! is longer than the wait (30 s here): its threads are still alive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use klab_workqueue::{Work, Workqueue};
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// The experiment (see the module documentation).
pub struct WorkqueueBench;

/// Who runs the tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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

use super::timing::host_cpus;

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

/// The per-CPU queue's median queue-to-start latency may be at most this
/// many times rayon spawn's.
pub const MAX_LATENCY_OVER_RAYON: f64 = 1.5;

/// An idle lazy workqueue on 64 logical CPUs keeps at most this many
/// threads.
pub const MAX_IDLE_LAZY_THREADS: usize = 1;

/// What one peer measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerData {
    /// Who ran the tasks.
    pub peer: Peer,
    /// Queue-to-start latencies, ns, sorted.
    pub latency_ns: Vec<u64>,
    /// Tiny tasks run for the throughput.
    pub tasks: usize,
    /// ns per tiny task.
    pub ns_per_task: f64,
    /// Threads kept idle with the host's CPUs.
    pub idle_host: usize,
    /// Threads kept idle with 64 logical CPUs (klab) or the host pool (rayon).
    pub idle_64: usize,
}

impl PeerData {
    /// A latency quantile, ns.
    pub fn latency(&self, q: f64) -> u64 {
        quantile(&self.latency_ns, q)
    }
}

/// What the bench measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkqueueData {
    /// Latency samples per peer.
    pub latency_samples: usize,
    /// The host's CPUs.
    pub host_cpus: usize,
    /// One entry per peer, in [`Peer::ALL`] order.
    pub peers: Vec<PeerData>,
}

impl WorkqueueData {
    /// One peer's measurements.
    pub fn of(&self, peer: Peer) -> Option<&PeerData> {
        self.peers.iter().find(|p| p.peer == peer)
    }
}

/// Latency samples of every peer, taken in rounds, every peer in each
/// round, so that a change in the host's state (a core's frequency,
/// another process waking up) weighs on all peers alike rather than on
/// the one measured at that moment. Sorted.
fn latencies(samples: usize, warmup: usize) -> Result<Vec<Vec<u64>>, ExperimentError> {
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
    Ok(lat)
}

/// `a / b`, NaN for `b == 0`.
fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        f64::NAN
    } else {
        a as f64 / b as f64
    }
}

impl Experiment for WorkqueueBench {
    type Data = WorkqueueData;

    const ID: Identity = Identity {
        name: "workqueue",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "klab's workqueues start work about as fast as rayon's spawn, and an idle lazy workqueue holds one thread",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<WorkqueueData, ExperimentError> {
        let samples = ctx.size(5000, 300);
        let warmup = ctx.size(200, 20);
        let items = ctx.size(100_000, 5_000);
        let thread_items = ctx.size(2_000, 200);
        let cpus = host_cpus();
        ctx.progress
            .begin("workqueue bench", (Peer::ALL.len() * 3) as u64);
        let lat = latencies(samples, warmup)?;
        let mut peers = Vec::new();
        for (peer, latency_ns) in Peer::ALL.into_iter().zip(lat) {
            ctx.progress.advance(1);
            let tasks = if peer == Peer::ThreadPerTask {
                thread_items
            } else {
                items
            };
            let ns_per_task = throughput_ns_per_task(peer, tasks).map_err(ExperimentError::Host)?;
            ctx.progress.advance(1);
            peers.push(PeerData {
                peer,
                latency_ns,
                tasks,
                ns_per_task,
                idle_host: idle_threads(peer, cpus).map_err(ExperimentError::Host)?,
                idle_64: idle_threads(peer, 64).map_err(ExperimentError::Host)?,
            });
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        Ok(WorkqueueData {
            latency_samples: samples,
            host_cpus: cpus,
            peers,
        })
    }

    fn judge(&self, d: &WorkqueueData) -> Verdict {
        let note = "Timings vary between runs and with the host's load; ratios are klab over rayon's spawn in the same process.".to_owned();
        let (Some(k), Some(lazy), Some(rayon)) = (
            d.of(Peer::KlabPerCpu),
            d.of(Peer::KlabLazy),
            d.of(Peer::RayonSpawn),
        ) else {
            return Verdict {
                holds: None,
                measured: "klab's queues or rayon spawn were not measured".into(),
                note,
            };
        };
        let (k50, r50) = (k.latency(0.5), rayon.latency(0.5));
        let holds =
            lazy.idle_64 <= MAX_IDLE_LAZY_THREADS && ratio(k50, r50) <= MAX_LATENCY_OVER_RAYON;
        Verdict {
            holds: Some(holds),
            measured: format!(
                "median queue-to-start: klab per-CPU {:.1} µs, lazy {:.1} µs, rayon spawn {:.1} µs (klab/rayon {:.2}, target <= {MAX_LATENCY_OVER_RAYON}); idle lazy workqueue on 64 CPUs: {} thread(s) (target <= {MAX_IDLE_LAZY_THREADS}); tiny tasks: klab {:.0} ns, rayon spawn {:.0} ns per task",
                k50 as f64 / 1e3,
                lazy.latency(0.5) as f64 / 1e3,
                r50 as f64 / 1e3,
                ratio(k50, r50),
                lazy.idle_64,
                k.ns_per_task,
                rayon.ns_per_task
            ),
            note,
        }
    }

    fn report(&self, d: &WorkqueueData, _: &Verdict, r: &mut Report) {
        let tasks = |p: Peer| d.of(p).map_or(0, |p| p.tasks);
        r.config("latency_samples", d.latency_samples)
            .config("throughput_tasks", tasks(Peer::RayonSpawn))
            .config("thread_per_task_tasks", tasks(Peer::ThreadPerTask))
            .config("host_cpus", d.host_cpus)
            .config("threshold.max_latency_over_rayon", MAX_LATENCY_OVER_RAYON)
            .config("threshold.max_idle_lazy_threads", MAX_IDLE_LAZY_THREADS);
        let rayon = d.of(Peer::RayonSpawn);
        let (r50, r99) = rayon.map_or((0, 0), |p| (p.latency(0.5), p.latency(0.99)));
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
        for p in &d.peers {
            let (m, q) = (p.latency(0.5), p.latency(0.99));
            t.row(cells![
                p.peer.name(),
                m as f64 / 1e3,
                q as f64 / 1e3,
                ratio(m, r50),
                ratio(q, r99)
            ]);
        }
        r.table(t);
        let base = rayon.map_or(f64::NAN, |p| p.ns_per_task);
        let mut t = Table::new(
            "throughput of tiny tasks (submit all, wait for all)",
            &["peer", "tasks", "ns per task", "vs rayon spawn"],
        );
        for p in &d.peers {
            t.row(cells![
                p.peer.name(),
                p.tasks,
                p.ns_per_task,
                p.ns_per_task / base
            ]);
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
        for p in &d.peers {
            t.row(cells![p.peer.name(), p.idle_host, p.idle_64]);
        }
        r.table(t);
        let mut s = Series::new(
            "queue-to-start latency distribution",
            Axis::linear("percentile", "%"),
            Axis::log("latency", "µs"),
        );
        for p in &d.peers {
            let pts = [1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9]
                .iter()
                .map(|q| [*q, p.latency(q / 100.0) as f64 / 1e3])
                .collect();
            s.line(p.peer.name(), pts);
        }
        r.series(s);
        r.host = Host::measured(vec![
            format!(
                "{} host CPUs; klab per-CPU queues use {} logical CPUs",
                d.host_cpus, d.host_cpus
            ),
            "rayon pools built with one thread per host CPU".to_owned(),
        ]);
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

    fn peer(peer: Peer, median_ns: u64, idle_64: usize) -> PeerData {
        PeerData {
            peer,
            latency_ns: vec![median_ns / 2, median_ns, median_ns * 4],
            tasks: 100,
            ns_per_task: 250.0,
            idle_host: 2,
            idle_64,
        }
    }

    fn data(klab_ns: u64, rayon_ns: u64, lazy_idle: usize) -> WorkqueueData {
        WorkqueueData {
            latency_samples: 3,
            host_cpus: 2,
            peers: vec![
                peer(Peer::KlabPerCpu, klab_ns, 64),
                peer(Peer::KlabLazy, klab_ns, lazy_idle),
                peer(Peer::RayonSpawn, rayon_ns, 2),
            ],
        }
    }

    #[test]
    fn slow_start_or_idle_threads_fail() {
        let v = WorkqueueBench.judge(&data(12_000, 10_000, 1));
        assert_eq!(v.holds, Some(true), "{}", v.measured);
        assert!(
            v.measured.contains("klab/rayon 1.20, target <= 1.5"),
            "{}",
            v.measured
        );
        // Twice rayon's median.
        assert_eq!(
            WorkqueueBench.judge(&data(20_000, 10_000, 1)).holds,
            Some(false)
        );
        // A lazy queue that kept its threads.
        let v = WorkqueueBench.judge(&data(12_000, 10_000, 8));
        assert_eq!(v.holds, Some(false));
        assert!(
            v.measured.contains("64 CPUs: 8 thread(s)"),
            "{}",
            v.measured
        );
        // Nothing to compare with.
        let mut d = data(12_000, 10_000, 1);
        d.peers.retain(|p| p.peer != Peer::RayonSpawn);
        assert_eq!(WorkqueueBench.judge(&d).holds, None);
    }
}
