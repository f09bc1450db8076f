//! Hibernating a model experiment: stop it at virtual time `T`, write its
//! complete state to an image, and resume it later to the same end,
//! counter for counter (seed 000_2fa08a6962ebae3f.txt, "Suspend and
//! hibernation status report"; the image format is
//! `klab_model::hibernate`).
//!
//! # The mechanism
//!
//! A model experiment does its work through the [`Ctx`]: each piece of work
//! is a **job**, run by [`Ctx::job`] (a [`Job`]: a serializable state
//! stepped one model event at a time, e.g. a machine, a workload cursor,
//! an RNG and the counters so far) or by [`Ctx::once`] (an atomic piece of
//! work whose result is serializable). The code around the jobs (building
//! workloads from the seed, tables and plots from the results) is a pure
//! function of the configuration and of the jobs' outputs.
//!
//! ```text
//!   run:       glue ─ job 0 ─ glue ─ job 1 ─ ... ─ job k (stepping) ...
//!                                                    ▲ clock >= T: stop
//!   image:     header (experiment, seed, quick, T, clock) + driver (clock,
//!              idle monitor) + outputs of jobs 0..k-1 + state of job k
//!   resume:    glue ─ job 0 (output from the image) ─ ... ─ job k (state
//!              from the image, stepping on) ─ job k+1 ... ─ report
//! ```
//!
//! Resuming runs the experiment's code again from the top; the driver hands
//! jobs that had finished their outputs from the image (checking each is
//! the same kind of job), restores the job that was stepping, and lets the
//! rest run. Nothing is recomputed that the image holds, and nothing the
//! image lacks is needed: the glue recomputes only what the configuration
//! fixes (generated workloads), and any input file is read inside a `once`
//! job so its contents travel in the image.
//!
//! # Virtual time
//!
//! The driver's clock counts the model's ticks (events: an access, a work
//! tick, a packet, a system call) over every job in run order. `T` stops
//! the run at the first step boundary at or after `T`: every step of a
//! [`Job`], and the start of each [`Ctx::once`], is a boundary. Each job
//! also says how long its tick is in nanoseconds, so the driver can keep an
//! [`IdleMonitor`]: a tick is busy when the model did work in it and idle
//! when its clock moved with nothing to do.
//!
//! # Invariants
//!
//! * A resumed run and an uninterrupted one make the same job calls in the
//!   same order, and each job ends in the same state (the driver can record
//!   every job's final state, [`Driver::recording`], which the tests
//!   compare byte for byte) and gives the same output.
//! * `clock` = Σ ticks of every step taken; the idle monitor's time =
//!   Σ ticks × the tick length of their job.

use std::sync::Mutex;

/// Reads an image file, its header checked before the rest is read.
pub use klab_model::hibernate::read as read_image;
use klab_model::hibernate::{self, Image, ImageError};
use klab_model::kernel::power::{IdleMonitor, SUSPEND_AFTER_NS};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::experiment::{Ctx, ExperimentError, Inputs, Progress, Run};

// Time scales. The model counts events; the idle report needs their
// length. These are klab's stated choices, one per kind of event, not
// measurements (the report prints them beside each experiment).

/// One page access (a page-cache lookup, a fault, a reclaim pass the
/// access triggers): 1 µs, the order of a page-cache hit through `read()`.
pub const ACCESS_TICK_NS: u64 = 1_000;
/// One system call of a model program (`open`, `write`, `read` of a
/// packet): 1 µs.
pub const SYSCALL_TICK_NS: u64 = 1_000;
/// One tick of the lazy-workqueue workload: its own 10 ms.
pub const WQ_TICK_NS: u64 = 10_000_000;
/// One tick of the model sysfs: 1 ms (a `show()` lasts a few).
pub const SYSFS_TICK_NS: u64 = 1_000_000;
/// One task created, reaped or list node visited at boot and module load:
/// 1 µs.
pub const TASK_TICK_NS: u64 = 1_000;
/// One radix-tree operation (an insert, a lookup, a node visited): 100 ns.
pub const TREE_TICK_NS: u64 = 100;
/// One Ethernet frame through LRO/GRO: 12 µs, a full-size frame's time on
/// a 1 Gb/s link.
pub const FRAME_TICK_NS: u64 = 12_000;

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Work for this many ticks.
    Busy(u64),
    /// Nothing to do for this many ticks.
    Idle(u64),
    /// The job is over.
    Done,
}

/// A piece of model work that can stop between any two steps.
pub trait Job: Serialize + DeserializeOwned {
    /// What the job reads but does not own (a generated workload, a
    /// scenario): rebuilt from the configuration, never in an image.
    type Env: ?Sized;
    /// What it produces.
    type Output: Serialize + DeserializeOwned;
    /// A name, checked when a state is restored from an image.
    const KIND: &'static str;
    /// The length of one tick in nanoseconds (the idle report's scale).
    const TICK_NS: u64;
    /// One step.
    fn step(&mut self, env: &Self::Env) -> Step;
    /// The output, once [`Job::step`] returned [`Step::Done`].
    fn finish(self, env: &Self::Env) -> Self::Output;
    /// Checks a state read from an image against `env` (indices in range,
    /// a machine's invariants); the default accepts it.
    ///
    /// # Errors
    /// What is wrong.
    fn check(&self, _env: &Self::Env) -> Result<(), String> {
        Ok(())
    }
}

/// Busy and idle ticks reported by a [`Ctx::once`] job, in order.
#[derive(Clone, Debug, Default)]
pub struct Span {
    parts: Vec<(bool, u64)>,
}

impl Span {
    /// `n` ticks of work.
    pub fn busy(&mut self, n: u64) {
        self.parts.push((true, n));
    }

    /// `n` ticks with nothing to do.
    pub fn idle(&mut self, n: u64) {
        self.parts.push((false, n));
    }
}

/// A finished job as an image keeps it.
#[derive(Clone, Debug)]
struct DoneJob {
    kind: String,
    output: Vec<u8>,
}

/// The job that was running when the run stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct InFlight {
    index: usize,
    kind: String,
    /// Its state (`None` for a `once` job, which had not started).
    state: Option<Vec<u8>>,
}

/// The driver's own state in an image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DriverState {
    clock: u64,
    idle: IdleMonitor,
}

#[derive(Debug)]
struct Inner {
    stop_at: Option<u64>,
    st: DriverState,
    next_job: usize,
    done: Vec<DoneJob>,
    resume: Option<InFlight>,
    stopped: Option<InFlight>,
    record_states: bool,
    final_states: Vec<Vec<u8>>,
}

/// Runs an experiment's jobs, counting virtual time; stops at `T` and
/// resumes from an image (see the module documentation).
#[derive(Debug)]
pub struct Driver {
    inner: Mutex<Inner>,
}

/// What an image's header says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageHeader {
    /// The klab version that wrote it; only the same version resumes it.
    pub klab_version: String,
    /// The experiment.
    pub experiment: String,
    /// The run's seed.
    pub seed: u64,
    /// `--quick`.
    pub quick: bool,
    /// `--hibernate-at`.
    pub requested_at: u64,
    /// Where the run stopped (the first step boundary at or after
    /// `requested_at`).
    pub stopped_at: u64,
    /// The kinds of the finished jobs, in order (one `DONE` section each).
    pub done: Vec<String>,
    /// The job that was running (its state is the `JOB ` section).
    pub in_flight: Option<(usize, String)>,
}

const HEAD: &[u8; 4] = b"HEAD";
const DRIV: &[u8; 4] = b"DRIV";
const DONE: &[u8; 4] = b"DONE";
const JOB: &[u8; 4] = b"JOB ";

fn lock(d: &Driver) -> std::sync::MutexGuard<'_, Inner> {
    d.inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Driver {
    fn with(inner: Inner) -> Self {
        Driver {
            inner: Mutex::new(inner),
        }
    }

    /// A driver for a fresh run, stopping at `stop_at` if given.
    pub fn new(stop_at: Option<u64>) -> Self {
        Driver::with(Inner {
            stop_at,
            st: DriverState {
                clock: 0,
                idle: IdleMonitor::new(SUSPEND_AFTER_NS),
            },
            next_job: 0,
            done: Vec::new(),
            resume: None,
            stopped: None,
            record_states: false,
            final_states: Vec::new(),
        })
    }

    /// Also keep each job's final state (tests compare them).
    pub fn recording(self) -> Self {
        lock(&self).record_states = true;
        self
    }

    /// The clock: ticks so far.
    pub fn clock(&self) -> u64 {
        lock(self).st.clock
    }

    /// The idle monitor.
    pub fn idle(&self) -> IdleMonitor {
        lock(self).st.idle.clone()
    }

    /// Whether the run stopped to hibernate.
    pub fn stopped(&self) -> bool {
        lock(self).stopped.is_some()
    }

    /// Jobs finished so far (from the image and in this run).
    pub fn jobs_done(&self) -> usize {
        lock(self).done.len()
    }

    /// The final state of every job that finished in this run, in order,
    /// when [`Driver::recording`]; jobs finished before a resume have theirs
    /// in the run that hibernated.
    pub fn final_states(&self) -> Vec<Vec<u8>> {
        lock(self).final_states.clone()
    }

    /// The image of a stopped run.
    ///
    /// # Panics
    /// If the run did not stop.
    pub fn image(&self, experiment: &str, ctx: &Ctx<'_>, requested_at: u64) -> Vec<u8> {
        let g = lock(self);
        let fl = g.stopped.as_ref().expect("the run stopped");
        let head = ImageHeader {
            klab_version: env!("CARGO_PKG_VERSION").to_owned(),
            experiment: experiment.to_owned(),
            seed: ctx.seed,
            quick: ctx.quick,
            requested_at,
            stopped_at: g.st.clock,
            done: g.done.iter().map(|d| d.kind.clone()).collect(),
            in_flight: Some((fl.index, fl.kind.clone())),
        };
        let mut sections = vec![
            (*HEAD, hibernate::encode(&head)),
            (*DRIV, hibernate::encode(&g.st)),
        ];
        for d in &g.done {
            sections.push((*DONE, d.output.clone()));
        }
        if let Some(s) = &fl.state {
            sections.push((*JOB, s.clone()));
        }
        hibernate::write(&sections)
    }

    /// Reads an image: its header and a driver that resumes the run.
    ///
    /// # Errors
    /// A damaged image, or one written by another klab version.
    pub fn resume(bytes: &[u8]) -> Result<(ImageHeader, Driver), ImageError> {
        let img: Image = hibernate::parse(bytes)?;
        let missing = |what: &str| ImageError {
            offset: hibernate::HEADER_LEN as u64,
            message: format!("no {what} section"),
        };
        let head_sec = img.section(HEAD).ok_or_else(|| missing("HEAD"))?;
        let head: ImageHeader = head_sec.decode()?;
        let version = env!("CARGO_PKG_VERSION");
        if head.klab_version != version {
            return Err(ImageError {
                offset: head_sec.offset,
                message: format!(
                    "written by klab {}, this is klab {version}: resume it with the version that wrote it",
                    head.klab_version
                ),
            });
        }
        let st: DriverState = img.section(DRIV).ok_or_else(|| missing("DRIV"))?.decode()?;
        let done_secs: Vec<_> = img.all(DONE).collect();
        if done_secs.len() != head.done.len() || st.clock != head.stopped_at {
            return Err(ImageError {
                offset: head_sec.offset,
                message: format!(
                    "the header lists {} finished jobs stopped at {}, the image holds {} at {}",
                    head.done.len(),
                    head.stopped_at,
                    done_secs.len(),
                    st.clock
                ),
            });
        }
        let done = head
            .done
            .iter()
            .zip(done_secs)
            .map(|(k, s)| DoneJob {
                kind: k.clone(),
                output: s.data.clone(),
            })
            .collect();
        let resume = match &head.in_flight {
            Some((index, kind)) => {
                if *index != head.done.len() {
                    return Err(ImageError {
                        offset: head_sec.offset,
                        message: format!(
                            "job {index} in flight after {} finished ones",
                            head.done.len()
                        ),
                    });
                }
                Some(InFlight {
                    index: *index,
                    kind: kind.clone(),
                    state: img.section(JOB).map(|s| s.data.clone()),
                })
            }
            None => None,
        };
        let d = Driver::with(Inner {
            stop_at: None,
            st,
            next_job: 0,
            done,
            resume,
            stopped: None,
            record_states: false,
            final_states: Vec::new(),
        });
        Ok((head, d))
    }

    /// Stops the resumed run again at `at` (a later hibernation).
    pub fn stop_at(self, at: Option<u64>) -> Self {
        lock(&self).stop_at = at;
        self
    }
}

fn hibernated(clock: u64) -> ExperimentError {
    ExperimentError::Hibernated(clock)
}

fn image_err(what: String) -> ExperimentError {
    ExperimentError::Image(what)
}

fn account(st: &mut DriverState, busy: bool, ticks: u64, tick_ns: u64) {
    st.clock += ticks;
    let ns = ticks.saturating_mul(tick_ns);
    if busy {
        st.idle.busy(ns);
    } else {
        st.idle.idle(ns);
    }
}

impl Ctx<'_> {
    /// Runs a job to its end (or, under a driver, to the stop point: then
    /// `Err(ExperimentError::Hibernated)`, which the experiment passes up
    /// with `?`).
    ///
    /// # Errors
    /// [`ExperimentError::Hibernated`] when the run stops here;
    /// [`ExperimentError::Image`] when a resumed image does not match.
    pub fn job<J: Job>(
        &self,
        env: &J::Env,
        make: impl FnOnce() -> Result<J, ExperimentError>,
    ) -> Result<J::Output, ExperimentError> {
        let Some(d) = self.driver else {
            let mut j = make()?;
            while j.step(env) != Step::Done {}
            return Ok(j.finish(env));
        };
        let (mut j, stop_at, index, mut st) = {
            let mut g = lock(d);
            let index = g.next_job;
            g.next_job += 1;
            if let Some(done) = g.done.get(index) {
                if done.kind != J::KIND {
                    return Err(image_err(format!(
                        "job {index} is \"{}\" in the image, \"{}\" in this run",
                        done.kind,
                        J::KIND
                    )));
                }
                return ciborium::from_reader(done.output.as_slice())
                    .map_err(|e| image_err(format!("job {index} ({}): output: {e}", J::KIND)));
            }
            let j = match g.resume.take() {
                Some(fl) if fl.index == index => {
                    if fl.kind != J::KIND {
                        return Err(image_err(format!(
                            "job {index} is \"{}\" in the image, \"{}\" in this run",
                            fl.kind,
                            J::KIND
                        )));
                    }
                    let Some(bytes) = fl.state else {
                        return Err(image_err(format!(
                            "job {index} ({}) has no state in the image",
                            J::KIND
                        )));
                    };
                    let j: J = ciborium::from_reader(bytes.as_slice())
                        .map_err(|e| image_err(format!("job {index} ({}): state: {e}", J::KIND)))?;
                    j.check(env)
                        .map_err(|e| image_err(format!("job {index} ({}): {e}", J::KIND)))?;
                    j
                }
                other => {
                    g.resume = other;
                    drop(g);
                    let j = make()?;
                    g = lock(d);
                    j
                }
            };
            (j, g.stop_at, index, g.st.clone())
        };
        loop {
            if stop_at.is_some_and(|t| st.clock >= t) {
                let mut g = lock(d);
                g.st = st;
                g.stopped = Some(InFlight {
                    index,
                    kind: J::KIND.to_owned(),
                    state: Some(hibernate::encode(&j)),
                });
                return Err(hibernated(g.st.clock));
            }
            match j.step(env) {
                Step::Busy(n) => account(&mut st, true, n, J::TICK_NS),
                Step::Idle(n) => account(&mut st, false, n, J::TICK_NS),
                Step::Done => break,
            }
        }
        let mut g = lock(d);
        g.st = st;
        if g.record_states {
            g.final_states.push(hibernate::encode(&j));
        }
        let out = j.finish(env);
        g.done.push(DoneJob {
            kind: J::KIND.to_owned(),
            output: hibernate::encode(&out),
        });
        Ok(out)
    }

    /// Runs an atomic piece of work (the run can stop before it, not in
    /// it). `f` reports its busy and idle ticks, of `tick_ns` each, in
    /// `Span`.
    ///
    /// # Errors
    /// As [`Ctx::job`], and whatever `f` returns.
    pub fn once<T: Serialize + DeserializeOwned>(
        &self,
        kind: &'static str,
        tick_ns: u64,
        f: impl FnOnce(&mut Span) -> Result<T, ExperimentError>,
    ) -> Result<T, ExperimentError> {
        let Some(d) = self.driver else {
            return f(&mut Span::default());
        };
        let index = {
            let mut g = lock(d);
            let index = g.next_job;
            g.next_job += 1;
            if let Some(done) = g.done.get(index) {
                if done.kind != kind {
                    return Err(image_err(format!(
                        "job {index} is \"{}\" in the image, \"{kind}\" in this run",
                        done.kind
                    )));
                }
                return ciborium::from_reader(done.output.as_slice())
                    .map_err(|e| image_err(format!("job {index} ({kind}): output: {e}")));
            }
            match g.resume.take() {
                Some(fl) if fl.index == index => {
                    if fl.kind != kind {
                        return Err(image_err(format!(
                            "job {index} is \"{}\" in the image, \"{kind}\" in this run",
                            fl.kind
                        )));
                    }
                }
                other => g.resume = other,
            }
            if g.stop_at.is_some_and(|t| g.st.clock >= t) {
                g.stopped = Some(InFlight {
                    index,
                    kind: kind.to_owned(),
                    state: None,
                });
                return Err(hibernated(g.st.clock));
            }
            index
        };
        let mut span = Span::default();
        let out = f(&mut span)?;
        let mut g = lock(d);
        for (busy, n) in span.parts {
            account(&mut g.st, busy, n, tick_ns);
        }
        let bytes = hibernate::encode(&out);
        if g.record_states {
            g.final_states.push(bytes.clone());
        }
        debug_assert_eq!(g.done.len(), index);
        g.done.push(DoneJob {
            kind: kind.to_owned(),
            output: bytes,
        });
        Ok(out)
    }
}

/// Runs `e` under a driver that stops at `at`, and returns the image.
///
/// # Errors
/// [`ExperimentError::EndedBefore`] when the run ends first; whatever the
/// experiment returns; a refusal when it cannot hibernate.
pub fn hibernate_at(e: &dyn Run, ctx: &Ctx<'_>, at: u64) -> Result<Vec<u8>, ExperimentError> {
    e.hibernates()
        .map_err(|why| ExperimentError::Image(format!("{} cannot hibernate: {why}", e.name())))?;
    let d = Driver::new(Some(at));
    match e.run(&ctx.with_driver(&d)) {
        Err(ExperimentError::Hibernated(_)) if d.stopped() => Ok(d.image(e.name(), ctx, at)),
        Err(err) => Err(err),
        Ok(_) => Err(ExperimentError::EndedBefore { at, end: d.clock() }),
    }
}

/// What resuming an image gave.
pub struct Resumed {
    /// The image's header.
    pub header: ImageHeader,
    /// The experiment's report, as an uninterrupted run writes it.
    pub report: crate::report::Report,
    /// The driver, after the run (clock, idle monitor, recorded states).
    pub driver: Driver,
}

/// Why an image could not be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// The image is damaged or from another version.
    #[error("{0}")]
    Image(#[from] ImageError),
    /// It names an experiment this klab does not have or cannot resume.
    #[error("{0}")]
    Experiment(String),
    /// The resumed run failed.
    #[error("{0}")]
    Run(#[from] ExperimentError),
}

/// Resumes an image to the end of its run (or to `stop_at`, hibernating
/// again: then `Err(Run(Hibernated))` and the driver in `on_stop` is not
/// returned; use [`resume_driver`] for that).
///
/// # Errors
/// See [`ResumeError`].
pub fn resume(
    bytes: &[u8],
    find: Find<'_>,
    progress: &dyn Progress,
    record: bool,
) -> Result<Resumed, ResumeError> {
    let (header, e, driver) = resume_driver(bytes, find)?;
    let driver = if record { driver.recording() } else { driver };
    let inputs = Inputs::default();
    let ctx = Ctx {
        seed: header.seed,
        quick: header.quick,
        inputs: &inputs,
        progress,
        driver: Some(&driver),
    };
    let report = e.run(&ctx)?;
    Ok(Resumed {
        header,
        report,
        driver,
    })
}

/// Finds an experiment by name (`klab_experiments::find`).
pub type Find<'a> = &'a dyn Fn(&str) -> Option<&'static dyn Run>;

/// Reads an image into its header, its experiment (looked up with
/// `find`) and a driver ready to resume it.
///
/// # Errors
/// See [`ResumeError`].
pub fn resume_driver(
    bytes: &[u8],
    find: Find<'_>,
) -> Result<(ImageHeader, &'static dyn Run, Driver), ResumeError> {
    let (header, driver) = Driver::resume(bytes)?;
    let e = find(&header.experiment).ok_or_else(|| {
        ResumeError::Experiment(format!(
            "the image is of experiment {:?}, which this klab does not have",
            header.experiment
        ))
    })?;
    e.hibernates()
        .map_err(|why| ResumeError::Experiment(format!("{} cannot resume: {why}", e.name())))?;
    Ok((header, e, driver))
}

/// What a hibernation round trip found.
#[derive(Clone, Debug)]
pub struct RoundTrip {
    /// Ticks of the uninterrupted run.
    pub total: u64,
    /// Its idle monitor.
    pub idle: IdleMonitor,
    /// Where the run stopped.
    pub stopped_at: u64,
    /// Jobs finished before it.
    pub jobs_before: usize,
    /// The image's size.
    pub image_bytes: usize,
    /// The resumed run's report is the uninterrupted one's, byte for byte
    /// (as JSON).
    pub same_report: bool,
    /// Every job ended in the same state, byte for byte.
    pub same_states: bool,
    /// The resumed run's clock and idle monitor end where the
    /// uninterrupted run's do.
    pub same_clock: bool,
}

/// Runs `e` uninterrupted under a recording driver, then again stopped at
/// `fraction` of its ticks, resumes the image, and compares.
///
/// # Errors
/// Whatever the runs return.
pub fn round_trip(
    e: &'static dyn Run,
    ctx: &Ctx<'_>,
    fraction: f64,
) -> Result<RoundTrip, ExperimentError> {
    let json = |r: &crate::report::Report| serde_json::to_string(r).unwrap_or_default();
    let whole = Driver::new(None).recording();
    let full = e.run(&ctx.with_driver(&whole))?;
    let total = whole.clock();
    let at = ((total as f64 * fraction) as u64).clamp(1, total.saturating_sub(1).max(1));
    let first = Driver::new(Some(at)).recording();
    match e.run(&ctx.with_driver(&first)) {
        Err(ExperimentError::Hibernated(_)) => {}
        Err(err) => return Err(err),
        Ok(_) => {
            return Err(ExperimentError::EndedBefore {
                at,
                end: first.clock(),
            });
        }
    }
    let image = first.image(e.name(), ctx, at);
    let this = |name: &str| (name == e.name()).then_some(e);
    let r = resume(&image, &this, ctx.progress, true).map_err(|err| match err {
        ResumeError::Run(x) => x,
        other => ExperimentError::Image(other.to_string()),
    })?;
    let mut states = first.final_states();
    states.extend(r.driver.final_states());
    Ok(RoundTrip {
        total,
        idle: whole.idle(),
        stopped_at: r.header.stopped_at,
        jobs_before: r.header.done.len(),
        image_bytes: image.len(),
        same_report: json(&r.report) == json(&full),
        same_states: states == whole.final_states(),
        same_clock: r.driver.clock() == total && r.driver.idle() == whole.idle(),
    })
}
