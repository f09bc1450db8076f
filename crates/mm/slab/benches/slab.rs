//! klab's SLUB allocator (its 3.2 caches, `SlubAlloc`, and the page's
//! 2.6.24 ones, `SlubAlloc2624`) against the system allocator (glibc) and
//! mimalloc, in one process, on the workloads of `klab_slab::workload`:
//!
//! * `single_thread`: rounds of 100 allocations of 16-128 bytes freed LIFO;
//! * `producer_consumer`: 20 000 blocks of 64 bytes allocated on one thread
//!   and freed on another;
//! * `larson`: 2 threads, 1000 live blocks each, 10-500 bytes, arrays
//!   passed between threads every round.
//!
//! Throughput is reported in elements (allocations + frees) per second;
//! `klab bench slub` prints the ratios of the same workloads.
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::alloc::{GlobalAlloc, System};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use klab_slab::workload::{Larson, larson, producer_consumer, single_thread};
use klab_slab::{SlubAlloc, SlubAlloc2624};
use mimalloc::MiMalloc;

fn peers() -> [(&'static str, &'static dyn GlobalAllocSync); 4] {
    [
        ("klab-slub-3.2", &SlubAlloc),
        ("klab-slub-2.6.24", &SlubAlloc2624),
        ("glibc", &System),
        ("mimalloc", &MiMalloc),
    ]
}

/// `GlobalAlloc + Sync` as one object type.
trait GlobalAllocSync: GlobalAlloc + Sync {}
impl<T: GlobalAlloc + Sync> GlobalAllocSync for T {}

struct Dyn(&'static dyn GlobalAllocSync);
// SAFETY: forwards every call to the wrapped allocator.
unsafe impl GlobalAlloc for Dyn {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { self.0.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        // SAFETY: forwarded.
        unsafe { self.0.dealloc(p, l) }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("single_thread");
    g.throughput(Throughput::Elements(2 * 100 * 100));
    for (name, a) in peers() {
        g.bench_function(name, |b| {
            b.iter(|| single_thread(&Dyn(a), 100, 100, 16, 128, 1))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("producer_consumer");
    g.throughput(Throughput::Elements(2 * 20_000));
    g.sample_size(20);
    for (name, a) in peers() {
        g.bench_function(name, |b| b.iter(|| producer_consumer(&Dyn(a), 20_000, 64)));
    }
    g.finish();
    let mut g = c.benchmark_group("larson");
    let p = Larson {
        rounds: 4,
        ops_per_round: 20_000,
        ..Larson::small(2, true)
    };
    g.throughput(Throughput::Elements(2 * 2 * 4 * 20_000));
    g.sample_size(10);
    for (name, a) in peers() {
        g.bench_function(name, |b| b.iter(|| larson(&Dyn(a), p)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
