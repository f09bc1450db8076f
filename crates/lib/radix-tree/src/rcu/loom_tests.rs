//! Loom models of a lockless reader against each kind of writer change:
//! an insert that grows the tree and builds a branch, deletes that free
//! nodes and shrink the tree down to height 0 (the retry marker), tag
//! changes, and the speculative get against a page being frozen, deleted
//! and reused elsewhere. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p klab-radix-tree --release --lib loom`.
//!
//! Loom explores the interleavings and the weak-memory outcomes of the
//! atomics (a reader's acquire load pairs with the writer's release store
//! only where the code says so). Grace periods are `epoch.rs`'s loom
//! model: a node freed too early trips the assertion in `layout::decode`,
//! an item dropped too early trips [`Probe::check`].

use std::sync::atomic::{AtomicBool as StdAtomicBool, Ordering as StdOrdering};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use loom::thread;

use super::*;

/// Shift 2: four-slot nodes, so indices below 64 make trees of height 3.
const S: u32 = 2;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    // Every interleaving with up to 3 preemptions (loom's guidance for
    // models of this size); the full space does not finish.
    b.preemption_bound = Some(3);
    // A walk is a load a level and a gang lookup a load a slot: more
    // branches per execution than loom's default 1000.
    b.max_branches = 20_000;
    b.check(f);
}

/// An item that knows when the tree dropped it.
struct Probe {
    value: u64,
    dropped: StdAtomicBool,
}

impl Probe {
    /// The value, after checking the tree has not dropped the item: a
    /// reader that still sees it must be inside its grace period.
    fn check(&self) -> u64 {
        assert!(
            !self.dropped.load(StdOrdering::SeqCst),
            "a reader read an item after its grace period"
        );
        self.value
    }
}

/// The tree's pointer to a [`Probe`]; the test keeps another `Arc`, so the
/// memory outlives the tree's reference and the flag can be read.
struct ProbePtr(std::sync::Arc<Probe>);

impl ProbePtr {
    fn new(value: u64) -> (Self, std::sync::Arc<Probe>) {
        let p = std::sync::Arc::new(Probe {
            value,
            dropped: StdAtomicBool::new(false),
        });
        (ProbePtr(std::sync::Arc::clone(&p)), p)
    }
}

impl Drop for ProbePtr {
    fn drop(&mut self) {
        self.0.dropped.store(true, StdOrdering::SeqCst);
    }
}

// SAFETY: into_raw gives away the `Arc`'s count without running `Drop`;
// from_raw takes it back. The `Arc` keeps the probe valid meanwhile.
unsafe impl SharedPointer for ProbePtr {
    type Target = Probe;

    fn into_raw(self) -> *const Probe {
        let this = std::mem::ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again.
        std::sync::Arc::into_raw(unsafe { std::ptr::read(&this.0) })
    }

    unsafe fn from_raw(ptr: *const Probe) -> Self {
        // SAFETY: the caller passes a pointer from `into_raw`, once.
        ProbePtr(unsafe { std::sync::Arc::from_raw(ptr) })
    }
}

type Tree = RcuRadixTree<ProbePtr, S>;

fn insert(t: &Tree, index: u64, value: u64) -> std::sync::Arc<Probe> {
    let (p, probe) = ProbePtr::new(value);
    if t.lock().insert(index, p).is_err() {
        panic!("index {index} taken");
    }
    probe
}

fn value(r: &ReadGuard<'_, ProbePtr, S>, index: u64) -> Option<u64> {
    r.get(index).map(Probe::check)
}

fn gang(r: &ReadGuard<'_, ProbePtr, S>, first: u64, tag: Option<Tag>) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    match tag {
        None => r.gang_lookup(first, 8, &mut out),
        Some(tag) => r.gang_lookup_tag(first, 8, tag, &mut out),
    };
    out.into_iter()
        .map(|(i, e)| (i, e.item().expect("items only").check()))
        .collect()
}

/// A reader against an insert that grows the tree from height 1 to 3 and
/// builds a branch under the new top: the reader sees the old entries all
/// along and the new one either not yet or whole.
#[test]
fn loom_reader_against_insert_with_extend() {
    model(|| {
        let t = Arc::new(Tree::new());
        let _a = insert(&t, 1, 10);
        let reader = {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let r = t.read();
                let new = value(&r, 40);
                assert_eq!(value(&r, 1), Some(10));
                assert!(matches!(new, None | Some(400)), "{new:?}");
                let g = gang(&r, 0, None);
                assert!(g == [(1, 10)] || g == [(1, 10), (40, 400)], "{g:?}");
            })
        };
        let _b = insert(&t, 40, 400);
        reader.join().unwrap();
        t.lock().assert_invariants();
    });
}

/// A reader against deletes that free a leaf, shrink the tree from height
/// 3 to 1 and then to 0 (moving index 0's entry into the root and leaving
/// the retry marker in the dead leaf).
#[test]
fn loom_reader_against_delete_and_shrink() {
    model(|| {
        let t = Arc::new(Tree::new());
        let _a = insert(&t, 0, 1);
        let _b = insert(&t, 2, 3);
        let _c = insert(&t, 20, 21);
        assert_eq!(t.lock().height(), 3);
        let reader = {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let r = t.read();
                assert_eq!(value(&r, 0), Some(1));
                let b = value(&r, 2);
                assert!(matches!(b, None | Some(3)), "{b:?}");
                let g = gang(&r, 0, None);
                assert_eq!(g.first(), Some(&(0, 1)), "{g:?}");
                assert!(g.iter().all(|e| [(0, 1), (2, 3), (20, 21)].contains(e)));
            })
        };
        {
            let mut w = t.lock();
            w.delete(20).unwrap();
            w.delete(2).unwrap();
            assert_eq!((w.height(), w.nodes()), (0, 0));
        }
        reader.join().unwrap();
        t.lock().assert_invariants();
    });
}

/// A reader's tagged gang lookup against tag changes: an entry tagged
/// throughout is always found; the others may or may not be.
#[test]
fn loom_reader_against_tag_changes() {
    model(|| {
        let t = Arc::new(Tree::new());
        let _a = insert(&t, 1, 1);
        let _b = insert(&t, 6, 6);
        let _c = insert(&t, 9, 9);
        {
            let mut w = t.lock();
            w.tag_set(6, Tag::T0).unwrap();
            w.tag_set(9, Tag::T0).unwrap();
        }
        let reader = {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let r = t.read();
                let g = gang(&r, 0, Some(Tag::T0));
                assert!(
                    g.contains(&(9, 9)),
                    "the entry tagged throughout is missing: {g:?}"
                );
                assert!(g.iter().all(|e| [(1, 1), (6, 6), (9, 9)].contains(e)));
                assert!(r.tag_get(9, Tag::T0));
                assert!(r.tagged(Tag::T0));
            })
        };
        {
            let mut w = t.lock();
            w.tag_clear(6, Tag::T0).unwrap();
            w.tag_set(1, Tag::T0).unwrap();
        }
        reader.join().unwrap();
        t.lock().assert_invariants();
    });
}

/// A page of a pool that is never freed, with a count that can reach zero.
struct Page {
    count: AtomicUsize,
    index: AtomicU64,
}

/// The cache's pointer to a pooled page (the remover keeps the count).
struct PagePtr(&'static Page);

// SAFETY: the pages are leaked: valid for ever.
unsafe impl SharedPointer for PagePtr {
    type Target = Page;

    fn into_raw(self) -> *const Page {
        self.0
    }

    unsafe fn from_raw(ptr: *const Page) -> Self {
        // SAFETY: every pointer is to a leaked page.
        PagePtr(unsafe { &*ptr })
    }
}

/// A counted reference to a page.
struct PageRef<'p>(&'p Page);

impl Drop for PageRef<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Release);
    }
}

/// `get_page_unless_zero()`.
fn try_get(p: &Page) -> Option<PageRef<'_>> {
    let mut c = p.count.load(Ordering::Relaxed);
    loop {
        if c == 0 {
            return None;
        }
        match p
            .count
            .compare_exchange(c, c + 1, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => return Some(PageRef(p)),
            Err(now) => c = now,
        }
    }
}

/// pagemap.h's two critical interleavings and the reuse between steps 1
/// and 2, with a shrink under the reader. The tree holds pages A (index 0)
/// and B (index 2) in one leaf. The writer deletes B, which shrinks the
/// tree to height 0 (A moves into the root, the dead leaf's slot 0 gets the
/// retry marker); then freezes A's count (`page_freeze_refs()`, backing off
/// if a reader holds a reference), deletes A and reuses it for index 3. The
/// reader's speculative get at index 0 must give no page, or page A while
/// A is still index 0's: a reader that found A in the leaf and re-checked
/// the dead slot would otherwise hold A after its move.
#[test]
fn loom_speculative_get_against_shrink_freeze_delete_and_reuse() {
    model(|| {
        let page = |i| -> &'static Page {
            Box::leak(Box::new(Page {
                count: AtomicUsize::new(1),
                index: AtomicU64::new(i),
            }))
        };
        let (a, b) = (page(0), page(2));
        let t = Arc::new(RcuRadixTree::<PagePtr, S>::new());
        for p in [a, b] {
            if t.lock()
                .insert(p.index.load(Ordering::Relaxed), PagePtr(p))
                .is_err()
            {
                panic!("distinct indices");
            }
        }
        let reader = {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let r = t.read();
                let got = r.get_speculative(0, |p| {
                    assert!(std::ptr::eq(p, a));
                    // The reference is to the `'static` page, not to the
                    // guard's borrow of it.
                    try_get(a)
                });
                if let Some(Entry::Item(page)) = got {
                    assert_eq!(
                        page.0.index.load(Ordering::Relaxed),
                        0,
                        "the reader holds a page that moved to another index"
                    );
                }
            })
        };
        t.lock().delete(2).unwrap();
        if a.count
            .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            let mut w = t.lock();
            w.delete(0).unwrap();
            a.index.store(3, Ordering::Relaxed);
            a.count.store(1, Ordering::Release);
            if w.insert(3, PagePtr(a)).is_err() {
                panic!("index 3 free");
            }
        }
        reader.join().unwrap();
        t.lock().assert_invariants();
    });
}

/// `get_arc` against a delete and a re-insert of the same index with a new
/// item: the reader gets the old item, nothing, or the new one, each a
/// live reference of its own.
#[test]
fn loom_get_arc_against_delete_and_reinsert() {
    model(|| {
        let t = Arc::new(RcuRadixTree::<std::sync::Arc<u64>, S>::new());
        t.lock().insert(5, std::sync::Arc::new(1)).unwrap();
        let reader = {
            let t = Arc::clone(&t);
            thread::spawn(move || {
                let got = t.read().get_arc(5).and_then(Entry::item).map(|a| *a);
                assert!(matches!(got, None | Some(1) | Some(2)), "{got:?}");
            })
        };
        {
            let mut w = t.lock();
            w.delete(5).unwrap();
            w.insert(5, std::sync::Arc::new(2)).unwrap();
        }
        reader.join().unwrap();
    });
}
