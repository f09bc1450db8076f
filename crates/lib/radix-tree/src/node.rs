//! Nodes and slots, and the geometry that a map shift implies.
//!
//! A node is `struct radix_tree_node` of lib/radix-tree.c: its height, 64
//! slots and one 64-bit tag bitmap per tag. Both forms of the tree use this
//! one layout, [`Node<L>`]; the [`Layout`] parameter says how a slot and a
//! bitmap word are stored:
//!
//! * [`Owned<T>`]: the single-threaded [`RadixTree`](crate::RadixTree), whose
//!   writers hold `&mut`: a slot is the [`Slot<T>`] enum holding the item
//!   itself, a bitmap a plain `u64`;
//! * `rcu::Shared<P>`: the [`RcuRadixTree`](crate::RcuRadixTree), read
//!   without a lock while a writer changes it: a slot is one atomic word (a
//!   tagged pointer, as the kernel's `void __rcu *slots[]`), a bitmap an
//!   atomic `u64`.
//!
//! The walks that read a tree (lookup, tag lookup, gang lookups, iteration
//! in `iter.rs`) and the invariant check (`check_node`) are written once
//! over [`Layout`], through [`Layout::view`] (what a slot holds) and
//! [`Layout::bits`] (a bitmap's value).
//!
//! Two differences from the kernel's node, both for speed and neither
//! visible outside the crate:
//!
//! * the kernel keeps `count`, the number of non-NULL slots; klab keeps
//!   `present`, the bitmap of non-empty slots, and `count = popcount(present)`.
//!   Scans then skip holes with one `trailing_zeros`, as tagged scans already
//!   do with the tag bitmaps (the kernel's `__lookup_tag` carries a FIXME
//!   asking for `find_next_bit()`).
//! * `height` is the node's distance from the bottom (a leaf is 1), as in
//!   2.6.27's `radix_tree_node.height`. It never changes after the node is
//!   made (growing and shrinking add and drop nodes above the old root), so
//!   a lockless reader takes the height from the node it loaded rather than
//!   from the root, which a writer may change under it
//!   (`radix_tree_lookup_element()`). The single-threaded tree keeps it too
//!   and checks it, but walks with the root's height.
//!
//! `nr_values` counts value entries among the slots, like `xa_node.nr_values`
//! (4.20) and the exceptional count packed into `count` (3.15): the page
//! cache uses it to find nodes that hold only shadow entries.

use std::marker::PhantomData;
use std::mem;

use crate::entry::{Entry, MAX_TAGS};

/// The widest map shift: 6 bits a level, 64 slots a node, as in the kernel.
pub(crate) const MAX_SHIFT: u32 = 6;
/// Slots in a node as laid out in memory (`RADIX_TREE_MAP_SIZE` for shift 6).
/// Smaller shifts use the first `1 << SHIFT` of them.
pub(crate) const SLOTS: usize = 1 << MAX_SHIFT;

/// What one slot holds. In an interior node every non-empty slot is a
/// [`Slot::Node`]; in a leaf node (height 1) it is an item or a value. The
/// root slot holds a node when the height is above 0, else the single entry
/// at index 0 (or nothing).
pub(crate) enum Slot<T> {
    Empty,
    Node(Box<OwnedNode<T>>),
    Item(T),
    Value(u64),
}

impl<T> Slot<T> {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Slot::Empty)
    }

    /// The entry in a leaf slot (`None` for empty, and for a node, which a
    /// leaf never holds).
    #[inline]
    pub(crate) fn entry(&self) -> Option<Entry<&T>> {
        match self {
            Slot::Item(t) => Some(Entry::Item(t)),
            Slot::Value(v) => Some(Entry::Value(*v)),
            Slot::Empty | Slot::Node(_) => None,
        }
    }

    #[inline]
    pub(crate) fn from_entry(e: Entry<T>) -> Self {
        match e {
            Entry::Item(t) => Slot::Item(t),
            Entry::Value(v) => Slot::Value(v),
        }
    }

    /// Takes the entry out, leaving the slot empty (for a node slot, leaves
    /// it untouched and returns `None`).
    #[inline]
    pub(crate) fn take_entry(&mut self) -> Option<Entry<T>> {
        match self {
            Slot::Item(_) | Slot::Value(_) => match mem::replace(self, Slot::Empty) {
                Slot::Item(t) => Some(Entry::Item(t)),
                Slot::Value(v) => Some(Entry::Value(v)),
                Slot::Empty | Slot::Node(_) => None,
            },
            Slot::Empty | Slot::Node(_) => None,
        }
    }
}

/// How one form of the tree stores a node's slots and bitmaps (see the
/// module header).
pub(crate) trait Layout: Sized {
    /// One slot.
    type Slot;
    /// One 64-bit bitmap (`present`, `tags[t]`).
    type Word;
    /// The value-entry count.
    type Count;
    /// What an item slot lends to a lookup.
    type Item;

    /// The bitmap's value. The shared tree reads it with a relaxed load: a
    /// bitmap only says where to look, the slot says what is there.
    fn bits(word: &Self::Word) -> u64;

    /// The value-entry count.
    fn count(count: &Self::Count) -> u32;

    /// What `slot` holds.
    fn view(slot: &Self::Slot) -> View<'_, Self>;
}

/// What a slot holds, as a walk sees it.
pub(crate) enum View<'a, L: Layout> {
    Empty,
    Node(&'a Node<L>),
    Entry(Entry<&'a L::Item>),
    /// Only in the shared tree: the slot of a node that left the tree when
    /// it shrank to height 0, whose entry moved to the root
    /// (`RADIX_TREE_RETRY`); the walk starts again from the root.
    Retry,
}

/// A walk met [`View::Retry`] and must start again from the root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Retry;

impl<'a, L: Layout> View<'a, L> {
    /// The entry of a leaf slot; `Err(Retry)` for a retry marker; `None`
    /// otherwise (a leaf never holds a node).
    #[inline(always)]
    pub(crate) fn entry(self) -> Result<Option<Entry<&'a L::Item>>, Retry> {
        match self {
            View::Entry(e) => Ok(Some(e)),
            View::Retry => Err(Retry),
            View::Empty | View::Node(_) => Ok(None),
        }
    }
}

/// The single-threaded tree's layout: slots own their items, bitmaps are
/// plain words changed through `&mut`.
pub(crate) struct Owned<T>(PhantomData<T>);

impl<T> Layout for Owned<T> {
    type Slot = Slot<T>;
    type Word = u64;
    type Count = u8;
    type Item = T;

    #[inline(always)]
    fn bits(word: &u64) -> u64 {
        *word
    }

    #[inline(always)]
    fn count(count: &u8) -> u32 {
        u32::from(*count)
    }

    #[inline(always)]
    fn view(slot: &Slot<T>) -> View<'_, Self> {
        match slot {
            Slot::Empty => View::Empty,
            Slot::Node(n) => View::Node(n),
            Slot::Item(t) => View::Entry(Entry::Item(t)),
            Slot::Value(v) => View::Entry(Entry::Value(*v)),
        }
    }
}

/// A node of the single-threaded tree.
pub(crate) type OwnedNode<T> = Node<Owned<T>>;

/// One node: `struct radix_tree_node`.
///
/// Invariants (checked by [`check_node`] for both layouts):
/// * `present` bit `i` set iff `slots[i]` is not empty; no bit at or above
///   `1 << SHIFT`; `present != 0` for every node in a tree (empty nodes are
///   freed at once);
/// * `tags[t] ⊆ present`; in an interior node, bit `i` of `tags[t]` is set
///   iff the child in slot `i` has any bit of `tags[t]` set;
/// * `nr_values` = number of value slots;
/// * `height` = 1 for a leaf, the parent's `height - 1` for a child.
///
/// `repr(C)`, header first: a lockless reader reads the top node's height
/// and then one slot, so the header shares a cache line with the first
/// slots rather than trailing the 64 of them.
#[repr(C)]
pub(crate) struct Node<L: Layout> {
    pub(crate) height: u8,
    pub(crate) nr_values: L::Count,
    pub(crate) present: L::Word,
    pub(crate) tags: [L::Word; MAX_TAGS],
    pub(crate) slots: [L::Slot; SLOTS],
    /// Under `--cfg loom` only: set when the shared tree's grace period for
    /// this node has ended, so a reader that still reaches it fails an
    /// assertion (see `rcu/epoch.rs`). A std atomic: loom runs one thread
    /// at a time, so it reads as the run's order, without adding states.
    #[cfg(loom)]
    pub(crate) freed: std::sync::atomic::AtomicBool,
}

impl<T> Node<Owned<T>> {
    /// An empty node at `height` (0 for a node taken into the preload
    /// reserve, which gets its height when the tree takes it).
    pub(crate) fn new_boxed(height: u32) -> Box<Self> {
        Box::new(Node {
            height: height as u8,
            slots: [const { Slot::Empty }; SLOTS],
            present: 0,
            tags: [0; MAX_TAGS],
            nr_values: 0,
            #[cfg(loom)]
            freed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Non-empty slots: the kernel's `node->count`.
    #[inline]
    pub(crate) fn count(&self) -> u32 {
        self.present.count_ones()
    }

    /// True when any slot carries `tag` (`any_tag_set()`).
    #[inline]
    pub(crate) fn any_tag(&self, tag: usize) -> bool {
        self.tags[tag] != 0
    }
}

/// Entries found by [`check_node`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Census {
    pub(crate) items: usize,
    pub(crate) values: usize,
    pub(crate) nodes: usize,
}

/// Checks the node invariants (see [`Node`]) of `node` and everything below
/// it, at `level` (its height) covering indices from `base`, and counts what
/// it holds into `census`; panics with the first broken one. For both
/// layouts: the single-threaded tree's `assert_invariants` and the shared
/// tree's (under its writer lock, so nothing changes during the check).
pub(crate) fn check_node<L: Layout>(
    node: &Node<L>,
    shift: u32,
    level: u32,
    base: u64,
    value_ok: &dyn Fn(u64) -> bool,
    census: &mut Census,
) {
    census.nodes += 1;
    let present = L::bits(&node.present);
    assert_eq!(
        u32::from(node.height),
        level,
        "node height at level {level}, index {base:#x}"
    );
    assert_ne!(present, 0, "empty node at level {level}, index {base:#x}");
    let map_size = 1usize << shift;
    if map_size < SLOTS {
        assert_eq!(present >> map_size, 0, "slot beyond MAP_SIZE in use");
    }
    let slot_shift = (level - 1) * shift;
    let mut values = 0u32;
    // Slots at and above MAP_SIZE are never used (their present bits are
    // checked above), so only the first MAP_SIZE are read.
    for (i, slot) in node.slots.iter().enumerate().take(map_size) {
        let bit = 1u64 << i;
        let view = L::view(slot);
        assert_eq!(
            present & bit != 0,
            !matches!(view, View::Empty),
            "present bit {i} disagrees with the slot at level {level}, index {base:#x}"
        );
        let index = base.wrapping_add((i as u64) << slot_shift);
        match view {
            View::Empty => {}
            View::Retry => panic!("a retry marker in a live node at index {index:#x}"),
            View::Node(child) => {
                assert!(level > 1, "a node in a leaf slot at index {index:#x}");
                check_node(child, shift, level - 1, index, value_ok, census);
                for t in 0..MAX_TAGS {
                    assert_eq!(
                        L::bits(&node.tags[t]) & bit != 0,
                        L::bits(&child.tags[t]) != 0,
                        "tag {t} at level {level} slot {i} (index {index:#x}) disagrees with its child"
                    );
                }
            }
            View::Entry(Entry::Item(_)) => {
                assert_eq!(level, 1, "an item in an interior slot at index {index:#x}");
                census.items += 1;
            }
            View::Entry(Entry::Value(v)) => {
                assert_eq!(level, 1, "a value in an interior slot at index {index:#x}");
                assert!(
                    value_ok(v),
                    "value {v:#x} over VALUE_MAX at index {index:#x}"
                );
                census.values += 1;
                values += 1;
            }
        }
    }
    for t in 0..MAX_TAGS {
        assert_eq!(
            L::bits(&node.tags[t]) & !present,
            0,
            "tag {t} set on an empty slot at level {level}, index {base:#x}"
        );
    }
    assert_eq!(
        L::count(&node.nr_values),
        values,
        "nr_values at index {base:#x}"
    );
}

/// Bytes of one node as allocated: what memory accounting multiplies by.
pub(crate) const fn node_size<T>() -> usize {
    mem::size_of::<OwnedNode<T>>()
}

/// `RADIX_TREE_MAX_PATH`: the most levels a tree with this shift can have,
/// `ceil(64 / shift)` (11 for shift 6).
pub(crate) const fn max_path(shift: u32) -> u32 {
    64_u32.div_ceil(shift)
}

/// `radix_tree_maxindex(height)`: the largest index a tree of `height` can
/// hold, `2^(shift*height) - 1`, saturating at `u64::MAX`.
#[inline]
pub(crate) const fn maxindex(shift: u32, height: u32) -> u64 {
    let bits = shift * height;
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

/// The least height whose `maxindex` covers `index`: 0 for index 0, else
/// `ceil(bits(index) / shift)`.
#[inline]
pub(crate) const fn min_height(shift: u32, index: u64) -> u32 {
    let bits = 64 - index.leading_zeros();
    bits.div_ceil(shift)
}
