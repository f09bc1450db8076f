//! What a slot holds: an item or a value entry, and the tags an entry can
//! carry.
//!
//! The kernel stores `void *` in every slot and tells kinds apart by the low
//! bits of the word: in 3.1-4.19 an *exceptional entry* has bit 1 set
//! (`RADIX_TREE_EXCEPTIONAL_ENTRY = 2`, payload `v << 2 | 2`, 62 bits on
//! 64-bit machines); in the XArray (4.20+) a *value entry* has bit 0 set
//! (`xa_mk_value(v) = v << 1 | 1`, `BITS_PER_XA_VALUE = 63`). Callers of a
//! gang lookup test each result with `radix_tree_exceptional_entry()` /
//! `xa_is_value()`.
//!
//! klab keeps the kinds apart in the type instead: [`Entry::Item`] or
//! [`Entry::Value`], and [`Entry::is_value`] is the test. Value payloads are
//! limited to [`VALUE_BITS`] = 63 bits, the XArray's `BITS_PER_XA_VALUE`, so
//! a user that packs a shadow entry (mm/workingset.c: eviction counter, node
//! and memcg ids) sizes its fields exactly as the kernel does.

/// Bits of payload a value entry carries: 63, as `BITS_PER_XA_VALUE` on a
/// 64-bit kernel (the radix tree's exceptional entries had 62).
pub const VALUE_BITS: u32 = 63;

/// The largest payload a value entry can carry: `2^63 - 1` (`LONG_MAX`,
/// which `xa_mk_value()` accepts).
pub const VALUE_MAX: u64 = (1 << VALUE_BITS) - 1;

/// How many tags each entry has: 3, as from 2.6.35 on (0 = dirty,
/// 1 = writeback, 2 = towrite in the page cache). 2.6.16-2.6.34 had 2.
pub const MAX_TAGS: usize = 3;

/// One entry of the tree: an item of the user's type, or a small integer
/// stored in the slot itself (a value / exceptional entry).
///
/// `Entry<&T>` is what lookups return; `Entry<T>` is what inserts take and
/// deletes give back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Entry<T> {
    /// An item (in the kernel, a pointer such as a `struct page *`).
    Item(T),
    /// A value entry: at most [`VALUE_MAX`], no allocation (in the page
    /// cache, a workingset shadow entry or a swap entry).
    Value(u64),
}

impl<T> Entry<T> {
    /// True for a value entry: `radix_tree_exceptional_entry()`,
    /// `xa_is_value()`.
    #[inline]
    pub const fn is_value(&self) -> bool {
        matches!(self, Entry::Value(_))
    }

    /// True for an item.
    #[inline]
    pub const fn is_item(&self) -> bool {
        matches!(self, Entry::Item(_))
    }

    /// The item, if this is one.
    #[inline]
    pub fn item(self) -> Option<T> {
        match self {
            Entry::Item(t) => Some(t),
            Entry::Value(_) => None,
        }
    }

    /// The value's payload, if this is a value entry (`xa_to_value()`).
    #[inline]
    pub fn value(&self) -> Option<u64> {
        match self {
            Entry::Item(_) => None,
            Entry::Value(v) => Some(*v),
        }
    }

    /// Borrows the item.
    #[inline]
    pub fn as_ref(&self) -> Entry<&T> {
        match self {
            Entry::Item(t) => Entry::Item(t),
            Entry::Value(v) => Entry::Value(*v),
        }
    }

    /// Applies `f` to the item, keeping value entries as they are.
    #[inline]
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Entry<U> {
        match self {
            Entry::Item(t) => Entry::Item(f(t)),
            Entry::Value(v) => Entry::Value(v),
        }
    }
}

impl<T: Clone> Entry<&T> {
    /// Clones the borrowed item into an owned entry.
    #[inline]
    pub fn cloned(self) -> Entry<T> {
        self.map(T::clone)
    }
}

/// A tag number, `0..MAX_TAGS`. The kernel takes a bare `int` and, as the
/// 2006 page warns, "use of any tag value other than zero or one will
/// silently corrupt memory"; here an out-of-range tag cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag(u8);

impl Tag {
    /// Tag 0 (the page cache's `PAGECACHE_TAG_DIRTY`).
    pub const T0: Tag = Tag(0);
    /// Tag 1 (the page cache's `PAGECACHE_TAG_WRITEBACK`).
    pub const T1: Tag = Tag(1);
    /// Tag 2 (the page cache's `PAGECACHE_TAG_TOWRITE`, 2.6.35+).
    pub const T2: Tag = Tag(2);
    /// Every tag, in order.
    pub const ALL: [Tag; MAX_TAGS] = [Tag::T0, Tag::T1, Tag::T2];

    /// Tag `n`, or `None` when `n >= MAX_TAGS`.
    pub const fn new(n: usize) -> Option<Tag> {
        if n < MAX_TAGS {
            Some(Tag(n as u8))
        } else {
            None
        }
    }

    /// The tag's number.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}
