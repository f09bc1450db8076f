//! [`Reader`]: a trace read as a stream of requests from any `io::Read`.
//!
//! Making a reader reads and checks the file's header (csv, klab) or its
//! first record (oracleGeneral, vscsi: the version is told from it) and its
//! first request, and nothing more: a file that is not the trace it claims
//! to be is refused after at most one record (binary) or
//! [`FIRST_TEXT_READ`](crate::FIRST_TEXT_READ) bytes (text, when its first
//! byte is not text), and a file with no request is refused. Iterating
//! reads the rest with reads that grow to [`MAX_READ`](crate::MAX_READ),
//! so memory held does not depend on the file's size.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::binary::{OracleRecord, VscsiRecord, VscsiVersion};
use crate::input::{FIRST_TEXT_READ, Input, LineError, MAX_LINE};
use crate::text::Columns;
use crate::{ErrorKind, Format, Request, TraceError, klab, text};

enum Decoder {
    Oracle,
    Vscsi(VscsiVersion),
    Csv(Columns),
    Txt,
    Klab,
}

/// A trace read request by request.
///
/// ```
/// use std::path::Path;
/// use klab_trace::{Format, Reader};
///
/// let text: &[u8] = b"klab-trace v1\n0 0 7 4096 r\n1 0 8 4096 w\n";
/// let reqs: Vec<_> = Reader::new(text, Format::Klab, Path::new("t.ktr"))?
///     .collect::<Result<_, _>>()?;
/// assert_eq!(reqs.len(), 2);
/// # Ok::<(), klab_trace::TraceError>(())
/// ```
pub struct Reader<R> {
    input: Input<R>,
    name: PathBuf,
    decoder: Decoder,
    /// Requests decoded so far.
    count: u64,
    /// Binary records, or text lines, consumed so far.
    record: u64,
    /// The first request, read by `new`.
    first: Option<Request>,
    failed: bool,
    /// The input is a decompressed stream: offsets in errors are offsets
    /// in it, not in the file.
    decompressed: bool,
}

fn io_error(name: &Path, e: &io::Error) -> TraceError {
    TraceError::whole(name, ErrorKind::Io(e.to_string()))
}

impl<R: Read> Reader<R> {
    /// Reads the header or first record of a trace in `format`, and its
    /// first request. `name` is used in error messages (normally the file's
    /// path).
    ///
    /// # Errors
    /// A header or first record that the format does not allow, an empty
    /// file, or a file without a request.
    pub fn new(r: R, format: Format, name: &Path) -> Result<Self, TraceError> {
        Self::build(r, format, name, false)
    }

    /// [`Reader::new`] over a decompressed stream: the offsets its errors
    /// give are offsets in that stream ([`crate::Location::decompressed`]).
    ///
    /// # Errors
    /// As [`Reader::new`].
    pub fn new_decompressed(r: R, format: Format, name: &Path) -> Result<Self, TraceError> {
        Self::build(r, format, name, true)
    }

    fn build(r: R, format: Format, name: &Path, decompressed: bool) -> Result<Self, TraceError> {
        Self::build_inner(r, format, name, decompressed).map_err(|e| mark(e, decompressed))
    }

    fn build_inner(
        r: R,
        format: Format,
        name: &Path,
        decompressed: bool,
    ) -> Result<Self, TraceError> {
        let first_read = match format {
            Format::OracleGeneral => OracleRecord::LEN,
            Format::Vscsi => VscsiVersion::V1.record_len(),
            Format::Csv | Format::Txt | Format::Klab => FIRST_TEXT_READ,
        };
        let mut input = Input::new(r, first_read);
        let io = |e: io::Error| io_error(name, &e);
        let mut record = 0;
        let decoder = match format {
            Format::OracleGeneral => Decoder::Oracle,
            Format::Vscsi => {
                let v1 = VscsiVersion::V1.record_len();
                let v2 = VscsiVersion::V2.record_len();
                let mut version = VscsiVersion::detect(input.peek(v1).map_err(io)?);
                if version.is_none() {
                    let head = input.peek(v2).map_err(io)?;
                    if head.is_empty() {
                        return Err(TraceError::whole(name, ErrorKind::Empty));
                    }
                    version = VscsiVersion::detect(head);
                }
                let version = version.ok_or_else(|| {
                    TraceError::record(
                        name,
                        0,
                        0,
                        ErrorKind::Field {
                            field: "ver",
                            value: "neither 0x01xx at offset 14 nor 0x02xx at offset 2".into(),
                            expected: "a vscsi version 1 or 2 record",
                        },
                    )
                })?;
                Decoder::Vscsi(version)
            }
            Format::Csv | Format::Klab => {
                let header = match input.line() {
                    Ok(Some(l)) => l,
                    Ok(None) if format == Format::Klab => {
                        return Err(TraceError::line(
                            name,
                            1,
                            0,
                            ErrorKind::Syntax(format!(
                                "expected the header {:?}, found an empty file",
                                klab::MAGIC
                            )),
                        ));
                    }
                    Ok(None) => return Err(TraceError::whole(name, ErrorKind::Empty)),
                    Err(e) => return Err(line_error(name, 1, e)),
                };
                record = 1;
                let at = |k| TraceError::line(name, 1, header.offset, k);
                if format == Format::Klab {
                    klab::check_header(header.text).map_err(at)?;
                    Decoder::Klab
                } else {
                    Decoder::Csv(Columns::from_header(header.text).map_err(at)?)
                }
            }
            Format::Txt => Decoder::Txt,
        };
        let mut reader = Reader {
            input,
            name: name.to_owned(),
            decoder,
            count: 0,
            record,
            first: None,
            failed: false,
            decompressed,
        };
        match reader.next_request()? {
            Some(q) => reader.first = Some(q),
            None if reader.input.offset() == 0 => {
                return Err(TraceError::whole(name, ErrorKind::Empty));
            }
            None => return Err(TraceError::whole(name, ErrorKind::NoRequests)),
        }
        Ok(reader)
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    /// Every remaining request, in order; what `collect` gives, without
    /// passing each request through the iterator's `Option<Result<..>>`.
    ///
    /// # Errors
    /// The first fault.
    pub fn read_all(mut self) -> Result<Vec<Request>, TraceError> {
        let mut out = Vec::new();
        while self.read_into(&mut out)? {}
        Ok(out)
    }

    /// Appends the requests of the next buffer of input to `out` (at most
    /// [`MAX_READ`](crate::MAX_READ) bytes of records or whole lines, so a
    /// caller that empties `out` between calls holds a bounded batch);
    /// false once the trace has ended (nothing was appended). A batch may
    /// be empty while the trace goes on (a buffer of blank lines).
    ///
    /// This is the fast way through a trace: the decoder is chosen once
    /// per buffer, not once per request.
    ///
    /// # Errors
    /// The first fault; the reader then ends.
    pub fn read_into(&mut self, out: &mut Vec<Request>) -> Result<bool, TraceError> {
        if let Some(q) = self.first.take() {
            out.push(q);
            return Ok(true);
        }
        if self.failed {
            return Ok(false);
        }
        let r = self.batch(out);
        if r.is_err() {
            self.failed = true;
        }
        r.map_err(|e| self.mark(e))
    }

    fn batch(&mut self, out: &mut Vec<Request>) -> Result<bool, TraceError> {
        let binary = match &self.decoder {
            Decoder::Oracle => Some(OracleRecord::LEN),
            Decoder::Vscsi(v) => Some(v.record_len()),
            Decoder::Csv(_) | Decoder::Txt | Decoder::Klab => None,
        };
        let Some(len) = binary else {
            // Text a buffer of whole lines at a time; a line the block
            // check does not pass (a fault, or a line cut by the buffer)
            // goes through `next_request`, which names the fault.
            let block = (self.input.text_block()).map_err(|e| io_error(&self.name, &e))?;
            let Some((mut off, block)) = block else {
                return match self.next_request()? {
                    Some(q) => {
                        out.push(q);
                        Ok(true)
                    }
                    None => Ok(false),
                };
            };
            for raw in block.split_inclusive(|&b| b == b'\n') {
                let n = self.record + 1;
                let text = &raw[..raw.len() - 1];
                let text = text.strip_suffix(b"\r").unwrap_or(text);
                let q = match &self.decoder {
                    Decoder::Csv(cols) => cols.request(text, self.count),
                    Decoder::Klab => klab::request(text),
                    _ => Ok(text::txt_request(text, self.count)),
                }
                .map_err(|k| TraceError::line(&self.name, n, off, k))?;
                self.record = n;
                off += raw.len() as u64;
                if let Some(q) = q {
                    self.count += 1;
                    out.push(q);
                }
            }
            return Ok(true);
        };
        // Binary records a buffer at a time, the decoder chosen once.
        match self.decoder {
            Decoder::Vscsi(v) => self.binary_batch(out, len, |rec| {
                VscsiRecord::new_checked(rec, v).map(|r| r.request())
            }),
            _ => self.binary_batch(out, len, |rec| {
                OracleRecord::new_checked(rec).map(|r| r.request())
            }),
        }
    }

    fn binary_batch(
        &mut self,
        out: &mut Vec<Request>,
        len: usize,
        decode: impl Fn(&[u8]) -> Result<Request, ErrorKind>,
    ) -> Result<bool, TraceError> {
        let name = &self.name;
        let mut off = self.input.offset();
        let bytes = self
            .input
            .take_records(len)
            .map_err(|e| io_error(name, &e))?;
        if bytes.is_empty() {
            return Ok(false);
        }
        out.reserve(bytes.len().div_ceil(len));
        for rec in bytes.chunks(len) {
            let q = decode(rec).map_err(|k| TraceError::record(name, self.record, off, k))?;
            out.push(q);
            self.record += 1;
            self.count += 1;
            off += len as u64;
        }
        Ok(true)
    }

    /// Marks the offsets of an error as offsets of the decompressed stream
    /// when the input was decompressed.
    fn mark(&self, e: TraceError) -> TraceError {
        let mut e = mark(e, self.decompressed);
        if self.decompressed
            && e.at.is_none()
            && let ErrorKind::Io(msg) = &mut e.kind
        {
            // A corrupt frame: say how far decompression got.
            msg.push_str(&format!(
                " (after {} bytes of the decompressed stream)",
                self.input.offset()
            ));
        }
        e
    }

    fn next_request(&mut self) -> Result<Option<Request>, TraceError> {
        let name = &self.name;
        let binary = match &self.decoder {
            Decoder::Oracle => Some(OracleRecord::LEN),
            Decoder::Vscsi(v) => Some(v.record_len()),
            Decoder::Csv(_) | Decoder::Txt | Decoder::Klab => None,
        };
        if let Some(len) = binary {
            let off = self.input.offset();
            let bytes = self.input.take(len).map_err(|e| io_error(name, &e))?;
            if bytes.is_empty() {
                return Ok(None);
            }
            let at = |k| TraceError::record(name, self.record, off, k);
            let q = match &self.decoder {
                Decoder::Vscsi(v) => VscsiRecord::new_checked(bytes, *v).map(|r| r.request()),
                _ => OracleRecord::new_checked(bytes).map(|r| r.request()),
            }
            .map_err(at)?;
            self.record += 1;
            self.count += 1;
            return Ok(Some(q));
        }
        loop {
            let n = self.record + 1;
            let line = match self.input.line() {
                Ok(Some(l)) => l,
                Ok(None) => return Ok(None),
                Err(e) => return Err(line_error(name, n, e)),
            };
            self.record = n;
            let q = match &self.decoder {
                Decoder::Csv(cols) => cols.request(line.text, self.count),
                Decoder::Klab => klab::request(line.text),
                _ => Ok(text::txt_request(line.text, self.count)),
            }
            .map_err(|k| TraceError::line(name, n, line.offset, k))?;
            if let Some(q) = q {
                self.count += 1;
                return Ok(Some(q));
            }
        }
    }
}

fn mark(mut e: TraceError, decompressed: bool) -> TraceError {
    if decompressed && let Some(at) = &mut e.at {
        at.decompressed = true;
    }
    e
}

fn line_error(name: &Path, line: u64, e: LineError) -> TraceError {
    match e {
        LineError::Io(e) => io_error(name, &e),
        LineError::NotText {
            line_offset,
            at,
            byte,
        } => TraceError::line(name, line, line_offset, ErrorKind::NotText { at, byte }),
        LineError::TooLong { line_offset } => TraceError::line(
            name,
            line,
            line_offset,
            ErrorKind::LineTooLong { max: MAX_LINE },
        ),
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Request, TraceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(q) = self.first.take() {
            return Some(Ok(q));
        }
        if self.failed {
            return None;
        }
        match self.next_request() {
            Ok(Some(q)) => Some(Ok(q)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(self.mark(e)))
            }
        }
    }
}
