//! HWPOISON: handling a memory failure on one page frame.
//!
//! Mirrors mm/memory-failure.c as merged in 2.6.32 (Andi Kleen, Fengguang
//! Wu; seed 001_9748f8e50c4ab156.txt, "HWPOISON"): `memory_failure()`,
//! `hwpoison_user_mappings()`, `kill_procs_ao()`, the `error_states[]`
//! table and its `me_*` handlers, and the hwpoison-inject harness.
//!
//! # The handler
//!
//! ```text
//!  memory_failure(pfn)
//!    vm.memory_failure_recovery = 0     panic, as before HWPOISON
//!    pfn outside memory                 Ignored  "memory outside kernel control"
//!    PG_hwpoison already set            Ignored  "already hardware poisoned"
//!    free frame (count 0)               Ignored  "free or high order kernel"
//!                                       (the allocator retires it when it comes up)
//!    user-mapped (anonymous) page:      unmap: the page-table entry becomes a
//!                                       hwpoison entry (swap-cache pages: their
//!                                       swap entry); if dirty, tasks that want an
//!                                       early kill get SIGBUS BUS_MCEERR_AO now
//!    first matching row of ERROR_STATES runs its action
//! ```
//!
//! | row | message | action -> result |
//! | --- | --- | --- |
//! | reserved | reserved kernel | ignore -> Ignored |
//! | buddy | free kernel | me_free -> Delayed |
//! | slab | kernel slab | me_kernel -> Delayed |
//! | huge | huge | me_huge_page -> Failed |
//! | swap cache, dirty | swapcache | me_swapcache_dirty -> Delayed (task dies on its next fault) |
//! | swap cache | swapcache | me_swapcache_clean -> Recovered (the swap copy is good) |
//! | LRU, dirty | LRU | me_pagecache_dirty -> Recovered, the file reports EIO, data lost |
//! | LRU | clean LRU | me_pagecache_clean -> Recovered (re-read from disk) |
//! | swap-backed | anonymous | me_pagecache_clean -> Recovered |
//! | anything else | unknown page state | me_unknown -> Failed |
//!
//! A later access to a hwpoison entry gets the task SIGBUS
//! `BUS_MCEERR_AR` (the late kill). A task that catches SIGBUS lives on;
//! one that does not dies.
//!
//! # What is simplified
//!
//! * File pages of the model are never mapped into tasks (reads go through
//!   the page cache), so no task is killed for a file page; a dirty one
//!   costs its data and an EIO on the file.
//! * A dirty swap-cache page is "handled late": the model puts the hwpoison
//!   entry in the task's page table at once and retires the frame, which is
//!   what the task sees (SIGBUS on its next fault).
//! * Poisoned frames are retired for good (no unpoison).

use crate::machine::{Machine, Outcome};
use crate::mm::lru::LruList;
use crate::mm::page::{FileId, KernelPage, Owner, Page, Pfn, TaskId, flags};

/// A page-table value marking a page lost to a memory failure (the
/// kernel's hwpoison swap entry). Swap slots are far below it.
pub const HWPOISON_ENTRY: u64 = 1 << 62;

/// `si_code` of a memory-failure SIGBUS.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum SigBusCode {
    /// `BUS_MCEERR_AR` (4): action required, sent when the task touches the
    /// lost page (late kill).
    ActionRequired = 4,
    /// `BUS_MCEERR_AO` (5): action optional, sent at failure time to tasks
    /// that asked for an early kill.
    ActionOptional = 5,
}

/// One SIGBUS a task received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SigBus {
    /// `si_code`.
    pub code: SigBusCode,
    /// The virtual page (`si_addr >> PAGE_SHIFT`; `si_addr_lsb = PAGE_SHIFT`).
    pub vpage: u64,
    /// Whether the task's handler caught it.
    pub caught: bool,
}

/// The sysctls of memory-failure handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MfConfig {
    /// `vm.memory_failure_recovery` (default 1): 0 panics on any failure,
    /// the behaviour before HWPOISON.
    pub recovery: bool,
    /// `vm.memory_failure_early_kill` (default 0): signal tasks at failure
    /// time rather than when they touch the page.
    pub early_kill: bool,
}

impl Default for MfConfig {
    fn default() -> Self {
        MfConfig {
            recovery: true,
            early_kill: false,
        }
    }
}

/// What the handler achieved (2.6.32's `enum`, in its order).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum MfResult {
    /// The page could not be handled.
    Failed,
    /// Handling is postponed to when the page is used.
    Delayed,
    /// Nothing to do (or nothing possible).
    Ignored,
    /// The page was isolated.
    Recovered,
}

impl MfResult {
    /// The word the kernel prints.
    pub fn name(self) -> &'static str {
        match self {
            MfResult::Failed => "Failed",
            MfResult::Delayed => "Delayed",
            MfResult::Ignored => "Ignored",
            MfResult::Recovered => "Recovered",
        }
    }
}

/// What one memory failure did.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MfReport {
    /// The frame.
    pub pfn: u64,
    /// The outcome.
    pub result: MfResult,
    /// The page type the kernel names (`"clean LRU"`, `"kernel slab"`).
    pub kind: &'static str,
    /// Whether the page was dirty.
    pub dirty: bool,
    /// Tasks killed now (early kill of a task without a handler).
    pub killed: Vec<TaskId>,
    /// Tasks signalled now (early kill) that caught it.
    pub signalled: Vec<TaskId>,
    /// A file that will report EIO.
    pub eio_file: Option<FileId>,
    /// Whether data that existed nowhere else was lost.
    pub data_lost: bool,
    /// The machine panicked (recovery disabled).
    pub panicked: bool,
}

/// [`MfReport`] as read from a hibernation image: the page type as text,
/// mapped back to the handler's own name.
#[derive(serde::Deserialize)]
struct MfReportImage {
    pfn: u64,
    result: MfResult,
    kind: String,
    dirty: bool,
    killed: Vec<TaskId>,
    signalled: Vec<TaskId>,
    eio_file: Option<FileId>,
    data_lost: bool,
    panicked: bool,
}

impl<'de> serde::Deserialize<'de> for MfReport {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let x = <MfReportImage as serde::Deserialize>::deserialize(d)?;
        MfReport::try_from(x).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<MfReportImage> for MfReport {
    type Error = String;
    fn try_from(x: MfReportImage) -> Result<Self, String> {
        Ok(MfReport {
            pfn: x.pfn,
            result: x.result,
            kind: kind_name(&x.kind)?,
            dirty: x.dirty,
            killed: x.killed,
            signalled: x.signalled,
            eio_file: x.eio_file,
            data_lost: x.data_lost,
            panicked: x.panicked,
        })
    }
}

impl MfReport {
    /// The kernel's log line: `MCE 0x..: [dirty ]<type> page recovery: <result>`.
    pub fn message(&self) -> String {
        if self.kind == "already hardware poisoned" {
            return format!("MCE {:#x}: already hardware poisoned", self.pfn);
        }
        format!(
            "MCE {:#x}: {}{} page recovery: {}",
            self.pfn,
            if self.dirty { "dirty " } else { "" },
            self.kind,
            self.result.name()
        )
    }
}

/// Counts of memory failures handled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MfStats {
    /// Failures handled (`mce_bad_pages`, `HardwareCorrupted`).
    pub total: u64,
    /// By result.
    pub ignored: u64,
    /// By result.
    pub failed: u64,
    /// By result.
    pub delayed: u64,
    /// By result.
    pub recovered: u64,
    /// Tasks killed by SIGBUS (early or late).
    pub tasks_killed: u64,
    /// Pages whose data existed nowhere else.
    pub data_lost: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Ignore,
    Free,
    Kernel,
    Huge,
    SwapcacheDirty,
    SwapcacheClean,
    PagecacheDirty,
    PagecacheClean,
    Unknown,
}

struct ErrorState {
    matches: fn(&Page) -> bool,
    msg: &'static str,
    action: Action,
}

/// `error_states[]` of 2.6.32, in match order, for the model's pages.
/// Reads a page-type name back as the handler's own `&'static str`
/// (a report in a hibernation image); an unknown name is an error.
fn kind_name(s: &str) -> Result<&'static str, String> {
    const OTHERS: [&str; 5] = [
        "",
        "panic",
        "memory outside kernel control",
        "already hardware poisoned",
        "free or high order kernel",
    ];
    OTHERS
        .iter()
        .copied()
        .chain(ERROR_STATES.iter().map(|e| e.msg))
        .find(|k| *k == s)
        .ok_or_else(|| format!("unknown page kind {s:?}"))
}

const ERROR_STATES: &[ErrorState] = &[
    ErrorState {
        matches: |p| p.owner == Owner::Kernel(KernelPage::Reserved),
        msg: "reserved kernel",
        action: Action::Ignore,
    },
    ErrorState {
        matches: |p| p.owner == Owner::Kernel(KernelPage::Buddy),
        msg: "free kernel",
        action: Action::Free,
    },
    ErrorState {
        matches: |p| p.owner == Owner::Kernel(KernelPage::Slab),
        msg: "kernel slab",
        action: Action::Kernel,
    },
    ErrorState {
        matches: |p| matches!(p.owner, Owner::Huge { .. }),
        msg: "huge",
        action: Action::Huge,
    },
    ErrorState {
        matches: |p| p.test(flags::SWAPCACHE) && p.test(flags::DIRTY),
        msg: "swapcache",
        action: Action::SwapcacheDirty,
    },
    ErrorState {
        matches: |p| p.test(flags::SWAPCACHE),
        msg: "swapcache",
        action: Action::SwapcacheClean,
    },
    ErrorState {
        matches: |p| p.test(flags::LRU) && p.test(flags::DIRTY),
        msg: "LRU",
        action: Action::PagecacheDirty,
    },
    ErrorState {
        matches: |p| p.test(flags::LRU),
        msg: "clean LRU",
        action: Action::PagecacheClean,
    },
    ErrorState {
        matches: |p| p.test(flags::SWAPBACKED),
        msg: "anonymous",
        action: Action::PagecacheClean,
    },
    ErrorState {
        matches: |_| true,
        msg: "unknown page state",
        action: Action::Unknown,
    },
];

impl Machine {
    /// The memory-failure sysctls.
    pub fn set_memory_failure_config(&mut self, cfg: MfConfig) {
        self.mf = cfg;
    }

    /// Counts of failures handled.
    pub fn mf_stats(&self) -> &MfStats {
        &self.mf_stats
    }

    /// Whether the machine has panicked.
    pub fn panicked(&self) -> bool {
        self.panicked
    }

    /// Frames taken out of use because they were poisoned.
    pub fn nr_poison_retired(&self) -> u64 {
        self.mem.nr_retired()
    }

    /// Takes `n` free frames for a kernel use; returns them.
    pub fn reserve_kernel_pages(&mut self, kind: KernelPage, n: u64) -> Vec<Pfn> {
        let mut out = Vec::new();
        for _ in 0..n {
            let Some(pfn) = self.mem.alloc(0) else { break };
            self.mem.page_mut(pfn).owner = Owner::Kernel(kind);
            out.push(pfn);
        }
        out
    }

    /// Gives a task `n` frames of huge pages (hugetlbfs); returns them.
    pub fn map_huge(&mut self, task: u32, n: u64) -> Vec<Pfn> {
        let t = TaskId(task);
        self.task_entry(t);
        let mut out = Vec::new();
        for _ in 0..n {
            let Some(pfn) = self.mem.alloc(0) else { break };
            self.mem.page_mut(pfn).owner = Owner::Huge { task: t };
            out.push(pfn);
        }
        self.task_entry(t).huge.extend(&out);
        out
    }

    /// `prctl(PR_MCE_KILL)` for a task: `Some(true)` early, `Some(false)`
    /// late, `None` the sysctl's choice.
    pub fn set_mce_kill(&mut self, task: u32, early: Option<bool>) {
        self.task_entry(TaskId(task)).mce_kill_early = early;
    }

    /// Whether a task installs a SIGBUS handler.
    pub fn set_catches_sigbus(&mut self, task: u32, catches: bool) {
        self.task_entry(TaskId(task)).catches_sigbus = catches;
    }

    /// The frame holding a task's anonymous page, if resident.
    pub fn anon_pfn(&self, task: u32, vpage: u64) -> Option<Pfn> {
        match self.tasks.get(&TaskId(task))?.table.lookup(vpage)? {
            klab_radix_tree::Entry::Item(p) => Some(*p),
            klab_radix_tree::Entry::Value(_) => None,
        }
    }

    /// The frame holding a file page, if resident.
    pub fn file_pfn(&self, file: u32, index: u64) -> Option<Pfn> {
        match self.file(FileId(file))?.lookup(index)? {
            klab_radix_tree::Entry::Item(p) => Some(p),
            klab_radix_tree::Entry::Value(_) => None,
        }
    }

    /// `fsync()` of a file: writes back its dirty pages, then reports (and
    /// clears) an error a memory failure left on it (`AS_EIO`): `Err(5)`
    /// once.
    pub fn fsync(&mut self, file: u32) -> Result<u64, i32> {
        let written = self.sync_file(file);
        let error = self
            .files
            .get_mut(&FileId(file))
            .is_some_and(|a| a.take_error());
        if error { Err(5) } else { Ok(written) }
    }

    /// Delivers SIGBUS for `vpage` to a task: recorded; a task without a
    /// handler dies.
    pub(crate) fn sigbus(&mut self, task: TaskId, vpage: u64, code: SigBusCode) -> Outcome {
        let t = self.task_entry(task);
        let caught = t.catches_sigbus;
        t.sigbus.push(SigBus {
            code,
            vpage,
            caught,
        });
        if !caught {
            self.mf_stats.tasks_killed += 1;
            self.kill_task(task);
        }
        Outcome::SigBus { caught }
    }

    /// `memory_failure(pfn)`: handles an uncorrected error on a frame.
    pub fn memory_failure(&mut self, pfn: u64) -> MfReport {
        let mut r = MfReport {
            pfn,
            result: MfResult::Ignored,
            kind: "",
            dirty: false,
            killed: Vec::new(),
            signalled: Vec::new(),
            eio_file: None,
            data_lost: false,
            panicked: false,
        };
        if !self.mf.recovery {
            self.panicked = true;
            r.panicked = true;
            r.kind = "panic";
            r.result = MfResult::Failed;
            return r;
        }
        if pfn >= self.mem.nr_pages() {
            r.kind = "memory outside kernel control";
            return self.account(r);
        }
        let pfn = pfn as Pfn;
        if self.mem.page(pfn).test(flags::HWPOISON) {
            r.kind = "already hardware poisoned";
            // Not counted again: the kernel returns before mce_bad_pages++.
            self.mf_stats.ignored += 1;
            return r;
        }
        self.mem.page_mut(pfn).set(flags::HWPOISON);
        let page = *self.mem.page(pfn);
        if page.owner == Owner::Free {
            r.kind = "free or high order kernel";
            return self.account(r);
        }
        r.dirty = page.test(flags::DIRTY);
        if let Owner::Anon { task, vpage } = page.owner {
            self.hwpoison_user_mappings(pfn, task, vpage, &mut r);
        }
        let state = ERROR_STATES
            .iter()
            .find(|s| (s.matches)(&page))
            .expect("the last row matches every page");
        r.kind = state.msg;
        r.result = match state.action {
            Action::Ignore => MfResult::Ignored,
            Action::Free | Action::Kernel => MfResult::Delayed,
            Action::Huge | Action::Unknown => MfResult::Failed,
            Action::SwapcacheDirty => {
                // me_swapcache_dirty: the newest data was only in this page.
                r.data_lost = true;
                self.isolate(pfn, &page);
                MfResult::Delayed
            }
            Action::SwapcacheClean => {
                // me_swapcache_clean: the swap slot still holds the data.
                self.isolate(pfn, &page);
                MfResult::Recovered
            }
            Action::PagecacheDirty => {
                if let Owner::File { file, .. } = page.owner {
                    // mapping_set_error(mapping, EIO)
                    self.files.get_mut(&file).expect("cached file").set_error();
                    r.eio_file = Some(file);
                }
                r.data_lost = true;
                self.isolate(pfn, &page);
                MfResult::Recovered
            }
            Action::PagecacheClean => {
                self.isolate(pfn, &page);
                MfResult::Recovered
            }
        };
        self.account(r)
    }

    fn account(&mut self, r: MfReport) -> MfReport {
        let s = &mut self.mf_stats;
        s.total += 1;
        match r.result {
            MfResult::Ignored => s.ignored += 1,
            MfResult::Failed => s.failed += 1,
            MfResult::Delayed => s.delayed += 1,
            MfResult::Recovered => s.recovered += 1,
        }
        s.data_lost += u64::from(r.data_lost);
        r
    }

    /// `hwpoison_user_mappings()` for an anonymous page: unmap it from its
    /// task (a hwpoison entry, or for a swap-cache page its swap entry, in
    /// the page table) and, if it was dirty, signal the task now when it
    /// asked for an early kill (`kill_procs_ao()` with `BUS_MCEERR_AO`).
    fn hwpoison_user_mappings(&mut self, pfn: Pfn, task: TaskId, vpage: u64, r: &mut MfReport) {
        let page = *self.mem.page(pfn);
        let swapcache = page.test(flags::SWAPCACHE);
        let t = self
            .tasks
            .get_mut(&task)
            .expect("an anon page's task exists");
        let replacement = if swapcache && !page.test(flags::DIRTY) {
            t.swapents += 1;
            page.private
        } else {
            // Clean anonymous pages (never written: zero-filled) are lost
            // as well: there is no copy to fall back to.
            HWPOISON_ENTRY
        };
        // try_to_unmap(): the entry replaced by a hwpoison or swap entry.
        self.pv.clear_flush();
        t.table
            .lookup_slot(vpage)
            .expect("a resident anon page is mapped")
            .replace(klab_radix_tree::Entry::Value(replacement))
            .expect("value entries fit");
        t.rss -= 1;
        if swapcache && replacement == HWPOISON_ENTRY {
            // The slot's copy is stale: the task must not read it back.
            self.swap_release(page.private);
        }
        if page.test(flags::DIRTY) {
            let early = self.tasks[&task]
                .mce_kill_early
                .unwrap_or(self.mf.early_kill);
            if early {
                match self.sigbus(task, vpage, SigBusCode::ActionOptional) {
                    Outcome::SigBus { caught: true } => r.signalled.push(task),
                    _ => r.killed.push(task),
                }
            }
        }
    }

    /// Takes a poisoned page out of every list and structure; its frame is
    /// retired. The caller has already unmapped anonymous pages.
    fn isolate(&mut self, pfn: Pfn, page: &Page) {
        if !self.mem.page(pfn).test(flags::LRU) {
            // The early kill may have freed the page with its task.
            return;
        }
        let list = LruList::of(page.is_file(), page.test(flags::ACTIVE));
        self.lruvecs[page.lruvec as usize].del(self.mem.pages_mut(), pfn, list);
        if let Owner::File { file, index } = page.owner {
            // truncate_inode_page(): the slot is emptied, no shadow.
            let a = self.files.get_mut(&file).expect("cached file");
            a.clear_dirty(index);
            a.delete(index);
            self.update_shadow_node(file, index);
            self.sync_tree_nodes(file, index, usize::from(page.node));
        }
        self.uncharge(page.memcg, pfn);
        self.mem.free(pfn);
    }
}
