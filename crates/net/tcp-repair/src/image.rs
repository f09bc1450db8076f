//! The repair image: what a dump saves and a restore needs, and its file
//! format.
//!
//! [`ConnImage`] is the parsed, checked representation of one connection
//! (the libsoccr `libsoccr_sk_data` plus the queue bytes and the two
//! addresses); [`Image`] is a file of one or more of them. Every
//! [`ConnImage`] that exists satisfies its invariants (checked by
//! [`ConnImage::check`], which both the parser and [`Image::to_bytes`] run),
//! so restore code never sees an impossible combination.
//!
//! # Format, version 1 (all integers little-endian)
//!
//! ```text
//! offset  size  field
//! 0       8     magic "KLABTCPR"
//! 8       2     version = 1
//! 10      4     n, number of connections (1 ..= 65536)
//! 14      ...   n connection records, each:
//!   +0    1     family: 4 or 6
//!   +1    16    local address (IPv4: 4 bytes then 12 zero bytes)
//!   +17   2     local port
//!   +19   16    remote address
//!   +35   2     remote port
//!   +37   1     state: kernel TCP state number (1 ESTABLISHED, 4 FIN_WAIT1, ...)
//!   +38   1     options: TCPI_OPT_* bits (1 timestamps, 2 SACK, 4 window scale)
//!   +39   1     snd_wscale (0 ..= 14; 0 unless window scale)
//!   +40   1     rcv_wscale (0 ..= 14; 0 unless window scale)
//!   +41   4     mss_clamp
//!   +45   4     timestamp (TCP_TIMESTAMP at dump; 0 unless timestamps)
//!   +49   1     window present: 0 or 1
//!   +50   20    tcp_repair_window: snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup
//!   +70   4     recv seq: rcv_nxt at dump (the end of the receive queue)
//!   +74   4     send seq: write_seq at dump (the end of the send queue)
//!   +78   4     recv queue length r
//!   +82   4     send queue length s
//!   +86   4     unsent length u (the tail of the send queue never sent)
//!   +90   r     receive queue bytes
//!   +90+r s     send queue bytes
//! end     4     CRC-32 (IEEE) of every byte before it
//! ```
//!
//! # Invariants (checked on parse and on write)
//!
//! * `unsent <= send.len()`; each queue `<= MAX_QUEUE_BYTES`;
//! * window scales `<= 14` (`TCP_MAX_WSCALE`), and 0 unless negotiated;
//! * `timestamp == 0` unless timestamps were negotiated;
//! * a window, when present, has `max_window >= snd_wnd` and
//!   `rcv_wup <= rcv_nxt` (as sequence numbers), the kernel's own checks in
//!   `tcp_repair_set_window()`;
//! * both addresses have the same family, and ports are not 0.
//!
//! The parser reads the whole file and checks the CRC before it builds
//! anything, so a corrupt or truncated image is rejected before any socket
//! is touched; every error names the byte offset and the field.
//! [`Image::read_from`] reads a file as a stream and judges it as it
//! comes: the header before anything else (a file that is not an image
//! costs 14 bytes of reading), each queue's length before its bytes, so
//! memory held never runs ahead of what the file has shown itself to be.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use klab_sys::tcp::RepairWindow;

use crate::error::ImageError;

/// The file magic.
pub const MAGIC: &[u8; 8] = b"KLABTCPR";
/// The format version this code writes and reads.
pub const VERSION: u16 = 1;
/// The largest queue an image may hold (64 MiB, far above any default
/// socket buffer).
pub const MAX_QUEUE_BYTES: u32 = 64 << 20;
/// The most connections one image may hold.
pub const MAX_CONNS: u32 = 1 << 16;
/// `TCP_MAX_WSCALE`.
pub const MAX_WSCALE: u8 = 14;

const HEADER_LEN: usize = 14;
const RECORD_FIXED_LEN: usize = 90;
const CRC_LEN: usize = 4;

/// The TCP states a dump may find, by their kernel numbers
/// (`include/net/tcp_states.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcpState {
    /// `TCP_ESTABLISHED` (1).
    Established,
    /// `TCP_SYN_SENT` (2).
    SynSent,
    /// `TCP_FIN_WAIT1` (4): our FIN sent, not yet acked.
    FinWait1,
    /// `TCP_FIN_WAIT2` (5): our FIN acked.
    FinWait2,
    /// `TCP_CLOSE` (7).
    Close,
    /// `TCP_CLOSE_WAIT` (8): the peer's FIN received.
    CloseWait,
    /// `TCP_LAST_ACK` (9): both FINs, ours not acked.
    LastAck,
    /// `TCP_CLOSING` (11): simultaneous close.
    Closing,
}

impl TcpState {
    /// The kernel's number for the state.
    pub fn number(self) -> u8 {
        match self {
            TcpState::Established => 1,
            TcpState::SynSent => 2,
            TcpState::FinWait1 => 4,
            TcpState::FinWait2 => 5,
            TcpState::Close => 7,
            TcpState::CloseWait => 8,
            TcpState::LastAck => 9,
            TcpState::Closing => 11,
        }
    }

    /// The state for a kernel number, if a dump may find it (libsoccr's
    /// `refresh_sk()` list).
    pub fn from_number(n: u8) -> Option<Self> {
        Some(match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            11 => TcpState::Closing,
            _ => return None,
        })
    }

    /// The kernel's name (`ESTABLISHED`).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Closing => "CLOSING",
        }
    }

    /// True when our FIN sits in the send queue and was counted by
    /// SIOCOUTQ (libsoccr `SNDQ_FIRST_FIN | SNDQ_SECOND_FIN`).
    pub fn fin_in_send_queue(self) -> bool {
        matches!(
            self,
            TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::Closing
                | TcpState::LastAck
                | TcpState::Close
        )
    }
}

impl std::fmt::Display for TcpState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Options negotiated at the handshake (`tcpi_options`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    /// Timestamps (RFC 7323).
    pub timestamps: bool,
    /// Selective acknowledgements.
    pub sack: bool,
    /// Window scaling: `(snd_wscale, rcv_wscale)`.
    pub wscale: Option<(u8, u8)>,
}

impl TcpOptions {
    /// `TCPI_OPT_*` bits.
    pub fn bits(&self) -> u8 {
        u8::from(self.timestamps)
            | (u8::from(self.sack) << 1)
            | (u8::from(self.wscale.is_some()) << 2)
    }
}

/// One connection as dumped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnImage {
    /// The dumped socket's own address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// The state at dump time.
    pub state: TcpState,
    /// Negotiated options.
    pub options: TcpOptions,
    /// The MSS clamp (`TCP_MAXSEG` in repair mode).
    pub mss_clamp: u32,
    /// `TCP_TIMESTAMP` at dump: the socket's timestamp clock, offset
    /// included (0 unless timestamps).
    pub timestamp: u32,
    /// `TCP_REPAIR_WINDOW`, when the kernel has it.
    pub window: Option<RepairWindow>,
    /// `rcv_nxt` at dump: the sequence number just past the receive queue.
    pub recv_seq: u32,
    /// `write_seq` at dump: the sequence number just past the send queue.
    pub send_seq: u32,
    /// Bytes received and not yet read by the application.
    pub recv_queue: Vec<u8>,
    /// Bytes written by the application and not yet acked by the peer,
    /// sent part first.
    pub send_queue: Vec<u8>,
    /// How many bytes at the end of `send_queue` were never sent.
    pub unsent: u32,
}

fn seq_after(a: u32, b: u32) -> bool {
    // The kernel's after(): (s32)(b - a) < 0.
    (b.wrapping_sub(a) as i32) < 0
}

impl ConnImage {
    /// Checks the invariants of the module header; the error names the
    /// field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.local.is_ipv4() != self.remote.is_ipv4() {
            return Err((
                "family",
                "local and remote addresses differ in family".into(),
            ));
        }
        if self.local.port() == 0 || self.remote.port() == 0 {
            return Err(("port", "port 0 cannot be a connected socket's".into()));
        }
        for (name, q) in [
            ("recv queue", &self.recv_queue),
            ("send queue", &self.send_queue),
        ] {
            if q.len() > MAX_QUEUE_BYTES as usize {
                return Err((name, format!("{} bytes, above {MAX_QUEUE_BYTES}", q.len())));
            }
        }
        if self.unsent as usize > self.send_queue.len() {
            return Err((
                "unsent",
                format!(
                    "{} unsent bytes in a send queue of {}",
                    self.unsent,
                    self.send_queue.len()
                ),
            ));
        }
        if let Some((s, r)) = self.options.wscale
            && (s > MAX_WSCALE || r > MAX_WSCALE)
        {
            return Err((
                "wscale",
                format!("{s}/{r}, above TCP_MAX_WSCALE {MAX_WSCALE}"),
            ));
        }
        if !self.options.timestamps && self.timestamp != 0 {
            return Err(("timestamp", "set without negotiated timestamps".into()));
        }
        if let Some(w) = &self.window {
            if w.max_window < w.snd_wnd {
                return Err((
                    "window",
                    format!("max_window {} < snd_wnd {}", w.max_window, w.snd_wnd),
                ));
            }
            if seq_after(w.rcv_wup, self.recv_seq) {
                return Err((
                    "window",
                    format!("rcv_wup {} after rcv_nxt {}", w.rcv_wup, self.recv_seq),
                ));
            }
        }
        Ok(())
    }

    /// Panics with the broken invariant's field and reason (for tests).
    #[track_caller]
    pub fn assert_invariants(&self) {
        if let Err((field, reason)) = self.check() {
            panic!("connection image invariant broken: {field}: {reason}");
        }
    }

    /// Bytes of the send queue already sent (and not yet acked).
    pub fn sent_len(&self) -> usize {
        self.send_queue.len() - self.unsent as usize
    }
}

/// A repair image: one or more connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The connections, in dump order.
    pub conns: Vec<ConnImage>,
}

fn put_addr(out: &mut Vec<u8>, a: &SocketAddr) {
    let mut b = [0u8; 16];
    match a.ip() {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b.copy_from_slice(&v6.octets()),
    }
    out.extend_from_slice(&b);
    out.extend_from_slice(&a.port().to_le_bytes());
}

impl Image {
    /// Serializes the image (format version 1).
    ///
    /// # Errors
    /// A connection that breaks an invariant (`field`, reason), or an
    /// image with no connection or more than [`MAX_CONNS`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, ImageError> {
        if self.conns.is_empty() || self.conns.len() > MAX_CONNS as usize {
            return Err(ImageError::Invalid {
                offset: 10,
                field: "count",
                reason: format!(
                    "{} connections, expected 1 ..= {MAX_CONNS}",
                    self.conns.len()
                ),
            });
        }
        let total: usize = self
            .conns
            .iter()
            .map(|c| RECORD_FIXED_LEN + c.recv_queue.len() + c.send_queue.len())
            .sum();
        let mut out = Vec::with_capacity(HEADER_LEN + total + CRC_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.conns.len() as u32).to_le_bytes());
        for c in &self.conns {
            let offset = out.len() as u64;
            c.check().map_err(|(field, reason)| ImageError::Invalid {
                offset,
                field,
                reason,
            })?;
            out.push(if c.local.is_ipv4() { 4 } else { 6 });
            put_addr(&mut out, &c.local);
            put_addr(&mut out, &c.remote);
            out.push(c.state.number());
            out.push(c.options.bits());
            let (s, r) = c.options.wscale.unwrap_or((0, 0));
            out.push(s);
            out.push(r);
            out.extend_from_slice(&c.mss_clamp.to_le_bytes());
            out.extend_from_slice(&c.timestamp.to_le_bytes());
            out.push(u8::from(c.window.is_some()));
            let w = c.window.unwrap_or_default();
            for v in [w.snd_wl1, w.snd_wnd, w.max_window, w.rcv_wnd, w.rcv_wup] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            for v in [
                c.recv_seq,
                c.send_seq,
                c.recv_queue.len() as u32,
                c.send_queue.len() as u32,
                c.unsent,
            ] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&c.recv_queue);
            out.extend_from_slice(&c.send_queue);
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Reads an image from a stream and checks it as [`Image::parse`] does.
    /// The stream is judged as it is read: the magic and version (the
    /// first 10 bytes) before anything else, the connection count, then
    /// each connection's fixed part before its queues, whose lengths are
    /// checked against [`MAX_QUEUE_BYTES`] before their bytes are read.
    /// A file that is not an image is refused after at most
    /// [`HEADER_LEN`](Self::HEADER_LEN) bytes.
    ///
    /// # Errors
    /// [`ImageError`] with the byte offset and the field; a read error as
    /// [`ImageError::Io`].
    pub fn read_from<R: Read>(mut r: R) -> Result<Image, ImageError> {
        let mut bytes = Vec::new();
        read_part(&mut r, &mut bytes, HEADER_LEN, "header")?;
        check_magic_version(&bytes)?;
        let n = u32::from_le_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]);
        check_count(n)?;
        for _ in 0..n {
            let start = bytes.len();
            read_part(&mut r, &mut bytes, RECORD_FIXED_LEN, "connection")?;
            let len_at = |at: usize| {
                u32::from_le_bytes([
                    bytes[start + at],
                    bytes[start + at + 1],
                    bytes[start + at + 2],
                    bytes[start + at + 3],
                ])
            };
            let (recv_len, send_len) = (len_at(78), len_at(82));
            for (len, field) in [
                (recv_len, "recv queue length"),
                (send_len, "send queue length"),
            ] {
                if len > MAX_QUEUE_BYTES {
                    return Err(ImageError::Invalid {
                        offset: (start + 78) as u64,
                        field,
                        reason: format!("{len}, above {MAX_QUEUE_BYTES}"),
                    });
                }
            }
            read_part(
                &mut r,
                &mut bytes,
                recv_len as usize + send_len as usize,
                "queues",
            )?;
        }
        read_part(&mut r, &mut bytes, CRC_LEN, "crc")?;
        let mut extra = [0u8; 1];
        let more = loop {
            match r.read(&mut extra) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match more {
            Ok(0) => Image::parse(&bytes),
            Ok(_) => Err(ImageError::Invalid {
                offset: bytes.len() as u64,
                field: "end",
                reason: "bytes after the checksum that ends the last connection".into(),
            }),
            Err(e) => Err(ImageError::Io {
                offset: bytes.len() as u64,
                message: e.to_string(),
            }),
        }
    }

    /// Bytes of the header: magic, version and connection count.
    pub const HEADER_LEN: usize = HEADER_LEN;

    /// Parses and checks an image. Nothing is built unless the whole file is
    /// well formed: magic, version, CRC, every field and every invariant.
    ///
    /// # Errors
    /// [`ImageError`] with the byte offset and the field.
    pub fn parse(bytes: &[u8]) -> Result<Image, ImageError> {
        if bytes.len() < HEADER_LEN + CRC_LEN {
            // A file that is not an image says so, however short.
            check_magic_version(bytes)?;
            return Err(ImageError::Truncated {
                offset: bytes.len() as u64,
                field: "header",
                needed: (HEADER_LEN + CRC_LEN) as u64,
            });
        }
        check_magic_version(bytes)?;
        let body_len = bytes.len() - CRC_LEN;
        let (body, crc_bytes) = bytes.split_at(body_len);
        let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
        let computed = crc32fast::hash(body);
        if stored != computed {
            return Err(ImageError::Invalid {
                offset: body_len as u64,
                field: "crc",
                reason: format!(
                    "checksum {stored:#010x} does not match the contents ({computed:#010x}): \
                     the image is corrupt or truncated"
                ),
            });
        }
        let mut r = Reader { buf: body, pos: 10 };
        let n = r.u32("count")?;
        check_count(n)?;
        let mut conns = Vec::new();
        for _ in 0..n {
            conns.push(r.conn()?);
        }
        if r.pos != body.len() {
            return Err(ImageError::Invalid {
                offset: r.pos as u64,
                field: "end",
                reason: format!("{} bytes after the last connection", body.len() - r.pos),
            });
        }
        Ok(Image { conns })
    }
}

/// Checks the magic and version in the first bytes of `bytes` (as many as
/// it holds: a short prefix that matches passes).
fn check_magic_version(bytes: &[u8]) -> Result<(), ImageError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(ImageError::Invalid {
            offset: 0,
            field: "magic",
            reason: "not a klab tcp-repair image (expected \"KLABTCPR\")".into(),
        });
    }
    if let [_, _, _, _, _, _, _, _, lo, hi, ..] = *bytes {
        let version = u16::from_le_bytes([lo, hi]);
        if version != VERSION {
            return Err(ImageError::Invalid {
                offset: 8,
                field: "version",
                reason: format!("version {version}, this klab reads version {VERSION}"),
            });
        }
    }
    Ok(())
}

fn check_count(n: u32) -> Result<(), ImageError> {
    if n == 0 || n > MAX_CONNS {
        return Err(ImageError::Invalid {
            offset: 10,
            field: "count",
            reason: format!("{n} connections, expected 1 ..= {MAX_CONNS}"),
        });
    }
    Ok(())
}

/// Appends the next `n` bytes of `r` to `bytes`; the buffer grows with
/// what arrives, not with `n`.
fn read_part<R: Read>(
    r: &mut R,
    bytes: &mut Vec<u8>,
    n: usize,
    field: &'static str,
) -> Result<(), ImageError> {
    let start = bytes.len();
    let got = r
        .by_ref()
        .take(n as u64)
        .read_to_end(bytes)
        .map_err(|e| ImageError::Io {
            offset: bytes.len() as u64,
            message: e.to_string(),
        })?;
    if got < n {
        // A file that is not an image says so before it says it is short.
        if start < HEADER_LEN {
            check_magic_version(bytes)?;
        }
        return Err(ImageError::Truncated {
            offset: start as u64,
            field,
            needed: n as u64,
        });
    }
    Ok(())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ImageError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(ImageError::Truncated {
                offset: self.pos as u64,
                field,
                needed: n as u64,
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, ImageError> {
        Ok(self.take(1, field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, ImageError> {
        let b = self.take(2, field)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ImageError> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn invalid(&self, at: usize, field: &'static str, reason: String) -> ImageError {
        ImageError::Invalid {
            offset: at as u64,
            field,
            reason,
        }
    }

    fn addr(&mut self, family: u8, field: &'static str) -> Result<SocketAddr, ImageError> {
        let at = self.pos;
        let b = self.take(16, field)?;
        let ip = if family == 4 {
            if b[4..].iter().any(|&x| x != 0) {
                return Err(self.invalid(at, field, "IPv4 address with nonzero padding".into()));
            }
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        } else {
            let mut o = [0u8; 16];
            o.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(o))
        };
        let port = self.u16(field)?;
        Ok(SocketAddr::new(ip, port))
    }

    fn conn(&mut self) -> Result<ConnImage, ImageError> {
        let start = self.pos;
        let family = self.u8("family")?;
        if family != 4 && family != 6 {
            return Err(self.invalid(start, "family", format!("{family}, expected 4 or 6")));
        }
        let local = self.addr(family, "local address")?;
        let remote = self.addr(family, "remote address")?;
        let at = self.pos;
        let state_n = self.u8("state")?;
        let state = TcpState::from_number(state_n).ok_or_else(|| {
            self.invalid(
                at,
                "state",
                format!("{state_n} is not a state a dump can save"),
            )
        })?;
        let at = self.pos;
        let bits = self.u8("options")?;
        if bits & !7 != 0 {
            return Err(self.invalid(at, "options", format!("unknown bits in {bits:#04x}")));
        }
        let at = self.pos;
        let snd_wscale = self.u8("snd_wscale")?;
        let rcv_wscale = self.u8("rcv_wscale")?;
        let wscale = if bits & 4 != 0 {
            Some((snd_wscale, rcv_wscale))
        } else if snd_wscale != 0 || rcv_wscale != 0 {
            return Err(self.invalid(at, "wscale", "set without negotiated window scaling".into()));
        } else {
            None
        };
        let options = TcpOptions {
            timestamps: bits & 1 != 0,
            sack: bits & 2 != 0,
            wscale,
        };
        let mss_clamp = self.u32("mss_clamp")?;
        let timestamp = self.u32("timestamp")?;
        let at = self.pos;
        let has_window = self.u8("window present")?;
        if has_window > 1 {
            return Err(self.invalid(
                at,
                "window present",
                format!("{has_window}, expected 0 or 1"),
            ));
        }
        let w = RepairWindow {
            snd_wl1: self.u32("snd_wl1")?,
            snd_wnd: self.u32("snd_wnd")?,
            max_window: self.u32("max_window")?,
            rcv_wnd: self.u32("rcv_wnd")?,
            rcv_wup: self.u32("rcv_wup")?,
        };
        if has_window == 0 && w != RepairWindow::default() {
            return Err(self.invalid(at, "window", "values given for an absent window".into()));
        }
        let recv_seq = self.u32("recv seq")?;
        let send_seq = self.u32("send seq")?;
        let at = self.pos;
        let recv_len = self.u32("recv queue length")?;
        let send_len = self.u32("send queue length")?;
        let unsent = self.u32("unsent length")?;
        for (len, field) in [
            (recv_len, "recv queue length"),
            (send_len, "send queue length"),
        ] {
            if len > MAX_QUEUE_BYTES {
                return Err(self.invalid(at, field, format!("{len}, above {MAX_QUEUE_BYTES}")));
            }
        }
        let recv_queue = self.take(recv_len as usize, "recv queue")?.to_vec();
        let send_queue = self.take(send_len as usize, "send queue")?.to_vec();
        let c = ConnImage {
            local,
            remote,
            state,
            options,
            mss_clamp,
            timestamp,
            window: (has_window == 1).then_some(w),
            recv_seq,
            send_seq,
            recv_queue,
            send_queue,
            unsent,
        };
        c.check()
            .map_err(|(field, reason)| self.invalid(start, field, reason))?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> ConnImage {
        ConnImage {
            local: "127.77.0.10:7000".parse().unwrap(),
            remote: "127.77.1.1:40000".parse().unwrap(),
            state: TcpState::Established,
            options: TcpOptions {
                timestamps: true,
                sack: true,
                wscale: Some((7, 7)),
            },
            mss_clamp: 1460,
            timestamp: 123_456,
            window: Some(RepairWindow {
                snd_wl1: 1000,
                snd_wnd: 65535,
                max_window: 65535,
                rcv_wnd: 65483,
                rcv_wup: 5000,
            }),
            recv_seq: 5000,
            send_seq: 9000,
            recv_queue: b"hello".to_vec(),
            send_queue: b"world!".to_vec(),
            unsent: 2,
        }
    }

    #[test]
    fn round_trip_is_exact() {
        let img = Image {
            conns: vec![sample(), sample()],
        };
        let bytes = img.to_bytes().unwrap();
        img.conns.iter().for_each(ConnImage::assert_invariants);
        // 14 header + 2 * (90 + 5 + 6) + 4 crc.
        assert_eq!(bytes.len(), 14 + 2 * 101 + 4);
        assert_eq!(Image::parse(&bytes).unwrap(), img);
        assert_eq!(Image::read_from(&bytes[..]).unwrap(), img);
        let mut long = bytes.clone();
        long.push(0);
        assert!(Image::parse(&long).is_err());
        assert_eq!(
            Image::read_from(&long[..]).unwrap_err().to_string(),
            "byte 220: end: bytes after the checksum that ends the last connection"
        );
    }

    /// Counts the bytes read through it.
    struct Counting<R>(R, u64);

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_2gib_file_of_zeros_is_refused_after_its_header() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(2 << 30).unwrap();
        let mut c = Counting(f, 0);
        let e = Image::read_from(&mut c).unwrap_err().to_string();
        assert!(
            e.starts_with("byte 0: magic: not a klab tcp-repair image"),
            "{e}"
        );
        assert!(c.1 <= Image::HEADER_LEN as u64, "{} bytes read", c.1);
    }

    #[test]
    fn a_queue_length_is_checked_before_its_bytes_are_read() {
        let bytes = Image {
            conns: vec![sample()],
        }
        .to_bytes()
        .unwrap();
        // The fixed part of the record, claiming a recv queue above the
        // limit, followed by a 2 GiB stream of zeros.
        let mut head = bytes[..14 + 90].to_vec();
        head[14 + 78..14 + 82].copy_from_slice(&(MAX_QUEUE_BYTES + 1).to_le_bytes());
        let mut c = Counting(head.as_slice().chain(std::io::repeat(0).take(2 << 30)), 0);
        let e = Image::read_from(&mut c).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "byte 92: recv queue length: {}, above {MAX_QUEUE_BYTES}",
                MAX_QUEUE_BYTES + 1
            )
        );
        assert_eq!(c.1, 14 + 90);
    }

    #[test]
    fn every_truncation_is_rejected() {
        let bytes = Image {
            conns: vec![sample()],
        }
        .to_bytes()
        .unwrap();
        for n in 0..bytes.len() {
            assert!(
                Image::parse(&bytes[..n]).is_err(),
                "prefix of {n} bytes accepted"
            );
            assert!(
                Image::read_from(&bytes[..n]).is_err(),
                "prefix of {n} bytes accepted as a stream"
            );
        }
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let bytes = Image {
            conns: vec![sample()],
        }
        .to_bytes()
        .unwrap();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(
                    Image::parse(&b).is_err(),
                    "flip of bit {bit} at {i} accepted"
                );
                assert!(
                    Image::read_from(&b[..]).is_err(),
                    "flip of bit {bit} at {i} accepted as a stream"
                );
            }
        }
    }

    #[test]
    fn errors_name_the_offset_and_field() {
        let mut bytes = Image {
            conns: vec![sample()],
        }
        .to_bytes()
        .unwrap();
        let e = Image::parse(&bytes[..10]).unwrap_err().to_string();
        assert_eq!(e, "byte 10: header: truncated, 18 bytes needed");
        bytes[8] = 2;
        let e = Image::parse(&bytes).unwrap_err().to_string();
        assert_eq!(e, "byte 8: version: version 2, this klab reads version 1");
        // However short, a file that is not an image of this version says so.
        let e = Image::parse(&bytes[..10]).unwrap_err().to_string();
        assert_eq!(e, "byte 8: version: version 2, this klab reads version 1");
        let e = Image::parse(&[0; 3]).unwrap_err().to_string();
        assert!(
            e.starts_with("byte 0: magic: not a klab tcp-repair image"),
            "{e}"
        );
        // A record that lies about its unsent length, with a valid CRC.
        let mut c = sample();
        c.unsent = 7;
        let mut raw = Image {
            conns: vec![sample()],
        }
        .to_bytes()
        .unwrap();
        raw[14 + 86..14 + 90].copy_from_slice(&7u32.to_le_bytes());
        let n = raw.len() - 4;
        let crc = crc32fast::hash(&raw[..n]);
        raw[n..].copy_from_slice(&crc.to_le_bytes());
        let e = Image::parse(&raw).unwrap_err().to_string();
        assert_eq!(e, "byte 14: unsent: 7 unsent bytes in a send queue of 6");
        assert!(Image { conns: vec![c] }.to_bytes().is_err());
    }

    #[test]
    fn seq_after_wraps_like_the_kernel() {
        assert!(seq_after(1, 0));
        assert!(!seq_after(0, 1));
        assert!(seq_after(0, u32::MAX), "0 comes after 2^32-1");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            // The stream reader accepts exactly what the parser accepts.
            prop_assert_eq!(Image::read_from(&data[..]).ok(), Image::parse(&data).ok());
        }

        #[test]
        fn valid_images_round_trip(
            recv in proptest::collection::vec(any::<u8>(), 0..64),
            send in proptest::collection::vec(any::<u8>(), 0..64),
            unsent_frac in 0.0f64..=1.0,
            ts in any::<u32>(),
            v6 in any::<bool>(),
        ) {
            let mut c = sample();
            if v6 {
                c.local = "[fd00::1]:7000".parse().unwrap();
                c.remote = "[fd00::2]:40000".parse().unwrap();
            }
            c.unsent = (send.len() as f64 * unsent_frac) as u32;
            c.recv_queue = recv;
            c.send_queue = send;
            c.timestamp = ts;
            let img = Image { conns: vec![c] };
            let bytes = img.to_bytes().unwrap();
            prop_assert_eq!(Image::read_from(&bytes[..]).unwrap(), img.clone());
            prop_assert_eq!(Image::parse(&bytes).unwrap(), img);
        }
    }
}
