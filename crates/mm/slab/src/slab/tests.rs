//! SLAB's rules pinned with the numbers mm/slab.c (2.6.23) gives on
//! x86-64 with 4 KiB pages.

use std::ptr::NonNull;
use std::sync::Arc;

use super::geometry::{SlabGeometry, Tunables, cache_estimate, calculate_slab_order};
use super::*;
use crate::page::PAGE_SIZE;
use crate::{FramePool, HeapPages};

fn geo(size: usize, align: usize, hw: bool) -> SlabGeometry {
    SlabGeometry::new(size, align, hw, false).unwrap()
}

/// (num, gfporder, off_slab, slab_size, left_over, colour, align).
fn shape(g: &SlabGeometry) -> (usize, u32, bool, usize, usize, usize, usize) {
    (
        g.num,
        g.gfporder,
        g.off_slab,
        g.slab_size,
        g.left_over,
        g.colour,
        g.align,
    )
}

#[test]
fn general_caches_have_the_kernels_objects_per_slab() {
    // size-32: SLAB_HWCACHE_ALIGN halves 64 to 32; (4096 - 48) / 36 = 112
    // objects and a 512-byte descriptor fill the page exactly.
    assert_eq!(shape(&geo(32, 0, true)), (112, 0, false, 512, 0, 0, 32));
    // size-64: 59 objects, descriptor 48 + 59 * 4 = 284 aligned to 320.
    assert_eq!(shape(&geo(64, 0, true)), (59, 0, false, 320, 0, 0, 64));
    // size-128: 30 objects, 64 bytes left: one colour.
    assert_eq!(shape(&geo(128, 0, true)), (30, 0, false, 192, 64, 1, 64));
    // size-192 and size-256: 128 bytes left, two colours.
    assert_eq!(shape(&geo(192, 0, true)), (20, 0, false, 128, 128, 2, 64));
    assert_eq!(shape(&geo(256, 0, true)), (15, 0, false, 128, 128, 2, 64));
    // size-512 and up: off-slab (size >= PAGE_SIZE >> 3), nothing left.
    assert_eq!(shape(&geo(512, 0, true)), (8, 0, true, 80, 0, 0, 64));
    assert_eq!(shape(&geo(1024, 0, true)), (4, 0, true, 64, 0, 0, 64));
    assert_eq!(shape(&geo(4096, 0, true)), (1, 0, true, 52, 0, 0, 64));
    // size-8192: order 0 holds none; order 1 is slab_break_gfp_order.
    assert_eq!(shape(&geo(8192, 0, true)), (1, 1, true, 52, 0, 0, 64));
}

#[test]
fn odd_sizes_round_to_words_and_move_their_descriptor_on_slab_when_it_fits() {
    // 100 -> 104 bytes at 8: 37 objects, 48 bytes left (no colour).
    assert_eq!(shape(&geo(100, 0, false)), (37, 0, false, 200, 48, 0, 8));
    // 600 bytes: off-slab by size, 6 objects leave 496 bytes, the
    // 72-byte descriptor moves on-slab and 424 bytes make 6 colours.
    assert_eq!(shape(&geo(600, 0, false)), (6, 0, false, 72, 424, 6, 8));
    // 2000 bytes: 2 objects leave 96; the descriptor (56) moves on-slab.
    assert_eq!(shape(&geo(2000, 0, false)), (2, 0, false, 56, 40, 0, 8));
    // 3000 bytes: an order-0 slab wastes 1096 > 4096 / 8, so order 1
    // (the break order): 2 objects, 2192 left, 2136 after the descriptor.
    assert_eq!(shape(&geo(3000, 0, false)), (2, 1, false, 56, 2136, 33, 8));
    // SLAB_RECLAIM_ACCOUNT stops at the first order that fits.
    let r = SlabGeometry::new(3000, 0, false, true).unwrap();
    assert_eq!(shape(&r), (1, 0, false, 56, 1040, 16, 8));
    // A caller's alignment above the cache line sets the colour step.
    let a = geo(200, 128, false);
    assert_eq!((a.buffer_size, a.colour_off), (256, 128));
}

#[test]
fn cache_estimate_counts_on_and_off_slab_management() {
    // On-slab, 64-byte objects at 64: 59 per page.
    assert_eq!(cache_estimate(0, 64, 64, false), (59, 0));
    // Off-slab the whole page holds objects: 64.
    assert_eq!(cache_estimate(0, 64, 64, true), (64, 0));
    // Order 1, 1000-byte objects on-slab: (8192 - 48) / 1004 = 8, 8000
    // bytes of objects and an 80-byte descriptor leave 112.
    assert_eq!(cache_estimate(1, 1000, 8, false), (8, 112));
    // calculate_slab_order: an off-slab cache of 80-byte objects stops
    // before num exceeds (80 - 48) / 4 = 8 objects: none fits at all.
    assert_eq!(calculate_slab_order(80, 8, true, false).0, 0);
}

#[test]
fn enable_cpucache_limits_and_batchcounts_by_size() {
    let t = |s, smp| {
        let t: Tunables = Tunables::for_size(s, smp);
        (t.limit, t.batchcount, t.shared)
    };
    assert_eq!(t(32, true), (120, 60, 8));
    assert_eq!(t(256, true), (120, 60, 8));
    assert_eq!(t(257, true), (54, 27, 8));
    assert_eq!(t(1024, true), (54, 27, 8));
    assert_eq!(t(1025, true), (24, 12, 8));
    assert_eq!(t(4096, true), (24, 12, 8));
    assert_eq!(t(4097, true), (8, 4, 0));
    assert_eq!(t(131_072, true), (8, 4, 0));
    assert_eq!(t(131_073, true), (1, 1, 0));
    // No shared array on a uniprocessor.
    assert_eq!(t(32, false), (120, 60, 0));
    let t = Tunables::for_size(64, true);
    assert_eq!(t.shared_entries(), 480);
    assert_eq!(t.alien_entries(), 12);
    assert_eq!(Tunables::for_size(200_000, true).alien_entries(), 1);
    // free_limit = (1 + CPUs on the node) * batchcount + num.
    assert_eq!(t.free_limit(2, 59), 239);
}

fn machine(nodes: usize, cpus: usize) -> Slab {
    let src: Arc<dyn crate::PageSource> = if nodes == 1 {
        Arc::new(HeapPages)
    } else {
        Arc::new(FramePool::new(nodes, 2))
    };
    Slab::new(src, SlabConfig { nr_cpus: cpus })
}

fn cache64(s: &Slab) -> SlabCache {
    s.kmem_cache_create("test-64", 64, 0, crate::SlabFlags::NONE, None)
        .unwrap()
}

#[test]
fn a_descriptor_is_the_size_of_struct_slab_and_an_array_header_of_array_cache() {
    assert_eq!(size_of::<ArrayCache>(), 24);
    let s = machine(1, 2);
    let c = cache64(&s);
    let g = c.core().geometry();
    // 64 bytes at word alignment: 59 objects, 288-byte descriptor.
    assert_eq!((g.num, g.slab_size, g.left_over), (59, 288, 32));
    assert_eq!(c.cpu_array(0), (0, 120, 60, false));
}

#[test]
fn refill_moves_sixteen_when_untouched_then_exactly_batchcount() {
    let s = machine(1, 2);
    let c = cache64(&s);
    for _ in 0..3 {
        assert!(c.core().cache_grow(0));
    }
    let n = c.core().node_counts(0);
    assert_eq!((n.free, n.free_objects), (3, 177));
    // First allocation: the array was never touched, so the refill takes
    // BATCHREFILL_LIMIT (16), one is returned.
    let mut objs = vec![c.alloc_on(0).unwrap()];
    assert_eq!(c.cpu_array(0), (15, 120, 60, true));
    let n = c.core().node_counts(0);
    assert_eq!((n.free, n.partial, n.free_objects), (2, 1, 177 - 16));
    for _ in 0..15 {
        objs.push(c.alloc_on(0).unwrap());
    }
    assert_eq!(c.cpu_array(0).0, 0);
    // Touched: the next refill moves batchcount = 60: 43 finish the
    // partial slab (to the full list), 17 come from a free slab.
    objs.push(c.alloc_on(0).unwrap());
    assert_eq!(c.cpu_array(0), (59, 120, 60, true));
    let n = c.core().node_counts(0);
    assert_eq!(
        (n.full, n.partial, n.free, n.free_objects),
        (1, 1, 1, 177 - 16 - 60)
    );
    assert_eq!(
        c.core()
            .stats
            .refills
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    c.core().assert_invariants();
    let mut seen = std::collections::HashSet::new();
    for o in &objs {
        assert!(seen.insert(o.as_ptr()), "an object handed out twice");
        // SAFETY: from this cache, freed once.
        unsafe { c.free_on(0, *o) };
    }
}

#[test]
fn a_full_array_flushes_batchcount_to_the_shared_array_then_to_slabs() {
    // Two CPUs: a shared array of 8 * 60 = 480 entries.
    let s = machine(1, 2);
    let c = cache64(&s);
    let objs: Vec<NonNull<u8>> = (0..1200).map(|_| c.alloc_on(1).unwrap()).collect();
    for o in &objs[..120] {
        // SAFETY: from this cache, freed once.
        unsafe { c.free_on(0, *o) };
    }
    assert_eq!(c.cpu_array(0).0, 120);
    let bottom = c.cpu_objects(0)[60];
    // The 121st free flushes the 60 oldest to the shared array.
    // SAFETY: as above.
    unsafe { c.free_on(0, objs[120]) };
    assert_eq!(c.cpu_array(0).0, 61);
    assert_eq!(c.cpu_objects(0)[0], bottom, "the rest slid down");
    assert_eq!(c.core().node_counts(0).shared_avail, 60);
    // Seven more flushes fill the shared array (480).
    for o in &objs[121..121 + 7 * 60] {
        // SAFETY: as above.
        unsafe { c.free_on(0, *o) };
    }
    assert_eq!(c.core().node_counts(0).shared_avail, 480);
    assert_eq!(c.cpu_array(0).0, 61);
    // The next flush finds no room: 60 go back to their slabs.
    let before = c.core().node_counts(0).free_objects;
    for o in &objs[541..601] {
        // SAFETY: as above.
        unsafe { c.free_on(0, *o) };
    }
    assert_eq!(c.cpu_array(0).0, 61);
    assert_eq!(c.core().node_counts(0).free_objects, before + 60);
    c.core().assert_invariants();
    for o in &objs[601..] {
        // SAFETY: as above.
        unsafe { c.free_on(1, *o) };
    }
    c.core().assert_invariants();
}

#[test]
fn a_refill_takes_from_the_shared_array_first() {
    let s = machine(1, 2);
    let c = cache64(&s);
    let objs: Vec<NonNull<u8>> = (0..121).map(|_| c.alloc_on(1).unwrap()).collect();
    // CPU 1's array is empty after exactly 16 + 60 + ... allocations?
    // Empty it through CPU 0 frees: 121 frees flush 60 to shared.
    for o in &objs {
        // SAFETY: from this cache, freed once.
        unsafe { c.free_on(0, *o) };
    }
    assert_eq!(c.core().node_counts(0).shared_avail, 60);
    // A fresh CPU (2 CPUs: use a new cache view on CPU 1 after draining).
    while c.cpu_array(1).0 > 0 {
        let o = c.alloc_on(1).unwrap();
        // SAFETY: as above (CPU 0 has room: 61 + a few < 120).
        unsafe { c.free_on(0, o) };
    }
    let ac0 = c.cpu_array(0).0;
    assert!(ac0 < 120);
    // CPU 1 is empty and touched: its refill moves min(60, 60) from
    // the shared array and nothing from the slabs.
    let free_before = c.core().node_counts(0).free_objects;
    let o = c.alloc_on(1).unwrap();
    assert_eq!(c.core().node_counts(0).shared_avail, 0);
    assert_eq!(c.cpu_array(1).0, 59);
    assert_eq!(c.core().node_counts(0).free_objects, free_before);
    // SAFETY: as above.
    unsafe { c.free_on(1, o) };
    c.core().assert_invariants();
}

#[test]
fn a_uniprocessor_flush_frees_the_oldest_batch_to_the_slabs() {
    let s = machine(1, 1);
    let c = cache64(&s);
    assert_eq!(c.core().tunables().shared, 0);
    let objs: Vec<NonNull<u8>> = (0..177).map(|_| c.alloc_on(0).unwrap()).collect();
    // 177 allocations: refills of 16, 60, 60, 60 made 3 slabs (177 = 3 * 59).
    assert_eq!(c.core().nr_slabs(), 3);
    let cpu_left = c.cpu_array(0).0 as usize;
    for o in &objs[..120 - cpu_left] {
        // SAFETY: from this cache, freed once.
        unsafe { c.free_on(0, *o) };
    }
    assert_eq!(c.cpu_array(0).0, 120);
    let before = c.core().node_counts(0).free_objects;
    // SAFETY: as above.
    unsafe { c.free_on(0, objs[120 - cpu_left]) };
    assert_eq!(c.cpu_array(0).0, 61);
    assert_eq!(c.core().node_counts(0).free_objects, before + 60);
    assert_eq!(
        c.core()
            .stats
            .flushes
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    c.core().assert_invariants();
}

#[test]
fn free_block_gives_empty_slabs_back_beyond_free_limit() {
    // One CPU: free_limit = (1 + 1) * 60 + 59 = 179 free objects.
    let s = machine(1, 1);
    let c = cache64(&s);
    let core = c.core();
    assert_eq!(core.node_counts(0).free_limit, 179);
    // Five full slabs, straight from the lists.
    let objs: Vec<*mut u8> = (0..59 * 5).map(|_| core.alloc_node_one(0)).collect();
    let n = core.node_counts(0);
    assert_eq!((n.full, n.free_objects), (5, 0));
    // Freed slab by slab: the first three empty slabs stay (59, 118, 177
    // free objects); the fourth and fifth find 236 > 179 when they empty
    // and go back to the page allocator.
    for o in &objs {
        // SAFETY: objects of this cache, freed once.
        unsafe { core.free_node_one(*o, 0) };
    }
    let n = core.node_counts(0);
    assert_eq!((n.full, n.partial, n.free, n.free_objects), (0, 0, 3, 177));
    assert_eq!(
        core.stats
            .destroyed
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    core.assert_invariants();
}

#[test]
fn cache_reap_untouches_first_then_drains_a_fifth_of_the_limit() {
    let s = machine(1, 2);
    let c = cache64(&s);
    let objs: Vec<NonNull<u8>> = (0..100).map(|_| c.alloc_on(0).unwrap()).collect();
    for o in &objs {
        // SAFETY: from this cache, freed once.
        unsafe { c.free_on(0, *o) };
    }
    let avail = c.cpu_array(0).0;
    // Refills of 16, then 43 (the rest of the first slab: a refill that
    // found objects does not grow), then 59 (a new slab) handed out 118
    // objects; 100 allocations left 18, and 100 frees make 118.
    assert_eq!(avail, 118);
    // The array was used: the first reap only clears `touched`.
    let r = c.reap_on(0, 0, 0);
    assert_eq!(r.cpu_drained, 0);
    assert!(!c.cpu_array(0).3);
    // Untouched: (120 + 4) / 5 = 24 go back.
    let r = c.reap_on(0, 0, 1);
    assert_eq!(r.cpu_drained, 24);
    assert_eq!(c.cpu_array(0).0, avail - 24);
    // Fewer than 24 left: half of them, rounded up.
    while c.cpu_array(0).0 > 15 {
        c.reap_on(0, 0, 2);
    }
    let left = c.cpu_array(0).0;
    let r = c.reap_on(0, 0, 3);
    assert_eq!(r.cpu_drained, left.div_ceil(2));
    c.core().assert_invariants();
}

#[test]
fn cache_reap_drains_the_shared_array_and_free_slabs_every_four_seconds() {
    // Eight CPUs on one node: free_limit = 9 * 60 + 59 = 599, so a reap
    // gives back ceil(599 / (5 * 59)) = 3 free slabs.
    let s = machine(1, 8);
    let c = cache64(&s);
    assert_eq!(c.core().node_counts(0).free_limit, 599);
    for _ in 0..5 {
        assert!(c.core().cache_grow(0));
    }
    // Before next_reap (4000 ms) only the CPU array is looked at.
    assert_eq!(c.reap_on(0, 0, 3999).slabs_freed, 0);
    let r = c.reap_on(0, 0, 4000);
    assert_eq!(r.slabs_freed, 3);
    assert_eq!(c.core().node_counts(0).free, 2);
    // The next node reap is 4 s later.
    assert_eq!(c.reap_on(0, 0, 7999).slabs_freed, 0);
    // A refill that looks at the free list marks it touched: that reap
    // frees nothing and clears the mark.
    let o = c.alloc_on(0).unwrap();
    assert_eq!(c.reap_on(0, 0, 8000).slabs_freed, 0);
    // Shared array: fill it with a flush, then a reap drains 480 / 5 = 96.
    let objs: Vec<NonNull<u8>> = (0..200).map(|_| c.alloc_on(1).unwrap()).collect();
    for x in &objs[..121] {
        // SAFETY: from this cache, freed once.
        unsafe { c.free_on(2, *x) };
    }
    assert_eq!(c.core().node_counts(0).shared_avail, 60);
    // 60 < 96: half of them, rounded up (30).
    let r = c.reap_on(3, 0, 12_000);
    assert_eq!(r.shared_drained, 30);
    assert_eq!(c.core().node_counts(0).shared_avail, 30);
    // SAFETY: as above.
    unsafe {
        c.free_on(0, o);
        for x in &objs[121..] {
            c.free_on(2, *x);
        }
    }
    c.core().assert_invariants();
}

#[test]
fn slabs_cycle_through_their_colours() {
    // 192 bytes on cache lines: two colours of 64 bytes.
    let s = machine(1, 1);
    let c = s
        .kmem_cache_create("test-192", 192, 0, crate::SlabFlags::HWCACHE_ALIGN, None)
        .unwrap();
    let g = *c.core().geometry();
    assert_eq!((g.colour, g.colour_off, g.slab_size), (2, 64, 128));
    let mut offsets = Vec::new();
    for k in 0..3 {
        assert!(c.core().cache_grow(0));
        assert_eq!(c.core().node_counts(0).colour_next, (k + 1) % 2);
    }
    // Each slab's first object: colour * 64 + the 128-byte descriptor.
    for _ in 0..3 {
        let mut objs = Vec::new();
        for _ in 0..20 {
            objs.push(c.core().alloc_node_one(0));
        }
        offsets.push(objs.iter().map(|o| o.addr() % PAGE_SIZE).min().unwrap());
    }
    assert_eq!(offsets, vec![128, 192, 128]);
}

#[test]
fn off_slab_descriptors_come_from_a_general_cache() {
    let s = machine(1, 1);
    let c = s
        .kmem_cache_create("test-1024", 1024, 0, crate::SlabFlags::NONE, None)
        .unwrap();
    let g = *c.core().geometry();
    assert!(g.off_slab);
    // 4 objects: a 48 + 16 = 64-byte descriptor, from size-64.
    assert_eq!(g.slab_size, 64);
    let size64 = &s.general_caches()[1];
    assert_eq!(size64.core().name(), "size-64");
    let before = size64.core().node_counts(0);
    let o = c.alloc_on(0).unwrap();
    let after = size64.core().node_counts(0);
    assert_eq!(after.free_objects + 1, before.free_objects.max(59));
    // Objects start at the page (no on-slab descriptor, colour 0).
    assert_eq!(o.as_ptr().addr() % PAGE_SIZE % 1024, 0);
    // SAFETY: from this cache, freed once.
    unsafe { c.free_on(0, o) };
    c.core().assert_invariants();
}

#[test]
fn frees_of_another_nodes_objects_go_to_alien_arrays() {
    // Two nodes, one CPU each.
    let s = machine(2, 2);
    assert_eq!((s.cpu_node(0), s.cpu_node(1)), (0, 1));
    let c = cache64(&s);
    let objs: Vec<NonNull<u8>> = (0..13).map(|_| c.alloc_on(0).unwrap()).collect();
    // SAFETY (all frees below): objects of this cache, freed once.
    for o in &objs[..12] {
        assert_eq!(unsafe { SlabCore::obj_node(o.as_ptr()) }, 0);
        unsafe { c.free_on(1, *o) };
    }
    // CPU 1 (node 1) keeps node 0's objects in its node's alien array
    // for node 0 (12 entries), not in its own array.
    assert_eq!(c.cpu_array(1).0, 0);
    assert_eq!(c.core().node_counts(1).alien_avail, 12);
    assert_eq!(
        c.core()
            .stats
            .node_frees
            .load(std::sync::atomic::Ordering::Relaxed),
        12
    );
    // The 13th finds it full: the 12 go home to node 0's shared array.
    unsafe { c.free_on(1, objs[12]) };
    assert_eq!(c.core().node_counts(1).alien_avail, 1);
    assert_eq!(c.core().node_counts(0).shared_avail, 12);
    // cache_reap on CPU 1 with reap_node 0 drains the alien array.
    let r = c.reap_on(1, 0, 0);
    assert_eq!(r.alien_drained, 1);
    assert_eq!(c.core().node_counts(1).alien_avail, 0);
    assert_eq!(c.core().node_counts(0).shared_avail, 13);
    c.core().assert_invariants();
}

#[test]
fn queue_memory_counts_every_array_allocated() {
    // Four CPUs over two nodes: 4 CPU arrays of 120, 2 shared arrays of
    // 480, 2 alien arrays of 12 (each node's for the other), each with
    // a 24-byte header.
    let s = machine(2, 4);
    let c = cache64(&s);
    let q = c.queue_memory();
    assert_eq!(q.per_cpu, 4 * (24 + 120 * 8));
    assert_eq!(q.shared, 2 * (24 + 480 * 8));
    assert_eq!(q.alien, 2 * (24 + 12 * 8));
    assert_eq!(q.objects_queued, 0);
    let o = c.alloc_on(0).unwrap();
    assert_eq!(c.queue_memory().objects_queued, 15);
    // SAFETY: from this cache, freed once.
    unsafe { c.free_on(0, o) };
    // A uniprocessor has no shared array and no aliens.
    let up = machine(1, 1);
    let q = cache64(&up).queue_memory();
    assert_eq!((q.per_cpu, q.shared, q.alien), (24 + 120 * 8, 0, 0));
}

#[test]
fn kmalloc_picks_the_general_cache_and_kfree_finds_it() {
    let s = machine(1, 2);
    let p = s.kmalloc(0, 100).unwrap();
    // SAFETY: a live object of size-128 (128 bytes).
    unsafe {
        p.as_ptr().write_bytes(0xaa, 128);
        s.kfree(1, p);
    }
    assert!(s.kmalloc(0, 200_000).is_none());
    let general = s.general_caches();
    assert_eq!(general.len(), GENERAL_SIZES.len());
    assert_eq!(general[2].cpu_array(0).0, 15);
    assert_eq!(general[2].cpu_array(1).0, 1);
}

#[test]
fn constructors_run_once_per_object_when_a_slab_is_made() {
    fn ctor(b: &mut [u8]) {
        b.fill(0x5c);
    }
    let s = machine(1, 1);
    let c = s
        .kmem_cache_create("ctor-40", 40, 0, crate::SlabFlags::NONE, Some(ctor))
        .unwrap();
    let o = c.alloc_on(0).unwrap();
    // SAFETY: a live 40-byte object.
    assert!(
        unsafe { std::slice::from_raw_parts(o.as_ptr(), 40) }
            .iter()
            .all(|b| *b == 0x5c)
    );
    // SAFETY: from this cache, freed once.
    unsafe { c.free_on(0, o) };
}

#[test]
fn the_global_allocator_refills_a_threads_array_and_empties_it_at_exit() {
    // Run on a thread of its own: its arrays are fresh.
    std::thread::spawn(|| {
        // kmalloc-64 (class 4): 120 entries, batchcount 60, 59 objects
        // per slab (16-byte aligned, on-slab descriptor).
        let i = 4;
        assert_eq!(SlabAlloc::class(i).name(), "kmalloc-64");
        assert_eq!(SlabAlloc::class(i).geometry().num, 59);
        assert_eq!(SlabAlloc::thread_array(i), None);
        let p = SlabAlloc::kmalloc(50);
        assert!(!p.is_null());
        assert_eq!(p.addr() % 16, 0);
        // An untouched array refills BATCHREFILL_LIMIT (16) objects.
        assert_eq!(SlabAlloc::thread_array(i), Some((15, 120, 60, true)));
        // SAFETY: live, ours.
        assert_eq!(unsafe { SlabAlloc::usable_size(p) }, 64);
        let mut v = vec![p];
        for _ in 0..15 {
            v.push(SlabAlloc::kmalloc(64));
        }
        assert_eq!(SlabAlloc::thread_array(i), Some((0, 120, 60, true)));
        v.push(SlabAlloc::kmalloc(64));
        // Touched: up to batchcount (60); the slab had 43 left, and a
        // refill that found objects does not grow the cache.
        assert_eq!(SlabAlloc::thread_array(i), Some((42, 120, 60, true)));
        for p in v.drain(..) {
            // SAFETY: live, freed once.
            unsafe { SlabAlloc::deallocate(p) };
        }
        assert_eq!(SlabAlloc::thread_array(i).unwrap().0, 42 + 17);
        SlabAlloc::class(i).assert_invariants();
        assert!(SlabAlloc::threads_with_arrays() >= 1);
        // Large and over-aligned blocks take pages.
        let big = SlabAlloc::kmalloc(100_000);
        let al = SlabAlloc::allocate(100, 256);
        assert_eq!(al.addr() % 256, 0);
        // SAFETY: live, freed once.
        unsafe {
            assert!(SlabAlloc::usable_size(big) >= 100_000);
            SlabAlloc::deallocate(big);
            SlabAlloc::deallocate(al);
        }
        let before = SlabAlloc::class(i).node_counts(0).free_objects
            + SlabAlloc::class(i).node_counts(0).shared_avail;
        SlabAlloc::flush_thread();
        assert_eq!(SlabAlloc::thread_array(i), None);
        let after = SlabAlloc::class(i).node_counts(0).free_objects
            + SlabAlloc::class(i).node_counts(0).shared_avail;
        assert_eq!(after, before + 59, "the thread's 59 objects went back");
    })
    .join()
    .unwrap();
}

#[test]
fn global_threads_free_each_others_blocks() {
    struct Blocks(Vec<*mut u8>);
    // SAFETY: the blocks are handed from one thread to the next whole.
    unsafe impl Send for Blocks {}
    let blocks = std::thread::spawn(|| {
        Blocks(
            (0..500)
                .map(|k| {
                    let p = SlabAlloc::kmalloc(1100 + k % 400);
                    // SAFETY: a live block of at least 24 bytes.
                    unsafe { p.write_bytes(0x11, 24) };
                    p
                })
                .collect(),
        )
    })
    .join()
    .unwrap();
    std::thread::spawn(move || {
        let b = blocks;
        for p in b.0 {
            // SAFETY: live blocks of the other thread, each freed once.
            unsafe { SlabAlloc::deallocate(p) };
        }
    })
    .join()
    .unwrap();
    assert!(SlabAlloc::slabs_grown() > 0);
}

#[test]
fn object_cache_cpus_own_their_arrays_and_empty_them_when_dropped() {
    use crate::ObjectCache;
    // Two nodes, two CPUs: the first ObjectCache CPU is on node 0, the
    // second on node 1.
    let s = machine(2, 2);
    let c = cache64(&s);
    let mut a = ObjectCache::cpu(&c);
    let mut b = ObjectCache::cpu(&c);
    assert_eq!((a.node(), b.node()), (0, 1));
    let objs: Vec<NonNull<u8>> = (0..20).map(|_| c.alloc(&mut a).unwrap()).collect();
    assert_eq!(a.array(), (16 + 43 - 20, 120, 60, true));
    // B frees node 0's objects: they go to node 1's alien array for 0.
    for o in &objs[..5] {
        // SAFETY: objects of this cache, freed once.
        unsafe { c.free(&mut b, *o) };
    }
    assert_eq!(b.array().0, 0);
    assert_eq!(c.core().node_counts(1).alien_avail, 5);
    for o in &objs[5..] {
        // SAFETY: as above.
        unsafe { c.free(&mut a, *o) };
    }
    let free_before = c.core().node_counts(0).free_objects;
    let held = a.array().0 as usize;
    drop(a);
    assert_eq!(c.core().node_counts(0).free_objects, free_before + held);
    drop(b);
    // The registry's own arrays were not touched.
    assert_eq!(c.cpu_array(0).0, 0);
    c.core().assert_invariants();
}

#[test]
fn object_churn_runs_on_slab() {
    let s = machine(1, 4);
    let r = crate::workload::object_churn(&s, &[32, 200, 1000], 3, 150);
    assert_eq!(r.ops, 2 * 3 * 150 * 3);
    assert_eq!(crate::ObjectAllocator::name(&s), "SLAB");
    assert!(crate::ObjectAllocator::pages_bytes(&s) > 0);
}

#[test]
fn threads_on_two_nodes_free_each_others_objects_through_alien_arrays() {
    use crate::ObjectCache;
    use std::sync::mpsc;
    use std::time::Duration;
    // Four threads, CPUs on nodes 0, 0, 1, 1: each allocates, writes its
    // mark, and hands its objects to the next thread, which checks the
    // mark and frees them (half of the frees are of another node's
    // objects). A hang fails with a message after 60 s.
    struct Objs(Vec<NonNull<u8>>);
    // SAFETY: objects are handed whole from one thread to the next.
    unsafe impl Send for Objs {}
    let rounds = if cfg!(miri) { 3 } else { 200 };
    let s = machine(2, 4);
    let c = cache64(&s);
    let (done_tx, done_rx) = mpsc::channel();
    let mut txs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..4 {
        let (tx, rx) = mpsc::channel::<Objs>();
        txs.push(tx);
        rxs.push(rx);
    }
    let mut handles = Vec::new();
    for (t, rx) in rxs.into_iter().enumerate() {
        let c = c.clone();
        let next = txs[(t + 1) % 4].clone();
        let done = done_tx.clone();
        let mut cpu = ObjectCache::cpu(&c);
        handles.push(std::thread::spawn(move || {
            for r in 0..rounds {
                let objs: Vec<NonNull<u8>> = (0..50)
                    .map(|_| {
                        let o = c.alloc(&mut cpu).expect("memory");
                        // SAFETY: a live 64-byte object of ours.
                        unsafe { o.as_ptr().write_bytes(t as u8 + 1, 64) };
                        o
                    })
                    .collect();
                next.send(Objs(objs)).expect("next thread alive");
                let got = rx.recv().expect("previous thread alive");
                let from = ((t + 3) % 4) as u8 + 1;
                for o in got.0 {
                    // SAFETY: live objects handed over whole, freed once.
                    unsafe {
                        assert_eq!(*o.as_ptr().add(63), from, "round {r}: object overwritten");
                        c.free(&mut cpu, o);
                    }
                }
            }
            drop(cpu);
            done.send(()).expect("main alive");
        }));
    }
    drop(done_tx);
    for _ in 0..4 {
        done_rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a thread did not finish within 60 s: SLAB hung");
    }
    for h in handles {
        h.join().expect("thread panicked");
    }
    c.core().assert_invariants();
    let node_frees = c
        .core()
        .stats
        .node_frees
        .load(std::sync::atomic::Ordering::Relaxed);
    // Threads 0 and 2 free the other node's objects every round.
    assert_eq!(node_frees, 2 * rounds * 50);
}
