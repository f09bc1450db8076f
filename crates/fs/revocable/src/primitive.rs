//! The synchronisation primitives this crate uses, from `std`, or from
//! `loom` under `--cfg loom` so the model checker can explore every
//! interleaving of the active-reference protocol (crossbeam-utils'
//! `primitive` module does the same).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicI32, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicI32, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
