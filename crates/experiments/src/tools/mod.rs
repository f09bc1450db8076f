//! The kernel's tools and process: development statistics, the x86 merge.

#![warn(clippy::too_many_lines)]

pub mod archmerge;
pub mod devstats;
