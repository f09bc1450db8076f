//! What an experiment is and what it is given.
//!
//! An experiment turns one claim of a seed page into a measurement. Its
//! [`Identity`] is data: a name, the seed page the claim comes from, the
//! claim in klab's words, the real-data inputs it takes, and whether it
//! can hibernate. Its work is three functions ([`Experiment`]):
//!
//! ```text
//!   measure(&Ctx) -> Data             runs the workload (built in, seeded,
//!                                     small with --quick; or real data)
//!   judge(&Data) -> Verdict           the claim against named thresholds:
//!                                     true, false, or null with the reason
//!   report(&Data, &Verdict, &mut Report)   tables, series and configuration
//! ```
//!
//! `Data` is serializable, so a test can hand `judge` data on which the
//! claim fails and see it say so. The harness ([`Run`]) calls the three in
//! order and fills the report's identity, seed, size and verdict; the list
//! of experiments lives in the crate that holds them
//! (`klab_experiments::all()`).

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::report::{Report, Verdict};

/// What an experiment is: as typed on the command line and listed by
/// `klab list`.
#[derive(Clone, Copy, Debug)]
pub struct Identity {
    /// Registry name, as typed on the command line (`radix-tree`).
    pub name: &'static str,
    /// The seed page the claim comes from (`004_9e86ca0f77558f15.txt`).
    pub seed_page: &'static str,
    /// The claim, in one line.
    pub claim: &'static str,
    /// The real-data inputs the experiment accepts besides its built-in
    /// workload (`--trace`, `--pcap`, ...).
    pub inputs: &'static [InputKind],
    /// Whether `klab run NAME --hibernate-at T` can stop it and `klab
    /// resume` continue it (`crate::hibernate`): `Ok` for a model
    /// experiment whose work goes through [`Ctx::job`] and [`Ctx::once`],
    /// `Err(why not)` otherwise.
    pub hibernates: Result<(), &'static str>,
}

impl Identity {
    /// Why an experiment that does real work cannot hibernate.
    pub const REAL_WORK: Result<(), &'static str> = Err(
        "it does real work on the host (threads, sockets, timings), which an image cannot hold",
    );
}

/// One experiment, in three steps (see the module header).
pub trait Experiment: Sync {
    /// What [`Experiment::measure`] found: everything the verdict and the
    /// report are computed from.
    type Data: Serialize + DeserializeOwned;

    /// The experiment's identity.
    const ID: Identity;

    /// Runs the workload and measures.
    ///
    /// # Errors
    /// An input that cannot be used, a host that refuses what the
    /// experiment needs, or a run stopped to hibernate.
    fn measure(&self, ctx: &Ctx<'_>) -> Result<Self::Data, ExperimentError>;

    /// The claim against the measurement: `holds` true or false from
    /// measured values and named thresholds, or `None` with the reason when
    /// the measurement cannot decide it.
    fn judge(&self, data: &Self::Data) -> Verdict;

    /// Lays the measurement out: configuration (thresholds included),
    /// tables, series, what of the host was used. The harness has filled
    /// the identity, seed and size, and sets the verdict afterwards.
    fn report(&self, data: &Self::Data, verdict: &Verdict, report: &mut Report);
}

/// An experiment as the harness runs it (every [`Experiment`] is one; an
/// object-safe trait, so one list holds them all). Sealed: the blanket
/// implementation over [`Experiment`] is the only one, so every experiment
/// is measured, judged and reported the same way.
pub trait Run: Sync + sealed::Sealed {
    /// The experiment's identity.
    fn id(&self) -> &'static Identity;

    /// Measures, judges and reports.
    ///
    /// # Errors
    /// What [`Experiment::measure`] returns.
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError>;

    /// Registry name.
    fn name(&self) -> &'static str {
        self.id().name
    }

    /// The seed page.
    fn seed_page(&self) -> &'static str {
        self.id().seed_page
    }

    /// The claim.
    fn claim(&self) -> &'static str {
        self.id().claim
    }

    /// The real-data inputs.
    fn inputs(&self) -> &'static [InputKind] {
        self.id().inputs
    }

    /// Whether it can hibernate.
    fn hibernates(&self) -> Result<(), &'static str> {
        self.id().hibernates
    }

    /// An empty report carrying the identity and the run's seed and size.
    fn blank_report(&self, ctx: &Ctx<'_>) -> Report {
        let id = self.id();
        let mut r = Report::new(id.name, id.seed_page, id.claim);
        r.config("seed", ctx.seed).config("quick", ctx.quick);
        r
    }
}

mod sealed {
    /// Implemented for every [`super::Experiment`] and nothing else.
    pub trait Sealed {}

    impl<E: super::Experiment> Sealed for E {}
}

impl<E: Experiment> Run for E {
    fn id(&self) -> &'static Identity {
        &const { E::ID }
    }

    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let data = self.measure(ctx)?;
        let verdict = self.judge(&data);
        let mut r = self.blank_report(ctx);
        self.report(&data, &verdict, &mut r);
        r.verdict = verdict;
        Ok(r)
    }
}

/// A kind of real-data input an experiment can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InputKind {
    /// A cache trace (`--trace FILE`).
    Trace,
    /// A packet capture (`--pcap FILE`).
    Pcap,
    /// A scenario file (`--scenario FILE`).
    Scenario,
    /// A git repository or a source tree (`--repo PATH`).
    Repo,
    /// A revision range in the repository (`--range A..B`), with `--repo`.
    Range,
    /// An employer map, gitdm's EmailMap format (`--employers FILE`), with
    /// `--repo`.
    Employers,
}

impl InputKind {
    /// The command-line flag that gives this input.
    pub fn flag(self) -> &'static str {
        match self {
            InputKind::Trace => "--trace",
            InputKind::Pcap => "--pcap",
            InputKind::Scenario => "--scenario",
            InputKind::Repo => "--repo",
            InputKind::Range => "--range",
            InputKind::Employers => "--employers",
        }
    }
}

/// Real-data inputs given on the command line.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `--trace FILE`.
    pub trace: Option<PathBuf>,
    /// `--pcap FILE`.
    pub pcap: Option<PathBuf>,
    /// `--scenario FILE`.
    pub scenario: Option<PathBuf>,
    /// `--repo PATH`.
    pub repo: Option<PathBuf>,
    /// `--range A..B`: the revisions of `--repo` to count.
    pub range: Option<String>,
    /// `--employers FILE`: who works where, for `--repo`.
    pub employers: Option<PathBuf>,
    /// `klab bench slub --suite DIR`: a built allocator benchmark suite.
    pub suite: Option<PathBuf>,
}

impl Inputs {
    /// The path given for `kind`, if any (`None` for [`InputKind::Range`],
    /// which is not a path).
    pub fn get(&self, kind: InputKind) -> Option<&Path> {
        match kind {
            InputKind::Trace => self.trace.as_deref(),
            InputKind::Pcap => self.pcap.as_deref(),
            InputKind::Scenario => self.scenario.as_deref(),
            InputKind::Repo => self.repo.as_deref(),
            InputKind::Employers => self.employers.as_deref(),
            InputKind::Range => None,
        }
    }

    /// The kinds that were given.
    pub fn given(&self) -> Vec<InputKind> {
        [
            InputKind::Trace,
            InputKind::Pcap,
            InputKind::Scenario,
            InputKind::Repo,
            InputKind::Range,
            InputKind::Employers,
        ]
        .into_iter()
        .filter(|k| match k {
            InputKind::Range => self.range.is_some(),
            k => self.get(*k).is_some(),
        })
        .collect()
    }
}

/// Reports progress of long work. The `klab` binary draws a bar on a
/// terminal and nothing otherwise; tests pass [`NoProgress`].
pub trait Progress: Sync {
    /// Starts a phase of `total` steps (0 when unknown).
    fn begin(&self, label: &str, total: u64);
    /// `n` more steps done.
    fn advance(&self, n: u64);
    /// The phase is over.
    fn end(&self);
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// What an experiment is given to run.
pub struct Ctx<'a> {
    /// The run's seed: every random choice derives from it.
    pub seed: u64,
    /// Small sizes, for CI: every table and series still present.
    pub quick: bool,
    /// Real-data inputs given on the command line.
    pub inputs: &'a Inputs,
    /// Where long work reports progress.
    pub progress: &'a dyn Progress,
    /// The hibernation driver, when the run may stop or resumes
    /// (`crate::hibernate`); `None` runs every job straight through.
    pub driver: Option<&'a crate::hibernate::Driver>,
}

impl<'a> Ctx<'a> {
    /// A context with no inputs and no progress display.
    pub fn new(seed: u64, quick: bool, inputs: &'a Inputs) -> Self {
        Ctx {
            seed,
            quick,
            inputs,
            progress: &NoProgress,
            driver: None,
        }
    }

    /// The same context under a hibernation driver.
    pub fn with_driver(&self, driver: &'a crate::hibernate::Driver) -> Ctx<'a> {
        Ctx {
            seed: self.seed,
            quick: self.quick,
            inputs: self.inputs,
            progress: self.progress,
            driver: Some(driver),
        }
    }

    /// A seeded generator for one purpose (`stream`) of this run.
    pub fn rng(&self, stream: u64) -> klab_model::rng::Rng {
        klab_model::rng::seeded(self.seed, stream)
    }

    /// `full` normally, `quick` under `--quick`.
    pub fn size<T>(&self, full: T, quick: T) -> T {
        if self.quick { quick } else { full }
    }
}

/// Why an experiment could not produce its report.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// A real-data input could not be used.
    #[error("{path}: {message}")]
    Input {
        /// The file or directory.
        path: PathBuf,
        /// What was wrong, with the offset or line where it applies.
        message: String,
    },
    /// A trace could not be read (the error names the file and where).
    #[error(transparent)]
    Trace(#[from] klab_trace::TraceError),
    /// The host refused something the experiment needs.
    #[error("host: {0}")]
    Host(String),
    /// The run stopped at this virtual time to hibernate (not a failure:
    /// the driver holds the image).
    #[error("stopped at virtual time {0} to hibernate")]
    Hibernated(u64),
    /// `--hibernate-at T` past the end of the run.
    #[error("the run ended at virtual time {end}, before {at}: nothing to hibernate")]
    EndedBefore {
        /// The time asked for.
        at: u64,
        /// Where the run ended.
        end: u64,
    },
    /// A hibernation image does not fit this experiment's run.
    #[error("hibernation image: {0}")]
    Image(String),
}
