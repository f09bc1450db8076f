//! Errors, one enum per family of fallible operation.
//!
//! Messages are lowercase and name what was wrong and where: the repository
//! path, the revision as typed, the employer-map file and line.

use std::path::PathBuf;

/// Why a repository could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum DevstatsError {
    /// The path is not a git repository (or cannot be opened as one).
    #[error("{path}: not a git repository: {message}")]
    NotARepository {
        /// The path given.
        path: PathBuf,
        /// What gix reported.
        message: String,
    },
    /// A revision or range did not resolve.
    #[error("unknown revision or range {spec:?}: {message}")]
    Revision {
        /// The revision as typed (`v1..v2`, `HEAD`).
        spec: String,
        /// What went wrong.
        message: String,
    },
    /// A `--since`/`--until` date could not be parsed.
    #[error("cannot parse date {input:?}: {message}")]
    Date {
        /// The date as typed.
        input: String,
        /// What was expected.
        message: String,
    },
    /// An object the walk needed is missing or corrupt.
    #[error("object {id}: {message}")]
    Object {
        /// The object id (hex).
        id: String,
        /// What went wrong.
        message: String,
    },
    /// The employer map could not be read or parsed.
    #[error(transparent)]
    EmployerMap(#[from] EmployerMapError),
    /// Writing an output file failed.
    #[error("cannot write {path}: {source}")]
    Output {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl DevstatsError {
    #[cfg(feature = "git")]
    pub(crate) fn object(id: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        DevstatsError::Object {
            id: id.to_string(),
            message: e.to_string(),
        }
    }
}

/// A malformed employer map (gitdm's `EmailMap` format).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct EmployerMapError {
    /// The file (or `<memory>` for text parsed from a string).
    pub path: PathBuf,
    /// 1-based line number; 0 when the file could not be read at all.
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

/// A line that names a trailer devstats counts (`Signed-off-by:` and
/// friends) but whose value is not `Name <email>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} trailer: {message}")]
pub struct TrailerError {
    /// The trailer key as written.
    pub key: String,
    /// What was expected.
    pub message: &'static str,
}
