//! Text trace formats: csv with a header line, and plain txt (one object id
//! per line), as libCacheSim reads them.
//!
//! CSV columns are found by name in the header (case-insensitive):
//!
//! | field | header names |
//! | --- | --- |
//! | object id (required) | `lbn`, `obj_id`, `id`, `key`, `obj`, `block` |
//! | size | `size`, `obj_size`, `len`, `length` (default 1) |
//! | time | `time`, `timestamp`, `clock_time`, `ts` (default: the line's index) |
//! | operation | `op`, `cmd`, `operation` (hex SCSI opcode, or `r`/`w`/`read`/`write`/`get`/`set`) |
//! | file | `file`, `device`, `dev`, `volume` (default 0) |
//!
//! An id that is not a decimal number is hashed ([`crate::hash_id`]).

use std::path::Path;

use crate::{ErrorKind, Format, Op, Request, TraceError, hash_id};

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An object id: decimal, or hashed.
pub(crate) fn parse_id(field: &[u8]) -> Option<u64> {
    let f = trim(field);
    if f.is_empty() {
        return None;
    }
    Some(parse_u64(f).unwrap_or_else(|| hash_id(f)))
}

pub(crate) fn parse_u64(f: &[u8]) -> Option<u64> {
    std::str::from_utf8(trim(f)).ok()?.parse().ok()
}

/// A size field: a positive integer that fits in 32 bits.
pub(crate) fn parse_size(f: &[u8]) -> Result<u32, ErrorKind> {
    let bad = || ErrorKind::Field {
        field: "size",
        value: text(trim(f)),
        expected: "an integer from 1 to 4294967295",
    };
    let v = parse_u64(f).ok_or_else(bad)?;
    match u32::try_from(v) {
        Ok(0) | Err(_) => Err(bad()),
        Ok(s) => Ok(s),
    }
}

/// An operation: a SCSI opcode in hex, or a word.
pub(crate) fn parse_op(f: &[u8]) -> Op {
    let s = text(trim(f)).to_ascii_lowercase();
    match s.as_str() {
        "r" | "read" | "get" | "gets" | "28" | "08" | "a8" | "88" | "0x28" => Op::Read,
        "w" | "write" | "set" | "put" | "2a" | "0a" | "aa" | "8a" | "0x2a" => Op::Write,
        _ => Op::Unknown,
    }
}

/// The columns of a csv trace, found by name in its header line.
#[derive(Debug)]
pub(crate) struct Columns {
    id: usize,
    size: Option<usize>,
    time: Option<usize>,
    op: Option<usize>,
    file: Option<usize>,
}

impl Columns {
    /// The columns a header line names; it must name an id column.
    pub(crate) fn from_header(header: &[u8]) -> Result<Columns, ErrorKind> {
        let (mut id, mut size, mut time, mut op, mut file) = (None, None, None, None, None);
        for (i, name) in header.split(|&b| b == b',').enumerate() {
            let name = text(trim(name)).to_ascii_lowercase();
            let slot = match name.as_str() {
                "lbn" | "obj_id" | "id" | "key" | "obj" | "block" => &mut id,
                "size" | "obj_size" | "len" | "length" => &mut size,
                "time" | "timestamp" | "clock_time" | "ts" => &mut time,
                "op" | "cmd" | "operation" => &mut op,
                "file" | "device" | "dev" | "volume" => &mut file,
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        let Some(id) = id else {
            return Err(ErrorKind::Syntax(format!(
                "expected a header line naming an id column (lbn, obj_id, id, key, obj or block); found {:?}",
                text(header)
            )));
        };
        Ok(Columns {
            id,
            size,
            time,
            op,
            file,
        })
    }

    /// The request on one line after the header (`None` for a blank
    /// line); `index` is the number of requests before it, the time when
    /// the trace has no time column.
    pub(crate) fn request(&self, line: &[u8], index: u64) -> Result<Option<Request>, ErrorKind> {
        if trim(line).is_empty() {
            return Ok(None);
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        let get = |col: usize, name: &str| {
            fields.get(col).copied().ok_or_else(|| {
                ErrorKind::Syntax(format!(
                    "{} fields; the {name} column is field {}",
                    fields.len(),
                    col + 1
                ))
            })
        };
        let obj_id = parse_id(get(self.id, "id")?).ok_or_else(|| ErrorKind::Field {
            field: "id",
            value: "empty".into(),
            expected: "an object id",
        })?;
        let size = match self.size {
            Some(c) => parse_size(get(c, "size")?)?,
            None => 1,
        };
        let time = match self.time {
            Some(c) => {
                let f = get(c, "time")?;
                parse_u64(f).ok_or_else(|| ErrorKind::Field {
                    field: "time",
                    value: text(trim(f)),
                    expected: "a non-negative integer",
                })?
            }
            None => index,
        };
        let op = match self.op {
            Some(c) => parse_op(get(c, "op")?),
            None => Op::Unknown,
        };
        let file = match self.file {
            Some(c) => {
                let f = get(c, "file")?;
                match parse_u64(f).map(u32::try_from) {
                    Some(Ok(v)) => v,
                    _ => (hash_id(trim(f)) & 0xffff_ffff) as u32,
                }
            }
            None => 0,
        };
        Ok(Some(Request {
            time,
            obj_id,
            size,
            op,
            file,
            next_access: None,
        }))
    }
}

/// Parses a csv trace with a header line.
pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Vec<Request>, TraceError> {
    crate::parse(bytes, Format::Csv, path)
}

/// The request on one line of a txt trace: the line's object id, size 1
/// (`None` for a blank line); `index` is the number of requests before it.
pub(crate) fn txt_request(line: &[u8], index: u64) -> Option<Request> {
    parse_id(line).map(|obj_id| Request {
        time: index,
        obj_id,
        size: 1,
        op: Op::Unknown,
        file: 0,
        next_access: None,
    })
}

/// Parses a txt trace: one object id per line, size 1. Blank lines are
/// skipped.
pub fn parse_txt(bytes: &[u8], path: &Path) -> Result<Vec<Request>, TraceError> {
    crate::parse(bytes, Format::Txt, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_by_header_name() {
        let b = b"version,time,op,size,lbn\n1,5633898,2a,512,42932745\r\n1,5633899,28,4096,7\n";
        let r = parse_csv(b, Path::new("t.csv")).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].time, r[0].op, r[0].size, r[0].obj_id),
            (5633898, Op::Write, 512, 42932745)
        );
        assert_eq!((r[1].op, r[1].size, r[1].obj_id), (Op::Read, 4096, 7));
    }

    #[test]
    fn csv_errors_name_line_offset_and_field() {
        let b = b"time,lbn,size\n1,2,3\n4,5,0\n";
        let e = parse_csv(b, Path::new("t.csv")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: line 3 (offset 20): size field is 0; expected an integer from 1 to 4294967295"
        );
        let e = parse_csv(b"time,lbn,size\n1,2\n", Path::new("t.csv")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.csv: line 2 (offset 14): 2 fields; the size column is field 3"
        );
        let e = parse_csv(b"1,2,3\n", Path::new("t.csv")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.csv: line 1 (offset 0): expected a header line"),
            "{e}"
        );
        let e = parse_csv(b"time,key\nnoon,a\n", Path::new("t.csv")).unwrap_err();
        assert!(e.to_string().contains("time field is noon"), "{e}");
    }

    #[test]
    fn string_ids_are_hashed() {
        let r = parse_csv(b"key,size\nfoobar,10\n", Path::new("t")).unwrap();
        assert_eq!(r[0].obj_id, hash_id(b"foobar"));
        let r = parse_txt(b"foobar\n12\n\n", Path::new("t")).unwrap();
        assert_eq!(
            r.iter().map(|r| r.obj_id).collect::<Vec<_>>(),
            vec![hash_id(b"foobar"), 12]
        );
    }

    #[test]
    fn txt_without_final_newline() {
        let r = parse_txt(b"42932745\n42932746", Path::new("t")).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[1].obj_id, r[1].size, r[1].time), (42932746, 1, 1));
    }
}
