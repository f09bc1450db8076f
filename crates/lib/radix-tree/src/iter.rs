//! Gang lookups and iterators: index-ascending scans of the tree.
//!
//! Both skip holes and untagged subtrees with bit operations on a node's
//! `present` or `tags[t]` bitmap (`trailing_zeros`), so a scan touches only
//! the nodes on paths to what it returns. A tagged scan is what lets the
//! page cache find its few dirty pages among many clean ones without looking
//! at the clean ones.

use std::iter::FusedIterator;

use crate::entry::{Entry, Tag};
use crate::node::{Node, Slot};
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
trait CostSink {
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
enum Filter {
    Present,
    Tagged(usize),
}

impl Filter {
    #[inline(always)]
    fn bits<T>(self, node: &Node<T>) -> u64 {
        match self {
            Filter::Present => node.present,
            Filter::Tagged(t) => node.tags[t],
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

impl<T, const SHIFT: u32> RadixTree<T, SHIFT> {
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
        if max_items == 0 {
            return 0;
        }
        if let Filter::Tagged(t) = filter
            && self.root_tags & (1 << t) == 0
        {
            return 0;
        }
        let start = results.len();
        results.reserve(max_items.min(self.len()));
        match &self.root {
            Slot::Node(top) => {
                if first_index <= Self::maxindex(self.height) {
                    let limit = start + max_items;
                    Self::collect(
                        top,
                        (self.height - 1) * SHIFT,
                        0,
                        first_index,
                        limit,
                        results,
                        filter,
                        cost,
                    );
                }
            }
            other => {
                if first_index == 0
                    && let Some(e) = other.entry()
                {
                    cost.slot();
                    results.push((0, e));
                }
            }
        }
        results.len() - start
    }

    /// Appends the entries under `node` (covering indices from `base`, at
    /// `shift`) with index `>= first` whose `filter` bit is set, until
    /// `results` holds `limit`; returns true when it does.
    #[allow(clippy::too_many_arguments)]
    fn collect<'a, C: CostSink>(
        node: &'a Node<T>,
        shift: u32,
        base: u64,
        first: u64,
        limit: usize,
        results: &mut GangResults<'a, T>,
        filter: Filter,
        cost: &mut C,
    ) -> bool {
        cost.node();
        let mut bits = filter.bits(node) & Self::start_mask(first, base, shift);
        if shift == 0 {
            // A leaf: take at most the room left, then append without a
            // per-entry limit test.
            let room = limit - results.len();
            let full = bits.count_ones() as usize >= room;
            if full {
                bits = lowest_set_bits(bits, room);
            }
            for _ in 0..bits.count_ones() {
                cost.slot();
            }
            while bits != 0 {
                let off = bits.trailing_zeros();
                bits &= bits - 1;
                if let Some(e) = node.slots[off as usize].entry() {
                    results.push((base + u64::from(off), e));
                }
            }
            return full;
        }
        while bits != 0 {
            let off = bits.trailing_zeros();
            bits &= bits - 1;
            if let Slot::Node(child) = &node.slots[off as usize]
                && Self::collect(
                    child,
                    shift - SHIFT,
                    base + (u64::from(off) << shift),
                    first,
                    limit,
                    results,
                    filter,
                    cost,
                )
            {
                return true;
            }
        }
        false
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
pub struct Iter<'a, T, const SHIFT: u32> {
    /// One frame per level being walked, top first.
    stack: Vec<Frame<'a, T>>,
    /// The single entry of a height-0 tree, not yet returned.
    single: Option<(u64, Entry<&'a T>)>,
    first: u64,
    filter: Filter,
}

struct Frame<'a, T> {
    node: &'a Node<T>,
    /// Slots of `node` still to visit.
    bits: u64,
    base: u64,
    shift: u32,
}

impl<'a, T, const SHIFT: u32> Iter<'a, T, SHIFT> {
    fn new(tree: &'a RadixTree<T, SHIFT>, first: u64, filter: Filter) -> Self {
        let mut it = Iter {
            stack: Vec::new(),
            single: None,
            first,
            filter,
        };
        if let Filter::Tagged(t) = filter
            && tree.root_tags & (1 << t) == 0
        {
            return it;
        }
        match &tree.root {
            Slot::Node(top) => {
                if first <= RadixTree::<T, SHIFT>::maxindex(tree.height) {
                    it.stack.reserve_exact(tree.height as usize);
                    it.push(top, 0, (tree.height - 1) * SHIFT);
                }
            }
            other => {
                if first == 0 {
                    it.single = other.entry().map(|e| (0, e));
                }
            }
        }
        it
    }

    fn push(&mut self, node: &'a Node<T>, base: u64, shift: u32) {
        let bits =
            self.filter.bits(node) & RadixTree::<T, SHIFT>::start_mask(self.first, base, shift);
        self.stack.push(Frame {
            node,
            bits,
            base,
            shift,
        });
    }
}

impl<'a, T, const SHIFT: u32> Iterator for Iter<'a, T, SHIFT> {
    type Item = (u64, Entry<&'a T>);

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(single) = self.single.take() {
            return Some(single);
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
            match &node.slots[off as usize] {
                Slot::Node(child) => self.push(child, index, shift - SHIFT),
                slot => {
                    if let Some(e) = slot.entry() {
                        return Some((index, e));
                    }
                }
            }
        }
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
