//! The SLUB cache registry: `kmem_cache_create()`, cache merging and
//! aliases, `kmem_cache_destroy()`, `slub_debug=` and kmalloc. Mirrors
//! mm/slub.c (2.6.24) `kmem_cache_create()`, `find_mergeable()`,
//! `slab_unmergeable()`, `kmem_cache_flags()`, `setup_slub_debug()`,
//! `kmem_cache_destroy()`, `kmem_cache_init()` (the kmalloc caches),
//! `__kmalloc()`, `kfree()` and `ksize()`.
//!
//! # Merging
//!
//! "SLUB ... can combine slabs with similar object sizes and parameters"
//! (seed 003). A request merges into an existing cache `s`, newest first
//! (the kernel adds caches at the head of `slab_caches`), when:
//!
//! * merging is on (`slub_nomerge` not given), the request has no
//!   constructor and none of `SLUB_NEVER_MERGE` (red zone, poison, store
//!   user, trace, destroy-by-RCU) after `slub_debug` flags are folded in;
//! * `s` itself is mergeable by the same tests and was not made unmergeable
//!   (refcount < 0 in the kernel, [`Entry::never_merge`] here);
//! * with `size' = ALIGN(ALIGN(size, word), align')` and
//!   `align' = calculate_alignment(flags, align, size)`:
//!   `size' <= s.size`, `s.size % align' == 0`, `s.size - size' < word`,
//!   and the two agree on `SLUB_MERGE_SAME` (debug-free, reclaim-account,
//!   DMA).
//!
//! The merged cache's `refcount` grows, its `objsize` becomes the larger of
//! the two, and the request's name becomes an alias (a sysfs symlink in
//! the kernel). `kmem_cache_destroy()` of any alias drops one reference;
//! the cache goes at zero.
//!
//! # Locking
//!
//! The registry mutex (`slub_lock`) guards the cache list, refcounts and
//! aliases. It is never held while allocating objects.

use std::borrow::Cow;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::debug::{ReportSink, StderrSink};
use crate::kmalloc::{FINE_CLASSES, INDEX_LEN, KERNEL_CLASSES, class_for, class_name, size_index};
use crate::layout::{
    CacheLayout, LayoutError, SlabFlags, SlubParams, WORD, calculate_alignment, calculate_sizes,
};
use crate::page::Page;
use crate::page_alloc::{MAX_ORDER, PageAllocator, get_order, make_compound};
use crate::page_source::{DefaultPages, PageSource};
use crate::slub::{CacheCore, CacheStats, CpuSlab, SlubEra, obj_to_cache};
use crate::{Ctor, ObjectAllocator, ObjectCache, Shared};

/// Which kmalloc size classes to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KmallocClasses {
    /// 2.6.24's powers of two plus 96 and 192 ([`KERNEL_CLASSES`]).
    #[default]
    Kernel,
    /// Four per doubling ([`FINE_CLASSES`]).
    Fine,
}

impl KmallocClasses {
    /// The class sizes.
    pub fn sizes(self) -> &'static [usize] {
        match self {
            KmallocClasses::Kernel => KERNEL_CLASSES,
            KmallocClasses::Fine => FINE_CLASSES,
        }
    }
}

/// The boot options of a SLUB instance.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SlubConfig {
    /// `slub_min_order=`, `slub_max_order=`, `slub_min_objects=`.
    pub params: SlubParams,
    /// `slub_nomerge`.
    pub nomerge: bool,
    /// Debug flags from `slub_debug=`.
    pub debug: SlabFlags,
    /// The cache-name prefix `slub_debug=` applies to (all when `None`).
    pub debug_slabs: Option<String>,
    /// The kmalloc classes.
    pub kmalloc: KmallocClasses,
    /// Whose slow paths the caches run (2.6.24 by default: the page's).
    pub era: SlubEra,
}

/// A `slub_debug=` value that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("slub_debug: unknown option '{letter}' at offset {offset} (expected F, Z, P, U or T)")]
pub struct SlubDebugError {
    /// The letter.
    pub letter: char,
    /// Its byte offset in the value.
    pub offset: usize,
}

impl SlubConfig {
    /// Applies a `slub_debug` boot option (`setup_slub_debug()`): `None`
    /// for bare `slub_debug` (defaults `FZPU` for all caches), `",name"`
    /// for full debugging of caches starting with `name`, `"-"` for off,
    /// `"FZ,name"` for chosen letters on chosen caches. Unknown letters
    /// are an error here (the kernel logs and skips them).
    pub fn slub_debug(&mut self, value: Option<&str>) -> Result<(), SlubDebugError> {
        self.debug = SlabFlags::DEBUG_DEFAULT;
        self.debug_slabs = None;
        let Some(v) = value.filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        let (letters, slabs) = match v.split_once(',') {
            Some((l, s)) => (l, Some(s)),
            None => (v, None),
        };
        if letters == "-" {
            self.debug = SlabFlags::NONE;
            return Ok(());
        }
        if !letters.is_empty() {
            self.debug = SlabFlags::NONE;
            for (offset, c) in letters.char_indices() {
                self.debug |= SlabFlags::from_debug_letters(c.encode_utf8(&mut [0; 4]))
                    .map_err(|letter| SlubDebugError { letter, offset })?;
            }
        }
        self.debug_slabs = slabs.map(str::to_owned);
        Ok(())
    }

    /// `kmem_cache_flags()`: the request's flags with the debug flags
    /// folded in if the name matches.
    pub fn cache_flags(&self, name: &str, flags: SlabFlags) -> SlabFlags {
        match &self.debug_slabs {
            Some(prefix) if !name.starts_with(prefix.as_str()) => flags,
            _ => flags | self.debug,
        }
    }
}

/// Why `kmem_cache_create()` failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// The size or alignment cannot be laid out.
    #[error("cache {name}: {source}")]
    Layout {
        /// The cache name.
        name: String,
        /// Why.
        source: LayoutError,
    },
}

/// Why `kmem_cache_destroy()` did not tear the cache down cleanly.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DestroyError {
    /// Objects were still allocated: their slabs are leaked (reported to
    /// the sink as well).
    #[error("cache {name}: {slabs} slabs still hold objects")]
    ObjectsRemaining {
        /// The cache.
        name: String,
        /// Slabs that could not be freed.
        slabs: usize,
    },
    /// A CPU handle ([`CpuSlab`]) on the cache is still alive.
    #[error("cache {name}: still in use by {handles} other handles")]
    InUse {
        /// The cache.
        name: String,
        /// Other references to the cache.
        handles: usize,
    },
}

/// One cache on the registry's list.
struct Entry {
    core: Arc<CacheCore>,
    /// `refcount`: creations merged into this cache, not yet destroyed.
    refcount: usize,
    /// `refcount < 0` in the kernel: bootstrap caches that must not merge.
    never_merge: bool,
    /// Names that alias this cache (not its own).
    aliases: Vec<String>,
}

/// A line of `slabinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheInfo {
    /// The cache's own name.
    pub name: String,
    /// Names merged into it.
    pub aliases: Vec<String>,
    /// Object size (largest merged request).
    pub objsize: usize,
    /// Stride.
    pub size: usize,
    /// Objects per slab.
    pub objects: usize,
    /// Slab order.
    pub order: u32,
    /// Flags.
    pub flags: SlabFlags,
    /// Slab counts.
    pub stats: CacheStats,
}

struct SlubShared {
    pages: Arc<PageAllocator>,
    sink: Arc<dyn ReportSink>,
    config: SlubConfig,
    /// `slab_caches` + `slub_lock`: creation order, newest last.
    registry: Mutex<Vec<Entry>>,
    kmalloc_sizes: &'static [usize],
    kmalloc_index: [u8; INDEX_LEN],
    kmalloc: Vec<Arc<CacheCore>>,
}

/// A SLUB instance: its page allocator, its caches and its kmalloc.
#[derive(Clone)]
pub struct Slub {
    shared: Arc<SlubShared>,
}

/// A handle on a cache, under the name it was created with (which may be
/// an alias of a merged cache).
#[derive(Clone)]
pub struct KmemCache {
    core: Arc<CacheCore>,
    name: Arc<str>,
}

impl Slub {
    /// SLUB with the 2.6.24 defaults over the host's pages (the heap under
    /// Miri), printing findings to stderr.
    pub fn with_defaults() -> Slub {
        Slub::new(
            Arc::new(DefaultPages::default()),
            SlubConfig::default(),
            Arc::new(StderrSink),
        )
    }

    /// SLUB over `source`, configured by `config`, findings to `sink`.
    /// Creates the kmalloc caches first, as `kmem_cache_init()` does, so
    /// later caches can merge into them.
    pub fn new(source: Arc<dyn PageSource>, config: SlubConfig, sink: Arc<dyn ReportSink>) -> Slub {
        let pages = Arc::new(PageAllocator::new(source));
        let sizes = config.kmalloc.sizes();
        let mut shared = SlubShared {
            pages,
            sink,
            config,
            registry: Mutex::new(Vec::new()),
            kmalloc_sizes: sizes,
            kmalloc_index: size_index(sizes),
            kmalloc: Vec::new(),
        };
        for (i, &size) in sizes.iter().enumerate() {
            let core = shared
                .create_core(
                    Cow::Owned(class_name(size)),
                    size,
                    8,
                    SlabFlags::NONE,
                    None,
                    i as u32,
                )
                .expect("kmalloc classes fit in slabs");
            let core = Arc::new(core);
            shared.lock().push(Entry {
                core: core.clone(),
                refcount: 1,
                never_merge: false,
                aliases: Vec::new(),
            });
            shared.kmalloc.push(core);
        }
        Slub {
            shared: Arc::new(shared),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SlubConfig {
        &self.shared.config
    }

    /// The page allocator.
    pub fn pages(&self) -> &PageAllocator {
        &self.shared.pages
    }

    /// `kmem_cache_create()`: a cache for objects of `size` bytes at
    /// `align`, or an alias of an existing cache it merges with.
    pub fn kmem_cache_create(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<KmemCache, CreateError> {
        let sh = &self.shared;
        let flags = sh.config.cache_flags(name, flags);
        let mut reg = sh.lock();
        if let Some(e) = sh.find_mergeable(&reg, size, align, flags, ctor) {
            let e = &mut reg[e];
            e.refcount += 1;
            e.core
                .objsize
                .fetch_max(size, crate::primitive::Ordering::Relaxed);
            e.aliases.push(name.to_owned());
            return Ok(KmemCache {
                core: e.core.clone(),
                name: name.into(),
            });
        }
        let core = Arc::new(sh.create_core(
            Cow::Owned(name.to_owned()),
            size,
            align,
            flags,
            ctor,
            u32::MAX,
        )?);
        reg.push(Entry {
            core: core.clone(),
            refcount: 1,
            never_merge: false,
            aliases: Vec::new(),
        });
        Ok(KmemCache {
            core,
            name: name.into(),
        })
    }

    /// A cache that never merges and that nothing merges into (the
    /// kernel's bootstrap caches, `refcount = -1`).
    pub fn kmem_cache_create_unmergeable(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<KmemCache, CreateError> {
        let sh = &self.shared;
        let flags = sh.config.cache_flags(name, flags);
        let core = Arc::new(sh.create_core(
            Cow::Owned(name.to_owned()),
            size,
            align,
            flags,
            ctor,
            u32::MAX,
        )?);
        sh.lock().push(Entry {
            core: core.clone(),
            refcount: 1,
            never_merge: true,
            aliases: Vec::new(),
        });
        Ok(KmemCache {
            core,
            name: name.into(),
        })
    }

    /// `kmem_cache_destroy()`: drops one reference; at the last, frees the
    /// cache's empty slabs and reports objects still allocated.
    pub fn kmem_cache_destroy(&self, cache: KmemCache) -> Result<(), DestroyError> {
        let mut reg = self.shared.lock();
        let Some(i) = reg.iter().position(|e| Arc::ptr_eq(&e.core, &cache.core)) else {
            return Ok(());
        };
        let e = &mut reg[i];
        e.refcount -= 1;
        if let Some(a) = e.aliases.iter().position(|a| **a == *cache.name) {
            e.aliases.remove(a);
        }
        if e.refcount > 0 {
            return Ok(());
        }
        let e = reg.remove(i);
        drop(reg);
        let name = e.core.name.to_string();
        drop(e);
        let core = cache.core;
        let handles = Arc::strong_count(&core) - 1;
        if handles > 0 {
            return Err(DestroyError::InUse { name, handles });
        }
        match core.close() {
            0 => Ok(()),
            slabs => Err(DestroyError::ObjectsRemaining { name, slabs }),
        }
    }

    /// Distinct caches on the list (what `/proc/slabinfo` shows under SLUB).
    pub fn nr_caches(&self) -> usize {
        self.shared.lock().len()
    }

    /// Names merged into other caches.
    pub fn nr_aliases(&self) -> usize {
        self.shared.lock().iter().map(|e| e.aliases.len()).sum()
    }

    /// Every cache with its aliases, oldest first (`slabinfo -a`).
    pub fn slabinfo(&self) -> Vec<CacheInfo> {
        self.shared
            .lock()
            .iter()
            .map(|e| CacheInfo {
                name: e.core.name.to_string(),
                aliases: e.aliases.clone(),
                objsize: e.core.object_size(),
                size: e.core.layout.size,
                objects: e.core.layout.objects,
                order: e.core.layout.order,
                flags: e.core.layout.flags,
                stats: e.core.stats(),
            })
            .collect()
    }

    /// Per-CPU handles on every kmalloc cache, for [`Self::kmalloc`].
    pub fn kmalloc_cpu(&self) -> KmallocCpu {
        KmallocCpu {
            cpus: self
                .shared
                .kmalloc
                .iter()
                .map(|c| CpuSlab::new(c.clone(), 0))
                .collect(),
        }
    }

    /// `__kmalloc()`: an object of the smallest class holding `size`;
    /// larger requests get pages (compound pages up to `2^MAX_ORDER`,
    /// beyond that a region straight from the page source). Size 0 gets
    /// `None` (the kernel's `ZERO_SIZE_PTR`).
    pub fn kmalloc(&self, cpu: &mut KmallocCpu, size: usize) -> Option<NonNull<u8>> {
        if size == 0 {
            return None;
        }
        let sh = &self.shared;
        match class_for(sh.kmalloc_sizes, &sh.kmalloc_index, size, 8) {
            Some(i) => cpu.cpus[i].alloc(),
            None => large_alloc(&sh.pages, size, 8, 0),
        }
    }

    /// `kfree()`.
    ///
    /// # Safety
    /// `p` came from [`Self::kmalloc`] on this instance, freed once.
    pub unsafe fn kfree(&self, cpu: &mut KmallocCpu, p: NonNull<u8>) {
        // SAFETY: forwarded.
        unsafe {
            match obj_to_cache(p.as_ptr()) {
                Some((core, _)) if (*core).kmalloc_index != u32::MAX => {
                    cpu.cpus[(*core).kmalloc_index as usize].free(p)
                }
                Some((core, page)) => (*core).slab_free_slow(None, page, p.as_ptr(), 0),
                None => large_free(&self.shared.pages, p.as_ptr()),
            }
        }
    }

    /// `ksize()`: the usable bytes of a kmalloc'd object.
    ///
    /// # Safety
    /// `p` is a live allocation from [`Self::kmalloc`].
    pub unsafe fn ksize(&self, p: NonNull<u8>) -> usize {
        // SAFETY: forwarded.
        unsafe { ksize(p.as_ptr()) }
    }

    /// Checks every cache's invariants and the page allocator's.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        for e in self.shared.lock().iter() {
            e.core.assert_invariants();
        }
        self.shared.pages.assert_invariants();
    }
}

impl SlubShared {
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn create_core(
        &self,
        name: Cow<'static, str>,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
        kmalloc_index: u32,
    ) -> Result<CacheCore, CreateError> {
        let layout = calculate_sizes(
            size,
            align,
            flags,
            ctor.is_some(),
            self.config.params,
            MAX_ORDER,
        )
        .map_err(|source| CreateError::Layout {
            name: name.to_string(),
            source,
        })?;
        Ok(CacheCore::new(
            name,
            layout,
            ctor,
            self.config.era,
            Shared::Arc(self.pages.clone()),
            Shared::Arc(self.sink.clone()),
            kmalloc_index,
        ))
    }

    /// `slab_unmergeable()`.
    fn unmergeable(&self, e: &Entry) -> bool {
        self.config.nomerge
            || e.never_merge
            || e.core.layout.flags.intersects(SlabFlags::NEVER_MERGE)
            || e.core.ctor.is_some()
    }

    /// `find_mergeable()`: the index of the cache to merge into.
    fn find_mergeable(
        &self,
        reg: &[Entry],
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Option<usize> {
        if self.config.nomerge || flags.intersects(SlabFlags::NEVER_MERGE) || ctor.is_some() {
            return None;
        }
        let size = size.div_ceil(WORD) * WORD;
        let align = calculate_alignment(flags, align, size);
        let size = size.div_ceil(align) * align;
        reg.iter().enumerate().rev().find_map(|(i, e)| {
            let s: &CacheLayout = &e.core.layout;
            let ok = !self.unmergeable(e)
                && size <= s.size
                && (flags & SlabFlags::MERGE_SAME) == (s.flags & SlabFlags::MERGE_SAME)
                && s.size & !(align - 1) == s.size
                && s.size - size < WORD;
            ok.then_some(i)
        })
    }
}

impl KmemCache {
    /// A CPU handle (an active slab and lockless freelist) on node 0.
    pub fn cpu(&self) -> CpuSlab {
        CpuSlab::new(self.core.clone(), 0)
    }

    /// A CPU handle for a CPU of `node`.
    pub fn cpu_on(&self, node: usize) -> CpuSlab {
        CpuSlab::new(self.core.clone(), node)
    }

    /// Frees an object without a CPU handle (the slow path), as a thread
    /// that did not allocate it would.
    ///
    /// # Safety
    /// `obj` is an allocated object of this cache, freed once.
    #[track_caller]
    pub unsafe fn free(&self, obj: NonNull<u8>) {
        // SAFETY: forwarded.
        unsafe { crate::slub::free_remote(obj) }
    }

    /// The name this handle was created with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the cache it resolves to (differs for an alias).
    pub fn cache_name(&self) -> &str {
        self.core.name()
    }

    /// True if this handle is an alias of a merged cache.
    pub fn is_alias(&self) -> bool {
        *self.name != *self.core.name()
    }

    /// True if both handles resolve to the same cache.
    pub fn same_cache(&self, other: &KmemCache) -> bool {
        Arc::ptr_eq(&self.core, &other.core)
    }

    /// The layout.
    pub fn layout(&self) -> &CacheLayout {
        &self.core.layout
    }

    /// `kmem_cache_size()`.
    pub fn object_size(&self) -> usize {
        self.core.object_size()
    }

    /// Slab counts.
    pub fn stats(&self) -> CacheStats {
        self.core.stats()
    }

    /// Slabs on node `node` (`nr_slabs` of its `kmem_cache_node`; frozen
    /// CPU slabs included).
    pub fn node_slabs(&self, node: usize) -> usize {
        self.core.node_slabs(node)
    }

    /// `kmem_cache_shrink()`; returns the slabs freed.
    pub fn shrink(&self) -> usize {
        self.core.shrink()
    }

    /// `validate_slab_cache()`; returns the findings reported.
    pub fn validate(&self) -> usize {
        self.core.validate()
    }

    /// Checks the cache's invariants.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        self.core.assert_invariants();
    }
}

/// Per-CPU handles on every kmalloc cache of a [`Slub`].
pub struct KmallocCpu {
    cpus: Vec<CpuSlab>,
}

/// Allocates `size` bytes as whole pages: a compound page from the page
/// allocator, or a region straight from the page source.
pub(crate) fn large_alloc(
    pages: &PageAllocator,
    size: usize,
    align: usize,
    node: usize,
) -> Option<NonNull<u8>> {
    let order = get_order(size.max(align));
    if order <= MAX_ORDER {
        let page = pages.alloc_pages(order, node)?;
        // SAFETY: a fresh block of 2^order frames, ours.
        unsafe {
            make_compound(page, order);
            (*page).set(crate::page::PG_COMPOUND);
            (*page).set_offset(order);
        }
        return NonNull::new(Page::address(page));
    }
    NonNull::new(pages.alloc_large(size, align, node)?)
}

/// Frees what [`large_alloc`] returned.
///
/// # Safety
/// `p` came from `large_alloc` on `pages`, freed once.
pub(crate) unsafe fn large_free(pages: &PageAllocator, p: *mut u8) {
    // SAFETY: forwarded; the memory map tells compound pages from regions.
    unsafe {
        match crate::page::virt_to_page(p) {
            Some(page) => {
                let page = Page::head(page);
                let order = (*page).offset();
                pages.free_pages(page, order);
            }
            None => pages.free_large(p),
        }
    }
}

/// `ksize()` for any allocation of a klab kmalloc.
///
/// # Safety
/// `p` is a live allocation of a klab kmalloc.
pub(crate) unsafe fn ksize(p: *const u8) -> usize {
    // SAFETY: forwarded.
    unsafe {
        match crate::page::virt_to_page(p) {
            Some(page) => {
                let page = Page::head(page);
                if (*page).test(crate::page::PG_SLAB) {
                    (*(*page).slab().cast::<CacheCore>()).ksize()
                } else {
                    crate::page_alloc::order_bytes((*page).offset())
                }
            }
            None => PageAllocator::large_size(p),
        }
    }
}

impl ObjectAllocator for Slub {
    type Cache = KmemCache;

    fn name(&self) -> &'static str {
        "SLUB"
    }

    fn create_cache(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<KmemCache, CreateError> {
        self.kmem_cache_create(name, size, align, flags, ctor)
    }

    fn pages_bytes(&self) -> usize {
        let s = self.shared.pages.stats();
        s.sections * crate::page::USABLE_PAGES * crate::page::PAGE_SIZE
            - s.free_pages * crate::page::PAGE_SIZE
    }
}

impl ObjectCache for KmemCache {
    type Cpu = CpuSlab;

    fn cpu(&self) -> CpuSlab {
        KmemCache::cpu(self)
    }

    #[inline]
    fn alloc(&self, cpu: &mut CpuSlab) -> Option<NonNull<u8>> {
        cpu.alloc()
    }

    #[inline]
    unsafe fn free(&self, cpu: &mut CpuSlab, obj: NonNull<u8>) {
        // SAFETY: forwarded.
        unsafe { cpu.free(obj) }
    }

    fn object_size(&self) -> usize {
        KmemCache::object_size(self)
    }
}
