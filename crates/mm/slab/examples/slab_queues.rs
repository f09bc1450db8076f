//! Bytes SLAB's queues hold on model machines, counted from the arrays a
//! [`klab_slab::Slab`] allocates (per-CPU, shared, alien), for the general
//! caches (`size-32` … `size-131072`) plus `extra` caches of 64-1024
//! bytes, after each CPU allocated and freed 8 objects of each of the
//! nine smallest general caches and the extra ones:
//! `cargo run --release -p klab-slab --example slab_queues -- [extra]`.
//! SLUB's counterpart holds no queue: one `kmem_cache_cpu` per CPU and
//! cache (its active slab and freelist pointer).

use std::sync::Arc;

use klab_slab::{FramePool, HeapPages, PageSource, SlabCache, SlabFlags};
use klab_slab::{Slab, SlabConfig};

fn main() {
    let extra: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    println!("cpus nodes caches per_cpu_KiB shared_KiB alien_KiB total_KiB objects_queued");
    for (cpus, nodes) in [(1, 1), (4, 1), (16, 2), (64, 4), (256, 8), (1024, 8)] {
        let src: Arc<dyn PageSource> = if nodes == 1 {
            Arc::new(HeapPages)
        } else {
            Arc::new(FramePool::new(nodes, 32))
        };
        let s = Slab::new(src, SlabConfig { nr_cpus: cpus });
        let caches: Vec<SlabCache> = (0..extra)
            .map(|i| {
                s.kmem_cache_create(
                    &format!("cache-{i}"),
                    64 + 16 * (i % 61),
                    0,
                    SlabFlags::NONE,
                    None,
                )
                .expect("cache")
            })
            .collect();
        // Each CPU allocates 8 objects of every cache and frees them.
        for c in s.general_caches().iter().take(9).chain(&caches) {
            for cpu in 0..cpus {
                let objs: Vec<_> = (0..8).filter_map(|_| c.alloc_on(cpu)).collect();
                for o in objs {
                    // SAFETY: allocated just above from this cache.
                    unsafe { c.free_on(cpu, o) };
                }
            }
        }
        let q = s.queue_memory(&caches);
        println!(
            "{cpus} {nodes} {} {} {} {} {} {}",
            s.general_caches().len() + extra,
            q.per_cpu / 1024,
            q.shared / 1024,
            q.alien / 1024,
            q.total() / 1024,
            q.objects_queued
        );
    }
}
