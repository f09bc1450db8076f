//! klab-sys's repair options and rustix's socket calls, each failure turned
//! into a [`SockoptError`] that names the call and its value.

use std::io;
use std::os::fd::BorrowedFd;

use klab_sys::tcp::{self, RepairMode, RepairOpt, RepairQueue, RepairWindow, TcpInfoHead};

use crate::error::SockoptError;

pub(crate) type Result<T> = std::result::Result<T, SockoptError>;

fn wrap<T>(call: impl FnOnce() -> String, r: io::Result<T>) -> Result<T> {
    r.map_err(|e| SockoptError::new(call(), &e))
}

pub(crate) fn mode_name(m: RepairMode) -> &'static str {
    match m {
        RepairMode::On => "TCP_REPAIR_ON",
        RepairMode::Off => "TCP_REPAIR_OFF",
        RepairMode::OffNoWindowProbe => "TCP_REPAIR_OFF_NO_WP",
    }
}

pub(crate) fn queue_name(q: RepairQueue) -> &'static str {
    match q {
        RepairQueue::None => "TCP_NO_QUEUE",
        RepairQueue::Recv => "TCP_RECV_QUEUE",
        RepairQueue::Send => "TCP_SEND_QUEUE",
    }
}

pub(crate) fn set_repair(fd: BorrowedFd<'_>, m: RepairMode) -> Result<()> {
    wrap(
        || format!("setsockopt(TCP_REPAIR, {})", mode_name(m)),
        tcp::set_repair(fd, m),
    )
}

pub(crate) fn repair(fd: BorrowedFd<'_>) -> Result<bool> {
    wrap(|| "getsockopt(TCP_REPAIR)".into(), tcp::repair(fd))
}

pub(crate) fn set_queue(fd: BorrowedFd<'_>, q: RepairQueue) -> Result<()> {
    wrap(
        || format!("setsockopt(TCP_REPAIR_QUEUE, {})", queue_name(q)),
        tcp::set_repair_queue(fd, q),
    )
}

pub(crate) fn queue_seq(fd: BorrowedFd<'_>, q: RepairQueue) -> Result<u32> {
    wrap(
        || format!("getsockopt(TCP_QUEUE_SEQ) of {}", queue_name(q)),
        tcp::queue_seq(fd),
    )
}

pub(crate) fn set_queue_seq(fd: BorrowedFd<'_>, q: RepairQueue, seq: u32) -> Result<()> {
    wrap(
        || format!("setsockopt(TCP_QUEUE_SEQ, {seq}) of {}", queue_name(q)),
        tcp::set_queue_seq(fd, seq),
    )
}

pub(crate) fn set_options(fd: BorrowedFd<'_>, opts: &[RepairOpt]) -> Result<()> {
    wrap(
        || {
            let list: Vec<String> = opts
                .iter()
                .map(|o| {
                    let name = match o.opt_code {
                        tcp::TCPOPT_MSS => "MSS",
                        tcp::TCPOPT_WINDOW => "WINDOW",
                        tcp::TCPOPT_SACK_PERM => "SACK_PERM",
                        tcp::TCPOPT_TIMESTAMP => "TIMESTAMP",
                        _ => "?",
                    };
                    format!("{name}={}", o.opt_val)
                })
                .collect();
            format!("setsockopt(TCP_REPAIR_OPTIONS, [{}])", list.join(", "))
        },
        tcp::set_repair_options(fd, opts),
    )
}

pub(crate) fn window(fd: BorrowedFd<'_>) -> Result<Option<RepairWindow>> {
    match tcp::repair_window(fd) {
        Ok(w) => Ok(Some(w)),
        // Before Linux 4.8: libsoccr's get_window() tolerates it too.
        Err(e) if e.raw_os_error() == Some(libc_enoprotoopt()) => Ok(None),
        Err(e) => Err(SockoptError::new("getsockopt(TCP_REPAIR_WINDOW)", &e)),
    }
}

fn libc_enoprotoopt() -> i32 {
    rustix::io::Errno::NOPROTOOPT.raw_os_error()
}

pub(crate) fn set_window(fd: BorrowedFd<'_>, w: &RepairWindow) -> Result<()> {
    wrap(
        || {
            format!(
                "setsockopt(TCP_REPAIR_WINDOW, {{snd_wl1 {}, snd_wnd {}, max_window {}, rcv_wnd {}, rcv_wup {}}})",
                w.snd_wl1, w.snd_wnd, w.max_window, w.rcv_wnd, w.rcv_wup
            )
        },
        tcp::set_repair_window(fd, w),
    )
}

pub(crate) fn timestamp(fd: BorrowedFd<'_>) -> Result<u32> {
    wrap(|| "getsockopt(TCP_TIMESTAMP)".into(), tcp::timestamp(fd))
}

pub(crate) fn set_timestamp(fd: BorrowedFd<'_>, ts: u32) -> Result<()> {
    wrap(
        || format!("setsockopt(TCP_TIMESTAMP, {ts})"),
        tcp::set_timestamp(fd, ts),
    )
}

pub(crate) fn maxseg(fd: BorrowedFd<'_>) -> Result<u32> {
    wrap(|| "getsockopt(TCP_MAXSEG)".into(), tcp::maxseg(fd))
}

pub(crate) fn info(fd: BorrowedFd<'_>) -> Result<TcpInfoHead> {
    wrap(|| "getsockopt(TCP_INFO)".into(), tcp::tcp_info_head(fd))
}

pub(crate) fn inq(fd: BorrowedFd<'_>) -> Result<u32> {
    wrap(|| "ioctl(SIOCINQ)".into(), tcp::inq(fd))
}

pub(crate) fn outq(fd: BorrowedFd<'_>) -> Result<u32> {
    wrap(|| "ioctl(SIOCOUTQ)".into(), tcp::outq(fd))
}

pub(crate) fn outq_not_sent(fd: BorrowedFd<'_>) -> Result<u32> {
    wrap(|| "ioctl(SIOCOUTQNSD)".into(), tcp::outq_not_sent(fd))
}

/// Wraps any rustix call result with the call's name.
pub(crate) fn call<T>(name: impl FnOnce() -> String, r: rustix::io::Result<T>) -> Result<T> {
    r.map_err(|e| SockoptError::new(name(), &io::Error::from(e)))
}
