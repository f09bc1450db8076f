//! Hibernation images: the complete state of a model run, written to a
//! file and read back, checked (seed 000_2fa08a6962ebae3f.txt, "Suspend
//! and hibernation status report": hibernation writes the memory image to
//! storage and resumes from it; kernel/power/snapshot.c and swap.c check a
//! signature and the image header before restoring anything).
//!
//! # Layout (little-endian)
//!
//! ```text
//!   offset  size
//!   0       8     magic "KLABHIB\0"
//!   8       2     format version (FORMAT_VERSION)
//!   10      2     number of sections
//!   12      4     CRC-32 (IEEE) of every byte from offset 24 to the end
//!   16      8     body length: file length - 24
//!   24      ...   sections, each:
//!                   4   tag (ASCII)
//!                   8   payload length n
//!                   n   payload (CBOR, one serde value)
//! ```
//!
//! # Checks, in order
//!
//! Every check names the byte offset where the image went wrong: the magic
//! (0), the version (8), the length (16: a truncated image or trailing
//! bytes), the checksum (12), then each section's header and payload
//! bounds, and the section count (10). Decoding a payload
//! ([`Section::decode`]) reports the payload's offset. A value decoded
//! from an image is untrusted: a machine is checked with
//! [`crate::Machine::check`] before it runs.
//!
//! [`read`] takes an image from a file (any `io::Read`) and judges it as
//! it comes: the magic and version before anything else, then the body
//! length the header gives, never reading past it; a file that is not an
//! image costs [`HEADER_LEN`] bytes of reading, not its size.
//!
//! Writing builds the whole image in memory; the caller writes it to a
//! temporary file and renames it, so a crash never leaves half an image.

use std::io::Read;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The image's first bytes.
pub const MAGIC: &[u8; 8] = b"KLABHIB\0";
/// The layout version this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes before the first section.
pub const HEADER_LEN: usize = 24;
const SECTION_HEADER_LEN: usize = 12;

/// Why an image was refused: the offset and what was expected there.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("offset {offset}: {message}")]
pub struct ImageError {
    /// Byte offset in the file.
    pub offset: u64,
    /// What was wrong.
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> ImageError {
    ImageError {
        offset: offset as u64,
        message: message.into(),
    }
}

/// One section of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// Its tag.
    pub tag: [u8; 4],
    /// Offset of its payload in the file.
    pub offset: u64,
    /// The payload.
    pub data: Vec<u8>,
}

impl Section {
    /// The tag as text.
    pub fn tag_str(&self) -> String {
        String::from_utf8_lossy(&self.tag).into_owned()
    }

    /// Decodes the payload as a `T`.
    ///
    /// # Errors
    /// When the payload is not a valid CBOR encoding of a `T`; the error
    /// names the payload's offset and the section.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ImageError> {
        ciborium::from_reader(self.data.as_slice()).map_err(|e| ImageError {
            offset: self.offset,
            message: format!("section {}: {e}", self.tag_str()),
        })
    }
}

/// Encodes a value as a section payload.
///
/// # Panics
/// Only if the value's `Serialize` fails, which the model's types never do
/// (CBOR takes every serde value and writing to a `Vec` cannot fail).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("CBOR encoding into memory");
    out
}

/// A parsed image: its sections in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The sections.
    pub sections: Vec<Section>,
}

impl Image {
    /// The first section with `tag`.
    pub fn section(&self, tag: &[u8; 4]) -> Option<&Section> {
        self.sections.iter().find(|s| &s.tag == tag)
    }

    /// Every section with `tag`, in order.
    pub fn all<'a>(&'a self, tag: &'a [u8; 4]) -> impl Iterator<Item = &'a Section> + 'a {
        self.sections.iter().filter(move |s| &s.tag == tag)
    }
}

/// Builds an image from `(tag, payload)` sections.
///
/// # Panics
/// With more than 65535 sections (callers write a handful).
pub fn write(sections: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let count = u16::try_from(sections.len()).expect("at most 65535 sections");
    let mut body = Vec::new();
    for (tag, data) in sections {
        body.extend_from_slice(tag);
        body.extend_from_slice(&(data.len() as u64).to_le_bytes());
        body.extend_from_slice(data);
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// The checks of the header's first fields: magic, then version, then the
/// header's length.
fn check_header(bytes: &[u8]) -> Result<(), ImageError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(err(
            0,
            "not a klab hibernation image (expected magic \"KLABHIB\\0\")",
        ));
    }
    if bytes.len() >= 10 {
        let version = le_u16(bytes, 8);
        if version != FORMAT_VERSION {
            return Err(err(
                8,
                format!("format version {version}; this klab reads version {FORMAT_VERSION}"),
            ));
        }
    }
    if bytes.len() < HEADER_LEN {
        return Err(err(
            bytes.len(),
            format!(
                "truncated: the header is {HEADER_LEN} bytes, the file {}",
                bytes.len()
            ),
        ));
    }
    Ok(())
}

/// Reads an image's bytes from `r`: its header first (magic, version,
/// body length: [`HEADER_LEN`] bytes), then exactly the body the header
/// gives. The buffer grows with what arrives, so a header that claims more
/// than the file holds costs no more memory than the file. The bytes
/// returned are then [`parse`]d (checksum and sections).
///
/// # Errors
/// The magic, version or length check that fails, with its offset (the
/// same checks and messages as [`parse`]); a read error at the offset
/// where it happened.
pub fn read<R: Read>(mut r: R) -> Result<Vec<u8>, ImageError> {
    let io = |at: usize| move |e: std::io::Error| err(at, format!("cannot read: {e}"));
    let mut bytes = Vec::new();
    r.by_ref()
        .take(HEADER_LEN as u64)
        .read_to_end(&mut bytes)
        .map_err(io(0))?;
    check_header(&bytes)?;
    let body_len = le_u64(&bytes, 16);
    let got = r
        .by_ref()
        .take(body_len)
        .read_to_end(&mut bytes)
        .map_err(io(HEADER_LEN))?;
    if (got as u64) < body_len {
        return Err(err(
            16,
            format!(
                "truncated: the header gives a body of {body_len} bytes, the file has {got} after offset {HEADER_LEN}"
            ),
        ));
    }
    let mut one = [0u8; 1];
    let more = loop {
        match r.read(&mut one) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => break other.map_err(io(bytes.len()))?,
        }
    };
    if more > 0 {
        return Err(err(
            16,
            format!(
                "trailing bytes: the header gives a body of {body_len} bytes, the file has more after offset {HEADER_LEN}"
            ),
        ));
    }
    Ok(bytes)
}

/// Parses and checks an image (see the module documentation for the
/// checks and their order).
///
/// # Errors
/// The first check that fails, with its offset.
pub fn parse(bytes: &[u8]) -> Result<Image, ImageError> {
    check_header(bytes)?;
    let count = usize::from(le_u16(bytes, 10));
    let crc = le_u32(bytes, 12);
    let body_len = le_u64(bytes, 16);
    let have = (bytes.len() - HEADER_LEN) as u64;
    if body_len != have {
        let what = if body_len > have {
            "truncated"
        } else {
            "trailing bytes"
        };
        return Err(err(
            16,
            format!(
                "{what}: the header gives a body of {body_len} bytes, the file has {have} after offset {HEADER_LEN}"
            ),
        ));
    }
    let body = &bytes[HEADER_LEN..];
    let found = crc32fast::hash(body);
    if found != crc {
        return Err(err(
            12,
            format!(
                "checksum {crc:#010x} in the header, {found:#010x} computed over the body: the image is corrupt"
            ),
        ));
    }
    let mut sections = Vec::new();
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        if bytes.len() - at < SECTION_HEADER_LEN {
            return Err(err(
                at,
                format!(
                    "section header needs {SECTION_HEADER_LEN} bytes, {} left",
                    bytes.len() - at
                ),
            ));
        }
        let tag = [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]];
        if !tag.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            return Err(err(at, format!("section tag {tag:02x?} is not ASCII")));
        }
        let len = le_u64(bytes, at + 4);
        let start = at + SECTION_HEADER_LEN;
        let left = (bytes.len() - start) as u64;
        if len > left {
            return Err(err(
                at + 4,
                format!(
                    "section {} of {len} bytes, {left} left in the file",
                    String::from_utf8_lossy(&tag)
                ),
            ));
        }
        let end = start + len as usize;
        sections.push(Section {
            tag,
            offset: start as u64,
            data: bytes[start..end].to_vec(),
        });
        at = end;
    }
    if sections.len() != count {
        return Err(err(
            10,
            format!(
                "the header counts {count} sections, the body holds {}",
                sections.len()
            ),
        ));
    }
    Ok(Image { sections })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{Access, Machine, MachineConfig};
    use klab_mm_policy::LruBalance;

    fn image() -> Vec<u8> {
        write(&[
            (*b"HEAD", encode(&("x", 7u64))),
            (*b"DATA", encode(&vec![1u32, 2, 3])),
        ])
    }

    #[test]
    fn an_image_round_trips_section_by_section() {
        let img = parse(&image()).unwrap();
        assert_eq!(img.sections.len(), 2);
        let head: (String, u64) = img.section(b"HEAD").unwrap().decode().unwrap();
        assert_eq!(head, ("x".to_owned(), 7));
        let data = img.section(b"DATA").unwrap();
        assert_eq!(data.decode::<Vec<u32>>().unwrap(), vec![1, 2, 3]);
        // HEAD's payload starts after the 24-byte header and its own 12.
        assert_eq!(img.sections[0].offset, 36);
    }

    #[test]
    fn every_damage_is_refused_at_its_offset() {
        let good = image();
        let e = parse(&good[..30]).unwrap_err();
        assert_eq!(e.offset, 16);
        assert!(e.message.starts_with("truncated"), "{e}");
        let e = parse(&good[..10]).unwrap_err();
        assert_eq!((e.offset, e.to_string().contains("truncated")), (10, true));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(parse(&bad).unwrap_err().offset, 0);
        let mut bad = good.clone();
        bad[8] = 9;
        assert_eq!(
            parse(&bad).unwrap_err().to_string(),
            "offset 8: format version 9; this klab reads version 1"
        );
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let e = parse(&bad).unwrap_err();
        assert_eq!(e.offset, 12);
        assert!(e.message.contains("corrupt"), "{e}");
        let mut long = good.clone();
        long.push(0);
        assert!(
            parse(&long)
                .unwrap_err()
                .message
                .starts_with("trailing bytes")
        );
        // A payload that is not the type asked for.
        let img = parse(&good).unwrap();
        let e = img
            .section(b"DATA")
            .unwrap()
            .decode::<String>()
            .unwrap_err();
        assert!(e.to_string().starts_with("offset "), "{e}");
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
    fn read_takes_exactly_the_image_and_refuses_what_parse_refuses() {
        let good = image();
        assert_eq!(read(&good[..]).unwrap(), good);
        for n in 0..good.len() {
            let (r, p) = (
                read(&good[..n]).unwrap_err(),
                parse(&good[..n]).unwrap_err(),
            );
            assert_eq!(r, p, "prefix of {n} bytes");
        }
        let mut long = good.clone();
        long.push(0);
        let e = read(&long[..]).unwrap_err();
        assert_eq!(e.offset, 16);
        assert!(e.message.starts_with("trailing bytes"), "{e}");
        let mut bad = good.clone();
        bad[8] = 9;
        assert_eq!(read(&bad[..]).unwrap_err(), parse(&bad).unwrap_err());
    }

    #[test]
    fn a_header_claiming_a_huge_body_costs_only_what_the_file_holds() {
        let mut forged = image()[..HEADER_LEN].to_vec();
        forged[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        forged.extend_from_slice(&[7; 100]);
        let e = read(&forged[..]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "offset 16: truncated: the header gives a body of {} bytes, the file has 100 after offset 24",
                u64::MAX
            )
        );
    }

    #[test]
    fn a_2gib_file_of_zeros_is_refused_after_its_header() {
        let f = tempfile::tempfile().unwrap();
        f.set_len(2 << 30).unwrap();
        let mut c = Counting(f, 0);
        let e = read(&mut c).unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.starts_with("not a klab hibernation image"), "{e}");
        assert!(c.1 <= HEADER_LEN as u64, "{} bytes read", c.1);
    }

    #[test]
    fn a_machine_survives_an_image_counter_for_counter() {
        let mut cfg = MachineConfig::new(64, LruBalance::Workingset315);
        cfg.swap_pages = 16;
        let mut m = Machine::new(cfg).unwrap();
        for i in 0..300u64 {
            m.access(Access::read((i % 3) as u32, i * 7 % 90));
            m.access(Access::anon((i % 2) as u32 + 1, i % 40));
        }
        let bytes = write(&[(*b"MACH", encode(&m))]);
        let back: Machine = parse(&bytes).unwrap().sections[0].decode().unwrap();
        back.check().unwrap();
        back.assert_invariants();
        assert_eq!(encode(&back), encode(&m), "the same state, byte for byte");
        // Both continue identically.
        let (mut a, mut b) = (m, back);
        for i in 0..200u64 {
            let x = Access::read(1, i * 13 % 120);
            assert_eq!(a.access(x), b.access(x));
        }
        assert_eq!(a.stat(), b.stat());
        assert_eq!(encode(&a), encode(&b));
    }

    #[test]
    fn a_forged_machine_is_refused_by_its_check() {
        let mut m = Machine::new(MachineConfig::new(16, LruBalance::Classic)).unwrap();
        m.access(Access::read(1, 1));
        m.stat.hits = 0;
        // Break a list link: a frame index past the end.
        let pfn = m.file_pfn(1, 1).unwrap();
        m.mem.page_mut(pfn).prev = 999;
        let back: Machine = ciborium::from_reader(encode(&m).as_slice()).unwrap();
        let e = back.check().unwrap_err();
        assert!(e.contains("past the end"), "{e}");
    }
}
