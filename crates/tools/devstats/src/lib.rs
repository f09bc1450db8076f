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
//!                       stats.rs    gitdm's counting rules (both eras' changed lines)
//!                       output.rs   the page's tables: text, JSON, CSV
//!  cache.rs: per-commit records by commit id (GIT_DIR/klab-devstats/), so
//!  a range seen before is answered without diffing it again
//! ```
//!
//! [`count`] streams: each record is counted as the walk hands it over and
//! dropped, so memory does not grow with the range (only the tables do).
//!
//! Real work: everything here reads a real repository on disk through
//! gix; nothing is modelled. The `git` feature (on by default) gates gix:
//! without it the parsers, the counting rules and the output build alone
//! (the fuzz targets use that). [`synth`] writes deterministic synthetic
//! histories for tests and experiments.
#![forbid(unsafe_code)]

pub mod cache;
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
use std::path::{Path, PathBuf};

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
/// Where [`count`] keeps its per-commit records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CacheLocation {
    /// No cache: every commit is diffed.
    Off,
    /// `klab-devstats/` in the repository's git directory (the common
    /// directory of a work tree).
    #[default]
    GitDir,
    /// A directory of the user's.
    Dir(PathBuf),
}

#[cfg(feature = "git")]
/// How [`count`] runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Threads diffing commits.
    pub threads: usize,
    /// Where records are cached.
    pub cache: CacheLocation,
    /// How developers' changed lines are counted.
    pub changed_lines: ChangedLines,
}

#[cfg(feature = "git")]
/// What [`count`] found.
#[derive(Debug, Clone)]
pub struct Counted {
    /// The range, as shown in reports.
    pub range: String,
    /// The tables.
    pub stats: Stats,
    /// Commits whose rename detection hit `diff.renameLimit`.
    pub rename_limit_hits: u64,
    /// The cache directory used, if any.
    pub cache_dir: Option<PathBuf>,
    /// What the record cache did (all zero without one).
    pub cache: cache::CacheCounts,
    /// What the commit-graph cache did.
    pub graph_cache: cache::CacheCounts,
    /// Things the user should know that did not stop the run (a cache that
    /// could not be opened or written, damage found in it).
    pub warnings: Vec<String>,
}

#[cfg(feature = "git")]
impl Counted {
    /// The full report (every row; `hands_up_to` rows of the top-employers
    /// share).
    pub fn report(&self, hands_up_to: usize) -> Report {
        Report::new(
            &self.stats,
            &self.range,
            hands_up_to,
            self.rename_limit_hits,
        )
    }
}

#[cfg(feature = "git")]
fn range_name(sel: &Selection) -> String {
    let mut range = sel.range.clone().unwrap_or_else(|| "HEAD".to_owned());
    if let Some(s) = sel.since {
        range.push_str(&format!(" since @{s}"));
    }
    if let Some(u) = sel.until {
        range.push_str(&format!(" until @{u}"));
    }
    range
}

#[cfg(feature = "git")]
/// Walks `sel` in the repository at `path` and counts it with `map`,
/// reusing and filling the record cache `opts` names. Records are counted
/// as they come and not kept. The cache never changes the result: a run
/// answered from it reports exactly what a run without it does.
pub fn count(
    path: &Path,
    sel: &Selection,
    map: &EmployerMap,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Counted, DevstatsError> {
    let repo = walk::open(path)?;
    let mut warnings = Vec::new();
    let dir = match &opts.cache {
        CacheLocation::Off => None,
        CacheLocation::GitDir => Some(repo.common_dir().join("klab-devstats")),
        CacheLocation::Dir(d) => Some(d.clone()),
    };
    let mut open = |key| match &dir {
        Some(d) => match cache::Cache::open(d, key) {
            Ok(c) => Some(c),
            Err(e) => {
                warnings.push(format!("{e}; counting without it"));
                None
            }
        },
        None => None,
    };
    let mut graph = open(walk::graph_key(&repo));
    let mut cache = graph.as_ref().and_then(|_| open(walk::cache_key(&repo)));
    let cache_dir = cache.as_ref().map(|c| c.dir().to_owned());
    let mut stats = Stats::new(opts.changed_lines);
    let walked = walk::stream_range(
        &repo,
        sel,
        graph.as_mut(),
        walk::WalkOptions {
            threads: opts.threads,
            keep_files: false,
            cache: cache.as_mut(),
        },
        progress,
        &mut |r| stats.add(&r, map),
    )?;
    let (mut counts, mut graph_counts) = Default::default();
    for mut c in [graph, cache].into_iter().flatten() {
        if let Err(e) = c.write() {
            warnings.push(format!("{e}; what was computed was not saved"));
        }
        for d in &c.counts.damage {
            warnings.push(format!("record cache: {d}; not used, recomputed"));
        }
        match c.key().kind {
            cache::SegmentKind::Records => counts = c.counts,
            cache::SegmentKind::Graph => graph_counts = c.counts,
        }
    }
    Ok(Counted {
        range: range_name(sel),
        stats,
        rename_limit_hits: walked.rename_limit_hits,
        cache_dir,
        cache: counts,
        graph_cache: graph_counts,
        warnings,
    })
}

#[cfg(feature = "git")]
/// Walks `sel` in the repository at `path` on `threads` threads, keeping
/// every record (no cache).
pub fn analyse(
    path: &Path,
    sel: &Selection,
    threads: usize,
    progress: &dyn Progress,
) -> Result<Analysis, DevstatsError> {
    let repo = walk::open(path)?;
    let ids = walk::commits(&repo, sel)?;
    let (records, rename_limit_hits) = walk::analyse(&repo, &ids, threads, false, progress)?;
    Ok(Analysis {
        range: range_name(sel),
        records,
        rename_limit_hits,
    })
}
