//! The model's `struct page`: one per page frame, with the flags and links
//! the page cache and reclaim need.
//!
//! ```text
//!   Page { flags, owner, lru.prev, lru.next, node, lruvec }
//!            │       │
//!            │       └── Free | File { file, index } | Anon { task, vpage }
//!            └── PG_referenced, PG_active, PG_lru, PG_dirty, PG_swapbacked
//! ```
//!
//! Pages are addressed by page frame number ([`Pfn`]), an index into the
//! machine's frame table; list links are pfns, as the kernel links
//! `struct page`s through `page->lru`.

/// A page frame number: an index into the machine's frame table.
pub type Pfn = u32;

/// The end of a page list.
pub const NIL: Pfn = Pfn::MAX;

/// A file (address space) of the model.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct FileId(pub u32);

/// A task (process) of the model.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TaskId(pub u32);

/// What a page frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Owner {
    /// Nothing: the frame is on a free list.
    Free,
    /// Page `index` of a file's page cache.
    File {
        /// The file.
        file: FileId,
        /// Page offset in the file.
        index: u64,
    },
    /// Anonymous memory: virtual page `vpage` of a task.
    Anon {
        /// The task.
        task: TaskId,
        /// Virtual page number.
        vpage: u64,
    },
    /// A page the kernel holds for itself.
    Kernel(KernelPage),
    /// Part of a task's huge page (hugetlbfs): not on the LRU lists, not
    /// reclaimable.
    Huge {
        /// The task.
        task: TaskId,
    },
}

/// What a kernel-owned frame is used for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum KernelPage {
    /// Reserved at boot (`PG_reserved`): the kernel image, firmware tables.
    Reserved,
    /// A slab page (`PG_slab`).
    Slab,
    /// A free page held by the buddy allocator with a reference taken
    /// (`PG_buddy`; the race window memory-failure.c's "free kernel" row
    /// handles).
    Buddy,
    /// Any other kernel use: driver buffers, the model's bookkeeping that
    /// takes no frame of its own.
    Other,
    /// Kernel text (`PG_reserved`, as every page of the kernel image):
    /// executed, so an error in it is consumed as soon as the code runs
    /// ([`crate::MachineConfig::kernel_text_pages`]).
    Text,
    /// A page-table page of a task (a PTE page mapping 512 of its
    /// virtual pages): read by every walk of that range
    /// ([`crate::MachineConfig::page_tables`]).
    PageTable,
}

/// Page flags (include/linux/page-flags.h), the subset reclaim reads.
pub mod flags {
    /// Accessed once since it was last looked at (`PG_referenced`).
    pub const REFERENCED: u16 = 1 << 0;
    /// On an active list (`PG_active`).
    pub const ACTIVE: u16 = 1 << 1;
    /// On an LRU list (`PG_lru`).
    pub const LRU: u16 = 1 << 2;
    /// Modified since written back (`PG_dirty`).
    pub const DIRTY: u16 = 1 << 3;
    /// Backed by swap rather than a file (`PG_swapbacked`): anonymous.
    pub const SWAPBACKED: u16 = 1 << 4;
    /// In the swap cache: the page's data also sits in swap slot
    /// `page.private` (`PG_swapcache`).
    pub const SWAPCACHE: u16 = 1 << 5;
    /// Memory failure: the frame's contents are corrupt (`PG_hwpoison`).
    pub const HWPOISON: u16 = 1 << 6;
    /// The accessed bit of the page-table entry mapping an anonymous page
    /// (`pte_young()`), kept apart from `PG_referenced` with
    /// `KernelDetails::anon_6x`.
    pub const YOUNG: u16 = 1 << 7;
}

/// One page frame.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Page {
    /// [`flags`] bits.
    pub flags: u16,
    /// The NUMA node the frame belongs to.
    pub node: u8,
    /// The LRU vector whose lists hold the page (while `PG_lru`).
    pub lruvec: u16,
    /// The container the page is charged to (the 2007 patch's `meta_page`,
    /// reduced to the one field the model needs).
    pub memcg: u16,
    /// What the frame holds.
    pub owner: Owner,
    /// For a swap-cache page, its swap slot (`page->private`).
    pub private: u64,
    pub(crate) prev: Pfn,
    pub(crate) next: Pfn,
}

impl Page {
    /// A free frame of `node`.
    pub fn free(node: u8) -> Self {
        Page {
            flags: 0,
            node,
            lruvec: 0,
            memcg: 0,
            owner: Owner::Free,
            private: 0,
            prev: NIL,
            next: NIL,
        }
    }

    /// Whether a flag is set.
    #[inline]
    pub fn test(&self, flag: u16) -> bool {
        self.flags & flag != 0
    }

    /// Sets a flag.
    #[inline]
    pub fn set(&mut self, flag: u16) {
        self.flags |= flag;
    }

    /// Clears a flag.
    #[inline]
    pub fn clear(&mut self, flag: u16) {
        self.flags &= !flag;
    }

    /// Clears a flag and says whether it was set (`TestClearPage*`).
    #[inline]
    pub fn test_and_clear(&mut self, flag: u16) -> bool {
        let was = self.test(flag);
        self.clear(flag);
        was
    }

    /// True for page-cache pages (`page_is_file_cache()`).
    pub fn is_file(&self) -> bool {
        matches!(self.owner, Owner::File { .. })
    }
}
