//! Reclaim: who is evicted, when, and why.
//!
//! Mirrors mm/vmscan.c of the 2.6.28-3.15 era, reduced to what the page
//! cache experiments need:
//!
//! ```text
//!  try_to_free_pages(node)            an allocation found no free frame
//!    for each priority pass (at most DEF_PRIORITY = 12), node first:
//!      shrink_lruvec(lruvec, batch)
//!        file: if the rule says the inactive list is low (or it is
//!              empty), shrink_active_list: deactivate a batch
//!              shrink_inactive_list: evict from the tail, leave shadows
//!        anon: only with free swap, the same with inactive_anon_is_low()
//!      stop once a frame is free
//!    shrink the shadow nodes (3.15's workingset shrinker)
//! ```
//!
//! * `shrink_active_list()`: file pages are deactivated whether referenced
//!   or not (only mapped executable pages were rotated, and the model maps
//!   no files); `PG_referenced` is kept, so a page used while active is
//!   re-activated by a single touch on the inactive list. Anonymous pages
//!   lose their young bit and are deactivated too.
//! * `shrink_page_list()` with `page_check_references()`: an unmapped file
//!   page at the inactive tail is reclaimed even if `PG_referenced` is set
//!   (promotion happens at access time, in `mark_page_accessed()`); a dirty
//!   one is written back first. An anonymous page whose young bit is set is
//!   activated; otherwise it is swapped out, or activated when swap is
//!   full.
//! * The scan batch is the reclaim batch (`SWAP_CLUSTER_MAX`); the kernel
//!   sizes scans from list sizes and priority (`get_scan_count()`), which
//!   the model does not, except under `LruBalance::Workingset6`.
//!
//! # 6.x reclaim (`LruBalance::Workingset6`)
//!
//! ```text
//!  do_try_to_free_pages_6x(target, nodes, nr_to_reclaim = 32)
//!    for priority = DEF_PRIORITY (12) down to 0:
//!      for each node:
//!        prepare_scan_control: may_deactivate = the target's refault
//!          activations changed since its last reclaim (refaults_snapshot)
//!          || inactive_is_low (inactive * sqrt(10 GB) < active)
//!        for each container of the target's subtree (shrink_node_memcgs):
//!          shrink_lruvec_prio: nr[list] = size >> priority (get_scan_count;
//!            the active file list only if may_deactivate, else
//!            skipped_deactivate); in rounds of SWAP_CLUSTER_MAX, inactive
//!            then active, until the lists' shares are scanned or
//!            nr_to_reclaim pages are reclaimed
//!          stop once nr_to_reclaim pages are reclaimed
//!    nothing reclaimed enough and a deactivation was skipped: once more
//!      from DEF_PRIORITY with force_deactivate
//!    snapshot_refaults(target)
//! ```
//!
//! Mirrors mm/vmscan.c of 6.x without MGLRU: `do_try_to_free_pages()`,
//! `prepare_scan_control()`, `shrink_node_memcgs()`, `get_scan_count()`
//! (file lists only, `SCAN_FILE`, when there is no swap; the anonymous
//! lists by the same priority share with swap, deactivated by
//! `inactive_anon_is_low()`, a simplification of 6.x's cost-based
//! `SCAN_FRACT`), `shrink_lruvec()`.

use klab_mm_policy::LruBalance;
use klab_mm_policy::balance::inactive_anon_is_low;
use klab_radix_tree::Entry;

use crate::machine::{Machine, PAGE_SIZE, SWAP_CLUSTER_MAX, ShadowLimit};
use crate::mm::lru::LruList;
use crate::mm::memcg_stats::Item;
use crate::mm::memcontrol::MemcgId;
use crate::mm::page::{Owner, Pfn, flags};
use crate::mm::workingset;

/// `DEF_PRIORITY`: reclaim passes before giving up.
pub const DEF_PRIORITY: u32 = 12;

impl Machine {
    /// Direct reclaim for an allocation on `node`
    /// (`do_try_to_free_pages()`): passes over the nodes, local first,
    /// until a frame is free; then the shadow-node shrinker.
    pub(crate) fn try_to_free_pages(&mut self, node: usize) {
        if self.cfg.balance.scans_by_priority() {
            self.stat.reclaim_runs += 1;
            let nodes = self.nr_nodes();
            let order: Vec<usize> = (0..nodes).map(|i| (node + i) % nodes).collect();
            let all = self.memcg_subtree(MemcgId::ROOT);
            let batch = self.cfg.reclaim_batch;
            self.do_try_to_free_pages_6x(MemcgId::ROOT, &all, &order, batch);
            self.shrink_shadow_nodes(node);
            return;
        }
        self.stat.reclaim_runs += 1;
        let nodes = self.nr_nodes();
        let memcgs = self.memcgs.len();
        let batch = self.cfg.reclaim_batch;
        'passes: for _ in 0..DEF_PRIORITY {
            let scanned_before = self.stat.pgscan + self.stat.pgrefill;
            for i in 0..nodes {
                let n = (node + i) % nodes;
                // Every container's lists on the node, starting where the
                // last reclaim left off (mem_cgroup_iter's round robin).
                for j in 0..memcgs {
                    let m = (self.reclaim_cursor + j) % memcgs;
                    if self.memcgs[m].removed {
                        continue;
                    }
                    let lv = self.lv(crate::mm::memcontrol::MemcgId(m as u16), n);
                    self.shrink_lruvec(lv, batch);
                    if self.mem.nr_free_total() > 0 {
                        self.reclaim_cursor = (m + 1) % memcgs;
                        break 'passes;
                    }
                }
            }
            if self.stat.pgscan + self.stat.pgrefill == scanned_before {
                // Nothing left to scan: every page is unevictable here
                // (anonymous without swap).
                break;
            }
        }
        self.shrink_shadow_nodes(node);
    }

    /// `shrink_lruvec()`: returns pages reclaimed.
    pub(crate) fn shrink_lruvec(&mut self, lv: usize, nr_to_reclaim: u64) -> u64 {
        let batch = self.cfg.reclaim_batch;
        let v = &self.lruvecs[lv];
        let (active, inactive) = (v.len(LruList::ActiveFile), v.len(LruList::InactiveFile));
        if self.cfg.balance.inactive_file_is_low(active, inactive) || (inactive == 0 && active > 0)
        {
            self.shrink_active_list(lv, LruList::ActiveFile, batch);
        }
        let mut reclaimed = self.shrink_inactive_list(lv, LruList::InactiveFile, nr_to_reclaim);
        if reclaimed < nr_to_reclaim && self.swap_available() > 0 {
            let v = &self.lruvecs[lv];
            let (aa, ia) = (v.len(LruList::ActiveAnon), v.len(LruList::InactiveAnon));
            let total = self.mem.node_pages(lv % self.nr_nodes());
            if inactive_anon_is_low(aa, ia, total, PAGE_SIZE) || (ia == 0 && aa > 0) {
                self.shrink_active_list(lv, LruList::ActiveAnon, batch);
            }
            reclaimed +=
                self.shrink_inactive_list(lv, LruList::InactiveAnon, nr_to_reclaim - reclaimed);
        }
        reclaimed
    }

    /// 6.x reclaim for `target`, over the lruvecs of `memcgs` on `nodes`
    /// (see the module header); returns pages reclaimed and counts each
    /// container's scans and steals.
    pub(crate) fn do_try_to_free_pages_6x(
        &mut self,
        target: MemcgId,
        memcgs: &[MemcgId],
        nodes: &[usize],
        nr_to_reclaim: u64,
    ) -> u64 {
        let live: Vec<MemcgId> = memcgs
            .iter()
            .copied()
            .filter(|m| !self.memcgs[m.0 as usize].removed)
            .collect();
        let sum = |m: &Machine, n: usize, f: &dyn Fn(&crate::mm::lru::Lruvec) -> u64| -> u64 {
            live.iter().map(|&c| f(&m.lruvecs[m.lv(c, n)])).sum()
        };
        let stats = self.cfg.details.memcg_stats.is_some();
        let mut reclaimed = 0;
        let mut force = false;
        loop {
            let mut skipped = false;
            'prio: for priority in (0..=DEF_PRIORITY).rev() {
                for &n in nodes {
                    let tl = self.lv(target, n);
                    let (active, inactive, refaults) = if stats {
                        // prepare_scan_control(): a rate-limited flush,
                        // then the flushed numbers.
                        self.memcg_flush_ratelimited(target);
                        (
                            self.lruvec_state(target, n, Item::Lru(LruList::ActiveFile)),
                            self.lruvec_state(target, n, Item::Lru(LruList::InactiveFile)),
                            self.lruvec_state(target, n, Item::ActivateFile),
                        )
                    } else {
                        (
                            sum(self, n, &|v| v.len(LruList::ActiveFile)),
                            sum(self, n, &|v| v.len(LruList::InactiveFile)),
                            sum(self, n, &|v| v.workingset_activate),
                        )
                    };
                    let may_deactivate = force
                        || (self.cfg.balance.deactivates_on_refaults()
                            && refaults != self.lruvecs[tl].refaults_snapshot)
                        || self.cfg.balance.inactive_file_is_low(active, inactive);
                    let may_deactivate_anon =
                        self.may_deactivate_anon_6x(target, n).map(|d| force || d);
                    for &m in &live {
                        let lv = self.lv(m, n);
                        let scanned = self.stat.pgscan;
                        let got = self.shrink_lruvec_prio(
                            lv,
                            priority,
                            [Some(may_deactivate), may_deactivate_anon],
                            nr_to_reclaim,
                            &mut skipped,
                        );
                        let st = &mut self.memcgs[m.0 as usize].stat;
                        st.pgscan += self.stat.pgscan - scanned;
                        st.pgsteal += got;
                        reclaimed += got;
                        if reclaimed >= nr_to_reclaim {
                            break 'prio;
                        }
                    }
                }
            }
            if reclaimed < nr_to_reclaim && skipped && !force {
                force = true;
                continue;
            }
            break;
        }
        for &n in nodes {
            let tl = self.lv(target, n);
            let (file, anon) = if stats {
                (
                    self.lruvec_state(target, n, Item::ActivateFile),
                    self.lruvec_state(target, n, Item::ActivateAnon),
                )
            } else {
                (
                    sum(self, n, &|v| v.workingset_activate),
                    sum(self, n, &|v| v.workingset_activate_anon),
                )
            };
            self.lruvecs[tl].refaults_snapshot = file;
            self.lruvecs[tl].refaults_snapshot_anon = anon;
        }
        reclaimed
    }

    /// With `KernelDetails::anon_6x`, 6.x `prepare_scan_control()`'s
    /// `DEACTIVATE_ANON`: new anonymous refault activations since the
    /// target's last reclaim, or an inactive anonymous list low by the
    /// square-root rule (`inactive_is_low()`), from the target's numbers;
    /// `None` keeps the per-lruvec 2.6.28 rule.
    fn may_deactivate_anon_6x(&self, target: MemcgId, node: usize) -> Option<bool> {
        if !self.cfg.details.anon_6x {
            return None;
        }
        let tl = self.lv(target, node);
        let refaults = self.lruvec_state(target, node, Item::ActivateAnon);
        let active = self.lruvec_state(target, node, Item::Lru(LruList::ActiveAnon));
        let inactive = self.lruvec_state(target, node, Item::Lru(LruList::InactiveAnon));
        Some(
            refaults != self.lruvecs[tl].refaults_snapshot_anon
                || LruBalance::Workingset6.inactive_file_is_low(active, inactive),
        )
    }

    /// 6.x `shrink_lruvec()` at one priority: each list's share is
    /// `size >> priority` (the active file list's only if `may_deactivate`;
    /// otherwise `skipped` is set), scanned in rounds of `SWAP_CLUSTER_MAX`
    /// in `enum lru_list` order until the shares are done or
    /// `nr_to_reclaim` pages are reclaimed. Returns pages reclaimed.
    fn shrink_lruvec_prio(
        &mut self,
        lv: usize,
        priority: u32,
        [may_deactivate, may_deactivate_anon]: [Option<bool>; 2],
        nr_to_reclaim: u64,
        skipped: &mut bool,
    ) -> u64 {
        let v = &self.lruvecs[lv];
        let mut nr = [0u64; 4];
        for list in LruList::ALL {
            nr[list as usize] = v.len(list) >> priority;
        }
        if may_deactivate == Some(false) && nr[LruList::ActiveFile as usize] > 0 {
            *skipped = true;
            nr[LruList::ActiveFile as usize] = 0;
        }
        if self.swap_available() == 0 {
            nr[LruList::InactiveAnon as usize] = 0;
            nr[LruList::ActiveAnon as usize] = 0;
        } else if let Some(deactivate) = may_deactivate_anon {
            if !deactivate && nr[LruList::ActiveAnon as usize] > 0 {
                *skipped = true;
                nr[LruList::ActiveAnon as usize] = 0;
            }
        } else {
            let total = self.mem.node_pages(lv % self.nr_nodes());
            let (aa, ia) = (v.len(LruList::ActiveAnon), v.len(LruList::InactiveAnon));
            if !inactive_anon_is_low(aa, ia, total, PAGE_SIZE) {
                nr[LruList::ActiveAnon as usize] = 0;
            }
        }
        let mut reclaimed = 0;
        while nr[LruList::InactiveAnon as usize] > 0
            || nr[LruList::ActiveFile as usize] > 0
            || nr[LruList::InactiveFile as usize] > 0
        {
            for list in LruList::ALL {
                let k = nr[list as usize].min(SWAP_CLUSTER_MAX);
                if k == 0 {
                    continue;
                }
                nr[list as usize] -= k;
                if list.is_active() {
                    self.shrink_active_list(lv, list, k);
                } else {
                    reclaimed += self.shrink_inactive_list(lv, list, k);
                }
            }
            if reclaimed >= nr_to_reclaim {
                break;
            }
        }
        reclaimed
    }

    /// The memcg whose lists lruvec `lv` holds.
    fn lruvec_memcg(&self, lv: usize) -> u16 {
        (lv / self.nr_nodes()) as u16
    }

    /// `shrink_active_list()`: up to `nr` pages from the active tail to the
    /// inactive head.
    ///
    /// With `KernelDetails::lru_batch`, the CPU's batches are drained first
    /// (`lru_add_drain()`); with `memcg_stats`, the isolation (one update
    /// of the pages taken), `PGREFILL`, each page's putback and
    /// `PGDEACTIVATE` are counted.
    pub(crate) fn shrink_active_list(&mut self, lv: usize, list: LruList, nr: u64) {
        self.lru_add_drain();
        let to = if list.is_file() {
            LruList::InactiveFile
        } else {
            LruList::InactiveAnon
        };
        let taken = nr.min(self.lruvecs[lv].len(list));
        let memcg = self.lruvec_memcg(lv);
        self.rstat_updated(memcg, taken);
        self.rstat_updated(memcg, taken);
        // Isolation and putback, each under spin_lock_irq(&zone->lru_lock).
        if self.lruvecs[lv].len(list) > 0 {
            self.pv.lock_irq();
            self.pv.lock_irq();
        }
        for _ in 0..nr {
            let Some(pfn) = self.lruvecs[lv].tail(list) else {
                break;
            };
            self.stat.pgrefill += 1;
            if !list.is_file() {
                // page_referenced() clears the young bit; anon pages are
                // deactivated anyway.
                self.mem.page_mut(pfn).clear(if self.cfg.details.anon_6x {
                    flags::YOUNG
                } else {
                    flags::REFERENCED
                });
            }
            self.lruvecs[lv].move_to(self.mem.pages_mut(), pfn, list, to);
            self.stat.pgdeactivate += 1;
            self.rstat_updated(memcg, 1);
        }
        self.rstat_updated(memcg, taken);
    }

    /// `shrink_inactive_list()`: scans up to `nr` pages from the inactive
    /// tail; returns pages reclaimed.
    ///
    /// With `KernelDetails::lru_batch`, the CPU's batches are drained first;
    /// with `memcg_stats`, the isolation, `PGSCAN`, each file page's
    /// `NR_FILE_PAGES`, the uncharge batch's `PGPGOUT`, each putback and
    /// `PGSTEAL` are counted; with `anon_6x`, anonymous pages go through
    /// [`Machine::shrink_inactive_anon_6x`].
    pub(crate) fn shrink_inactive_list(&mut self, lv: usize, list: LruList, nr: u64) -> u64 {
        self.lru_add_drain();
        if !list.is_file() && self.cfg.details.anon_6x {
            return self.shrink_inactive_anon_6x(lv, nr);
        }
        let taken = nr.min(self.lruvecs[lv].len(list));
        let memcg = self.lruvec_memcg(lv);
        self.rstat_updated(memcg, taken);
        self.rstat_updated(memcg, taken);
        let mut reclaimed = 0;
        let mut files = 0;
        let mut putback = 0;
        // Isolation and putback, each under spin_lock_irq(&zone->lru_lock).
        if self.lruvecs[lv].len(list) > 0 {
            self.pv.lock_irq();
            self.pv.lock_irq();
        }
        for _ in 0..nr {
            let Some(pfn) = self.lruvecs[lv].tail(list) else {
                break;
            };
            self.stat.pgscan += 1;
            if list.is_file() {
                self.evict_file_page(lv, pfn);
                reclaimed += 1;
                files += 1;
            } else if self.mem.page_mut(pfn).test_and_clear(flags::REFERENCED) {
                // PAGEREF_ACTIVATE for a referenced swap-backed page.
                self.lruvecs[lv].move_to(self.mem.pages_mut(), pfn, list, LruList::ActiveAnon);
                self.stat.pgactivate += 1;
                putback += 1;
            } else if self.swap_out(lv, pfn, true) {
                reclaimed += 1;
            } else {
                self.lruvecs[lv].move_to(self.mem.pages_mut(), pfn, list, LruList::ActiveAnon);
                self.stat.pgactivate += 1;
                putback += 1;
            }
        }
        self.rstat_updated(memcg, files);
        for _ in 0..putback {
            self.rstat_updated(memcg, 1);
        }
        self.rstat_updated(memcg, reclaimed);
        self.stat.pgsteal += reclaimed;
        reclaimed
    }

    /// 6.x `shrink_inactive_list()` of the anonymous list
    /// (`KernelDetails::anon_6x`), as `shrink_folio_list()` with
    /// `folio_check_references()` decides for an anonymous page:
    ///
    /// ```text
    ///   isolate up to nr pages from the tail
    ///   each: young = PTE young bit (cleared), referenced = PG_referenced (cleared)
    ///     young:   PG_referenced set; referenced before too: activate,
    ///              else keep (back to the inactive head)
    ///     not young: swap out (a shadow left in the slot); swap full: activate
    ///   putback in order; an activated page ticks the nonresident age
    ///   (move_folios_to_lru(): workingset_age_nonresident())
    /// ```
    fn shrink_inactive_anon_6x(&mut self, lv: usize, nr: u64) -> u64 {
        let list = LruList::InactiveAnon;
        let memcg = self.lruvec_memcg(lv);
        let mut isolated = Vec::new();
        while (isolated.len() as u64) < nr {
            let Some(pfn) = self.lruvecs[lv].tail(list) else {
                break;
            };
            self.lruvecs[lv].del(self.mem.pages_mut(), pfn, list);
            isolated.push(pfn);
        }
        if isolated.is_empty() {
            return 0;
        }
        self.pv.lock_irq();
        self.pv.lock_irq();
        let taken = isolated.len() as u64;
        self.rstat_updated(memcg, taken);
        self.rstat_updated(memcg, taken);
        self.stat.pgscan += taken;
        let mut reclaimed = 0;
        let mut putback = Vec::new();
        for pfn in isolated {
            let p = self.mem.page_mut(pfn);
            let young = p.test_and_clear(flags::YOUNG);
            let referenced = p.test_and_clear(flags::REFERENCED);
            if young {
                p.set(flags::REFERENCED);
                putback.push((pfn, referenced));
            } else if self.swap_out(lv, pfn, false) {
                reclaimed += 1;
            } else {
                putback.push((pfn, true));
            }
        }
        for (pfn, active) in putback {
            let to = if active {
                LruList::ActiveAnon
            } else {
                LruList::InactiveAnon
            };
            self.lruvecs[lv].add(self.mem.pages_mut(), pfn, to);
            self.rstat_updated(memcg, 1);
            if active {
                self.stat.pgactivate += 1;
                let node = self.mem.page(pfn).node as usize;
                workingset::activation(&mut self.node_age[node]);
            }
        }
        self.rstat_updated(memcg, reclaimed);
        self.stat.pgsteal += reclaimed;
        reclaimed
    }

    /// `__remove_mapping()` for a file page: write it back if dirty, put a
    /// shadow entry in its slot (`workingset_eviction()`), free the frame.
    fn evict_file_page(&mut self, lv: usize, pfn: Pfn) {
        let page = *self.mem.page(pfn);
        let Owner::File { file, index } = page.owner else {
            unreachable!("page {pfn} on a file list is not a file page")
        };
        self.lruvecs[lv].del(self.mem.pages_mut(), pfn, LruList::InactiveFile);
        if page.test(flags::DIRTY) {
            self.stat.nr_written += 1;
        }
        // __filemap_remove_folio(): NR_FILE_PAGES.
        self.rstat_updated(page.memcg, 1);
        // __remove_mapping() under mapping->tree_lock (spin_lock_irq).
        self.pv.lock_irq();
        let eviction = workingset::eviction(&mut self.node_age[page.node as usize]);
        let shadow = workingset::pack_shadow(eviction, page.node);
        self.files
            .get_mut(&file)
            .expect("a cached page's file exists")
            .replace_with_shadow(index, shadow);
        self.update_shadow_node(file, index);
        self.uncharge(page.memcg, pfn);
        self.mem.free(pfn);
    }

    /// Swaps an anonymous page out (from the inactive list if `on_list`,
    /// else already isolated): a swap entry replaces it in its task's page
    /// table. False when swap is full.
    ///
    /// With `KernelDetails::anon_6x` the slot keeps a shadow
    /// (`workingset_eviction()`; the nonresident age ticks); with
    /// `memcg_stats` the swap-out's updates are counted: a page written
    /// makes eight (`NR_SWAPCACHE` in and out, `NR_ANON_MAPPED`, `PSWPOUT`,
    /// `NR_WRITEBACK` up and down, `MEMCG_SWAP` and the v1 `PGPGOUT`), a
    /// clean swap-cache page four (no swap-cache add, no writeback).
    fn swap_out(&mut self, lv: usize, pfn: Pfn, on_list: bool) -> bool {
        let Owner::Anon { task, vpage } = self.mem.page(pfn).owner else {
            unreachable!("page {pfn} on an anon list is not anonymous")
        };
        // A swap-cache page already has its slot; if clean, the slot holds
        // its data and nothing is written (pageout() is skipped).
        let page = *self.mem.page(pfn);
        let slot = if page.test(flags::SWAPCACHE) {
            page.private
        } else {
            let Some(slot) = self.swap_alloc() else {
                return false;
            };
            slot
        };
        if on_list {
            self.lruvecs[lv].del(self.mem.pages_mut(), pfn, LruList::InactiveAnon);
        }
        // try_to_unmap_one(): ptep_clear_flush(), the swap entry set; then
        // __remove_mapping() of the swap cache under its tree_lock.
        self.pv.clear_flush();
        self.pv.lock_irq();
        let t = self
            .tasks
            .get_mut(&task)
            .expect("an anon page's task exists");
        t.table
            .lookup_slot(vpage)
            .expect("a resident anon page is mapped")
            .replace(Entry::Value(slot))
            .expect("swap slots fit a value entry");
        t.rss -= 1;
        t.swapents += 1;
        let written = !page.test(flags::SWAPCACHE) || page.test(flags::DIRTY);
        if written {
            self.stat.pswpout += 1;
        }
        let memcg = self.mem.page(pfn).memcg;
        for _ in 0..if written { 8 } else { 4 } {
            self.rstat_updated(memcg, 1);
        }
        if self.cfg.details.anon_6x {
            let eviction = workingset::eviction(&mut self.node_age[page.node as usize]);
            self.swap
                .set_shadow(slot, workingset::pack_shadow(eviction, page.node));
        }
        self.uncharge(memcg, pfn);
        self.mem.free(pfn);
        true
    }

    /// 3.15's workingset shrinker: frees the oldest shadow-only nodes beyond
    /// the limit, deleting their shadows (`shadow_lru_isolate()`).
    /// The shrinker runs on a CPU of `node`, where its frees go.
    pub(crate) fn shrink_shadow_nodes(&mut self, node: usize) {
        let max = match self.cfg.shadow_limit {
            ShadowLimit::Unlimited => return,
            ShadowLimit::Nodes(n) => n,
            ShadowLimit::Kernel315 => klab_mm_policy::balance::max_shadow_nodes(
                self.mem.nr_pages(),
                klab_radix_tree::MAP_SHIFT,
            ),
        };
        while self.shadow_nodes.len() > max {
            let Some((file, leaf)) = self.shadow_nodes.pop_oldest() else {
                break;
            };
            let first = leaf << klab_radix_tree::MAP_SHIFT;
            let last = first | ((1 << klab_radix_tree::MAP_SHIFT) - 1);
            let a = self
                .files
                .get_mut(&file)
                .expect("a shadow node's file exists");
            for (index, e) in a.entries_in(first, last) {
                debug_assert!(e.is_value(), "a shadow node holds only shadows");
                a.delete(index);
            }
            self.sync_tree_nodes(file, first, node);
            self.stat.workingset_nodereclaim += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Machine;
    use crate::machine::{Access, MachineConfig};
    use crate::mm::lru::LruList;
    use klab_mm_policy::LruBalance;

    /// 6.x anonymous reclaim, worked by hand (no swap pressure, single
    /// scans of one page):
    ///
    /// ```text
    ///  touch v0..v3       new pages: inactive anon, young; tail v0 .. head v3
    ///  4 scans of 1       each young: PG_referenced set, kept (to the head);
    ///                     tail v0 .. head v3 again, none young
    ///  touch v0           young again
    ///  scan 1: v0         young and referenced: activated (age 0 -> 1)
    ///  scan 1: v1         not young: swapped out, shadow = eviction 2
    ///  touch v1           swap-in; distance 2 - 2 = 0; workingset =
    ///                     active file 0 + inactive file 0 + active anon 1
    ///                     (swap has room): 0 + 1 <= 1, activated (age 3)
    /// ```
    #[test]
    fn a_young_anon_page_is_kept_once_activated_when_young_again_and_refaults_by_the_6x_rule() {
        let mut cfg = MachineConfig::new(64, LruBalance::Workingset6);
        cfg.swap_pages = 16;
        cfg.details.anon_6x = true;
        let mut m = Machine::new(cfg).unwrap();
        for v in 0..4 {
            m.access(Access::anon(1, v));
        }
        assert_eq!(m.lru_len(LruList::InactiveAnon), 4);
        for _ in 0..4 {
            assert_eq!(m.shrink_inactive_list(0, LruList::InactiveAnon, 1), 0);
        }
        assert_eq!((m.stat().pswpout, m.stat().pgactivate), (0, 0));
        m.access(Access::anon(1, 0));
        assert_eq!(m.shrink_inactive_list(0, LruList::InactiveAnon, 1), 0);
        assert_eq!(m.lru_len(LruList::ActiveAnon), 1);
        assert_eq!((m.stat().pgactivate, m.inactive_age(0)), (1, 1));
        assert_eq!(m.shrink_inactive_list(0, LruList::InactiveAnon, 1), 1);
        assert_eq!((m.stat().pswpout, m.inactive_age(0)), (1, 2));
        m.access(Access::anon(1, 1));
        let k = m.kernel_stat();
        assert_eq!(
            (k.workingset_refault_anon, k.workingset_activate_anon),
            (1, 1)
        );
        assert_eq!(m.lru_len(LruList::ActiveAnon), 2);
        assert_eq!((m.stat().pswpin, m.inactive_age(0)), (1, 3));
        m.assert_invariants();
    }
}
