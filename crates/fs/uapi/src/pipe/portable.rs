//! The portable packet pipe: [`PipeRing`] shared by threads, with the
//! kernel's blocking rules.
//!
//! # Locking
//!
//! One mutex guards the ring, as `pipe->mutex` guards `pipe_inode_info`.
//! A reader that finds the ring empty (with writers left) sleeps on
//! `rd_wait`; a writer that finds it full (with readers left) sleeps on
//! `wr_wait`; both drop the mutex while asleep, as `pipe_read()` and
//! `pipe_write()` do, so a blocking write longer than the pipe lets
//! readers drain it and other writers in between its pages (writes of at
//! most one page are atomic). Every change that can end a wait (bytes
//! written, slots freed, the last reader or writer gone, a resize)
//! notifies the waiters under the mutex, so no wakeup is lost; a count of
//! sleepers (also under the mutex) skips the notification when nobody
//! sleeps, which keeps the uncontended path free of system calls.
//!
//! Each handle is one open file: its flags (packet mode for writers,
//! non-blocking for both) are its own, and the pipe sees end of file when
//! every writer handle is dropped (`EPIPE` when every reader is).

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use rustix::io::Errno;

use super::ring::{PipeConfig, PipeRing, PipeStats};

#[derive(Debug)]
struct Shared {
    /// The pipe and its sleepers (`pipe->mutex`).
    inner: Mutex<Inner>,
    /// Readers waiting for bytes or for the last writer to go.
    rd_wait: Condvar,
    /// Writers waiting for a free slot or for the last reader to go.
    wr_wait: Condvar,
}

/// What the mutex guards.
#[derive(Debug)]
struct Inner {
    ring: PipeRing,
    /// Readers asleep on `rd_wait` (wakeups are skipped when 0: a
    /// `notify_all` is a system call even with nobody to wake).
    rd_sleepers: usize,
    /// Writers asleep on `wr_wait`.
    wr_sleepers: usize,
}

impl std::ops::Deref for Inner {
    type Target = PipeRing;
    fn deref(&self) -> &PipeRing {
        &self.ring
    }
}

impl std::ops::DerefMut for Inner {
    fn deref_mut(&mut self) -> &mut PipeRing {
        &mut self.ring
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the ring consistent (every
        // mutation completes before the lock is released), so keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_readers(&self, inner: &Inner) {
        if inner.rd_sleepers > 0 {
            self.rd_wait.notify_all();
        }
    }

    fn wake_writers(&self, inner: &Inner) {
        if inner.wr_sleepers > 0 {
            self.wr_wait.notify_all();
        }
    }
}

/// Flags of a new pipe, as `pipe2()` takes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipeFlags {
    /// `O_DIRECT`: the write end is in packet mode.
    pub packet: bool,
    /// `O_NONBLOCK` on both ends.
    pub nonblock: bool,
}

impl PipeFlags {
    /// Packet mode, blocking.
    pub const PACKET: PipeFlags = PipeFlags {
        packet: true,
        nonblock: false,
    };
}

/// Makes a portable pipe: `(read end, write end)`.
pub fn pipe(cfg: PipeConfig, flags: PipeFlags) -> (PipeReader, PipeWriter) {
    let shared = Arc::new(Shared {
        inner: Mutex::new(Inner {
            ring: PipeRing::new(cfg),
            rd_sleepers: 0,
            wr_sleepers: 0,
        }),
        rd_wait: Condvar::new(),
        wr_wait: Condvar::new(),
    });
    (
        PipeReader {
            shared: Arc::clone(&shared),
            nonblock: flags.nonblock,
        },
        PipeWriter {
            shared,
            packet: flags.packet,
            nonblock: flags.nonblock,
        },
    )
}

/// The read end of a portable pipe.
#[derive(Debug)]
pub struct PipeReader {
    shared: Arc<Shared>,
    nonblock: bool,
}

/// The write end of a portable pipe.
#[derive(Debug)]
pub struct PipeWriter {
    shared: Arc<Shared>,
    packet: bool,
    nonblock: bool,
}

impl PipeReader {
    /// `read(2)`: blocks while the pipe is empty and has writers, unless
    /// non-blocking (then `EAGAIN`). Returns 0 at end of file.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut ring = self.shared.lock();
        loop {
            let n = ring.read_some(buf);
            if n > 0 {
                // Slots may have been freed: let sleeping writers look.
                self.shared.wake_writers(&ring);
                return Ok(n);
            }
            if ring.writers() == 0 {
                return Ok(0);
            }
            if self.nonblock {
                return Err(Errno::AGAIN);
            }
            ring.rd_sleepers += 1;
            ring = self
                .shared
                .rd_wait
                .wait(ring)
                .unwrap_or_else(|e| e.into_inner());
            ring.rd_sleepers -= 1;
        }
    }

    /// Sets or clears `O_NONBLOCK` on this end.
    pub fn set_nonblock(&mut self, on: bool) {
        self.nonblock = on;
    }

    /// `FIONREAD`: unread bytes in the pipe.
    pub fn bytes_queued(&self) -> usize {
        self.shared.lock().bytes_queued()
    }

    /// Another handle on the read side (counts as one more reader until
    /// dropped).
    pub fn try_clone(&self) -> PipeReader {
        self.shared.lock().open_reader();
        PipeReader {
            shared: Arc::clone(&self.shared),
            nonblock: self.nonblock,
        }
    }

    /// `F_GETPIPE_SZ`.
    pub fn pipe_size(&self) -> usize {
        self.shared.lock().size()
    }

    /// `F_SETPIPE_SZ`.
    pub fn set_pipe_size(&self, size: u64) -> Result<usize, Errno> {
        set_size(&self.shared, size)
    }

    /// The pipe's counters.
    pub fn stats(&self) -> PipeStats {
        self.shared.lock().stats()
    }
}

impl PipeWriter {
    /// `write(2)`: in packet mode each call (each page of it) is a packet.
    /// Blocks while the pipe is full and has readers, unless non-blocking;
    /// a non-blocking write returns what fit, or `EAGAIN`. `EPIPE` when no
    /// reader is left (with the bytes already written, if any, returned
    /// instead).
    pub fn write(&self, data: &[u8]) -> Result<usize, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        let mut ring = self.shared.lock();
        if ring.readers() == 0 {
            return Err(Errno::PIPE);
        }
        let mut n = ring.merge(data);
        if n > 0 {
            self.shared.wake_readers(&ring);
        }
        loop {
            if n == data.len() {
                return Ok(n);
            }
            if ring.readers() == 0 {
                return if n > 0 { Ok(n) } else { Err(Errno::PIPE) };
            }
            let put = ring.fill(&data[n..], self.packet);
            n += put;
            if put > 0 {
                self.shared.wake_readers(&ring);
            }
            if n == data.len() {
                return Ok(n);
            }
            if self.nonblock {
                return if n > 0 { Ok(n) } else { Err(Errno::AGAIN) };
            }
            ring.wr_sleepers += 1;
            ring = self
                .shared
                .wr_wait
                .wait(ring)
                .unwrap_or_else(|e| e.into_inner());
            ring.wr_sleepers -= 1;
        }
    }

    /// Sets or clears packet mode (`fcntl(F_SETFL, O_DIRECT)`, Linux 4.5+).
    pub fn set_packet(&mut self, on: bool) {
        self.packet = on;
    }

    /// Whether this end writes packets.
    pub fn is_packet(&self) -> bool {
        self.packet
    }

    /// Sets or clears `O_NONBLOCK` on this end.
    pub fn set_nonblock(&mut self, on: bool) {
        self.nonblock = on;
    }

    /// Another handle on the write side, with this one's flags.
    pub fn try_clone(&self) -> PipeWriter {
        self.shared.lock().open_writer();
        PipeWriter {
            shared: Arc::clone(&self.shared),
            packet: self.packet,
            nonblock: self.nonblock,
        }
    }

    /// `F_GETPIPE_SZ`.
    pub fn pipe_size(&self) -> usize {
        self.shared.lock().size()
    }

    /// `F_SETPIPE_SZ`.
    pub fn set_pipe_size(&self, size: u64) -> Result<usize, Errno> {
        set_size(&self.shared, size)
    }
}

fn set_size(shared: &Shared, size: u64) -> Result<usize, Errno> {
    let mut inner = shared.lock();
    let r = inner.set_size(size);
    // A bigger ring may let sleeping writers in.
    shared.wake_writers(&inner);
    r
}

impl Drop for PipeReader {
    fn drop(&mut self) {
        let mut ring = self.shared.lock();
        ring.release_reader();
        if ring.readers() == 0 {
            self.shared.wake_writers(&ring);
        }
    }
}

impl Drop for PipeWriter {
    fn drop(&mut self) {
        let mut ring = self.shared.lock();
        ring.release_writer();
        if ring.writers() == 0 {
            self.shared.wake_readers(&ring);
        }
    }
}

impl io::Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        PipeReader::read(self, buf).map_err(io::Error::from)
    }
}

impl io::Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        PipeWriter::write(self, buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn a_blocked_writer_resumes_when_a_packet_is_read() {
        let (r, w) = pipe(PipeConfig::x86(), PipeFlags::PACKET);
        for i in 0..16u8 {
            assert_eq!(w.write(&[i]), Ok(1));
        }
        let t = thread::spawn(move || w.write(b"seventeenth"));
        let mut buf = [0u8; 64];
        // The 16 one-byte packets come out one per read, then the writer's.
        for i in 0..16u8 {
            assert_eq!(r.read(&mut buf), Ok(1));
            assert_eq!(buf[0], i);
        }
        assert_eq!(t.join().unwrap(), Ok(11));
        assert_eq!(r.read(&mut buf), Ok(11));
        assert_eq!(&buf[..11], b"seventeenth");
        assert_eq!(r.read(&mut buf), Ok(0), "writer gone: end of file");
    }

    #[test]
    fn a_blocking_write_longer_than_the_pipe_completes_as_the_reader_drains() {
        let (r, w) = pipe(PipeConfig::x86(), PipeFlags::PACKET);
        let data: Vec<u8> = (0..(20 * 4096 + 7) as u32)
            .map(|i| (i % 253) as u8)
            .collect();
        let expect = data.clone();
        let t = thread::spawn(move || w.write(&data));
        let mut got = Vec::new();
        let mut buf = vec![0u8; 8192];
        let mut reads = 0;
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            assert!(n <= 4096, "a read returns at most one packet");
            got.extend_from_slice(&buf[..n]);
            reads += 1;
        }
        assert_eq!(t.join().unwrap(), Ok(expect.len()));
        assert_eq!(got, expect);
        assert_eq!(reads, 21, "20 full pages and a 7-byte tail");
    }

    #[test]
    fn writing_without_a_reader_is_epipe() {
        let (r, w) = pipe(PipeConfig::x86(), PipeFlags::default());
        drop(r);
        assert_eq!(w.write(b"x"), Err(Errno::PIPE));
        assert_eq!(w.write(b""), Ok(0));
    }

    #[test]
    fn a_blocked_writer_gets_epipe_when_the_reader_goes() {
        let (r, w) = pipe(
            PipeConfig {
                slots: 1,
                ..PipeConfig::x86()
            },
            PipeFlags::PACKET,
        );
        w.write(b"a").unwrap();
        let t = thread::spawn(move || w.write(b"b"));
        // Whether the writer is asleep yet or not, it ends with EPIPE.
        drop(r);
        assert_eq!(t.join().unwrap(), Err(Errno::PIPE));
    }

    #[test]
    fn clones_keep_the_pipe_open_until_the_last_goes() {
        let (r, w) = pipe(PipeConfig::x86(), PipeFlags::PACKET);
        let w2 = w.try_clone();
        drop(w);
        w2.write(b"hi").unwrap();
        drop(w2);
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf), Ok(2));
        assert_eq!(r.read(&mut buf), Ok(0));
    }
}
