//! Per-CPU sheaves (6.18) and the detached freelists of bulk free (4.6).
//!
//! Mirrors mm/slub.c: `free_to_pcs()`, `alloc_from_pcs()`,
//! `__pcs_replace_full_main()` and `__pcs_replace_empty_main()` (6.18,
//! "percpu sheaves"), and `build_detached_freelist()` with
//! `__kmem_cache_free_bulk()` (4.6, `kmem_cache_free_bulk()`). The seed
//! page (003) describes SLUB as doing away with SLAB's per-CPU queues;
//! 6.18 brought a small opt-in one back for caches that want it, because
//! a free to a slab that is not the CPU's own costs a compare-and-swap on
//! the slab's `struct page` line, often one another CPU last wrote.
//!
//! # Data structures
//!
//! ```text
//!  PcsSheaves (slub_percpu_sheaves, one per CPU and cache)
//!  ┌────────────────────────────────────────────┐
//!  │ main  ─▶ sheaf: size, objects[capacity]    │  alloc pops, free pushes
//!  │ spare ─▶ sheaf: size, objects[capacity]    │  empty or full, swapped in
//!  └────────────────────────────────────────────┘
//! ```
//!
//! A sheaf is an array of object pointers: a free pushes the object on
//! the CPU's main sheaf without touching the object or its slab, an
//! allocation pops the last one pushed. Objects in a sheaf count as in use
//! in their slabs (`inuse`), as in the kernel.
//!
//! # Invariants ([`PcsSheaves::assert_invariants`])
//!
//! * `0 <= size(main), size(spare) <= capacity <= SHEAF_CAPACITY`;
//! * `size(spare) ∈ {0, capacity}` (no barn: a sheaf becomes the spare
//!   only when it is empty or full);
//! * every object in a sheaf is non-null and appears once.
//!
//! # Rules
//!
//! * `free_to_pcs()`: main not full: push. Main full: swap with the spare
//!   if the spare is not full (`__pcs_replace_full_main()`); otherwise the
//!   full main would go to the node's barn of full sheaves. klab keeps no
//!   barn, so it takes the kernel's path for a barn that already holds its
//!   `MAX_FULL_SHEAVES`: the spare (full) is flushed to its slabs
//!   (`sheaf_flush_unused()`, a bulk free) and becomes the main, the full
//!   main becomes the spare.
//! * `alloc_from_pcs()`: main not empty: pop. Main empty: swap with the
//!   spare if it has objects (`__pcs_replace_empty_main()`); otherwise the
//!   allocation takes the slab path. The kernel would next take a full
//!   sheaf from the barn or refill an empty one in bulk (`refill_sheaf()`);
//!   klab has no barn and does not refill: an object taken from the CPU
//!   slab's freelist costs no more than one taken from a sheaf.
//! * `build_detached_freelist()`: from the last pointer of an array, link
//!   every object of the same slab into one freelist, looking past at most
//!   three objects of other slabs (`lookahead = 3`), and move the others
//!   to the front; the caller frees the list with one compare-and-swap
//!   (`do_slab_free(s, slab, head, tail, cnt)`) and goes on with the rest.
//!
//! # Locking
//!
//! None: a CPU's sheaves are its own (`&mut`, as `local_lock` makes them in
//! the kernel).

use std::ptr;

use crate::page::Page;

use super::set_fp;

/// The most objects a sheaf holds (the array's length; a cache may use
/// fewer: [`sheaf_capacity_for`]).
pub const SHEAF_CAPACITY: usize = 32;
const _: () = assert!(SHEAF_CAPACITY.is_power_of_two());

const _: () = assert!(std::mem::offset_of!(PcsSheaves, objects) == 64);

/// Sheaf capacity by object size: klab's choice for the global
/// allocator's caches (the kernel's `sheaf_capacity` is set by each
/// cache's creator in `kmem_cache_args`), fewer objects for larger ones so
/// a thread's two sheaves hold at most about 64 KiB per class.
pub const fn sheaf_capacity_for(size: usize) -> usize {
    if size <= 1024 {
        SHEAF_CAPACITY
    } else if size <= 4096 {
        8
    } else {
        4
    }
}

/// Counters of a CPU's sheaves (the kernel's `CONFIG_SLUB_STATS` items of
/// the same names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SheafStats {
    /// `ALLOC_PCS`: allocations served from a sheaf.
    pub alloc_pcs: u64,
    /// `FREE_PCS`: frees pushed on a sheaf.
    pub free_pcs: u64,
    /// `SHEAF_SWAP`: main and spare swapped.
    pub sheaf_swap: u64,
    /// `SHEAF_FLUSH`: sheaves flushed to their slabs.
    pub sheaf_flush: u64,
    /// `BARN_GET`: full sheaves taken from the barn.
    pub barn_get: u64,
    /// `BARN_PUT`: full sheaves put in the barn.
    pub barn_put: u64,
}

impl SheafStats {
    /// All zero.
    pub const ZERO: SheafStats = SheafStats {
        alloc_pcs: 0,
        free_pcs: 0,
        sheaf_swap: 0,
        sheaf_flush: 0,
        barn_get: 0,
        barn_put: 0,
    };

    /// The sum of two sets of counters.
    pub fn add(&self, o: &SheafStats) -> SheafStats {
        SheafStats {
            alloc_pcs: self.alloc_pcs + o.alloc_pcs,
            free_pcs: self.free_pcs + o.free_pcs,
            sheaf_swap: self.sheaf_swap + o.sheaf_swap,
            sheaf_flush: self.sheaf_flush + o.sheaf_flush,
            barn_get: self.barn_get + o.barn_get,
            barn_put: self.barn_put + o.barn_put,
        }
    }
}

/// `struct slub_percpu_sheaves`: a CPU's main and spare sheaf for one
/// cache. The two sheaves are stored inline; `main` says which is which,
/// so a swap moves no object.
///
/// Laid out so that everything but the object arrays (which sheaf is the
/// main, sizes, capacity, counters) fills one 64-byte cache line: an
/// allocation or a free touches that line and one line of objects.
#[repr(C, align(64))]
pub struct PcsSheaves {
    /// Which of `objects` is the main sheaf (0 or 1).
    main: u32,
    /// The cache's sheaf capacity (`s->sheaf_capacity`).
    capacity: u32,
    /// Objects in the main sheaf (`[0]`) and the spare (`[1]`): indexed
    /// by role, not by array, so a push or pop reads the main's size
    /// without first reading which array is the main (a swap swaps them).
    size: [u32; 2],
    /// Counters.
    pub(crate) stats: SheafStats,
    /// The sheaves' object arrays.
    objects: [[*mut u8; SHEAF_CAPACITY]; 2],
}

// SAFETY: the pointers are objects the owning CPU holds; moving the state
// to another thread moves that ownership with it.
unsafe impl Send for PcsSheaves {}

impl PcsSheaves {
    /// Empty sheaves of `capacity` objects each (at most
    /// [`SHEAF_CAPACITY`]).
    pub const fn new(capacity: usize) -> Self {
        assert!(capacity > 0 && capacity <= SHEAF_CAPACITY);
        PcsSheaves {
            main: 0,
            size: [0, 0],
            capacity: capacity as u32,
            stats: SheafStats::ZERO,
            objects: [[ptr::null_mut(); SHEAF_CAPACITY]; 2],
        }
    }

    /// Sheaves of capacity 0, all zero bytes: allocation finds them empty
    /// and nothing may free to them until [`Self::set_capacity`].
    pub const fn off() -> Self {
        PcsSheaves {
            main: 0,
            size: [0, 0],
            capacity: 0,
            stats: SheafStats::ZERO,
            objects: [[ptr::null_mut(); SHEAF_CAPACITY]; 2],
        }
    }

    /// Sets the capacity of empty sheaves (at most [`SHEAF_CAPACITY`]).
    ///
    /// # Panics
    /// If a sheaf holds objects or the capacity is out of range.
    pub fn set_capacity(&mut self, capacity: usize) {
        assert!(capacity > 0 && capacity <= SHEAF_CAPACITY);
        assert_eq!(self.size, [0, 0], "capacity changed on a sheaf in use");
        self.capacity = capacity as u32;
    }

    /// Objects in the main and the spare sheaf.
    pub fn sizes(&self) -> (usize, usize) {
        (self.size[0] as usize, self.size[1] as usize)
    }

    /// The capacity of each sheaf.
    pub fn capacity(&self) -> usize {
        self.capacity as usize
    }

    /// Counters.
    pub fn stats(&self) -> SheafStats {
        self.stats
    }

    /// `alloc_from_pcs()`: the object last pushed on the main sheaf; an
    /// empty main is swapped with a spare that has objects; null when
    /// both are empty (the caller takes the slab path).
    #[inline(always)]
    pub fn alloc_from_pcs(&mut self) -> *mut u8 {
        // `main < 2` and sizes `<= SHEAF_CAPACITY`: the masks change no
        // index and spare the bounds checks.
        let m = (self.main & 1) as usize;
        let n = self.size[0];
        if n > 0 {
            self.size[0] = n - 1;
            self.stats.alloc_pcs += 1;
            return self.objects[m][(n as usize - 1) & (SHEAF_CAPACITY - 1)];
        }
        self.replace_empty_main()
    }

    /// `__pcs_replace_empty_main()` without a barn: swap in a spare that
    /// has objects and pop, or null.
    #[cold]
    #[inline(never)]
    fn replace_empty_main(&mut self) -> *mut u8 {
        if self.size[1] == 0 {
            return ptr::null_mut();
        }
        self.main ^= 1;
        self.size.swap(0, 1);
        self.stats.sheaf_swap += 1;
        self.alloc_from_pcs()
    }

    /// `free_to_pcs()`: pushes `obj` on the main sheaf; false when it is
    /// full (the caller then takes [`Self::free_to_pcs_full`]: the fast
    /// path returns nothing bigger than a flag).
    #[inline(always)]
    pub fn try_free_to_pcs(&mut self, obj: *mut u8) -> bool {
        let m = (self.main & 1) as usize;
        let n = self.size[0];
        if n < self.capacity {
            self.objects[m][n as usize & (SHEAF_CAPACITY - 1)] = obj;
            self.size[0] = n + 1;
            self.stats.free_pcs += 1;
            return true;
        }
        false
    }

    /// `free_to_pcs()`: pushes `obj` on the main sheaf. When main and
    /// spare are both full, the spare's objects are taken out and returned
    /// for the caller to free to their slabs (`sheaf_flush_unused()`); the
    /// emptied sheaf becomes the main and the full main the spare. The
    /// sheaves are consistent before the caller flushes, so the flush may
    /// allocate and free (through these very sheaves) as it likes.
    #[inline]
    #[must_use = "objects returned must be freed to their slabs"]
    pub fn free_to_pcs(&mut self, obj: *mut u8) -> Option<DetachedSheaf> {
        if self.try_free_to_pcs(obj) {
            return None;
        }
        self.replace_full_main(obj)
    }

    /// The rest of [`Self::free_to_pcs`] after [`Self::try_free_to_pcs`]
    /// found the main sheaf full.
    #[must_use = "objects returned must be freed to their slabs"]
    pub fn free_to_pcs_full(&mut self, obj: *mut u8) -> Option<DetachedSheaf> {
        self.replace_full_main(obj)
    }

    /// `__pcs_replace_full_main()` without a barn, then the push.
    #[cold]
    #[inline(never)]
    fn replace_full_main(&mut self, obj: *mut u8) -> Option<DetachedSheaf> {
        // A spare that is not full is swapped in (the kernel's test;
        // without a barn a spare is always empty or full); a full one is
        // flushed first.
        let flush = if self.size[1] < self.capacity {
            None
        } else {
            self.take_sheaf(1)
        };
        self.main ^= 1;
        self.size.swap(0, 1);
        self.stats.sheaf_swap += 1;
        let m = (self.main & 1) as usize;
        let n = self.size[0] as usize;
        self.objects[m][n & (SHEAF_CAPACITY - 1)] = obj;
        self.size[0] += 1;
        self.stats.free_pcs += 1;
        flush
    }

    /// Empties the main (`role` 0) or the spare (1), returning its
    /// objects if it had any.
    fn take_sheaf(&mut self, role: usize) -> Option<DetachedSheaf> {
        let size = self.size[role] as usize;
        if size == 0 {
            return None;
        }
        self.size[role] = 0;
        self.stats.sheaf_flush += 1;
        Some(DetachedSheaf {
            objects: self.objects[(self.main as usize ^ role) & 1],
            size,
        })
    }

    /// `barn_replace_empty_sheaf()`: with both sheaves empty, a full
    /// sheaf from the barn becomes the main (its objects copied in; the
    /// barn keeps no empty sheaves, as the arrays live here). False when
    /// the barn has none or a sheaf is not empty.
    pub fn refill_from_barn(&mut self, barn: &Barn) -> bool {
        if self.size != [0, 0] || self.capacity == 0 {
            return false;
        }
        let m = (self.main & 1) as usize;
        let Some(n) = barn.get_full(&mut self.objects[m]) else {
            return false;
        };
        self.size[0] = n as u32;
        self.stats.barn_get += 1;
        true
    }

    /// A sheaf [`Self::free_to_pcs`] or [`Self::take`] detached went to
    /// the barn (`barn_put_full_sheaf()`) instead of its slabs.
    pub fn detached_to_barn(&mut self) {
        self.stats.sheaf_flush -= 1;
        self.stats.barn_put += 1;
    }

    /// `pcs_flush_all()`, one sheaf at a time: the objects of the spare,
    /// then of the main, until both are empty (a CPU going offline; here a
    /// thread exiting).
    pub fn take(&mut self) -> Option<DetachedSheaf> {
        let spare = self.take_sheaf(1);
        spare.or_else(|| self.take_sheaf(0))
    }

    /// Checks the invariants of the module header.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        assert!(self.capacity as usize <= SHEAF_CAPACITY);
        assert!(
            self.capacity > 0 || self.size == [0, 0],
            "objects in sheaves that are off"
        );
        assert!(self.main < 2);
        let spare = self.size[1];
        assert!(
            spare == 0 || spare == self.capacity,
            "spare sheaf neither empty nor full: {spare}"
        );
        let mut seen = std::collections::BTreeSet::new();
        for role in 0..2 {
            assert!(
                self.size[role] <= self.capacity,
                "sheaf {role}: size {} > capacity {}",
                self.size[role],
                self.capacity
            );
            let s = (self.main as usize ^ role) & 1;
            for &o in &self.objects[s][..self.size[role] as usize] {
                assert!(!o.is_null(), "null object in a sheaf");
                assert!(
                    seen.insert(o.addr()),
                    "object {:#x} twice in sheaves",
                    o.addr()
                );
            }
        }
    }
}

/// The objects of a sheaf taken out to be freed to their slabs.
pub struct DetachedSheaf {
    objects: [*mut u8; SHEAF_CAPACITY],
    size: usize,
}

impl DetachedSheaf {
    /// The objects.
    pub fn objects(&mut self) -> &mut [*mut u8] {
        &mut self.objects[..self.size]
    }
}

/// `MAX_FULL_SHEAVES`: most full sheaves a barn keeps.
pub const MAX_FULL_SHEAVES: usize = 10;

/// `struct node_barn` (6.18): a node's store of full sheaves for one
/// cache, shared by its CPUs. A CPU whose sheaves are both full puts one
/// here (`barn_put_full_sheaf()`) rather than freeing its objects to
/// their slabs; a CPU whose sheaves are both empty takes one
/// (`barn_replace_empty_sheaf()`) before it goes to the slabs. Objects
/// freed on one CPU so reach another 32 at a time, for one lock, without
/// a compare-and-swap on any slab: the producer/consumer case.
///
/// klab's sheaves are arrays inside the CPU state, so a barn keeps full
/// sheaves by value (their object arrays are copied in and out) and no
/// empty ones (the kernel keeps up to `MAX_EMPTY_SHEAVES` to save
/// allocating them). Its lock (a spin lock, `barn->lock`) is held only
/// to copy one array: nothing under it allocates ([`crate::reentry`]);
/// the global allocator takes it inside a slow path's fork bracket.
///
/// Invariant: `nr_full <= MAX_FULL_SHEAVES`; each kept sheaf holds
/// `1..=SHEAF_CAPACITY` objects.
pub struct Barn {
    lock: crate::primitive::AtomicBool,
    /// `nr_full`, readable without the lock (a hint for the fast path).
    nr_full: crate::primitive::AtomicUsize,
    inner: std::cell::UnsafeCell<BarnInner>,
}

struct BarnInner {
    sizes: [u32; MAX_FULL_SHEAVES],
    full: [[*mut u8; SHEAF_CAPACITY]; MAX_FULL_SHEAVES],
}

// SAFETY: `inner` is only touched with `lock` held; the pointers are
// objects whose ownership moves with the sheaf.
unsafe impl Sync for Barn {}
// SAFETY: as above.
unsafe impl Send for Barn {}

impl Default for Barn {
    fn default() -> Self {
        Self::new()
    }
}

impl Barn {
    /// An empty barn.
    pub const fn new() -> Barn {
        Barn {
            lock: crate::primitive::AtomicBool::new(false),
            nr_full: crate::primitive::AtomicUsize::new(0),
            inner: std::cell::UnsafeCell::new(BarnInner {
                sizes: [0; MAX_FULL_SHEAVES],
                full: [[ptr::null_mut(); SHEAF_CAPACITY]; MAX_FULL_SHEAVES],
            }),
        }
    }

    /// Full sheaves kept (a hint when read without the lock).
    #[inline(always)]
    pub fn nr_full(&self) -> usize {
        self.nr_full.load(crate::primitive::Ordering::Relaxed)
    }

    fn locked<R>(&self, f: impl FnOnce(&mut BarnInner, &mut usize) -> R) -> R {
        use crate::primitive::Ordering;
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        let _held = crate::reentry::Held::acquire();
        let mut n = self.nr_full.load(Ordering::Relaxed);
        // SAFETY: the lock is held.
        let r = f(unsafe { &mut *self.inner.get() }, &mut n);
        self.nr_full.store(n, Ordering::Relaxed);
        self.lock.store(false, Ordering::Release);
        r
    }

    /// `barn_put_full_sheaf()`: keeps `objects` (a detached full sheaf);
    /// false when the barn already keeps `MAX_FULL_SHEAVES`.
    pub fn put_full(&self, objects: &[*mut u8]) -> bool {
        debug_assert!(!objects.is_empty() && objects.len() <= SHEAF_CAPACITY);
        self.locked(|b, n| {
            if *n == MAX_FULL_SHEAVES {
                return false;
            }
            b.full[*n][..objects.len()].copy_from_slice(objects);
            b.sizes[*n] = objects.len() as u32;
            *n += 1;
            true
        })
    }

    /// `barn_get_full_sheaf()`: the last full sheaf put, copied into
    /// `into`; its size, or `None` when there is none.
    pub fn get_full(&self, into: &mut [*mut u8; SHEAF_CAPACITY]) -> Option<usize> {
        if self.nr_full() == 0 {
            return None;
        }
        self.locked(|b, n| {
            if *n == 0 {
                return None;
            }
            *n -= 1;
            let size = b.sizes[*n] as usize;
            into[..size].copy_from_slice(&b.full[*n][..size]);
            Some(size)
        })
    }

    /// Takes every kept sheaf out, for `f` to free (cache shrinking).
    pub fn drain(&self, mut f: impl FnMut(&mut [*mut u8])) {
        let mut sheaf = [ptr::null_mut(); SHEAF_CAPACITY];
        while let Some(n) = self.get_full(&mut sheaf) {
            f(&mut sheaf[..n]);
        }
    }
}

/// `struct detached_freelist`: objects of one slab linked into a list,
/// ready for one `do_slab_free()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetachedFreelist {
    /// The slab's head frame.
    pub page: *const Page,
    /// First object of the list.
    pub head: *mut u8,
    /// Last object (its free pointer is null).
    pub tail: *mut u8,
    /// Objects on the list.
    pub cnt: u32,
}

/// `build_detached_freelist()` (4.6+, the version that swaps the objects
/// it skips to the front): takes `p[size - 1]`, links every object of its
/// slab among `p[..size - 1]` in front of it (scanning from the end,
/// giving up after three objects of other slabs), and moves the objects it
/// did not take to `p[..same]`. Returns the list and `same`, the number of
/// objects left for the next call. `slab_of` is `virt_to_slab()`.
///
/// # Safety
/// `size >= 1`; the objects are allocated objects of caches whose free
/// pointer sits at `offset`, owned by the caller.
pub unsafe fn build_detached_freelist(
    p: &mut [*mut u8],
    size: usize,
    offset: usize,
    slab_of: impl Fn(*mut u8) -> *const Page,
) -> (DetachedFreelist, usize) {
    let mut size = size - 1;
    let object = p[size];
    let mut df = DetachedFreelist {
        page: slab_of(object),
        head: object,
        tail: object,
        cnt: 1,
    };
    // SAFETY: the caller owns the objects.
    unsafe { set_fp(object, offset, ptr::null_mut()) };
    let mut lookahead = 3;
    let mut same = size;
    while size > 0 {
        size -= 1;
        let object = p[size];
        if ptr::eq(slab_of(object), df.page) {
            // SAFETY: as above.
            unsafe { set_fp(object, offset, df.head) };
            df.head = object;
            df.cnt += 1;
            same -= 1;
            if size != same {
                p.swap(size, same);
            }
            continue;
        }
        lookahead -= 1;
        if lookahead == 0 {
            break;
        }
    }
    (df, same)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slub::get_fp;

    /// Objects in fake slabs: slab `k` is the address `k + 1` (never
    /// dereferenced), object `i` lives in `mem`.
    fn objects(n: usize) -> Vec<[u64; 2]> {
        vec![[0u64; 2]; n]
    }

    #[test]
    fn detached_freelists_take_one_slab_and_look_past_three_others() {
        // Slabs of p[0..8]: A B A C D E A A (A = 1).
        let slabs = [1usize, 2, 1, 3, 4, 5, 1, 1];
        let mut mem = objects(slabs.len());
        let base = mem.as_mut_ptr().cast::<u8>();
        let obj = |i: usize| base.wrapping_add(16 * i);
        let slab_of = |o: *mut u8| {
            let i = (o.addr() - base.addr()) / 16;
            ptr::without_provenance::<Page>(slabs[i])
        };
        let mut p: Vec<*mut u8> = (0..slabs.len()).map(obj).collect();
        // SAFETY: the objects are mem's, owned here; offset 0 fits.
        let (df, same) = unsafe { build_detached_freelist(&mut p, 8, 0, slab_of) };
        // From the end: p[7] (A), p[6] (A) joins, then E, D, C are three
        // misses: p[2] and p[0] (A) are not reached.
        assert_eq!(df.cnt, 2);
        assert_eq!((df.head, df.tail), (obj(6), obj(7)));
        assert_eq!(same, 6);
        assert_eq!(&p[..6], &[obj(0), obj(1), obj(2), obj(3), obj(4), obj(5)]);
        // SAFETY: the list's objects are mem's.
        unsafe {
            assert_eq!(get_fp(obj(6), 0), obj(7));
            assert!(get_fp(obj(7), 0).is_null());
        }
        // Next: p[5] (E) alone (D, C, A are three misses).
        // SAFETY: as above.
        let (df, same) = unsafe { build_detached_freelist(&mut p, same, 0, slab_of) };
        assert_eq!((df.cnt, same, df.head), (1, 5, obj(5)));
        // Fewer than three others in between: p[4] is D alone, then C,
        // then p[2] (A) gathers p[0] past B, and B is last.
        let mut counts = Vec::new();
        let mut left = same;
        while left > 0 {
            // SAFETY: as above.
            let (df, s) = unsafe { build_detached_freelist(&mut p, left, 0, slab_of) };
            counts.push((slabs[(df.head.addr() - base.addr()) / 16], df.cnt, s));
            left = s;
        }
        assert_eq!(counts, vec![(4, 1, 4), (3, 1, 3), (1, 2, 1), (2, 1, 0)]);
    }

    #[test]
    fn sheaves_swap_when_full_or_empty_and_flush_the_spare() {
        let mut mem = objects(16);
        let base = mem.as_mut_ptr().cast::<u8>();
        let obj = |i: usize| base.wrapping_add(16 * i);
        let mut sh = PcsSheaves::new(4);
        let mut flushed: Vec<*mut u8> = Vec::new();
        for i in 0..9 {
            if let Some(mut f) = sh.free_to_pcs(obj(i)) {
                flushed.extend_from_slice(f.objects());
            }
            sh.assert_invariants();
        }
        // 4 fill main; the 5th swaps in the empty spare; the 9th finds
        // both full: the spare (objects 0-3) is flushed and becomes main.
        assert_eq!(sh.sizes(), (1, 4));
        assert_eq!(flushed, vec![obj(0), obj(1), obj(2), obj(3)]);
        assert_eq!(
            sh.stats(),
            SheafStats {
                alloc_pcs: 0,
                free_pcs: 9,
                sheaf_swap: 2,
                sheaf_flush: 1,
                barn_get: 0,
                barn_put: 0
            }
        );
        // Allocation pops the last freed, then swaps in the full spare.
        assert_eq!(sh.alloc_from_pcs(), obj(8));
        assert_eq!(sh.alloc_from_pcs(), obj(7));
        assert_eq!(sh.sizes(), (3, 0));
        let rest: Vec<_> = std::iter::from_fn(|| Some(sh.alloc_from_pcs()))
            .take_while(|p| !p.is_null())
            .collect();
        assert_eq!(rest, vec![obj(6), obj(5), obj(4)]);
        assert_eq!(sh.sizes(), (0, 0));
        assert_eq!(sh.stats().sheaf_swap, 3);
        assert_eq!(sh.stats().alloc_pcs, 5);
        assert!(sh.free_to_pcs(obj(9)).is_none());
        assert!(sh.free_to_pcs(obj(10)).is_none());
        let mut all = Vec::new();
        while let Some(mut f) = sh.take() {
            all.push(f.objects().to_vec());
        }
        assert_eq!(all, vec![vec![obj(9), obj(10)]]);
        assert_eq!(sh.stats().sheaf_flush, 2);
        assert_eq!(sh.sizes(), (0, 0));
        sh.assert_invariants();
    }

    #[test]
    fn a_barn_passes_full_sheaves_from_a_freeing_cpu_to_an_allocating_one() {
        let mut mem = objects(64);
        let base = mem.as_mut_ptr().cast::<u8>();
        let obj = |i: usize| base.wrapping_add(16 * i);
        let barn = Barn::new();
        let (mut freer, mut taker) = (PcsSheaves::new(4), PcsSheaves::new(4));
        // The freeing CPU fills main and spare (8), then the 9th free
        // detaches the full spare: it goes to the barn, not to its slabs.
        let mut to_barn = 0;
        for i in 0..13 {
            if let Some(mut f) = freer.free_to_pcs(obj(i)) {
                assert!(barn.put_full(f.objects()));
                freer.detached_to_barn();
                to_barn += 1;
            }
        }
        // Frees 9 and 13 each detached a full spare: objects 0-3, 4-7.
        assert_eq!((to_barn, barn.nr_full()), (2, 2));
        assert_eq!(freer.stats().barn_put, 2);
        assert_eq!(freer.stats().sheaf_flush, 0);
        // The allocating CPU has nothing; it takes the last sheaf put.
        assert!(taker.alloc_from_pcs().is_null());
        assert!(taker.refill_from_barn(&barn));
        assert_eq!(taker.sizes(), (4, 0));
        let got: Vec<_> = (0..4).map(|_| taker.alloc_from_pcs()).collect();
        assert_eq!(got, vec![obj(7), obj(6), obj(5), obj(4)]);
        assert!(taker.refill_from_barn(&barn));
        assert!(!taker.refill_from_barn(&barn), "main not empty");
        assert_eq!(taker.stats().barn_get, 2);
        assert_eq!(barn.nr_full(), 0);
        // A barn keeps MAX_FULL_SHEAVES, no more.
        let four = [obj(60), obj(61), obj(62), obj(63)];
        for _ in 0..MAX_FULL_SHEAVES {
            assert!(barn.put_full(&four));
        }
        assert!(!barn.put_full(&four));
        let mut n = 0;
        barn.drain(|s| {
            assert_eq!(s, &four);
            n += 1;
        });
        assert_eq!((n, barn.nr_full()), (MAX_FULL_SHEAVES, 0));
    }

    #[test]
    fn sheaf_capacity_shrinks_with_object_size() {
        assert_eq!(sheaf_capacity_for(8), 32);
        assert_eq!(sheaf_capacity_for(1024), 32);
        assert_eq!(sheaf_capacity_for(2048), 8);
        assert_eq!(sheaf_capacity_for(8192), 4);
    }
}
