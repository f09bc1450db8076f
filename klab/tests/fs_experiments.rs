//! `klab run` end to end for the experiments of seeds 001-003's user-space
//! interfaces: `packet-pipes`, `o-nostd`, `sysfs-active` run from the
//! binary, write both report files, and hold; a second run with the same
//! seed writes byte-identical JSON.

use std::process::Command;

fn run(dir: &std::path::Path, seed: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_klab"))
        .args([
            "run",
            "packet-pipes",
            "o-nostd",
            "sysfs-active",
            "--quick",
            "--seed",
            seed,
        ])
        .arg("--out")
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "klab run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("report.html").is_file());
    let json = std::fs::read_to_string(dir.join("report.json")).unwrap();
    serde_json::from_str(&json).unwrap()
}

#[test]
fn the_three_experiments_run_hold_and_repeat() {
    let tmp = tempfile::tempdir().unwrap();
    let a = run(&tmp.path().join("a"), "7");
    let reports = a["reports"].as_array().unwrap();
    let mut names: Vec<&str> = reports
        .iter()
        .map(|r| r["experiment"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["o-nostd", "packet-pipes", "sysfs-active"]);
    for r in reports {
        assert_eq!(r["verdict"]["holds"], true, "{}", r["experiment"]);
        assert_eq!(r["host"]["deterministic"], true);
    }
    let b = run(&tmp.path().join("b"), "7");
    assert_eq!(a, b, "same seed, same report");
}
