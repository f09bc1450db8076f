//! Nodes and slots, and the geometry that a map shift implies.
//!
//! A node is `struct radix_tree_node` of lib/radix-tree.c: 64 slots and one
//! 64-bit tag bitmap per tag. Two differences, both for speed and neither
//! visible outside the crate:
//!
//! * the kernel keeps `count`, the number of non-NULL slots; klab keeps
//!   `present`, the bitmap of non-empty slots, and `count = popcount(present)`.
//!   Scans then skip holes with one `trailing_zeros`, as tagged scans already
//!   do with the tag bitmaps (the kernel's `__lookup_tag` carries a FIXME
//!   asking for `find_next_bit()`).
//! * the kernel's node records its `height`; klab's does not need to: the
//!   root records the height and every walk counts down from it.
//!
//! `nr_values` counts value entries among the slots, like `xa_node.nr_values`
//! (4.20) and the exceptional count packed into `count` (3.15): the page
//! cache uses it to find nodes that hold only shadow entries.

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
    Node(Box<Node<T>>),
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

/// One node: `struct radix_tree_node`.
///
/// Invariants (checked by `RadixTree::assert_invariants`):
/// * `present` bit `i` set iff `slots[i]` is not empty; no bit at or above
///   `1 << SHIFT`; `present != 0` for every node in a tree (empty nodes are
///   freed at once);
/// * `tags[t] ⊆ present`; in an interior node, bit `i` of `tags[t]` is set
///   iff the child in slot `i` has any bit of `tags[t]` set;
/// * `nr_values` = number of [`Slot::Value`] slots.
pub(crate) struct Node<T> {
    pub(crate) slots: [Slot<T>; SLOTS],
    pub(crate) present: u64,
    pub(crate) tags: [u64; MAX_TAGS],
    pub(crate) nr_values: u8,
}

impl<T> Node<T> {
    pub(crate) fn new_boxed() -> Box<Self> {
        Box::new(Node {
            slots: [const { Slot::Empty }; SLOTS],
            present: 0,
            tags: [0; MAX_TAGS],
            nr_values: 0,
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

/// Bytes of one node as allocated: what memory accounting multiplies by.
pub(crate) const fn node_size<T>() -> usize {
    mem::size_of::<Node<T>>()
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
