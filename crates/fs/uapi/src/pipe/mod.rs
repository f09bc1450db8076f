//! Packetized pipes (Linux 3.4, fs/pipe.c): each `write()` is a packet, a
//! `read()` returns at most one packet and drops what it did not ask for.
//!
//! Three faces of one mechanism:
//!
//! * [`ring`]: the pipe's state and the kernel's rules, non-blocking and
//!   single-threaded: what the model and the portable pipe are built on;
//! * [`portable`]: an in-process pipe for threads, blocking like the
//!   kernel's, usable where the host has no packet pipes;
//! * [`host`]: the running kernel's pipe, `pipe2(O_DIRECT)`.
//!
//! [`PipePair`] gives the last two one interface, so the tests drive both
//! with the same operations and require the same answers, byte for byte
//! and errno for errno.

pub mod host;
pub mod portable;
pub mod ring;

use rustix::io::Errno;

pub use portable::{PipeFlags, PipeReader, PipeWriter, pipe};
pub use ring::{PIPE_DEF_BUFFERS, PIPE_MAX_SIZE, PipeConfig, PipeRing, PipeStats};

/// Both ends of a pipe, driven from one thread: the operations the kernel
/// comparison tests need. Ends can be closed; after that the operations on
/// them return `EBADF`.
pub trait PipePair {
    /// `write(2)` on the write end.
    fn write(&mut self, data: &[u8]) -> Result<usize, Errno>;
    /// `read(2)` on the read end.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Packet mode on or off for the write end.
    fn set_packet(&mut self, on: bool) -> Result<(), Errno>;
    /// `F_SETPIPE_SZ` (through the write end, or the read end if closed).
    fn set_pipe_size(&mut self, size: usize) -> Result<usize, Errno>;
    /// `F_GETPIPE_SZ`.
    fn pipe_size(&self) -> Result<usize, Errno>;
    /// `FIONREAD` on the read end.
    fn bytes_queued(&self) -> Result<usize, Errno>;
    /// Closes the read end.
    fn close_reader(&mut self);
    /// Closes the write end.
    fn close_writer(&mut self);
}

/// A kernel pipe as a [`PipePair`].
#[derive(Debug)]
pub struct HostPair {
    /// The read end, until closed.
    pub reader: Option<host::HostReader>,
    /// The write end, until closed.
    pub writer: Option<host::HostWriter>,
}

impl HostPair {
    /// `pipe2` with these flags.
    pub fn new(flags: PipeFlags) -> Result<Self, crate::PipeError> {
        let (r, w) = host::pipe(flags)?;
        Ok(HostPair {
            reader: Some(r),
            writer: Some(w),
        })
    }
}

impl PipePair for HostPair {
    fn write(&mut self, data: &[u8]) -> Result<usize, Errno> {
        self.writer.as_ref().ok_or(Errno::BADF)?.write(data)
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.reader.as_ref().ok_or(Errno::BADF)?.read(buf)
    }
    fn set_packet(&mut self, on: bool) -> Result<(), Errno> {
        self.writer.as_ref().ok_or(Errno::BADF)?.set_packet(on)
    }
    fn set_pipe_size(&mut self, size: usize) -> Result<usize, Errno> {
        match (&self.writer, &self.reader) {
            (Some(w), _) => w.set_pipe_size(size),
            (None, Some(r)) => r.set_pipe_size(size),
            (None, None) => Err(Errno::BADF),
        }
    }
    fn pipe_size(&self) -> Result<usize, Errno> {
        match (&self.writer, &self.reader) {
            (Some(w), _) => w.pipe_size(),
            (None, Some(r)) => r.pipe_size(),
            (None, None) => Err(Errno::BADF),
        }
    }
    fn bytes_queued(&self) -> Result<usize, Errno> {
        self.reader.as_ref().ok_or(Errno::BADF)?.bytes_queued()
    }
    fn close_reader(&mut self) {
        self.reader = None;
    }
    fn close_writer(&mut self) {
        self.writer = None;
    }
}

/// A portable pipe as a [`PipePair`].
#[derive(Debug)]
pub struct PortablePair {
    /// The read end, until closed.
    pub reader: Option<PipeReader>,
    /// The write end, until closed.
    pub writer: Option<PipeWriter>,
}

impl PortablePair {
    /// A portable pipe with these flags.
    pub fn new(cfg: PipeConfig, flags: PipeFlags) -> Self {
        let (r, w) = pipe(cfg, flags);
        PortablePair {
            reader: Some(r),
            writer: Some(w),
        }
    }
}

impl PipePair for PortablePair {
    fn write(&mut self, data: &[u8]) -> Result<usize, Errno> {
        self.writer.as_ref().ok_or(Errno::BADF)?.write(data)
    }
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.reader.as_ref().ok_or(Errno::BADF)?.read(buf)
    }
    fn set_packet(&mut self, on: bool) -> Result<(), Errno> {
        self.writer.as_mut().ok_or(Errno::BADF)?.set_packet(on);
        Ok(())
    }
    fn set_pipe_size(&mut self, size: usize) -> Result<usize, Errno> {
        let size = size as u64;
        match (&self.writer, &self.reader) {
            (Some(w), _) => w.set_pipe_size(size),
            (None, Some(r)) => r.set_pipe_size(size),
            (None, None) => Err(Errno::BADF),
        }
    }
    fn pipe_size(&self) -> Result<usize, Errno> {
        match (&self.writer, &self.reader) {
            (Some(w), _) => Ok(w.pipe_size()),
            (None, Some(r)) => Ok(r.pipe_size()),
            (None, None) => Err(Errno::BADF),
        }
    }
    fn bytes_queued(&self) -> Result<usize, Errno> {
        Ok(self.reader.as_ref().ok_or(Errno::BADF)?.bytes_queued())
    }
    fn close_reader(&mut self) {
        self.reader = None;
    }
    fn close_writer(&mut self) {
        self.writer = None;
    }
}
