//! Commit-message tag parsing never panics and yields only valid tags.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parsed = klab_devstats::trailer::parse_message(&text);
    for t in &parsed.tags {
        t.assert_invariants();
    }
});
