//! Moving an idle loopback connection in place (dump, silent close,
//! restore, repair off) against its peer, opening a new connection
//! (connect + accept: a full handshake). Needs root; without it the
//! benchmark prints why and measures nothing. Runs in a private network
//! namespace.

// criterion_group! and criterion_main! generate undocumented items.
#![allow(missing_docs)]

use std::os::fd::OwnedFd;

use criterion::{Criterion, criterion_group, criterion_main};
use klab_tcp_repair::netns::{Netns, privileged, unique_name};
use klab_tcp_repair::testbed::{loopback_pair, move_in_place};

fn bench(c: &mut Criterion) {
    if !privileged() {
        eprintln!("move_vs_connect: skipped: needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root)");
        return;
    }
    let ns = Netns::create(&unique_name("bench")).expect("namespace");
    ns.enter_current_thread().expect("setns");
    let mut g = c.benchmark_group("tcp-repair");
    let (_client, server) = loopback_pair().expect("pair");
    let mut fd = Some(OwnedFd::from(server));
    g.bench_function("move in place (dump + restore)", |b| {
        b.iter(|| {
            let f = fd.take().expect("socket");
            fd = Some(move_in_place(f).expect("move"));
        });
    });
    g.bench_function("new connection (connect + accept)", |b| {
        b.iter(|| loopback_pair().expect("pair"));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
