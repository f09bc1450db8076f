//! klab's `.ktr` trace format on arbitrary bytes: requests that the writer
//! prints back to a trace the parser reads the same way, or an error that
//! names the file and a line whose number and byte offset agree with the
//! input (or, for a file without a request, the whole file); never a panic.
#![no_main]

use std::path::Path;

use klab_trace::{ErrorKind, klab};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.ktr");
    match klab::parse(data, path) {
        Ok(reqs) => {
            for r in &reqs {
                assert!(r.size > 0);
                assert_eq!(r.next_access, None);
            }
            let text = klab::write(&reqs);
            assert_eq!(
                klab::parse(text.as_bytes(), path).expect("written traces parse"),
                reqs
            );
        }
        Err(e) if e.at.is_none() => {
            assert!(e.to_string().starts_with("fuzz.ktr: "), "{e}");
            assert!(
                matches!(e.kind, ErrorKind::Empty | ErrorKind::NoRequests),
                "only a file without a request is faulted as a whole: {e}"
            );
            let requests = data
                .split(|&b| b == b'\n')
                .skip(1)
                .filter(|l| {
                    let l = l.trim_ascii();
                    !l.is_empty() && !l.starts_with(b"#")
                })
                .count();
            assert_eq!(requests, 0, "{e}");
        }
        Err(e) => {
            assert!(e.to_string().starts_with("fuzz.ktr: line "), "{e}");
            let at = e.at.expect("checked above");
            assert!(at.is_line, "{e}");
            let offset = usize::try_from(at.offset).expect("offset fits");
            assert!(offset <= data.len(), "{e}");
            assert!(
                offset == 0 || data[offset - 1] == b'\n',
                "{e}: offset not at a line start"
            );
            let newlines = data[..offset].iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(newlines + 1, at.record, "{e}");
        }
    }
});
