//! One run: an access pattern replayed for real by a worker process in a
//! memory cgroup with a limit, and what the kernel counted.
//!
//! ```text
//!   Session::new(cfg, pattern)
//!     probe the host                       cgroup v1 memory, root, cachestat
//!     DataDir::create                      the files, once (none for anonymous memory)
//!     SwapFile::create                     anonymous memory only: mkswap, swapon
//!   Session::run(cfg)                      as often as wanted:
//!     drop the files from the page cache   POSIX_FADV_DONTNEED: no pages, no shadows
//!     MemCgroup::create + set_limit        klab-fidelity-<pid>-<n>
//!     FlushTrace::start                    the kernel's statistics flushes (if it can)
//!     PageWorker::spawn                    forked, waiting, holding its memory at the end
//!     attach(worker) + force_empty         the worker is the cgroup's only task
//!     stat before, failcnt before
//!     start; poll memory.stat              samples of the LRU list sizes (timed)
//!     all accesses done                    per-access outcomes and times
//!     stat at the end (flushed)            the worker's pages still held
//!     release the worker, reap it; stop the trace
//!     remove the cgroup                    (also on error: guards; on signals: cleanup)
//!   Session::close                         swapoff and delete the swap file, remove the files
//! ```
//!
//! Drop order does the cleanup on every early return: the worker (killed
//! and reaped), the trace, then the cgroup (its tasks killed, `rmdir`),
//! then the swap file, then the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use klab_sys::page_worker::{Outcome, PageRef, PageWorker, Spec, Touch, monotonic_ns};

use crate::cgroup::{self, MemCgroup, MemcgStat};
use crate::cleanup;
use crate::error::HostError;
use crate::files::{DataDir, Fill, PAGE_SIZE};
use crate::swap::SwapFile;
use crate::trace::{FlushTrace, Recorded};

/// An access pattern: the files (pages each) and the pages read, in order;
/// or, with `anon`, one region of anonymous memory (`files[0]` pages)
/// whose pages are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pattern {
    /// Pages per file (anonymous memory: the region's pages, one entry).
    pub files: Vec<u64>,
    /// The accesses.
    pub accesses: Vec<PageRef>,
    /// Anonymous memory instead of files.
    pub anon: bool,
}

impl Pattern {
    /// Checks every access names an existing file and a page inside it.
    pub fn validate(&self) -> Result<(), HostError> {
        if self.anon && self.files.len() != 1 {
            return Err(HostError::Pattern(format!(
                "anonymous memory is one region, not {} files",
                self.files.len()
            )));
        }
        for (i, a) in self.accesses.iter().enumerate() {
            match self.files.get(a.file as usize) {
                None => {
                    return Err(HostError::Pattern(format!(
                        "access {i}: file {} of {}",
                        a.file,
                        self.files.len()
                    )));
                }
                Some(&pages) if a.page >= pages => {
                    return Err(HostError::Pattern(format!(
                        "access {i}: page {} of file {} which has {pages} pages",
                        a.page, a.file
                    )));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// The cgroup v1 memory hierarchy.
    pub root: PathBuf,
    /// `memory.limit_in_bytes` of the run's cgroup.
    pub limit_bytes: u64,
    /// Reads or loads from a mapping.
    pub touch: Touch,
    /// How the data files are filled.
    pub fill: Fill,
    /// Where the data directory goes (default: the temporary directory).
    pub dir: Option<PathBuf>,
    /// The CPU the worker is pinned to (one CPU: one set of per-CPU page
    /// batches and one per-CPU charge stock).
    pub cpu: Option<usize>,
    /// How often the LRU list sizes are sampled while the worker runs
    /// (`None`: never; reading `memory.stat` flushes statistics, so a run
    /// meant to see only the kernel's own flushes takes no samples).
    pub sample_every: Option<Duration>,
    /// Every this many accesses the worker reads its cgroup's
    /// `memory.stat`, which flushes the kernel's per-CPU statistics (see
    /// [`HostConfig::new`]); `None`: only the kernel's own flushes.
    pub flush_every: Option<u64>,
    /// Record the kernel's statistics flushes ([`crate::trace`]).
    pub trace_flushes: bool,
    /// The swap file's size for an anonymous pattern (default: twice the
    /// region).
    pub swap_bytes: Option<u64>,
}

impl HostConfig {
    /// Reads with `pread`, written files in the temporary directory, the
    /// worker pinned to the first CPU this process may use, samples every
    /// 10 ms, statistics flushed every 16 accesses.
    ///
    /// Why flush: the 6.x reclaim and refault decisions of a memory cgroup
    /// read its statistics as last flushed (`lruvec_page_state()`:
    /// `NR_ACTIVE_FILE` for the refault test, the list sizes and
    /// `WORKINGSET_ACTIVATE_FILE` in `prepare_scan_control()`), and the
    /// kernel flushes them every 2 s or when a reader of `memory.stat`
    /// finds more than 64 updates per CPU pending; its own readers on these
    /// paths flush only when the periodic flush is late. A run of a second
    /// would see the sizes of its start. Reading `memory.stat` every few
    /// accesses keeps them within a few dozen updates of the truth, which is
    /// what the model (reading its lists directly) assumes.
    pub fn new(limit_bytes: u64) -> Self {
        HostConfig {
            root: PathBuf::from(cgroup::DEFAULT_ROOT),
            limit_bytes,
            touch: Touch::Read,
            fill: Fill::Written,
            dir: None,
            cpu: first_allowed_cpu(),
            sample_every: Some(Duration::from_millis(10)),
            flush_every: Some(16),
            trace_flushes: true,
            swap_bytes: None,
        }
    }
}

/// The lowest CPU in this thread's affinity mask.
pub fn first_allowed_cpu() -> Option<usize> {
    let set = rustix::thread::sched_getaffinity(None).ok()?;
    (0..rustix::thread::CpuSet::MAX_CPU).find(|&c| set.is_set(c))
}

/// The list sizes at one moment of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Accesses done.
    pub done: u64,
    /// When the sample was read (`CLOCK_MONOTONIC`, ns): the read of
    /// `memory.stat` may have flushed the cgroup's statistics.
    pub t_ns: u64,
    /// Pages on the cgroup's active file list.
    pub active_file: u64,
    /// Pages on its inactive file list.
    pub inactive_file: u64,
    /// Pages on its active anonymous list.
    pub active_anon: u64,
    /// Pages on its inactive anonymous list.
    pub inactive_anon: u64,
}

impl Sample {
    fn of(done: u64, t_ns: u64, s: &MemcgStat) -> Self {
        let pages = |k: &str| s.get(k).unwrap_or(0) / PAGE_SIZE;
        Sample {
            done,
            t_ns,
            active_file: pages("active_file"),
            inactive_file: pages("inactive_file"),
            active_anon: pages("active_anon"),
            inactive_anon: pages("inactive_anon"),
        }
    }
}

/// The kernel's statistics flushes during a run, as traced.
#[derive(Clone, Debug)]
pub struct Flushes {
    /// The root memory cgroup's id.
    pub root_id: u64,
    /// The run's cgroup's id.
    pub memcg_id: u64,
    /// What the trace recorded (or why it could not).
    pub recorded: Result<Recorded, String>,
}

/// Where a run is, for observers.
#[derive(Debug)]
pub enum Stage<'a> {
    /// The cgroup and the data directory exist; no worker yet.
    Created {
        /// The cgroup's directory.
        cgroup: &'a Path,
        /// The data directory.
        data: &'a Path,
    },
    /// The worker is in the cgroup, not started.
    Attached {
        /// Its pid.
        pid: i32,
    },
    /// The worker runs.
    Running {
        /// Accesses done.
        done: u64,
        /// Accesses in all.
        total: u64,
    },
}

/// What a run measured.
#[derive(Clone, Debug)]
pub struct HostRun {
    /// The cgroup's name (removed by now).
    pub cgroup: String,
    /// The limit the kernel applied.
    pub limit_bytes: u64,
    /// One per access: what `cachestat(2)` saw right before it.
    pub outcomes: Vec<Outcome>,
    /// `memory.stat` before the worker started.
    pub before: MemcgStat,
    /// `memory.stat` after it exited.
    pub after: MemcgStat,
    /// `memory.failcnt` growth.
    pub failcnt: u64,
    /// `memory.max_usage_in_bytes` at the end.
    pub max_usage_bytes: u64,
    /// `memory.kmem.usage_in_bytes` at the end, where the file exists.
    pub kmem_usage_bytes: Option<u64>,
    /// List sizes while the worker ran (and once at the end).
    pub samples: Vec<Sample>,
    /// Growth of host-wide `/proc/vmstat` counters over the run: every
    /// process on the host contributes, not only the worker.
    pub vmstat_delta: BTreeMap<String, u64>,
    /// Time the worker ran.
    pub elapsed: Duration,
    /// Whether `memory.stat` was seen flushed at the end
    /// (`settled_stat`); if not, its counters may lag by a few dozen
    /// pages' worth of events.
    pub stats_settled: bool,
    /// The worker's statistics-flushing reads ([`HostConfig::flush_every`]).
    pub flush_every: Option<u64>,
    /// Per access, `CLOCK_MONOTONIC` (ns) at its start.
    pub times_ns: Vec<u64>,
    /// The worker's pid.
    pub worker_pid: i32,
    /// The kernel's statistics flushes ([`HostConfig::trace_flushes`]).
    pub flushes: Option<Flushes>,
    /// `memory.stat` when the worker had done its accesses and still held
    /// its pages (flushed).
    pub at_end: MemcgStat,
    /// The swap file's size, for an anonymous pattern.
    pub swap_bytes: Option<u64>,
}

/// `/proc/vmstat` counters a report shows for context (host-wide).
pub const VMSTAT_KEYS: [&str; 7] = [
    "pgactivate",
    "pgdeactivate",
    "workingset_activate_file",
    "workingset_refault_file",
    "workingset_restore_file",
    "pswpin",
    "pswpout",
];

impl HostRun {
    /// Accesses that found their page cached.
    pub fn hits(&self) -> u64 {
        self.outcomes.iter().filter(|o| o.cached()).count() as u64
    }

    /// Accesses that did not.
    pub fn misses(&self) -> u64 {
        self.outcomes.len() as u64 - self.hits()
    }

    /// Misses that found a shadow entry (refaults, by the probe).
    pub fn probe_refaults(&self) -> u64 {
        self.outcomes.iter().filter(|o| o.evicted()).count() as u64
    }

    /// Refaults the kernel would activate (recent, by the probe).
    pub fn probe_recent(&self) -> u64 {
        self.outcomes.iter().filter(|o| o.recent()).count() as u64
    }

    /// A `memory.stat` counter's growth over the run.
    pub fn delta(&self, name: &str) -> u64 {
        self.after.delta(&self.before, name)
    }

    /// A `memory.stat` size at the end, in pages (while the worker still
    /// held its pages).
    pub fn pages_after(&self, name: &str) -> u64 {
        self.at_end.get(name).unwrap_or(0) / PAGE_SIZE
    }

    /// Anonymous accesses that found their page out of memory after it
    /// had been touched before: swap-ins (the probe's count).
    pub fn swap_ins(&self, accesses: &[PageRef]) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        self.outcomes
            .iter()
            .zip(accesses)
            .filter(|(o, a)| {
                let first = seen.insert(a.page);
                !first && !o.cached()
            })
            .count() as u64
    }
}

/// Runs `pattern` in a new memory cgroup, with data files of its own.
pub fn run(cfg: &HostConfig, pattern: &Pattern) -> Result<HostRun, HostError> {
    run_observed(cfg, pattern, &mut |_| Ok(()))
}

/// [`run`], telling `observe` each stage; an error it returns ends the run
/// (and removes everything, as any error does).
pub fn run_observed(
    cfg: &HostConfig,
    pattern: &Pattern,
    observe: &mut dyn FnMut(Stage<'_>) -> Result<(), HostError>,
) -> Result<HostRun, HostError> {
    let session = Session::new(cfg, pattern.clone())?;
    let run = session.run(cfg, observe)?;
    session.close()?;
    Ok(run)
}

/// A pattern's data files, created once for any number of runs (each in a
/// memory cgroup of its own, each starting with the files out of the page
/// cache).
#[derive(Debug)]
pub struct Session {
    // Field order is drop order: the swap file goes before the directory.
    swap: Option<SwapFile>,
    data: DataDir,
    pattern: Pattern,
}

impl Session {
    /// Checks the pattern and the host, and creates the data files
    /// (`cfg.dir`, `cfg.fill`).
    pub fn new(cfg: &HostConfig, pattern: Pattern) -> Result<Self, HostError> {
        let r = Self::create(cfg, pattern);
        cleanup::park_if_interrupted();
        r
    }

    fn create(cfg: &HostConfig, pattern: Pattern) -> Result<Self, HostError> {
        pattern.validate()?;
        cgroup::probe(&cfg.root).map_err(HostError::Unavailable)?;
        if pattern.anon {
            crate::swap::probe().map_err(HostError::Unavailable)?;
        }
        cleanup::install_signal_handlers().map_err(HostError::Worker)?;
        let files: &[u64] = if pattern.anon { &[] } else { &pattern.files };
        let data = DataDir::create(cfg.dir.as_deref(), files, cfg.fill)?;
        let swap = if pattern.anon {
            let bytes = cfg.swap_bytes.unwrap_or(2 * pattern.files[0] * PAGE_SIZE);
            Some(SwapFile::create(data.path(), bytes)?)
        } else {
            None
        };
        Ok(Session {
            swap,
            data,
            pattern,
        })
    }

    /// The swap file, for an anonymous pattern.
    pub fn swap_file(&self) -> Option<&SwapFile> {
        self.swap.as_ref()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// One run with `cfg`'s limit, touch, CPU, sampling and flushing (its
    /// `dir` and `fill` were used by [`Session::new`]).
    pub fn run(
        &self,
        cfg: &HostConfig,
        observe: &mut dyn FnMut(Stage<'_>) -> Result<(), HostError>,
    ) -> Result<HostRun, HostError> {
        let r = self.run_once(cfg, observe);
        cleanup::park_if_interrupted();
        r
    }

    fn run_once(
        &self,
        cfg: &HostConfig,
        observe: &mut dyn FnMut(Stage<'_>) -> Result<(), HostError>,
    ) -> Result<HostRun, HostError> {
        let data = &self.data;
        let pattern = &self.pattern;
        data.drop_cache()?;
        let cg = MemCgroup::create(&cfg.root)?;
        observe(Stage::Created {
            cgroup: cg.path(),
            data: data.path(),
        })?;
        let limit_bytes = cg.set_limit(cfg.limit_bytes)?;
        data.check_uncached()?;
        let (root_id, memcg_id) = (
            crate::trace::memcg_id(&cfg.root)?,
            crate::trace::memcg_id(cg.path())?,
        );
        let trace = cfg
            .trace_flushes
            .then(|| FlushTrace::start(root_id, memcg_id));
        let fds = data.fds();
        let stat_path = cg.path().join("memory.stat");
        let stat_file = match cfg.flush_every {
            Some(_) => Some(
                std::fs::File::open(&stat_path)
                    .map_err(|e| HostError::cgroup(&stat_path, "open", e))?,
            ),
            None => None,
        };
        let mut worker = PageWorker::spawn(&Spec {
            files: &fds,
            accesses: &pattern.accesses,
            touch: if pattern.anon { Touch::Anon } else { cfg.touch },
            probe: true,
            cpu: cfg.cpu,
            read_every: stat_file
                .as_ref()
                .zip(cfg.flush_every)
                .map(|(f, n)| (std::os::fd::AsFd::as_fd(f), n)),
            anon_pages: if pattern.anon { pattern.files[0] } else { 0 },
            hold: true,
        })
        .map_err(HostError::Worker)?;
        cg.attach(worker.pid())?;
        if cg.procs()? != [worker.pid()] {
            return Err(HostError::cgroup(
                cg.path().join("cgroup.procs"),
                "check the worker is the only task",
                std::io::Error::other(format!("expected only pid {}", worker.pid())),
            ));
        }
        observe(Stage::Attached { pid: worker.pid() })?;
        cg.force_empty()?;
        let before = cg.stat()?;
        let failcnt_before = cg.read_u64("memory.failcnt")?;
        let vmstat_before = read_vmstat();
        let worker_pid = worker.pid();

        let t0 = Instant::now();
        worker.start().map_err(HostError::Worker)?;
        let mut samples = sample_while_running(cfg, &cg, &mut worker, pattern, observe)?;
        let elapsed = t0.elapsed();
        let end_ns = monotonic_ns();
        let tr = trace.as_ref().and_then(|t| t.as_ref().ok());
        let (at_end, stats_settled) = settled_stat(&cfg.root, &cg, data, pattern.anon, tr, end_ns)?;
        samples.push(Sample::of(
            pattern.accesses.len() as u64,
            monotonic_ns(),
            &at_end,
        ));
        worker.release();
        let finished = worker.wait().map_err(HostError::Worker)?;
        let flushes = trace.map(|t| Flushes {
            root_id,
            memcg_id,
            recorded: t.and_then(FlushTrace::finish),
        });
        let after = cg.stat()?;
        let failcnt = cg
            .read_u64("memory.failcnt")?
            .saturating_sub(failcnt_before);
        let max_usage_bytes = cg.read_u64("memory.max_usage_in_bytes")?;
        let kmem_usage_bytes = cg.read_u64("memory.kmem.usage_in_bytes").ok();
        let vmstat_after = read_vmstat();
        let vmstat_delta = VMSTAT_KEYS
            .iter()
            .filter_map(|k| {
                let (a, b) = (vmstat_after.get(*k)?, vmstat_before.get(*k)?);
                Some(((*k).to_owned(), a.saturating_sub(*b)))
            })
            .collect();
        let name = cg.name();
        cg.remove()?;
        Ok(HostRun {
            cgroup: name,
            limit_bytes,
            outcomes: finished.outcomes,
            before,
            after,
            failcnt,
            max_usage_bytes,
            kmem_usage_bytes,
            samples,
            vmstat_delta,
            elapsed,
            stats_settled,
            flush_every: cfg.flush_every,
            times_ns: finished.times_ns,
            worker_pid,
            flushes,
            at_end,
            swap_bytes: self.swap.as_ref().map(SwapFile::bytes),
        })
    }

    /// Turns the swap file off and deletes it, and removes the data files.
    pub fn close(self) -> Result<(), HostError> {
        let swap = self.swap.map_or(Ok(()), SwapFile::remove);
        let r = swap.and(self.data.remove());
        cleanup::park_if_interrupted();
        r
    }
}

/// Waits for the worker's last access, reading `memory.stat` every
/// `cfg.sample_every` (timed: each read may flush the cgroup's
/// statistics) and telling `observe`.
fn sample_while_running(
    cfg: &HostConfig,
    cg: &MemCgroup,
    worker: &mut PageWorker,
    pattern: &Pattern,
    observe: &mut dyn FnMut(Stage<'_>) -> Result<(), HostError>,
) -> Result<Vec<Sample>, HostError> {
    let total = pattern.accesses.len() as u64;
    let mut samples = Vec::new();
    loop {
        let done = worker.progress();
        if done >= total {
            return Ok(samples);
        }
        if worker.try_finish().map_err(HostError::Worker)?.is_some() {
            return Err(HostError::Worker(std::io::Error::other(format!(
                "the worker exited after {done} of {total} accesses"
            ))));
        }
        std::thread::sleep(cfg.sample_every.unwrap_or(Duration::from_millis(5)));
        let done = worker.progress();
        if cfg.sample_every.is_some() {
            let t_ns = monotonic_ns();
            samples.push(Sample::of(done, t_ns, &cg.stat()?));
        }
        observe(Stage::Running { done, total })?;
    }
}

/// How long [`settled_stat`] waits for a flush at most: the kernel's
/// periodic flush runs every 2 s (`FLUSH_TIME`), plus slack for a busy
/// workqueue.
const SETTLE_TIMEOUT: Duration = Duration::from_millis(2500);

/// `memory.stat` once the kernel has folded every per-CPU update into it.
///
/// Since 6.8 the memory controller keeps statistics per CPU and folds them
/// in (an rstat flush) when a reader finds more than `MEMCG_CHARGE_BATCH`
/// (64) updates per CPU pending, or every 2 s; a read in between shows
/// numbers up to a few dozen pages old. The run's cgroup is too small to
/// cross the threshold on its own, but a flush is hierarchical and the
/// root's count crosses it on any busy host: reading the root's
/// `memory.stat` (a read; it changes no setting) flushes the whole tree.
/// The result is trusted once the cgroup's `cache` equals the pages of the
/// data files `cachestat(2)` finds cached, an exact count, or once the
/// flush trace shows the root flushed after `end_ns` (the only test for
/// anonymous memory); otherwise the reads repeat until one holds or
/// [`SETTLE_TIMEOUT`] passes (then `false`).
fn settled_stat(
    root: &Path,
    cg: &MemCgroup,
    data: &DataDir,
    anon: bool,
    trace: Option<&FlushTrace>,
    end_ns: u64,
) -> Result<(MemcgStat, bool), HostError> {
    let resident = data.resident_pages()?;
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let _ = std::fs::read(root.join("memory.stat"));
        let s = cg.stat()?;
        let flushed_since = trace
            .and_then(FlushTrace::last_root_flush_ns)
            .is_some_and(|t| t > end_ns);
        let settled = flushed_since || (!anon && s.get("cache") == Some(resident * PAGE_SIZE));
        if settled {
            return Ok((s, true));
        }
        if Instant::now() >= deadline {
            return Ok((s, false));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_vmstat() -> BTreeMap<String, u64> {
    std::fs::read_to_string("/proc/vmstat")
        .map(|t| {
            t.lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(' ')?;
                    Some((k.to_owned(), v.trim().parse().ok()?))
                })
                .collect()
        })
        .unwrap_or_default()
}
