//! Compressed traces: a file is read through a zstd decoder when it starts
//! with zstd's frame magic (`28 B5 2F FD`), whatever its name, and a file
//! named `*.zst` must start with it. Decompression streams: the decoder
//! holds one window (at most 8 MiB for the levels `zstd` writes by
//! default, 128 MiB at most for any frame this reader accepts), never the
//! whole file.

use std::io::{self, Chain, Cursor, Read};
use std::path::Path;

/// zstd's frame magic number, as it appears in the file (little-endian
/// 0xFD2FB528).
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The largest decompression window accepted: 2^27 bytes (128 MiB), the
/// limit zstd itself applies unless told otherwise (`--long` frames go up
/// to 2^27 too). A frame asking for more is refused, so a small file
/// cannot make the reader allocate gigabytes.
pub const MAX_WINDOW_LOG: u32 = 27;

/// The bytes already read to judge the input, then the rest of it.
type Prefixed<R> = Chain<Cursor<Vec<u8>>, R>;

/// A trace's bytes: as stored, or decompressed.
pub enum Source<R: Read> {
    /// An uncompressed input.
    Plain(Prefixed<R>),
    /// A zstd-compressed input, decompressed as it is read.
    Zstd(Box<zstd::stream::read::Decoder<'static, io::BufReader<Prefixed<R>>>>),
}

impl<R: Read> Source<R> {
    /// Reads the first four bytes of `r` and decompresses what follows
    /// when they are zstd's magic.
    ///
    /// # Errors
    /// A read that fails, or a decoder that cannot be set up.
    pub fn new(mut r: R) -> io::Result<Self> {
        let mut head = Vec::with_capacity(ZSTD_MAGIC.len());
        (&mut r)
            .take(ZSTD_MAGIC.len() as u64)
            .read_to_end(&mut head)?;
        let zstd = head == ZSTD_MAGIC;
        let rest = Cursor::new(head).chain(r);
        if zstd {
            let mut d = zstd::stream::read::Decoder::new(rest)?;
            d.window_log_max(MAX_WINDOW_LOG)?;
            Ok(Source::Zstd(Box::new(d)))
        } else {
            Ok(Source::Plain(rest))
        }
    }

    /// True when the input is decompressed.
    pub fn is_compressed(&self) -> bool {
        matches!(self, Source::Zstd(_))
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Zstd(d) => d.read(buf),
        }
    }
}

/// True when the file's name ends in `.zst`.
pub(crate) fn named_zst(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".zst"))
}
