//! `klab bench`: klab's mechanisms timed against their peers in the same
//! process (a std collection, the system allocator, rayon, ...), reported
//! as ratios.
//!
//! No function here is over 120 lines (`clippy.toml`): each bench is
//! split into measure, judge and report, and those into steps.

#![warn(clippy::too_many_lines)]

pub mod devstats;
pub(crate) mod devstats_peers;
pub mod lro;
pub mod radix_tree;
pub mod replay;
pub mod slub_preload;
pub mod slub_suite;
pub mod tcp_repair;
pub mod timing;
pub mod uapi;
pub mod workqueue;
