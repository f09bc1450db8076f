//! `klab bench slub --suite DIR`: the C programs of a public allocator
//! benchmark suite (mimalloc-bench's `out/bench`, built by the user with
//! the suite's own CMake; nothing of it is in klab), each run under glibc's
//! malloc, the system's mimalloc (`libmimalloc.so.2`, when installed) and
//! klab's SLUB through `LD_PRELOAD`, with the arguments of the suite's
//! `bench.sh` for 2 threads.
//!
//! measure → judge → report: [`measure`] runs every program under every
//! allocator, interleaved (one run of each program on each allocator per
//! round, rounds repeated), and keeps the median of the rounds of each
//! program's own figure (seconds, or the throughput it prints) and of its
//! peak RSS (`ru_maxrss`, through the same small runner as
//! [`crate::bench::slub_preload`], so klab's own resident set is not counted);
//! [`judge`] holds klab's rows against the targets; [`report`] lays out the
//! table and a plot of the ratios. [`measure_suite`] and [`report_suite`]
//! are the two ends `klab bench slub --suite DIR` calls
//! (`crate::mm::slub::SlubBench`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// How a program reports what it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Metric {
    /// Wall-clock seconds of the run (lower is better).
    Seconds,
    /// larson: `Throughput = N operations per second`.
    LarsonOps,
    /// xmalloc-test: `rtime: R, free/sec: F M`, the frees per second.
    XmallocFrees,
    /// glibc's bench-malloc-thread: `N iterations`.
    Iterations,
    /// rptest: `... N memory ops/CPU second`.
    RptestOps,
}

impl Metric {
    /// Whether a larger figure is better.
    pub(crate) fn higher_is_better(self) -> bool {
        self != Metric::Seconds
    }

    /// The unit shown in the table.
    fn unit(self) -> &'static str {
        match self {
            Metric::Seconds => "s",
            Metric::LarsonOps => "M ops/s",
            Metric::XmallocFrees => "M frees/s",
            Metric::Iterations => "M iterations",
            Metric::RptestOps => "M ops/CPU-s",
        }
    }
}

/// One program of the suite (stored in a run's data by its binary's name).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SuiteProgram {
    /// Row name.
    pub(crate) name: &'static str,
    /// The binary in DIR.
    pub(crate) bin: &'static str,
    /// Its arguments (bench.sh with `procs=2`), relative to DIR.
    pub(crate) args: &'static [&'static str],
    /// What it reports.
    pub(crate) metric: Metric,
    /// Held to mimalloc (within 15%) as well as to glibc.
    pub(crate) vs_mimalloc: bool,
}

/// The programs, as bench.sh runs them with 2 threads.
pub(crate) const SUITE: &[SuiteProgram] = &[
    SuiteProgram {
        name: "cfrac",
        bin: "cfrac",
        args: &["17545186520507317056371138836327483792789528"],
        metric: Metric::Seconds,
        vs_mimalloc: false,
    },
    SuiteProgram {
        name: "espresso",
        bin: "espresso",
        args: &["../../bench/espresso/largest.espresso"],
        metric: Metric::Seconds,
        vs_mimalloc: false,
    },
    SuiteProgram {
        name: "larson",
        bin: "larson",
        args: &["5", "8", "1000", "5000", "100", "4141", "2"],
        metric: Metric::LarsonOps,
        vs_mimalloc: true,
    },
    SuiteProgram {
        name: "larson-sized",
        bin: "larson-sized",
        args: &["5", "8", "1000", "5000", "100", "4141", "2"],
        metric: Metric::LarsonOps,
        vs_mimalloc: true,
    },
    SuiteProgram {
        name: "alloc-test (2 threads)",
        bin: "alloc-test",
        args: &["2"],
        metric: Metric::Seconds,
        vs_mimalloc: true,
    },
    SuiteProgram {
        name: "xmalloc-test",
        bin: "xmalloc-test",
        args: &["-w", "2", "-t", "5", "-s", "64"],
        metric: Metric::XmallocFrees,
        vs_mimalloc: true,
    },
    SuiteProgram {
        name: "cache-scratch",
        bin: "cache-scratch",
        args: &["2", "1000", "1", "2000000", "2"],
        metric: Metric::Seconds,
        vs_mimalloc: false,
    },
    SuiteProgram {
        name: "glibc-thread",
        bin: "glibc-thread",
        args: &["2"],
        metric: Metric::Iterations,
        vs_mimalloc: true,
    },
    SuiteProgram {
        name: "rptest",
        bin: "rptest",
        args: &["2", "0", "1", "2", "500", "1000", "100", "8", "16000"],
        metric: Metric::RptestOps,
        vs_mimalloc: true,
    },
    SuiteProgram {
        name: "malloc-large",
        bin: "malloc-large",
        args: &[],
        metric: Metric::Seconds,
        vs_mimalloc: false,
    },
];

impl Serialize for SuiteProgram {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.bin)
    }
}

impl<'de> Deserialize<'de> for SuiteProgram {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bin = String::deserialize(d)?;
        SUITE
            .iter()
            .find(|p| p.bin == bin)
            .copied()
            .ok_or_else(|| serde::de::Error::custom(format!("no suite program is called {bin}")))
    }
}

/// The number after `key` in `out`, up to the next space or comma.
fn number_after(out: &str, key: &str) -> Option<f64> {
    let at = out.find(key)? + key.len();
    out[at..]
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()?
        .parse()
        .ok()
}

/// The figure a program printed (in the table's unit), from its standard
/// output and error; `Seconds` comes from the clock, not from here.
pub(crate) fn parse_metric(metric: Metric, out: &str) -> Result<f64, String> {
    let (v, what) = match metric {
        Metric::Seconds => return Err("seconds are timed, not printed".into()),
        Metric::LarsonOps => (
            number_after(out, "Throughput =").map(|v| v / 1e6),
            "`Throughput = N operations per second`",
        ),
        Metric::XmallocFrees => (number_after(out, "free/sec:"), "`free/sec: F M`"),
        Metric::Iterations => (
            out.lines()
                .find_map(|l| l.strip_suffix(" iterations"))
                .and_then(|n| n.trim().parse::<f64>().ok())
                .map(|v| v / 1e6),
            "`N iterations`",
        ),
        Metric::RptestOps => (
            out.find(" memory ops/CPU second").and_then(|end| {
                let head = &out[..end];
                let start = head
                    .rfind(|c: char| !c.is_ascii_digit())
                    .map_or(0, |i| i + 1);
                head[start..].parse::<f64>().ok().map(|v| v / 1e6)
            }),
            "`N memory ops/CPU second`",
        ),
    };
    v.ok_or_else(|| format!("output has no {what}"))
}

/// An allocator a program runs on.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    /// Column name.
    pub(crate) name: &'static str,
    /// The library preloaded, none for glibc.
    pub(crate) preload: Option<PathBuf>,
}

/// The median of one program on one allocator.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cellv {
    /// Its figure (seconds or the printed throughput).
    pub(crate) value: f64,
    /// Peak RSS, KiB.
    pub(crate) rss_kib: f64,
}

/// What [`measure`] found: per program, per peer (glibc, mimalloc, klab),
/// the median of the rounds, or `None` when it did not run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SuiteRun {
    /// The programs measured, in table order.
    pub(crate) programs: Vec<SuiteProgram>,
    /// `cells[program][peer]`.
    pub(crate) cells: Vec<[Option<Cellv>; 3]>,
    /// Rounds run.
    pub(crate) rounds: usize,
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// The load average line of the host (`/proc/loadavg`), for the notes.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// One run of program `p` on `peer` through the rusage `runner`: its
/// figure and peak RSS (KiB), or `None` with the reason in `notes`.
fn run_one(
    runner: &Path,
    dir: &Path,
    p: &SuiteProgram,
    peer: &Peer,
    rss_file: &Path,
    notes: &mut Vec<String>,
) -> Option<(f64, f64)> {
    let mut cmd = Command::new(runner);
    cmd.arg(dir.join(p.bin))
        .args(p.args)
        .current_dir(dir)
        .env_remove("LD_PRELOAD")
        .env_remove("KLAB_SLUB_ERA")
        .env("KLAB_RUSAGE_OUT", rss_file)
        .env(
            "KLAB_CHILD_PRELOAD",
            peer.preload.as_deref().unwrap_or(Path::new("")),
        )
        .stdin(std::process::Stdio::null());
    let t = std::time::Instant::now();
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            notes.push(format!("{} could not run on {}: {e}", p.name, peer.name));
            return None;
        }
    };
    let secs = t.elapsed().as_secs_f64();
    if !out.status.success() {
        notes.push(format!(
            "{} failed on {} ({})",
            p.name, peer.name, out.status
        ));
        return None;
    }
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let value = if p.metric == Metric::Seconds {
        secs
    } else {
        match parse_metric(p.metric, &text) {
            Ok(v) => v,
            Err(e) => {
                notes.push(format!("{} on {}: {e}", p.name, peer.name));
                return None;
            }
        }
    };
    let rss = std::fs::read_to_string(rss_file)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    Some((value, rss))
}

/// Runs the suite in `dir` under `peers` (glibc, mimalloc, klab; a peer
/// without a library where one is needed is skipped), `rounds` rounds.
pub(crate) fn measure(
    ctx: &Ctx<'_>,
    dir: &Path,
    peers: &[Option<Peer>; 3],
    rounds: usize,
    notes: &mut Vec<String>,
) -> Result<SuiteRun, ExperimentError> {
    if !dir.is_dir() {
        return Err(ExperimentError::Input {
            path: dir.to_path_buf(),
            message: "not a directory: expected the suite's built out/bench".into(),
        });
    }
    let programs: Vec<SuiteProgram> = SUITE
        .iter()
        .copied()
        .filter(|p| {
            let there = dir.join(p.bin).is_file();
            if !there {
                notes.push(format!("{}: {} not built: skipped", p.name, p.bin));
            }
            there
        })
        .collect();
    if programs.is_empty() {
        return Err(ExperimentError::Input {
            path: dir.to_path_buf(),
            message: format!(
                "none of the suite's programs is there ({})",
                SUITE.iter().map(|p| p.bin).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let tmp = tempfile::tempdir().map_err(|e| ExperimentError::Host(format!("tempdir: {e}")))?;
    let cc = ["cc", "gcc"]
        .into_iter()
        .find(|c| Command::new(c).arg("--version").output().is_ok());
    let runner = cc
        .and_then(|cc| crate::bench::slub_preload::build_runner(cc, tmp.path()))
        .ok_or_else(|| {
            ExperimentError::Host(
                "no C compiler (cc, gcc) for the rusage runner that measures peak RSS".into(),
            )
        })?;
    let rss_file = tmp.path().join("maxrss");
    notes.push(format!("load average before: {}", loadavg()));
    // samples[program][peer] = (values, rss)
    let mut samples: Vec<[(Vec<f64>, Vec<f64>); 3]> = vec![Default::default(); programs.len()];
    ctx.progress.begin(
        "slub bench: suite programs",
        (rounds * programs.len()) as u64,
    );
    for _ in 0..rounds {
        for (k, p) in programs.iter().enumerate() {
            for (j, peer) in peers.iter().enumerate() {
                let Some(peer) = peer else { continue };
                let Some((value, rss)) = run_one(&runner, dir, p, peer, &rss_file, notes) else {
                    continue;
                };
                samples[k][j].0.push(value);
                samples[k][j].1.push(rss);
            }
            ctx.progress.advance(1);
        }
    }
    ctx.progress.end();
    notes.push(format!("load average after: {}", loadavg()));
    notes.dedup();
    let cells = samples
        .into_iter()
        .map(|row| {
            row.map(|(mut v, mut r)| {
                Some(Cellv {
                    value: median(&mut v)?,
                    rss_kib: median(&mut r)?,
                })
            })
        })
        .collect();
    Ok(SuiteRun {
        programs,
        cells,
        rounds,
    })
}

/// klab's speed against a peer: > 1 when klab is faster (time ratio
/// inverted for seconds).
pub(crate) fn speed_ratio(metric: Metric, klab: f64, peer: f64) -> f64 {
    if metric.higher_is_better() {
        klab / peer
    } else {
        peer / klab
    }
}

/// klab's speed against glibc's, at least (every row but malloc-large).
pub const VS_GLIBC_MIN: f64 = 1.0;
/// malloc-large: klab's speed against glibc's, at least.
pub const MALLOC_LARGE_VS_GLIBC_MIN: f64 = 1.0 / 1.5;
/// klab's speed against mimalloc's, at least, on the rows held to it.
pub const VS_MIMALLOC_MIN: f64 = 0.85;
/// klab's peak RSS against glibc's, at most.
pub const RSS_VS_GLIBC_MAX: f64 = 1.2;

/// The targets: klab at least glibc's speed on every row (malloc-large:
/// at least 1/1.5 of it), within 15% of mimalloc on the rows held to it,
/// peak RSS at most 1.2 times glibc's.
pub(crate) fn judge(run: &SuiteRun) -> Verdict {
    let mut misses = Vec::new();
    let mut checked = 0;
    for (p, c) in run.programs.iter().zip(&run.cells) {
        let [Some(g), m, Some(k)] = *c else {
            continue;
        };
        checked += 1;
        let vs_glibc = speed_ratio(p.metric, k.value, g.value);
        let floor = if p.bin == "malloc-large" {
            MALLOC_LARGE_VS_GLIBC_MIN
        } else {
            VS_GLIBC_MIN
        };
        if vs_glibc < floor {
            misses.push(format!("{} {vs_glibc:.2}x glibc", p.name));
        }
        if p.vs_mimalloc
            && let Some(m) = m
        {
            let vs_mi = speed_ratio(p.metric, k.value, m.value);
            if vs_mi < VS_MIMALLOC_MIN {
                misses.push(format!("{} {vs_mi:.2}x mimalloc", p.name));
            }
        }
        let rss = k.rss_kib / g.rss_kib;
        if rss > RSS_VS_GLIBC_MAX {
            misses.push(format!("{} peak RSS {rss:.2}x glibc", p.name));
        }
    }
    Verdict {
        holds: (checked > 0).then_some(misses.is_empty()),
        measured: if misses.is_empty() {
            format!(
                "{checked} programs: klab meets every target (median of {} interleaved rounds)",
                run.rounds
            )
        } else {
            format!(
                "{checked} programs; below target: {} (median of {} interleaved rounds)",
                misses.join("; "),
                run.rounds
            )
        },
        note: "targets: >= glibc's speed on every program (malloc-large: >= 1/1.5 of it), >= 0.85x mimalloc on larson, larson-sized, alloc-test, xmalloc-test, glibc-thread and rptest, peak RSS <= 1.2x glibc's; wall-clock figures on a shared 2-core machine".into(),
    }
}

/// The table and the plot of a run.
pub(crate) fn report(run: &SuiteRun, r: &mut Report) {
    let mut t = Table::new(
        &format!(
            "mimalloc-bench programs under LD_PRELOAD (2 threads; median of {} interleaved rounds)",
            run.rounds
        ),
        &[
            "program",
            "unit",
            "glibc",
            "mimalloc",
            "klab",
            "klab speed / glibc",
            "klab speed / mimalloc",
            "glibc peak RSS (MiB)",
            "mimalloc peak RSS (MiB)",
            "klab peak RSS (MiB)",
            "klab RSS / glibc",
        ],
    );
    let mut vs_g = Vec::new();
    let mut vs_m = Vec::new();
    let mut rss = Vec::new();
    for (i, (p, c)) in run.programs.iter().zip(&run.cells).enumerate() {
        let scale = |v: Option<Cellv>| v.map(|c| c.value);
        let mib = |v: Option<Cellv>| v.map(|c| c.rss_kib / 1024.0);
        let [g, m, k] = *c;
        let rg = k
            .zip(g)
            .map(|(k, g)| speed_ratio(p.metric, k.value, g.value));
        let rm = k
            .zip(m)
            .map(|(k, m)| speed_ratio(p.metric, k.value, m.value));
        let rr = k
            .zip(g)
            .filter(|(_, g)| g.rss_kib > 0.0)
            .map(|(k, g)| k.rss_kib / g.rss_kib);
        let x = (i + 1) as f64;
        if let Some(v) = rg {
            vs_g.push([x, v]);
        }
        if let Some(v) = rm {
            vs_m.push([x, v]);
        }
        if let Some(v) = rr {
            rss.push([x, v]);
        }
        t.row(cells![
            p.name,
            p.metric.unit(),
            scale(g),
            scale(m),
            scale(k),
            rg,
            rm,
            mib(g),
            mib(m),
            mib(k),
            rr
        ]);
    }
    r.table(t);
    let mut s = Series::new(
        "klab against glibc and mimalloc, per program (table row; 1 = parity)",
        Axis::linear("program (table row)", ""),
        Axis::linear("ratio", "x"),
    )
    .scatter();
    s.line("klab speed / glibc", vs_g)
        .line("klab speed / mimalloc", vs_m)
        .line("klab peak RSS / glibc", rss);
    r.series(s);
}

/// What the suite mode measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SuiteData {
    /// The suite's directory.
    pub(crate) dir: String,
    /// The programs' medians.
    pub(crate) run: SuiteRun,
    /// What the host lacked or did.
    pub(crate) notes: Vec<String>,
}

/// The suite mode of `klab bench slub`: every program of `dir` under
/// glibc, mimalloc (when installed) and klab's preload library.
///
/// # Errors
/// No preload library, a `dir` without the suite's programs, no C compiler
/// for the rusage runner.
pub(crate) fn measure_suite(ctx: &Ctx<'_>, dir: &Path) -> Result<SuiteData, ExperimentError> {
    let mut notes = vec![format!("suite: {}", dir.display())];
    let Some(lib) = crate::bench::slub_preload::preload_library() else {
        return Err(ExperimentError::Host(
            "libklab_slab_preload.so not found (build it with `cargo build --release -p klab-slab-preload`, or set KLAB_SLAB_PRELOAD)".into(),
        ));
    };
    let mi = Path::new(crate::bench::slub_preload::MIMALLOC_SO);
    let mimalloc = if mi.exists() {
        Some(Peer {
            name: "mimalloc",
            preload: Some(mi.to_path_buf()),
        })
    } else {
        notes.push(format!(
            "{} not found (Debian: apt-get install libmimalloc2.0): mimalloc column empty",
            mi.display()
        ));
        None
    };
    let peers = [
        Some(Peer {
            name: "glibc",
            preload: None,
        }),
        mimalloc,
        Some(Peer {
            name: "klab",
            preload: Some(lib),
        }),
    ];
    let rounds = if ctx.quick { 1 } else { 3 };
    let run = measure(ctx, dir, &peers, rounds, &mut notes)?;
    Ok(SuiteData {
        dir: dir.display().to_string(),
        run,
        notes,
    })
}

/// The suite mode's report: the table, the plot, the configuration.
pub(crate) fn report_suite(d: &SuiteData, r: &mut Report) {
    report(&d.run, r);
    r.config("suite", d.dir.clone())
        .config("rounds", d.run.rounds as u64)
        .config("threads", 2u64)
        .config("threshold.vs_glibc_min", VS_GLIBC_MIN)
        .config(
            "threshold.malloc_large_vs_glibc_min",
            MALLOC_LARGE_VS_GLIBC_MIN,
        )
        .config("threshold.vs_mimalloc_min", VS_MIMALLOC_MIN)
        .config("threshold.peak_rss_vs_glibc_max", RSS_VS_GLIBC_MAX);
    r.host = klab_lab::report::Host::measured(d.notes.clone());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_programs_figure_is_read_from_its_own_output() {
        let larson = "Throughput =  6006781 operations per second, relative time: 166.479s.\nDone sleeping...\n";
        assert_eq!(parse_metric(Metric::LarsonOps, larson), Ok(6.006781));
        let x = "rtime: 3.276, free/sec: 30.527 M\n";
        assert_eq!(parse_metric(Metric::XmallocFrees, x), Ok(30.527));
        let g = "40067540 iterations\n";
        assert_eq!(parse_metric(Metric::Iterations, g), Ok(40.06754));
        let rp = "crt          2 threads random linear size [8,16000] 500 loops 1000 allocs 100 ops: ........1054427 memory ops/CPU second (35MiB peak)\n";
        assert_eq!(parse_metric(Metric::RptestOps, rp), Ok(1.054427));
        assert_eq!(
            parse_metric(Metric::LarsonOps, "Done sleeping...\n"),
            Err("output has no `Throughput = N operations per second`".into())
        );
        assert!(parse_metric(Metric::Seconds, "").is_err());
    }

    fn cell(value: f64, rss_kib: f64) -> Option<Cellv> {
        Some(Cellv { value, rss_kib })
    }

    fn run_of(rows: Vec<(&str, [Option<Cellv>; 3])>) -> SuiteRun {
        SuiteRun {
            programs: rows
                .iter()
                .map(|(b, _)| *SUITE.iter().find(|p| p.bin == *b).unwrap())
                .collect(),
            cells: rows.into_iter().map(|(_, c)| c).collect(),
            rounds: 3,
        }
    }

    #[test]
    fn the_verdict_names_each_row_below_its_target() {
        // cfrac: klab 4.0 s against glibc's 4.2 (faster), RSS 1.1x: fine.
        // larson: 50 M ops/s against glibc 49 and mimalloc 66: 0.76x
        // mimalloc, below 0.85. malloc-large: 3.5 s against 2.44: 0.70x
        // glibc, above 1/1.5. glibc-thread: RSS 2.4 MiB against 2.0: 1.2x
        // exactly, allowed.
        let r = run_of(vec![
            (
                "cfrac",
                [cell(4.2, 3000.0), cell(4.8, 3100.0), cell(4.0, 3300.0)],
            ),
            (
                "larson",
                [
                    cell(49.0, 20000.0),
                    cell(66.0, 25000.0),
                    cell(50.0, 15000.0),
                ],
            ),
            (
                "malloc-large",
                [cell(2.44, 534_000.0), None, cell(3.5, 540_000.0)],
            ),
            (
                "glibc-thread",
                [cell(20.0, 2000.0), cell(40.0, 3000.0), cell(38.0, 2400.0)],
            ),
        ]);
        let v = judge(&r);
        assert_eq!(v.holds, Some(false));
        assert_eq!(
            v.measured,
            "4 programs; below target: larson 0.76x mimalloc (median of 3 interleaved rounds)"
        );
        // Slower than glibc on a row, and over the RSS bound.
        let r = run_of(vec![(
            "espresso",
            [cell(5.0, 2400.0), None, cell(5.5, 3000.0)],
        )]);
        assert_eq!(
            judge(&r).measured,
            "1 programs; below target: espresso 0.91x glibc; espresso peak RSS 1.25x glibc (median of 3 interleaved rounds)"
        );
        // Every target met.
        let r = run_of(vec![(
            "xmalloc-test",
            [
                cell(25.0, 48000.0),
                cell(94.0, 66000.0),
                cell(90.0, 40000.0),
            ],
        )]);
        assert_eq!(judge(&r).holds, Some(true));
        // Nothing ran on both glibc and klab: no verdict.
        assert_eq!(judge(&run_of(vec![])).holds, None);
    }

    #[test]
    fn a_suite_run_is_stored_by_program_name_and_read_back() {
        let r = run_of(vec![(
            "larson",
            [cell(49.0, 20000.0), None, cell(50.0, 15000.0)],
        )]);
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""programs":["larson"]"#), "{json}");
        let back: SuiteRun = serde_json::from_str(&json).unwrap();
        assert_eq!(back.programs[0].name, "larson");
        assert_eq!(back.cells, r.cells);
        let bad = json.replace(r#"["larson"]"#, r#"["nosuch"]"#);
        let e = serde_json::from_str::<SuiteRun>(&bad).unwrap_err();
        assert!(
            e.to_string().contains("no suite program is called nosuch"),
            "{e}"
        );
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn a_missing_directory_is_an_input_error() {
        let inputs = klab_lab::experiment::Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let mut notes = Vec::new();
        let e = measure(
            &ctx,
            Path::new("/nonexistent/out/bench"),
            &[None, None, None],
            1,
            &mut notes,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "/nonexistent/out/bench: not a directory: expected the suite's built out/bench"
        );
    }
}
