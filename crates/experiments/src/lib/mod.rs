//! Library code: the radix tree, and its lookups without a lock.

pub mod radix_tree;
pub mod radix_tree_rcu;
