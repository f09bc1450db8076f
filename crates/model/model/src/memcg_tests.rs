//! The memory controller, pinned with exact values on small machines.

use klab_mm_policy::LruBalance;

use crate::machine::{Access, Machine, MachineConfig, Outcome, PAGE_SIZE};
use crate::mm::memcontrol::{EBUSY, EINVAL, ENOENT, ERANGE, ESRCH, MemcgId, RESOURCE_MAX};

fn machine(pages: u64) -> Machine {
    let mut cfg = MachineConfig::new(pages, LruBalance::Classic);
    cfg.reclaim_batch = 1;
    Machine::new(cfg).unwrap()
}

/// A container at `path` with a limit of `pages`, holding `tasks`.
fn container(m: &mut Machine, path: &str, pages: u64, tasks: &[u32]) -> MemcgId {
    let id = m.memcg_create(path).unwrap();
    m.memcg_write(
        path,
        "memory.limit_in_bytes",
        &(pages * PAGE_SIZE).to_string(),
    )
    .unwrap();
    for &t in tasks {
        m.memcg_write(path, "tasks", &t.to_string()).unwrap();
    }
    id
}

#[track_caller]
fn go(m: &mut Machine, a: Access) -> Outcome {
    let o = m.access(a);
    m.assert_invariants();
    o
}

#[test]
fn a_charge_past_the_limit_fails_counts_and_reclaims_the_containers_own_pages() {
    let mut m = machine(16);
    let a = container(&mut m, "/a", 4, &[1]);
    for i in 0..6 {
        assert_eq!(go(&mut m, Access::read(0, i).by(1)), Outcome::Miss);
    }
    // Pages 4 and 5 each failed a charge once, reclaimed the oldest page of
    // /a (0, then 1), and charged on retry.
    let r = m.memcg(a).res;
    assert_eq!(
        (r.usage, r.max_usage, r.failcnt),
        (4 * PAGE_SIZE, 4 * PAGE_SIZE, 2)
    );
    assert!(!m.is_cached(0, 0) && !m.is_cached(0, 1) && m.is_cached(0, 5));
    assert_eq!(m.nr_free(), 12, "the machine itself never ran short");
    assert_eq!(m.memcg(a).stat.pgsteal, 2);
    assert_eq!(
        m.memcg_usage(MemcgId::ROOT),
        4 * PAGE_SIZE,
        "the root sees the child's charges"
    );
}

#[test]
fn limit_reclaim_walks_only_the_containers_lists() {
    let mut m = machine(16);
    container(&mut m, "/a", 2, &[1]);
    container(&mut m, "/b", 8, &[2]);
    // /b's pages are the oldest on the machine.
    for i in 0..3 {
        go(&mut m, Access::read(1, i).by(2));
    }
    for i in 0..4 {
        go(&mut m, Access::read(0, i).by(1));
    }
    assert!(
        (0..3).all(|i| m.is_cached(1, i)),
        "/b untouched by /a's reclaim"
    );
    assert_eq!(
        (m.is_cached(0, 1), m.is_cached(0, 2), m.is_cached(0, 3)),
        (false, true, true)
    );
}

#[test]
fn container_oom_kills_the_largest_task_inside_only() {
    let mut m = machine(32);
    let a = container(&mut m, "/a", 4, &[1, 2]);
    container(&mut m, "/b", 8, &[3]);
    go(&mut m, Access::anon(3, 0));
    go(&mut m, Access::anon(1, 0));
    go(&mut m, Access::anon(1, 1));
    go(&mut m, Access::anon(2, 0));
    go(&mut m, Access::anon(2, 1));
    // /a is at its limit with anonymous pages and no swap: reclaim finds
    // nothing, five retries fail, the OOM killer picks the task with the
    // most pages: tasks 1 and 2 tie at 2, task 1 comes first and dies.
    assert_eq!(go(&mut m, Access::anon(2, 2)), Outcome::AnonNew);
    assert!(!m.task(1).unwrap().alive);
    assert_eq!(m.task(2).unwrap().rss, 3);
    assert_eq!(m.memcg(a).stat.oom_kill, 1);
    assert_eq!(m.memcg_read("/a", "tasks").unwrap(), "2\n");
    assert_eq!(go(&mut m, Access::anon(1, 5)), Outcome::Killed);
    // Task 3 in /b lost nothing.
    assert!(m.task(3).unwrap().alive && m.task(3).unwrap().rss == 1);
    // Now task 2 is the only candidate: touching a fifth page kills it.
    go(&mut m, Access::anon(2, 3));
    assert_eq!(go(&mut m, Access::anon(2, 4)), Outcome::Killed);
    assert_eq!(m.memcg_usage(a), 0);
    assert_eq!(m.memcg(a).stat.oom_kill, 2);
    // An empty container with nothing to kill: the access fails.
    m.memcg_attach("/a", 7).unwrap();
    for v in 0..4 {
        go(&mut m, Access::anon(7, v));
    }
}

#[test]
fn shared_pages_stay_with_the_first_toucher_until_evicted() {
    let mut m = machine(16);
    let a = container(&mut m, "/a", 4, &[1]);
    let b = container(&mut m, "/b", 8, &[2]);
    go(&mut m, Access::read(9, 0).by(1));
    // /b's hit activates the page; the charge stays with /a.
    assert_eq!(go(&mut m, Access::read(9, 0).by(2)), Outcome::Hit);
    assert_eq!(
        m.file_charges(9).into_iter().collect::<Vec<_>>(),
        vec![(a, 1)]
    );
    // /a activates two pages of its own and reads on. At its limit:
    //   0:6  active [0:1 0:0 9:0] > inactive [0:5]: 9:0 deactivated, 0:5 evicted
    //   0:7  active 2 = inactive [0:6 9:0]: the tail, 9:0, is evicted
    for (f, i) in [(0, 0), (0, 0), (0, 1), (0, 1), (0, 5), (0, 6)] {
        go(&mut m, Access::read(f, i).by(1));
    }
    assert!(m.is_cached(9, 0) && !m.is_active(9, 0));
    go(&mut m, Access::read(0, 7).by(1));
    assert!(!m.is_cached(9, 0));
    // /b's next read brings it back, charged to /b.
    go(&mut m, Access::read(9, 0).by(2));
    assert_eq!(
        m.file_charges(9).into_iter().collect::<Vec<_>>(),
        vec![(b, 1)]
    );
}

#[test]
fn hierarchy_charges_every_level_and_reclaims_below_the_level_that_refused() {
    let mut m = machine(16);
    let p = container(&mut m, "/p", 3, &[]);
    let c = m.memcg_create("/p/c").unwrap();
    m.memcg_attach("/p/c", 1).unwrap();
    for i in 0..5 {
        go(&mut m, Access::read(0, i).by(1));
    }
    assert_eq!(m.memcg(p).res.failcnt, 2);
    assert_eq!(
        m.memcg(c).res.failcnt,
        0,
        "the child never hit its own (unlimited) limit"
    );
    assert_eq!(
        (m.memcg_usage(p), m.memcg_usage(c)),
        (3 * PAGE_SIZE, 3 * PAGE_SIZE)
    );
    // rmdir of a busy child is refused; once empty of tasks its pages move up.
    assert_eq!(m.memcg_remove("/p/c").unwrap_err().errno, EBUSY);
    m.memcg_attach("/", 1).unwrap();
    m.memcg_remove("/p/c").unwrap();
    assert_eq!(m.memcg_usage(p), 3 * PAGE_SIZE);
    assert_eq!(m.memcg_by_path("/p/c"), None);
    m.assert_invariants();
}

#[test]
fn control_files_parse_and_fail_like_the_kernel() {
    let mut m = machine(16);
    m.memcg_create("/a").unwrap();
    let w = |m: &mut Machine, f: &str, v: &str| m.memcg_write("/a", f, v);
    w(&mut m, "memory.limit_in_bytes", "1").unwrap();
    assert_eq!(
        m.memcg_read("/a", "memory.limit_in_bytes").unwrap(),
        "4096\n"
    );
    w(&mut m, "memory.limit_in_bytes", "-1").unwrap();
    assert_eq!(
        m.memcg_read("/a", "memory.limit_in_bytes").unwrap(),
        format!("{RESOURCE_MAX}\n")
    );
    for (value, errno) in [
        ("1.0", EINVAL),
        ("-5", EINVAL),
        ("xx", EINVAL),
        ("1xx", EINVAL),
        ("99999999999999999999", ERANGE),
    ] {
        let e = w(&mut m, "memory.limit_in_bytes", value).unwrap_err();
        assert_eq!(e.errno, errno, "{value}: {e}");
        assert!(
            e.to_string().starts_with("/a/memory.limit_in_bytes: "),
            "{e}"
        );
    }
    assert_eq!(
        m.memcg_read("/a", "memory.limit_in_bytes").unwrap(),
        format!("{RESOURCE_MAX}\n"),
        "nothing half-applied"
    );
    assert_eq!(
        m.memcg_write("/", "memory.limit_in_bytes", "4096")
            .unwrap_err()
            .errno,
        EINVAL
    );
    assert_eq!(
        m.memcg_write("/nope", "tasks", "1").unwrap_err().errno,
        ENOENT
    );
    assert_eq!(w(&mut m, "tasks", "one").unwrap_err().errno, EINVAL);
    assert_eq!(
        m.memcg_read("/a", "memory.force_empty").unwrap_err().errno,
        EINVAL
    );
    assert_eq!(
        m.memcg_read("/a", "memory.nonsense").unwrap_err().errno,
        ENOENT
    );

    // Anonymous pages without swap cannot be reclaimed: a limit below usage
    // is refused with EBUSY and the old limit stays.
    w(&mut m, "tasks", "1").unwrap();
    for v in 0..3 {
        go(&mut m, Access::anon(1, v));
    }
    assert_eq!(
        w(&mut m, "memory.limit_in_bytes", "8k").unwrap_err().errno,
        EBUSY
    );
    assert_eq!(
        m.memcg_read("/a", "memory.usage_in_bytes").unwrap(),
        "12288\n"
    );
    assert_eq!(
        w(&mut m, "memory.force_empty", "0").unwrap_err().errno,
        EBUSY
    );
    // A file page can be reclaimed: the limit shrinks by evicting it.
    go(&mut m, Access::read(4, 0).by(1));
    w(&mut m, "memory.limit_in_bytes", "12k").unwrap();
    assert!(!m.is_cached(4, 0));
    assert_eq!(
        m.memcg_read("/a", "memory.max_usage_in_bytes").unwrap(),
        "16384\n"
    );
    w(&mut m, "memory.max_usage_in_bytes", "0").unwrap();
    assert_eq!(
        m.memcg_read("/a", "memory.max_usage_in_bytes").unwrap(),
        "12288\n"
    );
    let stat = m.memcg_read("/a", "memory.stat").unwrap();
    assert!(
        stat.starts_with("cache 0\nrss 12288\npgpgin 4\npgpgout 1\n"),
        "{stat}"
    );
    assert!(stat.contains("hierarchical_memory_limit 12288\n"), "{stat}");
    // A killed task cannot be moved.
    m.kill_task(crate::mm::page::TaskId(1));
    assert_eq!(m.memcg_write("/", "tasks", "1").unwrap_err().errno, ESRCH);
    // force_empty of a task-less container reclaims everything it can.
    go(&mut m, Access::read(4, 1).by(5));
    m.memcg_attach("/a", 5).unwrap();
    m.memcg_attach("/", 5).unwrap();
    w(&mut m, "memory.force_empty", "1").unwrap();
    assert_eq!(m.memcg_read("/a", "memory.usage_in_bytes").unwrap(), "0\n");
    m.assert_invariants();
}

#[test]
fn global_reclaim_takes_from_every_container() {
    let mut m = machine(8);
    container(&mut m, "/a", 100, &[1]);
    container(&mut m, "/b", 100, &[2]);
    for i in 0..4 {
        go(&mut m, Access::read(0, i).by(1));
        go(&mut m, Access::read(1, i).by(2));
    }
    // Memory is full; more reads evict round-robin across containers.
    for i in 10..14 {
        go(&mut m, Access::read(2, i).by(0));
    }
    let a = m.memcg_usage(m.memcg_by_path("/a").unwrap()) / PAGE_SIZE;
    let b = m.memcg_usage(m.memcg_by_path("/b").unwrap()) / PAGE_SIZE;
    let all = m.memcg_usage(MemcgId::ROOT) / PAGE_SIZE;
    assert_eq!(all, 8, "memory is full and every page is charged somewhere");
    assert!(a < 4 && b < 4, "both containers gave pages: a={a} b={b}");
}

#[test]
fn six_x_limit_reclaim_frees_each_lists_share_by_priority() {
    // A container of 256 pages, full of once-read (inactive) pages; one
    // more read. 6.x limit reclaim wants SWAP_CLUSTER_MAX (32) pages and
    // scans size >> priority from priority 12 down, the list shrinking as
    // it goes:
    //   priority 8: 256 >> 8 = 1 (255 left)   7: 255 >> 7 = 1 (254)
    //   6: 254 >> 6 = 3 (251)   5: 251 >> 5 = 7 (244)   4: 244 >> 4 = 15 (229)
    //   3: 229 >> 3 = 28 (201): 55 reclaimed >= 32, stop.
    // The classic rule reclaims its batch of 32.
    for (rule, freed) in [(LruBalance::Workingset6, 55), (LruBalance::Classic, 32)] {
        let mut m = Machine::new(MachineConfig::new(1024, rule)).unwrap();
        let a = container(&mut m, "/a", 256, &[1]);
        for i in 0..256 {
            go(&mut m, Access::read(0, i).by(1));
        }
        assert_eq!(m.memcg(a).res.failcnt, 0);
        go(&mut m, Access::read(0, 256).by(1));
        let r = m.memcg(a).res;
        assert_eq!(r.failcnt, 1, "{rule}");
        assert_eq!(r.usage, (256 - freed + 1) * PAGE_SIZE, "{rule}");
        assert_eq!(m.memcg(a).stat.pgsteal, freed, "{rule}");
        assert!(
            !m.is_cached(0, freed - 1) && m.is_cached(0, freed),
            "{rule}: oldest first"
        );
    }
}
