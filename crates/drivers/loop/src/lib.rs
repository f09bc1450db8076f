//! The host's loop block device (drivers/block/loop.c), buffered and with
//! direct I/O, and how many copies of an image the page cache holds
//! through it.
//!
//! Seed 001_9748f8e50c4ab156.txt, "Page-based direct I/O" (LWN, 2009):
//! "files accessed via a loopback mount may well be represented in the
//! page cache twice: once on each side of the loopback mount". Jens
//! Axboe's `dio_args` series aimed to let the loop driver read its
//! backing file with direct I/O; Linux 4.4 did it (`LO_FLAGS_DIRECT_IO`,
//! `lo_rw_aio()` with `IOCB_DIRECT`). This crate measures both on the
//! running kernel:
//!
//! ```text
//!   reader (a forked worker in a memory cgroup)
//!     pread /dev/loopN page p ─▶ the block device's page cache   (upper copy)
//!                                  │ miss: a request to the loop driver
//!                                  ▼
//!   loop driver ── buffered: read_iter on the image, through its page
//!                  cache                                         (lower copy)
//!               ── LO_FLAGS_DIRECT_IO: read_iter with IOCB_DIRECT: no
//!                  lower copy
//! ```
//!
//! * [`device`]: one loop device bound to a backing file
//!   (`LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE`, autoclear), unbound on drop,
//!   and [`device::attached_to`], which lists the devices bound to a file.
//! * [`run`]: a run: the image, the cgroup, the reader, and the residency
//!   of both sides afterwards (`cachestat(2)`, `mincore(2)`).
//! * [`error`]: what can go wrong.
//!
//! Cleanup: the run's cgroup and image directory are klab-fidelity's
//! guards (removed on return, error and panic, and by its signal thread on
//! `SIGINT`/`SIGTERM`/`SIGHUP`); the device is unbound by its guard, and by
//! the kernel's autoclear when the process ends any other way
//! ([`device`]). The ioctls are in `klab-sys` (`loop_dev`).
#![forbid(unsafe_code)]

pub mod device;
pub mod error;
pub mod run;

pub use device::{Attach, LoopDevice, attached_to};
pub use error::LoopError;
pub use run::{LoopRun, RunConfig, Session, probe};
