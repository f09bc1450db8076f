//! The memcg scenario parser (`klab run memcg --scenario FILE`) on
//! arbitrary text: a scenario that keeps every rule the parser promises
//! (at least one frame, step and task; unique task ids; containers after
//! their parents, with limits the kernel's syntax accepts; tasks in defined
//! containers; reserved and slab memory below the machine's), or an error
//! naming the file and a line of it; never a panic.
#![no_main]

use std::collections::BTreeSet;

use klab_experiments::mm::memcg::scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match scenario::parse(text, "fuzz.toml") {
        Ok(s) => {
            assert!(s.frames >= 1 && s.steps >= 1 && s.sample_every >= 1);
            assert!(s.reserved_pages + s.slab_pages < s.frames);
            let mut paths = BTreeSet::from(["/".to_owned()]);
            for c in &s.containers {
                let (parent, _) = c.path.rsplit_once('/').expect("a container path has a '/'");
                assert!(
                    paths.contains(if parent.is_empty() { "/" } else { parent }),
                    "{}",
                    c.path
                );
                assert!(paths.insert(c.path.clone()), "{} twice", c.path);
                assert!(klab_model::mm::memcontrol::parse_limit(&c.limit, 4096).is_ok());
            }
            assert!(!s.tasks.is_empty());
            let mut ids = BTreeSet::new();
            for t in &s.tasks {
                assert!(ids.insert(t.id), "task {} twice", t.id);
                assert!(paths.contains(&t.container), "{}", t.container);
                assert!(t.weight >= 1 && t.active.start < t.active.end);
            }
            if let Some(h) = &s.hwpoison {
                assert!((0.0..=1e6).contains(&h.rate_per_million));
                assert!(h.catch_sigbus.iter().all(|c| ids.contains(c)));
            }
        }
        Err(e) => {
            assert_eq!(e.file, "fuzz.toml");
            let lines = text.split('\n').count();
            assert!(
                (1..=lines).contains(&e.line),
                "line {} of {lines}: {e}",
                e.line
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("fuzz.toml: line {}: ", e.line))
            );
        }
    }
});
