//! The memory controller: resource counters, containers (memory cgroups)
//! in a hierarchy, per-container LRU lists, limit reclaim and the
//! container OOM killer.
//!
//! Mirrors the memory controller LWN describes in "Controlling memory use
//! in containers" (seed 000_2fa08a6962ebae3f.txt, July 2007; Balbir Singh
//! and Pavel Emelianov), as merged in 2.6.25 and grown through 2.6.29:
//! kernel/res_counter.c, mm/memcontrol.c (`mem_cgroup_charge_common()`,
//! `mem_cgroup_uncharge_page()`, `try_to_free_mem_cgroup_pages()`,
//! `mem_cgroup_out_of_memory()`, the v1 control files).
//!
//! # Data structures
//!
//! ```text
//!   root ─┬─ /batch            every memcg: res_counter { usage, limit, max_usage, failcnt }
//!         └─ /web ── /web/db   lruvec per NUMA node (its own four LRU lists)
//!                              tasks; counters for memory.stat
//!
//!   page.memcg                 the page's charge: the page's `meta_page`
//!                              (2007) / `page_cgroup` (2.6.25), here one
//!                              field of `struct page`
//! ```
//!
//! # Rules
//!
//! * Charging happens when a page enters memory for a task: a page-cache
//!   page is charged to the container of the task that read it in, an
//!   anonymous page to its owner's. A shared page stays charged to the first
//!   container that touched it; when it is evicted and another container
//!   faults it back, that container is charged from then on (the page's
//!   "over time, the reclaim mechanism may well cause the charging of shared
//!   pages to be spread across the containers").
//! * A charge walks up the hierarchy (`res_counter_charge()` with parents,
//!   2.6.29): every level is charged, or, at the first level that would
//!   pass its limit, `failcnt` of that level is bumped and the levels below
//!   are uncharged again.
//! * A failed charge reclaims from the container that failed, its own lists
//!   and its descendants' only, and retries; after
//!   `MEM_CGROUP_RECLAIM_RETRIES` (5) passes without progress the
//!   container's OOM killer kills the task with the most resident pages
//!   inside that container (and below), never outside it.
//! * The root container is unlimited; tasks not placed anywhere are in it.
//!
//! # Control files
//!
//! [`Machine::memcg_read`] and [`Machine::memcg_write`] give the cgroup v1
//! files: `memory.limit_in_bytes`, `memory.usage_in_bytes`,
//! `memory.max_usage_in_bytes`, `memory.failcnt`, `memory.force_empty`,
//! `memory.stat`, `tasks`, with the kernel's errors.
//!
//! [`Machine::memcg_read`]: crate::Machine::memcg_read
//! [`Machine::memcg_write`]: crate::Machine::memcg_write

use std::collections::BTreeSet;
use std::fmt;

use super::page::{Pfn, TaskId};
use crate::machine::{Machine, Outcome, PAGE_SIZE};
use crate::mm::lru::{LruList, Lruvec};
use crate::mm::page::{Owner, flags};

/// `MEM_CGROUP_RECLAIM_RETRIES`.
pub const MEM_CGROUP_RECLAIM_RETRIES: u32 = 5;

/// `RESOURCE_MAX`: the limit of an unlimited counter (reads as
/// 9223372036854775807, `LLONG_MAX`, in the res_counter era).
pub const RESOURCE_MAX: u64 = i64::MAX as u64;

/// A memory cgroup's index. The root is 0.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct MemcgId(pub u16);

impl MemcgId {
    /// The root container.
    pub const ROOT: MemcgId = MemcgId(0);
}

/// A charge that would pass a counter's limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("charge would exceed the limit (ENOMEM)")]
pub struct LimitExceeded;

/// A resource counter (kernel/res_counter.c), in bytes.
///
/// Invariants: `usage <= limit` after every successful charge (a limit
/// lowered below usage is refused unless reclaim gets usage under it), and
/// `max_usage >= usage`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResCounter {
    /// Bytes charged.
    pub usage: u64,
    /// The most ever charged (since the last reset).
    pub max_usage: u64,
    /// The limit.
    pub limit: u64,
    /// Charges refused.
    pub failcnt: u64,
}

impl Default for ResCounter {
    fn default() -> Self {
        ResCounter {
            usage: 0,
            max_usage: 0,
            limit: RESOURCE_MAX,
            failcnt: 0,
        }
    }
}

impl ResCounter {
    /// `res_counter_charge_locked()`: charges `val` bytes, or refuses and
    /// counts a failure when `usage + val` would pass the limit (the
    /// kernel's `-ENOMEM`).
    pub fn charge(&mut self, val: u64) -> Result<(), LimitExceeded> {
        match self.usage.checked_add(val) {
            Some(new) if new <= self.limit => {
                self.usage = new;
                self.max_usage = self.max_usage.max(new);
                Ok(())
            }
            _ => {
                self.failcnt += 1;
                Err(LimitExceeded)
            }
        }
    }

    /// `res_counter_uncharge_locked()`: usage never goes below zero.
    pub fn uncharge(&mut self, val: u64) {
        debug_assert!(
            self.usage >= val,
            "uncharging {val} of {} bytes",
            self.usage
        );
        self.usage = self.usage.saturating_sub(val);
    }
}

/// Why a control-file operation failed: the errno the kernel returns, and
/// what was wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message} ({})", errno_name(*.errno))]
pub struct CgroupError {
    /// The errno (`EINVAL`, `EBUSY`, ...), positive.
    pub errno: i32,
    /// The container path and file.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `EBUSY`.
pub const EBUSY: i32 = 16;
/// `ENOENT`.
pub const ENOENT: i32 = 2;
/// `ESRCH`.
pub const ESRCH: i32 = 3;
/// `EEXIST`.
pub const EEXIST: i32 = 17;
/// `ERANGE`.
pub const ERANGE: i32 = 34;
/// `ENOMEM`.
pub const ENOMEM: i32 = 12;

fn errno_name(e: i32) -> &'static str {
    match e {
        EINVAL => "EINVAL",
        EBUSY => "EBUSY",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EEXIST => "EEXIST",
        ERANGE => "ERANGE",
        ENOMEM => "ENOMEM",
        _ => "errno",
    }
}

impl CgroupError {
    pub(crate) fn new(errno: i32, path: &str, message: impl Into<String>) -> Self {
        CgroupError {
            errno,
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Parses a value written to `memory.limit_in_bytes`: mirrors
/// `res_counter_memparse_write_strategy()` (2.6.29+): `-1` is unlimited;
/// otherwise `memparse()`: decimal digits with an optional `k`, `m`, `g`,
/// `t`, `p` or `e` suffix (either case); the result is rounded **up** to a
/// whole page. Anything else, other negative values included, is
/// `EINVAL`; a number too large for 64 bits is `ERANGE` (as `kstrtoull()`
/// reports; the 2007 `memparse()` silently wrapped).
pub fn parse_limit(text: &str, page_size: u64) -> Result<u64, (i32, String)> {
    let t = text.trim_end_matches('\n');
    if let Some(rest) = t.strip_prefix('-') {
        return if rest == "1" {
            Ok(RESOURCE_MAX)
        } else {
            Err((
                EINVAL,
                format!("{t:?} is negative; only -1 (unlimited) is allowed"),
            ))
        };
    }
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    if digits == 0 {
        return Err((EINVAL, format!("{t:?} is not a number of bytes")));
    }
    let (num, suffix) = t.split_at(digits);
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => {
            return Err((
                EINVAL,
                format!("{t:?}: expected digits with an optional K, M or G suffix"),
            ));
        }
    };
    let n: u64 = num
        .parse()
        .map_err(|_| (ERANGE, format!("{t:?} does not fit in 64 bits")))?;
    let bytes = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| (ERANGE, format!("{t:?} does not fit in 64 bits")))?;
    // PAGE_ALIGN, or unlimited when aligning would overflow.
    Ok(match bytes.checked_add(page_size - 1) {
        Some(v) => (v / page_size * page_size).min(RESOURCE_MAX),
        None => RESOURCE_MAX,
    })
}

/// Counters a container keeps for `memory.stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemcgStat {
    /// Pages charged (`pgpgin`).
    pub pgpgin: u64,
    /// Pages uncharged (`pgpgout`).
    pub pgpgout: u64,
    /// Pages scanned by limit reclaim.
    pub pgscan: u64,
    /// Pages reclaimed by limit reclaim.
    pub pgsteal: u64,
    /// Tasks killed by this container's OOM killer.
    pub oom_kill: u64,
}

/// One memory cgroup.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MemCgroup {
    /// Its path (`/` for the root, `/batch`, `/web/db`).
    pub path: String,
    /// Its parent (`None` for the root).
    pub parent: Option<MemcgId>,
    /// Its children.
    pub children: BTreeSet<MemcgId>,
    /// The resource counter.
    pub res: ResCounter,
    /// Its tasks.
    pub tasks: BTreeSet<TaskId>,
    /// Counters.
    pub stat: MemcgStat,
    /// Removed by `rmdir`: the id stays reserved so ids never change.
    pub removed: bool,
}

impl MemCgroup {
    pub(crate) fn new(path: &str, parent: Option<MemcgId>) -> Self {
        MemCgroup {
            path: path.to_owned(),
            parent,
            children: BTreeSet::new(),
            res: ResCounter::default(),
            tasks: BTreeSet::new(),
            stat: MemcgStat::default(),
            removed: false,
        }
    }
}

/// Bytes of charge-tracking state per page, in the 2007 patch the page
/// describes: one pointer in `struct page` and a `meta_page` of a list
/// head (two pointers), a page pointer, a container pointer and an
/// `atomic_t` ("five pointers ... and one atomic_t"), padded to 8 bytes.
pub fn meta_page_bytes(pointer_bytes: u64) -> u64 {
    let raw = 5 * pointer_bytes + 4;
    raw.div_ceil(pointer_bytes) * pointer_bytes
}

impl fmt::Display for MemcgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "memcg{}", self.0)
    }
}

// ---------------------------------------------------------------------------
// The machine's side: charging, reclaim, OOM, control files.
// ---------------------------------------------------------------------------

impl Machine {
    /// Containers, indexed by id (removed ones stay, marked).
    pub fn memcgs(&self) -> &[MemCgroup] {
        &self.memcgs
    }

    /// A container by path.
    pub fn memcg_by_path(&self, path: &str) -> Option<MemcgId> {
        self.memcgs
            .iter()
            .position(|m| !m.removed && m.path == path)
            .map(|i| MemcgId(i as u16))
    }

    /// A container.
    pub fn memcg(&self, id: MemcgId) -> &MemCgroup {
        &self.memcgs[id.0 as usize]
    }

    /// `id` and every container below it, parents before children.
    pub fn memcg_subtree(&self, id: MemcgId) -> Vec<MemcgId> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            out.extend(self.memcgs[out[i].0 as usize].children.iter().copied());
            i += 1;
        }
        out
    }

    /// `mkdir`: a new container under an existing parent.
    pub fn memcg_create(&mut self, path: &str) -> Result<MemcgId, CgroupError> {
        let (parent_path, name) = match path.rsplit_once('/') {
            Some((p, n)) if path.starts_with('/') && !n.is_empty() => {
                (if p.is_empty() { "/" } else { p }, n)
            }
            _ => {
                return Err(CgroupError::new(
                    EINVAL,
                    path,
                    "a container path is /name or /parent/name",
                ));
            }
        };
        if name == "." || name == ".." || name.contains(char::is_whitespace) {
            return Err(CgroupError::new(EINVAL, path, "invalid container name"));
        }
        if self.memcg_by_path(path).is_some() {
            return Err(CgroupError::new(EEXIST, path, "the container exists"));
        }
        let parent = self.memcg_by_path(parent_path).ok_or_else(|| {
            CgroupError::new(ENOENT, path, format!("no parent container {parent_path}"))
        })?;
        let nodes = self.nr_nodes();
        if (self.memcgs.len() + 1) * nodes > usize::from(u16::MAX) {
            return Err(CgroupError::new(
                ENOMEM,
                path,
                "too many containers for the model's lruvec ids",
            ));
        }
        let id = MemcgId(self.memcgs.len() as u16);
        self.memcgs.push(MemCgroup::new(path, Some(parent)));
        self.memcgs[parent.0 as usize].children.insert(id);
        for n in 0..nodes {
            let lv = self.lv(id, n);
            self.lruvecs.push(Lruvec::new(lv as u16));
        }
        Ok(id)
    }

    /// `rmdir`: refused while the container has tasks or children; its
    /// remaining pages move to the parent (2.6.29 `mem_cgroup_force_empty()`).
    pub fn memcg_remove(&mut self, path: &str) -> Result<(), CgroupError> {
        let id = self.existing(path)?;
        let Some(parent) = self.memcgs[id.0 as usize].parent else {
            return Err(CgroupError::new(
                EBUSY,
                path,
                "the root container cannot be removed",
            ));
        };
        let m = &self.memcgs[id.0 as usize];
        if !m.tasks.is_empty() || !m.children.is_empty() {
            return Err(CgroupError::new(
                EBUSY,
                path,
                "the container has tasks or children",
            ));
        }
        // css offline: drain_all_stock() of the container.
        self.drain_all_stock(id);
        self.move_pages_to(id, parent);
        self.memcgs[parent.0 as usize].children.remove(&id);
        self.memcgs[id.0 as usize].removed = true;
        Ok(())
    }

    /// Moves a task to a container (writing its pid to `tasks`). Its pages
    /// stay charged where they are (2.6.25: charges do not move with tasks).
    pub fn memcg_attach(&mut self, path: &str, task: u32) -> Result<(), CgroupError> {
        let id = self.existing(path)?;
        let t = TaskId(task);
        self.task_entry(t);
        if !self.tasks[&t].alive {
            return Err(CgroupError::new(
                ESRCH,
                path,
                format!("task {task} has exited"),
            ));
        }
        let old = self.tasks[&t].memcg;
        self.memcgs[old.0 as usize].tasks.remove(&t);
        self.memcgs[id.0 as usize].tasks.insert(t);
        self.task_entry(t).memcg = id;
        Ok(())
    }

    fn existing(&self, path: &str) -> Result<MemcgId, CgroupError> {
        self.memcg_by_path(path)
            .ok_or_else(|| CgroupError::new(ENOENT, path, "no such container"))
    }

    /// Reads a control file of a container.
    pub fn memcg_read(&self, path: &str, file: &str) -> Result<String, CgroupError> {
        let id = self.existing(path)?;
        let m = &self.memcgs[id.0 as usize];
        let at = format!("{path}/{file}");
        Ok(match file {
            "memory.limit_in_bytes" => format!("{}\n", m.res.limit),
            "memory.usage_in_bytes" => format!("{}\n", m.res.usage),
            "memory.max_usage_in_bytes" => format!("{}\n", m.res.max_usage),
            "memory.failcnt" => format!("{}\n", m.res.failcnt),
            "memory.force_empty" => return Err(CgroupError::new(EINVAL, &at, "write-only")),
            "memory.stat" => self.memcg_stat_text(id),
            "tasks" => m.tasks.iter().map(|t| format!("{}\n", t.0)).collect(),
            _ => return Err(CgroupError::new(ENOENT, &at, "no such control file")),
        })
    }

    /// Writes a control file of a container, with the kernel's errors;
    /// nothing changes when it fails.
    pub fn memcg_write(&mut self, path: &str, file: &str, value: &str) -> Result<(), CgroupError> {
        let id = self.existing(path)?;
        let at = format!("{path}/{file}");
        match file {
            "memory.limit_in_bytes" => {
                if id == MemcgId::ROOT {
                    return Err(CgroupError::new(
                        EINVAL,
                        &at,
                        "the root container's limit cannot be set",
                    ));
                }
                let limit = parse_limit(value, PAGE_SIZE)
                    .map_err(|(e, msg)| CgroupError::new(e, &at, msg))?;
                self.resize_limit(id, limit).map_err(|usage| {
                    CgroupError::new(
                        EBUSY,
                        &at,
                        format!("usage {usage} cannot be reclaimed below {limit}"),
                    )
                })
            }
            "memory.max_usage_in_bytes" => {
                let r = &mut self.memcgs[id.0 as usize].res;
                r.max_usage = r.usage;
                Ok(())
            }
            "memory.failcnt" => {
                self.memcgs[id.0 as usize].res.failcnt = 0;
                Ok(())
            }
            "memory.force_empty" => {
                if !self.memcgs[id.0 as usize].tasks.is_empty() {
                    return Err(CgroupError::new(EBUSY, &at, "the container has tasks"));
                }
                self.force_empty(id);
                Ok(())
            }
            "tasks" => {
                let task: u32 = value.trim().parse().map_err(|_| {
                    CgroupError::new(EINVAL, &at, format!("{:?} is not a task id", value.trim()))
                })?;
                self.memcg_attach(path, task)
            }
            "memory.usage_in_bytes" | "memory.stat" => {
                Err(CgroupError::new(EINVAL, &at, "read-only"))
            }
            _ => Err(CgroupError::new(ENOENT, &at, "no such control file")),
        }
    }

    /// `memory.stat` in bytes, as 2.6.28+ prints it.
    fn memcg_stat_text(&self, id: MemcgId) -> String {
        let m = &self.memcgs[id.0 as usize];
        let list = |l: LruList| -> u64 {
            (0..self.nr_nodes())
                .map(|n| self.lruvecs[self.lv(id, n)].len(l))
                .sum::<u64>()
                * PAGE_SIZE
        };
        let cache = list(LruList::ActiveFile) + list(LruList::InactiveFile);
        let rss = list(LruList::ActiveAnon) + list(LruList::InactiveAnon);
        let hier_limit = {
            let mut l = m.res.limit;
            let mut p = m.parent;
            while let Some(pid) = p {
                l = l.min(self.memcgs[pid.0 as usize].res.limit);
                p = self.memcgs[pid.0 as usize].parent;
            }
            l
        };
        format!(
            "cache {cache}\nrss {rss}\npgpgin {}\npgpgout {}\ninactive_anon {}\nactive_anon {}\ninactive_file {}\nactive_file {}\nunevictable 0\nhierarchical_memory_limit {hier_limit}\n",
            m.stat.pgpgin,
            m.stat.pgpgout,
            list(LruList::InactiveAnon),
            list(LruList::ActiveAnon),
            list(LruList::InactiveFile),
            list(LruList::ActiveFile),
        )
    }

    /// `mem_cgroup_resize_limit()`: reclaims until usage fits the new limit,
    /// giving up (usage returned, limit unchanged) after
    /// `MEM_CGROUP_RECLAIM_RETRIES` passes without progress.
    fn resize_limit(&mut self, id: MemcgId, limit: u64) -> Result<(), u64> {
        if self.memcgs[id.0 as usize].res.usage > limit {
            // 6.x memcg1 mem_cgroup_resize_max(): the stock first.
            self.drain_all_stock(id);
        }
        let mut retries = MEM_CGROUP_RECLAIM_RETRIES;
        while self.memcgs[id.0 as usize].res.usage > limit {
            if self.reclaim_memcg(id) == 0 {
                if retries == 0 {
                    return Err(self.memcgs[id.0 as usize].res.usage);
                }
                retries -= 1;
            }
        }
        self.memcgs[id.0 as usize].res.limit = limit;
        Ok(())
    }

    /// `memory.force_empty`: reclaims what it can, moves the rest to the
    /// parent.
    fn force_empty(&mut self, id: MemcgId) {
        // mem_cgroup_force_empty(): lru_add_drain_all(), drain_all_stock().
        self.lru_add_drain();
        self.drain_all_stock(id);
        let mut retries = MEM_CGROUP_RECLAIM_RETRIES;
        while self.memcgs[id.0 as usize].res.usage > 0 && retries > 0 {
            if self.reclaim_own(id) == 0 {
                retries -= 1;
            }
        }
        if let Some(parent) = self.memcgs[id.0 as usize].parent {
            self.move_pages_to(id, parent);
        }
    }

    /// Moves every page charged to `from` (its own, not its children's) to
    /// `to`, an ancestor: the pages change lists; `from` and the levels
    /// between drop the charge, `to` and above already hold it.
    fn move_pages_to(&mut self, from: MemcgId, to: MemcgId) {
        self.lru_add_drain();
        for n in 0..self.nr_nodes() {
            let (src, dst) = (self.lv(from, n), self.lv(to, n));
            for list in LruList::ALL {
                while let Some(pfn) = self.lruvecs[src].tail(list) {
                    self.lruvecs[src].del(self.mem.pages_mut(), pfn, list);
                    self.lruvecs[dst].add(self.mem.pages_mut(), pfn, list);
                    self.mem.page_mut(pfn).memcg = to.0;
                    let mut c = Some(from);
                    while let Some(m) = c.filter(|&m| m != to) {
                        self.memcgs[m.0 as usize].res.uncharge(PAGE_SIZE);
                        c = self.memcgs[m.0 as usize].parent;
                    }
                }
            }
        }
    }

    /// Charges one page to `memcg` and its ancestors; on failure, reclaims
    /// from the level that refused and retries, then calls that level's OOM
    /// killer (`mem_cgroup_charge_common()` with
    /// `mem_cgroup_out_of_memory()`). `current` is the faulting task: if it
    /// is chosen as the victim the charge fails with [`Outcome::Killed`].
    ///
    /// With `KernelDetails::charge_batch`, a charge to a container other
    /// than the root goes through the per-CPU stock
    /// ([`crate::mm::memcg_stock`]).
    pub(crate) fn try_charge(&mut self, memcg: MemcgId, current: TaskId) -> Result<(), Outcome> {
        if let Some(batch) = self.cfg.details.charge_batch
            && memcg != MemcgId::ROOT
        {
            self.try_charge_stocked(memcg, current, batch)?;
            self.charged(memcg);
            return Ok(());
        }
        let mut retries = MEM_CGROUP_RECLAIM_RETRIES;
        loop {
            let fail_at = match self.charge_hierarchy_pages(memcg, 1) {
                Ok(()) => {
                    self.charged(memcg);
                    return Ok(());
                }
                Err(level) => level,
            };
            if self.reclaim_memcg(fail_at) > 0 {
                continue;
            }
            if retries > 0 {
                retries -= 1;
                continue;
            }
            match self.memcg_oom(fail_at) {
                Some(victim) if victim == current => return Err(Outcome::Killed),
                Some(_) => retries = MEM_CGROUP_RECLAIM_RETRIES,
                None => return Err(Outcome::OutOfMemory),
            }
        }
    }

    /// A page charged: `pgpgin`, and its statistics update (v1
    /// `memcg1_charge_statistics()`: one `PGPGIN` event).
    fn charged(&mut self, memcg: MemcgId) {
        self.memcgs[memcg.0 as usize].stat.pgpgin += 1;
        self.rstat_updated(memcg.0, 1);
    }

    /// `res_counter_charge()` (6.x `page_counter_try_charge()`) of `n`
    /// pages up the hierarchy: all levels or none; the level that refused
    /// is returned (its `failcnt` counted the failure).
    pub(crate) fn charge_hierarchy_pages(&mut self, memcg: MemcgId, n: u64) -> Result<(), MemcgId> {
        let mut charged = Vec::new();
        let mut c = Some(memcg);
        while let Some(m) = c {
            if self.memcgs[m.0 as usize].res.charge(n * PAGE_SIZE).is_err() {
                for done in charged {
                    self.memcgs[done as usize].res.uncharge(n * PAGE_SIZE);
                }
                return Err(m);
            }
            charged.push(m.0);
            c = self.memcgs[m.0 as usize].parent;
        }
        Ok(())
    }

    /// `n` pages uncharged from `memcg` and its ancestors, no page freed
    /// (a drained charge stock).
    pub(crate) fn uncharge_pages(&mut self, memcg: MemcgId, n: u64) {
        let mut c = Some(memcg);
        while let Some(m) = c {
            self.memcgs[m.0 as usize].res.uncharge(n * PAGE_SIZE);
            c = self.memcgs[m.0 as usize].parent;
        }
    }

    /// Uncharges page `pfn` from `memcg` and its ancestors (and frees its
    /// `page_cgroup`, `mem_cgroup_uncharge_page()`).
    pub(crate) fn uncharge(&mut self, memcg: u16, pfn: Pfn) {
        self.page_cgroup_free(pfn);
        self.memcgs[memcg as usize].stat.pgpgout += 1;
        let mut c = Some(MemcgId(memcg));
        while let Some(m) = c {
            self.memcgs[m.0 as usize].res.uncharge(PAGE_SIZE);
            c = self.memcgs[m.0 as usize].parent;
        }
    }

    /// Limit reclaim (`try_to_free_mem_cgroup_pages()`): one batch from the
    /// lists of `id` and its descendants, on every node. Returns pages freed.
    pub(crate) fn reclaim_memcg(&mut self, id: MemcgId) -> u64 {
        if self.cfg.balance.scans_by_priority() {
            // 6.x try_to_free_mem_cgroup_pages(): SWAP_CLUSTER_MAX pages
            // from the subtree, by priority.
            let subtree = self.memcg_subtree(id);
            let nodes: Vec<usize> = (0..self.nr_nodes()).collect();
            let batch = self.cfg.reclaim_batch;
            return self.do_try_to_free_pages_6x(id, &subtree, &nodes, batch);
        }
        let mut freed = 0;
        for m in self.memcg_subtree(id) {
            freed += self.reclaim_own(m);
            if freed >= self.cfg.reclaim_batch {
                break;
            }
        }
        freed
    }

    /// One batch from a container's own lists.
    fn reclaim_own(&mut self, id: MemcgId) -> u64 {
        let batch = self.cfg.reclaim_batch;
        if self.cfg.balance.scans_by_priority() {
            let nodes: Vec<usize> = (0..self.nr_nodes()).collect();
            return self.do_try_to_free_pages_6x(id, &[id], &nodes, batch);
        }
        let mut freed = 0;
        for n in 0..self.nr_nodes() {
            let lv = self.lv(id, n);
            let scanned = self.stat.pgscan;
            let got = self.shrink_lruvec(lv, batch);
            let m = &mut self.memcgs[id.0 as usize].stat;
            m.pgscan += self.stat.pgscan - scanned;
            m.pgsteal += got;
            freed += got;
        }
        freed
    }

    /// The container's OOM killer (`mem_cgroup_out_of_memory()`): the task
    /// in `id` or below with the most resident and swapped pages dies (the
    /// first in task order on a tie). Returns the victim.
    pub(crate) fn memcg_oom(&mut self, id: MemcgId) -> Option<TaskId> {
        let mut chosen: Option<(TaskId, u64)> = None;
        for m in self.memcg_subtree(id) {
            for &t in &self.memcgs[m.0 as usize].tasks {
                let task = &self.tasks[&t];
                if !task.alive {
                    continue;
                }
                let points = task.rss + task.swapents;
                if chosen.is_none_or(|(_, best)| points > best) {
                    chosen = Some((t, points));
                }
            }
        }
        let (victim, _) = chosen?;
        self.memcgs[id.0 as usize].stat.oom_kill += 1;
        self.kill_task(victim);
        Some(victim)
    }

    /// Kills a task: frees its anonymous memory and swap, leaves its
    /// container.
    pub fn kill_task(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get(&task) else {
            return;
        };
        let entries: Vec<(u64, klab_radix_tree::Entry<crate::mm::page::Pfn>)> =
            t.table.iter().map(|(i, e)| (i, e.map(|p| *p))).collect();
        // The pages leave through free_pages_and_swap_cache(), which drains
        // the CPU's LRU batches first.
        self.lru_add_drain();
        // exit_mmap() -> zap_pte_range(): entries cleared in lazy MMU mode,
        // one TLB flush at the end.
        self.pv.enter_lazy_mmu();
        for (vpage, e) in entries {
            match e {
                klab_radix_tree::Entry::Item(pfn) => {
                    self.pv.set_pte();
                    let p = *self.mem.page(pfn);
                    debug_assert_eq!(p.owner, Owner::Anon { task, vpage });
                    let list = LruList::of(false, p.test(flags::ACTIVE));
                    self.lruvecs[p.lruvec as usize].del(self.mem.pages_mut(), pfn, list);
                    if p.test(flags::SWAPCACHE) {
                        self.swap_release(p.private);
                    }
                    self.uncharge(p.memcg, pfn);
                    self.mem.free(pfn);
                }
                klab_radix_tree::Entry::Value(crate::mm::memory_failure::HWPOISON_ENTRY) => {}
                klab_radix_tree::Entry::Value(slot) => self.swap_release(slot),
            }
        }
        self.pv.leave_lazy_mmu();
        self.pv.drop_mm(task.0);
        let huge = std::mem::take(&mut self.tasks.get_mut(&task).expect("checked above").huge);
        for pfn in huge {
            self.mem.free(pfn);
        }
        self.free_task_kernel_pages(task);
        let t = self.tasks.get_mut(&task).expect("checked above");
        t.table = klab_radix_tree::RadixTree::new();
        t.rss = 0;
        t.swapents = 0;
        t.alive = false;
        let memcg = t.memcg;
        self.memcgs[memcg.0 as usize].tasks.remove(&task);
    }

    /// Pages on `list` of a container's own lruvecs, over all nodes (its
    /// children's not included).
    pub fn memcg_lru_len(&self, id: MemcgId, list: LruList) -> u64 {
        (0..self.nr_nodes())
            .map(|n| self.lruvecs[self.lv(id, n)].len(list))
            .sum()
    }

    /// Bytes charged to a container (hierarchically).
    pub fn memcg_usage(&self, id: MemcgId) -> u64 {
        self.memcgs[id.0 as usize].res.usage
    }

    /// The container a resident file page is charged to.
    pub fn page_memcg(&self, file: u32, index: u64) -> Option<MemcgId> {
        match self.file(crate::mm::page::FileId(file))?.lookup(index)? {
            klab_radix_tree::Entry::Item(pfn) => Some(MemcgId(self.mem.page(pfn).memcg)),
            klab_radix_tree::Entry::Value(_) => None,
        }
    }

    /// Resident pages of `file` by the container they are charged to.
    pub fn file_charges(&self, file: u32) -> std::collections::BTreeMap<MemcgId, u64> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(a) = self.file(crate::mm::page::FileId(file)) {
            for (_, e) in a.entries_in(0, u64::MAX) {
                if let klab_radix_tree::Entry::Item(pfn) = e {
                    *out.entry(MemcgId(self.mem.page(pfn).memcg)).or_insert(0) += 1;
                }
            }
        }
        out
    }

    /// Checks the memory controller's invariants: every page sits on its
    /// container's lruvec for its node; each container's usage is
    /// `PAGE_SIZE` times the pages charged to it and its descendants;
    /// usage stays within the limit; tasks and containers agree.
    pub(crate) fn assert_memcg_invariants(&self) {
        let mut own = vec![0u64; self.memcgs.len()];
        // Pages waiting in the LRU batch, and the charge stock, are charged.
        for &pfn in self.cpu_batches().lru_add() {
            own[self.mem.page(pfn).memcg as usize] += 1;
        }
        for (i, o) in own.iter_mut().enumerate() {
            *o += self.memcg_stock_pages(MemcgId(i as u16));
        }
        for lv in &self.lruvecs {
            let memcg = lv.id() as usize / self.nr_nodes();
            for list in LruList::ALL {
                for pfn in lv.pages_of(self.mem.pages(), list) {
                    let p = self.mem.page(pfn);
                    assert_eq!(
                        p.memcg as usize, memcg,
                        "page {pfn} on the lists of container {memcg}"
                    );
                    assert_eq!(
                        p.lruvec as usize,
                        self.lv(MemcgId(p.memcg), p.node as usize)
                    );
                    own[memcg] += 1;
                }
            }
        }
        for (i, m) in self.memcgs.iter().enumerate() {
            let id = MemcgId(i as u16);
            if m.removed {
                assert_eq!(own[i], 0, "a removed container holds no pages");
                continue;
            }
            let subtree: u64 = self
                .memcg_subtree(id)
                .iter()
                .map(|c| own[c.0 as usize])
                .sum();
            assert_eq!(m.res.usage, subtree * PAGE_SIZE, "usage of {}", m.path);
            assert!(m.res.usage <= m.res.limit, "{} over its limit", m.path);
            assert!(m.res.max_usage >= m.res.usage);
            for t in &m.tasks {
                assert_eq!(self.tasks[t].memcg, id, "task {} listed in {}", t.0, m.path);
                assert!(self.tasks[t].alive);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_fails_past_the_limit_and_counts_it() {
        let mut c = ResCounter {
            limit: 8192,
            ..ResCounter::default()
        };
        assert_eq!(c.charge(4096), Ok(()));
        assert_eq!(c.charge(4096), Ok(()));
        assert_eq!(c.charge(4096), Err(LimitExceeded));
        assert_eq!((c.usage, c.max_usage, c.failcnt), (8192, 8192, 1));
        c.uncharge(4096);
        assert_eq!((c.usage, c.max_usage), (4096, 8192));
    }

    #[test]
    fn limits_parse_like_memparse_and_round_up_to_pages() {
        let p = |s| parse_limit(s, 4096);
        assert_eq!(p("1"), Ok(4096), "echo 1 > limit reads back 4096");
        assert_eq!(p("4096"), Ok(4096));
        assert_eq!(p("4097"), Ok(8192));
        assert_eq!(p("64M"), Ok(64 << 20));
        assert_eq!(p("1g\n"), Ok(1 << 30));
        assert_eq!(p("-1"), Ok(RESOURCE_MAX));
        assert_eq!(p("0"), Ok(0));
        for bad in ["-2", "-1x", "1.0", "1xx", "xx", "", "M", " 5"] {
            assert_eq!(p(bad).map_err(|e| e.0), Err(EINVAL), "{bad:?}");
        }
        assert_eq!(p("99999999999999999999").map_err(|e| e.0), Err(ERANGE));
        assert_eq!(p("17179869184G").map_err(|e| e.0), Err(ERANGE));
        assert_eq!(p("9223372036854775807"), Ok(RESOURCE_MAX));
    }

    #[test]
    fn the_pages_tracking_cost_is_five_pointers_and_an_atomic() {
        assert_eq!(meta_page_bytes(8), 48);
        assert_eq!(meta_page_bytes(4), 24);
    }
}
