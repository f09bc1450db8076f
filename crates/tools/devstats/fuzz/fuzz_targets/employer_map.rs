//! Employer-map parsing never panics; a parsed map keeps its invariant and
//! answers lookups.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(map) = klab_devstats::EmployerMap::parse_bytes(data, std::path::Path::new("fuzz")) {
        map.assert_invariants();
        let day = klab_devstats::date::Date::from_git_time(1_250_000_000, 0);
        let _ = map.lookup("someone@example.com", day);
    }
});
