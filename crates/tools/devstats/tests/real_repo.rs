//! devstats against git itself on a real repository, when one is given:
//!
//! ```text
//! KLAB_DEVSTATS_REPO=/path/to/repo [KLAB_DEVSTATS_RANGE=v1..v2] \
//!     cargo test --release -p klab-devstats --test real_repo -- --nocapture
//! ```
//!
//! Without the variable the test prints that it was skipped (CI has no such
//! repository; the built-in repositories of `tests/git_agreement.rs` cover
//! the rules there). With it, every changeset's lines added and removed
//! must equal `git log --numstat`'s, file by file, and the changeset and
//! per-author counts must equal `git rev-list` and `git shortlog`'s.

use std::collections::BTreeMap;
use std::process::Command;

use klab_devstats::walk::{self, NoProgress, Selection};

fn git(repo: &str, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `commit id → [(added, removed) per file]` from `git log --numstat`.
fn git_numstat(repo: &str, range: &str) -> BTreeMap<String, Vec<(u64, u64)>> {
    let text = git(
        repo,
        &[
            "log",
            "--no-merges",
            "--numstat",
            "--format=commit %H",
            range,
        ],
    );
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("commit ") {
            current = id.to_owned();
            out.entry(current.clone()).or_default();
        } else if !line.is_empty() {
            let mut f = line.splitn(3, '\t');
            let a = f.next().unwrap_or("-").parse().unwrap_or(0);
            let r = f.next().unwrap_or("-").parse().unwrap_or(0);
            out.entry(current.clone()).or_default().push((a, r));
        }
    }
    out
}

#[test]
fn real_repository_agrees_with_git() {
    let Ok(repo_path) = std::env::var("KLAB_DEVSTATS_REPO") else {
        println!(
            "skipped: set KLAB_DEVSTATS_REPO to a git repository to compare devstats with git on it"
        );
        return;
    };
    let range = std::env::var("KLAB_DEVSTATS_RANGE").unwrap_or_else(|_| "HEAD".to_owned());
    let repo = walk::open(repo_path.as_ref()).unwrap();
    let sel = Selection {
        range: Some(range.clone()),
        ..Selection::default()
    };
    let t0 = std::time::Instant::now();
    let ids = walk::commits(&repo, &sel).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (records, _) = walk::analyse(&repo, &ids, threads, true, &NoProgress).unwrap();
    let klab_time = t0.elapsed();

    let count: usize = git(&repo_path, &["rev-list", "--no-merges", "--count", &range])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(records.len(), count, "changesets");

    let t1 = std::time::Instant::now();
    let numstat = git_numstat(&repo_path, &range);
    let git_time = t1.elapsed();
    let mut mismatches = Vec::new();
    for r in &records {
        let id = r.id.to_string();
        let theirs = numstat.get(&id).cloned().unwrap_or_default();
        let mut ours: Vec<(u64, u64)> = r.files.iter().map(|f| (f.added, f.removed)).collect();
        let mut theirs_sorted = theirs.clone();
        ours.sort_unstable();
        theirs_sorted.sort_unstable();
        if ours != theirs_sorted {
            mismatches.push(id);
        }
    }
    let (ga, gr) = numstat
        .values()
        .flatten()
        .fold((0, 0), |(a, r), &(x, y)| (a + x, r + y));
    let (ka, kr) = records
        .iter()
        .fold((0, 0), |(a, r), c| (a + c.added, r + c.removed));
    println!(
        "{} changesets; klab {:.2?} ({} threads), git log --numstat {:.2?}; lines git +{ga} -{gr}, klab +{ka} -{kr}; {} commits differ",
        records.len(),
        klab_time,
        threads,
        git_time,
        mismatches.len()
    );
    for id in mismatches.iter().take(20) {
        println!("  differs: {id}");
    }

    let shortlog = git(
        &repo_path,
        &["shortlog", "-sn", "--no-merges", &range, "--"],
    );
    let mut theirs: BTreeMap<String, u64> = BTreeMap::new();
    for line in shortlog.lines() {
        let (n, name) = line.trim_start().split_once('\t').unwrap();
        theirs.insert(name.to_owned(), n.parse().unwrap());
    }
    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        *ours.entry(r.author.name.clone()).or_default() += 1;
    }
    let differing: Vec<_> = theirs
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: git {v}, klab {:?}", ours.get(k)))
        .collect();
    assert!(differing.is_empty(), "shortlog differs: {differing:#?}");
    assert_eq!(ours.len(), theirs.len(), "developers");
    assert!(
        mismatches.is_empty(),
        "{} commits differ from git log --numstat",
        mismatches.len()
    );
}
