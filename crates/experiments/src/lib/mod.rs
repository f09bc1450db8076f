//! Library code: the radix tree.

pub mod radix_tree;
