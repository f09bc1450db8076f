//! The `memory.stat` parser on arbitrary text: an error naming a line, or
//! counters that print back to text the parser reads the same way; never a
//! panic.
#![no_main]

use std::path::Path;

use klab_fidelity::MemcgStat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("memory.stat");
    match MemcgStat::parse(path, text) {
        Ok(s) => {
            let printed: String = s.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            assert_eq!(MemcgStat::parse(path, &printed).unwrap(), s);
        }
        Err(e) => assert!(e.to_string().starts_with("memory.stat: line ")),
    }
});
