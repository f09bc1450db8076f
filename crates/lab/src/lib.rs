//! klab's experiment harness: the layer between the experiments and the
//! model. It knows what an experiment is and what it is given, how a model
//! run hibernates and resumes, and the one report every experiment returns
//! with its writers; it knows no experiment.
//!
//! * [`experiment`]: the [`Experiment`] trait (identity, measure, judge,
//!   report) and [`Run`], how the harness runs one; the [`Ctx`] a run gets
//!   (seed, size, real-data [`Inputs`], [`Progress`], the hibernation
//!   driver) and [`ExperimentError`].
//! * [`hibernate`]: jobs, the driver that stops a run at a virtual time,
//!   images, resume.
//! * [`report`]: the report contract; [`render`] (terminal, JSON, HTML),
//!   [`plot`] (inline SVG) and [`output`] (files written whole or not at
//!   all).
#![forbid(unsafe_code)]

pub mod experiment;
pub mod hibernate;
pub mod output;
pub mod plot;
pub mod render;
pub mod report;

pub use experiment::{
    Ctx, Experiment, ExperimentError, Identity, InputKind, Inputs, NoProgress, Progress, Run,
};
pub use report::{Axis, Cell, Host, Report, ReportFile, Series, Table, Verdict};
