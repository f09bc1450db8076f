//! `sysfs-active`: the USB mouse of seed 003 ("Toward a safer sysfs"): a
//! sysfs file held open while the device goes away, with and without
//! active references, in the model's sysfs (`klab_model::fs::sysfs`, built
//! on `klab_revocable`).
//!
//! Part 1 is the page's story, tick by tick: a process opens the mouse's
//! `resolution` file at tick 10 and reads it every 10 ticks; a read is in
//! its `show()` (ticks 20..25) when the mouse is unplugged at tick 22;
//! `rmmod` of the driver is tried at tick 500; the file is closed at tick
//! 1000. Part 2 replays one seeded workload (devices unplugged at random
//! times while processes open, read and close their files) under each
//! lifetime policy. Both measure what the page says changed: whether the
//! driver is still called for a gone device, and how long its memory
//! stays allocated after the device is gone (bytes held x ticks).

use klab_model::clock::Tick;
use klab_model::fs::sysfs::{DriverStyle, FileId, Lifetime, OpId, Sysfs, SysfsError};
use rand::Rng;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The experiment.
pub struct SysfsActive;

/// The device structure (`struct usb_device` with its `struct device`).
const DEVICE_BYTES: u64 = 1536;
/// The driver's per-device data (input device, URBs, buffers).
const PRIV_BYTES: u64 = 4096;
const MOUSE: &str = "usb1/1-1";
const ATTRS: &[(&str, &str)] = &[("resolution", "800"), ("buttons", "3")];

const POLICIES: [(Lifetime, DriverStyle, &str); 4] = [
    (
        Lifetime::ActiveRefs,
        DriverStyle::Careful,
        "active references, careful driver",
    ),
    (
        Lifetime::ActiveRefs,
        DriverStyle::Careless,
        "active references, careless driver",
    ),
    (
        Lifetime::OpenFilePins,
        DriverStyle::Careful,
        "open file pins, careful driver",
    ),
    (
        Lifetime::OpenFilePins,
        DriverStyle::Careless,
        "open file pins, careless driver",
    ),
];

/// What the story measured under one policy.
#[derive(serde::Serialize, serde::Deserialize)]
struct Story {
    unplug_done: u64,
    reads_after: u64,
    enodev: u64,
    stale: u64,
    uaf: u64,
    rmmod_ok: bool,
    freed_at: u64,
    byte_ticks: u64,
    held: Vec<[f64; 2]>,
}

/// Reports ticks `0..=last` as busy at `busy` (sorted, distinct) and idle
/// between.
fn spans(span: &mut klab_lab::hibernate::Span, busy: &[u64]) {
    let mut next = 0;
    for &t in busy {
        if t > next {
            span.idle(t - next);
        }
        span.busy(1);
        next = t + 1;
    }
}

fn model_err(e: SysfsError) -> ExperimentError {
    ExperimentError::Host(format!("model sysfs: {e}"))
}

fn story(l: Lifetime, s: DriverStyle) -> Result<Story, ExperimentError> {
    const UNPLUG: u64 = 22;
    const CLOSE: u64 = 1000;
    let mut fs = Sysfs::new(l, s);
    let m = fs.add_device(MOUSE, ATTRS, DEVICE_BYTES, PRIV_BYTES);
    let f = fs
        .open(&format!("/sys/devices/{MOUSE}/resolution"))
        .map_err(model_err)?;
    fs.read(f, Tick(10)).map_err(model_err)?;
    let op = fs.begin_read(f).map_err(model_err)?;
    let done_now = fs.unplug(m, Tick(UNPLUG)).map_err(model_err)?;
    fs.end_op(op, Tick(25)).map_err(model_err)?;
    let before = fs.stats();
    let mut reads_after = 0;
    let mut rmmod_ok = true;
    for t in (30..CLOSE).step_by(10) {
        if t == 500 {
            rmmod_ok = fs.rmmod().is_ok();
        }
        reads_after += 1;
        match fs.read(f, Tick(t)) {
            Ok(_) | Err(SysfsError::NoDevice) => {}
            Err(e) => return Err(model_err(e)),
        }
    }
    fs.close(f, Tick(CLOSE)).map_err(model_err)?;
    fs.assert_invariants();
    let after = fs.stats();
    let life = fs.lifecycles()[&m];
    let freed_at = life.freed_at.map_or(u64::MAX, |t| t.0);
    let byte_ticks = (UNPLUG..CLOSE + 100).map(|t| fs.bytes_held(Tick(t))).sum();
    let held = (0..=110)
        .map(|i| {
            let t = i * 10;
            [t as f64, fs.bytes_held(Tick(t)) as f64]
        })
        .collect();
    Ok(Story {
        unplug_done: if done_now { UNPLUG } else { freed_at },
        reads_after,
        enodev: after.enodev - before.enodev,
        stale: after.stale - before.stale,
        uaf: after.use_after_free - before.use_after_free,
        rmmod_ok,
        freed_at,
        byte_ticks,
        held,
    })
}

/// One event of the random workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ev {
    Open {
        proc_: usize,
        dev: usize,
        attr: usize,
    },
    Read {
        proc_: usize,
    },
    EndRead {
        proc_: usize,
    },
    Close {
        proc_: usize,
    },
    Unplug {
        dev: usize,
    },
    Rmmod,
}

/// The seeded workload: `(tick, event)` in time order (ties in generation
/// order).
fn workload(ctx: &Ctx<'_>, devices: usize, procs: usize, horizon: u64) -> Vec<(u64, Ev)> {
    let mut rng = ctx.rng(3);
    let mut evs: Vec<(u64, usize, Ev)> = Vec::new();
    let push = |t: u64, e: Ev, evs: &mut Vec<(u64, usize, Ev)>| {
        let seq = evs.len();
        evs.push((t, seq, e));
    };
    for dev in 0..devices {
        let t = rng.random_range(horizon / 10..horizon * 9 / 10);
        push(t, Ev::Unplug { dev }, &mut evs);
    }
    for proc_ in 0..procs {
        let dev = rng.random_range(0..devices);
        let attr = rng.random_range(0..ATTRS.len());
        let open = rng.random_range(0..horizon * 8 / 10);
        let hold = rng.random_range(100..horizon / 2);
        let period = rng.random_range(20..200u64);
        let show = rng.random_range(1..=5u64);
        push(open, Ev::Open { proc_, dev, attr }, &mut evs);
        let mut t = open + period;
        while t + show < open + hold {
            push(t, Ev::Read { proc_ }, &mut evs);
            push(t + show, Ev::EndRead { proc_ }, &mut evs);
            t += period;
        }
        push(open + hold, Ev::Close { proc_ }, &mut evs);
    }
    push(horizon * 9 / 10, Ev::Rmmod, &mut evs);
    evs.sort_by_key(|e| (e.0, e.1));
    evs.into_iter().map(|(t, _, e)| (t, e)).collect()
}

/// What the workload measured under one policy.
#[derive(serde::Serialize, serde::Deserialize)]
struct Replay {
    opens_refused: u64,
    ok: u64,
    enodev: u64,
    stale: u64,
    uaf: u64,
    rmmod_ok: bool,
    mean_free_delay: f64,
    max_free_delay: u64,
    byte_ticks: u64,
    held: Vec<[f64; 2]>,
}

fn replay(
    l: Lifetime,
    s: DriverStyle,
    devices: usize,
    events: &[(u64, Ev)],
) -> Result<Replay, ExperimentError> {
    let mut fs = Sysfs::new(l, s);
    let ids: Vec<_> = (0..devices)
        .map(|d| {
            fs.add_device(
                &format!("usb{}/{}-1", d + 1, d + 1),
                ATTRS,
                DEVICE_BYTES,
                PRIV_BYTES,
            )
        })
        .collect();
    let mut files: Vec<Option<FileId>> = Vec::new();
    let mut ops: Vec<Option<OpId>> = Vec::new();
    let mut opens_refused = 0;
    let mut rmmod_ok = true;
    let mut end = 0;
    for &(t, e) in events {
        end = t;
        let now = Tick(t);
        match e {
            Ev::Open { proc_, dev, attr } => {
                if files.len() <= proc_ {
                    files.resize(proc_ + 1, None);
                    ops.resize(proc_ + 1, None);
                }
                let name = fs.name(ids[dev]).unwrap_or_default();
                let dir = ids
                    .get(dev)
                    .map(|_| format!("/sys/devices/usb{}/{}/{}", dev + 1, name, ATTRS[attr].0));
                match dir.map(|p| fs.open(&p)) {
                    Some(Ok(f)) => files[proc_] = Some(f),
                    _ => opens_refused += 1,
                }
            }
            Ev::Read { proc_ } => {
                if let Some(Some(f)) = files.get(proc_) {
                    match fs.begin_read(*f) {
                        Ok(op) => ops[proc_] = Some(op),
                        Err(SysfsError::NoDevice) => {}
                        Err(e) => return Err(model_err(e)),
                    }
                }
            }
            Ev::EndRead { proc_ } => {
                if let Some(op) = ops.get_mut(proc_).and_then(Option::take) {
                    fs.end_op(op, now).map_err(model_err)?;
                }
            }
            Ev::Close { proc_ } => {
                if let Some(f) = files.get_mut(proc_).and_then(Option::take) {
                    fs.close(f, now).map_err(model_err)?;
                }
            }
            Ev::Unplug { dev } => {
                fs.unplug(ids[dev], now).map_err(model_err)?;
            }
            Ev::Rmmod => rmmod_ok = fs.rmmod().is_ok(),
        }
    }
    fs.assert_invariants();
    let st = fs.stats();
    let mut delays = Vec::new();
    let mut byte_ticks = 0;
    for life in fs.lifecycles().values() {
        if let (Some(u), Some(f)) = (life.unplugged_at, life.freed_at) {
            delays.push(f.0 - u.0);
        }
        byte_ticks += life.byte_ticks_after_unplug(Tick(end));
    }
    // Bytes still allocated for devices already unplugged, over time.
    let lifes = fs.lifecycles();
    let step = (end / 100).max(1);
    let held = (0..=100)
        .map(|i| {
            let t = i * step;
            let b: u64 = lifes
                .values()
                .filter(|l| l.unplugged_at.is_some_and(|u| u.0 <= t))
                .map(|l| l.bytes_at(Tick(t)))
                .sum();
            [t as f64, b as f64]
        })
        .collect();
    Ok(Replay {
        opens_refused,
        ok: st.ok,
        enodev: st.enodev,
        stale: st.stale,
        uaf: st.use_after_free,
        rmmod_ok,
        mean_free_delay: if delays.is_empty() {
            0.0
        } else {
            delays.iter().sum::<u64>() as f64 / delays.len() as f64
        },
        max_free_delay: delays.iter().copied().max().unwrap_or(0),
        byte_ticks,
        held,
    })
}

impl SysfsActive {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "sysfs-active",
        seed_page: "003_1b710cf080fd5ed1.txt",
        claim: "With active references, a sysfs file held open across the removal of its device no \
         longer keeps the device alive: removal waits only for operations in flight, later \
         reads fail cleanly with ENODEV, and the driver's memory is freed at once; without \
         them the device's lifetime is tied to the open file.",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for SysfsActive {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let devices = ctx.size(64usize, 16);
        let procs = ctx.size(400usize, 80);
        let horizon = 20_000u64;
        r.config("device_bytes", DEVICE_BYTES)
            .config("driver_bytes", PRIV_BYTES)
            .config("workload_devices", devices)
            .config("workload_processes", procs)
            .config("workload_horizon_ticks", horizon);

        let mut t = Table::new(
            "The USB mouse: resolution file open from tick 10 to 1000, a read in show() at \
             ticks 20-25, unplugged at tick 22, rmmod at tick 500",
            &[
                "policy",
                "unplug returns at (tick)",
                "reads after unplug",
                "ENODEV",
                "stale (driver called for a gone device)",
                "use after free",
                "rmmod at tick 500",
                "driver memory freed at (tick)",
                "bytes x ticks held after unplug",
            ],
        );
        let mut series = Series::new(
            "The mouse's driver memory after unplug (tick 22)",
            Axis::linear("time", "ticks"),
            Axis::linear("bytes allocated", "bytes"),
        );
        let mut stories = Vec::new();
        for (l, s, name) in POLICIES {
            let st = ctx.once(
                "sysfs-active: the mouse story",
                klab_lab::hibernate::SYSFS_TICK_NS,
                |span| {
                    let st = story(l, s)?;
                    // Ticks with an operation (open, reads every 10 ticks, the
                    // unplug, rmmod, close) are busy; the rest idle.
                    let mut busy: Vec<u64> = vec![10, 20, 22, 25, 500, 1000];
                    busy.extend((30..1000).step_by(10));
                    busy.sort_unstable();
                    busy.dedup();
                    spans(span, &busy);
                    Ok(st)
                },
            )?;
            t.row(cells![
                name,
                st.unplug_done,
                st.reads_after,
                st.enodev,
                st.stale,
                st.uaf,
                if st.rmmod_ok { "ok" } else { "EBUSY" },
                st.freed_at,
                st.byte_ticks
            ]);
            if s == DriverStyle::Careful || l == Lifetime::OpenFilePins {
                series.line(name, st.held.clone());
            }
            stories.push((l, s, st));
        }
        r.table(t);
        r.series(series);

        let events = workload(ctx, devices, procs, horizon);
        let mut w = Table::new(
            "Seeded workload: devices unplugged at random while processes open, read and close \
             their files",
            &[
                "policy",
                "opens refused (ENOENT)",
                "reads served",
                "ENODEV",
                "stale",
                "use after free",
                "rmmod late in the run",
                "unplug to free, mean (ticks)",
                "unplug to free, max (ticks)",
                "bytes x ticks held after unplug",
            ],
        );
        let mut ws = Series::new(
            "Memory of unplugged devices still allocated (seeded workload)",
            Axis::linear("time", "ticks"),
            Axis::linear("bytes", "bytes"),
        );
        ctx.progress.begin("sysfs-active", POLICIES.len() as u64);
        let mut replays = Vec::new();
        for (l, s, name) in POLICIES {
            let rp = ctx.once(
                "sysfs-active: one policy on the workload",
                klab_lab::hibernate::SYSFS_TICK_NS,
                |span| {
                    let rp = replay(l, s, devices, &events)?;
                    let mut busy: Vec<u64> = events.iter().map(|e| e.0).collect();
                    busy.dedup();
                    spans(span, &busy);
                    Ok(rp)
                },
            )?;
            w.row(cells![
                name,
                rp.opens_refused,
                rp.ok,
                rp.enodev,
                rp.stale,
                rp.uaf,
                if rp.rmmod_ok { "ok" } else { "EBUSY" },
                rp.mean_free_delay,
                rp.max_free_delay,
                rp.byte_ticks
            ]);
            if s == DriverStyle::Careful {
                ws.line(name, rp.held.clone());
            }
            replays.push((l, s, rp));
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        r.table(w);
        r.series(ws);

        let active = &stories[0].2;
        let pinned = &stories[2].2;
        let careless_pinned = &stories[3].2;
        let story_holds = active.enodev == active.reads_after
            && active.stale == 0
            && active.freed_at == 25
            && active.rmmod_ok
            && pinned.freed_at == 1000
            && pinned.stale == pinned.reads_after
            && !pinned.rmmod_ok
            && careless_pinned.uaf == careless_pinned.reads_after;
        let ra = &replays[0].2;
        let rp = &replays[2].2;
        let workload_holds =
            ra.stale == 0 && ra.uaf == 0 && rp.stale > 0 && ra.byte_ticks < rp.byte_ticks;
        r.verdict = Verdict {
            holds: Some(story_holds && workload_holds),
            measured: format!(
                "mouse: with active references unplug waited {} ticks for the read in flight, \
                 all {} later reads got ENODEV and the driver's {} bytes were freed at tick {}; \
                 with open-file pins all {} reads called the driver for a gone device ({} after \
                 free with a careless driver), rmmod got EBUSY and the memory lived until the \
                 close at tick {} ({} vs {} byte-ticks). Workload: {} vs {} byte-ticks held \
                 after unplug, max delay {} vs {} ticks",
                active.unplug_done - 22,
                active.reads_after,
                DEVICE_BYTES + PRIV_BYTES,
                active.freed_at,
                pinned.reads_after,
                careless_pinned.uaf,
                pinned.freed_at,
                active.byte_ticks,
                pinned.byte_ticks,
                ra.byte_ticks,
                rp.byte_ticks,
                ra.max_free_delay,
                rp.max_free_delay
            ),
            note: "One active reference per object covers all its attribute files (2.6.22 \
                   took the attribute's and its directory's); a show() takes 1-5 ticks; the \
                   careless driver frees its data in disconnect(), which active references \
                   make safe."
                .to_owned(),
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

    #[test]
    fn the_mouse_story_in_exact_numbers() {
        let a = story(Lifetime::ActiveRefs, DriverStyle::Careless).unwrap();
        // Unplug at 22 waits for the show() that ends at 25; 97 reads at
        // ticks 30..990 all get ENODEV; 5632 bytes held 3 ticks.
        assert_eq!((a.unplug_done, a.freed_at), (25, 25));
        assert_eq!((a.reads_after, a.enodev, a.stale, a.uaf), (97, 97, 0, 0));
        assert!(a.rmmod_ok);
        assert_eq!(a.byte_ticks, 5632 * 3);
        let p = story(Lifetime::OpenFilePins, DriverStyle::Careful).unwrap();
        assert_eq!((p.unplug_done, p.freed_at), (22, 1000));
        assert_eq!((p.enodev, p.stale, p.uaf), (0, 97, 0));
        assert!(!p.rmmod_ok);
        assert_eq!(p.byte_ticks, 5632 * (1000 - 22));
        let c = story(Lifetime::OpenFilePins, DriverStyle::Careless).unwrap();
        // The driver data went at disconnect (tick 22); the device struct
        // stays pinned until the close.
        assert_eq!(c.uaf, 97);
        assert_eq!(c.byte_ticks, 1536 * (1000 - 22));
    }

    #[test]
    fn the_verdict_holds_and_the_report_is_deterministic() {
        let inputs = Inputs::default();
        let a = SysfsActive.run(&Ctx::new(5, true, &inputs)).unwrap();
        assert_eq!(a.verdict.holds, Some(true), "{}", a.verdict.measured);
        let b = SysfsActive.run(&Ctx::new(5, true, &inputs)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.series.len(), 2);
        // In the workload a careless driver's data goes at disconnect, so
        // open-file pins hold less of it than with a careful driver, but
        // still more than active references (none).
        let w = &a.tables[1];
        let bt = |row: usize| match &w.rows[row][9] {
            klab_lab::report::Cell::UInt(v) => *v,
            other => panic!("{other:?}"),
        };
        assert_eq!(bt(0), 0);
        assert!(0 < bt(3) && bt(3) < bt(2), "{} {}", bt(3), bt(2));
    }
}
