//! The page allocator below the slab: a binary buddy allocator per NUMA
//! node over sections from a [`PageSource`], after mm/page_alloc.c
//! (`__rmqueue_smallest()`, `expand()`, `__free_one_page()`).
//!
//! # Data structures
//!
//! One [`Zone`] per node: `free_area[order]`, a doubly linked list of free
//! blocks of `2^order` frames threaded through the head frames' `Page::lru`
//! links, and the list of sections the zone owns. A free block's head frame
//! has `PG_BUDDY` set and its order in `offset`.
//!
//! # Invariants (checked by [`PageAllocator::assert_invariants`])
//!
//! * a block of order `k` starts at a frame index that is a multiple of
//!   `2^k` within its section, so it is aligned to `PAGE_SIZE << k`;
//! * `Σ_sections nr_free == Σ_k |free_area[k]| · 2^k`;
//! * a block and its buddy are never both free at the same order (they
//!   would have been merged).
//!
//! # Policy
//!
//! Allocation takes the smallest order with a free block and splits it,
//! handing back the upper halves. Freeing merges with the buddy while the
//! buddy is free at the same order. A section whose frames are all free is
//! returned to the page source, except one spare per zone, so a workload
//! that oscillates around a section boundary does not map and unmap.
//!
//! # Locking
//!
//! One mutex per zone (`zone->lock`) guards its free areas, its section
//! list and the `nr_free` counters of its sections. It nests inside the
//! slab lock and the node list lock (`new_slab()` runs under neither in
//! klab, but `discard_slab()` may run under the list lock).

use std::ptr::{self, NonNull};
use std::sync::{Mutex, MutexGuard};

use crate::Shared;
use crate::page::{
    PAGE_SHIFT, PAGE_SIZE, PAGES_PER_SECTION, PG_BUDDY, PG_TAIL, Page, RESERVED_PAGES,
    SECTION_SIZE, SectionHeader, SectionKind, USABLE_PAGES, frame,
};
use crate::page_source::PageSource;
use crate::primitive::{AtomicUsize, Ordering};
use crate::reentry::Locked;
use crate::spans::{Action, SpanCache};

/// Largest order the buddy allocator hands out (`2^8` frames = 1 MiB).
pub const MAX_ORDER: u32 = 8;
/// Most NUMA nodes a page allocator serves.
pub const MAX_NUMNODES: usize = 8;

/// Free blocks of one zone, guarded by the zone lock.
struct ZoneInner {
    free_area: [*mut Page; MAX_ORDER as usize + 1],
    nr_free_blocks: [usize; MAX_ORDER as usize + 1],
    sections: *mut SectionHeader,
    nr_sections: usize,
    nr_free_pages: usize,
}

// SAFETY: the raw pointers point into sections owned by the zone and are
// only followed under the zone lock.
unsafe impl Send for ZoneInner {}

/// A held zone lock, counted as an allocator lock ([`crate::reentry`]).
type ZoneGuard<'a> = Locked<MutexGuard<'a, ZoneInner>>;

/// The page allocator of one node.
struct Zone {
    inner: Mutex<ZoneInner>,
}

impl Zone {
    #[allow(clippy::declare_interior_mutable_const)]
    const NEW: Zone = Zone {
        inner: Mutex::new(ZoneInner {
            free_area: [ptr::null_mut(); MAX_ORDER as usize + 1],
            nr_free_blocks: [0; MAX_ORDER as usize + 1],
            sections: ptr::null_mut(),
            nr_sections: 0,
            nr_free_pages: 0,
        }),
    };

    /// The zone lock; counted as an allocator lock ([`crate::reentry`]).
    fn lock(&self) -> ZoneGuard<'_> {
        Locked::new(self.inner.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// How long a freed large span stays resident before its pages are
/// discarded ([`crate::spans`]); mm/page_reporting.c waits
/// `PAGE_REPORTING_DELAY`, 2 s.
pub const SPAN_REPORT_DELAY_MS: u64 = 2000;
/// Fewest sections of freed large spans kept resident (64 MiB): the cap
/// is this or half the sections live spans hold, whichever is more; past
/// it the oldest are discarded at once.
pub const SPAN_RESIDENT_CAP: usize = 32;

/// The cap on resident kept spans when live spans hold `live` sections.
pub const fn span_cap(live: usize) -> usize {
    let q = live / 2;
    if q > SPAN_RESIDENT_CAP {
        q
    } else {
        SPAN_RESIDENT_CAP
    }
}

/// A buddy page allocator over a [`PageSource`], one zone per node.
pub struct PageAllocator {
    source: Shared<dyn PageSource>,
    zones: [Zone; MAX_NUMNODES],
    /// Freed large spans kept for reuse (used when the source
    /// [splits regions](PageSource::splits_regions)); its own lock,
    /// taken alone.
    spans: Mutex<SpanCache>,
    /// Sections held by live large spans (for the span cap).
    large_live: AtomicUsize,
}

impl Drop for PageAllocator {
    /// Returns every section the zones hold to the page source. Blocks
    /// still handed out die with the allocator: whatever holds them (a
    /// cache, a `GlobalAlloc`) owns a reference to the allocator, so by now
    /// they are leaked memory nobody can reach through klab.
    fn drop(&mut self) {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        while let Some((base, _)) = spans.spans().first().map(|s| (s.base, s.nr)) {
            let nr = spans.spans()[0].nr;
            let _ = spans.take(nr);
            // SAFETY: a kept span: whole sections of this source's regions
            // (which splits regions, or nothing would be kept), ours.
            unsafe {
                self.source.free_region(
                    NonNull::new_unchecked(ptr::with_exposed_provenance_mut(base)),
                    nr,
                )
            };
        }
        drop(spans);
        for zone in &self.zones {
            let mut z = zone.lock();
            let mut s = z.sections;
            z.sections = ptr::null_mut();
            z.nr_sections = 0;
            z.nr_free_pages = 0;
            z.free_area = [ptr::null_mut(); MAX_ORDER as usize + 1];
            z.nr_free_blocks = [0; MAX_ORDER as usize + 1];
            while !s.is_null() {
                // SAFETY: `s` is a live section of this zone (the list was
                // taken whole under the lock), read before it is freed.
                let next = unsafe { *(*s).next.get() };
                // SAFETY: each zone section is a one-section region from
                // this source, returned once: the list was emptied above.
                unsafe {
                    self.source
                        .free_region(NonNull::new_unchecked(s.cast::<u8>()), 1)
                };
                s = next;
            }
        }
    }
}

/// Counters of a page allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Sections held from the page source (frames sections only).
    pub sections: usize,
    /// Free frames in those sections.
    pub free_pages: usize,
}

impl PageAllocator {
    /// A page allocator over a source that lives for the whole program.
    pub const fn new_static(source: &'static dyn PageSource) -> Self {
        PageAllocator {
            source: Shared::Static(source),
            zones: [Zone::NEW; MAX_NUMNODES],
            spans: Mutex::new(SpanCache::new(
                SECTION_SIZE,
                SPAN_REPORT_DELAY_MS,
                SPAN_RESIDENT_CAP,
            )),
            large_live: AtomicUsize::new(0),
        }
    }

    /// A page allocator over a shared source.
    pub fn new(source: std::sync::Arc<dyn PageSource>) -> Self {
        PageAllocator {
            source: Shared::Arc(source),
            zones: [Zone::NEW; MAX_NUMNODES],
            spans: Mutex::new(SpanCache::new(
                SECTION_SIZE,
                SPAN_REPORT_DELAY_MS,
                SPAN_RESIDENT_CAP,
            )),
            large_live: AtomicUsize::new(0),
        }
    }

    /// The page source.
    pub fn source(&self) -> &dyn PageSource {
        &*self.source
    }

    /// Number of nodes served (the source's, at most [`MAX_NUMNODES`]).
    pub fn nr_nodes(&self) -> usize {
        self.source.nr_nodes().clamp(1, MAX_NUMNODES)
    }

    /// `alloc_pages_node()`: a block of `2^order` frames on `node`, its
    /// head frame returned with no flags set; `None` when the source is
    /// exhausted or `order > MAX_ORDER`.
    pub(crate) fn alloc_pages(&self, order: u32, node: usize) -> Option<*const Page> {
        if order > MAX_ORDER {
            return None;
        }
        let node = node % self.nr_nodes();
        loop {
            if let Some(p) = Self::rmqueue(&mut self.zones[node].lock(), order) {
                return Some(p);
            }
            let base = self.source.alloc_region(1, node)?;
            let actual = self.source.node_of(base) % self.nr_nodes();
            let mut z = self.zones[actual].lock();
            // SAFETY: a fresh region of one section, owned by this zone now.
            unsafe { Self::add_section(&mut z, base, actual) };
            if actual != node {
                return Self::rmqueue(&mut z, order);
            }
        }
    }

    /// `__free_pages()`: gives back a block from [`Self::alloc_pages`].
    ///
    /// # Safety
    /// `page` is the head frame of a live block of `2^order` frames from
    /// this allocator, freed once; nothing uses its memory afterwards.
    pub(crate) unsafe fn free_pages(&self, page: *const Page, order: u32) {
        let section = Page::section(page);
        // SAFETY: the section is live (it holds a block being freed).
        let node = unsafe { (*section).node } as usize;
        let mut z = self.zones[node].lock();
        // SAFETY: forwarded contract; zone lock held.
        unsafe { self.free_one(&mut z, page, order) };
    }

    /// Allocates a region straight from the page source for `bytes` bytes
    /// at an alignment up to half a section: the large-kmalloc path.
    /// Over a source that splits regions, a kept free span that fits is
    /// reused first ([`crate::spans`]). Returns the object pointer.
    pub(crate) fn alloc_large(&self, bytes: usize, align: usize, node: usize) -> Option<*mut u8> {
        let offset = align.max(PAGE_SIZE);
        if offset > SECTION_SIZE / 2 {
            return None;
        }
        let total = bytes.checked_add(offset)?;
        let nr = total.div_ceil(SECTION_SIZE);
        let kept = if self.source.splits_regions() {
            self.span_lock().take(nr)
        } else {
            None
        };
        let base = match kept {
            // SAFETY: a kept span is mapped memory of ours, never null.
            Some((b, _)) => unsafe { NonNull::new_unchecked(ptr::with_exposed_provenance_mut(b)) },
            None => self.source.alloc_region(nr, node % self.nr_nodes())?,
        };
        self.large_live.fetch_add(nr, Ordering::Relaxed);
        let h = base.as_ptr().cast::<SectionHeader>();
        // SAFETY: the region is ours and at least one section long; only
        // the header fields (not the map) of a Large section are written.
        unsafe {
            ptr::addr_of_mut!((*h).kind).write(SectionKind::Large);
            ptr::addr_of_mut!((*h).node).write(node as u32);
            ptr::addr_of_mut!((*h).nr_sections).write(nr);
            ptr::addr_of_mut!((*h).large_bytes).write(nr * SECTION_SIZE - offset);
            ptr::addr_of_mut!((*h).large_offset).write(offset);
            Some(base.as_ptr().add(offset))
        }
    }

    /// Frees a region from [`Self::alloc_large`]: kept as a free span
    /// (over a source that splits regions) or given back.
    ///
    /// # Safety
    /// `p` was returned by `alloc_large` on this allocator and not freed.
    pub(crate) unsafe fn free_large(&self, p: *mut u8) {
        let h = crate::page::section_of(p);
        // SAFETY: the header of a live Large region.
        let nr = unsafe { (*h).nr_sections };
        let live = self.large_live.fetch_sub(nr, Ordering::Relaxed) - nr;
        if !self.source.splits_regions() {
            // SAFETY: the whole region, as it was allocated.
            unsafe {
                self.source
                    .free_region(NonNull::new_unchecked(h.cast::<u8>()), nr)
            };
            return;
        }
        let now = now_ms();
        let action = {
            let mut c = self.span_lock();
            c.set_cap(span_cap(live));
            c.put(h.expose_provenance(), nr, now)
        };
        // SAFETY: actions name spans the cache gave up, ours alone now.
        unsafe { self.span_action(action) };
        // Report what has been free for the delay (a few per free).
        for _ in 0..4 {
            let a = self.span_lock().decay(now);
            if a.is_none() {
                break;
            }
            // SAFETY: as above.
            unsafe { self.span_action(a) };
        }
    }

    /// Carries out what the span cache asked, with its lock dropped.
    ///
    /// # Safety
    /// The span in the action was detached from the cache and is owned by
    /// the caller.
    unsafe fn span_action(&self, mut action: Option<Action>) {
        while let Some(a) = action {
            action = match a {
                Action::Report(s) => {
                    // SAFETY: detached: no one else holds these sections.
                    unsafe {
                        self.source.discard(
                            NonNull::new_unchecked(ptr::with_exposed_provenance_mut(s.base)),
                            s.nr,
                        )
                    };
                    self.span_lock().reported(s)
                }
                Action::Unmap(s) => {
                    // SAFETY: detached; the source splits regions, so any
                    // run of whole sections of its regions may go back.
                    unsafe {
                        self.source.free_region(
                            NonNull::new_unchecked(ptr::with_exposed_provenance_mut(s.base)),
                            s.nr,
                        )
                    };
                    None
                }
            };
        }
    }

    /// The span cache's lock, counted as an allocator lock.
    fn span_lock(&self) -> Locked<MutexGuard<'_, SpanCache>> {
        Locked::new(self.spans.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Sections of freed large spans kept, and how many of them are
    /// resident (not reported).
    pub fn kept_spans(&self) -> (usize, usize) {
        let c = self.span_lock();
        (c.spans().iter().map(|s| s.nr).sum(), c.resident())
    }

    /// Usable bytes of a large region (`ksize()` of a large kmalloc).
    ///
    /// # Safety
    /// `p` was returned by `alloc_large` on this allocator and not freed.
    pub(crate) unsafe fn large_size(p: *const u8) -> usize {
        // SAFETY: the header of a live Large region.
        unsafe { (*crate::page::section_of(p)).large_bytes }
    }

    /// Counters summed over the zones.
    pub fn stats(&self) -> PageStats {
        let mut s = PageStats::default();
        for z in &self.zones[..self.nr_nodes()] {
            let z = z.lock();
            s.sections += z.nr_sections;
            s.free_pages += z.nr_free_pages;
        }
        s
    }

    /// Checks the invariants in the module header.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        for z in &self.zones[..self.nr_nodes()] {
            let z = z.lock();
            let mut listed = 0;
            for order in 0..=MAX_ORDER {
                let mut p = z.free_area[order as usize];
                let mut n = 0;
                while !p.is_null() {
                    let idx = Page::index(p);
                    assert_eq!(idx % (1 << order), 0, "misaligned order-{order} block");
                    // SAFETY: listed blocks live in sections the zone owns.
                    unsafe {
                        assert!((*p).test(PG_BUDDY));
                        assert_eq!((*p).offset(), order);
                        if order < MAX_ORDER {
                            let b = idx ^ (1 << order);
                            if (RESERVED_PAGES..PAGES_PER_SECTION).contains(&b) {
                                let s = NonNull::new_unchecked(Page::section(p));
                                let bp = frame(s, b);
                                assert!(
                                    !((*bp).test(PG_BUDDY) && (*bp).offset() == order),
                                    "free buddies left unmerged at order {order}"
                                );
                            }
                        }
                        p = (*p).next();
                    }
                    n += 1;
                }
                assert_eq!(n, z.nr_free_blocks[order as usize]);
                listed += n << order;
            }
            assert_eq!(listed, z.nr_free_pages);
            let mut sum = 0;
            let mut s = z.sections;
            while !s.is_null() {
                // SAFETY: zone sections are live.
                unsafe {
                    sum += *(*s).nr_free.get();
                    s = *(*s).next.get();
                }
            }
            assert_eq!(sum, z.nr_free_pages);
        }
    }

    /// Initialises a fresh section and puts its usable frames on the free
    /// lists as maximal aligned blocks.
    ///
    /// # Safety
    /// `base` is a fresh, section-aligned region of one section; zone lock
    /// held.
    unsafe fn add_section(z: &mut ZoneInner, base: NonNull<u8>, node: usize) {
        let h = base.as_ptr().cast::<SectionHeader>();
        // SAFETY: the header and map lie in the reserved frames of the
        // fresh region, which nothing else references.
        unsafe {
            ptr::addr_of_mut!((*h).kind).write(SectionKind::Frames);
            ptr::addr_of_mut!((*h).node).write(node as u32);
            ptr::addr_of_mut!((*h).nr_sections).write(1);
            ptr::addr_of_mut!((*h).large_bytes).write(0);
            ptr::addr_of_mut!((*h).large_offset).write(0);
            ptr::addr_of_mut!((*h).nr_free).write(std::cell::UnsafeCell::new(0));
            ptr::addr_of_mut!((*h).next).write(std::cell::UnsafeCell::new(z.sections));
            for i in 0..PAGES_PER_SECTION {
                ptr::addr_of_mut!((*h).classes[i]).write(crate::primitive::AtomicU16::new(0));
            }
            let map = ptr::addr_of_mut!((*h).mem_map).cast::<Page>();
            for i in 0..PAGES_PER_SECTION {
                map.add(i).write(Page::EMPTY);
            }
            z.sections = h;
            z.nr_sections += 1;
            let s = NonNull::new_unchecked(h);
            let mut idx = RESERVED_PAGES;
            while idx < PAGES_PER_SECTION {
                let mut order = MAX_ORDER;
                while !idx.is_multiple_of(1 << order) || idx + (1 << order) > PAGES_PER_SECTION {
                    order -= 1;
                }
                Self::push(z, frame(s, idx), order);
                *(*h).nr_free.get() += 1 << order;
                idx += 1 << order;
            }
        }
    }

    /// `__rmqueue_smallest()` + `expand()`.
    fn rmqueue(z: &mut ZoneInner, order: u32) -> Option<*const Page> {
        let mut cur = order;
        while cur <= MAX_ORDER && z.free_area[cur as usize].is_null() {
            cur += 1;
        }
        if cur > MAX_ORDER {
            return None;
        }
        let page = z.free_area[cur as usize];
        // SAFETY: zone lock held; the block is on the list and its section
        // is live.
        unsafe {
            Self::unlink(z, page, cur);
            let s = NonNull::new_unchecked(Page::section(page));
            let idx = Page::index(page);
            while cur > order {
                cur -= 1;
                Self::push(z, frame(s, idx + (1 << cur)), cur);
            }
            *(*s.as_ptr()).nr_free.get() -= 1 << order;
            (*page).flags.store(0, crate::primitive::Ordering::Relaxed);
        }
        Some(page)
    }

    /// `__free_one_page()`.
    ///
    /// # Safety
    /// As [`Self::free_pages`]; zone lock held.
    unsafe fn free_one(&self, z: &mut ZoneInner, page: *const Page, order: u32) {
        let section = Page::section(page);
        // SAFETY: live section owned by this zone, lock held.
        unsafe {
            let s = NonNull::new_unchecked(section);
            // Clear the tail marks a compound page left behind.
            let mut idx = Page::index(page);
            for i in 0..(1usize << order) {
                (*frame(s, idx + i))
                    .flags
                    .store(0, crate::primitive::Ordering::Relaxed);
            }
            crate::page::set_frame_classes(page, order, 0);
            *(*section).nr_free.get() += 1 << order;
            let mut order = order;
            while order < MAX_ORDER {
                let b = idx ^ (1 << order);
                if b < RESERVED_PAGES || b + (1 << order) > PAGES_PER_SECTION {
                    break;
                }
                let bp = frame(s, b);
                if !((*bp).test(PG_BUDDY) && (*bp).offset() == order) {
                    break;
                }
                Self::unlink(z, bp, order);
                idx = idx.min(b);
                order += 1;
            }
            Self::push(z, frame(s, idx), order);
            if *(*section).nr_free.get() == USABLE_PAGES {
                self.maybe_release(z, section);
            }
        }
    }

    /// Returns a wholly free section to the source unless it is the zone's
    /// only wholly free one.
    ///
    /// # Safety
    /// Zone lock held; `section` belongs to the zone and is wholly free.
    unsafe fn maybe_release(&self, z: &mut ZoneInner, section: *mut SectionHeader) {
        // SAFETY: zone sections are live; lock held.
        unsafe {
            let mut other_free = false;
            let mut s = z.sections;
            while !s.is_null() {
                if s != section && *(*s).nr_free.get() == USABLE_PAGES {
                    other_free = true;
                    break;
                }
                s = *(*s).next.get();
            }
            if !other_free {
                return;
            }
            // Unlink every block of the section: they are maximal now.
            let sn = NonNull::new_unchecked(section);
            let mut idx = RESERVED_PAGES;
            while idx < PAGES_PER_SECTION {
                let p = frame(sn, idx);
                let order = (*p).offset();
                debug_assert!((*p).test(PG_BUDDY));
                Self::unlink(z, p, order);
                idx += 1 << order;
            }
            *(*section).nr_free.get() = 0;
            // Unlink the section.
            let mut link: *mut *mut SectionHeader = &mut z.sections;
            while *link != section {
                link = (**link).next.get();
            }
            *link = *(*section).next.get();
            z.nr_sections -= 1;
            self.source
                .free_region(NonNull::new_unchecked(section.cast::<u8>()), 1);
        }
    }

    /// Pushes a free block on `free_area[order]`.
    ///
    /// # Safety
    /// Zone lock held; `page` heads a free block of `2^order` frames not on
    /// any list.
    unsafe fn push(z: &mut ZoneInner, page: *const Page, order: u32) {
        // SAFETY: lock held, exclusive access to the block's head frame.
        unsafe {
            let p = &*page;
            p.flags.store(PG_BUDDY, crate::primitive::Ordering::Relaxed);
            let head = z.free_area[order as usize];
            p.set_offset(order);
            p.set_prev(ptr::null_mut());
            p.set_next(head);
            if !head.is_null() {
                (*head).set_prev(page.cast_mut());
            }
            z.free_area[order as usize] = page.cast_mut();
            z.nr_free_blocks[order as usize] += 1;
            z.nr_free_pages += 1 << order;
        }
    }

    /// Removes a free block from `free_area[order]`.
    ///
    /// # Safety
    /// Zone lock held; `page` is on that list.
    unsafe fn unlink(z: &mut ZoneInner, page: *const Page, order: u32) {
        // SAFETY: lock held; list links are consistent.
        unsafe {
            let (prev, next) = ((*page).prev(), (*page).next());
            if prev.is_null() {
                z.free_area[order as usize] = next;
            } else {
                (*prev).set_next(next);
            }
            if !next.is_null() {
                (*next).set_prev(prev);
            }
            (*page).clear(PG_BUDDY);
            z.nr_free_blocks[order as usize] -= 1;
            z.nr_free_pages -= 1 << order;
        }
    }
}

/// Milliseconds of `CLOCK_MONOTONIC_COARSE` (the vDSO's, no system call
/// on Linux): the span cache's clock.
pub(crate) fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
}

/// Marks frames `1..2^order` of a block as tails of its head frame, so
/// `virt_to_page()` of any byte leads back to the head.
///
/// # Safety
/// `head` heads a block of `2^order` frames owned by the caller.
pub(crate) unsafe fn make_compound(head: *const Page, order: u32) {
    if order == 0 {
        return;
    }
    // SAFETY: the block is the caller's; tails are only read through
    // `Page::head` after this.
    unsafe {
        let s = NonNull::new_unchecked(Page::section(head));
        let idx = Page::index(head);
        for i in 1..(1usize << order) {
            let t = frame(s, idx + i);
            (*t).set_freelist(head.cast_mut().cast());
            (*t).flags
                .store(PG_TAIL, crate::primitive::Ordering::Relaxed);
        }
    }
}

/// Bytes in a block of `order`.
pub(crate) const fn order_bytes(order: u32) -> usize {
    PAGE_SIZE << order
}

/// `get_order()`: the smallest order whose block holds `bytes`.
pub(crate) const fn get_order(bytes: usize) -> u32 {
    if bytes <= PAGE_SIZE {
        0
    } else {
        usize::BITS - ((bytes - 1) >> PAGE_SHIFT).leading_zeros()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_source::FramePool;
    use std::sync::Arc;

    #[test]
    fn orders_split_and_merge_back() {
        let pool = Arc::new(FramePool::new(1, 4));
        let pa = PageAllocator::new(pool.clone());
        let a = pa.alloc_pages(0, 0).unwrap();
        pa.assert_invariants();
        // Frames 0-8 hold the map: the first frame handed out is the lone
        // order-0 block at index 9.
        assert_eq!(Page::index(a), 9);
        let b = pa.alloc_pages(2, 0).unwrap();
        // Order 2 is the block at 12 (10-11 is the order-1 block).
        assert_eq!(Page::index(b), 12);
        assert_eq!(pa.stats().free_pages, USABLE_PAGES - 1 - 4);
        pa.assert_invariants();
        // SAFETY: blocks from this allocator, freed once.
        unsafe {
            pa.free_pages(b, 2);
            pa.free_pages(a, 0);
        }
        pa.assert_invariants();
        assert_eq!(pa.stats().free_pages, USABLE_PAGES);
        assert_eq!(pa.stats().sections, 1, "one wholly free section is kept");
    }

    #[test]
    fn a_second_free_section_goes_back_to_the_source() {
        let pool = Arc::new(FramePool::new(1, 4));
        let pa = PageAllocator::new(pool.clone());
        let blocks: Vec<_> = (0..3)
            .map(|_| pa.alloc_pages(MAX_ORDER, 0).unwrap())
            .collect();
        // One 256-frame block per section fits (frames 256..512).
        assert_eq!(pool.sections_in_use(), 3);
        for b in blocks {
            // SAFETY: from this allocator, freed once.
            unsafe { pa.free_pages(b, MAX_ORDER) };
            pa.assert_invariants();
        }
        assert_eq!(pool.sections_in_use(), 1);
        assert_eq!(pa.stats().sections, 1);
    }

    #[test]
    fn get_order_rounds_up() {
        assert_eq!(get_order(1), 0);
        assert_eq!(get_order(4096), 0);
        assert_eq!(get_order(4097), 1);
        assert_eq!(get_order(8192), 1);
        assert_eq!(get_order(8193), 2);
        assert_eq!(order_bytes(3), 32768);
    }

    #[test]
    fn large_regions_carry_their_length() {
        let pool = Arc::new(FramePool::new(1, 4));
        let pa = PageAllocator::new(pool.clone());
        let p = pa.alloc_large(3 << 20, 64, 0).unwrap();
        assert_eq!(p.addr() % PAGE_SIZE, 0);
        // SAFETY: p is a live large region.
        unsafe {
            assert_eq!(PageAllocator::large_size(p), 2 * SECTION_SIZE - PAGE_SIZE);
            p.write_bytes(0xab, 3 << 20);
            pa.free_large(p);
        }
        assert_eq!(pool.sections_in_use(), 0);
    }
}
