//! Ports, in spirit, of tools/testing/radix-tree's single-threaded checks:
//! gang_check (contiguous runs around 32-bit boundaries, read back in
//! chunks), dynamic_height_check (height minimal after every insert and
//! delete) and tag_check's thrash over a shadow array.

// Safe code of the single-threaded tree: not run under Miri, which checks
// the unsafe `rcu` module (its unit tests and tests/rcu_stress.rs).
#![cfg(not(miri))]

use klab_radix_tree::{Entry, RadixTree, Tag};
use rand::{Rng, SeedableRng};

/// gang_check: items `middle - down .. middle + up` (clipped to u64),
/// read back `chunk` at a time, each chunk starting after the last index
/// returned, the way the kernel's callers walk a gang lookup.
fn gang_check(middle: u64, down: u64, up: u64, chunk: usize) {
    let mut t = RadixTree::<u64>::new();
    let lo = middle.saturating_sub(down);
    let hi = middle.saturating_add(up);
    for i in lo..=hi {
        t.insert(i, i).unwrap();
    }
    t.assert_invariants();
    let mut next = Some(lo);
    let mut expect = lo;
    let mut out = Vec::new();
    while let Some(first) = next {
        out.clear();
        let n = t.gang_lookup(first, chunk, &mut out);
        if n == 0 {
            break;
        }
        for &(i, e) in &out {
            assert_eq!((i, e), (expect, Entry::Item(&expect)));
            expect = expect.wrapping_add(1);
        }
        next = out.last().and_then(|(i, _)| i.checked_add(1));
    }
    assert_eq!(expect, hi.wrapping_add(1), "middle {middle:#x}");
    for i in lo..=hi {
        assert_eq!(t.delete(i), Some(Entry::Item(i)));
    }
    assert_eq!((t.height(), t.nodes()), (0, 0));
}

#[test]
fn gang_check_contiguous_runs_across_boundaries() {
    for middle in [
        1 << 30,
        1 << 31,
        0xffff_0000,
        0xffff_fffe,
        1 << 48,
        u64::MAX - 70,
    ] {
        for chunk in [1, 3, 64, 100] {
            gang_check(middle, 100, 70, chunk);
        }
    }
    // Reaches u64::MAX: the walk must end there, not wrap to 0.
    gang_check(u64::MAX, 130, 0, 7);
}

#[test]
fn dynamic_height_check_height_is_minimal_after_every_step() {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0x7ad1);
    let mut t = RadixTree::<u64>::new();
    let mut keys = std::collections::BTreeSet::new();
    for step in 0..1500 {
        let k = match rng.random_range(0..4) {
            0 => rng.random_range(0..64),
            1 => rng.random_range(0..1 << 14),
            2 => 1u64 << rng.random_range(0..64),
            _ => rng.random(),
        };
        if rng.random_bool(0.55) {
            if t.insert(k, k).is_ok() {
                keys.insert(k);
            }
        } else {
            t.delete(k);
            keys.remove(&k);
        }
        let want = keys
            .last()
            .map_or(0, |&max| RadixTree::<u64>::height_for(max));
        assert_eq!(t.height(), want, "step {step}");
        t.assert_invariants();
    }
}

#[test]
fn thrash_tags_against_a_shadow_array() {
    // tag_check.c's thrash_tags: a shadow array of present/tagged state over
    // a window of indices, random inserts, deletes, tag sets and clears,
    // with gang_lookup_tag checked for order and completeness.
    const N: usize = 5_000;
    let mut rng = rand_pcg::Pcg64::seed_from_u64(0x7a95);
    let mut t = RadixTree::<u32>::new();
    let mut shadow = vec![(false, [false; 2]); N];
    for round in 0..30_000 {
        let i = rng.random_range(0..N);
        let tag = rng.random_range(0..2);
        let k = i as u64;
        match rng.random_range(0..5) {
            0 | 1 => {
                let ok = t.insert(k, i as u32).is_ok();
                assert_eq!(ok, !shadow[i].0);
                shadow[i].0 = true;
            }
            2 => {
                assert_eq!(t.delete(k).is_some(), shadow[i].0);
                shadow[i] = (false, [false; 2]);
            }
            3 => {
                assert_eq!(t.tag_set(k, Tag::new(tag).unwrap()).is_ok(), shadow[i].0);
                shadow[i].1[tag] = shadow[i].0;
            }
            _ => {
                t.tag_clear(k, Tag::new(tag).unwrap());
                shadow[i].1[tag] = false;
            }
        }
        if round % 3000 == 0 {
            t.assert_invariants();
            for tag in 0..2 {
                let want: Vec<u64> = (0..N)
                    .filter(|&j| shadow[j].1[tag])
                    .map(|j| j as u64)
                    .collect();
                let mut got = Vec::new();
                let mut out = Vec::new();
                let mut first = 0;
                loop {
                    out.clear();
                    if t.gang_lookup_tag(first, 37, Tag::new(tag).unwrap(), &mut out) == 0 {
                        break;
                    }
                    got.extend(out.iter().map(|r| r.0));
                    first = got.last().unwrap() + 1;
                }
                assert_eq!(got, want, "round {round} tag {tag}");
            }
        }
    }
    t.assert_invariants();
}
