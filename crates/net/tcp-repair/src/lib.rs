//! Dump a live Linux TCP connection and restore it elsewhere, with the peer
//! unaware: TCP connection repair (Linux 3.5, Pavel Emelyanov; seed page
//! 002, "TCP connection repair").
//!
//! # What the kernel offers (net/ipv4/tcp.c)
//!
//! `setsockopt(TCP_REPAIR, 1)` (CAP_NET_ADMIN; any state but LISTEN) puts a
//! socket in repair mode, in which:
//!
//! * `TCP_REPAIR_QUEUE` selects the receive or send queue; `recv(MSG_PEEK)`
//!   then reads that queue, `send` writes into it without transmitting, and
//!   `TCP_QUEUE_SEQ` reads its sequence (set only while CLOSE, EPERM after);
//! * `TCP_MAXSEG` reads the MSS clamp, `TCP_REPAIR_WINDOW` the window state
//!   (`max_window >= snd_wnd`, `rcv_wup <= rcv_nxt`, else EINVAL),
//!   `TCP_TIMESTAMP` the timestamp clock (writing it sets `tsoffset`);
//! * `connect` goes straight to ESTABLISHED with no SYN, and
//!   `TCP_REPAIR_OPTIONS` sets what the handshake would have negotiated
//!   (SACK, timestamps, window scales `<= 14` else EFBIG, MSS);
//! * `close` sends nothing: `tcp_disconnect()` skips the RST.
//!
//! `setsockopt(TCP_REPAIR, 0)` leaves repair mode and sends a window probe
//! (`tcp_send_window_probe()`), which restarts the traffic.
//!
//! # What this crate does with it
//!
//! ```text
//!   source host                                target host
//!   NetLock::lock  (drop the 4-tuple)
//!   dump(fd) ───── ConnImage ── Image::to_bytes ── Image::parse ──▶ restore(img)
//!   close_silently(fd)                                             (route/address moves)
//!                                                                  Restored::finish
//!   NetLock::unlock
//! ```
//!
//! * [`dump`]: libsoccr's save sequence; leaves the socket in repair mode.
//! * [`image`]: the versioned, checksummed file format, checked on parse.
//! * [`restore`]: libsoccr's restore sequence; queues re-sent, sequences
//!   set to `dumped - queue length`, window after the queues, timestamp
//!   clock carried (the peer's PAWS check keeps passing).
//! * [`netlock`]: nftables rules that drop the connection's packets while
//!   no socket may answer them.
//! * [`take`]: a socket taken from another process with `pidfd_getfd`.
//! * [`netns`], [`testbed`], [`rtnl`]: namespaces, and a peer + two hosts network
//!   with an echo workload, for the tests and klab's experiment.
//!
//! Invariant kept end to end: after restore, `rcv_nxt` and `write_seq` of
//! the new socket equal the dumped ones, and its queues hold the dumped
//! bytes, so the peer sees one connection whose bytes arrive once, in
//! order.
#![forbid(unsafe_code)]

pub mod dump;
pub mod error;
pub mod image;
pub mod inject;
pub mod netlock;
pub mod netns;
pub mod restore;
pub mod rtnl;
mod sockopt;
pub mod take;
pub mod testbed;

pub use dump::{close_silently, dump, tuple};
pub use error::{DumpError, Errno, ImageError, LockError, RestoreError, SockoptError, TakeError};
pub use image::{ConnImage, Image, TcpOptions, TcpState};
pub use netlock::NetLock;
pub use restore::{RestoreOptions, Restored, restore};
