//! A real allocator on SLUB: [`SlubAlloc`] implements `GlobalAlloc`, and
//! the C functions of [`crate::capi`] (which the `klab-slab-preload`
//! cdylib exports as `malloc`, `free`, ...) sit on the same state.
//!
//! # Data structures
//!
//! * `CACHES`: two sets of static SLUB caches, one cache per size class
//!   ([`FINE_CLASSES`], `kmalloc-8` … `kmalloc-8192`) in each: set 0 runs
//!   the page's 2.6.24 slow paths ([`SlubAlloc2624`]), set 1 those of 3.2
//!   ([`SlubAlloc`]: lockless `__slab_free()`, per-thread partial slabs).
//!   Both are built at compile time over `PAGES`, a static page allocator
//!   over the host's pages ([`DefaultPages`]). A slab's page flags carry
//!   its set and class (`PG_CLASS_SHIFT`).
//!   Larger requests get compound pages from `PAGES`, and above
//!   `2^MAX_ORDER` pages a region straight from the page source.
//! * Per thread (the host's stand-in for a CPU): `CPUS`, one
//!   [`KmemCacheCpu`] per set and class (active slab + lockless freelist,
//!   and for 3.2 the partial list), and
//!   `META`, the thread's registration: its state, its slow-path counter
//!   for fork quiescence and its link on the list of live threads; and
//!   for [`SlubAlloc`] `SHEAVES`, one [`PcsSheaves`] per class (6.18's
//!   per-CPU sheaves: a main and a spare array of free objects).
//!
//! # Fast and slow paths
//!
//! `malloc` looks the class up, pops the thread's freelist for it and is
//! done: no lock, no atomic. `free` finds the slab through the memory map
//! and, if it is the thread's active slab for that class, pushes on the
//! thread's freelist; otherwise `__slab_free()`: under the slab lock
//! (2.6.24), or (3.2) one compare-and-swap of the slab's freelist and
//! counters, which may freeze a full slab onto the thread's partial list.
//!
//! [`SlubAlloc`] puts 6.18's sheaves in front of that (mm/slub.c,
//! `slab_alloc_node()` and `slab_free()` with `s->cpu_sheaves`): `free`
//! pushes on the class's main sheaf, whatever slab the object is in, and
//! `malloc` pops it first (`free_to_pcs()`, `alloc_from_pcs()`); neither
//! touches the slab. A sheaf that overflows goes to its slabs by
//! `kmem_cache_free_bulk()`: `build_detached_freelist()` links the objects
//! of one slab, and one `do_slab_free()` frees them (onto the CPU
//! freelist if it is the active slab, else one compare-and-swap). Only a
//! registered thread uses sheaves (its key destructor flushes them); the
//! host has one node, so the kernel's test that the slab is on the local
//! node always passes.
//! 3.2's lock-free steps (that free, refilling from the active slab's
//! remote frees or from the partial list) skip the fork bracket below;
//! all that takes a lock is the slow path.
//!
//! # What protects what
//!
//! * A thread's `CPUS`, `SHEAVES` and `META` cells: its own, touched only
//!   by that thread (and by its key destructor, which runs on it); no
//!   lock. Other threads read only `META`'s atomics (`in_slow`, `next`).
//! * A frozen slab's freelist and counters: one compare-and-swap word
//!   ([`crate::slub`]'s 3.1+ protocol); remote frees push on it, only the
//!   owning thread takes from it.
//! * A cache's node lists: the node's `list_lock` (a `Mutex`).
//! * The page allocator's free lists: its zone lock.
//! * The list of live threads and the exited threads' counters:
//!   `THREADS_LOCK`, a spin lock.
//!
//! None of these locks is held across anything that can allocate
//! ([`crate::reentry`]): in the preload library every `Vec` or `Box` of
//! the allocator's own code would call back into `malloc`, that is into
//! this allocator, on a thread holding the lock the nested call may need.
//! Debug builds count the locks a thread holds and abort with a message
//! if an allocation starts while one is held.
//!
//! # Thread exit: a CPU going offline
//!
//! A thread is the host's stand-in for a CPU, and its exit is the
//! kernel's CPU hot-unplug: `slub_cpu_dead()` (mm/slub.c) runs
//! `__flush_cpu_slab()` for every cache, deactivating the dead CPU's slab
//! and unfreezing its partial list, and (6.18) `__pcs_flush_all_cpu()`
//! empties its sheaves. Here the pthread key destructor `thread_exit`
//! does the same on the exiting thread: it turns the thread's sheaves off
//! and flushes them to their slabs (bulk frees), then flushes every
//! cache's CPU slab and partial list to the node lists (empty slabs go
//! back to the page allocator once no list lock is held), adds the
//! thread's counters to the exited threads' and unlinks it. Objects the
//! thread still owned stay allocated; whoever frees them later frees into
//! slabs that now sit on node lists, like any remote free.
//!
//! The thread-locals are `const`-initialised and have no destructor, so
//! touching them never registers a TLS destructor (which allocates in
//! glibc) and never fails, even while the thread is exiting. At its first
//! slow path a thread registers the key (created once per process;
//! `pthread_setspecific` may allocate: the thread is in state
//! `REGISTERING` meanwhile and any nested allocation takes the CPU-less
//! path). Allocations by destructors that run after `thread_exit` find
//! the thread `DEAD` and take the CPU-less path, which borrows a slab for
//! one object and gives it straight back; their frees bypass the sheaves.
//!
//! # Fork
//!
//! A child of `fork()` has one thread; any slab lock, list lock or zone
//! lock another thread held at the fork stays held in the child for ever,
//! with the structure it guards half-updated. Every slow path (the only
//! code that takes those locks) is bracketed by an increment and decrement
//! of its thread's `in_slow` counter with a check of `FORKING` in between.
//! The `pthread_atfork` prepare handler sets `FORKING`, then waits until
//! every registered thread's `in_slow` (and the counter shared by threads
//! without registration) is zero; threads entering a slow path meanwhile
//! back out and wait. So the fork happens with no allocator lock held and
//! no structure mid-update. Fast paths touch only the forking thread's own
//! state and need nothing. Both sides use `SeqCst`, so a thread entering
//! and the preparing thread cannot both miss each other. The child drops
//! the other threads from its list (their frozen slabs stay frozen:
//! leaked, as glibc leaks their tcaches). The forking thread itself may
//! allocate between the handlers (another library's prepare handler may
//! call `malloc`): its slow paths neither wait for `FORKING` nor count,
//! and it does not register meanwhile, since it holds the thread list's
//! lock across the fork.
//!
//! # The flusher
//!
//! Every 256th slow path of a thread runs the flusher's rule over its
//! classes: an active slab not used since the last run goes back to its
//! partial list (mirrors the per-CPU slab flushing the page describes).

use std::alloc::{GlobalAlloc, Layout};
use std::borrow::Cow;
use std::cell::{Cell, UnsafeCell};
use std::ptr;

use crate::Shared;
use crate::cache::{ksize, large_alloc, large_free};
use crate::debug::{ReportSink, StderrSink};
use crate::kmalloc::{FINE_CLASSES, INDEX_LEN, KMALLOC_MAX_CACHE_SIZE, class_for, size_index};
use crate::layout::{SlabFlags, SlubParams, calculate_sizes};
use crate::page::{PG_CLASS_SHIFT, PG_SLAB, Page, frame_class, virt_to_page};
use crate::page_alloc::{MAX_ORDER, PageAllocator};
use crate::page_source::DefaultPages;
use crate::primitive::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use crate::slub::sheaf::{
    Barn, DetachedSheaf, PcsSheaves, SheafStats, build_detached_freelist, sheaf_capacity_for,
};
use crate::slub::{CacheCore, CpuStats, KmemCacheCpu, SlubEra};

/// Number of size classes.
pub const NR_CLASSES: usize = FINE_CLASSES.len();

static HOST: DefaultPages = DefaultPages {};
pub(crate) static PAGES: PageAllocator = PageAllocator::new_static(&HOST);
static SINK: StderrSink = StderrSink;
static INDEX: [u8; INDEX_LEN] = size_index(FINE_CLASSES);

pub(crate) const NAMES: [&str; NR_CLASSES] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-48",
    "kmalloc-64",
    "kmalloc-80",
    "kmalloc-96",
    "kmalloc-112",
    "kmalloc-128",
    "kmalloc-160",
    "kmalloc-192",
    "kmalloc-224",
    "kmalloc-256",
    "kmalloc-320",
    "kmalloc-384",
    "kmalloc-448",
    "kmalloc-512",
    "kmalloc-640",
    "kmalloc-768",
    "kmalloc-896",
    "kmalloc-1024",
    "kmalloc-1280",
    "kmalloc-1536",
    "kmalloc-1792",
    "kmalloc-2048",
    "kmalloc-2560",
    "kmalloc-3072",
    "kmalloc-3584",
    "kmalloc-4096",
    "kmalloc-5120",
    "kmalloc-6144",
    "kmalloc-7168",
    "kmalloc-8192",
];

const fn class_core(era: SlubEra, i: usize) -> CacheCore {
    let layout = match calculate_sizes(
        FINE_CLASSES[i],
        8,
        SlabFlags::NONE,
        false,
        SlubParams::ALLOCATOR,
        MAX_ORDER,
    ) {
        Ok(l) => l,
        Err(_) => panic!("kmalloc class does not fit"),
    };
    let sink: &'static dyn ReportSink = &SINK;
    CacheCore::new(
        Cow::Borrowed(NAMES[i]),
        layout,
        None,
        era,
        Shared::Static(&PAGES),
        Shared::Static(sink),
        i as u32,
    )
}

macro_rules! classes {
    ($era:expr; $($i:literal)*) => { [$(class_core($era, $i)),*] };
}

/// The eras the global allocator offers: index 0 for [`SlubAlloc2624`],
/// 1 for [`SlubAlloc`]; a cache's set is `lockless as usize`.
const NR_SETS: usize = 2;
const SET_2624: usize = 0;
const SET_3_2: usize = 1;

static CACHES: [[CacheCore; NR_CLASSES]; NR_SETS] = [
    classes!(SlubEra::V2_6_24;
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32),
    classes!(SlubEra::V3_2;
        0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32),
];

pub(crate) const UNREGISTERED: u8 = 0;
const REGISTERING: u8 = 1;
pub(crate) const LIVE: u8 = 2;
const DEAD: u8 = 3;

/// A thread's registration; other threads read `in_slow` and `next`.
pub(crate) struct ThreadMeta {
    /// `UNREGISTERED`, `REGISTERING`, `LIVE` or `DEAD` (owner only).
    pub(crate) state: Cell<u8>,
    /// Slow paths in progress (fork quiescence).
    in_slow: AtomicU32,
    /// Slow paths taken, for the flusher.
    slow_count: Cell<u32>,
    /// Next live thread (under `THREADS_LOCK`).
    next: crate::primitive::AtomicPtr<ThreadMeta>,
    /// The thread is preparing a `fork()` (between the prepare handler
    /// and the parent's or child's; owner only).
    forker: Cell<bool>,
}

// SAFETY: the Cells are only touched by the owning thread (and by its own
// key destructor, which runs on that thread); other threads read only the
// atomics.
unsafe impl Sync for ThreadMeta {}

/// Everything a thread (the host's CPU) owns: one thread-local block, so
/// an allocation or a free finds all of it with one thread-pointer read.
/// Its initial state is all zero bytes (checked by a test), so it can sit
/// in `.tbss` ([`tls`]).
#[repr(C)]
pub(crate) struct ThreadState {
    /// The sheaves of [`SlubAlloc`]'s classes.
    sheaves: UnsafeCell<Sheaves>,
    /// One [`KmemCacheCpu`] per set and class.
    cpus: UnsafeCell<[[KmemCacheCpu; NR_CLASSES]; NR_SETS]>,
    /// The thread's registration.
    meta: ThreadMeta,
    /// The thread's SLAB arrays ([`crate::slab::global`]), null until its
    /// first SLAB slow path.
    slab: Cell<*mut u8>,
}

impl ThreadState {
    /// A thread that has not allocated yet: all zero bytes.
    #[allow(dead_code)] // the thread_local! fallback and the tests
    pub(crate) const fn new() -> ThreadState {
        ThreadState {
            sheaves: UnsafeCell::new(Sheaves::new()),
            cpus: UnsafeCell::new(
                [const { [const { KmemCacheCpu::new(0, 0) }; NR_CLASSES] }; NR_SETS],
            ),
            meta: ThreadMeta {
                state: Cell::new(UNREGISTERED),
                in_slow: AtomicU32::new(0),
                slow_count: Cell::new(0),
                next: crate::primitive::AtomicPtr::new(ptr::null_mut()),
                forker: Cell::new(false),
            },
            slab: Cell::new(ptr::null_mut()),
        }
    }
}

/// The calling thread's SLAB arrays (null until made).
#[inline(always)]
pub(crate) fn slab_arrays() -> &'static Cell<*mut u8> {
    &tls::this_thread().slab
}

/// The calling thread's sheaves.
#[inline(always)]
fn sheaves_ptr() -> *mut Sheaves {
    tls::this_thread().sheaves.get()
}

/// The calling thread's CPU states.
#[inline(always)]
fn cpus_ptr() -> *mut [[KmemCacheCpu; NR_CLASSES]; NR_SETS] {
    tls::this_thread().cpus.get()
}

/// Runs `f` on the calling thread's registration.
#[inline(always)]
pub(crate) fn with_meta<R>(f: impl FnOnce(&ThreadMeta) -> R) -> R {
    f(&tls::this_thread().meta)
}

/// A thread's sheaves for [`SlubAlloc`]'s classes.
struct Sheaves {
    /// Frees go to the sheaves: the thread is registered (so its exit
    /// flushes them) and sheaves were on when it registered.
    live: bool,
    pcs: [PcsSheaves; NR_CLASSES],
}

impl Sheaves {
    /// Off and of capacity 0 (all zero bytes): [`Sheaves::turn_on`] gives
    /// each class its capacity when the thread registers.
    #[allow(dead_code)] // through ThreadState::new()
    const fn new() -> Sheaves {
        Sheaves {
            live: false,
            pcs: [const { PcsSheaves::off() }; NR_CLASSES],
        }
    }

    /// Gives every class its sheaf capacity ([`sheaf_capacity_for`]) and
    /// sends frees to the sheaves from now on.
    fn turn_on(&mut self) {
        for (p, &size) in self.pcs.iter_mut().zip(FINE_CLASSES) {
            p.set_capacity(sheaf_capacity_for(size));
        }
        self.live = true;
    }
}

/// The calling thread's [`ThreadState`], found through the thread pointer.
///
/// On x86-64 Linux the block is a `.tbss` symbol of the initial-exec TLS
/// model, the model glibc's own malloc state and mimalloc's use: its
/// offset from the thread pointer (`%fs`) is read from the GOT, so a
/// lookup is two instructions and no call. Rust's `thread_local!` in a
/// shared library (the preload cdylib) uses the general-dynamic model,
/// a call to `__tls_get_addr()` per access; stable Rust cannot ask for
/// another model, so the symbol is declared in assembly. A library with
/// initial-exec TLS is sized into the static TLS block at program start:
/// it works preloaded or linked, and a late `dlopen()` of it may fail
/// (as with mimalloc and jemalloc). Elsewhere (Miri, loom, other targets)
/// a `thread_local!` holds the block.
mod tls {
    use super::ThreadState;

    #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri), not(loom)))]
    core::arch::global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 6",
        ".globl klab_slab_thread_state",
        ".hidden klab_slab_thread_state",
        ".type klab_slab_thread_state,@object",
        ".size klab_slab_thread_state,{size}",
        "klab_slab_thread_state:",
        ".zero {size}",
        ".popsection",
        size = const size_of::<ThreadState>(),
    );

    // The block starts as zero bytes: ThreadState::new() must be that.
    const _: () = assert!(align_of::<ThreadState>() <= 64);

    /// The calling thread's state.
    #[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri), not(loom)))]
    #[inline(always)]
    pub(super) fn this_thread() -> &'static ThreadState {
        let p: *const ThreadState;
        // SAFETY: reads the symbol's TLS offset from the GOT (the dynamic
        // linker filled it in at load time) and adds the thread pointer
        // (`%fs:0` holds the TCB's own address); no memory is written.
        // The result is the same for every call on one thread (`pure`).
        unsafe {
            core::arch::asm!(
                "mov {p}, qword ptr [rip + klab_slab_thread_state@GOTTPOFF]",
                "add {p}, qword ptr fs:[0]",
                p = out(reg) p,
                options(pure, readonly, nostack, preserves_flags),
            );
        }
        // SAFETY: the block is this thread's, zero-initialised by the
        // loader (ThreadState::new() is all zero bytes, see the tests),
        // and lives as long as the thread; all its fields are cells or
        // atomics, so shared references are sound.
        unsafe { &*p }
    }

    #[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri), not(loom))))]
    thread_local! {
        static STATE: ThreadState = const { ThreadState::new() };
    }

    /// The calling thread's state.
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri), not(loom))))]
    #[inline(always)]
    pub(super) fn this_thread() -> &'static ThreadState {
        // SAFETY: the thread-local lives as long as the thread, and the
        // reference never leaves it (the thread list holds a raw pointer
        // to its meta, unlinked at exit).
        STATE.with(|s| unsafe { &*(s as *const ThreadState) })
    }
}

/// The barn of each of [`SlubAlloc`]'s classes (the host has one node).
static BARNS: [Barn; NR_CLASSES] = [const { Barn::new() }; NR_CLASSES];

/// Threads registering from now on use sheaves ([`SlubAlloc::set_sheaves`]).
static SHEAVES_ON: AtomicBool = AtomicBool::new(true);

/// Set while a fork is being prepared.
static FORKING: AtomicBool = AtomicBool::new(false);
/// Slow paths in progress on threads without a registration.
static UNREG_IN_SLOW: AtomicU32 = AtomicU32::new(0);
/// Guards the list of live threads.
static THREADS_LOCK: AtomicBool = AtomicBool::new(false);
/// Head of the list of live threads.
static THREADS: crate::primitive::AtomicPtr<ThreadMeta> =
    crate::primitive::AtomicPtr::new(ptr::null_mut());
/// 0: not initialised; 1: being initialised; 2: done.
static INIT: AtomicU8 = AtomicU8::new(0);
/// The pthread key whose destructor flushes a thread's slabs.
static KEY: AtomicU32 = AtomicU32::new(0);

/// Per-era sums of the CPU counters of threads that have exited (under
/// `THREADS_LOCK`).
struct ExitedStats<T>(UnsafeCell<T>);
// SAFETY: only touched with THREADS_LOCK held.
unsafe impl<T> Sync for ExitedStats<T> {}
static EXITED: ExitedStats<[CpuStats; NR_SETS]> =
    ExitedStats(UnsafeCell::new([CpuStats::ZERO; NR_SETS]));
/// The sheaf counters of threads that have exited (under `THREADS_LOCK`).
static EXITED_SHEAVES: ExitedStats<SheafStats> = ExitedStats(UnsafeCell::new(SheafStats::ZERO));

/// The sum of the calling thread's sheaf counters.
fn own_sheaf_stats() -> SheafStats {
    // SAFETY: the thread's own sheaves, read only.
    unsafe {
        (*sheaves_ptr())
            .pcs
            .iter()
            .fold(SheafStats::ZERO, |a, p| a.add(&p.stats()))
    }
}

/// The sum of the counters of the calling thread's CPU states in `set`.
fn own_stats(set: usize) -> CpuStats {
    // SAFETY: the thread's own CPU state, read only.
    unsafe {
        (*cpus_ptr())[set]
            .iter()
            .fold(CpuStats::ZERO, |a, c| a.add(&c.stats))
    }
}

/// Counters of one era of the global allocator: exited threads plus the
/// calling thread (other live threads' counters are their own until they
/// exit).
fn era_stats(set: usize) -> CpuStats {
    threads_lock();
    // SAFETY: under THREADS_LOCK.
    let exited = unsafe { (*EXITED.0.get())[set] };
    threads_unlock();
    exited.add(&own_stats(set))
}

/// Takes `THREADS_LOCK`, counted as an allocator lock: nothing that can
/// allocate runs under it ([`crate::reentry`]).
fn threads_lock() {
    threads_lock_raw();
    crate::reentry::acquired();
}

fn threads_unlock() {
    crate::reentry::released();
    threads_unlock_raw();
}

/// `THREADS_LOCK` without the count: the fork handlers hold it across
/// `fork()`, during which the forking thread may allocate (from other
/// prepare handlers); its allocations then stay off the thread list.
fn threads_lock_raw() {
    while THREADS_LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::thread::yield_now();
    }
}

fn threads_unlock_raw() {
    THREADS_LOCK.store(false, Ordering::Release);
}

/// klab's SLUB as a Rust global allocator, with the 3.2 slow paths
/// (lockless `__slab_free()` by compare-and-swap, per-thread partial
/// slabs: [`SlubEra::V3_2`]).
///
/// ```no_run
/// #[global_allocator]
/// static A: klab_slab::SlubAlloc = klab_slab::SlubAlloc;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct SlubAlloc;

/// klab's SLUB as a Rust global allocator with the page's own (2.6.24)
/// slow paths: the slab lock on every remote free ([`SlubEra::V2_6_24`]).
/// Its caches and per-thread state are separate from [`SlubAlloc`]'s (they
/// share the page allocator), so both run in one process; a block must be
/// freed through the allocator that gave it, as with any two allocators
/// (freeing through the other one is caught and routed by the slab's
/// cache, so it stays correct).
#[derive(Clone, Copy, Debug, Default)]
pub struct SlubAlloc2624;

/// Counters of one size class of the global allocator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassStats {
    /// `kmalloc-N`.
    pub name: &'static str,
    /// The era of the class's cache.
    pub era: SlubEra,
    /// Slabs allocated.
    pub slabs: usize,
    /// Slabs on partial lists.
    pub partial: usize,
}

/// `slab_alloc()` on set `SET`: pop the thread's freelist, else the slow
/// path.
#[inline(always)]
fn allocate_in<const SET: usize>(size: usize, align: usize) -> *mut u8 {
    crate::reentry::assert_no_lock_held();
    match class_for(FINE_CLASSES, &INDEX, size, align) {
        Some(i) => alloc_class::<SET>(i),
        None => alloc_large(size, align),
    }
}

/// `kmalloc()` on set `SET`: the class straight from the size table
/// (`kmalloc_index()`, `kmalloc_slab()`), no alignment to look at. Every
/// class above 8 bytes is a multiple of 16 and every slab starts on a
/// page, so a block of more than 8 bytes is 16-byte aligned (glibc's
/// `MALLOC_ALIGNMENT`, the kernel's `ARCH_KMALLOC_MINALIGN`), and a
/// power-of-two class is naturally aligned, as kmalloc has guaranteed
/// since 5.4.
#[inline(always)]
fn kmalloc_in<const SET: usize>(size: usize) -> *mut u8 {
    crate::reentry::assert_no_lock_held();
    if size <= KMALLOC_MAX_CACHE_SIZE {
        alloc_class::<SET>(INDEX[size.div_ceil(8)] as usize)
    } else {
        alloc_large(size, 16)
    }
}

const _: () = {
    let mut i = 1;
    while i < NR_CLASSES {
        assert!(FINE_CLASSES[i].is_multiple_of(16));
        i += 1;
    }
};

/// The fast path of class `i`: the sheaf, then the CPU freelist.
#[inline(always)]
fn alloc_class<const SET: usize>(i: usize) -> *mut u8 {
    // SAFETY: the thread's own CPU state; no reference to it outlives
    // this block and nothing re-enters meanwhile.
    unsafe {
        if SET == SET_3_2 {
            let obj = (*sheaves_ptr()).pcs[i].alloc_from_pcs();
            if !obj.is_null() {
                return obj;
            }
            if BARNS[i].nr_full() != 0 {
                let obj = alloc_from_barn(i);
                if !obj.is_null() {
                    return obj;
                }
            }
        }
        let c = &mut (*cpus_ptr())[SET][i];
        let obj = c.freelist;
        if !obj.is_null() {
            c.freelist = crate::slub::get_fp(obj, 0);
            c.touched = true;
            return obj;
        }
    }
    alloc_slow(SET, i)
}

/// Both sheaves of class `i` are empty and its barn has a full one:
/// `barn_replace_empty_sheaf()`, then the pop (`__pcs_replace_empty_main()`
/// of 6.18: the barn before the slabs).
#[cold]
#[inline(never)]
fn alloc_from_barn(i: usize) -> *mut u8 {
    let _g = SlowGuard::enter();
    // SAFETY: the thread's own sheaves, not otherwise borrowed.
    unsafe {
        let pcs = &mut (*sheaves_ptr()).pcs[i];
        if pcs.refill_from_barn(&BARNS[i]) {
            pcs.alloc_from_pcs()
        } else {
            ptr::null_mut()
        }
    }
}

/// The main sheaf of class `i` is full: `__pcs_replace_full_main()`, and
/// a detached full spare to the barn or its slabs ([`spill_sheaf`]).
///
/// # Safety
/// As [`flush_sheaf`], for `p`.
#[cold]
#[inline(never)]
unsafe fn free_to_full_sheaf(i: usize, p: *mut u8) {
    // SAFETY: the thread's own sheaves, not otherwise borrowed.
    if let Some(f) = unsafe { (*sheaves_ptr()).pcs[i].free_to_pcs_full(p) } {
        // SAFETY: forwarded.
        unsafe { spill_sheaf(i, f) };
    }
}

/// A full sheaf detached from class `i` (both sheaves were full): into
/// the barn (`barn_put_full_sheaf()`), or, when the barn keeps
/// `MAX_FULL_SHEAVES` already, to its slabs (`sheaf_flush_unused()`).
///
/// # Safety
/// As [`flush_sheaf`].
#[cold]
#[inline(never)]
unsafe fn spill_sheaf(i: usize, mut f: DetachedSheaf) {
    {
        let _g = SlowGuard::enter();
        if BARNS[i].put_full(f.objects()) {
            // SAFETY: the thread's own sheaves, not otherwise borrowed.
            unsafe { (*sheaves_ptr()).pcs[i].detached_to_barn() };
            return;
        }
    }
    // SAFETY: forwarded.
    unsafe { flush_sheaf(i, f.objects()) };
}

/// Blocks above the largest class: pages.
#[cold]
#[inline(never)]
fn alloc_large(size: usize, align: usize) -> *mut u8 {
    let _g = SlowGuard::enter();
    large_alloc(&PAGES, size, align, 0).map_or(ptr::null_mut(), |p| p.as_ptr())
}

/// `slab_free()`: the slab's cache says which set (and so which thread
/// state) it belongs to; a block of the thread's active slab is pushed on
/// its freelist, anything else goes to `__slab_free()`.
///
/// # Safety
/// `p` came from this allocator (in this process) and is freed once.
#[inline(always)]
unsafe fn deallocate_any(p: *mut u8) {
    crate::reentry::assert_no_lock_held();
    // SAFETY: p is ours: its section header and memory map are live.
    unsafe {
        let Some(class) = frame_class(p) else {
            let _g = SlowGuard::enter();
            PAGES.free_large(p);
            return;
        };
        // A kmalloc slab's frames, head and tails, carry its set and class
        // in the section's class map: the sheaf path needs nothing else.
        let class = class as usize;
        if class >> 8 == SET_3_2 && (*sheaves_ptr()).live {
            let i = (class - 1) & 0xff;
            if !(*sheaves_ptr()).pcs[i].try_free_to_pcs(p) {
                free_to_full_sheaf(i, p);
            }
            return;
        }
        let page = Page::head(virt_to_page(p).expect("a frame with a memory map"));
        let flags = (*page).flags.load(Ordering::Relaxed);
        if flags & PG_SLAB == 0 {
            let _g = SlowGuard::enter();
            large_free(&PAGES, p);
            return;
        }
        // Every slab here is a kmalloc slab: its class is in its flags.
        let class = (flags >> PG_CLASS_SHIFT) as usize - 1;
        if class >> 8 == SET_3_2 && sheaves_enable() {
            let i = class & 0xff;
            if !(*sheaves_ptr()).pcs[i].try_free_to_pcs(p) {
                free_to_full_sheaf(i, p);
            }
            return;
        }
        let c = &mut (*cpus_ptr())[class >> 8][class & 0xff];
        if ptr::eq(page, c.page) && c.node >= 0 {
            crate::slub::set_fp(p, 0, c.freelist);
            c.freelist = p;
            c.touched = true;
            return;
        }
        let core = &*(*page).slab().cast::<CacheCore>();
        // 3.1+: a free that moves the slab on no node list is one
        // compare-and-swap (3.2: and maybe a push on the thread's partial
        // list) and holds no lock, so it needs no fork bracket. Only a
        // registered thread's partial list is flushed at its exit.
        if core.is_lockless()
            && core.slab_free_cas(c, page, (p, p, 1), with_meta(|m| m.state.get() == LIVE))
        {
            return;
        }
        free_slow(core, c, page, p);
    }
}

/// Turns the calling thread's sheaves on at its first free: registers it
/// if it is not (a thread that only frees needs its exit to flush them
/// too). False if it cannot use them (registering, exiting, sheaves off).
#[cold]
#[inline(never)]
fn sheaves_enable() -> bool {
    if with_meta(|m| m.state.get()) == UNREGISTERED {
        register();
    }
    // SAFETY: the thread's own sheaves.
    unsafe { (*sheaves_ptr()).live }
}

/// `sheaf_flush_unused()` of class `i`'s sheaf: `kmem_cache_free_bulk()`
/// of its objects (mm/slub.c `__kmem_cache_free_bulk()`): each
/// `build_detached_freelist()` is freed by one `do_slab_free()`: spliced
/// onto the CPU freelist when it is the active slab, else
/// `__slab_free()`'s compare-and-swap, the slow path (with its fork
/// bracket) only when the free moves the slab on a node list.
///
/// # Safety
/// `objs` are allocated objects of class `i` of the 3.2 set, freed once;
/// runs on the thread that owns the sheaf.
#[cold]
#[inline(never)]
unsafe fn flush_sheaf(i: usize, objs: &mut [*mut u8]) {
    let core = &CACHES[SET_3_2][i];
    let offset = core.layout().offset;
    let live = with_meta(|m| m.state.get() == LIVE);
    // SAFETY: the thread's own CPU state, not otherwise borrowed; the
    // objects are live allocations of this cache, so their slabs are.
    unsafe {
        let c = &mut (*cpus_ptr())[SET_3_2][i];
        let mut size = objs.len();
        while size > 0 {
            let (df, left) = build_detached_freelist(objs, size, offset, |o| {
                Page::head(virt_to_page(o).expect("a slab object"))
            });
            size = left;
            if ptr::eq(df.page, c.page) && c.node >= 0 {
                crate::slub::set_fp(df.tail, offset, c.freelist);
                c.freelist = df.head;
                c.touched = true;
                continue;
            }
            let list = (df.head, df.tail, df.cnt);
            if core.slab_free_cas(c, df.page, list, live) {
                continue;
            }
            let _g = SlowGuard::enter();
            core.slab_free_slow_lockless_bulk(live.then_some(&mut *c), df.page, list);
        }
    }
}

/// Flushes every sheaf of the calling thread to its slabs.
///
/// # Safety
/// Runs on the owning thread, with no reference to its sheaves or CPU
/// state held.
unsafe fn flush_sheaves() {
    // The sheaves and CPU state are being rewritten: an allocation now
    // would find them half done (counted as a lock, see crate::reentry).
    let _busy = crate::reentry::Held::acquire();
    // SAFETY: the thread's own sheaves.
    unsafe {
        let sh = sheaves_ptr();
        for i in 0..NR_CLASSES {
            let capacity = (*sh).pcs[i].capacity();
            while let Some(f) = (*sh).pcs[i].take() {
                // A full sheaf may serve another thread from the barn.
                let mut f = f;
                if f.objects().len() == capacity {
                    spill_sheaf(i, f);
                } else {
                    flush_sheaf(i, f.objects());
                }
            }
        }
    }
}

/// `__slab_free()` for the global allocator: with the thread's CPU state
/// while the thread is registered (3.2 may freeze a full slab onto its
/// partial list), without it otherwise (an exiting thread's partial list
/// would never be flushed again).
///
/// # Safety
/// As [`deallocate_any`]; `c` is the calling thread's state for `core`.
#[cold]
#[inline(never)]
unsafe fn free_slow(core: &CacheCore, c: &mut KmemCacheCpu, page: *const Page, p: *mut u8) {
    let _g = SlowGuard::enter();
    let live = with_meta(|m| m.state.get() == LIVE);
    // SAFETY: forwarded.
    unsafe { core.slab_free_slow(live.then_some(c), page, p, 0) };
}

impl SlubAlloc {
    /// Allocates `size` bytes at the C library's alignment (16 bytes for
    /// blocks above 8 bytes, 8 below), the path of `malloc`; null when
    /// memory is exhausted.
    #[inline]
    pub fn kmalloc(size: usize) -> *mut u8 {
        kmalloc_in::<SET_3_2>(size)
    }

    /// Allocates `size` bytes at `align`; null when memory is exhausted.
    #[inline]
    pub fn allocate(size: usize, align: usize) -> *mut u8 {
        allocate_in::<SET_3_2>(size, align)
    }

    /// Frees what [`Self::allocate`] (or [`SlubAlloc2624::allocate`])
    /// returned.
    ///
    /// # Safety
    /// `p` came from this allocator (in this process) and is freed once.
    #[inline]
    pub unsafe fn deallocate(p: *mut u8) {
        // SAFETY: forwarded.
        unsafe { deallocate_any(p) }
    }

    /// Usable bytes of an allocation (`malloc_usable_size()`).
    ///
    /// # Safety
    /// `p` is a live allocation of this allocator.
    pub unsafe fn usable_size(p: *const u8) -> usize {
        // SAFETY: forwarded.
        unsafe { ksize(p) }
    }

    /// Gives the calling thread's active slabs back to their partial
    /// lists (what thread exit does).
    pub fn flush_thread() {
        // SAFETY: the thread's own sheaves and CPU state, not borrowed.
        unsafe { flush_sheaves() };
        let _g = SlowGuard::enter();
        // SAFETY: the thread's own CPU state.
        unsafe { flush_cpus() };
    }

    /// The slow-path counters (`CONFIG_SLUB_STATS`) of this allocator's
    /// caches: threads that have exited plus the calling thread.
    pub fn stats() -> CpuStats {
        era_stats(SET_3_2)
    }

    /// The sheaf counters (`CONFIG_SLUB_STATS`): threads that have
    /// exited plus the calling thread.
    pub fn sheaf_stats() -> SheafStats {
        threads_lock();
        // SAFETY: under THREADS_LOCK.
        let exited = unsafe { *EXITED_SHEAVES.0.get() };
        threads_unlock();
        exited.add(&own_sheaf_stats())
    }

    /// Turns 6.18's sheaves on or off for threads that register (first
    /// allocate or free) from now on; on by default. Off, [`SlubAlloc`]
    /// runs 3.2's paths alone.
    pub fn set_sheaves(on: bool) {
        SHEAVES_ON.store(on, Ordering::Relaxed);
    }

    /// Slab counts per class, of both eras' caches.
    pub fn class_stats() -> Vec<ClassStats> {
        CACHES
            .iter()
            .flatten()
            .map(|c| {
                let s = c.stats();
                ClassStats {
                    name: NAMES[c.kmalloc_index as usize],
                    era: c.era(),
                    slabs: s.slabs,
                    partial: s.partial,
                }
            })
            .collect()
    }

    /// Bytes of page frames the allocator's page allocator holds (sections
    /// in use, including free frames in them).
    pub fn held_bytes() -> usize {
        PAGES.stats().sections * crate::page::SECTION_SIZE
    }
}

/// Brackets a slow path for fork quiescence: counts it in the thread's
/// `in_slow` (registered threads) or in `UNREG_IN_SLOW` (the others) for
/// as long as it runs.
pub(crate) struct SlowGuard {
    /// The counter this slow path holds, null for none (the forking
    /// thread's own slow paths, from another prepare handler: the other
    /// threads are quiet and it is the one that must go on).
    counter: *const AtomicU32,
}

impl SlowGuard {
    #[inline]
    pub(crate) fn enter() -> SlowGuard {
        let counter = with_meta(|m| {
            if m.forker.get() {
                ptr::null()
            } else if m.state.get() == LIVE {
                &m.in_slow as *const AtomicU32
            } else {
                &UNREG_IN_SLOW as *const AtomicU32
            }
        });
        if counter.is_null() {
            return SlowGuard { counter };
        }
        loop {
            // SAFETY: a registered thread's meta lives as long as the
            // thread; UNREG_IN_SLOW is a static.
            unsafe {
                (*counter).fetch_add(1, Ordering::SeqCst);
                if !FORKING.load(Ordering::SeqCst) {
                    return SlowGuard { counter };
                }
                (*counter).fetch_sub(1, Ordering::SeqCst);
            }
            while FORKING.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        }
    }
}

impl Drop for SlowGuard {
    #[inline]
    fn drop(&mut self) {
        if !self.counter.is_null() {
            // SAFETY: as in `enter`.
            unsafe { (*self.counter).fetch_sub(1, Ordering::Release) };
        }
    }
}

#[cold]
#[inline(never)]
fn alloc_slow(set: usize, i: usize) -> *mut u8 {
    if set == SET_3_2 {
        // The lock-free refills (the CPU slab's remote frees, the next CPU
        // partial slab) hold no lock: no fork bracket, no registration
        // (a thread with a slab or partial list is registered already).
        // SAFETY: the thread's own CPU state, not otherwise borrowed.
        let obj = unsafe {
            let c = &mut (*cpus_ptr())[set][i];
            CACHES[set][i].refill_lockless(c)
        };
        if !obj.is_null() {
            return obj;
        }
    }
    let state = with_meta(|m| m.state.get());
    if state == UNREGISTERED {
        register();
    }
    let _g = SlowGuard::enter();
    let core = &CACHES[set][i];
    let live = with_meta(|m| {
        let live = m.state.get() == LIVE;
        if live {
            let n = m.slow_count.get().wrapping_add(1);
            m.slow_count.set(n);
            if n % 256 == 0 {
                // SAFETY: the thread's own CPU state.
                unsafe { run_flusher() };
            }
        }
        live
    });
    if live {
        // SAFETY: the thread's own CPU state, not otherwise borrowed.
        unsafe {
            let c = &mut (*cpus_ptr())[set][i];
            core.slab_alloc_slow(c, 0)
        }
    } else {
        // Registering, dead or unregistered: borrow a slab for one object.
        let mut c = KmemCacheCpu::new(0, 0);
        let obj = core.slab_alloc_slow(&mut c, 0);
        core.flush(&mut c);
        obj
    }
}

/// The flusher over the thread's classes.
///
/// # Safety
/// Runs on the owning thread, inside a slow path.
unsafe fn run_flusher() {
    // SAFETY: the thread's own CPU state.
    unsafe {
        let cpus = &mut *cpus_ptr();
        for (core, c) in CACHES.iter().flatten().zip(cpus.iter_mut().flatten()) {
            core.flush_if_unused(c);
        }
    }
}

/// Deactivates every active slab of the thread.
///
/// # Safety
/// Runs on the owning thread, inside a slow path.
unsafe fn flush_cpus() {
    // As in flush_sheaves: nothing may allocate until the flush is done.
    let _busy = crate::reentry::Held::acquire();
    // SAFETY: the thread's own CPU state.
    unsafe {
        let cpus = &mut *cpus_ptr();
        for (core, c) in CACHES.iter().flatten().zip(cpus.iter_mut().flatten()) {
            core.flush(c);
        }
    }
}

/// Registers the calling thread: the process-wide key and fork handlers
/// on first use, then this thread's key value and list link.
#[cold]
pub(crate) fn register() {
    if with_meta(|m| m.forker.get()) {
        // Allocating from another prepare handler of its own fork: the
        // list of threads is locked by this very thread. It stays
        // unregistered (CPU-less) until after the fork.
        return;
    }
    with_meta(|m| m.state.set(REGISTERING));
    if !init_process() {
        with_meta(|m| m.state.set(UNREGISTERED));
        return;
    }
    let meta = with_meta(|m| m as *const ThreadMeta);
    let key = KEY.load(Ordering::Acquire) as libc::pthread_key_t;
    // SAFETY: the key exists (init_process returned true); the value is
    // this thread's meta, which lives until the thread's TLS is freed,
    // after key destructors run.
    let ok = unsafe { libc::pthread_setspecific(key, meta.cast()) } == 0;
    if !ok {
        with_meta(|m| m.state.set(DEAD));
        return;
    }
    threads_lock();
    // SAFETY: meta is live; list under THREADS_LOCK.
    unsafe {
        (*meta)
            .next
            .store(THREADS.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    THREADS.store(meta.cast_mut(), Ordering::Relaxed);
    with_meta(|m| m.state.set(LIVE));
    threads_unlock();
    if SHEAVES_ON.load(Ordering::Relaxed) {
        // SAFETY: the thread's own sheaves, not borrowed (register runs
        // from a slow path).
        unsafe { (*sheaves_ptr()).turn_on() };
    }
}

/// Creates the key and the fork handlers once; false while another thread
/// is doing so (the caller then goes on unregistered for now).
#[cold]
fn init_process() -> bool {
    match INIT.compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: plain libc calls with valid arguments; the handlers
            // are `extern "C"` functions of this module.
            unsafe {
                if libc::pthread_key_create(&mut key, Some(thread_exit)) != 0 {
                    INIT.store(0, Ordering::Release);
                    return false;
                }
                #[cfg(not(miri))]
                libc::pthread_atfork(Some(fork_prepare), Some(fork_parent), Some(fork_child));
            }
            KEY.store(key as u32, Ordering::Release);
            INIT.store(2, Ordering::Release);
            true
        }
        Err(2) => true,
        Err(_) => false,
    }
}

/// The key destructor: flushes the exiting thread's slabs and unlinks it.
extern "C" fn thread_exit(arg: *mut libc::c_void) {
    let meta = arg.cast::<ThreadMeta>();
    // SAFETY: runs on the exiting thread: its sheaves and CPU state are its
    // own. Frees from later destructors bypass the sheaves.
    unsafe {
        (*sheaves_ptr()).live = false;
        flush_sheaves();
    }
    {
        let _g = SlowGuard::enter();
        // SAFETY: runs on the exiting thread, whose CPU state is its own.
        unsafe { flush_cpus() };
        // SLAB's arrays, if the thread has any (`cpuup_callback()`'s
        // CPU_DEAD: every array's objects back to their slabs).
        crate::slab::global::thread_exit();
    }
    let mine = [own_stats(SET_2624), own_stats(SET_3_2)];
    let sheaves = own_sheaf_stats();
    threads_lock();
    // SAFETY: under THREADS_LOCK.
    unsafe {
        let e = &mut *EXITED_SHEAVES.0.get();
        *e = e.add(&sheaves);
        let e = &mut *EXITED.0.get();
        for (e, m) in e.iter_mut().zip(mine) {
            *e = e.add(&m);
        }
    }
    // SAFETY: list under THREADS_LOCK; meta is this thread's, still live.
    unsafe {
        let mut link: *const crate::primitive::AtomicPtr<ThreadMeta> = &THREADS;
        loop {
            let cur = (*link).load(Ordering::Relaxed);
            if cur.is_null() {
                break;
            }
            if cur == meta {
                (*link).store((*meta).next.load(Ordering::Relaxed), Ordering::Relaxed);
                break;
            }
            link = &(*cur).next;
        }
    }
    with_meta(|m| m.state.set(DEAD));
    threads_unlock();
}

#[cfg(not(miri))]
extern "C" fn fork_prepare() {
    threads_lock_raw();
    with_meta(|m| m.forker.set(true));
    FORKING.store(true, Ordering::SeqCst);
    // SAFETY: the list is stable under THREADS_LOCK; metas are live.
    unsafe {
        let mut cur = THREADS.load(Ordering::Relaxed);
        while !cur.is_null() {
            while (*cur).in_slow.load(Ordering::SeqCst) != 0 {
                std::thread::yield_now();
            }
            cur = (*cur).next.load(Ordering::Relaxed);
        }
    }
    while UNREG_IN_SLOW.load(Ordering::SeqCst) != 0 {
        std::thread::yield_now();
    }
}

#[cfg(not(miri))]
extern "C" fn fork_parent() {
    FORKING.store(false, Ordering::SeqCst);
    with_meta(|m| m.forker.set(false));
    threads_unlock_raw();
}

#[cfg(not(miri))]
extern "C" fn fork_child() {
    // Only this thread survives: the list keeps it alone (if registered).
    let me = with_meta(|m| {
        m.next.store(ptr::null_mut(), Ordering::Relaxed);
        if m.state.get() == LIVE {
            m as *const ThreadMeta as *mut ThreadMeta
        } else {
            ptr::null_mut()
        }
    });
    THREADS.store(me, Ordering::Relaxed);
    UNREG_IN_SLOW.store(0, Ordering::SeqCst);
    FORKING.store(false, Ordering::SeqCst);
    with_meta(|m| m.forker.set(false));
    threads_unlock_raw();
}

// SAFETY: `allocate` returns blocks of at least `size` bytes at `align`
// (classes are multiples of the alignment; pages are aligned to their
// order; regions are offset by the alignment) that stay valid until
// `deallocate`; `realloc` copies min(old, new) bytes.
unsafe impl GlobalAlloc for SlubAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::allocate(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: forwarded.
        unsafe { Self::deallocate(p) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = Self::allocate(layout.size(), layout.align());
        if !p.is_null() {
            // SAFETY: a fresh block of at least size bytes.
            unsafe { p.write_bytes(0, layout.size()) };
        }
        p
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: p is a live allocation of ours.
        let usable = unsafe { Self::usable_size(p) };
        if new_size <= usable && new_size >= usable / 2 {
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

impl SlubAlloc2624 {
    /// As [`SlubAlloc::kmalloc`], from the 2.6.24 caches.
    #[inline]
    pub fn kmalloc(size: usize) -> *mut u8 {
        kmalloc_in::<SET_2624>(size)
    }

    /// As [`SlubAlloc::stats`], for the 2.6.24 caches.
    pub fn stats() -> CpuStats {
        era_stats(SET_2624)
    }

    /// Allocates `size` bytes at `align` from the 2.6.24 caches.
    #[inline]
    pub fn allocate(size: usize, align: usize) -> *mut u8 {
        allocate_in::<SET_2624>(size, align)
    }
}

// SAFETY: as for SlubAlloc: the same code on the other set of caches.
unsafe impl GlobalAlloc for SlubAlloc2624 {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::allocate(layout.size(), layout.align())
    }

    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, _layout: Layout) {
        // SAFETY: forwarded.
        unsafe { deallocate_any(p) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// `calculate_order()` with [`SlubParams::ALLOCATOR`]: a thread's
    /// first object of a class makes one slab of this many bytes resident
    /// (`new_slab()` writes a free pointer into every object), at most
    /// 32 KiB, and 8 KiB for kmalloc-2048 (32 KiB with `min_objects` 12).
    #[test]
    fn a_class_first_used_makes_one_small_slab_resident() {
        let got: Vec<(usize, u32, usize)> = CACHES[SET_3_2]
            .iter()
            .map(|c| (c.layout.size, c.layout.order, c.layout.objects))
            .collect();
        let want: Vec<(usize, u32, usize)> = vec![
            (8, 0, 512),
            (16, 0, 256),
            (32, 0, 128),
            (48, 0, 85),
            (64, 0, 64),
            (80, 0, 51),
            (96, 0, 42),
            (112, 0, 36),
            (128, 0, 32),
            (160, 0, 25),
            (192, 0, 21),
            (224, 0, 18),
            (256, 0, 16),
            (320, 0, 12),
            (384, 0, 10),
            (448, 0, 9),
            (512, 0, 8),
            (640, 0, 6),
            (768, 0, 5),
            (896, 0, 4),
            (1024, 0, 4),
            (1280, 1, 6),
            (1536, 1, 5),
            (1792, 1, 4),
            (2048, 1, 4),
            (2560, 2, 6),
            (3072, 2, 5),
            (3584, 2, 4),
            (4096, 2, 4),
            (5120, 3, 6),
            (6144, 3, 5),
            (7168, 3, 4),
            (8192, 3, 4),
        ];
        assert_eq!(got, want);
        // One object of every class: 77 pages, 308 KiB per thread (with
        // min_objects 12: 126 pages, 504 KiB).
        let pages: usize = got.iter().map(|&(_, order, _)| 1usize << order).sum();
        assert_eq!(pages, 77);
        assert_eq!(
            crate::layout::calculate_order(2048, SlubParams::ALLOCATOR, MAX_ORDER),
            Some(1)
        );
        let twelve = SlubParams {
            min_objects: 12,
            ..SlubParams::ALLOCATOR
        };
        let old: usize = FINE_CLASSES
            .iter()
            .map(|&s| 1usize << crate::layout::calculate_order(s, twelve, MAX_ORDER).unwrap())
            .sum();
        assert_eq!(old, 126);
    }

    #[test]
    fn allocations_are_aligned_distinct_and_reusable() {
        let sizes = [1usize, 8, 9, 16, 24, 100, 1000, 4096, 8192, 9000, 70_000];
        let mut ptrs = Vec::new();
        for &s in &sizes {
            for align in [8usize, 16, 64, 4096] {
                let p = SlubAlloc::allocate(s, align);
                assert!(!p.is_null());
                assert_eq!(p.addr() % align, 0, "size {s} align {align}");
                // SAFETY: a live block of at least s bytes.
                unsafe {
                    assert!(SlubAlloc::usable_size(p) >= s);
                    p.write_bytes(0xee, s);
                }
                ptrs.push(p);
            }
        }
        let set: BTreeSet<usize> = ptrs.iter().map(|p| p.addr()).collect();
        assert_eq!(set.len(), ptrs.len());
        for p in ptrs {
            // SAFETY: allocated above, freed once.
            unsafe { SlubAlloc::deallocate(p) };
        }
        // Freed to the thread's active slab: the next one comes back.
        let a = SlubAlloc::allocate(40, 8);
        // SAFETY: live.
        unsafe { SlubAlloc::deallocate(a) };
        let b = SlubAlloc::allocate(40, 8);
        assert_eq!(a, b);
        // SAFETY: live.
        unsafe { SlubAlloc::deallocate(b) };
    }

    #[test]
    fn a_fresh_thread_state_is_zero_bytes_and_new() {
        // A thread that has not allocated through klab (the test harness
        // allocates with the system allocator): its block is the loader's
        // zero bytes, which is what ThreadState::new() describes.
        // Under the thread_local! fallback (Miri) the block is new()'s
        // value, whose padding bytes are not initialised: not read there.
        if cfg!(all(target_arch = "x86_64", target_os = "linux", not(miri))) {
            let zero = std::thread::spawn(|| {
                let t = tls::this_thread() as *const ThreadState as *const u8;
                // SAFETY: the thread's own .tbss block, zero-filled by the
                // loader and not written meanwhile; read as bytes.
                let bytes = unsafe { std::slice::from_raw_parts(t, size_of::<ThreadState>()) };
                bytes.iter().all(|&b| b == 0)
            })
            .join()
            .unwrap();
            assert!(zero, "the .tbss block is not zero");
        }
        let n = ThreadState::new();
        // SAFETY: a local value, read only.
        let (sh, cpus) = unsafe { (&*n.sheaves.get(), &*n.cpus.get()) };
        assert!(!sh.live);
        assert!(
            sh.pcs
                .iter()
                .all(|p| p.capacity() == 0 && p.sizes() == (0, 0))
        );
        assert!(cpus.iter().flatten().all(|c| c.freelist.is_null()
            && c.page.is_null()
            && c.partial.is_null()
            && c.node == 0
            && c.offset == 0
            && c.home_node == 0
            && !c.touched
            && c.defrag_counter == 0
            && c.stats == CpuStats::ZERO));
        assert_eq!(n.meta.state.get(), UNREGISTERED);
        assert_eq!(UNREGISTERED, 0);
        assert_eq!(n.meta.in_slow.load(Ordering::Relaxed), 0);
        assert_eq!(n.meta.slow_count.get(), 0);
        assert!(n.meta.next.load(Ordering::Relaxed).is_null());
        assert!(!n.meta.forker.get());
    }

    #[test]
    fn realloc_keeps_contents() {
        let a = SlubAlloc;
        let l = Layout::from_size_align(10, 8).unwrap();
        // SAFETY: layouts are valid; pointers come from this allocator.
        unsafe {
            let p = a.alloc(l);
            p.copy_from(b"0123456789".as_ptr(), 10);
            let q = a.realloc(p, l, 5000);
            assert_eq!(std::slice::from_raw_parts(q, 10), b"0123456789");
            let r = a.realloc(q, Layout::from_size_align(5000, 8).unwrap(), 3);
            assert_eq!(std::slice::from_raw_parts(r, 3), b"012");
            a.dealloc(r, Layout::from_size_align(3, 8).unwrap());
        }
    }

    #[test]
    fn threads_free_each_others_blocks_and_exit_cleanly() {
        let threads = if cfg!(miri) { 2 } else { 4 };
        let n = if cfg!(miri) { 50 } else { 20_000 };
        let blocks: Vec<Vec<usize>> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (0..n)
                            .map(|i| {
                                let size = 8 + (i * 7 + t) % 500;
                                let p = SlubAlloc::allocate(size, 8);
                                // SAFETY: live block of `size` bytes.
                                unsafe { p.write_bytes(t as u8, size) };
                                p.expose_provenance()
                            })
                            .collect()
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Every thread exited (its slabs flushed); free on other threads.
        std::thread::scope(|s| {
            for (t, v) in blocks.into_iter().enumerate() {
                s.spawn(move || {
                    for a in v {
                        let p = std::ptr::with_exposed_provenance_mut::<u8>(a);
                        // SAFETY: allocated above by another thread; the
                        // first byte still holds that thread's pattern.
                        unsafe {
                            assert_ne!(p.read(), 0xff);
                            let _ = t;
                            SlubAlloc::deallocate(p);
                        }
                    }
                });
            }
        });
        for c in CACHES.iter().flatten() {
            c.assert_invariants();
        }
        PAGES.assert_invariants();
    }

    #[test]
    fn both_eras_churn_across_live_threads() {
        use crate::workload::{Larson, larson};
        let mut p = Larson::small(3, true);
        if cfg!(miri) {
            p.slots = 40;
            p.rounds = 3;
            p.ops_per_round = 60;
        }
        // Blocks move between live threads every round, so frees land on
        // other threads' active slabs, full slabs and (3.2) partial lists.
        let a = larson(&SlubAlloc, p);
        let b = larson(&SlubAlloc2624, p);
        assert_eq!(a.ops, b.ops);
        for c in CACHES.iter().flatten() {
            c.assert_invariants();
        }
        assert!(
            CACHES[SET_3_2]
                .iter()
                .all(|c| c.is_lockless() && c.era() == SlubEra::V3_2)
        );
        assert!(CACHES[SET_2624].iter().all(|c| !c.is_lockless()));
        PAGES.assert_invariants();
    }

    #[test]
    fn frees_go_to_sheaves_which_swap_flush_and_empty_at_thread_exit() {
        // A fresh thread: kmalloc-768 sheaves of 32 objects (a class no
        // other test of this binary uses, so its barn is this test's).
        assert_eq!(sheaf_capacity_for(FINE_CLASSES[18]), 32);
        let (after_free, sizes, after_alloc, next_from) = std::thread::spawn(|| {
            let ptrs: Vec<*mut u8> = (0..100).map(|_| SlubAlloc::allocate(700, 8)).collect();
            for &p in &ptrs {
                // SAFETY: allocated above, freed once.
                unsafe { SlubAlloc::deallocate(p) };
            }
            let after_free = own_sheaf_stats();
            // SAFETY: the thread's own sheaves, read only.
            let sizes = unsafe { (*sheaves_ptr()).pcs[18].sizes() };
            // The last 4 freed come back from the main sheaf, then the
            // 32 of the spare (swapped in), last freed first.
            let again: Vec<*mut u8> = (0..36).map(|_| SlubAlloc::allocate(700, 8)).collect();
            let mut want: Vec<*mut u8> = ptrs[96..].iter().rev().copied().collect();
            want.extend(ptrs[64..96].iter().rev());
            assert_eq!(again, want);
            let after_alloc = own_sheaf_stats();
            let next = SlubAlloc::allocate(700, 8);
            assert_eq!(next, ptrs[63]);
            let st = own_sheaf_stats();
            let next_from = (st.alloc_pcs, st.barn_get);
            for p in again.into_iter().chain([next]) {
                // SAFETY: allocated above, freed once.
                unsafe { SlubAlloc::deallocate(p) };
            }
            (after_free, sizes, after_alloc, next_from)
        })
        .join()
        .unwrap();
        // 32 frees fill the main sheaf, the 33rd swaps in the empty
        // spare, the 65th and 97th find both full and detach the spare:
        // into kmalloc-768's barn, which keeps them.
        assert_eq!((after_free.sheaf_flush, after_free.barn_put), (0, 2));
        assert_eq!(
            after_free,
            SheafStats {
                alloc_pcs: 0,
                free_pcs: 100,
                sheaf_swap: 3,
                barn_get: 0,
                ..after_free
            }
        );
        assert_eq!(sizes, (4, 32));
        assert_eq!(
            after_alloc,
            SheafStats {
                alloc_pcs: 36,
                free_pcs: 100,
                sheaf_swap: 4,
                barn_get: 0,
                ..after_free
            }
        );
        // Both sheaves empty: the next allocation takes the last full
        // sheaf put in the barn (the 65th free put objects 0..32 there,
        // the 97th 32..64) and pops its last object, ptrs[63].
        assert_eq!(next_from, (37, 1));
        // The thread's exit put its full sheaves in the barn and flushed
        // the others; kmalloc-768's slabs are consistent.
        let all = SlubAlloc::sheaf_stats();
        assert!(all.sheaf_flush + all.barn_put >= 3);
        CACHES[SET_3_2][18].assert_invariants();
    }

    #[test]
    fn tail_frames_of_a_slab_carry_its_class() {
        // kmalloc-2048 (class 24) slabs are order 1: half the objects lie
        // in tail frames, which carry (set << 8 | class) + 1 as the head
        // does.
        assert_eq!(CACHES[SET_3_2][24].layout.order, 1);
        let ptrs: Vec<*mut u8> = (0..64).map(|_| SlubAlloc::allocate(2000, 8)).collect();
        let mut tails = 0;
        for &p in &ptrs {
            // SAFETY: a live block of ours; its frames are live.
            unsafe {
                let frame = virt_to_page(p).unwrap();
                let flags = (*frame).flags.load(Ordering::Relaxed);
                assert_eq!(flags >> PG_CLASS_SHIFT, ((SET_3_2 as u32) << 8 | 24) + 1);
                // The section's class map says the same as the frame.
                assert_eq!(frame_class(p), Some(flags >> PG_CLASS_SHIFT));
                tails += usize::from(flags & crate::page::PG_TAIL != 0);
            }
        }
        assert!(tails > 0, "no object in a tail frame");
        for p in ptrs {
            // SAFETY: allocated above, freed once.
            unsafe { SlubAlloc::deallocate(p) };
        }
        // A large block's frames are no kmalloc slab's: class 0.
        let big = SlubAlloc::allocate(20_000, 8);
        // SAFETY: a live block of ours.
        unsafe {
            assert_eq!(frame_class(big), Some(0));
            SlubAlloc::deallocate(big);
        }
    }

    #[test]
    fn a_slab_records_its_class_and_era_in_its_flags() {
        for (set, p) in [
            (SET_3_2, SlubAlloc::allocate(40, 8)),
            (SET_2624, SlubAlloc2624::allocate(40, 8)),
        ] {
            // SAFETY: a live block of ours; its slab's frame is live.
            unsafe {
                let page = Page::head(virt_to_page(p).unwrap());
                let flags = (*page).flags.load(Ordering::Relaxed);
                // kmalloc-48 is class 3: (set << 8 | 3) + 1.
                assert_eq!(flags >> PG_CLASS_SHIFT, ((set as u32) << 8 | 3) + 1);
                assert_eq!(NAMES[3], "kmalloc-48");
                SlubAlloc::deallocate(p);
            }
        }
    }
}
