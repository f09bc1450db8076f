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
//! # Mapped file pages
//!
//! A task that maps a file ([`Machine::mmap_file`], a shared mapping of
//! the whole file) reads and writes it through its page tables; each page
//! it touches gets a page-table entry. `hwpoison_user_mappings()` for a
//! page-cache page (2.6.32):
//!
//! * **clean**: "corrupted page was clean: dropped without side effects":
//!   the entries are removed (`TTU_IGNORE_HWPOISON`), nobody is signalled;
//!   the next touch faults the page in again from the file;
//! * **dirty**: tasks mapping the file that want an early kill get SIGBUS
//!   `BUS_MCEERR_AO` now (`collect_procs_file()` walks the mapping's VMAs,
//!   `kill_procs_ao()`); every entry pointing at the page becomes a
//!   hwpoison entry (`try_to_unmap()`), so the next touch of that page by
//!   those tasks is SIGBUS `BUS_MCEERR_AR` (the late kill): "dirty pages
//!   are unmapped from all associated processes, which are subsequently
//!   killed". The page's data is lost and the file reports EIO.
//!
//! # Kernel pages, and consuming them
//!
//! "Reserved kernel pages and zero count pages are ignored with the peril
//! of a system panic" (the page). The handler cannot isolate a kernel
//! page; the error waits in it, and when the kernel reads the data the
//! machine check is fatal (a kernel-mode consumption has no process to
//! kill). The model's kernel frames, and what consumes each:
//!
//! | frame | handler | consumed when |
//! | --- | --- | --- |
//! | kernel text ([`crate::MachineConfig::kernel_text_pages`]) | reserved: Ignored | its code runs: each access executes the next text frame in turn |
//! | page table ([`crate::MachineConfig::page_tables`]) | unknown: Failed | its task touches any of the 512 pages it maps |
//! | slab page with objects ([`crate::MachineConfig::slab`]) | kernel slab: Delayed | an object in it is read: a radix-tree lookup through a node in it, `kmem_cache_alloc()` of an object in it, uncharging a `page_cgroup` in it (see [`crate::mm::slab`]) |
//! | reserved (firmware, boot data) | reserved: Ignored | never, in the model |
//! | buddy page in transit | free kernel: Delayed | never: the allocator's check at the next allocation retires it |
//! | free frame | Ignored | never: retired when the allocator comes to it |
//!
//! A consumption panics the machine ([`Machine::panic_cause`] says which
//! frame, which use); every access after it is [`Outcome::Panic`].
//!
//! # What is simplified
//!
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

/// log2 of the pages one PTE page maps (512 entries on x86-64).
pub const PTE_SHIFT: u32 = 9;

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
    /// Tasks whose page-table entry for the page became a hwpoison entry
    /// (a mapped dirty file page): they get SIGBUS on their next touch.
    pub unmapped: Vec<TaskId>,
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
    #[serde(default)]
    unmapped: Vec<TaskId>,
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
            unmapped: x.unmapped,
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
    /// Poisoned kernel data the kernel read (each a panic).
    #[serde(default)]
    pub consumed: u64,
}

/// Why the machine stopped.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PanicCause {
    /// The frame.
    pub pfn: u64,
    /// What happened: the kernel use that read the poisoned frame, or
    /// "memory failure with vm.memory_failure_recovery = 0".
    pub what: String,
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
        // Kernel text is PG_reserved, as every page of the kernel image.
        matches: |p| {
            p.owner == Owner::Kernel(KernelPage::Reserved)
                || p.owner == Owner::Kernel(KernelPage::Text)
        },
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
            unmapped: Vec::new(),
        };
        if !self.mf.recovery {
            self.panicked = true;
            self.panic_cause.get_or_insert(PanicCause {
                pfn,
                what: "memory failure with vm.memory_failure_recovery = 0".into(),
            });
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
        match page.owner {
            Owner::Anon { task, vpage } => self.hwpoison_user_mappings(pfn, task, vpage, &mut r),
            Owner::File { file, index } => self.hwpoison_file_mappings(pfn, file, index, &mut r),
            Owner::Kernel(KernelPage::Slab) => {
                self.poison_slab_frame(pfn);
            }
            _ => {}
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

    /// `hwpoison_user_mappings()` for a page-cache page (see the module
    /// header): clean, its page-table entries are dropped; dirty, tasks
    /// mapping the file that want an early kill are signalled now and every
    /// entry pointing at the page becomes a hwpoison entry.
    fn hwpoison_file_mappings(&mut self, pfn: Pfn, file: FileId, index: u64, r: &mut MfReport) {
        let dirty = self.mem.page(pfn).test(flags::DIRTY);
        let mappers: Vec<TaskId> = self
            .tasks
            .iter()
            .filter(|(_, t)| t.alive && t.mapped_files.contains(&file))
            .map(|(&id, _)| id)
            .collect();
        for task in mappers {
            let t = self.tasks.get_mut(&task).expect("listed");
            let had_pte = t
                .file_ptes
                .get_mut(&file)
                .and_then(|m| m.remove(&index))
                .is_some_and(|p| p == pfn);
            if !dirty {
                // page_mkclean() found it clean: dropped without side effects.
                continue;
            }
            if had_pte {
                t.file_poisoned.entry(file).or_default().insert(index);
                r.unmapped.push(task);
            }
            let early = t.mce_kill_early.unwrap_or(self.mf.early_kill);
            if early {
                match self.sigbus(task, index, SigBusCode::ActionOptional) {
                    Outcome::SigBus { caught: true } => r.signalled.push(task),
                    _ => r.killed.push(task),
                }
            }
        }
    }

    /// `mmap(MAP_SHARED)` of a whole file by a task: from now on its reads
    /// and writes of the file go through the mapping (see the module
    /// header).
    pub fn mmap_file(&mut self, task: u32, file: u32) {
        self.task_entry(TaskId(task))
            .mapped_files
            .insert(FileId(file));
    }

    /// A touch of page `index` of a file the task maps: SIGBUS
    /// `BUS_MCEERR_AR` when its entry is a hwpoison entry (the late kill).
    pub(crate) fn file_mapping_fault(
        &mut self,
        task: TaskId,
        file: FileId,
        index: u64,
    ) -> Option<Outcome> {
        let t = self.tasks.get(&task)?;
        if !t.file_poisoned.get(&file)?.contains(&index) {
            return None;
        }
        Some(self.sigbus(task, index, SigBusCode::ActionRequired))
    }

    /// The task's entry for page `index` of a file it maps now points at
    /// frame `pfn`.
    pub(crate) fn map_file_page(&mut self, task: TaskId, file: FileId, index: u64, pfn: Pfn) {
        if let Some(t) = self.tasks.get_mut(&task)
            && t.mapped_files.contains(&file)
        {
            t.file_ptes.entry(file).or_default().insert(index, pfn);
        }
    }

    /// The kernel read poisoned data in frame `pfn` while doing `what`: a
    /// fatal machine check (the first one is recorded).
    pub(crate) fn kernel_consumed(&mut self, pfn: Pfn, what: &str) {
        self.mf_stats.consumed += 1;
        if !self.panicked {
            self.panicked = true;
            self.panic_cause = Some(PanicCause {
                pfn: u64::from(pfn),
                what: format!("consumed a poisoned {what}"),
            });
        }
    }

    /// What frame `pfn` holds.
    ///
    /// # Panics
    /// If `pfn` is not a frame of the machine.
    pub fn frame_owner(&self, pfn: Pfn) -> Owner {
        self.mem.page(pfn).owner
    }

    /// Why the machine panicked, if it did.
    pub fn panic_cause(&self) -> Option<&PanicCause> {
        self.panic_cause.as_ref()
    }

    /// Kernel text frames.
    pub fn kernel_text(&self) -> &[Pfn] {
        &self.text
    }

    /// Runs the next kernel text frame (every access runs kernel code; the
    /// frames take turns): consumes it if poisoned.
    pub(crate) fn execute_kernel_text(&mut self) {
        if self.text.is_empty() {
            return;
        }
        let f = self.text[(self.text_cursor % self.text.len() as u64) as usize];
        self.text_cursor += 1;
        if self.mem.page(f).test(flags::HWPOISON) {
            self.kernel_consumed(f, "kernel text page (executed)");
        }
    }

    /// The page-table walk of an anonymous access
    /// ([`crate::MachineConfig::page_tables`]): the PTE page mapping
    /// `vpage` is read (a panic if poisoned), or allocated on the first
    /// touch of its range (`__pte_alloc()`; `Err(OutOfMemory)` when no
    /// frame can be had).
    pub(crate) fn walk_page_table(
        &mut self,
        task: TaskId,
        node: u8,
        vpage: u64,
    ) -> Result<(), Outcome> {
        if !self.cfg.page_tables {
            return Ok(());
        }
        let range = vpage >> PTE_SHIFT;
        if let Some(&f) = self.tasks[&task].ptes.get(&range) {
            if self.mem.page(f).test(flags::HWPOISON) {
                self.kernel_consumed(f, "page table page (walked)");
                return Err(Outcome::Panic);
            }
            return Ok(());
        }
        let node = (node as usize).min(self.nr_nodes() - 1);
        let f = match self.mem.alloc(node) {
            Some(f) => f,
            None => {
                self.try_to_free_pages(node);
                self.mem.alloc(node).ok_or(Outcome::OutOfMemory)?
            }
        };
        self.mem.page_mut(f).owner = Owner::Kernel(KernelPage::PageTable);
        self.tasks
            .get_mut(&task)
            .expect("the accessing task exists")
            .ptes
            .insert(range, f);
        Ok(())
    }

    /// A lookup of `index` in `file` reads the radix-tree nodes on its
    /// path: consumed if one lies in a poisoned slab frame.
    pub(crate) fn walk_page_cache_tree(&mut self, file: FileId, index: u64) -> bool {
        let Some(ks) = self.slab.as_ref() else {
            return false;
        };
        if ks.poisoned().is_empty() {
            return false;
        }
        let hit = ks
            .path_objects(file, index)
            .into_iter()
            .find_map(|o| ks.object_poisoned(o));
        if let Some(f) = hit {
            self.kernel_consumed(f, "radix_tree_node slab page (page-cache lookup)");
            return true;
        }
        false
    }

    /// Frees a dying task's page-table frames and forgets its file
    /// mappings (`exit_mmap()`: `free_pgtables()`).
    pub(crate) fn free_task_kernel_pages(&mut self, task: TaskId) {
        let Some(t) = self.tasks.get_mut(&task) else {
            return;
        };
        let ptes = std::mem::take(&mut t.ptes);
        t.file_ptes.clear();
        t.file_poisoned.clear();
        t.mapped_files.clear();
        for f in ptes.into_values() {
            self.mem.free(f);
        }
    }

    /// The kernel frames' bookkeeping, checked without panicking (part of
    /// [`Machine::check`]).
    pub(crate) fn check_kernel_frames(&self) -> Result<(), String> {
        let pages = self.mem.pages();
        let owned = |f: Pfn, kind: KernelPage| {
            pages
                .get(f as usize)
                .is_some_and(|p| p.owner == Owner::Kernel(kind))
        };
        if self.text.len() as u64 != self.cfg.kernel_text_pages {
            return Err(format!(
                "{} kernel text frames, the configuration says {}",
                self.text.len(),
                self.cfg.kernel_text_pages
            ));
        }
        if let Some(&f) = self.text.iter().find(|&&f| !owned(f, KernelPage::Text)) {
            return Err(format!("kernel text frame {f} is not kernel text"));
        }
        for (task, t) in &self.tasks {
            if let Some(&f) = t.ptes.values().find(|&&f| !owned(f, KernelPage::PageTable)) {
                return Err(format!("task {}: page-table frame {f} is not one", task.0));
            }
            if !t.ptes.is_empty() && (!self.cfg.page_tables || !t.alive) {
                return Err(format!("task {}: page-table frames it cannot have", task.0));
            }
            let files_ok = t
                .file_ptes
                .keys()
                .chain(t.file_poisoned.keys())
                .all(|f| t.mapped_files.contains(f));
            if !files_ok
                || t.file_ptes
                    .values()
                    .flat_map(|m| m.values())
                    .any(|&f| f as usize >= pages.len())
            {
                return Err(format!(
                    "task {}: entries of a file it does not map",
                    task.0
                ));
            }
        }
        Ok(())
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
