//! One autofs-sized record (304 bytes) written and read back through a
//! packet pipe, on one thread: klab's portable pipe against its peers in
//! the same process: the kernel's packet pipe (`pipe2(O_DIRECT)`, two
//! system calls per record) and `std::sync::mpsc::sync_channel` (the usual
//! in-process way to pass messages, one allocation per record).
// criterion's macros generate undocumented public items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::mpsc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use klab_uapi::pipe::{PipeConfig, PipeFlags, host, pipe};

const RECORD: usize = 304;

fn pipes(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet_round_trip_304B");
    g.throughput(Throughput::Bytes(RECORD as u64));
    let rec = [7u8; RECORD];
    let mut buf = [0u8; RECORD];
    let flags = PipeFlags {
        packet: true,
        nonblock: true,
    };
    let (r, w) = pipe(PipeConfig::host(), flags);
    g.bench_function("klab_portable", |b| {
        b.iter(|| {
            w.write(black_box(&rec)).unwrap();
            black_box(r.read(&mut buf).unwrap())
        })
    });
    if let Ok((hr, hw)) = host::pipe(flags) {
        g.bench_function("kernel_pipe2_o_direct", |b| {
            b.iter(|| {
                hw.write(black_box(&rec)).unwrap();
                black_box(hr.read(&mut buf).unwrap())
            })
        });
    }
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(16);
    g.bench_function("std_sync_channel", |b| {
        b.iter(|| {
            tx.send(black_box(rec.to_vec())).unwrap();
            black_box(rx.recv().unwrap().len())
        })
    });
    g.finish();
}

criterion_group!(benches, pipes);
criterion_main!(benches);
