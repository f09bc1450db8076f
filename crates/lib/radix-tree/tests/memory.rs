//! `RadixTree::memory()` is exact: it equals the heap bytes a counting
//! global allocator sees the tree take, at every size, with and without a
//! preload reserve, and all of it comes back when the entries are deleted.
//! The allocator counts every thread, so this binary runs without the test
//! harness (whose threads allocate too): `main` runs the check alone.

use std::alloc::System;

use klab_radix_tree::RadixTree;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn net(region: &Region<'_, System>) -> isize {
    let s = region.change();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

fn main() {
    if cfg!(miri) {
        // Safe code, and a counting allocator Miri need not check.
        println!("memory: skipped under Miri (safe code; Miri checks the rcu module)");
        return;
    }
    memory_accounting_matches_the_allocator();
    println!("memory: 1 passed, 0 failed");
}

fn memory_accounting_matches_the_allocator() {
    let keys: Vec<Vec<u64>> = vec![
        vec![0],
        (0..5000).collect(),
        (0..3000).map(|i| i * 977).collect(),
        (0..200)
            .map(|i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect(),
    ];
    for set in keys {
        let region = Region::new(GLOBAL);
        let mut t = Box::new(RadixTree::<u64>::new());
        let root = std::mem::size_of::<RadixTree<u64>>() as isize;
        for &k in &set {
            t.insert(k, k).unwrap();
        }
        assert_eq!(
            net(&region) - root,
            t.memory().bytes as isize,
            "{} keys",
            set.len()
        );
        t.preload().unwrap();
        assert_eq!(net(&region) - root, t.memory().bytes as isize);
        for &k in &set {
            t.delete(k);
        }
        t.release_preload();
        assert_eq!(t.memory().bytes, 0);
        assert_eq!(net(&region) - root, 0);
        drop(t);
        assert_eq!(net(&region), 0);
    }
}
