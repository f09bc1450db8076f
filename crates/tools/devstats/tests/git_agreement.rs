//! devstats agrees with git itself, on repositories the tests build.
//!
//! Two repositories:
//! * a small one made with the git CLI, commit by commit, with fixed dates
//!   and identities, holding every case the counting rules name: several
//!   authors, signoffs (own, others', malformed), a merge, exact, inexact
//!   and same-basename renames, binary files, a symlink, a mode change, a
//!   file turned into a symlink, CRLF and missing final newlines, a
//!   submodule entry, and a `.mailmap`;
//! * a synthetic history written by `synth` through gix (thousands of lines,
//!   heavy-tailed edits, merges, renames, firmware blobs, mailmap aliases).
//!
//! For both, changesets must equal `git rev-list --no-merges --count`,
//! per-author counts `git shortlog -sn --no-merges`, and every commit's
//! per-file lines `git log --numstat` (binary `-` counted as 0).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use klab_devstats::synth::{self, SynthConfig};
use klab_devstats::walk::{self, NoProgress, Selection};
use klab_devstats::{EmployerMap, Stats};
use rand::SeedableRng;

fn git_available() -> bool {
    Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[track_caller]
fn git(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Per commit: the sorted `(added, removed)` of each file, from git.
fn git_numstat(dir: &Path, range: &str) -> BTreeMap<String, Vec<(u64, u64)>> {
    let mut args = vec!["log", "--no-merges", "--numstat", "--format=commit %H"];
    args.extend(range.split_whitespace());
    let text = git(dir, &args, &[]);
    let mut out: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("commit ") {
            current = id.to_owned();
            out.entry(current.clone()).or_default();
        } else if !line.is_empty() {
            let mut f = line.splitn(3, '\t');
            let a = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let r = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            out.get_mut(&current)
                .expect("commit line first")
                .push((a, r));
        }
    }
    for v in out.values_mut() {
        v.sort_unstable();
    }
    out
}

fn git_shortlog(dir: &Path, range: &str) -> BTreeMap<String, u64> {
    let mut args = vec!["shortlog", "-sn", "--no-merges"];
    args.extend(range.split_whitespace());
    args.push("--");
    git(dir, &args, &[])
        .lines()
        .map(|l| {
            let (n, name) = l.trim_start().split_once('\t').expect("count<TAB>name");
            (name.to_owned(), n.parse().expect("count"))
        })
        .collect()
}

/// Asserts devstats and git agree on `range` of the repository at `dir`.
#[track_caller]
fn assert_agrees(dir: &Path, range: &str) -> Vec<klab_devstats::CommitRecord> {
    let repo = walk::open(dir).unwrap();
    let sel = Selection {
        range: Some(range.to_owned()),
        ..Selection::default()
    };
    let ids = walk::commits(&repo, &sel).unwrap();
    // The same commits as git rev-list, in the same order.
    let mut args = vec!["rev-list", "--no-merges"];
    args.extend(range.split_whitespace());
    let listed: Vec<String> = git(dir, &args, &[]).lines().map(str::to_owned).collect();
    let ours: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    assert_eq!(ours, listed, "commits vs git rev-list --no-merges {range}");
    let (records, _) = walk::analyse(&repo, &ids, 2, true, &NoProgress).unwrap();
    let mut args = vec!["rev-list", "--no-merges", "--count"];
    args.extend(range.split_whitespace());
    let count: usize = git(dir, &args, &[]).trim().parse().unwrap();
    assert_eq!(
        records.len(),
        count,
        "changesets vs git rev-list --no-merges --count"
    );

    let mut ours: BTreeMap<String, u64> = BTreeMap::new();
    for r in &records {
        *ours.entry(r.author.name.clone()).or_default() += 1;
    }
    assert_eq!(
        ours,
        git_shortlog(dir, range),
        "per-author counts vs git shortlog -sn"
    );

    let numstat = git_numstat(dir, range);
    assert_eq!(numstat.len(), records.len());
    for r in &records {
        let mut mine: Vec<(u64, u64)> = r.files.iter().map(|f| (f.added, f.removed)).collect();
        mine.sort_unstable();
        assert_eq!(
            Some(&mine),
            numstat.get(&r.id.to_string()),
            "numstat of {} ({:?})",
            r.id,
            r.files
                .iter()
                .map(|f| String::from_utf8_lossy(&f.path).into_owned())
                .collect::<Vec<_>>()
        );
    }
    records
}

/// Builds the hand-made repository; returns its directory.
fn build_cli_repo(root: &Path) -> std::path::PathBuf {
    let dir = root.join("cli");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"], &[]);
    let mut tick = 0u32;
    let mut commit = |dir: &Path, who: (&str, &str), msg: &str| {
        tick += 1;
        let date = format!("2009-06-{:02}T12:00:00+0200", tick);
        git(dir, &["add", "-A"], &[]);
        git(
            dir,
            &["commit", "-q", "--allow-empty", "-m", msg],
            &[
                ("GIT_AUTHOR_NAME", who.0),
                ("GIT_AUTHOR_EMAIL", who.1),
                ("GIT_AUTHOR_DATE", &date),
                ("GIT_COMMITTER_NAME", "Linus Torvalds"),
                ("GIT_COMMITTER_EMAIL", "torvalds@linux-foundation.org"),
                ("GIT_COMMITTER_DATE", &date),
            ],
        );
    };
    let w = |p: &str, data: &[u8]| {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    };
    let ingo = ("Ingo Molnar", "mingo@elte.hu");
    let peter = ("Peter Zijlstra", "a.p.zijlstra@chello.nl");
    let paul = ("Paul Mundt", "lethal@linux-sh.org");
    let lines = |tag: &str, n: usize| -> Vec<u8> {
        (0..n)
            .map(|i| format!("{tag} line {i}\n"))
            .collect::<String>()
            .into_bytes()
    };

    w(
        ".mailmap",
        b"Peter Zijlstra <a.p.zijlstra@chello.nl> <peterz@infradead.org>\n",
    );
    w("kernel/sched.c", &lines("sched", 120));
    w("kernel/fork.c", &lines("fork", 80));
    w("arch/sh/setup.c", &lines("sh", 60));
    commit(
        &dir,
        ingo,
        "Initial import\n\nSigned-off-by: Ingo Molnar <mingo@elte.hu>\n",
    );

    let mut s = lines("sched", 120);
    s.extend(lines("perf", 30));
    w("kernel/sched.c", &s);
    commit(
        &dir,
        peter,
        "perf: add counters\n\nSigned-off-by: Peter Zijlstra <a.p.zijlstra@chello.nl>\nSigned-off-by: Ingo Molnar <mingo@elte.hu>\n",
    );

    // Peter under his other address: the mailmap folds it in.
    w("kernel/fork.c", &lines("fork2", 80));
    commit(
        &dir,
        ("Peter Zijlstra", "peterz@infradead.org"),
        "fork: rewrite\n\nSigned-off-by: Peter Zijlstra <peterz@infradead.org>\nSigned-off-by: ingo <broken\n",
    );

    // Exact rename to a new directory, inexact rename, binary file, symlink.
    std::fs::create_dir_all(dir.join("arch/sh/kernel")).unwrap();
    git(
        &dir,
        &["mv", "arch/sh/setup.c", "arch/sh/kernel/setup.c"],
        &[],
    );
    let mut f = lines("fork2", 80);
    f.extend(lines("extra", 8));
    std::fs::remove_file(dir.join("kernel/fork.c")).unwrap();
    w("kernel/process.c", &f);
    w("firmware/fw.bin", b"\x7fELF\0\0\x01\x02binary\n");
    std::os::unix::fs::symlink("kernel/sched.c", dir.join("sched-link.c")).unwrap();
    commit(
        &dir,
        paul,
        "sh: move setup\n\nSigned-off-by: Paul Mundt <lethal@linux-sh.org>\n",
    );

    // A topic branch merged with --no-ff.
    git(&dir, &["checkout", "-q", "-b", "topic"], &[]);
    w(
        "kernel/sched.c",
        &[lines("sched", 100), lines("cfs", 40)].concat(),
    );
    commit(
        &dir,
        peter,
        "sched: cfs\n\nSigned-off-by: Peter Zijlstra <a.p.zijlstra@chello.nl>\n",
    );
    w("firmware/fw.bin", b"\x7fELF\0\0\x01\x03binary2\n");
    commit(
        &dir,
        paul,
        "firmware update\n\nSigned-off-by: Paul Mundt <lethal@linux-sh.org>\nSigned-off-by: Ingo Molnar <mingo@elte.hu>\n",
    );
    git(&dir, &["checkout", "-q", "main"], &[]);
    w("kernel/fork.txt", b"no newline at end");
    commit(
        &dir,
        ingo,
        "docs\n\nSigned-off-by: Ingo Molnar <mingo@elte.hu>\n",
    );
    git(
        &dir,
        &[
            "merge",
            "-q",
            "--no-ff",
            "-m",
            "Merge branch 'topic'",
            "topic",
        ],
        &[
            ("GIT_AUTHOR_NAME", "Ingo Molnar"),
            ("GIT_AUTHOR_EMAIL", "mingo@elte.hu"),
            ("GIT_AUTHOR_DATE", "2009-06-20T12:00:00+0200"),
            ("GIT_COMMITTER_NAME", "Ingo Molnar"),
            ("GIT_COMMITTER_EMAIL", "mingo@elte.hu"),
            ("GIT_COMMITTER_DATE", "2009-06-20T12:00:00+0200"),
        ],
    );

    // CRLF, a final newline added, a mode change, a file turned into a
    // symlink, a same-basename move with edits, empty files renamed.
    w("kernel/fork.txt", b"no newline at end\r\nsecond\r\n");
    w("kernel/empty-a", b"");
    commit(
        &dir,
        ingo,
        "crlf\n\nSigned-off-by: Ingo Molnar <mingo@elte.hu>\n",
    );
    std::fs::set_permissions(
        dir.join("kernel/sched.c"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::remove_file(dir.join("kernel/process.c")).unwrap();
    std::os::unix::fs::symlink("sched.c", dir.join("kernel/process.c")).unwrap();
    // 48 of 60 lines kept: ≥ 75%, so the same-basename pass pairs them.
    let mut moved = lines("sh", 48);
    moved.extend(lines("new-sh", 3));
    std::fs::remove_file(dir.join("arch/sh/kernel/setup.c")).unwrap();
    w("arch/sh/boot/setup.c", &moved);
    git(&dir, &["mv", "kernel/empty-a", "kernel/empty-b"], &[]);
    commit(
        &dir,
        paul,
        "sh: boot\n\nSigned-off-by: Paul Mundt <lethal@linux-sh.org>\nSigned-off-by: Ingo Molnar <mingo@elte.hu>\n",
    );

    // A submodule entry (gitlink) added, then changed.
    let a = "1111111111111111111111111111111111111111";
    let b = "2222222222222222222222222222222222222222";
    // (Committed without `add -A`, which would drop the path missing from
    // the work tree.)
    let raw_commit = |who: (&str, &str), date: &str, msg: &str| {
        git(
            &dir,
            &["commit", "-q", "-m", msg],
            &[
                ("GIT_AUTHOR_NAME", who.0),
                ("GIT_AUTHOR_EMAIL", who.1),
                ("GIT_AUTHOR_DATE", date),
                ("GIT_COMMITTER_NAME", who.0),
                ("GIT_COMMITTER_EMAIL", who.1),
                ("GIT_COMMITTER_DATE", date),
            ],
        );
    };
    git(
        &dir,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{a},lib/sub"),
        ],
        &[],
    );
    raw_commit(
        ingo,
        "2009-06-27T12:00:00+0200",
        "add submodule\n\nSigned-off-by: Ingo Molnar <mingo@elte.hu>",
    );
    git(
        &dir,
        &[
            "update-index",
            "--cacheinfo",
            &format!("160000,{b},lib/sub"),
        ],
        &[],
    );
    raw_commit(
        peter,
        "2009-06-28T12:00:00+0200",
        "bump submodule\n\nSigned-off-by: Peter Zijlstra <a.p.zijlstra@chello.nl>",
    );
    dir
}

#[test]
fn cli_built_repository_agrees_with_git() {
    if !git_available() {
        println!("skipped: no git command (install git to run this test)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = build_cli_repo(tmp.path());
    let records = assert_agrees(&dir, "HEAD");
    // 12 commits, one of them a merge.
    assert_eq!(records.len(), 11);

    // The hand-counted story of the first commits.
    let by_subject = |s: &str| {
        records
            .iter()
            .find(|r| {
                let repo = walk::open(&dir).unwrap();
                let c = repo
                    .find_commit(gix::ObjectId::from_hex(r.id.as_bytes()).unwrap())
                    .unwrap();
                c.message_raw().unwrap().to_string().starts_with(s)
            })
            .unwrap()
            .clone()
    };
    // 120 + 80 + 60 content lines and one .mailmap line.
    let init = by_subject("Initial import");
    assert_eq!((init.added, init.removed), (261, 0));
    let perf = by_subject("perf: add counters");
    assert_eq!((perf.added, perf.removed), (30, 0));
    // Exact rename counts 0; the inexact one (80 → 88 lines) +8; binary 0;
    // the symlink's target is one line.
    let sh = by_subject("sh: move setup");
    assert_eq!((sh.added, sh.removed), (8 + 1, 0));
    assert_eq!(sh.files.iter().filter(|f| f.old_path.is_some()).count(), 2);
    assert!(sh.files.iter().any(|f| f.binary));

    // Stats: the mailmap folds Peter's second address; the malformed SOB
    // is counted as malformed, not as a signoff.
    let map = EmployerMap::parse("elte.hu Red Hat\nlinux-sh.org Renesas Technology\n").unwrap();
    let stats = Stats::from_records(&records, &map);
    stats.assert_invariants();
    let s = stats.summary();
    assert_eq!(s.developers, 3);
    assert_eq!(s.malformed_tags, 1);
    assert_eq!(stats.developers["Peter Zijlstra"].changesets, 4);
    assert_eq!(stats.developers["Ingo Molnar"].changesets, 4);
    assert_eq!(stats.developers["Paul Mundt"].changesets, 3);
    // Non-author signoffs: Ingo on perf, firmware, sh: boot.
    assert_eq!(s.non_author_signoffs, 3);
    assert_eq!(stats.employers["Red Hat"].signoffs, 3);
    assert_eq!(stats.employers["(Unknown)"].changesets, 4);
}

#[test]
fn range_and_date_limits_agree_with_git() {
    if !git_available() {
        println!("skipped: no git command");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = build_cli_repo(tmp.path());
    for range in [
        "HEAD~3..HEAD",
        "HEAD~4^2",
        "topic...main",
        "HEAD^!",
        "HEAD~4^@",
        "HEAD~4^!",
        "^HEAD~2 HEAD",
    ] {
        assert_agrees(&dir, range);
    }
    // --since/--until on committer dates.
    let repo = walk::open(&dir).unwrap();
    let since = 1_245_405_600; // 2009-06-19T10:00:00Z
    let sel = Selection {
        range: None,
        since: Some(since),
        until: None,
    };
    let ours = walk::commits(&repo, &sel).unwrap().len();
    let theirs: usize = git(
        &dir,
        &[
            "rev-list",
            "--no-merges",
            "--count",
            &format!("--since=@{since}"),
            "HEAD",
        ],
        &[],
    )
    .trim()
    .parse()
    .unwrap();
    assert_eq!(ours, theirs);
    let sel = Selection {
        range: None,
        since: None,
        until: Some(since),
    };
    let ours = walk::commits(&repo, &sel).unwrap().len();
    let theirs: usize = git(
        &dir,
        &[
            "rev-list",
            "--no-merges",
            "--count",
            &format!("--until=@{since}"),
            "HEAD",
        ],
        &[],
    )
    .trim()
    .parse()
    .unwrap();
    assert_eq!(ours, theirs);
}

#[test]
fn synthetic_history_agrees_with_git_and_with_its_ground_truth() {
    if !git_available() {
        println!("skipped: no git command");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("synth.git");
    let cfg = SynthConfig {
        commits: 400,
        developers: 60,
        employers: 12,
        subsystems: 8,
        ..SynthConfig::default()
    };
    let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
    let repo = synth::generate(&dir, &cfg, &mut rng).unwrap();
    repo.truth.assert_invariants();
    let records = assert_agrees(&dir, "main");
    let t = &repo.truth;
    assert_eq!(records.len() as u64, t.changesets);
    assert!(t.merges > 0 && t.renames > 0 && t.binary_changes > 0 && t.malformed_tags > 0);
    let map = EmployerMap::parse(&repo.employer_map).unwrap();
    let stats = Stats::from_records(&records, &map);
    stats.assert_invariants();
    let s = stats.summary();
    assert_eq!((s.added, s.removed), (t.added, t.removed));
    assert_eq!(s.malformed_tags, t.malformed_tags);
    for (name, &n) in &t.per_author {
        let d = &stats.developers[name];
        assert_eq!(d.changesets, n, "{name}");
        assert_eq!(d.added, t.added_per_author[name], "{name}");
        assert_eq!(d.removed, t.removed_per_author[name], "{name}");
    }
}

#[test]
fn synthetic_history_is_byte_identical_per_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SynthConfig {
        commits: 60,
        developers: 20,
        ..SynthConfig::default()
    };
    let head = |name: &str, seed: u64| {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        synth::generate(&tmp.path().join(name), &cfg, &mut rng)
            .unwrap()
            .truth
            .head
            .unwrap()
    };
    assert_eq!(head("a", 1), head("b", 1));
    assert_ne!(head("c", 1), head("d", 2));
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let e = walk::open(tmp.path()).unwrap_err();
    assert!(e.to_string().contains("not a git repository"), "{e}");
    let cfg = SynthConfig {
        commits: 5,
        developers: 3,
        ..SynthConfig::default()
    };
    let dir = tmp.path().join("r.git");
    synth::generate(&dir, &cfg, &mut rand_pcg::Pcg64::seed_from_u64(1)).unwrap();
    let repo = walk::open(&dir).unwrap();
    let sel = Selection {
        range: Some("v9.9..main".into()),
        ..Selection::default()
    };
    let e = walk::commits(&repo, &sel).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("unknown revision or range \"v9.9..main\""),
        "{e}"
    );
}

/// Packs `git rev-list --objects REV` of the repository at `dir` with
/// `git pack-objects` (`extra` flags), then drops the loose copies.
fn pack_objects(dir: &Path, rev: &str, extra: &[&str]) {
    use std::io::Write as _;
    let list = git(dir, &["rev-list", "--objects", rev], &[]);
    let mut child = Command::new("git")
        .current_dir(dir)
        .args(["pack-objects", "-q", "--depth=50", "--window=50"])
        .args(extra)
        .arg("objects/pack/pack")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("git pack-objects runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    git(dir, &["prune-packed"], &[]);
}

/// The pack reader (`objects.rs`: delta chains resolved with git's
/// delta-base cache) on packed histories with deep chains: offset deltas
/// with everything packed, and reference deltas with the newest 40 commits
/// left loose. devstats still agrees with git, and every object reads back
/// as gix reads it, with a 64 KiB cache so that entries are evicted and
/// chains rebuilt.
#[test]
fn packed_histories_agree_with_git() {
    use klab_devstats::objects::{Objects, Packs};
    if !git_available() {
        println!("skipped: no git command");
        return;
    }
    let cfg = SynthConfig {
        commits: 200,
        developers: 20,
        employers: 5,
        subsystems: 4,
        ..SynthConfig::default()
    };
    for (name, rev, extra) in [
        ("ofs", "main", &["--delta-base-offset"][..]),
        ("ref", "main~40", &[][..]),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("synth.git");
        let mut rng = rand_pcg::Pcg64::seed_from_u64(11);
        synth::generate(&dir, &cfg, &mut rng).unwrap();
        pack_objects(&dir, rev, extra);
        let packs_dir = dir.join("objects/pack");
        let idx: Vec<_> = std::fs::read_dir(&packs_dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "idx"))
            .collect();
        assert_eq!(idx.len(), 1, "{name}: one pack");
        let verify = git(&dir, &["verify-pack", "-v", idx[0].to_str().unwrap()], &[]);
        assert!(
            verify.contains("chain length = 5"),
            "{name}: deltified objects in the pack"
        );
        let loose = std::fs::read_dir(dir.join("objects"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().len() == 2)
            .count();
        assert_eq!(loose > 0, name == "ref", "{name}: loose objects");

        assert_agrees(&dir, "main");

        let repo = walk::open(&dir).unwrap();
        let packs = Packs::open(&repo);
        assert_eq!(packs.len(), 1);
        let objects = Objects::new(&packs, &repo, 64 << 10);
        let list = git(&dir, &["rev-list", "--objects", "main"], &[]);
        let mut n = 0;
        for line in list.lines() {
            let id = gix::ObjectId::from_hex(&line.as_bytes()[..40]).unwrap();
            let (kind, data) = objects.find(&id).unwrap();
            let theirs = repo.find_object(id).unwrap();
            assert_eq!(kind, theirs.kind, "{name}: kind of {id}");
            assert!(*data == theirs.data, "{name}: bytes of {id}");
            n += 1;
        }
        assert!(n > 500, "{name}: {n} objects read");
        objects.assert_invariants();
    }
}
