//! Page-cache workloads run for real on the host kernel, in a memory cgroup
//! of their own, with the kernel's counters before and after: the host side
//! of klab's model-fidelity comparison (`klab fidelity`, experiment
//! `fidelity`).
//!
//! The machine model (`klab-model`) mirrors the page cache, the split LRU,
//! 3.15's workingset detection (mm/workingset.c) and the memory controller
//! (mm/memcontrol.c). This crate runs the same access pattern on the
//! running kernel, so the two can be set side by side:
//!
//! ```text
//!   Pattern { files: [pages..], accesses: [(file, page)..] }
//!        │
//!        ▼ run(HostConfig { limit_bytes, touch, fill, .. })
//!   /sys/fs/cgroup/memory/klab-fidelity-<pid>-<n>/   limit, force_empty, stat
//!        │ worker process (forked, pinned, alone in the cgroup):
//!        │   per access: cachestat(2) → pread 4 KiB (or a load from a mapping)
//!        ▼
//!   HostRun { outcomes (hit / miss / refault / recent per access),
//!             memory.stat before and after (workingset_refault_file,
//!             pgmajfault, pgpgin, active_file, inactive_file, ..),
//!             failcnt, list-size samples, .. }
//! ```
//!
//! * [`cgroup`]: the run's memory cgroup (create, limit, attach,
//!   `force_empty`, `memory.stat`, remove) and the host probe.
//! * [`files`]: the data files, on a disk-backed filesystem, out of the
//!   page cache (no pages, no shadow entries) before the run.
//! * [`mod@run`]: the run itself.
//! * [`cleanup`]: removal of the cgroup and the files on `SIGINT`,
//!   `SIGTERM`, `SIGHUP`; guards remove them on errors and panics.
//! * [`host`]: kernel release, MGLRU, swap.
//! * [`swap`]: the swap file the anonymous-memory patterns run with.
//! * [`trace`]: the kernel's memory-cgroup statistics flushes, from a
//!   trace instance of the run's own.
//!
//! Safety: nothing outside the run's temporary directory and its cgroup is
//! changed. The worker's `fork()` lives in `klab-sys` (`page_worker`), the
//! crate's only unsafe code. The workload's kernel rules are those of seeds
//! 000_2fa08a6962ebae3f.txt (the memory controller) and
//! 002_e13a334c23eac663.txt (refault distance).
#![forbid(unsafe_code)]

pub mod cgroup;
pub mod cleanup;
pub mod error;
pub mod files;
pub mod host;
pub mod run;
pub mod swap;
pub mod trace;

pub use cgroup::{MemCgroup, MemcgStat};
pub use error::HostError;
pub use files::Fill;
pub use klab_sys::page_worker::{Outcome, PageRef, Touch};
pub use run::{Flushes, HostConfig, HostRun, Pattern, Sample, Session, Stage, run, run_observed};
pub use swap::SwapFile;
pub use trace::{FlushEvent, FlushTrace, Recorded};
