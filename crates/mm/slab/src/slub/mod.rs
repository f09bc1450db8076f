//! SLUB: a slab allocator that limits cache line use instead of queuing
//! objects in per-CPU and per-node lists. Mirrors mm/slub.c (2.6.24:
//! `slab_alloc()`, `__slab_alloc()`, `slab_free()`, `__slab_free()`,
//! `deactivate_slab()`, `get_partial_node()`, `new_slab()`,
//! `discard_slab()`); seed 003, "The SLUB allocator".
//!
//! # Data structures
//!
//! ```text
//!  CacheCore (kmem_cache)            KmemCacheNode[node]          slab pages (struct page)
//!  ┌──────────────────────┐         ┌───────────────────┐        ┌──────────────────────────┐
//!  │ layout: size, offset,│         │ list_lock         │        │ freelist → obj → obj → ∅ │
//!  │ objects, order, flags│         │ partial: P ⇄ P ⇄ P│───────▶│ inuse, offset, slab      │
//!  │ nodes[MAX_NUMNODES]  │────────▶│ nr_partial        │        │ PG_slab|PG_frozen|...    │
//!  └──────────────────────┘         │ full (debug only) │        └──────────────────────────┘
//!                                   │ nr_slabs          │
//!  KmemCacheCpu (one per CPU; per   └───────────────────┘
//!  thread on the host, owned)
//!  ┌──────────────────────┐
//!  │ freelist → obj → ∅   │  objects of `page` only this CPU may take
//!  │ page  (frozen slab)  │
//!  │ node  (-1: debug)    │
//!  └──────────────────────┘
//! ```
//!
//! A slab is `2^order` pages packed with `objects` objects of stride
//! `size` from its first byte, with no metadata inside: free objects form
//! a list threaded through them, the next pointer at `offset` bytes into
//! each free object (outside the object for RCU, constructor and poisoned
//! caches). The slab's `freelist`, `inuse` and `offset` live in its head
//! frame's [`Page`].
//!
//! # Life of a slab
//!
//! * *new*: made by `new_slab()`, all objects free, immediately frozen as a
//!   CPU's active slab.
//! * *frozen* (cpu slab): the CPU took the whole `page->freelist` into its
//!   own `c->freelist`, so `inuse == objects` until objects come back;
//!   allocation pops `c->freelist` with no lock; frees by the owning CPU
//!   push on `c->freelist`; frees by anyone else push on `page->freelist`
//!   under the slab lock, and the owner takes those when `c->freelist`
//!   runs dry.
//! * *partial*: not frozen, some objects free: on its node's partial list.
//! * *full*: not frozen, no object free: on no list ("the allocator simply
//!   forgets about the slab altogether"); the first free finds it again
//!   through the memory map and puts it on the partial list's tail.
//! * *empty*: `inuse == 0`: kept on the partial list while the node has
//!   fewer than `min_partial` partial slabs, else returned to the page
//!   allocator.
//!
//! # Invariants (checked by [`CacheCore::assert_invariants`])
//!
//! * for every slab not frozen: `inuse + |freelist| == objects`; every
//!   free pointer is `base + k * size` with `k < objects`, or null;
//! * `nr_partial == |partial|`; every listed slab is not frozen and has
//!   `inuse < objects` (or is empty and kept by `min_partial`);
//! * `nr_slabs` counts slabs of the node, wherever they are.
//!
//! # Locking (mm/slub.c lock order)
//!
//! 1. slab lock (`PG_locked` bit spin lock in the page flags): the slab's
//!    `freelist`, `inuse` and its frozen/list state.
//! 2. node `list_lock`: the partial (and debug full) list and
//!    `nr_partial`.
//!
//! Taken in that order, except `get_partial_node()`, which holds the list
//! lock and only *tries* each slab lock. A CPU's [`KmemCacheCpu`] is owned
//! by one thread at a time (`&mut`), the user-space stand-in for "irqs off
//! on this processor", so its fast paths take no lock at all.
//!
//! # Policy and where it departs from 2.6.24
//!
//! * Empty slabs freed by `__slab_free()` are kept while the node has
//!   fewer than `min_partial` partial slabs (later kernels; 2.6.24 kept
//!   them only on deactivation), and `min_partial = clamp(ilog2(size) / 2,
//!   MIN_PARTIAL, MAX_PARTIAL)` (`set_min_partial()`, 2.6.26).
//! * Reaching for another node's partial slabs happens when that node has
//!   more than `min_partial` of them and a per-CPU counter modulo 1024 is
//!   at most `defrag_ratio` (100): the kernel draws `get_cycles()`, klab a
//!   counter, so the model stays deterministic.
//! * The flusher of unused per-CPU slabs is [`KmemCacheCpu::touched`] plus
//!   [`CacheCore::flush_if_unused`]: whoever owns the CPU state calls it
//!   periodically (the model on a tick, the global allocator on its slow
//!   path), as the kernel's workqueue item does.
//!
//! # Eras
//!
//! A cache runs the slow paths of one [`SlubEra`]: 2.6.24's (above, the
//! page's SLUB and the default), 3.1's lockless slow paths
//! (`cmpxchg_double_slab()` on a slab's freelist and counters; the slab
//! lock is gone from the free path) or 3.2's per-CPU partial lists on top
//! (`CONFIG_SLUB_CPU_PARTIAL`). The later two live in `slub/lockless.rs`. Debug
//! caches keep the 2.6.24 paths in every era, as the kernel gives them
//! neither `__CMPXCHG_DOUBLE` nor CPU partial lists.
//!
//! On top of 3.2, [`sheaf`] has 6.18's per-CPU sheaves (arrays of free
//! objects in front of the slabs) and 4.6's bulk free by detached
//! freelists, which the global allocator uses.

mod cpu;
pub(crate) mod interleave;
mod lockless;
mod node;
pub mod sheaf;

use std::borrow::Cow;
use std::fmt;
use std::ptr;
use std::str::FromStr;

pub use cpu::{CpuSlab, CpuStats, KmemCacheCpu, free_remote};
pub(crate) use lockless::Counters;
pub(crate) use node::KmemCacheNode;

use crate::debug::{
    POISON_END, POISON_FREE, POISON_INUSE, RED_ACTIVE, RED_INACTIVE, ReportKind, ReportSink,
    SlabReport, check_bytes,
};
use crate::layout::{CacheLayout, SlabFlags, TRACK_SIZE};
use crate::page::{
    PAGE_SIZE, PG_CLASS_SHIFT, PG_DEBUG, PG_FROZEN, PG_FULL, PG_SLAB, Page, virt_to_page,
};
use crate::page_alloc::{MAX_NUMNODES, PageAllocator, make_compound, order_bytes};
use crate::primitive::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use crate::{Ctor, Shared};

/// `MIN_PARTIAL`: fewest partial slabs a node keeps even when empty.
pub const MIN_PARTIAL: usize = 5;
/// `MAX_PARTIAL`: most partial slabs `min_partial` asks a node to keep.
pub const MAX_PARTIAL: usize = 10;
/// `defrag_ratio` (internal scale 0..1024 in 2.6.24, default 100): how
/// often a CPU may take partial slabs from another node.
pub const DEFRAG_RATIO: u32 = 100;

/// Which SLUB a cache runs: the slow paths of one kernel release.
///
/// ```
/// use klab_slab::SlubEra;
/// assert_eq!("3.2".parse::<SlubEra>(), Ok(SlubEra::V3_2));
/// assert!(SlubEra::V3_2.cpu_partial() && SlubEra::V3_2.cmpxchg_double());
/// assert!(!SlubEra::V2_6_24.cmpxchg_double());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlubEra {
    /// 2.6.22-2.6.24, the page's SLUB: every slow path takes the slab lock
    /// (`slab_lock()`, a bit spin lock in the page flags); a free that
    /// finds a full slab, or empties one, takes the node's `list_lock`.
    #[default]
    V2_6_24,
    /// 3.1: a slab's freelist and counters (`inuse`, `frozen`) change
    /// together in one compare-and-swap (`cmpxchg_double_slab()`), so
    /// `__slab_free()` takes no slab lock and no list lock unless the slab
    /// goes from full to partial or becomes empty; CPU slabs are refilled
    /// by `get_freelist()` and unfrozen by `deactivate_slab()`'s
    /// compare-and-swap.
    V3_1,
    /// 3.2+ (`CONFIG_SLUB_CPU_PARTIAL`): 3.1 plus per-CPU partial lists. A
    /// free that finds a full slab freezes it onto the freeing CPU's
    /// partial list (`put_cpu_partial()`) instead of the node's; a refill
    /// from a node list takes up to `cpu_partial / 2` objects' worth of
    /// slabs at once; past `s->cpu_partial` free objects the CPU list goes
    /// to the node lists (`unfreeze_partials()`).
    V3_2,
}

impl SlubEra {
    /// Every era, oldest first.
    pub const ALL: [SlubEra; 3] = [SlubEra::V2_6_24, SlubEra::V3_1, SlubEra::V3_2];

    /// The release it mirrors: `"2.6.24"`, `"3.1"`, `"3.2"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SlubEra::V2_6_24 => "2.6.24",
            SlubEra::V3_1 => "3.1",
            SlubEra::V3_2 => "3.2",
        }
    }

    /// Slabs' freelists and counters change by compare-and-swap
    /// (`__CMPXCHG_DOUBLE`).
    pub const fn cmpxchg_double(self) -> bool {
        !matches!(self, SlubEra::V2_6_24)
    }

    /// CPUs keep partial lists (`CONFIG_SLUB_CPU_PARTIAL`).
    pub const fn cpu_partial(self) -> bool {
        matches!(self, SlubEra::V3_2)
    }
}

impl fmt::Display for SlubEra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An era name that is not one of `2.6.24`, `3.1`, `3.2`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown SLUB era '{0}' (expected 2.6.24, 3.1 or 3.2)")]
pub struct SlubEraError(pub String);

impl FromStr for SlubEra {
    type Err = SlubEraError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SlubEra::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| SlubEraError(s.to_owned()))
    }
}

/// `set_cpu_partial()` (3.2+): the most free objects a CPU's partial
/// list holds before it goes to the node lists, by object stride; 0 for
/// caches without CPU partial lists (debug caches, eras before 3.2).
pub const fn cpu_partial_for(size: usize, era: SlubEra, debug: bool) -> usize {
    if debug || !era.cpu_partial() {
        0
    } else if size >= PAGE_SIZE {
        2
    } else if size >= 1024 {
        6
    } else if size >= 256 {
        13
    } else {
        30
    }
}

/// `set_min_partial()`: `clamp(ilog2(size) / 2, MIN_PARTIAL, MAX_PARTIAL)`.
pub const fn min_partial_for(size: usize) -> usize {
    let v = (usize::BITS - 1 - size.leading_zeros()) as usize / 2;
    if v < MIN_PARTIAL {
        MIN_PARTIAL
    } else if v > MAX_PARTIAL {
        MAX_PARTIAL
    } else {
        v
    }
}

/// `get_freepointer()`.
///
/// # Safety
/// `obj` is a free object of a slab whose free pointer sits at `offset`.
#[inline(always)]
pub(crate) unsafe fn get_fp(obj: *mut u8, offset: usize) -> *mut u8 {
    // SAFETY: the free pointer lies within the object's stride.
    unsafe { obj.add(offset).cast::<*mut u8>().read_unaligned() }
}

/// `set_freepointer()`.
///
/// # Safety
/// `obj` is an object of a slab whose free pointer sits at `offset`, owned
/// by the caller.
#[inline(always)]
pub(crate) unsafe fn set_fp(obj: *mut u8, offset: usize, fp: *mut u8) {
    // SAFETY: the free pointer lies within the object's stride.
    unsafe { obj.add(offset).cast::<*mut u8>().write_unaligned(fp) }
}

/// A SLUB cache: `struct kmem_cache`.
///
/// Field rules: `I` immutable after creation, `A` atomic, `N` inside the
/// node (its list lock).
pub struct CacheCore {
    /// I: the name the cache was created with.
    pub(crate) name: Cow<'static, str>,
    /// I: the computed layout (objsize may grow on merge: see `objsize`).
    pub(crate) layout: CacheLayout,
    /// A: the object size, the largest of the merged requests
    /// (`s->objsize = max(s->objsize, size)` in `kmem_cache_create()`).
    pub(crate) objsize: AtomicUsize,
    /// I: the constructor.
    pub(crate) ctor: Option<Ctor>,
    /// I: `min_partial`.
    pub(crate) min_partial: usize,
    /// I: the era whose slow paths the cache runs.
    pub(crate) era: SlubEra,
    /// I: slabs change by compare-and-swap (`__CMPXCHG_DOUBLE`: 3.1+ and
    /// not a debug cache).
    pub(crate) lockless: bool,
    /// I: `s->cpu_partial` (3.2+, not a debug cache; else 0).
    pub(crate) cpu_partial: usize,
    /// I: where slabs come from.
    pub(crate) pages: Shared<PageAllocator>,
    /// I: where debug findings go.
    pub(crate) sink: Shared<dyn ReportSink>,
    /// N: per-node lists.
    pub(crate) nodes: [KmemCacheNode; MAX_NUMNODES],
    /// I: the kmalloc size class index (`u32::MAX` for other caches).
    pub(crate) kmalloc_index: u32,
    /// A: findings reported (for `validate()`'s count).
    pub(crate) nr_reports: AtomicUsize,
    /// A: the debug clock: one tick per tracked alloc or free (`jiffies`).
    pub(crate) clock: AtomicU64,
    /// A: `close()` ran.
    pub(crate) closed: AtomicBool,
}

impl Drop for CacheCore {
    fn drop(&mut self) {
        self.close();
    }
}

/// Why a free (or an allocation) in a debug cache did not happen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DebugVerdict {
    Ok,
    Refused,
}

/// Counts of one cache's slabs (from the node lists; frozen slabs count in
/// `slabs` only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Slabs allocated (`nr_slabs` summed over nodes).
    pub slabs: usize,
    /// Slabs on partial lists.
    pub partial: usize,
    /// Objects per slab.
    pub objects_per_slab: usize,
    /// Bytes of page frames held.
    pub bytes: usize,
}

impl CacheCore {
    /// A cache with a computed layout.
    #[allow(clippy::too_many_arguments)]
    pub(crate) const fn new(
        name: Cow<'static, str>,
        layout: CacheLayout,
        ctor: Option<Ctor>,
        era: SlubEra,
        pages: Shared<PageAllocator>,
        sink: Shared<dyn ReportSink>,
        kmalloc_index: u32,
    ) -> Self {
        let debug = layout.flags.intersects(SlabFlags::DEBUG_SLAB);
        CacheCore {
            name,
            objsize: AtomicUsize::new(layout.objsize),
            ctor,
            min_partial: min_partial_for(layout.size),
            era,
            lockless: era.cmpxchg_double() && !debug,
            cpu_partial: cpu_partial_for(layout.size, era, debug),
            layout,
            pages,
            sink,
            nodes: [KmemCacheNode::NEW; MAX_NUMNODES],
            kmalloc_index,
            nr_reports: AtomicUsize::new(0),
            clock: AtomicU64::new(0),
            closed: AtomicBool::new(false),
        }
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layout.
    pub fn layout(&self) -> &CacheLayout {
        &self.layout
    }

    /// The era whose slow paths the cache runs.
    pub fn era(&self) -> SlubEra {
        self.era
    }

    /// `s->cpu_partial`: free objects a CPU partial list may hold (0: the
    /// cache has none).
    pub fn cpu_partial(&self) -> usize {
        self.cpu_partial
    }

    /// `min_partial`.
    pub fn min_partial(&self) -> usize {
        self.min_partial
    }

    /// True if the cache's slabs change by compare-and-swap.
    pub fn is_lockless(&self) -> bool {
        self.lockless
    }

    /// `kmem_cache_size()`.
    pub fn object_size(&self) -> usize {
        self.objsize.load(Ordering::Relaxed)
    }

    /// `ksize()` of an object of this cache: `objsize` if red-zoned or
    /// poisoned, `inuse` if RCU or tracked, else `size`.
    pub fn ksize(&self) -> usize {
        let f = self.layout.flags;
        if f.intersects(SlabFlags::RED_ZONE.with(SlabFlags::POISON)) {
            self.object_size()
        } else if f.intersects(SlabFlags::DESTROY_BY_RCU.with(SlabFlags::STORE_USER)) {
            self.layout.inuse
        } else {
            self.layout.size
        }
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        let mut st = CacheStats {
            objects_per_slab: self.layout.objects,
            ..CacheStats::default()
        };
        for n in &self.nodes[..self.pages.nr_nodes()] {
            st.slabs += n.nr_slabs.load(Ordering::Relaxed);
            st.partial += n.nr_partial.load(Ordering::Relaxed);
        }
        st.bytes = st.slabs * order_bytes(self.layout.order);
        st
    }

    /// Slabs on node `node` (0 for a node the page allocator lacks).
    pub fn node_slabs(&self, node: usize) -> usize {
        if node >= self.pages.nr_nodes() {
            return 0;
        }
        self.nodes[node].nr_slabs.load(Ordering::Relaxed)
    }

    // ------------------------------------------------------------------
    // Allocation.

    /// `slab_alloc()` (3.x: `slab_alloc_node()`): the fast path pops the
    /// CPU freelist; `caller` is recorded by `SLAB_STORE_USER`. 3.1+
    /// kernels pop with `this_cpu_cmpxchg_double(freelist, tid)`; here the
    /// `&mut` CPU state already excludes a preempted or interrupted pop
    /// (see [`cpu`](self::cpu)'s header), so the pop is plain in every era.
    #[inline(always)]
    pub(crate) fn slab_alloc(&self, c: &mut KmemCacheCpu, caller: usize) -> *mut u8 {
        let obj = c.freelist;
        if !obj.is_null() {
            // SAFETY: c.freelist holds free objects of c.page, owned by c.
            c.freelist = unsafe { get_fp(obj, c.offset) };
            c.touched = true;
            c.stats.alloc_fast += 1;
            return obj;
        }
        self.slab_alloc_slow(c, caller)
    }

    /// `__slab_alloc()`.
    #[cold]
    #[inline(never)]
    pub(crate) fn slab_alloc_slow(&self, c: &mut KmemCacheCpu, caller: usize) -> *mut u8 {
        if self.lockless {
            return self.slab_alloc_slow_lockless(c);
        }
        c.stats.alloc_slow += 1;
        c.touched = true;
        let mut page = c.page;
        if !page.is_null() {
            // SAFETY: c.page is a frozen slab of this cache owned by c.
            unsafe { (*page).lock() };
        }
        loop {
            if !page.is_null() {
                // load_freelist: the page is locked and frozen for c.
                // SAFETY: slab lock held.
                unsafe {
                    let p = &*page;
                    let obj = p.freelist();
                    if !obj.is_null() {
                        if p.test(PG_DEBUG) {
                            if self.alloc_debug_processing(page, obj, caller) == DebugVerdict::Ok {
                                p.set_inuse(p.inuse() + 1);
                                p.set_freelist(get_fp(obj, self.layout.offset));
                                c.node = -1;
                                p.unlock();
                                return obj;
                            }
                        } else {
                            c.freelist = get_fp(obj, self.layout.offset);
                            p.set_inuse(self.layout.objects as u32);
                            p.set_freelist(ptr::null_mut());
                            c.node = Page::node(page) as i32;
                            p.unlock();
                            return obj;
                        }
                    }
                    // another_slab: this one is used up.
                    self.deactivate_slab(c);
                }
            }
            // new_slab: a partial slab, else a fresh one.
            page = match self.get_partial(c) {
                Some(p) => p,
                None => {
                    let Some(p) = self.new_slab(c.home_node) else {
                        return ptr::null_mut();
                    };
                    // SAFETY: a fresh slab nobody else knows of yet.
                    unsafe {
                        (*p).lock();
                        (*p).set(PG_FROZEN);
                    }
                    p
                }
            };
            c.page = page;
        }
    }

    /// `get_partial()`: the CPU's node first, then (sometimes) others.
    fn get_partial(&self, c: &mut KmemCacheCpu) -> Option<*const Page> {
        let nr = self.pages.nr_nodes();
        let home = c.home_node % nr;
        if let Some(p) = self.nodes[home].get_partial_node() {
            return Some(p);
        }
        // get_any_partial(): only now and then, and only from nodes with
        // more than min_partial partial slabs.
        c.defrag_counter = c.defrag_counter.wrapping_add(1);
        if nr == 1 || c.defrag_counter % 1024 > DEFRAG_RATIO {
            return None;
        }
        (1..nr)
            .map(|k| (home + k) % nr)
            .filter(|&n| self.nodes[n].nr_partial.load(Ordering::Relaxed) > self.min_partial)
            .find_map(|n| self.nodes[n].get_partial_node())
    }

    /// `new_slab()`: frames from the page allocator, objects threaded on a
    /// free list, constructors and debug patterns applied. Not locked, not
    /// on any list.
    pub(crate) fn new_slab(&self, node: usize) -> Option<*const Page> {
        let l = &self.layout;
        let page = self.pages.alloc_pages(l.order, node)?;
        // SAFETY: the frames are fresh and ours; the slab is not published.
        unsafe {
            make_compound(page, l.order);
            let p = &*page;
            self.nodes[Page::node(page)]
                .nr_slabs
                .fetch_add(1, Ordering::Relaxed);
            p.set_slab((self as *const CacheCore).cast());
            if !self.lockless {
                p.set_offset(l.offset as u32);
            }
            let mut flags = PG_SLAB;
            if l.flags.intersects(SlabFlags::DEBUG_SLAB) {
                flags |= PG_DEBUG;
            }
            if self.kmalloc_index < 256 {
                let class = (u32::from(self.lockless) << 8 | self.kmalloc_index) + 1;
                flags |= class << PG_CLASS_SHIFT;
                // The tail frames carry the class too, so a free finds it
                // in the one frame `virt_to_page()` gives (the kernel's
                // `virt_to_slab()` reads the head frame as well).
                let s = ptr::NonNull::new_unchecked(Page::section(page));
                for i in 1..1usize << l.order {
                    (*crate::page::frame(s, Page::index(page) + i))
                        .flags
                        .fetch_or(class << PG_CLASS_SHIFT, Ordering::Relaxed);
                }
                crate::page::set_frame_classes(page, l.order, class);
            }
            p.flags.store(flags, Ordering::Relaxed);
            let start = Page::address(page);
            if l.flags.contains(SlabFlags::POISON) {
                start.write_bytes(POISON_INUSE, order_bytes(l.order));
            }
            for i in 0..l.objects {
                let obj = start.add(i * l.size);
                self.setup_object(obj);
                let next = if i + 1 < l.objects {
                    start.add((i + 1) * l.size)
                } else {
                    ptr::null_mut()
                };
                set_fp(obj, l.offset, next);
            }
            if self.lockless {
                // allocate_slab() (3.1+): born frozen, its freelist
                // already the new owner's (`new_slab_objects()`).
                p.set_freelist(ptr::null_mut());
                p.counters.store(
                    Counters::new(0, l.objects as u32, true).0,
                    Ordering::Release,
                );
            } else {
                p.set_freelist(start);
                p.set_inuse(0);
            }
        }
        Some(page)
    }

    /// `setup_object()`: debug patterns, then the constructor.
    ///
    /// # Safety
    /// `obj` is an object of a slab being made.
    unsafe fn setup_object(&self, obj: *mut u8) {
        let f = self.layout.flags;
        // SAFETY: forwarded.
        unsafe {
            if f.intersects(SlabFlags::STORE_USER | SlabFlags::RED_ZONE | SlabFlags::OBJECT_POISON)
            {
                self.init_object(obj, false);
                self.init_tracking(obj);
            }
            if let Some(ctor) = self.ctor {
                ctor(std::slice::from_raw_parts_mut(obj, self.layout.objsize));
            }
        }
    }

    // ------------------------------------------------------------------
    // Free.

    /// `slab_free()` (4.x: `do_slab_free()`): the fast path pushes on the
    /// CPU freelist when the object belongs to the CPU's active slab
    /// (`page == c->page`); anything else is `__slab_free()`.
    ///
    /// # Safety
    /// `obj` is an allocated object of this cache, `page` its head frame.
    #[inline(always)]
    pub(crate) unsafe fn slab_free(
        &self,
        c: &mut KmemCacheCpu,
        page: *const Page,
        obj: *mut u8,
        caller: usize,
    ) {
        if ptr::eq(page, c.page) && c.node >= 0 {
            // SAFETY: obj is ours to free and page is c's frozen slab.
            unsafe { set_fp(obj, c.offset, c.freelist) };
            c.freelist = obj;
            c.touched = true;
            c.stats.free_fast += 1;
            return;
        }
        // SAFETY: forwarded.
        unsafe { self.slab_free_slow(Some(c), page, obj, caller) }
    }

    /// `__slab_free()`: free to the slab itself, under its lock (2.6.24)
    /// or by compare-and-swap (3.1+). `c` is the freeing CPU, which 3.2's
    /// CPU partial lists need; without one (a free from outside any CPU
    /// state) a full slab goes to its node's partial list.
    ///
    /// # Safety
    /// As [`Self::slab_free`] (debug caches check and report violations).
    #[cold]
    #[inline(never)]
    pub(crate) unsafe fn slab_free_slow(
        &self,
        c: Option<&mut KmemCacheCpu>,
        page: *const Page,
        obj: *mut u8,
        caller: usize,
    ) {
        if self.lockless {
            // SAFETY: forwarded.
            unsafe { self.slab_free_slow_lockless(c, page, obj) };
            return;
        }
        if let Some(c) = c {
            c.stats.free_slow += 1;
        }
        // SAFETY: page is a live slab frame; everything below runs under
        // its lock, list changes under the node lock.
        unsafe {
            let p = &*page;
            p.lock();
            if p.test(PG_DEBUG) && self.free_debug_processing(page, obj, caller) != DebugVerdict::Ok
            {
                p.unlock();
                return;
            }
            let prior = p.freelist();
            set_fp(obj, self.layout.offset, prior);
            p.set_freelist(obj);
            let inuse = p.inuse() - 1;
            p.set_inuse(inuse);
            if p.test(PG_FROZEN) {
                p.unlock();
                return;
            }
            let n = &self.nodes[Page::node(page)];
            if inuse == 0 && n.nr_partial.load(Ordering::Relaxed) >= self.min_partial {
                // slab_empty:
                if !prior.is_null() {
                    n.remove_partial(page);
                }
                p.unlock();
                self.discard_slab(page);
                return;
            }
            if prior.is_null() {
                // The slab was full, forgotten: back on the partial tail.
                n.add_partial(page, true);
            }
            p.unlock();
        }
    }

    /// `deactivate_slab()` + `unfreeze_slab()`: gives the CPU's slab back,
    /// its CPU freelist merged into the slab's.
    ///
    /// # Safety
    /// `c.page` is non-null, frozen for `c`, and locked by the caller; the
    /// lock is released on return.
    pub(crate) unsafe fn deactivate_slab(&self, c: &mut KmemCacheCpu) {
        let page = c.page;
        // SAFETY: slab locked by the caller; c's freelist objects are of
        // this slab.
        unsafe {
            let p = &*page;
            while !c.freelist.is_null() {
                let obj = c.freelist;
                c.freelist = get_fp(obj, c.offset);
                set_fp(obj, self.layout.offset, p.freelist());
                p.set_freelist(obj);
                p.set_inuse(p.inuse() - 1);
            }
            c.page = ptr::null();
            c.node = 0;
            p.clear(PG_FROZEN);
            let n = &self.nodes[Page::node(page)];
            if p.inuse() > 0 {
                if !p.freelist().is_null() {
                    n.add_partial(page, false);
                } else if p.test(PG_DEBUG) {
                    n.add_full(page);
                }
                p.unlock();
            } else if n.nr_partial.load(Ordering::Relaxed) < self.min_partial {
                n.add_partial(page, true);
                p.unlock();
            } else {
                p.unlock();
                self.discard_slab(page);
            }
        }
    }

    /// `__flush_cpu_slab()`: deactivates the CPU's slab, if it has one
    /// (`flush_slab()`), and from 3.2 on unfreezes its partial list.
    pub(crate) fn flush(&self, c: &mut KmemCacheCpu) {
        if self.lockless {
            self.flush_lockless(c);
            return;
        }
        if c.page.is_null() {
            return;
        }
        // SAFETY: c.page is c's frozen slab; locked here as deactivate needs.
        unsafe {
            (*c.page).lock();
            self.deactivate_slab(c);
        }
    }

    /// The flusher's rule: a CPU slab not used since the last call is put
    /// back. Returns true if it was flushed.
    pub(crate) fn flush_if_unused(&self, c: &mut KmemCacheCpu) -> bool {
        if c.touched || (c.page.is_null() && c.partial.is_null()) {
            c.touched = false;
            return false;
        }
        self.flush(c);
        true
    }

    /// `discard_slab()`: the slab goes back to the page allocator.
    ///
    /// # Safety
    /// `page` is an empty slab of this cache on no list and not frozen.
    unsafe fn discard_slab(&self, page: *const Page) {
        // SAFETY: by contract nobody else references the slab.
        unsafe {
            let p = &*page;
            if p.test(PG_DEBUG) {
                self.slab_pad_check(page);
                let base = Page::address(page);
                for i in 0..self.layout.objects {
                    self.check_object(page, base.add(i * self.layout.size), false);
                }
            }
            self.nodes[Page::node(page)]
                .nr_slabs
                .fetch_sub(1, Ordering::Relaxed);
            p.flags.store(0, Ordering::Relaxed);
            p.counters.store(0, Ordering::Relaxed);
            p.set_slab(ptr::null());
            self.pages.free_pages(page, self.layout.order);
        }
    }

    /// Discards every slab of a list linked through `next`; returns how
    /// many.
    ///
    /// # Safety
    /// The slabs are empty, not frozen and on no other list.
    unsafe fn discard_list(&self, mut page: *mut Page) -> usize {
        let mut n = 0;
        while !page.is_null() {
            let p = page;
            // SAFETY: the caller's list; read before the slab is freed.
            page = unsafe { (*p).next() };
            // SAFETY: forwarded.
            unsafe { self.discard_slab(p) };
            n += 1;
        }
        n
    }

    /// `kmem_cache_shrink()`: empty partial slabs go back to the page
    /// allocator, the rest are sorted fullest first. Frozen slabs are not
    /// touched (their owners flush them). Returns the slabs freed.
    pub fn shrink(&self) -> usize {
        let mut freed = 0;
        for n in &self.nodes[..self.pages.nr_nodes()] {
            let empty = n.shrink(self.layout.objects, |p| self.slab_inuse(p));
            // SAFETY: taken off the list empty, not frozen.
            freed += unsafe { self.discard_list(empty) };
        }
        freed
    }

    /// Frees every empty slab on the lists and reports objects still in
    /// use (`kmem_cache_close()`); returns the number of slabs that could
    /// not be freed.
    pub(crate) fn close(&self) -> usize {
        if self.closed.swap(true, Ordering::AcqRel) {
            return 0;
        }
        for n in &self.nodes[..self.pages.nr_nodes()] {
            let empty = n.take_empty(self.layout.objects, |p| self.slab_inuse(p));
            // SAFETY: taken off the list empty, not frozen.
            unsafe { self.discard_list(empty) };
        }
        let left: usize = self
            .nodes
            .iter()
            .map(|n| n.nr_slabs.load(Ordering::Relaxed))
            .sum();
        if left > 0 {
            self.report(
                ptr::null(),
                None,
                ReportKind::ObjectsRemaining,
                format!("{left} slabs still hold objects"),
                "slabs leaked".into(),
            );
        }
        left
    }

    /// A slab's free list head, `inuse` and frozen state, read in the
    /// cache's protocol (the 2.6.24 fields under the slab lock, or the
    /// 3.1+ `counters` word).
    ///
    /// # Safety
    /// `page` is a live slab of this cache; for 2.6.24 caches its lock is
    /// held or the slab is quiescent.
    pub(crate) unsafe fn slab_state(&self, page: *const Page) -> (*mut u8, u32, bool) {
        // SAFETY: forwarded.
        unsafe {
            let p = &*page;
            if self.lockless {
                let w = Counters(p.counters.load(Ordering::Acquire));
                (w.freelist(Page::address(page)), w.inuse(), w.frozen())
            } else {
                (p.freelist(), p.inuse(), p.test(PG_FROZEN))
            }
        }
    }

    /// A slab's `inuse`, read in the cache's protocol.
    pub(crate) fn slab_inuse(&self, page: *const Page) -> u32 {
        // SAFETY: callers pass listed slabs of this cache, under the list
        // lock and (2.6.24) a slab trylock.
        unsafe { self.slab_state(page).1 }
    }

    /// Checks the invariants in the module header for every slab on the
    /// node lists (while no thread is using the cache).
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        for n in &self.nodes[..self.pages.nr_nodes()] {
            n.for_each_listed(|page, on_partial| {
                // SAFETY: listed slabs are live; the list lock is held and
                // (2.6.24) the slab lock taken for the walk.
                unsafe {
                    let p = &*page;
                    assert!(p.test(PG_SLAB));
                    if !self.lockless && !p.trylock() {
                        return;
                    }
                    let (mut fp, inuse, frozen) = self.slab_state(page);
                    assert!(!frozen, "{}: frozen slab on a list", self.name);
                    let mut nr_free = 0;
                    while !fp.is_null() {
                        assert!(
                            self.valid_pointer(page, fp),
                            "{}: bad free pointer",
                            self.name
                        );
                        nr_free += 1;
                        assert!(
                            nr_free <= self.layout.objects,
                            "{}: free list loops",
                            self.name
                        );
                        fp = get_fp(fp, self.layout.offset);
                    }
                    if !self.lockless {
                        p.unlock();
                    }
                    assert_eq!(
                        inuse as usize + nr_free,
                        self.layout.objects,
                        "{}: inuse + free",
                        self.name
                    );
                    if on_partial {
                        assert!(nr_free > 0, "{}: full slab on the partial list", self.name);
                    } else {
                        assert_eq!(nr_free, 0, "{}: free objects on the full list", self.name);
                    }
                }
            });
        }
    }

    // ------------------------------------------------------------------
    // Debugging.

    /// `check_valid_pointer()`.
    ///
    /// # Safety
    /// `page` is a live slab of this cache.
    unsafe fn valid_pointer(&self, page: *const Page, obj: *const u8) -> bool {
        if obj.is_null() {
            return true;
        }
        let base = Page::address(page);
        let l = &self.layout;
        let off = obj.addr().wrapping_sub(base.addr());
        obj.addr() >= base.addr() && off < l.objects * l.size && off.is_multiple_of(l.size)
    }

    fn report(
        &self,
        page: *const Page,
        obj: Option<*const u8>,
        kind: ReportKind,
        detail: String,
        fix: String,
    ) {
        if kind.is_error() {
            self.nr_reports.fetch_add(1, Ordering::Relaxed);
        }
        let slab = if page.is_null() {
            0
        } else {
            Page::address(page).addr()
        };
        self.sink.report(SlabReport {
            cache: self.name.to_string(),
            kind,
            slab,
            object: obj.map(|o| o.addr()),
            detail,
            fix,
        });
    }

    /// `init_object()`: poison and red zone for a free (`active == false`)
    /// or allocated object.
    ///
    /// # Safety
    /// `obj` is an object of a slab of this cache owned by the caller.
    unsafe fn init_object(&self, obj: *mut u8, active: bool) {
        let l = &self.layout;
        // SAFETY: the ranges lie within the object's stride.
        unsafe {
            if l.flags.contains(SlabFlags::OBJECT_POISON) && !active {
                obj.write_bytes(POISON_FREE, l.objsize - 1);
                obj.add(l.objsize - 1).write(POISON_END);
            }
            if l.flags.contains(SlabFlags::RED_ZONE) {
                let red = if active { RED_ACTIVE } else { RED_INACTIVE };
                obj.add(l.objsize).write_bytes(red, l.inuse - l.objsize);
            }
        }
    }

    /// `init_tracking()`.
    ///
    /// # Safety
    /// As [`Self::init_object`].
    unsafe fn init_tracking(&self, obj: *mut u8) {
        if self.layout.flags.contains(SlabFlags::STORE_USER) {
            // SAFETY: the tracks lie within the stride.
            unsafe {
                obj.add(self.layout.track_offset())
                    .write_bytes(0, 2 * TRACK_SIZE)
            };
        }
    }

    /// `set_track()`: caller address, thread, process and the debug clock.
    ///
    /// # Safety
    /// As [`Self::init_object`].
    unsafe fn set_track(&self, obj: *mut u8, free: bool, caller: usize) {
        if !self.layout.flags.contains(SlabFlags::STORE_USER) {
            return;
        }
        let when = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut rec = [0u8; TRACK_SIZE];
        rec[0..8].copy_from_slice(&(caller as u64).to_le_bytes());
        rec[8..12].copy_from_slice(&(cpu::thread_tag() as u32).to_le_bytes());
        rec[12..16].copy_from_slice(&std::process::id().to_le_bytes());
        rec[16..24].copy_from_slice(&when.to_le_bytes());
        let at = self.layout.track_offset() + if free { TRACK_SIZE } else { 0 };
        // SAFETY: the track lies within the stride.
        unsafe { ptr::copy_nonoverlapping(rec.as_ptr(), obj.add(at), TRACK_SIZE) };
    }

    /// Reads a track record: (caller, thread, when).
    ///
    /// # Safety
    /// As [`Self::init_object`].
    unsafe fn track(&self, obj: *const u8, free: bool) -> (u64, u32, u64) {
        let at = self.layout.track_offset() + if free { TRACK_SIZE } else { 0 };
        let mut rec = [0u8; TRACK_SIZE];
        // SAFETY: the track lies within the stride.
        unsafe { ptr::copy_nonoverlapping(obj.add(at), rec.as_mut_ptr(), TRACK_SIZE) };
        let u64_at = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().expect("8 bytes"));
        let thread = u32::from_le_bytes(rec[8..12].try_into().expect("4 bytes"));
        (u64_at(0), thread, u64_at(16))
    }

    /// The owner text appended to reports on tracked caches.
    ///
    /// # Safety
    /// As [`Self::init_object`].
    unsafe fn owner(&self, obj: *const u8) -> String {
        if !self.layout.flags.contains(SlabFlags::STORE_USER) {
            return String::new();
        }
        // SAFETY: forwarded.
        let ((a, at, aw), (f, ft, fw)) = unsafe { (self.track(obj, false), self.track(obj, true)) };
        let mut s = String::new();
        if a != 0 {
            s += &format!("; allocated by {a:#x} thread {at} at tick {aw}");
        }
        if f != 0 {
            s += &format!("; freed by {f:#x} thread {ft} at tick {fw}");
        }
        s
    }

    /// `check_bytes_and_report()`: reports and restores a run of bytes
    /// that should all be `value`. Returns true if they were.
    ///
    /// # Safety
    /// `[start, start + len)` lies in the slab of `page`, owned (locked).
    #[allow(clippy::too_many_arguments)]
    unsafe fn check_bytes_and_report(
        &self,
        page: *const Page,
        obj: *const u8,
        kind: ReportKind,
        what: &str,
        start: *mut u8,
        value: u8,
        len: usize,
    ) -> bool {
        // SAFETY: forwarded.
        let Some((first, end)) = (unsafe { check_bytes(start, value, len) }) else {
            return true;
        };
        // SAFETY: first < len.
        let found = unsafe { start.add(first).read() };
        let from = start.addr() + first;
        let to = start.addr() + end - 1;
        // SAFETY: forwarded.
        let owner = unsafe { self.owner(obj) };
        self.report(
            page,
            Some(obj),
            kind,
            format!("{what} overwritten: {from:#x}-{to:#x}, first byte {found:#04x} instead of {value:#04x}{owner}"),
            format!("Restoring {from:#x}-{to:#x}={value:#04x}"),
        );
        // SAFETY: the faulty run lies within [start, start + len).
        unsafe { start.add(first).write_bytes(value, end - first) };
        false
    }

    /// `check_pad_bytes()`.
    ///
    /// # Safety
    /// As [`Self::check_bytes_and_report`] for the object.
    unsafe fn check_pad_bytes(&self, page: *const Page, obj: *mut u8) -> bool {
        let l = &self.layout;
        let off = l.pad_start();
        if off == l.size {
            return true;
        }
        // SAFETY: padding lies within the stride.
        unsafe {
            self.check_bytes_and_report(
                page,
                obj,
                ReportKind::PaddingOverwritten,
                "Object padding",
                obj.add(off),
                POISON_INUSE,
                l.size - off,
            )
        }
    }

    /// `slab_pad_check()`: the slab tail past the last object.
    ///
    /// # Safety
    /// `page` is a slab of this cache, locked or owned.
    unsafe fn slab_pad_check(&self, page: *const Page) -> bool {
        let l = &self.layout;
        if !l.flags.contains(SlabFlags::POISON) {
            return true;
        }
        let start = Page::address(page);
        let length = l.objects * l.size;
        let rem = order_bytes(l.order) - length;
        if rem == 0 {
            return true;
        }
        // SAFETY: the tail lies in the slab.
        unsafe {
            let tail = start.add(length);
            let Some((first, end)) = check_bytes(tail, POISON_INUSE, rem) else {
                return true;
            };
            let from = tail.addr() + first;
            self.report(
                page,
                None,
                ReportKind::PaddingOverwritten,
                format!(
                    "Padding overwritten. {from:#x}-{:#x}",
                    tail.addr() + end - 1
                ),
                format!("Restoring {from:#x}-{:#x}=0x5a", tail.addr() + end - 1),
            );
            tail.add(first).write_bytes(POISON_INUSE, end - first);
        }
        false
    }

    /// `check_object()`: red zone, poison, padding and free pointer of an
    /// object that is free (`active == false`) or allocated.
    ///
    /// # Safety
    /// `obj` is an object of `page`, a slab of this cache, locked or owned.
    unsafe fn check_object(&self, page: *const Page, obj: *mut u8, active: bool) -> bool {
        let l = &self.layout;
        // SAFETY: all ranges lie within the object's stride.
        unsafe {
            let end = obj.add(l.objsize);
            if l.flags.contains(SlabFlags::RED_ZONE) {
                let red = if active { RED_ACTIVE } else { RED_INACTIVE };
                if !self.check_bytes_and_report(
                    page,
                    obj,
                    ReportKind::RedzoneOverwritten,
                    "Redzone",
                    end,
                    red,
                    l.inuse - l.objsize,
                ) {
                    return false;
                }
            } else if l.flags.contains(SlabFlags::POISON) && l.objsize < l.inuse {
                self.check_bytes_and_report(
                    page,
                    obj,
                    ReportKind::PaddingOverwritten,
                    "Alignment padding",
                    end,
                    POISON_INUSE,
                    l.inuse - l.objsize,
                );
            }
            if l.flags.contains(SlabFlags::POISON) {
                if !active
                    && l.flags.contains(SlabFlags::OBJECT_POISON)
                    && (!self.check_bytes_and_report(
                        page,
                        obj,
                        ReportKind::PoisonOverwritten,
                        "Poison",
                        obj,
                        POISON_FREE,
                        l.objsize - 1,
                    ) || !self.check_bytes_and_report(
                        page,
                        obj,
                        ReportKind::PoisonOverwritten,
                        "Poison",
                        obj.add(l.objsize - 1),
                        POISON_END,
                        1,
                    ))
                {
                    return false;
                }
                self.check_pad_bytes(page, obj);
            }
            if l.offset == 0 && active {
                // The free pointer overlays the object: nothing to check.
                return true;
            }
            let fp = get_fp(obj, l.offset);
            if !self.valid_pointer(page, fp) {
                self.report(
                    page,
                    Some(obj),
                    ReportKind::FreepointerCorrupt,
                    format!("Freepointer corrupt: {:#x}", fp.addr()),
                    "free pointer zapped, rest of the free list lost".into(),
                );
                set_fp(obj, l.offset, ptr::null_mut());
                return false;
            }
        }
        true
    }

    /// `check_slab()`.
    ///
    /// # Safety
    /// `page` is a slab frame, locked.
    unsafe fn check_slab(&self, page: *const Page) -> bool {
        // SAFETY: locked.
        unsafe {
            let p = &*page;
            if !p.test(PG_SLAB) {
                self.report(
                    page,
                    None,
                    ReportKind::SlabCorrupt,
                    "Not a valid slab page".into(),
                    String::new(),
                );
                return false;
            }
            if p.inuse() as usize > self.layout.objects {
                self.report(
                    page,
                    None,
                    ReportKind::SlabCorrupt,
                    format!("inuse {} > max {}", p.inuse(), self.layout.objects),
                    String::new(),
                );
                return false;
            }
            self.slab_pad_check(page);
        }
        true
    }

    /// `on_freelist()`: is `search` on the slab's free list? Walks at most
    /// `objects` steps, truncates a corrupt chain and corrects `inuse`.
    ///
    /// # Safety
    /// `page` is a slab of this cache, locked.
    unsafe fn on_freelist(&self, page: *const Page, search: *const u8) -> bool {
        let l = &self.layout;
        // SAFETY: locked; pointers are checked before being followed.
        unsafe {
            let p = &*page;
            let mut nr = 0;
            let mut fp = p.freelist();
            let mut object: *mut u8 = ptr::null_mut();
            while !fp.is_null() && nr <= l.objects {
                if ptr::eq(fp, search) {
                    return true;
                }
                if !self.valid_pointer(page, fp) {
                    if !object.is_null() {
                        self.report(
                            page,
                            Some(object),
                            ReportKind::FreepointerCorrupt,
                            format!("Freechain corrupt: next {:#x}", fp.addr()),
                            "chain truncated".into(),
                        );
                        set_fp(object, l.offset, ptr::null_mut());
                    } else {
                        self.report(
                            page,
                            None,
                            ReportKind::FreepointerCorrupt,
                            format!("Freepointer corrupt: slab freelist {:#x}", fp.addr()),
                            "Freelist cleared".into(),
                        );
                        p.set_freelist(ptr::null_mut());
                        p.set_inuse(l.objects as u32);
                        return false;
                    }
                    break;
                }
                object = fp;
                fp = get_fp(object, l.offset);
                nr += 1;
            }
            let want = l.objects.saturating_sub(nr) as u32;
            if p.inuse() != want {
                self.report(
                    page,
                    None,
                    ReportKind::WrongObjectCount,
                    format!(
                        "Wrong object count. Counter is {} but counted were {want}",
                        p.inuse()
                    ),
                    "Object count adjusted".into(),
                );
                p.set_inuse(want);
            }
            search.is_null()
        }
    }

    /// `alloc_debug_processing()`.
    ///
    /// # Safety
    /// `page` is a frozen debug slab of this cache, locked; `obj` is the
    /// head of its free list.
    unsafe fn alloc_debug_processing(
        &self,
        page: *const Page,
        obj: *mut u8,
        caller: usize,
    ) -> DebugVerdict {
        // SAFETY: locked slab of this cache.
        unsafe {
            let ok = self.check_slab(page)
                && {
                    let on = self.on_freelist(page, obj);
                    if !on {
                        self.report(
                            page,
                            Some(obj),
                            ReportKind::FreepointerCorrupt,
                            "Object already allocated (free list corrupt)".into(),
                            String::new(),
                        );
                    }
                    on
                }
                && self.check_object(page, obj, false);
            if !ok {
                let p = &*page;
                self.report(
                    page,
                    None,
                    ReportKind::SlabCorrupt,
                    "allocation refused on a corrupt slab".into(),
                    "Marking all objects used".into(),
                );
                p.set_inuse(self.layout.objects as u32);
                p.set_freelist(ptr::null_mut());
                return DebugVerdict::Refused;
            }
            self.set_track(obj, false, caller);
            if self.layout.flags.contains(SlabFlags::TRACE) {
                self.report(
                    page,
                    Some(obj),
                    ReportKind::Trace,
                    "alloc".into(),
                    String::new(),
                );
            }
            self.init_object(obj, true);
        }
        DebugVerdict::Ok
    }

    /// `free_debug_processing()`.
    ///
    /// # Safety
    /// `page` is the head frame holding `obj` and is locked.
    unsafe fn free_debug_processing(
        &self,
        page: *const Page,
        obj: *mut u8,
        caller: usize,
    ) -> DebugVerdict {
        // SAFETY: locked slab; obj is checked before being trusted.
        unsafe {
            let p = &*page;
            let refuse = |this: &Self, kind: ReportKind, detail: String| {
                this.report(
                    page,
                    Some(obj),
                    kind,
                    detail,
                    format!("Object at {:#x} not freed", obj.addr()),
                );
                DebugVerdict::Refused
            };
            if !p.test(PG_SLAB) || !ptr::eq(p.slab(), (self as *const CacheCore).cast()) {
                return refuse(
                    self,
                    ReportKind::InvalidFree,
                    "page slab pointer corrupt or outside of slab".into(),
                );
            }
            if !self.check_slab(page) {
                return refuse(
                    self,
                    ReportKind::SlabCorrupt,
                    "free into a corrupt slab".into(),
                );
            }
            if !self.valid_pointer(page, obj) {
                return refuse(
                    self,
                    ReportKind::InvalidFree,
                    format!("Invalid object pointer {:#x}", obj.addr()),
                );
            }
            if self.on_freelist(page, obj) {
                let owner = self.owner(obj);
                return refuse(
                    self,
                    ReportKind::DoubleFree,
                    format!("Object already free{owner}"),
                );
            }
            if !self.check_object(page, obj, true) {
                self.report(
                    page,
                    Some(obj),
                    ReportKind::SlabCorrupt,
                    "free of a corrupted object".into(),
                    format!("Object at {:#x} not freed", obj.addr()),
                );
                return DebugVerdict::Refused;
            }
            if p.test(PG_FULL) {
                self.nodes[Page::node(page)].remove_full(page);
            }
            self.set_track(obj, true, caller);
            if self.layout.flags.contains(SlabFlags::TRACE) {
                self.report(
                    page,
                    Some(obj),
                    ReportKind::Trace,
                    "free".into(),
                    String::new(),
                );
            }
            self.init_object(obj, false);
        }
        DebugVerdict::Ok
    }

    /// `validate_slab_cache()`: checks every slab on the node lists and
    /// every object in them; returns the number of findings reported.
    /// Frozen slabs are skipped: their owners flush them first.
    pub fn validate(&self) -> usize {
        let before = self.nr_reports.load(Ordering::Relaxed);
        for n in &self.nodes[..self.pages.nr_nodes()] {
            n.for_each_listed(|page, _| {
                // SAFETY: listed slabs are live; their lock is taken.
                unsafe {
                    let p = &*page;
                    if self.lockless {
                        self.validate_slab_lockless(page);
                    } else if p.trylock() {
                        self.validate_slab(page);
                        p.unlock();
                    }
                }
            });
        }
        self.nr_reports.load(Ordering::Relaxed) - before
    }

    /// The checks of `validate_slab()` a 3.1+ slab allows without a lock
    /// that excludes its compare-and-swaps: free pointers and the object
    /// count, reported but not repaired (the kernel validates only debug
    /// caches, which never run lockless).
    ///
    /// # Safety
    /// `page` is a listed slab of this cache, list lock held, and no
    /// thread is freeing into it.
    unsafe fn validate_slab_lockless(&self, page: *const Page) {
        // SAFETY: forwarded; pointers are checked before being followed.
        unsafe {
            let (mut fp, inuse, _) = self.slab_state(page);
            let mut nr = 0;
            let mut prev: Option<*const u8> = None;
            while !fp.is_null() && nr <= self.layout.objects {
                if !self.valid_pointer(page, fp) {
                    self.report(
                        page,
                        prev,
                        ReportKind::FreepointerCorrupt,
                        format!("Freechain corrupt: next {:#x}", fp.addr()),
                        "not repaired: the slab is lockless".into(),
                    );
                    return;
                }
                nr += 1;
                prev = Some(fp);
                fp = get_fp(fp, self.layout.offset);
            }
            if inuse as usize + nr != self.layout.objects {
                self.report(
                    page,
                    None,
                    ReportKind::WrongObjectCount,
                    format!(
                        "Wrong object count. Counter is {inuse} but counted were {}",
                        self.layout.objects.saturating_sub(nr)
                    ),
                    "not repaired: the slab is lockless".into(),
                );
            }
        }
    }

    /// `validate_slab()`.
    ///
    /// # Safety
    /// `page` is a slab of this cache, locked.
    unsafe fn validate_slab(&self, page: *const Page) {
        let l = &self.layout;
        // SAFETY: locked.
        unsafe {
            if !self.check_slab(page) || !self.on_freelist(page, ptr::null()) {
                return;
            }
            if !l.flags.intersects(SlabFlags::DEBUG_SLAB) {
                return;
            }
            let base = Page::address(page);
            let mut free = vec![false; l.objects];
            let mut fp = (*page).freelist();
            while !fp.is_null() {
                free[(fp.addr() - base.addr()) / l.size] = true;
                fp = get_fp(fp, l.offset);
            }
            for (i, is_free) in free.into_iter().enumerate() {
                self.check_object(page, base.add(i * l.size), !is_free);
            }
        }
    }
}

/// The cache that owns `obj` and its slab's head frame, found through the
/// memory map (`virt_to_head_page(obj)->slab`); `None` for objects not in
/// a slab (compound or large kmalloc).
///
/// # Safety
/// `obj` lies in memory handed out by a klab page allocator that is live.
#[inline(always)]
pub(crate) unsafe fn obj_to_cache(obj: *const u8) -> Option<(*const CacheCore, *const Page)> {
    // SAFETY: forwarded; a slab frame's `slab` points to its live cache.
    unsafe {
        let page = Page::head(virt_to_page(obj)?);
        if !(*page).test(PG_SLAB) {
            return None;
        }
        Some(((*page).slab().cast::<CacheCore>(), page))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_era;
#[cfg(test)]
mod tests_interleave;
