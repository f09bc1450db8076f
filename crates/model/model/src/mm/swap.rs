//! Per-CPU LRU batches: a new page, and an activation, wait in a batch of
//! the CPU before they reach the LRU lists.
//!
//! Mirrors mm/swap.c of 6.x (`struct cpu_fbatches`): `folio_add_lru()`,
//! `folio_activate()`, `folio_mark_accessed()`, `__lru_cache_activate_folio()`,
//! `folio_batch_move_lru()` with `lru_add()` and `lru_activate()`,
//! `lru_add_drain_cpu()`.
//!
//! ```text
//!   cpu_fbatches (one CPU in the model)
//!     lru_add      [pfn; <= PAGEVEC_SIZE]   new pages, not yet PG_lru
//!     lru_activate [pfn; <= PAGEVEC_SIZE]   inactive LRU pages to activate
//!
//!   folio_add_lru(p):     push p on lru_add; full (31): move lru_add to the lists
//!   folio_mark_accessed(p):
//!     !PG_referenced               set PG_referenced
//!     PG_referenced, !PG_active:   PG_lru? push p on lru_activate (full: move it)
//!                                  else (p waits in lru_add): set PG_active
//!                                  clear PG_referenced; workingset_activation()
//!   lru_add_drain():      move lru_add, then lru_activate
//!                         (reclaim calls it at the start of every
//!                         shrink_active_list() and shrink_inactive_list())
//! ```
//!
//! Moving `lru_add`: each page, in batch order, to the head of the list its
//! `PG_active` names (so the last one added is the head); one update of
//! the list size per page (`lruvec_add_folio()`). Moving `lru_activate`:
//! each page still on an inactive list goes to the active head
//! (`lru_activate()`: a delete, an add and `PGACTIVATE`, three updates).
//!
//! Consequences the model shows with `KernelDetails::lru_batch`: a new page
//! is not reclaimable until its batch moves (reclaim drains first, so only
//! a page added after that waits); a page read twice while in `lru_add`
//! joins the active list directly; an activation waits on the inactive
//! list, out of reach of reclaim only because reclaim drains first.
//!
//! Invariant: a page is in `lru_add` at most once, has no `PG_lru` there,
//! and is owned (file or anonymous); pages in `lru_activate` may appear
//! twice (the kernel's batch takes no notice) and are skipped on the move
//! if no longer inactive on an LRU list.

use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::mm::lru::LruList;
use crate::mm::page::{Owner, Pfn, flags};
use crate::mm::workingset;

/// `PAGEVEC_SIZE` (`FOLIO_BATCH_SIZE`) of 6.x: folios a batch holds.
pub const PAGEVEC_SIZE: u32 = 31;

/// The batches of the model's CPU.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuBatches {
    lru_add: Vec<Pfn>,
    lru_activate: Vec<Pfn>,
}

impl CpuBatches {
    /// Pages waiting to join a list.
    pub fn lru_add(&self) -> &[Pfn] {
        &self.lru_add
    }

    /// Pages waiting to be activated.
    pub fn lru_activate(&self) -> &[Pfn] {
        &self.lru_activate
    }
}

impl Machine {
    fn lru_batch_size(&self) -> Option<usize> {
        self.cfg.details.lru_batch.map(|n| n as usize)
    }

    /// `folio_add_lru()`: `pfn` (owned, charged, not on a list) onto `list`
    /// of lruvec `lv`, at once or through the CPU's `lru_add` batch.
    pub(crate) fn lru_cache_add(&mut self, lv: usize, pfn: Pfn, list: LruList) {
        let Some(size) = self.lru_batch_size() else {
            self.lruvecs[lv].add(self.mem.pages_mut(), pfn, list);
            let memcg = self.mem.page(pfn).memcg;
            self.rstat_updated(memcg, 1);
            return;
        };
        let p = self.mem.page_mut(pfn);
        debug_assert!(!p.test(flags::LRU), "page {pfn} is already on a list");
        p.lruvec = lv as u16;
        if list.is_active() {
            p.set(flags::ACTIVE);
        } else {
            p.clear(flags::ACTIVE);
        }
        self.batches.lru_add.push(pfn);
        if self.batches.lru_add.len() >= size {
            self.move_lru_add();
        }
    }

    /// 6.x `folio_mark_accessed()` with the batches (see the module
    /// header).
    pub(crate) fn folio_mark_accessed(&mut self, pfn: Pfn) {
        let p = *self.mem.page(pfn);
        if !p.test(flags::REFERENCED) {
            self.mem.page_mut(pfn).set(flags::REFERENCED);
            return;
        }
        if p.test(flags::ACTIVE) {
            return;
        }
        if p.test(flags::LRU) {
            self.batches.lru_activate.push(pfn);
            let size = self.lru_batch_size().unwrap_or(1);
            if self.batches.lru_activate.len() >= size {
                self.move_lru_activate();
            }
        } else if self.batches.lru_add.contains(&pfn) {
            self.mem.page_mut(pfn).set(flags::ACTIVE);
        }
        self.mem.page_mut(pfn).clear(flags::REFERENCED);
        if p.is_file() {
            workingset::activation(&mut self.node_age[p.node as usize]);
        }
    }

    /// `lru_add_drain()`: the CPU's `lru_add`, then its `lru_activate`.
    pub fn lru_add_drain(&mut self) {
        self.move_lru_add();
        self.move_lru_activate();
    }

    /// `folio_batch_move_lru(lru_add)`.
    fn move_lru_add(&mut self) {
        let batch = std::mem::take(&mut self.batches.lru_add);
        for pfn in batch {
            let p = *self.mem.page(pfn);
            let list = LruList::of(p.is_file(), p.test(flags::ACTIVE));
            self.lruvecs[p.lruvec as usize].add(self.mem.pages_mut(), pfn, list);
            self.rstat_updated(p.memcg, 1);
        }
    }

    /// `folio_batch_move_lru(lru_activate)`.
    fn move_lru_activate(&mut self) {
        let batch = std::mem::take(&mut self.batches.lru_activate);
        for pfn in batch {
            let p = *self.mem.page(pfn);
            if !p.test(flags::LRU) || p.test(flags::ACTIVE) {
                continue;
            }
            let file = p.is_file();
            self.lruvecs[p.lruvec as usize].move_to(
                self.mem.pages_mut(),
                pfn,
                LruList::of(file, false),
                LruList::of(file, true),
            );
            self.stat.pgactivate += 1;
            // lruvec_del_folio(), lruvec_add_folio(), PGACTIVATE.
            self.rstat_updated(p.memcg, 1);
            self.rstat_updated(p.memcg, 1);
            self.rstat_updated(p.memcg, 1);
        }
    }

    /// The CPU's batches.
    pub fn cpu_batches(&self) -> &CpuBatches {
        &self.batches
    }

    /// Checks the batches against the frames (for `Machine::check` and the
    /// invariants): every page in `lru_add` owned, off the lists, listed
    /// once; every page in `lru_activate` owned.
    pub(crate) fn check_batches(&self) -> Result<(), String> {
        let pages = self.mem.pages();
        let mut seen = std::collections::BTreeSet::new();
        for &pfn in &self.batches.lru_add {
            let Some(p) = pages.get(pfn as usize) else {
                return Err(format!("lru_add holds frame {pfn}, past the end"));
            };
            if !matches!(p.owner, Owner::File { .. } | Owner::Anon { .. })
                || p.test(flags::LRU)
                || !seen.insert(pfn)
                || usize::from(p.lruvec) >= self.lruvecs.len()
            {
                return Err(format!(
                    "frame {pfn} in lru_add: unowned, on a list, listed twice or of no lruvec"
                ));
            }
        }
        for &pfn in &self.batches.lru_activate {
            let Some(p) = pages.get(pfn as usize) else {
                return Err(format!("lru_activate holds frame {pfn}, past the end"));
            };
            if !matches!(p.owner, Owner::File { .. } | Owner::Anon { .. }) {
                return Err(format!("frame {pfn} in lru_activate is not owned"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Access, MachineConfig};
    use klab_mm_policy::LruBalance;

    fn machine() -> Machine {
        let mut cfg = MachineConfig::new(256, LruBalance::Workingset6);
        cfg.details.lru_batch = Some(PAGEVEC_SIZE);
        Machine::new(cfg).unwrap()
    }

    #[test]
    fn new_pages_wait_in_the_batch_until_the_31st_moves_them_all() {
        let mut m = machine();
        for p in 0..30 {
            m.access(Access::read(0, p));
        }
        assert_eq!(m.lru_len(LruList::InactiveFile), 0);
        assert_eq!(m.cpu_batches().lru_add().len(), 30);
        assert!(m.is_cached(0, 29), "cached, just not on a list");
        m.assert_invariants();
        m.access(Access::read(0, 30));
        assert!(m.cpu_batches().lru_add().is_empty());
        let list = m.file_list(LruList::InactiveFile);
        assert_eq!(list.len(), 31);
        assert_eq!(
            (list[0], list[30]),
            ((0, 30), (0, 0)),
            "batch order: the last added is the head"
        );
        m.assert_invariants();
    }

    /// A page read twice while it waits in `lru_add` is marked active
    /// there and joins the active list when the batch moves; the
    /// workingset clock ticks at the second read, `pgactivate` never
    /// (`lru_add()` counts no activation).
    #[test]
    fn a_page_read_twice_in_the_batch_joins_the_active_list() {
        let mut m = machine();
        m.access(Access::read(0, 0));
        m.access(Access::read(0, 0));
        assert!(m.is_active(0, 0));
        assert_eq!(m.lru_len(LruList::ActiveFile), 0);
        assert_eq!(m.inactive_age(0), 1);
        m.lru_add_drain();
        assert_eq!(m.file_list(LruList::ActiveFile), [(0, 0)]);
        assert_eq!(m.stat().pgactivate, 0);
        m.assert_invariants();
    }

    /// Once on a list, the second touch queues the page in
    /// `lru_activate`: it stays inactive until a drain, which counts the
    /// activation.
    #[test]
    fn an_activation_waits_on_the_inactive_list_until_a_drain() {
        let mut m = machine();
        for p in 0..31 {
            m.access(Access::read(0, p));
        }
        m.access(Access::read(0, 0));
        let Some(klab_radix_tree::Entry::Item(pfn)) =
            m.file(crate::mm::page::FileId(0)).and_then(|a| a.lookup(0))
        else {
            panic!("page 0 cached")
        };
        assert_eq!(m.cpu_batches().lru_activate(), &[pfn]);
        assert!(!m.is_active(0, 0));
        assert_eq!(m.stat().pgactivate, 0);
        m.lru_add_drain();
        assert!(m.is_active(0, 0));
        assert_eq!(m.file_list(LruList::ActiveFile), [(0, 0)]);
        assert_eq!(m.stat().pgactivate, 1);
        m.assert_invariants();
    }

    /// Reclaim drains first: 40 pages read (31 moved, 9 waiting), one
    /// page reclaimed takes the oldest of all 40 after the drain.
    #[test]
    fn reclaim_drains_the_batches_before_it_scans() {
        let mut m = machine();
        for p in 0..40 {
            m.access(Access::read(0, p));
        }
        assert_eq!(m.cpu_batches().lru_add().len(), 9);
        let got = m.shrink_inactive_list(0, LruList::InactiveFile, 1);
        assert_eq!(got, 1);
        assert!(m.cpu_batches().lru_add().is_empty());
        assert!(!m.is_cached(0, 0));
        assert_eq!(m.lru_len(LruList::InactiveFile), 39);
        m.assert_invariants();
    }
}
