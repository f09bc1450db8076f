//! Memory-cgroup statistics as a 6.x kernel keeps them: per-CPU deltas
//! folded into the totals ("flushed") now and then, so reclaim and the
//! refault test decide from numbers that can be seconds old.
//!
//! Mirrors mm/memcontrol.c of 6.8+ (per-memcg flush thresholds) as 6.18
//! has it: `memcg_rstat_updated()`, `memcg_vmstats_needs_flush()`,
//! `mem_cgroup_flush_stats()`, `mem_cgroup_flush_stats_ratelimited()`,
//! `flush_memcg_stats_dwork()`, `mem_cgroup_css_rstat_flush()`; and the
//! readers of the flushed numbers: mm/workingset.c
//! `workingset_test_recent()` (`lruvec_page_state()` of the active list)
//! and mm/vmscan.c `prepare_scan_control()` (the list sizes
//! `inactive_is_low()` compares, and `WORKINGSET_ACTIVATE_*` for "new
//! refaults since the last reclaim").
//!
//! # Rules
//!
//! ```text
//!   an update of |val| pages or events to memcg M (memcg_rstat_updated()):
//!     for each level L in M, parent(M), ..., root:
//!       if atomic[L] > MEMCG_CHARGE_BATCH * cpus: stop   (L and above are flushable)
//!       pcpu[L] += |val|
//!       if pcpu[L] >= MEMCG_CHARGE_BATCH: atomic[L] += pcpu[L]; pcpu[L] = 0
//!   a reader of M's memory.stat (mem_cgroup_flush_stats(M)):
//!     flush M if atomic[M] > MEMCG_CHARGE_BATCH * cpus
//!   the periodic work, every FLUSH_TIME = 2 s (flush_memcg_stats_dwork()):
//!     flush the root, whatever is pending; flush_last_time = now
//!   the refault test and prepare_scan_control()
//!   (mem_cgroup_flush_stats_ratelimited(M)):
//!     as a reader, but only when now > flush_last_time + 2 * FLUSH_TIME
//!   a flush of M (css_rstat_flush()): every memcg C of M's subtree sees
//!     its lruvecs' numbers as they are now (C and its descendants summed),
//!     and pcpu[C] = atomic[C] = 0; a flush of the root sets flush_last_time
//! ```
//!
//! # What the model keeps
//!
//! One CPU: the model runs every task on one CPU (as a host run pins its
//! worker), so each memcg has one per-CPU count. Per lruvec, the flushed
//! view of the six numbers the decisions read ([`Item`]); the machine's
//! lists are the live numbers. Time is the host's, in nanoseconds, given by
//! the driver ([`Machine::set_clock_ns`]); the periodic flush is the
//! driver's to call ([`Machine::memcg_flush_periodic`]), at the host's own
//! flush times when it has them, else by [`FlushClock`].
//!
//! Which updates count: each call the kernel makes to
//! `mod_memcg_state()`, `mod_lruvec_state()` or `count_memcg_events()` on a
//! path the model has, with its page count (a list add or delete of one
//! page is 1; isolating 32 pages from a list is one update of 32). The
//! model's paths and their updates are listed where they happen
//! ([`Machine::rstat_updated`] callers); slab objects (radix-tree nodes,
//! batched per CPU by the object stock) are not counted.

use crate::machine::Machine;
use crate::mm::lru::LruList;
use crate::mm::memcontrol::MemcgId;

/// `MEMCG_CHARGE_BATCH`: the per-CPU update count that is pushed to the
/// memcg's shared count, and (times the online CPUs) the shared count at
/// which a reader flushes.
pub const MEMCG_CHARGE_BATCH: u64 = 64;

/// `FLUSH_TIME` (`2UL*HZ`) in nanoseconds: the period of the flush work.
pub const FLUSH_TIME_NS: u64 = 2_000_000_000;

/// A number the decisions read flushed, by its index in a lruvec's view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Item {
    /// `NR_INACTIVE_ANON`, `NR_ACTIVE_ANON`, `NR_INACTIVE_FILE`,
    /// `NR_ACTIVE_FILE`.
    Lru(LruList),
    /// `WORKINGSET_ACTIVATE_FILE`.
    ActivateFile,
    /// `WORKINGSET_ACTIVATE_ANON`.
    ActivateAnon,
}

impl Item {
    fn index(self) -> usize {
        match self {
            Item::Lru(l) => l as usize,
            Item::ActivateFile => 4,
            Item::ActivateAnon => 5,
        }
    }
}

/// Pending updates of one memcg.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    /// The CPU's count (`memcg_vmstats_percpu::stats_updates`).
    pub pcpu: u64,
    /// The shared count (`memcg_vmstats::stats_updates`).
    pub shared: u64,
}

/// What the flushing did, for reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlushCounts {
    /// Readers that found enough pending and flushed.
    pub reader_flushes: u64,
    /// Readers that found too little pending.
    pub reader_skips: u64,
    /// Periodic (forced) flushes of the root.
    pub periodic: u64,
    /// Rate-limited flushes that ran (the periodic work was late).
    pub ratelimited: u64,
}

/// The statistics state of a machine with `KernelDetails::memcg_stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rstat {
    /// Pending updates per memcg id.
    pending: Vec<Pending>,
    /// The flushed view per lruvec: [`Item`] order.
    flushed: Vec<[u64; 6]>,
    /// The host's clock now, ns.
    now_ns: u64,
    /// `flush_last_time`: the last flush of the root, ns.
    last_root_flush_ns: u64,
    /// What flushing did.
    counts: FlushCounts,
}

/// The periodic flush by the kernel's rule, for a driver without the
/// host's own flush times: the work runs `FLUSH_TIME` after the previous
/// run (it is queued again when it has run).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FlushClock {
    next_ns: u64,
}

impl FlushClock {
    /// The first run at `first_ns`.
    pub fn starting_at(first_ns: u64) -> Self {
        FlushClock { next_ns: first_ns }
    }

    /// How many runs are due by `now_ns` (each advancing the next by
    /// `FLUSH_TIME`).
    pub fn due(&mut self, now_ns: u64) -> u64 {
        let mut n = 0;
        while self.next_ns <= now_ns {
            self.next_ns += FLUSH_TIME_NS;
            n += 1;
        }
        n
    }
}

impl Machine {
    fn stats_cpus(&self) -> Option<u64> {
        self.cfg.details.memcg_stats.map(u64::from)
    }

    /// `memcg_vmstats_needs_flush()`.
    fn needs_flush(&self, m: usize, cpus: u64) -> bool {
        self.rstat
            .pending
            .get(m)
            .is_some_and(|p| p.shared > MEMCG_CHARGE_BATCH * cpus)
    }

    /// `memcg_rstat_updated(memcg, val)`: `n = |val|` pages or events
    /// changed in `memcg`. Nothing without `KernelDetails::memcg_stats`.
    #[inline]
    pub(crate) fn rstat_updated(&mut self, memcg: u16, n: u64) {
        if n == 0 {
            return;
        }
        let Some(cpus) = self.stats_cpus() else {
            return;
        };
        self.rstat_updated_slow(memcg, n, cpus);
    }

    #[cold]
    fn rstat_updated_slow(&mut self, memcg: u16, n: u64, cpus: u64) {
        if self.rstat.pending.len() < self.memcgs.len() {
            self.rstat
                .pending
                .resize(self.memcgs.len(), Pending::default());
        }
        let mut level = Some(MemcgId(memcg));
        while let Some(l) = level {
            let i = l.0 as usize;
            if self.needs_flush(i, cpus) {
                break;
            }
            let p = &mut self.rstat.pending[i];
            p.pcpu += n;
            if p.pcpu >= MEMCG_CHARGE_BATCH {
                p.shared += p.pcpu;
                p.pcpu = 0;
            }
            level = self.memcgs[i].parent;
        }
    }

    /// Sets the host's clock (ns) for the rate-limited flushes.
    pub fn set_clock_ns(&mut self, now_ns: u64) {
        self.rstat.now_ns = now_ns;
    }

    /// A reader of `memcg`'s `memory.stat` (`mem_cgroup_flush_stats()`):
    /// flushes when enough is pending. Returns whether it flushed.
    pub fn memcg_stat_read(&mut self, memcg: MemcgId) -> bool {
        let Some(cpus) = self.stats_cpus() else {
            return false;
        };
        if self.needs_flush(memcg.0 as usize, cpus) {
            self.rstat.counts.reader_flushes += 1;
            self.rstat_flush(memcg);
            true
        } else {
            self.rstat.counts.reader_skips += 1;
            false
        }
    }

    /// The periodic work (`flush_memcg_stats_dwork()`): flushes everything.
    pub fn memcg_flush_periodic(&mut self) {
        if self.stats_cpus().is_none() {
            return;
        }
        self.rstat.counts.periodic += 1;
        self.rstat_flush(MemcgId::ROOT);
    }

    /// `mem_cgroup_flush_stats_ratelimited()`: a reader, but only when the
    /// periodic work is a full period late.
    pub(crate) fn memcg_flush_ratelimited(&mut self, memcg: MemcgId) {
        let Some(cpus) = self.stats_cpus() else {
            return;
        };
        let late = self.rstat.now_ns > self.rstat.last_root_flush_ns + 2 * FLUSH_TIME_NS;
        if late && self.needs_flush(memcg.0 as usize, cpus) {
            self.rstat.counts.ratelimited += 1;
            self.rstat_flush(memcg);
        }
    }

    /// `css_rstat_flush()` of `memcg`: its subtree's view brought up to
    /// date, their pending counts cleared.
    fn rstat_flush(&mut self, memcg: MemcgId) {
        if memcg == MemcgId::ROOT {
            self.rstat.last_root_flush_ns = self.rstat.now_ns;
        }
        let nodes = self.nr_nodes();
        if self.rstat.flushed.len() < self.lruvecs.len() {
            self.rstat.flushed.resize(self.lruvecs.len(), [0; 6]);
        }
        if self.rstat.pending.len() < self.memcgs.len() {
            self.rstat
                .pending
                .resize(self.memcgs.len(), Pending::default());
        }
        for c in self.memcg_subtree(memcg) {
            let sub = self.memcg_subtree(c);
            for n in 0..nodes {
                let mut v = [0u64; 6];
                for &d in &sub {
                    let lv = &self.lruvecs[self.lv(d, n)];
                    for l in LruList::ALL {
                        v[l as usize] += lv.len(l);
                    }
                    v[4] += lv.workingset_activate;
                    v[5] += lv.workingset_activate_anon;
                }
                let i = self.lv(c, n);
                self.rstat.flushed[i] = v;
            }
            self.rstat.pending[c.0 as usize] = Pending::default();
        }
    }

    /// `lruvec_page_state()` of `memcg`'s lruvec on `node`: the flushed
    /// value with `KernelDetails::memcg_stats`, the live one (the memcg
    /// and its descendants summed) without.
    pub(crate) fn lruvec_state(&self, memcg: MemcgId, node: usize, item: Item) -> u64 {
        if self.stats_cpus().is_some() {
            return self
                .rstat
                .flushed
                .get(self.lv(memcg, node))
                .map_or(0, |v| v[item.index()]);
        }
        self.memcg_subtree(memcg)
            .into_iter()
            .map(|d| {
                let lv = &self.lruvecs[self.lv(d, node)];
                match item {
                    Item::Lru(l) => lv.len(l),
                    Item::ActivateFile => lv.workingset_activate,
                    Item::ActivateAnon => lv.workingset_activate_anon,
                }
            })
            .sum()
    }

    /// A memcg's pending updates.
    pub fn memcg_stats_pending(&self, memcg: MemcgId) -> Pending {
        self.rstat
            .pending
            .get(memcg.0 as usize)
            .copied()
            .unwrap_or_default()
    }

    /// What flushing did so far.
    pub fn memcg_flush_counts(&self) -> FlushCounts {
        self.rstat.counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Access, KernelDetails, MachineConfig};
    use klab_mm_policy::LruBalance;

    fn machine(cpus: u32) -> Machine {
        let mut cfg = MachineConfig::new(256, LruBalance::Workingset6);
        cfg.details.memcg_stats = Some(cpus);
        let mut m = Machine::new(cfg).unwrap();
        m.memcg_create("/a").unwrap();
        m.memcg_attach("/a", 1).unwrap();
        m
    }

    /// Two CPUs: the threshold is 64 * 2 = 128. Each first read of a page
    /// in /a is three updates of one (PGPGIN at the charge, NR_FILE_PAGES
    /// at the page-cache insert, NR_INACTIVE_FILE at the LRU add), and the
    /// per-CPU count is pushed at the update that makes it 64:
    ///
    /// ```text
    ///  reads  pcpu(/a)  shared(/a)   (the root counts alike)
    ///   21      63        0
    ///   22       2       64          the 64th update pushed
    ///   43       1      128          not above 128
    ///   64       0      192          above: /a needs a flush
    ///   65       0      192          a flushable level stops the count
    /// ```
    #[test]
    fn updates_are_pushed_per_batch_and_a_reader_flushes_past_the_threshold() {
        let mut m = machine(2);
        let a = m.memcg_by_path("/a").unwrap();
        let read = |m: &mut Machine, pages: std::ops::Range<u64>| {
            for p in pages {
                m.access(Access::read(0, p).by(1));
            }
        };
        read(&mut m, 0..21);
        assert_eq!(
            m.memcg_stats_pending(a),
            Pending {
                pcpu: 63,
                shared: 0
            }
        );
        read(&mut m, 21..22);
        assert_eq!(
            m.memcg_stats_pending(a),
            Pending {
                pcpu: 2,
                shared: 64
            }
        );
        assert!(!m.memcg_stat_read(a), "64 is not above 128");
        assert_eq!(m.lruvec_state(a, 0, Item::Lru(LruList::InactiveFile)), 0);
        read(&mut m, 22..43);
        assert_eq!(
            m.memcg_stats_pending(a),
            Pending {
                pcpu: 1,
                shared: 128
            }
        );
        assert!(!m.memcg_stat_read(a), "128 is not above 128");
        read(&mut m, 43..64);
        assert_eq!(
            m.memcg_stats_pending(a),
            Pending {
                pcpu: 0,
                shared: 192
            }
        );
        read(&mut m, 64..65);
        assert_eq!(
            m.memcg_stats_pending(a),
            Pending {
                pcpu: 0,
                shared: 192
            }
        );
        assert_eq!(
            m.memcg_stats_pending(MemcgId::ROOT),
            Pending {
                pcpu: 0,
                shared: 192
            },
            "the root stopped counting with /a"
        );
        assert!(m.memcg_stat_read(a));
        assert_eq!(m.memcg_stats_pending(a), Pending::default());
        assert_eq!(m.lruvec_state(a, 0, Item::Lru(LruList::InactiveFile)), 65);
        assert_eq!(
            m.lruvec_state(MemcgId::ROOT, 0, Item::Lru(LruList::InactiveFile)),
            0,
            "a flush of /a leaves the root's view as it was"
        );
        assert_eq!(
            m.memcg_flush_counts(),
            FlushCounts {
                reader_flushes: 1,
                reader_skips: 2,
                ..FlushCounts::default()
            }
        );
        m.assert_invariants();
    }

    /// One CPU: the threshold is 64. 30 reads are 90 updates: pushed at
    /// the 64th, and 64 is not above 64. 45 more reads push at 64 and 128
    /// (128 > 64: flushable) and stop counting there.
    #[test]
    fn the_periodic_flush_updates_everything_and_ratelimited_readers_wait_for_it_to_be_late() {
        let mut m = machine(1);
        let a = m.memcg_by_path("/a").unwrap();
        for p in 0..30 {
            m.access(Access::read(0, p).by(1));
        }
        assert_eq!(
            m.memcg_stats_pending(a),
            Pending {
                pcpu: 26,
                shared: 64
            }
        );
        m.set_clock_ns(FLUSH_TIME_NS);
        m.memcg_flush_periodic();
        assert_eq!(m.memcg_stats_pending(a), Pending::default());
        assert_eq!(
            m.lruvec_state(MemcgId::ROOT, 0, Item::Lru(LruList::InactiveFile)),
            30
        );
        for p in 30..75 {
            m.access(Access::read(0, p).by(1));
        }
        assert_eq!(
            m.memcg_stats_pending(a),
            Pending {
                pcpu: 0,
                shared: 128
            }
        );
        // 4 s after the periodic flush: not late yet (strictly after).
        m.set_clock_ns(3 * FLUSH_TIME_NS);
        m.memcg_flush_ratelimited(a);
        assert_eq!(m.lruvec_state(a, 0, Item::Lru(LruList::InactiveFile)), 30);
        m.set_clock_ns(3 * FLUSH_TIME_NS + 1);
        m.memcg_flush_ratelimited(a);
        assert_eq!(m.lruvec_state(a, 0, Item::Lru(LruList::InactiveFile)), 75);
        let c = m.memcg_flush_counts();
        assert_eq!((c.periodic, c.ratelimited), (1, 1));
    }

    #[test]
    fn the_flush_clock_runs_every_two_seconds() {
        let mut c = FlushClock::starting_at(500);
        assert_eq!(c.due(499), 0);
        assert_eq!(c.due(500), 1);
        assert_eq!(c.due(500 + FLUSH_TIME_NS - 1), 0);
        assert_eq!(c.due(500 + 3 * FLUSH_TIME_NS), 3);
    }

    #[test]
    fn without_the_option_decisions_read_live_numbers_and_nothing_is_pending() {
        let mut cfg = MachineConfig::new(64, LruBalance::Workingset6);
        cfg.details = KernelDetails::default();
        let mut m = Machine::new(cfg).unwrap();
        for p in 0..10 {
            m.access(Access::read(0, p));
        }
        assert_eq!(
            m.lruvec_state(MemcgId::ROOT, 0, Item::Lru(LruList::InactiveFile)),
            10
        );
        assert_eq!(m.memcg_stats_pending(MemcgId::ROOT), Pending::default());
        assert!(!m.memcg_stat_read(MemcgId::ROOT));
    }
}
