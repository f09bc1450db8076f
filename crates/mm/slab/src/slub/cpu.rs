//! `struct kmem_cache_cpu` (2.6.24) and [`CpuSlab`], the handle a CPU (a
//! host thread, or a CPU of the model) holds on a cache.
//!
//! The kernel reaches its CPU's `kmem_cache_cpu` with interrupts off, so
//! nothing else touches it meanwhile. klab gets the same exclusivity from
//! ownership: a [`CpuSlab`] is a value used through `&mut`, so the fast
//! paths (pop or push `c->freelist`) take no lock and no atomic operation.
//! Other threads free into the CPU's frozen slab through the slab lock
//! ([`CacheCore::slab_free_slow`]); the owner collects those objects when
//! its own freelist runs dry.
//!
//! Dropping a [`CpuSlab`] flushes it (`flush_slab()`), the counterpart of a
//! CPU going offline; [`CpuSlab::flush_if_unused`] is the periodic flusher.

use std::ptr::{self, NonNull};
use std::sync::Arc;

use super::{CacheCore, obj_to_cache};
use crate::page::Page;

/// Counters of one CPU's use of a cache (the later `CONFIG_SLUB_STATS`
/// `ALLOC_FASTPATH`, `ALLOC_SLOWPATH`, `FREE_FASTPATH`, `FREE_SLOWPATH`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Allocations served from the CPU freelist.
    pub alloc_fast: u64,
    /// Allocations that went to `__slab_alloc()`.
    pub alloc_slow: u64,
    /// Frees pushed on the CPU freelist.
    pub free_fast: u64,
    /// Frees that went to `__slab_free()`.
    pub free_slow: u64,
}

/// `struct kmem_cache_cpu`: a CPU's active slab and lockless freelist.
pub struct KmemCacheCpu {
    /// Free objects of `page` only this CPU may take.
    pub(crate) freelist: *mut u8,
    /// The active (frozen) slab, or null.
    pub(crate) page: *const Page,
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
            node: 0,
            offset,
            home_node,
            touched: false,
            defrag_counter: 0,
            stats: CpuStats {
                alloc_fast: 0,
                alloc_slow: 0,
                free_fast: 0,
                free_slow: 0,
            },
        }
    }

    /// True while the CPU holds an active slab.
    pub fn has_slab(&self) -> bool {
        !self.page.is_null()
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

    /// `flush_slab()`: puts the active slab back on its node's lists.
    pub fn flush(&mut self) {
        self.core.flush(&mut self.c);
    }

    /// The flusher: puts the active slab back if it was not used since
    /// the previous call. Returns true if it did.
    pub fn flush_if_unused(&mut self) -> bool {
        self.core.flush_if_unused(&mut self.c)
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
        (*core).slab_free_slow(page, obj.as_ptr(), caller);
    }
}
