//! Leaf-node occupancy, for users that track nodes by what they hold.
//!
//! The page cache keeps radix-tree nodes that hold only shadow entries on an
//! LRU so a shrinker can free them (3.15: `workingset_update_node()`,
//! called whenever a node's `count` changes, with the shadow count packed
//! into `node->count` above `RADIX_TREE_COUNT_SHIFT`). The kernel hooks
//! every update; here the user asks after its own update, which needs only
//! the leaf's counts.

use crate::node::{MAX_SHIFT, OwnedNode, Slot};
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
        let mut node: &OwnedNode<T> = top;
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

    /// Nodes on the path from the root toward `index`, which are the nodes
    /// at levels `height()`, `height() - 1`, ... (a leaf is level 1) whose
    /// range holds `index`; the count stops at the first empty slot. 0 for
    /// a tree of height 0 or an index beyond `maxindex(height())`.
    ///
    /// A node is named by its level `l` and `index >> (SHIFT * l)`, which
    /// growing or shrinking the tree never changes (the kernel's
    /// `radix_tree_extend()` and `radix_tree_shrink()` add and drop nodes
    /// above the old root, with prefix 0). So a user that mirrors each node
    /// (the model allocating one slab object per node, as
    /// `radix_tree_node_alloc()` does) can tell which nodes an insert or a
    /// delete at `index` made or freed: they all lie on this path.
    ///
    /// ```
    /// use klab_radix_tree::RadixTree;
    ///
    /// let mut t = RadixTree::<u32>::new();
    /// t.insert(0, 1).unwrap();
    /// assert_eq!(t.path_nodes(0), 0);
    /// t.insert(4096, 2).unwrap(); // height 3
    /// assert_eq!((t.height(), t.nodes()), (3, 5));
    /// assert_eq!(t.path_nodes(4096), 3);
    /// assert_eq!(t.path_nodes(64), 2); // the level-2 node at 0, no leaf at 64
    /// assert_eq!(t.path_nodes(1 << 20), 0);
    /// ```
    pub fn path_nodes(&self, index: u64) -> u32 {
        let Slot::Node(top) = &self.root else {
            return 0;
        };
        if index > Self::maxindex(self.height) {
            return 0;
        }
        let mut node: &OwnedNode<T> = top;
        let mut found = 1;
        let mut shift = (self.height - 1) * SHIFT;
        while shift > 0 {
            match &node.slots[Self::offset(index, shift)] {
                Slot::Node(child) => node = child,
                _ => break,
            }
            found += 1;
            shift -= SHIFT;
        }
        found
    }

    /// Every node as `(level, index >> (SHIFT * level))`, leaves at level
    /// 1, in depth-first order (see [`path_nodes`](Self::path_nodes) for
    /// why these names are stable).
    ///
    /// ```
    /// use klab_radix_tree::RadixTree;
    ///
    /// let mut t = RadixTree::<u32>::new();
    /// t.insert(0, 1).unwrap();
    /// t.insert(4096, 2).unwrap();
    /// let mut keys = t.node_keys();
    /// keys.sort();
    /// assert_eq!(keys, [(1, 0), (1, 64), (2, 0), (2, 1), (3, 0)]);
    /// ```
    pub fn node_keys(&self) -> Vec<(u32, u64)> {
        let mut out = Vec::with_capacity(self.nodes());
        let Slot::Node(top) = &self.root else {
            return out;
        };
        let mut stack: Vec<(&OwnedNode<T>, u32, u64)> = vec![(top, self.height, 0)];
        while let Some((node, level, prefix)) = stack.pop() {
            out.push((level, prefix));
            if level == 1 {
                continue;
            }
            for (slot, s) in node.slots.iter().enumerate().take(1 << SHIFT) {
                if let Slot::Node(child) = s {
                    stack.push((child, level - 1, (prefix << SHIFT) | slot as u64));
                }
            }
        }
        out
    }
}
