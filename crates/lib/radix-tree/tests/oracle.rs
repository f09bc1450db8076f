//! Property test: random sequences of every operation against a `BTreeMap`
//! oracle, with `assert_invariants()` after each step. The kernel's
//! tools/testing/radix-tree does the same against a shadow array
//! (tag_check.c's thrash_tags, dynamic_height_check); this runs it for the
//! default shift (6) and the harness's shift (3), whose deep trees exercise
//! extension and shrinking with few keys.

// Safe code of the single-threaded tree: not run under Miri, which checks
// the unsafe `rcu` module (its unit tests and tests/rcu_stress.rs).
#![cfg(not(miri))]

use std::collections::BTreeMap;

use klab_radix_tree::{EEXIST, EINVAL, ENOMEM, Entry, Error, MAX_TAGS, RadixTree, Tag, VALUE_MAX};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Insert(u64, u32),
    InsertValue(u64, u64),
    Delete(u64),
    Lookup(u64),
    TagSet(u64, usize),
    TagClear(u64, usize),
    TagGet(u64, usize),
    Gang(u64, usize),
    GangTag(u64, usize, usize),
    Replace(u64, Option<u32>, u64),
    Bump(u64),
    RangeTag(u64, u64, usize, usize, usize),
    Range(u64),
    NextHole(u64, u64),
    Preload,
    Limit(Option<usize>),
}

/// Keys that stress every height: small, around level boundaries, anywhere.
fn key() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0..130u64,
        2 => (0..12u32, 0..4u64).prop_map(|(level, d)| (1u64 << (6 * level.min(10))).wrapping_sub(2).wrapping_add(d)),
        1 => any::<u64>(),
        1 => Just(u64::MAX),
        1 => Just(0u64),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let tag = 0..MAX_TAGS;
    prop_oneof![
        8 => (key(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
        2 => (key(), prop_oneof![0..1000u64, Just(VALUE_MAX), Just(VALUE_MAX + 1)])
            .prop_map(|(k, v)| Op::InsertValue(k, v)),
        5 => key().prop_map(Op::Delete),
        2 => key().prop_map(Op::Lookup),
        3 => (key(), tag.clone()).prop_map(|(k, t)| Op::TagSet(k, t)),
        2 => (key(), tag.clone()).prop_map(|(k, t)| Op::TagClear(k, t)),
        1 => (key(), tag.clone()).prop_map(|(k, t)| Op::TagGet(k, t)),
        2 => (key(), 0..70usize).prop_map(|(k, n)| Op::Gang(k, n)),
        2 => (key(), 0..70usize, tag.clone()).prop_map(|(k, n, t)| Op::GangTag(k, n, t)),
        1 => (key(), proptest::option::of(any::<u32>()), 0..1000u64)
            .prop_map(|(k, i, v)| Op::Replace(k, i, v)),
        1 => key().prop_map(Op::Bump),
        1 => (key(), key(), 0..5usize, tag.clone(), tag)
            .prop_map(|(a, b, n, f, s)| Op::RangeTag(a.min(b), a.max(b), n, f, s)),
        1 => key().prop_map(Op::Range),
        1 => (key(), 0..5u64).prop_map(|(k, n)| Op::NextHole(k, n)),
        1 => Just(Op::Preload),
        1 => proptest::option::of(0..40usize).prop_map(Op::Limit),
    ]
}

type Oracle = BTreeMap<u64, (Entry<u32>, [bool; MAX_TAGS])>;

fn tag(t: usize) -> Tag {
    Tag::new(t).unwrap()
}

fn expect_gang<'a>(
    it: impl Iterator<Item = (&'a u64, &'a (Entry<u32>, [bool; MAX_TAGS]))>,
    max: usize,
) -> Vec<(u64, Entry<u32>)> {
    it.take(max).map(|(k, (e, _))| (*k, *e)).collect()
}

fn run<const SHIFT: u32>(ops: &[Op]) {
    let mut t = RadixTree::<u32, SHIFT>::new();
    let mut o = Oracle::new();
    let mut preloaded_guarantee = false;
    for op in ops {
        match *op {
            Op::Insert(k, v) => {
                check_insert(&mut t, &mut o, k, Entry::Item(v), &mut preloaded_guarantee)
            }
            Op::InsertValue(k, v) => {
                check_insert(&mut t, &mut o, k, Entry::Value(v), &mut preloaded_guarantee)
            }
            Op::Delete(k) => {
                let want = o.remove(&k).map(|(e, _)| e);
                assert_eq!(t.delete(k), want, "delete {k}");
            }
            Op::Lookup(k) => {
                assert_eq!(
                    t.lookup(k).map(Entry::cloned),
                    o.get(&k).map(|(e, _)| *e),
                    "lookup {k}"
                );
            }
            Op::TagSet(k, n) => match o.get_mut(&k) {
                Some((e, tags)) => {
                    assert_eq!(t.tag_set(k, tag(n)).map(Entry::cloned), Ok(*e));
                    tags[n] = true;
                }
                None => assert_eq!(t.tag_set(k, tag(n)), Err(Error::NotFound { index: k })),
            },
            Op::TagClear(k, n) => {
                let want = o.get_mut(&k).map(|(e, tags)| {
                    tags[n] = false;
                    *e
                });
                assert_eq!(
                    t.tag_clear(k, tag(n)).map(Entry::cloned),
                    want,
                    "tag_clear {k}"
                );
            }
            Op::TagGet(k, n) => {
                assert_eq!(
                    t.tag_get(k, tag(n)),
                    o.get(&k).is_some_and(|(_, tags)| tags[n])
                );
            }
            Op::Gang(k, n) => {
                let mut out = Vec::new();
                let got = t.gang_lookup(k, n, &mut out);
                let out: Vec<_> = out.into_iter().map(|(i, e)| (i, e.cloned())).collect();
                assert_eq!(out, expect_gang(o.range(k..), n), "gang {k} {n}");
                assert_eq!(got, out.len());
            }
            Op::GangTag(k, n, tg) => {
                let mut out = Vec::new();
                t.gang_lookup_tag(k, n, tag(tg), &mut out);
                let out: Vec<_> = out.into_iter().map(|(i, e)| (i, e.cloned())).collect();
                let want = expect_gang(o.range(k..).filter(|(_, (_, tags))| tags[tg]), n);
                assert_eq!(out, want, "gang_tag {k} {n} {tg}");
            }
            Op::Replace(k, item, v) => {
                let new = item.map_or(Entry::Value(v), Entry::Item);
                match (t.lookup_slot(k), o.get_mut(&k)) {
                    (Some(mut slot), Some((e, _))) => {
                        assert_eq!(slot.replace(new), Ok(*e));
                        *e = new;
                    }
                    (None, None) => {}
                    (got, want) => panic!(
                        "lookup_slot {k}: {:?} vs {want:?}",
                        got.map(|s| s.get().cloned())
                    ),
                }
            }
            Op::Bump(k) => {
                let want = o.get_mut(&k).and_then(|(e, _)| match e {
                    Entry::Item(i) => {
                        *i = i.wrapping_add(1);
                        Some(*i)
                    }
                    Entry::Value(_) => None,
                });
                let got = t.get_mut(k).map(|i| {
                    *i = i.wrapping_add(1);
                    *i
                });
                assert_eq!(got, want, "get_mut {k}");
            }
            Op::RangeTag(first, last, nr, from, to) => {
                let last_c = last.min(RadixTree::<u32, SHIFT>::maxindex(t.height()));
                let picked: Vec<u64> = if nr == 0 || first > last_c {
                    Vec::new()
                } else {
                    o.range(first..=last_c)
                        .filter(|(_, (_, tags))| tags[from])
                        .map(|(k, _)| *k)
                        .take(nr)
                        .collect()
                };
                for k in &picked {
                    o.get_mut(k).unwrap().1[to] = true;
                }
                let (n, _) = t.range_tag_if_tagged(first, last, nr, tag(from), tag(to));
                assert_eq!(n, picked.len(), "range_tag {first}..={last}");
            }
            Op::Range(k) => {
                let got: Vec<_> = t.range(k).map(|(i, e)| (i, e.cloned())).collect();
                assert_eq!(got, expect_gang(o.range(k..), usize::MAX));
            }
            Op::NextHole(k, n) => {
                let mut want = k;
                for _ in 0..n {
                    if !o.contains_key(&want) {
                        break;
                    }
                    want = want.wrapping_add(1);
                    if want == 0 {
                        break;
                    }
                }
                assert_eq!(t.next_hole(k, n), want);
            }
            Op::Preload => {
                if t.preload().is_ok() {
                    preloaded_guarantee = true;
                }
            }
            Op::Limit(l) => t.set_node_limit(l.map(|l| l + t.nodes())),
        }
        t.assert_invariants();
        assert_eq!(t.len(), o.len());
        for n in 0..MAX_TAGS {
            assert_eq!(
                t.tagged(tag(n)),
                o.values().any(|(_, tags)| tags[n]),
                "tagged({n})"
            );
        }
    }
    // Everything the oracle holds, in order, and nothing else.
    let all: Vec<_> = t.iter().map(|(i, e)| (i, e.cloned())).collect();
    assert_eq!(all, expect_gang(o.iter(), usize::MAX));
    let keys: Vec<u64> = o.keys().copied().collect();
    for k in keys {
        t.delete(k);
    }
    t.assert_invariants();
    assert_eq!((t.height(), t.nodes()), (0, 0));
}

fn check_insert<const SHIFT: u32>(
    t: &mut RadixTree<u32, SHIFT>,
    o: &mut Oracle,
    k: u64,
    e: Entry<u32>,
    preloaded: &mut bool,
) {
    match t.insert_entry(k, e) {
        Ok(()) => {
            assert!(!o.contains_key(&k), "insert {k} over an entry");
            assert!(e.value().is_none_or(|v| v <= VALUE_MAX));
            o.insert(k, (e, [false; MAX_TAGS]));
            *preloaded = false;
        }
        Err(err) => {
            assert_eq!(err.entry, e);
            match err.error.errno() {
                EEXIST => assert!(o.contains_key(&k)),
                EINVAL => assert!(e.value().is_some_and(|v| v > VALUE_MAX)),
                ENOMEM => {
                    assert!(!o.contains_key(&k));
                    assert!(!*preloaded, "insert {k} failed after a successful preload");
                }
                other => panic!("insert {k}: errno {other}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(if cfg!(debug_assertions) { 200 } else { 1000 }))]

    #[test]
    fn matches_a_btreemap_with_64_slot_nodes(ops in proptest::collection::vec(op(), 1..120)) {
        run::<6>(&ops);
    }

    #[test]
    fn matches_a_btreemap_with_8_slot_nodes(ops in proptest::collection::vec(op(), 1..120)) {
        run::<3>(&ops);
    }
}
