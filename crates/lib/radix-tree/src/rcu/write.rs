//! The shared tree's writer: insert, delete, replace and tags under the
//! tree lock, each change published so that lockless readers see the old
//! or the new slot (the rules are in the module header of `rcu/mod.rs`).
//!
//! The shapes are the single-threaded tree's (and lib/radix-tree.c's):
//! `radix_tree_extend()` grows one level at a time with the old root in
//! slot 0, delete frees emptied nodes bottom-up, `radix_tree_shrink()`
//! drops the top while its only child is in slot 0, and tags propagate to
//! the root. What the single-threaded tree does through `&mut`, this one
//! does through atomic stores, in an order a reader can follow: a new
//! branch or a new top is complete before the one release store that links
//! it, a node is unlinked before it is retired, and an emptied slot is
//! cleared before its node goes.

use std::marker::PhantomData;

use super::RcuRadixTree;
use super::epoch::Guard;
use super::layout::{
    SharedNode, SharedPointer, alloc_node, as_node, decode, drop_item_now, entry_word,
    free_node_now, is_item_word, is_value_word, node_ptr, node_word, retire_item, retire_node,
    retry_word,
};
use super::sync::{AtomicPtr, AtomicU64, MutexGuard, Ordering};
use crate::entry::{Entry, MAX_TAGS, Tag, VALUE_MAX};
use crate::error::{Error, InsertError};
use crate::iter::Walk;
use crate::node::{Census, View, check_node, maxindex, min_height};

/// What only writers use, behind the tree lock.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    /// `root->height`; readers take the height from the top node instead.
    height: u32,
    items: usize,
    values: usize,
    /// Nodes in the tree (retired ones waiting for their grace period are
    /// not counted).
    nodes: usize,
}

/// The tree lock, held (`spin_lock(&mapping->tree_lock)` to
/// `spin_unlock()`): the writer's operations. Readers go on meanwhile.
pub struct WriteGuard<'t, P: SharedPointer, const SHIFT: u32 = 6> {
    tree: &'t RcuRadixTree<P, SHIFT>,
    /// `None` only while dropping.
    w: Option<MutexGuard<'t, Writer>>,
    /// The writer pins too: what it removes stays valid until it unlocks,
    /// so `delete` can lend the removed entry.
    pin: Option<Guard<'t>>,
    _items: PhantomData<P>,
}

#[inline(always)]
fn offset<const SHIFT: u32>(index: u64, shift: u32) -> usize {
    ((index >> shift) & ((1 << SHIFT) - 1)) as usize
}

/// Sets bits of a bitmap the writer alone changes (a load and a store:
/// no other writer can race it, and readers only load).
#[inline]
fn set_bits(word: &AtomicU64, bits: u64) {
    let old = word.load(Ordering::Relaxed);
    if old & bits != bits {
        word.store(old | bits, Ordering::Relaxed);
    }
}

/// Clears bits of a bitmap the writer alone changes.
#[inline]
fn clear_bits(word: &AtomicU64, bits: u64) {
    let old = word.load(Ordering::Relaxed);
    if old & bits != 0 {
        word.store(old & !bits, Ordering::Relaxed);
    }
}

impl<'t, P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> WriteGuard<'t, P, SHIFT> {
    pub(super) fn new(tree: &'t RcuRadixTree<P, SHIFT>) -> Self {
        let w = tree
            .writer
            .lock()
            .expect("a writer panicked while changing the tree");
        WriteGuard {
            tree,
            w: Some(w),
            pin: Some(tree.domain.pin()),
            _items: PhantomData,
        }
    }

    fn w(&self) -> &Writer {
        self.w.as_ref().expect("held until drop")
    }

    fn w_mut(&mut self) -> &mut Writer {
        self.w.as_mut().expect("held until drop")
    }

    fn pin(&self) -> &Guard<'t> {
        self.pin.as_ref().expect("held until drop")
    }

    /// The root word. Relaxed: the writer made it, or the writer before it,
    /// whose stores the lock hands over.
    #[inline]
    fn root_word(&self) -> *mut () {
        self.tree.root.load(Ordering::Relaxed)
    }

    /// The top node, for a tree of height > 0.
    fn top(&self) -> Option<&SharedNode<P>> {
        as_node::<P>(self.root_word())
    }

    // ------------------------------------------------------------------
    // Reads under the lock.

    /// The tree's height (`root->height`).
    pub fn height(&self) -> u32 {
        self.w().height
    }

    /// Entries (items and values).
    pub fn len(&self) -> usize {
        self.w().items + self.w().values
    }

    /// True when the tree holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items.
    pub fn nr_items(&self) -> usize {
        self.w().items
    }

    /// Value entries.
    pub fn nr_values(&self) -> usize {
        self.w().values
    }

    /// Nodes in the tree.
    pub fn nodes(&self) -> usize {
        self.w().nodes
    }

    /// The slot holding `index`'s entry and the leaf node it is in (`None`
    /// for the root slot of a tree of height 0), if the path exists.
    fn slot_of(&self, index: u64) -> Option<(&AtomicPtr<()>, Option<&SharedNode<P>>)> {
        let height = self.w().height;
        if index > maxindex(SHIFT, height) {
            return None;
        }
        if height == 0 {
            return Some((&self.tree.root, None));
        }
        let mut node = self.top()?;
        let mut shift = (height - 1) * SHIFT;
        while shift > 0 {
            node = as_node::<P>(node.slots[offset::<SHIFT>(index, shift)].load(Ordering::Relaxed))?;
            shift -= SHIFT;
        }
        Some((&node.slots[offset::<SHIFT>(index, 0)], Some(node)))
    }

    /// The entry at `index`.
    pub fn lookup(&self, index: u64) -> Option<Entry<&P::Target>> {
        let (slot, _) = self.slot_of(index)?;
        match decode::<P>(slot.load(Ordering::Relaxed)) {
            View::Entry(e) => Some(e),
            _ => None,
        }
    }

    /// `radix_tree_tag_get()` under the lock: exact.
    pub fn tag_get(&self, index: u64, tag: Tag) -> bool {
        let t = tag.index();
        if self.tree.root_tags.load(Ordering::Relaxed) & (1 << t) == 0 {
            return false;
        }
        match self.top() {
            Some(top) => {
                let height = self.w().height;
                index <= maxindex(SHIFT, height)
                    && Walk::<super::layout::Shared<P>, SHIFT>::tag_get(top, height, index, t)
            }
            None => index == 0 && !self.root_word().is_null(),
        }
    }

    /// `radix_tree_tagged()`.
    pub fn tagged(&self, tag: Tag) -> bool {
        self.tree.root_tags.load(Ordering::Relaxed) & (1 << tag.index()) != 0
    }

    // ------------------------------------------------------------------
    // Insert.

    /// `radix_tree_insert()`: stores `item` at `index`, visible to readers
    /// from the store that links it.
    ///
    /// # Errors
    /// [`Error::Exists`] when an entry is at `index`; the item is handed
    /// back and the tree is unchanged.
    pub fn insert(&mut self, index: u64, item: P) -> Result<(), InsertError<P>> {
        self.insert_entry(index, Entry::Item(item))
    }

    /// Stores a value entry at `index`.
    ///
    /// # Errors
    /// As [`insert`](Self::insert), and [`Error::InvalidValue`] for a value
    /// over [`VALUE_MAX`].
    pub fn insert_value(&mut self, index: u64, value: u64) -> Result<(), InsertError<P>> {
        self.insert_entry(index, Entry::Value(value))
    }

    /// Stores an item or a value entry at `index`.
    ///
    /// # Errors
    /// As [`insert`](Self::insert) and [`insert_value`](Self::insert_value).
    pub fn insert_entry(&mut self, index: u64, entry: Entry<P>) -> Result<(), InsertError<P>> {
        if let Entry::Value(v) = entry
            && v > VALUE_MAX
        {
            return Err(InsertError {
                error: Error::InvalidValue { value: v },
                entry,
            });
        }
        if self.lookup(index).is_some() {
            return Err(InsertError {
                error: Error::Exists { index },
                entry,
            });
        }
        let word = entry_word(entry);
        let is_value = is_value_word(word);
        let want = min_height(SHIFT, index);
        if want > self.w().height {
            self.extend(want);
        }
        let height = self.w().height;
        let root = self.root_word();
        if height == 0 {
            debug_assert!(root.is_null() && index == 0);
            self.tree.root.store(word, Ordering::Release);
        } else if root.is_null() {
            let top = self.build_branch(height, index, word, is_value);
            self.tree.root.store(node_word(top), Ordering::Release);
        } else {
            let mut node = as_node::<P>(root).expect("height > 0 with an entry at the root");
            let mut shift = (height - 1) * SHIFT;
            loop {
                let off = offset::<SHIFT>(index, shift);
                if shift == 0 {
                    node.slots[off].store(word, Ordering::Release);
                    set_bits(&node.present, 1 << off);
                    if is_value {
                        let n = node.nr_values.load(Ordering::Relaxed);
                        node.nr_values.store(n + 1, Ordering::Relaxed);
                    }
                    break;
                }
                match as_node::<P>(node.slots[off].load(Ordering::Relaxed)) {
                    Some(child) => node = child,
                    None => {
                        let branch = self.build_branch(shift / SHIFT, index, word, is_value);
                        node.slots[off].store(node_word(branch), Ordering::Release);
                        set_bits(&node.present, 1 << off);
                        break;
                    }
                }
                shift -= SHIFT;
            }
        }
        let w = self.w_mut();
        if is_value {
            w.values += 1;
        } else {
            w.items += 1;
        }
        Ok(())
    }

    /// Builds, off the tree, the nodes from `height` down to a leaf on the
    /// path to `index`, with `word` in the leaf, and returns the top one
    /// for the caller to publish with a release store.
    fn build_branch(
        &mut self,
        height: u32,
        index: u64,
        word: *mut (),
        is_value: bool,
    ) -> *mut SharedNode<P> {
        let leaf = alloc_node::<P>(1);
        // SAFETY: `leaf` was just allocated and is not shared yet.
        let l = unsafe { &*leaf };
        let off = offset::<SHIFT>(index, 0);
        l.slots[off].store(word, Ordering::Relaxed);
        l.present.store(1 << off, Ordering::Relaxed);
        l.nr_values.store(u8::from(is_value), Ordering::Relaxed);
        let mut below = leaf;
        for h in 2..=height {
            let n = alloc_node::<P>(h);
            // SAFETY: as above.
            let node = unsafe { &*n };
            let off = offset::<SHIFT>(index, (h - 1) * SHIFT);
            node.slots[off].store(node_word(below), Ordering::Relaxed);
            node.present.store(1 << off, Ordering::Relaxed);
            below = n;
        }
        self.w_mut().nodes += height as usize;
        below
    }

    /// `radix_tree_extend()`: grows the tree to `want` levels. An empty tree
    /// just takes the height; otherwise the new levels are built off the
    /// tree, each with the level below in slot 0 and the root's tag bits
    /// there, and published with one release store to the root. A reader
    /// that loaded the old root walks on below the new top, unchanged.
    fn extend(&mut self, want: u32) {
        let root = self.root_word();
        let height = self.w().height;
        if root.is_null() {
            self.w_mut().height = want;
            return;
        }
        let tags = self.tree.root_tags.load(Ordering::Relaxed);
        let mut below = root;
        for h in height + 1..=want {
            let n = alloc_node::<P>(h);
            // SAFETY: `n` was just allocated and is not shared yet.
            let node = unsafe { &*n };
            node.slots[0].store(below, Ordering::Relaxed);
            node.present.store(1, Ordering::Relaxed);
            if h == 1 && is_value_word(below) {
                node.nr_values.store(1, Ordering::Relaxed);
            }
            for (t, word) in node.tags.iter().enumerate() {
                if tags & (1 << t) != 0 {
                    word.store(1, Ordering::Relaxed);
                }
            }
            below = node_word(n);
        }
        self.tree.root.store(below, Ordering::Release);
        let w = self.w_mut();
        w.nodes += (want - height) as usize;
        w.height = want;
    }

    // ------------------------------------------------------------------
    // Delete.

    /// `radix_tree_delete()`: removes the entry at `index`, clearing its
    /// tags, freeing emptied nodes and shrinking the tree as the
    /// single-threaded tree does. The item is dropped a grace period later;
    /// until this guard is dropped it can still be read through the
    /// returned reference.
    pub fn delete(&mut self, index: u64) -> Option<Entry<&P::Target>> {
        let height = self.w().height;
        if index > maxindex(SHIFT, height) {
            return None;
        }
        let root = self.root_word();
        let word = if height == 0 {
            if root.is_null() {
                return None;
            }
            self.tree
                .root
                .store(std::ptr::null_mut(), Ordering::Release);
            self.tree.root_tags.store(0, Ordering::Relaxed);
            root
        } else {
            let top = as_node::<P>(root).expect("height > 0 with an entry at the root");
            let word = self.delete_in(top, index, (height - 1) * SHIFT)?;
            if top.present.load(Ordering::Relaxed) == 0 {
                self.tree
                    .root
                    .store(std::ptr::null_mut(), Ordering::Release);
                self.tree.root_tags.store(0, Ordering::Relaxed);
                // SAFETY: the top node was just unlinked from the root.
                unsafe { retire_node::<P>(self.pin(), &self.tree.domain, root) };
                let w = self.w_mut();
                w.nodes -= 1;
                w.height = 0;
            } else {
                self.clear_root_tags(top);
                self.shrink();
            }
            word
        };
        let w = self.w_mut();
        if is_value_word(word) {
            w.values -= 1;
        } else {
            w.items -= 1;
        }
        self.retire_word(word);
        match decode::<P>(word) {
            View::Entry(e) => Some(e),
            _ => unreachable!("a deleted slot held an entry"),
        }
    }

    /// Removes the entry at `index` below `node` (at `shift`) and returns
    /// its word; then unlinks and retires the child it came from if that is
    /// now empty, else clears this node's tag bits for tags the child no
    /// longer has (`radix_tree_tag_clear()`'s upward walk).
    fn delete_in(&mut self, node: &SharedNode<P>, index: u64, shift: u32) -> Option<*mut ()> {
        let off = offset::<SHIFT>(index, shift);
        let bit = 1u64 << off;
        if shift == 0 {
            let word = node.slots[off].load(Ordering::Relaxed);
            if word.is_null() {
                return None;
            }
            for tags in &node.tags {
                clear_bits(tags, bit);
            }
            node.slots[off].store(std::ptr::null_mut(), Ordering::Release);
            clear_bits(&node.present, bit);
            if is_value_word(word) {
                let n = node.nr_values.load(Ordering::Relaxed);
                node.nr_values.store(n - 1, Ordering::Relaxed);
            }
            return Some(word);
        }
        let child_word = node.slots[off].load(Ordering::Relaxed);
        let child = as_node::<P>(child_word)?;
        let word = self.delete_in(child, index, shift - SHIFT)?;
        if child.present.load(Ordering::Relaxed) == 0 {
            node.slots[off].store(std::ptr::null_mut(), Ordering::Release);
            clear_bits(&node.present, bit);
            for tags in &node.tags {
                clear_bits(tags, bit);
            }
            // SAFETY: the child was just unlinked from its only parent.
            unsafe { retire_node::<P>(self.pin(), &self.tree.domain, child_word) };
            self.w_mut().nodes -= 1;
        } else {
            for (tags, child_tags) in node.tags.iter().zip(&child.tags) {
                if child_tags.load(Ordering::Relaxed) == 0 {
                    clear_bits(tags, bit);
                }
            }
        }
        Some(word)
    }

    /// Clears the root's bit of every tag the top node no longer carries.
    fn clear_root_tags(&self, top: &SharedNode<P>) {
        let tags = self.tree.root_tags.load(Ordering::Relaxed);
        let mut keep = tags;
        for (t, word) in top.tags.iter().enumerate() {
            if word.load(Ordering::Relaxed) == 0 {
                keep &= !(1 << t);
            }
        }
        if keep != tags {
            self.tree.root_tags.store(keep, Ordering::Relaxed);
        }
    }

    /// `radix_tree_shrink()`: while the top node's only child is in slot 0,
    /// that child becomes the root. The old top is retired with its slot 0
    /// still pointing at the child, so a reader on it walks on into the
    /// live tree; when the child is the entry at index 0 (height 0), the
    /// slot gets the retry marker instead (module header, 4).
    fn shrink(&mut self) {
        while self.w().height > 0 {
            let top_word = self.root_word();
            let Some(top) = as_node::<P>(top_word) else {
                break;
            };
            if top.present.load(Ordering::Relaxed) != 1 {
                break;
            }
            let child = top.slots[0].load(Ordering::Relaxed);
            self.tree.root.store(child, Ordering::Release);
            let height = self.w().height - 1;
            if height == 0 {
                // Release: a reader that sees the marker and starts again
                // sees the new root.
                top.slots[0].store(retry_word(), Ordering::Release);
            }
            // SAFETY: the root no longer points at `top`, and nothing else
            // did.
            unsafe { retire_node::<P>(self.pin(), &self.tree.domain, top_word) };
            let w = self.w_mut();
            w.nodes -= 1;
            w.height = height;
        }
    }

    /// Retires what an entry word owns (an item; a value owns nothing).
    fn retire_word(&self, word: *mut ()) {
        if is_item_word(word) {
            // SAFETY: the word was just removed from its slot, by this writer.
            unsafe { retire_item::<P>(self.pin(), word) };
        }
    }

    // ------------------------------------------------------------------
    // Replace.

    /// `radix_tree_replace_slot()`: swaps the entry at `index` for `entry`,
    /// keeping its tags, with one release store (the page cache swaps a
    /// page for its shadow entry on eviction). Returns the old entry,
    /// readable until this guard is dropped.
    ///
    /// # Errors
    /// [`Error::NotFound`] when nothing is at `index`,
    /// [`Error::InvalidValue`] for a value over [`VALUE_MAX`]; the entry is
    /// handed back and the tree is unchanged.
    pub fn replace(
        &mut self,
        index: u64,
        entry: Entry<P>,
    ) -> Result<Entry<&P::Target>, InsertError<P>> {
        if let Entry::Value(v) = entry
            && v > VALUE_MAX
        {
            return Err(InsertError {
                error: Error::InvalidValue { value: v },
                entry,
            });
        }
        let Some((slot, leaf)) = self.slot_of(index) else {
            return Err(InsertError {
                error: Error::NotFound { index },
                entry,
            });
        };
        let old = slot.load(Ordering::Relaxed);
        if !matches!(decode::<P>(old), View::Entry(_)) {
            return Err(InsertError {
                error: Error::NotFound { index },
                entry,
            });
        }
        let word = entry_word(entry);
        slot.store(word, Ordering::Release);
        if let Some(leaf) = leaf {
            let n = leaf.nr_values.load(Ordering::Relaxed);
            leaf.nr_values.store(
                n - u8::from(is_value_word(old)) + u8::from(is_value_word(word)),
                Ordering::Relaxed,
            );
        }
        let w = self.w_mut();
        if is_value_word(old) {
            w.values -= 1;
        } else {
            w.items -= 1;
        }
        if is_value_word(word) {
            w.values += 1;
        } else {
            w.items += 1;
        }
        self.retire_word(old);
        match decode::<P>(old) {
            View::Entry(e) => Ok(e),
            _ => unreachable!("checked above"),
        }
    }

    // ------------------------------------------------------------------
    // Tags.

    /// `radix_tree_tag_set()`: sets `tag` on the entry at `index`, on every
    /// node on its path (top down) and then at the root.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no entry is at `index`; nothing changes.
    pub fn tag_set(&mut self, index: u64, tag: Tag) -> Result<Entry<&P::Target>, Error> {
        if self.lookup(index).is_none() {
            return Err(Error::NotFound { index });
        }
        let t = tag.index();
        let height = self.w().height;
        if let Some(mut node) = self.top() {
            let mut shift = (height - 1) * SHIFT;
            loop {
                let off = offset::<SHIFT>(index, shift);
                set_bits(&node.tags[t], 1 << off);
                if shift == 0 {
                    break;
                }
                node = as_node::<P>(node.slots[off].load(Ordering::Relaxed))
                    .expect("present index with a hole on its path");
                shift -= SHIFT;
            }
        }
        let tags = self.tree.root_tags.load(Ordering::Relaxed);
        self.tree
            .root_tags
            .store(tags | (1 << t), Ordering::Relaxed);
        self.lookup(index).ok_or(Error::NotFound { index })
    }

    /// `radix_tree_tag_clear()`: clears `tag` on the entry at `index`, then
    /// on each ancestor left with no slot carrying it, and at the root when
    /// the last tagged entry loses it. `None` (and no change) when no entry
    /// is at `index`.
    pub fn tag_clear(&mut self, index: u64, tag: Tag) -> Option<Entry<&P::Target>> {
        let height = self.w().height;
        if index > maxindex(SHIFT, height) {
            return None;
        }
        let t = tag.index();
        let bit = 1u8 << t;
        let root_tags = self.tree.root_tags.load(Ordering::Relaxed);
        match self.top() {
            None => {
                if self.root_word().is_null() {
                    return None;
                }
                self.tree
                    .root_tags
                    .store(root_tags & !bit, Ordering::Relaxed);
            }
            Some(top) => {
                if !Self::tag_clear_in(top, index, (height - 1) * SHIFT, t) {
                    return None;
                }
                if top.tags[t].load(Ordering::Relaxed) == 0 {
                    self.tree
                        .root_tags
                        .store(root_tags & !bit, Ordering::Relaxed);
                }
            }
        }
        self.lookup(index)
    }

    fn tag_clear_in(node: &SharedNode<P>, index: u64, shift: u32, t: usize) -> bool {
        let off = offset::<SHIFT>(index, shift);
        let bit = 1u64 << off;
        if shift == 0 {
            if node.slots[off].load(Ordering::Relaxed).is_null() {
                return false;
            }
            clear_bits(&node.tags[t], bit);
            return true;
        }
        let Some(child) = as_node::<P>(node.slots[off].load(Ordering::Relaxed)) else {
            return false;
        };
        if !Self::tag_clear_in(child, index, shift - SHIFT, t) {
            return false;
        }
        if child.tags[t].load(Ordering::Relaxed) == 0 {
            clear_bits(&node.tags[t], bit);
        }
        true
    }

    // ------------------------------------------------------------------
    // Invariants.

    /// Checks the single-threaded tree's invariants (the same node checker,
    /// `check_node`) on this tree, under the lock so nothing changes
    /// meanwhile; panics with the first broken one. For tests: O(nodes).
    pub fn assert_invariants(&self) {
        let height = self.w().height;
        let root_tags = self.tree.root_tags.load(Ordering::Relaxed);
        let mut census = Census::default();
        match decode::<P>(self.root_word()) {
            View::Empty => {
                assert_eq!(root_tags, 0, "empty tree with root tags");
                assert_eq!(height, 0, "empty tree of height {height}");
            }
            View::Entry(Entry::Item(_)) => {
                assert_eq!(height, 0, "an entry in the root at height {height}");
                census.items += 1;
            }
            View::Entry(Entry::Value(v)) => {
                assert_eq!(height, 0, "an entry in the root at height {height}");
                assert!(v <= VALUE_MAX, "value {v:#x} over VALUE_MAX");
                census.values += 1;
            }
            View::Node(top) => {
                assert!(height > 0, "a node in the root at height 0");
                check_node(top, SHIFT, height, 0, &|v| v <= VALUE_MAX, &mut census);
                for t in 0..MAX_TAGS {
                    assert_eq!(
                        root_tags & (1 << t) != 0,
                        top.tags[t].load(Ordering::Relaxed) != 0,
                        "root tag {t} disagrees with the top node"
                    );
                }
                assert_ne!(
                    top.present.load(Ordering::Relaxed) & !1,
                    0,
                    "height {height} not minimal: the root node's only child is in slot 0"
                );
            }
            View::Retry => panic!("the retry marker in the root"),
        }
        let w = self.w();
        assert_eq!(
            (census.items, census.values),
            (w.items, w.values),
            "entry counts"
        );
        assert_eq!(census.nodes, w.nodes, "node count");
    }
}

impl<P: SharedPointer, const SHIFT: u32> Drop for WriteGuard<'_, P, SHIFT> {
    /// Unpins, unlocks, then lets the domain run destructors whose grace
    /// period is over (under loom; crossbeam collects on its own).
    fn drop(&mut self) {
        drop(self.pin.take());
        drop(self.w.take());
        self.tree.domain.collect();
    }
}

/// Frees everything below `word` now (the tree is being dropped, so no
/// reader is left).
pub(crate) fn free_subtree<P: SharedPointer>(word: *mut ()) {
    match decode::<P>(word) {
        View::Node(node) => {
            for slot in &node.slots {
                free_subtree::<P>(slot.load(Ordering::Relaxed));
            }
            // SAFETY: the node is in the tree, which is being dropped: no
            // reader holds it and nothing else frees it.
            unsafe { free_node_now::<P>(node_ptr::<P>(word)) };
        }
        View::Entry(Entry::Item(_)) => {
            // SAFETY: as above, for the item the tree owns.
            unsafe { drop_item_now::<P>(word) };
        }
        View::Entry(Entry::Value(_)) | View::Empty | View::Retry => {}
    }
}
