//! The kernel's tools and process: development statistics, the x86 merge.

pub mod archmerge;
pub mod devstats;
