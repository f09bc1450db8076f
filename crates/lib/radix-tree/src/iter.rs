//! Gang lookups and iterators: index-ascending scans of the tree.
//!
//! Both skip holes and untagged subtrees with bit operations on a node's
//! `present` or `tags[t]` bitmap (`trailing_zeros`), so a scan touches only
//! the nodes on paths to what it returns. A tagged scan is what lets the
//! page cache find its few dirty pages among many clean ones without looking
//! at the clean ones.

use std::iter::FusedIterator;
use std::marker::PhantomData;

use crate::entry::{Entry, Tag};
use crate::node::{Layout, Node, Owned, Retry, Slot, View, maxindex};
use crate::tree::RadixTree;

/// Work a scan did, counted by
/// [`gang_lookup_counted`](RadixTree::gang_lookup_counted) and
/// [`gang_lookup_tag_counted`](RadixTree::gang_lookup_tag_counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WalkCost {
    /// Nodes whose bitmaps were read.
    pub nodes: u64,
    /// Leaf slots read.
    pub slots: u64,
}

/// Where a scan reports its work: nowhere (`()`, compiled away) or a
/// [`WalkCost`].
pub(crate) trait CostSink {
    fn node(&mut self);
    fn slot(&mut self);
}

impl CostSink for () {
    #[inline(always)]
    fn node(&mut self) {}
    #[inline(always)]
    fn slot(&mut self) {}
}

impl CostSink for WalkCost {
    #[inline]
    fn node(&mut self) {
        self.nodes += 1;
    }
    #[inline]
    fn slot(&mut self) {
        self.slots += 1;
    }
}

/// Which bitmap of a node a scan follows: the occupied slots, or one tag.
#[derive(Clone, Copy)]
pub(crate) enum Filter {
    Present,
    Tagged(usize),
}

impl Filter {
    #[inline(always)]
    fn bits<L: Layout>(self, node: &Node<L>) -> u64 {
        match self {
            Filter::Present => L::bits(&node.present),
            Filter::Tagged(t) => L::bits(&node.tags[t]),
        }
    }

    /// False when the root's tag bits say no entry can match.
    #[inline(always)]
    pub(crate) fn may_match(self, root_tags: u8) -> bool {
        match self {
            Filter::Present => true,
            Filter::Tagged(t) => root_tags & (1 << t) != 0,
        }
    }
}

/// The lowest `k` set bits of `bits` (`k` < 64 or all of them).
#[inline]
fn lowest_set_bits(bits: u64, k: usize) -> u64 {
    let mut rest = bits;
    for _ in 0..k {
        rest &= rest.wrapping_sub(1);
    }
    bits ^ rest
}

/// A gang lookup's result: `(index, entry)` pairs in index order.
pub type GangResults<'a, T> = Vec<(u64, Entry<&'a T>)>;

/// What a walk starts from: the root slot and, for a tree of height > 0,
/// the top node and its height.
pub(crate) enum Root<'a, L: Layout> {
    Empty,
    /// Height 0: the entry at index 0, kept in the root.
    Entry(Entry<&'a L::Item>),
    Node(&'a Node<L>, u32),
}

/// The read-side walks, written once for both layouts (see `node.rs`):
/// lookups, tag lookups, gang lookups and iteration. Each returns
/// `Err(Retry)` when it meets a retry marker, which only the shared tree
/// has; the single-threaded tree unwraps with [`owned`].
pub(crate) struct Walk<L, const SHIFT: u32>(PhantomData<L>);

/// The result of a walk of the single-threaded tree, which never meets a
/// retry marker.
#[inline(always)]
pub(crate) fn owned<R>(r: Result<R, Retry>) -> R {
    match r {
        Ok(v) => v,
        Err(Retry) => unreachable!("the single-threaded tree holds no retry marker"),
    }
}

impl<L: Layout, const SHIFT: u32> Walk<L, SHIFT> {
    const MASK: u64 = (1 << SHIFT) - 1;

    /// `(index >> shift) & MAP_MASK`.
    #[inline(always)]
    const fn offset(index: u64, shift: u32) -> usize {
        ((index >> shift) & Self::MASK) as usize
    }

    /// The first slot a scan from `first` reads in a node covering indices
    /// from `base` at `shift`: the offset of `first` in the node that holds
    /// it, 0 in every node after it.
    #[inline(always)]
    fn start_mask(first: u64, base: u64, shift: u32) -> u64 {
        if first > base {
            u64::MAX << ((first - base) >> shift)
        } else {
            u64::MAX
        }
    }

    /// The leaf slot for `index` below `top` (a node at `height`, with
    /// `index <= maxindex(height)`), or `None` when the path meets an empty
    /// slot: `radix_tree_lookup_slot()`'s descent, one load a level.
    #[inline(always)]
    pub(crate) fn leaf_slot(
        top: &Node<L>,
        height: u32,
        index: u64,
    ) -> Result<Option<&L::Slot>, Retry> {
        let mut node = top;
        let mut shift = (height - 1) * SHIFT;
        while shift > 0 {
            match L::view(&node.slots[Self::offset(index, shift)]) {
                View::Node(child) => node = child,
                View::Retry => return Err(Retry),
                View::Empty | View::Entry(_) => return Ok(None),
            }
            shift -= SHIFT;
        }
        Ok(Some(&node.slots[Self::offset(index, 0)]))
    }

    /// `radix_tree_lookup()` below `top`.
    #[inline(always)]
    pub(crate) fn lookup(
        top: &Node<L>,
        height: u32,
        index: u64,
    ) -> Result<Option<Entry<&L::Item>>, Retry> {
        match Self::leaf_slot(top, height, index)? {
            Some(slot) => L::view(slot).entry(),
            None => Ok(None),
        }
    }

    /// `radix_tree_tag_get()` below `top`: the tag bits on the path to
    /// `index` all set, down to the entry's own.
    pub(crate) fn tag_get(top: &Node<L>, height: u32, index: u64, t: usize) -> bool {
        let mut node = top;
        let mut shift = (height - 1) * SHIFT;
        loop {
            let off = Self::offset(index, shift);
            if L::bits(&node.tags[t]) & (1 << off) == 0 {
                return false;
            }
            if shift == 0 {
                return true;
            }
            match L::view(&node.slots[off]) {
                View::Node(child) => node = child,
                _ => return false,
            }
            shift -= SHIFT;
        }
    }

    /// A gang lookup: appends up to `max_items` entries with index
    /// `>= first_index` whose `filter` bit is set, in index order. The
    /// caller has checked the root's tag bits.
    pub(crate) fn gang<'a, C: CostSink>(
        root: Root<'a, L>,
        first_index: u64,
        max_items: usize,
        results: &mut GangResults<'a, L::Item>,
        filter: Filter,
        cost: &mut C,
    ) -> Result<(), Retry> {
        if max_items == 0 {
            return Ok(());
        }
        match root {
            Root::Node(top, height) => {
                if first_index <= maxindex(SHIFT, height) {
                    let limit = results.len() + max_items;
                    Self::collect(
                        top,
                        (height - 1) * SHIFT,
                        0,
                        first_index,
                        limit,
                        results,
                        filter,
                        cost,
                    )?;
                }
            }
            Root::Entry(e) => {
                if first_index == 0 {
                    cost.slot();
                    results.push((0, e));
                }
            }
            Root::Empty => {}
        }
        Ok(())
    }

    /// Appends the entries under `node` (covering indices from `base`, at
    /// `shift`) with index `>= first` whose `filter` bit is set, until
    /// `results` holds `limit`; returns true when it does.
    ///
    /// A set bit over an empty slot is skipped: in the shared tree a writer
    /// may have emptied the slot after the reader read the bitmap.
    #[allow(clippy::too_many_arguments)]
    fn collect<'a, C: CostSink>(
        node: &'a Node<L>,
        shift: u32,
        base: u64,
        first: u64,
        limit: usize,
        results: &mut GangResults<'a, L::Item>,
        filter: Filter,
        cost: &mut C,
    ) -> Result<bool, Retry> {
        cost.node();
        let mut bits = filter.bits(node) & Self::start_mask(first, base, shift);
        if shift == 0 {
            // A leaf: take at most the room left, then append without a
            // per-entry limit test. Only when a bit's slot was empty (the
            // shared tree, racing a delete) is there a second round.
            loop {
                let room = limit - results.len();
                let take = if bits.count_ones() as usize > room {
                    lowest_set_bits(bits, room)
                } else {
                    bits
                };
                bits ^= take;
                for _ in 0..take.count_ones() {
                    cost.slot();
                }
                let mut take = take;
                while take != 0 {
                    let off = take.trailing_zeros();
                    take &= take - 1;
                    if let Some(e) = L::view(&node.slots[off as usize]).entry()? {
                        results.push((base + u64::from(off), e));
                    }
                }
                if results.len() == limit {
                    return Ok(true);
                }
                if bits == 0 {
                    return Ok(false);
                }
            }
        }
        while bits != 0 {
            let off = bits.trailing_zeros();
            bits &= bits - 1;
            match L::view(&node.slots[off as usize]) {
                View::Node(child) => {
                    if Self::collect(
                        child,
                        shift - SHIFT,
                        base + (u64::from(off) << shift),
                        first,
                        limit,
                        results,
                        filter,
                        cost,
                    )? {
                        return Ok(true);
                    }
                }
                View::Retry => return Err(Retry),
                View::Empty | View::Entry(_) => {}
            }
        }
        Ok(false)
    }
}

impl<T, const SHIFT: u32> RadixTree<T, SHIFT> {
    /// The root as a walk starts from it.
    #[inline(always)]
    pub(crate) fn root_view(&self) -> Root<'_, Owned<T>> {
        match &self.root {
            Slot::Node(top) => Root::Node(top, self.height),
            Slot::Item(t) => Root::Entry(Entry::Item(t)),
            Slot::Value(v) => Root::Entry(Entry::Value(*v)),
            Slot::Empty => Root::Empty,
        }
    }

    /// `radix_tree_gang_lookup()`: appends to `results` up to `max_items`
    /// entries (items and values, told apart by [`Entry::is_value`]) with
    /// index `>= first_index`, in ascending index order, and returns how many
    /// it appended.
    ///
    /// Short returns: the kernel documents that a short return (other than
    /// zero) does not mean there is nothing more, because under RCU the
    /// tree can change during the walk, and callers loop from the last
    /// index + 1 until a call returns 0. Here the tree cannot change during
    /// the call (`&self`), and a return below `max_items` does mean no
    /// further entry exists; callers written the kernel's way work unchanged.
    /// A caller continuing after `u64::MAX` must stop: there is no next
    /// index (the kernel's scans stop at the wrap).
    ///
    /// ```
    /// use klab_radix_tree::{Entry, RadixTree};
    /// let mut t = RadixTree::<u32>::new();
    /// for i in [3, 64, 65, 4096] {
    ///     t.insert(i, i as u32).unwrap();
    /// }
    /// t.insert_value(70, 9).unwrap();
    /// let mut out = Vec::new();
    /// assert_eq!(t.gang_lookup(4, 3, &mut out), 3);
    /// assert_eq!(out, [(64, Entry::Item(&64)), (65, Entry::Item(&65)), (70, Entry::Value(9))]);
    /// ```
    pub fn gang_lookup<'a>(
        &'a self,
        first_index: u64,
        max_items: usize,
        results: &mut GangResults<'a, T>,
    ) -> usize {
        self.gang(first_index, max_items, results, Filter::Present, &mut ())
    }

    /// `radix_tree_gang_lookup_tag()`: as [`gang_lookup`](Self::gang_lookup),
    /// restricted to entries carrying `tag`. Returns at once when
    /// [`tagged`](Self::tagged) is false, and otherwise descends only into
    /// slots whose tag bit is set.
    pub fn gang_lookup_tag<'a>(
        &'a self,
        first_index: u64,
        max_items: usize,
        tag: Tag,
        results: &mut GangResults<'a, T>,
    ) -> usize {
        self.gang(
            first_index,
            max_items,
            results,
            Filter::Tagged(tag.index()),
            &mut (),
        )
    }

    /// [`gang_lookup`](Self::gang_lookup) that also adds the nodes and leaf
    /// slots it read to `cost`.
    pub fn gang_lookup_counted<'a>(
        &'a self,
        first_index: u64,
        max_items: usize,
        results: &mut GangResults<'a, T>,
        cost: &mut WalkCost,
    ) -> usize {
        self.gang(first_index, max_items, results, Filter::Present, cost)
    }

    /// [`gang_lookup_tag`](Self::gang_lookup_tag) that also adds the nodes
    /// and leaf slots it read to `cost`.
    pub fn gang_lookup_tag_counted<'a>(
        &'a self,
        first_index: u64,
        max_items: usize,
        tag: Tag,
        results: &mut GangResults<'a, T>,
        cost: &mut WalkCost,
    ) -> usize {
        self.gang(
            first_index,
            max_items,
            results,
            Filter::Tagged(tag.index()),
            cost,
        )
    }

    fn gang<'a, C: CostSink>(
        &'a self,
        first_index: u64,
        max_items: usize,
        results: &mut GangResults<'a, T>,
        filter: Filter,
        cost: &mut C,
    ) -> usize {
        if max_items == 0 || !filter.may_match(self.root_tags) {
            return 0;
        }
        let start = results.len();
        results.reserve(max_items.min(self.len()));
        owned(Walk::<Owned<T>, SHIFT>::gang(
            self.root_view(),
            first_index,
            max_items,
            results,
            filter,
            cost,
        ));
        results.len() - start
    }

    /// Every entry, in index order.
    pub fn iter(&self) -> Iter<'_, T, SHIFT> {
        Iter::new(self, 0, Filter::Present)
    }

    /// Every entry with index `>= first`, in index order.
    pub fn range(&self, first: u64) -> Iter<'_, T, SHIFT> {
        Iter::new(self, first, Filter::Present)
    }

    /// Every entry carrying `tag`, in index order.
    pub fn iter_tagged(&self, tag: Tag) -> Iter<'_, T, SHIFT> {
        Iter::new(self, 0, Filter::Tagged(tag.index()))
    }

    /// Every entry carrying `tag` with index `>= first`, in index order.
    pub fn range_tagged(&self, first: u64, tag: Tag) -> Iter<'_, T, SHIFT> {
        Iter::new(self, first, Filter::Tagged(tag.index()))
    }
}

/// An index-ordered iterator over `(index, entry)` pairs (the kernel's
/// `radix_tree_for_each_slot` / `radix_tree_for_each_tagged`, 3.4+).
pub struct Iter<'a, T, const SHIFT: u32>(RawIter<'a, Owned<T>, SHIFT>);

impl<'a, T, const SHIFT: u32> Iter<'a, T, SHIFT> {
    fn new(tree: &'a RadixTree<T, SHIFT>, first: u64, filter: Filter) -> Self {
        Iter(RawIter::new(
            tree.root_view(),
            tree.root_tags,
            first,
            filter,
        ))
    }
}

impl<'a, T, const SHIFT: u32> Iterator for Iter<'a, T, SHIFT> {
    type Item = (u64, Entry<&'a T>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(owned)
    }
}

impl<T, const SHIFT: u32> FusedIterator for Iter<'_, T, SHIFT> {}

impl<'a, T, const SHIFT: u32> IntoIterator for &'a RadixTree<T, SHIFT> {
    type Item = (u64, Entry<&'a T>);
    type IntoIter = Iter<'a, T, SHIFT>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// One step of [`RawIter`]: an entry, or a retry marker met.
pub(crate) type Step<'a, L> = Result<(u64, Entry<&'a <L as Layout>::Item>), Retry>;

/// The iterator of both layouts: a stack of frames, one per level walked.
pub(crate) struct RawIter<'a, L: Layout, const SHIFT: u32> {
    /// One frame per level being walked, top first.
    stack: Vec<Frame<'a, L>>,
    /// The single entry of a height-0 tree, not yet returned.
    single: Option<(u64, Entry<&'a L::Item>)>,
    first: u64,
    filter: Filter,
}

struct Frame<'a, L: Layout> {
    node: &'a Node<L>,
    /// Slots of `node` still to visit.
    bits: u64,
    base: u64,
    shift: u32,
}

impl<'a, L: Layout, const SHIFT: u32> RawIter<'a, L, SHIFT> {
    pub(crate) fn new(root: Root<'a, L>, root_tags: u8, first: u64, filter: Filter) -> Self {
        let mut it = RawIter {
            stack: Vec::new(),
            single: None,
            first,
            filter,
        };
        if !filter.may_match(root_tags) {
            return it;
        }
        match root {
            Root::Node(top, height) => {
                if first <= maxindex(SHIFT, height) {
                    it.stack.reserve_exact(height as usize);
                    it.push(top, 0, (height - 1) * SHIFT);
                }
            }
            Root::Entry(e) => {
                if first == 0 {
                    it.single = Some((0, e));
                }
            }
            Root::Empty => {}
        }
        it
    }

    fn push(&mut self, node: &'a Node<L>, base: u64, shift: u32) {
        let bits = self.filter.bits(node) & Walk::<L, SHIFT>::start_mask(self.first, base, shift);
        self.stack.push(Frame {
            node,
            bits,
            base,
            shift,
        });
    }

    /// The next entry, or `Err(Retry)` when the walk met a retry marker
    /// (the shared tree's caller then starts a new walk).
    pub(crate) fn next(&mut self) -> Option<Step<'a, L>> {
        if let Some(single) = self.single.take() {
            return Some(Ok(single));
        }
        loop {
            let frame = self.stack.last_mut()?;
            if frame.bits == 0 {
                self.stack.pop();
                continue;
            }
            let off = frame.bits.trailing_zeros();
            frame.bits &= frame.bits - 1;
            let node = frame.node;
            let index = frame.base + (u64::from(off) << frame.shift);
            let shift = frame.shift;
            match L::view(&node.slots[off as usize]) {
                View::Node(child) => {
                    if shift > 0 {
                        self.push(child, index, shift - SHIFT);
                    }
                }
                View::Entry(e) => {
                    if shift == 0 {
                        return Some(Ok((index, e)));
                    }
                }
                View::Retry => {
                    self.stack.clear();
                    return Some(Err(Retry));
                }
                View::Empty => {}
            }
        }
    }
}
