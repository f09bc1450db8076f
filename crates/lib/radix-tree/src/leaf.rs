//! Leaf-node occupancy, for users that track nodes by what they hold.
//!
//! The page cache keeps radix-tree nodes that hold only shadow entries on an
//! LRU so a shrinker can free them (3.15: `workingset_update_node()`,
//! called whenever a node's `count` changes, with the shadow count packed
//! into `node->count` above `RADIX_TREE_COUNT_SHIFT`). The kernel hooks
//! every update; here the user asks after its own update, which needs only
//! the leaf's counts.

use crate::node::{MAX_SHIFT, Node, Slot};
use crate::tree::RadixTree;

/// `RADIX_TREE_MAP_SHIFT` of the default tree: a leaf covers the
/// `2^MAP_SHIFT` indices that share `index >> MAP_SHIFT`.
pub const MAP_SHIFT: u32 = MAX_SHIFT;

impl<T, const SHIFT: u32> RadixTree<T, SHIFT> {
    /// The leaf node covering `index`: `(items, values)` it holds, or `None`
    /// when no node covers it (an empty path, or a tree of height 0 whose
    /// one entry lives in the root).
    ///
    /// ```
    /// use klab_radix_tree::RadixTree;
    ///
    /// let mut t = RadixTree::<u32>::new();
    /// t.insert(0, 1).unwrap();
    /// assert_eq!(t.leaf_counts(0), None); // height 0: no node
    /// t.insert(5, 2).unwrap();
    /// t.insert_value(63, 7).unwrap();
    /// assert_eq!(t.leaf_counts(40), Some((2, 1)));
    /// assert_eq!(t.leaf_counts(64), None);
    /// ```
    pub fn leaf_counts(&self, index: u64) -> Option<(usize, usize)> {
        let Slot::Node(top) = &self.root else {
            return None;
        };
        if index > Self::maxindex(self.height) {
            return None;
        }
        let mut node: &Node<T> = top;
        let mut shift = (self.height - 1) * SHIFT;
        while shift > 0 {
            match &node.slots[Self::offset(index, shift)] {
                Slot::Node(child) => node = child,
                _ => return None,
            }
            shift -= SHIFT;
        }
        let values = usize::from(node.nr_values);
        Some((node.count() as usize - values, values))
    }
}
