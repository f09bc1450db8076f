//! The host runner's cgroup lifecycle: created, used by the worker alone,
//! removed at the end, and removed too when the run fails or panics
//! midway. Needs root and the cgroup v1 memory controller; each test says
//! so and returns where they are missing.

use std::path::{Path, PathBuf};

use klab_fidelity::cgroup::{self, DEFAULT_ROOT};
use klab_fidelity::{Fill, HostConfig, HostError, PageRef, Pattern, Stage, run, run_observed};

fn host_ready() -> bool {
    match cgroup::probe(Path::new(DEFAULT_ROOT)) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

fn pattern(pages: u64, reads: &[u64]) -> Pattern {
    Pattern {
        files: vec![pages],
        accesses: reads
            .iter()
            .map(|&page| PageRef { file: 0, page })
            .collect(),
        anon: false,
    }
}

fn anon_pattern(pages: u64, touches: &[u64]) -> Pattern {
    Pattern {
        anon: true,
        ..pattern(pages, touches)
    }
}

fn swap_ready() -> bool {
    match klab_fidelity::swap::probe() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// Swap files in `dir` (a run's data directory) listed in /proc/swaps now.
fn swaps_in(dir: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|f| Path::new(f).parent() == Some(dir))
        .map(str::to_owned)
        .collect()
}

fn cfg(limit: u64) -> HostConfig {
    let mut c = HostConfig::new(limit);
    c.fill = Fill::Sparse;
    c
}

#[test]
fn a_run_creates_its_cgroup_puts_only_the_worker_in_it_and_removes_it() {
    if !host_ready() {
        return;
    }
    let mut seen: Option<(PathBuf, PathBuf)> = None;
    let mut worker = None;
    let r = run_observed(&cfg(16 << 20), &pattern(8, &[0, 1, 0, 1, 2]), &mut |s| {
        match s {
            Stage::Created { cgroup, data } => {
                assert!(cgroup.is_dir(), "cgroup exists");
                assert!(
                    cgroup
                        .file_name()
                        .unwrap()
                        .to_string_lossy()
                        .starts_with(&format!("klab-fidelity-{}-", std::process::id()))
                );
                assert!(data.join("file0").is_file());
                seen = Some((cgroup.to_owned(), data.to_owned()));
            }
            Stage::Attached { pid } => {
                let (cg, _) = seen.as_ref().unwrap();
                let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap();
                assert_eq!(procs.trim(), pid.to_string(), "the worker alone");
                let limit = std::fs::read_to_string(cg.join("memory.limit_in_bytes")).unwrap();
                assert_eq!(limit.trim(), (16u64 << 20).to_string());
                worker = Some(pid);
            }
            Stage::Running { .. } => {}
        }
        Ok(())
    })
    .unwrap();
    let (cg, data) = seen.unwrap();
    assert!(!cg.exists(), "cgroup removed");
    assert!(!data.exists(), "data directory removed");
    assert!(
        !Path::new(&format!("/proc/{}", worker.unwrap())).exists(),
        "worker reaped"
    );
    // No pressure under 16 MiB: 3 first reads miss, 2 re-reads hit.
    assert_eq!((r.hits(), r.misses(), r.probe_refaults()), (2, 3, 0));
    assert_eq!(r.delta("workingset_refault_file"), 0);
    assert!(r.stats_settled, "memory.stat flushed");
    assert!(
        r.delta("pgpgin") >= 3,
        "3 pages charged, {}",
        r.delta("pgpgin")
    );
    assert_eq!(r.pages_after("cache"), 3);
    assert_eq!(r.failcnt, 0);
    assert_eq!(r.limit_bytes, 16 << 20);
}

#[test]
fn an_error_midway_leaves_no_cgroup_no_files_and_no_worker() {
    if !host_ready() {
        return;
    }
    let mut seen = None;
    let mut worker = None;
    let e = run_observed(&cfg(16 << 20), &pattern(4, &[0, 1, 2, 3]), &mut |s| {
        match s {
            Stage::Created { cgroup, data } => seen = Some((cgroup.to_owned(), data.to_owned())),
            Stage::Attached { pid } => {
                worker = Some(pid);
                return Err(HostError::Pattern("stop here".into()));
            }
            Stage::Running { .. } => {}
        }
        Ok(())
    })
    .unwrap_err();
    assert!(e.to_string().contains("stop here"), "{e}");
    let (cg, data) = seen.unwrap();
    assert!(!cg.exists() && !data.exists());
    assert!(!Path::new(&format!("/proc/{}", worker.unwrap())).exists());
    assert!(
        klab_fidelity::cleanup::registered()
            .0
            .iter()
            .all(|c| c != &cg)
    );
}

#[test]
fn a_panic_midway_leaves_no_cgroup() {
    if !host_ready() {
        return;
    }
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_observed(&cfg(16 << 20), &pattern(64, &[7; 4000]), &mut |s| {
            match s {
                Stage::Created { cgroup, .. } => *seen.lock().unwrap() = Some(cgroup.to_owned()),
                Stage::Running { .. } => panic!("observer panics while the worker runs"),
                Stage::Attached { .. } => {}
            }
            Ok(())
        })
    }));
    assert!(result.is_err());
    let cg = seen.into_inner().unwrap().unwrap();
    assert!(!cg.exists(), "{} removed during unwinding", cg.display());
}

#[test]
fn under_a_limit_the_probe_and_the_kernel_count_the_same_refaults() {
    if !host_ready() {
        return;
    }
    // 1024 pages read twice through a 1 MiB (256-page) cgroup: the second
    // pass finds shadow entries where the first pass's pages were.
    let reads: Vec<u64> = (0..1024).chain(0..1024).collect();
    let r = run(&cfg(1 << 20), &pattern(1024, &reads)).unwrap();
    assert_eq!(r.hits() + r.misses(), 2048);
    assert!(
        r.misses() > 1900,
        "a cyclic scan over 4x the limit misses: {}",
        r.misses()
    );
    assert!(r.probe_refaults() > 700, "{}", r.probe_refaults());
    assert_eq!(
        r.probe_refaults(),
        r.delta("workingset_refault_file"),
        "cachestat's shadows are the refaults the kernel counts"
    );
    assert!(r.failcnt > 0, "the limit was hit");
    assert!(r.max_usage_bytes <= 1 << 20);
}

#[test]
fn a_host_without_the_controller_is_reported_not_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cfg(1 << 20);
    c.root = dir.path().to_owned();
    match run(&c, &pattern(1, &[0])) {
        Err(HostError::Unavailable(why)) => {
            assert!(
                why.contains("no cgroup v1 memory controller is mounted at"),
                "{why}"
            )
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn a_pattern_past_its_files_is_refused_before_anything_is_created() {
    let e = run(&cfg(1 << 20), &pattern(2, &[0, 2])).unwrap_err();
    assert!(
        e.to_string()
            .contains("access 1: page 2 of file 0 which has 2 pages"),
        "{e}"
    );
}

#[test]
fn an_anonymous_run_swaps_to_a_file_of_its_own_and_removes_it() {
    if !host_ready() || !swap_ready() {
        return;
    }
    // 512 pages written twice through a 1 MiB (256-page) cgroup: the
    // second pass, in a scattered order (swap readahead brings in the
    // neighbours of a sequential pass), brings pages back from swap.
    let touches: Vec<u64> = (0..512).chain((0..512).map(|p| p * 37 % 512)).collect();
    let mut swaps_during = Vec::new();
    let mut data = PathBuf::new();
    let r = run_observed(&cfg(1 << 20), &anon_pattern(512, &touches), &mut |s| {
        match s {
            Stage::Created { data: d, .. } => data = d.to_owned(),
            Stage::Attached { .. } => swaps_during = swaps_in(&data),
            Stage::Running { .. } => {}
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(swaps_during.len(), 1, "one swap file on: {swaps_during:?}");
    assert!(swaps_in(&data).is_empty(), "swap file off after the run");
    assert!(!Path::new(&swaps_during[0]).exists(), "and deleted");
    assert!(!data.exists());
    let accesses = anon_pattern(512, &touches).accesses;
    assert_eq!(r.outcomes.len(), 1024);
    let swap_ins = r.swap_ins(&accesses);
    assert!(swap_ins > 100, "the second pass swaps in: {swap_ins}");
    assert!(r.vmstat_delta["pswpout"] >= 256, "{:?}", r.vmstat_delta);
    assert_eq!(r.times_ns.len(), 1024);
}

#[test]
fn an_error_in_an_anonymous_run_turns_its_swap_file_off() {
    if !host_ready() || !swap_ready() {
        return;
    }
    let mut seen = Vec::new();
    let mut data = PathBuf::new();
    let e = run_observed(&cfg(1 << 20), &anon_pattern(64, &[0, 1, 2]), &mut |s| {
        match s {
            Stage::Created { data: d, .. } => data = d.to_owned(),
            Stage::Attached { .. } => {
                seen = swaps_in(&data);
                return Err(HostError::Pattern("stop here".into()));
            }
            Stage::Running { .. } => {}
        }
        Ok(())
    })
    .unwrap_err();
    assert!(e.to_string().contains("stop here"), "{e}");
    assert_eq!(seen.len(), 1);
    assert!(swaps_in(&data).is_empty(), "swap file off after the error");
    assert!(!Path::new(&seen[0]).exists());
}

#[test]
fn the_kernels_statistics_flushes_are_traced_with_the_workers_reads() {
    if !host_ready() {
        return;
    }
    let reads: Vec<u64> = (0..2048).collect();
    let mut c = cfg(1 << 20);
    c.flush_every = Some(16);
    let r = run(&c, &pattern(2048, &reads)).unwrap();
    let f = r.flushes.as_ref().expect("asked to trace");
    let rec = match &f.recorded {
        Ok(rec) => rec,
        Err(why) => {
            eprintln!("skipped: no flush trace here: {why}");
            return;
        }
    };
    let worker_reads = rec
        .events
        .iter()
        .filter(|e| e.memcg_id == f.memcg_id && e.pid == r.worker_pid)
        .count();
    assert_eq!(
        worker_reads,
        2048 / 16,
        "one event per memory.stat read of the worker ({} lost)",
        rec.lost
    );
    assert!(rec.events.windows(2).all(|w| w[0].t_ns <= w[1].t_ns));
    let (first, last) = (r.times_ns[0], r.times_ns[2047]);
    assert!(
        rec.events
            .iter()
            .filter(|e| e.pid == r.worker_pid)
            .all(|e| e.t_ns + 1_000 >= first && e.t_ns <= last + 1_000_000),
        "the trace clock is the worker's (CLOCK_MONOTONIC)"
    );
}
