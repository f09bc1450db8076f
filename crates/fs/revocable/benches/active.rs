//! An active reference taken and dropped, against its peers in the same
//! process: the 2.6.22 scheme (an rwsem, here `std::sync::RwLock::try_read`
//! on the object) and a plain `Arc` clone (lifetime tied to the holder, the
//! pre-2.6.22 behaviour). One thread, uncontended: the cost every sysfs
//! `show()` pays.
// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::{Arc, RwLock};

use criterion::{Criterion, criterion_group, criterion_main};
use klab_revocable::Revocable;

fn active(c: &mut Criterion) {
    let mut g = c.benchmark_group("get_put");
    let r = Revocable::new(42u64);
    g.bench_function("revocable_try_get", |b| {
        b.iter(|| *black_box(&r).try_get().unwrap())
    });
    let rw = RwLock::new(Some(42u64));
    g.bench_function("rwlock_try_read", |b| {
        b.iter(|| black_box(&rw).try_read().unwrap().unwrap())
    });
    let a = Arc::new(42u64);
    g.bench_function("arc_clone", |b| b.iter(|| *Arc::clone(black_box(&a))));
    g.finish();
}

criterion_group!(benches, active);
criterion_main!(benches);
