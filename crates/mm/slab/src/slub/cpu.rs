//! `struct kmem_cache_cpu` (2.6.24, with 3.2's `partial` list) and
//! [`CpuSlab`], the handle a CPU (a host thread, or a CPU of the model)
//! holds on a cache.
//!
//! The kernel reaches its CPU's `kmem_cache_cpu` with interrupts off, so
//! nothing else touches it meanwhile. klab gets the same exclusivity from
//! ownership: a [`CpuSlab`] is a value used through `&mut`, so the fast
//! paths (pop or push `c->freelist`) take no lock and no atomic operation.
//! Other threads free into the CPU's frozen slab through the slab lock
//! ([`CacheCore::slab_free_slow`]), or from 3.1 on with a compare-and-swap
//! of the slab's freelist and counters; the owner collects those objects
//! when its own freelist runs dry. From 3.2 on the CPU also keeps a list
//! of frozen partial slabs (`c->partial`), fed by frees that find a full
//! slab and by refills from the node list, drained to the node list past
//! `s->cpu_partial` free objects.
//!
//! The kernel's 3.1 fast paths swap `c->freelist` together with a
//! transaction id (`this_cpu_cmpxchg_double(freelist, tid)`) so that a
//! preempted or interrupted fast path notices it lost the CPU. A
//! [`KmemCacheCpu`] here is reached through `&mut` only, which rules that
//! out, so klab's fast paths stay a plain pop and push in every era.
//!
//! Dropping a [`CpuSlab`] flushes it (`flush_slab()`), the counterpart of a
//! CPU going offline; [`CpuSlab::flush_if_unused`] is the periodic flusher.

use std::ptr::{self, NonNull};
use std::sync::Arc;

use super::{CacheCore, obj_to_cache};
use crate::page::Page;

/// Counters of one CPU's use of a cache (the later `CONFIG_SLUB_STATS`
/// items of the same names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// `ALLOC_FASTPATH`: allocations served from the CPU freelist.
    pub alloc_fast: u64,
    /// `ALLOC_SLOWPATH`: allocations that went to `__slab_alloc()`.
    pub alloc_slow: u64,
    /// `FREE_FASTPATH`: frees pushed on the CPU freelist.
    pub free_fast: u64,
    /// `FREE_SLOWPATH`: frees that went to `__slab_free()`.
    pub free_slow: u64,
    /// `FREE_FROZEN`: slow frees into a frozen slab (a CPU slab or a slab
    /// on a CPU partial list): no list lock (3.1+).
    pub free_frozen: u64,
    /// `FREE_ADD_PARTIAL`: slabs put on a node partial list by a free or
    /// by `unfreeze_partials()` (3.1+).
    pub free_add_partial: u64,
    /// `FREE_REMOVE_PARTIAL`: empty slabs taken off a node list to be
    /// freed (3.1+).
    pub free_remove_partial: u64,
    /// `ALLOC_REFILL`: slow allocations served from the CPU slab's own
    /// freelist (remote frees), 3.1+.
    pub alloc_refill: u64,
    /// `ALLOC_FROM_PARTIAL`: CPU slabs taken from a node partial list
    /// (3.1+).
    pub alloc_from_partial: u64,
    /// `ALLOC_SLAB`: new slabs made for this CPU (3.1+).
    pub alloc_slab: u64,
    /// `DEACTIVATE_BYPASS`: CPU slabs found used up and dropped without
    /// `deactivate_slab()` (3.1+).
    pub deactivate_bypass: u64,
    /// `CPU_PARTIAL_ALLOC`: CPU slabs taken from the CPU partial list.
    pub cpu_partial_alloc: u64,
    /// `CPU_PARTIAL_FREE`: full slabs a free froze onto the CPU partial
    /// list.
    pub cpu_partial_free: u64,
    /// `CPU_PARTIAL_NODE`: slabs moved from a node partial list to the
    /// CPU partial list by a refill.
    pub cpu_partial_node: u64,
    /// `CPU_PARTIAL_DRAIN`: times the CPU partial list went to the node
    /// lists (`unfreeze_partials()`) because it held more than
    /// `cpu_partial` free objects.
    pub cpu_partial_drain: u64,
    /// `CMPXCHG_DOUBLE_FAIL`: compare-and-swaps of a slab's freelist and
    /// counters that lost a race and were redone.
    pub cmpxchg_fail: u64,
    /// Times a slow path took a node's `list_lock` (not a kernel
    /// counter: what the later designs set out to avoid).
    pub list_lock: u64,
}

impl CpuStats {
    /// All zero.
    pub const ZERO: CpuStats = CpuStats {
        alloc_fast: 0,
        alloc_slow: 0,
        free_fast: 0,
        free_slow: 0,
        free_frozen: 0,
        free_add_partial: 0,
        free_remove_partial: 0,
        alloc_refill: 0,
        alloc_from_partial: 0,
        alloc_slab: 0,
        deactivate_bypass: 0,
        cpu_partial_alloc: 0,
        cpu_partial_free: 0,
        cpu_partial_node: 0,
        cpu_partial_drain: 0,
        cmpxchg_fail: 0,
        list_lock: 0,
    };

    /// The sum of two sets of counters.
    pub fn add(&self, o: &CpuStats) -> CpuStats {
        CpuStats {
            alloc_fast: self.alloc_fast + o.alloc_fast,
            alloc_slow: self.alloc_slow + o.alloc_slow,
            free_fast: self.free_fast + o.free_fast,
            free_slow: self.free_slow + o.free_slow,
            free_frozen: self.free_frozen + o.free_frozen,
            free_add_partial: self.free_add_partial + o.free_add_partial,
            free_remove_partial: self.free_remove_partial + o.free_remove_partial,
            alloc_refill: self.alloc_refill + o.alloc_refill,
            alloc_from_partial: self.alloc_from_partial + o.alloc_from_partial,
            alloc_slab: self.alloc_slab + o.alloc_slab,
            deactivate_bypass: self.deactivate_bypass + o.deactivate_bypass,
            cpu_partial_alloc: self.cpu_partial_alloc + o.cpu_partial_alloc,
            cpu_partial_free: self.cpu_partial_free + o.cpu_partial_free,
            cpu_partial_node: self.cpu_partial_node + o.cpu_partial_node,
            cpu_partial_drain: self.cpu_partial_drain + o.cpu_partial_drain,
            cmpxchg_fail: self.cmpxchg_fail + o.cmpxchg_fail,
            list_lock: self.list_lock + o.list_lock,
        }
    }
}

/// `struct kmem_cache_cpu`: a CPU's active slab and lockless freelist.
pub struct KmemCacheCpu {
    /// Free objects of `page` only this CPU may take.
    pub(crate) freelist: *mut u8,
    /// The active (frozen) slab, or null.
    pub(crate) page: *const Page,
    /// `c->partial` (3.2+): frozen partial slabs of this CPU, linked
    /// through their `next` field; the head page records the list's
    /// `pages` and `pobjects` as the kernel's does.
    pub(crate) partial: *const Page,
    /// Node of `page`; -1 for a debug slab (forces slow paths).
    pub(crate) node: i32,
    /// Free-pointer offset (`c->offset`, in bytes here).
    pub(crate) offset: usize,
    /// The node this CPU belongs to.
    pub(crate) home_node: usize,
    /// Used since the flusher last looked.
    pub(crate) touched: bool,
    /// Stands in for `get_cycles()` in `get_any_partial()`.
    pub(crate) defrag_counter: u32,
    /// Counters.
    pub(crate) stats: CpuStats,
}

// SAFETY: the raw pointers refer to a frozen slab owned by this CPU state;
// moving the state to another thread moves that ownership with it.
unsafe impl Send for KmemCacheCpu {}

impl KmemCacheCpu {
    /// An idle CPU state (`init_kmem_cache_cpu()`).
    pub const fn new(offset: usize, home_node: usize) -> Self {
        KmemCacheCpu {
            freelist: ptr::null_mut(),
            page: ptr::null(),
            partial: ptr::null(),
            node: 0,
            offset,
            home_node,
            touched: false,
            defrag_counter: 0,
            stats: CpuStats::ZERO,
        }
    }

    /// True while the CPU holds an active slab.
    pub fn has_slab(&self) -> bool {
        !self.page.is_null()
    }

    /// Slabs on the CPU partial list (3.2+).
    pub fn nr_partial(&self) -> usize {
        let mut n = 0;
        let mut p = self.partial;
        while !p.is_null() {
            n += 1;
            // SAFETY: the CPU partial list holds frozen slabs this CPU owns;
            // their `next` links are its own.
            p = unsafe { (*p).next() };
        }
        n
    }

    /// Objects on the CPU's lockless freelist.
    pub fn nr_free(&self) -> usize {
        let mut n = 0;
        let mut p = self.freelist;
        while !p.is_null() {
            n += 1;
            // SAFETY: the CPU freelist holds free objects of its slab.
            p = unsafe { super::get_fp(p, self.offset) };
        }
        n
    }

    /// Counters.
    pub fn stats(&self) -> CpuStats {
        self.stats
    }
}

/// A CPU's handle on a SLUB cache: its active slab and lockless freelist.
///
/// ```
/// use klab_slab::{Slub, SlabFlags};
/// let slub = Slub::with_defaults();
/// let cache = slub.kmem_cache_create("demo", 40, 8, SlabFlags::NONE, None).unwrap();
/// let mut cpu = cache.cpu();
/// let a = cpu.alloc().unwrap();
/// // SAFETY: `a` came from this cache and is freed once.
/// unsafe { cpu.free(a) };
/// assert_eq!(cpu.stats().free_fast, 1);
/// ```
pub struct CpuSlab {
    core: Arc<CacheCore>,
    c: KmemCacheCpu,
}

/// A thread's small identifying number, recorded by `SLAB_STORE_USER`.
pub(crate) fn thread_tag() -> u64 {
    use crate::primitive::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static TAG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    TAG.with(|t| {
        if t.get() == 0 {
            t.set(NEXT.fetch_add(1, Ordering::Relaxed));
        }
        t.get()
    })
}

impl CpuSlab {
    pub(crate) fn new(core: Arc<CacheCore>, home_node: usize) -> Self {
        let offset = core.layout.offset;
        CpuSlab {
            core,
            c: KmemCacheCpu::new(offset, home_node),
        }
    }

    /// `kmem_cache_alloc()`: an object, or `None` when the page source is
    /// exhausted. Records the caller for `SLAB_STORE_USER`.
    #[inline]
    #[track_caller]
    pub fn alloc(&mut self) -> Option<NonNull<u8>> {
        let caller = std::panic::Location::caller() as *const _ as usize;
        NonNull::new(self.core.slab_alloc(&mut self.c, caller))
    }

    /// `kmem_cache_zalloc()`: an object with its `objsize` bytes zeroed.
    #[track_caller]
    pub fn alloc_zeroed(&mut self) -> Option<NonNull<u8>> {
        let p = self.alloc()?;
        // SAFETY: a fresh object of at least objsize bytes.
        unsafe { p.as_ptr().write_bytes(0, self.core.object_size()) };
        Some(p)
    }

    /// `kmem_cache_free()`.
    ///
    /// # Safety
    /// `obj` was allocated from this cache (or a cache merged with it),
    /// is freed once and not used afterwards. Debug caches detect and
    /// report violations instead of corrupting memory.
    #[inline]
    #[track_caller]
    pub unsafe fn free(&mut self, obj: NonNull<u8>) {
        let caller = std::panic::Location::caller() as *const _ as usize;
        // SAFETY: obj is an object of a live slab by contract.
        unsafe {
            let page = Page::head(
                crate::page::virt_to_page(obj.as_ptr())
                    .expect("kmem_cache_free: not a slab object"),
            );
            self.core.slab_free(&mut self.c, page, obj.as_ptr(), caller);
        }
    }

    /// `__flush_cpu_slab()`: puts the active slab (`flush_slab()`) and,
    /// from 3.2 on, the CPU partial slabs (`unfreeze_partials()`) back on
    /// their nodes' lists.
    pub fn flush(&mut self) {
        self.core.flush(&mut self.c);
    }

    /// The flusher: puts the active slab back if it was not used since
    /// the previous call. Returns true if it did.
    pub fn flush_if_unused(&mut self) -> bool {
        self.core.flush_if_unused(&mut self.c)
    }

    /// Checks the CPU state's invariants (3.1+ caches: the CPU slab and
    /// partial slabs are frozen slabs of this cache, the partial list's
    /// head counts its pages).
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        if self.core.lockless {
            self.core.assert_cpu_invariants_lockless(&self.c);
        } else {
            assert!(
                self.c.partial.is_null(),
                "2.6.24 caches have no CPU partial list"
            );
        }
    }

    /// The CPU state.
    pub fn state(&self) -> &KmemCacheCpu {
        &self.c
    }

    /// Counters.
    pub fn stats(&self) -> CpuStats {
        self.c.stats
    }

    /// The cache.
    pub fn cache(&self) -> &CacheCore {
        &self.core
    }
}

impl Drop for CpuSlab {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Frees an object of any SLUB cache through the memory map, without a
/// CPU (always the slow path): what another thread does when it frees an
/// object it did not allocate.
///
/// # Safety
/// `obj` is an allocated object of a live SLUB cache, freed once.
#[track_caller]
pub unsafe fn free_remote(obj: NonNull<u8>) {
    let caller = std::panic::Location::caller() as *const _ as usize;
    // SAFETY: forwarded.
    unsafe {
        let (core, page) = obj_to_cache(obj.as_ptr()).expect("free_remote: not a slab object");
        (*core).slab_free_slow(None, page, obj.as_ptr(), caller);
    }
}
