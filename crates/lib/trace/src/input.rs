//! The byte source under every reader: a buffer over any `io::Read` whose
//! reads start small and grow, so that a file is judged by its first bytes
//! before more of it is read.
//!
//! The first read asks for exactly what the format needs to judge the
//! file (one binary record, or [`FIRST_TEXT_READ`] bytes of text); each
//! later read asks for twice the one before, up to [`MAX_READ`]. Memory
//! held is the buffer: at most [`MAX_READ`] plus one record or one line
//! ([`MAX_LINE`]), whatever the file's size.

use std::io::{self, Read};

/// The largest single read, once the input has shown what it is.
pub const MAX_READ: usize = 64 << 10;
/// The longest line a text trace may have, terminator excluded.
pub const MAX_LINE: usize = 64 << 10;
/// The first read of a text trace.
pub const FIRST_TEXT_READ: usize = 64;

/// A line of a text input.
pub(crate) struct Line<'a> {
    /// Offset of its first byte in the input.
    pub(crate) offset: u64,
    /// The line without `\n` or `\r\n`; valid UTF-8.
    pub(crate) text: &'a [u8],
}

/// Why a line could not be read.
pub(crate) enum LineError {
    Io(io::Error),
    /// A byte that text never holds (a control character other than tab,
    /// or invalid UTF-8), at this offset of the input.
    NotText {
        line_offset: u64,
        at: u64,
        byte: u8,
    },
    /// No line terminator within [`MAX_LINE`] bytes.
    TooLong {
        line_offset: u64,
    },
}

/// True for bytes that end a line or that text never holds: C0 controls
/// other than tab and carriage return, and DEL.
fn stops_scan(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\r') || b == 0x7f
}

pub(crate) struct Input<R> {
    r: R,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// Input offset of `buf[pos]`.
    offset: u64,
    /// Size of the next read.
    next_read: usize,
    eof: bool,
}

impl<R: Read> Input<R> {
    /// A source whose first read asks for `first` bytes.
    pub(crate) fn new(r: R, first: usize) -> Self {
        Input {
            r,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            offset: 0,
            next_read: first.clamp(1, MAX_READ),
            eof: false,
        }
    }

    /// Input offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// Reads until `need` bytes are unconsumed or the input ends; returns
    /// how many are unconsumed. With `exact`, reads no more than `need`.
    fn fill_to(&mut self, need: usize, exact: bool) -> io::Result<usize> {
        while self.end - self.pos < need && !self.eof {
            let short = need - (self.end - self.pos);
            let want = if exact {
                short
            } else {
                self.next_read.max(short)
            };
            if self.pos > 0 && self.buf.len() - self.end < want {
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            }
            if self.buf.len() < self.end + want {
                self.buf.resize(self.end + want, 0);
            }
            match self.r.read(&mut self.buf[self.end..self.end + want]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.end += n;
                    self.next_read = (self.next_read * 2).min(MAX_READ);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// The next `need` unconsumed bytes (fewer where the input ends),
    /// reading no more than that.
    pub(crate) fn peek(&mut self, need: usize) -> io::Result<&[u8]> {
        let n = self.fill_to(need, true)?.min(need);
        Ok(&self.buf[self.pos..self.pos + n])
    }

    /// Consumes and returns the next `len` bytes, or fewer where the input
    /// ends (none at its end).
    pub(crate) fn take(&mut self, len: usize) -> io::Result<&[u8]> {
        let n = self.fill_to(len, false)?.min(len);
        let start = self.pos;
        self.pos += n;
        self.offset += n as u64;
        Ok(&self.buf[start..start + n])
    }

    /// Consumes and returns every whole `len`-byte record in the buffer,
    /// reading first if it holds none; at the end of the input, the bytes
    /// left (fewer than `len`, none at the very end).
    pub(crate) fn take_records(&mut self, len: usize) -> io::Result<&[u8]> {
        let avail = self.fill_to(len, false)?;
        let n = if avail >= len {
            avail - avail % len
        } else {
            avail
        };
        let start = self.pos;
        self.pos += n;
        self.offset += n as u64;
        Ok(&self.buf[start..start + n])
    }

    /// Consumes and returns the whole lines in the buffer (reading first
    /// if it holds none) when they are all text and none is longer than
    /// [`MAX_LINE`]: the fast path of [`Input::line`], a buffer at a time.
    /// `None` (nothing consumed) when the next line needs [`Input::line`]:
    /// no whole line in the buffer, or a fault among them.
    pub(crate) fn text_block(&mut self) -> io::Result<Option<(u64, &[u8])>> {
        self.fill_to(1, false)?;
        let avail = self.available();
        let Some(last) = avail.iter().rposition(|&b| b == b'\n') else {
            return Ok(None);
        };
        let block = &avail[..=last];
        // Without an early exit, so that it compiles to vector code.
        let bad = block
            .iter()
            .fold(false, |bad, &b| bad | (b != b'\n' && stops_scan(b)));
        if bad {
            return Ok(None);
        }
        if block.len() > MAX_LINE
            && block
                .split(|&b| b == b'\n')
                .any(|line| line.len() > MAX_LINE)
        {
            return Ok(None);
        }
        if std::str::from_utf8(block).is_err() {
            return Ok(None);
        }
        let (start, offset) = (self.pos, self.offset);
        self.pos += last + 1;
        self.offset += last as u64 + 1;
        Ok(Some((offset, &self.buf[start..=start + last])))
    }

    /// The next line, or `None` at the end of the input. Bytes are checked
    /// as they arrive, so a binary input fails at its first non-text byte,
    /// not after a line's worth of reading; the verdict depends on the
    /// first [`MAX_LINE`] + 1 bytes of the line only, never on how the
    /// input was cut into reads.
    pub(crate) fn line(&mut self) -> Result<Option<Line<'_>>, LineError> {
        let line_offset = self.offset;
        let mut scanned = 0;
        loop {
            let avail = self.available();
            let window = &avail[..avail.len().min(MAX_LINE + 1)];
            let not_text = |at: usize| LineError::NotText {
                line_offset,
                at: line_offset + at as u64,
                byte: window[at],
            };
            if let Some(k) = window[scanned..].iter().position(|&b| stops_scan(b)) {
                let k = scanned + k;
                if let Err(e) = std::str::from_utf8(&window[..k]) {
                    return Err(not_text(e.valid_up_to()));
                }
                if window[k] != b'\n' {
                    return Err(not_text(k));
                }
                let len = window[..k].strip_suffix(b"\r").map_or(k, <[u8]>::len);
                let start = self.pos;
                self.pos += k + 1;
                self.offset += k as u64 + 1;
                return Ok(Some(Line {
                    offset: line_offset,
                    text: &self.buf[start..start + len],
                }));
            }
            scanned = window.len();
            match std::str::from_utf8(window) {
                // Invalid, not merely a character cut by a read.
                Err(e) if e.error_len().is_some() => return Err(not_text(e.valid_up_to())),
                // A character cut by the end of the input.
                Err(e) if self.eof => return Err(not_text(e.valid_up_to())),
                _ => {}
            }
            if scanned > MAX_LINE {
                return Err(LineError::TooLong { line_offset });
            }
            if self.eof {
                if scanned == 0 {
                    return Ok(None);
                }
                let len = window.strip_suffix(b"\r").map_or(scanned, <[u8]>::len);
                let start = self.pos;
                self.pos = self.end;
                self.offset += scanned as u64;
                return Ok(Some(Line {
                    offset: line_offset,
                    text: &self.buf[start..start + len],
                }));
            }
            self.fill_to(scanned + 1, false).map_err(LineError::Io)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the bytes read through it.
    struct Counting<'a>(&'a [u8], usize);

    impl Read for Counting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.read(buf)?;
            self.1 += n;
            Ok(n)
        }
    }

    fn lines(bytes: &[u8]) -> Result<Vec<(u64, String)>, String> {
        let mut input = Input::new(bytes, 3);
        let mut out = Vec::new();
        loop {
            match input.line() {
                Ok(Some(l)) => out.push((l.offset, String::from_utf8(l.text.to_vec()).unwrap())),
                Ok(None) => return Ok(out),
                Err(LineError::NotText { at, byte, .. }) => {
                    return Err(format!("not text at {at}: {byte:#04x}"));
                }
                Err(LineError::TooLong { line_offset }) => {
                    return Err(format!("too long at {line_offset}"));
                }
                Err(LineError::Io(e)) => return Err(e.to_string()),
            }
        }
    }

    #[test]
    fn lines_keep_offsets_across_reads_and_terminators() {
        assert_eq!(
            lines("ab\r\n\ncdé\nlast".as_bytes()).unwrap(),
            vec![
                (0, "ab".into()),
                (4, String::new()),
                (5, "cdé".into()),
                (10, "last".into())
            ]
        );
        assert_eq!(lines(b"").unwrap(), vec![]);
        assert_eq!(lines(b"x\n").unwrap(), vec![(0, "x".into())]);
    }

    #[test]
    fn non_text_fails_at_its_byte() {
        assert_eq!(lines(b"12\n3\x004\n").unwrap_err(), "not text at 4: 0x00");
        assert_eq!(lines(b"12\n\xff\xfe").unwrap_err(), "not text at 3: 0xff");
        assert_eq!(lines(b"a\x7f").unwrap_err(), "not text at 1: 0x7f");
        // A multi-byte character cut by a read is not an error.
        assert_eq!(lines("ééééé\n".as_bytes()).unwrap().len(), 1);
    }

    #[test]
    fn a_line_is_at_most_max_line_bytes() {
        let mut ok = vec![b'a'; MAX_LINE];
        ok.push(b'\n');
        assert_eq!(lines(&ok).unwrap().len(), 1);
        let long = vec![b'a'; MAX_LINE + 1];
        assert_eq!(lines(&long).unwrap_err(), "too long at 0");
    }

    #[test]
    fn reads_start_at_the_first_size_and_double() {
        let data = vec![b'7'; 1 << 20];
        let mut c = Counting(&data, 0);
        let mut input = Input::new(&mut c, 24);
        assert_eq!(input.take(24).unwrap().len(), 24);
        drop(input);
        assert_eq!(c.1, 24, "the first read is the first record");

        // A binary input read as text: one small read, then the error.
        let zeros = vec![0u8; 1 << 20];
        let mut c = Counting(&zeros, 0);
        let mut input = Input::new(&mut c, FIRST_TEXT_READ);
        assert!(matches!(
            input.line(),
            Err(LineError::NotText { at: 0, byte: 0, .. })
        ));
        drop(input);
        assert_eq!(c.1, FIRST_TEXT_READ);

        // Reading it all never holds more than a read and a record.
        let mut input = Input::new(&data[..], 24);
        let mut total = 0;
        loop {
            let n = input.take(24).unwrap().len();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, data.len());
        assert!(input.buf.len() <= MAX_READ + 24, "{}", input.buf.len());
    }
}
