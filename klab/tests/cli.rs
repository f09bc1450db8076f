//! End-to-end tests of the `klab` binary: flags, exit statuses, the report
//! files and their determinism.

use std::path::Path;
use std::process::{Command, Output};

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

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn names(dir: &Path) -> Vec<String> {
    let o = klab(&["list", "--names"], dir);
    assert!(o.status.success(), "{}", stderr(&o));
    stdout(&o).lines().map(str::to_owned).collect()
}

#[test]
fn list_shows_name_seed_page_and_claim_for_every_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let o = klab(&["list"], dir.path());
    assert!(o.status.success());
    let names = names(dir.path());
    let text = stdout(&o);
    assert_eq!(text.lines().count(), names.len());
    for (line, name) in text.lines().zip(&names) {
        assert!(line.starts_with(name.as_str()), "{line}");
        assert!(line.contains(".txt"), "seed page named: {line}");
    }
}

#[test]
fn unknown_experiment_lists_known_names_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = klab(&["run", "no-such-experiment"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("unknown experiment no-such-experiment"),
        "{err}"
    );
    for n in names(dir.path()) {
        assert!(err.contains(&n), "known name {n} listed: {err}");
    }
    assert!(!dir.path().join("klab-report").exists(), "nothing written");
}

#[test]
fn unwritable_output_directory_is_a_clear_error_with_no_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocker"), "a file, not a directory").unwrap();
    let o = klab(&["run", "--quick", "--out", "blocker/sub"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot write blocker/sub"),
        "{}",
        stderr(&o)
    );

    // A read-only directory: the reports cannot be staged, nothing is left.
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    let mut perm = std::fs::metadata(&ro).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o555);
    std::fs::set_permissions(&ro, perm).unwrap();
    let probe = ro.join("probe");
    if std::fs::write(&probe, "x").is_ok() {
        // Running as root: permissions do not stop writes. The blocker case
        // above covers the error path.
        std::fs::remove_file(probe).unwrap();
        return;
    }
    let o = klab(&["run", "--quick", "--out", "ro"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        std::fs::read_dir(&ro).unwrap().count(),
        0,
        "no partial files"
    );
}

#[test]
fn input_for_no_selected_experiment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let o = klab(&["run", "--quick", "--pcap", "x.pcap"], dir.path());
    // Either no selected experiment takes a capture, or the file is missing:
    // both are errors that name the flag.
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--pcap"), "{}", stderr(&o));
}

#[test]
fn range_and_employers_need_a_repo_and_an_experiment_that_reads_history() {
    let dir = tempfile::tempdir().unwrap();
    // Without --repo: a usage error naming what is missing.
    let o = klab(&["run", "devstats", "--range", "v1..v2"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--repo"), "{}", stderr(&o));
    // archmerge takes --repo (a source tree) but no range or employer map.
    let o = klab(
        &["run", "archmerge", "--repo", ".", "--range", "v1..v2"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--range is not used by the selected experiments") && err.contains("devstats"),
        "{err}"
    );
    // A missing employer map is an error naming the flag and the file.
    let o = klab(
        &[
            "run",
            "devstats",
            "--repo",
            ".",
            "--employers",
            "no-such.map",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--employers") && err.contains("no-such.map"),
        "{err}"
    );
    assert!(!dir.path().join("klab-report").exists(), "nothing written");
}

#[test]
fn run_writes_json_and_html_with_every_experiment_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let o = klab(&["run", "--quick"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let json = std::fs::read_to_string(dir.path().join("klab-report/report.json")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("klab-report/report.html")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let reports = v["reports"].as_array().unwrap();
    assert_eq!(reports.len(), names(dir.path()).len());
    for r in reports {
        let name = r["experiment"].as_str().unwrap();
        let start = html
            .find(&format!("id=\"exp-{name}\""))
            .unwrap_or_else(|| panic!("section for {name}"));
        let end = start + html[start..].find("</section>").unwrap();
        let section = &html[start..end];
        let series = r["series"].as_array().unwrap().len();
        assert_eq!(
            section.matches("<figure class=\"plot\"").count(),
            series,
            "{name}"
        );
        assert_eq!(section.matches("<svg").count(), series, "{name}");
        assert_eq!(
            section.matches("<table class=\"data\">").count(),
            r["tables"].as_array().unwrap().len(),
            "{name}"
        );
        assert!(
            stdout(&o).contains(&format!("== {name} ")),
            "terminal report for {name}"
        );
    }
    for fetch in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(
            !html.contains(fetch),
            "the page fetches nothing: found {fetch}"
        );
    }
}

#[test]
fn same_seed_gives_byte_identical_json_for_deterministic_reports() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &str, seed: &str| {
        let o = klab(
            &[
                "run", "--quick", "--seed", seed, "--out", out, "--json", "-",
            ],
            dir.path(),
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["reports"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["host"]["deterministic"] == serde_json::Value::Bool(true))
            .map(|r| serde_json::to_string(r).unwrap())
            .collect::<Vec<_>>()
    };
    // `--json -` puts only the JSON on standard output (parsed above) and
    // still writes the report files.
    let a = run("a", "42");
    let b = run("b", "42");
    assert!(!a.is_empty(), "some experiments are deterministic");
    assert_eq!(a, b);
    // The files written beside agree with what went to stdout.
    let file_a = std::fs::read_to_string(dir.path().join("a/report.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&file_a).unwrap();
    assert_eq!(v["format"], 1);
}

#[test]
fn bench_list_and_unknown_bench() {
    let dir = tempfile::tempdir().unwrap();
    let o = klab(&["bench", "--list"], dir.path());
    assert!(o.status.success());
    let o = klab(&["bench", "no-such-bench"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown benchmark no-such-bench"));
}

#[test]
fn bench_suite_needs_the_slub_bench_and_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let o = klab(&["bench", "radix-tree", "--suite", "."], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--suite is read by the slub benchmark only"),
        "{}",
        stderr(&o)
    );
    let o = klab(&["bench", "slub", "--suite", "no-such-dir"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("no-such-dir: not a directory: expected the suite's built out/bench"),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("klab-bench").exists(), "no partial output");
}

fn shared_trace(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/traces")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn replay_lru_reports_libcachesims_miss_count() {
    let dir = tempfile::tempdir().unwrap();
    let trace = shared_trace("cloudPhysicsIO.oracleGeneral.bin");
    let o = klab(
        &["replay", &trace, "--memory", "512MiB", "--policy", "lru"],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    // libCacheSim's test_LRU pins 81722 misses at 512 MiB.
    assert!(out.contains("misses:       81722\n"), "{out}");
    assert!(out.contains("requests/s"), "{out}");
    let json = std::fs::read_to_string(dir.path().join("klab-replay/report.json")).unwrap();
    assert!(json.contains("\"experiment\": \"replay\""));
}

#[test]
fn replay_kernel_rule_in_page_mode_with_mrc() {
    let dir = tempfile::tempdir().unwrap();
    // A klab trace: 3000 reads cycling over 300 pages of file 2.
    let mut trace = String::from("klab-trace v1\n");
    for i in 0..3000u64 {
        trace.push_str(&format!("{i} 2 {} 4096 r\n", (i * 7) % 300));
    }
    std::fs::write(dir.path().join("t.ktr"), trace).unwrap();
    let o = klab(
        &[
            "replay",
            "t.ktr",
            "--memory",
            "1MiB",
            "--policy",
            "workingset-3.15",
            "--mrc",
            "--threads",
            "2",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("(page unit, 1MiB)")
            && out.contains("refaults:")
            && out.contains("miss-ratio curve:"),
        "{out}"
    );
    // 256 frames for a 300-page loop: the first pass misses 300 times.
    assert!(out.contains("requests:     3000\n"), "{out}");
    let v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("klab-replay/report.json")).unwrap(),
    )
    .unwrap();
    let pts = v["reports"][0]["series"][0]["lines"][0]["points"]
        .as_array()
        .unwrap();
    assert_eq!(pts.len(), 16);
    // At twice the memory (512 pages) the loop fits: only cold misses.
    assert_eq!(pts[15][1].as_f64().unwrap(), 300.0 / 3000.0);
}

#[test]
fn replay_rejects_bad_input_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let trace = shared_trace("cloudPhysicsIO.txt");
    let cases: [(&[&str], &str); 4] = [
        (&["replay", &trace, "--memory", "12XB"], "unknown unit"),
        (
            &["replay", &trace, "--memory", "1MiB", "--policy", "mru"],
            "unknown policy",
        ),
        (
            &[
                "replay", &trace, "--memory", "1MiB", "--policy", "classic", "--unit", "object",
            ],
            "use --unit page",
        ),
        (
            &["replay", "missing.vscsi", "--memory", "1MiB"],
            "missing.vscsi",
        ),
    ];
    for (args, msg) in cases {
        let o = klab(args, dir.path());
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(msg), "{args:?}: {}", stderr(&o));
    }
    // A corrupt trace names the record and offset.
    std::fs::write(dir.path().join("bad.oracleGeneral.bin"), [0u8; 30]).unwrap();
    let o = klab(
        &["replay", "bad.oracleGeneral.bin", "--memory", "1MiB"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("record 0 at offset 0: obj_size field is 0"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn memcg_scenario_file_runs_and_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = "[machine]\nmemory = \"1MiB\"\nsteps = 500\n\n[[container]]\npath = \"/a\"\nlimit = \"64k\"\n\n[[task]]\nid = 1\ncontainer = \"/a\"\nworkload = \"loop\"\nfile = 1\npages = 40\n";
    std::fs::write(dir.path().join("s.toml"), good).unwrap();
    let o = klab(
        &[
            "run",
            "memcg",
            "--scenario",
            "s.toml",
            "--quick",
            "--json",
            "-",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let tables = &v["reports"][0]["tables"];
    // /a: limit 64k = 16 pages, a 40-page loop: at most 16 pages charged.
    assert_eq!(tables[0]["rows"][1][0], "/a");
    assert_eq!(tables[0]["rows"][1][3], 16);

    std::fs::write(
        dir.path().join("bad.toml"),
        good.replace("limit = \"64k\"", "limit = \"64kb\""),
    )
    .unwrap();
    let o = klab(&["run", "memcg", "--scenario", "bad.toml"], dir.path());
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.toml: line 7: container.limit"),
        "{}",
        stderr(&o)
    );
}
