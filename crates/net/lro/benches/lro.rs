//! Packets per second aggregated on one core, over frames held in memory.
//!
//! * `bulk`: generated bulk streams (4 flows, 8-segment trains, 1448-byte
//!   segments with timestamps): LRO with hashed and linear lookup, LRO
//!   verifying checksums in software, and GRO. The target is 10 Mpps for
//!   LRO with checksums trusted (the NIC verified them, as drivers that
//!   used inet_lro required).
//! * `captures`: each capture of shared/data/pcaps (when present), LRO and
//!   GRO; the packets-out / packets-in ratio is printed once per capture.
//! * `lookup`: `max_desc` flows sending one segment each in turn (every
//!   packet a different flow: the worst case for the lookup), the kernel's
//!   linear search against the hashed lookup.
//!
//! Each iteration runs the whole frame set through a fresh manager with a
//! flush every 64 packets (a NAPI poll) and drops what comes out.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_main};
use klab_lro::napi::run_counting;
use klab_lro::workload::{BulkSpec, bulk};
use klab_lro::{Capture, Checksum, Engine, GroConfig, LinkType, Lookup, LroConfig};

fn lro(lookup: Lookup, checksum: Checksum, max_desc: usize) -> LroConfig {
    LroConfig {
        max_desc,
        lookup,
        checksum,
        ..LroConfig::default()
    }
}

/// Builds an engine for a link type.
type MakeEngine = Box<dyn Fn(LinkType) -> Engine<&'static [u8]>>;

fn engines(max_desc: usize) -> Vec<(&'static str, MakeEngine)> {
    vec![
        (
            "lro-hashed",
            Box::new(move |l| {
                Engine::lro(lro(Lookup::Hashed, Checksum::Trust, max_desc), l).unwrap()
            }),
        ),
        (
            "lro-linear",
            Box::new(move |l| {
                Engine::lro(lro(Lookup::Linear, Checksum::Trust, max_desc), l).unwrap()
            }),
        ),
        (
            "lro-verify",
            Box::new(move |l| {
                Engine::lro(lro(Lookup::Hashed, Checksum::Verify, max_desc), l).unwrap()
            }),
        ),
        (
            "gro",
            Box::new(|l| {
                Engine::gro(
                    GroConfig {
                        checksum: Checksum::Trust,
                        ..GroConfig::default()
                    },
                    l,
                )
                .unwrap()
            }),
        ),
    ]
}

fn frames_of(spec: &BulkSpec) -> &'static [&'static [u8]] {
    let frames: &'static [klab_lro::workload::Frame] = Vec::leak(bulk(spec));
    Vec::leak(frames.iter().map(|f| f.data.as_slice()).collect())
}

fn bench_bulk(c: &mut Criterion) {
    let spec = BulkSpec {
        flows: 4,
        segs_per_flow: 4000,
        ..BulkSpec::default()
    };
    let frames = frames_of(&spec);
    let mut g = c.benchmark_group("bulk");
    g.throughput(Throughput::Elements(frames.len() as u64));
    for (name, make) in engines(8) {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut e = make(LinkType::Ethernet);
                run_counting(&mut e, frames.iter().copied(), 64)
            })
        });
    }
    g.finish();
}

fn bench_captures(c: &mut Criterion) {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(dir) = [
        here.join("../../../../shared/data/pcaps"),
        here.join("../../../../../shared/data/pcaps"),
    ]
    .into_iter()
    .find(|p| p.is_dir()) else {
        eprintln!("shared/data/pcaps not found: skipping the capture benchmarks");
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    let mut g = c.benchmark_group("captures");
    for path in files {
        let bytes: &'static [u8] = Vec::leak(std::fs::read(&path).unwrap());
        let cap = Capture::parse(bytes).unwrap();
        let link = cap.link().unwrap();
        let frames: Vec<&'static [u8]> = cap.packets.iter().map(|p| p.data).collect();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        g.throughput(Throughput::Elements(frames.len() as u64));
        for (ename, make) in engines(8) {
            if ename == "lro-linear" || ename == "lro-verify" {
                continue;
            }
            let mut e = make(link);
            let out = run_counting(&mut e, frames.iter().copied(), 64);
            eprintln!(
                "{name} {ename}: {} packets in, {out} out, out/in {:.3}",
                frames.len(),
                out as f64 / frames.len() as f64
            );
            g.bench_with_input(BenchmarkId::new(ename, &name), &frames, |b, frames| {
                b.iter(|| {
                    let mut e = make(link);
                    run_counting(&mut e, frames.iter().copied(), 64)
                })
            });
        }
    }
    g.finish();
}

fn bench_lookup(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    for max_desc in [2usize, 8, 32, 128, 1024] {
        let spec = BulkSpec {
            flows: max_desc,
            segs_per_flow: (16_384 / max_desc).max(16),
            burst: 1,
            ..BulkSpec::default()
        };
        let frames = frames_of(&spec);
        g.throughput(Throughput::Elements(frames.len() as u64));
        for lookup in [Lookup::Linear, Lookup::Hashed] {
            let name = if lookup == Lookup::Linear {
                "linear"
            } else {
                "hashed"
            };
            g.bench_with_input(BenchmarkId::new(name, max_desc), &frames, |b, frames| {
                b.iter(|| {
                    let mut e: Engine<&[u8]> =
                        Engine::lro(lro(lookup, Checksum::Trust, max_desc), LinkType::Ethernet)
                            .unwrap();
                    // Flush every max_desc * 16 packets so sessions grow.
                    run_counting(&mut e, frames.iter().copied(), max_desc * 16)
                })
            });
        }
    }
    g.finish();
}

/// The criterion group (its generated function has no doc comment).
mod group {
    #![allow(missing_docs)]
    use super::{bench_bulk, bench_captures, bench_lookup};
    criterion::criterion_group!(benches, bench_bulk, bench_captures, bench_lookup);
}
criterion_main!(group::benches);
