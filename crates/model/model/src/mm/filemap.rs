//! The page cache of one file: an `address_space` whose radix tree maps
//! page offsets to page frames, and keeps shadow entries where evicted
//! pages were (mm/filemap.c, 3.15: `page_cache_tree_insert()`,
//! `page_cache_tree_delete()`).
//!
//! ```text
//!   AddressSpace
//!     tree: RadixTree<Pfn>     index -> Item(pfn)      a resident page
//!                              index -> Value(shadow)  an evicted page's shadow
//!     tag 0 (PAGECACHE_TAG_DIRTY) on dirty pages, for writeback
//! ```
//!
//! Invariants: `nrpages` = items in the tree, `nrshadows` = value entries
//! (3.15 kept both counts in `address_space`); a dirty tag sits only on
//! items.

use klab_radix_tree::{Entry, RadixTree, Tag};

use super::page::Pfn;

/// `PAGECACHE_TAG_DIRTY`.
pub const TAG_DIRTY: Tag = Tag::T0;

/// The page cache of one file.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct AddressSpace {
    tree: RadixTree<Pfn>,
    /// `AS_EIO`: a write-back error (or a lost dirty page) not yet
    /// reported by `fsync()`.
    error: bool,
}

impl std::fmt::Debug for AddressSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddressSpace")
            .field("nrpages", &self.nrpages())
            .field("nrshadows", &self.nrshadows())
            .finish()
    }
}

impl AddressSpace {
    /// An empty file.
    pub fn new() -> Self {
        Self::default()
    }

    /// What the slot for `index` holds: a page, a shadow, or nothing.
    #[inline]
    pub fn lookup(&self, index: u64) -> Option<Entry<Pfn>> {
        self.tree.lookup(index).map(|e| e.map(|p| *p))
    }

    /// Resident pages.
    pub fn nrpages(&self) -> u64 {
        self.tree.nr_items() as u64
    }

    /// Shadow entries.
    pub fn nrshadows(&self) -> u64 {
        self.tree.nr_values() as u64
    }

    /// Radix-tree nodes in use.
    pub fn nodes(&self) -> u64 {
        self.tree.nodes() as u64
    }

    /// The tree's height (0: no node).
    pub fn height(&self) -> u32 {
        self.tree.height()
    }

    /// Nodes on the tree's path toward `index`.
    pub fn path_nodes(&self, index: u64) -> u32 {
        self.tree.path_nodes(index)
    }

    /// Every node of the tree as `(level, index >> (6 * level))`.
    pub fn node_keys(&self) -> Vec<(u32, u64)> {
        self.tree.node_keys()
    }

    /// Bytes of radix-tree nodes in use.
    pub fn tree_bytes(&self) -> u64 {
        self.tree.memory().bytes as u64
    }

    /// Pages and shadows in the leaf node holding `index`, when one exists
    /// (a tree of height 0 has no node).
    pub fn leaf_counts(&self, index: u64) -> Option<(usize, usize)> {
        self.tree.leaf_counts(index)
    }

    /// Adds a page at `index`, returning the shadow entry it replaces
    /// (3.15 `page_cache_tree_insert()` hands the shadow to the caller).
    ///
    /// # Panics
    /// If a page is already there: the caller looked the slot up first.
    pub fn insert_page(&mut self, index: u64, pfn: Pfn) -> Option<u64> {
        if let Some(mut slot) = self.tree.lookup_slot(index) {
            let old = slot
                .replace(Entry::Item(pfn))
                .expect("a page is always storable");
            match old {
                Entry::Value(shadow) => Some(shadow),
                Entry::Item(p) => panic!("page {p} already cached at index {index}"),
            }
        } else {
            self.tree
                .insert(index, pfn)
                .expect("the page cache's radix tree has no node limit");
            None
        }
    }

    /// Replaces the page at `index` with a shadow entry (eviction, 3.15
    /// `page_cache_tree_delete()` with a shadow), dropping its dirty tag.
    pub fn replace_with_shadow(&mut self, index: u64, shadow: u64) {
        self.tree.tag_clear(index, TAG_DIRTY);
        let mut slot = self
            .tree
            .lookup_slot(index)
            .expect("evicting a cached page");
        let old = slot
            .replace(Entry::Value(shadow))
            .expect("shadow payloads fit a value entry");
        debug_assert!(old.is_item());
    }

    /// Deletes whatever is at `index`.
    pub fn delete(&mut self, index: u64) -> Option<Entry<Pfn>> {
        self.tree.delete(index)
    }

    /// Marks the page at `index` dirty in the tree.
    pub fn tag_dirty(&mut self, index: u64) {
        self.tree
            .tag_set(index, TAG_DIRTY)
            .expect("tagging a cached page");
    }

    /// Clears the dirty tag at `index`.
    pub fn clear_dirty(&mut self, index: u64) {
        self.tree.tag_clear(index, TAG_DIRTY);
    }

    /// Dirty pages, in index order (`pagevec_lookup_tag(..., DIRTY)`).
    pub fn dirty_pages(&self) -> Vec<(u64, Pfn)> {
        self.tree
            .iter_tagged(TAG_DIRTY)
            .filter_map(|(i, e)| e.item().map(|p| (i, *p)))
            .collect()
    }

    /// Every entry at indices `first..=last`, in order.
    pub fn entries_in(&self, first: u64, last: u64) -> Vec<(u64, Entry<Pfn>)> {
        self.tree
            .range(first)
            .take_while(|(i, _)| *i <= last)
            .map(|(i, e)| (i, e.map(|p| *p)))
            .collect()
    }

    /// Records an I/O error for the next `fsync()` (`mapping_set_error()`).
    pub fn set_error(&mut self) {
        self.error = true;
    }

    /// Reports and clears the recorded error (`filemap_check_errors()`).
    pub fn take_error(&mut self) -> bool {
        std::mem::take(&mut self.error)
    }

    /// Checks the tree's own invariants.
    pub fn assert_invariants(&self) {
        self.tree.assert_invariants();
    }
}
