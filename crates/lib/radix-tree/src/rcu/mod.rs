//! The radix tree for lockless readers: lookups, gang lookups and tagged
//! gang lookups without a lock while a writer changes the tree, as the
//! kernel's page cache has done since 2.6.27 (Nick Piggin's lockless
//! pagecache: `radix_tree_lookup_slot()` under `rcu_read_lock()`, then
//! `page_cache_get_speculative()`; seed 004: "Nick Piggin currently has a
//! patch circulating which would use read-copy-update to free tree nodes;
//! this patch would allow lookup operations to be performed without
//! locking").
//!
//! [`RcuRadixTree`] has the single-threaded tree's node layout (`Node` in
//! `node.rs`, with atomic words for slots and bitmaps), its tags and the
//! same read-side code: `lookup`, `tag_get`, the gang lookups and the
//! iterator are one implementation (`iter.rs`) for both. What differs is
//! the writer, which must publish each change so that a reader running
//! beside it sees a consistent tree.
//!
//! * **Readers** pin ([`RcuRadixTree::read`], `rcu_read_lock()`) and walk.
//!   They never write to the tree and never wait: a reader takes no lock
//!   and does not retry on a writer's account except in one case below (a
//!   retry marker), which a writer's shrink creates once.
//! * **Writers** serialise among themselves on one lock
//!   ([`RcuRadixTree::lock`], the kernel's `mapping->tree_lock`), and
//!   change the tree in place with atomic stores.
//! * **Grace periods**: a node a writer unlinks and an item it removes are
//!   freed only after every reader pinned at that moment has unpinned
//!   (`call_rcu()`), through crossbeam-epoch (see `epoch.rs`).
//!
//! # Memory ordering: why a reader sees the old or the new slot
//!
//! The argument the kernel makes in `radix_tree_deref_slot()`,
//! `radix_tree_shrink()` and `page_cache_get_speculative()`
//! (include/linux/pagemap.h), for this tree:
//!
//! 1. **Publication.** Every node and item is complete before the store
//!    that makes it reachable: an insert builds any missing branch of nodes
//!    off the tree, with the entry at its bottom, and links it with one
//!    release store into an existing slot (or the root); a grown tree's new
//!    top levels are built the same way and published with one release
//!    store to the root. A reader loads every slot with acquire ordering
//!    (`rcu_assign_pointer()` / `rcu_dereference()`), so a reader that sees
//!    a pointer sees everything written to its target before it was linked.
//! 2. **No torn node.** Each slot is one word, so a reader sees a slot
//!    either before or after a store, never half of one. Nothing a reader
//!    does depends on two words of a node agreeing: the `present` and tag
//!    bitmaps (read relaxed) only say where to look, and the slot says
//!    what is there. A set bit over an empty slot is skipped (the writer
//!    emptied it after the reader read the bitmap); a clear bit over a full
//!    slot hides an entry stored after the reader read the bitmap, which is
//!    the old value of that slot.
//! 3. **Height from the node.** A node's height is fixed when it is made,
//!    and a reader takes it from the node it loaded from the root, never
//!    from the writer's copy (2.6.27's `radix_tree_lookup_element()`). A
//!    tree that grows keeps its old top node as slot 0 of the new top, and
//!    one that shrinks keeps the node that becomes the root linked from the
//!    old top's slot 0, so a reader that loaded the old top still walks
//!    live nodes to the entries it looks for.
//! 4. **Retry.** When the tree shrinks to height 0, the entry at index 0
//!    moves from the old top (a leaf) into the root. The old top's slot 0
//!    is then overwritten with the retry marker (`RADIX_TREE_RETRY`, the
//!    kernel's fix of 2.6.29 to 2.6.27's zeroing that slot): a reader on
//!    the dead leaf starts again from the root. Without it a slot in a dead
//!    node would go on answering with an entry that has moved, and may
//!    since have been deleted: a speculative getter's re-check (below)
//!    would pass on it for ever.
//! 5. **Lifetime.** A writer unlinks a node or an item with a store, then
//!    retires it; it is freed once every reader pinned before that store
//!    has unpinned. A reader that pins later cannot reach it: it loads the
//!    root after pinning, and the pin is ordered before those loads (the
//!    fence in crossbeam's pin and in its collection), so it sees the
//!    unlinking store. So every reference a pinned reader holds stays
//!    valid until it unpins, which is what bounds the references
//!    [`ReadGuard`] lends to the guard's lifetime.
//! 6. **Delete and re-insert of the same index.** A reader that loaded item
//!    `A` from a slot may race a writer that deletes `A` and inserts `B` at
//!    the same index, in the same leaf or in a new one if the old leaf was
//!    emptied and freed. The reader answers `A`: it was the slot's value
//!    when loaded, an old value, and `A` cannot be freed while the reader
//!    is pinned. A reader that wants to keep `A` past its pinned section
//!    must take a reference of its own, and then needs to know that `A` is
//!    still the entry, which [`ReadGuard::get_speculative`] answers as
//!    `find_get_page()` does: take the reference if the item can still give
//!    one (`get_page_unless_zero()`), then re-load the same slot; if it no
//!    longer holds `A` (emptied, now `B`, or the retry marker), drop the
//!    reference and walk again from the root. The re-check cannot be
//!    fooled by a different item at `A`'s address: `A`'s memory is not
//!    freed while the reader is pinned, so no new item can take its place.
//!    If the slot holds `A` again because `A` itself was re-inserted, the
//!    reference is to the entry that is there now, which is right ("the old
//!    find_get_page using tree_lock could equally have run before or after
//!    such a re-insertion", pagemap.h).
//! 7. **Tags.** A reader reads tag bits relaxed, so a tagged gang lookup
//!    racing `tag_set` or `tag_clear` may miss an entry just tagged or
//!    return one just untagged; as in the kernel, a caller that must be
//!    sure re-checks under the lock (writeback's `clear_page_dirty_for_io()`
//!    after `find_get_pages_tag()`). Entries it returns were present, and
//!    ones that kept the tag throughout the call are found.
//!
//! Gang lookups and iteration are not snapshots: each slot is read once,
//! old or new, independently of the others (`radix_tree_gang_lookup()`
//! under RCU). An entry present throughout a gang lookup is returned
//! (unless the results filled up before its index).
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use klab_radix_tree::{Entry, RcuRadixTree};
//!
//! let pages = RcuRadixTree::<Arc<u64>>::new();
//! pages.lock().insert(7, Arc::new(700)).unwrap();
//!
//! std::thread::scope(|s| {
//!     // A reader: no lock, however long the writer below holds its own.
//!     s.spawn(|| {
//!         let r = pages.read();
//!         if let Some(Entry::Item(v)) = r.lookup(7) {
//!             assert!(*v == 700 || *v == 701);
//!         }
//!     });
//!     let mut w = pages.lock();
//!     w.replace(7, Entry::Item(Arc::new(701))).unwrap();
//! });
//!
//! // A reference that outlives the read-side section: taken speculatively
//! // and re-checked against the slot.
//! let page: Arc<u64> = pages.read().get_arc(7).and_then(Entry::item).unwrap();
//! assert_eq!(*page, 701);
//! ```
#![allow(unsafe_code)]

mod epoch;
mod layout;
mod sync;
mod write;

#[cfg(test)]
mod tests;

#[cfg(all(test, loom))]
mod loom_tests;

use std::iter::FusedIterator;
use std::marker::PhantomData;
use std::sync::Arc;

pub use layout::SharedPointer;
pub use write::WriteGuard;

use crate::entry::{Entry, Tag};
use crate::iter::{Filter, GangResults, RawIter, Root, Walk};
use crate::node::{Retry, View, maxindex};
use epoch::Domain;
use layout::{Shared, decode};
use sync::{AtomicPtr, AtomicU8, Mutex, Ordering};
use write::Writer;

/// A radix tree that any number of threads read without a lock while one
/// writer at a time changes it: the page cache's tree from 2.6.27 on. See
/// the [module documentation](self) for how.
///
/// `P` is the item's owning pointer (`Box<T>`, `Arc<T>`: a
/// [`SharedPointer`]); lookups lend `&P::Target`. `SHIFT` is as for
/// [`RadixTree`](crate::RadixTree).
pub struct RcuRadixTree<P: SharedPointer, const SHIFT: u32 = 6> {
    /// `root->rnode`: empty, the entry at index 0 (height 0), or the top node.
    pub(crate) root: AtomicPtr<()>,
    /// The root's "any entry has tag t" bits.
    pub(crate) root_tags: AtomicU8,
    /// `mapping->tree_lock` and what only writers use.
    pub(crate) writer: Mutex<Writer>,
    pub(crate) domain: Domain,
    pub(crate) _items: PhantomData<P>,
}

// SAFETY: readers on any thread share `&P::Target` (so `P: Sync`, which
// `Box<T>` and `Arc<T>` are when `T` is), and a writer on any thread takes
// ownership of items inserted on another and drops them there or on the
// thread that runs a deferred destructor (so `P: Send`). The tree's own
// words are atomics; the writer state is behind the mutex.
unsafe impl<P: SharedPointer + Send + Sync, const SHIFT: u32> Sync for RcuRadixTree<P, SHIFT> {}
// SAFETY: moving the tree moves ownership of its items (`P: Send`).
unsafe impl<P: SharedPointer + Send, const SHIFT: u32> Send for RcuRadixTree<P, SHIFT> {}

impl<P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> Default
    for RcuRadixTree<P, SHIFT>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> RcuRadixTree<P, SHIFT> {
    /// `RADIX_TREE_MAP_SHIFT`.
    pub const MAP_SHIFT: u32 = crate::RadixTree::<(), SHIFT>::MAP_SHIFT;

    /// An empty tree.
    pub fn new() -> Self {
        const {
            assert!(
                std::mem::align_of::<P::Target>() >= 4,
                "items must be aligned to 4 bytes: the low two bits of a slot word say what it holds"
            );
        }
        let _ = Self::MAP_SHIFT;
        RcuRadixTree {
            root: AtomicPtr::new(std::ptr::null_mut()),
            root_tags: AtomicU8::new(0),
            writer: Mutex::new(Writer::default()),
            domain: Domain::new(),
            _items: PhantomData,
        }
    }

    /// `rcu_read_lock()`: a read-side section. Lookups through the guard
    /// take no lock; the references they return live as long as the guard.
    #[inline]
    pub fn read(&self) -> ReadGuard<'_, P, SHIFT> {
        ReadGuard {
            tree: self,
            _pin: self.domain.pin(),
        }
    }

    /// `spin_lock(&mapping->tree_lock)`: the writer's lock. Readers do not
    /// take it and are not held up by it.
    pub fn lock(&self) -> WriteGuard<'_, P, SHIFT> {
        WriteGuard::new(self)
    }
}

/// A read-side section (`rcu_read_lock()` to `rcu_read_unlock()`): the
/// lockless lookups. What they return borrows the guard, and stays valid
/// (though it may leave the tree) until the guard is dropped.
pub struct ReadGuard<'t, P: SharedPointer, const SHIFT: u32 = 6> {
    tree: &'t RcuRadixTree<P, SHIFT>,
    _pin: epoch::Guard<'t>,
}

impl<'t, P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> ReadGuard<'t, P, SHIFT> {
    /// The root, as a walk starts from it, with references bounded by the
    /// guard's borrow (see `layout::decode`). The height comes from the
    /// top node, not from the writer.
    #[inline(always)]
    fn root(&self) -> Root<'_, Shared<P>> {
        let slot: &AtomicPtr<()> = &self.tree.root;
        match decode::<P>(slot.load(Ordering::Acquire)) {
            View::Node(top) => Root::Node(top, u32::from(top.height)),
            View::Entry(e) => Root::Entry(e),
            View::Empty | View::Retry => Root::Empty,
        }
    }

    /// The slot holding `index`'s entry (the root slot for a tree of height
    /// 0), if the path to it exists: `radix_tree_lookup_slot()`.
    #[inline]
    fn slot(&self, index: u64) -> Result<Option<&AtomicPtr<()>>, Retry> {
        let slot: &AtomicPtr<()> = &self.tree.root;
        match decode::<P>(slot.load(Ordering::Acquire)) {
            View::Node(top) => {
                let height = u32::from(top.height);
                if index > maxindex(SHIFT, height) {
                    return Ok(None);
                }
                Walk::<Shared<P>, SHIFT>::leaf_slot(top, height, index)
            }
            _ => Ok((index == 0).then_some(slot)),
        }
    }

    /// `radix_tree_lookup()`, without a lock: the entry at `index`.
    #[inline]
    pub fn lookup(&self, index: u64) -> Option<Entry<&P::Target>> {
        loop {
            let r = match self.root() {
                Root::Node(top, height) => {
                    if index > maxindex(SHIFT, height) {
                        return None;
                    }
                    Walk::<Shared<P>, SHIFT>::lookup(top, height, index)
                }
                Root::Entry(e) => return (index == 0).then_some(e),
                Root::Empty => return None,
            };
            match r {
                Ok(e) => return e,
                Err(Retry) => continue,
            }
        }
    }

    /// The item at `index` (`None` for a value entry or an empty index).
    #[inline]
    pub fn get(&self, index: u64) -> Option<&P::Target> {
        self.lookup(index).and_then(Entry::item)
    }

    /// True when an entry is present at `index`.
    #[inline]
    pub fn contains(&self, index: u64) -> bool {
        self.lookup(index).is_some()
    }

    /// `radix_tree_gang_lookup()`, without a lock: appends up to `max_items`
    /// entries with index `>= first_index`, in index order, and returns how
    /// many. Each slot is read once, old or new (see the module header); as
    /// in the kernel, a short return does not promise that nothing follows.
    pub fn gang_lookup<'g>(
        &'g self,
        first_index: u64,
        max_items: usize,
        results: &mut GangResults<'g, P::Target>,
    ) -> usize {
        self.gang(first_index, max_items, results, Filter::Present)
    }

    /// `radix_tree_gang_lookup_tag()`, without a lock: as
    /// [`gang_lookup`](Self::gang_lookup), entries carrying `tag`. A tag
    /// changed during the call may or may not count (module header, 7).
    pub fn gang_lookup_tag<'g>(
        &'g self,
        first_index: u64,
        max_items: usize,
        tag: Tag,
        results: &mut GangResults<'g, P::Target>,
    ) -> usize {
        self.gang(first_index, max_items, results, Filter::Tagged(tag.index()))
    }

    fn gang<'g>(
        &'g self,
        first_index: u64,
        max_items: usize,
        results: &mut GangResults<'g, P::Target>,
        filter: Filter,
    ) -> usize {
        let start = results.len();
        loop {
            if max_items == 0 || !filter.may_match(self.tree.root_tags.load(Ordering::Relaxed)) {
                return 0;
            }
            match Walk::<Shared<P>, SHIFT>::gang(
                self.root(),
                first_index,
                max_items,
                results,
                filter,
                &mut (),
            ) {
                Ok(()) => return results.len() - start,
                // Only a dead leaf's slot 0 holds the marker, the first slot
                // a walk reads: nothing was appended yet, but start clean.
                Err(Retry) => results.truncate(start),
            }
        }
    }

    /// `radix_tree_tag_get()`, without a lock: true when the entry at
    /// `index` carries `tag` (old or new, if a writer is changing it).
    pub fn tag_get(&self, index: u64, tag: Tag) -> bool {
        let t = tag.index();
        if self.tree.root_tags.load(Ordering::Relaxed) & (1 << t) == 0 {
            return false;
        }
        match self.root() {
            Root::Node(top, height) => {
                index <= maxindex(SHIFT, height)
                    && Walk::<Shared<P>, SHIFT>::tag_get(top, height, index, t)
            }
            Root::Entry(_) => index == 0,
            Root::Empty => false,
        }
    }

    /// `radix_tree_tagged()`: true when any entry carries `tag`.
    #[inline]
    pub fn tagged(&self, tag: Tag) -> bool {
        self.tree.root_tags.load(Ordering::Relaxed) & (1 << tag.index()) != 0
    }

    /// Every entry, in index order (each slot read once, old or new).
    pub fn iter(&self) -> RcuIter<'_, 't, P, SHIFT> {
        RcuIter::new(self, 0, Filter::Present)
    }

    /// Every entry with index `>= first`, in index order.
    pub fn range(&self, first: u64) -> RcuIter<'_, 't, P, SHIFT> {
        RcuIter::new(self, first, Filter::Present)
    }

    /// Every entry carrying `tag`, in index order.
    pub fn iter_tagged(&self, tag: Tag) -> RcuIter<'_, 't, P, SHIFT> {
        RcuIter::new(self, 0, Filter::Tagged(tag.index()))
    }

    /// `find_get_page()`: the entry at `index`, with a reference of the
    /// caller's own taken by `get` (`page_cache_get_speculative()`), which
    /// returns `None` when the item can no longer give one (its count is
    /// zero: it is being freed).
    ///
    /// The protocol of include/linux/pagemap.h: (1) find the item, (2) take
    /// a reference if the item still has any, (3) check the slot still
    /// holds the item; if (2) or (3) fails, drop what was taken and start
    /// again from the root. A removal that freezes the item's count first
    /// (`page_freeze_refs()`) then either sees the reference and backs off,
    /// or makes (2) fail. The reference returned was taken while the item
    /// was the entry at `index`. Value entries are returned as they are.
    pub fn get_speculative<R>(
        &self,
        index: u64,
        mut get: impl FnMut(&P::Target) -> Option<R>,
    ) -> Option<Entry<R>> {
        // SAFETY: `speculative` passes a pointer to an item in the tree,
        // valid while this guard is pinned, and `get` returns nothing that
        // borrows it (`R` does not depend on the reference's lifetime).
        self.speculative(index, |p| get(unsafe { &*p }))
    }

    /// The loop of [`get_speculative`](Self::get_speculative), handing
    /// `get` the item's raw pointer (with the provenance of the slot word,
    /// which `Arc::increment_strong_count` needs).
    fn speculative<R>(
        &self,
        index: u64,
        mut get: impl FnMut(*const P::Target) -> Option<R>,
    ) -> Option<Entry<R>> {
        loop {
            // 1. find.
            let slot = match self.slot(index) {
                Ok(Some(slot)) => slot,
                Ok(None) => return None,
                Err(Retry) => continue,
            };
            let word = slot.load(Ordering::Acquire);
            match decode::<P>(word) {
                View::Empty => return None,
                View::Retry => continue,
                View::Entry(Entry::Value(v)) => return Some(Entry::Value(v)),
                // The root slot of a tree of height 0 that has grown since
                // the walk: walk again.
                View::Node(_) => continue,
                View::Entry(Entry::Item(_)) => {}
            }
            // 2. get the reference, unless the item is on its way out (its
            // remover froze the count and is about to delete it: wait for
            // that, as find_get_page() does).
            let Some(r) = get(word.cast_const().cast::<P::Target>()) else {
                sync::spin_loop();
                continue;
            };
            // 3. has the item moved? (pagemap.h: "It is possible that
            // between 1 and 2, the page is removed then the exact same page
            // is inserted into the same position": then this is it.)
            if slot.load(Ordering::Acquire) == word {
                return Some(Entry::Item(r));
            }
            drop(r);
        }
    }
}

impl<'t, T: Send + Sync + 'static, const SHIFT: u32> ReadGuard<'t, Arc<T>, SHIFT> {
    /// [`get_speculative`](Self::get_speculative) for `Arc` items: the
    /// entry at `index`, with a strong reference of the caller's own.
    pub fn get_arc(&self, index: u64) -> Option<Entry<Arc<T>>> {
        self.speculative(index, |p| {
            // SAFETY: `p` is an item word of this tree: a pointer from
            // `Arc::into_raw` whose strong count the tree still holds (it
            // drops it only after this pinned section's grace period), so
            // the count is at least 1 and the allocation live.
            unsafe {
                Arc::increment_strong_count(p);
                Some(Arc::from_raw(p))
            }
        })
    }
}

/// An index-ordered iterator over a shared tree, without a lock: each slot
/// is read once, old or new.
pub struct RcuIter<'g, 't, P: SharedPointer, const SHIFT: u32> {
    guard: &'g ReadGuard<'t, P, SHIFT>,
    raw: RawIter<'g, Shared<P>, SHIFT>,
    /// Where a restarted walk resumes: after the last index returned.
    next: Option<u64>,
    filter: Filter,
}

impl<'g, 't, P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> RcuIter<'g, 't, P, SHIFT> {
    fn new(guard: &'g ReadGuard<'t, P, SHIFT>, first: u64, filter: Filter) -> Self {
        let raw = RawIter::new(
            guard.root(),
            guard.tree.root_tags.load(Ordering::Relaxed),
            first,
            filter,
        );
        RcuIter {
            guard,
            raw,
            next: Some(first),
            filter,
        }
    }
}

impl<'g, 't, P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> Iterator
    for RcuIter<'g, 't, P, SHIFT>
{
    type Item = (u64, Entry<&'g P::Target>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let first = self.next?;
            match self.raw.next() {
                Some(Ok((index, e))) => {
                    self.next = index.checked_add(1);
                    return Some((index, e));
                }
                Some(Err(Retry)) => {
                    self.raw = RawIter::new(
                        self.guard.root(),
                        self.guard.tree.root_tags.load(Ordering::Relaxed),
                        first,
                        self.filter,
                    );
                }
                None => {
                    self.next = None;
                    return None;
                }
            }
        }
    }
}

impl<P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> FusedIterator
    for RcuIter<'_, '_, P, SHIFT>
{
}

impl<P: SharedPointer, const SHIFT: u32> Drop for RcuRadixTree<P, SHIFT> {
    /// No reader is left (`&mut self`): frees every node and drops every
    /// item now. Nodes and items retired earlier are freed by their
    /// deferred destructors, which own them.
    fn drop(&mut self) {
        let root = self.root.load(Ordering::Relaxed);
        write::free_subtree::<P>(root);
    }
}

impl<P: SharedPointer + Send + Sync + 'static, const SHIFT: u32> std::fmt::Debug
    for RcuRadixTree<P, SHIFT>
where
    P::Target: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = self.read();
        f.debug_map().entries(r.iter()).finish()
    }
}
