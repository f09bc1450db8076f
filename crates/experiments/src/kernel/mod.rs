//! The core kernel: workqueues and their threads, suspend and hibernation.

pub mod lazy_workqueue;
pub mod suspend;
pub mod too_many_threads;
