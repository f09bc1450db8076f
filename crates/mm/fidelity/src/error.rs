//! Why a host run failed.

use std::io;
use std::path::PathBuf;

/// What went wrong in a host run. Every variant that involves a file names
/// it; the run's cgroup and files are gone by the time the error is seen.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The host cannot run the workload for real (no cgroup v1 memory
    /// controller, not root, no `cachestat(2)`); the reason says which.
    #[error("host run not possible: {0}")]
    Unavailable(String),
    /// A cgroup control file or directory operation failed.
    #[error("{}: {op}: {source}", path.display())]
    Cgroup {
        /// The cgroup directory or control file.
        path: PathBuf,
        /// What was being done (`mkdir`, `write 16777216`, `read`).
        op: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// A control file's contents were not what the kernel writes.
    #[error("{}: line {line}: {message}", path.display())]
    Parse {
        /// The control file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// Creating, writing or dropping the data files failed.
    #[error("{}: {op}: {source}", path.display())]
    Files {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: String,
        /// The error.
        source: io::Error,
    },
    /// The worker process could not be started or failed an access.
    #[error("worker: {0}")]
    Worker(io::Error),
    /// The pattern is not valid for the files it names.
    #[error("pattern: {0}")]
    Pattern(String),
}

impl HostError {
    pub(crate) fn cgroup(
        path: impl Into<PathBuf>,
        op: impl Into<String>,
        source: io::Error,
    ) -> Self {
        HostError::Cgroup {
            path: path.into(),
            op: op.into(),
            source,
        }
    }

    pub(crate) fn files(
        path: impl Into<PathBuf>,
        op: impl Into<String>,
        source: io::Error,
    ) -> Self {
        HostError::Files {
            path: path.into(),
            op: op.into(),
            source,
        }
    }
}
