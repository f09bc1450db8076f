//! Bad input is refused before it costs anything, and nothing is mistaken
//! for data: every reader judges a file by its header or first record
//! before reading more, and a file with no request is an error.

use std::io::Read;
use std::path::{Path, PathBuf};

use klab_trace::{ErrorKind, FIRST_TEXT_READ, Format, Reader, Request};
use proptest::prelude::*;

/// Counts the bytes read through it.
struct Counting<R>(R, u64);

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
}

/// Hands out at most `max` bytes per read, as a pipe may.
struct Trickle<'a>(&'a [u8], usize);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.1);
        self.0.read(&mut buf[..n])
    }
}

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/data/traces")
        .join(name)
}

#[test]
fn a_2gib_file_of_zeros_is_refused_by_every_reader_after_its_first_record() {
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().set_len(2 << 30).unwrap();
    for format in Format::ALL {
        let mut c = Counting(std::fs::File::open(f.path()).unwrap(), 0);
        let e = match Reader::new(&mut c, format, Path::new("zeros")) {
            Ok(_) => panic!("{format:?}: 2 GiB of zeros accepted"),
            Err(e) => e,
        };
        let (limit, want) = match format {
            Format::OracleGeneral => (24, "record 0 at offset 0: obj_size field is 0"),
            Format::Vscsi => (40, "record 0 at offset 0: ver field"),
            Format::Csv | Format::Txt | Format::Klab => (
                FIRST_TEXT_READ as u64,
                "line 1 (offset 0): byte 0x00 at offset 0 is not text",
            ),
        };
        assert!(
            e.to_string().starts_with(&format!("zeros: {want}")),
            "{format:?}: {e}"
        );
        assert!(c.1 <= limit, "{format:?}: {} bytes read", c.1);
    }
}

#[test]
fn an_empty_trace_is_an_error_in_every_format() {
    let f = tempfile::NamedTempFile::new().unwrap();
    for format in Format::ALL {
        let e = klab_trace::read(f.path(), Some(format)).unwrap_err();
        assert_eq!(e.path, f.path(), "{format:?}");
        if format == Format::Klab {
            assert!(e.to_string().contains("found an empty file"), "{e}");
        } else {
            assert_eq!(e.kind, ErrorKind::Empty, "{format:?}");
        }
    }
}

#[test]
fn a_trace_without_a_request_is_an_error() {
    for (bytes, format) in [
        (&b"time,lbn,size\n"[..], Format::Csv),
        (b"klab-trace v1\n# time file obj size op\n\n", Format::Klab),
        (b"\n  \n\r\n", Format::Txt),
    ] {
        let e = klab_trace::parse(bytes, format, Path::new("t")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::NoRequests, "{format:?}");
        assert_eq!(
            e.to_string(),
            "t: no request in the file; expected at least one"
        );
    }
}

#[test]
fn a_binary_file_read_as_text_is_refused_at_its_first_line() {
    let bin = shared("cloudPhysicsIO.oracleGeneral.bin");
    for format in [Format::Txt, Format::Csv, Format::Klab] {
        let e = klab_trace::read(&bin, Some(format)).unwrap_err();
        let at = e.at.expect("a location");
        assert_eq!((at.record, at.is_line), (1, true), "{format:?}: {e}");
        assert!(
            matches!(e.kind, ErrorKind::NotText { .. }),
            "{format:?}: {e}"
        );
    }
    // Text after the first line is held to the same rule.
    let e = klab_trace::parse(b"1\n2\n3\x01\n", Format::Txt, Path::new("t")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "t: line 3 (offset 4): byte 0x01 at offset 5 is not text (a control character or invalid UTF-8); expected a text trace"
    );
}

#[test]
fn a_reader_streams_the_shared_trace_as_read_does() {
    for name in [
        "cloudPhysicsIO.oracleGeneral.bin",
        "cloudPhysicsIO.vscsi",
        "cloudPhysicsIO.csv",
        "cloudPhysicsIO.txt",
    ] {
        let path = shared(name);
        let whole = klab_trace::read(&path, None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let format = Format::from_path(&path).unwrap();
        // Odd-sized reads cut records and lines everywhere.
        let streamed: Vec<Request> = Reader::new(Trickle(&bytes, 4093), format, &path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(streamed, whole, "{name}");
    }
}

fn request() -> impl Strategy<Value = Request> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        1u32..,
        prop_oneof![
            Just(klab_trace::Op::Read),
            Just(klab_trace::Op::Write),
            Just(klab_trace::Op::Unknown)
        ],
    )
        .prop_map(|(time, file, obj_id, size, op)| Request {
            time,
            obj_id,
            size,
            op,
            file,
            next_access: None,
        })
}

proptest! {
    #[test]
    fn any_read_size_gives_the_same_requests(
        reqs in proptest::collection::vec(request(), 1..60),
        max in 1usize..100,
    ) {
        let text = klab_trace::klab::write(&reqs);
        let streamed: Vec<Request> =
            Reader::new(Trickle(text.as_bytes(), max), Format::Klab, Path::new("t"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        prop_assert_eq!(&streamed, &reqs);
        let all = Reader::new(Trickle(text.as_bytes(), max), Format::Klab, Path::new("t"))
            .unwrap()
            .read_all()
            .unwrap();
        prop_assert_eq!(&all, &reqs);
        prop_assert_eq!(klab_trace::parse(text.as_bytes(), Format::Klab, Path::new("t")).unwrap(), reqs);
    }

    #[test]
    fn any_read_size_finds_the_same_fault(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        max in 1usize..50,
    ) {
        for format in Format::ALL {
            let whole = klab_trace::parse(&bytes, format, Path::new("t"));
            // The iterator, a request at a time; read_all, a buffer at a
            // time; reads of any size.
            let streamed = Reader::new(Trickle(&bytes, max), format, Path::new("t"))
                .and_then(|r| r.collect::<Result<Vec<_>, _>>());
            prop_assert_eq!(&streamed, &whole);
            let all = Reader::new(Trickle(&bytes, max), format, Path::new("t"))
                .and_then(Reader::read_all);
            prop_assert_eq!(all, whole);
        }
    }

    #[test]
    fn text_with_faults_is_judged_alike_whatever_the_reads(
        body in proptest::collection::vec(
            prop_oneof![
                20 => proptest::sample::select(b"0123456789".to_vec()),
                4 => Just(b'\n'),
                2 => proptest::sample::select(b", \t\rrw-#x".to_vec()),
                1 => proptest::sample::select(vec![0u8, 0x01, 0x7f, 0xff, 0xc3, 0xa9, 0x80]),
            ],
            0..400,
        ),
        max in 1usize..64,
    ) {
        for (format, header) in [
            (Format::Csv, &b"time,lbn,size,op\n"[..]),
            (Format::Klab, b"klab-trace v1\n"),
            (Format::Txt, b""),
        ] {
            let mut bytes = header.to_vec();
            bytes.extend_from_slice(&body);
            let whole = klab_trace::parse(&bytes, format, Path::new("t"));
            let streamed = Reader::new(Trickle(&bytes, max), format, Path::new("t"))
                .and_then(|r| r.collect::<Result<Vec<_>, _>>());
            prop_assert_eq!(&streamed, &whole);
            let all = Reader::new(Trickle(&bytes, max), format, Path::new("t"))
                .and_then(Reader::read_all);
            prop_assert_eq!(all, whole);
        }
    }
}
