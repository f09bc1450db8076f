//! The model's kernel objects from SLUB: radix-tree nodes as
//! `radix_tree_node` objects, slab pages as machine frames, hibernation.

use klab_mm_policy::LruBalance;

use crate::machine::{Access, Machine, MachineConfig, ShadowLimit};
use crate::mm::page::{KernelPage, Owner};
use crate::mm::slab::RADIX_TREE_NODE_SIZE;

fn machine(pages: u64, shadow_limit: ShadowLimit) -> Machine {
    let mut cfg = MachineConfig::new(pages, LruBalance::Workingset315);
    cfg.slab = true;
    cfg.shadow_limit = shadow_limit;
    Machine::new(cfg).unwrap()
}

/// The layout of the machine's cache `id` (0: radix_tree_node, 1:
/// page_cgroup).
fn layout(m: &Machine, id: u16) -> klab_slab::CacheLayout {
    *m.kernel_slab()
        .unwrap()
        .slab()
        .kmem_cache(klab_slab::CacheId(id))
        .unwrap()
        .layout()
}

fn read(m: &mut Machine, file: u32, index: u64) {
    m.access(Access::read(file, index));
    m.assert_invariants();
}

#[test]
fn the_node_object_is_3_15s_struct_radix_tree_node() {
    assert_eq!(RADIX_TREE_NODE_SIZE, 576);
    let l = layout(&machine(64, ShadowLimit::Unlimited), 0);
    // The constructor puts the free pointer after the object: 584-byte
    // slots, 7 to a 4 KiB slab (2.6.24 calculate_sizes()/calculate_order()).
    assert_eq!((l.size, l.objects, l.order), (584, 7, 0));
}

#[test]
fn each_tree_node_is_an_object_and_slab_pages_take_frames() {
    let mut m = machine(1024, ShadowLimit::Unlimited);
    // 200 pages of one file: height 2, a root and leaves 0..=3.
    for i in 0..200 {
        read(&mut m, 0, i);
    }
    let st = m.kernel_slab().unwrap().stats();
    assert_eq!(
        (st.radix_nodes, st.radix_slabs, st.frames, st.slab_pages),
        (5, 1, 1, 1)
    );
    assert_eq!(m.nr_free(), 1024 - 200 - 1);
    // Eight more files of one page each (height 0: no node), then eight
    // of 64 pages (one leaf each): 5 + 8 = 13 nodes, two slabs.
    for f in 1..=8 {
        read(&mut m, f, 0);
    }
    assert_eq!(m.kernel_slab().unwrap().stats().radix_nodes, 5);
    for f in 1..=8 {
        read(&mut m, f, 63);
    }
    let st = m.kernel_slab().unwrap().stats();
    assert_eq!((st.radix_nodes, st.radix_slabs, st.frames), (13, 2, 2));
    let slab_frames = m
        .mem
        .pages()
        .iter()
        .filter(|p| p.owner == Owner::Kernel(KernelPage::Slab))
        .count();
    assert_eq!(slab_frames, 2);
    assert_eq!(m.nr_free(), 1024 - 200 - 16 - 2);
}

#[test]
fn growing_a_tree_allocates_the_chain_above_the_old_root() {
    let mut m = machine(1024, ShadowLimit::Unlimited);
    read(&mut m, 0, 0);
    assert_eq!(m.kernel_slab().unwrap().stats().radix_nodes, 0);
    // radix_tree_extend(): 0 moves down a chain of new nodes (1,0), (2,0),
    // (3,0); the insert adds (2,1) and (1,64) on the way to 4096.
    read(&mut m, 0, 4096);
    assert_eq!(m.kernel_slab().unwrap().stats().radix_nodes, 5);
    assert_eq!(
        m.kernel_slab()
            .unwrap()
            .file_nodes(crate::mm::page::FileId(0)),
        5
    );
}

#[test]
fn the_shadow_shrinker_frees_node_objects_and_their_slabs() {
    // 256 frames, a 2000-page file streamed twice: reclaim leaves shadows,
    // and with a limit of 4 shadow-only nodes the shrinker frees the rest.
    let mut m = machine(256, ShadowLimit::Nodes(4));
    for pass in 0..2 {
        for i in 0..2000 {
            read(&mut m, 0, i);
        }
        let st = m.kernel_slab().unwrap().stats();
        let tree = m.file(crate::mm::page::FileId(0)).unwrap().nodes();
        assert_eq!(st.radix_nodes, tree, "pass {pass}");
        assert!(m.nr_shadow_nodes() <= 4);
        assert!(m.stat().workingset_nodereclaim > 0);
    }
    let st = m.kernel_slab().unwrap().stats();
    // At most 256 pages resident: 4 leaves of pages (256 / 64, or 5 when
    // straddling), 4 shadow leaves and the path above them.
    assert!(st.radix_nodes <= 12, "{st:?}");
    assert_eq!(st.frames, st.slab_pages);
}

#[test]
fn unbounded_shadows_grow_the_slab_at_the_page_caches_expense() {
    // With no shadow limit, streaming 20000 pages through 512 frames
    // leaves a node per 64 pages: 313 leaves + 5 level-2 + 1 level-3
    // nodes, 319 objects in 46 slabs, which the page cache gives up.
    let mut m = machine(512, ShadowLimit::Unlimited);
    for i in 0..20_000 {
        m.access(Access::read(0, i));
    }
    m.assert_invariants();
    let st = m.kernel_slab().unwrap().stats();
    assert_eq!((st.radix_nodes, st.radix_slabs, st.frames), (319, 46, 46));
    let cached = m.file(crate::mm::page::FileId(0)).unwrap().nrpages();
    assert_eq!(cached + m.nr_free() + st.frames, 512);
}

#[test]
fn a_machine_with_a_slab_resumes_from_its_image_identically() {
    let mut m = machine(300, ShadowLimit::Kernel315);
    for i in 0..3000u64 {
        m.access(Access::read((i % 4) as u32, i * 37 % 900));
    }
    let bytes = crate::hibernate::encode(&m);
    let back: Machine = ciborium::from_reader(bytes.as_slice()).unwrap();
    back.check().unwrap();
    back.assert_invariants();
    assert_eq!(
        crate::hibernate::encode(&back),
        bytes,
        "the same image, byte for byte"
    );
    let (mut a, mut b) = (m, back);
    for i in 0..3000u64 {
        let x = Access::read((i % 5) as u32, i * 53 % 1200);
        assert_eq!(a.access(x), b.access(x));
    }
    assert_eq!(a.stat(), b.stat());
    assert_eq!(
        a.kernel_slab().unwrap().stats(),
        b.kernel_slab().unwrap().stats()
    );
    assert_eq!(crate::hibernate::encode(&a), crate::hibernate::encode(&b));
}

#[test]
fn a_forged_slab_is_refused_by_the_check() {
    let mut m = machine(256, ShadowLimit::Unlimited);
    for i in 0..100 {
        m.access(Access::read(0, i));
    }
    // The machine's node map loses a node: the check finds the mismatch.
    let ks = m.slab.as_mut().unwrap();
    let held = ks.nodes_mut().get_mut(&crate::mm::page::FileId(0)).unwrap();
    let first = *held.keys().next().unwrap();
    held.remove(&first);
    let e = m.check().unwrap_err();
    assert!(
        e.contains("node objects for 2 nodes, the tree has 3"),
        "{e}"
    );
}

/// The host kernel's own `radix_tree_node` cache (SLUB's sysfs files) has
/// the object size the model computes from 3.15's struct, and, with no
/// debug option on, the same slot: the object plus the free pointer a
/// constructor moves after it.
#[test]
fn the_node_cache_matches_the_host_kernels() {
    let dir = std::path::Path::new("/sys/kernel/slab/radix_tree_node");
    let read = |f: &str| -> Option<u64> {
        std::fs::read_to_string(dir.join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let Some(object_size) = read("object_size") else {
        eprintln!("skipped: the host kernel has no /sys/kernel/slab/radix_tree_node (not SLUB)");
        return;
    };
    assert_eq!(object_size, u64::from(RADIX_TREE_NODE_SIZE));
    let debug = ["red_zone", "poison", "store_user"]
        .iter()
        .any(|f| read(f).unwrap_or(0) != 0);
    if debug {
        eprintln!("skipped the slot size: the host cache runs with slub_debug options");
        return;
    }
    let l = layout(&machine(64, ShadowLimit::Unlimited), 0);
    assert_eq!(read("slab_size"), Some(l.size as u64));
}

#[test]
fn a_slab_frame_charged_twice_is_refused() {
    let mut m = machine(256, ShadowLimit::Unlimited);
    for i in 0..1000 {
        m.access(Access::read(0, i * 64));
    }
    let pfn = m.kernel_slab().unwrap().frames().next().unwrap();
    let ks = m.slab.as_mut().unwrap();
    ks.frames_mut()[0].push(pfn);
    let e = m.check().unwrap_err();
    assert!(
        e.contains(&format!("slab frame {pfn} charged twice")),
        "{e}"
    );
}

/// Damaged images of a machine with a slab are refused or pass the check
/// cleanly; none panics (the hibernation fuzz target's contract, on bytes
/// where the slab's journal and node map sit).
#[test]
fn damaged_slab_images_fail_cleanly() {
    let mut m = machine(48, ShadowLimit::Nodes(2));
    for i in 0..400u64 {
        m.access(Access::read((i % 3) as u32, i * 29 % 500));
    }
    let bytes = crate::hibernate::encode(&m);
    let (mut refused, mut passed) = (0, 0);
    for pos in (0..bytes.len()).step_by(5) {
        let mut b = bytes.clone();
        b[pos] ^= if pos % 2 == 0 { 0x01 } else { 0x40 };
        match ciborium::from_reader::<Machine, _>(b.as_slice()) {
            Ok(back) if back.check().is_ok() => {
                back.assert_invariants();
                passed += 1;
            }
            _ => refused += 1,
        }
    }
    assert!(
        refused > 0 && passed > 0,
        "{refused} refused, {passed} passed"
    );
}

fn pc_machine(pages: u64) -> Machine {
    let mut cfg = MachineConfig::new(pages, LruBalance::Workingset315);
    cfg.slab = true;
    cfg.page_cgroup = true;
    cfg.swap_pages = pages;
    Machine::new(cfg).unwrap()
}

#[test]
fn page_cgroups_need_the_slab() {
    let mut cfg = MachineConfig::new(64, LruBalance::Classic);
    cfg.page_cgroup = true;
    let Err(e) = Machine::new(cfg) else {
        panic!("a machine with page_cgroups and no slab")
    };
    assert!(e.contains("need the slab"), "{e}");
}

#[test]
fn each_charged_page_has_a_page_cgroup_until_uncharged() {
    let mut m = pc_machine(1024);
    let l = layout(&m, 1);
    // 2.6.25's struct page_cgroup is 40 bytes; 2.6.24 SLUB packs 102 to a
    // 4 KiB slab (16 bytes left over).
    assert_eq!((l.size, l.objects, l.order), (40, 102, 0));
    for i in 0..200 {
        read(&mut m, 0, i);
    }
    let st = m.kernel_slab().unwrap().stats();
    assert_eq!((st.page_cgroups, st.page_cgroup_slabs), (200, 2));
    // 2 page_cgroup slabs and 1 radix_tree_node slab (5 nodes).
    assert_eq!((st.radix_nodes, st.frames), (5, 3));
    assert_eq!(m.nr_free(), 1024 - 200 - 3);
    // Task 7 maps 300 anonymous pages, then is killed: their page_cgroups
    // go, and the slabs they emptied with them.
    for v in 0..300 {
        m.access(Access::anon(7, v));
    }
    m.assert_invariants();
    assert_eq!(m.kernel_slab().unwrap().stats().page_cgroups, 500);
    m.kill_task(crate::mm::page::TaskId(7));
    m.assert_invariants();
    let st = m.kernel_slab().unwrap().stats();
    assert_eq!(st.page_cgroups, 200);
    // Objects 200..499 went to slab 1 (200..203) and slabs 2, 3 and 4
    // (from 204, 102 each): those three held only anonymous pages'
    // objects and are empty now. Slab 4 is the CPU's active slab; 2 and 3
    // stay on the partial list, which holds fewer than min_partial (5)
    // slabs (the later kernels' rule klab-slab keeps in every era, see its
    // slub module header); kmem_cache_shrink() would free them.
    assert_eq!(st.page_cgroup_slabs, 5);
}

#[test]
fn reclaim_frees_page_cgroups_with_the_pages() {
    let mut m = pc_machine(256);
    for i in 0..3000 {
        m.access(Access::read((i % 3) as u32, i * 7 % 1000));
        m.access(Access::anon(1 + (i % 2) as u32, i % 120));
    }
    m.assert_invariants();
    let st = m.kernel_slab().unwrap().stats();
    let charged = m
        .mem
        .pages()
        .iter()
        .filter(|p| matches!(p.owner, Owner::File { .. } | Owner::Anon { .. }))
        .count() as u64;
    assert_eq!(st.page_cgroups, charged);
    assert!(m.stat().pgsteal > 0);
    let bytes = crate::hibernate::encode(&m);
    let back: Machine = ciborium::from_reader(bytes.as_slice()).unwrap();
    back.check().unwrap();
    assert_eq!(crate::hibernate::encode(&back), bytes);
}

#[test]
fn shrinking_frees_the_empty_slabs_and_their_frames() {
    let mut m = pc_machine(1024);
    for v in 0..500 {
        m.access(Access::anon(3, v));
    }
    m.kill_task(crate::mm::page::TaskId(3));
    let before = m.kernel_slab().unwrap().stats();
    // 500 objects filled slabs 0..=4; all are empty now, slab 4 is the
    // CPU's, the other four sit on the partial list (fewer than 5).
    assert_eq!(
        (before.page_cgroups, before.page_cgroup_slabs, before.frames),
        (0, 5, 5)
    );
    // kmem_cache_shrink() flushes the CPU slab first, then frees all five.
    assert_eq!(m.slab_shrink(), 5);
    let after = m.kernel_slab().unwrap().stats();
    assert_eq!((after.page_cgroup_slabs, after.frames), (0, 0));
    assert_eq!(m.nr_free(), 1024);
    m.assert_invariants();
}
