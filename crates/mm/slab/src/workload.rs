//! Allocation workloads shared by the criterion benchmarks, `klab bench
//! slub` and the `slub` experiment, so every number comes from the same
//! code. Each runs on any `GlobalAlloc` (klab's [`SlubAlloc`], the system
//! allocator, mimalloc) called directly, not as the program's global
//! allocator, so the peers run in one process.
//!
//! * [`single_thread`]: batches of small allocations freed LIFO.
//! * [`producer_consumer`]: one thread allocates, another frees, through a
//!   lock-free ring (no allocation in the hand-over).
//! * [`larson`]: after Larson & Krishnan's server benchmark: each thread
//!   owns an array of live blocks and replaces a random one with a block
//!   of random size; at each round the arrays move to the next thread, so
//!   blocks are freed by threads that did not allocate them.
//! * [`object_churn`]: kmem_cache alloc/free through [`ObjectAllocator`],
//!   for SLUB against SLOB.
//! * [`peak_rss`]: runs a workload in a forked child and measures the
//!   child's peak resident set growth.
//! * [`run_program`]: runs a real program (for `LD_PRELOAD` timings) and
//!   reports its wall-clock time, exit status and peak RSS.
//!
//! [`SlubAlloc`]: crate::SlubAlloc
//! [`ObjectAllocator`]: crate::ObjectAllocator

use std::alloc::{GlobalAlloc, Layout};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::primitive::{AtomicUsize, Ordering};
use crate::{ObjectAllocator, ObjectCache, SlabFlags};

/// A small xorshift generator: workloads must not allocate to draw.
#[derive(Clone, Copy, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from a non-zero seed (0 is replaced).
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `[lo, hi]`.
    #[inline]
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// `GlobalAlloc + Sync` as one object type, so peers can sit in one list.
pub trait SyncAlloc: GlobalAlloc + Sync {}
impl<T: GlobalAlloc + Sync> SyncAlloc for T {}

/// A `GlobalAlloc` that forwards to a `&dyn SyncAlloc`.
#[derive(Clone, Copy)]
pub struct DynAlloc<'a>(pub &'a dyn SyncAlloc);

// SAFETY: every call is forwarded unchanged to an allocator that upholds
// the GlobalAlloc contract.
unsafe impl GlobalAlloc for DynAlloc<'_> {
    #[inline]
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { self.0.alloc(l) }
    }
    #[inline]
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(p, l) }
    }
}

#[inline]
fn layout(size: usize) -> Layout {
    // Sizes here are small and non-zero; alignment 8 is always valid.
    Layout::from_size_align(size, 8).expect("valid layout")
}

/// What a workload did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Run {
    /// Allocations plus frees.
    pub ops: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl Run {
    /// Operations per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `rounds` rounds of `batch` allocations of sizes in `[min, max]`, each
/// written once, then freed in reverse order.
pub fn single_thread<A: GlobalAlloc>(
    a: &A,
    rounds: usize,
    batch: usize,
    min: usize,
    max: usize,
    seed: u64,
) -> Run {
    let mut rng = XorShift::new(seed);
    let mut ptrs: Vec<(*mut u8, usize)> = Vec::with_capacity(batch);
    let t = Instant::now();
    for _ in 0..rounds {
        for _ in 0..batch {
            let s = rng.range(min, max);
            // SAFETY: a valid layout; the block is written within bounds
            // and freed below with the same layout.
            unsafe {
                let p = a.alloc(layout(s));
                assert!(!p.is_null(), "out of memory");
                p.write(s as u8);
                ptrs.push((p, s));
            }
        }
        while let Some((p, s)) = ptrs.pop() {
            // SAFETY: allocated above with this layout.
            unsafe { a.dealloc(p, layout(s)) };
        }
    }
    Run {
        ops: 2 * (rounds * batch) as u64,
        elapsed: t.elapsed(),
    }
}

/// A single-producer single-consumer ring of pointers.
struct Ring {
    slots: Box<[AtomicUsize]>,
    head: AtomicUsize,
    tail: AtomicUsize,
}

impl Ring {
    fn new(n: usize) -> Ring {
        Ring {
            slots: (0..n).map(|_| AtomicUsize::new(0)).collect(),
            head: AtomicUsize::new(0),
            tail: AtomicUsize::new(0),
        }
    }

    fn push(&self, v: usize) {
        let t = self.tail.load(Ordering::Relaxed);
        while t - self.head.load(Ordering::Acquire) == self.slots.len() {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        self.slots[t % self.slots.len()].store(v, Ordering::Relaxed);
        self.tail.store(t + 1, Ordering::Release);
    }

    fn pop(&self) -> usize {
        let h = self.head.load(Ordering::Relaxed);
        while self.tail.load(Ordering::Acquire) == h {
            std::hint::spin_loop();
            std::thread::yield_now();
        }
        let v = self.slots[h % self.slots.len()].load(Ordering::Relaxed);
        self.head.store(h + 1, Ordering::Release);
        v
    }
}

/// One thread allocates `items` blocks of `size` bytes and hands them to
/// another, which frees them.
pub fn producer_consumer<A: GlobalAlloc + Sync>(a: &A, items: usize, size: usize) -> Run {
    let ring = Ring::new(1024);
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..items {
                // SAFETY: valid layout; the block is freed by the consumer.
                let p = unsafe { a.alloc(layout(size)) };
                assert!(!p.is_null(), "out of memory");
                // SAFETY: a fresh block of `size` >= 1 bytes.
                unsafe { p.write(1) };
                ring.push(p.expose_provenance());
            }
        });
        s.spawn(|| {
            for _ in 0..items {
                let p = std::ptr::with_exposed_provenance_mut::<u8>(ring.pop());
                // SAFETY: allocated by the producer with this layout.
                unsafe { a.dealloc(p, layout(size)) };
            }
        });
    });
    Run {
        ops: 2 * items as u64,
        elapsed: t.elapsed(),
    }
}

/// Parameters of [`larson`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Larson {
    /// Threads.
    pub threads: usize,
    /// Live blocks per thread.
    pub slots: usize,
    /// Rounds; arrays move to the next thread after each.
    pub rounds: usize,
    /// Replacements per thread per round.
    pub ops_per_round: usize,
    /// Smallest block.
    pub min: usize,
    /// Largest block.
    pub max: usize,
    /// Seed.
    pub seed: u64,
}

impl Larson {
    /// Small-object churn on `threads` threads, 10-500 bytes.
    pub fn small(threads: usize, quick: bool) -> Larson {
        Larson {
            threads,
            slots: 1000,
            rounds: if quick { 4 } else { 20 },
            ops_per_round: if quick { 10_000 } else { 50_000 },
            min: 10,
            max: 500,
            seed: 1,
        }
    }
}

/// The larson churn: see the module header.
pub fn larson<A: GlobalAlloc + Sync>(a: &A, p: Larson) -> Run {
    let arrays: Vec<std::sync::Mutex<Vec<(usize, usize)>>> = (0..p.threads)
        .map(|t| {
            let mut rng = XorShift::new(p.seed + t as u64);
            let v = (0..p.slots)
                .map(|_| {
                    let s = rng.range(p.min, p.max);
                    // SAFETY: valid layout; freed below.
                    let q = unsafe { a.alloc(layout(s)) };
                    assert!(!q.is_null(), "out of memory");
                    (q.expose_provenance(), s)
                })
                .collect();
            std::sync::Mutex::new(v)
        })
        .collect();
    let barrier = Barrier::new(p.threads);
    let t = Instant::now();
    std::thread::scope(|s| {
        for t in 0..p.threads {
            let (arrays, barrier) = (&arrays, &barrier);
            s.spawn(move || {
                let mut rng = XorShift::new(p.seed * 7919 + t as u64);
                for round in 0..p.rounds {
                    let mine = (t + round) % p.threads;
                    let mut v = arrays[mine].lock().unwrap_or_else(|e| e.into_inner());
                    for _ in 0..p.ops_per_round {
                        let i = rng.range(0, p.slots - 1);
                        let (old, os) = v[i];
                        let s = rng.range(p.min, p.max);
                        // SAFETY: `old` was allocated with layout(os); the
                        // new block is written within its size.
                        unsafe {
                            a.dealloc(std::ptr::with_exposed_provenance_mut(old), layout(os));
                            let q = a.alloc(layout(s));
                            assert!(!q.is_null(), "out of memory");
                            q.write(s as u8);
                            v[i] = (q.expose_provenance(), s);
                        }
                    }
                    drop(v);
                    barrier.wait();
                }
            });
        }
    });
    let elapsed = t.elapsed();
    for m in arrays {
        for (q, s) in m.into_inner().unwrap_or_else(|e| e.into_inner()) {
            // SAFETY: live blocks allocated with layout(s).
            unsafe { a.dealloc(std::ptr::with_exposed_provenance_mut(q), layout(s)) };
        }
    }
    Run {
        ops: 2 * (p.threads * p.rounds * p.ops_per_round) as u64,
        elapsed,
    }
}

/// kmem_cache churn on an [`ObjectAllocator`]: caches of the given object
/// sizes, `rounds` rounds of `batch` allocations per cache freed in
/// allocation order.
pub fn object_churn<O: ObjectAllocator>(
    o: &O,
    sizes: &[usize],
    rounds: usize,
    batch: usize,
) -> Run {
    let caches: Vec<O::Cache> = sizes
        .iter()
        .map(|&s| {
            o.create_cache(&format!("churn-{s}"), s, 8, SlabFlags::NONE, None)
                .expect("cache")
        })
        .collect();
    let mut cpus: Vec<_> = caches.iter().map(|c| c.cpu()).collect();
    let mut live = Vec::with_capacity(batch);
    let t = Instant::now();
    for _ in 0..rounds {
        for (c, cpu) in caches.iter().zip(cpus.iter_mut()) {
            for _ in 0..batch {
                let p = c.alloc(cpu).expect("out of memory");
                // SAFETY: a fresh object of at least one byte.
                unsafe { p.as_ptr().write(1) };
                live.push(p);
            }
            for p in live.drain(..) {
                // SAFETY: allocated just above from this cache.
                unsafe { c.free(cpu, p) };
            }
        }
    }
    Run {
        ops: 2 * (rounds * batch * sizes.len()) as u64,
        elapsed: t.elapsed(),
    }
}

/// Frees from another CPU on an [`ObjectAllocator`], on two real threads:
/// one allocates `bursts` bursts of `batch` objects of each cache of
/// `sizes` and hands each burst over a channel to the other, which frees
/// it with its own per-CPU state (SLAB: a free into its own array of
/// another CPU's objects; SLUB: a free into a slab another CPU holds).
pub fn remote_frees<O: ObjectAllocator>(
    o: &O,
    sizes: &[usize],
    bursts: usize,
    batch: usize,
) -> Run {
    let caches: Vec<O::Cache> = sizes
        .iter()
        .map(|&s| {
            o.create_cache(&format!("remote-{s}"), s, 8, SlabFlags::NONE, None)
                .expect("cache")
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<usize>)>(8);
    let t = Instant::now();
    std::thread::scope(|s| {
        let caches = &caches;
        s.spawn(move || {
            let mut cpus: Vec<_> = caches.iter().map(ObjectCache::cpu).collect();
            for (i, objs) in rx {
                for a in objs {
                    let p = std::ptr::NonNull::new(std::ptr::with_exposed_provenance_mut::<u8>(a))
                        .expect("objects are not null");
                    // SAFETY: allocated from cache i by the other thread,
                    // handed over once and freed once here.
                    unsafe { caches[i].free(&mut cpus[i], p) };
                }
            }
        });
        let mut cpus: Vec<_> = caches.iter().map(ObjectCache::cpu).collect();
        for _ in 0..bursts {
            for (i, c) in caches.iter().enumerate() {
                let v = (0..batch)
                    .map(|_| {
                        let p = c.alloc(&mut cpus[i]).expect("out of memory");
                        // SAFETY: a fresh object of at least one byte.
                        unsafe { p.as_ptr().write(1) };
                        p.as_ptr().expose_provenance()
                    })
                    .collect();
                tx.send((i, v)).expect("the freeing thread runs");
            }
        }
        drop(tx);
    });
    Run {
        ops: 2 * (bursts * batch * sizes.len()) as u64,
        elapsed: t.elapsed(),
    }
}

/// On a model SLAB machine: every CPU allocates `objs` objects of `cache`
/// and frees the even-numbered ones itself and the others on CPU
/// `partner(cpu)` (`cache_free_alien()` when that CPU is on another
/// node). Returns the objects allocated; `None` when the page source ran
/// out (what was allocated is freed).
pub fn slab_partner_frees(
    cache: &crate::SlabCache,
    cpus: usize,
    objs: usize,
    partner: impl Fn(usize) -> usize,
) -> Option<usize> {
    let mut n = 0;
    for cpu in 0..cpus {
        let got: Vec<_> = (0..objs).map_while(|_| cache.alloc_on(cpu)).collect();
        let short = got.len() < objs;
        let other = partner(cpu);
        for (i, o) in got.into_iter().enumerate() {
            n += 1;
            // SAFETY: allocated just above from this cache, freed once.
            unsafe { cache.free_on(if i % 2 == 0 { cpu } else { other }, o) };
        }
        if short {
            return None;
        }
    }
    Some(n)
}

/// [`slab_partner_frees`] on SLUB: `cpus[c]` is CPU `c`'s state for one
/// cache; the odd-numbered objects are freed through CPU `partner(c)`'s.
pub fn slub_partner_frees(
    cpus: &mut [crate::CpuSlab],
    objs: usize,
    partner: impl Fn(usize) -> usize,
) -> Option<usize> {
    let mut n = 0;
    for cpu in 0..cpus.len() {
        let got: Vec<_> = (0..objs).map_while(|_| cpus[cpu].alloc()).collect();
        let short = got.len() < objs;
        let other = partner(cpu);
        for (i, o) in got.into_iter().enumerate() {
            n += 1;
            // SAFETY: allocated just above from this cache (CPU states of
            // one cache), freed once.
            unsafe { cpus[if i % 2 == 0 { cpu } else { other }].free(o) };
        }
        if short {
            return None;
        }
    }
    Some(n)
}

/// The peak resident set of a child process running `f`, minus its
/// resident set when `f` started, in KiB (`VmHWM` after resetting it
/// through `/proc/self/clear_refs`). `None` where fork or /proc is
/// unavailable (and under Miri).
pub fn peak_rss<F: FnOnce()>(f: F) -> Option<u64> {
    if cfg!(miri) {
        return None;
    }
    fn status_kib(field: &str) -> Option<u64> {
        let s = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = s.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: the child only runs `f`, writes to the pipe and `_exit`s;
    // the allocators it uses are fork-safe (glibc and klab's register
    // atfork handlers; mimalloc takes no lock across fork).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return None;
    }
    if pid == 0 {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let start = status_kib("VmRSS:").unwrap_or(0);
        f();
        let peak = status_kib("VmHWM:").unwrap_or(0);
        let v = peak.saturating_sub(start).to_le_bytes();
        // SAFETY: writes 8 bytes from a live buffer, then exits without
        // running the parent's destructors.
        unsafe {
            libc::write(fds[1], v.as_ptr().cast(), 8);
            libc::_exit(0);
        }
    }
    let mut buf = [0u8; 8];
    // SAFETY: reads into a live 8-byte buffer; waits for our own child.
    unsafe {
        libc::close(fds[1]);
        let n = libc::read(fds[0], buf.as_mut_ptr().cast(), 8);
        libc::close(fds[0]);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
        (n == 8).then(|| u64::from_le_bytes(buf))
    }
}

/// One run of a real program: [`run_program`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramRun {
    /// Wall-clock time from spawn to exit.
    pub elapsed: Duration,
    /// Peak resident set of the program (the largest of it and the
    /// descendants it waited for), KiB: `ru_maxrss` of the child's
    /// rusage, the figure `getrusage(RUSAGE_CHILDREN)` accumulates.
    pub max_rss_kib: u64,
    /// Exited with status 0.
    pub success: bool,
    /// What it wrote to standard output.
    pub stdout: Vec<u8>,
}

/// Runs `cmd` to completion (standard output captured, standard error
/// discarded) and collects its rusage with `wait4()`, so each run's peak
/// RSS is its own and not the maximum over every child of the caller.
pub fn run_program(cmd: &mut std::process::Command) -> std::io::Result<ProgramRun> {
    use std::io::Read;
    use std::process::Stdio;
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = Vec::new();
    if let Some(mut o) = child.stdout.take() {
        o.read_to_end(&mut stdout)?;
    }
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of the C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, not yet reaped (std's `Child` is
    // never waited on below: it is forgotten), into live out-parameters.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let elapsed = t.elapsed();
    std::mem::forget(child);
    if r != pid {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ProgramRun {
        elapsed,
        max_rss_kib: u64::try_from(ru.ru_maxrss).unwrap_or(0),
        success: libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        stdout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SlubAlloc;
    use std::alloc::System;

    #[test]
    fn workloads_run_on_every_allocator() {
        let q = cfg!(miri);
        let r = single_thread(&SlubAlloc, if q { 2 } else { 50 }, 20, 8, 200, 1);
        assert_eq!(r.ops, 2 * (if q { 2 } else { 50 }) * 20);
        let r = producer_consumer(&System, if q { 50 } else { 5000 }, 64);
        assert!(r.ops > 0);
        let mut p = Larson::small(2, true);
        if q {
            p.slots = 10;
            p.rounds = 2;
            p.ops_per_round = 20;
        }
        let r = larson(&SlubAlloc, p);
        assert_eq!(r.ops, 2 * 2 * p.rounds as u64 * p.ops_per_round as u64);
        let slub = crate::Slub::new(
            std::sync::Arc::new(crate::FramePool::new(1, 4)),
            crate::SlubConfig::default(),
            std::sync::Arc::new(crate::CollectSink::new()),
        );
        let r = object_churn(&slub, &[32, 200], if q { 2 } else { 10 }, 50);
        assert_eq!(r.ops, 2 * 2 * 50 * if q { 2 } else { 10 });
        let slob = crate::Slob::new(std::sync::Arc::new(crate::FramePool::new(1, 4)));
        let r = object_churn(&slob, &[32, 200], if q { 2 } else { 10 }, 50);
        assert!(r.ops > 0);
    }

    #[test]
    fn partner_frees_land_in_the_other_nodes_queues() {
        use std::sync::Arc;
        // SLAB: CPUs 0 and 1 on node 0, 2 and 3 on node 1; each allocates
        // 4 objects, frees 2 itself and 2 on the CPU two along (the other
        // node): 4 objects in each node's alien array for the other node.
        let slab = crate::Slab::new(
            Arc::new(crate::FramePool::new(2, 4)),
            crate::SlabConfig { nr_cpus: 4 },
        );
        let c = slab
            .kmem_cache_create("p", 64, 0, SlabFlags::NONE, None)
            .unwrap();
        assert_eq!(slab_partner_frees(&c, 4, 4, |cpu| (cpu + 2) % 4), Some(16));
        assert_eq!(c.core().node_counts(0).alien_avail, 4);
        assert_eq!(c.core().node_counts(1).alien_avail, 4);
        // SLUB: each CPU's slab of 64 objects (order 0) keeps 60 on its
        // freelist after 4 allocations, and gets back its 2 local frees;
        // the 2 remote frees go to the slab, not the freeing CPU.
        let slub = crate::Slub::new(
            Arc::new(crate::FramePool::new(2, 4)),
            crate::SlubConfig::default(),
            Arc::new(crate::CollectSink::new()),
        );
        let k = slub
            .kmem_cache_create("p", 64, 8, SlabFlags::NONE, None)
            .unwrap();
        let mut cpus: Vec<_> = (0..4).map(|c| k.cpu_on(c / 2)).collect();
        assert_eq!(slub_partner_frees(&mut cpus, 4, |c| (c + 2) % 4), Some(16));
        let free: Vec<usize> = cpus.iter().map(|c| c.state().nr_free()).collect();
        assert_eq!(free, [62; 4]);
        // Remote frees on two real threads: every object allocated is freed.
        let r = remote_frees(&slab, &[32, 200], 3, 10);
        assert_eq!(r.ops, 2 * 3 * 10 * 2);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot spawn processes")]
    fn run_program_reports_status_output_and_peak_rss() {
        let r = run_program(
            std::process::Command::new("sh")
                .args(["-c", "head -c 40000000 /dev/zero | tr '\\0' x | wc -c"]),
        )
        .unwrap();
        assert!(r.success);
        assert_eq!(String::from_utf8_lossy(&r.stdout).trim(), "40000000");
        assert!(r.max_rss_kib > 0);
        let r = run_program(std::process::Command::new("sh").args(["-c", "exit 3"])).unwrap();
        assert!(!r.success);
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot fork")]
    fn peak_rss_sees_a_child_touch_memory() {
        let kib = peak_rss(|| {
            let v = vec![1u8; 32 << 20];
            std::hint::black_box(&v);
        });
        if let Some(k) = kib {
            assert!(k >= 30 << 10, "{k} KiB");
        }
    }
}
