//! The cost of a paravirtual operation in three binding forms, in one run.
//!
//! Workload: rounds of `klab_paravirt::kernel_paths` (a fault,
//! an unmap, a context switch, a timer reprogram: 16 operations a round)
//! on a model CPU, called
//! * `direct`: native instructions inline (a kernel without paravirt, the
//!   peer),
//! * `table`: an indirect call through `pv_ops` per operation (the table
//!   before patching),
//! * `bound`: the backend bound once at boot as the patcher binds it
//!   (natively the instructions inline, the same code as `direct`; a
//!   hypervisor's ROM by direct calls),
//! * `bound_call`: every site a direct call, natively too,
//! * `trap`: one CPUID, which exits to the hypervisor under KVM (per
//!   instruction, not per round),
//!
//! for the native backend (the page's "negligible overheads on native
//! machines") and for each model hypervisor. Reported per round; divide by
//! 16 for per operation. `klab bench paravirt` prints the ratios.
#![allow(missing_docs)] // criterion_group! generates undocumented items
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use klab_paravirt::{
    BackendKind, Cpu, OPS_PER_ROUND, PvOpsTable, boot_bound, boot_bound_call, direct, through_table,
};

const ROUNDS: u64 = 1024;

fn binding_forms(c: &mut Criterion) {
    let mut g = c.benchmark_group("paravirt");
    g.throughput(Throughput::Elements(ROUNDS * OPS_PER_ROUND));
    let mut cpu = Cpu::new(512);
    g.bench_function(BenchmarkId::new("direct", "native"), |b| {
        b.iter(|| direct(&mut cpu, black_box(ROUNDS)))
    });
    for kind in BackendKind::ALL {
        let table = black_box(PvOpsTable::bind(kind));
        g.bench_function(BenchmarkId::new("table", kind.name()), |b| {
            b.iter(|| through_table(black_box(&table), &mut cpu, black_box(ROUNDS)))
        });
        let k = black_box(kind);
        g.bench_function(BenchmarkId::new("bound", kind.name()), |b| {
            b.iter(|| boot_bound(k, &mut cpu, black_box(ROUNDS)))
        });
        g.bench_function(BenchmarkId::new("bound_call", kind.name()), |b| {
            b.iter(|| boot_bound_call(k, &mut cpu, black_box(ROUNDS)))
        });
    }
    g.finish();
    let mut t = c.benchmark_group("trap");
    t.throughput(Throughput::Elements(1));
    t.bench_function("cpuid", |b| {
        b.iter(|| klab_paravirt::probe::cpuid(black_box(0)))
    });
    t.finish();
}

criterion_group!(benches, binding_forms);
criterion_main!(benches);
