//! Development statistics from git history, counted the way LWN's "who
//! wrote this kernel" articles count them (seed 001, "Development
//! statistics for 2.6.31": changesets, developers, lines added and
//! removed, employers, non-author signoffs).
//!
//! Mirrors gitdm, the "git data miner" (Jonathan Corbet; `gitdm`,
//! `database.py`, `ConfigFile.py`, `patterns.py`, `reports.py`), on top of
//! git's own numbers, so that every count can be checked against git:
//!
//! ```text
//!  repository, range ─▶ walk.rs     non-merge commits     = git rev-list --no-merges
//!                       numstat.rs  lines per file        = git log --numstat
//!                         ├ rename.rs  diffcore-rename.c / diffcore-delta.c
//!                         └ xdiff.rs   xdiff Myers (xprepare.c, xdiffi.c)
//!                       mailmap     developer names       = git shortlog -sn
//!                       trailer.rs  Signed-off-by & co    (gitdm's patterns)
//!  employer map ─────▶ employers.rs address/domain → employer, dated (gitdm EmailMap)
//!                       stats.rs    gitdm's counting rules
//!                       output.rs   the page's tables: text, JSON, CSV
//! ```
//!
//! Real work: everything here reads a real repository on disk through
//! gix; nothing is modelled. The `git` feature (on by default) gates gix:
//! without it the parsers, the counting rules and the output build alone
//! (the fuzz targets use that). [`synth`] writes deterministic synthetic
//! histories for tests and experiments.
#![forbid(unsafe_code)]

pub mod date;
pub mod employers;
pub mod error;
#[cfg(feature = "git")]
pub mod numstat;
#[cfg(feature = "git")]
pub mod objects;
pub mod output;
pub mod record;
pub mod rename;
#[cfg(feature = "git")]
pub mod revlist;
pub mod stats;
#[cfg(feature = "git")]
pub mod synth;
pub mod trailer;
#[cfg(feature = "git")]
pub mod walk;
pub mod xdiff;

#[cfg(feature = "git")]
use std::path::Path;

pub use employers::EmployerMap;
pub use error::{DevstatsError, EmployerMapError, TrailerError};
pub use output::Report;
pub use record::{CommitRecord, Person};
pub use stats::{ChangedLines, Stats};
#[cfg(feature = "git")]
pub use walk::{NoProgress, Progress, Selection};

/// The result of walking a range.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The range, as shown in reports.
    pub range: String,
    /// One record per non-merge changeset, in walk order.
    pub records: Vec<CommitRecord>,
    /// Commits whose rename detection hit `diff.renameLimit`.
    pub rename_limit_hits: u64,
}

impl Analysis {
    /// Counts the records with an employer map (developers' changed
    /// lines by the default rule).
    pub fn stats(&self, map: &EmployerMap) -> Stats {
        Stats::from_records(&self.records, map)
    }

    /// The full report (every row; `hands_up_to` rows of the top-employers
    /// share).
    pub fn report(&self, map: &EmployerMap, hands_up_to: usize) -> Report {
        Report::new(
            &self.stats(map),
            &self.range,
            hands_up_to,
            self.rename_limit_hits,
        )
    }
}

#[cfg(feature = "git")]
/// Walks `sel` in the repository at `path` on `threads` threads.
pub fn analyse(
    path: &Path,
    sel: &Selection,
    threads: usize,
    progress: &dyn Progress,
) -> Result<Analysis, DevstatsError> {
    let repo = walk::open(path)?;
    let ids = walk::commits(&repo, sel)?;
    let (records, rename_limit_hits) = walk::analyse(&repo, &ids, threads, false, progress)?;
    let mut range = sel.range.clone().unwrap_or_else(|| "HEAD".to_owned());
    if let Some(s) = sel.since {
        range.push_str(&format!(" since @{s}"));
    }
    if let Some(u) = sel.until {
        range.push_str(&format!(" until @{u}"));
    }
    Ok(Analysis {
        range,
        records,
        rename_limit_hits,
    })
}
