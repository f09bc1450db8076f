//! The atomics klab-slab uses, in one place, so a model checker's
//! versions (loom) can be swapped in without touching the allocator code.

pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU8, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
