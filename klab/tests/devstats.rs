//! `klab devstats` end to end: a synthetic repository, the page's tables,
//! JSON and CSV, and the errors for bad input (exit status 2).

use std::path::Path;
use std::process::{Command, Output};

use klab_devstats::synth::{self, SynthConfig};
use rand::SeedableRng;

fn klab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_klab"))
        .args(args)
        .output()
        .expect("klab runs")
}

fn repo(dir: &Path) -> synth::SynthRepo {
    let cfg = SynthConfig {
        commits: 150,
        developers: 30,
        employers: 8,
        subsystems: 5,
        ..SynthConfig::default()
    };
    synth::generate(dir, &cfg, &mut rand_pcg::Pcg64::seed_from_u64(11)).unwrap()
}

#[test]
fn tables_json_and_csv_for_a_range() {
    let tmp = tempfile::tempdir().unwrap();
    let git = tmp.path().join("r.git");
    let r = repo(&git);
    let map = tmp.path().join("employers");
    std::fs::write(&map, &r.employer_map).unwrap();
    let json = tmp.path().join("out/stats.json");
    std::fs::create_dir_all(json.parent().unwrap()).unwrap();
    let csv = tmp.path().join("csv");
    let out = klab(&[
        "devstats",
        git.to_str().unwrap(),
        "main",
        "--employers",
        map.to_str().unwrap(),
        "--top",
        "5",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for heading in [
        "Most active developers",
        "Most active employers",
        "Top non-author signoffs",
        "By changesets",
        "By changed lines",
    ] {
        assert!(stdout.contains(heading), "{heading} missing:\n{stdout}");
    }
    assert!(stdout.contains(&format!("{} non-merge changesets", r.truth.changesets)));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(v["summary"]["changesets"], r.truth.changesets);
    assert_eq!(v["summary"]["added"], r.truth.added);
    assert_eq!(v["summary"]["removed"], r.truth.removed);
    let rows = v["developers_by_changesets"].as_array().unwrap();
    assert_eq!(rows.len(), r.truth.per_author.len());
    for name in [
        "developers_by_changesets",
        "employers_by_lines",
        "signoffs_by_employer",
        "summary",
        "hands",
    ] {
        assert!(csv.join(format!("{name}.csv")).is_file(), "{name}.csv");
    }
    let first = std::fs::read_to_string(csv.join("developers_by_changesets.csv")).unwrap();
    assert!(first.starts_with("rank,name,count,percent\n1,"));
    // No temporary files left behind.
    assert!(
        std::fs::read_dir(&csv).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with('.'))
    );

    let out = klab(&["devstats", git.to_str().unwrap(), "--json", "-"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["changesets"], r.truth.changesets);
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let out = klab(&["devstats", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a git repository"), "{err}");

    let git = tmp.path().join("r.git");
    repo(&git);
    let out = klab(&["devstats", git.to_str().unwrap(), "v0.0..main"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unknown revision or range \"v0.0..main\"")
    );

    let map = tmp.path().join("bad-map");
    std::fs::write(&map, "ok.org  Fine\nbroken.org\n").unwrap();
    let json = tmp.path().join("never.json");
    let out = klab(&[
        "devstats",
        git.to_str().unwrap(),
        "--employers",
        map.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2: expected an address or domain",
            map.display()
        )),
        "{err}"
    );
    assert!(!json.exists());

    let out = klab(&[
        "devstats",
        git.to_str().unwrap(),
        "--since",
        "yesterday-ish",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot parse date"));
}
