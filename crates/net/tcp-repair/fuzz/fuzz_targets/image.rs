//! Fuzzes the repair-image parser: any bytes either parse into an image
//! that satisfies its invariants and serializes back to the same bytes,
//! or are rejected with an error; never a panic.
//!
//! A mutated image almost never keeps its CRC-32, so the input is tried
//! twice: as a whole image, and as the body of an image (the connection
//! count and the records) that is given a valid magic, version and CRC, so
//! that the record parser and its invariant checks see the fuzzer's bytes.
//! An input that is itself a whole image (a seed) gives its own body.
#![no_main]

use klab_tcp_repair::Image;
use klab_tcp_repair::image::{MAGIC, VERSION};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    if let Ok(img) = Image::parse(bytes) {
        for c in &img.conns {
            assert!(c.check().is_ok());
        }
        let again = img.to_bytes().expect("a parsed image serializes");
        assert_eq!(again, bytes, "parse and serialize round-trip");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    let header_len = MAGIC.len() + 2;
    let body = match data.strip_prefix(&MAGIC[..]) {
        Some(rest) if rest.len() >= 2 + 4 => &rest[2..rest.len() - 4],
        _ => data,
    };
    let mut forged = Vec::with_capacity(header_len + body.len() + 4);
    forged.extend_from_slice(MAGIC);
    forged.extend_from_slice(&VERSION.to_le_bytes());
    forged.extend_from_slice(body);
    let crc = crc32fast::hash(&forged);
    forged.extend_from_slice(&crc.to_le_bytes());
    check(&forged);
});
