//! Packet-mode pipes on this machine's kernel: `pipe2(O_DIRECT)`.
//!
//! Thin, typed wrappers over the descriptors: the behaviour is the
//! running kernel's (fs/pipe.c), which the tests compare, operation by
//! operation, against [`super::PipeRing`]. Packet mode needs Linux 3.4
//! (older kernels refuse `O_DIRECT` in `pipe2` with `EINVAL`); switching it
//! on an existing write end with `F_SETFL` needs 4.5.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::pipe::PipeFlags as RawPipeFlags;

use super::portable::PipeFlags;
use crate::error::PipeError;

/// The read end of a kernel pipe.
#[derive(Debug)]
pub struct HostReader {
    fd: OwnedFd,
}

/// The write end of a kernel pipe.
#[derive(Debug)]
pub struct HostWriter {
    fd: OwnedFd,
}

/// `pipe2(O_CLOEXEC | flags)`: `(read end, write end)`.
///
/// # Errors
/// [`PipeError::PacketModeUnsupported`] when the kernel refuses `O_DIRECT`
/// (before 3.4); [`PipeError::Sys`] for anything else (`EMFILE`, ...).
pub fn pipe(flags: PipeFlags) -> Result<(HostReader, HostWriter), PipeError> {
    let mut raw = RawPipeFlags::CLOEXEC;
    if flags.packet {
        raw |= RawPipeFlags::DIRECT;
    }
    if flags.nonblock {
        raw |= RawPipeFlags::NONBLOCK;
    }
    match rustix::pipe::pipe_with(raw) {
        Ok((r, w)) => Ok((HostReader { fd: r }, HostWriter { fd: w })),
        Err(Errno::INVAL) if flags.packet => Err(PipeError::PacketModeUnsupported),
        Err(e) => Err(PipeError::Sys {
            call: "pipe2",
            errno: e,
        }),
    }
}

/// Whether this kernel makes packet-mode pipes (tries one).
pub fn packet_mode_supported() -> bool {
    pipe(PipeFlags::PACKET).is_ok()
}

impl HostReader {
    /// `read(2)`.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        rustix::io::read(&self.fd, buf)
    }

    /// `FIONREAD`: unread bytes in the pipe.
    pub fn bytes_queued(&self) -> Result<usize, Errno> {
        let n = rustix::io::ioctl_fionread(&self.fd)?;
        usize::try_from(n).map_err(|_| Errno::OVERFLOW)
    }

    /// Sets or clears `O_NONBLOCK`.
    pub fn set_nonblock(&self, on: bool) -> Result<(), Errno> {
        set_flag(self.fd.as_fd(), OFlags::NONBLOCK, on)
    }

    /// `F_GETPIPE_SZ`.
    pub fn pipe_size(&self) -> Result<usize, Errno> {
        rustix::pipe::fcntl_getpipe_size(&self.fd)
    }

    /// `F_SETPIPE_SZ`.
    pub fn set_pipe_size(&self, size: usize) -> Result<usize, Errno> {
        rustix::pipe::fcntl_setpipe_size(&self.fd, size)
    }
}

impl HostWriter {
    /// `write(2)`.
    pub fn write(&self, data: &[u8]) -> Result<usize, Errno> {
        rustix::io::write(&self.fd, data)
    }

    /// Sets or clears packet mode: `fcntl(F_SETFL, O_DIRECT)` (Linux 4.5+).
    pub fn set_packet(&self, on: bool) -> Result<(), Errno> {
        set_flag(self.fd.as_fd(), OFlags::DIRECT, on)
    }

    /// Whether the kernel has this end in packet mode (`F_GETFL`).
    pub fn is_packet(&self) -> Result<bool, Errno> {
        Ok(rustix::fs::fcntl_getfl(&self.fd)?.contains(OFlags::DIRECT))
    }

    /// Sets or clears `O_NONBLOCK`.
    pub fn set_nonblock(&self, on: bool) -> Result<(), Errno> {
        set_flag(self.fd.as_fd(), OFlags::NONBLOCK, on)
    }

    /// `F_GETPIPE_SZ`.
    pub fn pipe_size(&self) -> Result<usize, Errno> {
        rustix::pipe::fcntl_getpipe_size(&self.fd)
    }

    /// `F_SETPIPE_SZ`.
    pub fn set_pipe_size(&self, size: usize) -> Result<usize, Errno> {
        rustix::pipe::fcntl_setpipe_size(&self.fd, size)
    }
}

impl AsFd for HostReader {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for HostWriter {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<HostReader> for OwnedFd {
    fn from(r: HostReader) -> OwnedFd {
        r.fd
    }
}

impl From<HostWriter> for OwnedFd {
    fn from(w: HostWriter) -> OwnedFd {
        w.fd
    }
}

fn set_flag(fd: BorrowedFd<'_>, flag: OFlags, on: bool) -> Result<(), Errno> {
    let mut fl = rustix::fs::fcntl_getfl(fd)?;
    fl.set(flag, on);
    rustix::fs::fcntl_setfl(fd, fl)
}
