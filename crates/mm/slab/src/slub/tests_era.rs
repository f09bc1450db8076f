//! The 3.1 and 3.2 slow paths ([`super::lockless`]) pinned with exact
//! numbers: where a free into a full slab puts it (the node list under
//! `list_lock` in 2.6.24 and 3.1, the freeing CPU's partial list in 3.2),
//! when a CPU partial list drains (`put_cpu_partial()` past
//! `s->cpu_partial` free objects), how much a refill takes from a node
//! list (`get_partial_node()`: more than `cpu_partial / 2` objects), and a
//! multi-threaded stress in every era with objects freed on other
//! threads.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::cache::{KmemCache, Slub, SlubConfig};
use crate::debug::CollectSink;
use crate::layout::SlabFlags;
use crate::page_source::FramePool;
use crate::slub::{SlubEra, cpu_partial_for, min_partial_for};

fn slub(era: SlubEra) -> (Slub, Arc<CollectSink>) {
    let pool = Arc::new(FramePool::new(2, 4));
    let sink = Arc::new(CollectSink::new());
    let config = SlubConfig {
        era,
        ..SlubConfig::default()
    };
    (Slub::new(pool, config, sink.clone()), sink)
}

fn cache64(slub: &Slub) -> KmemCache {
    let c = slub
        .kmem_cache_create_unmergeable("p64", 64, 8, SlabFlags::NONE, None)
        .unwrap();
    // Order 0, 4096 / 64 objects.
    assert_eq!((c.layout().order, c.layout().objects), (0, 64));
    c
}

#[test]
fn set_cpu_partial_and_min_partial_follow_the_object_size() {
    // set_cpu_partial() (3.2): 30 below 256 bytes, 13 below 1024, 6 below
    // a page, 2 from a page on; none before 3.2 or for debug caches.
    assert_eq!(cpu_partial_for(64, SlubEra::V3_2, false), 30);
    assert_eq!(cpu_partial_for(256, SlubEra::V3_2, false), 13);
    assert_eq!(cpu_partial_for(1024, SlubEra::V3_2, false), 6);
    assert_eq!(cpu_partial_for(4096, SlubEra::V3_2, false), 2);
    assert_eq!(cpu_partial_for(64, SlubEra::V3_1, false), 0);
    assert_eq!(cpu_partial_for(64, SlubEra::V3_2, true), 0);
    assert_eq!(min_partial_for(64), 5);
    let (slub, _) = slub(SlubEra::V3_2);
    let c = cache64(&slub);
    let core = c.cpu();
    assert_eq!(
        (core.cache().cpu_partial(), core.cache().min_partial()),
        (30, 5)
    );
    assert!(core.cache().is_lockless());
    // Debug caches keep the 2.6.24 paths in every era.
    let d = slub
        .kmem_cache_create("dbg", 64, 8, SlabFlags::DEBUG_FREE, None)
        .unwrap();
    assert!(!d.cpu().cache().is_lockless());
    assert_eq!(d.cpu().cache().cpu_partial(), 0);
}

/// Fills 32 slabs from one CPU and flushes it: 32 full slabs on no list.
fn fill_32_slabs(c: &KmemCache) -> Vec<NonNull<u8>> {
    let mut a = c.cpu();
    let objs: Vec<_> = (0..32 * 64).map(|_| a.alloc().unwrap()).collect();
    drop(a);
    assert_eq!((c.stats().slabs, c.stats().partial), (32, 0));
    c.assert_invariants();
    objs
}

#[test]
fn a_free_into_a_full_slab_freezes_it_onto_the_freeing_cpus_partial_list() {
    let (slub, sink) = slub(SlubEra::V3_2);
    let c = cache64(&slub);
    let objs = fill_32_slabs(&c);
    // CPU B frees one object of each full slab.
    let mut b = c.cpu();
    for k in 0..32 {
        // SAFETY: objects of this cache, freed once.
        unsafe { b.free(objs[k * 64]) };
        b.assert_invariants();
        // Slabs 1-31 pile up on B's list (pobjects 1..=31); the 32nd
        // finds pobjects = 31 > cpu_partial = 30 and drains the list first.
        if k < 31 {
            assert_eq!(b.state().nr_partial(), k + 1);
            assert_eq!(c.stats().partial, 0, "no node list involved");
        }
    }
    let s = b.stats();
    assert_eq!(
        (
            s.free_slow,
            s.cpu_partial_free,
            s.cpu_partial_drain,
            s.list_lock
        ),
        (32, 32, 1, 1)
    );
    assert_eq!((s.free_add_partial, s.free_frozen), (31, 0));
    assert_eq!(b.state().nr_partial(), 1);
    assert_eq!(c.stats().partial, 31);
    c.assert_invariants();

    // CPU C's first allocation refills from the node: the first slab
    // becomes its CPU slab (1 free object), then slabs are frozen onto
    // its partial list until more than cpu_partial / 2 = 15 objects are
    // available: 15 more.
    let mut cc = c.cpu();
    let first = cc.alloc().unwrap();
    assert!(objs.iter().step_by(64).any(|o| *o == first));
    let s = cc.stats();
    assert_eq!(
        (
            s.alloc_slow,
            s.alloc_from_partial,
            s.cpu_partial_node,
            s.list_lock
        ),
        (1, 1, 15, 1)
    );
    assert_eq!(cc.state().nr_partial(), 15);
    assert_eq!(c.stats().partial, 31 - 16);
    cc.assert_invariants();
    // The next 15 come from the CPU partial list, no lock: each finds the
    // CPU slab used up (DEACTIVATE_BYPASS) and takes the next partial slab.
    let more: Vec<_> = (0..15).map(|_| cc.alloc().unwrap()).collect();
    let s = cc.stats();
    assert_eq!(
        (
            s.alloc_slow,
            s.cpu_partial_alloc,
            s.deactivate_bypass,
            s.alloc_refill
        ),
        (16, 15, 15, 15)
    );
    assert_eq!((s.list_lock, cc.state().nr_partial()), (1, 0));
    cc.assert_invariants();

    // Everything back: all slabs empty, 5 (min_partial) kept, the rest
    // freed when they empty.
    drop(b);
    // SAFETY: every object once, through C.
    unsafe {
        cc.free(first);
        for o in more {
            cc.free(o);
        }
        for (i, o) in objs.iter().enumerate() {
            if i % 64 != 0 {
                cc.free(*o);
            }
        }
    }
    cc.assert_invariants();
    drop(cc);
    c.assert_invariants();
    assert_eq!(c.stats().slabs, c.stats().partial);
    assert!(c.stats().partial >= 5);
    c.shrink();
    assert_eq!(c.stats().slabs, 0);
    assert!(sink.take().is_empty());
}

#[test]
fn before_3_2_a_free_into_a_full_slab_takes_the_list_lock() {
    for era in [SlubEra::V2_6_24, SlubEra::V3_1] {
        let (slub, _) = slub(era);
        let c = cache64(&slub);
        let objs = fill_32_slabs(&c);
        let mut b = c.cpu();
        for k in 0..32 {
            // SAFETY: objects of this cache, freed once.
            unsafe { b.free(objs[k * 64]) };
        }
        let s = b.stats();
        assert_eq!(s.free_slow, 32, "{era}");
        assert_eq!(b.state().nr_partial(), 0, "{era}");
        assert_eq!(c.stats().partial, 32, "{era}");
        if era == SlubEra::V3_1 {
            assert_eq!((s.list_lock, s.free_add_partial), (32, 32));
        }
        // A second free into each slab (now partial, not full) takes no
        // lock in 3.1.
        for k in 0..32 {
            // SAFETY: as above.
            unsafe { b.free(objs[k * 64 + 1]) };
        }
        if era == SlubEra::V3_1 {
            assert_eq!(b.stats().list_lock, 32);
        }
        c.assert_invariants();
        // SAFETY: the rest, once.
        unsafe {
            for (i, o) in objs.iter().enumerate() {
                if i % 64 > 1 {
                    b.free(*o);
                }
            }
        }
        drop(b);
        c.assert_invariants();
        // A slab that empties goes back while the node list (itself
        // included) holds min_partial = 5 slabs: 28 went, 4 stay.
        assert_eq!((c.stats().slabs, c.stats().partial), (4, 4), "{era}");
    }
}

#[test]
fn remote_frees_into_frozen_slabs_take_no_lock() {
    for era in [SlubEra::V3_1, SlubEra::V3_2] {
        let (slub, _) = slub(era);
        let c = cache64(&slub);
        let mut a = c.cpu();
        let objs: Vec<_> = (0..64).map(|_| a.alloc().unwrap()).collect();
        let mut b = c.cpu();
        for o in &objs[..32] {
            // SAFETY: objects of this cache, freed once.
            unsafe { b.free(*o) };
        }
        let s = b.stats();
        assert_eq!(
            (s.free_slow, s.free_frozen, s.list_lock),
            (32, 32, 0),
            "{era}"
        );
        // The owner takes the 32 back in one get_freelist().
        let p = a.alloc().unwrap();
        assert_eq!(a.stats().alloc_refill, 1);
        assert_eq!(a.state().nr_free(), 31);
        // SAFETY: as above.
        unsafe {
            a.free(p);
            for o in &objs[32..] {
                a.free(*o);
            }
        }
        a.assert_invariants();
        drop((a, b));
        c.assert_invariants();
        assert_eq!((c.stats().slabs, c.stats().partial), (1, 1));
    }
}

#[test]
fn empty_slabs_beyond_min_partial_go_back_in_every_era() {
    for era in SlubEra::ALL {
        let (slub, _) = slub(era);
        let c = slub
            .kmem_cache_create_unmergeable("big", 2000, 8, SlabFlags::NONE, None)
            .unwrap();
        let mut cpu = c.cpu();
        let objs: Vec<_> = (0..4 * 8).map(|_| cpu.alloc().unwrap()).collect();
        cpu.flush();
        for o in objs {
            // SAFETY: objects of this cache, freed once (no CPU).
            unsafe { c.free(o) };
            c.assert_invariants();
        }
        assert_eq!((c.stats().slabs, c.stats().partial), (4, 4), "{era}");
        drop(cpu);
        slub.kmem_cache_destroy(c).unwrap();
    }
}

#[test]
fn threads_free_each_others_objects_in_every_era() {
    let rounds = if cfg!(miri) { 60 } else { 30_000 };
    let threads = if cfg!(miri) { 3 } else { 4 };
    for era in SlubEra::ALL {
        let (slub, sink) = slub(era);
        // 200-byte objects: 20 per slab, so slabs fill and empty often.
        let c = slub
            .kmem_cache_create_unmergeable("stress", 200, 8, SlabFlags::NONE, None)
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<Vec<usize>>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        let total = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                .map(|t| {
                    let (c, tx, rx) = (c.clone(), tx.clone(), rx.clone());
                    s.spawn(move || {
                        let mut cpu = c.cpu();
                        let mut mine = Vec::new();
                        for i in 0..rounds {
                            let p = cpu.alloc().unwrap();
                            // SAFETY: a live 200-byte object.
                            unsafe { p.as_ptr().write_bytes(t as u8, 200) };
                            mine.push(p.as_ptr().expose_provenance());
                            if mine.len() == 24 {
                                tx.send(std::mem::take(&mut mine)).unwrap();
                            }
                            if i % 2 == 0 {
                                let batch = rx.lock().unwrap().try_recv();
                                for a in batch.into_iter().flatten() {
                                    let p = std::ptr::with_exposed_provenance_mut::<u8>(a);
                                    // SAFETY: allocated by some thread, sent once;
                                    // its bytes still hold one thread's pattern.
                                    unsafe {
                                        let v = p.read();
                                        assert!((v as usize) < threads);
                                        assert_eq!(p.add(199).read(), v);
                                        cpu.free(NonNull::new(p).unwrap());
                                    }
                                }
                            }
                            if i % 64 == 0 {
                                cpu.assert_invariants();
                            }
                        }
                        tx.send(mine).unwrap();
                        cpu.assert_invariants();
                        cpu.stats()
                    })
                })
                .collect();
            hs.into_iter()
                .map(|h| h.join().unwrap())
                .fold(crate::slub::CpuStats::ZERO, |a, s| a.add(&s))
        });
        drop(tx);
        let mut cpu = c.cpu();
        for a in rx.lock().unwrap().try_iter().flatten() {
            let p = NonNull::new(std::ptr::with_exposed_provenance_mut::<u8>(a)).unwrap();
            // SAFETY: as above.
            unsafe { cpu.free(p) };
        }
        drop(cpu);
        assert_eq!(
            total.alloc_fast + total.alloc_slow,
            (threads * rounds) as u64
        );
        if era.cmpxchg_double() {
            assert!(
                total.free_slow > 0,
                "{era}: remote frees took the slow path"
            );
        }
        assert!(sink.take().is_empty(), "{era}");
        c.assert_invariants();
        assert_eq!(c.validate(), 0, "{era}");
        c.shrink();
        assert_eq!(c.stats().slabs, 0, "{era}: every object came back");
    }
}
