//! The host's side: one workload run twice in a real memory cgroup
//! (`klab_fidelity`), statistics flushed by the worker every few reads and
//! by the kernel alone, and what of each run the report uses.

use klab_fidelity::{HostConfig, HostError, HostRun, Stage};
use klab_lab::experiment::Progress;
use klab_model::machine::PAGE_SIZE;
use serde::{Deserialize, Serialize};

use super::{Case, FLUSH_EVERY, Options};

/// The numbers compared, host and model alike.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Reads.
    pub reads: u64,
    /// Reads that found their page cached.
    pub hits: u64,
    /// Reads that did not.
    pub misses: u64,
    /// Misses that found a shadow entry (host: `workingset_refault_file`).
    pub refaults: u64,
    /// Refaults activated (host: the probe's "recently evicted").
    pub refault_activations: u64,
    /// Active file pages at the end.
    pub active: u64,
    /// Inactive file pages at the end.
    pub inactive: u64,
    /// Charges refused at the limit (`memory.failcnt`).
    pub failcnt: u64,
}

/// One host run, as the report uses it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostSummary {
    /// The compared numbers.
    pub counts: Counts,
    /// Per read: whether it found its page cached.
    pub hit: Vec<bool>,
    /// The worker's statistics-flushing reads, every this many reads
    /// (`None`: the kernel's flushes only).
    pub flush_every: Option<u64>,
    /// The cgroup's name.
    pub cgroup: String,
    /// The limit the kernel applied.
    pub limit_bytes: u64,
    /// Seconds the worker ran.
    pub seconds: f64,
    /// Whether `memory.stat` was seen flushed at the end.
    pub stats_settled: bool,
    /// `memory.max_usage_in_bytes`, in pages.
    pub max_usage_pages: u64,
    /// `memory.kmem.usage_in_bytes`, in pages, where the file exists.
    pub kmem_pages: Option<u64>,
    /// Anonymous pages at the end (`rss`).
    pub anon_pages: u64,
    /// Pages charged (`pgpgin`).
    pub pgpgin: u64,
    /// Refaults by the probe (shadow entries found).
    pub probe_refaults: u64,
    /// Major faults (`pgmajfault` of `memory.stat`).
    pub pgmajfault: u64,
    /// Host-wide `pgactivate` growth.
    pub vmstat_pgactivate: Option<u64>,
    /// Host-wide `workingset_activate_file` growth.
    pub vmstat_activate_file: Option<u64>,
    /// `(reads done, active file, inactive file)` while running.
    pub samples: Vec<[u64; 3]>,
    /// The kernel's flushes of the root while the worker ran, as traced
    /// (`None`: no trace, or it lost events).
    pub root_flushes: Option<usize>,
    /// Anonymous workloads: accesses that found a page touched before out
    /// of memory (swap-ins, by the probe).
    #[serde(default)]
    pub swap_ins: Option<u64>,
    /// Anonymous workloads: the host-wide `pswpout` growth.
    #[serde(default)]
    pub vmstat_pswpout: Option<u64>,
}

impl Counts {
    /// A host run's numbers: of the file LRU and the probe's refault test,
    /// or for anonymous memory of `memory.stat`'s anon counters
    /// (`workingset_refault_anon`, `workingset_activate_anon`, the anon
    /// lists).
    pub fn of_host(h: &HostRun, anon: bool) -> Self {
        let (refaults, refault_activations, active, inactive) = if anon {
            (
                h.delta("workingset_refault_anon"),
                h.delta("workingset_activate_anon"),
                h.pages_after("active_anon"),
                h.pages_after("inactive_anon"),
            )
        } else {
            (
                h.delta("workingset_refault_file"),
                h.probe_recent(),
                h.pages_after("active_file"),
                h.pages_after("inactive_file"),
            )
        };
        Counts {
            reads: h.outcomes.len() as u64,
            hits: h.hits(),
            misses: h.misses(),
            refaults,
            refault_activations,
            active,
            inactive,
            failcnt: h.failcnt,
        }
    }
}

/// The times (ns) of the host's flushes of the root while the run's
/// worker ran, when the kernel's trace recorded them whole.
pub(super) fn root_flushes_ns(h: &HostRun) -> Option<Vec<u64>> {
    let f = h.flushes.as_ref()?;
    let rec = f.recorded.as_ref().ok()?;
    if rec.lost > 0 {
        return None;
    }
    Some(
        rec.events
            .iter()
            .filter(|e| e.memcg_id == f.root_id && e.flushed())
            .map(|e| e.t_ns)
            .collect(),
    )
}

impl HostSummary {
    /// What the report keeps of a host run of `case`.
    pub(crate) fn of(h: &HostRun, case: &Case) -> Self {
        let (first, last) = (
            h.times_ns.first().copied().unwrap_or(0),
            h.times_ns.last().copied().unwrap_or(0),
        );
        HostSummary {
            counts: Counts::of_host(h, case.anon),
            hit: h.outcomes.iter().map(|o| o.cached()).collect(),
            flush_every: h.flush_every,
            cgroup: h.cgroup.clone(),
            limit_bytes: h.limit_bytes,
            seconds: h.elapsed.as_secs_f64(),
            stats_settled: h.stats_settled,
            max_usage_pages: h.max_usage_bytes / PAGE_SIZE,
            kmem_pages: h.kmem_usage_bytes.map(|b| b / PAGE_SIZE),
            anon_pages: h.pages_after("rss"),
            pgpgin: h.delta("pgpgin"),
            probe_refaults: h.probe_refaults(),
            pgmajfault: h.delta("pgmajfault"),
            vmstat_pgactivate: h.vmstat_delta.get("pgactivate").copied(),
            vmstat_activate_file: h.vmstat_delta.get("workingset_activate_file").copied(),
            samples: h
                .samples
                .iter()
                .map(|s| {
                    if case.anon {
                        [s.done, s.active_anon, s.inactive_anon]
                    } else {
                        [s.done, s.active_file, s.inactive_file]
                    }
                })
                .collect(),
            root_flushes: root_flushes_ns(h)
                .map(|v| v.iter().filter(|&&t| (first..=last).contains(&t)).count()),
            swap_ins: case.anon.then(|| h.swap_ins(&case.pattern().accesses)),
            vmstat_pswpout: if case.anon {
                h.vmstat_delta.get("pswpout").copied()
            } else {
                None
            },
        }
    }
}

/// The two host runs of one workload.
pub(crate) struct HostSide {
    /// The worker flushes the memory cgroup's statistics every few reads.
    pub(crate) flushed: HostRun,
    /// Only the kernel's own flushes (every 2 s, or when a reader finds
    /// enough pending), as an unobserved program would run.
    pub(crate) kernel_flushes: Option<HostRun>,
}

/// Runs `case` on the host: with the worker flushing every
/// [`FLUSH_EVERY`] reads, then (when asked) with the kernel's flushes only.
pub(crate) fn run_host(
    opts: &Options,
    case: &Case,
    progress: &dyn Progress,
) -> Result<HostSide, HostError> {
    let mut cfg = HostConfig::new(case.limit_bytes);
    cfg.root = opts.cgroup_root.clone();
    cfg.touch = opts.touch;
    cfg.fill = opts.fill;
    cfg.dir = opts.dir.clone();
    cfg.flush_every = Some(FLUSH_EVERY);
    let pattern = case.pattern();
    let runs = if opts.host_kernel_flushes { 2 } else { 1 };
    progress.begin(
        &format!("fidelity: {} (host)", case.label()),
        pattern.accesses.len() as u64 * runs,
    );
    let session = klab_fidelity::Session::new(&cfg, pattern)?;
    let one = |cfg: &HostConfig| {
        let mut last = 0;
        session.run(cfg, &mut |s| {
            if let Stage::Running { done, .. } = s {
                progress.advance(done.saturating_sub(last));
                last = done;
            }
            Ok(())
        })
    };
    let flushed = one(&cfg);
    let kernel_flushes = match (&flushed, opts.host_kernel_flushes) {
        (Ok(_), true) => {
            let mut k = cfg.clone();
            k.flush_every = None;
            k.sample_every = None;
            Some(one(&k))
        }
        _ => None,
    };
    progress.end();
    let flushed = flushed?;
    let kernel_flushes = kernel_flushes.transpose()?;
    session.close()?;
    Ok(HostSide {
        flushed,
        kernel_flushes,
    })
}
