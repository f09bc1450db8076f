//! The hibernation image parser on arbitrary bytes: `parse` must refuse
//! damage with an error, never panic; and a section decoded as a machine
//! must pass or fail `Machine::check` without panicking. The checksum
//! would stop most mutations at offset 12, so the input is tried twice:
//! as an image, and as the body of an image whose header is made valid
//! (so the section parser and the CBOR decoder see the fuzzer's bytes).
#![no_main]

use klab_model::Machine;
use klab_model::hibernate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hibernate::parse(data);
    let mut forged = Vec::with_capacity(data.len() + hibernate::HEADER_LEN);
    forged.extend_from_slice(hibernate::MAGIC);
    forged.extend_from_slice(&hibernate::FORMAT_VERSION.to_le_bytes());
    forged.extend_from_slice(&1u16.to_le_bytes());
    forged.extend_from_slice(&crc32fast::hash(data).to_le_bytes());
    forged.extend_from_slice(&(data.len() as u64).to_le_bytes());
    forged.extend_from_slice(data);
    if let Ok(img) = hibernate::parse(&forged) {
        for s in &img.sections {
            if let Ok(m) = s.decode::<Machine>()
                && m.check().is_ok()
            {
                m.assert_invariants();
            }
        }
    }
});
