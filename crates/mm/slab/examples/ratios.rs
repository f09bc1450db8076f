//! Prints throughput of klab's SLUB (3.2 caches behind 6.18's sheaves, and
//! 2.6.24 caches), SLAB (mm/slab.c, 2.6.23), SLOB, glibc and mimalloc on
//! the shared workloads, and the peak RSS of each in a forked child: a
//! quick look without criterion
//! (`cargo run --release -p klab-slab --example ratios`; with `-- 3.2`,
//! klab's 3.2 caches run without sheaves).

use std::alloc::{GlobalAlloc, System};

use klab_slab::slob::SlobAlloc;
use klab_slab::workload::{Larson, Run, larson, peak_rss, producer_consumer, single_thread};
use klab_slab::{SlabAlloc, SlubAlloc, SlubAlloc2624};
use mimalloc::MiMalloc;

fn show<A: GlobalAlloc + Sync>(name: &str, a: &A) {
    let st: Run = single_thread(a, 2000, 100, 16, 128, 1);
    let pc = producer_consumer(a, 400_000, 64);
    let la = larson(a, Larson::small(2, false));
    let rss = peak_rss(|| {
        larson(
            a,
            Larson {
                slots: 20_000,
                rounds: 4,
                ..Larson::small(2, true)
            },
        );
    });
    println!(
        "{name:>11}: single {:>7.1} Mops/s  prod/cons {:>6.1} Mops/s  larson {:>6.1} Mops/s  larson peak RSS {:?} KiB",
        st.ops_per_sec() / 1e6,
        pc.ops_per_sec() / 1e6,
        la.ops_per_sec() / 1e6,
        rss
    );
}

fn main() {
    if std::env::args().nth(1).as_deref() == Some("3.2") {
        SlubAlloc::set_sheaves(false);
        show("klab 3.2", &SlubAlloc);
    } else {
        show("klab 3.2+sh", &SlubAlloc);
    }
    show("klab 2.6.24", &SlubAlloc2624);
    show("klab SLAB", &SlabAlloc);
    show("klab SLOB", &SlobAlloc);
    show("glibc", &System);
    show("mimalloc", &MiMalloc);
}
