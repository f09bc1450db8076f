//! SLUB for a machine model: safe handles, deterministic ids, and a
//! journal that rebuilds the allocator exactly (hibernation).
//!
//! The machine model (crate `klab-model`) allocates its kernel objects,
//! the page cache's radix-tree nodes for one, from SLUB caches, as the
//! kernel does (`radix_tree_node_alloc()` calls `kmem_cache_alloc()` on
//! `radix_tree_node_cachep`, lib/radix-tree.c). The model forbids unsafe
//! code, must be a pure function of its inputs, and serializes itself
//! whole. [`ModelSlab`] meets the three:
//!
//! ```text
//!   ModelSlab
//!     slub     Slub over an Arc<FramePool>   the real SLUB code, era 2.6.24
//!     caches   [CacheId] -> KmemCache + one CpuSlab per model CPU
//!     live     ObjId -> CacheId              the ledger: every call is checked
//!     journal  [Op]                          every request, in order
//! ```
//!
//! * **Ids.** An object is named by its [`ObjId`], its byte offset in the
//!   frame pool. The pool hands out sections lowest address first and the
//!   model is single-threaded, so the same requests get the same ids on
//!   every run (`ObjId::pfn()` is the frame holding the object).
//! * **Safety.** The ledger records every live object and its cache, so
//!   freeing an id that is not a live object of that cache is an error,
//!   never undefined behaviour.
//! * **Memory really used.** Each object carries a 64-bit *owner tag* in
//!   its first 8 bytes, written on allocation and checked on free: a model
//!   that frees the wrong object finds out at once.
//! * **Hibernation.** Serializing writes the pool geometry and the journal;
//!   deserializing replays it on a fresh pool, checking that each
//!   allocation gets the id it got the first time. Replay rebuilds the
//!   exact state: which frames hold slabs, each slab's free list order, the
//!   per-CPU active slabs and the node partial lists, so a resumed machine
//!   allocates the same objects as one that never stopped. The kernel's
//!   hibernation copies memory instead; a copy of the pool would hold
//!   pointers into the old address space, the journal does not. It grows
//!   by one entry per request ([`ModelSlab::journal_len`]).
//!
//! The caches run SLUB as seed 003 describes it: era 2.6.24 with its boot
//! defaults ([`SlubParams::V2_6_24`]: `slub_min_objects=4`,
//! `slub_max_order=1`).
//!
//! Invariant: `live.len()` = objects allocated and not freed, and for
//! every cache `Σ node_pages(n)` = its slabs × pages per slab.

use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::cache::{KmemCache, Slub, SlubConfig};
use crate::debug::CollectSink;
use crate::layout::{SlabFlags, SlubParams};
use crate::page::{PAGE_SHIFT, PAGE_SIZE, Page, SECTION_SIZE, USABLE_PAGES};
use crate::page_source::FramePool;
use crate::slub::{CpuSlab, SlubEra};

/// Bytes of an object the owner tag takes (and the smallest object size).
pub const TAG_BYTES: usize = 8;

/// The largest pool: ids are 32-bit byte offsets.
pub const MAX_POOL_BYTES: usize = 1 << 32;

/// A cache of a [`ModelSlab`], by creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CacheId(pub u16);

/// An object of a [`ModelSlab`]: its byte offset in the frame pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ObjId(pub u32);

impl ObjId {
    /// The pool frame holding the object.
    pub fn pfn(self) -> u32 {
        self.0 >> PAGE_SHIFT
    }

    /// The object's offset in its frame.
    pub fn offset_in_frame(self) -> u32 {
        self.0 & (PAGE_SIZE as u32 - 1)
    }
}

impl std::fmt::Display for ObjId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pfn {} + {:#x}", self.pfn(), self.offset_in_frame())
    }
}

/// The machine a [`ModelSlab`] serves: its NUMA nodes and CPUs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Geometry {
    /// NUMA nodes (1 to 64).
    pub nodes: u16,
    /// Sections of [`SECTION_SIZE`] bytes each node's pool holds.
    pub sections_per_node: u32,
    /// CPUs on each node; CPU `c` sits on node `c / cpus_per_node`.
    pub cpus_per_node: u16,
}

impl Geometry {
    /// A pool large enough for every frame of a machine with
    /// `frames_per_node` page frames on each node (plus one section for
    /// the memory map's share), within [`MAX_POOL_BYTES`].
    pub fn for_machine(nodes: u16, frames_per_node: u64, cpus_per_node: u16) -> Geometry {
        let nodes = nodes.max(1);
        let need = frames_per_node.div_ceil(USABLE_PAGES as u64) + 1;
        let cap = (MAX_POOL_BYTES / SECTION_SIZE) as u64 / u64::from(nodes);
        Geometry {
            nodes,
            sections_per_node: need.min(cap).max(1) as u32,
            cpus_per_node: cpus_per_node.max(1),
        }
    }

    /// CPUs in all.
    pub fn nr_cpus(&self) -> usize {
        usize::from(self.nodes) * usize::from(self.cpus_per_node)
    }

    fn check(&self) -> Result<(), SlabError> {
        let bytes = usize::from(self.nodes) * self.sections_per_node as usize * SECTION_SIZE;
        if self.nodes == 0 || self.nodes > 64 {
            return Err(SlabError::Geometry(format!(
                "{} NUMA nodes: a model slab needs 1 to 64",
                self.nodes
            )));
        }
        if self.sections_per_node == 0 || bytes > MAX_POOL_BYTES {
            return Err(SlabError::Geometry(format!(
                "{} sections per node: the pool must hold 1 to {} bytes",
                self.sections_per_node, MAX_POOL_BYTES
            )));
        }
        if self.cpus_per_node == 0 {
            return Err(SlabError::Geometry("a node needs at least one CPU".into()));
        }
        Ok(())
    }
}

/// What `kmem_cache_create()` was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CacheSpec {
    /// The name.
    pub name: String,
    /// Object size, bytes (at least [`TAG_BYTES`]).
    pub size: u32,
    /// Alignment.
    pub align: u32,
    /// [`SlabFlags`] bits.
    pub flags: u32,
    /// A constructor that zeroes each object when its slab is made (as
    /// `radix_tree_node_ctor()` does); a cache with a constructor never
    /// merges.
    pub zero_ctor: bool,
}

/// One request, as the journal keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Op {
    /// `kmem_cache_create()`.
    Create(CacheSpec),
    /// `kmem_cache_alloc()` on CPU `cpu`; the id it got and the tag written.
    Alloc(u16, u16, u32, u64),
    /// `kmem_cache_free()` on CPU `cpu` of id.
    Free(u16, u16, u32),
    /// `kmem_cache_shrink()`.
    Shrink(u16),
    /// Flushes CPU `cpu`'s active slabs of every cache (`flush_all()` for one CPU).
    Flush(u16),
}

/// Why a [`ModelSlab`] request failed. Nothing changes when one does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlabError {
    /// The geometry is out of range.
    #[error("model slab geometry: {0}")]
    Geometry(String),
    /// `kmem_cache_create()` refused the cache.
    #[error("kmem_cache_create({name}): {why}")]
    Create {
        /// The cache.
        name: String,
        /// What was wrong.
        why: String,
    },
    /// No such cache.
    #[error("no cache {0:?}")]
    NoCache(CacheId),
    /// No such CPU.
    #[error("no CPU {cpu}: the machine has {nr_cpus}")]
    NoCpu {
        /// The CPU asked for.
        cpu: u16,
        /// CPUs there are.
        nr_cpus: usize,
    },
    /// The frame pool is exhausted.
    #[error("cache {cache}: the frame pool is exhausted")]
    OutOfFrames {
        /// The cache.
        cache: String,
    },
    /// The id is not a live object.
    #[error("cache {cache}: {obj} is not an allocated object")]
    NotAllocated {
        /// The cache asked to free it.
        cache: String,
        /// The id.
        obj: ObjId,
    },
    /// The object belongs to another cache.
    #[error("cache {cache}: {obj} belongs to cache {owner}")]
    WrongCache {
        /// The cache asked to free it.
        cache: String,
        /// The id.
        obj: ObjId,
        /// The cache it was allocated from.
        owner: String,
    },
    /// The object's owner tag is not the one the caller expects.
    #[error("cache {cache}: {obj} holds owner tag {found:#x}, expected {expected:#x}")]
    TagMismatch {
        /// The cache.
        cache: String,
        /// The id.
        obj: ObjId,
        /// The tag in the object.
        found: u64,
        /// The tag the caller passed.
        expected: u64,
    },
    /// Replaying a journal did not reproduce the recorded id.
    #[error("journal entry {entry}: replay allocated {got:?}, the journal recorded {want:?}")]
    Diverged {
        /// The entry's index.
        entry: usize,
        /// What replay got.
        got: ObjId,
        /// What was recorded.
        want: ObjId,
    },
}

/// A name the model created a cache under.
struct ModelCache {
    spec: CacheSpec,
    /// The handle under this name (an alias resolves to a merged cache).
    handle: KmemCache,
    /// Index in `cores` of the SLUB cache behind the name.
    core: usize,
}

/// One SLUB cache behind one or more names, with its per-CPU slabs
/// (`s->cpu_slab`: aliases share them, as they share the cache).
struct Core {
    /// Declared before `handle`: CPU slabs flush into the cache first.
    cpus: Vec<CpuSlab>,
    handle: KmemCache,
    /// The first name it was created under.
    name: String,
}

/// SLUB caches over a deterministic frame pool, with safe ids, for a
/// machine model. See the module header.
pub struct ModelSlab {
    geometry: Geometry,
    /// Declared first: CPU slabs and caches drop before the pool.
    cores: Vec<Core>,
    caches: Vec<ModelCache>,
    live: HashMap<u32, u16>,
    journal: Vec<Op>,
    slub: Slub,
    pool: Arc<FramePool>,
}

fn zero_ctor(obj: &mut [u8]) {
    obj.fill(0);
}

impl ModelSlab {
    /// An empty SLUB (its kmalloc caches created, no slab allocated) over
    /// a pool of `geometry`.
    pub fn new(geometry: Geometry) -> Result<ModelSlab, SlabError> {
        geometry.check()?;
        let pool = Arc::new(FramePool::new(
            usize::from(geometry.nodes),
            geometry.sections_per_node as usize,
        ));
        let config = SlubConfig {
            params: SlubParams::V2_6_24,
            era: SlubEra::V2_6_24,
            ..SlubConfig::default()
        };
        let slub = Slub::new(pool.clone(), config, Arc::new(CollectSink::new()));
        Ok(ModelSlab {
            geometry,
            cores: Vec::new(),
            caches: Vec::new(),
            live: HashMap::new(),
            journal: Vec::new(),
            slub,
            pool,
        })
    }

    /// Rebuilds a slab by replaying `journal` on a fresh pool of
    /// `geometry`.
    ///
    /// # Errors
    /// When an entry fails or an allocation does not get its recorded id.
    pub fn replay(geometry: Geometry, journal: &[Op]) -> Result<ModelSlab, SlabError> {
        let mut s = ModelSlab::new(geometry)?;
        s.journal.reserve(journal.len());
        for (entry, op) in journal.iter().enumerate() {
            match op {
                Op::Create(spec) => {
                    s.create(spec.clone())?;
                }
                &Op::Alloc(cache, cpu, want, tag) => {
                    let got = s.alloc(CacheId(cache), cpu, tag)?;
                    if got != ObjId(want) {
                        return Err(SlabError::Diverged {
                            entry,
                            got,
                            want: ObjId(want),
                        });
                    }
                }
                &Op::Free(cache, cpu, obj) => {
                    let tag = s.tag(ObjId(obj)).unwrap_or(0);
                    s.free(CacheId(cache), cpu, ObjId(obj), tag)?;
                }
                &Op::Shrink(cache) => {
                    s.shrink(CacheId(cache))?;
                }
                &Op::Flush(cpu) => s.flush_cpu(cpu)?,
            }
        }
        Ok(s)
    }

    /// The geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The requests so far.
    pub fn journal(&self) -> &[Op] {
        &self.journal
    }

    /// Entries in the journal.
    pub fn journal_len(&self) -> usize {
        self.journal.len()
    }

    /// `kmem_cache_create()`: a cache, merged into an existing one when
    /// the rules allow (see [`Slub::kmem_cache_create`]).
    pub fn create(&mut self, spec: CacheSpec) -> Result<CacheId, SlabError> {
        let err = |why: String| SlabError::Create {
            name: spec.name.clone(),
            why,
        };
        if (spec.size as usize) < TAG_BYTES {
            return Err(err(format!(
                "{} bytes: a model object holds an {TAG_BYTES}-byte owner tag",
                spec.size
            )));
        }
        if self.caches.len() >= usize::from(u16::MAX) {
            return Err(err("too many caches".into()));
        }
        let ctor = spec.zero_ctor.then_some(zero_ctor as crate::Ctor);
        let handle = self
            .slub
            .kmem_cache_create(
                &spec.name,
                spec.size as usize,
                spec.align as usize,
                SlabFlags(spec.flags),
                ctor,
            )
            .map_err(|e| err(e.to_string()))?;
        let id = self.caches.len();
        let core = match self.cores.iter().position(|c| c.handle.same_cache(&handle)) {
            Some(core) => core,
            None => {
                let cpus = (0..self.geometry.nr_cpus())
                    .map(|c| handle.cpu_on(c / usize::from(self.geometry.cpus_per_node)))
                    .collect();
                self.cores.push(Core {
                    cpus,
                    handle: handle.clone(),
                    name: spec.name.clone(),
                });
                self.cores.len() - 1
            }
        };
        self.journal.push(Op::Create(spec.clone()));
        self.caches.push(ModelCache { spec, handle, core });
        Ok(CacheId(id as u16))
    }

    fn cache(&self, id: CacheId) -> Result<&ModelCache, SlabError> {
        self.caches
            .get(usize::from(id.0))
            .ok_or(SlabError::NoCache(id))
    }

    fn check_cpu(&self, cpu: u16) -> Result<(), SlabError> {
        let nr_cpus = self.geometry.nr_cpus();
        if usize::from(cpu) >= nr_cpus {
            return Err(SlabError::NoCpu { cpu, nr_cpus });
        }
        Ok(())
    }

    fn ptr(&self, obj: ObjId) -> NonNull<u8> {
        self.pool.ptr_at(obj.0 as usize)
    }

    /// `kmem_cache_alloc()` on CPU `cpu`; writes `tag` into the object.
    pub fn alloc(&mut self, cache: CacheId, cpu: u16, tag: u64) -> Result<ObjId, SlabError> {
        self.cache(cache)?;
        self.check_cpu(cpu)?;
        let c = &self.caches[usize::from(cache.0)];
        let core = &mut self.cores[c.core];
        let Some(p) = core.cpus[usize::from(cpu)].alloc() else {
            return Err(SlabError::OutOfFrames {
                cache: c.spec.name.clone(),
            });
        };
        // SAFETY: a fresh object of at least TAG_BYTES bytes (checked at
        // creation), aligned to 8 (ARCH_SLAB_MINALIGN); nobody else holds it.
        unsafe { p.as_ptr().cast::<u64>().write_unaligned(tag) };
        let obj = ObjId(self.pool.offset_of(p.as_ptr()) as u32);
        self.live.insert(obj.0, cache.0);
        self.journal.push(Op::Alloc(cache.0, cpu, obj.0, tag));
        Ok(obj)
    }

    /// The owner tag of a live object.
    pub fn tag(&self, obj: ObjId) -> Option<u64> {
        self.live.contains_key(&obj.0).then(|| {
            // SAFETY: a live object (the ledger says so) of at least
            // TAG_BYTES bytes inside the pool.
            unsafe { self.ptr(obj).as_ptr().cast::<u64>().read_unaligned() }
        })
    }

    /// The cache a live object was allocated from.
    pub fn owner(&self, obj: ObjId) -> Option<CacheId> {
        self.live.get(&obj.0).map(|&c| CacheId(c))
    }

    /// `kmem_cache_free()` on CPU `cpu`, once the ledger confirms `obj` is
    /// a live object of `cache` (or of a cache merged with it) holding
    /// `tag`.
    pub fn free(
        &mut self,
        cache: CacheId,
        cpu: u16,
        obj: ObjId,
        tag: u64,
    ) -> Result<(), SlabError> {
        let c = self.cache(cache)?;
        self.check_cpu(cpu)?;
        let Some(&owner) = self.live.get(&obj.0) else {
            return Err(SlabError::NotAllocated {
                cache: c.spec.name.clone(),
                obj,
            });
        };
        let o = &self.caches[usize::from(owner)];
        if o.core != c.core {
            return Err(SlabError::WrongCache {
                cache: c.spec.name.clone(),
                obj,
                owner: o.spec.name.clone(),
            });
        }
        let found = self.tag(obj).expect("live");
        if found != tag {
            return Err(SlabError::TagMismatch {
                cache: c.spec.name.clone(),
                obj,
                found,
                expected: tag,
            });
        }
        let p = self.ptr(obj);
        let core = c.core;
        self.live.remove(&obj.0);
        // SAFETY: the ledger held `obj` as a live object of this SLUB cache;
        // it is now off the ledger, so it is freed once and never used again.
        unsafe { self.cores[core].cpus[usize::from(cpu)].free(p) };
        self.journal.push(Op::Free(cache.0, cpu, obj.0));
        Ok(())
    }

    /// `kmem_cache_shrink()`: `flush_all()` puts every CPU's active slab
    /// back on its node's lists, then the cache's empty slabs are freed;
    /// returns how many the second step freed.
    pub fn shrink(&mut self, cache: CacheId) -> Result<usize, SlabError> {
        let i = self.cache(cache)?.core;
        let core = &mut self.cores[i];
        for c in &mut core.cpus {
            c.flush();
        }
        let freed = core.handle.shrink();
        self.journal.push(Op::Shrink(cache.0));
        Ok(freed)
    }

    /// Puts CPU `cpu`'s active slab of every cache back on its node's lists
    /// (`flush_cpu_slab()` for each cache, as CPU hot-unplug or
    /// `kmem_cache_shrink()`'s `flush_all()` do).
    pub fn flush_cpu(&mut self, cpu: u16) -> Result<(), SlabError> {
        self.check_cpu(cpu)?;
        for c in &mut self.cores {
            c.cpus[usize::from(cpu)].flush();
        }
        self.journal.push(Op::Flush(cpu));
        Ok(())
    }

    /// The caches, by id: name, and whether it is an alias of an earlier one.
    pub fn caches(&self) -> impl Iterator<Item = (CacheId, &str, bool)> + '_ {
        self.caches.iter().enumerate().map(|(i, c)| {
            let alias = self.cores[c.core].name != c.spec.name;
            (CacheId(i as u16), c.spec.name.as_str(), alias)
        })
    }

    /// Distinct SLUB caches behind the model's names.
    pub fn nr_distinct(&self) -> usize {
        self.cores.len()
    }

    /// Objects allocated and not freed.
    pub fn nr_live(&self) -> usize {
        self.live.len()
    }

    /// Live objects of `cache` (and of caches merged with it).
    pub fn live_objects(&self, cache: CacheId) -> usize {
        let Ok(c) = self.cache(cache) else { return 0 };
        self.live
            .values()
            .filter(|&&o| self.caches[usize::from(o)].core == c.core)
            .count()
    }

    /// The SLUB cache behind `cache`.
    pub fn kmem_cache(&self, cache: CacheId) -> Option<&KmemCache> {
        self.cache(cache).ok().map(|c| &c.handle)
    }

    /// Page frames of `node` held in slabs of the model's caches (each
    /// SLUB cache counted once, whatever its aliases).
    pub fn node_pages(&self, node: usize) -> usize {
        self.cores
            .iter()
            .map(|c| c.handle.node_slabs(node) << c.handle.layout().order)
            .sum()
    }

    /// The slab holding pool frame `pfn`, as `(first pool frame, frames)`,
    /// or `None` when no slab holds it (read from the pool's memory map).
    pub fn slab_at(&self, pfn: u32) -> Option<(u32, u32)> {
        use crate::page::{PAGES_PER_SECTION, PG_SLAB, PG_TAIL, RESERVED_PAGES, SectionKind};
        let s = pfn as usize / PAGES_PER_SECTION;
        let idx = pfn as usize % PAGES_PER_SECTION;
        if idx < RESERVED_PAGES
            || s >= usize::from(self.geometry.nodes) * self.geometry.sections_per_node as usize
            || !self.pool.section_in_use(s)
        {
            return None;
        }
        let header = self
            .pool
            .ptr_at(s * SECTION_SIZE)
            .cast::<crate::page::SectionHeader>();
        // SAFETY: a section handed out by the pool to this slab's page
        // allocator, which wrote its header and map before using any frame
        // (`add_section()`); the model is single-threaded, so nothing
        // changes the map while it is read; indices stay inside the map.
        unsafe {
            if (*header.as_ptr()).kind != SectionKind::Frames {
                return None;
            }
            let page = crate::page::frame(header, idx);
            let head = Page::head(page);
            let hflags = (*head).flags.load(crate::primitive::Ordering::Relaxed);
            if hflags & PG_SLAB == 0 || hflags & PG_TAIL != 0 {
                return None;
            }
            let first = Page::index(head);
            let mut n = 1;
            while first + n < PAGES_PER_SECTION {
                let t = crate::page::frame(header, first + n);
                if (*t).flags.load(crate::primitive::Ordering::Relaxed) & PG_TAIL == 0
                    || Page::head(t) != head
                {
                    break;
                }
                n += 1;
            }
            Some(((s * PAGES_PER_SECTION + first) as u32, n as u32))
        }
    }

    /// The slabs of `node`, as `(first pool frame, frames)` in address
    /// order, read from the pool's memory map (a slab's first frame
    /// carries `PG_slab`, its other frames point back to it).
    pub fn node_slab_frames(&self, node: usize) -> Vec<(u32, u32)> {
        let spn = self.geometry.sections_per_node as usize;
        let per = crate::page::PAGES_PER_SECTION as u32;
        let mut out = Vec::new();
        for s in node * spn..(node + 1) * spn {
            if !self.pool.section_in_use(s) {
                continue;
            }
            let mut pfn = s as u32 * per;
            while pfn < (s as u32 + 1) * per {
                match self.slab_at(pfn) {
                    Some((first, n)) if first == pfn => {
                        out.push((first, n));
                        pfn += n;
                    }
                    _ => pfn += 1,
                }
            }
        }
        out
    }

    /// Page frames held in slabs, all nodes.
    pub fn pages(&self) -> usize {
        (0..usize::from(self.geometry.nodes))
            .map(|n| self.node_pages(n))
            .sum()
    }

    /// Checks the ledger against SLUB's own counts and SLUB's invariants.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        for (i, c) in self.cores.iter().enumerate() {
            c.handle.assert_invariants();
            let st = c.handle.stats();
            let live = self
                .live
                .values()
                .filter(|&&o| self.caches[usize::from(o)].core == i)
                .count();
            assert!(
                live <= st.slabs * st.objects_per_slab,
                "cache {}: {live} live objects in {} slabs of {}",
                c.name,
                st.slabs,
                st.objects_per_slab
            );
            let on_nodes: usize = (0..usize::from(self.geometry.nodes))
                .map(|n| c.handle.node_slabs(n))
                .sum();
            assert_eq!(on_nodes, st.slabs, "cache {}: node slab counts", c.name);
        }
    }
}

/// A copy is the journal replayed on a fresh pool: the same state, the same
/// ids.
impl Clone for ModelSlab {
    fn clone(&self) -> Self {
        ModelSlab::replay(self.geometry, &self.journal).expect("a slab's own journal replays")
    }
}

impl Drop for ModelSlab {
    fn drop(&mut self) {
        // Free what is still allocated so the caches close without leaks.
        let live: Vec<(u32, u16)> = self.live.drain().collect();
        for (obj, cache) in live {
            let p = self.pool.ptr_at(obj as usize);
            let core = self.caches[usize::from(cache)].core;
            // SAFETY: a live object of this cache, off the ledger now.
            unsafe { self.cores[core].cpus[0].free(p) };
        }
    }
}

impl std::fmt::Debug for ModelSlab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelSlab")
            .field("geometry", &self.geometry)
            .field("caches", &self.caches.len())
            .field("live", &self.live.len())
            .field("pages", &self.pages())
            .field("journal", &self.journal.len())
            .finish()
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use super::{Geometry, ModelSlab, Op};

    #[derive(serde::Serialize)]
    struct Image<'a> {
        geometry: Geometry,
        journal: &'a [Op],
    }

    #[derive(serde::Deserialize)]
    struct Owned {
        geometry: Geometry,
        journal: Vec<Op>,
    }

    impl serde::Serialize for ModelSlab {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            Image {
                geometry: self.geometry,
                journal: &self.journal,
            }
            .serialize(s)
        }
    }

    impl<'de> serde::Deserialize<'de> for ModelSlab {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let o = Owned::deserialize(d)?;
            ModelSlab::replay(o.geometry, &o.journal).map_err(serde::de::Error::custom)
        }
    }
}

#[cfg(test)]
mod tests;
