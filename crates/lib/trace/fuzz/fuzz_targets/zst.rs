//! The compressed input path (`Source`, `parse_maybe_compressed`) on
//! arbitrary bytes, two ways:
//!
//! * the bytes behind zstd's magic, as a corrupt or hostile frame: an
//!   error that names the file (or requests, when the bytes happen to
//!   decode), never a panic, a hang or an allocation past the window
//!   limit (`MAX_WINDOW_LOG`);
//! * the bytes compressed: exactly what the plain parser gives, requests
//!   or the same error at the same place, its offset marked as the
//!   decompressed stream's.
#![no_main]

use std::path::Path;

use klab_trace::{Format, ZSTD_MAGIC};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = Path::new("fuzz.zst");
    let mut framed = ZSTD_MAGIC.to_vec();
    framed.extend_from_slice(data);
    for format in Format::ALL {
        if let Err(e) = klab_trace::parse_maybe_compressed(&framed, format, name) {
            assert!(e.to_string().starts_with("fuzz.zst: "), "{e}");
        }
    }
    let z = zstd::encode_all(data, 1).expect("compressing in memory");
    for format in Format::ALL {
        let plain = klab_trace::parse(data, format, name);
        let unz = klab_trace::parse_maybe_compressed(&z, format, name);
        match (plain, unz) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{format:?}"),
            (Err(a), Err(b)) => {
                assert_eq!(a.kind, b.kind, "{format:?}");
                let (pa, pb) = (a.at, b.at);
                assert_eq!(
                    pa.map(|l| (l.record, l.offset)),
                    pb.map(|l| (l.record, l.offset))
                );
                if let Some(l) = pb {
                    assert!(l.decompressed, "{b}");
                }
            }
            (a, b) => panic!("{format:?}: plain {a:?}, compressed {b:?}"),
        }
    }
});
