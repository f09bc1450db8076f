//! Dump: read a live connection's state into a [`ConnImage`].
//!
//! Mirrors CRIU's `libsoccr_pause()` + `libsoccr_save()` (soccr/soccr.c)
//! over the kernel's repair options (net/ipv4/tcp.c):
//!
//! ```text
//! TCP_INFO            state (must be one libsoccr saves), options, wscales
//! TCP_REPAIR = 1      repair mode: recv needs MSG_PEEK, close sends nothing
//! SIOCOUTQ            outq = write_seq - snd_una      (0 in CLOSE)
//! SIOCOUTQNSD         unsent = write_seq - snd_nxt    (0 in CLOSE)
//!                     our FIN, when queued, is not data: outq-1, unsent-1
//! SIOCINQ             inq = rcv_nxt - copied_seq
//! TCP_MAXSEG          the MSS clamp (repair mode changes its meaning)
//! TCP_TIMESTAMP       the timestamp clock, if timestamps were negotiated
//! TCP_REPAIR_WINDOW   snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup
//! per queue           TCP_REPAIR_QUEUE = q; TCP_QUEUE_SEQ; recv(MSG_PEEK,
//!                     len + 1) must return exactly len
//! getsockname, getpeername
//! ```
//!
//! Invariant after a successful dump: the socket is in repair mode with
//! `repair_queue == TCP_NO_QUEUE`, so its owner's reads fail (EPERM) and
//! writes fail (EINVAL) instead of changing the saved queues, and closing it
//! sends nothing to the peer ([`close_silently`]). After a failed dump the
//! socket is back out of repair mode (as `libsoccr_resume()` leaves it),
//! without a window probe.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use klab_sys::tcp::{RepairMode, RepairQueue, TCPI_OPT_SACK, TCPI_OPT_TIMESTAMPS, TCPI_OPT_WSCALE};
use rustix::net::RecvFlags;

use crate::error::{DumpError, SockoptError};
use crate::image::{ConnImage, TcpOptions, TcpState};
use crate::sockopt;

/// Dumps the connection on `fd` and leaves the socket in repair mode.
///
/// # Errors
/// The failing option by name and errno, a state libsoccr does not save,
/// or a queue whose bytes do not match its length. The socket then leaves
/// repair mode again.
pub fn dump(fd: BorrowedFd<'_>) -> Result<ConnImage, DumpError> {
    let info = sockopt::info(fd)?;
    let state = TcpState::from_number(info.state).ok_or_else(|| DumpError::State {
        state: state_name(info.state),
        reason: "only ESTABLISHED, SYN_SENT, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING and \
                 CLOSE sockets can be dumped (libsoccr's list); listening sockets never",
    })?;
    sockopt::set_repair(fd, RepairMode::On)?;
    match dump_in_repair(fd, state) {
        Ok(img) => Ok(img),
        Err(e) => {
            let _ = sockopt::set_queue(fd, RepairQueue::None);
            let _ = sockopt::set_repair(fd, RepairMode::OffNoWindowProbe);
            Err(e)
        }
    }
}

fn state_name(n: u8) -> String {
    match n {
        3 => "SYN_RECV".into(),
        6 => "TIME_WAIT".into(),
        10 => "LISTEN".into(),
        12 => "NEW_SYN_RECV".into(),
        _ => format!("{n}"),
    }
}

fn dump_in_repair(fd: BorrowedFd<'_>, state: TcpState) -> Result<ConnImage, DumpError> {
    // refresh_sk(): queue lengths.
    let info = sockopt::info(fd)?;
    let mut outq = sockopt::outq(fd)?;
    let mut unsent = sockopt::outq_not_sent(fd)?;
    if state == TcpState::Close {
        // A reset connection may keep unsent data nobody can read: dropped,
        // as libsoccr does.
        outq = 0;
        unsent = 0;
    }
    if state.fin_in_send_queue() {
        outq = outq.saturating_sub(1);
        unsent = unsent.saturating_sub(1);
    }
    let inq = sockopt::inq(fd)?;
    // get_stream_options().
    let mss_clamp = sockopt::maxseg(fd)?;
    let options = TcpOptions {
        timestamps: info.options & TCPI_OPT_TIMESTAMPS != 0,
        sack: info.options & TCPI_OPT_SACK != 0,
        wscale: (info.options & TCPI_OPT_WSCALE != 0).then_some((info.snd_wscale, info.rcv_wscale)),
    };
    let timestamp = if options.timestamps {
        sockopt::timestamp(fd)?
    } else {
        0
    };
    // get_window().
    let window = sockopt::window(fd)?;
    // get_queue() for each queue.
    let (recv_seq, recv_queue) = read_queue(fd, RepairQueue::Recv, inq)?;
    let (send_seq, send_queue) = read_queue(fd, RepairQueue::Send, outq)?;
    sockopt::set_queue(fd, RepairQueue::None)?;
    let local = address(fd, true)?;
    let remote = address(fd, false)?;
    let img = ConnImage {
        local,
        remote,
        state,
        options,
        mss_clamp,
        timestamp,
        window,
        recv_seq,
        send_seq,
        recv_queue,
        send_queue,
        unsent: unsent.min(outq),
    };
    if let Err((field, reason)) = img.check() {
        return Err(DumpError::State {
            state: format!("{state} ({field}: {reason})"),
            reason: "the kernel reported values the image cannot hold",
        });
    }
    Ok(img)
}

fn read_queue(fd: BorrowedFd<'_>, q: RepairQueue, len: u32) -> Result<(u32, Vec<u8>), DumpError> {
    sockopt::set_queue(fd, q)?;
    let seq = sockopt::queue_seq(fd, q)?;
    let mut buf = vec![0u8; len as usize + 1];
    let got = if len == 0 {
        0
    } else {
        let r = rustix::net::recv(fd, &mut buf[..], RecvFlags::PEEK | RecvFlags::DONTWAIT);
        sockopt::call(
            || format!("recv(MSG_PEEK) of {}", sockopt::queue_name(q)),
            r,
        )?
        .1
    };
    if got != len as usize {
        return Err(DumpError::QueueMismatch {
            queue: if q == RepairQueue::Recv {
                "recv"
            } else {
                "send"
            },
            expected: len,
            got,
        });
    }
    buf.truncate(len as usize);
    Ok((seq, buf))
}

/// The connection's `(local, remote)` addresses: what a lock needs before
/// the dump.
///
/// # Errors
/// `getsockname` or `getpeername` failing (ENOTCONN for an unconnected
/// socket).
pub fn tuple(fd: BorrowedFd<'_>) -> Result<(SocketAddr, SocketAddr), SockoptError> {
    Ok((address(fd, true)?, address(fd, false)?))
}

fn address(fd: BorrowedFd<'_>, own: bool) -> Result<SocketAddr, SockoptError> {
    let any = if own {
        sockopt::call(|| "getsockname".into(), rustix::net::getsockname(fd))?
    } else {
        let peer = sockopt::call(|| "getpeername".into(), rustix::net::getpeername(fd))?;
        peer.ok_or_else(|| {
            SockoptError::new("getpeername", &std::io::Error::from_raw_os_error(107))
        })?
    };
    SocketAddr::try_from(any).map_err(|e| {
        SockoptError::new(
            if own { "getsockname" } else { "getpeername" },
            &std::io::Error::from(e),
        )
    })
}

/// Retires a socket without a word to the peer: makes sure it is in repair
/// mode, disconnects it (`connect(AF_UNSPEC)`, which runs the kernel's
/// `tcp_disconnect()` at once), then closes it. `tcp_disconnect()` takes
/// its repair branch and sends neither FIN nor RST, and it unhashes the
/// socket now: a close alone would leave that to the last reference, which
/// a child of another thread, between its fork and its exec, may still
/// hold, keeping the 4-tuple taken for a restore in the same namespace.
///
/// # Errors
/// When repair mode cannot be entered or the disconnect fails; the socket
/// is then **not** closed here but handed back, so the caller decides
/// (closing it outside repair mode would reset the connection).
pub fn close_silently(fd: OwnedFd) -> Result<(), (OwnedFd, SockoptError)> {
    match sockopt::repair(fd.as_fd()) {
        Ok(true) => {}
        _ => {
            if let Err(e) = sockopt::set_repair(fd.as_fd(), RepairMode::On) {
                return Err((fd, e));
            }
        }
    }
    if let Err(e) = sockopt::call(
        || "connect(AF_UNSPEC) in repair mode".into(),
        rustix::net::connect_unspec(fd.as_fd()),
    ) {
        return Err((fd, e));
    }
    drop(fd);
    Ok(())
}
