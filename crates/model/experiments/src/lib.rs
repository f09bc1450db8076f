//! klab's experiments: each turns one claim of a seed page into a
//! measurement, on a built-in deterministic workload and, where it applies,
//! on real data.
//!
//! * [`registry`]: the [`Experiment`] trait, the context it runs in, and the
//!   list of every experiment ([`registry::all`]).
//! * [`report`]: the one shape every experiment returns.
//! * [`render`] and [`output`]: terminal text, `report.json` and a
//!   self-contained `report.html` with inline SVG plots ([`plot`]).
#![forbid(unsafe_code)]

pub mod archmerge;
pub mod devstats;
pub mod devstats_bench;
pub mod output;
pub mod plot;
pub mod registry;
pub mod render;
pub mod report;

pub use registry::{Ctx, Experiment, ExperimentError, InputKind, Inputs, Progress};
pub use report::{Axis, Cell, Report, ReportFile, Series, Table, Verdict};
