//! Every trace parser on arbitrary bytes: an error or requests that obey
//! the `Request` invariants, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in klab_trace::Format::ALL {
        if let Ok(reqs) = klab_trace::parse(data, format, Path::new("fuzz")) {
            for r in reqs {
                assert!(r.size > 0);
            }
        }
    }
});
