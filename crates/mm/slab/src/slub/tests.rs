//! SLUB's stories: the life of a slab, min_partial, remote frees, merging,
//! and each corruption kind the debug checks must catch.

use std::ptr::NonNull;
use std::sync::Arc;

use crate::cache::{DestroyError, KmallocClasses, Slub, SlubConfig};
use crate::debug::{CollectSink, ReportKind};
use crate::layout::{SlabFlags, WORD};
use crate::page::PAGE_SIZE;
use crate::page_source::FramePool;

fn slub_with(config: SlubConfig) -> (Slub, Arc<CollectSink>, Arc<FramePool>) {
    let pool = Arc::new(FramePool::new(2, 4));
    let sink = Arc::new(CollectSink::new());
    let slub = Slub::new(pool.clone(), config, sink.clone());
    (slub, sink, pool)
}

fn slub() -> (Slub, Arc<CollectSink>, Arc<FramePool>) {
    slub_with(SlubConfig::default())
}

#[test]
fn a_slab_fills_is_forgotten_and_comes_back_partial() {
    let (slub, sink, _pool) = slub();
    // 1000-byte objects, 2.6.24 params: 4 objects need order 0 (4096 / 1000
    // = 4, 96 bytes left), so a slab holds 4.
    let c = slub
        .kmem_cache_create_unmergeable("obj1000", 1000, 8, SlabFlags::NONE, None)
        .unwrap();
    assert_eq!((c.layout().order, c.layout().objects), (0, 4));
    let mut cpu = c.cpu();
    let objs: Vec<_> = (0..5).map(|_| cpu.alloc().unwrap()).collect();
    // The first slab was used up and deactivated full: on no list.
    assert_eq!(c.stats().slabs, 2);
    assert_eq!(c.stats().partial, 0);
    assert_eq!(cpu.stats().alloc_slow, 2);
    assert_eq!(cpu.stats().alloc_fast, 3);
    c.assert_invariants();
    // Freeing an object of the full slab (not the CPU's) finds it through
    // the memory map and puts it on the partial list.
    // SAFETY: objects of this cache, freed once.
    unsafe { cpu.free(objs[0]) };
    assert_eq!(cpu.stats().free_slow, 1);
    assert_eq!(c.stats().partial, 1);
    c.assert_invariants();
    // Freeing the CPU slab's object is the fast path.
    // SAFETY: as above.
    unsafe { cpu.free(objs[4]) };
    assert_eq!(cpu.stats().free_fast, 1);
    for o in &objs[1..4] {
        // SAFETY: as above.
        unsafe { cpu.free(*o) };
    }
    // The first slab is empty but kept: fewer than min_partial partials.
    assert_eq!(c.stats().partial, 1);
    drop(cpu);
    c.assert_invariants();
    assert_eq!(c.stats().slabs, 2);
    assert_eq!(c.shrink(), 2);
    assert_eq!(c.stats().slabs, 0);
    assert!(sink.take().is_empty());
    slub.kmem_cache_destroy(c).unwrap();
}

#[test]
fn empty_slabs_beyond_min_partial_go_back_to_the_page_allocator() {
    let (slub, _sink, _pool) = slub();
    let c = slub
        .kmem_cache_create_unmergeable("big", 2000, 8, SlabFlags::NONE, None)
        .unwrap();
    // min_partial = clamp(ilog2(2000) / 2, 5, 10) = 5; order 1, 4 objects.
    assert_eq!(c.layout().objects, 4);
    let mut cpu = c.cpu();
    let objs: Vec<_> = (0..4 * 8).map(|_| cpu.alloc().unwrap()).collect();
    cpu.flush();
    assert_eq!(c.stats().slabs, 8);
    for o in objs {
        // SAFETY: objects of this cache, freed once.
        unsafe { c.free(o) };
        c.assert_invariants();
    }
    // A slab that empties goes back once the partial list (itself
    // included) holds min_partial = 5 slabs: slabs 1-4 stay, 5-8 go.
    assert_eq!(c.stats().slabs, 4);
    assert_eq!(c.stats().partial, 4);
    drop(cpu);
    slub.kmem_cache_destroy(c).unwrap();
}

#[test]
fn remote_frees_into_a_frozen_slab_are_collected_by_its_owner() {
    let (slub, _sink, _pool) = slub();
    let c = slub
        .kmem_cache_create_unmergeable("r", 64, 8, SlabFlags::NONE, None)
        .unwrap();
    let objects = c.layout().objects;
    let mut cpu = c.cpu();
    let objs: Vec<_> = (0..objects).map(|_| cpu.alloc().unwrap()).collect();
    assert_eq!(cpu.state().nr_free(), 0);
    // Another thread frees half: they land on the slab's own freelist.
    let c2 = c.clone();
    let half: Vec<usize> = objs[..objects / 2]
        .iter()
        .map(|p| p.as_ptr().addr())
        .collect();
    let ptrs: Vec<usize> = objs[..objects / 2]
        .iter()
        .map(|p| p.as_ptr().expose_provenance())
        .collect();
    std::thread::scope(|s| {
        s.spawn(|| {
            for a in ptrs {
                let p = NonNull::new(std::ptr::with_exposed_provenance_mut::<u8>(a)).unwrap();
                // SAFETY: objects of this cache, freed once, by another thread.
                unsafe { c2.free(p) };
            }
        });
    });
    // The owner's next allocation takes the whole slab freelist at once.
    let p = cpu.alloc().unwrap();
    assert!(half.contains(&p.as_ptr().addr()));
    assert_eq!(cpu.state().nr_free(), objects / 2 - 1);
    assert_eq!(c.stats().slabs, 1, "no new slab was needed");
    // SAFETY: objects of this cache.
    unsafe {
        cpu.free(p);
        for o in &objs[objects / 2..] {
            cpu.free(*o);
        }
    }
    drop((cpu, c2));
    c.assert_invariants();
    slub.kmem_cache_destroy(c).unwrap();
}

#[test]
fn constructors_run_once_per_object_at_slab_creation() {
    fn ctor(obj: &mut [u8]) {
        obj.fill(0x42);
    }
    let (slub, _sink, _pool) = slub();
    let c = slub
        .kmem_cache_create("ctor", 24, 8, SlabFlags::NONE, Some(ctor))
        .unwrap();
    assert!(!c.is_alias(), "caches with a constructor never merge");
    assert_eq!(c.layout().offset, 24, "free pointer outside the object");
    let mut cpu = c.cpu();
    let p = cpu.alloc().unwrap();
    // SAFETY: a live 24-byte object.
    unsafe {
        assert_eq!(std::slice::from_raw_parts(p.as_ptr(), 24), &[0x42; 24]);
        p.as_ptr().write(1);
        cpu.free(p);
        // Freed objects keep their bytes: the free pointer is after them.
        let q = cpu.alloc().unwrap();
        assert_eq!(q, p);
        assert_eq!(q.as_ptr().read(), 1);
        assert_eq!(q.as_ptr().add(1).read(), 0x42);
        cpu.free(q);
    }
}

#[test]
fn caches_merge_into_compatible_ones_and_keep_aliases() {
    let (slub, _sink, _pool) = slub();
    let before = slub.nr_caches();
    assert_eq!(before, 13, "the kmalloc caches");
    // 60 bytes -> ALIGN(60, 8) = 64: merges into kmalloc-64.
    let a = slub
        .kmem_cache_create("a60", 60, 0, SlabFlags::NONE, None)
        .unwrap();
    assert!(a.is_alias());
    assert_eq!(a.cache_name(), "kmalloc-64");
    // 50 bytes -> 56; kmalloc-64 leaves 8 >= one word: a new cache.
    let b = slub
        .kmem_cache_create("b50", 50, 0, SlabFlags::NONE, None)
        .unwrap();
    assert!(!b.is_alias());
    // ...which the next 56-byte request merges into (newest first).
    let b2 = slub
        .kmem_cache_create("b56", 56, 0, SlabFlags::NONE, None)
        .unwrap();
    assert!(b2.same_cache(&b));
    // Reclaim-account caches only merge with reclaim-account caches.
    let r = slub
        .kmem_cache_create("r64", 64, 0, SlabFlags::RECLAIM_ACCOUNT, None)
        .unwrap();
    assert!(!r.is_alias());
    // RCU caches never merge, nor does anything merge into them.
    let rcu = slub
        .kmem_cache_create("rcu", 96, 0, SlabFlags::DESTROY_BY_RCU, None)
        .unwrap();
    assert!(!rcu.is_alias());
    let after_rcu = slub
        .kmem_cache_create("n96", 96, 0, SlabFlags::NONE, None)
        .unwrap();
    assert_eq!(after_rcu.cache_name(), "kmalloc-96");
    // Hardware cache alignment: 40 bytes -> align 64, size 64: kmalloc-64.
    let hw = slub
        .kmem_cache_create("hw40", 40, 0, SlabFlags::HWCACHE_ALIGN, None)
        .unwrap();
    assert_eq!(hw.cache_name(), "kmalloc-64");
    assert_eq!(slub.nr_caches(), before + 3);
    assert_eq!(slub.nr_aliases(), 4);
    assert_eq!(a.object_size(), 64, "objsize is the largest merged request");
    let info = slub.slabinfo();
    let k64 = info.iter().find(|i| i.name == "kmalloc-64").unwrap();
    assert_eq!(k64.aliases, vec!["a60".to_owned(), "hw40".to_owned()]);
    // Destroying an alias drops a reference; the cache stays.
    slub.kmem_cache_destroy(a).unwrap();
    assert_eq!(slub.nr_aliases(), 3);
    slub.kmem_cache_destroy(b2).unwrap();
    assert_eq!(slub.nr_caches(), before + 3);
    slub.kmem_cache_destroy(b).unwrap();
    assert_eq!(slub.nr_caches(), before + 2);
    drop((r, rcu, after_rcu, hw));
}

#[test]
fn slub_nomerge_and_debug_stop_merging() {
    let (slub, _s, _p) = slub_with(SlubConfig {
        nomerge: true,
        ..SlubConfig::default()
    });
    let a = slub
        .kmem_cache_create("a", 64, 0, SlabFlags::NONE, None)
        .unwrap();
    assert!(!a.is_alias());
    let mut cfg = SlubConfig::default();
    cfg.slub_debug(Some("Z,dentry")).unwrap();
    assert_eq!(cfg.debug, SlabFlags::RED_ZONE);
    let (slub, _s, _p) = slub_with(cfg);
    let d = slub
        .kmem_cache_create("dentry_cache", 64, 0, SlabFlags::NONE, None)
        .unwrap();
    assert!(!d.is_alias(), "a debugged cache never merges");
    let o = slub
        .kmem_cache_create("other", 64, 0, SlabFlags::NONE, None)
        .unwrap();
    assert!(o.is_alias());
}

#[test]
fn slub_debug_option_parses_like_the_kernel() {
    let mut c = SlubConfig::default();
    c.slub_debug(None).unwrap();
    assert_eq!(
        (c.debug, c.debug_slabs.as_deref()),
        (SlabFlags::DEBUG_DEFAULT, None)
    );
    c.slub_debug(Some(",kmalloc")).unwrap();
    assert_eq!(
        (c.debug, c.debug_slabs.as_deref()),
        (SlabFlags::DEBUG_DEFAULT, Some("kmalloc"))
    );
    c.slub_debug(Some("-")).unwrap();
    assert_eq!(c.debug, SlabFlags::NONE);
    c.slub_debug(Some("fp")).unwrap();
    assert_eq!(c.debug, SlabFlags::DEBUG_FREE | SlabFlags::POISON);
    let e = c.slub_debug(Some("FQ")).unwrap_err();
    assert_eq!((e.letter, e.offset), ('Q', 1));
    assert_eq!(
        c.cache_flags("x", SlabFlags::NONE),
        SlabFlags::NONE.with(c.debug)
    );
}

// ----------------------------------------------------------------------
// Debug: each injected corruption is caught and reported with the cache,
// the object and what was found.

fn debug_cache(flags: SlabFlags) -> (Slub, Arc<CollectSink>, crate::KmemCache) {
    let (slub, sink, _pool) = slub();
    let c = slub
        .kmem_cache_create("victim", 64, 8, flags, None)
        .unwrap();
    (slub, sink, c)
}

#[test]
fn red_zone_overwrite_is_reported_on_free() {
    let (_slub, sink, c) = debug_cache(SlabFlags::DEBUG_DEFAULT);
    let mut cpu = c.cpu();
    let p = cpu.alloc().unwrap();
    // SAFETY: writes one byte past the 64-byte object into its red zone,
    // which lies within the object's stride.
    unsafe {
        p.as_ptr().add(64).write(0x00);
        cpu.free(p);
    }
    let r = sink.take();
    assert_eq!(r.len(), 2, "{r:#?}");
    assert_eq!(r[0].kind, ReportKind::RedzoneOverwritten);
    assert_eq!(r[0].cache, "victim");
    assert_eq!(r[0].object, Some(p.as_ptr().addr()));
    assert!(
        r[0].detail.contains("first byte 0x00 instead of 0xcc"),
        "{}",
        r[0].detail
    );
    assert!(r[0].fix.starts_with("Restoring"));
    assert_eq!(r[1].kind, ReportKind::SlabCorrupt);
    assert!(r[1].fix.contains("not freed"));
    // The object was not freed: validation now finds it in use and sound.
    drop(cpu);
    assert_eq!(c.validate(), 0);
}

#[test]
fn use_after_free_is_detected_on_allocation() {
    let (_slub, sink, c) = debug_cache(SlabFlags::POISON | SlabFlags::DEBUG_FREE);
    let mut cpu = c.cpu();
    let p = cpu.alloc().unwrap();
    // SAFETY: p is freed once, then written (the bug being injected):
    // the slab memory stays mapped, so the write is to valid memory.
    unsafe {
        cpu.free(p);
        p.as_ptr().add(10).write(0x00);
    }
    assert!(sink.take().is_empty(), "nothing to see yet");
    // The object is the first free one again: allocation checks its poison.
    let q = cpu.alloc().unwrap();
    let r = sink.take();
    assert_eq!(r[0].kind, ReportKind::PoisonOverwritten, "{r:#?}");
    assert_eq!(r[0].object, Some(p.as_ptr().addr()));
    assert!(r[0].detail.contains("first byte 0x00 instead of 0x6b"));
    assert!(r.iter().any(|x| x.fix == "Marking all objects used"));
    // The corrupt slab was given up; the allocation came from a new one.
    assert_ne!(q, p);
    // SAFETY: q is a live object of this cache.
    unsafe { cpu.free(q) };
}

#[test]
fn double_free_is_refused_and_reported() {
    let (_slub, sink, c) = debug_cache(SlabFlags::DEBUG_FREE);
    let mut cpu = c.cpu();
    let p = cpu.alloc().unwrap();
    let q = cpu.alloc().unwrap();
    // SAFETY: p is freed twice: the second free is the injected bug, which
    // a debug cache detects before touching the object.
    unsafe {
        cpu.free(p);
        cpu.free(p);
    }
    let r = sink.take();
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!(r[0].kind, ReportKind::DoubleFree);
    assert_eq!(r[0].object, Some(p.as_ptr().addr()));
    assert_eq!(
        r[0].fix,
        format!("Object at {:#x} not freed", p.as_ptr().addr())
    );
    // The free list is intact: both objects come back, once each.
    // SAFETY: q is live.
    unsafe { cpu.free(q) };
    let a = cpu.alloc().unwrap();
    let b = cpu.alloc().unwrap();
    assert_ne!(a, b);
    assert!(sink.take().is_empty());
}

#[test]
fn corrupted_free_pointer_is_caught() {
    let (_slub, sink, c) = debug_cache(SlabFlags::DEBUG_FREE | SlabFlags::POISON);
    let off = c.layout().offset;
    assert_eq!(off, 64, "poisoned caches keep the free pointer outside");
    let mut cpu = c.cpu();
    let p = cpu.alloc().unwrap();
    let q = cpu.alloc().unwrap();
    // SAFETY: both are live objects; after freeing q the free list head is
    // q, whose free pointer (in its stride) is overwritten: the bug.
    unsafe {
        cpu.free(q);
        q.as_ptr()
            .add(off)
            .cast::<usize>()
            .write_unaligned(0xdead_beef);
    }
    let x = cpu.alloc().unwrap();
    let r = sink.take();
    assert!(
        r.iter().any(|x| x.kind == ReportKind::FreepointerCorrupt),
        "{r:#?}"
    );
    assert!(r.iter().all(|x| x.cache == "victim"));
    // SAFETY: live objects.
    unsafe {
        cpu.free(x);
        cpu.free(p);
    }
    drop(cpu);
    let _ = c.validate();
}

#[test]
fn validate_counts_findings_on_a_clobbered_free_object() {
    let (_slub, sink, c) = debug_cache(SlabFlags::DEBUG_DEFAULT);
    let mut cpu = c.cpu();
    let p = cpu.alloc().unwrap();
    let keep = cpu.alloc().unwrap();
    // SAFETY: p freed, then its 50th byte written (use after free).
    unsafe {
        cpu.free(p);
        p.as_ptr().add(50).write(0x11);
    }
    drop(cpu);
    // One finding (poison) for the clobbered object; the repair restores
    // it, so a second validation finds nothing.
    assert_eq!(c.validate(), 1);
    assert_eq!(sink.take()[0].kind, ReportKind::PoisonOverwritten);
    assert_eq!(c.validate(), 0);
    // SAFETY: live.
    unsafe { c.free(keep) };
}

#[test]
fn destroying_a_cache_with_live_objects_reports_them() {
    let (slub, sink, _pool) = slub();
    let c = slub
        .kmem_cache_create_unmergeable("leaky", 128, 8, SlabFlags::NONE, None)
        .unwrap();
    let mut cpu = c.cpu();
    let _leak = cpu.alloc().unwrap();
    drop(cpu);
    let e = slub.kmem_cache_destroy(c).unwrap_err();
    assert_eq!(
        e,
        DestroyError::ObjectsRemaining {
            name: "leaky".into(),
            slabs: 1
        }
    );
    assert_eq!(sink.take()[0].kind, ReportKind::ObjectsRemaining);
}

#[test]
fn kmalloc_serves_classes_pages_and_regions() {
    let (slub, _sink, pool) = slub_with(SlubConfig {
        kmalloc: KmallocClasses::Kernel,
        ..SlubConfig::default()
    });
    let mut cpu = slub.kmalloc_cpu();
    let small = slub.kmalloc(&mut cpu, 100).unwrap();
    let page = slub.kmalloc(&mut cpu, 3 * PAGE_SIZE).unwrap();
    let huge = slub.kmalloc(&mut cpu, 3 << 20).unwrap();
    // SAFETY: live kmalloc allocations.
    unsafe {
        assert_eq!(slub.ksize(small), 128);
        assert_eq!(slub.ksize(page), 4 * PAGE_SIZE);
        assert!(slub.ksize(huge) >= 3 << 20);
        huge.as_ptr().write_bytes(1, 3 << 20);
        slub.kfree(&mut cpu, small);
        slub.kfree(&mut cpu, page);
        slub.kfree(&mut cpu, huge);
    }
    assert!(slub.kmalloc(&mut cpu, 0).is_none());
    drop(cpu);
    slub.assert_invariants();
    let _ = pool;
}

#[test]
fn frame_pool_slabs_get_the_same_frames_every_run() {
    fn run() -> Vec<usize> {
        let pool = Arc::new(FramePool::new(1, 2));
        let slub = Slub::new(
            pool.clone(),
            SlubConfig::default(),
            Arc::new(CollectSink::new()),
        );
        let c = slub
            .kmem_cache_create_unmergeable("det", 500, 8, SlabFlags::NONE, None)
            .unwrap();
        let mut cpu = c.cpu();
        let v: Vec<NonNull<u8>> = (0..40).map(|_| cpu.alloc().unwrap()).collect();
        let pfns = v.iter().map(|p| pool.pfn(p.as_ptr())).collect();
        for p in v {
            // SAFETY: live objects of the cache.
            unsafe { cpu.free(p) };
        }
        pfns
    }
    let a = run();
    assert_eq!(a, run());
    // 500 -> 504-byte stride, 8 per order-0 slab; first slab at frame 9
    // (the lone order-0 block), the second from splitting 10-11.
    assert_eq!(a[0], 9);
    assert_eq!(a[8], 10);
    assert_eq!(WORD, 8);
}

#[test]
fn threads_allocating_and_freeing_each_others_objects() {
    let (slub, sink, _pool) = slub();
    let c = slub
        .kmem_cache_create("stress", 48, 8, SlabFlags::DEBUG_FREE, None)
        .unwrap();
    let rounds = if cfg!(miri) { 20 } else { 20_000 };
    let threads = if cfg!(miri) { 2 } else { 4 };
    let (tx, rx) = std::sync::mpsc::channel::<Vec<usize>>();
    let rx = Arc::new(std::sync::Mutex::new(rx));
    std::thread::scope(|s| {
        for t in 0..threads {
            let c = c.clone();
            let tx = tx.clone();
            let rx = rx.clone();
            s.spawn(move || {
                let mut cpu = c.cpu();
                let mut mine = Vec::new();
                for i in 0..rounds {
                    let p = cpu.alloc().unwrap();
                    // SAFETY: a live 48-byte object.
                    unsafe { p.as_ptr().write_bytes(t as u8, 48) };
                    mine.push(p.as_ptr().expose_provenance());
                    if mine.len() == 16 {
                        tx.send(std::mem::take(&mut mine)).unwrap();
                    }
                    if i % 3 == 0 {
                        let batch = rx.lock().unwrap().try_recv();
                        if let Ok(batch) = batch {
                            for a in batch {
                                let p =
                                    NonNull::new(std::ptr::with_exposed_provenance_mut::<u8>(a))
                                        .unwrap();
                                // SAFETY: allocated by some thread, sent once.
                                unsafe { cpu.free(p) };
                            }
                        }
                    }
                }
                tx.send(mine).unwrap();
            });
        }
    });
    drop(tx);
    let mut cpu = c.cpu();
    for batch in rx.lock().unwrap().try_iter() {
        for a in batch {
            let p = NonNull::new(std::ptr::with_exposed_provenance_mut::<u8>(a)).unwrap();
            // SAFETY: as above.
            unsafe { cpu.free(p) };
        }
    }
    drop(cpu);
    assert_eq!(sink.errors(), 0, "{:#?}", sink.take());
    c.assert_invariants();
    assert_eq!(c.validate(), 0);
    c.shrink();
    assert_eq!(c.stats().slabs, 0, "every object came back");
    let _ = slub;
}
