//! The machine: page frames on NUMA nodes, the page cache of every file,
//! anonymous memory of every task, the LRU lists, and the rules that move
//! pages between them.
//!
//! # An access, step by step
//!
//! ```text
//!  access(Read file i)
//!    │ lookup i in the file's radix tree
//!    ├─ Item(pfn)  ── hit: mark_page_accessed(pfn)
//!    └─ Value(shadow) or empty ── miss (pgmajfault):
//!         alloc_page(node)            may reclaim (mm/vmscan.rs)
//!         insert pfn at i             returns the shadow it replaces
//!         shadow? workingset refault: distance R, the rule decides
//!         add to inactive (or active) file list, mark_page_accessed(pfn)
//! ```
//!
//! Mirrors, in 3.15's shape: mm/filemap.c `do_generic_file_read()` and
//! `add_to_page_cache_lru()`, mm/swap.c `mark_page_accessed()`,
//! mm/workingset.c `workingset_refault()`, mm/memory.c
//! `do_anonymous_page()` and `do_swap_page()` for anonymous memory.
//!
//! # What is simplified
//!
//! * No per-CPU page vectors: pages reach the LRU lists at once (the kernel
//!   batches up to 14 per CPU, which delays `PG_lru` and so a page's first
//!   promotion).
//! * No readahead: an access is one page.
//! * Writeback is instant: a dirty page at the tail of the inactive list is
//!   written (`nr_written`) and reclaimed in the same pass.
//! * Reclaim is direct and synchronous, run when an allocation finds no free
//!   frame (no kswapd, no watermarks).
//! * One zone per node.
//!
//! # Determinism
//!
//! Nothing here reads a clock or a random generator: the same config and
//! the same accesses give the same counters, bit for bit.

use std::collections::{BTreeMap, BTreeSet};

use klab_mm_policy::LruBalance;
use klab_radix_tree::{Entry, RadixTree};

use crate::mm::filemap::AddressSpace;
use crate::mm::lru::{LruList, Lruvec};
use crate::mm::memcontrol::{MemCgroup, MemcgId};
use crate::mm::page::{FileId, Owner, Pfn, TaskId, flags};
use crate::mm::page_alloc::PageAlloc;
use crate::mm::vmstat::VmStat;
use crate::mm::workingset::{self, ShadowNodes};

/// Bytes per page.
pub const PAGE_SIZE: u64 = 4096;

/// `SWAP_CLUSTER_MAX`: pages reclaim tries to free per pass.
pub const SWAP_CLUSTER_MAX: u64 = 32;

/// How many shadow-only radix-tree nodes may accumulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ShadowLimit {
    /// 3.15's `count_shadow_nodes()`: memory pages >> 4.
    Kernel315,
    /// Never reclaim shadow nodes.
    Unlimited,
    /// At most this many.
    Nodes(u64),
}

/// `LruBalance`'s serialized form (a foreign type: serde's remote
/// derive); use as `#[serde(with = "klab_model::machine::LruBalanceDef")]`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "LruBalance")]
pub enum LruBalanceDef {
    /// `LruBalance::Classic`.
    Classic,
    /// `LruBalance::RefaultDistance`.
    RefaultDistance,
    /// `LruBalance::Workingset315`.
    Workingset315,
    /// `LruBalance::Workingset6`.
    Workingset6,
}

/// What a machine is made of.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct MachineConfig {
    /// Page frames on each NUMA node.
    pub pages_per_node: Vec<u64>,
    /// The file LRU balancing rule.
    #[serde(with = "LruBalanceDef")]
    pub balance: LruBalance,
    /// Pages reclaim frees per pass.
    pub reclaim_batch: u64,
    /// Swap slots (0: no swap, anonymous memory is never reclaimed).
    pub swap_pages: u64,
    /// Bound on shadow nodes.
    pub shadow_limit: ShadowLimit,
    /// Record list sizes every this many accesses (0: never).
    pub sample_every: u64,
    /// Allocate the kernel's objects (the page cache's radix-tree nodes)
    /// from SLUB caches whose slab pages take machine frames
    /// ([`crate::mm::slab`]). Off, kernel objects cost no frames, which
    /// keeps the list rules' arithmetic exact in small tests.
    #[serde(default)]
    pub slab: bool,
    /// With `slab`: every charged page gets a `page_cgroup` object from
    /// its SLUB cache, allocated at charge and freed at uncharge, as
    /// 2.6.25-2.6.26 did (`mem_cgroup_charge_common()`); 2.6.27 replaced
    /// them with an array allocated at boot.
    #[serde(default)]
    pub page_cgroup: bool,
    /// Frames of kernel text reserved at boot (`KernelPage::Text`). Every
    /// access runs kernel code: the frames take turns, so a poisoned one is
    /// consumed (a panic) within this many accesses. 0 (the default): the
    /// kernel image takes no frame.
    #[serde(default)]
    pub kernel_text_pages: u64,
    /// Anonymous memory needs page-table frames (`KernelPage::PageTable`):
    /// one PTE page per 512 virtual pages of a task, taken at the first
    /// touch of its range and read by every walk of it. Off (the default),
    /// page tables cost no frames.
    #[serde(default)]
    pub page_tables: bool,
    /// What a 6.x host kernel does that the model leaves out unless asked
    /// ([`KernelDetails`]; all off by default).
    #[serde(default, skip_serializing_if = "is_default")]
    pub details: KernelDetails,
}

/// What a 6.x kernel does between an access and the decisions reclaim
/// takes, each rule off by default so the model keeps its 3.15-shaped
/// paths (statistics read live, one charge per page, pages on the LRU at
/// once, every read marks its page accessed). `klab fidelity` turns them
/// on to compare the model with a host nobody is watching.
///
/// | field | kernel | module |
/// | --- | --- | --- |
/// | `memcg_stats` | mm/memcontrol.c rstat: `memcg_rstat_updated()`, `mem_cgroup_flush_stats()`, `flush_memcg_stats_dwork()` | [`crate::mm::memcg_stats`] |
/// | `charge_batch` | mm/memcontrol.c `try_charge_memcg()`, `consume_stock()`, `refill_stock()` | [`crate::mm::memcg_stock`] |
/// | `lru_batch` | mm/swap.c `folio_add_lru()`, `folio_activate()`, `lru_add_drain()` | [`crate::mm::swap`] |
/// | `read_marks_once` | mm/filemap.c `filemap_read()` | [`crate::mm::filemap`] |
/// | `anon_6x` | mm/memory.c `do_anonymous_page()`, mm/vmscan.c `folio_check_references()`, mm/workingset.c for anon | [`crate::mm::vmscan`] |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelDetails {
    /// Reclaim and the refault test read a memory cgroup's statistics as
    /// last flushed, not live; `Some(cpus)`: the online CPUs the flush
    /// threshold (`MEMCG_CHARGE_BATCH * num_online_cpus()`) counts.
    #[serde(default)]
    pub memcg_stats: Option<u32>,
    /// The per-CPU charge stock: a charge takes this many pages from the
    /// counter at once (`MEMCG_CHARGE_BATCH`, 64) and keeps the rest.
    #[serde(default)]
    pub charge_batch: Option<u64>,
    /// Per-CPU LRU batches of this many folios (`PAGEVEC_SIZE`, 31): a new
    /// page, and an activation, wait there until the batch fills or reclaim
    /// drains it.
    #[serde(default)]
    pub lru_batch: Option<u32>,
    /// A read that starts in the page the previous read of the same file
    /// ended in does not mark the page accessed again.
    #[serde(default)]
    pub read_marks_once: bool,
    /// 6.x anonymous memory: new pages join the inactive list, reclaim
    /// keeps a young page once and activates it on its second young scan,
    /// swapped-out pages leave shadows and refault by the 6.x rule.
    #[serde(default)]
    pub anon_6x: bool,
}

impl KernelDetails {
    /// Every rule as Linux 6.18 has it, on a machine of `cpus` online CPUs.
    pub const fn linux_6_18(cpus: u32) -> Self {
        KernelDetails {
            memcg_stats: Some(cpus),
            charge_batch: Some(crate::mm::memcg_stock::MEMCG_CHARGE_BATCH),
            lru_batch: Some(crate::mm::swap::PAGEVEC_SIZE),
            read_marks_once: true,
            anon_6x: true,
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        if self.memcg_stats == Some(0) {
            return Err("memcg_stats needs at least one online CPU".into());
        }
        if let Some(b) = self.charge_batch
            && !(1..=crate::mm::memcg_stock::MAX_CHARGE_BATCH).contains(&b)
        {
            return Err(format!(
                "charge_batch {b}: the stock holds 1 to {} pages (an u8 per slot, MEMCG_CHARGE_BATCH <= S8_MAX)",
                crate::mm::memcg_stock::MAX_CHARGE_BATCH
            ));
        }
        if self.lru_batch == Some(0) {
            return Err("lru_batch must hold at least one folio".into());
        }
        Ok(())
    }
}

impl MachineConfig {
    /// One node of `pages` frames, the given rule, kernel defaults
    /// otherwise.
    pub fn new(pages: u64, balance: LruBalance) -> Self {
        MachineConfig {
            pages_per_node: vec![pages],
            balance,
            reclaim_batch: SWAP_CLUSTER_MAX,
            swap_pages: 0,
            shadow_limit: ShadowLimit::Kernel315,
            sample_every: 0,
            slab: false,
            page_cgroup: false,
            kernel_text_pages: 0,
            page_tables: false,
            details: KernelDetails::default(),
        }
    }

    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), String> {
        if self.pages_per_node.is_empty() || self.pages_per_node.len() > 64 {
            return Err(format!(
                "a machine needs 1 to 64 NUMA nodes (NODES_SHIFT = 6), not {}",
                self.pages_per_node.len()
            ));
        }
        if self.pages_per_node.contains(&0) {
            return Err("every NUMA node needs at least one page frame".into());
        }
        let total: u64 = self.pages_per_node.iter().sum();
        if total >= u64::from(u32::MAX) {
            return Err(format!(
                "{total} page frames: the model addresses fewer than 2^32"
            ));
        }
        if self.reclaim_batch == 0 {
            return Err("reclaim_batch must be at least 1".into());
        }
        if self.page_cgroup && !self.slab {
            return Err("page_cgroup objects need the slab (slab = true)".into());
        }
        if self.kernel_text_pages >= total {
            return Err(format!(
                "{} frames of kernel text on a machine of {total}",
                self.kernel_text_pages
            ));
        }
        self.details.validate()
    }
}

/// What an access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum AccessKind {
    /// Read page `index` of a file.
    Read(FileId, u64),
    /// Write page `index` of a file (reads it in first if needed).
    Write(FileId, u64),
    /// Write virtual page `vpage` of the task's anonymous memory.
    Anon(u64),
    /// Read virtual page `vpage` of the task's anonymous memory.
    AnonRead(u64),
}

/// One access, by a task, from a CPU on `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Access {
    /// What is accessed.
    pub kind: AccessKind,
    /// The NUMA node of the CPU making the access (where new pages go).
    pub node: u8,
    /// The task making it: new pages are charged to its container. Task 0
    /// (init) is in the root container; a task seen for the first time
    /// joins the root container.
    pub task: TaskId,
}

impl Access {
    /// A read by task 0 from node 0.
    pub fn read(file: u32, index: u64) -> Self {
        Access {
            kind: AccessKind::Read(FileId(file), index),
            node: 0,
            task: TaskId(0),
        }
    }

    /// A write by task 0 from node 0.
    pub fn write(file: u32, index: u64) -> Self {
        Access {
            kind: AccessKind::Write(FileId(file), index),
            node: 0,
            task: TaskId(0),
        }
    }

    /// A write to `task`'s anonymous memory from node 0.
    pub fn anon(task: u32, vpage: u64) -> Self {
        Access {
            kind: AccessKind::Anon(vpage),
            node: 0,
            task: TaskId(task),
        }
    }

    /// A read of `task`'s anonymous memory from node 0.
    pub fn anon_read(task: u32, vpage: u64) -> Self {
        Access {
            kind: AccessKind::AnonRead(vpage),
            node: 0,
            task: TaskId(task),
        }
    }

    /// The same access from another node.
    pub fn on_node(mut self, node: u8) -> Self {
        self.node = node;
        self
    }

    /// The same access by another task.
    pub fn by(mut self, task: u32) -> Self {
        self.task = TaskId(task);
        self
    }
}

/// What an access found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The page was resident.
    Hit,
    /// A file page read in for the first time (or after its shadow was
    /// reclaimed).
    Miss,
    /// A file page read in again: its shadow gave the refault distance.
    Refault {
        /// Pages that left the inactive list while it was out.
        distance: u64,
        /// Whether the rule put it straight on the active list.
        activated: bool,
    },
    /// An anonymous page touched for the first time.
    AnonNew,
    /// An anonymous page read back from swap.
    SwapIn,
    /// No frame could be freed, or the container could not be charged and
    /// its OOM killer found no task to kill: the access failed.
    OutOfMemory,
    /// The task was killed (by its container's OOM killer, or by a
    /// SIGBUS it did not catch, during this access or before it): the access
    /// did not happen.
    Killed,
    /// The page was lost to a memory failure: the task got SIGBUS
    /// (`BUS_MCEERR_AR`) and either caught it (`caught`: it lives, the
    /// access failed) or died.
    SigBus {
        /// Whether the task had a handler.
        caught: bool,
    },
    /// The machine panicked (a memory failure with
    /// `vm.memory_failure_recovery = 0`): nothing runs any more.
    Panic,
}

impl Outcome {
    /// True for [`Outcome::Hit`].
    pub fn is_hit(self) -> bool {
        self == Outcome::Hit
    }
}

/// List sizes at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// Accesses so far.
    pub accesses: u64,
    /// Pages on each list, summed over nodes, in [`LruList::ALL`] order.
    pub lists: [u64; 4],
    /// Free frames.
    pub free: u64,
    /// Shadow entries in all files.
    pub shadows: u64,
}

/// Swap space: slot numbers handed out and returned LIFO.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Swap {
    total: u64,
    next_new: u64,
    free: Vec<u64>,
    /// Shadows of swapped-out pages by slot (`KernelDetails::anon_6x`:
    /// 6.x keeps them in the swap cache's slots).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    shadows: BTreeMap<u64, u64>,
}

impl Swap {
    fn alloc(&mut self) -> Option<u64> {
        self.free.pop().or_else(|| {
            (self.next_new < self.total).then(|| {
                self.next_new += 1;
                self.next_new - 1
            })
        })
    }

    fn release(&mut self, slot: u64) {
        self.shadows.remove(&slot);
        self.free.push(slot);
    }

    /// The shadow a swapped-out page left in its slot, taken.
    pub(crate) fn take_shadow(&mut self, slot: u64) -> Option<u64> {
        self.shadows.remove(&slot)
    }

    /// Leaves a shadow in `slot` (6.x `__remove_mapping()` of a swap-cache
    /// page: `workingset_eviction()`).
    pub(crate) fn set_shadow(&mut self, slot: u64, shadow: u64) {
        self.shadows.insert(slot, shadow);
    }

    fn available(&self) -> u64 {
        self.total - self.next_new + self.free.len() as u64
    }

    /// Slots handed out stay below the total; free slots were handed out
    /// and are distinct. `Ok(highest slot in use bound)`.
    pub(crate) fn check(&self) -> Result<u64, String> {
        if self.next_new > self.total {
            return Err(format!(
                "swap: {} slots handed out of {}",
                self.next_new, self.total
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for &s in &self.free {
            if s >= self.next_new || !seen.insert(s) {
                return Err(format!(
                    "swap: free slot {s} never handed out, or listed twice"
                ));
            }
        }
        if let Some((&s, _)) = self.shadows.iter().find(|(s, _)| **s >= self.next_new) {
            return Err(format!("swap: a shadow in slot {s}, never handed out"));
        }
        Ok(self.next_new)
    }
}

/// A task of the model: its container, its anonymous memory and its page
/// table.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Task {
    /// The container new pages are charged to.
    pub memcg: MemcgId,
    /// Resident anonymous pages.
    pub rss: u64,
    /// Anonymous pages in swap.
    pub swapents: u64,
    /// False once killed.
    pub alive: bool,
    /// The task handles SIGBUS (and so survives a memory failure signal).
    pub catches_sigbus: bool,
    /// `prctl(PR_MCE_KILL)`: `Some(early)` overrides
    /// `vm.memory_failure_early_kill` for this task.
    pub mce_kill_early: Option<bool>,
    /// SIGBUS signals received, in order.
    pub sigbus: Vec<crate::mm::memory_failure::SigBus>,
    /// Frames of the task's huge pages.
    pub huge: Vec<Pfn>,
    pub(crate) table: RadixTree<Pfn>,
    /// Page-table frames: PTE page `vpage >> 9` -> frame
    /// ([`MachineConfig::page_tables`]).
    #[serde(default)]
    pub(crate) ptes: BTreeMap<u64, Pfn>,
    /// Files the task maps (shared, whole): its reads and writes of them
    /// go through the mapping.
    #[serde(default)]
    pub mapped_files: BTreeSet<FileId>,
    /// Entries of its file mappings: file -> page -> frame mapped.
    #[serde(default)]
    pub(crate) file_ptes: BTreeMap<FileId, BTreeMap<u64, Pfn>>,
    /// hwpoison entries in its file mappings (a dirty page lost).
    #[serde(default)]
    pub(crate) file_poisoned: BTreeMap<FileId, BTreeSet<u64>>,
}

/// The machine.
///
/// Serializable whole (a hibernation image, `crate::hibernate`): every
/// field is state; [`Machine::check`] validates a deserialized one.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Machine {
    pub(crate) cfg: MachineConfig,
    pub(crate) mem: PageAlloc,
    /// One lruvec per container and node: index `memcg * nodes + node`.
    pub(crate) lruvecs: Vec<Lruvec>,
    /// The workingset clock of each node (3.15's `zone->inactive_age`,
    /// the page's `workingset_time`): file pages leaving the inactive list,
    /// by eviction or by activation.
    pub(crate) node_age: Vec<u64>,
    pub(crate) files: BTreeMap<FileId, AddressSpace>,
    pub(crate) tasks: BTreeMap<TaskId, Task>,
    pub(crate) memcgs: Vec<MemCgroup>,
    /// Where global reclaim starts its walk over containers next.
    pub(crate) reclaim_cursor: usize,
    pub(crate) swap: Swap,
    pub(crate) shadow_nodes: ShadowNodes,
    pub(crate) stat: VmStat,
    samples: Vec<Sample>,
    /// The memory-failure sysctls.
    pub(crate) mf: crate::mm::memory_failure::MfConfig,
    pub(crate) mf_stats: crate::mm::memory_failure::MfStats,
    /// A memory failure with recovery disabled, or the kernel consuming a
    /// poisoned kernel frame, stopped the machine.
    pub(crate) panicked: bool,
    /// Why ([`Machine::panic_cause`]).
    #[serde(default)]
    pub(crate) panic_cause: Option<crate::mm::memory_failure::PanicCause>,
    /// Kernel text frames ([`MachineConfig::kernel_text_pages`]).
    #[serde(default)]
    pub(crate) text: Vec<Pfn>,
    /// Accesses that ran kernel text: the next frame to run.
    #[serde(default)]
    pub(crate) text_cursor: u64,
    /// The paravirt table the kernel calls privileged operations through
    /// (native unless [`Machine::boot_paravirt`] bound a hypervisor); its
    /// counters change no other number of the machine.
    pub(crate) pv: crate::arch::paravirt::Paravirt,
    /// The kernel's object caches ([`MachineConfig::slab`]).
    #[serde(default)]
    pub(crate) slab: Option<crate::mm::slab::KernelSlab>,
    /// Memory-cgroup statistics as last flushed
    /// ([`KernelDetails::memcg_stats`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub(crate) rstat: crate::mm::memcg_stats::Rstat,
    /// The CPU's LRU batches ([`KernelDetails::lru_batch`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub(crate) batches: crate::mm::swap::CpuBatches,
    /// The CPU's charge stock ([`KernelDetails::charge_batch`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub(crate) stock: crate::mm::memcg_stock::ChargeStock,
    /// Per file, the page its last read ended in (`file->f_ra.prev_pos`,
    /// [`KernelDetails::read_marks_once`]).
    #[serde(default, skip_serializing_if = "is_default")]
    pub(crate) ra_prev: BTreeMap<FileId, u64>,
    /// Counters of the 6.x details (anonymous refaults).
    #[serde(default, skip_serializing_if = "is_default")]
    pub(crate) kstat: KernelStat,
}

/// Whether `t` is its type's default: the 6.x details' state is left out
/// of a serialized machine (a hibernation image) while the rules are off,
/// so images without them stay as they were.
fn is_default<T: Default + PartialEq>(t: &T) -> bool {
    *t == T::default()
}

/// Counters only the 6.x details produce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KernelStat {
    /// Swap-ins that found a shadow (`workingset_refault_anon`).
    pub workingset_refault_anon: u64,
    /// Of those, activated (`workingset_activate_anon`).
    pub workingset_activate_anon: u64,
    /// Reads that did not mark their page accessed (the same page as the
    /// file's previous read).
    pub reads_not_marked: u64,
}

impl Machine {
    /// Boots a machine.
    ///
    /// # Errors
    /// When the configuration is invalid ([`MachineConfig::validate`]).
    pub fn new(cfg: MachineConfig) -> Result<Self, String> {
        cfg.validate()?;
        let mut mem = PageAlloc::new(&cfg.pages_per_node);
        // The kernel image, loaded at boot before anything else.
        let text: Vec<Pfn> = (0..cfg.kernel_text_pages)
            .map_while(|_| {
                let pfn = mem.alloc(0)?;
                mem.page_mut(pfn).owner = Owner::Kernel(crate::mm::page::KernelPage::Text);
                Some(pfn)
            })
            .collect();
        let nodes = cfg.pages_per_node.len();
        let lruvecs = (0..nodes).map(|n| Lruvec::new(n as u16)).collect();
        let swap = Swap {
            total: cfg.swap_pages,
            ..Swap::default()
        };
        let slab = if cfg.slab {
            Some(crate::mm::slab::KernelSlab::new(
                &cfg.pages_per_node,
                cfg.page_cgroup,
            )?)
        } else {
            None
        };
        Ok(Machine {
            cfg,
            mem,
            lruvecs,
            node_age: vec![0; nodes],
            files: BTreeMap::new(),
            tasks: BTreeMap::new(),
            memcgs: vec![MemCgroup::new("/", None)],
            reclaim_cursor: 0,
            swap,
            shadow_nodes: ShadowNodes::default(),
            stat: VmStat::default(),
            samples: Vec::new(),
            mf: crate::mm::memory_failure::MfConfig::default(),
            mf_stats: crate::mm::memory_failure::MfStats::default(),
            panicked: false,
            panic_cause: None,
            text,
            text_cursor: 0,
            pv: crate::arch::paravirt::Paravirt::default(),
            slab,
            rstat: crate::mm::memcg_stats::Rstat::default(),
            batches: crate::mm::swap::CpuBatches::default(),
            stock: crate::mm::memcg_stock::ChargeStock::default(),
            ra_prev: BTreeMap::new(),
            kstat: KernelStat::default(),
        })
    }

    /// Counters of the 6.x details.
    pub fn kernel_stat(&self) -> &KernelStat {
        &self.kstat
    }

    /// Binds the paravirt table (done at boot, before the first access;
    /// see `arch::platform::boot`). Counters start from zero.
    pub fn boot_paravirt(&mut self, pv: crate::arch::paravirt::Paravirt) {
        self.pv = pv;
    }

    /// The paravirt table and its counters.
    pub fn paravirt(&self) -> &crate::arch::paravirt::Paravirt {
        &self.pv
    }

    /// The configuration.
    pub fn config(&self) -> &MachineConfig {
        &self.cfg
    }

    /// Event counters.
    pub fn stat(&self) -> &VmStat {
        &self.stat
    }

    /// List-size samples recorded so far.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// Pages on `list`, summed over nodes.
    pub fn lru_len(&self, list: LruList) -> u64 {
        self.lruvecs.iter().map(|v| v.len(list)).sum()
    }

    /// Free frames.
    pub fn nr_free(&self) -> u64 {
        self.mem.nr_free_total()
    }

    /// All frames.
    pub fn nr_pages(&self) -> u64 {
        self.mem.nr_pages()
    }

    /// Shadow entries in all files.
    pub fn nr_shadows(&self) -> u64 {
        self.files.values().map(AddressSpace::nrshadows).sum()
    }

    /// Radix-tree nodes that hold only shadows.
    pub fn nr_shadow_nodes(&self) -> u64 {
        self.shadow_nodes.len()
    }

    /// Bytes of radix-tree nodes over all files.
    pub fn page_cache_tree_bytes(&self) -> u64 {
        self.files.values().map(AddressSpace::tree_bytes).sum()
    }

    /// Bytes of model state for memory management: one `Page` per frame
    /// plus every radix-tree node of the page cache (shadows included) and
    /// of the anonymous page tables.
    pub fn mm_state_bytes(&self) -> u64 {
        let frames = self.nr_pages() * std::mem::size_of::<crate::mm::page::Page>() as u64;
        let tables: u64 = self
            .tasks
            .values()
            .map(|t| t.table.memory().bytes as u64)
            .sum();
        frames + self.page_cache_tree_bytes() + tables
    }

    /// The workingset clock of node `n`.
    pub fn inactive_age(&self, n: usize) -> u64 {
        self.node_age[n]
    }

    /// NUMA nodes.
    pub fn nr_nodes(&self) -> usize {
        self.node_age.len()
    }

    /// The lruvec of a container on a node.
    #[inline]
    pub(crate) fn lv(&self, memcg: MemcgId, node: usize) -> usize {
        memcg.0 as usize * self.nr_nodes() + node
    }

    /// Pages on `list` of every container, on node `node`.
    pub fn node_lru_len(&self, node: usize, list: LruList) -> u64 {
        (0..self.memcgs.len())
            .map(|m| self.lruvecs[self.lv(MemcgId(m as u16), node)].len(list))
            .sum()
    }

    /// A task, if it exists.
    pub fn task(&self, task: u32) -> Option<&Task> {
        self.tasks.get(&TaskId(task))
    }

    /// The task, created in the root container when first seen.
    pub(crate) fn task_entry(&mut self, task: TaskId) -> &mut Task {
        let memcgs = &mut self.memcgs;
        self.tasks.entry(task).or_insert_with(|| {
            memcgs[0].tasks.insert(task);
            Task {
                memcg: MemcgId::ROOT,
                alive: true,
                ..Task::default()
            }
        })
    }

    /// A file's page cache, if the file was ever accessed.
    pub fn file(&self, file: FileId) -> Option<&AddressSpace> {
        self.files.get(&file)
    }

    /// Whether page `index` of `file` is resident.
    pub fn is_cached(&self, file: u32, index: u64) -> bool {
        matches!(
            self.file(FileId(file)).and_then(|a| a.lookup(index)),
            Some(Entry::Item(_))
        )
    }

    /// Whether page `index` of `file` is on an active list.
    pub fn is_active(&self, file: u32, index: u64) -> bool {
        match self.file(FileId(file)).and_then(|a| a.lookup(index)) {
            Some(Entry::Item(pfn)) => self.mem.page(pfn).test(flags::ACTIVE),
            _ => false,
        }
    }

    /// File pages on `list` of the root container on node 0, from head to
    /// tail, as `(file, index)`.
    pub fn file_list(&self, list: LruList) -> Vec<(u32, u64)> {
        self.lruvecs[0]
            .pages_of(self.mem.pages(), list)
            .into_iter()
            .filter_map(|pfn| match self.mem.page(pfn).owner {
                Owner::File { file, index } => Some((file.0, index)),
                _ => None,
            })
            .collect()
    }

    /// Runs one access.
    pub fn access(&mut self, a: Access) -> Outcome {
        self.stat.accesses += 1;
        if self.panicked {
            return Outcome::Panic;
        }
        self.execute_kernel_text();
        if self.panicked {
            return Outcome::Panic;
        }
        let out = if self.task_entry(a.task).alive {
            // The CPU runs the accessing task: a switch of address space
            // when it changes.
            self.pv.switch_to(a.task.0);
            match a.kind {
                AccessKind::Read(file, index) => {
                    self.file_access(a.node, a.task, file, index, false)
                }
                AccessKind::Write(file, index) => {
                    self.file_access(a.node, a.task, file, index, true)
                }
                AccessKind::Anon(vpage) => self.anon_access(a.node, a.task, vpage, true),
                AccessKind::AnonRead(vpage) => self.anon_access(a.node, a.task, vpage, false),
            }
        } else {
            Outcome::Killed
        };
        // The kernel consumed a poisoned frame during the access.
        let out = if self.panicked { Outcome::Panic } else { out };
        if out.is_hit() {
            self.stat.hits += 1;
        }
        if self.cfg.sample_every > 0 && self.stat.accesses.is_multiple_of(self.cfg.sample_every) {
            self.record_sample();
        }
        out
    }

    /// Runs every access of a workload.
    pub fn run(&mut self, accesses: impl IntoIterator<Item = Access>) {
        for a in accesses {
            self.access(a);
        }
    }

    /// Records the list sizes now.
    pub fn record_sample(&mut self) {
        let mut lists = [0; 4];
        for (i, l) in LruList::ALL.into_iter().enumerate() {
            lists[i] = self.lru_len(l);
        }
        self.samples.push(Sample {
            accesses: self.stat.accesses,
            lists,
            free: self.nr_free(),
            shadows: self.nr_shadows(),
        });
    }

    /// Page cache read or write of one page.
    fn file_access(
        &mut self,
        node: u8,
        task: TaskId,
        file: FileId,
        index: u64,
        write: bool,
    ) -> Outcome {
        if let Some(out) = self.file_mapping_fault(task, file, index) {
            return out;
        }
        if self.walk_page_cache_tree(file, index) {
            return Outcome::Panic;
        }
        let found = self.files.get(&file).and_then(|a| a.lookup(index));
        if let Some(Entry::Item(pfn)) = found {
            self.read_mark_accessed(pfn, file, index, write);
            if write {
                self.set_dirty(pfn, file, index);
            }
            self.map_file_page(task, file, index, pfn);
            return Outcome::Hit;
        }
        // A major fault: a frame first (which may reclaim, and may even
        // reclaim the shadow in this slot), then the page cache insert,
        // which hands back whatever shadow is there now.
        self.stat.pgmajfault += 1;
        let Some(pfn) = self.alloc_page(node) else {
            self.stat.alloc_fail += 1;
            return Outcome::OutOfMemory;
        };
        let memcg = self.tasks[&task].memcg;
        if let Err(out) = self.try_charge(memcg, task) {
            self.mem.free(pfn);
            return out;
        }
        {
            let p = self.mem.page_mut(pfn);
            p.owner = Owner::File { file, index };
            p.flags = 0;
            p.memcg = memcg.0;
        }
        self.page_cgroup_alloc(pfn);
        // add_to_page_cache_lru(): the insert under mapping->tree_lock
        // (spin_lock_irq), the LRU add under zone->lru_lock (irqsave).
        self.pv.lock_irq();
        self.pv.lock_irqsave();
        let shadow = self.files.entry(file).or_default().insert_page(index, pfn);
        // __filemap_add_folio(): NR_FILE_PAGES.
        self.rstat_updated(memcg.0, 1);
        self.update_shadow_node(file, index);
        self.sync_tree_nodes(file, index, usize::from(self.mem.page(pfn).node));
        let lv = self.lv(memcg, self.mem.page(pfn).node as usize);

        let mut outcome = Outcome::Miss;
        let mut activate = false;
        if let Some(shadow) = shadow {
            let (eviction, nid) = workingset::unpack_shadow(shadow);
            let home = (nid as usize).min(self.nr_nodes() - 1);
            let distance = workingset::refault_distance(self.node_age[home], eviction);
            self.stat.workingset_refault += 1;
            // WORKINGSET_REFAULT_FILE.
            self.rstat_updated(memcg.0, 1);
            let workingset = if self.cfg.balance == LruBalance::Workingset6 {
                self.memcg_flush_ratelimited(memcg);
                self.workingset_size_6x(memcg, home, true)
            } else {
                // 3.15 compares against the zone's NR_ACTIVE_FILE: every
                // container's active file pages on the node.
                self.node_lru_len(home, LruList::ActiveFile)
            };
            let action = self.cfg.balance.on_refault(distance, workingset);
            activate = action.activate;
            if action.deactivate_one {
                self.deactivate_one_file(lv);
            }
            outcome = Outcome::Refault {
                distance,
                activated: activate,
            };
        }
        if activate {
            let node = self.mem.page(pfn).node as usize;
            workingset::activation(&mut self.node_age[node]);
            self.stat.workingset_activate += 1;
            self.lruvecs[lv].workingset_activate += 1;
            // WORKINGSET_ACTIVATE_FILE.
            self.rstat_updated(memcg.0, 1);
            self.lru_cache_add(lv, pfn, LruList::ActiveFile);
        } else {
            self.lru_cache_add(lv, pfn, LruList::InactiveFile);
        }
        self.read_mark_accessed(pfn, file, index, write);
        if write {
            self.set_dirty(pfn, file, index);
        }
        self.map_file_page(task, file, index, pfn);
        outcome
    }

    /// 6.x `workingset_test_recent()`'s `workingset_size`: the active file
    /// pages of the container's lruvec on the node (hierarchical, as
    /// `lruvec_page_state()` reads them: as last flushed with
    /// `KernelDetails::memcg_stats`), for an anonymous refault (`file`
    /// false) the inactive file pages too, and when swap has room the
    /// active anonymous pages and, for a file refault, the inactive ones.
    /// 6.x takes the container from the shadow (where the page was
    /// evicted); the model's shadows do not record it, so the refaulting
    /// task's container stands in (the same one when a container's pages
    /// are its own).
    pub(crate) fn workingset_size_6x(&self, memcg: MemcgId, node: usize, file: bool) -> u64 {
        use crate::mm::memcg_stats::Item;
        let get = |l: LruList| self.lruvec_state(memcg, node, Item::Lru(l));
        let mut size = get(LruList::ActiveFile);
        if !file {
            size += get(LruList::InactiveFile);
        }
        if self.swap_available() > 0 {
            size += get(LruList::ActiveAnon);
            if file {
                size += get(LruList::InactiveAnon);
            }
        }
        size
    }

    fn set_dirty(&mut self, pfn: Pfn, file: FileId, index: u64) {
        let p = self.mem.page_mut(pfn);
        if !p.test(flags::DIRTY) {
            p.set(flags::DIRTY);
            self.files
                .get_mut(&file)
                .expect("cached file")
                .tag_dirty(index);
        }
    }

    /// The page's rule: one page from the active file list's tail to the
    /// inactive list's head, next to the refaulting page.
    fn deactivate_one_file(&mut self, lv: usize) {
        if let Some(victim) = self.lruvecs[lv].tail(LruList::ActiveFile) {
            self.lruvecs[lv].move_to(
                self.mem.pages_mut(),
                victim,
                LruList::ActiveFile,
                LruList::InactiveFile,
            );
            self.stat.pgdeactivate += 1;
            self.stat.workingset_deactivate += 1;
        }
    }

    /// mm/swap.c `mark_page_accessed()` (3.15): an inactive page already
    /// referenced is activated (and, for file pages, the workingset clock
    /// ticks); otherwise the page is marked referenced.
    pub(crate) fn mark_page_accessed(&mut self, pfn: Pfn) {
        let p = *self.mem.page(pfn);
        if !p.test(flags::ACTIVE) && p.test(flags::REFERENCED) && p.test(flags::LRU) {
            let file = p.is_file();
            let lv = p.lruvec as usize;
            // activate_page(): the move under zone->lru_lock (irqsave).
            self.pv.lock_irqsave();
            self.lruvecs[lv].move_to(
                self.mem.pages_mut(),
                pfn,
                LruList::of(file, false),
                LruList::of(file, true),
            );
            self.mem.page_mut(pfn).clear(flags::REFERENCED);
            self.stat.pgactivate += 1;
            // The list delete and add, and PGACTIVATE.
            for _ in 0..3 {
                self.rstat_updated(p.memcg, 1);
            }
            if file {
                workingset::activation(&mut self.node_age[p.node as usize]);
            }
        } else if !p.test(flags::REFERENCED) {
            self.mem.page_mut(pfn).set(flags::REFERENCED);
        }
    }

    /// Anonymous memory (mm/memory.c `do_anonymous_page()`,
    /// `do_swap_page()`): a hit sets the referenced bit (the PTE young
    /// bit's stand-in) and, for a write, the dirty bit; a first touch maps a
    /// new page on the active anon list (`lru_cache_add_active_or_unevictable()`);
    /// a swapped-out page is read back onto the inactive anon list and stays
    /// in the swap cache, clean until written. New pages are charged to the
    /// task's container. A page lost to a memory failure (a hwpoison entry
    /// in the page table) gets the task SIGBUS `BUS_MCEERR_AR`.
    ///
    /// With `KernelDetails::anon_6x` (6.x): an access sets the PTE's young
    /// bit, not `PG_referenced`; a new page joins the inactive list
    /// (`folio_add_lru_vma()`); a swap-in that finds a shadow is a refault
    /// tested by the 6.x rule (`workingset_refault()` for anon).
    fn anon_access(&mut self, node: u8, task: TaskId, vpage: u64, write: bool) -> Outcome {
        if let Err(out) = self.walk_page_table(task, node, vpage) {
            return out;
        }
        let anon_6x = self.cfg.details.anon_6x;
        let entry = self.tasks[&task].table.lookup(vpage).map(|e| e.map(|p| *p));
        match entry {
            Some(Entry::Item(pfn)) => {
                let p = self.mem.page_mut(pfn);
                p.set(if anon_6x {
                    flags::YOUNG
                } else {
                    flags::REFERENCED
                });
                if write {
                    p.set(flags::DIRTY);
                }
                return Outcome::Hit;
            }
            Some(Entry::Value(v)) if v == crate::mm::memory_failure::HWPOISON_ENTRY => {
                return self.sigbus(
                    task,
                    vpage,
                    crate::mm::memory_failure::SigBusCode::ActionRequired,
                );
            }
            _ => {}
        }
        let Some(pfn) = self.alloc_page(node) else {
            self.stat.alloc_fail += 1;
            return Outcome::OutOfMemory;
        };
        let memcg = self.tasks[&task].memcg;
        if let Err(out) = self.try_charge(memcg, task) {
            self.mem.free(pfn);
            return out;
        }
        {
            let p = self.mem.page_mut(pfn);
            p.owner = Owner::Anon { task, vpage };
            p.flags = flags::SWAPBACKED
                | if write { flags::DIRTY } else { 0 }
                | if anon_6x { flags::YOUNG } else { 0 };
            p.memcg = memcg.0;
        }
        self.page_cgroup_alloc(pfn);
        // PGFAULT, and NR_ANON_MAPPED at folio_add_new_anon_rmap().
        self.rstat_updated(memcg.0, 1);
        self.rstat_updated(memcg.0, 1);
        let lv = self.lv(memcg, self.mem.page(pfn).node as usize);
        // set_pte_at() for the new mapping, and the LRU add (irqsave).
        self.pv.set_pte();
        self.pv.lock_irqsave();
        // Re-read the slot: reclaim during the allocation may have swapped
        // out other pages of this task, never this one (it was not resident).
        let t = self
            .tasks
            .get_mut(&task)
            .expect("the accessing task exists");
        t.rss += 1;
        match t.table.lookup(vpage).map(|e| e.map(|p| *p)) {
            Some(Entry::Value(slot)) => {
                let mut s = t.table.lookup_slot(vpage).expect("swap entry present");
                s.replace(Entry::Item(pfn))
                    .expect("a page is always storable");
                t.swapents -= 1;
                self.stat.pswpin += 1;
                self.stat.pgmajfault += 1;
                let p = self.mem.page_mut(pfn);
                p.set(flags::SWAPCACHE | if anon_6x { 0 } else { flags::REFERENCED });
                p.private = slot;
                // PGMAJFAULT.
                self.rstat_updated(memcg.0, 1);
                let list = if anon_6x && self.anon_refault(memcg, slot) {
                    LruList::ActiveAnon
                } else {
                    LruList::InactiveAnon
                };
                self.lru_cache_add(lv, pfn, list);
                Outcome::SwapIn
            }
            Some(Entry::Item(_)) => unreachable!(
                "page {vpage} of task {} became resident during its own fault",
                task.0
            ),
            None => {
                t.table
                    .insert(vpage, pfn)
                    .expect("page tables have no node limit");
                self.stat.pgminfault += 1;
                let list = if anon_6x {
                    LruList::InactiveAnon
                } else {
                    LruList::ActiveAnon
                };
                self.lru_cache_add(lv, pfn, list);
                Outcome::AnonNew
            }
        }
    }

    /// 6.x `workingset_refault()` of an anonymous page read back from swap
    /// `slot`: with a shadow there, `workingset_refault_anon`, and whether
    /// the refault distance is within the 6.x workingset (then
    /// `workingset_activate_anon` and the nonresident age ticks). Returns
    /// whether to activate.
    fn anon_refault(&mut self, memcg: MemcgId, slot: u64) -> bool {
        let Some(shadow) = self.swap.take_shadow(slot) else {
            return false;
        };
        let (eviction, nid) = workingset::unpack_shadow(shadow);
        let home = (nid as usize).min(self.nr_nodes() - 1);
        let distance = workingset::refault_distance(self.node_age[home], eviction);
        self.kstat.workingset_refault_anon += 1;
        self.rstat_updated(memcg.0, 1);
        self.memcg_flush_ratelimited(memcg);
        let size = self.workingset_size_6x(memcg, home, false);
        if !self.cfg.balance.on_refault(distance, size).activate {
            return false;
        }
        workingset::activation(&mut self.node_age[home]);
        self.kstat.workingset_activate_anon += 1;
        let lv = self.lv(memcg, home);
        self.lruvecs[lv].workingset_activate_anon += 1;
        self.rstat_updated(memcg.0, 1);
        true
    }

    /// A free frame, reclaiming if there is none.
    fn alloc_page(&mut self, node: u8) -> Option<Pfn> {
        let node = (node as usize).min(self.lruvecs.len() - 1);
        if let Some(p) = self.mem.alloc(node) {
            return Some(p);
        }
        self.try_to_free_pages(node);
        self.mem.alloc(node)
    }

    /// Writes back every dirty page of a file, found through the radix
    /// tree's dirty tag (`filemap_fdatawrite()`); returns pages written.
    pub fn sync_file(&mut self, file: u32) -> u64 {
        let file = FileId(file);
        let Some(a) = self.files.get(&file) else {
            return 0;
        };
        let dirty = a.dirty_pages();
        for &(index, pfn) in &dirty {
            self.mem.page_mut(pfn).clear(flags::DIRTY);
            self.files.get_mut(&file).expect("file").clear_dirty(index);
        }
        self.stat.nr_written += dirty.len() as u64;
        dirty.len() as u64
    }

    /// Tracks the leaf node holding `index` on the shadow-node LRU.
    pub(crate) fn update_shadow_node(&mut self, file: FileId, index: u64) {
        let leaf = index >> klab_radix_tree::MAP_SHIFT;
        match self.files.get(&file).and_then(|a| a.leaf_counts(index)) {
            Some((items, values)) => self.shadow_nodes.update(file, leaf, items, values),
            None => self.shadow_nodes.update(file, leaf, 0, 0),
        }
    }

    pub(crate) fn swap_available(&self) -> u64 {
        self.swap.available()
    }

    pub(crate) fn swap_alloc(&mut self) -> Option<u64> {
        self.swap.alloc()
    }

    pub(crate) fn swap_release(&mut self, slot: u64) {
        self.swap.release(slot);
    }

    /// Checks every invariant: each lruvec's lists, every page's owner
    /// against the page cache and page tables, frame conservation, and the
    /// shadow-node LRU against the trees.
    pub fn assert_invariants(&self) {
        if let Err(e) = self.check_slab() {
            panic!("slab: {e}");
        }
        if let Err(e) = self.check_batches() {
            panic!("LRU batches: {e}");
        }
        let pages = self.mem.pages();
        for v in &self.lruvecs {
            v.assert_invariants(pages);
        }
        let batched = self.batches.lru_add();
        // Pages waiting in the CPU's LRU batch count as on a list here.
        let on_lru: u64 =
            self.lruvecs.iter().map(Lruvec::total).sum::<u64>() + batched.len() as u64;
        let held = pages
            .iter()
            .filter(|p| matches!(p.owner, Owner::Kernel(_) | Owner::Huge { .. }))
            .count() as u64;
        assert_eq!(
            on_lru + self.nr_free() + held + self.mem.nr_retired(),
            self.nr_pages(),
            "every frame is free, on an LRU list or its batch, held by the kernel or a huge page, or retired"
        );
        let mut cached = 0;
        for (file, a) in &self.files {
            a.assert_invariants();
            for (index, e) in a.entries_in(0, u64::MAX) {
                match e {
                    Entry::Item(pfn) => {
                        cached += 1;
                        assert_eq!(
                            pages[pfn as usize].owner,
                            Owner::File { file: *file, index }
                        );
                        assert!(pages[pfn as usize].test(flags::LRU) || batched.contains(&pfn));
                    }
                    Entry::Value(_) => {
                        let leaf = index >> klab_radix_tree::MAP_SHIFT;
                        if let Some((0, _)) = a.leaf_counts(index) {
                            assert!(
                                self.shadow_nodes.contains(*file, leaf),
                                "shadow-only leaf {leaf} of file {} tracked",
                                file.0
                            );
                        }
                    }
                }
            }
        }
        let mut anon = 0;
        for (task, t) in &self.tasks {
            t.table.assert_invariants();
            let mut rss = 0;
            let mut swapents = 0;
            for (vpage, e) in t.table.iter() {
                match e {
                    Entry::Item(pfn) => {
                        rss += 1;
                        assert_eq!(
                            pages[*pfn as usize].owner,
                            Owner::Anon { task: *task, vpage }
                        );
                    }
                    Entry::Value(v) if v == crate::mm::memory_failure::HWPOISON_ENTRY => {}
                    Entry::Value(_) => swapents += 1,
                }
            }
            assert_eq!(
                (t.rss, t.swapents),
                (rss, swapents),
                "rss and swap of task {}",
                task.0
            );
            assert!(
                t.alive || rss + swapents == 0,
                "a killed task holds no memory"
            );
            anon += rss;
        }
        self.assert_memcg_invariants();
        assert_eq!(
            cached + anon,
            on_lru,
            "LRU pages = cached file pages + resident anon pages"
        );
    }
}
