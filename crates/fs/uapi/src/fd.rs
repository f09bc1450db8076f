//! O_NOSTD: opening files without ever getting descriptor 0, 1 or 2.
//!
//! # The problem (seed 001, "O_NOSTD"; `docs/REFERENCE.md` §12)
//!
//! ```text
//!   $ prog 2>&-                      descriptor 2 closed at exec
//!   fd = open("data", O_WRONLY)      the lowest free number: fd == 2
//!   fprintf(stderr, "warning\n")     lands in "data"
//! ```
//!
//! `open()` returns the lowest free descriptor (fs/file.c,
//! `alloc_fd()`), so with a standard descriptor closed the next file takes
//! its number and every later write to "standard error" goes into it.
//!
//! # What this module does
//!
//! Eric Blake's O_NOSTD (2009, never merged) would have had the kernel
//! start its search at 3. Without it, the "safer" wrappers of gnulib
//! (`fd-safer-flag.c`, `dup-safer-flag.c`, `fcntl-safer`, `unistd-safer`)
//! fix the number after the fact, and so does this module:
//!
//! * [`open_nostd`] = `open_safer`: `open()`, then [`fd_safer`];
//! * [`fd_safer`]: if the descriptor is 0..=2, `fcntl(F_DUPFD_CLOEXEC, 3)`
//!   (the lowest free number >= 3, close-on-exec set atomically with the
//!   duplication, Linux 2.6.24) and close the original; else keep it;
//! * [`dup_safer`], [`pipe_nostd`]: the same for `dup` and `pipe`;
//! * [`stdopen`]: the other remedy, glibc's for set-user-ID programs
//!   (`__libc_check_standard_fds`): open `/dev/null` on every closed
//!   standard descriptor once, at startup.
//!
//! # Cost and limits
//!
//! When 0, 1, 2 are open (nearly always) the check costs no system call:
//! `open` returned >= 3. When one is closed, moving the descriptor costs
//! two (`fcntl` + `close`). Between `open` returning 2 and the `close`,
//! another thread of the same process writing to standard error writes
//! into the file: only a kernel flag closes that window, which is what
//! O_NOSTD was for. (Rust programs start with 0..2 open: std opens
//! `/dev/null` on any that is closed at startup, as glibc does only for
//! set-user-ID programs; the hazard returns when a program or a library
//! closes one later, as daemons do.)

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::{Errno, FdFlags};

/// `STDERR_FILENO`: the highest standard descriptor.
pub const STDERR_FILENO: RawFd = 2;

/// Whether a descriptor number is one of the standard three.
pub fn is_std(fd: RawFd) -> bool {
    (0..=STDERR_FILENO).contains(&fd)
}

/// `dup_safer_flag()`: a duplicate numbered 3 or more, by
/// `F_DUPFD_CLOEXEC` (the close-on-exec flag is set atomically with the
/// new number, so a concurrent `fork` + `exec` never inherits it). Without
/// `cloexec` the flag is then cleared (gnulib uses plain `F_DUPFD` there;
/// the result is the same, and the descriptor is already above 2).
pub fn dup_safer(fd: BorrowedFd<'_>, cloexec: bool) -> Result<OwnedFd, Errno> {
    let new = rustix::io::fcntl_dupfd_cloexec(fd, STDERR_FILENO + 1)?;
    if !cloexec {
        rustix::io::fcntl_setfd(&new, FdFlags::empty())?;
    }
    Ok(new)
}

/// `fd_safer_flag()`: `fd` itself if numbered 3 or more; else a duplicate
/// numbered 3 or more (close-on-exec if `fd` was) and the original closed.
///
/// On failure of the duplication the original is closed too and the
/// duplication's errno returned, as gnulib does (the caller asked for a
/// descriptor that is not standard, and there is none).
pub fn fd_safer(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if !is_std(fd.as_raw_fd()) {
        return Ok(fd);
    }
    let cloexec = rustix::io::fcntl_getfd(&fd)?.contains(FdFlags::CLOEXEC);
    let moved = dup_safer(fd.as_fd(), cloexec);
    drop(fd);
    moved
}

/// `open_safer()`: `open(path, flags, mode)` that never returns 0, 1 or 2.
pub fn open_nostd<P: rustix::path::Arg>(
    path: P,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    fd_safer(rustix::fs::open(path, flags, mode)?)
}

/// `openat_safer()`.
pub fn openat_nostd<P: rustix::path::Arg, D: AsFd>(
    dir: D,
    path: P,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    fd_safer(rustix::fs::openat(dir, path, flags, mode)?)
}

/// `pipe_safer()`: a close-on-exec pipe whose ends are both numbered 3 or
/// more.
pub fn pipe_nostd() -> Result<(OwnedFd, OwnedFd), Errno> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    Ok((fd_safer(r)?, fd_safer(w)?))
}

/// Which of 0, 1, 2 are closed (`fcntl(F_GETFD)` says `EBADF`).
pub fn closed_std_descriptors() -> [bool; 3] {
    [0, 1, 2].map(|fd| {
        // rustix's stdio handles borrow 0..2 safely when built with std.
        let b = match fd {
            0 => rustix::stdio::stdin(),
            1 => rustix::stdio::stdout(),
            _ => rustix::stdio::stderr(),
        };
        rustix::io::fcntl_getfd(b) == Err(Errno::BADF)
    })
}

/// glibc's remedy (`__libc_check_standard_fds`, done for set-user-ID
/// programs only): opens `/dev/null` on every closed standard descriptor,
/// stdin write-only and stdout/stderr read-only so that accidental I/O
/// on them fails rather than vanishes, as modern glibc does. Returns how
/// many it opened. Call it before anything else opens files.
pub fn stdopen() -> Result<usize, Errno> {
    let mut opened = 0;
    for (i, closed) in closed_std_descriptors().into_iter().enumerate() {
        if !closed {
            continue;
        }
        let flags = if i == 0 {
            OFlags::WRONLY
        } else {
            OFlags::RDONLY
        };
        // The lowest free number is the closed standard one: keep it open
        // for the life of the process, as glibc does.
        let fd = rustix::fs::open("/dev/null", flags | OFlags::NOFOLLOW, Mode::empty())?;
        if usize::try_from(fd.as_raw_fd()) != Ok(i) {
            return Err(Errno::BADF);
        }
        let _kept_open_for_good: RawFd = fd.into_raw_fd();
        opened += 1;
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_above_two_are_kept_as_they_are() {
        let fd =
            rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let raw = fd.as_raw_fd();
        assert!(raw > 2, "the test process has 0..2 open");
        let kept = fd_safer(fd).unwrap();
        assert_eq!(kept.as_raw_fd(), raw, "no move, no system call");
    }

    #[test]
    fn dup_safer_never_returns_a_standard_descriptor() {
        let fd =
            rustix::fs::open("/dev/null", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).unwrap();
        for cloexec in [true, false] {
            let d = dup_safer(fd.as_fd(), cloexec).unwrap();
            assert!(d.as_raw_fd() > 2);
            let flags = rustix::io::fcntl_getfd(&d).unwrap();
            assert_eq!(flags.contains(FdFlags::CLOEXEC), cloexec);
        }
    }

    #[test]
    fn the_pipe_ends_are_above_two() {
        let (r, w) = pipe_nostd().unwrap();
        assert!(r.as_raw_fd() > 2 && w.as_raw_fd() > 2);
        assert_eq!(closed_std_descriptors(), [false, false, false]);
        assert_eq!(stdopen(), Ok(0), "nothing to open when 0..2 are open");
    }

    #[test]
    fn is_std_is_zero_to_two() {
        assert_eq!(
            (-1..5).map(is_std).collect::<Vec<_>>(),
            [false, true, true, true, false, false]
        );
    }
}
