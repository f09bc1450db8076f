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

fn git_available() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[track_caller]
fn git(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .envs(env.iter().copied())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Three changesets whose changed lines differ between gitdm's rules:
///
/// ```text
///  Bob  root: f gets lines 1..40          +40  −0
///  Ann  drops lines 1..2, appends 10      +10  −2
///  Ann  drops lines 3..32, appends 1       +1 −30
///
///  total changed Σ max(+, −)          = 40 + 10 + 30 = 80
///  per-developer  Ann max(11, 32) = 32 (40%)   Bob 40 (50%)
///  per-changeset  Ann 10 + 30     = 40 (50%)   Bob 40 (50%)
/// ```
fn two_era_repo(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"], &[]);
    let mut day = 0;
    let mut commit = |who: (&str, &str), lines: &[String]| {
        day += 1;
        std::fs::write(dir.join("f"), lines.concat()).unwrap();
        let date = format!("2009-06-{day:02}T12:00:00+0000");
        git(dir, &["add", "-A"], &[]);
        git(
            dir,
            &["commit", "-q", "-m", "change"],
            &[
                ("GIT_AUTHOR_NAME", who.0),
                ("GIT_AUTHOR_EMAIL", who.1),
                ("GIT_AUTHOR_DATE", &date),
                ("GIT_COMMITTER_NAME", who.0),
                ("GIT_COMMITTER_EMAIL", who.1),
                ("GIT_COMMITTER_DATE", &date),
            ],
        );
    };
    let mut f: Vec<String> = (1..=40).map(|i| format!("line {i}\n")).collect();
    commit(("Bob", "bob@example.org"), &f);
    f.drain(..2);
    f.extend((1..=10).map(|i| format!("new {i}\n")));
    commit(("Ann", "ann@example.org"), &f);
    f.drain(..30);
    f.push("last\n".into());
    commit(("Ann", "ann@example.org"), &f);
}

#[test]
fn changed_lines_follow_the_rule_chosen_and_every_output_names_it() {
    if !git_available() {
        println!("skipped: no git command to build the repository");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r");
    two_era_repo(&repo);
    let rows = |v: &serde_json::Value| -> Vec<(String, u64, f64)> {
        v["developers_by_lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["name"].as_str().unwrap().to_owned(),
                    r["count"].as_u64().unwrap(),
                    r["percent"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    for (flag, rule, want) in [
        (
            None,
            "per-developer",
            vec![("Bob".to_owned(), 40, 50.0), ("Ann".to_owned(), 32, 40.0)],
        ),
        (
            Some("per-developer"),
            "per-developer",
            vec![("Bob".to_owned(), 40, 50.0), ("Ann".to_owned(), 32, 40.0)],
        ),
        (
            Some("per-changeset"),
            "per-changeset",
            vec![("Ann".to_owned(), 40, 50.0), ("Bob".to_owned(), 40, 50.0)],
        ),
    ] {
        let csv = tmp.path().join(format!("csv-{rule}-{}", flag.is_some()));
        let json = tmp.path().join(format!("{rule}-{}.json", flag.is_some()));
        let mut args = vec![
            "devstats",
            repo.to_str().unwrap(),
            "--no-cache",
            "--json",
            json.to_str().unwrap(),
            "--csv",
            csv.to_str().unwrap(),
        ];
        if let Some(f) = flag {
            args.extend(["--changed-lines", f]);
        }
        let out = klab(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(v["changed_lines_rule"], rule);
        assert_eq!(v["summary"]["changed"], 80);
        assert_eq!(rows(&v), want, "{rule}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("--changed-lines {rule}")),
            "terminal names {rule}:\n{text}"
        );
        let summary = std::fs::read_to_string(csv.join("summary.csv")).unwrap();
        assert!(
            summary.contains(&format!("\nchanged_lines_rule,{rule}\n")),
            "{summary}"
        );
        let lines = std::fs::read_to_string(csv.join("developers_by_lines.csv")).unwrap();
        let first = &want[0];
        assert_eq!(
            lines.lines().take(2).collect::<Vec<_>>(),
            [
                "rank,name,count,percent,changed_lines_rule".to_owned(),
                format!("1,{},{},{:.3},{rule}", first.0, first.1, first.2)
            ]
        );
    }
}

/// The record cache: the first run fills `klab-devstats/` in the git
/// directory, the second is answered from it, and both print the same JSON
/// as a run without it, byte for byte; `--cache-dir` puts it elsewhere.
#[test]
fn a_cached_run_prints_what_an_uncached_run_prints() {
    let tmp = tempfile::tempdir().unwrap();
    let git_dir = tmp.path().join("r.git");
    repo(&git_dir);
    let json = |args: &[&str]| -> Vec<u8> {
        let mut all = vec!["devstats", git_dir.to_str().unwrap(), "main"];
        all.extend(args);
        all.extend(["--json", "-"]);
        let out = klab(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
        out.stdout
    };
    let uncached = json(&["--no-cache"]);
    let cache = git_dir.join("klab-devstats");
    assert!(!cache.exists(), "--no-cache writes nothing");
    let first = json(&[]);
    let segments = std::fs::read_dir(&cache).unwrap().count();
    assert_eq!(segments, 2, "a record segment and a graph segment");
    let second = json(&[]);
    assert_eq!(first, uncached);
    assert_eq!(second, uncached);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        segments,
        "nothing new to write"
    );
    let elsewhere = tmp.path().join("cache");
    let third = json(&["--cache-dir", elsewhere.to_str().unwrap()]);
    assert_eq!(third, uncached);
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 2);
    // Another rule changes the tables, not the cached records.
    let other = json(&["--changed-lines", "per-changeset"]);
    let v: serde_json::Value = serde_json::from_slice(&other).unwrap();
    assert_eq!(v["changed_lines_rule"], "per-changeset");
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), segments);
    // A cache that cannot be made is a warning, not a failure.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let under_file = file.join("cache");
    let out = klab(&[
        "devstats",
        git_dir.to_str().unwrap(),
        "main",
        "--cache-dir",
        under_file.to_str().unwrap(),
        "--json",
        "-",
    ]);
    assert!(out.status.success());
    assert_eq!(out.stdout, uncached);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("warning: record cache {}", under_file.display()))
            && err.contains("counting without it"),
        "{err}"
    );
}

/// A cache file cut short or with a bit flipped in the middle is found out
/// (a warning names it), not trusted: the run prints what an uncached run
/// prints, and the damaged file is replaced.
#[test]
fn a_truncated_or_flipped_cache_file_is_detected_and_recomputed() {
    let tmp = tempfile::tempdir().unwrap();
    let git_dir = tmp.path().join("r.git");
    repo(&git_dir);
    let run = |args: &[&str]| -> Output {
        let mut all = vec!["devstats", git_dir.to_str().unwrap(), "main"];
        all.extend(args);
        all.extend(["--json", "-"]);
        let out = klab(&all);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let uncached = run(&["--no-cache"]).stdout;
    let cache = git_dir.join("klab-devstats");
    type Damage = fn(&mut Vec<u8>);
    let damages: [(&str, Damage); 2] = [
        ("truncated", |b| b.truncate(b.len() / 2)),
        ("flipped", |b| {
            let mid = b.len() / 2;
            b[mid] ^= 0x04;
        }),
    ];
    for (what, damage) in damages {
        for family in ["records-", "graph-"] {
            run(&[]);
            let seg = std::fs::read_dir(&cache)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(family))
                .unwrap();
            let mut bytes = std::fs::read(&seg).unwrap();
            damage(&mut bytes);
            std::fs::write(&seg, &bytes).unwrap();
            let out = run(&[]);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("warning: record cache:")
                    && err.contains(&*seg.to_string_lossy())
                    && err.contains("recomputed"),
                "{what} {family}: {err}"
            );
            assert_eq!(out.stdout, uncached, "{what} {family}");
            assert!(
                !seg.exists(),
                "{what} {family}: the damaged file is replaced"
            );
            // Sound again: the next run warns of nothing.
            let out = run(&[]);
            assert_eq!(out.stdout, uncached);
            assert!(
                !String::from_utf8_lossy(&out.stderr).contains("warning"),
                "{what} {family}"
            );
            std::fs::remove_dir_all(&cache).unwrap();
        }
    }
}
