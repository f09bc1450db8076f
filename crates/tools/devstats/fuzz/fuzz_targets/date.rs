//! devstats' dates on arbitrary text: `Date::parse` (the employer map's
//! `< yyyy-mm-dd` and gitdm's dates), `parse_time` (`--since`/`--until`),
//! and the date suffix of an employer-map line. Never a panic; a parsed
//! date keeps its invariant, prints back to itself and agrees with the
//! day arithmetic; `parse_time` reads a plain date as its midnight UTC; a
//! map line is accepted exactly when its suffix is a date, and its entry
//! ends the day before that date (the end is exclusive).
#![no_main]

use std::path::Path;

use klab_devstats::EmployerMap;
use klab_devstats::date::{self, Date};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Date::parse(text.trim());
    if let Ok(d) = parsed {
        d.assert_invariants();
        assert_eq!(Date::parse(&d.to_string()), Ok(d));
        let days = d.days_since_epoch();
        assert_eq!(Date::from_git_time(days * 86_400, 0), d);
        assert_eq!(Date::from_git_time(days * 86_400 + 86_399, 0), d);
        assert!(Date::from_git_time(days * 86_400 - 1, 0) < d);
    }
    match date::parse_time(text) {
        Ok(t) => {
            if let Ok(d) = parsed {
                assert_eq!(t, d.days_since_epoch() * 86_400);
            }
        }
        Err(e) => assert!(parsed.is_err(), "{text:?}: {e}"),
    }

    // The text as the date suffix of an employer-map entry, followed by
    // an undated entry for the same address.
    if text.contains(['\n', '#']) {
        return;
    }
    let map = format!("who@example.com Old Corp < {text}\nwho@example.com New Corp\n");
    match EmployerMap::parse_bytes(map.as_bytes(), Path::new("fuzz")) {
        Ok(m) => {
            m.assert_invariants();
            let end = parsed.expect("the map accepts only a real date");
            let days = end.days_since_epoch();
            let before = Date::from_git_time((days - 1) * 86_400, 0);
            assert_eq!(m.lookup("who@example.com", before), "Old Corp");
            assert_eq!(m.lookup("Who@Example.com", end), "New Corp");
        }
        Err(e) => {
            assert!(parsed.is_err(), "{text:?}: {e}");
            assert_eq!(e.line, 1, "{e}");
        }
    }
});
