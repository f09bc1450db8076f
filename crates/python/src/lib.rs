//! klab from Python: the `klab` module.
//!
//! `klab.replay`, `klab.mrc`, `klab.policies`, `klab.experiments` and
//! `klab.run` call the same library functions as `klab replay`, `klab list`
//! and `klab run`, and return what they report as plain dicts and lists.
//!
//! Two layers. This module is plain Rust: each call takes Rust values,
//! does the work and returns a [`serde_json::Value`] (the JSON the CLI
//! writes, or a flat record of it) or an [`Error`] whose text is the
//! message the CLI prints after `klab: `. The Rust tests exercise this
//! layer without a Python interpreter. `py` (the `python` feature, which
//! maturin turns on) is the PyO3 glue: it converts arguments, releases the
//! GIL around the call, turns the value into Python objects and the error
//! into the matching exception of `klab` (`python/klab/_errors.py`).

use std::fmt;
use std::path::PathBuf;

use klab_experiments::mm::replay::{self, Outcome, ReplayOptions, Unit};
use klab_lab::{Ctx, ExperimentError, InputKind, Inputs, NoProgress, Run};
use klab_mm_policy::PolicyKind;
use klab_trace::{ErrorKind, Format, TraceError};
use serde_json::{Value, json};

#[cfg(feature = "python")]
mod py;

/// A size as Python gives it: a number, or text with a binary unit
/// (`"64MiB"`), read as `klab replay --memory` reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Size {
    /// Bytes (or objects, with `ignore_size`).
    Count(u64),
    /// Text for [`replay::parse_size`].
    Text(String),
}

impl Size {
    /// The size in bytes (or objects).
    ///
    /// # Errors
    /// Text that is no size, or zero.
    pub fn resolve(&self, what: &str) -> Result<u64, Error> {
        match self {
            Size::Count(0) => Err(Error::Usage(format!("{what}: must be at least 1"))),
            Size::Count(n) => Ok(*n),
            Size::Text(t) => {
                replay::parse_size(t).map_err(|e| Error::Usage(format!("{what}: {e}")))
            }
        }
    }
}

/// Why a call failed. The text ([`fmt::Display`]) is the message `klab`
/// prints after `klab: ` for the same fault.
#[derive(Clone, Debug, PartialEq)]
pub enum Error {
    /// An argument that is not valid: an unknown policy, unit, format or
    /// experiment, a bad size, an input the experiment does not take.
    Usage(String),
    /// A trace that is not well formed, with where the fault is.
    Trace {
        /// The whole message.
        message: String,
        /// The trace file.
        path: PathBuf,
        /// Byte offset of the faulty record or line, when the fault has one.
        offset: Option<u64>,
        /// The record (0-based) of a binary trace.
        record: Option<u64>,
        /// The line (1-based) of a text trace.
        line: Option<u64>,
    },
    /// A file that cannot be read (missing, unreadable).
    File {
        /// The whole message.
        message: String,
        /// The file.
        path: PathBuf,
    },
    /// A real-data input an experiment cannot use.
    Input {
        /// The whole message.
        message: String,
        /// The file or directory.
        path: PathBuf,
    },
    /// The host refused something the experiment needs.
    Host(String),
    /// Anything else an experiment reports.
    Other(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Host(m) | Error::Other(m) => f.write_str(m),
            Error::Trace { message, .. }
            | Error::File { message, .. }
            | Error::Input { message, .. } => f.write_str(message),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// Classifies an experiment's error; `prefix` is put before the message
    /// as `klab run` does (`NAME: `), or nothing for `klab replay`.
    fn from_experiment(e: ExperimentError, prefix: &str) -> Self {
        let message = format!("{prefix}{e}");
        match e {
            ExperimentError::Trace(t) => Error::from_trace(t, message),
            ExperimentError::Input { path, .. } => Error::Input { message, path },
            ExperimentError::Host(_) => Error::Host(message),
            _ => Error::Other(message),
        }
    }

    fn from_trace(t: TraceError, message: String) -> Self {
        if let ErrorKind::Io(_) = t.kind {
            return Error::File {
                message,
                path: t.path,
            };
        }
        let at = t.at;
        Error::Trace {
            message,
            path: t.path,
            offset: at.map(|a| a.offset),
            record: at.filter(|a| !a.is_line).map(|a| a.record),
            line: at.filter(|a| a.is_line).map(|a| a.record),
        }
    }
}

/// What `klab.replay` and `klab.mrc` are given besides policy and size.
#[derive(Clone, Debug)]
pub struct TraceArgs {
    /// The trace file.
    pub trace: PathBuf,
    /// `"object"` or `"page"`; the policy's default when `None`.
    pub unit: Option<String>,
    /// The trace format's name; from the file name when `None`.
    pub format: Option<String>,
    /// Every object has size 1 and sizes count objects.
    pub ignore_size: bool,
    /// Bytes per block number in page mode; the format's default when `None`.
    pub block_size: Option<Size>,
    /// Threads for curves; the number of CPUs when `None`.
    pub threads: Option<usize>,
    /// SHARDS spatial sampling at this rate (`klab replay --sample`);
    /// exact when `None`.
    pub sample: Option<f64>,
    /// Draw OPT's curve beside a miss-ratio curve (`klab replay` does
    /// unless `--no-opt`).
    pub opt: bool,
}

impl TraceArgs {
    /// Replay options for one policy and size: every field set here, as
    /// `klab replay` sets them (klab/src/cmd/replay.rs).
    fn options(&self, policy: PolicyKind, memory: u64, mrc: bool) -> Result<ReplayOptions, Error> {
        Ok(ReplayOptions {
            trace: self.trace.clone(),
            format: self
                .format
                .as_deref()
                .map(str::parse::<Format>)
                .transpose()
                .map_err(Error::Usage)?,
            memory,
            policy,
            unit: self.unit.as_deref().map(parse_unit).transpose()?,
            ignore_size: self.ignore_size,
            block_size: self
                .block_size
                .as_ref()
                .map(|b| b.resolve("block_size"))
                .transpose()?,
            mrc,
            no_opt: !self.opt,
            sample: self.sample,
            sample_check: false,
            threads: self.threads(),
        })
    }

    fn threads(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}

fn parse_unit(s: &str) -> Result<Unit, Error> {
    match s.to_ascii_lowercase().as_str() {
        "object" => Ok(Unit::Object),
        "page" => Ok(Unit::Page),
        _ => Err(Error::Usage(format!(
            "unknown unit {s:?}; known units: object, page"
        ))),
    }
}

fn parse_policy(s: &str) -> Result<PolicyKind, Error> {
    s.parse().map_err(Error::Usage)
}

/// The counts of one outcome, flat.
fn outcome(o: &Outcome) -> serde_json::Map<String, Value> {
    let s = o.stats;
    let Value::Object(m) = json!({
        "memory": o.memory,
        "requests": s.requests,
        "hits": s.hits,
        "misses": s.misses,
        "hit_ratio": s.hit_ratio(),
        "miss_ratio": s.miss_ratio(),
        "request_bytes": s.request_bytes,
        "miss_bytes": s.miss_bytes,
        "evictions": s.evictions,
        "refaults": o.refaults,
        "activations": o.activations,
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    m
}

/// A float as JSON, `null` when not finite (as the reports write them).
fn finite(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// `klab.replay`: `klab replay TRACE --policy P --memory M [--mrc]`. The
/// counts of the run, its speed, `mrc` (one record per size, with `mrc`),
/// and `report`, the report `klab replay --json -` prints (its one entry
/// of `reports`).
///
/// # Errors
/// A bad argument, or the trace's fault as `klab replay` reports it.
pub fn replay(args: &TraceArgs, policy: &str, memory: &Size, mrc: bool) -> Result<Value, Error> {
    let policy = parse_policy(policy)?;
    let memory = memory.resolve("memory")?;
    let opts = args.options(policy, memory, mrc)?;
    let r = replay::run(&opts, &NoProgress).map_err(|e| Error::from_experiment(e, ""))?;
    let mut m = outcome(&r.main);
    let config = |k: &str| r.report.config.get(k).map(|c| json!(c));
    m.insert("trace".into(), json!(opts.trace.display().to_string()));
    m.insert("format".into(), config("format").unwrap_or(Value::Null));
    m.insert("policy".into(), json!(policy.name()));
    m.insert("unit".into(), json!(r.unit.name()));
    m.insert("ignore_size".into(), json!(opts.ignore_size));
    m.insert(
        "block_size".into(),
        config("block_size").unwrap_or(Value::Null),
    );
    m.insert("requests_per_sec".into(), finite(r.requests_per_sec));
    m.insert("secs".into(), finite(r.secs));
    m.insert("distinct_keys".into(), json!(r.distinct_keys));
    m.insert(
        "bytes_per_key".into(),
        r.bytes_per_key.map_or(Value::Null, finite),
    );
    m.insert(
        "mrc".into(),
        Value::Array(r.mrc.iter().map(|o| Value::Object(outcome(o))).collect()),
    );
    m.insert("report".into(), report_value(&r.report));
    Ok(Value::Object(m))
}

/// `klab.mrc`: every policy at every size, one record each (policy-major),
/// the cells replayed on `threads` threads. Each record holds what
/// `klab replay --policy P --memory SIZE` counts.
///
/// # Errors
/// A bad argument, or the trace's fault (the first cell's).
pub fn mrc(args: &TraceArgs, policies: &[String], sizes: &[Size]) -> Result<Vec<Value>, Error> {
    let policies: Vec<PolicyKind> = policies
        .iter()
        .map(|p| parse_policy(p))
        .collect::<Result<_, _>>()?;
    let sizes: Vec<u64> = sizes
        .iter()
        .map(|s| s.resolve("sizes"))
        .collect::<Result<_, _>>()?;
    let cells: Vec<(PolicyKind, u64)> = policies
        .iter()
        .flat_map(|&p| sizes.iter().map(move |&m| (p, m)))
        .collect();
    let opts: Vec<ReplayOptions> = cells
        .iter()
        .map(|&(p, m)| args.options(p, m, false))
        .collect::<Result<_, _>>()?;
    let done = parallel_map(&opts, args.threads(), |o| {
        replay::run(o, &NoProgress).map(|r| (r.main, r.unit))
    });
    let mut out = Vec::with_capacity(done.len());
    for (o, r) in opts.iter().zip(done) {
        let (main, unit) = r.map_err(|e| Error::from_experiment(e, ""))?;
        let mut m = outcome(&main);
        m.insert("policy".into(), json!(o.policy.name()));
        m.insert("unit".into(), json!(unit.name()));
        out.push(Value::Object(m));
    }
    Ok(out)
}

/// Applies `f` to every item on up to `threads` threads, keeping order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *slots[i].lock().expect("no panic holds a slot") = Some(r);
                }
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("no panic holds a slot")
                .expect("every item mapped")
        })
        .collect()
}

/// `klab.policies`: the names `klab replay --policy` takes.
pub fn policies() -> Vec<&'static str> {
    PolicyKind::ALL.iter().map(|p| p.name()).collect()
}

/// The Python keyword of an input (`klab run --trace` is `trace=`).
fn input_keyword(k: InputKind) -> &'static str {
    k.flag().trim_start_matches("--")
}

/// `klab.experiments`: what `klab list` prints, one record per experiment
/// (name, seed page, claim, the inputs it takes as `klab.run` keywords,
/// and whether it can hibernate).
pub fn experiments() -> Vec<Value> {
    klab_experiments::all()
        .iter()
        .map(|e| {
            json!({
                "name": e.name(),
                "seed_page": e.seed_page(),
                "claim": e.claim(),
                "inputs": e.inputs().iter().map(|&k| input_keyword(k)).collect::<Vec<_>>(),
                "hibernates": e.hibernates().is_ok(),
            })
        })
        .collect()
}

/// One `klab.run` input: the keyword and its value.
#[derive(Clone, Debug)]
pub struct Input {
    /// `trace`, `pcap`, `scenario`, `repo`, `range` or `employers`.
    pub keyword: String,
    /// A path, or the revision range for `range`.
    pub value: String,
}

/// The keywords `klab.run` takes as inputs.
pub const INPUT_KEYWORDS: [&str; 6] = ["trace", "pcap", "scenario", "repo", "range", "employers"];

fn inputs_of(given: &[Input]) -> Result<Inputs, Error> {
    let mut inputs = Inputs {
        trace: None,
        pcap: None,
        scenario: None,
        repo: None,
        range: None,
        employers: None,
        suite: None,
    };
    for i in given {
        let path = Some(PathBuf::from(&i.value));
        match i.keyword.as_str() {
            "trace" => inputs.trace = path,
            "pcap" => inputs.pcap = path,
            "scenario" => inputs.scenario = path,
            "repo" => inputs.repo = path,
            "employers" => inputs.employers = path,
            "range" => inputs.range = Some(i.value.clone()),
            other => {
                return Err(Error::Usage(format!(
                    "unknown input {other:?}; inputs: {}",
                    INPUT_KEYWORDS.join(", ")
                )));
            }
        }
    }
    Ok(inputs)
}

/// Every input given must be taken by the experiment and must exist (as
/// `klab run` checks them, with its messages).
fn check_inputs(e: &dyn Run, inputs: &Inputs) -> Result<(), Error> {
    for kind in inputs.given() {
        if !e.inputs().contains(&kind) {
            let takers: Vec<&str> = klab_experiments::all()
                .iter()
                .filter(|e| e.inputs().contains(&kind))
                .map(|e| e.name())
                .collect();
            return Err(Error::Usage(format!(
                "{} is not used by the selected experiments; experiments that take it: {}",
                kind.flag(),
                if takers.is_empty() {
                    "none".to_owned()
                } else {
                    takers.join(", ")
                }
            )));
        }
        if let Some(path) = inputs.get(kind)
            && let Err(err) = std::fs::metadata(path)
        {
            return Err(Error::File {
                message: format!("{} {}: {err}", kind.flag(), path.display()),
                path: path.to_owned(),
            });
        }
    }
    Ok(())
}

/// `klab.run`: `klab run NAME --seed S [--quick] [--trace ...]`; the
/// experiment's report, as in `report.json`.
///
/// # Errors
/// An unknown experiment, an input it does not take or cannot read, or the
/// experiment's own error (`NAME: ...`, as `klab run` prints it).
pub fn run(name: &str, seed: u64, quick: bool, given: &[Input]) -> Result<Value, Error> {
    let Some(e) = klab_experiments::find(name) else {
        let known: Vec<&str> = klab_experiments::all().iter().map(|e| e.name()).collect();
        return Err(Error::Usage(format!(
            "unknown experiment {name}; known: {}",
            known.join(", ")
        )));
    };
    let inputs = inputs_of(given)?;
    check_inputs(e, &inputs)?;
    let ctx = Ctx {
        seed,
        quick,
        inputs: &inputs,
        progress: &NoProgress,
        driver: None,
    };
    let report = e
        .run(&ctx)
        .map_err(|err| Error::from_experiment(err, &format!("{}: ", e.name())))?;
    Ok(report_value(&report))
}

fn report_value(r: &klab_lab::Report) -> Value {
    serde_json::to_value(r).expect("reports serialize: no maps with non-string keys")
}

#[cfg(test)]
mod tests;
