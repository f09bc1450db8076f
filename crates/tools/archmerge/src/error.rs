//! Errors, one enum per family of operation.

use std::path::{Path, PathBuf};

/// Why a merge could not be planned, written or verified.
#[derive(Debug, thiserror::Error)]
pub enum ArchmergeError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An input tree is not a directory.
    #[error("{0}: not a directory")]
    NotADirectory(PathBuf),
    /// The output exists already.
    #[error("{0}: already exists; archmerge never overwrites an output")]
    OutputExists(PathBuf),
    /// An input uses the name archmerge keeps for its own files.
    #[error("{tree}: contains {name}, the name archmerge reserves for its manifests")]
    Reserved {
        /// The input tree.
        tree: PathBuf,
        /// The reserved name.
        name: &'static str,
    },
    /// A manifest did not parse.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

impl ArchmergeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ArchmergeError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// A malformed build manifest line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct ManifestError {
    /// The manifest file (`<memory>` for text).
    pub path: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What was expected.
    pub message: String,
}
