//! klab's SLUB as this test program's own `#[global_allocator]`: threads
//! are created and joined over and over, free each other's blocks, and
//! exit owning slabs that other threads emptied, so their exit flush
//! unfreezes and discards slabs while everything the test harness and
//! the standard library allocate also comes from klab. With debug
//! assertions (the `ci` profile) any allocation from inside the
//! allocator while it holds a lock aborts with a message
//! (`klab_slab::reentry`); a watchdog turns a hang into a failure.
#![cfg(not(miri))] // Miri's page source allocates through the global allocator.

#[global_allocator]
static A: klab_slab::SlubAlloc = klab_slab::SlubAlloc;

#[path = "common/churn.rs"]
mod churn;

#[test]
fn threads_come_and_go_while_they_free_each_others_blocks() {
    churn::threads_come_and_go_while_they_free_each_others_blocks();
}
