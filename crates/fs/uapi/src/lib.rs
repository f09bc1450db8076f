//! User-space interfaces from three LWN pages, working on this machine:
//!
//! * [`pipe`]: **packetized pipes** (Linux 3.4, fs/pipe.c; seed 002,
//!   "packetized pipes"): the kernel's `pipe2(O_DIRECT)`, a portable
//!   in-process pipe with the same rules for threads, and the ring both
//!   are checked against, which `klab-model` builds its pipes on.
//! * [`fd`]: **O_NOSTD** (seed 001, "O_NOSTD"): opens that never return
//!   descriptor 0, 1 or 2, as gnulib's `*-safer` modules do it
//!   (`F_DUPFD_CLOEXEC` to 3 and above), since the flag was never merged.
//! * [`direct_io`]: **page-based direct I/O** (seed 001, "Page-based
//!   direct I/O", "What is direct I/O, really?"): a `dio_args`-shaped
//!   request (page array, first-page offset, segments, length, offset)
//!   carried out with `O_DIRECT`, alignment errors that name the field,
//!   and a buffered fallback where the filesystem refuses.
//!
//! Kernel rules are cited where they are mirrored; `docs/REFERENCE.md`
//! §8, §12 and §13 summarise them. Errors carry the errno the kernel
//! gives ([`rustix::io::Errno`]).
#![forbid(unsafe_code)]

pub mod direct_io;
pub mod error;
pub mod fd;
pub mod pipe;

pub use error::{DioError, PipeError};
