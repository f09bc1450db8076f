use super::*;
use crate::page::RESERVED_PAGES;

/// `struct radix_tree_node` of 3.15 on x86-64, the model's main object.
const NODE: u32 = 576;

fn one_node() -> Geometry {
    Geometry {
        nodes: 1,
        sections_per_node: 2,
        cpus_per_node: 1,
    }
}

fn node_spec() -> CacheSpec {
    CacheSpec {
        name: "radix_tree_node".into(),
        size: NODE,
        align: 0,
        flags: (SlabFlags::PANIC | SlabFlags::RECLAIM_ACCOUNT).0,
        zero_ctor: true,
    }
}

fn plain(name: &str, size: u32) -> CacheSpec {
    CacheSpec {
        name: name.into(),
        size,
        align: 0,
        flags: 0,
        zero_ctor: false,
    }
}

#[test]
fn objects_fill_a_slab_in_address_order_then_take_the_next_frame() {
    let mut s = ModelSlab::new(one_node()).unwrap();
    let c = s.create(node_spec()).unwrap();
    let l = *s.kmem_cache(c).unwrap().layout();
    // 2.6.24 calculate_sizes(): a cache with a constructor keeps the free
    // pointer after the object (576 + 8 = 584 bytes a slot);
    // calculate_order(): 7 to an order-0 slab (4088 bytes, 8 left over).
    assert_eq!((l.order, l.objects, l.size, l.offset), (0, 7, 584, 576));
    let ids: Vec<ObjId> = (0..8).map(|i| s.alloc(c, 0, 100 + i).unwrap()).collect();
    let first = ids[0].pfn();
    assert!(
        first as usize >= RESERVED_PAGES,
        "slabs never use the memory map's frames"
    );
    for (i, id) in ids[..7].iter().enumerate() {
        assert_eq!((id.pfn(), id.offset_in_frame()), (first, 584 * i as u32));
    }
    assert_ne!(ids[7].pfn(), first, "the eighth object needs a second slab");
    assert_eq!(ids[7].offset_in_frame(), 0);
    assert_eq!((s.pages(), s.node_pages(0), s.nr_live()), (2, 2, 8));
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.tag(*id), Some(100 + i as u64));
    }
    s.assert_invariants();
}

#[test]
fn the_same_requests_get_the_same_ids() {
    let run = || {
        let mut s = ModelSlab::new(one_node()).unwrap();
        let c = s.create(node_spec()).unwrap();
        let mut live = Vec::new();
        let mut out = Vec::new();
        for i in 0..if cfg!(miri) { 40u64 } else { 300 } {
            if i % 3 == 2 {
                let (id, tag) = live.remove((i as usize * 7) % live.len());
                s.free(c, 0, id, tag).unwrap();
            } else {
                let id = s.alloc(c, 0, i).unwrap();
                live.push((id, i));
                out.push(id);
            }
        }
        (out, s.pages())
    };
    assert_eq!(run(), run());
}

#[test]
fn bad_frees_are_errors_and_change_nothing() {
    let mut s = ModelSlab::new(one_node()).unwrap();
    let a = s.create(node_spec()).unwrap();
    let b = s.create(plain("task_struct", 1024)).unwrap();
    let x = s.alloc(a, 0, 7).unwrap();
    let y = s.alloc(b, 0, 8).unwrap();
    let before = (s.pages(), s.nr_live(), s.journal_len());
    let stranger = ObjId(x.0 + 8);
    assert!(matches!(
        s.free(a, 0, stranger, 7),
        Err(SlabError::NotAllocated { obj, .. }) if obj == stranger
    ));
    assert!(matches!(
        s.free(b, 0, x, 7),
        Err(SlabError::WrongCache { owner, .. }) if owner == "radix_tree_node"
    ));
    assert!(matches!(
        s.free(a, 0, x, 8),
        Err(SlabError::TagMismatch {
            found: 7,
            expected: 8,
            ..
        })
    ));
    assert!(matches!(
        s.free(a, 1, x, 7),
        Err(SlabError::NoCpu { cpu: 1, nr_cpus: 1 })
    ));
    assert!(matches!(
        s.alloc(CacheId(9), 0, 0),
        Err(SlabError::NoCache(CacheId(9)))
    ));
    assert_eq!((s.pages(), s.nr_live(), s.journal_len()), before);
    s.free(a, 0, x, 7).unwrap();
    assert!(
        matches!(s.free(a, 0, x, 7), Err(SlabError::NotAllocated { .. })),
        "double free"
    );
    assert_eq!(s.tag(y), Some(8));
    s.assert_invariants();
}

#[test]
fn compatible_caches_merge_and_their_pages_count_once() {
    let mut s = ModelSlab::new(one_node()).unwrap();
    let a = s.create(plain("dentry_like", 200)).unwrap();
    let b = s.create(plain("inode_like", 200)).unwrap();
    let n = s.create(node_spec()).unwrap();
    let aliases: Vec<bool> = s.caches().map(|(_, _, alias)| alias).collect();
    assert_eq!(
        aliases,
        [false, true, false],
        "a constructor forbids merging"
    );
    assert!(
        s.kmem_cache(a)
            .unwrap()
            .same_cache(s.kmem_cache(b).unwrap())
    );
    let x = s.alloc(a, 0, 1).unwrap();
    let y = s.alloc(b, 0, 2).unwrap();
    assert_eq!(y.pfn(), x.pfn(), "one slab serves both names");
    // An object of a merged cache may be freed through either name.
    s.free(b, 0, x, 1).unwrap();
    assert_eq!((s.live_objects(a), s.live_objects(n)), (1, 0));
    let l = *s.kmem_cache(a).unwrap().layout();
    assert_eq!(s.pages(), 1 << l.order);
    s.assert_invariants();
}

#[test]
fn a_cpu_allocates_from_its_own_node() {
    let g = Geometry {
        nodes: 2,
        sections_per_node: 1,
        cpus_per_node: 2,
    };
    let mut s = ModelSlab::new(g).unwrap();
    let c = s.create(node_spec()).unwrap();
    let on0 = s.alloc(c, 1, 0).unwrap();
    let on1 = s.alloc(c, 2, 0).unwrap();
    assert_eq!((s.node_pages(0), s.node_pages(1)), (1, 1));
    let frames_per_node = (SECTION_SIZE >> PAGE_SHIFT) as u32;
    assert!(on0.pfn() < frames_per_node && on1.pfn() >= frames_per_node);
    s.assert_invariants();
}

#[test]
#[cfg_attr(
    miri,
    ignore = "fills a whole section: slow under Miri, no unsafe path of its own"
)]
fn an_exhausted_pool_is_an_error() {
    let g = Geometry {
        nodes: 1,
        sections_per_node: 1,
        cpus_per_node: 1,
    };
    let mut s = ModelSlab::new(g).unwrap();
    // 2.6.24 sizes 4000-byte objects at order 1: 2 objects per 2 frames.
    let c = s.create(plain("big", 4000)).unwrap();
    let per_section = USABLE_PAGES / 2 * 2;
    let mut n = 0;
    let err = loop {
        match s.alloc(c, 0, n as u64) {
            Ok(_) => n += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(n, per_section, "every usable frame pair holds two objects");
    assert!(matches!(err, SlabError::OutOfFrames { ref cache } if cache == "big"));
    s.assert_invariants();
}

#[test]
fn bad_geometry_and_small_objects_are_refused() {
    for g in [
        Geometry {
            nodes: 0,
            sections_per_node: 1,
            cpus_per_node: 1,
        },
        Geometry {
            nodes: 1,
            sections_per_node: 0,
            cpus_per_node: 1,
        },
        Geometry {
            nodes: 1,
            sections_per_node: 1,
            cpus_per_node: 0,
        },
        Geometry {
            nodes: 2,
            sections_per_node: 1 << 11,
            cpus_per_node: 1,
        },
    ] {
        assert!(
            matches!(ModelSlab::new(g), Err(SlabError::Geometry(_))),
            "{g:?}"
        );
    }
    let g = Geometry::for_machine(4, 1 << 30, 1);
    assert_eq!(
        g.sections_per_node as usize * 4 * SECTION_SIZE,
        MAX_POOL_BYTES
    );
    let mut s = ModelSlab::new(one_node()).unwrap();
    assert!(matches!(
        s.create(plain("tiny", 4)),
        Err(SlabError::Create { .. })
    ));
}

/// A mixed run: allocations and frees on two CPUs of two caches,
/// shrinks and flushes.
fn churn(s: &mut ModelSlab, steps: u64) -> Vec<(CacheId, ObjId, u64)> {
    let node = s.create(node_spec()).unwrap();
    let task = s.create(plain("task_struct", 1600)).unwrap();
    let mut live: Vec<(CacheId, ObjId, u64)> = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in 0..steps {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let cpu = (x >> 40) as u16 % 2;
        match x % 16 {
            0 => s.flush_cpu(cpu).map(drop).unwrap(),
            1 => s.shrink(node).map(drop).unwrap(),
            2..=6 if !live.is_empty() => {
                let (c, id, tag) = live.swap_remove((x >> 20) as usize % live.len());
                s.free(c, cpu, id, tag).unwrap();
            }
            _ => {
                let c = if x.is_multiple_of(5) { task } else { node };
                live.push((c, s.alloc(c, cpu, i).unwrap(), i));
            }
        }
    }
    live
}

#[test]
fn replaying_the_journal_rebuilds_the_same_allocator() {
    let g = Geometry {
        nodes: 1,
        sections_per_node: 2,
        cpus_per_node: 2,
    };
    let steps = if cfg!(miri) { 80 } else { 3000 };
    let mut a = ModelSlab::new(g).unwrap();
    let live = churn(&mut a, steps);
    let mut b = ModelSlab::replay(g, a.journal()).unwrap();
    b.assert_invariants();
    assert_eq!(
        (b.pages(), b.nr_live(), b.journal()),
        (a.pages(), a.nr_live(), a.journal())
    );
    for &(_, id, tag) in &live {
        assert_eq!(b.tag(id), Some(tag));
    }
    for (i, c) in [0u16, 1].into_iter().cycle().take(40).enumerate() {
        let cpu = (i % 2) as u16;
        assert_eq!(
            a.alloc(CacheId(c), cpu, 0).unwrap(),
            b.alloc(CacheId(c), cpu, 0).unwrap()
        );
    }
    assert_eq!(a.pages(), b.pages());
}

#[test]
fn a_journal_that_does_not_replay_is_refused() {
    let mut a = ModelSlab::new(one_node()).unwrap();
    let c = a.create(node_spec()).unwrap();
    a.alloc(c, 0, 1).unwrap();
    let mut j = a.journal().to_vec();
    let Op::Alloc(_, _, ref mut id, _) = j[1] else {
        unreachable!()
    };
    *id += 584;
    assert!(matches!(
        ModelSlab::replay(one_node(), &j),
        Err(SlabError::Diverged { entry: 1, .. })
    ));
    j.push(Op::Free(0, 0, 12));
    j.remove(1);
    assert!(matches!(
        ModelSlab::replay(one_node(), &j),
        Err(SlabError::NotAllocated { .. })
    ));
}

#[cfg(feature = "serde")]
#[test]
fn serde_writes_the_journal_and_reading_replays_it() {
    let g = Geometry {
        cpus_per_node: 2,
        ..one_node()
    };
    let mut a = ModelSlab::new(g).unwrap();
    let live = churn(&mut a, if cfg!(miri) { 60 } else { 500 });
    let json = serde_json::to_string(&a).unwrap();
    let b: ModelSlab = serde_json::from_str(&json).unwrap();
    assert_eq!((b.pages(), b.nr_live()), (a.pages(), a.nr_live()));
    for &(_, id, tag) in &live {
        assert_eq!(b.tag(id), Some(tag));
    }
    let bad = json.replacen("\"Alloc\":[0,", "\"Alloc\":[5,", 1);
    let err = serde_json::from_str::<ModelSlab>(&bad).unwrap_err();
    assert!(!bad.eq(&json));
    assert!(err.to_string().contains("no cache"), "{err}");
}

/// The pool's memory map names every slab: order-0 radix-tree node slabs
/// of one frame and order-1 slabs (`task_struct`-sized objects, four to a
/// frame pair) of two, each holding the objects allocated from it.
#[test]
fn the_memory_map_lists_each_slab_and_its_frames() {
    let mut s = ModelSlab::new(one_node()).unwrap();
    let c = s.create(node_spec()).unwrap();
    let t = s.create(plain("task_struct", 1888)).unwrap();
    assert_eq!(s.kmem_cache(t).unwrap().layout().order, 1);
    assert_eq!(s.kmem_cache(t).unwrap().layout().objects, 4);
    let nodes: Vec<ObjId> = (0..8).map(|i| s.alloc(c, 0, i).unwrap()).collect();
    let tasks: Vec<ObjId> = (0..5).map(|i| s.alloc(t, 0, 50 + i).unwrap()).collect();
    let slabs = s.node_slab_frames(0);
    // Two one-frame slabs of nodes (7 + 1 objects), two two-frame slabs of
    // tasks (4 + 1).
    let mut sizes: Vec<u32> = slabs.iter().map(|x| x.1).collect();
    sizes.sort_unstable();
    assert_eq!(sizes, [1, 1, 2, 2]);
    assert_eq!(
        slabs.iter().map(|x| x.1 as usize).sum::<usize>(),
        s.node_pages(0)
    );
    let holds = |o: &ObjId| {
        slabs
            .iter()
            .filter(|&&(first, n)| (first..first + n).contains(&o.pfn()))
            .count()
    };
    assert!(nodes.iter().chain(&tasks).all(|o| holds(o) == 1));
    // Freeing every task object and shrinking the cache
    // (`kmem_cache_shrink()`) frees both task slabs; the node slabs stay.
    for o in &tasks {
        s.free(t, 0, *o, s.tag(*o).unwrap()).unwrap();
    }
    s.shrink(t).unwrap();
    let after = s.node_slab_frames(0);
    assert_eq!(after.iter().map(|x| x.1).sum::<u32>(), 2);
    assert_eq!(
        after.iter().map(|x| x.1 as usize).sum::<usize>(),
        s.node_pages(0)
    );
}
