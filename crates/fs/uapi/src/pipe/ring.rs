//! The pipe itself: a ring of page-sized buffers, with the kernel's rules
//! for writing into it and reading out of it, stream and packet mode.
//!
//! This is the state behind both the portable pipe
//! ([`super::portable`], threads) and the model's pipes (`klab-model`,
//! virtual time). It never blocks: where the kernel would sleep it says so
//! ([`PipeRing::write`] returns what fit, [`PipeRing::read`] returns 0 from
//! an empty ring) and the caller decides whether to wait.
//!
//! # Data structures
//!
//! Mirrors `struct pipe_inode_info` and `struct pipe_buffer`
//! (include/linux/pipe_fs_i.h; fs/pipe.c):
//!
//! ```text
//!   PipeRing { bufs, slots (max_usage), page_size, readers, writers }
//!
//!   bufs (tail first)                                   head
//!   +---------------------+---------------------+-------+
//!   | PipeBuffer          | PipeBuffer          |  ...  |   at most `slots` of them
//!   | data[offset..]      | data[offset..]      |       |
//!   | flags: CAN_MERGE    | flags: PACKET       |       |
//!   +---------------------+---------------------+-------+
//!     read from here                  write (or merge) here
//! ```
//!
//! A buffer is one page. A stream write may append to the last buffer when
//! that buffer is `CAN_MERGE` and the page has room; every other write
//! takes a fresh buffer per page of data. A packet-mode write
//! (`O_DIRECT` on the *writer's* file) tags its buffers `PACKET`, which
//! are never merged into, and a read that reaches a `PACKET` buffer takes
//! at most what it asked for from it, drops the rest, and ends.
//!
//! # Invariants
//!
//! * `bufs.len() <= slots` (occupancy never exceeds `max_usage`)
//! * every queued buffer: `offset + len == data.len() <= page_size` and
//!   `len > 0` (empty buffers are released at once)
//! * every queued buffer has exactly one of `PACKET`, `CAN_MERGE`
//! * `slots * page_size` is what `F_GETPIPE_SZ` returns; `slots` is a power
//!   of two once set by `F_SETPIPE_SZ` (16 by default)
//!
//! # Rules (fs/pipe.c)
//!
//! * `pipe_write()`: a zero-length write returns 0 before anything else is
//!   checked (not even for readers); with no readers, `EPIPE`. Then: if the
//!   ring is not empty, `chars = len % page_size` bytes (the *first* bytes
//!   of the write) are appended to the last buffer if it is `CAN_MERGE` and
//!   has room. The rest goes into new buffers, one page each, tagged
//!   `PACKET` if the writer is packetized (`is_packetized()`), else
//!   `CAN_MERGE`. When the ring is full a blocking writer sleeps and a
//!   non-blocking one returns what it wrote, or `EAGAIN` if nothing.
//! * `pipe_read()`: a zero-length read returns 0. Then, buffer by buffer
//!   from the tail: copy `min(buf.len, wanted)`; if the buffer is a packet,
//!   the read ends there and the rest of the packet is discarded
//!   (`total_len = chars; buf->len = 0`); an emptied buffer is released.
//!   The read also ends when the ring is empty and something was read. An
//!   empty ring with no writers reads as end of file (0); with writers, a
//!   blocking reader sleeps and a non-blocking one gets `EAGAIN`.
//! * `pipe_set_size()` (`F_SETPIPE_SZ`): the size is rounded up to a power
//!   of two pages, at least one page (`round_pipe_size()`); more than 2^31
//!   bytes is `EINVAL`; growing past `pipe-max-size` (1 MiB) without
//!   `CAP_SYS_RESOURCE` is `EPERM`; shrinking below the buffers in use is
//!   `EBUSY`; it returns the new size. The per-user pipe page quotas
//!   (`pipe-user-pages-soft/hard`) are not modelled.
//!
//! Packet mode arrived in Linux 3.4 (commit 9883035ae7ed, "pipes: add a
//! 'packetized pipe' mode for writing"), for the autofs v5 packet (seed
//! 002, "packetized pipes"; `docs/REFERENCE.md` §8). The ring here follows
//! the head/tail code of 5.5+, whose rules for packets are those of 3.4.

use std::collections::VecDeque;

use rustix::io::Errno;

/// `PIPE_DEF_BUFFERS`: slots in a new pipe.
pub const PIPE_DEF_BUFFERS: usize = 16;

/// The default `/proc/sys/fs/pipe-max-size`: the largest size an
/// unprivileged `F_SETPIPE_SZ` may grow a pipe to.
pub const PIPE_MAX_SIZE: usize = 1 << 20;

/// A pipe's fixed parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeConfig {
    /// Bytes per buffer (`PAGE_SIZE`); a packet is at most this long.
    pub page_size: usize,
    /// Buffers in a new pipe (`PIPE_DEF_BUFFERS`).
    pub slots: usize,
    /// `/proc/sys/fs/pipe-max-size`.
    pub pipe_max_size: usize,
    /// Whether `F_SETPIPE_SZ` callers have `CAP_SYS_RESOURCE`.
    pub privileged: bool,
}

impl PipeConfig {
    /// An x86 kernel's pipe: 4 KiB pages, 16 of them, 1 MiB limit,
    /// unprivileged callers. The model uses this one.
    pub const fn x86() -> Self {
        PipeConfig {
            page_size: 4096,
            slots: PIPE_DEF_BUFFERS,
            pipe_max_size: PIPE_MAX_SIZE,
            privileged: false,
        }
    }

    /// This host's pipe: its page size, 16 buffers; privileged when the
    /// process runs as root (as `CAP_SYS_RESOURCE` usually goes with it).
    pub fn host() -> Self {
        PipeConfig {
            page_size: rustix::param::page_size(),
            privileged: rustix::process::geteuid().is_root(),
            ..PipeConfig::x86()
        }
    }
}

impl Default for PipeConfig {
    fn default() -> Self {
        PipeConfig::x86()
    }
}

/// One ring slot: `struct pipe_buffer`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct PipeBuffer {
    /// The page's bytes written so far; `data[offset..]` is unread.
    data: Vec<u8>,
    /// Start of the unread bytes.
    offset: usize,
    /// Unread bytes: `data.len() - offset`.
    len: usize,
    /// `PIPE_BUF_FLAG_PACKET` (else `PIPE_BUF_FLAG_CAN_MERGE`).
    packet: bool,
}

/// Counters a caller may want to report; they do not change behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PipeStats {
    /// Buffers created (each packet-mode buffer is one packet).
    pub buffers_created: u64,
    /// Buffers created in packet mode.
    pub packets: u64,
    /// Bytes accepted by writes.
    pub bytes_written: u64,
    /// Bytes handed to readers.
    pub bytes_read: u64,
    /// Bytes of packets dropped by short reads.
    pub bytes_discarded: u64,
}

/// The pipe: `struct pipe_inode_info` with its ring.
#[derive(Clone, Debug)]
pub struct PipeRing {
    bufs: VecDeque<PipeBuffer>,
    slots: usize,
    page_size: usize,
    pipe_max_size: usize,
    privileged: bool,
    readers: usize,
    writers: usize,
    stats: PipeStats,
}

impl PipeRing {
    /// A pipe with one reader and one writer, as `pipe2()` makes it.
    ///
    /// # Panics
    /// If `cfg.page_size` or `cfg.slots` is zero (a configuration bug).
    pub fn new(cfg: PipeConfig) -> Self {
        assert!(cfg.page_size > 0 && cfg.slots > 0, "pipe config {cfg:?}");
        PipeRing {
            bufs: VecDeque::new(),
            slots: cfg.slots,
            page_size: cfg.page_size,
            pipe_max_size: cfg.pipe_max_size,
            privileged: cfg.privileged,
            readers: 1,
            writers: 1,
            stats: PipeStats::default(),
        }
    }

    /// Bytes per buffer.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Buffers the ring may hold (`max_usage`).
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Buffers in use (`pipe_occupancy()`).
    pub fn occupancy(&self) -> usize {
        self.bufs.len()
    }

    /// No buffer queued.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Every slot in use: a writer must wait.
    pub fn is_full(&self) -> bool {
        self.bufs.len() >= self.slots
    }

    /// Unread bytes, as `FIONREAD` reports them (discarded packet tails
    /// are not counted once dropped, but are until then).
    pub fn bytes_queued(&self) -> usize {
        self.bufs.iter().map(|b| b.len).sum()
    }

    /// The unread length of each queued buffer, tail first, with whether it
    /// is a packet.
    pub fn buffers(&self) -> Vec<(usize, bool)> {
        self.bufs.iter().map(|b| (b.len, b.packet)).collect()
    }

    /// Counters since the pipe was made.
    pub fn stats(&self) -> PipeStats {
        self.stats
    }

    /// Open read ends.
    pub fn readers(&self) -> usize {
        self.readers
    }

    /// Open write ends.
    pub fn writers(&self) -> usize {
        self.writers
    }

    /// Another file opened for reading (a `dup` of the read end is the same
    /// file and does not count; a `fork` neither: files, not descriptors).
    pub fn open_reader(&mut self) {
        self.readers += 1;
    }

    /// Another file opened for writing.
    pub fn open_writer(&mut self) {
        self.writers += 1;
    }

    /// A read file released (`pipe_release()`).
    pub fn release_reader(&mut self) {
        self.readers = self.readers.saturating_sub(1);
    }

    /// A write file released.
    pub fn release_writer(&mut self) {
        self.writers = self.writers.saturating_sub(1);
    }

    /// The merge step of `pipe_write()`: appends the first
    /// `data.len() % page_size` bytes to the last buffer when it is a
    /// mergeable (stream) buffer with room. Returns the bytes taken (0 or
    /// that remainder). Call once per write, before [`PipeRing::fill`].
    pub fn merge(&mut self, data: &[u8]) -> usize {
        let chars = data.len() % self.page_size;
        if chars == 0 {
            return 0;
        }
        let page = self.page_size;
        let Some(last) = self.bufs.back_mut() else {
            return 0;
        };
        if last.packet || last.data.len() + chars > page {
            return 0;
        }
        last.data.extend_from_slice(&data[..chars]);
        last.len += chars;
        self.stats.bytes_written += chars as u64;
        chars
    }

    /// The fill loop of `pipe_write()`: puts `data` into new buffers, one
    /// page each, while slots are free. Returns the bytes taken; less than
    /// `data.len()` means the ring is full.
    pub fn fill(&mut self, data: &[u8], packet: bool) -> usize {
        let mut done = 0;
        while done < data.len() && !self.is_full() {
            let n = (data.len() - done).min(self.page_size);
            // Sized to the data: a packet never grows, and a stream page
            // grows by merges up to page_size.
            self.bufs.push_back(PipeBuffer {
                data: data[done..done + n].to_vec(),
                offset: 0,
                len: n,
                packet,
            });
            self.stats.buffers_created += 1;
            if packet {
                self.stats.packets += 1;
            }
            done += n;
        }
        self.stats.bytes_written += done as u64;
        done
    }

    /// One non-blocking `write(2)`: the whole of `pipe_write()` when the
    /// writer does not wait. `packet` is the writer file's `O_DIRECT`.
    ///
    /// Returns the bytes written (possibly fewer than asked when the ring
    /// filled), `EAGAIN` when nothing fit, `EPIPE` with no reader.
    pub fn write(&mut self, data: &[u8], packet: bool) -> Result<usize, Errno> {
        if data.is_empty() {
            return Ok(0);
        }
        if self.readers == 0 {
            return Err(Errno::PIPE);
        }
        let mut n = self.merge(data);
        if n < data.len() {
            n += self.fill(&data[n..], packet);
        }
        if n == 0 { Err(Errno::AGAIN) } else { Ok(n) }
    }

    /// The copy loop of `pipe_read()`: moves up to `buf.len()` bytes out,
    /// stopping after a packet, and returns how many (0 when empty).
    pub fn read_some(&mut self, buf: &mut [u8]) -> usize {
        let mut ret = 0;
        let mut total_len = buf.len();
        while total_len > 0 {
            let Some(b) = self.bufs.front_mut() else {
                break;
            };
            let chars = b.len.min(total_len);
            buf[ret..ret + chars].copy_from_slice(&b.data[b.offset..b.offset + chars]);
            ret += chars;
            b.offset += chars;
            b.len -= chars;
            if b.packet {
                // The rest of the packet goes, and the read ends here.
                total_len = chars;
                self.stats.bytes_discarded += b.len as u64;
                b.len = 0;
            }
            if b.len == 0 {
                self.bufs.pop_front();
            }
            total_len -= chars;
        }
        self.stats.bytes_read += ret as u64;
        ret
    }

    /// One non-blocking `read(2)`: bytes read, 0 at end of file (empty, no
    /// writer), `EAGAIN` when empty with a writer.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.read_some(buf);
        if n > 0 || self.writers == 0 {
            Ok(n)
        } else {
            Err(Errno::AGAIN)
        }
    }

    /// `F_GETPIPE_SZ`: `max_usage * PAGE_SIZE`.
    pub fn size(&self) -> usize {
        self.slots * self.page_size
    }

    /// `F_SETPIPE_SZ` (`pipe_set_size()`): returns the new size.
    ///
    /// `arg` is the fcntl argument; like the kernel (which takes it as an
    /// `unsigned int`) only its low 32 bits count.
    pub fn set_size(&mut self, arg: u64) -> Result<usize, Errno> {
        let arg = arg & 0xFFFF_FFFF;
        let size = round_pipe_size(arg, self.page_size);
        let nr_slots = usize::try_from(size / self.page_size as u64).map_err(|_| Errno::INVAL)?;
        if nr_slots == 0 {
            return Err(Errno::INVAL);
        }
        if nr_slots > self.slots && size > self.pipe_max_size as u64 && !self.privileged {
            return Err(Errno::PERM);
        }
        if nr_slots < self.bufs.len() {
            return Err(Errno::BUSY);
        }
        self.slots = nr_slots;
        Ok(self.size())
    }

    /// Checks the invariants in the module header.
    ///
    /// # Panics
    /// When one does not hold.
    pub fn assert_invariants(&self) {
        assert!(
            self.bufs.len() <= self.slots,
            "occupancy {} > slots {}",
            self.bufs.len(),
            self.slots
        );
        for (i, b) in self.bufs.iter().enumerate() {
            assert_eq!(
                b.offset + b.len,
                b.data.len(),
                "buffer {i}: offset + len != data"
            );
            assert!(
                b.data.len() <= self.page_size,
                "buffer {i}: longer than a page"
            );
            assert!(b.len > 0, "buffer {i}: empty buffer left in the ring");
        }
        let s = self.stats;
        assert_eq!(
            s.bytes_written,
            s.bytes_read + s.bytes_discarded + self.bytes_queued() as u64,
            "bytes written = read + discarded + queued"
        );
    }
}

/// `round_pipe_size()`: 0 (invalid) above 2^31, at least one page, else the
/// next power of two.
fn round_pipe_size(size: u64, page_size: usize) -> u64 {
    if size > 1 << 31 {
        0
    } else if size < page_size as u64 {
        page_size as u64
    } else {
        size.next_power_of_two()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> PipeRing {
        PipeRing::new(PipeConfig::x86())
    }

    #[track_caller]
    fn read(r: &mut PipeRing, n: usize) -> Result<Vec<u8>, Errno> {
        let mut buf = vec![0u8; n];
        let got = r.read(&mut buf)?;
        buf.truncate(got);
        r.assert_invariants();
        Ok(buf)
    }

    #[test]
    fn each_packet_write_is_one_read() {
        let mut r = ring();
        assert_eq!(r.write(b"abc", true), Ok(3));
        assert_eq!(r.write(b"de", true), Ok(2));
        assert_eq!(r.occupancy(), 2);
        assert_eq!(read(&mut r, 100).unwrap(), b"abc");
        assert_eq!(read(&mut r, 100).unwrap(), b"de");
        assert_eq!(read(&mut r, 100), Err(Errno::AGAIN));
    }

    #[test]
    fn stream_writes_merge_and_read_together() {
        let mut r = ring();
        r.write(b"abc", false).unwrap();
        r.write(b"de", false).unwrap();
        assert_eq!(
            r.occupancy(),
            1,
            "the second write merged into the first page"
        );
        assert_eq!(read(&mut r, 100).unwrap(), b"abcde");
    }

    #[test]
    fn short_read_discards_the_rest_of_the_packet() {
        // LTP pipe2_03 check_discard: PIPE_BUF bytes then "1"; read(20)
        // returns 20, the next read(20) returns the 1-byte packet.
        let mut r = ring();
        r.write(&[b'x'; 4096], true).unwrap();
        r.write(b"1", true).unwrap();
        assert_eq!(read(&mut r, 20).unwrap(), vec![b'x'; 20]);
        assert_eq!(read(&mut r, 20).unwrap(), b"1");
        assert_eq!(r.stats().bytes_discarded, 4076);
    }

    #[test]
    fn writes_over_a_page_split_into_page_packets() {
        // A 2*PIPE_BUF + 5 byte packet write is three packets: 4096, 4096, 5.
        let mut r = ring();
        assert_eq!(r.write(&[1u8; 8197], true), Ok(8197));
        assert_eq!(r.buffers(), vec![(4096, true), (4096, true), (5, true)]);
        assert_eq!(read(&mut r, 65536).unwrap().len(), 4096);
        assert_eq!(read(&mut r, 65536).unwrap().len(), 4096);
        assert_eq!(read(&mut r, 65536).unwrap().len(), 5);
    }

    #[test]
    fn capacity_is_counted_in_packets() {
        // 16 one-byte packets fill a default pipe; the 17th write is EAGAIN
        // although 16 bytes of 64 KiB are used.
        let mut r = ring();
        for _ in 0..16 {
            assert_eq!(r.write(b"x", true), Ok(1));
        }
        assert!(r.is_full());
        assert_eq!(r.bytes_queued(), 16);
        assert_eq!(r.write(b"x", true), Err(Errno::AGAIN));
        // The same bytes in stream mode fit in one buffer.
        let mut s = ring();
        for _ in 0..17 {
            assert_eq!(s.write(b"x", false), Ok(1));
        }
        assert_eq!(s.occupancy(), 1);
    }

    #[test]
    fn zero_length_writes_create_nothing_even_without_readers() {
        let mut r = ring();
        assert_eq!(r.write(b"", true), Ok(0));
        assert!(r.is_empty());
        r.release_reader();
        assert_eq!(r.write(b"", true), Ok(0));
        assert_eq!(r.write(b"x", true), Err(Errno::PIPE));
    }

    #[test]
    fn zero_length_read_returns_zero_even_when_empty() {
        let mut r = ring();
        assert_eq!(read(&mut r, 0).unwrap(), b"");
    }

    #[test]
    fn end_of_file_when_empty_without_writers() {
        let mut r = ring();
        r.write(b"ab", true).unwrap();
        r.release_writer();
        assert_eq!(read(&mut r, 1).unwrap(), b"a");
        assert_eq!(read(&mut r, 1).unwrap(), b"");
    }

    #[test]
    fn a_packet_writer_merges_into_a_stream_buffer_but_not_the_reverse() {
        // pipe_write() checks the *last buffer's* CAN_MERGE flag, not the
        // writer's mode: a packet write after stream data joins that page.
        let mut r = ring();
        r.write(b"ab", false).unwrap();
        r.write(b"cd", true).unwrap();
        assert_eq!(r.buffers(), vec![(4, false)]);
        // A stream write after a packet takes a new buffer.
        let mut p = ring();
        p.write(b"ab", true).unwrap();
        p.write(b"cd", false).unwrap();
        assert_eq!(p.buffers(), vec![(2, true), (2, false)]);
        // A read takes stream bytes and then at most one packet.
        let mut m = ring();
        m.write(b"ab", false).unwrap();
        m.write(&[7u8; 4096], true).unwrap();
        m.write(b"z", true).unwrap();
        assert_eq!(
            read(&mut m, 10).unwrap(),
            b"ab\x07\x07\x07\x07\x07\x07\x07\x07"
        );
        assert_eq!(read(&mut m, 10).unwrap(), b"z");
    }

    #[test]
    fn stream_merge_takes_the_first_bytes_of_a_long_write() {
        // 100 bytes queued, then a 5000-byte stream write: the first
        // 5000 % 4096 = 904 bytes merge into the first page, the remaining
        // 4096 take a new one.
        let mut r = ring();
        r.write(&[0u8; 100], false).unwrap();
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        r.write(&data, false).unwrap();
        assert_eq!(r.buffers(), vec![(1004, false), (4096, false)]);
        let first = read(&mut r, 1004).unwrap();
        assert_eq!(&first[100..], &data[..904]);
    }

    #[test]
    fn non_blocking_write_returns_the_part_that_fit() {
        let mut r = ring();
        r.set_size(8192).unwrap();
        assert_eq!(r.write(&[0u8; 3 * 4096], true), Ok(8192));
        assert_eq!(r.write(b"x", true), Err(Errno::AGAIN));
    }

    #[test]
    fn set_size_rounds_limits_and_refuses() {
        let mut r = ring();
        assert_eq!(r.size(), 65536);
        assert_eq!(
            r.set_size(0),
            Ok(4096),
            "below a page rounds up to one page"
        );
        assert_eq!(
            r.set_size(5000),
            Ok(8192),
            "rounded up to a power of two pages"
        );
        assert_eq!(r.set_size(1 << 20), Ok(1 << 20));
        assert_eq!(
            r.set_size((1 << 20) + 1),
            Err(Errno::PERM),
            "past pipe-max-size"
        );
        assert_eq!(r.set_size((1 << 31) + 1), Err(Errno::INVAL));
        assert_eq!(
            r.set_size((1 << 32) + 4096),
            Ok(4096),
            "only the low 32 bits count"
        );
        assert_eq!(r.set_size(8192), Ok(8192));
        r.write(b"a", true).unwrap();
        r.write(b"b", true).unwrap();
        assert_eq!(
            r.set_size(4096),
            Err(Errno::BUSY),
            "two packets do not fit one slot"
        );
        let mut root = PipeRing::new(PipeConfig {
            privileged: true,
            ..PipeConfig::x86()
        });
        assert_eq!(root.set_size(1 << 21), Ok(1 << 21));
    }
}
