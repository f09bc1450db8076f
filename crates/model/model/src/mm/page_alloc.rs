//! Physical page frames, per NUMA node: the frame table and a free list per
//! node (the buddy allocator reduced to order-0 pages, which is all the
//! page cache and anonymous memory of the model ask for).
//!
//! Allocation prefers the requesting node and falls back to the others in
//! node order, as the kernel's zonelist does with `zone_reclaim_mode = 0`;
//! only when every node is empty does the caller reclaim. Free lists are
//! LIFO stacks, so the same run reuses frames in the same order.

use super::page::{Page, Pfn};

/// The frame table and free lists.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PageAlloc {
    pages: Vec<Page>,
    free: Vec<Vec<Pfn>>,
    node_start: Vec<Pfn>,
    /// Frames taken out of use because they are poisoned.
    retired: u64,
}

impl PageAlloc {
    /// Frames for each node: `pages_per_node[n]` frames on node `n`.
    ///
    /// # Panics
    /// With no nodes, more than 256 nodes, or more than `u32::MAX - 1`
    /// frames: configuration errors caught by the machine's config check.
    pub fn new(pages_per_node: &[u64]) -> Self {
        assert!(!pages_per_node.is_empty() && pages_per_node.len() <= 256);
        let total: u64 = pages_per_node.iter().sum();
        assert!(total < u64::from(Pfn::MAX), "too many frames");
        let mut pages = Vec::with_capacity(total as usize);
        let mut free = Vec::with_capacity(pages_per_node.len());
        let mut node_start = Vec::with_capacity(pages_per_node.len());
        for (n, &count) in pages_per_node.iter().enumerate() {
            let start = pages.len() as Pfn;
            node_start.push(start);
            pages.extend((0..count).map(|_| Page::free(n as u8)));
            // Highest pfn at the bottom, so frames come out in ascending order.
            free.push((start..start + count as Pfn).rev().collect());
        }
        PageAlloc {
            pages,
            free,
            node_start,
            retired: 0,
        }
    }

    /// Number of NUMA nodes.
    pub fn nr_nodes(&self) -> usize {
        self.free.len()
    }

    /// All frames.
    pub fn nr_pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Frames of node `n`.
    pub fn node_pages(&self, n: usize) -> u64 {
        let end = self
            .node_start
            .get(n + 1)
            .copied()
            .unwrap_or(self.pages.len() as Pfn);
        u64::from(end - self.node_start[n])
    }

    /// Free frames on node `n`.
    pub fn nr_free(&self, n: usize) -> u64 {
        self.free[n].len() as u64
    }

    /// Free frames on all nodes.
    pub fn nr_free_total(&self) -> u64 {
        self.free.iter().map(|f| f.len() as u64).sum()
    }

    /// A free frame, from `node` first, then from the others in order.
    ///
    /// A poisoned frame found on a free list is retired instead of handed
    /// out: the check mm/page_alloc.c's `prep_new_page()` makes
    /// (`bad_page()`), which is why memory-failure.c can ignore free pages.
    pub fn alloc(&mut self, node: usize) -> Option<Pfn> {
        let n = self.free.len();
        for nd in (0..n).map(|i| (node + i) % n) {
            while let Some(pfn) = self.free[nd].pop() {
                if self.pages[pfn as usize].test(super::page::flags::HWPOISON) {
                    self.retired += 1;
                    continue;
                }
                return Some(pfn);
            }
        }
        None
    }

    /// Returns a frame to its node's free list, resetting it; a poisoned
    /// frame is retired instead, keeping its flag.
    pub fn free(&mut self, pfn: Pfn) {
        let node = self.pages[pfn as usize].node;
        if self.pages[pfn as usize].test(super::page::flags::HWPOISON) {
            let mut p = Page::free(node);
            p.set(super::page::flags::HWPOISON);
            self.pages[pfn as usize] = p;
            self.retired += 1;
            return;
        }
        self.pages[pfn as usize] = Page::free(node);
        self.free[node as usize].push(pfn);
    }

    /// Checks a deserialized frame table against `pages_per_node` without
    /// panicking: node ranges, links in range, free lists holding distinct
    /// free frames of their own node.
    pub fn check(&self, pages_per_node: &[u64]) -> Result<(), String> {
        let total: u64 = pages_per_node.iter().sum();
        if self.pages.len() as u64 != total
            || self.free.len() != pages_per_node.len()
            || self.node_start.len() != pages_per_node.len()
        {
            return Err(format!(
                "frame table of {} frames and {} free lists for {} nodes of {total} frames",
                self.pages.len(),
                self.free.len(),
                pages_per_node.len()
            ));
        }
        let mut start = 0u64;
        for (n, &count) in pages_per_node.iter().enumerate() {
            if u64::from(self.node_start[n]) != start {
                return Err(format!(
                    "node {n} starts at frame {}, not {start}",
                    self.node_start[n]
                ));
            }
            for pfn in start..start + count {
                let p = &self.pages[pfn as usize];
                if p.node as usize != n {
                    return Err(format!("frame {pfn} of node {n} says node {}", p.node));
                }
                for link in [p.prev, p.next] {
                    if link != super::page::NIL && link as usize >= self.pages.len() {
                        return Err(format!("frame {pfn} links to frame {link}, past the end"));
                    }
                }
            }
            start += count;
        }
        let mut seen = vec![false; self.pages.len()];
        for (n, list) in self.free.iter().enumerate() {
            for &pfn in list {
                let Some(p) = self.pages.get(pfn as usize) else {
                    return Err(format!(
                        "free list of node {n} holds frame {pfn}, past the end"
                    ));
                };
                if p.node as usize != n || p.owner != super::page::Owner::Free {
                    return Err(format!(
                        "free list of node {n} holds frame {pfn}, not a free frame of it"
                    ));
                }
                if std::mem::replace(&mut seen[pfn as usize], true) {
                    return Err(format!("frame {pfn} twice on the free lists"));
                }
            }
        }
        Ok(())
    }

    /// Frames retired because they were poisoned.
    pub fn nr_retired(&self) -> u64 {
        self.retired
    }

    /// Whether a frame is on a free list.
    pub fn is_free(&self, pfn: Pfn) -> bool {
        let p = &self.pages[pfn as usize];
        p.owner == super::page::Owner::Free && self.free[p.node as usize].contains(&pfn)
    }

    /// The frame table.
    #[inline]
    pub fn pages(&self) -> &[Page] {
        &self.pages
    }

    /// The frame table, for list and flag updates.
    #[inline]
    pub fn pages_mut(&mut self) -> &mut [Page] {
        &mut self.pages
    }

    /// One frame.
    #[inline]
    pub fn page(&self, pfn: Pfn) -> &Page {
        &self.pages[pfn as usize]
    }

    /// One frame, mutably.
    #[inline]
    pub fn page_mut(&mut self, pfn: Pfn) -> &mut Page {
        &mut self.pages[pfn as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_locally_then_falls_back_in_node_order() {
        let mut a = PageAlloc::new(&[2, 2, 1]);
        assert_eq!(a.nr_pages(), 5);
        assert_eq!(a.node_pages(1), 2);
        assert_eq!(a.alloc(1), Some(2));
        assert_eq!(a.alloc(1), Some(3));
        assert_eq!(a.alloc(1), Some(4), "node 1 empty: node 2 next");
        assert_eq!(a.alloc(1), Some(0), "then node 0");
        assert_eq!(a.page(4).node, 2);
        a.free(3);
        assert_eq!(a.nr_free(1), 1);
        assert_eq!(a.alloc(1), Some(3));
        assert_eq!(a.alloc(0), Some(1));
        assert_eq!(a.alloc(0), None);
    }
}
