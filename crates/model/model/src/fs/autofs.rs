//! The autofs v5 packet and the two daemons that read it: the ABI story of
//! seed 002 ("packetized pipes"; `docs/REFERENCE.md` §8).
//!
//! # The packet
//!
//! The kernel tells the automount daemon about a missing or expiring mount
//! by writing a `struct autofs_v5_packet` into a pipe the daemon gave it
//! at mount time (include/uapi/linux/auto_fs4.h; fs/autofs4/waitq.c,
//! `autofs4_notify_daemon()`):
//!
//! ```text
//!   offset  field               size
//!        0  hdr.proto_version      4   int (5)
//!        4  hdr.type               4   int (3..6: missing/expire, indirect/direct)
//!        8  wait_queue_token       4
//!       12  dev                    4
//!       16  ino                    8   __u64: 8-aligned on x86-64, 4 on i386
//!       24  uid, gid, pid, tgid   16
//!       40  len                    4
//!       44  name[NAME_MAX + 1]   256
//!      300  (end of fields)
//!      300  tail padding           4   x86-64 only: size rounded to 8
//!      304  sizeof on x86-64;  300 on i386
//! ```
//!
//! [`layout`] computes this with the C rules (each field at the next
//! multiple of its alignment; the size rounded up to the largest
//! alignment), so 300 and 304 are derived, not written down.
//!
//! # The daemons (a 32-bit daemon on a 64-bit kernel is where it breaks)
//!
//! * systemd ([`ReadPolicy::ChecksSize`]): one `read()` of its own
//!   `sizeof`, and gives up if it got anything else;
//! * automount from autofs-tools ([`ReadPolicy::CorrectsSize`]): when it
//!   finds itself 32-bit (`sizeof % 8 != 0`) on a machine `uname` calls
//!   `x86_64`, it expects 4 more bytes and reads until it has them
//!   (autofs `get_kpkt_len()` before 3.3; a "full read").
//!
//! # The kernel fixes (fs/autofs4/waitq.c, 2012)
//!
//! * [`KernelFix::None`]: always `sizeof` of the kernel's struct: 304.
//! * [`KernelFix::Compat32Minus4`] (Ian Kent, 3.3-rc5, a32744d4abae):
//!   4 bytes less when the daemon that mounted is a compat (32-bit) task;
//!   reverted in fcbf94b9dedd because it broke automount.
//! * [`KernelFix::CommCheck`] (Michael Tokarev's proposal): the same,
//!   unless the daemon's command name is `automount`.
//! * [`KernelFix::PacketPipe`] (Linus Torvalds, 3.4-rc5, 64f371bc3107):
//!   always 304, into a pipe whose write end is `O_DIRECT`
//!   (`autofs_prepare_pipe()`), so a 300-byte read takes one packet and
//!   the 4 padding bytes are dropped.
//!
//! [`converse`] runs one daemon against one kernel for a list of requests
//! through a model [`Pipe`], decoding what the daemon
//! reads with the daemon's own ABI and comparing it with what the kernel
//! sent.

use std::fmt;

use super::pipe::{Pipe, Read};

/// `AUTOFS_PROTO_VERSION`.
pub const AUTOFS_PROTO_VERSION: i32 = 5;

/// `NAME_MAX`: the name field holds `NAME_MAX + 1` bytes.
pub const NAME_MAX: usize = 255;

/// A process ABI on x86.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Abi {
    /// i386: `__u64` aligned to 4 inside structs.
    I386,
    /// x86-64: `__u64` aligned to 8.
    X86_64,
}

impl Abi {
    /// 32 or 64.
    pub fn bits(self) -> u32 {
        match self {
            Abi::I386 => 32,
            Abi::X86_64 => 64,
        }
    }

    /// What `uname -m` says on a kernel of this ABI.
    pub fn machine(self) -> &'static str {
        match self {
            Abi::I386 => "i686",
            Abi::X86_64 => "x86_64",
        }
    }

    fn u64_align(self) -> usize {
        match self {
            Abi::I386 => 4,
            Abi::X86_64 => 8,
        }
    }
}

/// The type of a field of the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    I32,
    U32,
    U64,
    Name,
}

impl Kind {
    fn size(self) -> usize {
        match self {
            Kind::I32 | Kind::U32 => 4,
            Kind::U64 => 8,
            Kind::Name => NAME_MAX + 1,
        }
    }

    fn align(self, abi: Abi) -> usize {
        match self {
            Kind::I32 | Kind::U32 => 4,
            Kind::U64 => abi.u64_align(),
            Kind::Name => 1,
        }
    }
}

/// `struct autofs_v5_packet`'s fields, in declaration order.
const FIELDS: [(&str, Kind); 11] = [
    ("hdr.proto_version", Kind::I32),
    ("hdr.type", Kind::I32),
    ("wait_queue_token", Kind::U32),
    ("dev", Kind::U32),
    ("ino", Kind::U64),
    ("uid", Kind::U32),
    ("gid", Kind::U32),
    ("pid", Kind::U32),
    ("tgid", Kind::U32),
    ("len", Kind::U32),
    ("name", Kind::Name),
];

/// The packet's layout under one ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `(field, offset, size)` in declaration order.
    pub fields: Vec<(&'static str, usize, usize)>,
    /// Where the last field ends.
    pub fields_end: usize,
    /// `sizeof`: `fields_end` rounded up to the struct's alignment.
    pub size: usize,
    /// The struct's alignment (its largest field alignment).
    pub align: usize,
}

/// Lays the packet out with the C rules for `abi`.
pub fn layout(abi: Abi) -> Layout {
    let mut off = 0usize;
    let mut align = 1usize;
    let mut fields = Vec::with_capacity(FIELDS.len());
    for (name, kind) in FIELDS {
        let a = kind.align(abi);
        align = align.max(a);
        off = off.next_multiple_of(a);
        fields.push((name, off, kind.size()));
        off += kind.size();
    }
    Layout {
        fields,
        fields_end: off,
        size: off.next_multiple_of(align),
        align,
    }
}

/// `autofs_ptype_*` for v5 packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PacketType {
    /// `autofs_ptype_missing_indirect` (3).
    MissingIndirect = 3,
    /// `autofs_ptype_expire_indirect` (4).
    ExpireIndirect = 4,
    /// `autofs_ptype_missing_direct` (5).
    MissingDirect = 5,
    /// `autofs_ptype_expire_direct` (6).
    ExpireDirect = 6,
}

impl PacketType {
    /// The type for a header value, if it is one of the four.
    pub fn from_raw(v: i32) -> Option<Self> {
        match v {
            3 => Some(PacketType::MissingIndirect),
            4 => Some(PacketType::ExpireIndirect),
            5 => Some(PacketType::MissingDirect),
            6 => Some(PacketType::ExpireDirect),
            _ => None,
        }
    }
}

/// A decoded `struct autofs_v5_packet`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V5Packet {
    /// `hdr.proto_version`.
    pub proto_version: i32,
    /// `hdr.type`.
    pub ptype: i32,
    /// `wait_queue_token`: the daemon answers with it.
    pub wait_queue_token: u32,
    /// `dev`.
    pub dev: u32,
    /// `ino`.
    pub ino: u64,
    /// `uid`.
    pub uid: u32,
    /// `gid`.
    pub gid: u32,
    /// `pid`.
    pub pid: u32,
    /// `tgid`.
    pub tgid: u32,
    /// `len`: the name's length.
    pub len: u32,
    /// `name`, without its terminating NUL (at most `NAME_MAX` bytes).
    pub name: Vec<u8>,
}

/// Why bytes are not a packet.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Fewer bytes than the fields need.
    #[error("autofs_v5_packet: {got} bytes, the fields need {need}")]
    Short {
        /// Bytes given.
        got: usize,
        /// Bytes the fields occupy.
        need: usize,
    },
    /// The name field has no terminating NUL.
    #[error("autofs_v5_packet: name at offset {offset} is not NUL-terminated within {} bytes", NAME_MAX + 1)]
    Unterminated {
        /// The name field's offset.
        offset: usize,
    },
    /// The name is too long to encode.
    #[error("autofs_v5_packet: name of {len} bytes exceeds NAME_MAX ({NAME_MAX})")]
    NameTooLong {
        /// Its length.
        len: usize,
    },
}

impl V5Packet {
    /// A `missing_indirect` request for `name` with the given token.
    pub fn missing(token: u32, name: &str, pid: u32) -> Result<Self, PacketError> {
        let name = name.as_bytes().to_vec();
        if name.len() > NAME_MAX {
            return Err(PacketError::NameTooLong { len: name.len() });
        }
        Ok(V5Packet {
            proto_version: AUTOFS_PROTO_VERSION,
            ptype: PacketType::MissingIndirect as i32,
            wait_queue_token: token,
            dev: 0x0803,
            ino: 0x1_0000_0000 + u64::from(token),
            uid: 1000,
            gid: 1000,
            pid,
            tgid: pid,
            len: u32::try_from(name.len()).unwrap_or(u32::MAX),
            name,
        })
    }

    /// The packet's bytes as a process of `abi` lays them out: `sizeof`
    /// bytes, padding zero.
    pub fn encode(&self, abi: Abi) -> Result<Vec<u8>, PacketError> {
        if self.name.len() > NAME_MAX {
            return Err(PacketError::NameTooLong {
                len: self.name.len(),
            });
        }
        let l = layout(abi);
        let mut out = vec![0u8; l.size];
        for &(field, off, size) in &l.fields {
            let dst = &mut out[off..off + size];
            match field {
                "hdr.proto_version" => dst.copy_from_slice(&self.proto_version.to_le_bytes()),
                "hdr.type" => dst.copy_from_slice(&self.ptype.to_le_bytes()),
                "wait_queue_token" => dst.copy_from_slice(&self.wait_queue_token.to_le_bytes()),
                "dev" => dst.copy_from_slice(&self.dev.to_le_bytes()),
                "ino" => dst.copy_from_slice(&self.ino.to_le_bytes()),
                "uid" => dst.copy_from_slice(&self.uid.to_le_bytes()),
                "gid" => dst.copy_from_slice(&self.gid.to_le_bytes()),
                "pid" => dst.copy_from_slice(&self.pid.to_le_bytes()),
                "tgid" => dst.copy_from_slice(&self.tgid.to_le_bytes()),
                "len" => dst.copy_from_slice(&self.len.to_le_bytes()),
                _ => dst[..self.name.len()].copy_from_slice(&self.name),
            }
        }
        Ok(out)
    }

    /// Decodes the first `fields_end` bytes of `buf` as a process of `abi`
    /// would (trailing bytes, padding included, are ignored).
    pub fn decode(buf: &[u8], abi: Abi) -> Result<Self, PacketError> {
        let l = layout(abi);
        if buf.len() < l.fields_end {
            return Err(PacketError::Short {
                got: buf.len(),
                need: l.fields_end,
            });
        }
        let field = |name: &str| -> (usize, usize) {
            l.fields
                .iter()
                .find(|f| f.0 == name)
                .map(|&(_, off, size)| (off, size))
                .unwrap_or((0, 0))
        };
        let u32_at = |name: &str| {
            let (off, _) = field(name);
            let mut b = [0u8; 4];
            b.copy_from_slice(&buf[off..off + 4]);
            u32::from_le_bytes(b)
        };
        let (ino_off, _) = field("ino");
        let mut ino = [0u8; 8];
        ino.copy_from_slice(&buf[ino_off..ino_off + 8]);
        let (name_off, name_size) = field("name");
        let raw = &buf[name_off..name_off + name_size];
        let Some(nul) = raw.iter().position(|b| *b == 0) else {
            return Err(PacketError::Unterminated { offset: name_off });
        };
        Ok(V5Packet {
            proto_version: i32::from_le_bytes(u32_at("hdr.proto_version").to_le_bytes()),
            ptype: i32::from_le_bytes(u32_at("hdr.type").to_le_bytes()),
            wait_queue_token: u32_at("wait_queue_token"),
            dev: u32_at("dev"),
            ino: u64::from_le_bytes(ino),
            uid: u32_at("uid"),
            gid: u32_at("gid"),
            pid: u32_at("pid"),
            tgid: u32_at("tgid"),
            len: u32_at("len"),
            name: raw[..nul].to_vec(),
        })
    }
}

/// How the kernel sizes the packet and sets up the pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum KernelFix {
    /// Up to 3.2: `sizeof` of the kernel's struct, stream pipe.
    None,
    /// 3.3-rc5: 4 bytes less for a 32-bit daemon on a 64-bit kernel.
    Compat32Minus4,
    /// Proposed: as above, unless the daemon is called `automount`.
    CommCheck,
    /// 3.4: the full struct as one packet of a packetized pipe.
    PacketPipe,
}

impl KernelFix {
    /// Every fix, in the page's order.
    pub const ALL: [KernelFix; 4] = [
        KernelFix::None,
        KernelFix::Compat32Minus4,
        KernelFix::CommCheck,
        KernelFix::PacketPipe,
    ];

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            KernelFix::None => "none",
            KernelFix::Compat32Minus4 => "minus 4 for 32-bit readers",
            KernelFix::CommCheck => "minus 4 unless comm is automount",
            KernelFix::PacketPipe => "packet pipe",
        }
    }
}

/// A kernel: its ABI and its autofs fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// 32- or 64-bit kernel.
    pub abi: Abi,
    /// How it sizes packets.
    pub fix: KernelFix,
}

impl Kernel {
    /// Bytes written per packet to `daemon` (`autofs_v5_packet_size()`).
    pub fn packet_size(&self, daemon: &Daemon) -> usize {
        let full = layout(self.abi).size;
        let compat = self.abi == Abi::X86_64 && daemon.abi == Abi::I386;
        let minus4 = match self.fix {
            KernelFix::Compat32Minus4 => compat,
            KernelFix::CommCheck => compat && daemon.comm != "automount",
            KernelFix::None | KernelFix::PacketPipe => false,
        };
        if minus4 { full - 4 } else { full }
    }

    /// Whether the pipe's write end is `O_DIRECT` (`autofs_prepare_pipe()`).
    pub fn packetized(&self) -> bool {
        self.fix == KernelFix::PacketPipe
    }
}

/// How a daemon reads packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPolicy {
    /// One read of its own `sizeof`; anything else and it gives up
    /// (systemd).
    ChecksSize,
    /// Corrects the size itself when 32-bit on an `x86_64` machine, then
    /// reads until it has that many bytes (automount).
    CorrectsSize,
}

/// An automount daemon.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Daemon {
    /// Its command name (`current->comm`).
    pub comm: String,
    /// How it reads.
    pub policy: ReadPolicy,
    /// 32- or 64-bit process.
    pub abi: Abi,
}

impl Daemon {
    /// systemd as a process of `abi`.
    pub fn systemd(abi: Abi) -> Self {
        Daemon {
            comm: "systemd".to_owned(),
            policy: ReadPolicy::ChecksSize,
            abi,
        }
    }

    /// autofs-tools' automount as a process of `abi`.
    pub fn automount(abi: Abi) -> Self {
        Daemon {
            comm: "automount".to_owned(),
            policy: ReadPolicy::CorrectsSize,
            abi,
        }
    }

    /// A program that corrects the size like automount under another
    /// name (the page's "some other, unknown program").
    pub fn corrector_named(comm: &str, abi: Abi) -> Self {
        Daemon {
            comm: comm.to_owned(),
            policy: ReadPolicy::CorrectsSize,
            abi,
        }
    }

    /// A label: `systemd (32-bit)`.
    pub fn label(&self) -> String {
        format!("{} ({}-bit)", self.comm, self.abi.bits())
    }

    /// The bytes it reads per packet on `kernel`.
    pub fn read_size(&self, kernel: &Kernel) -> usize {
        let own = layout(self.abi).size;
        match self.policy {
            ReadPolicy::ChecksSize => own,
            ReadPolicy::CorrectsSize => {
                if !own.is_multiple_of(8) && kernel.abi.machine() == "x86_64" {
                    own + 4
                } else {
                    own
                }
            }
        }
    }
}

/// How a conversation ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// Every request arrived intact.
    Works,
    /// The daemon detected an error and gave up, at request `at` (0-based).
    GaveUp {
        /// The request being read.
        at: usize,
        /// What it saw.
        reason: String,
    },
    /// The daemon accepted a packet that differs from the request sent.
    Garbled {
        /// The request being read.
        at: usize,
    },
    /// The daemon is blocked in `read()` for bytes that never come.
    Hangs {
        /// The request being read.
        at: usize,
        /// Bytes it has.
        have: usize,
        /// Bytes it wants.
        want: usize,
    },
}

impl Outcome {
    /// True for [`Outcome::Works`].
    pub fn works(&self) -> bool {
        *self == Outcome::Works
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Works => f.write_str("works"),
            Outcome::GaveUp { at, reason } => write!(f, "gives up at request {}: {reason}", at + 1),
            Outcome::Garbled { at } => write!(f, "misreads request {}", at + 1),
            Outcome::Hangs { at, have, want } => {
                write!(
                    f,
                    "hangs in read at request {} ({have} of {want} bytes)",
                    at + 1
                )
            }
        }
    }
}

/// What happened in one conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transcript {
    /// Bytes the kernel wrote per packet.
    pub written: usize,
    /// Bytes the daemon reads per packet.
    pub read_size: usize,
    /// Whether the pipe was packetized.
    pub packet_pipe: bool,
    /// How it ended.
    pub outcome: Outcome,
    /// Requests handled intact.
    pub handled: usize,
    /// Requests handled only after a later request was written (the
    /// daemon sat on them).
    pub late: usize,
    /// `read()` calls that returned data.
    pub reads: u64,
    /// Bytes the pipe dropped from packets read short.
    pub discarded: u64,
}

/// Runs `daemon` against `kernel` for `requests`: the kernel writes each
/// request; after each write the daemon reads while the pipe is readable
/// (as its poll loop would), and stops at the first error.
pub fn converse(kernel: Kernel, daemon: &Daemon, requests: &[V5Packet]) -> Transcript {
    let written = kernel.packet_size(daemon);
    let want = daemon.read_size(&kernel);
    let mut pipe = Pipe::new(kernel.packetized());
    let mut buf: Vec<u8> = Vec::new();
    let mut next = 0usize;
    let mut handled = 0usize;
    let mut late = 0usize;
    let mut outcome = None;
    'requests: for (i, req) in requests.iter().enumerate() {
        let mut bytes = match req.encode(kernel.abi) {
            Ok(b) => b,
            Err(e) => {
                outcome = Some(Outcome::GaveUp {
                    at: i,
                    reason: e.to_string(),
                });
                break;
            }
        };
        bytes.truncate(written);
        if pipe.write_all(&bytes).is_none() {
            outcome = Some(Outcome::Hangs {
                at: next,
                have: buf.len(),
                want,
            });
            break;
        }
        while pipe.readable() {
            let got = match daemon.policy {
                ReadPolicy::ChecksSize => match pipe.read(want) {
                    Read::Data(d) if d.len() == want => d,
                    Read::Data(d) => {
                        outcome = Some(Outcome::GaveUp {
                            at: next,
                            reason: format!("short read ({} of {want} bytes)", d.len()),
                        });
                        break 'requests;
                    }
                    Read::WouldBlock | Read::Eof => break,
                },
                ReadPolicy::CorrectsSize => match pipe.read(want - buf.len()) {
                    Read::Data(d) => {
                        buf.extend_from_slice(&d);
                        if buf.len() < want {
                            continue;
                        }
                        std::mem::take(&mut buf)
                    }
                    Read::WouldBlock | Read::Eof => break,
                },
            };
            let Some(expected) = requests.get(next) else {
                outcome = Some(Outcome::Garbled { at: next });
                break 'requests;
            };
            match V5Packet::decode(&got, daemon.abi) {
                Err(e) => {
                    outcome = Some(Outcome::GaveUp {
                        at: next,
                        reason: e.to_string(),
                    });
                    break 'requests;
                }
                Ok(p)
                    if p.proto_version != AUTOFS_PROTO_VERSION
                        || PacketType::from_raw(p.ptype).is_none() =>
                {
                    outcome = Some(Outcome::GaveUp {
                        at: next,
                        reason: format!(
                            "bad header (proto_version {}, type {})",
                            p.proto_version, p.ptype
                        ),
                    });
                    break 'requests;
                }
                Ok(p) if p != *expected => {
                    outcome = Some(Outcome::Garbled { at: next });
                    break 'requests;
                }
                Ok(_) => {
                    handled += 1;
                    if i > next {
                        late += 1;
                    }
                    next += 1;
                }
            }
        }
    }
    let outcome = outcome.unwrap_or(if buf.is_empty() && next == requests.len() {
        Outcome::Works
    } else {
        Outcome::Hangs {
            at: next,
            have: buf.len(),
            want,
        }
    });
    pipe.assert_invariants();
    Transcript {
        written,
        read_size: want,
        packet_pipe: kernel.packetized(),
        outcome,
        handled,
        late,
        reads: pipe.reads(),
        discarded: pipe.stats().bytes_discarded,
    }
}

/// Three mount requests, as the kernel would send them for three lookups.
pub fn sample_requests() -> Vec<V5Packet> {
    ["home", "data", "src"]
        .iter()
        .enumerate()
        .filter_map(|(i, name)| {
            let i = u32::try_from(i).ok()?;
            V5Packet::missing(100 + i, name, 4000 + i).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_struct_is_300_bytes_of_fields_and_304_on_x86_64() {
        let l32 = layout(Abi::I386);
        let l64 = layout(Abi::X86_64);
        assert_eq!((l32.fields_end, l32.size, l32.align), (300, 300, 4));
        assert_eq!((l64.fields_end, l64.size, l64.align), (300, 304, 8));
        // Every field sits at the same offset: only the tail differs.
        assert_eq!(l32.fields, l64.fields);
        assert_eq!(l64.fields[4], ("ino", 16, 8));
        assert_eq!(l64.fields[10], ("name", 44, 256));
    }

    #[test]
    fn encode_and_decode_round_trip_across_abis() {
        let p = V5Packet::missing(7, "home", 42).unwrap();
        let b64 = p.encode(Abi::X86_64).unwrap();
        assert_eq!(b64.len(), 304);
        assert_eq!(&b64[300..], &[0, 0, 0, 0], "padding is zero");
        // A 32-bit reader decodes the first 300 bytes of a 64-bit packet.
        assert_eq!(V5Packet::decode(&b64[..300], Abi::I386).unwrap(), p);
        assert_eq!(V5Packet::decode(&b64, Abi::X86_64).unwrap(), p);
        assert_eq!(
            V5Packet::decode(&b64[..299], Abi::I386),
            Err(PacketError::Short {
                got: 299,
                need: 300
            })
        );
        let mut unterminated = b64.clone();
        unterminated[44..300].fill(b'a');
        assert_eq!(
            V5Packet::decode(&unterminated, Abi::X86_64),
            Err(PacketError::Unterminated { offset: 44 })
        );
    }

    fn run(fix: KernelFix, d: Daemon) -> Transcript {
        converse(
            Kernel {
                abi: Abi::X86_64,
                fix,
            },
            &d,
            &sample_requests(),
        )
    }

    #[test]
    fn unfixed_kernel_breaks_32_bit_systemd_on_the_padding() {
        // 304 written, 300 read: the first request is fine, then the 4
        // padding bytes come back as a short read.
        let t = run(KernelFix::None, Daemon::systemd(Abi::I386));
        assert_eq!((t.written, t.read_size), (304, 300));
        assert_eq!(
            t.outcome,
            Outcome::GaveUp {
                at: 1,
                reason: "short read (4 of 300 bytes)".to_owned()
            }
        );
        assert_eq!(t.handled, 1);
        assert!(
            run(KernelFix::None, Daemon::automount(Abi::I386))
                .outcome
                .works()
        );
        assert!(
            run(KernelFix::None, Daemon::systemd(Abi::X86_64))
                .outcome
                .works()
        );
    }

    #[test]
    fn minus_4_fixes_systemd_and_breaks_automount() {
        assert!(
            run(KernelFix::Compat32Minus4, Daemon::systemd(Abi::I386))
                .outcome
                .works()
        );
        // automount wants 304, gets 300: it sits on request 1 until request
        // 2's first 4 bytes complete it, then reads request 2 from its 5th
        // byte: its "proto_version" is request 2's type (3).
        let t = run(KernelFix::Compat32Minus4, Daemon::automount(Abi::I386));
        assert_eq!((t.written, t.read_size), (300, 304));
        assert_eq!(
            t.outcome,
            Outcome::GaveUp {
                at: 1,
                reason: "bad header (proto_version 3, type 101)".to_owned()
            }
        );
        assert_eq!((t.handled, t.late), (1, 1));
    }

    #[test]
    fn the_comm_check_fixes_both_but_not_a_renamed_corrector() {
        assert!(
            run(KernelFix::CommCheck, Daemon::systemd(Abi::I386))
                .outcome
                .works()
        );
        assert!(
            run(KernelFix::CommCheck, Daemon::automount(Abi::I386))
                .outcome
                .works()
        );
        let renamed = Daemon::corrector_named("automountd", Abi::I386);
        assert!(!run(KernelFix::CommCheck, renamed).outcome.works());
    }

    #[test]
    fn packet_pipes_fix_every_reader() {
        for d in [
            Daemon::systemd(Abi::I386),
            Daemon::systemd(Abi::X86_64),
            Daemon::automount(Abi::I386),
            Daemon::automount(Abi::X86_64),
            Daemon::corrector_named("automountd", Abi::I386),
        ] {
            let t = run(KernelFix::PacketPipe, d.clone());
            assert!(t.outcome.works(), "{}: {}", d.label(), t.outcome);
            assert_eq!(t.reads, 3, "one read per packet");
            let short = if d.read_size(&Kernel {
                abi: Abi::X86_64,
                fix: KernelFix::PacketPipe,
            }) == 300
            {
                4
            } else {
                0
            };
            assert_eq!(t.discarded, 3 * short, "{}", d.label());
        }
    }

    #[test]
    fn a_32_bit_kernel_is_fine_for_both() {
        let k = Kernel {
            abi: Abi::I386,
            fix: KernelFix::None,
        };
        for d in [Daemon::systemd(Abi::I386), Daemon::automount(Abi::I386)] {
            let t = converse(k, &d, &sample_requests());
            assert_eq!((t.written, t.read_size), (300, 300));
            assert!(t.outcome.works());
        }
    }
}
