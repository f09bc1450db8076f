//! The workqueues of a 64-CPU 2.6.31 machine on real threads
//! (`klab-workqueue`, 64 logical CPUs), a workload queueing work the way
//! their subsystems do, and the OS threads the process holds, counted in
//! `/proc/self/task` over time.
//!
//! ```text
//!   generator thread   every TICK: for each source and each of its CPUs,
//!                      with probability rate x TICK, queue_work_on(cpu, item)
//!                      (an item still pending is not queued again: the
//!                      subsystem's work_struct is busy)
//!   work item          takes its queue time, records queue-to-start latency,
//!                      then sleeps for the subsystem's typical duration
//!   sampler thread     every SAMPLE: /proc/self/task entries (all threads),
//!                      and those whose comm is one of the queues' threads
//!                      ("rpciod/12", "khelper")
//! ```
//!
//! The same seeded workload runs on an eager machine (every per-CPU queue
//! `create_workqueue()`) and a lazy one (the four the series converted
//! `create_lazy_workqueue()`), and under two loads: the subsystems' own
//! ([`Load::Subsystems`]) and one that queues to every CPU of every lazy
//! candidate faster than the idle timeout ([`Load::AllCpus`]).
//!
//! Threads are counted by name, so threads of other work in the same
//! process (a test harness) do not count; [`RUN_LOCK`] keeps two runs of
//! this module from overlapping in one process.

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use klab_workqueue::{Kind, Work, Workqueue};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::model::{Role, THREADS};

/// Serialises real runs within one process (the thread count is the
/// process's).
pub static RUN_LOCK: Mutex<()> = Mutex::new(());

/// What the generator queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Load {
    /// Each subsystem's own pattern ([`SOURCES`]).
    Subsystems,
    /// Every CPU of every lazy candidate, [`ALL_CPU_RATE`] items a second
    /// each, plus the other queues' own pattern.
    AllCpus,
}

impl Load {
    /// A name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Load::Subsystems => "the subsystems' own load",
            Load::AllCpus => "every CPU of every lazy queue busy",
        }
    }
}

/// Items per second per CPU on each lazy candidate under [`Load::AllCpus`]:
/// a CPU then goes `1/20 s` on average between items, well inside the idle
/// timeout, so its thread never exits.
pub const ALL_CPU_RATE: f64 = 20.0;

/// One source of work: which queue, from which CPUs, how often, how long.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// The workqueue.
    pub queue: &'static str,
    /// First and last CPU (inclusive) that queue.
    pub cpus: (usize, usize),
    /// Items per CPU per second.
    pub per_second: f64,
    /// Active between these fractions of the run.
    pub window: (f64, f64),
    /// How long an item runs (sleeps, as these items mostly wait), µs.
    pub duration_us: u64,
    /// What in the kernel queues it.
    pub what: &'static str,
}

const ALL: (f64, f64) = (0.0, 1.0);

/// The subsystems' load, per queue (rates and durations are klab's
/// choices, scaled to a run of seconds; who queues and where follows the
/// 2.6.31 sources named).
pub const SOURCES: &[Source] = &[
    Source {
        queue: "events",
        cpus: (0, 63),
        per_second: 1.0,
        window: ALL,
        duration_us: 20,
        what: "vmstat_update() on every CPU each second (mm/vmstat.c)",
    },
    Source {
        queue: "kblockd",
        cpus: (0, 3),
        per_second: 100.0,
        window: ALL,
        duration_us: 20,
        what: "blk_unplug_work() from the disk-interrupt CPUs (block/blk-core.c)",
    },
    Source {
        queue: "rpciod",
        cpus: (8, 15),
        per_second: 20.0,
        window: ALL,
        duration_us: 200,
        what: "rpc_async_schedule(): NFS traffic from 8 CPUs (net/sunrpc/sched.c)",
    },
    Source {
        queue: "aio",
        cpus: (16, 31),
        per_second: 50.0,
        window: (1.0 / 3.0, 2.0 / 3.0),
        duration_us: 50,
        what: "aio_kick_handler(): a database's AIO from 16 CPUs, middle third (fs/aio.c)",
    },
    Source {
        queue: "ata",
        cpus: (0, 1),
        per_second: 2.0,
        window: ALL,
        duration_us: 2_000,
        what: "ata_pio_task(): PIO polling from the disk-interrupt CPUs (drivers/ata/libata-sff.c)",
    },
    Source {
        queue: "crypto",
        cpus: (40, 41),
        per_second: 0.2,
        window: ALL,
        duration_us: 100,
        what: "crypto's async completions, rarely (crypto/crypto_wq.c)",
    },
    Source {
        queue: "khelper",
        cpus: (0, 0),
        per_second: 1.0,
        window: ALL,
        duration_us: 1_000,
        what: "__call_usermodehelper(): hotplug events (kernel/kmod.c)",
    },
    Source {
        queue: "kacpi_notify",
        cpus: (0, 0),
        per_second: 0.5,
        window: ALL,
        duration_us: 100,
        what: "acpi_os_execute_deferred(): ACPI notifications (drivers/acpi/osl.c)",
    },
];

/// The run's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealConfig {
    /// Logical CPUs.
    pub nr_cpus: usize,
    /// Length of the workload, ms.
    pub duration_ms: u64,
    /// Idle period after which a lazy thread exits, ms.
    pub idle_timeout_ms: u64,
    /// Generator tick, ms.
    pub tick_ms: u64,
    /// Thread-count sampling period, ms.
    pub sample_ms: u64,
}

/// One thread-count sample.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Time since the workload started, ms.
    pub t_ms: f64,
    /// Entries of `/proc/self/task` beyond those before the queues were
    /// created.
    pub process: u64,
    /// Entries named as one of the queues' threads.
    pub named: u64,
}

/// Queue-to-start latencies, summarised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Items measured.
    pub n: u64,
    /// Mean, µs.
    pub mean_us: f64,
    /// Median, µs.
    pub p50_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// Largest, µs.
    pub max_us: f64,
}

impl Latency {
    /// Summarises latencies given in nanoseconds.
    pub fn of(ns: &mut [u64]) -> Latency {
        if ns.is_empty() {
            return Latency::default();
        }
        ns.sort_unstable();
        let at = |q: f64| {
            ns[(((ns.len() as f64) * q).ceil() as usize).clamp(1, ns.len()) - 1] as f64 / 1e3
        };
        Latency {
            n: ns.len() as u64,
            mean_us: ns.iter().map(|&x| x as f64).sum::<f64>() / ns.len() as f64 / 1e3,
            p50_us: at(0.5),
            p99_us: at(0.99),
            max_us: ns[ns.len() - 1] as f64 / 1e3,
        }
    }
}

/// One machine under one load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RealRun {
    /// The load.
    pub load: Load,
    /// Lazy machine (the four candidates lazy).
    pub lazy: bool,
    /// Named threads right after the queues were created.
    pub at_boot: u64,
    /// Samples over the run.
    pub samples: Vec<Sample>,
    /// Latency of every item.
    pub latency: Latency,
    /// Latency of the lazy candidates' items.
    pub latency_candidates: Latency,
    /// Items queued.
    pub queued: u64,
    /// Items not queued because still pending.
    pub coalesced: u64,
    /// Threads started over the run (initial ones included).
    pub threads_created: u64,
    /// Lazy threads that exited idle.
    pub threads_exited_idle: u64,
    /// Most threads each queue had at a sample, by queue.
    pub per_queue_peak: Vec<(String, u64)>,
}

impl RealRun {
    /// Mean named threads over the samples.
    pub fn mean(&self) -> f64 {
        self.samples.iter().map(|s| s.named as f64).sum::<f64>() / self.samples.len().max(1) as f64
    }

    /// Most named threads at a sample.
    pub fn peak(&self) -> u64 {
        self.samples.iter().map(|s| s.named).max().unwrap_or(0)
    }

    /// Mean of all the process's threads beyond the baseline.
    pub fn mean_process(&self) -> f64 {
        self.samples.iter().map(|s| s.process as f64).sum::<f64>()
            / self.samples.len().max(1) as f64
    }
}

/// `/proc/self/task`: (entries, entries named as a thread of `queues`).
fn count_threads(queues: &[&str]) -> std::io::Result<(u64, u64)> {
    let mut total = 0;
    let mut named = 0;
    for e in fs::read_dir("/proc/self/task")? {
        let Ok(e) = e else { continue };
        total += 1;
        // A thread may exit between the listing and the read.
        let Ok(comm) = fs::read_to_string(e.path().join("comm")) else {
            continue;
        };
        let comm = comm.trim_end();
        let base = comm.split_once('/').map_or(comm, |(b, _)| b);
        if queues.contains(&base) {
            named += 1;
        }
    }
    Ok((total, named))
}

/// Waits (at most 5 s) until the named count satisfies `pred`: a new
/// thread names itself once it runs, and an exited one leaves
/// `/proc/self/task` just after it is joined. Returns the last count.
fn settle(queues: &[&str], pred: impl Fn(u64) -> bool) -> std::io::Result<(u64, u64)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = count_threads(queues)?;
        if pred(c.1) || Instant::now() >= deadline {
            return Ok(c);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A work item that knows when it was queued.
struct Item {
    work: Work,
    queued_at: Arc<Mutex<Option<Instant>>>,
}

fn item(duration: Duration, lat: Arc<Mutex<Vec<u64>>>) -> Item {
    let queued_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let q = queued_at.clone();
    let work = Work::new(move |_| {
        let at = q.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(at) = at {
            let ns = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
            lat.lock().unwrap_or_else(|e| e.into_inner()).push(ns);
        }
        std::thread::sleep(duration);
    });
    Item { work, queued_at }
}

/// Creates the machine's workqueues.
fn create(cfg: &RealConfig, lazy: bool) -> Result<Vec<Workqueue>, String> {
    THREADS
        .iter()
        .filter(|l| l.role.is_workqueue())
        .map(|l| {
            let kind = match l.role {
                Role::SingleWq => Kind::SingleThread,
                Role::LazyCandidate if lazy => Kind::Lazy,
                _ => Kind::PerCpu,
            };
            Workqueue::builder(l.name, cfg.nr_cpus)
                .kind(kind)
                .idle_timeout(Duration::from_millis(cfg.idle_timeout_ms))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// The sources of a load: the subsystems' own, or with every lazy
/// candidate busy on every CPU.
pub fn sources(load: Load, nr_cpus: usize) -> Vec<Source> {
    let mut v: Vec<Source> = SOURCES.to_vec();
    if load == Load::AllCpus {
        let candidates: Vec<&'static str> = THREADS
            .iter()
            .filter(|l| l.role == Role::LazyCandidate)
            .map(|l| l.name)
            .collect();
        v.retain(|s| !candidates.contains(&s.queue));
        for q in candidates {
            v.push(Source {
                queue: q,
                cpus: (0, nr_cpus - 1),
                per_second: ALL_CPU_RATE,
                window: ALL,
                duration_us: 50,
                what: "every CPU, faster than the idle timeout",
            });
        }
    }
    v
}

/// Runs one machine under one load. `rng` draws the workload, so one seed
/// gives both machines the same decisions.
///
/// # Errors
/// The host refused a thread, or `/proc/self/task` cannot be read.
pub fn run(
    cfg: &RealConfig,
    load: Load,
    lazy: bool,
    mut rng: klab_model::rng::Rng,
) -> Result<RealRun, String> {
    let _guard = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let names: Vec<&str> = THREADS
        .iter()
        .filter(|l| l.role.is_workqueue())
        .map(|l| l.name)
        .collect();
    let io = |e: std::io::Error| format!("/proc/self/task: {e}");
    let (baseline, _) = count_threads(&names).map_err(io)?;
    let wqs = create(cfg, lazy)?;
    let started: u64 = wqs.iter().map(|w| w.nr_threads() as u64).sum();
    let (_, at_boot) = settle(&names, |n| n >= started).map_err(io)?;
    let srcs = sources(load, cfg.nr_cpus);
    let lat_all = Arc::new(Mutex::new(Vec::new()));
    let lat_cand = Arc::new(Mutex::new(Vec::new()));
    let is_candidate = |q: &str| {
        THREADS
            .iter()
            .any(|l| l.name == q && l.role == Role::LazyCandidate)
    };
    // One item per (source, CPU), as a subsystem has a work_struct per CPU.
    let items: Vec<Vec<Item>> = srcs
        .iter()
        .map(|s| {
            let lat = if is_candidate(s.queue) {
                lat_cand.clone()
            } else {
                lat_all.clone()
            };
            (s.cpus.0..=s.cpus.1)
                .map(|_| item(Duration::from_micros(s.duration_us), lat.clone()))
                .collect()
        })
        .collect();
    let wq_of: Vec<usize> = srcs
        .iter()
        .map(|s| {
            names
                .iter()
                .position(|n| *n == s.queue)
                .expect("a source names a queue")
        })
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let sampler = {
        let stop = stop.clone();
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let every = Duration::from_millis(cfg.sample_ms);
        std::thread::Builder::new()
            .name("klab-sampler".into())
            .spawn(move || {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                let mut out = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t_ms = start.elapsed().as_secs_f64() * 1e3;
                    if let Ok((total, named)) = count_threads(&names) {
                        // The sampler itself is one of the process's threads.
                        out.push(Sample {
                            t_ms,
                            process: total.saturating_sub(baseline + 1),
                            named,
                        });
                    }
                    std::thread::sleep(every);
                }
                out
            })
            .map_err(|e| format!("sampler thread: {e}"))?
    };
    let mut peaks: Vec<u64> = wqs.iter().map(|w| w.nr_threads() as u64).collect();
    let (queued, coalesced) = generate(
        cfg, &srcs, &items, &wq_of, &wqs, &mut rng, start, &mut peaks,
    );
    stop.store(true, Ordering::Relaxed);
    let samples = sampler
        .join()
        .map_err(|_| "the sampler panicked".to_owned())?;
    for w in &wqs {
        w.flush();
    }
    let stats: Vec<_> = wqs.iter().map(Workqueue::stats).collect();
    drop(wqs);
    let take = |l: &Arc<Mutex<Vec<u64>>>| {
        std::mem::take(&mut *l.lock().unwrap_or_else(|e| e.into_inner()))
    };
    let mut cand = take(&lat_cand);
    let mut all = take(&lat_all);
    all.extend_from_slice(&cand);
    Ok(RealRun {
        load,
        lazy,
        at_boot,
        samples,
        latency: Latency::of(&mut all),
        latency_candidates: Latency::of(&mut cand),
        queued,
        coalesced,
        threads_created: stats.iter().map(|s| s.threads_created).sum(),
        threads_exited_idle: stats.iter().map(|s| s.threads_exited_idle).sum(),
        per_queue_peak: names.iter().map(|n| (*n).to_owned()).zip(peaks).collect(),
    })
}

/// The generator loop: returns (queued, coalesced).
#[allow(clippy::too_many_arguments)]
fn generate(
    cfg: &RealConfig,
    srcs: &[Source],
    items: &[Vec<Item>],
    wq_of: &[usize],
    wqs: &[Workqueue],
    rng: &mut klab_model::rng::Rng,
    start: Instant,
    peaks: &mut [u64],
) -> (u64, u64) {
    let queued = AtomicU64::new(0);
    let mut coalesced = 0;
    let tick = Duration::from_millis(cfg.tick_ms);
    let ticks = cfg.duration_ms / cfg.tick_ms.max(1);
    for k in 0..ticks {
        let frac = k as f64 / ticks.max(1) as f64;
        for (si, s) in srcs.iter().enumerate() {
            if frac < s.window.0 || frac >= s.window.1 {
                continue;
            }
            let p = (s.per_second * cfg.tick_ms as f64 / 1000.0).clamp(0.0, 1.0);
            for (i, cpu) in (s.cpus.0..=s.cpus.1).enumerate() {
                if !rng.random_bool(p) {
                    continue;
                }
                let it = &items[si][i];
                // Only this thread queues, so PENDING cannot become set
                // between the check and the queueing.
                if it.work.is_pending() {
                    coalesced += 1;
                    continue;
                }
                *it.queued_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                if wqs[wq_of[si]].queue_work_on(cpu, &it.work) {
                    queued.fetch_add(1, Ordering::Relaxed);
                } else {
                    coalesced += 1;
                }
            }
        }
        for (p, w) in peaks.iter_mut().zip(wqs) {
            *p = (*p).max(w.nr_threads() as u64);
        }
        // Sleep to the next tick's deadline (no drift from late wakeups).
        let next = start + tick * u32::try_from(k + 1).unwrap_or(u32::MAX);
        if let Some(left) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(left);
        }
    }
    (queued.load(Ordering::Relaxed), coalesced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_takes_nearest_ranks() {
        let mut ns: Vec<u64> = (1..=100).rev().map(|x| x * 1000).collect();
        let l = Latency::of(&mut ns);
        assert_eq!(
            (l.n, l.p50_us, l.p99_us, l.max_us),
            (100, 50.0, 99.0, 100.0)
        );
        assert!((l.mean_us - 50.5).abs() < 1e-9);
    }

    #[test]
    fn the_all_cpu_load_replaces_the_candidates_sources() {
        let s = sources(Load::AllCpus, 64);
        for q in ["crypto", "ata", "aio", "rpciod"] {
            let mine: Vec<_> = s.iter().filter(|x| x.queue == q).collect();
            assert_eq!(mine.len(), 1, "{q}");
            assert_eq!((mine[0].cpus, mine[0].per_second), ((0, 63), ALL_CPU_RATE));
        }
        assert_eq!(s.len(), SOURCES.len(), "4 replaced, 4 kept");
    }

    #[test]
    fn threads_are_counted_by_their_queue_names() {
        let _guard = RUN_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let q = ["kcounttest"];
        let (_, before) = count_threads(&q).unwrap();
        let wq = Workqueue::create("kcounttest", 5).unwrap();
        let single = Workqueue::create_singlethread("kcounttest", 5).unwrap();
        let (_, named) = settle(&q, |n| n >= before + 6).unwrap();
        assert_eq!(named - before, 5 + 1, "5 kcounttest/N and one kcounttest");
        drop((wq, single));
        let (_, after) = settle(&q, |n| n <= before).unwrap();
        assert_eq!(after, before);
    }
}
