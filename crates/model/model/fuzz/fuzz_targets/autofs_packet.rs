//! `autofs_v5_packet` decoding of arbitrary bytes, as a 32- and a 64-bit
//! process: never panics, and whatever decodes re-encodes to bytes that
//! decode to the same packet.
#![no_main]

use klab_model::fs::autofs::{Abi, NAME_MAX, V5Packet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for abi in [Abi::I386, Abi::X86_64] {
        if let Ok(p) = V5Packet::decode(data, abi) {
            assert!(p.name.len() <= NAME_MAX && !p.name.contains(&0));
            let bytes = p.encode(abi).expect("a decoded name fits");
            assert_eq!(V5Packet::decode(&bytes, abi).as_ref(), Ok(&p));
        }
    }
});
