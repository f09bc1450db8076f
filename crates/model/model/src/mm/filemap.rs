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

use super::page::{FileId, Pfn};

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

/// `filemap_read()`'s mark (and, for a write, the plain mark): a
/// [`crate::Machine`] method beside the page cache it reads.
impl crate::Machine {
    /// The mark a read or write of a cached page gives it: 6.x's
    /// `folio_mark_accessed()` with the LRU batches, 3.15's
    /// `mark_page_accessed()` without; with
    /// `KernelDetails::read_marks_once`, a read of the page the file's
    /// previous read ended in is not marked (mm/filemap.c
    /// `filemap_read()`: `pos_same_folio(iocb->ki_pos, ra->prev_pos - 1)`).
    pub(crate) fn read_mark_accessed(&mut self, pfn: Pfn, file: FileId, index: u64, write: bool) {
        if self.cfg.details.read_marks_once && !write {
            let again = self.ra_prev.insert(file, index) == Some(index);
            if again {
                self.kstat.reads_not_marked += 1;
                return;
            }
        }
        if self.cfg.details.lru_batch.is_some() {
            self.folio_mark_accessed(pfn);
        } else {
            self.mark_page_accessed(pfn);
        }
    }
}

#[cfg(test)]
mod read_mark_tests {
    use crate::Machine;
    use crate::machine::{Access, MachineConfig};
    use klab_mm_policy::LruBalance;

    fn reads(once: bool, pages: &[(u32, u64)]) -> Machine {
        let mut cfg = MachineConfig::new(64, LruBalance::Workingset6);
        cfg.details.read_marks_once = once;
        let mut m = Machine::new(cfg).unwrap();
        for &(f, p) in pages {
            m.access(Access::read(f, p));
        }
        m.assert_invariants();
        m
    }

    /// ```text
    ///  f0 p0   miss: marked (PG_referenced)
    ///  f0 p0   the page file 0's last read ended in: not marked
    ///  f1 p5   miss: marked
    ///  f0 p0   file 0's last read is still p0 (file 1's reads are its
    ///          own): not marked
    ///  f0 p1   miss: marked
    ///  f0 p1   not marked
    /// ```
    /// Without the rule the second read of p0 activates it.
    #[test]
    fn a_read_of_the_page_the_files_previous_read_ended_in_is_not_marked() {
        let seq = [(0, 0), (0, 0), (1, 5), (0, 0), (0, 1), (0, 1)];
        let m = reads(true, &seq);
        assert_eq!(m.kernel_stat().reads_not_marked, 3);
        assert!(!m.is_active(0, 0) && !m.is_active(0, 1));
        assert_eq!(m.stat().pgactivate, 0);
        let plain = reads(false, &seq);
        assert_eq!(plain.kernel_stat().reads_not_marked, 0);
        assert!(plain.is_active(0, 0) && plain.is_active(0, 1));
        assert_eq!(plain.stat().pgactivate, 2);
    }

    #[test]
    fn a_write_is_marked_whatever_the_previous_read() {
        let mut cfg = MachineConfig::new(64, LruBalance::Workingset6);
        cfg.details.read_marks_once = true;
        let mut m = Machine::new(cfg).unwrap();
        m.access(Access::read(0, 0));
        m.access(Access::write(0, 0));
        assert!(m.is_active(0, 0));
        assert_eq!(m.kernel_stat().reads_not_marked, 0);
    }
}
