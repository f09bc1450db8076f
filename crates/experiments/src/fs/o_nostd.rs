//! `o-nostd`: what it costs a program to never write its errors into its
//! own files, with and without the O_NOSTD flag (seed 001, "O_NOSTD").
//!
//! A model program opens `files` files one after another, writes each one's
//! data, writes a warning to "standard error", and closes the file; a
//! second thread writes a warning to descriptor 2 at seeded random moments.
//! It runs with descriptors 0..2 all open, with 2 closed, and with all
//! three closed, under each strategy of `klab_model::fs::file::Strategy`,
//! and every system call is counted. The page says the user-space
//! remedies are "expensive, especially considering that, almost all of the
//! time, the standard file descriptors are set up just as they should be"
//! and that O_NOSTD protects "without additional runtime cost"; the
//! experiment measures both halves, and the inverse flag the page
//! mentions in passing.
//!
//! # Verdict
//!
//! The claim holds when, measured against plain opens in the same state:
//! with descriptor 2 closed at least [`MIN_MISDIRECTED_SHARE`] of the plain
//! program's warnings land in its files; the O_NOSTD program misdirects no
//! warning (its own or the second thread's) in any state and makes at most
//! [`MAX_NOSTD_OVERHEAD`] more calls than plain opens (a share); and each
//! user-space remedy (check and dup, /dev/null at startup) makes at least
//! [`MIN_REMEDY_EXTRA_CALLS`] more in some state. A program that opens no
//! file cannot misdirect anything: the verdict is then null.
//!
//! # When the claim fails
//!
//! On a kernel that does not know O_NOSTD ([`Config::kernel_knows_nostd`]
//! false): the flag was proposed in 2009 and never merged, and `open(2)`
//! drops flags it does not know (fs/open.c, `build_open_how()`), so a
//! program that trusts the flag gets plain opens and, with descriptor 2
//! closed, writes its warnings into its files. The test
//! `on_a_kernel_without_the_flag_o_nostd_protects_nothing` runs it.

use klab_model::fs::file::{RunStats, Strategy, run_program_on};
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The experiment.
pub struct ONostd;

/// The standard descriptors' states at exec: a name, and which of 0..2 are
/// closed.
const STATES: [(&str, [bool; 3]); 3] = [
    ("0..2 open", [false, false, false]),
    ("2 closed", [false, false, true]),
    ("0..2 closed", [true, true, true]),
];
const ALL_OPEN: usize = 0;
const STDERR_CLOSED: usize = 1;

/// The strategies plotted against the number of files.
const CURVES: [Strategy; 4] = [
    Strategy::Plain,
    Strategy::CheckAndDup,
    Strategy::Stdopen,
    Strategy::ONostd,
];

/// Chance that the second thread writes after any one call.
const CONCURRENT_P: f64 = 0.05;

/// Share of the plain program's warnings that must land in its files with
/// descriptor 2 closed for "writes to stderr land in the file" to hold.
pub const MIN_MISDIRECTED_SHARE: f64 = 0.5;
/// System calls the O_NOSTD program may make beyond plain opens, as a
/// share of the plain program's, in any state ("without additional runtime
/// cost").
pub const MAX_NOSTD_OVERHEAD: f64 = 0.0;
/// System calls each user-space remedy must make beyond plain opens, in
/// the state that costs it most, for "costs system calls" to hold.
pub const MIN_REMEDY_EXTRA_CALLS: u64 = 1;

/// What a run is measured with.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Files the program opens, writes and closes.
    pub files: usize,
    /// Chance that the second thread writes to descriptor 2 after any call
    /// of the main thread.
    pub second_thread_write_p: f64,
    /// Whether `open(2)` knows O_NOSTD; false is a kernel without the
    /// patch, which drops the flag.
    pub kernel_knows_nostd: bool,
}

impl Config {
    /// The built-in configuration: the proposed kernel, 1000 files (100
    /// with `--quick`).
    pub fn page(quick: bool) -> Self {
        Config {
            files: if quick { 100 } else { 1000 },
            second_thread_write_p: CONCURRENT_P,
            kernel_knows_nostd: true,
        }
    }
}

/// What the runs measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Data {
    /// The configuration.
    pub config: Config,
    /// One run per strategy of `Strategy::ALL` (outer) and state of
    /// `STATES` (inner).
    pub runs: Vec<Vec<RunStats>>,
    /// Per strategy of `CURVES`: `[files opened, extra system calls]`
    /// with descriptor 2 closed.
    pub curves: Vec<Vec<[f64; 2]>>,
}

impl Data {
    fn run(&self, s: Strategy, state: usize) -> &RunStats {
        let i = Strategy::ALL.iter().position(|x| *x == s).unwrap_or(0);
        &self.runs[i][state]
    }

    /// Calls of `s` beyond plain opens in `state` (none if fewer).
    fn extra_over_plain(&self, s: Strategy, state: usize) -> u64 {
        let plain = self.run(Strategy::Plain, state).syscalls;
        self.run(s, state).syscalls.saturating_sub(plain)
    }

    /// The most calls `s` makes beyond plain opens, over the states.
    fn max_extra(&self, s: Strategy) -> u64 {
        (0..STATES.len())
            .map(|st| self.extra_over_plain(s, st))
            .max()
            .unwrap_or(0)
    }

    /// The same as a share of the plain program's calls in that state.
    fn max_overhead(&self, s: Strategy) -> f64 {
        (0..STATES.len())
            .map(|st| {
                let plain = self.run(Strategy::Plain, st).syscalls.max(1);
                self.extra_over_plain(s, st) as f64 / plain as f64
            })
            .fold(0.0, f64::max)
    }
}

fn run(
    ctx: &Ctx<'_>,
    cfg: &Config,
    s: Strategy,
    closed: [bool; 3],
    files: usize,
) -> Result<RunStats, ExperimentError> {
    // The same stream for every row: the second thread's dice are the same
    // sequence in each, so rows differ only by strategy and state. One
    // program run is one job (it can hibernate between runs).
    ctx.once(
        "o-nostd: one program run",
        klab_lab::hibernate::SYSCALL_TICK_NS,
        |span| {
            let st = run_program_on(
                cfg.kernel_knows_nostd,
                s,
                closed,
                files,
                cfg.second_thread_write_p,
                ctx.rng(1),
            )
            .map_err(|e| ExperimentError::Host(format!("model descriptor table: {e}")))?;
            span.busy(st.syscalls);
            Ok(st)
        },
    )
}

impl ONostd {
    /// Measures with `cfg` (the built-in run uses [`Config::page`]).
    ///
    /// # Errors
    /// A model table refusing a call, or a run stopped to hibernate.
    pub fn measure_with(&self, ctx: &Ctx<'_>, cfg: Config) -> Result<Data, ExperimentError> {
        ctx.progress
            .begin("o-nostd", (Strategy::ALL.len() * STATES.len()) as u64);
        let mut runs = Vec::new();
        for s in Strategy::ALL {
            let mut row = Vec::new();
            for (_, closed) in STATES {
                row.push(run(ctx, &cfg, s, closed, cfg.files)?);
                ctx.progress.advance(1);
            }
            runs.push(row);
        }
        ctx.progress.end();
        let steps: Vec<usize> = (0..=8).map(|i| i * cfg.files / 8).collect();
        let mut curves = Vec::new();
        for s in CURVES {
            let mut pts = Vec::new();
            for &n in &steps {
                let st = run(ctx, &cfg, s, STATES[STDERR_CLOSED].1, n)?;
                pts.push([n as f64, (st.syscalls - st.work_syscalls) as f64]);
            }
            curves.push(pts);
        }
        Ok(Data {
            config: cfg,
            runs,
            curves,
        })
    }
}

/// The figures the verdict is made of.
struct Findings {
    files: u64,
    misdirected: u64,
    nostd_extra: u64,
    nostd_overhead: f64,
    nostd_misdirected: u64,
    dup_open: u64,
    dup_closed: u64,
    dup_window: u64,
    dup_max: u64,
    stdopen_open: u64,
    stdopen_max: u64,
    inverse_breaks: bool,
}

impl Findings {
    fn of(d: &Data) -> Self {
        let nostd_misdirected = (0..STATES.len())
            .map(|st| {
                let r = d.run(Strategy::ONostd, st);
                r.misdirected + r.concurrent_misdirected
            })
            .sum();
        Findings {
            files: d.config.files as u64,
            misdirected: d.run(Strategy::Plain, STDERR_CLOSED).misdirected,
            nostd_extra: d.max_extra(Strategy::ONostd),
            nostd_overhead: d.max_overhead(Strategy::ONostd),
            nostd_misdirected,
            dup_open: d.extra_over_plain(Strategy::CheckAndDup, ALL_OPEN),
            dup_closed: d.extra_over_plain(Strategy::CheckAndDup, STDERR_CLOSED),
            dup_window: d
                .run(Strategy::CheckAndDup, STDERR_CLOSED)
                .concurrent_misdirected,
            dup_max: d.max_extra(Strategy::CheckAndDup),
            stdopen_open: d.extra_over_plain(Strategy::Stdopen, ALL_OPEN),
            stdopen_max: d.max_extra(Strategy::Stdopen),
            inverse_breaks: (0..STATES.len())
                .any(|st| !d.run(Strategy::KernelDefaultNoStd, st).redirect_idiom_works),
        }
    }

    fn sentence(&self) -> String {
        format!(
            "with descriptor 2 closed, plain opens put {} of {} warnings into files; O_NOSTD: at \
             most {} calls more than plain opens in any state, {} warnings misdirected (the second \
             thread's included); check-and-dup: {} extra calls when 0..2 are open but {} ({} per \
             open) with 2 closed, and the second thread still hit the file {} times between open \
             and close; /dev/null at startup: {} extra calls when 0..2 are open, {} at most; the \
             inverse (kernel avoids 0..2 by default) {} close(0); open()",
            self.misdirected,
            self.files,
            self.nostd_extra,
            self.nostd_misdirected,
            self.dup_open,
            self.dup_closed,
            self.dup_closed / self.files.max(1),
            self.dup_window,
            self.stdopen_open,
            self.stdopen_max,
            if self.inverse_breaks {
                "breaks"
            } else {
                "keeps"
            }
        )
    }
}

impl Experiment for ONostd {
    type Data = Data;

    const ID: Identity = Identity {
        name: "o-nostd",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "With a standard descriptor closed, the next open takes its number and writes to \
         'stderr' land in the file; checking and moving descriptors in user space or opening \
         /dev/null at startup costs system calls, while an O_NOSTD open protects at no extra \
         cost.",
        inputs: &[],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        self.measure_with(ctx, Config::page(ctx.quick))
    }

    fn judge(&self, d: &Data) -> Verdict {
        let f = Findings::of(d);
        let kernel = if d.config.kernel_knows_nostd {
            "The kernel knows O_NOSTD (the proposed patch)."
        } else {
            "The kernel does not know O_NOSTD: open() drops the flag, as it drops every flag it \
             does not know."
        };
        let note = format!(
            "{kernel} Each table operation is one system call; checks in user space are free. \
             Rust programs get the startup check from std (klab-uapi's tests show descriptor 2 \
             reopened on /dev/null)."
        );
        if f.files == 0 {
            return Verdict {
                holds: None,
                measured: "the program opened no file: a closed descriptor had nothing to \
                           misdirect"
                    .to_owned(),
                note,
            };
        }
        let misdirects = f.misdirected as f64 / f.files as f64 >= MIN_MISDIRECTED_SHARE;
        let nostd_free = f.nostd_misdirected == 0 && f.nostd_overhead <= MAX_NOSTD_OVERHEAD;
        let remedies_cost =
            f.dup_max >= MIN_REMEDY_EXTRA_CALLS && f.stdopen_max >= MIN_REMEDY_EXTRA_CALLS;
        Verdict {
            holds: Some(misdirects && nostd_free && remedies_cost),
            measured: f.sentence(),
            note,
        }
    }

    fn report(&self, d: &Data, _verdict: &Verdict, r: &mut Report) {
        r.config("files", d.config.files)
            .config("second_thread_write_p", d.config.second_thread_write_p)
            .config("kernel_knows_o_nostd", d.config.kernel_knows_nostd)
            .config("threshold.min_misdirected_share", MIN_MISDIRECTED_SHARE)
            .config("threshold.max_nostd_overhead", MAX_NOSTD_OVERHEAD)
            .config("threshold.min_remedy_extra_calls", MIN_REMEDY_EXTRA_CALLS);
        let mut t = Table::new(
            "A program opening, writing and closing files, per strategy and standard descriptors",
            &[
                "strategy",
                "at exec",
                "system calls",
                "extra calls",
                "warnings into files",
                "second thread's warnings into files",
                "warnings lost (EBADF)",
                "fds open at end",
                "close(0); open() gives 0",
            ],
        );
        for (s, row) in Strategy::ALL.iter().zip(&d.runs) {
            for ((state, _), st) in STATES.iter().zip(row) {
                t.row(cells![
                    s.name(),
                    *state,
                    st.syscalls,
                    st.syscalls - st.work_syscalls,
                    st.misdirected,
                    st.concurrent_misdirected,
                    st.lost,
                    st.fds_at_end,
                    st.redirect_idiom_works
                ]);
            }
        }
        r.table(t);
        let mut series = Series::new(
            "Extra system calls to open N files with descriptor 2 closed",
            Axis::linear("files opened", "files"),
            Axis::linear("extra system calls", "calls"),
        );
        for (s, pts) in CURVES.iter().zip(&d.curves) {
            series.line(s.name(), pts.clone());
        }
        r.series(series);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::Run;
    use klab_lab::experiment::Inputs;

    fn measured(cfg: Config) -> Data {
        let inputs = Inputs::default();
        ONostd
            .measure_with(&Ctx::new(1, true, &inputs), cfg)
            .unwrap()
    }

    #[test]
    fn o_nostd_is_free_and_check_and_dup_triples_opens_when_2_is_closed() {
        let inputs = Inputs::default();
        let r = ONostd.run(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(r.verdict.holds, Some(true), "{}", r.verdict.measured);
        let t = &r.tables[0];
        // Rows: strategy-major, states 0..2 open / 2 closed / all closed.
        // plain, 2 closed: 100 files, 400 calls, 100 warnings in files.
        assert_eq!(t.rows[1][2].display(), "400");
        assert_eq!(t.rows[1][4].display(), "100");
        // check and dup, 2 closed: 600 calls, 200 extra.
        assert_eq!(t.rows[4][3].display(), "200");
        // stdopen, all closed: 3 probes + 3 opens of /dev/null.
        assert_eq!(t.rows[8][3].display(), "6");
        // O_NOSTD, all closed: no extra call.
        assert_eq!(t.rows[11][3].display(), "0");
        // The inverse flag breaks the redirect idiom.
        assert_eq!(t.rows[12][8].display(), "false");
        let s = &r.series[0];
        let dup = s
            .lines
            .iter()
            .find(|l| l.name.starts_with("check"))
            .unwrap();
        assert_eq!(dup.points.last().unwrap(), &[100.0, 200.0]);
        assert_eq!(
            r.config["threshold.min_misdirected_share"].display(),
            "0.5000"
        );
    }

    #[test]
    fn on_a_kernel_without_the_flag_o_nostd_protects_nothing() {
        let d = measured(Config {
            kernel_knows_nostd: false,
            ..Config::page(true)
        });
        let v = ONostd.judge(&d);
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        // With 2 closed, the O_NOSTD program's 100 warnings and the second
        // thread's writes between open and close land in its files.
        let nostd = d.run(Strategy::ONostd, STDERR_CLOSED);
        assert_eq!(nostd.misdirected, 100);
        assert!(nostd.concurrent_misdirected > 0);
        assert!(v.note.contains("does not know O_NOSTD"), "{}", v.note);
    }

    #[test]
    fn the_verdict_fails_when_o_nostd_costs_calls_or_plain_opens_misdirect_nothing() {
        let d = measured(Config::page(true));
        assert_eq!(ONostd.judge(&d).holds, Some(true));
        let o = Strategy::ALL
            .iter()
            .position(|s| *s == Strategy::ONostd)
            .unwrap();
        let mut costly = d.clone();
        costly.runs[o][ALL_OPEN].syscalls += 3;
        assert_eq!(ONostd.judge(&costly).holds, Some(false));
        let mut harmless = d.clone();
        harmless.runs[0][STDERR_CLOSED].misdirected = 10;
        assert_eq!(ONostd.judge(&harmless).holds, Some(false), "10% < 50%");
        let mut free_remedies = d.clone();
        free_remedies.runs[2] = free_remedies.runs[0].clone();
        assert_eq!(ONostd.judge(&free_remedies).holds, Some(false));
        let mut empty = d;
        empty.config.files = 0;
        assert_eq!(ONostd.judge(&empty).holds, None);
    }

    #[test]
    fn the_report_is_the_same_for_the_same_seed() {
        let inputs = Inputs::default();
        let a = ONostd.run(&Ctx::new(9, true, &inputs)).unwrap();
        let b = ONostd.run(&Ctx::new(9, true, &inputs)).unwrap();
        assert_eq!(a, b);
    }
}
