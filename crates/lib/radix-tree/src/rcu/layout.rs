//! The shared tree's slots: one atomic word each, a tagged pointer as in
//! the kernel's `void __rcu *slots[]`, and the [`SharedPointer`] items it
//! points to.
//!
//! A slot word is, by its low bits (the XArray's encoding, 4.20):
//!
//! | word | holds |
//! | --- | --- |
//! | `0` | nothing |
//! | `v << 1 \| 1` | a value entry `v` (63 bits, `xa_mk_value()`) |
//! | `node \| 2` | a child node (an internal entry, `xa_mk_node()`) |
//! | `2` | the retry marker (`RADIX_TREE_RETRY`, the XArray's `XA_RETRY_ENTRY`) |
//! | `item` (low 2 bits 0) | an item: a [`SharedPointer::into_raw`] pointer |
//!
//! Item pointers must therefore be 4-byte aligned, as the XArray requires
//! of the pointers it stores; `align_of::<Target>() >= 4` is checked when
//! the tree is built.

use std::marker::PhantomData;
use std::ptr;
use std::sync::Arc;

use super::epoch::{Domain, Guard};
use super::sync::{AtomicPtr, AtomicU8, AtomicU64, Ordering};
use crate::entry::{Entry, MAX_TAGS};
use crate::node::{Layout, Node, SLOTS, View};

/// An owning pointer that a [`RcuRadixTree`](crate::RcuRadixTree) slot
/// holds, as the kernel's page-cache slots hold `struct page *`: the tree
/// keeps it as a raw pointer while the entry is in the tree, and drops it a
/// grace period after the entry leaves (so a reader that found it can still
/// read it). Implemented for `Box<T>` and `Arc<T>`.
///
/// # Safety
///
/// * [`into_raw`](Self::into_raw) returns a non-null pointer, aligned to at
///   least 4 bytes, through which `Target` can be read (from any thread) until
///   [`from_raw`](Self::from_raw) has been called on it and the result
///   dropped;
/// * `from_raw(into_raw(p))` gives back `p`, and nothing else frees the
///   target meanwhile.
pub unsafe trait SharedPointer: Sized {
    /// What the pointer points to (a lookup lends `&Target`).
    type Target;

    /// Gives up ownership as a raw pointer (`Box::into_raw`).
    fn into_raw(self) -> *const Self::Target;

    /// Takes back ownership of a pointer from [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    ///
    /// `ptr` came from `into_raw` and is taken back at most once.
    unsafe fn from_raw(ptr: *const Self::Target) -> Self;
}

// SAFETY: `Box::into_raw` gives the box's unique, non-null, `T`-aligned
// pointer, valid until `Box::from_raw` takes it back; the 4-byte alignment
// is checked against `align_of::<T>()` when a tree is built.
unsafe impl<T> SharedPointer for Box<T> {
    type Target = T;

    #[inline]
    fn into_raw(self) -> *const T {
        Box::into_raw(self)
    }

    #[inline]
    unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: the caller passes a pointer from `into_raw`, once.
        unsafe { Box::from_raw(ptr.cast_mut()) }
    }
}

// SAFETY: `Arc::into_raw` keeps the strong count the `Arc` held, so the
// target stays valid until `Arc::from_raw` takes that count back and it is
// dropped; the pointer is `T`-aligned and non-null.
unsafe impl<T> SharedPointer for Arc<T> {
    type Target = T;

    #[inline]
    fn into_raw(self) -> *const T {
        Arc::into_raw(self)
    }

    #[inline]
    unsafe fn from_raw(ptr: *const T) -> Self {
        // SAFETY: the caller passes a pointer from `into_raw`, once.
        unsafe { Arc::from_raw(ptr) }
    }
}

/// The shared tree's layout: atomic slot words and bitmaps, changed by one
/// writer at a time through `&Node` while readers read them.
pub(crate) struct Shared<P>(PhantomData<P>);

/// A node of the shared tree.
pub(crate) type SharedNode<P> = Node<Shared<P>>;

const VALUE_TAG: usize = 1;
const INTERNAL_TAG: usize = 2;
const KIND_MASK: usize = 3;
/// The retry marker's address: an internal entry with no node.
const RETRY: usize = INTERNAL_TAG;

impl<P: SharedPointer> Layout for Shared<P> {
    type Slot = AtomicPtr<()>;
    type Word = AtomicU64;
    type Count = AtomicU8;
    type Item = P::Target;

    #[inline(always)]
    fn bits(word: &AtomicU64) -> u64 {
        word.load(Ordering::Relaxed)
    }

    #[inline(always)]
    fn count(count: &AtomicU8) -> u32 {
        u32::from(count.load(Ordering::Relaxed))
    }

    /// `rcu_dereference(*slot)`: an acquire load, paired with the writer's
    /// release store that published what the word points to.
    #[inline(always)]
    fn view(slot: &AtomicPtr<()>) -> View<'_, Self> {
        decode(slot.load(Ordering::Acquire))
    }
}

/// What a slot word holds.
///
/// The lifetime is the caller's: every slot a reader reaches was reached
/// from the tree's root inside a pinned section that outlives the borrow
/// (`ReadGuard` and `WriteGuard` hand out references bounded by their own
/// borrow), and a node or item unlinked from the tree is freed only after
/// every section pinned before its unlinking has ended. `decode` is the one
/// place that turns a word into a reference; `root` in `mod.rs` and
/// `write.rs` are the only callers that start from the root.
#[inline(always)]
pub(crate) fn decode<'a, P: SharedPointer>(word: *mut ()) -> View<'a, Shared<P>> {
    let addr = word.addr();
    if addr == 0 {
        View::Empty
    } else if addr & VALUE_TAG != 0 {
        View::Entry(Entry::Value((addr >> 1) as u64))
    } else if addr & KIND_MASK == INTERNAL_TAG {
        if addr == RETRY {
            return View::Retry;
        }
        let node = node_ptr::<P>(word);
        // SAFETY: an internal word other than RETRY is a node the writer
        // made with `alloc_node` and published with a release store (this
        // load was an acquire), and it is not freed before the grace period
        // of the pinned section this walk runs in (see above).
        let node = unsafe { &*node };
        #[cfg(loom)]
        assert!(
            !node.freed.load(std::sync::atomic::Ordering::SeqCst),
            "a reader reached a node after its grace period"
        );
        View::Node(node)
    } else {
        // SAFETY: a word with the low two bits clear is an item pointer from
        // `SharedPointer::into_raw`, valid until `from_raw` takes it back,
        // which `retire_item` defers past the grace period (as above).
        View::Entry(Entry::Item(unsafe {
            &*word.cast_const().cast::<P::Target>()
        }))
    }
}

/// The word for a value entry (`xa_mk_value(v)`); `v <= VALUE_MAX`.
#[inline]
pub(crate) fn value_word(v: u64) -> *mut () {
    ptr::without_provenance_mut(((v as usize) << 1) | VALUE_TAG)
}

/// The word for a node.
#[inline]
pub(crate) fn node_word<P: SharedPointer>(node: *const SharedNode<P>) -> *mut () {
    node.cast_mut().cast::<()>().map_addr(|a| a | INTERNAL_TAG)
}

/// The node pointer in a node word, with the provenance of the pointer
/// `alloc_node` returned (what freeing it needs: not one derived from a
/// shared reference).
#[inline]
pub(crate) fn node_ptr<P: SharedPointer>(word: *mut ()) -> *mut SharedNode<P> {
    debug_assert_eq!(word.addr() & KIND_MASK, INTERNAL_TAG);
    word.map_addr(|a| a & !KIND_MASK).cast::<SharedNode<P>>()
}

/// The retry marker.
#[inline]
pub(crate) fn retry_word() -> *mut () {
    ptr::without_provenance_mut(RETRY)
}

/// The word for an entry the writer takes ownership of.
#[inline]
pub(crate) fn entry_word<P: SharedPointer>(entry: Entry<P>) -> *mut () {
    match entry {
        Entry::Item(p) => {
            let raw = p.into_raw();
            assert_eq!(
                raw.addr() & KIND_MASK,
                0,
                "SharedPointer::into_raw gave a pointer not aligned to 4 bytes"
            );
            raw.cast_mut().cast::<()>()
        }
        Entry::Value(v) => value_word(v),
    }
}

/// The node a word points to, for the writer (which holds the lock, and
/// pins, so the node stays valid while it uses it).
#[inline]
pub(crate) fn as_node<'a, P: SharedPointer>(word: *mut ()) -> Option<&'a SharedNode<P>> {
    match decode::<P>(word) {
        View::Node(n) => Some(n),
        _ => None,
    }
}

/// True for an item word (not empty, value, node or retry).
#[inline]
pub(crate) fn is_item_word(word: *mut ()) -> bool {
    word.addr() != 0 && word.addr() & KIND_MASK == 0
}

/// True for a value word.
#[inline]
pub(crate) fn is_value_word(word: *mut ()) -> bool {
    word.addr() & VALUE_TAG != 0
}

/// An empty node at `height`, on the heap, as a raw pointer the tree owns
/// (`radix_tree_node_alloc()`).
pub(crate) fn alloc_node<P: SharedPointer>(height: u32) -> *mut SharedNode<P> {
    #[cfg(not(loom))]
    let slots = [const { AtomicPtr::new(ptr::null_mut()) }; SLOTS];
    #[cfg(loom)]
    let slots = std::array::from_fn::<_, SLOTS, _>(|_| AtomicPtr::new(ptr::null_mut()));
    Box::into_raw(Box::new(Node {
        height: height as u8,
        nr_values: AtomicU8::new(0),
        present: AtomicU64::new(0),
        tags: std::array::from_fn::<_, MAX_TAGS, _>(|_| AtomicU64::new(0)),
        slots,
        #[cfg(loom)]
        freed: std::sync::atomic::AtomicBool::new(false),
    }))
}

/// A raw pointer sent to the thread that runs a deferred destructor, which
/// takes ownership of an `O` through it (the node itself, or the item's
/// `SharedPointer`).
struct SendPtr<O, T>(*mut T, PhantomData<O>);

// SAFETY: once its grace period has passed, the destructor alone owns the
// `O` behind the pointer, and `O` is `Send`.
unsafe impl<O: Send, T> Send for SendPtr<O, T> {}

impl<O, T> SendPtr<O, T> {
    fn new(p: *mut T) -> Self {
        SendPtr(p, PhantomData)
    }

    /// The pointer (a method, so a closure captures the whole `SendPtr`).
    fn get(self) -> *mut T {
        self.0
    }
}

/// Frees a node now: for nodes no reader can reach (a branch never
/// published, or the whole tree when it is dropped).
///
/// # Safety
///
/// `node` came from [`alloc_node`], is freed once, and no reference to it
/// is used afterwards.
pub(crate) unsafe fn free_node_now<P: SharedPointer>(node: *mut SharedNode<P>) {
    // SAFETY: as the caller promises.
    drop(unsafe { Box::from_raw(node) });
}

/// `radix_tree_node_free()` with `call_rcu()`: frees the node behind
/// `word`, which the writer has just unlinked, after the grace period.
///
/// # Safety
///
/// `word` is a node word (from [`node_word`] of an [`alloc_node`]
/// pointer), no longer reachable from the root for a reader that pins from
/// now on, and retired once.
pub(crate) unsafe fn retire_node<P: SharedPointer + 'static>(
    guard: &Guard<'_>,
    domain: &Domain,
    word: *mut (),
) {
    let node = SendPtr::<SharedNode<P>, _>::new(node_ptr::<P>(word));
    #[cfg(not(loom))]
    {
        let _ = domain;
        guard.defer(move || {
            // SAFETY: the grace period is over: no reader holds the node,
            // and the tree no longer points to it.
            unsafe { free_node_now(node.get()) }
        });
    }
    #[cfg(loom)]
    {
        let graveyard = domain.graveyard();
        guard.defer(move || {
            // SAFETY: as above; the node is kept, marked, until the domain
            // goes, so a stale reader trips the mark instead of freed memory.
            let node = unsafe { Box::from_raw(node.get()) };
            node.freed.store(true, std::sync::atomic::Ordering::SeqCst);
            graveyard.lock().expect("graveyard").push(node);
        });
    }
}

/// Drops the item behind `word` (an item word the writer has just removed
/// from the tree) after the grace period.
///
/// # Safety
///
/// `word` is an item word from [`entry_word`], no longer in any slot a
/// reader pinning from now on can reach, and retired once.
pub(crate) unsafe fn retire_item<P: SharedPointer + Send + 'static>(
    guard: &Guard<'_>,
    word: *mut (),
) {
    let item = SendPtr::<P, _>::new(word.cast::<P::Target>());
    guard.defer(move || {
        // SAFETY: the grace period is over, and the tree held this pointer's
        // ownership (from `into_raw`) until it unlinked it.
        drop(unsafe { P::from_raw(item.get()) });
    });
}

/// Drops the item behind `word` now (the tree is being dropped).
///
/// # Safety
///
/// As [`retire_item`], with no reader left at all.
pub(crate) unsafe fn drop_item_now<P: SharedPointer>(word: *mut ()) {
    // SAFETY: as the caller promises.
    drop(unsafe { P::from_raw(word.cast_const().cast::<P::Target>()) });
}
