//! Fuzzes the repair-image parser: any bytes either parse into an image
//! that satisfies its invariants and serializes back to the same bytes,
//! or are rejected with an error; never a panic.
#![no_main]

use klab_tcp_repair::Image;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = Image::parse(data) {
        for c in &img.conns {
            assert!(c.check().is_ok());
        }
        let again = img.to_bytes().expect("a parsed image serializes");
        assert_eq!(again, data, "parse and serialize round-trip");
    }
});
