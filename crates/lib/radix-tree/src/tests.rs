//! Unit tests: each pins one rule of lib/radix-tree.c or of the seed page
//! with exact numbers.

use super::*;
use crate::node::Slot;

type Tree = RadixTree<u64>;

/// A tree with `keys` inserted (item = key), invariants checked after each
/// insert (after the last only, for big sets).
#[track_caller]
fn tree_of(keys: &[u64]) -> Tree {
    let mut t = Tree::new();
    for &k in keys {
        t.insert(k, k).unwrap();
        if keys.len() <= 500 {
            t.assert_invariants();
        }
    }
    t.assert_invariants();
    t
}

/// Everything observable about a tree: entries, height, nodes, memory, root
/// tags.
type Snapshot = (
    Vec<(u64, Entry<u64>)>,
    u32,
    usize,
    MemoryUsage,
    [bool; MAX_TAGS],
);

/// A [`Snapshot`], to show an operation changed nothing.
fn snapshot(t: &Tree) -> Snapshot {
    (
        t.iter().map(|(i, e)| (i, e.cloned())).collect(),
        t.height(),
        t.nodes(),
        t.memory(),
        Tag::ALL.map(|tag| t.tagged(tag)),
    )
}

#[test]
fn maxindex_per_height_is_two_to_the_six_h_minus_one() {
    assert_eq!(Tree::maxindex(0), 0);
    assert_eq!(Tree::maxindex(1), 63);
    assert_eq!(Tree::maxindex(2), 4095);
    assert_eq!(Tree::maxindex(3), 262_143);
    assert_eq!(Tree::maxindex(10), (1 << 60) - 1);
    assert_eq!(Tree::maxindex(11), u64::MAX);
    assert_eq!(Tree::MAX_PATH, 11);
    assert_eq!(Tree::MAP_SIZE, 64);
}

#[test]
fn height_and_nodes_for_one_key_follow_its_magnitude() {
    // One key k > 0 in an empty tree: the height is the least h with
    // maxindex(h) >= k, and the tree is one branch of h nodes.
    for (key, height) in [
        (0, 0),
        (1, 1),
        (63, 1),
        (64, 2),
        (4095, 2),
        (4096, 3),
        (262_143, 3),
        (262_144, 4),
        ((1 << 60) - 1, 10),
        (1 << 60, 11),
        (u64::MAX, 11),
    ] {
        let t = tree_of(&[key]);
        assert_eq!(t.height(), height, "key {key}");
        assert_eq!(t.nodes(), height as usize, "key {key}");
        assert_eq!(Tree::height_for(key), height);
        assert_eq!(t.lookup(key), Some(Entry::Item(&key)));
    }
}

#[test]
fn one_item_at_index_zero_needs_no_node() {
    let t = tree_of(&[0]);
    assert_eq!((t.height(), t.nodes(), t.memory().bytes), (0, 0, 0));
    assert_eq!(t.lookup(0), Some(Entry::Item(&0)));
    assert_eq!(t.lookup(1), None);
}

#[test]
fn dense_keys_fill_whole_leaves() {
    // 0..4096: 64 full leaves under one root node.
    let t = tree_of(&(0..4096).collect::<Vec<_>>());
    assert_eq!((t.height(), t.nodes()), (2, 65));
    // One more key opens a third level: new root, a branch of two nodes.
    let mut t = t;
    t.insert(4096, 4096).unwrap();
    assert_eq!((t.height(), t.nodes()), (3, 68));
    t.assert_invariants();
}

#[test]
fn insert_refuses_an_existing_key_with_eexist_and_changes_nothing() {
    for keys in [&[0u64][..], &[5], &[0, 70, 4096, 99_999]] {
        let mut t = tree_of(keys);
        t.tag_set(keys[0], Tag::T1).unwrap();
        let before = snapshot(&t);
        for &k in keys {
            let err = t.insert(k, 1234).unwrap_err();
            assert_eq!(err.error, Error::Exists { index: k });
            assert_eq!(err.error.errno(), EEXIST);
            assert_eq!(err.entry, Entry::Item(1234));
            let err = t.insert_value(k, 7).unwrap_err();
            assert_eq!(err.error.errno(), 17);
            assert_eq!(snapshot(&t), before);
            t.assert_invariants();
        }
    }
}

#[test]
fn extension_puts_the_old_root_in_slot_zero() {
    // Key 0 at height 0, then 64: two new levels above the item (slot 0 all
    // the way) plus a leaf for 64 in the root's slot 1.
    let t = tree_of(&[0, 64]);
    assert_eq!((t.height(), t.nodes()), (2, 3));
    let Slot::Node(top) = &t.root else { panic!() };
    assert_eq!(top.present, 0b11);
    // 0 then 4096: two levels over the item, and a branch of two for 4096.
    let t = tree_of(&[0, 4096]);
    assert_eq!((t.height(), t.nodes()), (3, 5));
}

#[test]
fn worst_case_insert_needs_two_branches_of_max_path() {
    // The case RADIX_TREE_PRELOAD_SIZE is sized for: height 0 holding index
    // 0, then u64::MAX: 11 levels over index 0 and 10 more nodes to u64::MAX.
    let t = tree_of(&[0, u64::MAX]);
    assert_eq!((t.height(), t.nodes()), (11, 21));
    assert_eq!(Tree::PRELOAD_SIZE, 21);
}

#[test]
fn preload_guarantees_the_next_insert_even_when_the_allocator_refuses() {
    let mut t = tree_of(&[0]);
    t.preload().unwrap();
    assert_eq!(t.preloaded(), 21);
    // The allocator now refuses every node: nothing beyond what is held.
    t.set_node_limit(Some(t.nodes() + t.preloaded()));
    t.insert(u64::MAX, 1).unwrap();
    assert_eq!((t.nodes(), t.preloaded()), (21, 0));
    t.assert_invariants();
    // Without a reserve the next insert that needs a node fails: 1 << 20
    // leaves index 0's branch at shift 18 (slot 4) and needs nodes at
    // shifts 12, 6 and 0.
    let err = t.insert(1 << 20, 2).unwrap_err();
    assert_eq!(
        err.error,
        Error::NoMemory {
            needed: 3,
            available: 0
        }
    );
    assert_eq!(err.error.errno(), ENOMEM);
    // ...but one into an existing leaf needs none.
    t.insert(1, 3).unwrap();
    t.assert_invariants();
}

#[test]
fn a_2_6_24_sized_reserve_of_max_path_nodes_is_too_small() {
    // 2.6.24 reserved RADIX_TREE_MAX_PATH = 11 nodes per CPU. Give the
    // allocator room for exactly those and no more.
    let mut t = tree_of(&[0]);
    t.set_node_limit(Some(11));
    let err = t.preload().unwrap_err();
    assert_eq!(
        err,
        Error::NoMemory {
            needed: 10,
            available: 0
        }
    );
    assert_eq!(t.preloaded(), 11);
    let before = snapshot(&t);
    let err = t.insert(u64::MAX, 1).unwrap_err();
    assert_eq!(
        err.error,
        Error::NoMemory {
            needed: 21,
            available: 11
        }
    );
    // The failed insert changed nothing: no extension nodes left behind.
    assert_eq!(snapshot(&t), before);
    assert_eq!(t.preloaded(), 11);
    t.assert_invariants();
}

#[test]
fn enomem_leaves_the_tree_unchanged() {
    let mut t = tree_of(&[1, 2, 3, 200]);
    t.tag_set(200, Tag::T0).unwrap();
    t.set_node_limit(Some(t.nodes()));
    let before = snapshot(&t);
    for k in [64 * 64, 1000, u64::MAX] {
        let err = t.insert(k, 9).unwrap_err();
        assert_eq!(err.error.errno(), ENOMEM, "key {k}");
        assert_eq!(snapshot(&t), before);
        t.assert_invariants();
    }
    // An empty tree with no memory stays empty at height 0 (the kernel sets
    // the height before it fails to allocate).
    let mut e = Tree::new();
    e.set_node_limit(Some(0));
    assert_eq!(e.insert(5, 5).unwrap_err().error.errno(), ENOMEM);
    assert_eq!((e.height(), e.nodes()), (0, 0));
    e.insert(0, 0).unwrap();
    e.assert_invariants();
}

#[test]
fn delete_returns_the_entry_and_frees_every_node() {
    let keys: Vec<u64> = (0..300).chain([4096, 1 << 40, u64::MAX]).collect();
    let mut t = tree_of(&keys);
    assert!(t.memory().bytes > 0);
    for &k in keys.iter().rev() {
        assert_eq!(t.delete(k), Some(Entry::Item(k)));
        assert_eq!(t.delete(k), None);
        t.assert_invariants();
    }
    assert!(t.is_empty());
    assert_eq!((t.height(), t.nodes(), t.memory().bytes), (0, 0, 0));
}

#[test]
fn delete_shrinks_to_the_minimal_height() {
    // 0 and 4096 (height 3, 5 nodes): deleting 4096 leaves index 0 alone,
    // which needs no node at all.
    let mut t = tree_of(&[0, 4096]);
    t.delete(4096);
    assert_eq!((t.height(), t.nodes()), (0, 0));
    assert_eq!(t.lookup(0), Some(Entry::Item(&0)));
    // 1 and 4096: back to one leaf.
    let mut t = tree_of(&[1, 4096]);
    t.delete(4096);
    assert_eq!((t.height(), t.nodes()), (1, 1));
    // Deleting the low key leaves a deep branch: no shrink (4096 is not in
    // slot 0 of the root).
    let mut t = tree_of(&[1, 4096]);
    t.delete(1);
    assert_eq!((t.height(), t.nodes()), (3, 3));
    t.assert_invariants();
}

#[test]
fn tags_propagate_to_every_ancestor_and_the_root() {
    let mut t = tree_of(&(0..=5000).collect::<Vec<_>>());
    assert_eq!(t.height(), 3);
    // 4100 = 1*4096 + 0*64 + 4: root slot 1, middle slot 0, leaf slot 4.
    assert_eq!(t.tag_set(4100, Tag::T0), Ok(Entry::Item(&4100)));
    let Slot::Node(top) = &t.root else { panic!() };
    assert_eq!(top.tags[0], 1 << 1);
    let Slot::Node(mid) = &top.slots[1] else {
        panic!()
    };
    assert_eq!(mid.tags[0], 1 << 0);
    let Slot::Node(leaf) = &mid.slots[0] else {
        panic!()
    };
    assert_eq!(leaf.tags[0], 1 << 4);
    assert_eq!((top.tags[1], top.tags[2]), (0, 0));
    assert!(t.tagged(Tag::T0) && !t.tagged(Tag::T1) && !t.tagged(Tag::T2));
    assert!(t.tag_get(4100, Tag::T0) && !t.tag_get(4101, Tag::T0));
    t.assert_invariants();
}

#[test]
fn tags_clear_upward_only_when_the_last_tagged_child_clears() {
    let mut t = tree_of(&(0..=5000).collect::<Vec<_>>());
    t.tag_set(4100, Tag::T2).unwrap();
    t.tag_set(4101, Tag::T2).unwrap();
    t.tag_set(10, Tag::T2).unwrap();
    let top_tags = |t: &Tree| match &t.root {
        Slot::Node(top) => top.tags[2],
        _ => panic!(),
    };
    assert_eq!(top_tags(&t), 0b11);
    // 4101 still tagged in the same leaf: ancestors keep their bits.
    assert_eq!(t.tag_clear(4100, Tag::T2), Some(Entry::Item(&4100)));
    assert_eq!(top_tags(&t), 0b11);
    // Last tagged entry under root slot 1.
    t.tag_clear(4101, Tag::T2);
    assert_eq!(top_tags(&t), 0b01);
    assert!(t.tagged(Tag::T2));
    t.tag_clear(10, Tag::T2);
    assert_eq!(top_tags(&t), 0);
    assert!(!t.tagged(Tag::T2));
    // Clearing an absent index or an untagged entry changes nothing.
    assert_eq!(t.tag_clear(1 << 30, Tag::T2), None);
    assert_eq!(t.tag_clear(7, Tag::T2), Some(Entry::Item(&7)));
    t.assert_invariants();
}

#[test]
fn tag_set_on_a_missing_key_is_an_error_and_changes_nothing() {
    let mut t = tree_of(&[0, 100]);
    let before = snapshot(&t);
    for k in [1, 99, 101, 1 << 33] {
        let err = t.tag_set(k, Tag::T0).unwrap_err();
        assert_eq!(err, Error::NotFound { index: k });
        assert_eq!(err.errno(), ENOENT);
    }
    assert_eq!(snapshot(&t), before);
    assert!(!t.tagged(Tag::T0));
    let mut e = Tree::new();
    assert!(e.tag_set(0, Tag::T0).is_err());
    assert!(!e.tagged(Tag::T0));
}

#[test]
fn only_three_tags_exist() {
    assert_eq!(MAX_TAGS, 3);
    assert_eq!(Tag::new(2), Some(Tag::T2));
    assert_eq!(Tag::new(3), None);
}

#[test]
fn tags_survive_extension_and_contraction() {
    // tag_check.c's extend_checks and contract_checks.
    let mut t = tree_of(&[0]);
    t.tag_set(0, Tag::T0).unwrap();
    assert!(t.tagged(Tag::T0) && t.tag_get(0, Tag::T0));
    t.insert(1 << 20, 1).unwrap();
    assert_eq!(t.height(), 4);
    assert!(t.tag_get(0, Tag::T0) && !t.tag_get(1 << 20, Tag::T0));
    let mut out = Vec::new();
    assert_eq!(t.gang_lookup_tag(0, 10, Tag::T0, &mut out), 1);
    assert_eq!(out, [(0, Entry::Item(&0))]);
    t.assert_invariants();
    t.delete(1 << 20);
    assert_eq!(t.height(), 0);
    assert!(t.tagged(Tag::T0) && t.tag_get(0, Tag::T0));
    t.assert_invariants();
    t.delete(0);
    assert!(!t.tagged(Tag::T0));
}

#[test]
fn delete_clears_the_entrys_tags() {
    let mut t = tree_of(&[5, 6, 4000]);
    t.tag_set(4000, Tag::T1).unwrap();
    t.tag_set(5, Tag::T0).unwrap();
    t.delete(4000);
    assert!(!t.tagged(Tag::T1) && t.tagged(Tag::T0));
    t.assert_invariants();
    // Re-inserting does not resurrect a tag.
    t.insert(4000, 1).unwrap();
    assert!(!t.tag_get(4000, Tag::T1));
    t.assert_invariants();
}

#[test]
fn value_entries_carry_63_bits_and_are_told_apart() {
    let mut t = tree_of(&[1, 3]);
    t.insert_value(2, VALUE_MAX).unwrap();
    t.insert_value(0, 0).unwrap();
    assert_eq!(VALUE_BITS, 63);
    let err = t.insert_value(4, VALUE_MAX + 1).unwrap_err();
    assert_eq!(err.error, Error::InvalidValue { value: 1 << 63 });
    assert_eq!(err.error.errno(), EINVAL);
    assert!(!t.contains(4));
    assert_eq!((t.nr_items(), t.nr_values(), t.len()), (2, 2, 4));
    let mut out = Vec::new();
    t.gang_lookup(0, 10, &mut out);
    let kinds: Vec<(u64, bool)> = out.iter().map(|(i, e)| (*i, e.is_value())).collect();
    assert_eq!(kinds, [(0, true), (1, false), (2, true), (3, false)]);
    assert_eq!(out[2].1.value(), Some(VALUE_MAX));
    assert_eq!(t.get(2), None);
    let Slot::Node(leaf) = &t.root else { panic!() };
    assert_eq!(leaf.nr_values, 2);
    t.assert_invariants();
}

#[test]
fn a_value_entry_at_index_zero_survives_extension() {
    let mut t = Tree::new();
    t.insert_value(0, 42).unwrap();
    assert_eq!(t.nodes(), 0);
    t.insert(300, 1).unwrap();
    assert_eq!(t.lookup(0), Some(Entry::Value(42)));
    t.assert_invariants();
    t.delete(300);
    assert_eq!((t.height(), t.lookup(0)), (0, Some(Entry::Value(42))));
    t.assert_invariants();
}

#[test]
fn lookup_slot_changes_an_entry_but_never_creates_one() {
    let mut t = tree_of(&[0, 10, 4096]);
    t.tag_set(10, Tag::T0).unwrap();
    let before = snapshot(&t);
    assert!(t.lookup_slot(11).is_none());
    assert!(t.lookup_slot(1 << 50).is_none());
    assert_eq!(snapshot(&t), before);
    *t.get_mut(10).unwrap() = 1010;
    assert_eq!(t.get(10), Some(&1010));
    // Replace the item with a shadow entry: tags stay, counts follow.
    let mut slot = t.lookup_slot(10).unwrap();
    assert_eq!(slot.get(), Entry::Item(&1010));
    assert_eq!(slot.replace(Entry::Value(5)), Ok(Entry::Item(1010)));
    assert!(slot.item_mut().is_none());
    assert_eq!((t.nr_items(), t.nr_values()), (2, 1));
    assert!(t.tag_get(10, Tag::T0));
    t.assert_invariants();
    // And back (a refault), at height 0 too.
    assert_eq!(
        t.lookup_slot(10).unwrap().replace(Entry::Item(7)),
        Ok(Entry::Value(5))
    );
    let mut z = tree_of(&[0]);
    assert_eq!(
        z.lookup_slot(0).unwrap().replace(Entry::Value(1)),
        Ok(Entry::Item(0))
    );
    assert!(z.lookup_slot(1).is_none());
    let err = z
        .lookup_slot(0)
        .unwrap()
        .replace(Entry::Value(u64::MAX))
        .unwrap_err();
    assert_eq!(err.entry, Entry::Value(u64::MAX));
    z.assert_invariants();
    t.assert_invariants();
}

#[test]
fn gang_lookup_returns_entries_in_order_from_first_index() {
    let keys = [
        2u64,
        63,
        64,
        65,
        4000,
        4096,
        1 << 30,
        u64::MAX - 1,
        u64::MAX,
    ];
    let t = tree_of(&keys);
    let mut out = Vec::new();
    assert_eq!(t.gang_lookup(0, 100, &mut out), keys.len());
    assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), keys);
    for (start, max, want) in [
        (3, 2, &[63u64, 64][..]),
        (64, 3, &[64, 65, 4000]),
        (4001, 1, &[4096]),
        ((1 << 30) + 1, 5, &[u64::MAX - 1, u64::MAX]),
        (u64::MAX, 5, &[u64::MAX]),
    ] {
        out.clear();
        let n = t.gang_lookup(start, max, &mut out);
        assert_eq!(n, want.len());
        assert_eq!(
            out.iter().map(|r| r.0).collect::<Vec<_>>(),
            want,
            "from {start}"
        );
    }
    out.clear();
    assert_eq!(t.gang_lookup(0, 0, &mut out), 0);
    // Results are appended.
    t.gang_lookup(4096, 1, &mut out);
    t.gang_lookup(4097, 1, &mut out);
    assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), [4096, 1 << 30]);
}

#[test]
fn gang_lookup_of_a_height_zero_tree_answers_only_from_zero() {
    let t = tree_of(&[0]);
    let mut out = Vec::new();
    assert_eq!(t.gang_lookup(1, 5, &mut out), 0);
    assert_eq!(t.gang_lookup(0, 5, &mut out), 1);
    assert_eq!(t.gang_lookup_tag(0, 5, Tag::T0, &mut out), 0);
}

#[test]
fn gang_lookup_tag_skips_untagged_subtrees() {
    let mut t = tree_of(&(0..10_000).collect::<Vec<_>>());
    for k in [7, 4095, 9000] {
        t.tag_set(k, Tag::T1).unwrap();
    }
    let mut out = Vec::new();
    let mut cost = WalkCost::default();
    assert_eq!(
        t.gang_lookup_tag_counted(0, 10, Tag::T1, &mut out, &mut cost),
        3
    );
    assert_eq!(out.iter().map(|r| r.0).collect::<Vec<_>>(), [7, 4095, 9000]);
    // Height 3: root, then one middle node and one leaf per tagged key,
    // except that 7 and 4095 share the middle node under root slot 0.
    assert_eq!(
        cost,
        WalkCost {
            nodes: 1 + 2 + 3,
            slots: 3
        }
    );
    let mut all = WalkCost::default();
    out.clear();
    t.gang_lookup_counted(0, usize::MAX, &mut out, &mut all);
    assert_eq!(
        all,
        WalkCost {
            nodes: t.nodes() as u64,
            slots: 10_000
        }
    );
}

#[test]
fn iterators_match_gang_lookups() {
    let keys: Vec<u64> = (0..200).map(|i| i * i * 37).collect();
    let mut t = tree_of(&keys);
    for &k in keys.iter().step_by(3) {
        t.tag_set(k, Tag::T2).unwrap();
    }
    for first in [0, 1, 37, 5000, 1_000_000, u64::MAX] {
        let mut out = Vec::new();
        t.gang_lookup(first, usize::MAX, &mut out);
        assert_eq!(t.range(first).collect::<Vec<_>>(), out);
        out.clear();
        t.gang_lookup_tag(first, usize::MAX, Tag::T2, &mut out);
        assert_eq!(t.range_tagged(first, Tag::T2).collect::<Vec<_>>(), out);
    }
    assert_eq!(t.iter().count(), 200);
    assert_eq!((&t).into_iter().map(|r| r.0).collect::<Vec<_>>(), keys);
    assert_eq!(t.iter_tagged(Tag::T0).count(), 0);
}

#[test]
fn next_hole_scans_forward_and_stops_at_the_wrap() {
    let t = tree_of(&[5, 6, 7, 9, u64::MAX - 1, u64::MAX]);
    assert_eq!(t.next_hole(5, 10), 8);
    assert_eq!(t.next_hole(4, 10), 4);
    assert_eq!(t.next_hole(5, 2), 7); // window [5, 7) full: 7 - 5 >= 2
    assert_eq!(t.next_hole(u64::MAX - 1, 10), 0);
}

#[test]
fn memory_is_nodes_times_node_size_and_all_returned_after_delete() {
    let size = Tree::node_size_bytes();
    // 64 slots of 16 bytes, 4 bitmaps, the values count (padded).
    assert_eq!(size, 64 * 16 + 4 * 8 + 8);
    let mut t = tree_of(&(0..4096).collect::<Vec<_>>());
    let m = t.memory();
    assert_eq!(
        (m.nodes, m.preloaded, m.node_size_bytes, m.bytes),
        (65, 0, size, 65 * size)
    );
    t.preload().unwrap();
    let m = t.memory();
    assert_eq!(m.bytes, (65 + 21) * size + 21 * 8);
    for k in 0..4096 {
        t.delete(k);
    }
    assert_eq!(t.memory().bytes, 21 * size + 21 * 8);
    t.release_preload();
    assert_eq!(t.memory().bytes, 0);
}

#[test]
fn range_tag_if_tagged_copies_tags_within_the_range() {
    let mut t = tree_of(&(0..200).collect::<Vec<_>>());
    for k in [3, 50, 64, 150, 199] {
        t.tag_set(k, Tag::T0).unwrap();
    }
    // Up to 2 in [10, 190]: 50 and 64; resume after 64.
    assert_eq!(
        t.range_tag_if_tagged(10, 190, 2, Tag::T0, Tag::T2),
        (2, Some(65))
    );
    assert_eq!(
        t.iter_tagged(Tag::T2).map(|r| r.0).collect::<Vec<_>>(),
        [50, 64]
    );
    // The rest of the range: 150; resume after the range.
    assert_eq!(
        t.range_tag_if_tagged(65, 190, 10, Tag::T0, Tag::T2),
        (1, Some(191))
    );
    assert_eq!(
        t.range_tag_if_tagged(0, u64::MAX, 0, Tag::T0, Tag::T2),
        (0, Some(0))
    );
    // The last index clamps to maxindex: resume after it.
    assert_eq!(
        t.range_tag_if_tagged(151, u64::MAX, 10, Tag::T0, Tag::T1),
        (1, Some(4096))
    );
    t.assert_invariants();
}

#[test]
fn regression2_root_tag_set_only_when_something_was_tagged() {
    // tools/testing/radix-tree/regression2.c: 64 items, only the last
    // dirty; copy dirty to towrite over [0, 62] (nothing to copy); grow the
    // tree; clear the dirty tag; delete 0..=63; look up towrite entries.
    // With the bug, the root's towrite bit was set in step 1, copied into
    // the new root node by the extension, and step 5 looped forever.
    let (dirty, towrite) = (Tag::T0, Tag::T2);
    let mut t = tree_of(&(0..64).collect::<Vec<_>>());
    t.tag_set(63, dirty).unwrap();
    assert_eq!(
        t.range_tag_if_tagged(0, 62, 1, dirty, towrite),
        (0, Some(63))
    );
    assert!(!t.tagged(towrite));
    t.insert(64, 64).unwrap();
    t.assert_invariants();
    t.tag_clear(63, dirty);
    for k in (0..64).rev() {
        t.delete(k);
        t.assert_invariants();
    }
    let mut out = Vec::new();
    assert_eq!(t.gang_lookup_tag(1, 62, towrite, &mut out), 0);
    t.delete(64);
    assert_eq!(t.nodes(), 0);
}

#[test]
fn small_shift_trees_follow_the_same_rules() {
    // The kernel's user-space harness builds with RADIX_TREE_MAP_SHIFT 3.
    type Small = RadixTree<u64, 3>;
    assert_eq!(
        (Small::MAP_SIZE, Small::MAX_PATH, Small::PRELOAD_SIZE),
        (8, 22, 43)
    );
    let mut t = Small::new();
    for (key, height) in [(7, 1), (8, 2), (63, 2), (64, 3), (u64::MAX, 22)] {
        assert_eq!(Small::height_for(key), height);
    }
    t.insert(0, 0).unwrap();
    t.insert(u64::MAX, 1).unwrap();
    assert_eq!((t.height(), t.nodes()), (22, 43));
    t.assert_invariants();
    t.delete(u64::MAX);
    assert_eq!((t.height(), t.nodes()), (0, 0));
    t.assert_invariants();
}

#[test]
fn debug_prints_entries_as_a_map() {
    let mut t = tree_of(&[1]);
    t.insert_value(2, 3).unwrap();
    assert_eq!(format!("{t:?}"), "{1: Item(1), 2: Value(3)}");
}
