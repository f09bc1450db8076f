//! Hand-worked sequences that pin each list rule with exact counts.
//!
//! Notation in the comments: `A0` is page 0 of file 0 ("A"), `B1` page 1
//! of file 1; lists are written head first; `age` is node 0's workingset
//! clock.

use klab_mm_policy::LruBalance;

use crate::machine::{Access, Machine, MachineConfig, Outcome, ShadowLimit};
use crate::mm::lru::LruList;

const A: u32 = 0;
const B: u32 = 1;

fn machine(pages: u64, rule: LruBalance) -> Machine {
    let mut cfg = MachineConfig::new(pages, rule);
    cfg.reclaim_batch = 1;
    Machine::new(cfg).unwrap()
}

#[track_caller]
fn read(m: &mut Machine, file: u32, index: u64) -> Outcome {
    let o = m.access(Access::read(file, index));
    m.assert_invariants();
    o
}

fn active(m: &Machine) -> Vec<(u32, u64)> {
    m.file_list(LruList::ActiveFile)
}

fn inactive(m: &Machine) -> Vec<(u32, u64)> {
    m.file_list(LruList::InactiveFile)
}

#[test]
fn second_touch_promotes_and_ticks_the_clock() {
    let mut m = machine(4, LruBalance::Classic);
    assert_eq!(read(&mut m, A, 0), Outcome::Miss);
    assert_eq!(inactive(&m), vec![(A, 0)]);
    assert_eq!(m.inactive_age(0), 0);
    assert_eq!(read(&mut m, A, 0), Outcome::Hit); // referenced + inactive: activate
    assert_eq!(active(&m), vec![(A, 0)]);
    assert_eq!(m.inactive_age(0), 1);
    assert_eq!(read(&mut m, A, 0), Outcome::Hit); // active: only sets referenced
    assert_eq!(
        (m.stat().pgactivate, m.stat().hits, m.stat().pgmajfault),
        (1, 2, 1)
    );
}

/// Fills a 4-frame machine: A0 and A1 active, B0 and B1 inactive, then
/// reads B2 (evicting B0) and B0 again (evicting B1): B0 refaults.
///
/// ```text
///  A0 A0 A1 A1     active [A1 A0]            age 2 (two activations)
///  B0 B1           inactive [B1 B0]          memory full
///  B2              reclaim: evict B0 (age 3, shadow 3); inactive [B2 B1]
///  B0              reclaim: evict B1 (age 4); B0 refaults, R = 4 - 3 = 1
/// ```
fn refault_scenario(rule: LruBalance) -> (Machine, Outcome) {
    let mut m = machine(4, rule);
    for (f, i) in [(A, 0), (A, 0), (A, 1), (A, 1), (B, 0), (B, 1), (B, 2)] {
        read(&mut m, f, i);
    }
    assert_eq!(active(&m), vec![(A, 1), (A, 0)]);
    assert_eq!(inactive(&m), vec![(B, 2), (B, 1)]);
    assert_eq!(m.inactive_age(0), 3);
    assert!(!m.is_cached(B, 0));
    let o = read(&mut m, B, 0);
    (m, o)
}

#[test]
fn classic_counts_the_refault_and_does_nothing() {
    let (m, o) = refault_scenario(LruBalance::Classic);
    assert_eq!(
        o,
        Outcome::Refault {
            distance: 1,
            activated: false
        }
    );
    assert_eq!(active(&m), vec![(A, 1), (A, 0)]);
    assert_eq!(inactive(&m), vec![(B, 0), (B, 2)]);
    let s = m.stat();
    assert_eq!(
        (s.workingset_refault, s.workingset_activate, s.pgdeactivate),
        (1, 0, 0)
    );
    assert_eq!((s.pgsteal, s.pgscan), (2, 2));
}

#[test]
fn merged_rule_activates_a_refault_within_the_active_list() {
    // R = 1 <= active (2): B0 goes straight to the active list; the
    // activation ticks the clock to 5.
    let (m, o) = refault_scenario(LruBalance::Workingset315);
    assert_eq!(
        o,
        Outcome::Refault {
            distance: 1,
            activated: true
        }
    );
    assert_eq!(active(&m), vec![(B, 0), (A, 1), (A, 0)]);
    assert_eq!(inactive(&m), vec![(B, 2)]);
    assert_eq!(m.inactive_age(0), 5);
    assert_eq!(
        (m.stat().workingset_refault, m.stat().workingset_activate),
        (1, 1)
    );
}

#[test]
fn page_rule_deactivates_one_active_page_next_to_the_refault() {
    // R = 1 < active (2): A0, the active tail, moves to the inactive list
    // right beside the refaulted B0.
    let (m, o) = refault_scenario(LruBalance::RefaultDistance);
    assert_eq!(
        o,
        Outcome::Refault {
            distance: 1,
            activated: false
        }
    );
    assert_eq!(active(&m), vec![(A, 1)]);
    assert_eq!(inactive(&m), vec![(B, 0), (A, 0), (B, 2)]);
    let s = m.stat();
    assert_eq!(
        (
            s.workingset_refault,
            s.workingset_deactivate,
            s.pgdeactivate
        ),
        (1, 1, 1)
    );
}

#[test]
fn a_refault_beyond_the_active_list_changes_nothing() {
    // One active page (A0); B0 evicted, then 3 more evictions: R = 4 > 1.
    let mut m = machine(3, LruBalance::Workingset315);
    for (f, i) in [(A, 0), (A, 0), (B, 0), (B, 1), (B, 2), (B, 3), (B, 4)] {
        read(&mut m, f, i);
    }
    // age: 1 activation; evictions of B0 (2), B1 (3), B2 (4)
    assert_eq!(m.inactive_age(0), 4);
    let o = read(&mut m, B, 0); // evicts B3 first (age 5): R = 5 - 2 = 3
    assert_eq!(
        o,
        Outcome::Refault {
            distance: 3,
            activated: false
        }
    );
    assert_eq!(m.stat().workingset_activate, 0);
}

#[test]
fn six_x_counts_the_distance_one_larger() {
    // 3 frames, reclaim_batch 1. Under Workingset6 reclaim scans by
    // priority: with 2 inactive pages the first scan is at priority 1
    // (2 >> 1 = 1 page).
    //
    //  A0 A0           active [A0], age 1
    //  B0 B1           inactive [B1 B0], memory full
    //  B2              reclaim: evict B0 (age 2, shadow 2)
    //  B0              reclaim: evict B1 (age 3); R = 3 - 2 = 1
    //
    // 3.15 activates (R <= active = 1); 6.x's distance is R + 1 = 2 > 1.
    for (rule, activated) in [
        (LruBalance::Workingset315, true),
        (LruBalance::Workingset6, false),
    ] {
        let mut m = machine(3, rule);
        for (f, i) in [(A, 0), (A, 0), (B, 0), (B, 1), (B, 2)] {
            read(&mut m, f, i);
        }
        assert_eq!(m.inactive_age(0), 2, "{rule}");
        let o = read(&mut m, B, 0);
        assert_eq!(
            o,
            Outcome::Refault {
                distance: 1,
                activated
            },
            "{rule}"
        );
        assert_eq!(m.stat().workingset_activate, u64::from(activated));
    }
}

#[test]
fn six_x_deactivates_after_refault_activations_even_when_inactive_is_not_low() {
    // 10 frames, reclaim_batch 1.
    //
    //  A0..A3 twice    active [A3 A2 A1 A0], age 4
    //  B0..B5          inactive [B5 .. B0], memory full
    //  B6              reclaim at priority 2 (6 >> 2 = 1): evict B0
    //                  (age 5); the active share (4 >> 2 = 1) is skipped:
    //                  no new refault activation, inactive not low
    //  B0              reclaim: evict B1 (age 6); R = 1, R + 1 <= 4:
    //                  activated (age 7); active 5, inactive 5
    //  B7              reclaim: 5 < 5 is false, but a refault activation
    //                  came since the last reclaim: inactive tail B2
    //                  evicted, active tail A0 deactivated
    //  B8              reclaim: nothing new since: no deactivation
    let mut m = machine(10, LruBalance::Workingset6);
    for i in 0..4 {
        read(&mut m, A, i);
        read(&mut m, A, i);
    }
    for i in 0..6 {
        read(&mut m, B, i);
    }
    assert_eq!(m.nr_free(), 0);
    read(&mut m, B, 6);
    assert_eq!(m.stat().pgdeactivate, 0, "no refault activation yet");
    let o = read(&mut m, B, 0);
    assert_eq!(
        o,
        Outcome::Refault {
            distance: 1,
            activated: true
        }
    );
    assert_eq!((active(&m).len(), inactive(&m).len()), (5, 5));
    read(&mut m, B, 7);
    assert_eq!(m.stat().pgdeactivate, 1);
    assert_eq!(active(&m), vec![(B, 0), (A, 3), (A, 2), (A, 1)]);
    assert_eq!(
        inactive(&m),
        vec![(B, 7), (A, 0), (B, 6), (B, 5), (B, 4), (B, 3)]
    );
    read(&mut m, B, 8);
    assert_eq!(m.stat().pgdeactivate, 1, "no new refault activation");
    assert!(!m.is_cached(B, 3), "the inactive tail went instead");

    // The 3.15 rule on the same reads never deactivates: 5 < 5 is false.
    let mut m = machine(10, LruBalance::Workingset315);
    for i in 0..4 {
        read(&mut m, A, i);
        read(&mut m, A, i);
    }
    for (f, i) in (0..7).map(|i| (B, i)).chain([(B, 0), (B, 7), (B, 8)]) {
        read(&mut m, f, i);
    }
    assert_eq!(m.stat().pgdeactivate, 0);
}

#[test]
fn classic_deactivates_when_active_outgrows_inactive() {
    // 3 frames, batch 1. A0 activated and read once more while active
    // (PG_referenced set again), A1 activated; B0 inactive. Reading B1 needs
    // a frame: active (2) > inactive (1), so reclaim first moves A0 (the
    // active tail) to the inactive head, then evicts the inactive tail, B0.
    let mut m = machine(3, LruBalance::Classic);
    for (f, i) in [(A, 0), (A, 0), (A, 0), (A, 1), (A, 1), (B, 0)] {
        read(&mut m, f, i);
    }
    read(&mut m, B, 1);
    assert_eq!(active(&m), vec![(A, 1)]);
    assert_eq!(inactive(&m), vec![(B, 1), (A, 0)]);
    assert!(!m.is_cached(B, 0));
    assert_eq!((m.stat().pgdeactivate, m.stat().pgrefill), (1, 1));
    // A0 kept PG_referenced from its use while active: one touch on the
    // inactive list re-activates it.
    assert_eq!(read(&mut m, A, 0), Outcome::Hit);
    assert!(m.is_active(A, 0));
}

#[test]
fn page_rule_lets_the_active_list_outgrow_the_inactive_list() {
    // The same sequence under the page's rule: no 1:1 balancing, so B0 is
    // evicted and A0 stays active.
    let mut m = machine(3, LruBalance::RefaultDistance);
    for (f, i) in [(A, 0), (A, 0), (A, 1), (A, 1), (B, 0), (B, 1)] {
        read(&mut m, f, i);
    }
    assert_eq!(active(&m), vec![(A, 1), (A, 0)]);
    assert_eq!(inactive(&m), vec![(B, 1)]);
    assert_eq!(m.stat().pgdeactivate, 0);
}

#[test]
fn shadow_nodes_beyond_the_limit_are_reclaimed() {
    // Indices 0, 64 and 128 sit in three different leaves. With two frames,
    // reading 128 evicts 0, whose leaf then holds only its shadow.
    for (limit, expect) in [
        (
            ShadowLimit::Unlimited,
            Outcome::Refault {
                distance: 1,
                activated: false,
            },
        ),
        (ShadowLimit::Nodes(0), Outcome::Miss),
    ] {
        let mut cfg = MachineConfig::new(2, LruBalance::Workingset315);
        cfg.reclaim_batch = 1;
        cfg.shadow_limit = limit;
        let mut m = Machine::new(cfg).unwrap();
        for i in [0, 64, 128] {
            read(&mut m, A, i);
        }
        match limit {
            ShadowLimit::Unlimited => {
                assert_eq!((m.nr_shadow_nodes(), m.nr_shadows()), (1, 1));
                assert_eq!(m.stat().workingset_nodereclaim, 0);
            }
            _ => {
                assert_eq!((m.nr_shadow_nodes(), m.nr_shadows()), (0, 0));
                assert_eq!(m.stat().workingset_nodereclaim, 1);
            }
        }
        // Reading 0 evicts 64 (age 2); with its shadow (age 1) kept, 0
        // refaults at R = 2 - 1 = 1, which exceeds the empty active list.
        assert_eq!(read(&mut m, A, 0), expect);
    }
}

#[test]
fn kernel_shadow_limit_is_a_sixteenth_of_memory() {
    let mut cfg = MachineConfig::new(64, LruBalance::Workingset315);
    cfg.reclaim_batch = 1;
    let mut m = Machine::new(cfg).unwrap();
    // Stream 200 leaves' worth of single pages: every eviction leaves a
    // shadow-only leaf; 64 >> 4 = 4 may remain.
    for leaf in 0..200u64 {
        read(&mut m, A, leaf * 64);
    }
    assert_eq!(m.nr_shadow_nodes(), 4);
    assert_eq!(m.stat().workingset_nodereclaim, 200 - 64 - 4);
}

#[test]
fn dirty_pages_are_found_by_tag_and_written_back() {
    let mut m = machine(2, LruBalance::Classic);
    m.access(Access::write(A, 3));
    m.access(Access::write(A, 9));
    m.access(Access::read(A, 5)); // evicts A3 (dirty): written back first
    assert_eq!(m.stat().nr_written, 1);
    assert_eq!(
        m.file(crate::mm::page::FileId(A))
            .unwrap()
            .dirty_pages()
            .len(),
        1
    );
    assert_eq!(m.sync_file(A), 1);
    assert_eq!(m.sync_file(A), 0);
    assert_eq!(m.stat().nr_written, 2);
    m.assert_invariants();
}

#[test]
fn anonymous_pages_swap_out_and_back_in() {
    let mut cfg = MachineConfig::new(2, LruBalance::Classic);
    cfg.reclaim_batch = 1;
    cfg.swap_pages = 4;
    let mut m = Machine::new(cfg).unwrap();
    assert_eq!(m.access(Access::anon(1, 0)), Outcome::AnonNew);
    assert_eq!(m.access(Access::anon(1, 1)), Outcome::AnonNew);
    // No file pages: reclaim deactivates v0 (the active anon tail), finds
    // its young bit clear and swaps it out.
    assert_eq!(m.access(Access::anon(1, 2)), Outcome::AnonNew);
    assert_eq!(m.stat().pswpout, 1);
    assert_eq!(m.access(Access::anon(1, 0)), Outcome::SwapIn);
    assert_eq!((m.stat().pswpin, m.stat().pswpout), (1, 2));
    m.assert_invariants();
}

#[test]
fn without_swap_anonymous_memory_runs_out() {
    let mut m = machine(2, LruBalance::Classic);
    m.access(Access::anon(1, 0));
    m.access(Access::anon(1, 1));
    assert_eq!(m.access(Access::anon(1, 2)), Outcome::OutOfMemory);
    assert_eq!(m.stat().alloc_fail, 1);
    // File pages cannot get a frame either.
    assert_eq!(m.access(Access::read(A, 0)), Outcome::OutOfMemory);
    m.assert_invariants();
}

#[test]
fn pages_go_to_the_accessing_node_first() {
    let mut cfg = MachineConfig::new(2, LruBalance::Classic);
    cfg.pages_per_node = vec![2, 2];
    let mut m = Machine::new(cfg).unwrap();
    m.access(Access::read(A, 0).on_node(1));
    assert_eq!(m.lruvecs[1].len(LruList::InactiveFile), 1);
    assert_eq!(m.lruvecs[0].len(LruList::InactiveFile), 0);
    m.assert_invariants();
}

#[test]
fn same_accesses_give_the_same_counters() {
    let run = || {
        let mut m = machine(16, LruBalance::RefaultDistance);
        for i in 0..2000u64 {
            let idx = (i * 7919) % 40;
            m.access(Access::read((i % 3) as u32, idx));
        }
        (*m.stat(), m.inactive_age(0))
    };
    assert_eq!(run(), run());
}

#[test]
fn a_buffered_loop_device_caches_every_page_twice_direct_io_once() {
    use crate::mm::direct_io::LoopDevice;
    for (direct, expect_backing) in [(false, 3), (true, 0)] {
        let mut m = machine(64, LruBalance::Classic);
        let dev = LoopDevice {
            backing: 9,
            direct_io: direct,
            layout: vec![(A, 100), (B, 200)],
        };
        for i in 0..3 {
            let r = m.loop_read(&dev, A, i);
            assert_eq!(r.upper, Outcome::Miss);
            assert_eq!(r.direct, direct);
            assert_eq!(r.lower.is_some(), !direct);
        }
        assert_eq!(m.loop_read(&dev, A, 0).upper, Outcome::Hit);
        assert_eq!((m.cached_pages(A), m.cached_pages(9)), (3, expect_backing));
        if !direct {
            assert!(
                m.is_cached(9, 100) && m.is_cached(9, 102),
                "image pages 100..103 hold file A"
            );
        }
        m.assert_invariants();
    }
}
