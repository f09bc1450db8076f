//! `klab bench`: klab's mechanisms timed against their peers in the same
//! process (a std collection, the system allocator, rayon, ...), reported
//! as ratios.

pub mod devstats;
pub(crate) mod devstats_peers;
pub mod lro;
pub mod radix_tree;
pub mod replay;
pub mod slub_preload;
pub mod tcp_repair;
pub mod timing;
pub mod uapi;
pub mod workqueue;
