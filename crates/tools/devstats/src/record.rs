//! What one changeset contributed: the record the walk produces and the
//! statistics consume. Plain data, no git library, so the counting rules
//! (stats.rs) and the parsers build without gix.

use crate::trailer::Trailer;

/// One line of `git log --numstat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// The path after the commit (or the deleted path).
    pub path: Vec<u8>,
    /// For a rename, the path before.
    pub old_path: Option<Vec<u8>>,
    /// Lines added (0 for binary).
    pub added: u64,
    /// Lines removed (0 for binary).
    pub removed: u64,
    /// git prints `-\t-` for this file.
    pub binary: bool,
}

/// A person as named in a commit, after the mailmap.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Person {
    /// The name.
    pub name: String,
    /// The address.
    pub email: String,
}

/// What one non-merge commit contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    /// The commit id, in hex.
    pub id: String,
    /// The author, after the mailmap.
    pub author: Person,
    /// Author time, seconds since the epoch.
    pub author_time: i64,
    /// Author time zone, seconds east of UTC.
    pub author_offset: i32,
    /// Committer time, seconds since the epoch.
    pub committer_time: i64,
    /// Lines added (numstat).
    pub added: u64,
    /// Lines removed (numstat).
    pub removed: u64,
    /// Files changed, with their own counts (kept only on request).
    pub files: Vec<FileStat>,
    /// `Signed-off-by:` and the other tags, people after the mailmap.
    pub tags: Vec<Trailer>,
    /// Tag lines that did not parse.
    pub malformed_tags: u32,
    /// Rename detection stopped at `diff.renameLimit` for this commit.
    pub rename_limit_hit: bool,
}
