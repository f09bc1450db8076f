//! Event counters, named as in `/proc/vmstat` where the kernel has the
//! event, so a report reads like the kernel's.

/// Cumulative event counts of a machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmStat {
    /// Page accesses (`pgfault` counts faults; every access of the model
    /// goes through the fault path or the page cache lookup).
    pub accesses: u64,
    /// Accesses that found their page resident.
    pub hits: u64,
    /// Accesses that had to read the page in (`pgmajfault`).
    pub pgmajfault: u64,
    /// Anonymous first touches: a zeroed page, no I/O (minor faults).
    pub pgminfault: u64,
    /// Pages moved from an inactive to an active list (`pgactivate`).
    pub pgactivate: u64,
    /// Pages moved from an active to an inactive list (`pgdeactivate`).
    pub pgdeactivate: u64,
    /// Active pages scanned (`pgrefill`).
    pub pgrefill: u64,
    /// Inactive pages scanned (`pgscan`).
    pub pgscan: u64,
    /// Pages reclaimed (`pgsteal`).
    pub pgsteal: u64,
    /// File faults that found a shadow entry (`workingset_refault`).
    pub workingset_refault: u64,
    /// Refaulting pages activated (`workingset_activate`).
    pub workingset_activate: u64,
    /// Active pages deactivated because of a refault (the page's rule).
    pub workingset_deactivate: u64,
    /// Shadow nodes reclaimed (`workingset_nodereclaim`).
    pub workingset_nodereclaim: u64,
    /// Dirty pages written back before reclaim (`nr_written`).
    pub nr_written: u64,
    /// Pages swapped in (`pswpin`).
    pub pswpin: u64,
    /// Pages swapped out (`pswpout`).
    pub pswpout: u64,
    /// Times reclaim ran (direct reclaim passes).
    pub reclaim_runs: u64,
    /// Allocations that failed after reclaim (out of memory).
    pub alloc_fail: u64,
}

impl VmStat {
    /// `(name, value)` pairs in a fixed order, for tables.
    pub fn fields(&self) -> [(&'static str, u64); 18] {
        [
            ("accesses", self.accesses),
            ("hits", self.hits),
            ("pgmajfault", self.pgmajfault),
            ("pgminfault", self.pgminfault),
            ("pgactivate", self.pgactivate),
            ("pgdeactivate", self.pgdeactivate),
            ("pgrefill", self.pgrefill),
            ("pgscan", self.pgscan),
            ("pgsteal", self.pgsteal),
            ("workingset_refault", self.workingset_refault),
            ("workingset_activate", self.workingset_activate),
            ("workingset_deactivate", self.workingset_deactivate),
            ("workingset_nodereclaim", self.workingset_nodereclaim),
            ("nr_written", self.nr_written),
            ("pswpin", self.pswpin),
            ("pswpout", self.pswpout),
            ("reclaim_runs", self.reclaim_runs),
            ("alloc_fail", self.alloc_fail),
        ]
    }
}
