//! Experiment `slub` (seed 003, "The SLUB allocator") and benchmark `slub`.
//!
//! The experiment checks three claims of the page:
//!
//! 1. **Merging**: "fewer slab caches in the system (a 50% reduction is
//!    claimed)". klab-slab's registry (`find_mergeable()` rules of 2.6.24)
//!    creates a set of caches modelled on a 2.6.22 x86-64 kernel's
//!    `/proc/slabinfo` (names, object sizes, alignments, flags,
//!    constructors; [`KERNEL_CACHES`]) after the kmalloc caches, and counts
//!    caches before (one per `kmem_cache_create()`, as SLAB keeps them) and
//!    after merging.
//! 2. **Queues**: "On our systems with 1k nodes / processors we have
//!    several gigabytes just tied up for storing references to objects for
//!    those queues". Computed from the rules of mm/slab.c (2.6.22:
//!    `enable_cpucache()` limits by object size,
//!    `batchcount = (limit + 1) / 2`, a shared array of `8 * batchcount` per node when there is
//!    more than one CPU, `alloc_alien_cache()` arrays of 12 entries per
//!    node for every other node) and of SLUB (one `kmem_cache_cpu` per CPU
//!    and one `kmem_cache_node` per node, per cache) for machines from two
//!    to a thousand CPUs, two CPUs per node (SGI Altix). Every allocation
//!    is rounded up to its kmalloc class, as the kernel's are.
//! 3. **Speed**: SLUB against SLOB, timed on the host through the same
//!    `ObjectAllocator` interface (the page's "5-10% performance increase"
//!    is SLUB against SLAB; klab has no SLAB, so the figure it reports is
//!    SLUB against SLOB and the note says so).
//!
//! The benchmark times klab's `SlubAlloc` (3.2 slow paths behind 6.18's
//! per-CPU sheaves) and `SlubAlloc2624` (the page's) against glibc and
//! mimalloc on the shared
//! workloads, measures each one's peak RSS in a forked child, and times
//! real programs under `LD_PRELOAD` ([`crate::bench::slub_preload`]).

use std::alloc::System;
use std::sync::Arc;

use klab_slab::workload::{
    DynAlloc, Larson, SyncAlloc, larson, object_churn, peak_rss, producer_consumer, single_thread,
};
use klab_slab::{
    CollectSink, FramePool, HostPages, SlabFlags, Slob, Slub, SlubAlloc, SlubAlloc2624, SlubConfig,
    SlubEra, SlubParams,
};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// The experiment.
pub struct SlubExperiment;

/// The benchmark.
pub struct SlubBench;

const H: SlabFlags = SlabFlags::HWCACHE_ALIGN;
const R: SlabFlags = SlabFlags::RECLAIM_ACCOUNT;
const P: SlabFlags = SlabFlags::PANIC;
const D: SlabFlags = SlabFlags::DESTROY_BY_RCU;
const M: SlabFlags = SlabFlags::MEM_SPREAD;
const N: SlabFlags = SlabFlags::NONE;

/// One cache of the modelled kernel: name, object size, alignment, flags,
/// whether it has a constructor.
pub type CacheSpec = (&'static str, usize, usize, SlabFlags, bool);

/// Caches a 2.6.22 x86-64 kernel creates besides kmalloc, modelled on its
/// `/proc/slabinfo` (object sizes as on that kernel, flags and
/// constructors as the creating code passes them).
pub const KERNEL_CACHES: &[CacheSpec] = &[
    ("kmem_cache_node", 64, 0, N, false),
    ("idr_layer_cache", 528, 0, P, true),
    ("radix_tree_node", 560, 0, P, true),
    ("task_struct", 1888, 16, P, false),
    ("sighand_cache", 2184, 0, H.with(P).with(D), true),
    ("signal_cache", 768, 0, H.with(P), false),
    ("files_cache", 768, 0, H.with(P), false),
    ("fs_cache", 120, 0, H.with(P), false),
    ("mm_struct", 896, 0, H.with(P), false),
    ("vm_area_struct", 176, 0, P, false),
    ("anon_vma", 40, 0, P.with(D), true),
    ("pid", 64, 0, H.with(P), false),
    ("nsproxy", 56, 0, P, false),
    ("uid_cache", 64, 0, H.with(P), false),
    ("sigqueue", 160, 0, P, false),
    ("task_delay_info", 112, 0, P, false),
    ("taskstats", 328, 0, P, false),
    ("posix_timers_cache", 248, 0, N, false),
    ("numa_policy", 264, 0, P, false),
    ("shared_policy_node", 48, 0, P, false),
    ("key_jar", 192, 0, H.with(P), false),
    ("names_cache", 4096, 0, H.with(P), false),
    ("filp", 256, 0, H.with(P), false),
    ("dentry", 208, 0, R.with(P).with(M), false),
    ("inode_cache", 568, 0, P.with(M), true),
    ("mnt_cache", 256, 0, H.with(P), false),
    ("bdev_cache", 832, 0, H.with(R).with(M).with(P), true),
    ("sysfs_dir_cache", 80, 0, P, false),
    ("proc_inode_cache", 616, 0, R.with(M), true),
    ("shmem_inode_cache", 1000, 0, N, true),
    ("hugetlbfs_inode_cache", 576, 0, N, true),
    ("buffer_head", 104, 0, R.with(P).with(M), true),
    ("file_lock_cache", 184, 0, P, true),
    ("fasync_cache", 24, 0, N, false),
    ("dnotify_cache", 40, 0, P, false),
    ("inotify_watch_cache", 72, 0, P, false),
    ("inotify_event_cache", 40, 0, P, false),
    ("eventpoll_epi", 128, 0, H.with(P), false),
    ("eventpoll_pwq", 72, 0, P, false),
    ("kioctx", 320, 0, H.with(P), false),
    ("kiocb", 256, 0, H.with(P), false),
    ("mqueue_inode_cache", 896, 0, H.with(P), true),
    ("dquot", 256, 0, H.with(R).with(M), false),
    ("ext3_inode_cache", 760, 0, R.with(M), true),
    ("ext3_xattr", 88, 0, R.with(M), false),
    ("journal_handle", 24, 0, N, false),
    ("journal_head", 96, 0, N, false),
    ("revoke_table", 16, 0, H, false),
    ("revoke_record", 32, 0, H, false),
    ("ext2_inode_cache", 720, 0, R.with(M), true),
    ("fat_inode_cache", 680, 0, R.with(M), true),
    ("fat_cache", 32, 0, R.with(M), true),
    ("isofs_inode_cache", 640, 0, R.with(M), true),
    ("nfs_inode_cache", 1016, 0, R.with(M), true),
    ("nfs_page", 128, 0, H, false),
    ("nfs_read_data", 832, 0, H, false),
    ("nfs_write_data", 832, 0, H, false),
    ("nfs_direct_cache", 136, 0, R.with(M), false),
    ("rpc_inode_cache", 640, 0, H.with(R).with(M), true),
    ("rpc_tasks", 256, 0, H, false),
    ("rpc_buffers", 2048, 0, H, false),
    ("fuse_inode", 640, 0, R.with(M), true),
    ("fuse_request", 552, 0, N, false),
    ("configfs_dir_cache", 88, 0, N, false),
    ("selinux_inode_security", 72, 0, P, false),
    ("avc_node", 72, 0, P, false),
    ("blkdev_ioc", 64, 0, P, false),
    ("blkdev_queue", 1576, 0, P, false),
    ("blkdev_requests", 272, 0, P, false),
    ("cfq_queue", 136, 0, N, false),
    ("cfq_io_context", 168, 0, N, false),
    ("bio", 104, 0, H.with(P), false),
    ("biovec-1", 16, 0, H.with(P), false),
    ("biovec-4", 64, 0, H.with(P), false),
    ("biovec-16", 256, 0, H.with(P), false),
    ("biovec-64", 1024, 0, H.with(P), false),
    ("biovec-128", 2048, 0, H.with(P), false),
    ("biovec-256", 4096, 0, H.with(P), false),
    ("sgpool-8", 192, 0, H.with(P), false),
    ("sgpool-16", 384, 0, H.with(P), false),
    ("sgpool-32", 768, 0, H.with(P), false),
    ("sgpool-64", 1536, 0, H.with(P), false),
    ("sgpool-128", 3072, 0, H.with(P), false),
    ("scsi_cmd_cache", 384, 0, H, false),
    ("scsi_io_context", 112, 0, N, false),
    ("dm_io", 16, 0, N, false),
    ("dm_tio", 16, 0, N, false),
    ("kcopyd-jobs", 264, 0, N, false),
    ("uhci_urb_priv", 56, 0, N, false),
    ("Acpi-Namespace", 32, 0, N, false),
    ("Acpi-State", 88, 0, N, false),
    ("Acpi-Parse", 48, 0, N, false),
    ("Acpi-ParseExt", 72, 0, N, false),
    ("Acpi-Operand", 72, 0, N, false),
    ("skbuff_head_cache", 224, 0, H.with(P), false),
    ("skbuff_fclone_cache", 448, 0, H.with(P), false),
    ("sock_inode_cache", 640, 0, H.with(R).with(M), true),
    ("flow_cache", 96, 0, H.with(P), false),
    ("xfrm_dst_cache", 384, 0, H.with(P), false),
    ("secpath_cache", 64, 0, H.with(P), false),
    ("inet_peer_cache", 64, 0, H.with(P), false),
    ("ip_dst_cache", 256, 0, H.with(P), false),
    ("arp_cache", 256, 0, H.with(P), false),
    ("ip_fib_hash", 72, 0, P, false),
    ("ip_fib_alias", 32, 0, P, false),
    ("tcp_bind_bucket", 32, 0, H.with(P), false),
    ("inet_bind_bucket", 32, 0, H.with(P), false),
    ("TCP", 1616, 0, H, false),
    ("request_sock_TCP", 128, 0, H, false),
    ("tw_sock_TCP", 184, 0, H, false),
    ("UDP", 736, 0, H, false),
    ("UDP-Lite", 736, 0, H, false),
    ("RAW", 720, 0, H, false),
    ("UNIX", 704, 0, H, false),
    ("TCPv6", 1776, 0, H, false),
    ("request_sock_TCPv6", 144, 0, H, false),
    ("tw_sock_TCPv6", 216, 0, H, false),
    ("UDPv6", 880, 0, H, false),
    ("UDPLitev6", 880, 0, H, false),
    ("RAWv6", 864, 0, H, false),
    ("ip6_dst_cache", 320, 0, H.with(P), false),
    ("ndisc_cache", 256, 0, H.with(P), false),
    ("fib6_nodes", 48, 0, H.with(P), false),
    ("nf_conntrack", 280, 0, N, false),
    ("nf_conntrack_expect", 240, 0, N, false),
];

/// mm/slab.c `enable_cpucache()`: the per-CPU array limit for an object size.
pub fn slab_limit(size: usize) -> usize {
    if size > 131_072 {
        1
    } else if size > 4096 {
        8
    } else if size > 1024 {
        24
    } else if size > 256 {
        54
    } else {
        120
    }
}

/// The kmalloc class (power of two, at least 32) an allocation of `n`
/// bytes occupies.
pub fn kmalloc_round(n: usize) -> usize {
    n.next_power_of_two().max(32)
}

/// `struct array_cache` header: avail, limit, batchcount, touched, lock.
pub const ARRAY_CACHE_HEADER: usize = 24;
/// Entries of each alien array (`alloc_alien_cache()`).
pub const ALIEN_LIMIT: usize = 12;
/// Shared array factor (`shared = 8` in `enable_cpucache()`).
pub const SHARED_FACTOR: usize = 8;
/// `struct kmem_cache_cpu` (2.6.24).
pub const SLUB_CPU_BYTES: usize = 32;
/// `struct kmem_cache_node` (2.6.24, with the debug full list).
pub const SLUB_NODE_BYTES: usize = 64;
/// CPUs per node of the modelled machines.
pub const CPUS_PER_NODE: usize = 2;

/// Bytes one cache's SLAB queues take on a machine: (references storage,
/// objects the queues may hold).
pub fn slab_queue_bytes(size: usize, cpus: usize) -> (u64, u64) {
    let nodes = cpus.div_ceil(CPUS_PER_NODE).max(1);
    let limit = slab_limit(size);
    let batch = limit.div_ceil(2);
    let per_cpu = kmalloc_round(ARRAY_CACHE_HEADER + 8 * limit);
    let mut refs = (cpus * per_cpu) as u64;
    let mut entries = (cpus * limit) as u64;
    if cpus > 1 && size <= 4096 {
        let shared = SHARED_FACTOR * batch;
        refs += (nodes * kmalloc_round(ARRAY_CACHE_HEADER + 8 * shared)) as u64;
        entries += (nodes * shared) as u64;
    }
    if nodes > 1 {
        // Per node: a pointer per node, and an array per other node.
        let per_node = kmalloc_round(8 * nodes)
            + (nodes - 1) * kmalloc_round(ARRAY_CACHE_HEADER + 8 * ALIEN_LIMIT);
        refs += (nodes * per_node) as u64;
        entries += (nodes * (nodes - 1) * ALIEN_LIMIT) as u64;
    }
    (refs, entries * size as u64)
}

/// Bytes one SLUB cache's per-CPU and per-node structures take, and the
/// objects its CPU slabs may hold (one slab of `slab_bytes` per CPU).
pub fn slub_queue_bytes(cpus: usize, slab_bytes: usize) -> (u64, u64) {
    let nodes = cpus.div_ceil(CPUS_PER_NODE).max(1);
    (
        (cpus * SLUB_CPU_BYTES + nodes * kmalloc_round(SLUB_NODE_BYTES)) as u64,
        (cpus * slab_bytes) as u64,
    )
}

fn gib(b: u64) -> f64 {
    b as f64 / (1u64 << 30) as f64
}

impl SlubExperiment {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "slub",
        seed_page: "003_1b710cf080fd5ed1.txt",
        claim: "SLUB merges compatible caches (about 50% fewer caches), drops SLAB's per-CPU, shared and alien queues that tie up gigabytes on 1k-CPU machines, and is faster",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for SlubExperiment {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        // 1. Merging.
        let slub = Slub::new(
            Arc::new(FramePool::new(1, 1)),
            SlubConfig::default(),
            Arc::new(CollectSink::new()),
        );
        let kmalloc = slub.nr_caches();
        for &(name, size, align, flags, ctor) in KERNEL_CACHES {
            let ctor: Option<klab_slab::Ctor> = if ctor { Some(|_: &mut [u8]| {}) } else { None };
            slub.kmem_cache_create(name, size, align, flags, ctor)
                .map_err(|e| ExperimentError::Host(e.to_string()))?;
        }
        let before = kmalloc + KERNEL_CACHES.len();
        let after = slub.nr_caches();
        let reduction = 100.0 * (before - after) as f64 / before as f64;
        let mut t = Table::new(
            "Caches before and after merging (2.6.22-like cache set)",
            &["caches", "count"],
        );
        t.row(cells!["kmalloc caches", kmalloc]);
        t.row(cells![
            "other kmem_cache_create() calls",
            KERNEL_CACHES.len()
        ]);
        t.row(cells!["caches without merging (SLAB)", before]);
        t.row(cells!["caches with merging (SLUB)", after]);
        t.row(cells!["aliases", slub.nr_aliases()]);
        t.row(cells!["reduction (%)", reduction]);
        r.table(t);
        let mut t = Table::new(
            "Merged caches and their aliases",
            &["cache", "size", "aliases"],
        );
        for info in slub.slabinfo().iter().filter(|i| !i.aliases.is_empty()) {
            t.row(cells![info.name.clone(), info.size, info.aliases.join(" ")]);
        }
        r.table(t);

        // 2. Queue memory, SLAB rules against SLUB's.
        let all_sizes: Vec<(usize, usize)> = klab_slab::kmalloc::KERNEL_CLASSES
            .iter()
            .map(|&s| (s, s))
            .chain(KERNEL_CACHES.iter().map(|c| (c.1, c.1)))
            .collect();
        let merged: Vec<(usize, usize)> = slub
            .slabinfo()
            .iter()
            .map(|i| (i.size, (4096usize << i.order)))
            .collect();
        let mut t = Table::new(
            "Memory tied up in queues (SLAB: all caches; SLUB: merged caches)",
            &[
                "CPUs",
                "nodes",
                "SLAB queue references (GiB)",
                "SLAB objects queues may hold (GiB)",
                "SLUB per-CPU/node structs (GiB)",
                "SLUB objects in CPU slabs (GiB)",
            ],
        );
        let mut lines: [Vec<[f64; 2]>; 4] = Default::default();
        let mut slab_refs_1024 = 0;
        for cpus in [2usize, 4, 8, 16, 32, 64, 128, 256, 512, 1024] {
            let (mut a, mut b) = (0u64, 0u64);
            for &(size, _) in &all_sizes {
                let (x, y) = slab_queue_bytes(size, cpus);
                a += x;
                b += y;
            }
            let (mut c, mut d) = (0u64, 0u64);
            for &(_, slab) in &merged {
                let (x, y) = slub_queue_bytes(cpus, slab);
                c += x;
                d += y;
            }
            if cpus == 1024 {
                slab_refs_1024 = a;
            }
            t.row(cells![
                cpus,
                cpus.div_ceil(CPUS_PER_NODE),
                gib(a),
                gib(b),
                gib(c),
                gib(d)
            ]);
            for (line, v) in lines.iter_mut().zip([a, b, c, d]) {
                line.push([cpus as f64, v as f64 / (1 << 20) as f64]);
            }
        }
        r.table(t);
        let mut s = Series::new(
            "Queue memory against machine size (2 CPUs per node)",
            Axis::log("CPUs", ""),
            Axis::log("memory", "MiB"),
        );
        let names = [
            "SLAB queue references",
            "SLAB objects in queues (max)",
            "SLUB per-CPU/node structs",
            "SLUB objects in CPU slabs (max)",
        ];
        for (name, pts) in names.iter().zip(lines) {
            s.line(name, pts);
        }
        r.series(s);

        // 3. SLUB against SLOB on the host.
        let rounds = ctx.size(400, 40);
        let sizes = [32usize, 64, 128, 256, 512, 1024];
        let slub_host = Slub::new(
            Arc::new(HostPages),
            SlubConfig::default(),
            Arc::new(CollectSink::new()),
        );
        let slub_tuned = Slub::new(
            Arc::new(HostPages),
            SlubConfig {
                params: SlubParams::ALLOCATOR,
                ..SlubConfig::default()
            },
            Arc::new(CollectSink::new()),
        );
        let slub_3_2 = Slub::new(
            Arc::new(HostPages),
            SlubConfig {
                params: SlubParams::ALLOCATOR,
                era: SlubEra::V3_2,
                ..SlubConfig::default()
            },
            Arc::new(CollectSink::new()),
        );
        let slob_host = Slob::new(Arc::new(HostPages));
        ctx.progress.begin("slub: SLUB vs SLOB", 4);
        let mut best = [f64::MAX; 4];
        for _ in 0..4 {
            let runs = [
                object_churn(&slub_host, &sizes, rounds, 200),
                object_churn(&slob_host, &sizes, rounds, 200),
                object_churn(&slub_tuned, &sizes, rounds, 200),
                object_churn(&slub_3_2, &sizes, rounds, 200),
            ];
            for (b, run) in best.iter_mut().zip(runs) {
                *b = b.min(run.elapsed.as_secs_f64() / run.ops as f64);
            }
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        let speedup = best[1] / best[0];
        let speedup_tuned = best[1] / best[2];
        let mut t = Table::new(
            "kmem_cache alloc+free throughput on the host (best of 4)",
            &["allocator", "ns per op", "Mops/s"],
        );
        t.row(cells![
            "SLUB (2.6.24 orders: max_order 1, min_objects 4)",
            best[0] * 1e9,
            1e-6 / best[0]
        ]);
        t.row(cells![
            "SLUB, 2.6.24 slow paths (max_order 3, min_objects 4)",
            best[2] * 1e9,
            1e-6 / best[2]
        ]);
        t.row(cells![
            "SLUB, 3.2 slow paths (max_order 3, min_objects 4)",
            best[3] * 1e9,
            1e-6 / best[3]
        ]);
        t.row(cells!["SLOB", best[1] * 1e9, 1e-6 / best[1]]);
        t.row(cells![
            "SLUB (2.6.24 orders) / SLOB throughput",
            speedup,
            Option::<f64>::None
        ]);
        t.row(cells![
            "SLUB (max_order 3) / SLOB throughput",
            speedup_tuned,
            Option::<f64>::None
        ]);
        r.table(t);

        // 4. The model's kernel objects from SLUB.
        let model = model_slab_runs(ctx);
        let mut t = Table::new(
            "The model's page cache with its radix-tree nodes in SLUB (hot set and stream, 3.15 rule)",
            &[
                "kernel objects",
                "shadow-node limit",
                "hot-set hit ratio",
                "radix_tree_node objects (end)",
                "slab frames (end)",
                "slab frames (peak)",
                "peak share of memory (%)",
                "shadow nodes reclaimed",
                "journal entries",
            ],
        );
        let mut s = Series::new(
            "Frames holding radix-tree node slabs in the model",
            Axis::linear("accesses", ""),
            Axis::linear("slab frames", ""),
        );
        for run in &model {
            t.row(cells![
                if run.slab {
                    "SLUB caches"
                } else {
                    "cost no frames"
                },
                run.limit,
                run.hit_ratio,
                run.stats.radix_nodes,
                run.stats.frames,
                run.peak_frames,
                100.0 * run.peak_frames as f64 / run.frames as f64,
                run.nodereclaim,
                run.stats.journal
            ]);
            if run.slab {
                s.line(run.limit, run.samples.clone());
            }
        }
        r.table(t);
        r.series(s);
        let balanced = model
            .iter()
            .all(|m| m.stats.frames == m.stats.slab_pages && m.stats.charge_fail == 0);
        let unlimited_peak = model
            .iter()
            .find(|m| m.slab && m.limit == "none")
            .map_or(0, |m| m.peak_frames);
        let bounded_peak = model
            .iter()
            .find(|m| m.slab && m.limit != "none")
            .map_or(0, |m| m.peak_frames);

        r.config("cpus_per_node", CPUS_PER_NODE as u64)
            .config("alien_limit", ALIEN_LIMIT as u64)
            .config("shared_factor", SHARED_FACTOR as u64)
            .config("churn_rounds", rounds as u64)
            .config("churn_sizes", "32,64,128,256,512,1024");
        let merge_ok = reduction >= 40.0;
        let queues_ok = slab_refs_1024 >= (1u64 << 30);
        r.verdict = Verdict {
            holds: Some(merge_ok && queues_ok && speedup > 1.0 && balanced),
            measured: format!(
                "{before} caches become {after} with merging ({reduction:.1}% fewer); SLAB queue references on 1024 CPUs: {:.2} GiB against {:.4} GiB of SLUB per-CPU/node structures; SLUB {speedup:.2}x SLOB's alloc/free throughput with 2.6.24's slab orders, {speedup_tuned:.2}x with max_order 3; in the model, radix-tree node slabs peak at {bounded_peak} frames with 3.15's shadow-node limit and {unlimited_peak} without it",
                gib(slab_refs_1024),
                gib(merged.iter().map(|&(_, s)| slub_queue_bytes(1024, s).0).sum())
            ),
            note: "the cache set is modelled on a 2.6.22 slabinfo, not read from a running kernel; queue memory follows mm/slab.c's sizing rules with 2 CPUs per node; the page's 5-10% speed claim is against SLAB, which klab does not implement, so the timing compares SLUB with SLOB on this host; the model's radix-tree nodes are objects of a real klab-slab SLUB cache (2.6.24 rules) whose slab pages take model frames, and the verdict also requires that charge to balance".into(),
        };
        r.host = Host::measured(vec![
            "SLUB vs SLOB throughput is wall-clock timing on a shared, loaded 2-core machine"
                .into(),
        ]);
        Ok(r)
    }
}

impl SlubBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "slub",
        seed_page: "003_1b710cf080fd5ed1.txt",
        claim: "klab's SLUB as a general-purpose allocator: throughput and peak RSS against glibc and mimalloc",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for SlubBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        if let Some(dir) = &ctx.inputs.suite {
            return crate::bench::slub_suite::run(ctx, dir, self.blank_report(ctx));
        }
        let mut r = self.blank_report(ctx);
        let q = ctx.quick;
        let reps = if q { 1 } else { 3 };
        let mut rows: Vec<(&str, [f64; 4])> = Vec::new();
        ctx.progress.begin("slub bench", 4);
        let peers: [&dyn SyncAlloc; 4] = [&SlubAlloc, &SlubAlloc2624, &System, &mimalloc::MiMalloc];
        let mut measure = |name: &'static str, run: &dyn Fn(DynAlloc<'_>) -> f64| {
            let mut best = [0.0f64; 4];
            // One untimed run each first: page faults of fresh memory and
            // cold caches are not what the table compares.
            for a in peers {
                run(DynAlloc(a));
            }
            for _ in 0..reps {
                for (b, a) in best.iter_mut().zip(peers) {
                    *b = b.max(run(DynAlloc(a)));
                }
            }
            rows.push((name, best));
            ctx.progress.advance(1);
        };
        let n = if q { 200 } else { 3000 };
        measure("single thread, 16-128 B, batches of 100", &|a| {
            single_thread(&a, n, 100, 16, 128, ctx.seed).ops_per_sec()
        });
        let n = if q { 20_000 } else { 400_000 };
        measure("producer/consumer, 64 B", &|a| {
            producer_consumer(&a, n, 64).ops_per_sec()
        });
        measure("larson, 2 threads, 10-500 B", &|a| {
            larson(&a, Larson::small(2, q)).ops_per_sec()
        });
        let mut t = Table::new(
            "Throughput (Mops/s: allocations + frees per second, best of runs)",
            &[
                "workload",
                "klab 3.2+sheaves",
                "klab 2.6.24",
                "glibc",
                "mimalloc",
                "3.2+sheaves / glibc",
                "3.2+sheaves / mimalloc",
                "2.6.24 / glibc",
                "2.6.24 / mimalloc",
            ],
        );
        for (name, v) in &rows {
            t.row(cells![
                *name,
                v[0] / 1e6,
                v[1] / 1e6,
                v[2] / 1e6,
                v[3] / 1e6,
                v[0] / v[2],
                v[0] / v[3],
                v[1] / v[2],
                v[1] / v[3]
            ]);
        }
        r.table(t);
        let p = Larson {
            slots: if q { 5_000 } else { 50_000 },
            rounds: if q { 2 } else { 4 },
            ..Larson::small(2, true)
        };
        let rss = [
            peak_rss(|| {
                larson(&SlubAlloc, p);
            }),
            peak_rss(|| {
                larson(&SlubAlloc2624, p);
            }),
            peak_rss(|| {
                larson(&System, p);
            }),
            peak_rss(|| {
                larson(&mimalloc::MiMalloc, p);
            }),
        ];
        ctx.progress.advance(1);
        ctx.progress.end();
        let mut t = Table::new(
            "Peak RSS growth of a larson run in a forked child (KiB)",
            &[
                "klab 3.2+sheaves",
                "klab 2.6.24",
                "glibc",
                "mimalloc",
                "3.2+sheaves / glibc",
                "2.6.24 / glibc",
            ],
        );
        let ratio_of = |a: Option<u64>| match (a, rss[2]) {
            (Some(a), Some(b)) if b > 0 => Some(a as f64 / b as f64),
            _ => None,
        };
        let ratio = ratio_of(rss[0]);
        t.row(cells![
            rss[0],
            rss[1],
            rss[2],
            rss[3],
            ratio,
            ratio_of(rss[1])
        ]);
        r.table(t);
        let mut notes = vec!["timed on a shared, loaded 2-core machine".to_owned()];
        let c_larson = crate::bench::slub_preload::preload_tables(ctx, &mut r, &mut notes);
        let larson_row = rows[2].1;
        let vs_glibc = larson_row[0] / larson_row[2];
        let vs_mi = larson_row[0] / larson_row[3];
        let old_vs_glibc = larson_row[1] / larson_row[2];
        r.config("larson_threads", 2u64).config("reps", reps as u64);
        r.verdict = Verdict {
            holds: Some(vs_glibc >= 1.5 && vs_mi >= 1.0 / 1.2 && ratio.is_some_and(|x| x <= 1.1)),
            measured: format!(
                "larson churn: klab 3.2+sheaves {vs_glibc:.2}x glibc, {vs_mi:.2}x mimalloc (2.6.24 caches: {old_vs_glibc:.2}x glibc); peak RSS {} of glibc's{}",
                ratio.map_or("unknown".into(), |x| format!("{x:.2}x")),
                c_larson.map_or(String::new(), |x| format!(
                    "; C larson under LD_PRELOAD takes {x:.2}x glibc's time"
                ))
            ),
            note: "targets: >= 1.5x glibc and within 1.2x of mimalloc on multi-threaded churn, peak RSS <= 1.1x glibc".into(),
        };
        r.host = Host::measured(notes);
        Ok(r)
    }
}

/// One model run of part 4.
struct ModelRun {
    slab: bool,
    limit: &'static str,
    frames: u64,
    hit_ratio: f64,
    stats: klab_model::mm::slab::SlabStats,
    peak_frames: u64,
    nodereclaim: u64,
    samples: Vec<[f64; 2]>,
}

/// Part 4: the model's page cache on the hot-set-and-stream workload of
/// `workingset` (3.15 rule), with kernel objects free, and with its
/// radix-tree nodes allocated from SLUB under 3.15's shadow-node limit and
/// without one. The stream leaves a shadow entry per evicted page, which
/// keeps a node per 64 of them alive until the shrinker frees it.
fn model_slab_runs(ctx: &Ctx<'_>) -> Vec<ModelRun> {
    use klab_model::ShadowLimit;
    let frames: u64 = ctx.size(16_384, 4096);
    let rounds: u64 = ctx.size(24, 8);
    let wl = crate::mm::workload::hot_and_stream(frames, rounds, &mut ctx.rng(4));
    let configs = [
        (false, ShadowLimit::Kernel315, "3.15 (pages >> 4)"),
        (true, ShadowLimit::Kernel315, "3.15 (pages >> 4)"),
        (true, ShadowLimit::Unlimited, "none"),
    ];
    let every = (wl.accesses.len() / 200).max(1);
    ctx.progress.begin("slub: model runs", configs.len() as u64);
    let mut out = Vec::new();
    for (slab, limit, name) in configs {
        let mut cfg =
            klab_model::MachineConfig::new(frames, klab_mm_policy::LruBalance::Workingset315);
        cfg.slab = slab;
        cfg.shadow_limit = limit;
        let mut m = klab_model::Machine::new(cfg).expect("valid machine");
        let (mut reads, mut hits, mut peak) = (0u64, 0u64, 0u64);
        let mut samples = Vec::new();
        for (i, &(a, hot)) in wl.accesses.iter().enumerate() {
            let o = m.access(a);
            if hot {
                reads += 1;
                hits += u64::from(o.is_hit());
            }
            let f = m
                .kernel_slab()
                .map_or(0, klab_model::mm::slab::KernelSlab::nr_frames);
            peak = peak.max(f);
            if i % every == 0 {
                samples.push([i as f64, f as f64]);
            }
        }
        out.push(ModelRun {
            slab,
            limit: name,
            frames,
            hit_ratio: hits as f64 / reads.max(1) as f64,
            stats: m.kernel_slab().map(|k| k.stats()).unwrap_or_default(),
            peak_frames: peak,
            nodereclaim: m.stat().workingset_nodereclaim,
            samples,
        });
        ctx.progress.advance(1);
    }
    ctx.progress.end();
    out
}
