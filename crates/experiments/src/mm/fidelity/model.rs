//! The model's side: the same reads by a task in a memory cgroup with the
//! limit, in a machine of twice the limit's frames; with the kernel's
//! statistics flushing, charge stock, LRU batches and read marking
//! ([`KernelDetails::linux_6_18`]) when compared with a host nobody is
//! watching, clocked by that host run's own per-read times.

use klab_mm_policy::LruBalance;
use klab_model::drive::Drive;
use klab_model::machine::{KernelDetails, PAGE_SIZE};
use klab_model::mm::lru::LruList;
use klab_model::mm::memcg_stats::{FLUSH_TIME_NS, FlushClock};
use klab_model::{Access, Machine, MachineConfig, ShadowLimit};
use serde::{Deserialize, Serialize};

const MODEL_CGROUP: &str = "/fidelity";
const MODEL_TASK: u32 = 1;

/// The online CPUs the unobserved-kernel model counts for its flush
/// threshold: the host worker is pinned to one CPU, and its updates are
/// the only ones to the run's cgroup (the kernel's threshold counts every
/// online CPU, `MEMCG_CHARGE_BATCH * num_online_cpus()`).
pub fn host_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// Where the periodic statistics flush of an unobserved-kernel model run
/// comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClockSource {
    /// The host's own flushes of the root, as its trace recorded them.
    Traced,
    /// The kernel's rule (`flush_memcg_stats_dwork()` every `FLUSH_TIME`)
    /// run on the host's per-read times, from the first read.
    HostTimes,
}

impl ClockSource {
    /// As the report names it.
    pub fn name(self) -> &'static str {
        match self {
            ClockSource::Traced => "the host's traced root flushes",
            ClockSource::HostTimes => "every 2 s of the host's per-read times",
        }
    }
}

/// The clock of an unobserved-kernel model run: the host run's times.
#[derive(Clone, Copy, Debug)]
pub struct HostClock<'a> {
    /// Per read, `CLOCK_MONOTONIC` (ns) at its start on the host.
    pub times_ns: &'a [u64],
    /// The host's flushes of the root (ns, in order), when traced.
    pub root_flushes_ns: Option<&'a [u64]>,
    /// Online CPUs for the flush threshold.
    pub cpus: u32,
}

impl HostClock<'_> {
    fn source(&self) -> ClockSource {
        if self.root_flushes_ns.is_some() {
            ClockSource::Traced
        } else {
            ClockSource::HostTimes
        }
    }
}

/// How the periodic flushes are scheduled over the host's times.
enum Periodic<'a> {
    Traced { at: &'a [u64], next: usize },
    Rule(FlushClock),
}

impl Periodic<'_> {
    /// Flushes due by `now_ns`.
    fn due(&mut self, now_ns: u64) -> u64 {
        match self {
            Periodic::Traced { at, next } => {
                let start = *next;
                while *next < at.len() && at[*next] <= now_ns {
                    *next += 1;
                }
                (*next - start) as u64
            }
            Periodic::Rule(c) => c.due(now_ns),
        }
    }
}

/// What the model did under one rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelRun {
    /// The rule.
    #[serde(with = "klab_model::machine::LruBalanceDef")]
    pub rule: LruBalance,
    /// Reads that found their page resident.
    pub hits: u64,
    /// Reads that did not (`pgmajfault`).
    pub misses: u64,
    /// Misses that found a shadow entry.
    pub refaults: u64,
    /// Refaulting pages activated (`workingset_activate`).
    pub refault_activations: u64,
    /// Inactive pages promoted by a second access (`pgactivate`).
    pub activations: u64,
    /// Active file pages at the end.
    pub active: u64,
    /// Inactive file pages at the end.
    pub inactive: u64,
    /// Charges refused at the limit (`memory.failcnt`).
    pub failcnt: u64,
    /// Reads that failed (out of memory): none when the rules hold.
    pub failed: u64,
    /// Per read: whether it hit.
    pub hit: Vec<bool>,
    /// (reads, active, inactive) while running.
    pub samples: Vec<[f64; 3]>,
    /// Unobserved-kernel runs: the reads before which a periodic flush
    /// ran (the one at the start not counted), and where they came from.
    pub periodic_at: Option<(ClockSource, Vec<u64>)>,
    /// Pages swapped in (`pswpin`; anonymous workloads).
    #[serde(default)]
    pub swap_ins: u64,
    /// Pages swapped out (`pswpout`; anonymous workloads).
    #[serde(default)]
    pub swap_outs: u64,
}

/// What the model's task does with each page: reads a file page, or
/// writes a page of its anonymous memory (file 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `pread` of a file page.
    File,
    /// A store to anonymous memory, swapped to a swap area of its own.
    Anon,
}

impl Kind {
    fn access(self, file: u32, page: u64) -> Access {
        match self {
            Kind::File => Access::read(file, page).by(MODEL_TASK),
            Kind::Anon => Access::anon(MODEL_TASK, page),
        }
    }

    /// The LRU lists the compared sizes are read from.
    fn lists(self) -> (LruList, LruList) {
        match self {
            Kind::File => (LruList::ActiveFile, LruList::InactiveFile),
            Kind::Anon => (LruList::ActiveAnon, LruList::InactiveAnon),
        }
    }
}

fn machine(
    limit_bytes: u64,
    rule: LruBalance,
    pages: &[(u32, u64)],
    details: KernelDetails,
    kind: Kind,
) -> Machine {
    let limit_pages = limit_bytes.div_ceil(PAGE_SIZE).max(1);
    let mut cfg = MachineConfig::new(2 * limit_pages + 64, rule);
    if kind == Kind::Anon {
        // A swap area of twice the region, as the host's swap file.
        let region = pages.iter().map(|&(_, p)| p + 1).max().unwrap_or(0);
        cfg.swap_pages = 2 * region;
    }
    let reads = pages.len();
    // Limit reclaim never shrinks shadow nodes in the model; the host's
    // memcg-aware shadow shrinker, run from limit reclaim at
    // DEF_PRIORITY, scans next to nothing of a small cgroup either.
    cfg.shadow_limit = ShadowLimit::Unlimited;
    cfg.sample_every = (reads as u64 / 200).max(1);
    cfg.details = details;
    let mut m = Machine::new(cfg).expect("one node of a few frames is valid");
    m.memcg_create(MODEL_CGROUP)
        .expect("a new machine has no /fidelity yet");
    m.memcg_write(
        MODEL_CGROUP,
        "memory.limit_in_bytes",
        &limit_bytes.to_string(),
    )
    .expect("an empty container accepts any limit");
    m.memcg_attach(MODEL_CGROUP, MODEL_TASK)
        .expect("the task is new");
    m
}

fn finish(
    d: Drive,
    rule: LruBalance,
    kind: Kind,
    periodic_at: Option<(ClockSource, Vec<u64>)>,
) -> ModelRun {
    let failed = d.all().failed;
    let (m, hit) = d.finish();
    let hit = hit.expect("recording");
    let id = m.memcg_by_path(MODEL_CGROUP).expect("created");
    let s = *m.stat();
    let (active, inactive) = kind.lists();
    let (misses, refaults, refault_activations, samples) = match kind {
        Kind::File => (
            s.pgmajfault,
            s.workingset_refault,
            s.workingset_activate,
            crate::mm::workload::file_list_samples(&m),
        ),
        Kind::Anon => {
            let k = m.kernel_stat();
            let samples = m
                .samples()
                .iter()
                .map(|x| {
                    [
                        x.accesses as f64,
                        x.lists[active as usize] as f64,
                        x.lists[inactive as usize] as f64,
                    ]
                })
                .collect();
            (
                hit.iter().filter(|h| !**h).count() as u64,
                k.workingset_refault_anon,
                k.workingset_activate_anon,
                samples,
            )
        }
    };
    ModelRun {
        rule,
        hits: s.hits,
        misses,
        refaults,
        refault_activations,
        activations: s.pgactivate,
        active: m.memcg_lru_len(id, active),
        inactive: m.memcg_lru_len(id, inactive),
        failcnt: m.memcg(id).res.failcnt,
        failed,
        hit,
        samples,
        periodic_at,
        swap_ins: s.pswpin,
        swap_outs: s.pswpout,
    }
}

/// Replays `pages` in the model as the observed host runs them: a machine
/// of twice the limit's frames, a memory cgroup with the limit, one task in
/// it reading every page; statistics read live (the host's worker reads
/// `memory.stat` every few reads so its decisions see current sizes too).
///
/// Anonymous memory ([`Kind::Anon`]) runs with the 6.x anonymous rules
/// (`KernelDetails::anon_6x`: new pages inactive, a young page kept once,
/// shadows of swapped-out pages), which are not about statistics; without
/// them the model's anonymous pages leave no shadow to refault.
pub fn model_run(pages: &[(u32, u64)], limit_bytes: u64, rule: LruBalance, kind: Kind) -> ModelRun {
    let details = KernelDetails {
        anon_6x: kind == Kind::Anon,
        ..KernelDetails::default()
    };
    let m = machine(limit_bytes, rule, pages, details, kind);
    let mut d = Drive::on(m).recording_hits();
    for &(file, page) in pages {
        d.access(kind.access(file, page));
    }
    finish(d, rule, kind, None)
}

/// Replays `pages` in the model as an unobserved 6.18 host runs them:
/// [`KernelDetails::linux_6_18`] (statistics flushed by the kernel's
/// rules, the charge stock, LRU add batches, `filemap_read()`'s single
/// mark), the machine's clock set to the host's time of each read, and
/// the periodic flush (mm/memcontrol.c `flush_memcg_stats_dwork()`) run
/// where the host ran it when its trace recorded it, else every
/// `FLUSH_TIME` of the host's times from the first read. The cgroup starts
/// flushed, as the host's new cgroup does.
///
/// # Panics
/// When `clock.times_ns` does not have one time per read.
pub fn model_run_kernel(
    pages: &[(u32, u64)],
    limit_bytes: u64,
    rule: LruBalance,
    kind: Kind,
    clock: &HostClock<'_>,
) -> ModelRun {
    assert_eq!(clock.times_ns.len(), pages.len(), "one host time per read");
    let details = KernelDetails::linux_6_18(clock.cpus.max(1));
    let mut m = machine(limit_bytes, rule, pages, details, kind);
    let t0 = clock.times_ns.first().copied().unwrap_or(0);
    m.set_clock_ns(t0);
    m.memcg_flush_periodic();
    let mut periodic = match clock.root_flushes_ns {
        Some(at) => Periodic::Traced {
            next: at.partition_point(|&t| t <= t0),
            at,
        },
        None => Periodic::Rule(FlushClock::starting_at(t0 + FLUSH_TIME_NS)),
    };
    let mut at = Vec::new();
    let mut d = Drive::on(m).recording_hits();
    for (i, (&(file, page), &t)) in pages.iter().zip(clock.times_ns).enumerate() {
        let m = d.machine_mut();
        m.set_clock_ns(t);
        for _ in 0..periodic.due(t) {
            m.memcg_flush_periodic();
            at.push(i as u64);
        }
        d.access(kind.access(file, page));
    }
    finish(d, rule, kind, Some((clock.source(), at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container of 4 pages, reclaim batch 32:
    ///
    /// ```text
    ///  A0 A0          miss, hit: A0 active
    ///  B0 B1 B2       misses: the container is full (4 pages)
    ///  B3             the charge fails (failcnt 1); reclaim
    ///  A0             hit
    ///  B0             a refault (its shadow is there)
    /// ```
    ///
    /// classic: one batch of 32 takes the whole inactive list (B0, B1,
    /// B2); inactive (3) is not below active (1), so A0 stays active. B0's
    /// refault charges without a failure (3 pages in use).
    ///
    /// workingset-6: scans by priority; priority 1 takes 3 >> 1 = 1 page
    /// (B0), priority 0 the other two; the active share was skipped
    /// (inactive not low, no refault activation) and 3 < 32 pages came
    /// back, so reclaim runs again with forced deactivation, which moves
    /// A0 to the inactive list (its referenced bit was cleared when it was
    /// activated, so the next read only sets it). B0's refault is not
    /// activated: the active list is empty.
    #[test]
    fn the_model_side_replays_a_pattern_in_a_limited_container_exactly() {
        let pages = [
            (0, 0),
            (0, 0),
            (1, 0),
            (1, 1),
            (1, 2),
            (1, 3),
            (0, 0),
            (1, 0),
        ];
        let c = model_run(&pages, 4 * PAGE_SIZE, LruBalance::Classic, Kind::File);
        assert_eq!(
            c.hit,
            [false, true, false, false, false, false, true, false]
        );
        assert_eq!(
            (
                c.hits,
                c.misses,
                c.refaults,
                c.refault_activations,
                c.failcnt
            ),
            (2, 6, 1, 0, 1)
        );
        assert_eq!(
            (c.active, c.inactive, c.activations, c.failed),
            (1, 2, 1, 0)
        );
        let w = model_run(&pages, 4 * PAGE_SIZE, LruBalance::Workingset6, Kind::File);
        assert_eq!(w.hit, c.hit);
        assert_eq!(
            (
                w.hits,
                w.misses,
                w.refaults,
                w.refault_activations,
                w.failcnt
            ),
            (2, 6, 1, 0, 1)
        );
        assert_eq!((w.active, w.inactive, w.activations), (0, 3, 1));
        assert_eq!(w.periodic_at, None);
    }

    /// 100 reads 1 ms apart from t = 5 s, then a gap of 2.5 s before read
    /// 100, and 50 more 1 ms apart. By the kernel's rule the periodic flush
    /// runs 2 s after the start: read 100 (at 7.6 s) is the first at or
    /// after 7 s; the next is due at 9 s, after the last read (7.649 s).
    /// With traced root flushes at 5.05 s and 7.62 s (and one before the
    /// start, ignored) they land before reads 50 and 120.
    #[test]
    fn the_unobserved_model_flushes_on_the_host_s_own_clock() {
        let pages: Vec<(u32, u64)> = (0..150).map(|p| (0, p % 40)).collect();
        let ms = 1_000_000u64;
        let t0 = 5_000 * ms;
        let times: Vec<u64> = (0..150u64)
            .map(|i| {
                if i < 100 {
                    t0 + i * ms
                } else {
                    t0 + 2_600 * ms + (i - 100) * ms
                }
            })
            .collect();
        let clock = HostClock {
            times_ns: &times,
            root_flushes_ns: None,
            cpus: 1,
        };
        let r = model_run_kernel(
            &pages,
            64 * PAGE_SIZE,
            LruBalance::Workingset6,
            Kind::File,
            &clock,
        );
        assert_eq!(r.periodic_at, Some((ClockSource::HostTimes, vec![100])));
        assert_eq!(r.hits + r.misses, 150);

        // Evenly spaced times with no gap: no periodic flush in 150 ms.
        let even: Vec<u64> = (0..150u64).map(|i| t0 + i * ms).collect();
        let r = model_run_kernel(
            &pages,
            64 * PAGE_SIZE,
            LruBalance::Workingset6,
            Kind::File,
            &HostClock {
                times_ns: &even,
                root_flushes_ns: None,
                cpus: 1,
            },
        );
        assert_eq!(r.periodic_at, Some((ClockSource::HostTimes, vec![])));

        let traced = [t0 - ms, t0 + 50 * ms, t0 + 2_620 * ms];
        let r = model_run_kernel(
            &pages,
            64 * PAGE_SIZE,
            LruBalance::Workingset6,
            Kind::File,
            &HostClock {
                times_ns: &times,
                root_flushes_ns: Some(&traced),
                cpus: 1,
            },
        );
        assert_eq!(r.periodic_at, Some((ClockSource::Traced, vec![50, 120])));
    }

    /// The unobserved model is the 6.18 one: with a limit of 64 pages and
    /// 96 distinct pages read twice in order, the first reads fill the
    /// container and every second read of a page is a miss either way; but
    /// a repeated read of the same page is marked once
    /// (`filemap_read()`), so reading each page twice in a row leaves no
    /// page activated where the observed model activates every one.
    #[test]
    fn the_unobserved_model_uses_the_6_18_details() {
        let pages: Vec<(u32, u64)> = (0..32).flat_map(|p| [(0, p), (0, p)]).collect();
        let times: Vec<u64> = (0..pages.len() as u64).collect();
        let clock = HostClock {
            times_ns: &times,
            root_flushes_ns: None,
            cpus: 1,
        };
        let observed = model_run(&pages, 64 * PAGE_SIZE, LruBalance::Workingset6, Kind::File);
        let kernel = model_run_kernel(
            &pages,
            64 * PAGE_SIZE,
            LruBalance::Workingset6,
            Kind::File,
            &clock,
        );
        assert_eq!((observed.hits, kernel.hits), (32, 32));
        assert_eq!(observed.activations, 32);
        assert_eq!(kernel.activations, 0);
    }

    /// Anonymous memory of 96 pages in a container of 64 (swap 192
    /// slots), written in order twice: the first pass swaps out at the
    /// limit, the second swaps pages back in, and with the 6.x anon rules
    /// the swapped-out pages left shadows, so swap-ins are refaults.
    #[test]
    fn anonymous_memory_swaps_and_refaults_in_the_model() {
        let pages: Vec<(u32, u64)> = (0..96).chain(0..96).map(|p| (0, p)).collect();
        let r = model_run(&pages, 64 * PAGE_SIZE, LruBalance::Workingset6, Kind::Anon);
        assert_eq!(r.hits + r.misses, 192);
        assert_eq!(r.failed, 0);
        assert!(r.swap_outs >= 32, "{r:?}");
        assert!(r.swap_ins > 0 && r.refaults > 0, "{r:?}");
        assert!(r.refaults <= r.swap_ins);
        assert!(r.active + r.inactive <= 64);
        let times: Vec<u64> = (0..192).collect();
        let k = model_run_kernel(
            &pages,
            64 * PAGE_SIZE,
            LruBalance::Workingset6,
            Kind::Anon,
            &HostClock {
                times_ns: &times,
                root_flushes_ns: None,
                cpus: 1,
            },
        );
        assert_eq!(k.hits + k.misses, 192);
        assert!(k.swap_ins > 0, "{k:?}");
    }
}
