//! The atomics klab-slab uses, in one place, so a model checker's
//! versions (loom) can be swapped in without touching the allocator code.

pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
