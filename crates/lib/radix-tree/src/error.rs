//! Errors, each carrying the errno the kernel returns for the same case.

use crate::entry::{Entry, VALUE_BITS};

/// `EEXIST`: the kernel's `radix_tree_insert()` returns `-EEXIST`.
pub const EEXIST: i32 = 17;
/// `ENOMEM`: `radix_tree_insert()` and `radix_tree_preload()` return `-ENOMEM`.
pub const ENOMEM: i32 = 12;
/// `ENOENT`: an operation on a missing entry (the kernel `BUG()`s in
/// `radix_tree_tag_set()`; klab reports it).
pub const ENOENT: i32 = 2;
/// `EINVAL`: a value entry's payload does not fit (`xa_mk_value()` warns).
pub const EINVAL: i32 = 22;

/// Why a radix tree operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// An entry is already present at `index` (`-EEXIST`).
    #[error("radix tree index {index}: an entry is already present (EEXIST)")]
    Exists {
        /// The index asked for.
        index: u64,
    },
    /// Not enough nodes: the allocator refused and the preload reserve was
    /// short (`-ENOMEM`).
    #[error("radix tree: {needed} nodes needed, {available} available (ENOMEM)")]
    NoMemory {
        /// Nodes the operation needed.
        needed: usize,
        /// Nodes the allocator and the preload reserve could give.
        available: usize,
    },
    /// No entry at `index`.
    #[error("radix tree index {index}: no entry (ENOENT)")]
    NotFound {
        /// The index asked for.
        index: u64,
    },
    /// A value entry's payload is over [`crate::VALUE_MAX`].
    #[error("radix tree value {value:#x} does not fit in {VALUE_BITS} bits (EINVAL)")]
    InvalidValue {
        /// The payload given.
        value: u64,
    },
}

impl Error {
    /// The kernel's errno for this error (positive; the kernel returns its
    /// negation).
    pub const fn errno(&self) -> i32 {
        match self {
            Error::Exists { .. } => EEXIST,
            Error::NoMemory { .. } => ENOMEM,
            Error::NotFound { .. } => ENOENT,
            Error::InvalidValue { .. } => EINVAL,
        }
    }
}

/// A failed insert or replace: the error and the entry, handed back so the
/// caller keeps ownership of its item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InsertError<T> {
    /// What went wrong.
    pub error: Error,
    /// The entry that was not stored.
    pub entry: Entry<T>,
}

impl<T> std::fmt::Display for InsertError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl<T: std::fmt::Debug> std::error::Error for InsertError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<T> From<InsertError<T>> for Error {
    fn from(e: InsertError<T>) -> Self {
        e.error
    }
}
