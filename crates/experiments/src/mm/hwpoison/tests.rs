use super::*;
use klab_lab::experiment::Inputs;

fn run(errors: u64, panicked: bool, completed: u64) -> RunOut {
    RunOut {
        errors,
        panicked_at: panicked.then_some(10),
        completed,
        ..RunOut::default()
    }
}

fn data(judged: &str, runs: Vec<(&str, f64, RunOut, RunOut)>) -> Data {
    let mut sweep = SweepConfig::new(true);
    sweep.judged = judged.into();
    sweep.rates = vec![100.0, 2000.0];
    Data {
        scenario: None,
        kinds: Vec::new(),
        sweep,
        runs: runs
            .into_iter()
            .enumerate()
            .map(|(i, (mix, rate, hw, off))| MixRun {
                mix: mix.into(),
                rate,
                seed: i as u64,
                hwpoison: hw,
                panic_always: off,
            })
            .collect(),
    }
}

#[test]
fn judge_holds_when_most_errors_are_survived_and_more_work_is_done() {
    // 20 errors, one fatal: 19 survived (95%); 2x and 4x the work.
    let d = data(
        "user-heavy",
        vec![
            ("user-heavy", 100.0, run(4, false, 1000), run(1, true, 500)),
            ("user-heavy", 2000.0, run(16, true, 800), run(1, true, 200)),
            ("kernel-heavy", 2000.0, run(3, true, 10), run(1, true, 5)),
        ],
    );
    let v = Hwpoison.judge(&d);
    assert_eq!(v.holds, Some(true), "{}", v.measured);
    assert!(
        v.measured.contains("19 of 20 errors (95.0%"),
        "{}",
        v.measured
    );
    assert!(v.measured.contains("2.00x"), "{}", v.measured);
}

#[test]
fn judge_fails_when_kernel_frames_kill_the_machine() {
    // 6 errors, three fatal: 50% survived.
    let d = data(
        "kernel-heavy",
        vec![
            ("kernel-heavy", 100.0, run(2, true, 900), run(1, true, 100)),
            ("kernel-heavy", 2000.0, run(4, true, 300), run(1, true, 50)),
            (
                "kernel-heavy",
                2000.0,
                run(0, true, 300),
                run(0, false, 300),
            ),
        ],
    );
    let v = Hwpoison.judge(&d);
    assert_eq!(v.holds, Some(false), "{}", v.measured);
    assert!(v.measured.contains("4 of 6 errors"), "{}", v.measured);
    // Survived but no more work than a machine that panics: also false.
    let d = data(
        "user-heavy",
        vec![("user-heavy", 100.0, run(2, false, 100), run(1, true, 100))],
    );
    assert_eq!(Hwpoison.judge(&d).holds, Some(false));
}

#[test]
fn judge_is_null_without_errors() {
    let d = data(
        "user-heavy",
        vec![("user-heavy", 100.0, run(0, false, 100), run(0, false, 100))],
    );
    assert_eq!(Hwpoison.judge(&d).holds, None);
}

#[test]
fn every_kind_of_page_gives_its_row() {
    let rows = kinds::every_kind();
    let row = |name: &str| rows.iter().find(|x| x.page == name).unwrap().clone();
    assert_eq!(
        row("dirty page cache").fsync.as_deref(),
        Some("EIO (errno 5)")
    );
    assert_eq!(
        row("dirty anonymous, late kill").next.as_deref(),
        Some("SIGBUS BUS_MCEERR_AR, task killed")
    );
    assert_eq!(row("dirty anonymous, early kill").killed, 1);
    assert_eq!(
        row("clean swap cache").next.as_deref(),
        Some("read from swap")
    );
    assert_eq!(row("page already poisoned").result, "Ignored");
    // Kernel frames: isolated or not, consumed when the kernel reads them.
    for (name, result) in [
        ("kernel text page", "Ignored"),
        ("slab page holding radix-tree nodes", "Delayed"),
        ("page-table page", "Failed"),
    ] {
        let r = row(name);
        assert_eq!(
            (r.result.as_str(), r.next.as_deref()),
            (result, Some("machine down")),
            "{name}"
        );
    }
    assert_eq!(
        row("reserved kernel page (firmware, boot data)").result,
        "Ignored"
    );
    // Mapped file pages.
    let clean = row("mapped clean file page");
    assert_eq!(
        (clean.unmapped, clean.killed, clean.next.as_deref()),
        (0, 0, Some("read from disk"))
    );
    let late = row("mapped dirty file page, late kill");
    assert_eq!(
        (late.unmapped, late.killed, late.next.as_deref()),
        (1, 0, Some("SIGBUS BUS_MCEERR_AR, task killed"))
    );
    let early = row("mapped dirty file page, early kill");
    assert_eq!(
        (early.unmapped, early.killed, early.next.as_deref()),
        (1, 1, Some("task already dead"))
    );
}

fn one_mix(name: &str) -> SweepConfig {
    let mut c = SweepConfig::new(true);
    c.mixes.retain(|m| m.name == name);
    c.judged = name.into();
    c
}

/// The configuration of "When the claim fails": the kernel-heavy mix,
/// measured and judged.
#[test]
fn a_kernel_heavy_machine_does_not_survive() {
    let inputs = Inputs::default();
    let ctx = Ctx::new(1, true, &inputs);
    let d = Hwpoison
        .measure_with(&ctx, one_mix("kernel-heavy"))
        .unwrap();
    let v = Hwpoison.judge(&d);
    assert_eq!(v.holds, Some(false), "{}", v.measured);
    assert!(
        d.runs.iter().any(|r| r
            .hwpoison
            .cause
            .as_deref()
            .is_some_and(|c| c.contains("consumed"))),
        "some run died of a consumed kernel frame"
    );
    let d = Hwpoison.measure_with(&ctx, one_mix("user-heavy")).unwrap();
    let v = Hwpoison.judge(&d);
    assert_eq!(v.holds, Some(true), "{}", v.measured);
}
