//! Unit tests of the shared tree: the same shapes as the single-threaded
//! tree, the retry marker, readers that finish while the writer lock is
//! held, and the speculative get. They also run under Miri (the unsafe
//! words, pointers and deferred frees), at smaller sizes.

use std::sync::atomic::{AtomicU64 as StdAtomicU64, AtomicUsize as StdAtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::layout::decode;
use super::*;
use crate::node::View;
use crate::{Error, RadixTree};

/// Operations for the differential test: Miri runs a few, native runs many.
fn ops(native: usize, miri: usize) -> usize {
    if cfg!(miri) { miri } else { native }
}

/// SplitMix64, for reproducible operation sequences.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs the same random operations on a `RadixTree` and an `RcuRadixTree`
/// of the same shift and checks they agree on every answer and on their
/// shape (height, nodes, counts), and that both keep their invariants.
fn differential<const SHIFT: u32>(keys: &[u64], n: usize, seed: u64) {
    let mut plain = RadixTree::<u64, SHIFT>::new();
    let shared = RcuRadixTree::<Box<u64>, SHIFT>::new();
    let mut rng = Rng(seed);
    for step in 0..n {
        let k = keys[rng.below(keys.len() as u64) as usize];
        let tag = Tag::ALL[rng.below(3) as usize];
        let mut w = shared.lock();
        match rng.below(8) {
            0 | 1 => {
                let v = rng.below(1 << 40);
                let a = plain.insert(k, v).map_err(|e| e.error);
                let b = w.insert(k, Box::new(v)).map_err(|e| e.error);
                assert_eq!(a, b, "insert {k} at step {step}");
            }
            2 => {
                let v = rng.below(1 << 40);
                let a = plain.insert_value(k, v).map_err(|e| e.error);
                let b = w.insert_value(k, v).map_err(|e| e.error);
                assert_eq!(a, b, "insert_value {k} at step {step}");
            }
            3 | 4 => {
                let a = plain.delete(k);
                let b = w.delete(k).map(|e| e.map(|v| *v));
                assert_eq!(a, b, "delete {k} at step {step}");
            }
            5 => {
                let a = plain.tag_set(k, tag).map(Entry::cloned);
                let b = w.tag_set(k, tag).map(|e| e.map(|v| *v));
                assert_eq!(a, b, "tag_set {k} at step {step}");
            }
            6 => {
                let a = plain.tag_clear(k, tag).map(Entry::cloned);
                let b = w.tag_clear(k, tag).map(|e| e.map(|v| *v));
                assert_eq!(a, b, "tag_clear {k} at step {step}");
            }
            _ => {
                let v = rng.below(1 << 40);
                let a = match plain.lookup_slot(k) {
                    Some(mut s) => s.replace(Entry::Value(v)).map_err(|e| e.error),
                    None => Err(Error::NotFound { index: k }),
                };
                let b = w
                    .replace(k, Entry::Value(v))
                    .map(|e| e.map(|x| *x))
                    .map_err(|e| e.error);
                assert_eq!(a, b, "replace {k} at step {step}");
            }
        }
        assert_eq!(
            (
                plain.height(),
                plain.nodes(),
                plain.nr_items(),
                plain.nr_values()
            ),
            (w.height(), w.nodes(), w.nr_items(), w.nr_values()),
            "shape after step {step}"
        );
        w.assert_invariants();
        drop(w);
        if step % 16 == 0 || cfg!(miri) {
            plain.assert_invariants();
            let r = shared.read();
            let first = keys[rng.below(keys.len() as u64) as usize];
            let (mut a, mut b) = (Vec::new(), Vec::new());
            plain.gang_lookup(first, 9, &mut a);
            r.gang_lookup(first, 9, &mut b);
            let b: Vec<_> = b.into_iter().map(|(i, e)| (i, e.map(|v| *v))).collect();
            assert_eq!(
                a.into_iter()
                    .map(|(i, e)| (i, e.cloned()))
                    .collect::<Vec<_>>(),
                b
            );
            for tag in Tag::ALL {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                plain.gang_lookup_tag(first, 9, tag, &mut a);
                r.gang_lookup_tag(first, 9, tag, &mut b);
                assert_eq!(a.len(), b.len(), "gang_lookup_tag {tag:?} from {first}");
                assert_eq!(plain.tagged(tag), r.tagged(tag));
                assert_eq!(plain.tag_get(k, tag), r.tag_get(k, tag));
            }
            for &key in keys {
                assert_eq!(
                    plain.lookup(key).map(Entry::cloned),
                    r.lookup(key).map(|e| e.map(|v| *v))
                );
            }
            let all: Vec<_> = r.iter().map(|(i, e)| (i, e.map(|v| *v))).collect();
            let want: Vec<_> = plain.iter().map(|(i, e)| (i, e.cloned())).collect();
            assert_eq!(all, want, "iter after step {step}");
        }
    }
}

#[test]
fn shared_tree_matches_the_single_threaded_tree() {
    // Shift 2: four-slot nodes, so 64 keys make trees of height 3 that grow
    // and shrink all the time, through height 0.
    let small: Vec<u64> = (0..64).collect();
    differential::<2>(&small, ops(20_000, 60), 1);
    // Shift 6, page-cache-like keys with a far one.
    let mut keys: Vec<u64> = (0..100).chain(4000..4100).collect();
    keys.push(1 << 40);
    keys.push(u64::MAX);
    differential::<6>(&keys, ops(10_000, 30), 2);
}

#[test]
fn shrinking_to_height_zero_leaves_the_retry_marker_in_the_dead_leaf() {
    let t = RcuRadixTree::<Box<u64>>::new();
    {
        let mut w = t.lock();
        w.insert(0, Box::new(10)).unwrap();
        w.insert(5, Box::new(15)).unwrap();
        assert_eq!((w.height(), w.nodes()), (1, 1));
    }
    let r = t.read();
    // The reader loaded the leaf before the shrink.
    let Root::Node(leaf, 1) = r.root() else {
        panic!("height 1 with a leaf")
    };
    {
        let mut w = t.lock();
        assert_eq!(w.delete(5).map(|e| e.map(|v| *v)), Some(Entry::Item(15)));
        assert_eq!((w.height(), w.nodes()), (0, 0));
        w.assert_invariants();
    }
    // The dead leaf's slot 0 is the marker, not the entry that moved...
    assert!(matches!(
        decode::<Box<u64>>(leaf.slots[0].load(Ordering::Relaxed)),
        View::Retry
    ));
    // ...and a walk through it starts again and finds the entry in the root.
    let mut out = Vec::new();
    assert_eq!(
        Walk::<Shared<Box<u64>>, 6>::gang(
            Root::Node(leaf, 1),
            0,
            4,
            &mut out,
            Filter::Present,
            &mut ()
        ),
        Err(Retry)
    );
    assert_eq!(r.lookup(0).map(|e| e.map(|v| *v)), Some(Entry::Item(10)));
    assert_eq!(r.gang_lookup(0, 4, &mut out), 1);
    assert_eq!(*out[0].1.item().unwrap(), 10);
}

#[test]
fn a_grown_tree_keeps_the_old_top_under_the_new_one() {
    let t = RcuRadixTree::<Box<u64>>::new();
    t.lock().insert(3, Box::new(3)).unwrap();
    let r = t.read();
    let Root::Node(old_top, 1) = r.root() else {
        panic!("height 1")
    };
    {
        let mut w = t.lock();
        w.insert(1 << 12, Box::new(4096)).unwrap();
        assert_eq!(w.height(), 3);
        w.assert_invariants();
    }
    // The reader's old top is still the leaf of indices 0..64, in the tree.
    assert_eq!(
        Walk::<Shared<Box<u64>>, 6>::lookup(old_top, 1, 3).map(|e| e.map(|e| e.map(|v| *v))),
        Ok(Some(Entry::Item(3)))
    );
    assert_eq!(r.get(1 << 12).copied(), Some(4096));
}

#[test]
fn writer_errors_change_nothing() {
    let t = RcuRadixTree::<Box<u64>>::new();
    let mut w = t.lock();
    w.insert(9, Box::new(1)).unwrap();
    let e = w.insert(9, Box::new(2)).unwrap_err();
    assert_eq!(e.error, Error::Exists { index: 9 });
    assert_eq!(e.entry.item().map(|b| *b), Some(2));
    let e = w.insert_value(10, crate::VALUE_MAX + 1).unwrap_err();
    assert_eq!(e.error.errno(), 22);
    let e = w.replace(11, Entry::Value(1)).unwrap_err();
    assert_eq!(e.error, Error::NotFound { index: 11 });
    assert_eq!(w.tag_set(12, Tag::T1), Err(Error::NotFound { index: 12 }));
    assert_eq!(w.tag_clear(12, Tag::T1), None);
    assert_eq!((w.len(), w.height(), w.nodes()), (1, 1, 1));
    w.assert_invariants();
}

#[test]
fn replace_keeps_tags_and_the_old_item_stays_readable() {
    let t = RcuRadixTree::<Arc<u64>>::new();
    t.lock().insert(70, Arc::new(1)).unwrap();
    t.lock().tag_set(70, Tag::T0).unwrap();
    let r = t.read();
    let before = r.get(70).unwrap();
    {
        let mut w = t.lock();
        let old = w.replace(70, Entry::Value(5)).unwrap();
        assert_eq!(old.map(|v| *v), Entry::Item(1));
        assert!(w.tag_get(70, Tag::T0));
        assert_eq!(w.nr_values(), 1);
        w.assert_invariants();
    }
    // Still pinned: the replaced item has not been dropped.
    assert_eq!(*before, 1);
    assert_eq!(r.lookup(70), Some(Entry::Value(5)));
    assert!(r.tag_get(70, Tag::T0));
}

/// The done-when test: readers finish their lookups while a writer holds
/// the tree lock for the whole time.
#[test]
fn readers_finish_while_the_writer_holds_the_lock() {
    let t = Arc::new(RcuRadixTree::<Arc<u64>>::new());
    let n = ops(10_000, 40) as u64;
    {
        let mut w = t.lock();
        for i in 0..n {
            w.insert(i, Arc::new(i)).unwrap();
        }
        w.tag_set(n / 2, Tag::T1).unwrap();
    }
    let mut w = t.lock();
    // Mid-change: the writer holds the lock and has inserted and deleted
    // entries the readers may or may not see.
    w.insert(n, Arc::new(n)).unwrap();
    w.delete(0).unwrap();
    let (tx, rx) = mpsc::channel();
    let readers = if cfg!(miri) { 1 } else { 2 };
    for _ in 0..readers {
        let t = Arc::clone(&t);
        let tx = tx.clone();
        std::thread::spawn(move || {
            let r = t.read();
            let mut sum = 0u64;
            for i in 1..n {
                sum += *r.get(i).unwrap();
            }
            let mut out = Vec::new();
            let got = r.gang_lookup(1, 64, &mut out);
            let tagged = r.gang_lookup_tag(0, 8, Tag::T1, &mut Vec::new());
            let arc = r.get_arc(n / 2).and_then(Entry::item).map(|a| *a);
            tx.send((sum, got, tagged, arc)).unwrap();
        });
    }
    drop(tx);
    for _ in 0..readers {
        let (sum, got, tagged, arc) = rx.recv_timeout(Duration::from_secs(60)).expect(
            "a reader did not finish its lookups within 60 s while the writer held the \
             tree lock: lockless readers must not wait for writers",
        );
        assert_eq!(sum, (1..n).sum::<u64>());
        assert_eq!(got, 64.min(n as usize));
        assert_eq!(tagged, 1);
        assert_eq!(arc, Some(n / 2));
    }
    w.assert_invariants();
}

/// A page of a pool that is never freed (the kernel's `mem_map`): its count
/// can drop to zero and the page be used again for another index, which is
/// what makes the speculative get's re-check necessary.
struct Page {
    count: StdAtomicUsize,
    index: StdAtomicU64,
}

impl Page {
    /// `get_page_unless_zero()`.
    fn try_get(&'static self) -> Option<PageRef> {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            if c == 0 {
                return None;
            }
            match self
                .count
                .compare_exchange_weak(c, c + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Some(PageRef(self)),
                Err(now) => c = now,
            }
        }
    }
}

/// A counted reference (`put_page()` on drop).
struct PageRef(&'static Page);

impl Drop for PageRef {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Release);
    }
}

/// The page cache's slot pointer: the page's memory is permanent, and the
/// cache's reference is counted by the remover (freeze, delete, recycle),
/// not by dropping the pointer.
struct PagePtr(&'static Page);

// SAFETY: the target is `'static` memory, valid for ever.
unsafe impl SharedPointer for PagePtr {
    type Target = Page;

    fn into_raw(self) -> *const Page {
        self.0
    }

    unsafe fn from_raw(ptr: *const Page) -> Self {
        // SAFETY: every pointer is to a leaked, never-freed page.
        PagePtr(unsafe { &*ptr })
    }
}

/// The race of include/linux/pagemap.h on real threads: a writer freezes a
/// page's count (`page_freeze_refs()`), deletes it and gives it a new index
/// (a page freed and allocated again), while readers look pages up with
/// `get_speculative`. A reader that holds a reference must hold the page of
/// the index it asked for: without the re-check it would hold a page that
/// moved to another index.
#[test]
fn speculative_get_never_returns_a_page_that_moved() {
    const INDICES: u64 = 8;
    // Leaked for the `'static` the pointers need, and taken back at the end.
    let pages: &'static [Page] = Box::leak(
        (0..INDICES)
            .map(|i| Page {
                count: StdAtomicUsize::new(1),
                index: StdAtomicU64::new(i),
            })
            .collect(),
    );
    let t = Arc::new(RcuRadixTree::<PagePtr, 2>::new());
    for p in pages {
        t.lock()
            .insert(p.index.load(Ordering::Relaxed), PagePtr(p))
            .unwrap_or_else(|_| panic!("index taken"));
    }
    let rounds = ops(20_000, 30);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Pages the reader has found so far: the writer goes on past `rounds`
    // until the reader has seen one (a reader the scheduler has not run
    // yet tests nothing), for at most a minute.
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (tx, rx) = mpsc::channel();
    let reader = {
        let (t, done, seen, tx) = (
            Arc::clone(&t),
            Arc::clone(&done),
            Arc::clone(&seen),
            tx.clone(),
        );
        std::thread::spawn(move || {
            let mut found = 0u64;
            let mut i = 0u64;
            while !done.load(Ordering::Relaxed) {
                let r = t.read();
                let want = i % (2 * INDICES);
                if let Some(Entry::Item(page)) = r.get_speculative(want, |p| {
                    // The pool's own `'static` reference to the same page.
                    let p: &'static Page = pages
                        .iter()
                        .find(|q| std::ptr::eq(*q, p))
                        .expect("a page of the pool");
                    p.try_get()
                }) {
                    assert_eq!(
                        page.0.index.load(Ordering::Relaxed),
                        want,
                        "a reader holds a page that moved to another index"
                    );
                    found += 1;
                    seen.store(found, Ordering::Relaxed);
                }
                i += 1;
            }
            tx.send(found).unwrap();
        })
    };
    drop(tx);
    let mut rng = Rng(7);
    let mut moved = 0;
    let start = std::time::Instant::now();
    let mut round = 0;
    while round < rounds
        || (seen.load(Ordering::Relaxed) == 0 && start.elapsed() < Duration::from_secs(60))
    {
        round += 1;
        let p = &pages[rng.below(INDICES) as usize];
        // __remove_mapping(): freeze the cache's sole reference, or back
        // off if a reader holds one.
        if p.count
            .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            continue;
        }
        let old = p.index.load(Ordering::Relaxed);
        let mut w = t.lock();
        assert!(w.delete(old).is_some());
        // Freed and allocated again, for a free index.
        let new = (0..2 * INDICES)
            .map(|k| (old + 1 + k) % (2 * INDICES))
            .find(|&k| w.lookup(k).is_none())
            .expect("a free index");
        p.index.store(new, Ordering::Relaxed);
        p.count.store(1, Ordering::Release);
        if w.insert(new, PagePtr(p)).is_err() {
            panic!("index {new} was free");
        }
        moved += 1;
    }
    done.store(true, Ordering::Relaxed);
    let found = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the reader did not stop within 60 s");
    reader.join().unwrap();
    assert!(moved > 0 && found > 0, "moved {moved}, found {found}");
    t.lock().assert_invariants();
    drop(t);
    // SAFETY: the tree (and with it every deferred destructor holding a
    // page pointer) and the reader are gone; nothing refers to the pool.
    drop(unsafe { Box::from_raw(std::ptr::from_ref(pages).cast_mut()) });
}

#[test]
fn get_arc_takes_a_reference_of_its_own() {
    let t = RcuRadixTree::<Arc<u64>>::new();
    let item = Arc::new(42);
    t.lock().insert(1, Arc::clone(&item)).unwrap();
    t.lock().insert_value(2, 7).unwrap();
    let r = t.read();
    let got = r.get_arc(1).and_then(Entry::item).unwrap();
    assert!(Arc::ptr_eq(&got, &item));
    assert_eq!(Arc::strong_count(&item), 3); // ours, the tree's, got
    assert_eq!(r.get_arc(2), Some(Entry::Value(7)));
    assert_eq!(r.get_arc(3), None);
    drop(r);
    t.lock().delete(1).unwrap();
    drop(t);
    // The tree's reference goes with its grace period; ours stay.
    assert_eq!(*got, 42);
}

#[test]
fn dropping_the_tree_frees_nodes_and_items() {
    let item = Arc::new(5u64);
    {
        let t = RcuRadixTree::<Arc<u64>, 3>::new();
        let mut w = t.lock();
        for i in [0u64, 7, 64, 4095, 1 << 20] {
            w.insert(i, Arc::clone(&item)).unwrap();
        }
        w.insert_value(9, 99).unwrap();
        w.assert_invariants();
        assert_eq!(Arc::strong_count(&item), 6);
    }
    // Dropped at once, not deferred: the tree had no reader left.
    assert_eq!(Arc::strong_count(&item), 1);
}
