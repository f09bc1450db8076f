//! Hand one socket to a program the way systemd's socket activation does:
//! as descriptor 3 (`SD_LISTEN_FDS_START`) with `LISTEN_FDS=1` and
//! `LISTEN_PID` set to the program's pid.
//!
//! [`exec_with_listen_fd`] replaces the calling process, so the pid does
//! not change across `exec` and `LISTEN_PID` is simply our own pid. The
//! descriptor is placed at 3 in the `pre_exec` hook, which
//! `Command::exec` runs in this process right before `execve`, with only
//! async-signal-safe calls (`dup2`, `fcntl`).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The first descriptor passed by socket activation (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: i32 = 3;

/// Replaces this process with `cmd`, passing `fd` as descriptor 3 with
/// `LISTEN_FDS=1` and `LISTEN_PID=<our pid>`. Returns only on failure.
pub fn exec_with_listen_fd(cmd: &mut Command, fd: OwnedFd) -> io::Error {
    let raw = fd.as_raw_fd();
    cmd.env("LISTEN_FDS", "1")
        .env("LISTEN_PID", std::process::id().to_string())
        .env_remove("LISTEN_FDNAMES");
    // SAFETY: the hook runs right before execve in this process (exec does
    // not fork). It calls only dup2 and fcntl, which are async-signal-safe,
    // and touches no Rust state. `raw` stays open until then because `fd`
    // is kept alive below until exec returns. Overwriting descriptor 3 is
    // the point: the process image is about to be replaced, so no Rust
    // owner of the old descriptor 3 will run again.
    unsafe {
        cmd.pre_exec(move || {
            if raw == LISTEN_FDS_START {
                let flags = libc::fcntl(raw, libc::F_GETFD);
                if flags < 0 || libc::fcntl(raw, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(raw, LISTEN_FDS_START) < 0 {
                // dup2 clears FD_CLOEXEC on the new descriptor.
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let err = cmd.exec();
    drop(fd);
    err
}
