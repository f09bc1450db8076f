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

use crate::{ErrorKind, Op, Request, TraceError, hash_id};

/// Lines of `bytes` with their 1-based number and byte offset, without the
/// line terminator (`\n` or `\r\n`).
fn lines(bytes: &[u8]) -> impl Iterator<Item = (u64, u64, &[u8])> {
    let mut offset = 0u64;
    bytes
        .split_inclusive(|&b| b == b'\n')
        .enumerate()
        .map(move |(i, raw)| {
            let start = offset;
            offset += raw.len() as u64;
            let mut line = raw.strip_suffix(b"\n").unwrap_or(raw);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            (i as u64 + 1, start, line)
        })
}

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

#[derive(Debug, Default)]
struct Columns {
    id: Option<usize>,
    size: Option<usize>,
    time: Option<usize>,
    op: Option<usize>,
    file: Option<usize>,
}

impl Columns {
    fn from_header(header: &[u8]) -> Columns {
        let mut c = Columns::default();
        for (i, name) in header.split(|&b| b == b',').enumerate() {
            let name = text(trim(name)).to_ascii_lowercase();
            let slot = match name.as_str() {
                "lbn" | "obj_id" | "id" | "key" | "obj" | "block" => &mut c.id,
                "size" | "obj_size" | "len" | "length" => &mut c.size,
                "time" | "timestamp" | "clock_time" | "ts" => &mut c.time,
                "op" | "cmd" | "operation" => &mut c.op,
                "file" | "device" | "dev" | "volume" => &mut c.file,
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        c
    }
}

/// Parses a csv trace with a header line.
pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Vec<Request>, TraceError> {
    let mut it = lines(bytes);
    let Some((_, _, header)) = it.next() else {
        return Ok(Vec::new());
    };
    let cols = Columns::from_header(header);
    let Some(id_col) = cols.id else {
        return Err(TraceError::line(
            path,
            1,
            0,
            ErrorKind::Syntax(format!(
                "expected a header line naming an id column (lbn, obj_id, id, key, obj or block); found {:?}",
                text(header)
            )),
        ));
    };
    let mut out = Vec::new();
    for (n, off, line) in it {
        if trim(line).is_empty() {
            continue;
        }
        let fields: Vec<&[u8]> = line.split(|&b| b == b',').collect();
        let err = |k| TraceError::line(path, n, off, k);
        let get = |col: usize, name: &str| {
            fields.get(col).copied().ok_or_else(|| {
                err(ErrorKind::Syntax(format!(
                    "{} fields; the {name} column is field {}",
                    fields.len(),
                    col + 1
                )))
            })
        };
        let id_field = get(id_col, "id")?;
        let obj_id = parse_id(id_field).ok_or_else(|| {
            err(ErrorKind::Field {
                field: "id",
                value: "empty".into(),
                expected: "an object id",
            })
        })?;
        let size = match cols.size {
            Some(c) => parse_size(get(c, "size")?).map_err(err)?,
            None => 1,
        };
        let time = match cols.time {
            Some(c) => {
                let f = get(c, "time")?;
                parse_u64(f).ok_or_else(|| {
                    err(ErrorKind::Field {
                        field: "time",
                        value: text(trim(f)),
                        expected: "a non-negative integer",
                    })
                })?
            }
            None => out.len() as u64,
        };
        let op = match cols.op {
            Some(c) => parse_op(get(c, "op")?),
            None => Op::Unknown,
        };
        let file = match cols.file {
            Some(c) => {
                let f = get(c, "file")?;
                match parse_u64(f).map(u32::try_from) {
                    Some(Ok(v)) => v,
                    _ => (hash_id(trim(f)) & 0xffff_ffff) as u32,
                }
            }
            None => 0,
        };
        out.push(Request {
            time,
            obj_id,
            size,
            op,
            file,
            next_access: None,
        });
    }
    Ok(out)
}

/// Parses a txt trace: one object id per line, size 1. Blank lines are
/// skipped.
pub fn parse_txt(bytes: &[u8], _path: &Path) -> Result<Vec<Request>, TraceError> {
    let mut out = Vec::new();
    for (_, _, line) in lines(bytes) {
        if let Some(obj_id) = parse_id(line) {
            out.push(Request {
                time: out.len() as u64,
                obj_id,
                size: 1,
                op: Op::Unknown,
                file: 0,
                next_access: None,
            });
        }
    }
    Ok(out)
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
