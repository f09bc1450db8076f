//! `klab fidelity` end to end: the model alone, the host beside it, bad
//! input, and an interrupt in the middle of a host run, which must leave
//! no cgroup, no data file and no worker behind. The host tests need root
//! and the cgroup v1 memory controller; they say so and return otherwise.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const ROOT: &str = "/sys/fs/cgroup/memory";

fn klab(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("klab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn host_ready() -> bool {
    match klab_fidelity::cgroup::probe(Path::new(ROOT)) {
        Ok(()) => true,
        Err(why) => {
            eprintln!("skipped: {why}");
            false
        }
    }
}

/// The run cgroups of process `pid` that exist now.
fn cgroups_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("klab-fidelity-{pid}-");
    std::fs::read_dir(ROOT)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    file["reports"][0].clone()
}

#[test]
fn the_model_alone_reports_every_rule() {
    let tmp = tempfile::tempdir().unwrap();
    let o = klab(
        &["fidelity", "--model-only", "--quick", "--out", "out"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("host side not run"), "{text}");
    let r = report(&tmp.path().join("out"));
    assert_eq!(r["experiment"], "fidelity");
    assert_eq!(r["host"]["real"], false);
    assert_eq!(
        r["config"]["rules"],
        "classic,refault-distance,workingset-3.15,workingset-6"
    );
    assert!(tmp.path().join("out/report.html").is_file());
}

#[test]
fn bad_input_is_a_clear_error_with_status_2() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("t.unknown"), "1\n").unwrap();
    for (args, want) in [
        (
            vec!["fidelity", "--model-only", "--trace", "missing.txt"],
            "missing.txt",
        ),
        (
            vec!["fidelity", "--model-only", "--trace", "t.unknown"],
            "cannot tell the trace format",
        ),
        (
            vec!["fidelity", "--model-only", "--limit", "100KiB"],
            "below 64 pages",
        ),
        (vec!["fidelity", "--rules", "lru"], "unknown balancing rule"),
    ] {
        let o = klab(&args, tmp.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert!(
            !tmp.path().join("klab-fidelity").exists(),
            "no partial report"
        );
    }
}

#[test]
fn the_host_and_the_model_side_by_side_leave_nothing_behind() {
    if !host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let o = klab(
        &[
            "fidelity",
            "--quick",
            "--sparse",
            "--rules",
            "workingset-3.15,workingset-6",
            "--dir",
            "data",
            "--out",
            "out",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&tmp.path().join("out"));
    assert_eq!(r["host"]["real"], true);
    assert!(
        r["verdict"]["measured"]
            .as_str()
            .unwrap()
            .starts_with("observed (memory.stat read every 16 reads): closest rule workingset-")
    );
    let tables = r["tables"].as_array().unwrap();
    assert!(
        tables
            .iter()
            .any(|t| t["title"] == "error per workload and limit: host observed and left alone"),
        "the unobserved mode is reported"
    );
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0, "data removed");
    // The anonymous workloads swapped to a file of their own under data/:
    // switched off and deleted.
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    assert!(
        !swaps.contains(data.to_str().unwrap()),
        "a swap file left on: {swaps}"
    );
    let cases = r["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "the rule closest to the host, per workload")
        .unwrap()["rows"]
        .as_array()
        .unwrap()
        .len();
    assert!(cases >= 3, "{cases} workloads compared");
}

#[test]
fn an_interrupt_mid_run_removes_the_cgroup_and_the_files() {
    if !host_ready() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(["fidelity", "--sparse", "--dir", "data", "--out", "out"])
        .current_dir(tmp.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    let cgroup = loop {
        if let Some(c) = cgroups_of(pid).pop() {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no cgroup of klab {pid} appeared"
        );
        if let Some(st) = child.try_wait().unwrap() {
            panic!("klab ended before its host run: {st}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    // The worker is in the cgroup (or about to be): interrupt now.
    std::thread::sleep(Duration::from_millis(50));
    let workers = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(2),
        "klab ends as SIGINT would end it: {status}"
    );
    assert!(cgroups_of(pid).is_empty(), "{} removed", cgroup.display());
    assert_eq!(
        std::fs::read_dir(&data).unwrap().count(),
        0,
        "the data directory removed"
    );
    for w in workers.lines() {
        // Killed; once its parent is gone it may linger as a zombie until
        // init reaps it, but it runs no more.
        let state = std::fs::read_to_string(format!("/proc/{}/stat", w.trim()))
            .ok()
            .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next()));
        assert!(
            matches!(state, None | Some(Some('Z'))),
            "worker {w} gone: {state:?}"
        );
    }
}
