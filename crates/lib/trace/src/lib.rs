//! Cache-trace readers: the request streams that `klab replay` and the
//! page-cache experiments run on.
//!
//! # Formats
//!
//! | format | file | record |
//! | --- | --- | --- |
//! | [`Format::OracleGeneral`] | `*.oracleGeneral.bin`, `*.oracleGeneral` | libCacheSim's 24-byte little-endian record: `u32 time, u64 obj_id, u32 size, i64 next_access_vtime` |
//! | [`Format::Vscsi`] | `*.vscsi` | VMware vSCSI block trace, version 1 (32 bytes) or 2 (40 bytes), told apart by the version byte as libCacheSim does |
//! | [`Format::Csv`] | `*.csv` | a header line naming the columns (`time`, `lbn`/`obj_id`/`id`/`key`, `size`, `op`), then one request per line |
//! | [`Format::Txt`] | `*.txt` | one object id per line; every request has size 1 |
//! | [`Format::Klab`] | `*.ktr` | klab's own text format, see [`klab`] |
//!
//! Any of them may be zstd-compressed (`*.csv.zst`, ...): [`open`] tells a
//! compressed file by its magic and decompresses it as it reads
//! ([`Source`]), so a compressed trace costs no more memory than a plain one.
//!
//! # Design
//!
//! Input is parsed once, at the edge, into [`Request`]s, which are valid by
//! construction (non-zero size, a known operation). A [`Reader`] yields
//! them from any `io::Read`: it checks the header or first record before
//! reading further, reads the rest in bounded chunks, and refuses a trace
//! with no request and a text trace holding bytes that are not text; the
//! in-memory [`parse`] and the whole-file [`read`] are built on it. Binary
//! records are read through checked, zero-copy views over the read buffer
//! ([`binary::OracleRecord`], [`binary::VscsiRecord`]): a view is made only
//! from a slice of exactly the record's length, so its accessors cannot go
//! out of bounds. Every malformed record is an error that names the file,
//! the record number (0-based), its byte offset and the field
//! ([`TraceError`]); nothing here panics on bad input.
//!
//! Identifiers that are not decimal numbers (some csv and txt traces use
//! string keys) are mapped to numbers with 64-bit FNV-1a ([`hash_id`]), as
//! libCacheSim maps string ids to numbers with a hash.
#![forbid(unsafe_code)]

pub mod binary;
mod error;
mod input;
pub mod klab;
mod pages;
mod reader;
mod source;
pub mod text;

use std::path::Path;
use std::str::FromStr;

pub use error::{ErrorKind, TraceError};
pub use input::{FIRST_TEXT_READ, MAX_LINE, MAX_READ};
pub use pages::{PAGE_SIZE, pages_of};
pub use reader::Reader;
pub use source::{MAX_WINDOW_LOG, Source, ZSTD_MAGIC};

/// One request of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request {
    /// Time of the request in the trace's unit (seconds for libCacheSim
    /// formats, microseconds for vscsi), or the record number when the
    /// format has no time.
    pub time: u64,
    /// The object (block, key, page) requested.
    pub obj_id: u64,
    /// Bytes requested; never 0.
    pub size: u32,
    /// Read, write or unknown.
    pub op: Op,
    /// The file or device the request addresses (0 when the trace has only
    /// one). The page-cache model keeps one address space per file.
    pub file: u32,
    /// Index of the next request to the same object, when the trace
    /// records it (oracleGeneral).
    pub next_access: Option<u64>,
}

/// The operation of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// A read.
    Read,
    /// A write.
    Write,
    /// The trace does not say.
    Unknown,
}

/// A trace file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// libCacheSim's oracleGeneral binary format.
    OracleGeneral,
    /// VMware vSCSI binary block trace.
    Vscsi,
    /// Comma-separated values with a header line.
    Csv,
    /// One object id per line.
    Txt,
    /// klab's text format.
    Klab,
}

impl Format {
    /// Every format, in the order shown to users.
    pub const ALL: [Format; 5] = [
        Format::OracleGeneral,
        Format::Vscsi,
        Format::Csv,
        Format::Txt,
        Format::Klab,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::OracleGeneral => "oracleGeneral",
            Format::Vscsi => "vscsi",
            Format::Csv => "csv",
            Format::Txt => "txt",
            Format::Klab => "klab",
        }
    }

    /// The format a file name implies, from its extension; a `.zst` after
    /// it (a compressed trace) is looked through.
    pub fn from_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".zst").unwrap_or(&name);
        if name.ends_with(".oraclegeneral.bin") || name.ends_with(".oraclegeneral") {
            Some(Format::OracleGeneral)
        } else if name.ends_with(".vscsi") {
            Some(Format::Vscsi)
        } else if name.ends_with(".csv") {
            Some(Format::Csv)
        } else if name.ends_with(".txt") {
            Some(Format::Txt)
        } else if name.ends_with(".ktr") {
            Some(Format::Klab)
        } else {
            None
        }
    }
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.name()).collect();
                format!(
                    "unknown trace format {s:?}; known formats: {}",
                    names.join(", ")
                )
            })
    }
}

/// Parses a whole trace held in memory. `name` is used in error messages
/// (normally the file's path).
///
/// # Errors
/// The first fault, as [`Reader`] finds it: a trace without a request is
/// an error.
pub fn parse(bytes: &[u8], format: Format, name: &Path) -> Result<Vec<Request>, TraceError> {
    Reader::new(bytes, format, name)?.read_all()
}

/// The format of the trace at `path`: `format` when given, else the one
/// its extension names.
///
/// # Errors
/// [`ErrorKind::UnknownFormat`] when neither says.
pub fn resolve_format(path: &Path, format: Option<Format>) -> Result<Format, TraceError> {
    format
        .or_else(|| Format::from_path(path))
        .ok_or_else(|| TraceError::whole(path, ErrorKind::UnknownFormat))
}

/// Opens a trace file and reads its header or first record and its first
/// request ([`Reader::new`]). The format comes from `format`, or from the
/// file's extension when `None` (a trailing `.zst` looked through).
///
/// A file that starts with zstd's magic (`28 B5 2F FD`) is decompressed as
/// it is read, whatever its name ([`Source`]); a file named `*.zst` that
/// does not is an error. The offsets in a compressed trace's errors are
/// offsets in its decompressed stream, and say so.
///
/// # Errors
/// An unknown format, a file that cannot be opened, a `.zst` file that is
/// not zstd, or what [`Reader::new`] refuses.
pub fn open(
    path: &Path,
    format: Option<Format>,
) -> Result<Reader<Source<std::fs::File>>, TraceError> {
    let format = resolve_format(path, format)?;
    let io = |e: std::io::Error| TraceError::whole(path, ErrorKind::Io(e.to_string()));
    let file = std::fs::File::open(path).map_err(io)?;
    let source = Source::new(file).map_err(io)?;
    if source.is_compressed() {
        Reader::new_decompressed(source, format, path)
    } else if source::named_zst(path) {
        Err(TraceError::whole(path, ErrorKind::NotZstd))
    } else {
        Reader::new(source, format, path)
    }
}

/// Parses a whole trace held in memory that may be zstd-compressed
/// (told by its magic, as [`open`] tells): what [`parse`] gives on the
/// decompressed bytes, with offsets marked as the decompressed stream's.
///
/// # Errors
/// As [`parse`], and a compressed stream that does not decode.
pub fn parse_maybe_compressed(
    bytes: &[u8],
    format: Format,
    name: &Path,
) -> Result<Vec<Request>, TraceError> {
    let source =
        Source::new(bytes).map_err(|e| TraceError::whole(name, ErrorKind::Io(e.to_string())))?;
    if source.is_compressed() {
        Reader::new_decompressed(source, format, name)?.read_all()
    } else {
        Reader::new(source, format, name)?.read_all()
    }
}

/// Reads a whole trace file into memory, as a stream ([`open`]): a file
/// that is not the trace it claims to be is refused after its first
/// record, not after it has been read.
///
/// # Errors
/// See [`open`] and [`Reader`].
pub fn read(path: &Path, format: Option<Format>) -> Result<Vec<Request>, TraceError> {
    open(path, format)?.read_all()
}

/// Maps a non-numeric object id to a number: 64-bit FNV-1a of its bytes.
pub fn hash_id(id: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in id {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension() {
        let f = |p: &str| Format::from_path(Path::new(p));
        assert_eq!(
            f("a/cloudPhysicsIO.oracleGeneral.bin"),
            Some(Format::OracleGeneral)
        );
        assert_eq!(f("x.vscsi"), Some(Format::Vscsi));
        assert_eq!(f("x.CSV"), Some(Format::Csv));
        assert_eq!(f("x.txt"), Some(Format::Txt));
        assert_eq!(f("x.ktr"), Some(Format::Klab));
        assert_eq!(f("x.bin"), None);
        assert_eq!(f("x.csv.zst"), Some(Format::Csv));
        assert_eq!(f("x.oracleGeneral.bin.ZST"), Some(Format::OracleGeneral));
        assert_eq!(f("x.zst"), None);
    }

    #[test]
    fn format_names_parse_back() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>(), Ok(f));
        }
        assert!(
            "zip"
                .parse::<Format>()
                .unwrap_err()
                .contains("known formats: oracleGeneral")
        );
    }

    #[test]
    fn fnv1a_matches_published_vectors() {
        assert_eq!(hash_id(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash_id(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash_id(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn unknown_extension_is_an_error_naming_the_file() {
        let e = read(Path::new("/nonexistent/trace.bin"), None).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/trace.bin: "), "{e}");
    }
}
