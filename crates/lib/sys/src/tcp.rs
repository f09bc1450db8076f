//! The TCP connection-repair socket options and the socket queue ioctls.
//!
//! rustix and nix offer neither the `TCP_REPAIR*` family, `TCP_TIMESTAMP`,
//! `TCP_INFO` nor `SIOCOUTQ`/`SIOCOUTQNSD`, so they are wrapped here, one
//! function per option and direction. Each wrapper checks the length the
//! kernel wrote back and returns the kernel's errno unchanged in the
//! [`std::io::Error`]; naming the option in an error message is the
//! caller's job (klab-tcp-repair does it).
//!
//! The numbers are the uapi ones from `include/uapi/linux/tcp.h` and
//! `include/uapi/linux/sockios.h`; the rules the kernel applies to each
//! option live in `net/ipv4/tcp.c`, `do_tcp_setsockopt()`,
//! `do_tcp_getsockopt()`, `tcp_repair_options_est()` and
//! `tcp_repair_set_window()` (summarised in klab-tcp-repair's header).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `TCP_REPAIR`: enter or leave repair mode.
pub const TCP_REPAIR: i32 = 19;
/// `TCP_REPAIR_QUEUE`: select the queue later calls act on.
pub const TCP_REPAIR_QUEUE: i32 = 20;
/// `TCP_QUEUE_SEQ`: the selected queue's sequence number.
pub const TCP_QUEUE_SEQ: i32 = 21;
/// `TCP_REPAIR_OPTIONS`: set negotiated options on a repaired socket.
pub const TCP_REPAIR_OPTIONS: i32 = 22;
/// `TCP_TIMESTAMP`: the socket's timestamp clock (current value + offset).
pub const TCP_TIMESTAMP: i32 = 24;
/// `TCP_REPAIR_WINDOW`: the window state (Linux 4.8+).
pub const TCP_REPAIR_WINDOW: i32 = 29;
/// `TCP_MAXSEG`: in repair mode getsockopt returns the MSS clamp.
pub const TCP_MAXSEG: i32 = 2;
/// `TCP_INFO`.
pub const TCP_INFO: i32 = 11;
/// `SIOCOUTQNSD`: bytes in the send queue not yet sent (`write_seq - snd_nxt`).
pub const SIOCOUTQNSD: u64 = 0x894B;
/// `SIOCOUTQ` (= `TIOCOUTQ`): bytes in the send queue (`write_seq - snd_una`).
pub const SIOCOUTQ: u64 = 0x5411;
/// `SIOCINQ` (= `FIONREAD`): unread bytes (`rcv_nxt - copied_seq`).
pub const SIOCINQ: u64 = 0x541B;

/// `TCPOPT_MSS` code for [`RepairOpt`].
pub const TCPOPT_MSS: u32 = 2;
/// `TCPOPT_WINDOW` code: value `snd_wscale | rcv_wscale << 16`.
pub const TCPOPT_WINDOW: u32 = 3;
/// `TCPOPT_SACK_PERM` code: value 0.
pub const TCPOPT_SACK_PERM: u32 = 4;
/// `TCPOPT_TIMESTAMP` code: value 0.
pub const TCPOPT_TIMESTAMP: u32 = 8;

/// `tcpi_options` bit: timestamps negotiated.
pub const TCPI_OPT_TIMESTAMPS: u8 = 1;
/// `tcpi_options` bit: SACK permitted.
pub const TCPI_OPT_SACK: u8 = 2;
/// `tcpi_options` bit: window scaling negotiated.
pub const TCPI_OPT_WSCALE: u8 = 4;

/// Values of `TCP_REPAIR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepairMode {
    /// `TCP_REPAIR_ON` (1).
    On,
    /// `TCP_REPAIR_OFF` (0): leave repair mode and send a window probe.
    Off,
    /// `TCP_REPAIR_OFF_NO_WP` (-1): leave repair mode without the probe.
    OffNoWindowProbe,
}

impl RepairMode {
    fn value(self) -> i32 {
        match self {
            RepairMode::On => 1,
            RepairMode::Off => 0,
            RepairMode::OffNoWindowProbe => -1,
        }
    }
}

/// Queue ids for `TCP_REPAIR_QUEUE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepairQueue {
    /// `TCP_NO_QUEUE` (0).
    None,
    /// `TCP_RECV_QUEUE` (1).
    Recv,
    /// `TCP_SEND_QUEUE` (2).
    Send,
}

impl RepairQueue {
    fn value(self) -> i32 {
        match self {
            RepairQueue::None => 0,
            RepairQueue::Recv => 1,
            RepairQueue::Send => 2,
        }
    }
}

/// `struct tcp_repair_opt`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepairOpt {
    /// `TCPOPT_*` code.
    pub opt_code: u32,
    /// Its value.
    pub opt_val: u32,
}

/// `struct tcp_repair_window`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RepairWindow {
    /// Sequence number of the segment that last updated the send window.
    pub snd_wl1: u32,
    /// The peer's advertised window.
    pub snd_wnd: u32,
    /// The largest window the peer ever advertised.
    pub max_window: u32,
    /// The window we advertise.
    pub rcv_wnd: u32,
    /// `rcv_nxt` at the last window update we sent.
    pub rcv_wup: u32,
}

/// The head of `struct tcp_info` that repair needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpInfoHead {
    /// `tcpi_state` (`TCP_ESTABLISHED` = 1, ...).
    pub state: u8,
    /// `tcpi_options` (`TCPI_OPT_*` bits).
    pub options: u8,
    /// `tcpi_snd_wscale` (low nibble of byte 6).
    pub snd_wscale: u8,
    /// `tcpi_rcv_wscale` (high nibble of byte 6).
    pub rcv_wscale: u8,
}

fn setsockopt_raw<T>(fd: BorrowedFd<'_>, opt: i32, value: &T, len: usize) -> io::Result<()> {
    debug_assert!(len <= size_of::<T>() || size_of::<T>() == 0);
    let len =
        libc::socklen_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `value` points to at least `len` readable bytes (callers pass
    // `size_of::<T>()` or the byte length of a slice they own); the kernel
    // only reads them. `fd` is a valid descriptor for the call's duration.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            opt,
            std::ptr::from_ref(value).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int(fd: BorrowedFd<'_>, opt: i32, value: i32) -> io::Result<()> {
    setsockopt_raw(fd, opt, &value, size_of::<i32>())
}

/// getsockopt into a plain-old-data value; returns the length written.
fn getsockopt_raw<T: Copy>(fd: BorrowedFd<'_>, opt: i32, out: &mut T) -> io::Result<usize> {
    let mut len = libc::socklen_t::try_from(size_of::<T>())
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `out` is a valid, writable `T` of `len` bytes; every `T` used
    // here is `repr(C)` plain data (integers), so any bytes the kernel
    // writes form a valid value. `len` is updated by the kernel.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            opt,
            std::ptr::from_mut(out).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(len as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn get_int(fd: BorrowedFd<'_>, opt: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let n = getsockopt_raw(fd, opt, &mut v)?;
    if n != size_of::<i32>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel returned {n} bytes for an int option"),
        ));
    }
    Ok(v)
}

/// `setsockopt(SOL_SOCKET, SO_MARK, mark)`: the packet mark netfilter
/// rules can match (CAP_NET_ADMIN).
pub fn set_socket_mark(fd: BorrowedFd<'_>, mark: u32) -> io::Result<()> {
    let len = size_of::<u32>() as libc::socklen_t;
    // SAFETY: `mark` is a live u32 of `len` bytes, only read by the kernel.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MARK,
            std::ptr::from_ref(&mark).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `setsockopt(TCP_REPAIR, mode)`. Needs CAP_NET_ADMIN (EPERM otherwise,
/// and for a listening socket).
pub fn set_repair(fd: BorrowedFd<'_>, mode: RepairMode) -> io::Result<()> {
    set_int(fd, TCP_REPAIR, mode.value())
}

/// `getsockopt(TCP_REPAIR)`: whether the socket is in repair mode.
pub fn repair(fd: BorrowedFd<'_>) -> io::Result<bool> {
    Ok(get_int(fd, TCP_REPAIR)? != 0)
}

/// `setsockopt(TCP_REPAIR_QUEUE, queue)`. EPERM outside repair mode.
pub fn set_repair_queue(fd: BorrowedFd<'_>, queue: RepairQueue) -> io::Result<()> {
    set_int(fd, TCP_REPAIR_QUEUE, queue.value())
}

/// `setsockopt(TCP_REPAIR_QUEUE, raw)` with an arbitrary value, to pin the
/// kernel's EINVAL for ids >= `TCP_QUEUES_NR`.
pub fn set_repair_queue_raw(fd: BorrowedFd<'_>, raw: i32) -> io::Result<()> {
    set_int(fd, TCP_REPAIR_QUEUE, raw)
}

/// `getsockopt(TCP_QUEUE_SEQ)`: `write_seq` (send queue) or `rcv_nxt`
/// (receive queue) of the selected queue.
pub fn queue_seq(fd: BorrowedFd<'_>) -> io::Result<u32> {
    get_int(fd, TCP_QUEUE_SEQ).map(|v| v as u32)
}

/// `setsockopt(TCP_QUEUE_SEQ, seq)`: only while the socket is closed
/// (before `connect`), EPERM otherwise.
pub fn set_queue_seq(fd: BorrowedFd<'_>, seq: u32) -> io::Result<()> {
    setsockopt_raw(fd, TCP_QUEUE_SEQ, &seq, size_of::<u32>())
}

/// `setsockopt(TCP_REPAIR_OPTIONS, opts)`: an array of `tcp_repair_opt`.
pub fn set_repair_options(fd: BorrowedFd<'_>, opts: &[RepairOpt]) -> io::Result<()> {
    let len = std::mem::size_of_val(opts);
    if opts.is_empty() {
        return Ok(());
    }
    // The first element's address is the array's address; `len` covers the
    // whole slice.
    setsockopt_raw_slice(fd, TCP_REPAIR_OPTIONS, opts, len)
}

fn setsockopt_raw_slice<T>(
    fd: BorrowedFd<'_>,
    opt: i32,
    values: &[T],
    len: usize,
) -> io::Result<()> {
    let len =
        libc::socklen_t::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `values` is a live slice of `len` bytes (the caller passes
    // `size_of_val(values)`); the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_TCP,
            opt,
            values.as_ptr().cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `getsockopt(TCP_REPAIR_WINDOW)`. EPERM outside repair mode, ENOPROTOOPT
/// before Linux 4.8.
pub fn repair_window(fd: BorrowedFd<'_>) -> io::Result<RepairWindow> {
    let mut w = RepairWindow::default();
    let n = getsockopt_raw(fd, TCP_REPAIR_WINDOW, &mut w)?;
    if n != size_of::<RepairWindow>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel returned {n} bytes for tcp_repair_window"),
        ));
    }
    Ok(w)
}

/// `setsockopt(TCP_REPAIR_WINDOW, w)`.
pub fn set_repair_window(fd: BorrowedFd<'_>, w: &RepairWindow) -> io::Result<()> {
    setsockopt_raw(fd, TCP_REPAIR_WINDOW, w, size_of::<RepairWindow>())
}

/// `getsockopt(TCP_TIMESTAMP)`: the socket's timestamp clock now
/// (`tcp_clock + tsoffset`).
pub fn timestamp(fd: BorrowedFd<'_>) -> io::Result<u32> {
    get_int(fd, TCP_TIMESTAMP).map(|v| v as u32)
}

/// `setsockopt(TCP_TIMESTAMP, ts)`: in repair mode, sets `tsoffset` so the
/// socket's clock reads `ts` now.
pub fn set_timestamp(fd: BorrowedFd<'_>, ts: u32) -> io::Result<()> {
    setsockopt_raw(fd, TCP_TIMESTAMP, &ts, size_of::<u32>())
}

/// `getsockopt(TCP_MAXSEG)`: the MSS clamp in repair mode, the current MSS
/// otherwise.
pub fn maxseg(fd: BorrowedFd<'_>) -> io::Result<u32> {
    get_int(fd, TCP_MAXSEG).map(|v| v as u32)
}

/// `getsockopt(TCP_INFO)`, the first bytes: state, options, window scales.
pub fn tcp_info_head(fd: BorrowedFd<'_>) -> io::Result<TcpInfoHead> {
    // The fixed head of struct tcp_info: u8 state, ca_state, retransmits,
    // probes, backoff, options, (snd_wscale:4, rcv_wscale:4), ...
    let mut buf = [0u8; 104];
    let n = getsockopt_raw(fd, TCP_INFO, &mut buf)?;
    if n < 7 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("kernel returned {n} bytes of tcp_info"),
        ));
    }
    Ok(TcpInfoHead {
        state: buf[0],
        options: buf[5],
        snd_wscale: buf[6] & 0x0f,
        rcv_wscale: buf[6] >> 4,
    })
}

fn ioctl_int(fd: BorrowedFd<'_>, request: u64) -> io::Result<u32> {
    let mut v: libc::c_int = 0;
    // SAFETY: SIOCINQ, SIOCOUTQ and SIOCOUTQNSD write one `int` through the
    // pointer, which points to a live `c_int`.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, &raw mut v) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(v)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative queue length"))
}

/// `ioctl(SIOCINQ)`: bytes received and not yet read.
pub fn inq(fd: BorrowedFd<'_>) -> io::Result<u32> {
    ioctl_int(fd, SIOCINQ)
}

/// `ioctl(SIOCOUTQ)`: bytes in the send queue, sent or not, not yet acked.
pub fn outq(fd: BorrowedFd<'_>) -> io::Result<u32> {
    ioctl_int(fd, SIOCOUTQ)
}

/// `ioctl(SIOCOUTQNSD)`: bytes in the send queue never sent.
pub fn outq_not_sent(fd: BorrowedFd<'_>) -> io::Result<u32> {
    ioctl_int(fd, SIOCOUTQNSD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    fn errno(e: &io::Error) -> i32 {
        e.raw_os_error().unwrap_or(0)
    }

    fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (c, s)
    }

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn struct_layouts_match_uapi() {
        assert_eq!(size_of::<RepairOpt>(), 8);
        assert_eq!(size_of::<RepairWindow>(), 20);
    }

    #[test]
    fn queue_ioctls_count_bytes() {
        let (mut c, s) = pair();
        c.write_all(b"hello").unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while inq(s.as_fd()).unwrap() < 5 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(inq(s.as_fd()).unwrap(), 5);
        assert_eq!(outq_not_sent(c.as_fd()).unwrap(), 0);
        let info = tcp_info_head(s.as_fd()).unwrap();
        assert_eq!(info.state, 1, "TCP_ESTABLISHED");
    }

    #[test]
    fn repair_queue_needs_repair_mode() {
        let (_c, s) = pair();
        let e = set_repair_queue(s.as_fd(), RepairQueue::Recv).unwrap_err();
        assert_eq!(errno(&e), libc::EPERM);
        let e = repair_window(s.as_fd()).unwrap_err();
        assert_eq!(errno(&e), libc::EPERM);
    }

    #[test]
    fn repair_mode_round_trip_reads_queues() {
        if !root() {
            eprintln!("skipped: TCP_REPAIR needs CAP_NET_ADMIN (not root)");
            return;
        }
        let (mut c, s) = pair();
        c.write_all(b"abc").unwrap();
        let mut s2 = s.try_clone().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(50));
        set_repair(s.as_fd(), RepairMode::On).unwrap();
        assert!(repair(s.as_fd()).unwrap());
        set_repair_queue(s.as_fd(), RepairQueue::Recv).unwrap();
        let rcv_nxt = queue_seq(s.as_fd()).unwrap();
        assert!(maxseg(s.as_fd()).unwrap() > 0);
        let w = repair_window(s.as_fd()).unwrap();
        assert!(w.max_window >= w.snd_wnd);
        let e = set_queue_seq(s.as_fd(), rcv_nxt).unwrap_err();
        assert_eq!(errno(&e), libc::EPERM, "TCP_QUEUE_SEQ only before connect");
        let e = set_repair_queue_raw(s.as_fd(), 3).unwrap_err();
        assert_eq!(errno(&e), libc::EINVAL, "queue ids stop at TCP_QUEUES_NR");
        set_repair_queue(s.as_fd(), RepairQueue::None).unwrap();
        set_repair(s.as_fd(), RepairMode::OffNoWindowProbe).unwrap();
        let mut buf = [0u8; 3];
        s2.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"abc");
    }
}
