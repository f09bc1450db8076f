//! The pcap/pcapng reader on arbitrary bytes: an error or packets that lie
//! inside the input, never a panic.
#![no_main]

use klab_lro::Capture;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Capture::parse(data) {
        let range = data.as_ptr_range();
        for p in &c.packets {
            let r = p.data.as_ptr_range();
            assert!(range.start <= r.start && r.end <= range.end);
        }
        let _ = c.link();
    }
});
