//! The Linux radix tree: an integer-keyed sparse map of wide nodes, with
//! tags, gang lookups, preload and value entries.
//!
//! Mirrors lib/radix-tree.c as of 2.6.24 (`radix_tree_insert`,
//! `radix_tree_lookup[_slot]`, `radix_tree_delete`, `radix_tree_extend`,
//! `radix_tree_shrink`, `radix_tree_tag_{set,clear,get}`,
//! `radix_tree_tagged`, `radix_tree_gang_lookup[_tag]`,
//! `radix_tree_preload`, `radix_tree_next_hole`) with three later additions:
//! the third tag and `radix_tree_range_tag_if_tagged` (2.6.35), exceptional
//! entries (3.1; encoded as lib/xarray.c's value entries, 4.20), and the
//! corrected preload size (`RADIX_TREE_PRELOAD_SIZE`). Seed page:
//! 004_9e86ca0f77558f15.txt, "Trees I: Radix trees" (LWN, March 2006).
//!
//! # Data structures
//!
//! ```text
//!  RadixTree { height: 3, root_tags, root } ── keys 0 ..= 2^18 - 1
//!        │
//!        ▼ node (shift 12)        slots[64]: offset = (index >> 12) & 63
//!   ┌──┬──┬──┬── ─ ─ ─┬──┐        present: u64   (bit i: slot i in use)
//!   │  │ ▼│  │        │  │        tags[3]: u64   (bit i: subtree i has tag)
//!   └──┴┼─┴──┴── ─ ─ ─┴──┘
//!       ▼ node (shift 6)          offset = (index >> 6) & 63
//!   ┌──┬──┬──┬── ─ ─ ─┬──┐
//!   │ ▼│  │  │        │ ▼│
//!   └─┼┴──┴──┴── ─ ─ ─┴─┼┘
//!     ▼ leaf (shift 0)  ▼         offset = index & 63
//!   [item|value|·|...] [...]      entries: Item(T) or Value(u64)
//! ```
//!
//! A tree of height `h` covers indices `0 ..= maxindex(h)`,
//! `maxindex(h) = 2^(6h) - 1` (saturating: height 11 covers all of `u64`).
//! Height 0 holds at most the entry at index 0, stored in the root with no
//! node. Nodes exist only on paths to entries: a sparse key set costs nodes
//! per key, a dense one `1/64` of a node per key plus the levels above.
//!
//! # Invariants
//!
//! * `height = 0` iff no node exists; else
//!   `maxindex(height - 1) < max index <= maxindex(height)`: the height is
//!   minimal after every operation (insert grows it one level at a time with
//!   the old root in slot 0; delete frees empty nodes bottom-up and shrinks
//!   while the root's only child is in slot 0).
//! * every node has `count = popcount(present) >= 1`.
//! * tag propagation: bit `i` of `node.tags[t]` is set iff some entry below
//!   slot `i` has tag `t`; the root's bit `t` is set iff any entry does, so
//!   [`RadixTree::tagged`] is O(1).
//! * `len = nr_items + nr_values`; `nodes` = nodes reachable from the root.
//!
//! [`RadixTree::assert_invariants`] checks all of these.
//!
//! # Locking
//!
//! None inside [`RadixTree`], as in the kernel ("none of the radix tree
//! functions perform any sort of locking internally"): Rust's `&`/`&mut`
//! give the exclusion the kernel leaves to its callers.
//!
//! [`RcuRadixTree`] (module [`rcu`]) is the tree of the lockless page cache
//! (2.6.27, the patch the seed page mentions): the same node layout, tags
//! and read-side code, with readers that look up, gang-look-up and
//! tag-look-up without a lock while one writer at a time, under the tree
//! lock, changes the tree; nodes and items leave it after a grace period.
//! The model's page cache keeps the single-threaded tree.
//!
//! # Memory
//!
//! Nodes are heap boxes of `64` slots, `max(size_of::<T>(), 8) + 8` bytes
//! each (the slot's kind is an enum tag where the kernel uses pointer bits),
//! plus 32 bytes of bitmaps; [`RadixTree::memory`] reports exactly what is
//! held. Allocation can be limited ([`RadixTree::set_node_limit`]) to model
//! `kmem_cache_alloc()` failing: insert then fails with `ENOMEM` unless
//! [`RadixTree::preload`] reserved nodes beforehand, and a failed insert
//! leaves the tree unchanged.
//!
//! # Example
//!
//! ```
//! use klab_radix_tree::{Entry, RadixTree, Tag};
//!
//! let mut pages = RadixTree::<u32>::new();
//! pages.insert(0, 10).unwrap();
//! assert_eq!((pages.height(), pages.nodes()), (0, 0)); // index 0 needs no node
//! pages.insert(4096, 11).unwrap();
//! assert_eq!((pages.height(), pages.nodes()), (3, 5));
//!
//! pages.tag_set(4096, Tag::T0).unwrap(); // dirty
//! assert!(pages.tagged(Tag::T0));
//! let mut dirty = Vec::new();
//! pages.gang_lookup_tag(0, 16, Tag::T0, &mut dirty);
//! assert_eq!(dirty, [(4096, Entry::Item(&11))]);
//!
//! // Evict index 0, leaving a shadow (value) entry in its slot.
//! let old = pages.lookup_slot(0).unwrap().replace(Entry::Value(123)).unwrap();
//! assert_eq!(old, Entry::Item(10));
//! assert!(pages.lookup(0).unwrap().is_value());
//!
//! assert_eq!(pages.delete(4096), Some(Entry::Item(11)));
//! assert!(!pages.tagged(Tag::T0));
//! assert_eq!((pages.height(), pages.nodes()), (0, 0));
//! pages.assert_invariants();
//! ```
// `unsafe` lives only in `rcu` (atomic tagged-pointer slots and deferred
// frees), which allows it, and in `contention`'s thread CPU clock; the
// single-threaded tree is safe code.
#![deny(unsafe_code)]

#[cfg(target_pointer_width = "64")]
pub mod contention;
mod entry;
mod error;
mod iter;
pub mod keysets;
mod leaf;
mod node;
#[cfg(target_pointer_width = "64")]
pub mod rcu;
#[cfg(feature = "serde")]
mod serde_impl;
mod tree;

pub use entry::{Entry, MAX_TAGS, Tag, VALUE_BITS, VALUE_MAX};
pub use error::{EEXIST, EINVAL, ENOENT, ENOMEM, Error, InsertError};
pub use iter::{GangResults, Iter, WalkCost};
pub use leaf::MAP_SHIFT;
#[cfg(target_pointer_width = "64")]
pub use rcu::{RcuIter, RcuRadixTree, ReadGuard, SharedPointer, WriteGuard};
pub use tree::{MemoryUsage, RadixTree, SlotMut};

// Not under Miri: safe code of the single-threaded tree, which would take
// Miri hours; Miri checks the unsafe `rcu` module (its tests and tests/rcu_stress.rs).
#[cfg(all(test, not(miri)))]
mod tests;
