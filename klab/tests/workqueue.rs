//! End to end from the CLI: `klab run too-many-threads` gives the same
//! JSON twice for one seed, `klab run lazy-workqueue` counts real threads;
//! both report the numbers the seeds' claims are about; `klab bench
//! workqueue` runs and reports its tables.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn klab(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run klab");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 output"),
    )
}

fn report<'a>(file: &'a Value, name: &str) -> &'a Value {
    file["reports"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["experiment"] == name))
        .unwrap_or_else(|| panic!("no report for {name}"))
}

/// The row of `table` whose first cell is `first`.
fn row<'a>(rep: &'a Value, table: &str, first: &str) -> &'a Vec<Value> {
    rep["tables"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["title"] == table))
        .and_then(|t| t["rows"].as_array())
        .and_then(|rows| rows.iter().find(|r| r[0] == first))
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no row {first:?} in {table:?}"))
}

#[test]
fn lazy_workqueue_counts_real_threads_and_too_many_threads_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "too-many-threads",
        "--quick",
        "--seed",
        "3",
        "--json",
        "-",
    ];
    let (code, first) = klab(&[&args[..], &["--out", "a"]].concat(), dir.path());
    assert_eq!(code, 0);
    let (code, second) = klab(&[&args[..], &["--out", "b"]].concat(), dir.path());
    assert_eq!(code, 0);
    assert_eq!(first, second, "same seed, same bytes");
    assert!(dir.path().join("a/report.html").is_file());

    // Real threads: not the same bytes twice, but the same structure.
    let (code, out) = klab(
        &[
            "run",
            "lazy-workqueue",
            "--quick",
            "--out",
            "c",
            "--json",
            "-",
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    let lazy_file: Value = serde_json::from_str(&out).unwrap();
    let lazy = report(&lazy_file, "lazy-workqueue");
    assert_eq!(lazy["verdict"]["holds"], true, "{}", lazy["verdict"]);
    assert_eq!(lazy["host"]["real"], true);
    let list = lazy["tables"]
        .as_array()
        .and_then(|ts| {
            ts.iter().find(|t| {
                t["title"]
                    .as_str()
                    .unwrap()
                    .starts_with("2.6.31 kernel threads")
            })
        })
        .and_then(|t| t["rows"].as_array())
        .expect("the reconstructed list");
    let total = list.last().unwrap();
    assert_eq!(
        (total[3].as_u64(), total[4].as_u64()),
        (Some(531), Some(279))
    );
    let real = lazy["tables"]
        .as_array()
        .and_then(|ts| {
            ts.iter().find(|t| {
                t["title"]
                    .as_str()
                    .unwrap()
                    .starts_with("workqueue threads on real threads")
            })
        })
        .and_then(|t| t["rows"].as_array())
        .expect("the real thread counts");
    assert_eq!(real.len(), 4, "two loads, eager and lazy");

    let file: Value = serde_json::from_str(&first).unwrap();
    let tmt = report(&file, "too-many-threads");
    assert_eq!(tmt["verdict"]["holds"], true);
    let stops = row(tmt, "where boot stops", "2.6.20 (the page)");
    assert_eq!(stops[1], "3193");
    // 64 CPUs: 697 tasks, their task_structs 4 to an 8 KiB slab, and as
    // many 8 KiB stacks.
    let mem = tmt["tables"]
        .as_array()
        .and_then(|ts| {
            ts.iter().find(|t| {
                t["title"]
                    == "memory the tasks hold after boot (task_struct from SLUB, 8 KiB kernel stacks)"
            })
        })
        .and_then(|t| t["rows"].as_array())
        .and_then(|rows| rows.iter().find(|r| r[0].as_u64() == Some(64)))
        .and_then(Value::as_array)
        .expect("a memory row for 64 CPUs");
    assert_eq!(mem[1].as_u64(), Some(697));
    let mib = |v: &Value| v.as_f64().unwrap() * 1048576.0;
    assert_eq!(mib(&mem[2]), (697f64 / 4.0).ceil() * 8192.0);
    assert_eq!(mib(&mem[3]), 697.0 * 8192.0);
    assert_eq!(tmt["series"].as_array().unwrap().len(), 3);
}

#[test]
fn the_workqueue_benchmark_reports_latency_throughput_and_idle_threads() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = klab(
        &[
            "bench",
            "workqueue",
            "--quick",
            "--out",
            "bench",
            "--json",
            "-",
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    let file: Value = serde_json::from_str(&out).unwrap();
    let rep = report(&file, "workqueue");
    assert_eq!(rep["host"]["real"], true);
    assert_eq!(rep["tables"].as_array().unwrap().len(), 3);
    let idle = row(rep, "threads alive while idle", "klab lazy workqueue");
    assert_eq!(
        idle[2], 1,
        "an idle lazy workqueue on 64 CPUs keeps its core thread"
    );
    let idle = row(rep, "threads alive while idle", "klab per-CPU workqueue");
    assert_eq!(idle[2], 64);
}
