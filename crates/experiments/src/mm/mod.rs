//! Memory management: the page cache's working set, the memory
//! controller, model fidelity against the host kernel, HWPOISON, the loop
//! device's double caching, SLUB, and `klab replay`.

pub mod fidelity;
pub mod hwpoison;
pub mod loop_dio;
pub mod memcg;
pub mod replay;
pub mod slub;
pub mod workingset;
pub(crate) mod workload;
