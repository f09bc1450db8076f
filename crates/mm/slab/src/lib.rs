//! klab-slab: the SLUB, SLAB and SLOB allocators over a page source.
//!
//! Mirrors mm/slub.c (2.6.22-2.6.24, with a few later rules named where
//! they are used), mm/slab.c (2.6.23, the allocator SLUB replaced) and
//! mm/slob.c. Seeds: 003 "The SLUB allocator" and 004
//! (SLOB merged as a drop-in replacement for very small systems). SLUB
//! runs in one of three eras ([`SlubEra`]): the page's 2.6.24 (slab lock
//! on every slow path, the default for [`Slub`]), 3.1 (a slab's freelist
//! and counters change by one compare-and-swap, `cmpxchg_double_slab()`)
//! and 3.2 (per-CPU partial lists, `put_cpu_partial()`,
//! `unfreeze_partials()`), the era of the global allocator [`SlubAlloc`]
//! ([`SlubAlloc2624`] keeps the page's).
//!
//! # Layers
//!
//! ```text
//!  GlobalAlloc (global::SlubAlloc,     C malloc (klab-slab-preload, via capi;
//!   slab::SlabAlloc, slob::SlobAlloc)   KLAB_SLAB=slub|slab|slob)
//!            │                                │
//!            └──────── kmalloc size classes ──┘     Slub registry: kmem_cache_create
//!                            │                      (merging, aliases, slub_debug)
//!                  SLUB caches (slub::CacheCore)  ──┘   SLAB (slab::SlabCore)   SLOB (slob::Slob)
//!       per-CPU active slab │ per-node partial lists    array_caches, shared,   first fit
//!                            │                         alien; 3 node lists     in pages
//!                            └──────────────┬─────────────────┴──────────────────┘
//!                  page allocator (page_alloc: buddy per node, struct page map)
//!                                           │
//!                  PageSource: HostPages (mmap) │ HeapPages (std, Miri) │ FramePool (model)
//! ```
//!
//! * [`page`]: klab's `struct page` and memory map; `virt_to_page()`.
//! * [`page_source`]: the [`PageSource`] trait and its implementations.
//! * [`page_alloc`]: a buddy allocator per node over sections.
//! * [`layout`]: flags, `calculate_sizes()`, `calculate_order()`.
//! * [`slub`]: SLUB itself: caches, per-CPU slabs, partial lists; the
//!   3.1/3.2 lockless slow paths in `slub::lockless`.
//! * [`cache`]: the [`Slub`] registry: `kmem_cache_create()`, merging,
//!   aliases, `slub_debug=`, kmalloc.
//! * [`debug`]: red zones, poisoning, free-pointer checks and the
//!   [`ReportSink`] findings go to.
//! * [`slab`]: SLAB behind the same [`ObjectAllocator`] interface: per-CPU
//!   `array_cache`s, shared and alien arrays, `cache_reap()`; [`Slab`]
//!   for model machines of many CPUs and nodes, [`SlabAlloc`] as a real
//!   `GlobalAlloc`.
//! * [`slob`]: SLOB behind the same [`ObjectAllocator`] interface;
//!   [`slob::SlobAlloc`] as a real `GlobalAlloc`.
//! * [`model`]: SLUB for the machine model: safe object ids, a
//!   deterministic frame pool, and a journal that rebuilds it exactly.
//! * [`global`]: a `GlobalAlloc` on SLUB with per-thread active slabs,
//!   flushed on thread exit and quiesced across `fork`.
//! * [`capi`]: the C allocation functions (`malloc`, `free`, ...) as plain
//!   Rust functions on SLUB, SLAB or SLOB (`KLAB_SLAB=`); the
//!   `klab-slab-preload` cdylib exports them.
//! * [`reentry`]: the rule that no code holding an allocator lock
//!   allocates, and its checker in debug builds.
//! * [`workload`]: allocation workloads shared by benchmarks and
//!   experiments (single-thread churn, producer/consumer, larson).
//!
//! # Unsafe code
//!
//! This crate is one of the two in klab allowed `unsafe` (it hands out raw
//! memory). Every block carries a `// SAFETY:` comment, every unsafe fn a
//! `# Safety` section, and the tests run under Miri (`.ci/miri.list`),
//! where the page source is [`HeapPages`].

pub mod cache;
pub mod capi;
pub mod debug;
pub mod global;
pub mod kmalloc;
pub mod layout;
pub mod model;
pub mod page;
pub mod page_alloc;
pub mod page_source;
pub(crate) mod primitive;
pub mod reentry;
pub mod slab;
pub mod slob;
pub mod slub;
pub mod spans;
pub mod workload;

use std::ops::Deref;
use std::sync::Arc;

pub use cache::{CreateError, KmemCache, Slub, SlubConfig};
pub use debug::{AbortSink, CollectSink, ReportKind, ReportSink, SlabReport, StderrSink};
pub use global::{SlubAlloc, SlubAlloc2624};
pub use layout::{CacheLayout, SlabFlags, SlubParams};
pub use model::{CacheId, CacheSpec, Geometry, ModelSlab, ObjId, SlabError};
pub use page_alloc::PageAllocator;
pub use page_source::{DefaultPages, FramePool, HeapPages, HostPages, PageSource};
pub use slab::{Slab, SlabAlloc, SlabCache, SlabConfig};
pub use slob::{Slob, SlobCache};
pub use slub::{CpuSlab, SlubEra};

/// A constructor: initialises an object's bytes once, when its slab is
/// made (objects go back to the cache in their constructed state).
pub type Ctor = fn(&mut [u8]);

/// An allocator of kernel objects: SLUB ([`Slub`]), SLAB ([`Slab`]) or
/// SLOB ([`Slob`]).
/// The kernel's slab interface (`kmem_cache_create`, `kmem_cache_alloc`,
/// `kmem_cache_free`, `kmalloc`, `kfree`) as a trait, so workloads and
/// experiments run unchanged on either.
pub trait ObjectAllocator: Send + Sync {
    /// A cache of objects of one size.
    type Cache: ObjectCache;
    /// The allocator's name (`"SLUB"`, `"SLAB"`, `"SLOB"`).
    fn name(&self) -> &'static str;
    /// `kmem_cache_create()`.
    fn create_cache(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<Self::Cache, CreateError>;
    /// Bytes of page frames the allocator holds.
    fn pages_bytes(&self) -> usize;
}

/// A cache of objects behind [`ObjectAllocator`].
pub trait ObjectCache: Send + Sync {
    /// Per-CPU state a CPU (a thread on the host) keeps for this cache:
    /// SLUB's active slab, SLAB's CPU number (its arrays live in the
    /// cache), nothing for SLOB.
    type Cpu: Send;
    /// State for one more CPU.
    fn cpu(&self) -> Self::Cpu;
    /// `kmem_cache_alloc()`.
    fn alloc(&self, cpu: &mut Self::Cpu) -> Option<std::ptr::NonNull<u8>>;
    /// `kmem_cache_free()`.
    ///
    /// # Safety
    /// `obj` was allocated from this cache, is freed once, and is not used
    /// afterwards.
    unsafe fn free(&self, cpu: &mut Self::Cpu, obj: std::ptr::NonNull<u8>);
    /// `kmem_cache_size()`: the object size.
    fn object_size(&self) -> usize;
}

/// A reference that is either `'static` (for the global allocator, built
/// in a `static`) or shared through an `Arc`.
pub(crate) enum Shared<T: ?Sized + 'static> {
    Static(&'static T),
    Arc(Arc<T>),
}

impl<T: ?Sized> Deref for Shared<T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        match self {
            Shared::Static(r) => r,
            Shared::Arc(a) => a,
        }
    }
}

impl<T: ?Sized> Clone for Shared<T> {
    fn clone(&self) -> Self {
        match self {
            Shared::Static(r) => Shared::Static(r),
            Shared::Arc(a) => Shared::Arc(a.clone()),
        }
    }
}
