use klab_archmerge::apply::{ArchCheck, Verification};
use klab_archmerge::plan::{Counts, PairReport};
use klab_lab::experiment::{Ctx, Experiment, Inputs};

use super::*;

fn pair(path: &str, lines: u64, common: u64) -> PairReport {
    PairReport {
        path: path.into(),
        out_32: format!("{path}_32"),
        out_64: format!("{path}_64"),
        lines_32: lines,
        lines_64: lines,
        common,
        only_32: lines - common,
        only_64: lines - common,
        hunks: 1,
        not_text: false,
    }
}

fn check(files: u64, matched: u64) -> ArchCheck {
    ArchCheck {
        files,
        bytes: files * 100,
        matched,
        failures: if matched == files {
            vec![]
        } else {
            vec!["x.c: other bytes".into()]
        },
    }
}

/// Ten files each; `alike` of four pairs of 100 lines share 80 lines, the
/// others 20.
fn data(matched_64: u64, alike: usize) -> Data {
    Data {
        source: Source::Synthetic {
            shared_per_dir: 1,
            lines_per_file: 100,
        },
        files: [10, 10],
        merged: 14,
        counts: Counts::default(),
        verification: Verification {
            arch: [check(10, 10), check(10, matched_64)],
            strays: vec![],
        },
        clashes: vec![],
        pairs: (0..4)
            .map(|i| pair(&format!("p{i}.c"), 100, if i < alike { 80 } else { 20 }))
            .collect(),
        mistake: None,
        build: BuildOutcome::Built(images(true)),
    }
}

fn img(units: u64, bytes: u64, digest: &str) -> build::Image {
    build::Image {
        units,
        bytes,
        digest: digest.into(),
    }
}

/// Images of 10 units each; x86_64's changed unless `same`.
fn images(same: bool) -> build::Build {
    build::Build {
        before: [img(10, 4000, "aa"), img(10, 5000, "bb")],
        after: [
            img(10, 4000, "aa"),
            if same {
                img(10, 5000, "bb")
            } else {
                img(10, 5008, "cc")
            },
        ],
        identical: [true, same],
    }
}

#[test]
fn judge_holds_when_every_file_matches_and_most_pairs_are_alike() {
    let v = Archmerge.judge(&data(10, 2));
    assert_eq!(v.holds, Some(true), "{}", v.measured);
    assert!(
        v.measured
            .starts_with("20 of 20 architecture files build from identical bytes"),
        "{}",
        v.measured
    );
    assert!(v.measured.contains("2 of them at least half alike"));
    assert!(
        v.measured
            .contains("the x86_64 image (10 units) is the same 5000 bytes after the merge"),
        "{}",
        v.measured
    );
}

#[test]
fn judge_fails_when_a_compiled_image_changes() {
    let mut d = data(10, 4);
    d.build = BuildOutcome::Built(images(false));
    let v = Archmerge.judge(&d);
    assert_eq!(v.holds, Some(false), "{}", v.measured);
    assert!(
        v.measured.contains("the x86_64 image DIFFERS after the merge (10 units, 5008 bytes, against 10 units, 5000 bytes before)"),
        "{}",
        v.measured
    );
}

#[test]
fn without_a_build_the_source_bytes_decide() {
    let mut d = data(10, 4);
    d.build = BuildOutcome::Skipped("gcc -m32 cannot build here: no crt".into());
    let v = Archmerge.judge(&d);
    assert_eq!(v.holds, Some(true), "{}", v.measured);
    assert!(
        v.measured
            .ends_with("not compiled: gcc -m32 cannot build here: no crt"),
        "{}",
        v.measured
    );
}

#[test]
fn judge_fails_on_a_changed_file_a_stray_or_unlike_pairs() {
    let v = Archmerge.judge(&data(9, 4));
    assert_eq!(v.holds, Some(false), "{}", v.measured);
    assert!(v.measured.starts_with("19 of 20"), "{}", v.measured);
    let mut d = data(10, 4);
    d.verification.strays.push("x86/leftover.c".into());
    assert_eq!(Archmerge.judge(&d).holds, Some(false));
    // One pair of four half alike: under HALF_ALIKE_MIN.
    let v = Archmerge.judge(&data(10, 1));
    assert_eq!(v.holds, Some(false), "{}", v.measured);
}

#[test]
fn judge_is_null_without_text_pairs() {
    let mut d = data(10, 0);
    d.pairs.clear();
    let v = Archmerge.judge(&d);
    assert_eq!(v.holds, None);
    assert!(v.note.contains("No _32/_64 text pair"), "{}", v.note);
}

#[test]
fn data_round_trips_through_json() {
    let d = data(9, 3);
    let back: Data = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
    assert_eq!(back, d);
}

/// The module doc's "When the claim fails": the same generated trees,
/// merged correctly and with a `_32` file where x86_64 reads its `_64`.
#[test]
fn a_32_bit_file_picked_for_x86_64_fails_the_claim() {
    let inputs = Inputs::default();
    let ctx = Ctx::new(1, true, &inputs);
    let good = measure_with(&ctx, None).unwrap();
    let v = Archmerge.judge(&good);
    assert_eq!(v.holds, Some(true), "{}", v.measured);
    let bad = measure_with(&ctx, Some(Mistake::ThirtyTwoForSixtyFour)).unwrap();
    let v = Archmerge.judge(&bad);
    assert_eq!(v.holds, Some(false), "{}", v.measured);
    let [k32, k64] = &bad.verification.arch;
    assert!(k32.failures.is_empty(), "{:?}", k32.failures);
    assert_eq!(k64.matched, k64.files - 1, "{:?}", k64.failures);
    assert!(
        k64.failures.iter().any(|f| f.contains(&bad.pairs[0].path)),
        "{:?} names {}",
        k64.failures,
        bad.pairs[0].path
    );
    match (&good.build, &bad.build) {
        (BuildOutcome::Built(g), BuildOutcome::Built(b)) => {
            assert_eq!(g.identical, [true, true], "{g:?}");
            assert!(g.before[0].units > 50, "{g:?}");
            assert_eq!(b.identical, [true, false], "{b:?}");
            assert_eq!(b.before, g.before, "the trees before are the same");
        }
        (BuildOutcome::Skipped(why), _) | (_, BuildOutcome::Skipped(why)) => {
            println!("skipped the compiled images: {why}");
        }
    }
}
