//! SLAB as a real allocator: [`SlabAlloc`] implements `GlobalAlloc`, and
//! the preload library's `malloc` runs on it with `KLAB_SLAB=slab`
//! ([`crate::capi`]).
//!
//! One static SLAB cache per size class ([`FINE_CLASSES`], the classes
//! of SLUB's global allocator, 16-byte aligned above 8 bytes) over the
//! same static page allocator as SLUB's. The host is one node, so there
//! are no alien arrays; each cache has a shared array (`enable_cpucache()`
//! on an SMP machine: 8 batches for objects up to a page).
//!
//! A thread stands in for a CPU, with the mechanisms of SLUB's global
//! allocator ([`crate::global`]): its arrays hang off its initial-exec
//! thread block (one pointer, null until its first SLAB slow path, when
//! the thread registers and one block of pages holds an [`ArrayCache`]
//! and its entries for every class); its exit (the pthread key
//! destructor) empties them into their slabs as `cpuup_callback()` does
//! for a dead CPU; every slow path (the only code taking a node's list
//! lock or the page allocator's) is bracketed for fork quiescence. A
//! thread without arrays (registering, exiting, the forking thread)
//! allocates and frees one object at a time straight from the slabs.
//! `malloc` pops the thread's array for the class and `free` pushes on
//! it: no lock, no atomic. Every slow path of a thread checks the clock
//! and runs `cache_reap()` over the thread's arrays every 2 s
//! (`REAPTIMEOUT_CPUC`), the kernel's per-CPU delayed work.
//!
//! Alignments above 16 bytes take pages (an on-slab descriptor and
//! colouring move objects off any larger boundary).

use std::alloc::{GlobalAlloc, Layout};
use std::borrow::Cow;
use std::ptr;

use super::core::{ArrayCache, CLASS_SHIFT, QueueStore, SlabCore, SlabpCache};
use super::geometry::{REAPTIMEOUT_CPUC_MS, SlabGeometry, Tunables};
use crate::Shared;
use crate::cache::{ksize, large_alloc, large_free};
use crate::global::{
    LIVE, NAMES, PAGES, SlowGuard, UNREGISTERED, register, slab_arrays, with_meta,
};
use crate::kmalloc::{FINE_CLASSES, INDEX_LEN, KMALLOC_MAX_CACHE_SIZE, size_index};
use crate::page::{PG_SLAB_CLASSIC, Page, virt_to_page};
use crate::page_alloc::{get_order, now_ms};
use crate::primitive::{AtomicUsize, Ordering};

/// Number of size classes.
pub const NR_CLASSES: usize = FINE_CLASSES.len();

static INDEX: [u8; INDEX_LEN] = size_index(FINE_CLASSES);

const fn class_geometry(i: usize) -> SlabGeometry {
    let align = if FINE_CLASSES[i] > 8 { 16 } else { 8 };
    match SlabGeometry::new(FINE_CLASSES[i], align, false, false) {
        Ok(g) => g,
        Err(_) => panic!("kmalloc class does not fit"),
    }
}

/// `kmem_find_general_cachep()`: the first class that is on-slab and
/// holds class `i`'s descriptor.
const fn desc_class(i: usize) -> SlabpCache {
    let g = class_geometry(i);
    if !g.off_slab {
        return SlabpCache::None;
    }
    let mut k = 0;
    while k < NR_CLASSES {
        let d = class_geometry(k);
        if !d.off_slab && d.buffer_size >= g.slab_size {
            return SlabpCache::Global(k);
        }
        k += 1;
    }
    panic!("no class holds the descriptor")
}

const fn make_class(i: usize) -> SlabCore {
    let g = class_geometry(i);
    SlabCore::new(
        Cow::Borrowed(NAMES[i]),
        g,
        Tunables::for_size(g.buffer_size, true),
        None,
        Shared::Static(&PAGES),
        desc_class(i),
        QueueStore::Pages,
        1,
        i as u32,
    )
}

macro_rules! classes {
    ($($i:literal)*) => { [$(make_class($i)),*] };
}

static CLASSES: [SlabCore; NR_CLASSES] = classes!(
    0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32
);

/// Class `i`'s cache (the descriptor caches of off-slab classes).
pub(crate) fn class_core(i: usize) -> &'static SlabCore {
    &CLASSES[i]
}

/// Entries of a thread's arrays, all classes.
const TOTAL_ENTRIES: usize = {
    let mut t = 0;
    let mut i = 0;
    while i < NR_CLASSES {
        t += Tunables::for_size(class_geometry(i).buffer_size, true).limit as usize;
        i += 1;
    }
    t
};

/// A thread's SLAB state: an array per class, its entries after it.
#[repr(C)]
struct ThreadArrays {
    acs: [ArrayCache; NR_CLASSES],
    last_reap_ms: u64,
}

const BLOCK_BYTES: usize = size_of::<ThreadArrays>() + TOTAL_ENTRIES * size_of::<*mut u8>();
const BLOCK_ORDER: u32 = get_order(BLOCK_BYTES);

/// Threads whose arrays were made (for tests and reports).
static THREADS_WITH_ARRAYS: AtomicUsize = AtomicUsize::new(0);

#[inline(always)]
fn arrays() -> *mut ThreadArrays {
    slab_arrays().get().cast()
}

/// CPUs this process may run on (`sched_getaffinity()`, no allocation):
/// the CPUs of the host's one node, for `free_limit`.
fn cpus_online() -> usize {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity writes at
    // most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) == 0 {
            (libc::CPU_COUNT(&set) as usize).max(1)
        } else {
            1
        }
    }
}

/// Makes the calling thread's arrays if it is registered and has none.
/// Inside a slow path.
fn ensure_arrays() -> *mut ThreadArrays {
    let a = arrays();
    if !a.is_null() || with_meta(|m| m.state.get()) != LIVE {
        return a;
    }
    let Some(page) = PAGES.alloc_pages(BLOCK_ORDER, 0) else {
        return ptr::null_mut();
    };
    let base = Page::address(page);
    let a = base.cast::<ThreadArrays>();
    // SAFETY: a fresh block of BLOCK_BYTES or more, page-aligned, ours;
    // each array gets its own run of entries after the header.
    unsafe {
        let mut entries = base.add(size_of::<ThreadArrays>()).cast::<*mut u8>();
        for (i, core) in CLASSES.iter().enumerate() {
            let ac = core.cpu_array(entries);
            entries = entries.add(ac.limit as usize);
            ptr::addr_of_mut!((*a).acs[i]).write(ac);
        }
        ptr::addr_of_mut!((*a).last_reap_ms).write(now_ms());
    }
    slab_arrays().set(a.cast());
    THREADS_WITH_ARRAYS.fetch_add(1, Ordering::Relaxed);
    a
}

/// `cache_reap()` over the thread's arrays once 2 s have passed since
/// the last run. Inside a slow path.
///
/// # Safety
/// `a` is the calling thread's arrays.
unsafe fn maybe_reap(a: *mut ThreadArrays) {
    let now = now_ms();
    // SAFETY: the thread's own arrays.
    unsafe {
        if now.saturating_sub((*a).last_reap_ms) < REAPTIMEOUT_CPUC_MS {
            return;
        }
        (*a).last_reap_ms = now;
        for (i, core) in CLASSES.iter().enumerate() {
            if core.is_ready() {
                core.cache_reap(&mut (*a).acs[i], 0, 0, now);
            }
        }
    }
}

/// Empties the calling thread's arrays into their slabs and gives the
/// block back (the thread's key destructor, inside its slow-path
/// bracket).
pub(crate) fn thread_exit() {
    let a = arrays();
    if a.is_null() {
        return;
    }
    slab_arrays().set(ptr::null_mut());
    // SAFETY: the thread's own arrays, no longer reachable through its
    // thread block; the block came from PAGES at BLOCK_ORDER.
    unsafe {
        for (i, core) in CLASSES.iter().enumerate() {
            core.flush_cpu(&mut (*a).acs[i], 0);
        }
        let page = virt_to_page(a.cast()).expect("the arrays' block has a memory map");
        PAGES.free_pages(page, BLOCK_ORDER);
    }
}

#[inline(always)]
fn alloc_class(i: usize) -> *mut u8 {
    let a = arrays();
    if !a.is_null() {
        // SAFETY: the thread's own arrays.
        let p = unsafe { (*a).acs[i].pop() };
        if !p.is_null() {
            return p;
        }
    }
    alloc_slow(i)
}

#[cold]
#[inline(never)]
fn alloc_slow(i: usize) -> *mut u8 {
    if with_meta(|m| m.state.get()) == UNREGISTERED {
        register();
    }
    let _g = SlowGuard::enter();
    let core = &CLASSES[i];
    if !core.is_ready() {
        core.setup(&[cpus_online()]);
    }
    let a = ensure_arrays();
    if a.is_null() {
        return core.alloc_node_one(0);
    }
    // SAFETY: the thread's own arrays.
    unsafe {
        maybe_reap(a);
        let ac = &mut (*a).acs[i];
        let p = ac.pop();
        if !p.is_null() {
            return p;
        }
        core.cache_alloc_refill(ac, 0)
    }
}

#[cold]
#[inline(never)]
fn alloc_large(size: usize, align: usize) -> *mut u8 {
    let _g = SlowGuard::enter();
    large_alloc(&PAGES, size, align, 0).map_or(ptr::null_mut(), |p| p.as_ptr())
}

/// # Safety
/// `p` is an allocated object of class `i`, freed once.
#[cold]
#[inline(never)]
unsafe fn free_slow(i: usize, p: *mut u8) {
    let _g = SlowGuard::enter();
    let a = arrays();
    // SAFETY: forwarded; the thread's own arrays.
    unsafe {
        if a.is_null() {
            CLASSES[i].free_node_one(p, 0);
            return;
        }
        maybe_reap(a);
        let ac = &mut (*a).acs[i];
        if !ac.push(p) {
            CLASSES[i].cache_flusharray(ac, 0);
            ac.push(p);
        }
    }
}

/// SLAB (mm/slab.c, 2.6.23) as a Rust global allocator.
///
/// ```no_run
/// #[global_allocator]
/// static A: klab_slab::SlabAlloc = klab_slab::SlabAlloc;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SlabAlloc;

impl SlabAlloc {
    /// `kmalloc()`: `size` bytes at the C library's alignment (16 above 8
    /// bytes); null when memory is exhausted.
    #[inline]
    pub fn kmalloc(size: usize) -> *mut u8 {
        crate::reentry::assert_no_lock_held();
        if size <= KMALLOC_MAX_CACHE_SIZE {
            alloc_class(INDEX[size.div_ceil(8)] as usize)
        } else {
            alloc_large(size, 16)
        }
    }

    /// `size` bytes at `align`; null when memory is exhausted.
    #[inline]
    pub fn allocate(size: usize, align: usize) -> *mut u8 {
        if align <= 16 {
            Self::kmalloc(if align > 8 { size.max(16) } else { size })
        } else {
            crate::reentry::assert_no_lock_held();
            alloc_large(size.max(1), align)
        }
    }

    /// Frees what [`Self::allocate`] returned: `kfree()`, the object onto
    /// the thread's array for its class (`__cache_free()`), flushing a
    /// batch first if it is full.
    ///
    /// # Safety
    /// `p` came from this allocator (in this process) and is freed once.
    #[inline]
    pub unsafe fn deallocate(p: *mut u8) {
        crate::reentry::assert_no_lock_held();
        // SAFETY: p is ours: its section header and memory map are live.
        unsafe {
            let Some(page) = virt_to_page(p) else {
                let _g = SlowGuard::enter();
                PAGES.free_large(p);
                return;
            };
            let flags = (*Page::head(page)).flags.load(Ordering::Relaxed);
            if flags & PG_SLAB_CLASSIC == 0 {
                let _g = SlowGuard::enter();
                large_free(&PAGES, p);
                return;
            }
            let i = (flags >> CLASS_SHIFT) as usize - 1;
            let a = arrays();
            if !a.is_null() && (*a).acs[i].push(p) {
                return;
            }
            free_slow(i, p);
        }
    }

    /// Usable bytes of an allocation (`ksize()`: the class's object size).
    ///
    /// # Safety
    /// `p` is a live allocation of this allocator.
    pub unsafe fn usable_size(p: *const u8) -> usize {
        // SAFETY: p is ours.
        unsafe {
            if let Some(page) = virt_to_page(p) {
                let flags = (*Page::head(page)).flags.load(Ordering::Relaxed);
                if flags & PG_SLAB_CLASSIC != 0 {
                    return CLASSES[(flags >> CLASS_SHIFT) as usize - 1]
                        .geometry()
                        .obj_size;
                }
            }
            ksize(p)
        }
    }

    /// Empties the calling thread's arrays into their slabs (what its
    /// exit does); it makes new ones at its next slow path.
    pub fn flush_thread() {
        let _g = SlowGuard::enter();
        thread_exit();
    }

    /// Class `i`'s cache (`kmalloc-N`).
    pub fn class(i: usize) -> &'static SlabCore {
        &CLASSES[i]
    }

    /// The calling thread's array for class `i`: `(avail, limit,
    /// batchcount, touched)`, or `None` before its first SLAB slow path.
    pub fn thread_array(i: usize) -> Option<(u32, u32, u32, bool)> {
        let a = arrays();
        if a.is_null() {
            return None;
        }
        // SAFETY: the thread's own arrays, read only.
        let ac = unsafe { &(*a).acs[i] };
        Some((ac.avail, ac.limit, ac.batchcount, ac.touched))
    }

    /// Slabs made over all classes since the process started.
    pub fn slabs_grown() -> usize {
        CLASSES
            .iter()
            .map(|c| c.stats.grown.load(Ordering::Relaxed))
            .sum()
    }

    /// Threads that have had SLAB arrays.
    pub fn threads_with_arrays() -> usize {
        THREADS_WITH_ARRAYS.load(Ordering::Relaxed)
    }

    /// Bytes of one thread's arrays block (headers and entries for every
    /// class, in pages of the page allocator).
    pub const THREAD_BLOCK_BYTES: usize = crate::page::PAGE_SIZE << BLOCK_ORDER;
}

// SAFETY: `allocate` returns blocks of at least `size` bytes at `align`
// (classes are multiples of 16 with objects 16-aligned from their slab's
// 16-aligned first object; larger alignments take pages) that stay
// valid until `deallocate`; `realloc` copies min(old, new) bytes.
unsafe impl GlobalAlloc for SlabAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::allocate(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: forwarded.
        unsafe { Self::deallocate(p) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: p is a live allocation of ours.
        let usable = unsafe { Self::usable_size(p) };
        if new_size <= usable && new_size >= usable / 2 && layout.align() <= 16 {
            return p;
        }
        let q = Self::allocate(new_size, layout.align());
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct.
            unsafe {
                ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                Self::deallocate(p);
            }
        }
        q
    }
}
