//! Every row of the memory-failure action table, and both kill modes,
//! pinned on small machines.

use klab_mm_policy::LruBalance;

use crate::machine::{Access, Machine, MachineConfig, Outcome};
use crate::mm::memory_failure::{MfConfig, MfResult, SigBusCode};
use crate::mm::page::KernelPage;

fn machine(pages: u64, swap: u64) -> Machine {
    let mut cfg = MachineConfig::new(pages, LruBalance::Classic);
    cfg.reclaim_batch = 1;
    cfg.swap_pages = swap;
    Machine::new(cfg).unwrap()
}

#[track_caller]
fn fail(m: &mut Machine, pfn: u64, result: MfResult, message: &str) {
    let r = m.memory_failure(pfn);
    assert_eq!(r.result, result, "{}", r.message());
    assert_eq!(
        r.message(),
        format!("MCE {pfn:#x}: {message} page recovery: {}", result.name())
    );
    m.assert_invariants();
}

#[test]
fn pages_outside_memory_already_poisoned_or_free_are_ignored() {
    let mut m = machine(8, 0);
    fail(
        &mut m,
        99,
        MfResult::Ignored,
        "memory outside kernel control",
    );
    // Frame 7 is free (frames are handed out from 0 up).
    fail(&mut m, 7, MfResult::Ignored, "free or high order kernel");
    let again = m.memory_failure(7);
    assert_eq!(
        (again.result, again.kind),
        (MfResult::Ignored, "already hardware poisoned")
    );
    assert_eq!(m.mf_stats().total, 2, "a repeat is not counted again");
    // The allocator retires the poisoned frame when it comes up: eight
    // reads fit in seven good frames only by evicting one page.
    for i in 0..8 {
        m.access(Access::read(0, i));
    }
    assert_eq!(m.nr_poison_retired(), 1);
    assert_eq!(m.stat().pgsteal, 1);
    m.assert_invariants();
}

#[test]
fn kernel_pages_are_ignored_delayed_or_failed() {
    let mut m = machine(16, 0);
    let reserved = m.reserve_kernel_pages(KernelPage::Reserved, 1)[0];
    let buddy = m.reserve_kernel_pages(KernelPage::Buddy, 1)[0];
    let slab = m.reserve_kernel_pages(KernelPage::Slab, 1)[0];
    let other = m.reserve_kernel_pages(KernelPage::Other, 1)[0];
    let huge = m.map_huge(3, 2)[0];
    fail(
        &mut m,
        reserved.into(),
        MfResult::Ignored,
        "reserved kernel",
    );
    fail(&mut m, buddy.into(), MfResult::Delayed, "free kernel");
    fail(&mut m, slab.into(), MfResult::Delayed, "kernel slab");
    fail(&mut m, huge.into(), MfResult::Failed, "huge");
    fail(&mut m, other.into(), MfResult::Failed, "unknown page state");
    let s = *m.mf_stats();
    assert_eq!(
        (s.total, s.ignored, s.delayed, s.failed, s.recovered),
        (5, 1, 2, 2, 0)
    );
    assert!(m.task(3).unwrap().alive, "a huge page failure kills nobody");
}

#[test]
fn clean_page_cache_is_dropped_and_read_again() {
    let mut m = machine(8, 0);
    m.access(Access::read(4, 2));
    let pfn = m.file_pfn(4, 2).unwrap();
    fail(&mut m, pfn.into(), MfResult::Recovered, "clean LRU");
    assert!(!m.is_cached(4, 2));
    assert_eq!(
        m.access(Access::read(4, 2)),
        Outcome::Miss,
        "re-read from disk, no shadow"
    );
    assert_eq!(m.fsync(4), Ok(0));
    assert_eq!(m.mf_stats().data_lost, 0);
}

#[test]
fn dirty_page_cache_is_dropped_and_the_file_reports_eio_once() {
    let mut m = machine(8, 0);
    m.access(Access::write(4, 2));
    let pfn = m.file_pfn(4, 2).unwrap();
    let r = m.memory_failure(pfn.into());
    assert_eq!(
        r.message(),
        format!("MCE {pfn:#x}: dirty LRU page recovery: Recovered")
    );
    assert_eq!((r.eio_file.map(|f| f.0), r.data_lost), (Some(4), true));
    assert!(
        r.killed.is_empty() && r.unmapped.is_empty(),
        "no task maps the file"
    );
    assert_eq!(m.fsync(4), Err(5));
    assert_eq!(m.fsync(4), Ok(0), "AS_EIO is reported once");
    m.assert_invariants();
}

/// Task 1 writes anonymous page 0.
fn dirty_anon(early: bool, catches: bool) -> (Machine, u64) {
    let mut m = machine(8, 0);
    m.set_memory_failure_config(MfConfig {
        recovery: true,
        early_kill: early,
    });
    m.set_catches_sigbus(1, catches);
    m.access(Access::anon(1, 0));
    m.access(Access::anon(1, 1));
    let pfn = m.anon_pfn(1, 0).unwrap();
    (m, pfn.into())
}

#[test]
fn late_kill_signals_action_required_on_the_next_touch() {
    let (mut m, pfn) = dirty_anon(false, false);
    let r = m.memory_failure(pfn);
    assert_eq!(
        r.message(),
        format!("MCE {pfn:#x}: dirty LRU page recovery: Recovered")
    );
    assert!(
        r.killed.is_empty() && m.task(1).unwrap().alive,
        "late: nothing happens yet"
    );
    assert_eq!(
        m.access(Access::anon(1, 1)),
        Outcome::Hit,
        "other pages still work"
    );
    assert_eq!(
        m.access(Access::anon(1, 0)),
        Outcome::SigBus { caught: false }
    );
    let t = m.task(1).unwrap();
    assert!(!t.alive);
    assert_eq!(
        (t.sigbus[0].code, t.sigbus[0].vpage),
        (SigBusCode::ActionRequired, 0)
    );
    assert_eq!(m.mf_stats().tasks_killed, 1);
    m.assert_invariants();
}

#[test]
fn late_kill_caught_lets_the_task_live() {
    let (mut m, pfn) = dirty_anon(false, true);
    m.memory_failure(pfn);
    assert_eq!(
        m.access(Access::anon(1, 0)),
        Outcome::SigBus { caught: true }
    );
    assert!(m.task(1).unwrap().alive);
    assert_eq!(m.access(Access::anon(1, 1)), Outcome::Hit);
    m.assert_invariants();
}

#[test]
fn early_kill_signals_action_optional_at_once() {
    let (mut m, pfn) = dirty_anon(true, false);
    let r = m.memory_failure(pfn);
    assert_eq!(r.killed.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1]);
    assert!(!m.task(1).unwrap().alive);
    assert_eq!(
        m.task(1).unwrap().sigbus[0].code,
        SigBusCode::ActionOptional
    );
    assert_eq!(m.access(Access::anon(1, 1)), Outcome::Killed);
    m.assert_invariants();

    let (mut m, pfn) = dirty_anon(true, true);
    let r = m.memory_failure(pfn);
    assert_eq!(r.signalled.len(), 1);
    assert!(m.task(1).unwrap().alive, "a handler catches the AO signal");
    assert_eq!(
        m.access(Access::anon(1, 0)),
        Outcome::SigBus { caught: true },
        "and the AR one later"
    );
}

#[test]
fn prctl_overrides_the_sysctl_per_task() {
    let (mut m, pfn) = dirty_anon(false, false);
    m.set_mce_kill(1, Some(true));
    let r = m.memory_failure(pfn);
    assert_eq!(r.killed.len(), 1, "this task asked for an early kill");
}

#[test]
fn clean_anonymous_page_sends_no_early_signal() {
    let mut m = machine(8, 0);
    m.set_memory_failure_config(MfConfig {
        recovery: true,
        early_kill: true,
    });
    m.access(Access::anon_read(1, 0));
    let pfn = m.anon_pfn(1, 0).unwrap();
    fail(&mut m, pfn.into(), MfResult::Recovered, "clean LRU");
    assert!(m.task(1).unwrap().alive && m.task(1).unwrap().sigbus.is_empty());
    // There is no copy of it anywhere: touching it is fatal.
    assert_eq!(
        m.access(Access::anon_read(1, 0)),
        Outcome::SigBus { caught: false }
    );
}

/// Two frames, swap: task 1's page 0 goes out to swap and comes back in
/// by a read, so it is in the swap cache, clean.
fn swapcache_page() -> (Machine, u64) {
    let mut m = machine(2, 8);
    m.access(Access::anon(1, 0));
    m.access(Access::anon(1, 1));
    m.access(Access::anon(1, 2)); // swaps page 0 out
    assert_eq!(m.access(Access::anon_read(1, 0)), Outcome::SwapIn);
    (m.anon_pfn(1, 0).map(u64::from).map(|p| (m, p))).unwrap()
}

#[test]
fn clean_swap_cache_page_is_dropped_the_swap_copy_is_good() {
    let (mut m, pfn) = swapcache_page();
    fail(&mut m, pfn, MfResult::Recovered, "swapcache");
    assert_eq!(m.mf_stats().data_lost, 0);
    assert_eq!(
        m.access(Access::anon_read(1, 0)),
        Outcome::SwapIn,
        "read back from swap"
    );
    assert!(m.task(1).unwrap().sigbus.is_empty());
    m.assert_invariants();
}

#[test]
fn dirty_swap_cache_page_is_delayed_and_the_task_dies_on_its_next_fault() {
    let (mut m, pfn) = swapcache_page();
    assert_eq!(m.access(Access::anon(1, 0)), Outcome::Hit); // now dirty, still in swap cache
    let r = m.memory_failure(pfn);
    assert_eq!(
        r.message(),
        format!("MCE {pfn:#x}: dirty swapcache page recovery: Delayed")
    );
    assert!(m.task(1).unwrap().alive);
    assert_eq!(
        m.access(Access::anon_read(1, 0)),
        Outcome::SigBus { caught: false }
    );
    assert!(!m.task(1).unwrap().alive);
    m.assert_invariants();
}

#[test]
fn without_recovery_every_failure_panics() {
    let mut m = machine(8, 0);
    m.set_memory_failure_config(MfConfig {
        recovery: false,
        early_kill: false,
    });
    m.access(Access::read(0, 0));
    let r = m.memory_failure(7);
    assert!(r.panicked && m.panicked());
    assert_eq!(m.access(Access::read(0, 0)), Outcome::Panic);
}

fn kernel_machine(pages: u64, text: u64, page_tables: bool, slab: bool) -> Machine {
    let mut cfg = MachineConfig::new(pages, LruBalance::Classic);
    cfg.reclaim_batch = 1;
    cfg.kernel_text_pages = text;
    cfg.page_tables = page_tables;
    cfg.slab = slab;
    Machine::new(cfg).unwrap()
}

/// Four frames of kernel text (frames 0-3, loaded first) run in turn, one
/// per access: an error in frame 2 is "reserved kernel: Ignored", and the
/// third access after it runs frame 2 and panics the machine.
#[test]
fn poisoned_kernel_text_panics_when_it_runs() {
    let mut m = kernel_machine(16, 4, false, false);
    assert_eq!(m.kernel_text(), &[0, 1, 2, 3]);
    fail(&mut m, 2, MfResult::Ignored, "reserved kernel");
    assert_eq!(m.access(Access::read(0, 0)), Outcome::Miss); // runs frame 0
    assert_eq!(m.access(Access::read(0, 1)), Outcome::Miss); // frame 1
    assert_eq!(m.access(Access::read(0, 0)), Outcome::Panic); // frame 2
    let c = m.panic_cause().unwrap();
    assert_eq!(c.pfn, 2);
    assert!(c.what.contains("kernel text"), "{}", c.what);
    assert_eq!((m.mf_stats().consumed, m.stat().accesses), (1, 3));
    assert_eq!(m.access(Access::read(0, 0)), Outcome::Panic);
    m.assert_invariants();
}

/// A task's first touch of a 512-page range takes a PTE page before the
/// data page (frame 0, then frame 1). An error in the PTE page is
/// "unknown page state: Failed"; touching another range is fine, touching
/// any page of its range walks it and panics.
#[test]
fn poisoned_page_table_panics_at_the_next_walk_of_its_range() {
    let mut m = kernel_machine(16, 0, true, false);
    assert_eq!(m.access(Access::anon(1, 0)), Outcome::AnonNew);
    assert_eq!(m.anon_pfn(1, 0), Some(1));
    fail(&mut m, 0, MfResult::Failed, "unknown page state");
    assert_eq!(m.access(Access::anon(1, 512)), Outcome::AnonNew); // PTE page 2, data 3
    assert_eq!(m.anon_pfn(1, 512), Some(3));
    m.assert_invariants();
    assert_eq!(m.access(Access::anon_read(1, 7)), Outcome::Panic);
    assert_eq!(m.panic_cause().unwrap().pfn, 0);
    // A task killed gives its page-table frames back.
    let mut m = kernel_machine(16, 0, true, false);
    m.access(Access::anon(1, 0));
    m.access(Access::anon(1, 600));
    assert_eq!(m.nr_free(), 12);
    m.kill_task(crate::mm::page::TaskId(1));
    assert_eq!(m.nr_free(), 16);
    m.assert_invariants();
}

/// Reading 20 pages of file 0 makes one radix-tree node (one object in
/// the one radix_tree_node slab, one slab frame). An error in that frame
/// is "kernel slab: Delayed"; the next lookup in file 0 reads the node
/// and panics, while other files' lookups do not touch it.
#[test]
fn poisoned_slab_page_panics_when_an_object_in_it_is_read() {
    let mut m = kernel_machine(64, 0, false, true);
    for i in 0..20 {
        m.access(Access::read(0, i));
    }
    let frames: Vec<u32> = m.kernel_slab().unwrap().frames().collect();
    assert_eq!(frames.len(), 1);
    fail(&mut m, frames[0].into(), MfResult::Delayed, "kernel slab");
    assert_eq!(m.kernel_slab().unwrap().poisoned().len(), 1);
    // File 1's page 5: its own node, from the same slab (an allocation
    // that reads the poisoned page's free pointer). Page 0 alone would
    // need no node: a tree of height 0 keeps it in the root.
    assert_eq!(m.access(Access::read(1, 5)), Outcome::Panic);
    assert!(m.panic_cause().unwrap().what.contains("kmem_cache_alloc"));
    // Without the allocation: a lookup through the node.
    let mut m = kernel_machine(64, 0, false, true);
    for i in 0..20 {
        m.access(Access::read(0, i));
    }
    let f = m.kernel_slab().unwrap().frames().next().unwrap();
    m.memory_failure(f.into());
    assert_eq!(m.access(Access::read(0, 3)), Outcome::Panic);
    assert!(
        m.panic_cause().unwrap().what.contains("page-cache lookup"),
        "{:?}",
        m.panic_cause()
    );
    m.assert_invariants();
}

/// When the slab whose page is poisoned is freed (every node object of
/// the file gone), its frame goes with it and is retired; nothing is
/// consumed.
#[test]
fn a_poisoned_slab_page_freed_with_its_slab_is_retired() {
    let mut m = kernel_machine(64, 0, false, true);
    for i in 0..20 {
        m.access(Access::write(0, i));
    }
    let f = m.kernel_slab().unwrap().frames().next().unwrap();
    m.memory_failure(f.into());
    // Truncating file 0 page by page: memory failures on its pages drop
    // them (clean pages after fsync), leaving an empty tree whose node is
    // freed; SLUB keeps the empty slab as the CPU slab until shrunk.
    m.fsync(0).unwrap();
    for i in 0..20 {
        let p = m.file_pfn(0, i).unwrap();
        m.memory_failure(p.into());
    }
    assert_eq!(m.slab_shrink(), 1);
    assert!(m.kernel_slab().unwrap().poisoned().is_empty());
    assert_eq!(m.nr_poison_retired(), 21);
    assert!(!m.panicked());
    m.assert_invariants();
}

/// Task 1 maps file 5 and reads page 0 through the mapping; task 2 maps it
/// but never touches page 0.
fn mapped(early: bool, write: bool) -> (Machine, u64) {
    let mut m = machine(16, 0);
    m.set_memory_failure_config(MfConfig {
        recovery: true,
        early_kill: early,
    });
    m.mmap_file(1, 5);
    m.mmap_file(2, 5);
    let a = if write {
        Access::write(5, 0)
    } else {
        Access::read(5, 0)
    };
    m.access(a.by(1));
    m.access(Access::read(5, 1).by(2));
    let pfn = m.file_pfn(5, 0).unwrap();
    (m, pfn.into())
}

#[test]
fn a_clean_mapped_file_page_is_dropped_and_nobody_is_signalled() {
    let (mut m, pfn) = mapped(true, false);
    let r = m.memory_failure(pfn);
    assert_eq!(
        r.message(),
        format!("MCE {pfn:#x}: clean LRU page recovery: Recovered")
    );
    assert!(r.killed.is_empty() && r.signalled.is_empty() && r.unmapped.is_empty());
    assert_eq!(
        m.access(Access::read(5, 0).by(1)),
        Outcome::Miss,
        "faulted in again"
    );
    assert!(m.task(1).unwrap().sigbus.is_empty());
    m.assert_invariants();
}

#[test]
fn a_dirty_mapped_file_page_kills_its_mappers_late() {
    let (mut m, pfn) = mapped(false, true);
    let r = m.memory_failure(pfn);
    assert_eq!(
        r.message(),
        format!("MCE {pfn:#x}: dirty LRU page recovery: Recovered")
    );
    assert_eq!(r.unmapped.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1]);
    assert!(r.killed.is_empty() && r.data_lost);
    // Task 2 never had the page mapped: it reads the file's old data.
    assert_eq!(m.access(Access::read(5, 0).by(2)), Outcome::Miss);
    // Task 1's entry is a hwpoison entry: SIGBUS BUS_MCEERR_AR, and death.
    assert_eq!(
        m.access(Access::read(5, 0).by(1)),
        Outcome::SigBus { caught: false }
    );
    let t = m.task(1).unwrap();
    assert_eq!(
        (t.alive, t.sigbus[0].code),
        (false, SigBusCode::ActionRequired)
    );
    assert_eq!(m.fsync(5), Err(5));
    m.assert_invariants();
}

#[test]
fn a_dirty_mapped_file_page_kills_early_killers_at_once() {
    let (mut m, pfn) = mapped(true, true);
    m.set_catches_sigbus(2, true);
    let r = m.memory_failure(pfn);
    // Both map the file: both are collected (collect_procs_file() walks
    // the VMAs, not the entries); task 1 dies, task 2 catches it.
    assert_eq!(r.killed.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1]);
    assert_eq!(r.signalled.iter().map(|t| t.0).collect::<Vec<_>>(), vec![2]);
    assert_eq!(
        m.task(2).unwrap().sigbus[0].code,
        SigBusCode::ActionOptional
    );
    assert_eq!(m.mf_stats().tasks_killed, 1);
    m.assert_invariants();
}
