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
pub mod bench_uapi;
pub mod devstats;
pub mod devstats_bench;
pub(crate) mod devstats_peers;
pub mod fidelity;
pub mod hibernate;
pub mod hwpoison;
pub mod lazy_workqueue;
pub mod loop_dio;
pub mod lro;
pub mod memcg;
pub mod o_nostd;
pub mod output;
pub mod packet_pipes;
pub mod paravirt;
pub mod plot;
pub mod radix_tree;
pub mod radix_tree_bench;
pub mod radix_tree_rcu;
pub mod registry;
pub mod render;
pub mod replay;
pub mod replay_bench;
pub mod report;
pub mod slub;
pub mod slub_preload;
pub mod suspend;
pub mod sysfs_active;
pub mod tcp_repair;
pub mod tcp_repair_bench;
pub mod too_many_threads;
pub mod workingset;
mod workload;
pub mod workqueue_bench;

pub use registry::{Ctx, Experiment, ExperimentError, InputKind, Inputs, Progress};
pub use report::{Axis, Cell, Report, ReportFile, Series, Table, Verdict};
