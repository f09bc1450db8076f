//! The tree: insert, delete, lookups, tags, preload, accounting and the
//! invariant check. Gang lookups and iterators are in `iter.rs`.

use std::mem;

use crate::entry::{Entry, MAX_TAGS, Tag, VALUE_MAX};
use crate::error::{Error, InsertError};
use crate::iter::{Walk, owned};
use crate::node::{
    Census, Owned, OwnedNode, Slot, check_node, max_path, maxindex, min_height, node_size,
};

/// A Linux radix tree: `struct radix_tree_root` and the functions of
/// lib/radix-tree.c. See the [crate] documentation for the design.
///
/// `T` is the item type (keep it small: a handle, an index, a `Box` or an
/// `Arc`; a slot is `max(size_of::<T>(), 8) + 8` bytes). `SHIFT` is
/// `RADIX_TREE_MAP_SHIFT`, 6 by default (64 slots a node); 1 to 6 are
/// accepted, and small shifts (the kernel's test harness uses 3) make deep
/// trees out of few keys, for testing.
pub struct RadixTree<T, const SHIFT: u32 = 6> {
    /// `root->rnode`: empty, the single entry at index 0 (height 0), or the
    /// top node (height > 0).
    pub(crate) root: Slot<T>,
    /// `root->height`.
    pub(crate) height: u32,
    /// The root's "any entry has tag t" bits (the kernel keeps them in spare
    /// bits of `root->gfp_mask`).
    pub(crate) root_tags: u8,
    pub(crate) counts: Counts,
    pub(crate) alloc: NodeAlloc<T>,
}

/// Entries in the tree, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) items: usize,
    pub(crate) values: usize,
}

impl Counts {
    #[inline]
    fn add<T>(&mut self, e: &Entry<T>) {
        match e {
            Entry::Item(_) => self.items += 1,
            Entry::Value(_) => self.values += 1,
        }
    }

    #[inline]
    fn sub<T>(&mut self, e: &Entry<T>) {
        match e {
            Entry::Item(_) => self.items -= 1,
            Entry::Value(_) => self.values -= 1,
        }
    }
}

/// Where nodes come from: the allocator (`kmem_cache_alloc` of the
/// `radix_tree_node` cache), limited by an optional budget that models the
/// allocator failing, and the preload reserve (`radix_tree_preloads`).
pub(crate) struct NodeAlloc<T> {
    /// Preloaded nodes, used when the allocator refuses.
    pub(crate) pool: Vec<Box<OwnedNode<T>>>,
    /// Nodes in the tree.
    pub(crate) nodes: usize,
    /// Most nodes (tree + pool) the allocator will hand out; `None`: no limit.
    limit: Option<usize>,
}

impl<T> NodeAlloc<T> {
    /// The node budget.
    #[cfg(feature = "serde")]
    pub(crate) fn limit(&self) -> Option<usize> {
        self.limit
    }

    /// Fresh nodes the allocator would still give.
    fn headroom(&self) -> usize {
        match self.limit {
            None => usize::MAX,
            Some(l) => l.saturating_sub(self.nodes + self.pool.len()),
        }
    }

    /// Nodes an operation could get: fresh ones and preloaded ones.
    fn available(&self) -> usize {
        self.headroom().saturating_add(self.pool.len())
    }

    /// One node for the tree at `height`. Mirrors `radix_tree_node_alloc()`:
    /// the allocator first, the preload reserve when it refuses. Callers
    /// check [`NodeAlloc::available`] first, so this cannot fail.
    fn alloc(&mut self, height: u32) -> Box<OwnedNode<T>> {
        let node = if self.headroom() > 0 {
            OwnedNode::new_boxed(height)
        } else {
            let mut node = self.pool.pop().expect("caller checked available nodes");
            node.height = height as u8;
            node
        };
        self.nodes += 1;
        node
    }
}

/// Memory a tree holds, exactly: nodes in the tree and in the preload
/// reserve, each `node_size_bytes`, plus the reserve's pointer array. The
/// root lives inside the owner (as `radix_tree_root` lives inside
/// `address_space`) and is not counted; nor is the allocator's own rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUsage {
    /// Nodes in the tree.
    pub nodes: usize,
    /// Nodes held in the preload reserve.
    pub preloaded: usize,
    /// Bytes of one node (`size_of::<Node<T>>()`).
    pub node_size_bytes: usize,
    /// Heap bytes in use: `(nodes + preloaded) * node_size_bytes` plus the
    /// reserve's array.
    pub bytes: usize,
}

/// Mutable access to one existing slot: `radix_tree_lookup_slot()` with
/// `radix_tree_deref_slot()` and `radix_tree_replace_slot()`.
pub struct SlotMut<'a, T> {
    slot: &'a mut Slot<T>,
    nr_values: Option<&'a mut u8>,
    counts: &'a mut Counts,
}

impl<'a, T> SlotMut<'a, T> {
    /// The entry in the slot.
    pub fn get(&self) -> Entry<&T> {
        self.slot.entry().expect("a SlotMut points at an entry")
    }

    /// The item, mutably, if the slot holds an item.
    pub fn item_mut(&mut self) -> Option<&mut T> {
        match self.slot {
            Slot::Item(t) => Some(t),
            _ => None,
        }
    }

    /// The item, mutably, for as long as the tree is borrowed.
    pub fn into_item_mut(self) -> Option<&'a mut T> {
        match self.slot {
            Slot::Item(t) => Some(t),
            _ => None,
        }
    }

    /// Replaces the entry, keeping its tags, and returns the old one
    /// (`radix_tree_replace_slot()`: the page cache swaps a page for its
    /// shadow entry on eviction and back on refault).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] for a value over [`VALUE_MAX`]; the slot is
    /// unchanged and the entry is handed back.
    pub fn replace(&mut self, entry: Entry<T>) -> Result<Entry<T>, InsertError<T>> {
        if let Err(error) = check_value(&entry) {
            return Err(InsertError { error, entry });
        }
        let old = self
            .slot
            .take_entry()
            .expect("a SlotMut points at an entry");
        self.counts.sub(&old);
        self.counts.add(&entry);
        if let Some(nr) = self.nr_values.as_deref_mut() {
            *nr = *nr - u8::from(old.is_value()) + u8::from(entry.is_value());
        }
        *self.slot = Slot::from_entry(entry);
        Ok(old)
    }
}

fn check_value<T>(e: &Entry<T>) -> Result<(), Error> {
    match e {
        Entry::Value(v) if *v > VALUE_MAX => Err(Error::InvalidValue { value: *v }),
        _ => Ok(()),
    }
}

impl<T, const SHIFT: u32> Default for RadixTree<T, SHIFT> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const SHIFT: u32> RadixTree<T, SHIFT> {
    /// `RADIX_TREE_MAP_SHIFT`: index bits per level.
    pub const MAP_SHIFT: u32 = {
        assert!(SHIFT >= 1 && SHIFT <= 6, "SHIFT must be 1..=6");
        SHIFT
    };
    /// `RADIX_TREE_MAP_SIZE`: slots per node used.
    pub const MAP_SIZE: usize = 1 << Self::MAP_SHIFT;
    pub(crate) const MASK: u64 = (1 << Self::MAP_SHIFT) - 1;
    /// `RADIX_TREE_MAX_PATH`: the tallest tree, `ceil(64 / SHIFT)` (11).
    pub const MAX_PATH: u32 = max_path(Self::MAP_SHIFT);
    /// `RADIX_TREE_PRELOAD_SIZE`: nodes one insert may need in the worst
    /// case, `2 * MAX_PATH - 1` (21): a tree of height 0 holding index 0
    /// that receives `u64::MAX` builds a branch of `MAX_PATH` nodes above the
    /// old entry and another to the new one, sharing only the root.
    /// 2.6.24 reserved `MAX_PATH`, too few for that case; the kernel later
    /// fixed the size to this value.
    pub const PRELOAD_SIZE: usize = 2 * Self::MAX_PATH as usize - 1;

    /// An empty tree (`RADIX_TREE(name, gfp)`, `INIT_RADIX_TREE`): height 0,
    /// no node.
    pub const fn new() -> Self {
        let _ = Self::MAP_SHIFT;
        RadixTree {
            root: Slot::Empty,
            height: 0,
            root_tags: 0,
            counts: Counts {
                items: 0,
                values: 0,
            },
            alloc: NodeAlloc {
                pool: Vec::new(),
                nodes: 0,
                limit: None,
            },
        }
    }

    /// `(index >> shift) & MAP_MASK`: the slot `index` takes in a node at
    /// `shift`.
    #[inline(always)]
    pub(crate) const fn offset(index: u64, shift: u32) -> usize {
        ((index >> shift) & Self::MASK) as usize
    }

    /// The tree's height: 0 when empty or holding only index 0, else the
    /// least `h` with `maxindex(h) >= largest index`.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// `radix_tree_maxindex(height)`: the largest index a tree of `height`
    /// covers without growing (`2^(SHIFT*height) - 1`, saturating).
    pub const fn maxindex(height: u32) -> u64 {
        maxindex(Self::MAP_SHIFT, height)
    }

    /// The height a tree whose largest index is `index` has.
    pub const fn height_for(index: u64) -> u32 {
        min_height(Self::MAP_SHIFT, index)
    }

    /// Entries (items and values).
    pub fn len(&self) -> usize {
        self.counts.items + self.counts.values
    }

    /// True when the tree holds no entry.
    pub fn is_empty(&self) -> bool {
        self.root.is_empty()
    }

    /// Items (the page cache's `nrpages`).
    pub fn nr_items(&self) -> usize {
        self.counts.items
    }

    /// Value entries (the page cache's `nrexceptional` / shadow count).
    pub fn nr_values(&self) -> usize {
        self.counts.values
    }

    /// Nodes in the tree.
    pub fn nodes(&self) -> usize {
        self.alloc.nodes
    }

    /// Memory held: nodes in the tree and preloaded, exactly.
    pub fn memory(&self) -> MemoryUsage {
        let node_size_bytes = node_size::<T>();
        let preloaded = self.alloc.pool.len();
        MemoryUsage {
            nodes: self.alloc.nodes,
            preloaded,
            node_size_bytes,
            bytes: (self.alloc.nodes + preloaded) * node_size_bytes
                + self.alloc.pool.capacity() * mem::size_of::<Box<OwnedNode<T>>>(),
        }
    }

    /// Bytes of one node for this item type.
    pub const fn node_size_bytes() -> usize {
        node_size::<T>()
    }

    // ----------------------------------------------------------------------
    // Allocation: budget and preload.

    /// Limits the nodes (in the tree plus preloaded) the allocator hands
    /// out, to model `kmem_cache_alloc()` failing; `None` removes the limit.
    /// Lowering it below the nodes in use frees nothing: later allocations
    /// fail until enough nodes are freed.
    pub fn set_node_limit(&mut self, limit: Option<usize>) {
        self.alloc.limit = limit;
    }

    /// `radix_tree_preload()`: fills the reserve up to
    /// [`PRELOAD_SIZE`](Self::PRELOAD_SIZE) nodes so that the next insert
    /// cannot fail for lack of memory, whatever the allocator does then.
    ///
    /// The kernel's reserve is per CPU and `radix_tree_preload()` returns
    /// with preemption disabled until `radix_tree_preload_end()`, so no other
    /// task on that CPU can take the nodes. Here the unit of exclusive access
    /// is `&mut RadixTree`, so the reserve is per tree and there is nothing
    /// to end. Unused nodes stay reserved for later inserts.
    ///
    /// # Errors
    /// [`Error::NoMemory`] when the allocator refuses before the reserve is
    /// full; nodes already reserved stay reserved (as in the kernel).
    pub fn preload(&mut self) -> Result<(), Error> {
        let want = Self::PRELOAD_SIZE;
        if self.alloc.pool.capacity() < want {
            self.alloc.pool.reserve_exact(want - self.alloc.pool.len());
        }
        while self.alloc.pool.len() < want {
            if self.alloc.headroom() == 0 {
                return Err(Error::NoMemory {
                    needed: want - self.alloc.pool.len(),
                    available: 0,
                });
            }
            self.alloc.pool.push(OwnedNode::new_boxed(0));
        }
        Ok(())
    }

    /// Nodes in the preload reserve.
    pub fn preloaded(&self) -> usize {
        self.alloc.pool.len()
    }

    /// Frees the preload reserve (the kernel frees a dead CPU's reserve in
    /// `radix_tree_callback()`).
    pub fn release_preload(&mut self) {
        self.alloc.pool = Vec::new();
    }

    // ----------------------------------------------------------------------
    // Insert.

    /// `radix_tree_insert()`: stores `item` at `index`.
    ///
    /// # Errors
    /// [`Error::Exists`] (`-EEXIST`) when an entry is present at `index`;
    /// [`Error::NoMemory`] (`-ENOMEM`) when the nodes the insert needs cannot
    /// be had. The item is handed back, and in both cases the tree is left
    /// exactly as it was. (The kernel checks for EEXIST only at the bottom of
    /// its walk, but by then it has allocated nothing: it grows the tree only
    /// for an index above `maxindex`, which cannot be present, and allocates
    /// a node only under an empty slot, below which nothing is present. It
    /// can leave allocated nodes behind on ENOMEM, though: new levels from
    /// `radix_tree_extend()` and a partial branch. klab counts the nodes an
    /// insert needs before it changes anything, so a failed insert changes
    /// nothing.)
    ///
    /// ```
    /// use klab_radix_tree::{Entry, RadixTree};
    /// let mut t = RadixTree::<&str>::new();
    /// t.insert(7, "seven").unwrap();
    /// let err = t.insert(7, "again").unwrap_err();
    /// assert_eq!(err.error.errno(), 17); // EEXIST
    /// assert_eq!(err.entry, Entry::Item("again"));
    /// assert_eq!(t.lookup(7), Some(Entry::Item(&"seven")));
    /// ```
    pub fn insert(&mut self, index: u64, item: T) -> Result<(), InsertError<T>> {
        self.insert_entry(index, Entry::Item(item))
    }

    /// Stores a value entry (an exceptional entry, `xa_mk_value(value)`) at
    /// `index`: no allocation beyond the nodes on its path.
    ///
    /// # Errors
    /// As [`insert`](Self::insert), and [`Error::InvalidValue`] when `value`
    /// is over [`VALUE_MAX`].
    pub fn insert_value(&mut self, index: u64, value: u64) -> Result<(), InsertError<T>> {
        self.insert_entry(index, Entry::Value(value))
    }

    /// Stores an item or a value entry at `index`.
    ///
    /// # Errors
    /// As [`insert`](Self::insert) and [`insert_value`](Self::insert_value).
    pub fn insert_entry(&mut self, index: u64, entry: Entry<T>) -> Result<(), InsertError<T>> {
        if let Err(error) = check_value(&entry) {
            return Err(InsertError { error, entry });
        }
        let Some(needed) = self.nodes_needed(index) else {
            return Err(InsertError {
                error: Error::Exists { index },
                entry,
            });
        };
        let available = self.alloc.available();
        if needed > available {
            return Err(InsertError {
                error: Error::NoMemory { needed, available },
                entry,
            });
        }
        self.extend(index);
        self.counts.add(&entry);
        if self.height == 0 {
            debug_assert!(self.root.is_empty() && index == 0);
            self.root = Slot::from_entry(entry);
            return Ok(());
        }
        let RadixTree {
            root,
            height,
            alloc,
            ..
        } = self;
        if root.is_empty() {
            *root = Slot::Node(alloc.alloc(*height));
        }
        let Slot::Node(top) = root else {
            unreachable!("height > 0 with an entry at the root")
        };
        let mut node: &mut OwnedNode<T> = top;
        let mut shift = (*height - 1) * SHIFT;
        while shift > 0 {
            let off = Self::offset(index, shift);
            if node.present & (1 << off) == 0 {
                node.slots[off] = Slot::Node(alloc.alloc(shift / SHIFT));
                node.present |= 1 << off;
            }
            node = match &mut node.slots[off] {
                Slot::Node(child) => child,
                _ => unreachable!("interior slot holds an entry"),
            };
            shift -= SHIFT;
        }
        let off = Self::offset(index, 0);
        debug_assert!(node.slots[off].is_empty());
        debug_assert!(node.tags.iter().all(|t| t & (1 << off) == 0));
        node.nr_values += u8::from(entry.is_value());
        node.slots[off] = Slot::from_entry(entry);
        node.present |= 1 << off;
        Ok(())
    }

    /// Nodes an insert at `index` must allocate, or `None` when `index` is
    /// occupied.
    fn nodes_needed(&self, index: u64) -> Option<usize> {
        let want = Self::height_for(index);
        if want > self.height {
            // Above maxindex: cannot be present.
            return Some(if self.root.is_empty() {
                // radix_tree_extend() only sets the height; the walk builds
                // the whole branch.
                want as usize
            } else {
                // New levels above the old root, then a branch below the new
                // root (the index's top offset is not 0, so not through the
                // old root).
                (want - self.height + want - 1) as usize
            });
        }
        let Slot::Node(top) = &self.root else {
            // Height 0: index is 0.
            return if self.root.is_empty() { Some(0) } else { None };
        };
        let mut node: &OwnedNode<T> = top;
        let mut shift = (self.height - 1) * SHIFT;
        loop {
            let slot = &node.slots[Self::offset(index, shift)];
            if shift == 0 {
                return if slot.is_empty() { Some(0) } else { None };
            }
            match slot {
                Slot::Node(child) => node = child,
                _ => return Some((shift / SHIFT) as usize),
            }
            shift -= SHIFT;
        }
    }

    /// `radix_tree_extend()`: grows the tree until it covers `index`. An
    /// empty tree just takes the height (its branch is built by the insert);
    /// otherwise each new level is a node whose slot 0 holds the old root and
    /// inherits the root's tag bits there.
    fn extend(&mut self, index: u64) {
        let want = Self::height_for(index);
        if want <= self.height {
            return;
        }
        if self.root.is_empty() {
            self.height = want;
            return;
        }
        while self.height < want {
            let mut node = self.alloc.alloc(self.height + 1);
            let old = mem::replace(&mut self.root, Slot::Empty);
            node.nr_values = u8::from(matches!(old, Slot::Value(_)));
            node.slots[0] = old;
            node.present = 1;
            for t in 0..MAX_TAGS {
                if self.root_tags & (1 << t) != 0 {
                    node.tags[t] = 1;
                }
            }
            self.root = Slot::Node(node);
            self.height += 1;
        }
    }

    // ----------------------------------------------------------------------
    // Lookups.

    /// `radix_tree_lookup()`: the entry at `index`, item or value.
    ///
    /// The page cache's hot path: one load per level, no branch but the
    /// loop's and the empty check.
    #[inline]
    pub fn lookup(&self, index: u64) -> Option<Entry<&T>> {
        let top = match &self.root {
            Slot::Node(top) => top,
            // Height 0: the single entry answers for index 0 only.
            other => return if index == 0 { other.entry() } else { None },
        };
        if index > Self::maxindex(self.height) {
            return None;
        }
        owned(Walk::<Owned<T>, SHIFT>::lookup(top, self.height, index))
    }

    /// The item at `index` (`None` for a value entry or an empty index).
    #[inline]
    pub fn get(&self, index: u64) -> Option<&T> {
        self.lookup(index).and_then(Entry::item)
    }

    /// True when an entry is present at `index`.
    #[inline]
    pub fn contains(&self, index: u64) -> bool {
        self.lookup(index).is_some()
    }

    /// `radix_tree_lookup_slot()`: the slot holding the entry at `index`,
    /// to change the item in place or replace the entry. Never creates a
    /// slot: `None` when nothing is at `index`, so this is no substitute for
    /// [`insert`](Self::insert).
    pub fn lookup_slot(&mut self, index: u64) -> Option<SlotMut<'_, T>> {
        let RadixTree {
            root,
            height,
            counts,
            ..
        } = self;
        let top = match root {
            Slot::Node(top) => top,
            Slot::Empty => return None,
            other => {
                return (index == 0).then_some(SlotMut {
                    slot: other,
                    nr_values: None,
                    counts,
                });
            }
        };
        if index > Self::maxindex(*height) {
            return None;
        }
        let mut node: &mut OwnedNode<T> = top;
        let mut shift = (*height - 1) * SHIFT;
        while shift > 0 {
            node = match &mut node.slots[Self::offset(index, shift)] {
                Slot::Node(child) => child,
                _ => return None,
            };
            shift -= SHIFT;
        }
        let OwnedNode {
            slots, nr_values, ..
        } = node;
        let slot = &mut slots[Self::offset(index, 0)];
        if slot.is_empty() {
            return None;
        }
        Some(SlotMut {
            slot,
            nr_values: Some(nr_values),
            counts,
        })
    }

    /// The item at `index`, mutably (`None` for a value entry or an empty
    /// index).
    pub fn get_mut(&mut self, index: u64) -> Option<&mut T> {
        self.lookup_slot(index)?.into_item_mut()
    }

    /// `radix_tree_next_hole()`: the first index in
    /// `[index, index + max_scan)` with no entry, or an index outside that
    /// window when all are present (then `returned - index >= max_scan`).
    /// Stops at the wrap past `u64::MAX`, returning 0, as the kernel does.
    pub fn next_hole(&self, index: u64, max_scan: u64) -> u64 {
        let mut index = index;
        for _ in 0..max_scan {
            if !self.contains(index) {
                break;
            }
            index = index.wrapping_add(1);
            if index == 0 {
                break;
            }
        }
        index
    }

    // ----------------------------------------------------------------------
    // Delete.

    /// `radix_tree_delete()`: removes and returns the entry at `index`.
    ///
    /// Clears the entry's tags (propagating upward), frees every node left
    /// empty, bottom-up, then shrinks the tree while the root node has one
    /// child in slot 0 (`radix_tree_shrink()`), so the height stays minimal.
    /// Deleting the last entry frees every node: height 0, no node.
    pub fn delete(&mut self, index: u64) -> Option<Entry<T>> {
        if index > Self::maxindex(self.height) {
            return None;
        }
        if self.height == 0 {
            let e = self.root.take_entry()?;
            self.root_tags = 0;
            self.counts.sub(&e);
            return Some(e);
        }
        let RadixTree {
            root,
            height,
            root_tags,
            counts,
            alloc,
        } = self;
        let Slot::Node(top) = root else {
            unreachable!("height > 0 with an entry at the root")
        };
        let entry = Self::delete_in(top, index, (*height - 1) * SHIFT, &mut alloc.nodes)?;
        counts.sub(&entry);
        if top.present == 0 {
            *root = Slot::Empty;
            alloc.nodes -= 1;
            *height = 0;
            *root_tags = 0;
        } else {
            for t in 0..MAX_TAGS {
                if !top.any_tag(t) {
                    *root_tags &= !(1 << t);
                }
            }
            self.shrink();
        }
        Some(entry)
    }

    /// Removes the entry at `index` below `node` (at `shift`), then frees the
    /// child it came from if that is now empty, else clears this node's tag
    /// bits for tags the child no longer has (`radix_tree_tag_clear()`'s
    /// upward walk).
    fn delete_in(
        node: &mut OwnedNode<T>,
        index: u64,
        shift: u32,
        nodes: &mut usize,
    ) -> Option<Entry<T>> {
        let off = Self::offset(index, shift);
        let bit = 1u64 << off;
        if shift == 0 {
            let entry = node.slots[off].take_entry()?;
            node.present &= !bit;
            for tags in &mut node.tags {
                *tags &= !bit;
            }
            node.nr_values -= u8::from(entry.is_value());
            return Some(entry);
        }
        let Slot::Node(child) = &mut node.slots[off] else {
            return None;
        };
        let entry = Self::delete_in(child, index, shift - SHIFT, nodes)?;
        let child_empty = child.present == 0;
        let child_tags = child.tags;
        if child_empty {
            node.slots[off] = Slot::Empty;
            *nodes -= 1;
            node.present &= !bit;
            for tags in &mut node.tags {
                *tags &= !bit;
            }
        } else {
            for (tags, child_tags) in node.tags.iter_mut().zip(child_tags) {
                if child_tags == 0 {
                    *tags &= !bit;
                }
            }
        }
        Some(entry)
    }

    /// `radix_tree_shrink()`: while the root node's only child is in slot 0,
    /// that child becomes the root and the height drops by one. The root's
    /// tag bits stay: the entries are the same.
    fn shrink(&mut self) {
        while self.height > 0 {
            match &self.root {
                // count == 1 and that child is in slot 0.
                Slot::Node(top) if top.count() == 1 && top.present & 1 == 1 => {}
                _ => break,
            }
            let Slot::Node(mut old) = mem::replace(&mut self.root, Slot::Empty) else {
                unreachable!("matched a node above")
            };
            self.root = mem::replace(&mut old.slots[0], Slot::Empty);
            self.alloc.nodes -= 1;
            self.height -= 1;
        }
    }

    /// Removes every entry and frees every node (the preload reserve stays).
    pub fn clear(&mut self) {
        self.root = Slot::Empty;
        self.height = 0;
        self.root_tags = 0;
        self.counts = Counts::default();
        self.alloc.nodes = 0;
    }

    // ----------------------------------------------------------------------
    // Tags.

    /// `radix_tree_tag_set()`: sets `tag` on the entry at `index` and on
    /// every node on its path, and the root's bit. Returns the entry.
    ///
    /// # Errors
    /// [`Error::NotFound`] when no entry is at `index` (the kernel calls
    /// that a bug and `BUG()`s); nothing changes.
    pub fn tag_set(&mut self, index: u64, tag: Tag) -> Result<Entry<&T>, Error> {
        if !self.contains(index) {
            return Err(Error::NotFound { index });
        }
        let t = tag.index();
        self.root_tags |= 1 << t;
        let top = match &mut self.root {
            Slot::Node(top) => top,
            other => return other.entry().ok_or(Error::NotFound { index }),
        };
        let mut node: &mut OwnedNode<T> = top;
        let mut shift = (self.height - 1) * SHIFT;
        loop {
            let off = Self::offset(index, shift);
            node.tags[t] |= 1 << off;
            if shift == 0 {
                return node.slots[off].entry().ok_or(Error::NotFound { index });
            }
            node = match &mut node.slots[off] {
                Slot::Node(child) => child,
                _ => unreachable!("present index with a hole on its path"),
            };
            shift -= SHIFT;
        }
    }

    /// `radix_tree_tag_clear()`: clears `tag` on the entry at `index`, then
    /// on each ancestor left with no slot carrying the tag, and the root's
    /// bit when the last tagged entry loses it. Returns the entry, or `None`
    /// (and changes nothing) when no entry is at `index`.
    pub fn tag_clear(&mut self, index: u64, tag: Tag) -> Option<Entry<&T>> {
        if index > Self::maxindex(self.height) {
            return None;
        }
        let t = tag.index();
        match &mut self.root {
            Slot::Empty => return None,
            Slot::Node(top) => {
                if !Self::tag_clear_in(top, index, (self.height - 1) * SHIFT, t) {
                    return None;
                }
                if !top.any_tag(t) {
                    self.root_tags &= !(1 << t);
                }
            }
            Slot::Item(_) | Slot::Value(_) => self.root_tags &= !(1 << t),
        }
        self.lookup(index)
    }

    fn tag_clear_in(node: &mut OwnedNode<T>, index: u64, shift: u32, t: usize) -> bool {
        let off = Self::offset(index, shift);
        let bit = 1u64 << off;
        if shift == 0 {
            if node.present & bit == 0 {
                return false;
            }
            node.tags[t] &= !bit;
            return true;
        }
        let Slot::Node(child) = &mut node.slots[off] else {
            return false;
        };
        if !Self::tag_clear_in(child, index, shift - SHIFT, t) {
            return false;
        }
        if !child.any_tag(t) {
            node.tags[t] &= !bit;
        }
        true
    }

    /// `radix_tree_tag_get()`: true when the entry at `index` has `tag`.
    pub fn tag_get(&self, index: u64, tag: Tag) -> bool {
        let t = tag.index();
        if self.root_tags & (1 << t) == 0 {
            return false;
        }
        let top = match &self.root {
            Slot::Node(top) => top,
            other => return index == 0 && !other.is_empty(),
        };
        if index > Self::maxindex(self.height) {
            return false;
        }
        Walk::<Owned<T>, SHIFT>::tag_get(top, self.height, index, t)
    }

    /// `radix_tree_tagged()`: true when any entry has `tag`. O(1): reads the
    /// root's bit, which tag propagation keeps exact.
    #[inline]
    pub fn tagged(&self, tag: Tag) -> bool {
        self.root_tags & (1 << tag.index()) != 0
    }

    /// `radix_tree_range_tag_if_tagged()` (2.6.35): for each entry in
    /// `first..=last` that has `if_tag`, sets `set_tag`, stopping after
    /// `nr_to_tag` entries. Returns how many were tagged and the first index
    /// not scanned (`None` when the scan passed `u64::MAX`).
    ///
    /// The root's `set_tag` bit is set only when an entry was tagged: the
    /// fix for the bug regression2 in tools/testing/radix-tree reproduces,
    /// where the root bit was set although nothing in range was tagged, a
    /// later extension copied it into a node, and `gang_lookup_tag` looped
    /// forever.
    pub fn range_tag_if_tagged(
        &mut self,
        first: u64,
        last: u64,
        nr_to_tag: usize,
        if_tag: Tag,
        set_tag: Tag,
    ) -> (usize, Option<u64>) {
        let last = last.min(Self::maxindex(self.height));
        if nr_to_tag == 0 || first > last {
            return (0, Some(first));
        }
        let picked: Vec<u64> = self
            .range_tagged(first, if_tag)
            .map(|(i, _)| i)
            .take_while(|&i| i <= last)
            .take(nr_to_tag)
            .collect();
        for &i in &picked {
            let tagged = self.tag_set(i, set_tag);
            debug_assert!(tagged.is_ok());
        }
        let next = if picked.len() == nr_to_tag {
            picked.last().and_then(|i| i.checked_add(1))
        } else {
            last.checked_add(1)
        };
        (picked.len(), next)
    }

    // ----------------------------------------------------------------------
    // Invariants.

    /// Checks every invariant of the module header and panics with the first
    /// broken one. For tests: O(nodes).
    ///
    /// * `height <= MAX_PATH`; height 0 iff there is no node; the tree is
    ///   empty iff the root slot is;
    /// * per node: its height is its level; `present` matches the
    ///   non-empty slots and is not 0; interior slots hold nodes, leaf slots
    ///   hold entries; `nr_values` counts value slots; `tags[t] ⊆ present`;
    ///   an interior tag bit is set iff the child has any bit of that tag;
    /// * root tag bit `t` set iff some entry has tag `t`;
    /// * minimal height: for height `h > 0` the root node has a child
    ///   outside slot 0 (so the largest index is above `maxindex(h - 1)`);
    /// * the entry and node counts match a full walk.
    pub fn assert_invariants(&self) {
        assert!(
            self.height <= Self::MAX_PATH,
            "height {} over MAX_PATH {}",
            self.height,
            Self::MAX_PATH
        );
        let mut census = Census::default();
        match (&self.root, self.height) {
            (Slot::Empty, 0) => assert_eq!(self.root_tags, 0, "empty tree with root tags"),
            (Slot::Item(_), 0) => census.items += 1,
            (Slot::Value(v), 0) => {
                assert!(*v <= VALUE_MAX, "value {v:#x} over VALUE_MAX");
                census.values += 1;
            }
            (Slot::Node(top), h) if h > 0 => {
                check_node(top, SHIFT, h, 0, &|v| v <= VALUE_MAX, &mut census);
                for t in 0..MAX_TAGS {
                    assert_eq!(
                        self.root_tags & (1 << t) != 0,
                        top.any_tag(t),
                        "root tag {t} disagrees with the top node"
                    );
                }
                assert_ne!(
                    top.present & !1,
                    0,
                    "height {h} not minimal: the root node's only child is in slot 0"
                );
            }
            (root, h) => panic!(
                "height {h} with a root slot holding {}",
                match root {
                    Slot::Empty => "nothing",
                    Slot::Node(_) => "a node",
                    _ => "an entry",
                }
            ),
        }
        let counts = Counts {
            items: census.items,
            values: census.values,
        };
        assert_eq!(counts, self.counts, "entry counts");
        assert_eq!(census.nodes, self.alloc.nodes, "node count");
        assert!(
            self.alloc.pool.len() <= Self::PRELOAD_SIZE,
            "preload reserve over size"
        );
    }
}

impl<T: std::fmt::Debug, const SHIFT: u32> std::fmt::Debug for RadixTree<T, SHIFT> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
