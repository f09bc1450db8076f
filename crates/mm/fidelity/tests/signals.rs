//! A run ended by `SIGTERM` while its worker holds anonymous memory under
//! the limit leaves no swap file on, no swap file, no cgroup, no data
//! directory and no trace mount behind. The test re-runs this test binary as the child that
//! is signalled (`KLAB_FIDELITY_SIGNAL_CHILD`), so the signal thread's
//! `cleanup_all()` touches nothing of another test. Needs root, the
//! cgroup v1 memory controller and swap support; returns with a printed
//! reason where they are missing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use klab_fidelity::cgroup::{self, DEFAULT_ROOT};
use klab_fidelity::{Fill, HostConfig, PageRef, Pattern, Stage, run_observed};

const CHILD: &str = "KLAB_FIDELITY_SIGNAL_CHILD";

fn anon_pattern(pages: u64) -> Pattern {
    Pattern {
        files: vec![pages],
        accesses: (0..pages).map(|page| PageRef { file: 0, page }).collect(),
        anon: true,
    }
}

/// The child: an anonymous run that reports its cgroup, data directory
/// and swap file when the worker is attached, then waits for the signal.
fn child() {
    klab_fidelity::cleanup::install_signal_handlers().expect("signal thread");
    let mut c = HostConfig::new(1 << 20);
    c.fill = Fill::Sparse;
    let mut cg = PathBuf::new();
    let mut data = PathBuf::new();
    let _ = run_observed(&c, &anon_pattern(64), &mut |s| {
        match s {
            Stage::Created { cgroup, data: d } => {
                cg = cgroup.to_owned();
                data = d.to_owned();
            }
            Stage::Attached { .. } => {
                let (swaps, _) = klab_fidelity::cleanup::registered_host_settings();
                println!(
                    "ready {} {} {}",
                    cg.display(),
                    data.display(),
                    swaps
                        .first()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default()
                );
                // Bounded: the parent signals at once; a missing signal
                // ends the child here and the parent's check fails.
                std::thread::sleep(Duration::from_secs(60));
            }
            Stage::Running { .. } => {}
        }
        Ok(())
    });
    std::process::exit(3);
}

fn in_proc_swaps(file: &Path) -> bool {
    std::fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .any(|f| Path::new(f) == file)
}

#[test]
fn sigterm_during_an_anonymous_run_removes_its_swap_file_cgroup_and_directory() {
    if std::env::var_os(CHILD).is_some() {
        child();
    }
    if let Err(why) = cgroup::probe(Path::new(DEFAULT_ROOT)) {
        eprintln!("skipped: {why}");
        return;
    }
    if let Err(why) = klab_fidelity::swap::probe() {
        eprintln!("skipped: {why}");
        return;
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "sigterm_during_an_anonymous_run_removes_its_swap_file_cgroup_and_directory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let ready = out
        .lines()
        .map_while(Result::ok)
        // libtest prints "test <name> ... " on the same line first.
        .find_map(|l| l.find("ready ").map(|at| l[at..].to_owned()))
        .expect("the child reports its run");
    let parts: Vec<&str> = ready.split(' ').collect();
    assert_eq!(parts.len(), 4, "{ready}");
    let (cg, data, swap) = (
        PathBuf::from(parts[1]),
        PathBuf::from(parts[2]),
        PathBuf::from(parts[3]),
    );
    assert!(cg.is_dir() && data.is_dir(), "{ready}");
    assert!(in_proc_swaps(&swap), "the swap file is on: {ready}");
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("a child pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM sent");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the child did not end within 30 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "ended by SIGTERM: {status:?}");
    assert!(!in_proc_swaps(&swap), "swap file turned off");
    assert!(!swap.exists(), "swap file deleted");
    assert!(!cg.exists(), "cgroup removed");
    assert!(!data.exists(), "data directory removed");
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let ours = format!("klab-fidelity-tracefs-{}-", child.id());
    assert!(
        !mounts.contains(&ours),
        "the flush trace's tracefs mount is gone: {mounts}"
    );
}
