//! Memory management of the model: page frames, the page cache, LRU lists,
//! workingset detection and reclaim. Each file mirrors the kernel file of
//! the same name.
//!
//! * [`memory_failure`]: HWPOISON: the memory-failure handler and its
//!   action table, early and late kill, the injector.
//! * [`page`]: `struct page`: flags, owner, LRU links.
//! * [`page_alloc`]: frames per NUMA node and their free lists.
//! * [`lru`]: the four LRU lists of an `lruvec`.
//! * [`memcontrol`]: containers: resource counters, charging, limit
//!   reclaim, the container OOM killer, the v1 control files.
//! * [`memcg_stats`]: 6.x memory-cgroup statistics, flushed now and then.
//! * [`memcg_stock`]: 6.x per-CPU charge stock.
//! * [`swap`]: 6.x per-CPU LRU batches (mm/swap.c).
//! * [`direct_io`]: the loop device, buffered or with direct I/O.
//! * [`filemap`]: a file's page cache: a radix tree of pages and shadows.
//! * [`workingset`]: shadow entries, refault distance, the shadow-node LRU.
//! * [`slab`]: kernel objects (radix-tree nodes) from SLUB caches over
//!   the machine's frames.
//! * [`vmscan`]: reclaim of pages from the LRU lists.
//! * [`vmstat`]: the event counters.
//!
//! The machine ([`crate::machine`]) ties them together; the rules that
//! balance the lists come from `klab_mm_policy::LruBalance`.

pub mod direct_io;
pub mod filemap;
pub mod lru;
pub mod memcg_stats;
pub mod memcg_stock;
pub mod memcontrol;
pub mod memory_failure;
pub mod page;
pub mod page_alloc;
pub mod slab;
pub mod swap;
pub mod vmscan;
pub mod vmstat;
pub mod workingset;
