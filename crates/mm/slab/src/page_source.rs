//! Where page frames come from: the [`PageSource`] trait and its three
//! implementations.
//!
//! A page source hands out *regions*: runs of whole sections
//! ([`SECTION_SIZE`] bytes each), aligned to the section size. The page
//! allocator ([`crate::page_alloc`]) carves frames out of them and keeps the
//! memory map in each section's first frames; large allocations take a
//! region of their own.
//!
//! * [`HostPages`]: anonymous `mmap` of the host, one NUMA node. Real memory,
//!   returned to the kernel with `munmap`.
//! * [`HeapPages`]: the Rust global allocator (`std::alloc`) as a page
//!   source; used under Miri, which cannot `mmap`, and anywhere the host's
//!   page tables are not wanted.
//! * [`FramePool`]: a fixed, pre-allocated pool of frames split over NUMA
//!   nodes and handed out lowest address first, so the same sequence of
//!   requests always gets the same frame numbers. This is the source for the
//!   machine model: a model page allocator adopts it by implementing
//!   [`PageSource`] over its own frames, or uses a [`FramePool`] directly
//!   and reads frame numbers with [`FramePool::pfn`].

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::sync::Mutex;

use crate::page::{PAGE_SHIFT, SECTION_SIZE};

/// A source of page frames, in sections.
///
/// # Safety
/// An implementation must return from [`alloc_region`](Self::alloc_region)
/// either `None` or a pointer to `nr_sections * SECTION_SIZE` writable bytes
/// aligned to `SECTION_SIZE`, owned by the caller until it passes the same
/// pointer and count to [`free_region`](Self::free_region). Regions never
/// overlap.
pub unsafe trait PageSource: Send + Sync {
    /// Number of NUMA nodes (at least 1).
    fn nr_nodes(&self) -> usize {
        1
    }

    /// A region of `nr_sections` sections on `node` (or on another node if
    /// `node` has none left, as the page allocator's zonelist fallback
    /// would), or `None` when memory is exhausted.
    fn alloc_region(&self, nr_sections: usize, node: usize) -> Option<NonNull<u8>>;

    /// Gives a region back.
    ///
    /// # Safety
    /// `base` and `nr_sections` come from one earlier `alloc_region` call on
    /// this source, the region is freed once, and nothing uses it afterwards.
    unsafe fn free_region(&self, base: NonNull<u8>, nr_sections: usize);

    /// The node a region was allocated on (`alloc_region` may fall back).
    fn node_of(&self, _base: NonNull<u8>) -> usize {
        0
    }

    /// Whether any run of whole sections inside regions handed out may be
    /// passed to [`free_region`](Self::free_region) on its own (a part of
    /// a region, or adjacent regions as one), as `munmap` allows. The
    /// page allocator keeps freed large spans for reuse only over such a
    /// source ([`crate::spans`]).
    fn splits_regions(&self) -> bool {
        false
    }

    /// Discards the contents of sections the caller owns and keeps: the
    /// memory goes back to the host, the range stays valid and reads as
    /// zero bytes or as its old contents (`madvise(MADV_DONTNEED)`).
    /// Nothing by default.
    ///
    /// # Safety
    /// The sections lie in regions from this source that the caller owns
    /// and nothing reads their contents afterwards.
    unsafe fn discard(&self, _base: NonNull<u8>, _nr_sections: usize) {}
}

/// Anonymous memory from the host kernel (`mmap`), one node.
///
/// Regions are mapped with one extra section and trimmed to alignment;
/// freeing unmaps them, so the resident set shrinks when a section empties.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostPages;

// SAFETY: mmap returns fresh, private, writable mappings; alignment is
// established by trimming; each region is unmapped exactly once by the
// caller's contract.
unsafe impl PageSource for HostPages {
    fn alloc_region(&self, nr_sections: usize, _node: usize) -> Option<NonNull<u8>> {
        let len = nr_sections.checked_mul(SECTION_SIZE)?;
        let map_len = len.checked_add(SECTION_SIZE)?;
        // SAFETY: an anonymous private mapping at a kernel-chosen address
        // touches no existing memory.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            return None;
        }
        let start = raw.addr();
        let aligned = (start + SECTION_SIZE - 1) & !(SECTION_SIZE - 1);
        let head = aligned - start;
        let tail = map_len - head - len;
        // SAFETY: both trims lie inside the mapping just made and outside
        // the aligned region kept.
        unsafe {
            if head > 0 {
                libc::munmap(raw, head);
            }
            if tail > 0 {
                libc::munmap(raw.cast::<u8>().add(head + len).cast(), tail);
            }
        }
        // SAFETY: `aligned` lies in the mapping, which is not null.
        NonNull::new(unsafe { raw.cast::<u8>().add(head) })
    }

    unsafe fn free_region(&self, base: NonNull<u8>, nr_sections: usize) {
        // SAFETY: the caller passes a region this source mapped.
        unsafe {
            libc::munmap(base.as_ptr().cast(), nr_sections * SECTION_SIZE);
        }
    }

    fn splits_regions(&self) -> bool {
        true
    }

    unsafe fn discard(&self, base: NonNull<u8>, nr_sections: usize) {
        // SAFETY: the caller owns the sections and reads nothing of them
        // afterwards; MADV_DONTNEED on a private anonymous mapping drops
        // the pages and leaves zero-fill-on-demand ones.
        unsafe {
            libc::madvise(
                base.as_ptr().cast(),
                nr_sections * SECTION_SIZE,
                libc::MADV_DONTNEED,
            );
        }
    }
}

/// The system allocator (`std::alloc::System`, not the global allocator,
/// which may be klab's own) as a page source, one node; used under Miri.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeapPages;

// SAFETY: std::alloc returns fresh blocks of the requested layout, which
// asks for section alignment; dealloc uses the same layout.
unsafe impl PageSource for HeapPages {
    fn alloc_region(&self, nr_sections: usize, _node: usize) -> Option<NonNull<u8>> {
        let layout = Layout::from_size_align(nr_sections * SECTION_SIZE, SECTION_SIZE).ok()?;
        // SAFETY: the layout has non-zero size.
        NonNull::new(unsafe { System.alloc(layout) })
    }

    unsafe fn free_region(&self, base: NonNull<u8>, nr_sections: usize) {
        let layout = Layout::from_size_align(nr_sections * SECTION_SIZE, SECTION_SIZE)
            .expect("layout was valid at allocation");
        // SAFETY: same pointer and layout as the allocation.
        unsafe { System.dealloc(base.as_ptr(), layout) }
    }
}

/// The page source used by default on this build: [`HostPages`], or
/// [`HeapPages`] under Miri.
#[cfg(not(miri))]
pub type DefaultPages = HostPages;
/// The page source used by default on this build: [`HostPages`], or
/// [`HeapPages`] under Miri.
#[cfg(miri)]
pub type DefaultPages = HeapPages;

/// A fixed pool of page frames over `nodes` NUMA nodes, handed out lowest
/// address first within the requested node: deterministic frame numbers.
///
/// ```
/// use klab_slab::{FramePool, PageSource};
/// let pool = FramePool::new(2, 4);
/// let a = pool.alloc_region(1, 1).unwrap();
/// assert_eq!(pool.node_of(a), 1);
/// assert_eq!(pool.pfn(a.as_ptr()), 4 * 512); // first section of node 1
/// ```
pub struct FramePool {
    base: NonNull<u8>,
    nodes: usize,
    sections_per_node: usize,
    /// `used[s]`: section `s` is handed out. Guarded by the mutex.
    used: Mutex<Vec<bool>>,
}

// SAFETY: the pool's memory is only handed out under the mutex and each
// region is owned by one caller at a time.
unsafe impl Send for FramePool {}
// SAFETY: as above.
unsafe impl Sync for FramePool {}

impl FramePool {
    /// A pool of `nodes * sections_per_node` sections (2 MiB each).
    ///
    /// # Panics
    /// If `nodes` or `sections_per_node` is 0, or the memory cannot be had.
    pub fn new(nodes: usize, sections_per_node: usize) -> Self {
        assert!(nodes > 0 && sections_per_node > 0, "empty frame pool");
        let layout = Self::layout(nodes * sections_per_node);
        // SAFETY: non-zero size.
        let base = NonNull::new(unsafe { System.alloc(layout) })
            .unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        FramePool {
            base,
            nodes,
            sections_per_node,
            used: Mutex::new(vec![false; nodes * sections_per_node]),
        }
    }

    fn layout(sections: usize) -> Layout {
        Layout::from_size_align(sections * SECTION_SIZE, SECTION_SIZE).expect("pool layout")
    }

    /// The frame number of the frame holding `p` (0 for the pool's first
    /// frame): stable across runs for the same sequence of requests.
    pub fn pfn(&self, p: *const u8) -> usize {
        (p.addr() - self.base.as_ptr().addr()) >> PAGE_SHIFT
    }

    /// The byte offset of `p` from the pool's start.
    ///
    /// # Panics
    /// If `p` lies outside the pool.
    pub fn offset_of(&self, p: *const u8) -> usize {
        let off = p.addr().wrapping_sub(self.base.as_ptr().addr());
        assert!(off < self.len(), "address outside the frame pool");
        off
    }

    /// A pointer `offset` bytes into the pool, with the pool's provenance.
    ///
    /// # Panics
    /// If `offset` lies outside the pool.
    pub fn ptr_at(&self, offset: usize) -> NonNull<u8> {
        assert!(offset < self.len(), "offset outside the frame pool");
        // SAFETY: in bounds of the pool's allocation, which is not null.
        unsafe { self.base.add(offset) }
    }

    fn len(&self) -> usize {
        self.nodes * self.sections_per_node * SECTION_SIZE
    }

    /// Total frames in the pool.
    pub fn nr_frames(&self) -> usize {
        self.nodes * self.sections_per_node * (SECTION_SIZE >> PAGE_SHIFT)
    }

    /// Whether section `s` (of `nr_frames() / PAGES_PER_SECTION`) is
    /// handed out.
    pub fn section_in_use(&self, s: usize) -> bool {
        self.lock().get(s).copied().unwrap_or(false)
    }

    /// Sections per node.
    pub fn sections_per_node(&self) -> usize {
        self.sections_per_node
    }

    /// Sections currently handed out.
    pub fn sections_in_use(&self) -> usize {
        self.lock().iter().filter(|u| **u).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<bool>> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// First run of `n` free sections in `[lo, hi)`.
    fn find(used: &[bool], lo: usize, hi: usize, n: usize) -> Option<usize> {
        let mut run = 0;
        for (s, &u) in used.iter().enumerate().take(hi).skip(lo) {
            run = if u { 0 } else { run + 1 };
            if run == n {
                return Some(s + 1 - n);
            }
        }
        None
    }
}

impl Drop for FramePool {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout; regions still handed
        // out die with the pool (the caller's caches must be gone first,
        // which the borrow of `&FramePool` or the Arc holding it enforces).
        unsafe {
            System.dealloc(
                self.base.as_ptr(),
                Self::layout(self.nodes * self.sections_per_node),
            )
        }
    }
}

// SAFETY: regions are disjoint runs of the pool's aligned memory, marked
// used under the mutex until freed.
unsafe impl PageSource for FramePool {
    fn nr_nodes(&self) -> usize {
        self.nodes
    }

    fn alloc_region(&self, nr_sections: usize, node: usize) -> Option<NonNull<u8>> {
        let mut used = self.lock();
        let spn = self.sections_per_node;
        let order = (0..self.nodes).map(|k| (node + k) % self.nodes);
        for nd in order {
            if let Some(s) = Self::find(&used, nd * spn, (nd + 1) * spn, nr_sections) {
                used[s..s + nr_sections].iter_mut().for_each(|u| *u = true);
                // SAFETY: s + nr_sections <= total sections: in bounds.
                return NonNull::new(unsafe { self.base.as_ptr().add(s * SECTION_SIZE) });
            }
        }
        None
    }

    unsafe fn free_region(&self, base: NonNull<u8>, nr_sections: usize) {
        let s = (base.as_ptr().addr() - self.base.as_ptr().addr()) / SECTION_SIZE;
        let mut used = self.lock();
        for u in &mut used[s..s + nr_sections] {
            debug_assert!(*u, "frame pool: section {s} freed twice");
            *u = false;
        }
    }

    fn node_of(&self, base: NonNull<u8>) -> usize {
        (base.as_ptr().addr() - self.base.as_ptr().addr()) / SECTION_SIZE / self.sections_per_node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_pool_hands_out_lowest_first_and_falls_back_across_nodes() {
        let pool = FramePool::new(2, 2);
        let a = pool.alloc_region(1, 0).unwrap();
        let b = pool.alloc_region(1, 0).unwrap();
        assert_eq!(pool.pfn(a.as_ptr()), 0);
        assert_eq!(pool.pfn(b.as_ptr()), 512);
        // Node 0 is full: the next request falls back to node 1.
        let c = pool.alloc_region(1, 0).unwrap();
        assert_eq!(pool.node_of(c), 1);
        // SAFETY: regions from this pool, freed once.
        unsafe { pool.free_region(a, 1) };
        let d = pool.alloc_region(1, 0).unwrap();
        assert_eq!(d, a, "the lowest free section is reused");
        assert_eq!(pool.sections_in_use(), 3);
        // Two contiguous sections are not available on node 1 any more.
        assert!(pool.alloc_region(2, 1).is_none());
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri cannot mmap")]
    fn host_pages_are_section_aligned_and_writable() {
        let r = HostPages.alloc_region(2, 0).unwrap();
        assert_eq!(r.as_ptr().addr() % SECTION_SIZE, 0);
        // SAFETY: the region is 2 sections long and ours.
        unsafe {
            r.as_ptr().write(1);
            r.as_ptr().add(2 * SECTION_SIZE - 1).write(2);
            HostPages.free_region(r, 2);
        }
    }
}
