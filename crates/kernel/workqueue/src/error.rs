//! Errors.

/// Why a workqueue could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// Zero logical CPUs were asked for.
    #[error("workqueue {name}: a workqueue needs at least one CPU")]
    NoCpus {
        /// The workqueue's name.
        name: String,
    },
    /// The host refused a thread.
    #[error("workqueue {name}: cannot start the thread for CPU {cpu}: {source}")]
    Spawn {
        /// The workqueue's name.
        name: String,
        /// The CPU whose thread failed.
        cpu: usize,
        /// The host's error.
        #[source]
        source: std::io::Error,
    },
}
