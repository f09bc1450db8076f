//! Replay throughput in object mode: requests per second through each
//! textbook policy, on the shared cloudPhysicsIO trace repeated 30 times
//! (3,416,160 requests; each repetition shifts the keys so the later copies
//! are new objects, as a longer trace of the same shape would be).
//!
//! Peer in the same process: the `lru` crate's `LruCache` (a widely used
//! Rust LRU, counting objects), against klab's LRU with sizes ignored (also
//! counting objects), so the two do the same work.
//!
//! Target (issue 3): at least 20 million requests per second for LRU on one
//! core.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use klab_mm_policy::{ObjectRequest, PolicyKind};

const REPEAT: u64 = 30;

fn requests() -> Vec<ObjectRequest> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/data/traces/cloudPhysicsIO.oracleGeneral.bin");
    let base = klab_trace::read(&path, None).expect("shared trace");
    let mut out = Vec::with_capacity(base.len() * REPEAT as usize);
    for rep in 0..REPEAT {
        out.extend(base.iter().map(|r| ObjectRequest {
            key: r.obj_id ^ (rep << 48),
            size: r.size,
        }));
    }
    out
}

fn bench(c: &mut Criterion) {
    let reqs = requests();
    let unit: Vec<ObjectRequest> = reqs
        .iter()
        .map(|r| ObjectRequest {
            key: r.key,
            size: 1,
        })
        .collect();
    let mut g = c.benchmark_group("replay");
    g.throughput(Throughput::Elements(reqs.len() as u64));
    g.sample_size(10);
    for kind in [
        PolicyKind::Lru,
        PolicyKind::Fifo,
        PolicyKind::Clock,
        PolicyKind::TwoQ,
        PolicyKind::Arc,
    ] {
        g.bench_function(format!("{kind}/512MiB"), |b| {
            b.iter(|| black_box(kind.replay(512 << 20, black_box(&reqs))))
        });
    }
    // Object-counting caches of 16384 objects: klab against the lru crate.
    g.bench_function("lru/16384-objects", |b| {
        b.iter(|| black_box(PolicyKind::Lru.replay(16_384, black_box(&unit))))
    });
    g.bench_function("peer-lru-crate/16384-objects", |b| {
        b.iter(|| {
            let mut c = lru::LruCache::new(NonZeroUsize::new(16_384).unwrap());
            let mut hits = 0u64;
            for r in black_box(&unit) {
                if c.get(&r.key).is_some() {
                    hits += 1;
                } else {
                    c.put(r.key, ());
                }
            }
            black_box(hits)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
