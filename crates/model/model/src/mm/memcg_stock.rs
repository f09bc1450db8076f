//! The per-CPU charge stock: a memory cgroup is charged
//! `MEMCG_CHARGE_BATCH` pages at a time, and the pages not yet used wait in
//! the CPU's stock for the next charges.
//!
//! Mirrors mm/memcontrol.c of 6.x (6.16+ with `NR_MEMCG_STOCK` slots):
//! `try_charge_memcg()`, `consume_stock()`, `refill_stock()`,
//! `drain_stock()`, `drain_all_stock()`, `mem_cgroup_margin()`.
//!
//! ```text
//!   try_charge_memcg(memcg, nr_pages = 1):
//!     batch = MEMCG_CHARGE_BATCH (64)
//!   retry:
//!     consume_stock(memcg, 1)?                    done (no counter touched)
//!     page_counter_try_charge(memory, batch)?     refill_stock(memcg, batch - 1); done
//!       (a refused charge counts memory.failcnt at the level that refused)
//!     batch > 1?                                  batch = 1; goto retry
//!     reclaim from the level that refused (try_to_free_mem_cgroup_pages(),
//!       SWAP_CLUSTER_MAX pages)
//!     margin >= 1?                                goto retry
//!     not drained yet?                            drain_all_stock(); goto retry
//!     reclaimed something?                        goto retry
//!     retries left (MAX_RECLAIM_RETRIES = 16)?    goto retry
//!     the memcg OOM killer; a victim: retries reset, goto retry
//!
//!   refill_stock(memcg, n): the CPU's slot for memcg += n (a free slot, or
//!     the next slot round-robin drained for it); a slot over
//!     MEMCG_CHARGE_BATCH is drained
//!   drain_stock(slot): its pages uncharged, the slot emptied
//! ```
//!
//! So a memory cgroup's usage counts the pages it holds plus its stock
//! (up to 64 pages per CPU): a filling cgroup reaches its limit up to 63
//! pages early, then its charges fail in batches of 64, fall back to one
//! page, and `memory.failcnt` counts about one failure per charge near
//! the limit (two around each reclaim). The root is never charged in 6.x;
//! the model charges its counter page by page, without a stock, so its
//! usage still tells the pages in the machine.

use serde::{Deserialize, Serialize};

use crate::machine::{Machine, Outcome, PAGE_SIZE};
use crate::mm::memcontrol::MemcgId;
use crate::mm::page::TaskId;

/// `MEMCG_CHARGE_BATCH`.
pub const MEMCG_CHARGE_BATCH: u64 = 64;

/// The largest batch a stock slot holds (`uint8_t nr_pages`, and
/// `BUILD_BUG_ON(MEMCG_CHARGE_BATCH > S8_MAX)`).
pub const MAX_CHARGE_BATCH: u64 = 127;

/// `NR_MEMCG_STOCK`: memcgs one CPU's stock holds.
pub const NR_MEMCG_STOCK: usize = 7;

/// `MAX_RECLAIM_RETRIES` of 6.x.
pub const MAX_RECLAIM_RETRIES: u32 = 16;

/// One CPU's stock (`struct memcg_stock_pcp`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeStock {
    cached: [Option<MemcgId>; NR_MEMCG_STOCK],
    nr_pages: [u64; NR_MEMCG_STOCK],
    drain_idx: usize,
}

impl ChargeStock {
    /// Pages the stock holds for `memcg`.
    pub fn pages_of(&self, memcg: MemcgId) -> u64 {
        self.cached
            .iter()
            .zip(&self.nr_pages)
            .filter(|(c, _)| **c == Some(memcg))
            .map(|(_, n)| *n)
            .sum()
    }
}

impl Machine {
    /// 6.x `try_charge_memcg()` for one page with a stock of `batch`
    /// pages (see the module header). `current` is the faulting task: if
    /// the OOM killer chooses it, the charge fails with [`Outcome::Killed`].
    pub(crate) fn try_charge_stocked(
        &mut self,
        memcg: MemcgId,
        current: TaskId,
        batch_size: u64,
    ) -> Result<(), Outcome> {
        let mut batch = batch_size;
        let mut retries = MAX_RECLAIM_RETRIES;
        let mut drained = false;
        loop {
            if self.consume_stock(memcg) {
                return Ok(());
            }
            let fail_at = match self.charge_hierarchy_pages(memcg, batch) {
                Ok(()) => {
                    if batch > 1 {
                        self.refill_stock(memcg, batch - 1);
                    }
                    return Ok(());
                }
                Err(level) => level,
            };
            if batch > 1 {
                batch = 1;
                continue;
            }
            let reclaimed = self.reclaim_memcg(fail_at);
            if self.memcg_margin(fail_at) >= 1 {
                continue;
            }
            if !drained {
                self.drain_all_stock(fail_at);
                drained = true;
                continue;
            }
            if reclaimed > 0 {
                continue;
            }
            if retries > 0 {
                retries -= 1;
                continue;
            }
            match self.memcg_oom(fail_at) {
                Some(victim) if victim == current => return Err(Outcome::Killed),
                Some(_) => retries = MAX_RECLAIM_RETRIES,
                None => return Err(Outcome::OutOfMemory),
            }
        }
    }

    /// `mem_cgroup_margin()`: pages `memcg` can still be charged.
    fn memcg_margin(&self, memcg: MemcgId) -> u64 {
        let r = &self.memcgs[memcg.0 as usize].res;
        r.limit.saturating_sub(r.usage) / PAGE_SIZE
    }

    /// `consume_stock(memcg, 1)`.
    fn consume_stock(&mut self, memcg: MemcgId) -> bool {
        let s = &mut self.stock;
        for i in 0..NR_MEMCG_STOCK {
            if s.cached[i] != Some(memcg) {
                continue;
            }
            if s.nr_pages[i] >= 1 {
                s.nr_pages[i] -= 1;
                return true;
            }
            return false;
        }
        false
    }

    /// `refill_stock(memcg, n)`.
    fn refill_stock(&mut self, memcg: MemcgId, n: u64) {
        let batch = self.cfg.details.charge_batch.unwrap_or(MEMCG_CHARGE_BATCH);
        if n > batch {
            self.uncharge_pages(memcg, n);
            return;
        }
        let mut empty = None;
        for i in 0..NR_MEMCG_STOCK {
            if self.stock.cached[i].is_none() && empty.is_none() {
                empty = Some(i);
            }
            if self.stock.cached[i] == Some(memcg) {
                self.stock.nr_pages[i] += n;
                if self.stock.nr_pages[i] > batch {
                    self.drain_stock(i);
                }
                return;
            }
        }
        let i = match empty {
            Some(i) => i,
            None => {
                let i = self.stock.drain_idx;
                self.stock.drain_idx = (i + 1) % NR_MEMCG_STOCK;
                self.drain_stock(i);
                i
            }
        };
        self.stock.cached[i] = Some(memcg);
        self.stock.nr_pages[i] = n;
    }

    /// `drain_stock()`: the slot's pages uncharged, the slot emptied.
    fn drain_stock(&mut self, i: usize) {
        if let Some(old) = self.stock.cached[i].take() {
            let n = std::mem::take(&mut self.stock.nr_pages[i]);
            if n > 0 {
                self.uncharge_pages(old, n);
            }
        }
    }

    /// `drain_all_stock(root)`: every slot of a memcg in `root`'s subtree
    /// that holds pages.
    pub(crate) fn drain_all_stock(&mut self, root: MemcgId) {
        let subtree = self.memcg_subtree(root);
        for i in 0..NR_MEMCG_STOCK {
            if let Some(m) = self.stock.cached[i]
                && self.stock.nr_pages[i] > 0
                && subtree.contains(&m)
            {
                self.drain_stock(i);
            }
        }
    }

    /// Pages the CPU's stock holds for `memcg`.
    pub fn memcg_stock_pages(&self, memcg: MemcgId) -> u64 {
        self.stock.pages_of(memcg)
    }

    /// Checks the stock of a deserialized machine: slots name existing
    /// containers, hold at most `MAX_CHARGE_BATCH` pages, each container
    /// once, and the round-robin index is a slot.
    pub(crate) fn check_stock(&self) -> Result<(), String> {
        let s = &self.stock;
        if s.drain_idx >= NR_MEMCG_STOCK {
            return Err(format!("charge stock: drain index {}", s.drain_idx));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (c, &n) in s.cached.iter().zip(&s.nr_pages) {
            match c {
                Some(m) if usize::from(m.0) < self.memcgs.len() && n <= MAX_CHARGE_BATCH => {
                    if !seen.insert(*m) {
                        return Err(format!("charge stock: container {} twice", m.0));
                    }
                }
                None if n == 0 => {}
                _ => return Err(format!("charge stock: slot {c:?} with {n} pages")),
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

    fn machine(limit_pages: u64) -> Machine {
        let mut cfg = MachineConfig::new(4 * limit_pages + 256, LruBalance::Workingset6);
        cfg.details.charge_batch = Some(MEMCG_CHARGE_BATCH);
        let mut m = Machine::new(cfg).unwrap();
        m.memcg_create("/a").unwrap();
        m.memcg_write(
            "/a",
            "memory.limit_in_bytes",
            &(limit_pages * PAGE_SIZE).to_string(),
        )
        .unwrap();
        m.memcg_attach("/a", 1).unwrap();
        m
    }

    /// A 100-page limit, reads of new pages:
    ///
    /// ```text
    ///  read 1      charge 64 (usage 64), stock 63
    ///  reads 2-64  from the stock: stock 0, usage 64
    ///  read 65     charge 64 would make 128 > 100: failcnt 1; then 1 page:
    ///              usage 65
    ///  reads 66-100  each: 64 refused (failcnt +1), 1 page charged
    ///  read 101    64 refused, 1 refused (failcnt +2); 6.x reclaim scans
    ///              size >> priority: 1 + 3 + 6 + 11 + 19 = 40 pages by
    ///              priority 2 (at least 32 asked); margin 40, retry with
    ///              one page (the batch stays 1): charged
    /// ```
    #[test]
    fn charges_come_in_batches_of_64_and_fail_per_page_near_the_limit() {
        let mut m = machine(100);
        let a = m.memcg_by_path("/a").unwrap();
        m.access(Access::read(0, 0).by(1));
        assert_eq!(m.memcg_usage(a), 64 * PAGE_SIZE);
        assert_eq!(m.memcg_stock_pages(a), 63);
        for p in 1..64 {
            m.access(Access::read(0, p).by(1));
        }
        assert_eq!(
            (m.memcg_usage(a), m.memcg_stock_pages(a)),
            (64 * PAGE_SIZE, 0)
        );
        assert_eq!(m.memcg(a).res.failcnt, 0);
        m.access(Access::read(0, 64).by(1));
        assert_eq!(m.memcg_usage(a), 65 * PAGE_SIZE);
        assert_eq!(m.memcg(a).res.failcnt, 1);
        for p in 65..100 {
            m.access(Access::read(0, p).by(1));
        }
        assert_eq!(m.memcg_usage(a), 100 * PAGE_SIZE);
        assert_eq!(m.memcg(a).res.failcnt, 36);
        m.access(Access::read(0, 100).by(1));
        assert_eq!(m.memcg(a).res.failcnt, 38);
        assert_eq!(m.memcg_usage(a), (100 - 40 + 1) * PAGE_SIZE);
        assert_eq!(m.memcg_stock_pages(a), 0);
        m.assert_invariants();
    }

    #[test]
    fn seven_slots_go_round_robin_and_a_drain_returns_the_pages() {
        let mut cfg = MachineConfig::new(4096, LruBalance::Workingset6);
        cfg.details.charge_batch = Some(MEMCG_CHARGE_BATCH);
        let mut m = Machine::new(cfg).unwrap();
        for i in 0..8 {
            let path = format!("/c{i}");
            m.memcg_create(&path).unwrap();
            m.memcg_attach(&path, 10 + i).unwrap();
            m.access(Access::read(i, 0).by(10 + i));
        }
        // Eight memcgs, seven slots: the eighth took slot 0 from /c0,
        // whose 63 stocked pages went back.
        let c: Vec<MemcgId> = (0..8)
            .map(|i| m.memcg_by_path(&format!("/c{i}")).unwrap())
            .collect();
        let c = |i: usize| c[i];
        assert_eq!(m.memcg_stock_pages(c(0)), 0);
        assert_eq!(m.memcg_usage(c(0)), PAGE_SIZE);
        assert_eq!(m.memcg_stock_pages(c(7)), 63);
        assert_eq!(m.memcg_usage(c(7)), 64 * PAGE_SIZE);
        assert_eq!(m.memcg_stock_pages(c(1)), 63);
        m.drain_all_stock(c(1));
        assert_eq!(
            (m.memcg_stock_pages(c(1)), m.memcg_usage(c(1))),
            (0, PAGE_SIZE)
        );
        m.assert_invariants();
    }
}
