//! SLAB, the allocator SLUB replaced: mm/slab.c as of 2.6.22-2.6.23 (seed
//! 003, "SLUB against SLAB"), over the same [`PageSource`] and page
//! allocator as SLUB and SLOB.
//!
//! * [`geometry`]: `kmem_cache_create()`'s sizing: alignment,
//!   `calculate_slab_order()`, `cache_estimate()` (objects per slab with
//!   on- and off-slab management), colours, and `enable_cpucache()`'s
//!   array tunables.
//! * [`core`]: one cache ([`SlabCore`]): slab descriptors and their
//!   `kmem_bufctl_t` arrays, per-node `slabs_full`/`slabs_partial`/
//!   `slabs_free`, shared and alien arrays, `cache_alloc_refill()`,
//!   `cache_flusharray()`, `free_block()`, `cache_reap()`.
//! * [`Slab`] (here): a registry for the model and for experiments, a
//!   machine of `nr_cpus` CPUs over the page source's nodes, each cache
//!   with one [`ArrayCache`] per CPU, and the general (`size-N`) caches
//!   that hold off-slab descriptors and serve `kmalloc`.
//! * [`global`]: [`SlabAlloc`], SLAB as a real `GlobalAlloc` and behind
//!   the preload library's `malloc` (`KLAB_SLAB=slab`): a thread is a CPU
//!   with its own arrays, as SLUB's global allocator does it.

pub mod core;
pub mod geometry;
pub mod global;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

pub use self::core::{ArrayCache, NodeCounts, ReapResult, SlabCore, SlabStats, transfer_objects};
use self::core::{QueueStore, SlabpCache};
pub use self::geometry::{SlabGeometry, Tunables};
pub use self::global::SlabAlloc;
use crate::cache::CreateError;
use crate::layout::{LayoutError, SlabFlags};
use crate::page_alloc::{MAX_NUMNODES, PageAllocator};
use crate::page_source::PageSource;
use crate::{Ctor, ObjectAllocator, ObjectCache, Shared};

/// 2.6.23's general caches on x86-64 (`malloc_sizes[]` of
/// include/linux/kmalloc_sizes.h: no `size-96` with 64-byte cache lines),
/// up to 128 KiB.
pub const GENERAL_SIZES: &[usize] = &[
    32, 64, 128, 192, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131_072,
];

/// The machine a [`Slab`] serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlabConfig {
    /// CPUs (each with an array per cache).
    pub nr_cpus: usize,
}

/// SLAB for the model and experiments: caches over one page allocator
/// for a machine of [`SlabConfig::nr_cpus`] CPUs, spread in blocks over
/// the page source's nodes (CPU `c` on node `c / ceil(cpus / nodes)`).
#[derive(Clone)]
pub struct Slab {
    inner: Arc<SlabInner>,
}

struct SlabInner {
    pages: Arc<PageAllocator>,
    nr_cpus: usize,
    cpu_node: Vec<usize>,
    cpus_on_node: Vec<usize>,
    general: Vec<SlabCache>,
}

/// A SLAB cache of a [`Slab`]: its [`SlabCore`] and one [`ArrayCache`]
/// per CPU (`cachep->array[NR_CPUS]`).
#[derive(Clone)]
pub struct SlabCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    core: Arc<SlabCore>,
    cpus: Box<[Mutex<ArrayCache>]>,
    cpu_node: Vec<usize>,
    next_cpu: std::sync::atomic::AtomicUsize,
}

impl Drop for CacheInner {
    fn drop(&mut self) {
        for (c, m) in self.cpus.iter_mut().enumerate() {
            let ac = std::mem::replace(
                m.get_mut().unwrap_or_else(|e| e.into_inner()),
                ArrayCache::EMPTY,
            );
            self.core.free_cpu_array(ac, self.cpu_node[c]);
        }
    }
}

/// Bytes held by SLAB's queues, counted from the arrays allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueMemory {
    /// Per-CPU arrays (header plus entries).
    pub per_cpu: usize,
    /// Shared arrays, one per node.
    pub shared: usize,
    /// Alien arrays, one per node and other node.
    pub alien: usize,
    /// Objects sitting in all these arrays.
    pub objects_queued: usize,
}

impl QueueMemory {
    /// All queue bytes.
    pub fn total(&self) -> usize {
        self.per_cpu + self.shared + self.alien
    }
}

impl Slab {
    /// SLAB over `source` for `config.nr_cpus` CPUs; makes the general
    /// caches, smallest first, as `kmem_cache_init()` does (an off-slab
    /// general cache takes its descriptors from a smaller one).
    ///
    /// # Panics
    /// If `nr_cpus` is 0.
    pub fn new(source: Arc<dyn PageSource>, config: SlabConfig) -> Slab {
        assert!(config.nr_cpus > 0, "a machine needs a CPU");
        let pages = Arc::new(PageAllocator::new(source));
        let nodes = pages.nr_nodes().min(MAX_NUMNODES);
        let per = config.nr_cpus.div_ceil(nodes);
        let cpu_node: Vec<usize> = (0..config.nr_cpus).map(|c| c / per).collect();
        let mut cpus_on_node = vec![0; nodes];
        for &n in &cpu_node {
            cpus_on_node[n] += 1;
        }
        let mut inner = SlabInner {
            pages,
            nr_cpus: config.nr_cpus,
            cpu_node,
            cpus_on_node,
            general: Vec::new(),
        };
        for &size in GENERAL_SIZES {
            let c = inner
                .create(
                    &format!("size-{size}"),
                    size,
                    0,
                    SlabFlags::HWCACHE_ALIGN,
                    None,
                )
                .expect("general caches fit");
            inner.general.push(c);
        }
        Slab {
            inner: Arc::new(inner),
        }
    }

    /// CPUs of the machine.
    pub fn nr_cpus(&self) -> usize {
        self.inner.nr_cpus
    }

    /// Nodes of the machine.
    pub fn nr_nodes(&self) -> usize {
        self.inner.cpus_on_node.len()
    }

    /// The node of CPU `cpu`.
    pub fn cpu_node(&self, cpu: usize) -> usize {
        self.inner.cpu_node[cpu]
    }

    /// The page allocator.
    pub fn pages(&self) -> &PageAllocator {
        &self.inner.pages
    }

    /// The general caches (`size-32` … `size-131072`).
    pub fn general_caches(&self) -> &[SlabCache] {
        &self.inner.general
    }

    /// `kmalloc()` on CPU `cpu`: the smallest general cache that holds
    /// `size` bytes; `None` above 128 KiB or when out of memory.
    pub fn kmalloc(&self, cpu: usize, size: usize) -> Option<std::ptr::NonNull<u8>> {
        let c = self
            .inner
            .general
            .iter()
            .find(|c| c.object_size() >= size)?;
        c.alloc_on(cpu)
    }

    /// `kfree()` on CPU `cpu`.
    ///
    /// # Safety
    /// `p` came from [`Self::kmalloc`] on this instance and is freed once.
    pub unsafe fn kfree(&self, cpu: usize, p: std::ptr::NonNull<u8>) {
        // SAFETY: p lies in a live slab of one of our caches.
        let core = unsafe {
            let page = crate::page::Page::head(
                crate::page::virt_to_page(p.as_ptr()).expect("kfree of a SLAB object"),
            );
            (*page).slab().cast::<SlabCore>()
        };
        let c = self
            .inner
            .general
            .iter()
            .find(|c| std::ptr::eq(Arc::as_ptr(&c.inner.core), core))
            .expect("kfree of a general cache's object");
        // SAFETY: forwarded.
        unsafe { c.free_on(cpu, p) }
    }

    /// `kmem_cache_create()`.
    pub fn kmem_cache_create(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<SlabCache, CreateError> {
        self.inner.create(name, size, align, flags, ctor)
    }

    /// The queue memory of `caches` plus the general caches.
    pub fn queue_memory<'a>(&self, caches: impl IntoIterator<Item = &'a SlabCache>) -> QueueMemory {
        let mut q = QueueMemory::default();
        let general = self.inner.general.iter().map(SlabCache::queue_memory);
        for m in general.chain(caches.into_iter().map(SlabCache::queue_memory)) {
            q.per_cpu += m.per_cpu;
            q.shared += m.shared;
            q.alien += m.alien;
            q.objects_queued += m.objects_queued;
        }
        q
    }
}

impl SlabInner {
    fn create(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<SlabCache, CreateError> {
        let geo = SlabGeometry::new(
            size,
            align,
            flags.contains(SlabFlags::HWCACHE_ALIGN),
            flags.contains(SlabFlags::RECLAIM_ACCOUNT),
        )
        .map_err(|e| CreateError::Layout {
            name: name.into(),
            source: match e {
                geometry::GeometryError::ZeroSize => LayoutError::ZeroSize,
                geometry::GeometryError::BadAlign(a) => LayoutError::BadAlign(a),
                geometry::GeometryError::TooLarge(s) => LayoutError::TooLarge {
                    size: s,
                    max_order: geometry::KMALLOC_MAX_ORDER,
                },
            },
        })?;
        let slabp = if geo.off_slab {
            // `kmem_find_general_cachep()`: the first general cache that
            // holds the descriptor.
            let c = self
                .general
                .iter()
                .find(|c| {
                    c.inner.core.geometry().buffer_size >= geo.slab_size
                        && !c.inner.core.geometry().off_slab
                })
                .expect("a general cache holds every descriptor");
            SlabpCache::Shared(Shared::Arc(c.inner.core.clone()))
        } else {
            SlabpCache::None
        };
        let nodes = self.cpus_on_node.len();
        let core = Arc::new(SlabCore::new(
            name.to_owned().into(),
            geo,
            geo.tunables(self.nr_cpus > 1),
            ctor,
            Shared::Arc(self.pages.clone()),
            slabp,
            QueueStore::Heap,
            nodes,
            self::core::NO_CLASS,
        ));
        core.setup(&self.cpus_on_node);
        let cpus = (0..self.nr_cpus)
            .map(|_| Mutex::new(core.new_cpu_array()))
            .collect();
        Ok(SlabCache {
            inner: Arc::new(CacheInner {
                core,
                cpus,
                cpu_node: self.cpu_node.clone(),
                next_cpu: std::sync::atomic::AtomicUsize::new(0),
            }),
        })
    }
}

impl SlabCache {
    /// The cache itself.
    pub fn core(&self) -> &SlabCore {
        &self.inner.core
    }

    /// `kmem_cache_alloc()` on CPU `cpu`.
    pub fn alloc_on(&self, cpu: usize) -> Option<std::ptr::NonNull<u8>> {
        let mut ac = self.lock_cpu(cpu);
        std::ptr::NonNull::new(self.inner.core.alloc(&mut ac, self.inner.cpu_node[cpu]))
    }

    /// `kmem_cache_free()` on CPU `cpu`.
    ///
    /// # Safety
    /// `p` came from this cache and is freed once.
    pub unsafe fn free_on(&self, cpu: usize, p: std::ptr::NonNull<u8>) {
        let mut ac = self.lock_cpu(cpu);
        // SAFETY: forwarded.
        unsafe {
            self.inner
                .core
                .free(&mut ac, self.inner.cpu_node[cpu], p.as_ptr())
        }
    }

    /// `cache_reap()` for this cache on CPU `cpu` at `now_ms`, draining
    /// the alien array of `reap_node` (each CPU's `reap_node` rotates
    /// over the other nodes, `next_reap_node()`).
    pub fn reap_on(&self, cpu: usize, reap_node: usize, now_ms: u64) -> ReapResult {
        let mut ac = self.lock_cpu(cpu);
        self.inner
            .core
            .cache_reap(&mut ac, self.inner.cpu_node[cpu], reap_node, now_ms)
    }

    /// CPU `cpu`'s array: `(avail, limit, batchcount, touched)`.
    pub fn cpu_array(&self, cpu: usize) -> (u32, u32, u32, bool) {
        let ac = self.lock_cpu(cpu);
        (ac.avail, ac.limit, ac.batchcount, ac.touched)
    }

    /// The objects in CPU `cpu`'s array, bottom first.
    pub fn cpu_objects(&self, cpu: usize) -> Vec<*mut u8> {
        self.lock_cpu(cpu).objects()
    }

    fn lock_cpu(&self, cpu: usize) -> std::sync::MutexGuard<'_, ArrayCache> {
        self.inner.cpus[cpu]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Bytes of this cache's queues and the objects in them.
    pub fn queue_memory(&self) -> QueueMemory {
        let (shared, alien) = self.inner.core.node_queue_bytes();
        let mut q = QueueMemory {
            shared,
            alien,
            ..QueueMemory::default()
        };
        for m in self.inner.cpus.iter() {
            let ac = m.lock().unwrap_or_else(|e| e.into_inner());
            q.per_cpu += ac.bytes();
            q.objects_queued += ac.avail as usize;
        }
        for n in 0..self.inner.core.nr_nodes() {
            let c = self.inner.core.node_counts(n);
            q.objects_queued += c.shared_avail + c.alien_avail;
        }
        q
    }
}

impl ObjectAllocator for Slab {
    type Cache = SlabCache;

    fn name(&self) -> &'static str {
        "SLAB"
    }

    fn create_cache(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<SlabCache, CreateError> {
        self.kmem_cache_create(name, size, align, flags, ctor)
    }

    fn pages_bytes(&self) -> usize {
        self.inner.pages.stats().sections * crate::page::SECTION_SIZE
    }
}

/// A CPU's own array for one [`SlabCache`] (the [`ObjectCache`] path, for
/// a real thread standing in for a CPU: no lock on the fast path). It
/// takes the node of the next CPU of the machine, round robin; dropping
/// it empties the array into the slabs (`cpuup_callback(CPU_DEAD)`).
pub struct SlabCpu {
    ac: ArrayCache,
    node: usize,
    core: Arc<SlabCore>,
}

impl SlabCpu {
    /// The node the CPU is on.
    pub fn node(&self) -> usize {
        self.node
    }

    /// `(avail, limit, batchcount, touched)`.
    pub fn array(&self) -> (u32, u32, u32, bool) {
        (
            self.ac.avail,
            self.ac.limit,
            self.ac.batchcount,
            self.ac.touched,
        )
    }
}

impl Drop for SlabCpu {
    fn drop(&mut self) {
        let ac = std::mem::replace(&mut self.ac, ArrayCache::EMPTY);
        self.core.free_cpu_array(ac, self.node);
    }
}

impl ObjectCache for SlabCache {
    type Cpu = SlabCpu;

    /// A new array on the next CPU's node, round robin over the machine.
    fn cpu(&self) -> SlabCpu {
        let n = self
            .inner
            .next_cpu
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let cpu = n % self.inner.cpus.len();
        SlabCpu {
            ac: self.inner.core.new_cpu_array(),
            node: self.inner.cpu_node[cpu],
            core: self.inner.core.clone(),
        }
    }

    #[inline]
    fn alloc(&self, cpu: &mut SlabCpu) -> Option<std::ptr::NonNull<u8>> {
        std::ptr::NonNull::new(self.inner.core.alloc(&mut cpu.ac, cpu.node))
    }

    #[inline]
    unsafe fn free(&self, cpu: &mut SlabCpu, obj: std::ptr::NonNull<u8>) {
        // SAFETY: forwarded.
        unsafe { self.inner.core.free(&mut cpu.ac, cpu.node, obj.as_ptr()) }
    }

    fn object_size(&self) -> usize {
        self.inner.core.geometry().obj_size
    }
}
