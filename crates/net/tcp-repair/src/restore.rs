//! Restore: rebuild a connection from a [`ConnImage`] in a new socket.
//!
//! Mirrors CRIU's `libsoccr_restore()` (soccr/soccr.c), in its order,
//! because the kernel's checks (net/ipv4/tcp.c, `do_tcp_setsockopt()`)
//! make each step depend on the ones before:
//!
//! ```text
//! socket; TCP_REPAIR = 1          sk_reuse = SK_FORCE_REUSE
//! SO_REUSEADDR; bind(local)       the port may be in use (repair allows it)
//! RECV: TCP_QUEUE_SEQ = recv_seq - |recv queue|     only while CLOSE
//! SEND: TCP_QUEUE_SEQ = send_seq - |send queue|     (-1 more for our FIN)
//! connect(remote)                 no SYN: straight to ESTABLISHED
//! TCP_REPAIR_OPTIONS              SACK, WINDOW (snd | rcv << 16), TIMESTAMP, MSS
//! TCP_TIMESTAMP = saved clock     tsoffset: the peer's PAWS check still passes
//! RECV queue: send(bytes)         queued as received; rcv_nxt advances
//! SEND queue: send(sent part)     queued as sent, unacked; RTO will resend
//! TCP_REPAIR = -1; send(unsent); TCP_REPAIR = 1     never-sent tail, sent normally
//! TCP_REPAIR_WINDOW               after the queues: rcv_wup <= rcv_nxt holds
//! FIN_WAIT1: shutdown(SHUT_WR)    our FIN back in the send queue
//! ... then [`Restored::finish`]: TCP_REPAIR = 0, which sends a window probe
//! ```
//!
//! Queue sequence rule: the kernel advances a queue's sequence by each byte
//! written into it in repair mode, so each queue must start at its dumped
//! end minus its length; after the writes, `rcv_nxt == recv_seq` and
//! `write_seq == send_seq`, exactly as dumped.
//!
//! States: ESTABLISHED and FIN_WAIT1 are rebuilt with the options alone.
//! FIN_WAIT2, CLOSE_WAIT, LAST_ACK and CLOSING also need a segment forged
//! from the peer (its FIN, or its ACK of ours), sent from a raw socket
//! marked so the lock lets it pass (libsoccr's `send_fin()`; here
//! [`crate::inject`]), for IPv4 connections. CLOSE and SYN_SENT, and the
//! forging states over IPv6, are refused with the reason.
//!
//! Failure leaves nothing behind: until [`Restored`] is handed out, the
//! socket is owned by a guard that, on drop, puts it back in repair mode
//! (if a step had left it) and closes it, which sends nothing.

use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use klab_sys::tcp::{
    RepairMode, RepairOpt, RepairQueue, TCPOPT_MSS, TCPOPT_SACK_PERM, TCPOPT_TIMESTAMP,
    TCPOPT_WINDOW,
};
use rustix::net::{AddressFamily, Shutdown, SocketFlags, SocketType, ipproto};

use crate::error::{Errno, RestoreError, SockoptError};
use crate::image::{ConnImage, TcpState};
use crate::sockopt;

/// How to restore.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestoreOptions {
    /// Set `IP_FREEBIND` so the local address may be bound before it is
    /// configured in this namespace (the address moves after the restore).
    pub freebind: bool,
}

/// A restored connection, still in repair mode: nothing has been sent to
/// the peer yet. [`Restored::finish`] brings it to life; dropping it closes
/// it silently.
#[derive(Debug)]
pub struct Restored {
    fd: OwnedFd,
}

impl Restored {
    /// The socket.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Leaves repair mode (`TCP_REPAIR = 0`): the kernel sends a window probe
    /// and the connection carries on. Returns the socket.
    ///
    /// # Errors
    /// The failing option; the socket is then closed silently.
    pub fn finish(self) -> Result<OwnedFd, SockoptError> {
        sockopt::set_repair(self.fd.as_fd(), RepairMode::Off)?;
        Ok(self.fd)
    }
}

/// Owns a socket under construction; on drop, closes it in repair mode.
struct Building {
    fd: Option<OwnedFd>,
}

impl Building {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd
            .as_ref()
            .expect("socket present until taken")
            .as_fd()
    }
}

impl Drop for Building {
    fn drop(&mut self) {
        if let Some(fd) = self.fd.take() {
            // Best effort: if repair mode cannot be re-entered, the close may
            // send a RST, but the socket does not outlive the failure.
            let _ = sockopt::set_repair(fd.as_fd(), RepairMode::On);
            drop(fd);
        }
    }
}

/// Whether `restore` rebuilds connections in `state` (for an IPv4 or
/// IPv6 connection), and if not, why.
pub fn supported(state: TcpState, ipv4: bool) -> Result<(), &'static str> {
    match state {
        TcpState::Established | TcpState::FinWait1 => Ok(()),
        TcpState::FinWait2 | TcpState::CloseWait | TcpState::LastAck | TcpState::Closing
            if ipv4 =>
        {
            Ok(())
        }
        TcpState::FinWait2 | TcpState::CloseWait | TcpState::LastAck | TcpState::Closing => Err(
            "rebuilding it needs a segment forged from the peer (libsoccr send_fin), which \
             klab builds for IPv4 only",
        ),
        TcpState::Close => Err(
            "a closed (possibly reset) connection has nothing left to carry; libsoccr rebuilds \
             it with two forged segments, klab refuses it",
        ),
        TcpState::SynSent => Err("the handshake is not complete: reconnect instead"),
    }
}

/// libsoccr `RCVQ_FIRST_FIN | RCVQ_SECOND_FIN`: the peer's FIN was received.
fn fin_in_recv_queue(s: TcpState) -> bool {
    matches!(
        s,
        TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::Close
    )
}

/// libsoccr `restore_fin_in_snd_queue()`: `shutdown(SHUT_WR)` queues our
/// FIN again; in `TCP_SEND_QUEUE` mode it counts as sent (it had been
/// acked, an ACK is forged next), otherwise it is transmitted.
fn restore_fin_in_send_queue(fd: BorrowedFd<'_>, acked: bool) -> Result<(), SockoptError> {
    sockopt::set_queue(
        fd,
        if acked {
            RepairQueue::Send
        } else {
            RepairQueue::None
        },
    )?;
    sockopt::call(
        || "shutdown(SHUT_WR)".into(),
        rustix::net::shutdown(fd, Shutdown::Write),
    )?;
    sockopt::set_queue(fd, RepairQueue::None)
}

/// Rebuilds the connection in a new socket of the current network
/// namespace, left in repair mode.
///
/// # Errors
/// An unsupported state (before any socket is made), the failing option
/// by name and errno, or the 4-tuple still in use. No socket survives an
/// error.
pub fn restore(c: &ConnImage, opts: RestoreOptions) -> Result<Restored, RestoreError> {
    let peer4 = crate::inject::v4(c.remote).zip(crate::inject::v4(c.local));
    supported(c.state, peer4.is_some()).map_err(|reason| RestoreError::Unsupported {
        local: c.local,
        remote: c.remote,
        state: c.state.name(),
        reason,
    })?;
    let domain = if c.local.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = sockopt::call(
        || "socket(SOCK_STREAM, IPPROTO_TCP)".into(),
        rustix::net::socket_with(
            domain,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            Some(ipproto::TCP),
        ),
    )?;
    let b = Building { fd: Some(fd) };
    let fd = b.fd();
    sockopt::set_repair(fd, RepairMode::On)?;
    sockopt::call(
        || "setsockopt(SO_REUSEADDR, 1)".into(),
        rustix::net::sockopt::set_socket_reuseaddr(fd, true),
    )?;
    if opts.freebind {
        sockopt::call(
            || "setsockopt(IP_FREEBIND, 1)".into(),
            rustix::net::sockopt::set_ip_freebind(fd, true),
        )?;
    }
    size_buffers(fd, c)?;
    sockopt::call(
        || format!("bind({})", c.local),
        rustix::net::bind(fd, &c.local),
    )?;
    // libsoccr_set_sk_data_noq(): the sequence numbers, before connect.
    let fin = c.state.fin_in_send_queue();
    let send_end = if fin {
        c.send_seq.wrapping_sub(1)
    } else {
        c.send_seq
    };
    let rfin = fin_in_recv_queue(c.state);
    let recv_end = if rfin {
        c.recv_seq.wrapping_sub(1)
    } else {
        c.recv_seq
    };
    let recv_start = recv_end.wrapping_sub(c.recv_queue.len() as u32);
    let send_start = send_end.wrapping_sub(c.send_queue.len() as u32);
    sockopt::set_queue(fd, RepairQueue::Recv)?;
    sockopt::set_queue_seq(fd, RepairQueue::Recv, recv_start)?;
    sockopt::set_queue(fd, RepairQueue::Send)?;
    sockopt::set_queue_seq(fd, RepairQueue::Send, send_start)?;
    connect(fd, c.local, c.remote)?;
    sockopt::set_options(fd, &repair_options(c))?;
    if c.options.timestamps {
        sockopt::set_timestamp(fd, c.timestamp)?;
    }
    // libsoccr_restore_queue(): receive queue, then the sent part of the
    // send queue in repair mode, then the unsent tail sent normally.
    write_queue(fd, RepairQueue::Recv, &c.recv_queue)?;
    let sent = c.sent_len();
    write_queue(fd, RepairQueue::Send, &c.send_queue[..sent])?;
    if c.unsent > 0 {
        sockopt::set_repair(fd, RepairMode::OffNoWindowProbe)?;
        let r = write_all(fd, &c.send_queue[sent..], "send(unsent part of send queue)");
        // Back to repair mode whatever happened: the guard would, too.
        sockopt::set_repair(fd, RepairMode::On)?;
        r?;
    }
    if let Some(w) = &c.window {
        let mut w = *w;
        if rfin {
            // The FIN forged below advances rcv_nxt by one more.
            w.rcv_wup = w.rcv_wup.wrapping_sub(1);
            w.rcv_wnd = w.rcv_wnd.wrapping_add(1);
        }
        sockopt::set_window(fd, &w)?;
    }
    // Half-closed states, in libsoccr_restore()'s order. Our FIN first
    // where it went first; the peer's FIN forged into the receive queue;
    // our FIN second where it went second; an ACK of our FIN where the
    // peer had acked it. The peer may see a FIN twice, which TCP allows.
    let snd_una = send_end.wrapping_sub(c.send_queue.len() as u32);
    let forge = |seq: u32, ack: u32, flags: u8| -> Result<(), SockoptError> {
        let (peer, local) = peer4.expect("supported() admits forging states for IPv4 only");
        let wnd = c.window.map_or(65535, |w| {
            let scale = c.options.wscale.map_or(0, |(s, _)| s);
            (w.snd_wnd >> scale).min(65535)
        }) as u16;
        crate::inject::send(peer, local, seq, ack, flags, wnd)
    };
    if matches!(
        c.state,
        TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing
    ) {
        restore_fin_in_send_queue(fd, c.state == TcpState::FinWait2)?;
    }
    if rfin {
        forge(recv_end, snd_una, crate::inject::FIN | crate::inject::ACK)?;
    }
    if c.state == TcpState::LastAck {
        restore_fin_in_send_queue(fd, false)?;
    }
    if c.state == TcpState::FinWait2 {
        forge(recv_end, send_end.wrapping_add(1), crate::inject::ACK)?;
    }
    sockopt::set_queue(fd, RepairQueue::None)?;
    let mut b = b;
    Ok(Restored {
        fd: b.fd.take().expect("socket present"),
    })
}

/// Queue bytes are written into the socket's buffers before anything
/// drains them, so the buffers must hold them: grow a buffer (with the
/// `*BUFFORCE` options, CAP_NET_ADMIN) only when the default is too small.
fn size_buffers(fd: BorrowedFd<'_>, c: &ConnImage) -> Result<(), SockoptError> {
    // The kernel doubles the value given and counts skb overhead against it.
    let need_snd = c.send_queue.len() * 2 + (64 << 10);
    let need_rcv = c.recv_queue.len() * 2 + (64 << 10);
    let snd = sockopt::call(
        || "getsockopt(SO_SNDBUF)".into(),
        rustix::net::sockopt::socket_send_buffer_size(fd),
    )?;
    if snd < need_snd {
        sockopt::call(
            || format!("setsockopt(SO_SNDBUFFORCE, {need_snd})"),
            rustix::net::sockopt::set_socket_send_buffer_size_force(fd, need_snd),
        )?;
    }
    let rcv = sockopt::call(
        || "getsockopt(SO_RCVBUF)".into(),
        rustix::net::sockopt::socket_recv_buffer_size(fd),
    )?;
    if rcv < need_rcv {
        sockopt::call(
            || format!("setsockopt(SO_RCVBUFFORCE, {need_rcv})"),
            rustix::net::sockopt::set_socket_recv_buffer_size_force(fd, need_rcv),
        )?;
    }
    Ok(())
}

fn connect(fd: BorrowedFd<'_>, local: SocketAddr, remote: SocketAddr) -> Result<(), RestoreError> {
    match rustix::net::connect(fd, &remote) {
        Ok(()) => Ok(()),
        Err(e) if e == rustix::io::Errno::ADDRNOTAVAIL || e == rustix::io::Errno::ADDRINUSE => {
            Err(RestoreError::TupleInUse {
                local,
                remote,
                errno: Errno(e.raw_os_error()),
            })
        }
        Err(e) => Err(SockoptError::new(
            format!("connect({remote}) in repair mode"),
            &std::io::Error::from(e),
        )
        .into()),
    }
}

/// The `tcp_repair_opt` array, in libsoccr's order.
fn repair_options(c: &ConnImage) -> Vec<RepairOpt> {
    let mut v = Vec::with_capacity(4);
    if c.options.sack {
        v.push(RepairOpt {
            opt_code: TCPOPT_SACK_PERM,
            opt_val: 0,
        });
    }
    if let Some((snd, rcv)) = c.options.wscale {
        v.push(RepairOpt {
            opt_code: TCPOPT_WINDOW,
            opt_val: u32::from(snd) | (u32::from(rcv) << 16),
        });
    }
    if c.options.timestamps {
        v.push(RepairOpt {
            opt_code: TCPOPT_TIMESTAMP,
            opt_val: 0,
        });
    }
    v.push(RepairOpt {
        opt_code: TCPOPT_MSS,
        opt_val: c.mss_clamp,
    });
    v
}

/// Writes a queue's bytes in repair mode. The receive queue takes one
/// linear skb per call, which large sizes cannot get (ENOMEM): halve the
/// chunk down to 1 KiB, as libsoccr's `__send_queue()` does.
fn write_queue(fd: BorrowedFd<'_>, q: RepairQueue, data: &[u8]) -> Result<(), SockoptError> {
    if data.is_empty() {
        return Ok(());
    }
    sockopt::set_queue(fd, q)?;
    let what = format!("send() into {}", sockopt::queue_name(q));
    let mut off = 0;
    let mut chunk = data.len();
    while off < data.len() {
        let n = chunk.min(data.len() - off);
        match rustix::net::send(fd, &data[off..off + n], send_flags()) {
            Ok(0) => {
                return Err(SockoptError::new(
                    what,
                    &std::io::Error::from_raw_os_error(rustix::io::Errno::NOBUFS.raw_os_error()),
                ));
            }
            Ok(w) => off += w,
            Err(_) if chunk > 1024 => chunk /= 2,
            Err(e) => return Err(SockoptError::new(what, &std::io::Error::from(e))),
        }
    }
    Ok(())
}

fn send_flags() -> rustix::net::SendFlags {
    rustix::net::SendFlags::DONTWAIT | rustix::net::SendFlags::NOSIGNAL
}

fn write_all(fd: BorrowedFd<'_>, data: &[u8], what: &str) -> Result<(), SockoptError> {
    let mut off = 0;
    // Each call writes at least one byte or fails, so the loop is bounded
    // by the data's length.
    while off < data.len() {
        match rustix::net::send(fd, &data[off..], send_flags()) {
            Ok(0) => {
                return Err(SockoptError::new(
                    what,
                    &std::io::Error::from_raw_os_error(rustix::io::Errno::NOBUFS.raw_os_error()),
                ));
            }
            Ok(w) => off += w,
            Err(e) => return Err(SockoptError::new(what, &std::io::Error::from(e))),
        }
    }
    Ok(())
}
