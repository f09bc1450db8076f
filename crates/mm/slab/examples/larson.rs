//! Runs the larson churn of `klab_slab::workload` on one allocator, for
//! profiling (`perf record`, `valgrind --tool=callgrind`):
//! `cargo run --release -p klab-slab --example larson -- klab 2 20`
//! (allocator `klab` (3.2 with 6.18's sheaves), `klab-3.2` (without
//! sheaves), `klab-2.6.24`, `slab` (klab's SLAB), `slob` (klab's SLOB),
//! `glibc` or `mimalloc`; threads; rounds).

use std::alloc::System;

use klab_slab::slob::SlobAlloc;
use klab_slab::workload::{Larson, larson};
use klab_slab::{SlabAlloc, SlubAlloc, SlubAlloc2624};
use mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map_or("klab", String::as_str);
    let threads = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(2);
    let rounds = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20);
    let p = Larson {
        rounds,
        ..Larson::small(threads, false)
    };
    let run = match which {
        "klab" => larson(&SlubAlloc, p),
        "klab-3.2" => {
            SlubAlloc::set_sheaves(false);
            larson(&SlubAlloc, p)
        }
        "klab-2.6.24" => larson(&SlubAlloc2624, p),
        "slab" => larson(&SlabAlloc, p),
        "slob" => larson(&SlobAlloc, p),
        "glibc" => larson(&System, p),
        "mimalloc" => larson(&MiMalloc, p),
        other => {
            eprintln!(
                "larson: unknown allocator '{other}' (expected klab, klab-3.2, klab-2.6.24, slab, slob, glibc or mimalloc)"
            );
            std::process::exit(2);
        }
    };
    println!(
        "{which}: {:.1} Mops/s ({} ops in {:?})",
        run.ops_per_sec() / 1e6,
        run.ops,
        run.elapsed
    );
    let stats = match which {
        "klab" | "klab-3.2" => Some(SlubAlloc::stats()),
        "klab-2.6.24" => Some(SlubAlloc2624::stats()),
        _ => None,
    };
    if let Some(s) = stats {
        println!("{s:#?}");
    }
    if which == "klab" {
        println!("{:#?}", SlubAlloc::sheaf_stats());
    }
}
