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
    let a = run("a", "42");
    let b = run("b", "42");
    assert_eq!(a, b);
    // The files written beside agree with what went to stdout.
    let file_a = std::fs::read_to_string(dir.path().join("a/report.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&file_a).unwrap();
    assert_eq!(v["format"], 1);
}

#[test]
fn json_to_stdout_replaces_the_terminal_report() {
    let dir = tempfile::tempdir().unwrap();
    let o = klab(&["run", "--quick", "--json", "-"], dir.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is only JSON");
    assert!(v["klab_version"].is_string());
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
