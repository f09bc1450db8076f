use super::*;
use klab_lab::experiment::Inputs;

fn run(
    frames: u64,
    working_set: u64,
    reads: u64,
    direct: bool,
    rng: &mut klab_model::rng::Rng,
) -> LoopRun {
    let mut j = RunJob::new(frames, working_set, reads, direct, rng.clone());
    while j.step(&()) != Step::Done {}
    *rng = j.rng.clone();
    j.finish(&())
}

#[test]
fn small_working_sets_are_cached_twice_when_buffered_once_when_direct() {
    let mut rng = klab_model::rng::seeded(1, 1);
    let b = run(256, 64, 2000, false, &mut rng);
    assert_eq!((b.upper, b.lower, b.twice), (64, 64, 64));
    let d = run(256, 64, 2000, true, &mut rng);
    assert_eq!((d.upper, d.lower, d.twice), (64, 0, 0));
    assert_eq!(d.disk_reads, 64, "each page read from disk once");
    assert_eq!(b.disk_reads, 64);
}

fn host_run(
    direct_io_asked: bool,
    direct_io: bool,
    device: u64,
    backing: u64,
    twice: u64,
) -> HostRow {
    HostRow {
        working_set: 1024,
        run: HostRun {
            direct_io_asked,
            direct_io,
            reads: 2048,
            hits: 1024,
            device_cached: device,
            backing_cached: backing,
            twice,
            usage_bytes: 0,
            max_usage_bytes: 0,
            failcnt: 0,
            elapsed_ms: 1.0,
        },
    }
}

fn data(host: Result<Vec<HostRow>, String>) -> Data {
    Data {
        model: ModelData {
            frames: 64,
            reads: 10,
            fractions: vec![],
            runs: vec![],
        },
        host: host.map(|rows| HostData {
            cfg: HostConfig {
                working_sets: vec![1024, 4096],
                ..HostConfig::new(true)
            },
            rows,
            dio: Err("not timed".into()),
        }),
    }
}

#[test]
fn judge_holds_for_two_copies_buffered_and_one_direct() {
    let d = data(Ok(vec![
        host_run(false, false, 1024, 1024, 1020),
        host_run(true, true, 1024, 3, 3),
    ]));
    let v = LoopDio.judge(&d);
    assert_eq!(v.holds, Some(true), "{}", v.measured);
    assert!(
        v.measured.contains("1020 on both sides (100%"),
        "{}",
        v.measured
    );
}

#[test]
fn judge_fails_when_buffered_caches_once_or_direct_caches_twice() {
    // The "buffered" device read the image directly: one copy.
    let d = data(Ok(vec![
        host_run(false, true, 1024, 0, 0),
        host_run(true, true, 1024, 0, 0),
    ]));
    assert_eq!(LoopDio.judge(&d).holds, Some(false));
    // Direct I/O left the image cached (a tmpfs image, say).
    let d = data(Ok(vec![
        host_run(false, false, 1024, 1024, 1024),
        host_run(true, true, 1024, 1024, 1024),
    ]));
    assert_eq!(LoopDio.judge(&d).holds, Some(false));
}

#[test]
fn judge_is_null_without_host_rows_or_without_direct_io() {
    let v = LoopDio.judge(&data(Err("not root (euid 1000)".into())));
    assert_eq!(v.holds, None);
    assert!(v.note.contains("not root"), "{}", v.note);
    let d = data(Ok(vec![
        host_run(false, false, 1024, 1024, 1024),
        host_run(true, false, 1024, 1024, 1024),
    ]));
    assert_eq!(LoopDio.judge(&d).holds, None);
}

fn small_host() -> HostConfig {
    HostConfig {
        limit_bytes: 16 << 20,
        working_sets: vec![512],
        passes: 2,
        backing_o_direct: false,
        dio: (4, 8, 2),
    }
}

/// As root with a loop driver: the buffered device caches the image twice
/// and the direct one once, end to end; without, the verdict is null and
/// names the reason.
#[test]
fn the_host_measures_two_copies_buffered_one_direct() {
    let inputs = Inputs::default();
    let ctx = Ctx::new(1, true, &inputs);
    let d = LoopDio.measure_with(&ctx, &small_host()).unwrap();
    let v = LoopDio.judge(&d);
    match &d.host {
        Err(why) => {
            eprintln!("host rows skipped: {why}");
            assert_eq!(v.holds, None);
        }
        Ok(h) => {
            assert_eq!(v.holds, Some(true), "{}", v.measured);
            assert_eq!(h.rows.len(), 2);
            assert!(h.dio.is_ok(), "{:?}", h.dio);
        }
    }
}

/// The configuration of "When the claim fails": the image bound through an
/// O_DIRECT descriptor is read directly in both modes.
#[test]
fn an_image_opened_with_o_direct_is_never_cached_twice() {
    let inputs = Inputs::default();
    let ctx = Ctx::new(1, true, &inputs);
    let cfg = HostConfig {
        backing_o_direct: true,
        ..small_host()
    };
    let d = LoopDio.measure_with(&ctx, &cfg).unwrap();
    let Ok(h) = &d.host else {
        eprintln!("skipped: {:?}", d.host.err());
        return;
    };
    let v = LoopDio.judge(&d);
    assert_eq!(v.holds, Some(false), "{}", v.measured);
    let buffered = h.rows.iter().find(|r| !r.run.direct_io_asked).unwrap();
    assert_eq!(
        (buffered.run.direct_io, buffered.run.twice),
        (true, 0),
        "{buffered:?}"
    );
}
