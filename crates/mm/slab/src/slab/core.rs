//! One SLAB cache (`struct kmem_cache` of mm/slab.c, 2.6.22-2.6.23): slab
//! descriptors with their `kmem_bufctl_t` free-index arrays, the three
//! lists of each node (`struct kmem_list3`), each node's shared array and
//! alien arrays, and the transfers between a CPU's `array_cache` and them.
//!
//! A CPU's array is the caller's ([`ArrayCache`], passed by `&mut`, as
//! SLUB's `KmemCacheCpu` is): the model keeps one per CPU, the global
//! allocator one per thread.

use std::borrow::Cow;
use std::ptr;
use std::sync::{Mutex, MutexGuard};

use super::geometry::{
    BATCHREFILL_LIMIT, BUFCTL_END, REAPTIMEOUT_LIST3_MS, SLAB_DESC_SIZE, SlabGeometry, Tunables,
};
use crate::Ctor;
use crate::Shared;
use crate::page::{PG_SLAB_CLASSIC, Page, virt_to_page};
use crate::page_alloc::{MAX_NUMNODES, PageAllocator, get_order, make_compound};
use crate::primitive::{AtomicU8, AtomicUsize, Ordering};
use crate::reentry::Locked;

/// `struct array_cache`: a LIFO stack of free objects, `entry[0..avail]`,
/// of at most `limit`; `batchcount` objects move at a time; `touched`
/// says the array was used since the last `cache_reap()`.
///
/// The entries live elsewhere (`entry`), as the kernel's follow the
/// header in one `kmalloc()`: [`ArrayCache::bytes`] is header plus
/// entries.
#[derive(Debug)]
#[repr(C)]
pub struct ArrayCache {
    /// Objects in the array.
    pub avail: u32,
    /// Capacity.
    pub limit: u32,
    /// Objects moved per refill or flush.
    pub batchcount: u32,
    /// Used since the last reap.
    pub touched: bool,
    entry: *mut *mut u8,
}

// SAFETY: the entries are owned by whoever owns the array (a CPU, a
// node's lock); the pointer is not shared.
unsafe impl Send for ArrayCache {}

impl ArrayCache {
    /// An array with no storage (limit 0).
    pub const EMPTY: ArrayCache = ArrayCache {
        avail: 0,
        limit: 0,
        batchcount: 0,
        touched: false,
        entry: ptr::null_mut(),
    };

    /// An array over `limit` entries at `entry`.
    ///
    /// # Safety
    /// `entry` is valid for reads and writes of `limit` pointers for as
    /// long as the array is used, and used by nothing else.
    pub(crate) const unsafe fn new(entry: *mut *mut u8, limit: u32, batchcount: u32) -> Self {
        ArrayCache {
            avail: 0,
            limit,
            batchcount,
            touched: false,
            entry,
        }
    }

    /// The storage, to give back.
    pub(crate) fn storage(&self) -> *mut *mut u8 {
        self.entry
    }

    /// Bytes the array occupies: `sizeof(struct array_cache)` (this
    /// header) plus one pointer per entry.
    pub fn bytes(&self) -> usize {
        if self.entry.is_null() {
            0
        } else {
            size_of::<ArrayCache>() + self.limit as usize * size_of::<*mut u8>()
        }
    }

    /// `entry[i]`.
    #[inline(always)]
    fn get(&self, i: u32) -> *mut u8 {
        debug_assert!(i < self.limit);
        // SAFETY: i < limit, the storage holds limit entries.
        unsafe { *self.entry.add(i as usize) }
    }

    /// `entry[i] = p`.
    #[inline(always)]
    fn set(&mut self, i: u32, p: *mut u8) {
        debug_assert!(i < self.limit);
        // SAFETY: as in get.
        unsafe { *self.entry.add(i as usize) = p }
    }

    /// Pops the top object (`ac->entry[--ac->avail]`), marking the array
    /// touched; null when empty.
    #[inline(always)]
    pub fn pop(&mut self) -> *mut u8 {
        if self.avail == 0 {
            return ptr::null_mut();
        }
        self.touched = true;
        self.avail -= 1;
        self.get(self.avail)
    }

    /// Pushes an object if there is room (`ac->entry[ac->avail++]`).
    #[inline(always)]
    pub fn push(&mut self, p: *mut u8) -> bool {
        if self.avail >= self.limit {
            return false;
        }
        self.set(self.avail, p);
        self.avail += 1;
        true
    }

    /// The objects held, bottom first.
    pub fn objects(&self) -> Vec<*mut u8> {
        (0..self.avail).map(|i| self.get(i)).collect()
    }

    /// Removes the bottom `n` entries (the oldest) and slides the rest
    /// down (the `memmove` after a flush or drain).
    fn remove_bottom(&mut self, n: u32) {
        debug_assert!(n <= self.avail);
        // SAFETY: both ranges lie in the first `avail` entries.
        unsafe {
            ptr::copy(
                self.entry.add(n as usize),
                self.entry,
                (self.avail - n) as usize,
            )
        };
        self.avail -= n;
    }
}

/// `transfer_objects()`: moves up to `max` objects from the top of `from`
/// to `to`, as many as `to` has room for; marks `to` touched. Returns how
/// many.
pub fn transfer_objects(to: &mut ArrayCache, from: &mut ArrayCache, max: u32) -> u32 {
    let nr = from.avail.min(max).min(to.limit - to.avail);
    if nr == 0 {
        return 0;
    }
    // SAFETY: the source range is in from's first avail entries, the
    // destination in to's free room; the arrays are distinct.
    unsafe {
        ptr::copy_nonoverlapping(
            from.entry.add((from.avail - nr) as usize),
            to.entry.add(to.avail as usize),
            nr as usize,
        );
    }
    from.avail -= nr;
    to.avail += nr;
    to.touched = true;
    nr
}

/// `struct slab`: the descriptor at the start of an on-slab slab (after
/// its colour) or in another cache (off-slab); its `kmem_bufctl_t`
/// array follows it: `bufctl[i]` is the index of the free object after
/// object `i`, `free` the first free one.
#[repr(C)]
pub(crate) struct SlabDesc {
    next: *mut SlabDesc,
    prev: *mut SlabDesc,
    /// Bytes from the slab's first page to its first object.
    colouroff: usize,
    /// The first object.
    s_mem: *mut u8,
    /// Objects allocated.
    inuse: u32,
    /// First free object, or `BUFCTL_END`.
    free: u32,
    /// The node whose lists hold the slab.
    nodeid: u16,
    /// Which list the slab is on (the kernel's circular `list_head`
    /// needs no such note; klab's lists end in null).
    list: u8,
}

const _: () = assert!(size_of::<SlabDesc>() == SLAB_DESC_SIZE);

const ON_NONE: u8 = 0;
const ON_PARTIAL: u8 = 1;
const ON_FULL: u8 = 2;
const ON_FREE: u8 = 3;

impl SlabDesc {
    /// `slab_bufctl()`.
    fn bufctl(this: *mut SlabDesc) -> *mut u32 {
        // SAFETY: the array follows the descriptor in the same block.
        unsafe { this.add(1).cast::<u32>() }
    }
}

/// A list of slabs, linked through their descriptors.
struct SlabList {
    head: *mut SlabDesc,
    tail: *mut SlabDesc,
    len: usize,
}

impl SlabList {
    const NEW: SlabList = SlabList {
        head: ptr::null_mut(),
        tail: ptr::null_mut(),
        len: 0,
    };

    /// `list_add()`: at the head.
    ///
    /// # Safety
    /// `d` is a live descriptor on no list; the node's lock is held.
    unsafe fn add_head(&mut self, d: *mut SlabDesc, tag: u8) {
        // SAFETY: by contract.
        unsafe {
            (*d).prev = ptr::null_mut();
            (*d).next = self.head;
            (*d).list = tag;
            if self.head.is_null() {
                self.tail = d;
            } else {
                (*self.head).prev = d;
            }
        }
        self.head = d;
        self.len += 1;
    }

    /// `list_add_tail()`.
    ///
    /// # Safety
    /// As [`Self::add_head`].
    unsafe fn add_tail(&mut self, d: *mut SlabDesc, tag: u8) {
        // SAFETY: by contract.
        unsafe {
            (*d).next = ptr::null_mut();
            (*d).prev = self.tail;
            (*d).list = tag;
            if self.tail.is_null() {
                self.head = d;
            } else {
                (*self.tail).next = d;
            }
        }
        self.tail = d;
        self.len += 1;
    }

    /// `list_del()`.
    ///
    /// # Safety
    /// `d` is on this list; the node's lock is held.
    unsafe fn del(&mut self, d: *mut SlabDesc) {
        // SAFETY: by contract, d and its neighbours are live.
        unsafe {
            if (*d).prev.is_null() {
                self.head = (*d).next;
            } else {
                (*(*d).prev).next = (*d).next;
            }
            if (*d).next.is_null() {
                self.tail = (*d).prev;
            } else {
                (*(*d).next).prev = (*d).prev;
            }
            (*d).next = ptr::null_mut();
            (*d).prev = ptr::null_mut();
            (*d).list = ON_NONE;
        }
        self.len -= 1;
    }
}

/// `struct kmem_list3`'s fields under its `list_lock`.
struct Lists {
    partial: SlabList,
    full: SlabList,
    free: SlabList,
    /// Free objects in this node's slabs.
    free_objects: usize,
    /// Above this many free objects, empty slabs go back to the pages.
    free_limit: usize,
    /// The colour the next slab gets.
    colour_next: usize,
    /// A refill looked at the free list since the last reap.
    free_touched: bool,
    /// When `cache_reap()` next drains the shared array and free slabs
    /// (ms).
    next_reap: u64,
    /// The node's shared array (limit 0: none).
    shared: ArrayCache,
}

// SAFETY: the descriptors and entries the lists point to are reached only
// under the node's lock.
unsafe impl Send for Lists {}

impl Lists {
    const NEW: Lists = Lists {
        partial: SlabList::NEW,
        full: SlabList::NEW,
        free: SlabList::NEW,
        free_objects: 0,
        free_limit: 0,
        colour_next: 0,
        free_touched: false,
        next_reap: REAPTIMEOUT_LIST3_MS,
        shared: ArrayCache::EMPTY,
    };

    /// # Safety
    /// `d` is on the list its tag names.
    unsafe fn unlink(&mut self, d: *mut SlabDesc) {
        // SAFETY: by contract.
        unsafe {
            match (*d).list {
                ON_PARTIAL => self.partial.del(d),
                ON_FULL => self.full.del(d),
                ON_FREE => self.free.del(d),
                _ => {}
            }
        }
    }
}

/// A node of a cache: `struct kmem_list3` and its alien arrays
/// (`l3->alien[node]`: objects of other nodes freed on this one, each
/// array under its own lock).
struct Node {
    lists: Mutex<Lists>,
    alien: [Mutex<ArrayCache>; MAX_NUMNODES],
}

impl Node {
    #[allow(clippy::declare_interior_mutable_const)]
    const NEW: Node = Node {
        lists: Mutex::new(Lists::NEW),
        alien: [const { Mutex::new(ArrayCache::EMPTY) }; MAX_NUMNODES],
    };
}

/// Where a cache's off-slab descriptors come from
/// (`cachep->slabp_cache`, `kmem_find_general_cachep()`).
pub(crate) enum SlabpCache {
    /// On-slab management.
    None,
    /// A cache of the model's registry.
    Shared(Shared<SlabCore>),
    /// A class of the global allocator.
    Global(usize),
}

/// Where the shared and alien arrays' entries come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum QueueStore {
    /// The program's allocator (the model), given back on drop.
    Heap,
    /// Pages of the cache's page allocator, kept for the process (the
    /// global allocator, whose `malloc` cannot call itself).
    Pages,
}

/// Counters of a cache (`STATS` of mm/slab.c, the ones klab's tests and
/// experiments read).
#[derive(Debug, Default)]
pub struct SlabStats {
    /// Slabs made (`grown`).
    pub grown: AtomicUsize,
    /// Slabs given back (`reaped` by `cache_reap()` plus those
    /// `free_block()` destroyed).
    pub destroyed: AtomicUsize,
    /// Refills of a CPU array (`allocmiss`).
    pub refills: AtomicUsize,
    /// Flushes of a full CPU array (`freemiss`).
    pub flushes: AtomicUsize,
    /// Frees of another node's objects (`nodefrees`).
    pub node_frees: AtomicUsize,
    /// Alien arrays drained because full (`acoverflow`).
    pub alien_overflows: AtomicUsize,
}

impl SlabStats {
    const fn new() -> SlabStats {
        SlabStats {
            grown: AtomicUsize::new(0),
            destroyed: AtomicUsize::new(0),
            refills: AtomicUsize::new(0),
            flushes: AtomicUsize::new(0),
            node_frees: AtomicUsize::new(0),
            alien_overflows: AtomicUsize::new(0),
        }
    }
}

/// A node's lists as counted by [`SlabCore::node_counts`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// Slabs with every object allocated.
    pub full: usize,
    /// Slabs with some allocated.
    pub partial: usize,
    /// Slabs with none allocated.
    pub free: usize,
    /// Free objects in the node's slabs (`free_objects`).
    pub free_objects: usize,
    /// The node's `free_limit`.
    pub free_limit: usize,
    /// Objects in the node's shared array.
    pub shared_avail: usize,
    /// Objects in the node's alien arrays.
    pub alien_avail: usize,
    /// The colour the next slab will get.
    pub colour_next: usize,
}

/// What one [`SlabCore::cache_reap`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReapResult {
    /// Objects drained from the CPU's array.
    pub cpu_drained: u32,
    /// Objects drained from the node's alien array for `reap_node`.
    pub alien_drained: u32,
    /// Objects drained from the node's shared array.
    pub shared_drained: u32,
    /// Free slabs given back (`drain_freelist()`).
    pub slabs_freed: usize,
}

/// A SLAB cache.
pub struct SlabCore {
    name: Cow<'static, str>,
    geo: SlabGeometry,
    tun: Tunables,
    ctor: Option<Ctor>,
    pages: Shared<PageAllocator>,
    slabp: SlabpCache,
    store: QueueStore,
    nr_nodes: usize,
    nodes: [Node; MAX_NUMNODES],
    /// 0: shared and alien arrays not made yet; 1: being made; 2: made.
    ready: AtomicU8,
    /// `kmalloc` class (global allocator), kept in the slab's page flags.
    class: u32,
    /// Counters.
    pub stats: SlabStats,
}

// SAFETY: every raw pointer is reached under a node's lock, an alien
// array's lock, or by the owner of the CPU array passed in.
unsafe impl Sync for SlabCore {}
// SAFETY: as above.
unsafe impl Send for SlabCore {}

/// Bits 16 and up of a SLAB slab's head-page flags: its class + 1.
pub(crate) const CLASS_SHIFT: u32 = 16;
/// The class of a cache that is none of the global allocator's.
pub(crate) const NO_CLASS: u32 = 0xfffe;

impl SlabCore {
    /// A cache whose shared and alien arrays [`Self::setup`] makes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) const fn new(
        name: Cow<'static, str>,
        geo: SlabGeometry,
        tun: Tunables,
        ctor: Option<Ctor>,
        pages: Shared<PageAllocator>,
        slabp: SlabpCache,
        store: QueueStore,
        nr_nodes: usize,
        class: u32,
    ) -> SlabCore {
        SlabCore {
            name,
            geo,
            tun,
            ctor,
            pages,
            slabp,
            store,
            nr_nodes,
            nodes: [Node::NEW; MAX_NUMNODES],
            ready: AtomicU8::new(0),
            class,
            stats: SlabStats::new(),
        }
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The cache's shape.
    pub fn geometry(&self) -> &SlabGeometry {
        &self.geo
    }

    /// The per-CPU array tunables.
    pub fn tunables(&self) -> Tunables {
        self.tun
    }

    /// Nodes the cache has lists on.
    pub fn nr_nodes(&self) -> usize {
        self.nr_nodes
    }

    fn lock(&self, node: usize) -> Locked<MutexGuard<'_, Lists>> {
        Locked::new(
            self.nodes[node]
                .lists
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    fn lock_alien(&self, node: usize, remote: usize) -> Locked<MutexGuard<'_, ArrayCache>> {
        Locked::new(
            self.nodes[node].alien[remote]
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        )
    }

    fn alloc_entries(&self, n: u32) -> *mut *mut u8 {
        let bytes = n as usize * size_of::<*mut u8>();
        match self.store {
            QueueStore::Heap => {
                let l = std::alloc::Layout::array::<*mut u8>(n as usize).expect("array layout");
                // SAFETY: n > 0 (callers check), so the layout is not empty.
                let p = unsafe { std::alloc::alloc(l) };
                if p.is_null() {
                    std::alloc::handle_alloc_error(l);
                }
                p.cast()
            }
            QueueStore::Pages => match self.pages.alloc_pages(get_order(bytes), 0) {
                Some(page) => Page::address(page).cast(),
                None => ptr::null_mut(),
            },
        }
    }

    /// `do_tune_cpucache()`'s node part (`alloc_kmemlist()`): each node's
    /// `free_limit` from the CPUs on it, its shared array of
    /// `shared * batchcount` entries, and (more than one node) an alien
    /// array for each other node. `cpus_on_node[n]` counts node `n`'s
    /// CPUs. Runs once; later calls (and racing ones) do nothing.
    pub fn setup(&self, cpus_on_node: &[usize]) {
        if self
            .ready
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Acquire)
            .is_err()
        {
            while self.ready.load(Ordering::Acquire) == 1 {
                std::thread::yield_now();
            }
            return;
        }
        for node in 0..self.nr_nodes {
            let shared_n = self.tun.shared_entries();
            let shared = if shared_n > 0 {
                let e = self.alloc_entries(shared_n);
                if e.is_null() {
                    ArrayCache::EMPTY
                } else {
                    // SAFETY: fresh storage of shared_n entries, owned by
                    // the node's lock from now on.
                    unsafe { ArrayCache::new(e, shared_n, 0xbaad_f00d) }
                }
            } else {
                ArrayCache::EMPTY
            };
            let alien_n = self.tun.alien_entries();
            if self.nr_nodes > 1 {
                for remote in 0..self.nr_nodes {
                    if remote == node {
                        continue;
                    }
                    let e = self.alloc_entries(alien_n);
                    if !e.is_null() {
                        // SAFETY: fresh storage of alien_n entries.
                        *self.lock_alien(node, remote) =
                            unsafe { ArrayCache::new(e, alien_n, 0xbaad_f00d) };
                    }
                }
            }
            let mut l = self.lock(node);
            l.shared = shared;
            l.free_limit = self
                .tun
                .free_limit(cpus_on_node.get(node).copied().unwrap_or(0), self.geo.num);
        }
        self.ready.store(2, Ordering::Release);
    }

    /// Whether [`Self::setup`] has run.
    #[inline(always)]
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) == 2
    }

    /// A fresh CPU array with this cache's limit and batchcount over
    /// `entry`.
    ///
    /// # Safety
    /// As [`ArrayCache::new`], for `self.tunables().limit` entries.
    pub(crate) unsafe fn cpu_array(&self, entry: *mut *mut u8) -> ArrayCache {
        // SAFETY: forwarded.
        unsafe { ArrayCache::new(entry, self.tun.limit, self.tun.batchcount) }
    }

    /// A CPU array whose storage comes from the program's allocator (the
    /// model's CPUs); give it back with [`Self::free_cpu_array`].
    pub fn new_cpu_array(&self) -> ArrayCache {
        let l = std::alloc::Layout::array::<*mut u8>(self.tun.limit as usize).expect("layout");
        // SAFETY: limit >= 1, so the layout is not empty.
        let p = unsafe { std::alloc::alloc(l) };
        if p.is_null() {
            std::alloc::handle_alloc_error(l);
        }
        // SAFETY: fresh storage of limit entries, owned by the array.
        unsafe { self.cpu_array(p.cast()) }
    }

    /// Empties a CPU array from [`Self::new_cpu_array`] into the node's
    /// slabs and gives its storage back (a CPU going offline,
    /// `cpuup_callback(CPU_DEAD)`).
    pub fn free_cpu_array(&self, mut ac: ArrayCache, node: usize) {
        self.flush_cpu(&mut ac, node);
        let l = std::alloc::Layout::array::<*mut u8>(ac.limit as usize).expect("layout");
        // SAFETY: allocated in new_cpu_array with this layout.
        unsafe { std::alloc::dealloc(ac.storage().cast(), l) };
    }

    /// `____cache_alloc()`: the top of the CPU's array, else
    /// `cache_alloc_refill()`. Null when out of memory.
    #[inline]
    pub fn alloc(&self, ac: &mut ArrayCache, node: usize) -> *mut u8 {
        let p = ac.pop();
        if !p.is_null() {
            return p;
        }
        self.cache_alloc_refill(ac, node)
    }

    /// `cache_alloc_refill()`: refills an empty CPU array with up to
    /// `batchcount` objects (`BATCHREFILL_LIMIT` if the array was not
    /// touched since the last reap): from the node's shared array if it
    /// has any, else from partial slabs, then free slabs (marking the free
    /// list touched), moving each slab to the full or partial list; grows
    /// the cache if nothing was found. Returns one object, the array
    /// marked touched.
    pub fn cache_alloc_refill(&self, ac: &mut ArrayCache, node: usize) -> *mut u8 {
        debug_assert_eq!(ac.avail, 0);
        self.stats.refills.fetch_add(1, Ordering::Relaxed);
        loop {
            let mut batchcount = ac.batchcount;
            if !ac.touched && batchcount > BATCHREFILL_LIMIT {
                batchcount = BATCHREFILL_LIMIT;
            }
            {
                let mut l = self.lock(node);
                let l = &mut *l;
                if !(l.shared.limit > 0 && transfer_objects(ac, &mut l.shared, batchcount) > 0) {
                    while batchcount > 0 {
                        let mut d = l.partial.head;
                        if d.is_null() {
                            l.free_touched = true;
                            d = l.free.head;
                            if d.is_null() {
                                break;
                            }
                        }
                        // SAFETY: d is on one of the node's lists, lock held.
                        unsafe {
                            while ((*d).inuse as usize) < self.geo.num && batchcount > 0 {
                                batchcount -= 1;
                                let obj = self.slab_get_obj(d);
                                ac.push(obj);
                            }
                            l.unlink(d);
                            if (*d).free == BUFCTL_END {
                                l.full.add_head(d, ON_FULL);
                            } else {
                                l.partial.add_head(d, ON_PARTIAL);
                            }
                        }
                    }
                    l.free_objects -= ac.avail as usize;
                }
            }
            if ac.avail == 0 {
                if !self.cache_grow(node) {
                    return ptr::null_mut();
                }
                continue;
            }
            ac.touched = true;
            ac.avail -= 1;
            return ac.get(ac.avail);
        }
    }

    /// `slab_get_obj()`: the slab's first free object; `free` moves to the
    /// next index in the chain.
    ///
    /// # Safety
    /// `d` is a live descriptor of this cache with a free object; its
    /// node's lock is held.
    unsafe fn slab_get_obj(&self, d: *mut SlabDesc) -> *mut u8 {
        // SAFETY: by contract; free < num.
        unsafe {
            let i = (*d).free;
            let obj = (*d).s_mem.add(i as usize * self.geo.buffer_size);
            (*d).inuse += 1;
            (*d).free = *SlabDesc::bufctl(d).add(i as usize);
            obj
        }
    }

    /// `slab_put_obj()`: `obj` heads the slab's free chain again.
    ///
    /// # Safety
    /// `obj` is an allocated object of slab `d`; its node's lock is held.
    unsafe fn slab_put_obj(&self, d: *mut SlabDesc, obj: *mut u8) {
        // SAFETY: by contract.
        unsafe {
            let i = (obj.addr() - (*d).s_mem.addr()) / self.geo.buffer_size;
            debug_assert!(i < self.geo.num, "object outside its slab");
            *SlabDesc::bufctl(d).add(i) = (*d).free;
            (*d).free = i as u32;
            (*d).inuse -= 1;
        }
    }

    /// `cache_grow()`: a new slab for `node`: its colour (`colour_next`,
    /// cycling through `colour` values), pages from the page allocator,
    /// its descriptor on-slab after the colour or from the descriptor
    /// cache, objects constructed, `bufctl[i] = i + 1`; on the node's free
    /// list. The slab belongs to `node`'s lists even if its pages came
    /// from another node (`fallback_alloc()` is not modelled).
    pub fn cache_grow(&self, node: usize) -> bool {
        let offset = {
            let mut l = self.lock(node);
            let c = l.colour_next;
            l.colour_next += 1;
            if l.colour_next >= self.geo.colour {
                l.colour_next = 0;
            }
            c * self.geo.colour_off
        };
        let Some(page) = self.pages.alloc_pages(self.geo.gfporder, node) else {
            return false;
        };
        let base = Page::address(page);
        // SAFETY: fresh frames of ours; the slab is not published until it
        // is on the node's list.
        unsafe {
            let (d, colouroff) = match &self.slabp {
                SlabpCache::None => (
                    base.add(offset).cast::<SlabDesc>(),
                    offset + self.geo.slab_size,
                ),
                other => {
                    let dc = match other {
                        SlabpCache::Shared(c) => &**c,
                        SlabpCache::Global(i) => super::global::class_core(*i),
                        SlabpCache::None => unreachable!(),
                    };
                    let d = dc.alloc_node_one(node);
                    if d.is_null() {
                        self.pages.free_pages(page, self.geo.gfporder);
                        return false;
                    }
                    (d.cast::<SlabDesc>(), offset)
                }
            };
            d.write(SlabDesc {
                next: ptr::null_mut(),
                prev: ptr::null_mut(),
                colouroff,
                s_mem: base.add(colouroff),
                inuse: 0,
                free: 0,
                nodeid: node as u16,
                list: ON_NONE,
            });
            let bufctl = SlabDesc::bufctl(d);
            for i in 0..self.geo.num {
                let obj = base.add(colouroff + i * self.geo.buffer_size);
                if let Some(ctor) = self.ctor {
                    ctor(std::slice::from_raw_parts_mut(obj, self.geo.obj_size));
                }
                *bufctl.add(i) = if i + 1 == self.geo.num {
                    BUFCTL_END
                } else {
                    i as u32 + 1
                };
            }
            // `slab_map_pages()`: the head frame names the cache and the
            // slab; the tails lead to the head.
            make_compound(page, self.geo.gfporder);
            let p = &*page;
            p.set_slab((self as *const SlabCore).cast());
            p.set_prev(d.cast());
            p.flags.store(
                PG_SLAB_CLASSIC | (self.class + 1) << CLASS_SHIFT,
                Ordering::Relaxed,
            );
            let mut l = self.lock(node);
            l.free.add_tail(d, ON_FREE);
            l.free_objects += self.geo.num;
        }
        self.stats.grown.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// `slab_destroy()`: the pages go back, and an off-slab descriptor to
    /// its cache.
    ///
    /// # Safety
    /// `d` is an empty slab of this cache on no list.
    unsafe fn slab_destroy(&self, d: *mut SlabDesc) {
        // SAFETY: by contract; the head frame is the one holding s_mem.
        unsafe {
            let base = (*d).s_mem.sub((*d).colouroff);
            let page = virt_to_page(base).expect("a slab has a memory map");
            let p = &*page;
            p.flags.store(0, Ordering::Relaxed);
            p.set_slab(ptr::null());
            p.set_prev(ptr::null_mut());
            let node = (*d).nodeid as usize;
            match &self.slabp {
                SlabpCache::None => {}
                SlabpCache::Shared(c) => c.free_node_one(d.cast(), node),
                SlabpCache::Global(i) => {
                    super::global::class_core(*i).free_node_one(d.cast(), node)
                }
            }
            self.pages.free_pages(page, self.geo.gfporder);
        }
        self.stats.destroyed.fetch_add(1, Ordering::Relaxed);
    }

    /// Destroys a chain of slabs linked through `next` (collected under a
    /// lock, destroyed after it is dropped).
    ///
    /// # Safety
    /// Each is an empty slab of this cache on no list.
    unsafe fn destroy_chain(&self, mut d: *mut SlabDesc) {
        while !d.is_null() {
            // SAFETY: by contract; next is read before the slab goes.
            unsafe {
                let next = (*d).next;
                self.slab_destroy(d);
                d = next;
            }
        }
    }

    /// `free_block()`: objects back into their slabs on `node`'s lists.
    /// A slab left empty goes to the free list, or (when the node already
    /// has more than `free_limit` free objects) is destroyed; a slab still
    /// in use goes to the tail of the partial list. Slabs to destroy are
    /// chained on `doomed` for the caller to destroy after the lock.
    ///
    /// # Safety
    /// Every object is an allocated object of this cache in a slab on
    /// `node`'s lists, whose lock `l` is.
    unsafe fn free_block(&self, l: &mut Lists, objs: &[*mut u8], doomed: &mut *mut SlabDesc) {
        for &obj in objs {
            // SAFETY: by contract.
            unsafe {
                let d = Self::virt_to_slab(obj);
                l.unlink(d);
                self.slab_put_obj(d, obj);
                l.free_objects += 1;
                if (*d).inuse == 0 {
                    if l.free_objects > l.free_limit {
                        l.free_objects -= self.geo.num;
                        (*d).next = *doomed;
                        *doomed = d;
                    } else {
                        l.free.add_head(d, ON_FREE);
                    }
                } else {
                    l.partial.add_tail(d, ON_PARTIAL);
                }
            }
        }
    }

    /// `virt_to_slab()`: the descriptor of the slab holding `obj`.
    ///
    /// # Safety
    /// `obj` lies in a live slab of a SLAB cache.
    #[inline(always)]
    pub(crate) unsafe fn virt_to_slab(obj: *const u8) -> *mut SlabDesc {
        // SAFETY: by contract.
        unsafe {
            let page = Page::head(virt_to_page(obj).expect("a slab has a memory map"));
            (*page).prev().cast()
        }
    }

    /// The node of the slab holding `obj`.
    ///
    /// # Safety
    /// As [`Self::virt_to_slab`].
    pub unsafe fn obj_node(obj: *const u8) -> usize {
        // SAFETY: forwarded; the descriptor lives as long as the slab.
        unsafe { (*Self::virt_to_slab(obj)).nodeid as usize }
    }

    /// `__cache_free()`: an object of another node goes to the alien
    /// path; otherwise onto the CPU's array, flushing `batchcount`
    /// objects first if it is full.
    ///
    /// # Safety
    /// `obj` is an allocated object of this cache, freed once.
    #[inline]
    pub unsafe fn free(&self, ac: &mut ArrayCache, node: usize, obj: *mut u8) {
        // SAFETY: forwarded.
        if self.nr_nodes > 1 && unsafe { self.cache_free_alien(node, obj) } {
            return;
        }
        if ac.push(obj) {
            return;
        }
        self.cache_flusharray(ac, node);
        ac.push(obj);
    }

    /// `cache_free_alien()`: an object whose slab is on another node goes
    /// to this node's alien array for that node (drained to the other
    /// node first if full, `__drain_alien_cache()`), or, without one,
    /// straight to the other node's lists. False for a local object.
    ///
    /// # Safety
    /// As [`Self::free`].
    unsafe fn cache_free_alien(&self, node: usize, obj: *mut u8) -> bool {
        // SAFETY: forwarded.
        let nodeid = unsafe { Self::obj_node(obj) };
        if nodeid == node {
            return false;
        }
        self.stats.node_frees.fetch_add(1, Ordering::Relaxed);
        let mut a = self.lock_alien(node, nodeid);
        if a.limit > 0 {
            if a.avail == a.limit {
                self.stats.alien_overflows.fetch_add(1, Ordering::Relaxed);
                self.drain_alien(&mut a, nodeid);
            }
            a.push(obj);
        } else {
            drop(a);
            let mut doomed = ptr::null_mut();
            {
                let mut l = self.lock(nodeid);
                // SAFETY: obj's slab is on nodeid's lists.
                unsafe { self.free_block(&mut l, &[obj], &mut doomed) };
            }
            // SAFETY: collected by free_block, off every list.
            unsafe { self.destroy_chain(doomed) };
        }
        true
    }

    /// `__drain_alien_cache()`: an alien array's objects go to their
    /// node: into its shared array as far as there is room, the rest into
    /// its slabs.
    fn drain_alien(&self, a: &mut ArrayCache, remote: usize) -> u32 {
        let n = a.avail;
        if n == 0 {
            return 0;
        }
        let mut doomed = ptr::null_mut();
        {
            let mut l = self.lock(remote);
            let l = &mut *l;
            if l.shared.limit > 0 {
                let lim = a.limit;
                transfer_objects(&mut l.shared, a, lim);
            }
            let objs: &[*mut u8] = if a.avail == 0 {
                &[]
            } else {
                // SAFETY: the first avail entries are initialised.
                unsafe { std::slice::from_raw_parts(a.entry, a.avail as usize) }
            };
            // SAFETY: alien objects belong to `remote`'s slabs.
            unsafe { self.free_block(l, objs, &mut doomed) };
            a.avail = 0;
        }
        // SAFETY: collected by free_block.
        unsafe { self.destroy_chain(doomed) };
        n
    }

    /// `cache_flusharray()`: a full CPU array gives its `batchcount`
    /// oldest objects to the node's shared array, as many as it has room
    /// for, or else to their slabs (`free_block()`).
    pub fn cache_flusharray(&self, ac: &mut ArrayCache, node: usize) {
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        let mut batchcount = ac.batchcount.min(ac.avail);
        let mut doomed = ptr::null_mut();
        {
            let mut l = self.lock(node);
            let l = &mut *l;
            let room = l.shared.limit - l.shared.avail;
            if l.shared.limit > 0 && room > 0 {
                batchcount = batchcount.min(room);
                // SAFETY: the first batchcount entries of ac are
                // initialised; the shared array has room for them.
                unsafe {
                    ptr::copy_nonoverlapping(
                        ac.entry,
                        l.shared.entry.add(l.shared.avail as usize),
                        batchcount as usize,
                    );
                }
                l.shared.avail += batchcount;
            } else {
                // SAFETY: the CPU's objects are this cache's, on this
                // node (frees of other nodes' objects went alien).
                unsafe {
                    let objs = std::slice::from_raw_parts(ac.entry, batchcount as usize);
                    self.free_block(l, objs, &mut doomed);
                }
            }
        }
        // SAFETY: collected by free_block.
        unsafe { self.destroy_chain(doomed) };
        ac.remove_bottom(batchcount);
    }

    /// `drain_array()`: a touched array is only untouched; otherwise
    /// (or when forced) `(limit + 4) / 5` of its oldest objects go back
    /// to their slabs (half of them, rounded up, if it holds fewer; all
    /// when forced). Returns how many.
    fn drain_array(&self, ac: &mut ArrayCache, node: usize, force: bool) -> u32 {
        if ac.avail == 0 {
            return 0;
        }
        if ac.touched && !force {
            ac.touched = false;
            return 0;
        }
        let mut doomed = ptr::null_mut();
        let tofree;
        {
            let mut l = self.lock(node);
            let mut t = if force {
                ac.avail
            } else {
                ac.limit.div_ceil(5)
            };
            if t > ac.avail {
                t = ac.avail.div_ceil(2);
            }
            // SAFETY: the first t entries are this node's objects.
            unsafe {
                let objs = std::slice::from_raw_parts(ac.entry, t as usize);
                self.free_block(&mut l, objs, &mut doomed);
            }
            tofree = t;
        }
        // SAFETY: collected by free_block.
        unsafe { self.destroy_chain(doomed) };
        ac.remove_bottom(tofree);
        tofree
    }

    /// Empties a CPU's array into the node's slabs (a CPU going offline;
    /// a thread exiting).
    pub fn flush_cpu(&self, ac: &mut ArrayCache, node: usize) -> u32 {
        self.drain_array(ac, node, true)
    }

    /// The shared array's part of `drain_array()` for `node`.
    fn drain_shared(&self, node: usize) -> u32 {
        let mut doomed = ptr::null_mut();
        let n;
        {
            let mut l = self.lock(node);
            let l = &mut *l;
            if l.shared.avail == 0 {
                return 0;
            }
            if l.shared.touched {
                l.shared.touched = false;
                return 0;
            }
            let mut sh = std::mem::replace(&mut l.shared, ArrayCache::EMPTY);
            let mut t = sh.limit.div_ceil(5);
            if t > sh.avail {
                t = sh.avail.div_ceil(2);
            }
            // SAFETY: the shared array's first t entries are this node's
            // objects.
            unsafe {
                let objs = std::slice::from_raw_parts(sh.entry, t as usize);
                self.free_block(l, objs, &mut doomed);
            }
            sh.remove_bottom(t);
            l.shared = sh;
            n = t;
        }
        // SAFETY: collected by free_block.
        unsafe { self.destroy_chain(doomed) };
        n
    }

    /// `drain_freelist()`: gives back up to `tofree` slabs from the tail
    /// of the node's free list; returns how many.
    pub fn drain_freelist(&self, node: usize, tofree: usize) -> usize {
        let mut freed = 0;
        while freed < tofree {
            let d = {
                let mut l = self.lock(node);
                let d = l.free.tail;
                if d.is_null() {
                    break;
                }
                // SAFETY: d is on the free list, lock held.
                unsafe { l.free.del(d) };
                l.free_objects -= self.geo.num;
                d
            };
            // SAFETY: off every list, empty.
            unsafe { self.slab_destroy(d) };
            freed += 1;
        }
        freed
    }

    /// `cache_reap()` for one cache on one CPU at time `now_ms`: drains
    /// the node's alien array for `reap_node` (`reap_alien()`), then the
    /// CPU's array (`drain_array()`); once the node's `next_reap` has
    /// passed (every `REAPTIMEOUT_LIST3`, 4 s), its shared array too, and,
    /// unless a refill touched the free list since, gives back
    /// `ceil(free_limit / (5 * num))` free slabs (`drain_freelist()`).
    pub fn cache_reap(
        &self,
        ac: &mut ArrayCache,
        node: usize,
        reap_node: usize,
        now_ms: u64,
    ) -> ReapResult {
        let mut r = ReapResult::default();
        if self.nr_nodes > 1
            && reap_node != node
            && reap_node < self.nr_nodes
            && let Ok(a) = self.nodes[node].alien[reap_node].try_lock()
        {
            let mut a = Locked::new(a);
            if a.avail > 0 {
                r.alien_drained = self.drain_alien(&mut a, reap_node);
            }
        }
        r.cpu_drained = self.drain_array(ac, node, false);
        let tofree = {
            let mut l = self.lock(node);
            if l.next_reap > now_ms {
                return r;
            }
            l.next_reap = now_ms + REAPTIMEOUT_LIST3_MS;
            l.free_limit
        };
        r.shared_drained = self.drain_shared(node);
        let touched = {
            let mut l = self.lock(node);
            std::mem::replace(&mut l.free_touched, false)
        };
        if !touched {
            let num = self.geo.num;
            r.slabs_freed = self.drain_freelist(node, tofree.div_ceil(5 * num));
        }
        r
    }

    /// `____cache_alloc_node()`: one object straight from `node`'s slabs
    /// (no CPU array), growing the cache if it has none free: how a
    /// descriptor cache serves off-slab caches here, and how a thread
    /// without a CPU array allocates.
    pub fn alloc_node_one(&self, node: usize) -> *mut u8 {
        loop {
            {
                let mut l = self.lock(node);
                let l = &mut *l;
                let mut d = l.partial.head;
                if d.is_null() {
                    l.free_touched = true;
                    d = l.free.head;
                }
                if !d.is_null() {
                    // SAFETY: d is on the node's lists, with a free object.
                    unsafe {
                        let obj = self.slab_get_obj(d);
                        l.unlink(d);
                        l.free_objects -= 1;
                        if (*d).free == BUFCTL_END {
                            l.full.add_head(d, ON_FULL);
                        } else {
                            l.partial.add_head(d, ON_PARTIAL);
                        }
                        return obj;
                    }
                }
            }
            if !self.cache_grow(node) {
                return ptr::null_mut();
            }
        }
    }

    /// Frees one object straight to its slab (`free_block()` of one, as
    /// `cache_free_alien()` does without an alien array).
    ///
    /// # Safety
    /// `obj` is an allocated object of this cache, freed once.
    pub unsafe fn free_node_one(&self, obj: *mut u8, _node: usize) {
        // SAFETY: forwarded.
        let nodeid = unsafe { Self::obj_node(obj) };
        let mut doomed = ptr::null_mut();
        {
            let mut l = self.lock(nodeid);
            // SAFETY: forwarded.
            unsafe { self.free_block(&mut l, &[obj], &mut doomed) };
        }
        // SAFETY: collected by free_block.
        unsafe { self.destroy_chain(doomed) };
    }

    /// A node's list lengths and counters.
    pub fn node_counts(&self, node: usize) -> NodeCounts {
        let alien_avail = (0..self.nr_nodes)
            .filter(|&r| r != node)
            .map(|r| self.lock_alien(node, r).avail as usize)
            .sum();
        let l = self.lock(node);
        NodeCounts {
            full: l.full.len,
            partial: l.partial.len,
            free: l.free.len,
            free_objects: l.free_objects,
            free_limit: l.free_limit,
            shared_avail: l.shared.avail as usize,
            alien_avail,
            colour_next: l.colour_next,
        }
    }

    /// Slabs on every node.
    pub fn nr_slabs(&self) -> usize {
        (0..self.nr_nodes)
            .map(|n| {
                let c = self.node_counts(n);
                c.full + c.partial + c.free
            })
            .sum()
    }

    /// Bytes of the node-level queues: every node's shared array and its
    /// alien arrays (header plus entries), as allocated.
    pub fn node_queue_bytes(&self) -> (usize, usize) {
        let mut shared = 0;
        let mut alien = 0;
        for n in 0..self.nr_nodes {
            shared += self.lock(n).shared.bytes();
            for r in 0..self.nr_nodes {
                if r != n {
                    alien += self.lock_alien(n, r).bytes();
                }
            }
        }
        (shared, alien)
    }

    /// Checks the lists against the descriptors: each slab on the list
    /// its `inuse` says, `free_objects` the sum of free objects.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        for n in 0..self.nr_nodes {
            let l = self.lock(n);
            let mut free = 0;
            for (list, tag) in [
                (&l.full, ON_FULL),
                (&l.partial, ON_PARTIAL),
                (&l.free, ON_FREE),
            ] {
                let mut d = list.head;
                let mut len = 0;
                while !d.is_null() {
                    // SAFETY: on the node's lists, lock held.
                    unsafe {
                        assert_eq!((*d).list, tag, "{}: slab on the wrong list", self.name);
                        assert_eq!((*d).nodeid as usize, n);
                        let inuse = (*d).inuse as usize;
                        match tag {
                            ON_FULL => assert_eq!(inuse, self.geo.num, "{}: full", self.name),
                            ON_FREE => assert_eq!(inuse, 0, "{}: free", self.name),
                            _ => assert!(inuse > 0 && inuse < self.geo.num, "{}", self.name),
                        }
                        free += self.geo.num - inuse;
                        d = (*d).next;
                    }
                    len += 1;
                }
                assert_eq!(len, list.len);
            }
            assert_eq!(free, l.free_objects, "{}: free_objects", self.name);
        }
    }
}

impl Drop for SlabCore {
    fn drop(&mut self) {
        if self.store != QueueStore::Heap {
            return;
        }
        for n in 0..self.nr_nodes {
            let node = &mut self.nodes[n];
            let lists = node.lists.get_mut().unwrap_or_else(|e| e.into_inner());
            let mut arrays = vec![std::mem::replace(&mut lists.shared, ArrayCache::EMPTY)];
            for a in &mut node.alien {
                arrays.push(std::mem::replace(
                    a.get_mut().unwrap_or_else(|e| e.into_inner()),
                    ArrayCache::EMPTY,
                ));
            }
            for a in arrays {
                if !a.entry.is_null() {
                    let l = std::alloc::Layout::array::<*mut u8>(a.limit as usize)
                        .expect("array layout");
                    // SAFETY: allocated by alloc_entries (Heap) with this
                    // layout.
                    unsafe { std::alloc::dealloc(a.entry.cast(), l) };
                }
            }
        }
    }
}
