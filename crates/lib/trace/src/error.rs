//! Errors of the trace readers: every one names the file, and where the
//! fault is in it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A trace could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    /// The file (or the name given to [`crate::parse`]).
    pub path: PathBuf,
    /// Where in the file: `None` for faults of the whole file.
    pub at: Option<Location>,
    /// What was wrong.
    pub kind: ErrorKind,
}

/// Where a fault is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The record (0-based) for binary formats, the line (1-based) for text.
    pub record: u64,
    /// Byte offset of the record or line in the file.
    pub offset: u64,
    /// True when `record` is a 1-based line number.
    pub is_line: bool,
    /// True when `offset` counts bytes of the decompressed stream of a
    /// compressed file, not bytes of the file.
    pub decompressed: bool,
}

/// What was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file could not be read.
    #[error("{0}")]
    Io(String),
    /// No format was given and the extension names none.
    #[error(
        "cannot tell the trace format from the file name; give one of: oracleGeneral, vscsi, csv, txt, klab"
    )]
    UnknownFormat,
    /// The file ends inside a record.
    #[error("truncated record: {have} of {need} bytes")]
    Truncated {
        /// Bytes a record needs.
        need: usize,
        /// Bytes left.
        have: usize,
    },
    /// A field holds a value the format does not allow.
    #[error("{field} field is {value}; expected {expected}")]
    Field {
        /// The field's name.
        field: &'static str,
        /// What it holds, as text.
        value: String,
        /// What the format allows.
        expected: &'static str,
    },
    /// A text line has the wrong shape.
    #[error("{0}")]
    Syntax(String),
    /// The file is named `*.zst` but is not zstd-compressed.
    #[error(
        "the file is named .zst but does not start with zstd's magic 28 B5 2F FD; expected a zstd-compressed trace"
    )]
    NotZstd,
    /// The file holds no bytes.
    #[error("the file is empty; expected a trace of at least one request")]
    Empty,
    /// The file is well formed but holds no request (a header alone, or
    /// blank lines).
    #[error("no request in the file; expected at least one")]
    NoRequests,
    /// A text trace holds a byte that text never does.
    #[error(
        "byte {byte:#04x} at offset {at} is not text (a control character or invalid UTF-8); expected a text trace"
    )]
    NotText {
        /// Offset of the byte in the file.
        at: u64,
        /// The byte.
        byte: u8,
    },
    /// A text line longer than any trace line.
    #[error("no line end within {max} bytes; expected a trace line")]
    LineTooLong {
        /// The longest line allowed, in bytes.
        max: usize,
    },
}

impl TraceError {
    /// A fault of the whole file.
    pub fn whole(path: &Path, kind: ErrorKind) -> Self {
        TraceError {
            path: path.to_owned(),
            at: None,
            kind,
        }
    }

    /// A fault in binary record `record` at byte `offset`.
    pub fn record(path: &Path, record: u64, offset: u64, kind: ErrorKind) -> Self {
        TraceError {
            path: path.to_owned(),
            at: Some(Location {
                record,
                offset,
                is_line: false,
                decompressed: false,
            }),
            kind,
        }
    }

    /// A fault on text line `line` (1-based) starting at byte `offset`.
    pub fn line(path: &Path, line: u64, offset: u64, kind: ErrorKind) -> Self {
        TraceError {
            path: path.to_owned(),
            at: Some(Location {
                record: line,
                offset,
                is_line: true,
                decompressed: false,
            }),
            kind,
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        if let Some(at) = self.at {
            let of = if at.decompressed {
                " of the decompressed stream"
            } else {
                ""
            };
            if at.is_line {
                write!(f, "line {} (offset {}{of}): ", at.record, at.offset)?;
            } else {
                write!(f, "record {} at offset {}{of}: ", at.record, at.offset)?;
            }
        }
        write!(f, "{}", self.kind)
    }
}
