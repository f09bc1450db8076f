use klab_devstats::stats::{Hands, Ranked, Summary};
use klab_devstats::synth::{self, SynthConfig};
use klab_lab::experiment::{Ctx, Experiment, Inputs};
use rand::SeedableRng;

use super::*;

fn row(name: &str, count: u64, percent: f64) -> Ranked {
    Ranked {
        name: name.into(),
        count,
        percent,
    }
}

/// A history of 1000 changesets whose top two employers by signoffs gave
/// `sign2` percent of `signoffs` non-author signoffs, and whose top two
/// employers by changesets wrote 20% + 10%.
fn data(source: Source, sign2: f64, signoffs: u64) -> Data {
    Data {
        source,
        summary: Summary {
            changesets: 1000,
            developers: 100,
            employers_at_least: 10,
            added: 5000,
            removed: 1000,
            net_growth: 4000,
            changed: 5500,
            non_author_signoffs: signoffs,
            author_signoffs: 1000,
            other_tags: 0,
            malformed_tags: 0,
        },
        developers_by_changesets: vec![row("Ada", 100, 10.0), row("Bo", 50, 5.0)],
        developers_by_lines: vec![],
        employers_by_changesets: vec![
            row("a.com", 200, 20.0),
            row("b.com", 100, 10.0),
            row("c.com", 90, 9.0),
        ],
        employers_by_lines: vec![],
        signoffs_by_person: vec![],
        signoffs_by_employer: vec![],
        hands: vec![HandsRow {
            hands: Hands {
                n: 2,
                employers: vec!["a.com".into(), "c.com".into()],
                signoff_share: sign2,
                patch_share: sign2,
            },
            authored: 29.0,
        }],
        truth: None,
    }
}

fn repo() -> Source {
    Source::Repo {
        path: "/r".into(),
        range: None,
        employers: None,
    }
}

#[test]
fn judge_holds_when_signoffs_are_more_concentrated_than_changesets() {
    // 49.8% of signoffs against 30% of changesets: 1.66x >= 1.25x.
    let v = Devstats.judge(&data(repo(), 49.8, 500));
    assert_eq!(v.holds, Some(true), "{}", v.measured);
    assert!(v.measured.contains("1.66x"), "{}", v.measured);
}

#[test]
fn judge_fails_when_signoffs_are_spread_like_changesets() {
    // 36% against 30%: 1.20x < 1.25x.
    let v = Devstats.judge(&data(repo(), 36.0, 500));
    assert_eq!(v.holds, Some(false), "{}", v.measured);
    assert!(v.measured.contains("1.20x"), "{}", v.measured);
}

#[test]
fn judge_is_null_on_a_synthetic_history_or_too_few_signoffs() {
    let synthetic = Source::Synthetic {
        commits: 1000,
        developers: 100,
        employers: 10,
        head: String::new(),
    };
    let v = Devstats.judge(&data(synthetic, 49.8, 500));
    assert_eq!(v.holds, None);
    assert!(
        v.note
            .contains("synthetic history cannot measure the claim"),
        "{}",
        v.note
    );
    let v = Devstats.judge(&data(repo(), 49.8, SIGNOFFS_MIN - 1));
    assert_eq!(v.holds, None);
    assert!(v.note.contains("too few"), "{}", v.note);
}

#[test]
fn data_round_trips_through_json() {
    let d = data(repo(), 49.8, 500);
    let back: Data = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
}

/// Measures a synthetic history given as `--repo`.
fn run_on(concentrated_maintainers: bool) -> (Data, Verdict) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history.git");
    let cfg = SynthConfig {
        commits: 600,
        developers: 120,
        employers: 20,
        subsystems: 12,
        concentrated_maintainers,
        ..SynthConfig::default()
    };
    synth::generate(&dir, &cfg, &mut rand_pcg::Pcg64::seed_from_u64(1)).unwrap();
    let inputs = Inputs {
        repo: Some(dir),
        ..Inputs::default()
    };
    let d = Devstats.measure(&Ctx::new(1, true, &inputs)).unwrap();
    let v = Devstats.judge(&d);
    (d, v)
}

/// The module doc's "When the claim fails": the same generator, with and
/// without maintainers concentrated at two employers, given as a real
/// repository.
#[test]
fn a_history_without_concentrated_maintainers_fails_the_claim() {
    let (d, v) = run_on(true);
    assert!(matches!(d.source, Source::Repo { .. }));
    assert_eq!(d.summary.changesets, 600);
    assert_eq!(v.holds, Some(true), "concentrated: {}", v.measured);
    println!("concentrated: {}", v.measured);
    let (_, v) = run_on(false);
    println!("spread: {}", v.measured);
    assert_eq!(v.holds, Some(false), "spread: {}", v.measured);
}

/// The built-in run: every count equals the generator's, and the verdict
/// is null.
#[test]
fn the_built_in_history_checks_its_counts_and_does_not_judge() {
    let inputs = Inputs::default();
    let d = Devstats.measure(&Ctx::new(1, true, &inputs)).unwrap();
    let t = d.truth.as_ref().expect("a ground truth");
    assert!(t.exact(), "{:?}", t.rows);
    let v = Devstats.judge(&d);
    assert_eq!(v.holds, None);
    assert!(v.measured.contains("every count equals"), "{}", v.measured);
}

/// `--range` counts only the range's non-merge commits (as `git rev-list
/// --no-merges --count` does), and `--employers` names employers from the
/// map instead of address domains; both are named in the report.
#[test]
fn range_and_employer_map_select_what_is_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("history.git");
    let cfg = SynthConfig {
        commits: 300,
        developers: 60,
        employers: 8,
        subsystems: 6,
        ..SynthConfig::default()
    };
    let written = synth::generate(&dir, &cfg, &mut rand_pcg::Pcg64::seed_from_u64(3)).unwrap();
    let map_file = tmp.path().join("employers.map");
    std::fs::write(&map_file, &written.employer_map).unwrap();
    let range = "HEAD~120..HEAD";
    let git = std::process::Command::new("git")
        .arg("-C")
        .arg(&dir)
        .args(["rev-list", "--no-merges", "--count", range])
        .output()
        .expect("git is installed");
    assert!(
        git.status.success(),
        "{}",
        String::from_utf8_lossy(&git.stderr)
    );
    let expected: u64 = String::from_utf8_lossy(&git.stdout).trim().parse().unwrap();
    assert!(expected > 0 && expected < 300, "{expected}");

    let inputs = Inputs {
        repo: Some(dir.clone()),
        range: Some(range.into()),
        employers: Some(map_file.clone()),
        ..Inputs::default()
    };
    let d = Devstats.measure(&Ctx::new(1, true, &inputs)).unwrap();
    assert_eq!(d.summary.changesets, expected);
    match &d.source {
        Source::Repo {
            range: Some(r),
            employers: Some((path, n)),
            ..
        } => {
            assert_eq!(r, range);
            assert_eq!(path, &map_file.display().to_string());
            assert!(*n > 0);
        }
        other => panic!("{other:?}"),
    }
    // Without the map, employers are address domains (they hold a dot);
    // with it, the generator's employer names.
    let domains = Devstats
        .measure(&Ctx::new(
            1,
            true,
            &Inputs {
                repo: Some(dir),
                range: Some(range.into()),
                ..Inputs::default()
            },
        ))
        .unwrap();
    assert_eq!(domains.summary.changesets, expected);
    let names = |d: &Data| -> Vec<String> {
        d.employers_by_changesets
            .iter()
            .map(|r| r.name.clone())
            .collect()
    };
    assert_ne!(names(&d), names(&domains));
    let v = Devstats.judge(&d);
    assert!(v.note.contains("employers from the map"), "{}", v.note);
    let v = Devstats.judge(&domains);
    assert!(v.note.contains("no --employers map"), "{}", v.note);

    // A range the repository does not have is an error naming the input.
    let bad = Devstats.measure(&Ctx::new(
        1,
        true,
        &Inputs {
            repo: Some(tmp.path().join("history.git")),
            range: Some("no-such-tag..HEAD".into()),
            ..Inputs::default()
        },
    ));
    let e = bad.unwrap_err().to_string();
    assert!(
        e.contains("history.git") && e.contains("no-such-tag"),
        "{e}"
    );
}
