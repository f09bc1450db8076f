//! [`Machine::check`]: the machine's invariants as a check that returns an
//! error instead of panicking, for a machine read from a hibernation image
//! (untrusted input: no index, `unwrap` or cast may trust it). It checks
//! every condition [`Machine::assert_invariants`] asserts and, before it,
//! every index those assertions and the machine's code use, so a machine
//! that passes can run and be asserted without a panic from its state.

use std::collections::BTreeSet;

use klab_radix_tree::Entry;

use crate::machine::{Machine, PAGE_SIZE};
use crate::mm::memcontrol::MemcgId;
use crate::mm::memory_failure::HWPOISON_ENTRY;
use crate::mm::page::{NIL, Owner, flags};

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

impl Machine {
    /// Checks a machine (typically deserialized) without panicking.
    ///
    /// # Errors
    /// The first broken rule, in words.
    pub fn check(&self) -> Result<(), String> {
        self.cfg.validate()?;
        let nodes = self.cfg.pages_per_node.len();
        ensure!(
            self.node_age.len() == nodes,
            "{} workingset clocks for {nodes} nodes",
            self.node_age.len()
        );
        self.mem.check(&self.cfg.pages_per_node)?;
        let nr_memcgs = self.memcgs.len();
        ensure!(
            (1..=usize::from(u16::MAX) / nodes).contains(&nr_memcgs),
            "{nr_memcgs} containers"
        );
        ensure!(
            self.lruvecs.len() == nr_memcgs * nodes,
            "{} lruvecs for {nr_memcgs} containers on {nodes} nodes",
            self.lruvecs.len()
        );
        ensure!(
            self.reclaim_cursor < nr_memcgs,
            "reclaim cursor {} of {nr_memcgs} containers",
            self.reclaim_cursor
        );
        let swap_slots = self.swap.check()?;
        self.check_batches()?;
        self.check_stock()?;
        let batched = self.batches.lru_add();
        self.shadow_nodes.check()?;
        let pages = self.mem.pages();
        for (i, v) in self.lruvecs.iter().enumerate() {
            ensure!(usize::from(v.id()) == i, "lruvec {i} says it is {}", v.id());
        }
        for (pfn, p) in pages.iter().enumerate() {
            ensure!(
                usize::from(p.memcg) < nr_memcgs && usize::from(p.lruvec) < self.lruvecs.len(),
                "frame {pfn}: container {} or lruvec {} out of range",
                p.memcg,
                p.lruvec
            );
            let on_lru = p.test(flags::LRU);
            match p.owner {
                Owner::File { .. } | Owner::Anon { .. } => ensure!(
                    (on_lru || batched.contains(&(pfn as u32)))
                        && usize::from(p.lruvec)
                            == usize::from(p.memcg) * nodes + usize::from(p.node),
                    "frame {pfn}: a cached or mapped page off its container's lists"
                ),
                Owner::Free | Owner::Kernel(_) | Owner::Huge { .. } => ensure!(
                    !on_lru && p.prev == NIL && p.next == NIL,
                    "frame {pfn}: a frame not on the LRU is linked"
                ),
            }
            if p.test(flags::SWAPCACHE) {
                ensure!(
                    p.private < swap_slots,
                    "frame {pfn}: swap-cache slot {} not handed out",
                    p.private
                );
            }
        }
        for v in &self.lruvecs {
            v.check(pages)?;
        }
        let on_lru: u64 =
            self.lruvecs.iter().map(|v| v.total()).sum::<u64>() + batched.len() as u64;
        let held = pages
            .iter()
            .filter(|p| matches!(p.owner, Owner::Kernel(_) | Owner::Huge { .. }))
            .count() as u64;
        ensure!(
            on_lru + self.nr_free() + held + self.mem.nr_retired() == self.nr_pages(),
            "frames do not add up: {on_lru} on lists, {} free, {held} held, {} retired, of {}",
            self.nr_free(),
            self.mem.nr_retired(),
            self.nr_pages()
        );
        let mut cached = 0u64;
        for (file, a) in &self.files {
            for (index, e) in a.entries_in(0, u64::MAX) {
                match e {
                    Entry::Item(pfn) => {
                        cached += 1;
                        let ok = pages.get(pfn as usize).is_some_and(|p| {
                            p.owner == Owner::File { file: *file, index }
                                && (p.test(flags::LRU) || batched.contains(&pfn))
                        });
                        ensure!(
                            ok,
                            "file {} page {index}: frame {pfn} does not hold it",
                            file.0
                        );
                    }
                    Entry::Value(_) => {
                        if let Some((0, _)) = a.leaf_counts(index) {
                            let leaf = index >> klab_radix_tree::MAP_SHIFT;
                            ensure!(
                                self.shadow_nodes.contains(*file, leaf),
                                "file {} leaf {leaf}: shadow-only but not tracked",
                                file.0
                            );
                        }
                    }
                }
            }
        }
        for (file, _) in self.shadow_nodes.leaves() {
            ensure!(
                self.files.contains_key(&file),
                "shadow node of file {} that has no cache",
                file.0
            );
        }
        let mut anon = 0u64;
        for (task, t) in &self.tasks {
            ensure!(
                usize::from(t.memcg.0) < nr_memcgs,
                "task {}: container {} out of range",
                task.0,
                t.memcg.0
            );
            let (mut rss, mut swapents) = (0u64, 0u64);
            for (vpage, e) in t.table.iter() {
                match e {
                    Entry::Item(pfn) => {
                        rss += 1;
                        let ok = pages
                            .get(*pfn as usize)
                            .is_some_and(|p| p.owner == Owner::Anon { task: *task, vpage });
                        ensure!(
                            ok,
                            "task {} page {vpage}: frame {pfn} does not hold it",
                            task.0
                        );
                    }
                    Entry::Value(v) if v == HWPOISON_ENTRY => {}
                    Entry::Value(slot) => {
                        swapents += 1;
                        ensure!(
                            slot < swap_slots,
                            "task {} page {vpage}: swap slot {slot}",
                            task.0
                        );
                    }
                }
            }
            ensure!(
                (t.rss, t.swapents) == (rss, swapents) && (t.alive || rss + swapents == 0),
                "task {}: rss {} and swap {} against its page table ({rss}, {swapents})",
                task.0,
                t.rss,
                t.swapents
            );
            for &pfn in &t.huge {
                let ok = pages
                    .get(pfn as usize)
                    .is_some_and(|p| p.owner == Owner::Huge { task: *task });
                ensure!(ok, "task {}: huge frame {pfn}", task.0);
            }
            anon += rss;
        }
        ensure!(
            cached + anon == on_lru,
            "{on_lru} pages on lists, {cached} cached and {anon} mapped"
        );
        self.check_slab()?;
        self.check_kernel_frames()?;
        self.check_memcgs()
    }

    fn check_memcgs(&self) -> Result<(), String> {
        let n = self.memcgs.len();
        ensure!(
            self.memcgs[0].parent.is_none(),
            "the root container has a parent"
        );
        for (i, m) in self.memcgs.iter().enumerate() {
            // The parent chain reaches the root without a cycle.
            let mut p = m.parent;
            let mut steps = 0;
            while let Some(id) = p {
                ensure!(
                    usize::from(id.0) < n && steps < n,
                    "container {i}: parent chain broken"
                );
                p = self.memcgs[usize::from(id.0)].parent;
                steps += 1;
            }
            ensure!(i == 0 || m.parent.is_some(), "container {i} has no parent");
            for c in &m.children {
                ensure!(
                    usize::from(c.0) < n
                        && self.memcgs[usize::from(c.0)].parent == Some(MemcgId(i as u16)),
                    "container {i}: child {} does not name it as parent",
                    c.0
                );
            }
            if let Some(pid) = m.parent {
                ensure!(
                    self.memcgs[usize::from(pid.0)]
                        .children
                        .contains(&MemcgId(i as u16)),
                    "container {i} missing from its parent's children"
                );
            }
        }
        let mut own = vec![0u64; n];
        for p in self.mem.pages() {
            if p.test(flags::LRU) {
                own[usize::from(p.memcg)] += 1;
            }
        }
        // Pages in the LRU batch and the charge stock are charged too.
        for &pfn in self.batches.lru_add() {
            own[usize::from(self.mem.page(pfn).memcg)] += 1;
        }
        for (i, o) in own.iter_mut().enumerate() {
            *o += self.memcg_stock_pages(MemcgId(i as u16));
        }
        for (i, m) in self.memcgs.iter().enumerate() {
            let id = MemcgId(i as u16);
            if m.removed {
                ensure!(own[i] == 0, "removed container {i} holds pages");
                continue;
            }
            let subtree: u64 = self
                .memcg_subtree(id)
                .iter()
                .map(|c| own[usize::from(c.0)])
                .sum();
            ensure!(
                m.res.usage == subtree * PAGE_SIZE
                    && m.res.usage <= m.res.limit
                    && m.res.max_usage >= m.res.usage,
                "container {}: usage {} against {subtree} pages, limit {}, max {}",
                m.path,
                m.res.usage,
                m.res.limit,
                m.res.max_usage
            );
            let mut seen = BTreeSet::new();
            for t in &m.tasks {
                let ok = self.tasks.get(t).is_some_and(|x| x.memcg == id && x.alive);
                ensure!(ok && seen.insert(*t), "container {}: task {}", m.path, t.0);
            }
        }
        Ok(())
    }
}
