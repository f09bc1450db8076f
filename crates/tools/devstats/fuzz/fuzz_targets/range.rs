//! devstats' revision ranges (`klab devstats REPO RANGE`) on arbitrary
//! text, against a small synthetic history: an error naming the range, or
//! non-merge commits of the repository, each once; never a panic.
//!
//! The history (24 changesets and their merges, `refs/heads/main`) is
//! written once per process under the temporary directory, in a directory
//! named for it, and reused by later runs.
#![no_main]

use std::collections::BTreeSet;
use std::path::PathBuf;

use klab_devstats::{DevstatsError, Selection, synth, walk};
use libfuzzer_sys::fuzz_target;

struct History {
    repo: gix::Repository,
    /// Every commit reachable from main, merges included.
    all: BTreeSet<gix::ObjectId>,
}

fn history() -> History {
    let dir = std::env::temp_dir().join("klab-devstats-fuzz-range-v1");
    if !dir.join("HEAD").exists() {
        let tmp: PathBuf =
            std::env::temp_dir().join(format!("klab-devstats-fuzz-range-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let cfg = synth::SynthConfig {
            commits: 24,
            developers: 6,
            employers: 3,
            subsystems: 3,
            ..Default::default()
        };
        synth::generate(
            &tmp,
            &cfg,
            &mut rand_pcg::Pcg64::new(0xcafe_f00d_d15e_a5e5, 0xa02b_dbf7_bb3c_0a7a),
        )
        .expect("the synthetic history is written");
        // Another process may have written it first: keep theirs.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let repo = walk::open(&dir).expect("the synthetic history opens");
    let head = repo
        .rev_parse_single("refs/heads/main")
        .expect("main exists")
        .detach();
    let all = repo
        .rev_walk([head])
        .all()
        .expect("main walks")
        .map(|info| info.expect("a commit of main").id)
        .collect();
    History { repo, all }
}

thread_local! {
    static HISTORY: History = history();
}

fuzz_target!(|data: &[u8]| {
    let Ok(range) = std::str::from_utf8(data) else {
        return;
    };
    HISTORY.with(|h| {
        let sel = Selection {
            range: Some(range.to_owned()),
            since: None,
            until: None,
        };
        match walk::commits(&h.repo, &sel) {
            Ok(ids) => {
                let mut seen = BTreeSet::new();
                for id in ids {
                    assert!(
                        h.all.contains(&id),
                        "{range:?} gave {id}, not in the history"
                    );
                    assert!(seen.insert(id), "{range:?} gave {id} twice");
                    let parents = h
                        .repo
                        .find_commit(id)
                        .expect("a commit")
                        .parent_ids()
                        .count();
                    assert!(parents <= 1, "{range:?} gave the merge {id}");
                }
            }
            Err(DevstatsError::Revision { spec, .. }) => assert_eq!(spec, range),
            Err(e) => panic!("{range:?}: not a revision error: {e}"),
        }
    });
});
