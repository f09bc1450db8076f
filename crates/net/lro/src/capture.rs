//! Capture files in and out: pcap and pcapng, read from bytes held in
//! memory (packets borrow from them), written to any `io::Write`.
//!
//! [`read`] brings a file into memory judging it as it comes: its magic
//! (4 bytes) and file header (the pcap header, or the pcapng section
//! header block) are read and checked before the rest, so a file that is
//! not a capture costs 4 bytes of reading, not its size.
//!
//! Reading goes through `pcap-file`'s slice parsers, record by record, so
//! an error names the byte offset of the record that is wrong. klab reads
//! the record headers raw and computes timestamps itself: pcap in micro-
//! or nanoseconds by the file's magic, pcapng in each interface's
//! `if_tsresol` units (default microseconds); it accepts records longer on
//! the wire than the snapshot length (truncated captures are normal).
//!
//! Invariant of a [`Capture`]: every packet's `data` lies inside the
//! bytes it was read from, and `data.len() <= orig_len` is not assumed
//! (some writers break it; the manager does not care).

use std::io::{Read, Write};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgParser, PcapNgWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use crate::wire::LinkType;

/// The container format of a capture.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap.
    Pcap,
    /// pcapng.
    PcapNg,
}

impl CaptureFormat {
    /// The format a file name asks for: `.pcapng` is pcapng, anything else
    /// pcap.
    pub fn for_path(path: &std::path::Path) -> CaptureFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("pcapng") => CaptureFormat::PcapNg,
            _ => CaptureFormat::Pcap,
        }
    }
}

/// One captured packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Capture time, nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Length on the wire.
    pub orig_len: u32,
    /// The captured bytes, link header first.
    pub data: &'a [u8],
}

/// A capture read into memory.
#[derive(Clone, Debug)]
pub struct Capture<'a> {
    /// pcap or pcapng.
    pub format: CaptureFormat,
    /// The link-layer type number (DLT / LINKTYPE).
    pub dlt: u32,
    /// The packets, in file order.
    pub packets: Vec<Packet<'a>>,
}

/// Why a capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// Neither pcap nor pcapng magic.
    #[error("offset 0: not a pcap or pcapng file (first bytes {0:02x?})")]
    Magic(Vec<u8>),
    /// The file ends inside a header or record.
    #[error("offset {offset}: {what} truncated: only {left} bytes left in the file")]
    Truncated {
        /// Where the record starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// Bytes left in the file from `offset`.
        left: usize,
    },
    /// A header or record field is invalid.
    #[error("offset {offset}: {what}: {message}")]
    Invalid {
        /// Where the record starts.
        offset: usize,
        /// What was being read.
        what: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The file could not be read.
    #[error("offset {offset}: cannot read: {source}")]
    Io {
        /// Bytes read before the failure.
        offset: usize,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// pcapng interfaces with different link types.
    #[error(
        "offset {offset}: interface {interface} has link type {dlt}, but the capture's first interface has {first}; klab reads one link type per capture"
    )]
    MixedLinkTypes {
        /// Where the interface block starts.
        offset: usize,
        /// Interface number.
        interface: usize,
        /// Its link type.
        dlt: u32,
        /// The first interface's link type.
        first: u32,
    },
}

impl<'a> Capture<'a> {
    /// Reads a pcap or pcapng capture from `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Capture<'a>, CaptureError> {
        match magic(bytes)? {
            CaptureFormat::PcapNg => parse_pcapng(bytes),
            CaptureFormat::Pcap => parse_pcap(bytes),
        }
    }

    /// The link type, if klab can parse its frames.
    pub fn link(&self) -> Option<LinkType> {
        LinkType::from_dlt(self.dlt)
    }
}

/// The format the first 4 bytes name.
fn magic(bytes: &[u8]) -> Result<CaptureFormat, CaptureError> {
    match bytes.get(..4) {
        Some([0x0a, 0x0d, 0x0d, 0x0a]) => Ok(CaptureFormat::PcapNg),
        Some(
            [0xa1, 0xb2, 0xc3, 0xd4]
            | [0xd4, 0xc3, 0xb2, 0xa1]
            | [0xa1, 0xb2, 0x3c, 0x4d]
            | [0x4d, 0x3c, 0xb2, 0xa1],
        ) => Ok(CaptureFormat::Pcap),
        Some(m) => Err(CaptureError::Magic(m.to_vec())),
        None => Err(CaptureError::Truncated {
            offset: 0,
            what: "file header",
            left: bytes.len(),
        }),
    }
}

/// Appends up to `n` more bytes of `r` to `bytes` (fewer where the file
/// ends); the buffer grows with what arrives, not with `n`.
fn append<R: Read>(r: &mut R, bytes: &mut Vec<u8>, n: u64) -> Result<(), CaptureError> {
    r.by_ref()
        .take(n)
        .read_to_end(bytes)
        .map_err(|source| CaptureError::Io {
            offset: bytes.len(),
            source,
        })?;
    Ok(())
}

/// Reads a capture file into memory, checking its magic and file header
/// before reading the rest: the first read is the 4-byte magic, the second
/// the rest of the pcap file header (24 bytes in all) or of the pcapng
/// section header block (whose length its first 12 bytes give). Parse
/// the bytes returned with [`Capture::parse`].
///
/// # Errors
/// What [`Capture::parse`] says of a bad magic or file header, or a read
/// error.
pub fn read<R: Read>(mut r: R) -> Result<Vec<u8>, CaptureError> {
    let mut bytes = Vec::new();
    append(&mut r, &mut bytes, 4)?;
    match magic(&bytes)? {
        CaptureFormat::Pcap => {
            append(&mut r, &mut bytes, 20)?;
            pcap_header(&bytes)?;
        }
        CaptureFormat::PcapNg => {
            append(&mut r, &mut bytes, 8)?;
            // The block length, in the byte order the byte-order magic
            // gives; pcap-file refuses other magics and bad lengths below.
            let len = match bytes.get(4..12) {
                Some(&[a, b, c, d, 0x1a, 0x2b, 0x3c, 0x4d]) => u32::from_be_bytes([a, b, c, d]),
                Some(&[a, b, c, d, 0x4d, 0x3c, 0x2b, 0x1a]) => u32::from_le_bytes([a, b, c, d]),
                _ => 12,
            };
            append(&mut r, &mut bytes, u64::from(len.saturating_sub(12)))?;
            PcapNgParser::new(&bytes)
                .map_err(|e| invalid(0, "pcapng section header", e, bytes.len()))?;
        }
    }
    r.read_to_end(&mut bytes)
        .map_err(|source| CaptureError::Io {
            offset: bytes.len(),
            source,
        })?;
    Ok(bytes)
}

fn invalid(offset: usize, what: &'static str, e: PcapError, left: usize) -> CaptureError {
    match e {
        PcapError::IncompleteBuffer => CaptureError::Truncated { offset, what, left },
        other => CaptureError::Invalid {
            offset,
            what,
            message: other.to_string(),
        },
    }
}

/// The pcap file header's parser, once the header is checked: libpcap's
/// `pcap_check_header()` (sf-pcap.c) reads versions 2.0 to 2.4 (and 543.0,
/// DG/UX's tcpdump); any other version is not a pcap file it can read.
fn pcap_header(bytes: &[u8]) -> Result<(&[u8], PcapParser), CaptureError> {
    let (rest, parser) =
        PcapParser::new(bytes).map_err(|e| invalid(0, "pcap file header", e, bytes.len()))?;
    let h = parser.header();
    let (major, minor) = (h.version_major, h.version_minor);
    if !((major == 2 && minor <= 4) || (major == 543 && minor == 0)) {
        return Err(CaptureError::Invalid {
            offset: 4,
            what: "pcap file header",
            message: format!("version {major}.{minor}; expected 2.0 to 2.4"),
        });
    }
    Ok((rest, parser))
}

fn parse_pcap(bytes: &[u8]) -> Result<Capture<'_>, CaptureError> {
    let (mut rest, parser) = pcap_header(bytes)?;
    let header = parser.header();
    let frac_ns: u64 = match header.ts_resolution {
        TsResolution::MicroSecond => 1000,
        TsResolution::NanoSecond => 1,
    };
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let (next, raw) = parser
            .next_raw_packet(rest)
            .map_err(|e| invalid(offset, "packet record", e, rest.len()))?;
        let data = match raw.data {
            std::borrow::Cow::Borrowed(d) => d,
            std::borrow::Cow::Owned(_) => unreachable!("slice parser borrows"),
        };
        packets.push(Packet {
            ts_ns: u64::from(raw.ts_sec) * 1_000_000_000 + u64::from(raw.ts_frac) * frac_ns,
            orig_len: raw.orig_len,
            data,
        });
        rest = next;
    }
    Ok(Capture {
        format: CaptureFormat::Pcap,
        dlt: u32::from(header.datalink),
        packets,
    })
}

/// Nanoseconds per timestamp unit for an `if_tsresol` value, as a
/// (numerator, denominator) pair.
fn tsresol_ns(opt: Option<u8>) -> (u128, u128) {
    match opt {
        None => (1000, 1),
        Some(r) if r & 0x80 == 0 => {
            let exp = u32::from(r & 0x7f);
            if exp <= 9 {
                (10u128.pow(9 - exp), 1)
            } else {
                (1, 10u128.pow((exp - 9).min(30)))
            }
        }
        Some(r) => (1_000_000_000, 1u128 << u32::from(r & 0x7f).min(100)),
    }
}

fn parse_pcapng(bytes: &[u8]) -> Result<Capture<'_>, CaptureError> {
    let (mut rest, mut parser) = PcapNgParser::new(bytes)
        .map_err(|e| invalid(0, "pcapng section header", e, bytes.len()))?;
    let mut dlt: Option<u32> = None;
    let mut resol: Vec<(u128, u128)> = Vec::new();
    let mut packets = Vec::new();
    while !rest.is_empty() {
        let offset = bytes.len() - rest.len();
        let (next, block) = parser
            .next_block(rest)
            .map_err(|e| invalid(offset, "pcapng block", e, rest.len()))?;
        match block {
            Block::SectionHeader(_) => resol.clear(),
            Block::InterfaceDescription(idb) => {
                let d = u32::from(idb.linktype);
                match dlt {
                    None => dlt = Some(d),
                    Some(first) if first != d => {
                        return Err(CaptureError::MixedLinkTypes {
                            offset,
                            interface: resol.len(),
                            dlt: d,
                            first,
                        });
                    }
                    Some(_) => {}
                }
                let r = idb.options.iter().find_map(|o| match o {
                    InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
                    _ => None,
                });
                resol.push(tsresol_ns(r));
            }
            Block::EnhancedPacket(epb) => {
                let Some(&(num, den)) = resol.get(epb.interface_id as usize) else {
                    return Err(CaptureError::Invalid {
                        offset,
                        what: "enhanced packet block",
                        message: format!("interface {} was not described", epb.interface_id),
                    });
                };
                let units = epb.timestamp.as_nanos();
                let data = match epb.data {
                    std::borrow::Cow::Borrowed(d) => d,
                    std::borrow::Cow::Owned(_) => unreachable!("slice parser borrows"),
                };
                packets.push(Packet {
                    ts_ns: u64::try_from(units * num / den).unwrap_or(u64::MAX),
                    orig_len: epb.original_len,
                    data,
                });
            }
            Block::SimplePacket(spb) => {
                let data = match spb.data {
                    std::borrow::Cow::Borrowed(d) => d,
                    std::borrow::Cow::Owned(_) => unreachable!("slice parser borrows"),
                };
                packets.push(Packet {
                    ts_ns: packets.last().map_or(0, |p: &Packet<'_>| p.ts_ns),
                    orig_len: spb.original_len,
                    data,
                });
            }
            Block::Packet(pb) => {
                let (num, den) = resol
                    .get(usize::from(pb.interface_id))
                    .copied()
                    .unwrap_or((1000, 1));
                let data = match pb.data {
                    std::borrow::Cow::Borrowed(d) => d,
                    std::borrow::Cow::Owned(_) => unreachable!("slice parser borrows"),
                };
                packets.push(Packet {
                    ts_ns: u64::try_from(u128::from(pb.timestamp) * num / den).unwrap_or(u64::MAX),
                    orig_len: pb.original_len,
                    data,
                });
            }
            _ => {}
        }
        rest = next;
    }
    Ok(Capture {
        format: CaptureFormat::PcapNg,
        dlt: dlt.unwrap_or(1),
        packets,
    })
}

/// The snapshot length klab writes: larger than any aggregate (64 KiB of
/// IP plus a link header).
pub const SNAPLEN: u32 = 262_144;

/// Writes packets as a capture.
pub struct CaptureWriter<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Pcap(PcapWriter<W>),
    PcapNg(PcapNgWriter<W>),
}

/// A write failed.
#[derive(Debug, thiserror::Error)]
#[error("cannot write capture: {0}")]
pub struct WriteError(#[from] PcapError);

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture of `format` with link type `dlt` on `w`
    /// (nanosecond timestamps).
    pub fn new(w: W, format: CaptureFormat, dlt: u32) -> Result<Self, WriteError> {
        let inner = match format {
            CaptureFormat::Pcap => Inner::Pcap(PcapWriter::with_header(
                w,
                PcapHeader {
                    version_major: 2,
                    version_minor: 4,
                    ts_correction: 0,
                    ts_accuracy: 0,
                    snaplen: SNAPLEN,
                    datalink: DataLink::from(dlt),
                    ts_resolution: TsResolution::NanoSecond,
                    endianness: Endianness::Little,
                },
            )?),
            CaptureFormat::PcapNg => {
                let mut ng = PcapNgWriter::with_endianness(w, Endianness::Little)?;
                ng.write_pcapng_block(InterfaceDescriptionBlock {
                    linktype: DataLink::from(dlt),
                    snaplen: SNAPLEN,
                    options: vec![InterfaceDescriptionOption::IfTsResol(9)],
                })?;
                Inner::PcapNg(ng)
            }
        };
        Ok(CaptureWriter { inner })
    }

    /// Appends one packet; `orig_len` below `data.len()` is raised to it.
    pub fn write(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) -> Result<(), WriteError> {
        let orig_len = orig_len.max(data.len() as u32);
        let ts = std::time::Duration::from_nanos(ts_ns);
        match &mut self.inner {
            Inner::Pcap(w) => {
                w.write_packet(&PcapPacket::new(ts, orig_len, data))?;
            }
            Inner::PcapNg(w) => {
                w.write_pcapng_block(EnhancedPacketBlock {
                    interface_id: 0,
                    timestamp: ts,
                    original_len: orig_len,
                    data: std::borrow::Cow::Borrowed(data),
                    options: vec![],
                })?;
            }
        }
        Ok(())
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        match self.inner {
            Inner::Pcap(w) => w.into_writer(),
            Inner::PcapNg(w) => w.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(format: CaptureFormat) -> Vec<u8> {
        let mut w = CaptureWriter::new(Vec::new(), format, 1).unwrap();
        w.write(1_500_000_000_123_456_789, 60, &[0xaa; 60]).unwrap();
        w.write(1_500_000_001_000_000_000, 1514, &[0xbb; 100])
            .unwrap();
        w.into_inner()
    }

    #[test]
    fn pcap_and_pcapng_round_trip_with_nanosecond_times() {
        for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
            let bytes = written(format);
            let c = Capture::parse(&bytes).unwrap();
            assert_eq!((c.format, c.dlt), (format, 1));
            assert_eq!(c.packets.len(), 2);
            assert_eq!(c.packets[0].ts_ns, 1_500_000_000_123_456_789);
            assert_eq!(c.packets[1].orig_len, 1514);
            assert_eq!(c.packets[1].data, &[0xbb; 100][..]);
        }
    }

    #[test]
    fn a_cut_record_names_its_offset() {
        let bytes = written(CaptureFormat::Pcap);
        // 24-byte file header, 16 + 60 for the first record: the second
        // starts at 100.
        let e = Capture::parse(&bytes[..130]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "offset 100: packet record truncated: only 30 bytes left in the file"
        );
        let e = Capture::parse(&bytes[..10]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("offset 0: pcap file header truncated"),
            "{e}"
        );
        let ng = written(CaptureFormat::PcapNg);
        let e = Capture::parse(&ng[..ng.len() - 3]).unwrap_err();
        assert!(e.to_string().contains("pcapng block truncated"), "{e}");
        assert!(matches!(
            Capture::parse(b"GIF89a.."),
            Err(CaptureError::Magic(_))
        ));
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
    fn read_takes_the_whole_file_after_its_header() {
        for format in [CaptureFormat::Pcap, CaptureFormat::PcapNg] {
            let bytes = written(format);
            assert_eq!(read(&bytes[..]).unwrap(), bytes);
            // A header cut short is refused as parse refuses it.
            let header = if format == CaptureFormat::Pcap {
                24
            } else {
                28
            };
            for n in 0..header {
                let (r, p) = (read(&bytes[..n]), Capture::parse(&bytes[..n]));
                assert_eq!(
                    r.unwrap_err().to_string(),
                    p.unwrap_err().to_string(),
                    "{format:?} prefix of {n} bytes"
                );
            }
        }
    }

    #[test]
    fn a_2gib_file_of_zeros_is_refused_after_its_magic() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(2 << 30).unwrap();
        let mut c = Counting(f, 0);
        let e = read(&mut c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "offset 0: not a pcap or pcapng file (first bytes [00, 00, 00, 00])"
        );
        assert_eq!(c.1, 4);
        // A magic over zeros: refused at the header after reading it.
        let zeros_after = |format| {
            let magic = written(format)[..4].to_vec();
            Counting(
                std::io::Cursor::new(magic).chain(std::io::repeat(0).take(2 << 30)),
                0,
            )
        };
        let mut c = zeros_after(CaptureFormat::Pcap);
        let e = read(&mut c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "offset 4: pcap file header: version 0.0; expected 2.0 to 2.4"
        );
        assert_eq!(c.1, 24);
        let mut c = zeros_after(CaptureFormat::PcapNg);
        let e = read(&mut c).unwrap_err();
        assert!(
            e.to_string().starts_with("offset 0: pcapng section header"),
            "{e}"
        );
        assert_eq!(c.1, 12);
    }

    #[test]
    fn pcapng_timestamps_follow_if_tsresol() {
        assert_eq!(tsresol_ns(None), (1000, 1));
        assert_eq!(tsresol_ns(Some(9)), (1, 1));
        assert_eq!(tsresol_ns(Some(3)), (1_000_000, 1));
        assert_eq!(tsresol_ns(Some(0x80 | 10)), (1_000_000_000, 1024));
    }

    #[test]
    fn the_output_format_follows_the_file_name() {
        assert_eq!(
            CaptureFormat::for_path("a.pcapng".as_ref()),
            CaptureFormat::PcapNg
        );
        assert_eq!(
            CaptureFormat::for_path("a.pcap".as_ref()),
            CaptureFormat::Pcap
        );
        assert_eq!(CaptureFormat::for_path("a".as_ref()), CaptureFormat::Pcap);
    }
}
