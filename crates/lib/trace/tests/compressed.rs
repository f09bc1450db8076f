//! zstd-compressed traces read directly, as a stream: the same requests as
//! the plain file, errors that name the file and an offset of the
//! decompressed stream, and a bounded decoder.

use std::io::Read;
use std::path::{Path, PathBuf};

use klab_trace::{ErrorKind, Format, Request, Source, ZSTD_MAGIC};

fn shared(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/data/traces")
        .join(name)
}

fn compress(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

#[test]
fn every_shared_trace_reads_the_same_compressed() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "cloudPhysicsIO.oracleGeneral.bin",
        "cloudPhysicsIO.vscsi",
        "cloudPhysicsIO.csv",
        "cloudPhysicsIO.txt",
    ] {
        let plain = shared(name);
        let whole = klab_trace::read(&plain, None).unwrap();
        assert_eq!(whole.len(), 113_872, "{name}");
        let bytes = std::fs::read(&plain).unwrap();
        let z = compress(&bytes);
        assert_eq!(z[..4], ZSTD_MAGIC);
        assert!(z.len() < bytes.len(), "{name}: compressed to {}", z.len());
        // By extension: NAME.zst, the format from the name inside.
        let zst = dir.path().join(format!("{name}.zst"));
        std::fs::write(&zst, &z).unwrap();
        let got = klab_trace::read(&zst, None).unwrap();
        assert_eq!(got, whole, "{name}.zst");
        // By magic alone: a compressed file under the plain name.
        let hidden = dir.path().join(name);
        std::fs::write(&hidden, &z).unwrap();
        assert_eq!(klab_trace::read(&hidden, None).unwrap(), whole, "{name}");
        // In memory, and request by request.
        let format = Format::from_path(&plain).unwrap();
        assert_eq!(
            klab_trace::parse_maybe_compressed(&z, format, &zst).unwrap(),
            whole
        );
        let streamed: Vec<Request> = klab_trace::open(&zst, None)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(streamed, whole, "{name}: iterator");
    }
}

#[test]
fn a_fault_in_a_compressed_trace_names_the_file_and_the_decompressed_offset() {
    let dir = tempfile::tempdir().unwrap();
    // Line 3 starts at byte 16 of the decompressed text; its size is 0.
    let text = b"time,lbn,size\n1,2,3\n4,5,0\n";
    let path = dir.path().join("bad.csv.zst");
    std::fs::write(&path, compress(text)).unwrap();
    let e = klab_trace::read(&path, None).unwrap_err();
    let at = e.at.expect("a location");
    assert_eq!((at.record, at.offset, at.is_line), (3, 20, true), "{e}");
    assert!(at.decompressed);
    let plain = klab_trace::parse(text, Format::Csv, &path).unwrap_err();
    assert_eq!(plain.kind, e.kind);
    assert_eq!(
        e.to_string(),
        format!(
            "{}: line 3 (offset 20 of the decompressed stream): {}",
            path.display(),
            e.kind
        )
    );
    // The same fault in the plain file gives the file's offset, unmarked.
    assert!(!plain.at.unwrap().decompressed);
    assert!(!plain.to_string().contains("decompressed"), "{plain}");

    // A binary record: record 1 at offset 24 of the decompressed stream.
    let mut bin = std::fs::read(shared("cloudPhysicsIO.oracleGeneral.bin")).unwrap();
    bin.truncate(48);
    bin[24 + 12..24 + 16].copy_from_slice(&0u32.to_le_bytes());
    let path = dir.path().join("bad.oracleGeneral.bin.zst");
    std::fs::write(&path, compress(&bin)).unwrap();
    let e = klab_trace::read(&path, None).unwrap_err();
    assert!(
        e.to_string()
            .contains("record 1 at offset 24 of the decompressed stream: obj_size field is 0"),
        "{e}"
    );
}

#[test]
fn a_cut_or_corrupt_frame_is_an_error_naming_the_file_and_how_far_it_got() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(shared("cloudPhysicsIO.txt")).unwrap();
    let z = compress(&bytes);
    let cut = dir.path().join("cut.txt.zst");
    std::fs::write(&cut, &z[..z.len() / 2]).unwrap();
    let e = klab_trace::read(&cut, None).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Io(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.starts_with(&format!("{}: ", cut.display())), "{msg}");
    assert!(msg.contains("bytes of the decompressed stream)"), "{msg}");

    let mut bad = z.clone();
    for b in &mut bad[z.len() / 3..z.len() / 3 + 64] {
        *b ^= 0x5a;
    }
    let corrupt = dir.path().join("corrupt.txt.zst");
    std::fs::write(&corrupt, &bad).unwrap();
    let e = klab_trace::read(&corrupt, None).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}: ", corrupt.display())),
        "{e}"
    );
}

#[test]
fn a_file_named_zst_that_is_not_zstd_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.txt.zst");
    std::fs::write(&p, b"1\n2\n").unwrap();
    let e = klab_trace::read(&p, None).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotZstd);
    assert!(e.to_string().contains("28 B5 2F FD"), "{e}");
}

#[test]
fn a_frame_asking_for_a_window_over_the_limit_is_refused_before_allocating_it() {
    // A frame header for a 2^31-byte window (window descriptor byte: exponent
    // 21 -> 2^(10+21)), no content size; the decoder must refuse it.
    let mut frame = ZSTD_MAGIC.to_vec();
    frame.push(0x00); // frame header descriptor: no checksum, no dict, no size
    frame.push(21 << 3); // window descriptor
    frame.extend_from_slice(&[0x01, 0x00, 0x00]); // a raw last block of 0 bytes
    let mut s = Source::new(&frame[..]).unwrap();
    assert!(s.is_compressed());
    let mut out = Vec::new();
    let e = s.read_to_end(&mut out).unwrap_err();
    assert!(e.to_string().contains("too much memory"), "{e}");
}

#[test]
fn plain_bytes_pass_through_whatever_their_length() {
    for bytes in [&b""[..], b"1", b"12\n", b"1\n2\n3\n4\n5\n"] {
        let mut s = Source::new(bytes).unwrap();
        assert!(!s.is_compressed());
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out, bytes);
    }
}
