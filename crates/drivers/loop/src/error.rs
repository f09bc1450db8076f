//! Why a loop-device run failed.

use std::io;
use std::path::PathBuf;

/// What went wrong. Every variant that involves a file or a device names
/// it; by the time the error is seen the device is detached and the run's
/// cgroup and files are gone.
#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    /// The host cannot run it for real (not root, no loop driver, no
    /// cgroup v1 memory controller, no `cachestat(2)`); says which.
    #[error("host run not possible: {0}")]
    Unavailable(String),
    /// A loop device operation failed.
    #[error("{}: {op}: {source}", path.display())]
    Device {
        /// `/dev/loop-control`, `/dev/loopN` or its sysfs directory.
        path: PathBuf,
        /// What was being done (`LOOP_CONFIGURE`, `open`, ...).
        op: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// The cgroup, the data files or the worker failed.
    #[error(transparent)]
    Host(#[from] klab_fidelity::HostError),
    /// The configuration cannot be run.
    #[error("configuration: {0}")]
    Config(String),
}

impl LoopError {
    pub(crate) fn device(
        path: impl Into<PathBuf>,
        op: impl Into<String>,
        source: io::Error,
    ) -> Self {
        LoopError::Device {
            path: path.into(),
            op: op.into(),
            source,
        }
    }
}
