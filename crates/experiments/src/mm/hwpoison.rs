//! The experiment `hwpoison` (seed 001_9748f8e50c4ab156.txt, "HWPOISON",
//! 2009): "The blanket action of crashing the machine for all uncorrected
//! soft and hard memory errors is sometimes over-reactive" — and
//! "Reserved kernel pages and zero count pages are ignored with the peril
//! of a system panic".
//!
//! 1. **Every kind of page** ([`kinds`]): a fresh model machine holds one
//!    page of each kind the handler distinguishes (user pages, mapped
//!    file pages, and kernel frames: text, page tables, slab pages holding
//!    real radix-tree node objects, reserved and buddy pages); an error is
//!    injected into it (hwpoison-inject's `corrupt-pfn`) and the next use
//!    of the page is made. The table gives the handler's result and
//!    message, who was signalled, killed or unmapped, whether the file
//!    reports EIO, whether data was lost, and what the next use saw
//!    ("machine down" when the kernel consumed the poisoned frame).
//! 2. **Memory mixes under an error rate** ([`sweep`]): a machine whose
//!    memory is split between user pages (page cache, mapped files,
//!    anonymous memory) and kernel frames in the proportions of a mix runs
//!    its tasks while a scrubber finds errors at random frames at a seeded
//!    rate; kernel frames take errors in proportion to their share of
//!    memory. Each run is repeated with `vm.memory_failure_recovery = 0`
//!    (a panic on every error, the behaviour before HWPOISON). Measured per
//!    mix and rate over several seeds: the share of errors survived, the
//!    share of runs that reached the end, what killed the machine when it
//!    died, tasks killed early and late, mapped file pages unmapped, data
//!    lost, and the work done against the machine that panics.
//!
//! The verdict is the judged mix's share of errors survived and its work
//! ratio against thresholds ([`SURVIVED_MIN`], [`WORK_RATIO_MIN`]).
//!
//! # When the claim fails
//!
//! On a machine whose memory is mostly kernel frames (the
//! "kernel-heavy" mix: a fifth of memory kernel text, a tenth reserved,
//! sixteen processes whose sparse anonymous memory needs a page-table
//! frame per data page), about a third of errors land in frames the
//! kernel reads soon; the machine dies at one of its first few errors and
//! survives well under [`SURVIVED_MIN`] of them. The test
//! `a_kernel_heavy_machine_does_not_survive` judges that mix end to end.
//!
//! With `--scenario FILE` (the memory-controller scenario format with a
//! `[hwpoison]` section) it runs that scenario and reports every failure;
//! the verdict is then `null` (a scenario is a question, not the claim).

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity, InputKind};
use klab_lab::hibernate::{Job, Step};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};
use klab_mm_policy::LruBalance;
use klab_model::mm::memory_failure::{MfConfig, MfResult};
use klab_model::mm::page::{KernelPage, Owner};
use klab_model::{Access, Machine, MachineConfig, Outcome};
use rand::Rng as _;

use crate::mm::memcg::{self, scenario};

mod kinds;

pub use kinds::KindRow;

/// The experiment.
pub struct Hwpoison;

/// The judged mix must survive at least this share of its errors.
pub const SURVIVED_MIN: f64 = 0.9;
/// ... and do at least this much more work than a machine that panics on
/// every error (at every rate where errors happened).
pub const WORK_RATIO_MIN: f64 = 1.0;

/// How memory is split on one machine of the sweep.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mix {
    /// Its name in the report.
    pub name: String,
    /// Kernel text, per mille of frames.
    pub text_permille: u64,
    /// Reserved frames (firmware, boot data), per mille.
    pub reserved_permille: u64,
    /// Buddy pages in transit.
    pub buddy: u64,
    /// A `page_cgroup` object per charged page (2.6.25's slab objects).
    pub page_cgroup: bool,
    /// Processes with anonymous memory.
    pub anon_tasks: u32,
    /// Their pages, in frames / this.
    pub anon_divisor: u64,
    /// The distance between their pages, in virtual pages (512: a
    /// page-table frame per data page).
    pub anon_stride: u64,
}

/// The three mixes: a file server's, a mixed machine's, and one of many
/// small processes whose kernel frames outweigh the user pages.
pub fn mixes() -> Vec<Mix> {
    let mix = |name: &str, text, reserved, buddy, page_cgroup, tasks, div, stride| Mix {
        name: name.into(),
        text_permille: text,
        reserved_permille: reserved,
        buddy,
        page_cgroup,
        anon_tasks: tasks,
        anon_divisor: div,
        anon_stride: stride,
    };
    vec![
        mix("user-heavy", 10, 10, 2, false, 2, 16, 1),
        mix("mixed", 50, 30, 4, true, 4, 32, 8),
        mix("kernel-heavy", 200, 100, 8, true, 16, 128, 512),
    ]
}

/// The sweep's configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepConfig {
    /// Frames of each machine.
    pub frames: u64,
    /// Accesses per run.
    pub steps: u64,
    /// Runs (seeds) per mix and rate.
    pub seeds: u64,
    /// Errors per million accesses.
    pub rates: Vec<f64>,
    /// The mixes.
    pub mixes: Vec<Mix>,
    /// The mix the verdict is about.
    pub judged: String,
}

impl SweepConfig {
    /// The default sweep, small under `--quick`.
    pub fn new(quick: bool) -> Self {
        SweepConfig {
            frames: if quick { 1024 } else { 4096 },
            steps: if quick { 16_000 } else { 80_000 },
            seeds: if quick { 2 } else { 5 },
            rates: if quick {
                vec![100.0, 2000.0]
            } else {
                vec![20.0, 100.0, 500.0, 2000.0]
            },
            mixes: mixes(),
            judged: "user-heavy".into(),
        }
    }
}

/// Frames of each kind on a machine (at the end of a run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shares {
    /// Kernel text.
    pub text: u64,
    /// Reserved.
    pub reserved: u64,
    /// Buddy pages in transit.
    pub buddy: u64,
    /// Slab pages.
    pub slab: u64,
    /// Page-table pages.
    pub page_tables: u64,
    /// Page cache and anonymous memory.
    pub user: u64,
    /// Free.
    pub free: u64,
}

/// What one run did.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunOut {
    /// Errors injected.
    pub errors: u64,
    /// Results: Ignored, Recovered, Delayed, Failed.
    pub results: [u64; 4],
    /// The access at which the machine panicked.
    pub panicked_at: Option<u64>,
    /// Why.
    pub cause: Option<String>,
    /// Accesses that did their work.
    pub completed: u64,
    /// Tasks killed at failure time (early kill).
    pub killed_early: u64,
    /// Tasks killed touching a lost page (late kill).
    pub killed_late: u64,
    /// Mapped file pages' entries turned into hwpoison entries.
    pub unmapped: u64,
    /// Pages whose data was lost.
    pub data_lost: u64,
    /// Frames by kind at the end.
    pub shares: Shares,
}

impl RunOut {
    /// Errors survived: all of them, or all but the one whose consumption
    /// (or, without recovery, whose arrival) panicked the machine.
    pub fn survived(&self) -> u64 {
        self.errors - u64::from(self.panicked_at.is_some() && self.errors > 0)
    }
}

/// One mix, one rate, one seed: HWPOISON and a panic on every error.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MixRun {
    /// The mix.
    pub mix: String,
    /// Errors per million accesses.
    pub rate: f64,
    /// The run's seed stream.
    pub seed: u64,
    /// With HWPOISON (`vm.memory_failure_recovery = 1`, late kill).
    pub hwpoison: RunOut,
    /// `vm.memory_failure_recovery = 0`.
    pub panic_always: RunOut,
}

/// A `--scenario` run.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ScenarioData {
    /// The file.
    pub path: String,
    /// What the runner recorded.
    pub result: memcg::runner::RunResult,
}

/// Everything the verdict and the report come from.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Data {
    /// A scenario given with `--scenario` (then nothing else is run).
    pub scenario: Option<ScenarioData>,
    /// Part 1.
    pub kinds: Vec<KindRow>,
    /// Part 2's configuration.
    pub sweep: SweepConfig,
    /// Part 2's runs.
    pub runs: Vec<MixRun>,
}

/// A task of a mix's machine.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
enum Plan {
    /// Reads a file's pages in a loop.
    Loop { file: u32, pages: u64 },
    /// Writes random pages of a file.
    RandomWrite { file: u32, pages: u64 },
    /// Reads (and writes) random pages of a file it maps.
    Mapped { file: u32, pages: u64, write: bool },
    /// Writes its anonymous pages in a loop, `stride` virtual pages apart.
    Anon { pages: u64, stride: u64 },
}

/// Boots a mix's machine and lays out its tasks.
fn boot(mix: &Mix, frames: u64, recovery: bool) -> Result<(Machine, Vec<(u32, Plan)>), String> {
    let mut cfg = MachineConfig::new(frames, LruBalance::Classic);
    cfg.swap_pages = frames;
    cfg.slab = true;
    cfg.page_cgroup = mix.page_cgroup;
    cfg.page_tables = true;
    cfg.kernel_text_pages = frames * mix.text_permille / 1000;
    let mut m = Machine::new(cfg)?;
    m.reserve_kernel_pages(KernelPage::Reserved, frames * mix.reserved_permille / 1000);
    m.reserve_kernel_pages(KernelPage::Buddy, mix.buddy);
    m.set_memory_failure_config(MfConfig {
        recovery,
        early_kill: false,
    });
    let mut tasks = vec![
        (
            1,
            Plan::Loop {
                file: 1,
                pages: frames / 4,
            },
        ),
        (
            2,
            Plan::RandomWrite {
                file: 2,
                pages: frames / 4,
            },
        ),
        (
            3,
            Plan::Mapped {
                file: 3,
                pages: frames / 8,
                write: true,
            },
        ),
        (
            4,
            Plan::Mapped {
                file: 3,
                pages: frames / 8,
                write: false,
            },
        ),
    ];
    m.mmap_file(3, 3);
    m.mmap_file(4, 3);
    for i in 0..mix.anon_tasks {
        let pages = (frames / mix.anon_divisor).max(1);
        tasks.push((
            5 + i,
            Plan::Anon {
                pages,
                stride: mix.anon_stride,
            },
        ));
    }
    Ok((m, tasks))
}

/// One run of a mix's machine, an access a step.
#[derive(serde::Serialize, serde::Deserialize)]
struct MixJob {
    m: Machine,
    tasks: Vec<(u32, Plan)>,
    pos: Vec<u64>,
    next: usize,
    step: u64,
    steps: u64,
    rate: f64,
    rng: klab_model::rng::Rng,
    faults: klab_model::rng::Rng,
    out: RunOut,
}

impl MixJob {
    fn new(
        mix: &Mix,
        cfg: &SweepConfig,
        rate: f64,
        recovery: bool,
        ctx: &Ctx<'_>,
        seed: u64,
    ) -> Result<Self, ExperimentError> {
        let (m, tasks) = boot(mix, cfg.frames, recovery).map_err(ExperimentError::Host)?;
        Ok(MixJob {
            m,
            pos: vec![0; tasks.len()],
            tasks,
            next: 0,
            step: 0,
            steps: cfg.steps,
            rate: rate / 1e6,
            rng: ctx.rng(1000 + seed),
            faults: ctx.rng(2000 + seed),
            out: RunOut::default(),
        })
    }

    /// The scrubber: maybe an error at a random frame.
    fn scrub(&mut self) {
        if self.faults.random::<f64>() >= self.rate {
            return;
        }
        let pfn = self.faults.random_range(0..self.m.nr_pages());
        let rep = self.m.memory_failure(pfn);
        let o = &mut self.out;
        o.errors += 1;
        let i = match rep.result {
            MfResult::Ignored => 0,
            MfResult::Recovered => 1,
            MfResult::Delayed => 2,
            MfResult::Failed => 3,
        };
        o.results[i] += 1;
        o.killed_early += rep.killed.len() as u64;
        o.unmapped += rep.unmapped.len() as u64;
        o.data_lost += u64::from(rep.data_lost);
    }

    /// The next live task's access.
    fn access(&mut self) -> Option<Outcome> {
        let n = self.tasks.len();
        let i = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| self.m.task(self.tasks[i].0).is_none_or(|t| t.alive))?;
        self.next = (i + 1) % n;
        let (id, plan) = self.tasks[i];
        let p = self.pos[i];
        self.pos[i] += 1;
        let a = match plan {
            Plan::Loop { file, pages } => Access::read(file, p % pages),
            Plan::RandomWrite { file, pages } => {
                Access::write(file, self.rng.random_range(0..pages))
            }
            Plan::Mapped { file, pages, write } => {
                let page = self.rng.random_range(0..pages);
                if write && p.is_multiple_of(2) {
                    Access::write(file, page)
                } else {
                    Access::read(file, page)
                }
            }
            Plan::Anon { pages, stride } => Access::anon(id, (p % pages) * stride),
        };
        Some(self.m.access(a.by(id)))
    }
}

impl Job for MixJob {
    type Env = ();
    type Output = RunOut;
    const KIND: &'static str = "hwpoison: a mix under an error rate";
    const TICK_NS: u64 = klab_lab::hibernate::ACCESS_TICK_NS;

    fn step(&mut self, _: &()) -> Step {
        if self.out.panicked_at.is_some() || self.step >= self.steps {
            return Step::Done;
        }
        self.scrub();
        let out = if self.m.panicked() {
            Some(Outcome::Panic)
        } else {
            self.access()
        };
        self.step += 1;
        match out {
            None => return Step::Done,
            Some(Outcome::Panic) => {
                self.out.panicked_at = Some(self.step);
                self.out.cause = self.m.panic_cause().map(|c| c.what.clone());
            }
            Some(Outcome::SigBus { caught: false }) => self.out.killed_late += 1,
            Some(Outcome::SigBus { caught: true } | Outcome::Killed | Outcome::OutOfMemory) => {}
            Some(_) => self.out.completed += 1,
        }
        Step::Busy(1)
    }

    fn check(&self, _: &()) -> Result<(), String> {
        if self.pos.len() != self.tasks.len() || self.next >= self.tasks.len().max(1) {
            return Err("task cursors do not match the tasks".into());
        }
        self.m.check()
    }

    fn finish(mut self, _: &()) -> RunOut {
        self.out.shares = shares(&self.m);
        if cfg!(debug_assertions) {
            self.m.assert_invariants();
        }
        self.out
    }
}

/// Frames by kind.
fn shares(m: &Machine) -> Shares {
    let mut s = Shares::default();
    for pfn in 0..m.nr_pages() as u32 {
        match m.frame_owner(pfn) {
            Owner::Free => s.free += 1,
            Owner::File { .. } | Owner::Anon { .. } | Owner::Huge { .. } => s.user += 1,
            Owner::Kernel(KernelPage::Text) => s.text += 1,
            Owner::Kernel(KernelPage::Reserved) => s.reserved += 1,
            Owner::Kernel(KernelPage::Buddy) => s.buddy += 1,
            Owner::Kernel(KernelPage::Slab) => s.slab += 1,
            Owner::Kernel(KernelPage::PageTable | KernelPage::Other) => s.page_tables += 1,
        }
    }
    s
}

/// Part 2: every mix at every rate, `seeds` times, with and without
/// recovery.
fn sweep(ctx: &Ctx<'_>, cfg: &SweepConfig) -> Result<Vec<MixRun>, ExperimentError> {
    let mut runs = Vec::new();
    let total = (cfg.mixes.len() * cfg.rates.len()) as u64 * cfg.seeds;
    ctx.progress
        .begin("hwpoison: mixes under error rates", total);
    for (mi, mix) in cfg.mixes.iter().enumerate() {
        for (ri, &rate) in cfg.rates.iter().enumerate() {
            for k in 0..cfg.seeds {
                let seed = ((mi * cfg.rates.len() + ri) as u64) * 1000 + k;
                let hw = ctx.job(&(), || MixJob::new(mix, cfg, rate, true, ctx, seed))?;
                let off = ctx.job(&(), || MixJob::new(mix, cfg, rate, false, ctx, seed))?;
                runs.push(MixRun {
                    mix: mix.name.clone(),
                    rate,
                    seed,
                    hwpoison: hw,
                    panic_always: off,
                });
                ctx.progress.advance(1);
            }
        }
    }
    ctx.progress.end();
    Ok(runs)
}

/// Sums over a mix's runs (at one rate, or all): (errors, survived, runs,
/// runs that reached the end, HWPOISON's work, the panicking machine's).
fn totals<'a>(runs: impl Iterator<Item = &'a MixRun>) -> [u64; 6] {
    let mut t = [0u64; 6];
    for r in runs {
        t[0] += r.hwpoison.errors;
        t[1] += r.hwpoison.survived();
        t[2] += 1;
        t[3] += u64::from(r.hwpoison.panicked_at.is_none());
        t[4] += r.hwpoison.completed;
        t[5] += r.panic_always.completed;
    }
    t
}

fn ratio(a: u64, b: u64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

impl Hwpoison {
    /// [`Experiment::measure`] with a sweep of the caller's (the tests
    /// judge other mixes end to end).
    ///
    /// # Errors
    /// As [`Experiment::measure`].
    pub fn measure_with(&self, ctx: &Ctx<'_>, cfg: SweepConfig) -> Result<Data, ExperimentError> {
        let kinds = ctx.once(
            "hwpoison: every kind of page",
            klab_lab::hibernate::ACCESS_TICK_NS,
            |span| {
                let rows = kinds::every_kind();
                span.busy(rows.len() as u64);
                Ok(rows)
            },
        )?;
        let runs = sweep(ctx, &cfg)?;
        Ok(Data {
            scenario: None,
            kinds,
            sweep: cfg,
            runs,
        })
    }

    fn measure_scenario(&self, ctx: &Ctx<'_>) -> Result<Option<ScenarioData>, ExperimentError> {
        // Read inside a job, so a hibernation image carries the scenario.
        let given = ctx.once("hwpoison: read the scenario", 0, |_| {
            ctx.inputs
                .scenario
                .as_deref()
                .map(|path| {
                    scenario::read(path)
                        .map(|s| (s, path.display().to_string()))
                        .map_err(|e| ExperimentError::Input {
                            path: path.to_owned(),
                            message: format!("line {}: {}", e.line, e.message),
                        })
                })
                .transpose()
        })?;
        let Some((s, path)) = given else {
            return Ok(None);
        };
        let result = memcg::runner::run_in(ctx, &s, &mut ctx.rng(1))?;
        Ok(Some(ScenarioData { path, result }))
    }
}

impl Experiment for Hwpoison {
    type Data = Data;

    const ID: Identity = Identity {
        name: "hwpoison",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "instead of crashing on every uncorrected memory error, HWPOISON isolates the page and kills only the tasks that used its data, so a machine survives most errors; errors in kernel pages it cannot isolate still bring it down",
        inputs: &[InputKind::Scenario],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        if let Some(s) = self.measure_scenario(ctx)? {
            return Ok(Data {
                scenario: Some(s),
                kinds: Vec::new(),
                sweep: SweepConfig::new(ctx.quick),
                runs: Vec::new(),
            });
        }
        self.measure_with(ctx, SweepConfig::new(ctx.quick))
    }

    fn judge(&self, d: &Data) -> Verdict {
        if let Some(s) = &d.scenario {
            let res = &s.result;
            let survived = res.failures.iter().filter(|(_, f)| !f.panicked).count();
            return Verdict {
                holds: None,
                measured: format!(
                    "{} memory failures, {survived} survived without a crash; {} accesses completed{}",
                    res.failures.len(),
                    res.completed,
                    res.panicked_at.map_or(String::new(), |s| format!("; the machine panicked at step {s}"))
                ),
                note: "a scenario run answers its own question; the claim is judged on the built-in mixes".into(),
            };
        }
        let judged: Vec<&MixRun> = d.runs.iter().filter(|r| r.mix == d.sweep.judged).collect();
        let [errors, survived, runs, ended, hw, off] = totals(judged.iter().copied());
        let Some(share) = ratio(survived, errors) else {
            return Verdict {
                holds: None,
                measured: format!(
                    "no error was injected into the {} mix's {runs} runs",
                    d.sweep.judged
                ),
                note: "raise the rate or the length of the runs".into(),
            };
        };
        let worst = d
            .sweep
            .rates
            .iter()
            .filter_map(|&rate| {
                let [e, _, _, _, hw, off] =
                    totals(judged.iter().copied().filter(|r| r.rate == rate));
                (e > 0).then(|| ratio(hw, off).unwrap_or(f64::INFINITY))
            })
            .fold(f64::INFINITY, f64::min);
        let holds = share >= SURVIVED_MIN && worst > WORK_RATIO_MIN;
        let deaths = judged
            .iter()
            .filter(|r| r.hwpoison.panicked_at.is_some())
            .count();
        Verdict {
            holds: Some(holds),
            measured: format!(
                "{} mix: the machine survived {survived} of {errors} errors ({:.1}%, threshold {:.0}%) and reached the end of {ended} of {runs} runs ({deaths} died of a consumed kernel frame); it did {:.2}x the work of a machine that panics on every error at its worst rate ({} accesses against {off} over all rates)",
                d.sweep.judged,
                100.0 * share,
                100.0 * SURVIVED_MIN,
                worst,
                hw
            ),
            note: "errors hit frames uniformly, so kernel frames take them in proportion to their share of memory; a kernel frame's error is fatal only once the kernel reads it (text as it runs, a page table at its task's next walk, a slab page when an object in it is read), so a run can end before that".into(),
        }
    }

    fn report(&self, d: &Data, _: &Verdict, r: &mut Report) {
        if let Some(s) = &d.scenario {
            r.config("scenario", s.path.as_str());
            memcg::report_run(r, &s.result, "");
            return;
        }
        kinds::report(&d.kinds, r);
        report_sweep(d, r);
        r.host = Host::model();
    }
}

/// Part 2's tables and plots.
fn report_sweep(d: &Data, r: &mut Report) {
    let c = &d.sweep;
    r.config("frames", c.frames)
        .config("steps", c.steps)
        .config("seeds", c.seeds)
        .config("judged_mix", c.judged.as_str())
        .config("kill", "late (vm.memory_failure_early_kill = 0)")
        .config("threshold.survived_min", SURVIVED_MIN)
        .config("threshold.work_ratio_min", WORK_RATIO_MIN);
    report_mixes(d, r);
    report_rates(d, r);
    report_deaths(d, r);
}

/// The frames of each kind in each mix.
fn report_mixes(d: &Data, r: &mut Report) {
    let c = &d.sweep;
    let mut t = Table::new(
        "memory mixes: frames of each kind at the end of a run (HWPOISON, lowest rate, first seed)",
        &[
            "mix",
            "kernel text",
            "reserved",
            "buddy",
            "slab",
            "page tables",
            "page cache and anonymous",
            "free",
        ],
    );
    for mix in &c.mixes {
        if let Some(run) = d.runs.iter().find(|x| x.mix == mix.name) {
            let s = run.hwpoison.shares;
            t.row(cells![
                mix.name.as_str(),
                s.text,
                s.reserved,
                s.buddy,
                s.slab,
                s.page_tables,
                s.user,
                s.free
            ]);
        }
    }
    r.table(t);
}

/// Each mix at each rate, HWPOISON against a panic on every error.
fn report_rates(d: &Data, r: &mut Report) {
    let c = &d.sweep;
    let mut t = Table::new(
        "mixes under an error rate: HWPOISON against a panic on every error",
        &[
            "mix",
            "errors per million accesses",
            "errors",
            "survived",
            "runs that reached the end",
            "ignored",
            "recovered",
            "delayed",
            "failed",
            "deaths by a consumed kernel frame",
            "tasks killed early",
            "tasks killed late",
            "mapped file entries unmapped",
            "pages of data lost",
            "work done (accesses)",
            "without HWPOISON",
            "work ratio",
        ],
    );
    let mut surv = Series::new(
        "share of errors survived",
        Axis::log("errors per million accesses", ""),
        Axis::linear("survived", "share"),
    );
    let mut work = Series::new(
        "work done against the error rate",
        Axis::log("errors per million accesses", ""),
        Axis::linear("accesses completed", "per run"),
    );
    for mix in &c.mixes {
        let (mut s_pts, mut hw_pts, mut off_pts) = (Vec::new(), Vec::new(), Vec::new());
        for &rate in &c.rates {
            let runs: Vec<&MixRun> = d
                .runs
                .iter()
                .filter(|x| x.mix == mix.name && x.rate == rate)
                .collect();
            let [errors, survived, n, ended, hw, off] = totals(runs.iter().copied());
            let sum = |f: fn(&RunOut) -> u64| runs.iter().map(|x| f(&x.hwpoison)).sum::<u64>();
            let res = |i: usize| runs.iter().map(|x| x.hwpoison.results[i]).sum::<u64>();
            t.row(cells![
                mix.name.as_str(),
                rate,
                errors,
                format!("{survived} of {errors}"),
                format!("{ended} of {n}"),
                res(0),
                res(1),
                res(2),
                res(3),
                n - ended,
                sum(|o| o.killed_early),
                sum(|o| o.killed_late),
                sum(|o| o.unmapped),
                sum(|o| o.data_lost),
                hw,
                off,
                ratio(hw, off)
            ]);
            if let Some(s) = ratio(survived, errors) {
                s_pts.push([rate, s]);
            }
            hw_pts.push([rate, hw as f64 / n.max(1) as f64]);
            off_pts.push([rate, off as f64 / n.max(1) as f64]);
        }
        surv.line(&mix.name, s_pts);
        work.line(&format!("{}: HWPOISON", mix.name), hw_pts);
        work.line(&format!("{}: panic on every error", mix.name), off_pts);
    }
    r.table(t);
    r.series(surv).series(work);
}

/// What killed each machine that died.
fn report_deaths(d: &Data, r: &mut Report) {
    let mut t = Table::new(
        "what killed the machine (HWPOISON runs that died)",
        &[
            "mix",
            "errors per million accesses",
            "seed",
            "at access",
            "cause",
        ],
    );
    for x in d.runs.iter().filter(|x| x.hwpoison.panicked_at.is_some()) {
        t.row(cells![
            x.mix.as_str(),
            x.rate,
            x.seed,
            x.hwpoison.panicked_at,
            x.hwpoison.cause.clone().unwrap_or_default()
        ]);
    }
    r.table(t);
}

#[cfg(test)]
mod tests;
