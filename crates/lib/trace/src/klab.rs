//! klab's own trace format: plain text, one request per line, with the
//! file (address space) each request addresses, so that a page-cache
//! workload over several files can be written down and replayed.
//!
//! ```text
//! klab-trace v1
//! # time file obj size op
//! 0 0 1000 4096 r
//! 1 3 17 8192 w
//! ```
//!
//! * The first line is exactly `klab-trace v1`.
//! * Blank lines and lines starting with `#` are ignored.
//! * Every other line has five fields separated by spaces or tabs:
//!   `time` (u64), `file` (u32), `obj` (u64: the block or page number),
//!   `size` (bytes, 1 to 2^32-1), `op` (`r`, `w` or `-`).

use std::path::Path;

use crate::text::{parse_size, parse_u64};
use crate::{ErrorKind, Format, Op, Request, TraceError};

/// The first line of every klab trace.
pub const MAGIC: &str = "klab-trace v1";

/// Parses a klab trace.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Vec<Request>, TraceError> {
    crate::parse(bytes, Format::Klab, path)
}

/// Checks the first line (terminator removed).
pub(crate) fn check_header(line: &[u8]) -> Result<(), ErrorKind> {
    if line.trim_ascii() == MAGIC.as_bytes() {
        Ok(())
    } else {
        Err(ErrorKind::Syntax(format!(
            "expected the header {MAGIC:?}, found {:?}",
            String::from_utf8_lossy(line.trim_ascii())
        )))
    }
}

/// The request on a line after the header; `None` for a blank line or a
/// comment.
pub(crate) fn request(line: &[u8]) -> Result<Option<Request>, ErrorKind> {
    let line = line.trim_ascii();
    if line.is_empty() || line.starts_with(b"#") {
        return Ok(None);
    }
    let fields: Vec<&[u8]> = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|f| !f.is_empty())
        .collect();
    let [time, file, obj, size, op] = fields[..] else {
        return Err(ErrorKind::Syntax(format!(
            "expected 5 fields (time file obj size op), found {}",
            fields.len()
        )));
    };
    let num = |f: &[u8], field: &'static str| {
        parse_u64(f).ok_or_else(|| ErrorKind::Field {
            field,
            value: String::from_utf8_lossy(f).into_owned(),
            expected: "a non-negative integer",
        })
    };
    let time = num(time, "time")?;
    let file = u32::try_from(num(file, "file")?).map_err(|_| ErrorKind::Field {
        field: "file",
        value: String::from_utf8_lossy(file).into_owned(),
        expected: "a file number below 2^32",
    })?;
    let obj_id = num(obj, "obj")?;
    let size = parse_size(size)?;
    let op = match op {
        b"r" => Op::Read,
        b"w" => Op::Write,
        b"-" => Op::Unknown,
        other => {
            return Err(ErrorKind::Field {
                field: "op",
                value: String::from_utf8_lossy(other).into_owned(),
                expected: "r, w or -",
            });
        }
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

/// Writes requests in klab's format.
pub fn write(requests: &[Request]) -> String {
    let mut s = String::from(MAGIC);
    s.push_str("\n# time file obj size op\n");
    for r in requests {
        let op = match r.op {
            Op::Read => "r",
            Op::Write => "w",
            Op::Unknown => "-",
        };
        s.push_str(&format!(
            "{} {} {} {} {op}\n",
            r.time, r.file, r.obj_id, r.size
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes() {
        let reqs = vec![
            Request {
                time: 0,
                obj_id: 1000,
                size: 4096,
                op: Op::Read,
                file: 0,
                next_access: None,
            },
            Request {
                time: 5,
                obj_id: 17,
                size: 8192,
                op: Op::Write,
                file: 3,
                next_access: None,
            },
            Request {
                time: 6,
                obj_id: 0,
                size: 1,
                op: Op::Unknown,
                file: 9,
                next_access: None,
            },
        ];
        assert_eq!(
            parse(write(&reqs).as_bytes(), Path::new("t")).unwrap(),
            reqs
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(b"klab-trace v2\n", Path::new("t.ktr")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.ktr: line 1 (offset 0): expected the header"),
            "{e}"
        );
        let e = parse(b"klab-trace v1\n0 0 1 4096\n", Path::new("t.ktr")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.ktr: line 2 (offset 14): expected 5 fields (time file obj size op), found 4"
        );
        let e = parse(b"klab-trace v1\n# c\n0 0 1 4096 x\n", Path::new("t.ktr")).unwrap_err();
        assert!(
            e.to_string()
                .contains("line 3 (offset 18): op field is x; expected r, w or -"),
            "{e}"
        );
        let e = parse(b"klab-trace v1\n0 99999999999 1 1 r\n", Path::new("t.ktr")).unwrap_err();
        assert!(e.to_string().contains("file field is 99999999999"), "{e}");
        assert!(parse(b"", Path::new("t")).is_err());
    }
}
