//! Pipes in the model: the ring and rules of `klab_uapi::pipe::PipeRing`
//! (fs/pipe.c, packet mode from 3.4) with the two files on it.
//!
//! The model is single-threaded and never sleeps: where a task would block
//! in `pipe_read()` the read returns [`Read::WouldBlock`], and the caller
//! (the autofs daemon's event loop) runs again after the next write. The
//! write file's `O_DIRECT` flag is the pipe's packet mode
//! (`is_packetized()`); the kernel sets it on the autofs pipe in
//! `autofs_prepare_pipe()`.

use klab_uapi::pipe::{PipeConfig, PipeRing, PipeStats};

/// What a `read(2)` on the model pipe gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// Bytes (one packet at most, in packet mode).
    Data(Vec<u8>),
    /// Empty with a writer: a blocking reader sleeps here.
    WouldBlock,
    /// Empty with no writer.
    Eof,
}

/// A pipe and its two files.
#[derive(Clone, Debug)]
pub struct Pipe {
    ring: PipeRing,
    /// `O_DIRECT` on the write file.
    packet: bool,
    reads: u64,
}

impl Pipe {
    /// A default (16-buffer, 4 KiB page) pipe; `packet` sets `O_DIRECT` on
    /// its write end.
    pub fn new(packet: bool) -> Self {
        Pipe {
            ring: PipeRing::new(PipeConfig::x86()),
            packet,
            reads: 0,
        }
    }

    /// Whether the write end is packetized.
    pub fn is_packet(&self) -> bool {
        self.packet
    }

    /// `f_flags |= O_DIRECT` on the write file (`autofs_prepare_pipe()`).
    pub fn set_packet(&mut self, on: bool) {
        self.packet = on;
    }

    /// A kernel-side write of a whole record (`autofs_write()` loops until
    /// everything is written; the model's pipes never fill in these
    /// scenarios, and a full pipe is reported as `None`).
    pub fn write_all(&mut self, data: &[u8]) -> Option<usize> {
        self.ring
            .write(data, self.packet)
            .ok()
            .filter(|n| *n == data.len())
    }

    /// `read(fd, buf, len)`.
    pub fn read(&mut self, len: usize) -> Read {
        let mut buf = vec![0u8; len];
        match self.ring.read(&mut buf) {
            Ok(0) if len > 0 => Read::Eof,
            Ok(n) => {
                self.reads += 1;
                buf.truncate(n);
                Read::Data(buf)
            }
            Err(_) => Read::WouldBlock,
        }
    }

    /// Whether a `poll` for reading would say readable.
    pub fn readable(&self) -> bool {
        !self.ring.is_empty()
    }

    /// Unread bytes.
    pub fn queued(&self) -> usize {
        self.ring.bytes_queued()
    }

    /// Reads that returned data.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// The ring's counters (bytes discarded by short packet reads, ...).
    pub fn stats(&self) -> PipeStats {
        self.ring.stats()
    }

    /// Closes the write end.
    pub fn close_writer(&mut self) {
        self.ring.release_writer();
    }

    /// Checks the ring's invariants.
    pub fn assert_invariants(&self) {
        self.ring.assert_invariants();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_read_of_a_packet_pipe_drops_the_tail() {
        let mut p = Pipe::new(true);
        assert_eq!(p.write_all(&[1u8; 304]), Some(304));
        assert_eq!(p.write_all(&[2u8; 304]), Some(304));
        assert_eq!(p.read(300), Read::Data(vec![1u8; 300]));
        assert_eq!(p.read(300), Read::Data(vec![2u8; 300]));
        assert_eq!(p.read(300), Read::WouldBlock);
        assert_eq!(p.stats().bytes_discarded, 8);
        p.close_writer();
        assert_eq!(p.read(300), Read::Eof);
        p.assert_invariants();
    }

    #[test]
    fn a_stream_pipe_leaves_the_tail_for_the_next_read() {
        let mut p = Pipe::new(false);
        p.write_all(&[1u8; 304]).unwrap();
        assert_eq!(p.read(300), Read::Data(vec![1u8; 300]));
        assert_eq!(p.read(300), Read::Data(vec![1u8; 4]));
        p.assert_invariants();
    }
}
