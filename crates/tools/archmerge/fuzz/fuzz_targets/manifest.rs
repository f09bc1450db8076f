//! Build-manifest parsing never panics; what parses keeps its invariant and
//! renders back to the same entries.
#![no_main]

use klab_archmerge::{Arch, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::parse(Arch::X32, data, std::path::Path::new("fuzz")) {
        m.assert_invariants();
        let again = Manifest::parse_str(Arch::X32, &m.render()).expect("rendered manifests parse");
        assert_eq!(again.entries, m.entries);
    }
});
