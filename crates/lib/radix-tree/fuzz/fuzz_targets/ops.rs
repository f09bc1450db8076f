//! Fuzz target: a sequence of radix tree operations decoded from bytes,
//! checked step by step against a `BTreeMap` and `assert_invariants()`.
//!
//! Each operation takes 10 bytes: an opcode, a key mode, and 8 bytes of
//! argument. Key modes map the argument into small keys, keys around level
//! boundaries, or any `u64`, so every height is reached.
#![no_main]

use std::collections::BTreeMap;

use klab_radix_tree::{Entry, MAX_TAGS, RadixTree, Tag, VALUE_MAX};
use libfuzzer_sys::fuzz_target;

fn key(mode: u8, arg: u64) -> u64 {
    match mode % 4 {
        0 => arg % 200,
        1 => {
            let level = (arg % 11) as u32;
            (1u64 << (6 * level)).wrapping_sub(2).wrapping_add((arg >> 8) % 4)
        }
        2 => u64::MAX - arg % 70,
        _ => arg,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut t = RadixTree::<u64>::new();
    let mut o: BTreeMap<u64, (Entry<u64>, [bool; MAX_TAGS])> = BTreeMap::new();
    for chunk in data.chunks_exact(10) {
        let arg = u64::from_le_bytes(chunk[2..10].try_into().expect("8 bytes"));
        let k = key(chunk[1], arg);
        let tag = Tag::new(usize::from(chunk[1] >> 4) % MAX_TAGS).expect("tag in range");
        match chunk[0] % 8 {
            0 | 1 => {
                let ok = t.insert(k, arg).is_ok();
                assert_eq!(ok, !o.contains_key(&k));
                if ok {
                    o.insert(k, (Entry::Item(arg), [false; MAX_TAGS]));
                }
            }
            2 => {
                let v = arg >> 1;
                let ok = t.insert_value(k, v).is_ok();
                assert_eq!(ok, !o.contains_key(&k) && v <= VALUE_MAX);
                if ok {
                    o.insert(k, (Entry::Value(v), [false; MAX_TAGS]));
                }
            }
            3 => assert_eq!(t.delete(k), o.remove(&k).map(|(e, _)| e)),
            4 => {
                let ok = t.tag_set(k, tag).is_ok();
                assert_eq!(ok, o.contains_key(&k));
                if let Some((_, tags)) = o.get_mut(&k) {
                    tags[tag.index()] = true;
                }
            }
            5 => {
                t.tag_clear(k, tag);
                if let Some((_, tags)) = o.get_mut(&k) {
                    tags[tag.index()] = false;
                }
            }
            6 => {
                let max = (arg >> 56) as usize % 80;
                let mut out = Vec::new();
                t.gang_lookup_tag(k, max, tag, &mut out);
                let want: Vec<(u64, Entry<u64>)> = o
                    .range(k..)
                    .filter(|(_, (_, tags))| tags[tag.index()])
                    .take(max)
                    .map(|(i, (e, _))| (*i, *e))
                    .collect();
                let got: Vec<(u64, Entry<u64>)> = out.into_iter().map(|(i, e)| (i, e.cloned())).collect();
                assert_eq!(got, want);
            }
            _ => {
                let max = (arg >> 56) as usize % 80;
                let mut out = Vec::new();
                t.gang_lookup(k, max, &mut out);
                let want: Vec<(u64, Entry<u64>)> = o.range(k..).take(max).map(|(i, (e, _))| (*i, *e)).collect();
                let got: Vec<(u64, Entry<u64>)> = out.into_iter().map(|(i, e)| (i, e.cloned())).collect();
                assert_eq!(got, want);
            }
        }
        t.assert_invariants();
        assert_eq!(t.len(), o.len());
    }
});
