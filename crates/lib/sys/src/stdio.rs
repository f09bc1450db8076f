//! Closing a standard descriptor (0, 1 or 2) the way a daemon does after
//! `fork()`, so a program can be put in the state the O_NOSTD proposal is
//! about (seed 001, "O_NOSTD"; `docs/REFERENCE.md` §12).
//!
//! Rust's runtime never hands a program a closed standard descriptor: at
//! startup std opens `/dev/null` on any of 0, 1, 2 that is closed (the
//! policy glibc applies only to set-user-ID programs, `__libc_check_standard_fds`).
//! The descriptors can still be closed later, by the program or a library
//! it calls; after that the next `open` takes the lowest free number, and
//! `eprintln!` writes into whatever file got number 2. That hazard is what
//! `klab-uapi`'s O_NOSTD-style opens prevent, and this function creates it
//! on purpose for their tests.

use std::io;

/// A standard descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdDescriptor {
    /// Descriptor 0.
    Stdin,
    /// Descriptor 1.
    Stdout,
    /// Descriptor 2.
    Stderr,
}

impl StdDescriptor {
    /// The descriptor number.
    pub fn raw(self) -> i32 {
        match self {
            StdDescriptor::Stdin => 0,
            StdDescriptor::Stdout => 1,
            StdDescriptor::Stderr => 2,
        }
    }
}

/// Closes a standard descriptor. Closing one that is already closed
/// succeeds (as `exec 2>&-` does in a shell).
///
/// This is memory-safe: `close` takes a number, not memory. std's
/// `Stdin`/`Stdout`/`Stderr` own nothing; they name the number at each
/// call and treat `EBADF` as success, so after this call `eprintln!` is
/// silently dropped until the number is reused. The caller must not own
/// the descriptor through an `OwnedFd` (one obtained while the number was
/// free): closing it here would make that handle close a stranger later.
/// Call it before opening anything, as a daemon does.
pub fn close_std_descriptor(fd: StdDescriptor) -> io::Result<()> {
    // SAFETY: close(2) on 0..=2 passes no memory to the kernel. The numbers
    // 0..=2 are not owned by any Rust object in a program that follows the
    // contract above (std borrows them per call and tolerates EBADF), so no
    // `OwnedFd` is invalidated.
    let rc = unsafe { libc::close(fd.raw()) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EBADF) {
        Ok(())
    } else {
        Err(e)
    }
}
