//! Part 2 of the `slub` experiment: the memory SLAB's queues and SLUB's
//! per-CPU state hold on model machines, counted from the structures a
//! [`Slab`] and a [`Slub`] actually build, not from a formula.
//!
//! Each machine (CPUs, nodes) gets a fresh [`FramePool`] of that many
//! nodes (klab's page allocator stops at `MAX_NUMNODES`, 8), a SLAB of
//! that many CPUs and a SLUB on a second pool, each with the kernel's
//! caches ([`super::KERNEL_CACHES`]) created after the general/kmalloc
//! caches. Then the same workload runs on both: every CPU allocates
//! [`OBJS_PER_CPU`] objects of each cache of [`HOT_CACHES`], frees half
//! of them itself and hands the other half to a CPU of the next node,
//! which frees them (on SLAB: `cache_free_alien()`; on SLUB: a free into
//! a slab another CPU may hold). Nothing is reaped afterwards.
//!
//! * SLAB: [`Slab::queue_memory`] over every cache: the per-CPU arrays
//!   (`cachep->array[cpu]`, allocated for every CPU by
//!   `enable_cpucache()`), the shared array per node and the alien arrays
//!   per node and other node, each `struct array_cache` (24 bytes) plus 8
//!   bytes an entry, and the objects sitting in them.
//! * SLUB (2.6.24, the page's): one `struct kmem_cache_cpu` for every CPU
//!   and cache after merging (`alloc_kmem_cache_cpus()`), each held here
//!   as a [`CpuSlab`] and counted at the kernel's 32 bytes
//!   ([`KMEM_CACHE_CPU_BYTES`]); one `struct kmem_cache_node` per node and
//!   cache (`init_kmem_cache_nodes()`, [`KMEM_CACHE_NODE_BYTES`]); and the
//!   objects on the CPUs' lockless freelists, walked.
//!
//! The `array[NR_CPUS]` (SLAB) and `cpu_slab[NR_CPUS]` (SLUB 2.6.24)
//! pointer arrays in each cache descriptor are the same size on both and
//! are counted on neither.

use std::sync::Arc;

use klab_slab::SlubConfig;
use klab_slab::workload::{slab_partner_frees, slub_partner_frees};
use klab_slab::{CollectSink, CpuSlab, FramePool, KmemCache, Slab, SlabCache, SlabConfig, Slub};
use serde::{Deserialize, Serialize};

use super::KERNEL_CACHES;

/// `struct kmem_cache_cpu` of 2.6.24 (include/linux/slub_def.h:
/// `freelist`, `page`, `node`, `offset`, `objsize`: 28 bytes, 32 with
/// its alignment).
pub const KMEM_CACHE_CPU_BYTES: usize = 32;
/// `struct kmem_cache_node` of 2.6.24 with `CONFIG_SLUB_DEBUG` (the
/// `full` list): 56 bytes, an object of the 64-byte `kmem_cache_node`
/// cache (`early_kmem_cache_node_alloc()`).
pub const KMEM_CACHE_NODE_BYTES: usize = 64;
/// Objects each CPU allocates of each hot cache.
pub const OBJS_PER_CPU: usize = 8;
/// The caches every CPU of the workload uses (among [`KERNEL_CACHES`]).
pub const HOT_CACHES: [&str; 6] = [
    "dentry",
    "filp",
    "buffer_head",
    "vm_area_struct",
    "radix_tree_node",
    "skbuff_head_cache",
];

/// The machines of the default run: (CPUs, nodes).
pub const MACHINES: [(usize, usize); 9] = [
    (1, 1),
    (64, 1),
    (64, 4),
    (64, 8),
    (1024, 1),
    (1024, 2),
    (1024, 4),
    (1024, 8),
    (4096, 8),
];
/// The machines of a quick run.
pub const MACHINES_QUICK: [(usize, usize); 3] = [(1, 1), (16, 2), (64, 4)];

/// One machine: what SLAB's queues and SLUB's per-CPU state hold (bytes).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QueueRow {
    /// CPUs.
    pub cpus: usize,
    /// Nodes.
    pub nodes: usize,
    /// SLAB caches (general caches and every `kmem_cache_create()`).
    pub slab_caches: usize,
    /// SLAB: per-CPU arrays.
    pub slab_per_cpu: u64,
    /// SLAB: shared arrays.
    pub slab_shared: u64,
    /// SLAB: alien arrays.
    pub slab_alien: u64,
    /// SLAB: objects sitting in all the arrays.
    pub slab_objects: u64,
    /// SLAB: bytes of those objects.
    pub slab_object_bytes: u64,
    /// SLUB caches after merging.
    pub slub_caches: usize,
    /// SLUB: `kmem_cache_cpu` structures instantiated.
    pub slub_cpu_states: u64,
    /// SLUB: bytes of `kmem_cache_cpu` and `kmem_cache_node` structures.
    pub slub_structs: u64,
    /// SLUB: objects on the CPUs' lockless freelists.
    pub slub_objects: u64,
    /// SLUB: bytes of those objects.
    pub slub_object_bytes: u64,
}

impl QueueRow {
    /// SLAB's queue references: per-CPU, shared and alien arrays.
    pub fn slab_refs(&self) -> u64 {
        self.slab_per_cpu + self.slab_shared + self.slab_alien
    }
}

/// Frame-pool sections (2 MiB) per node for a machine of `cpus` CPUs on
/// `nodes` nodes: room for the workload's objects, their slabs and the
/// queues' refills (untouched sections cost no host memory).
fn sections_per_node(cpus: usize, nodes: usize) -> usize {
    (cpus * HOT_CACHES.len() * 96 * 1024 / (2 << 20) / nodes).max(4) + 16
}

/// The CPU of the next node that frees what `cpu` hands over: the same
/// position in the next node's block (`cpu` itself on one node).
fn partner(cpu: usize, cpus: usize, nodes: usize) -> usize {
    let per = cpus.div_ceil(nodes);
    (cpu + per) % cpus
}

/// Measures one machine.
///
/// # Panics
/// If the pool runs out (sized by [`sections_per_node`]) or a cache is
/// refused: both would be bugs of this experiment.
pub fn measure_machine(cpus: usize, nodes: usize) -> QueueRow {
    let (slab_caches, slab_q, slab_object_bytes) = measure_slab(cpus, nodes);
    let (slub_caches, slub_cpu_states, slub_objects, slub_object_bytes) = measure_slub(cpus, nodes);
    QueueRow {
        cpus,
        nodes,
        slab_caches,
        slab_per_cpu: slab_q.per_cpu as u64,
        slab_shared: slab_q.shared as u64,
        slab_alien: slab_q.alien as u64,
        slab_objects: slab_q.objects_queued as u64,
        slab_object_bytes,
        slub_caches,
        slub_cpu_states,
        slub_structs: slub_cpu_states * KMEM_CACHE_CPU_BYTES as u64
            + (nodes * slub_caches * KMEM_CACHE_NODE_BYTES) as u64,
        slub_objects,
        slub_object_bytes,
    }
}

fn measure_slab(cpus: usize, nodes: usize) -> (usize, klab_slab::slab::QueueMemory, u64) {
    let pool = Arc::new(FramePool::new(nodes, sections_per_node(cpus, nodes)));
    let slab = Slab::new(pool, SlabConfig { nr_cpus: cpus });
    assert_eq!(slab.nr_nodes(), nodes, "SLAB machine of {nodes} nodes");
    let caches: Vec<(&str, SlabCache)> = KERNEL_CACHES
        .iter()
        .map(|&(name, size, align, flags, ctor)| {
            let ctor: Option<klab_slab::Ctor> = if ctor { Some(|_: &mut [u8]| {}) } else { None };
            let c = slab
                .kmem_cache_create(name, size, align, flags, ctor)
                .unwrap_or_else(|e| panic!("SLAB refused {name}: {e}"));
            (name, c)
        })
        .collect();
    for (name, c) in caches.iter().filter(|(n, _)| HOT_CACHES.contains(n)) {
        slab_partner_frees(c, cpus, OBJS_PER_CPU, |c| partner(c, cpus, nodes))
            .unwrap_or_else(|| panic!("SLAB pool too small for {name}"));
    }
    let q = slab.queue_memory(caches.iter().map(|(_, c)| c));
    let object_bytes = slab
        .general_caches()
        .iter()
        .chain(caches.iter().map(|(_, c)| c))
        .map(|c| (c.queue_memory().objects_queued * c.core().geometry().buffer_size) as u64)
        .sum();
    (slab.general_caches().len() + caches.len(), q, object_bytes)
}

fn measure_slub(cpus: usize, nodes: usize) -> (usize, u64, u64, u64) {
    let pool = Arc::new(FramePool::new(nodes, sections_per_node(cpus, nodes)));
    let slub = Slub::new(pool, SlubConfig::default(), Arc::new(CollectSink::new()));
    let kmalloc = slub.nr_caches();
    let handles: Vec<(&str, KmemCache)> = KERNEL_CACHES
        .iter()
        .map(|&(name, size, align, flags, ctor)| {
            let ctor: Option<klab_slab::Ctor> = if ctor { Some(|_: &mut [u8]| {}) } else { None };
            let c = slub
                .kmem_cache_create(name, size, align, flags, ctor)
                .unwrap_or_else(|e| panic!("SLUB refused {name}: {e}"));
            (name, c)
        })
        .collect();
    // The distinct caches the created ones became after merging; some
    // are kmalloc caches (filp merges into kmalloc-256).
    let mut distinct: Vec<&KmemCache> = Vec::new();
    for (_, h) in &handles {
        if !distinct.iter().any(|d| d.same_cache(h)) {
            distinct.push(h);
        }
    }
    let is_kmalloc = |c: &KmemCache| c.cache_name().starts_with("kmalloc-");
    let created = distinct.iter().filter(|c| !is_kmalloc(c)).count();
    let caches = slub.nr_caches();
    assert_eq!(
        kmalloc + created,
        caches,
        "every SLUB cache is a kmalloc cache or a distinct created one"
    );
    let per = cpus.div_ceil(nodes);
    // alloc_kmem_cache_cpus(): a kmem_cache_cpu per CPU and cache. The
    // kmalloc caches' are in `kmalloc_cpu()`; a kmalloc cache that created
    // caches merged into gets a second handle per CPU in `states`, which
    // stands for the same kmem_cache_cpu and is not counted twice.
    let kmalloc_cpus: Vec<_> = (0..cpus).map(|_| slub.kmalloc_cpu()).collect();
    let mut states: Vec<Vec<CpuSlab>> = distinct
        .iter()
        .map(|c| (0..cpus).map(|cpu| c.cpu_on(cpu / per)).collect())
        .collect();
    for (name, h) in handles.iter().filter(|(n, _)| HOT_CACHES.contains(n)) {
        let i = distinct
            .iter()
            .position(|d| d.same_cache(h))
            .expect("every handle's cache is in `distinct`");
        slub_partner_frees(&mut states[i], OBJS_PER_CPU, |c| partner(c, cpus, nodes))
            .unwrap_or_else(|| panic!("SLUB pool too small for {name}"));
    }
    let (mut objects, mut bytes) = (0u64, 0u64);
    for (d, s) in distinct.iter().zip(&states) {
        for c in s {
            let n = c.state().nr_free() as u64;
            objects += n;
            bytes += n * d.layout().size as u64;
        }
    }
    let cpu_states = (kmalloc * kmalloc_cpus.len()
        + states
            .iter()
            .zip(&distinct)
            .filter(|(_, c)| !is_kmalloc(c))
            .map(|(s, _)| s.len())
            .sum::<usize>()) as u64;
    drop(states);
    drop(kmalloc_cpus);
    (caches, cpu_states, objects, bytes)
}

/// Measures every machine of `machines`, smallest first.
pub fn measure(machines: &[(usize, usize)], progress: &dyn Fn()) -> Vec<QueueRow> {
    machines
        .iter()
        .map(|&(cpus, nodes)| {
            let r = measure_machine(cpus, nodes);
            progress();
            r
        })
        .collect()
}
