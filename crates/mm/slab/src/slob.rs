//! SLOB: the "simple list of blocks" allocator for very small systems,
//! behind the same [`ObjectAllocator`] interface as SLUB. Mirrors
//! mm/slob.c (2.6.24-2.6.26: `slob_alloc()`, `slob_page_alloc()`,
//! `slob_free()`, `__kmalloc_node()`, `kfree()`, `kmem_cache_alloc_node()`);
//! seed 004 ("SLOB is a drop-in replacement for the slab allocator,
//! intended for very low-memory systems").
//!
//! # Data structures
//!
//! Memory is carved from single pages. Inside a page, free blocks form a
//! singly linked list in address order, threaded through the blocks
//! themselves, in units of `SLOB_UNIT` = 2 bytes (`slobidx_t` is 16 bits
//! for 4 KiB pages):
//!
//! ```text
//!  free block of n > 1 units:  [ n: i16 ][ next: i16 ] ...
//!  free block of 1 unit:       [ -next: i16 ]
//!  next = offset of the next free block from the page start, in units;
//!         next == SLOB_UNITS(PAGE_SIZE) ends the list
//! ```
//!
//! The page's `struct page` holds the free units (`inuse` here) and the
//! first free block (`freelist`). Pages with free space sit on one of three
//! lists by the request sizes they served (`< SLOB_BREAK1 = 256`,
//! `< SLOB_BREAK2 = 1024`, larger: the 2.6.26 split of 2.6.24's single
//! list). Full pages are on no list.
//!
//! Allocation is first fit over the list's pages and then over each page's
//! blocks, with the list rotated to start at the page that served last
//! (next fit). Freeing inserts the block in address order and merges it
//! with free neighbours; a page whose units are all free goes back to the
//! page allocator. `kmalloc` prepends an 8-byte header holding the size;
//! cache objects carry none (the cache knows its size). Requests of a
//! page or more go to the page allocator.
//!
//! No per-CPU anything, minimal metadata: small and slow, as intended.
//! `SLAB_DESTROY_BY_RCU` objects are freed at once (klab has no RCU here).
//!
//! # Invariants (checked by [`Slob::assert_invariants`])
//!
//! For every page on a list: the free blocks are in increasing address
//! order, none overlaps or touches the next (they would have merged), and
//! their units sum to the page's free units.
//!
//! # Locking
//!
//! One lock (`slob_lock`) guards all lists and all pages' free lists.

use std::ptr::{self, NonNull};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::cache::CreateError;
use crate::layout::{CACHE_LINE, LayoutError, SlabFlags};
use crate::page::{PAGE_SIZE, PG_SLOB, PG_SLOB_FREE, Page, virt_to_page};
use crate::page_alloc::{MAX_ORDER, PageAllocator, get_order};
use crate::page_source::PageSource;
use crate::reentry::Locked;
use crate::{Ctor, ObjectAllocator, ObjectCache, Shared};

/// Bytes per SLOB unit.
pub const SLOB_UNIT: usize = 2;
/// Units in a page.
pub const PAGE_UNITS: usize = PAGE_SIZE / SLOB_UNIT;
/// Requests below this many bytes use the small list.
pub const SLOB_BREAK1: usize = 256;
/// Requests below this many bytes use the medium list.
pub const SLOB_BREAK2: usize = 1024;
/// `ARCH_KMALLOC_MINALIGN`: the kmalloc header and alignment.
pub const SLOB_MINALIGN: usize = 8;

/// `SLOB_UNITS(size)`.
const fn units(size: usize) -> usize {
    size.div_ceil(SLOB_UNIT)
}

/// The three lists, guarded by `slob_lock`.
struct Lists {
    heads: [*mut Page; 3],
    nr_pages: usize,
}

// SAFETY: the pointers are SLOB pages of this instance, followed only
// under the lock.
unsafe impl Send for Lists {}

struct SlobShared {
    pages: PageAllocator,
    lock: Mutex<Lists>,
}

/// A SLOB instance.
#[derive(Clone)]
pub struct Slob {
    shared: Shared<SlobShared>,
}

/// A SLOB cache: just a size, an alignment and a constructor.
#[derive(Clone)]
pub struct SlobCache {
    slob: Slob,
    name: Arc<str>,
    size: usize,
    align: usize,
    ctor: Option<Ctor>,
}

/// Reads the block header at `s`: (units, next offset in units).
///
/// # Safety
/// `s` is a free block of a SLOB page, lock held.
unsafe fn slob_get(s: *const u8) -> (usize, usize) {
    // SAFETY: free blocks are at least one unit (2 bytes); two-unit blocks
    // have 4 header bytes.
    unsafe {
        let a = s.cast::<i16>().read_unaligned();
        if a < 0 {
            (1, (-a) as usize)
        } else {
            (a as usize, s.add(2).cast::<i16>().read_unaligned() as usize)
        }
    }
}

/// `set_slob()`.
///
/// # Safety
/// `s` is a block of at least `size` units the caller owns, lock held.
unsafe fn slob_set(s: *mut u8, size: usize, next: usize) {
    // SAFETY: as above.
    unsafe {
        if size > 1 {
            s.cast::<i16>().write_unaligned(size as i16);
            s.add(2).cast::<i16>().write_unaligned(next as i16);
        } else {
            s.cast::<i16>().write_unaligned(-(next as i16));
        }
    }
}

fn list_for(size: usize) -> usize {
    if size < SLOB_BREAK1 {
        0
    } else if size < SLOB_BREAK2 {
        1
    } else {
        2
    }
}

impl Slob {
    /// SLOB over `source`.
    pub fn new(source: Arc<dyn PageSource>) -> Slob {
        Slob {
            shared: Shared::Arc(Arc::new(SlobShared {
                pages: PageAllocator::new(source),
                lock: Mutex::new(Lists {
                    heads: [ptr::null_mut(); 3],
                    nr_pages: 0,
                }),
            })),
        }
    }

    /// The SLOB lock (`slob_lock`), counted as an allocator lock
    /// ([`crate::reentry`]).
    fn lock(&self) -> Locked<MutexGuard<'_, Lists>> {
        Locked::new(self.shared.lock.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Pages held on behalf of small blocks.
    pub fn nr_pages(&self) -> usize {
        self.lock().nr_pages
    }

    /// `slob_alloc()`: a block of `size` bytes at `align` (a power of two,
    /// at least 2) from a page of the right list, or a new page.
    fn slob_alloc(&self, size: usize, align: usize) -> Option<*mut u8> {
        let want = units(size);
        let li = list_for(size);
        {
            let mut l = self.lock();
            let mut sp = l.heads[li];
            while !sp.is_null() {
                // SAFETY: listed SLOB pages, lock held.
                unsafe {
                    let next = (*sp).next();
                    if (*sp).inuse() as usize >= want
                        && let Some(b) = Self::page_alloc(&mut l, sp, want, align)
                    {
                        // Next fit: start the next search here.
                        if (*sp).test(PG_SLOB_FREE) && l.heads[li] != sp {
                            Self::unlink(&mut l, sp, li);
                            Self::push(&mut l, sp, li);
                        }
                        return Some(b);
                    }
                    sp = next;
                }
            }
        }
        let page = self.shared.pages.alloc_pages(0, 0)?;
        let mut l = self.lock();
        // SAFETY: a fresh page, now a SLOB page under the lock.
        unsafe {
            let base = Page::address(page);
            (*page)
                .flags
                .store(PG_SLOB, crate::primitive::Ordering::Relaxed);
            (*page).set_inuse(PAGE_UNITS as u32);
            (*page).set_freelist(base);
            (*page).set_offset(li as u32);
            slob_set(base, PAGE_UNITS, PAGE_UNITS);
            l.nr_pages += 1;
            Self::push(&mut l, page.cast_mut(), li);
            Self::page_alloc(&mut l, page.cast_mut(), want, align)
        }
    }

    /// `slob_page_alloc()`: first fit within one page.
    ///
    /// # Safety
    /// `sp` is a listed SLOB page; lock held.
    unsafe fn page_alloc(
        l: &mut Lists,
        sp: *mut Page,
        want: usize,
        align: usize,
    ) -> Option<*mut u8> {
        // SAFETY: all blocks walked lie in the page; lock held.
        unsafe {
            let base = Page::address(sp);
            let at = |off: usize| base.add(off * SLOB_UNIT);
            let mut prev: Option<usize> = None;
            let mut cur = (*sp).freelist().addr().wrapping_sub(base.addr()) / SLOB_UNIT;
            if (*sp).freelist().is_null() {
                return None;
            }
            loop {
                let (mut avail, mut next) = slob_get(at(cur));
                let aligned = (at(cur).addr().next_multiple_of(align) - base.addr()) / SLOB_UNIT;
                let delta = aligned - cur;
                if avail >= want + delta {
                    if delta > 0 {
                        // Split off the unaligned head as its own block.
                        slob_set(at(aligned), avail - delta, next);
                        slob_set(at(cur), delta, aligned);
                        prev = Some(cur);
                        cur = aligned;
                        (avail, next) = slob_get(at(cur));
                    }
                    let rest = if avail == want {
                        next
                    } else {
                        slob_set(at(cur + want), avail - want, next);
                        cur + want
                    };
                    match prev {
                        Some(p) => {
                            let (pu, _) = slob_get(at(p));
                            slob_set(at(p), pu, rest);
                        }
                        None => (*sp).set_freelist(if rest == PAGE_UNITS {
                            ptr::null_mut()
                        } else {
                            at(rest)
                        }),
                    }
                    let left = (*sp).inuse() as usize - want;
                    (*sp).set_inuse(left as u32);
                    if left == 0 {
                        (*sp).set_freelist(ptr::null_mut());
                        Self::unlink(l, sp, (*sp).offset() as usize);
                    }
                    return Some(at(cur));
                }
                if next == PAGE_UNITS {
                    return None;
                }
                prev = Some(cur);
                cur = next;
            }
        }
    }

    /// `slob_free()`: returns a block of `size` bytes.
    ///
    /// # Safety
    /// `b` came from `slob_alloc` with the same size and is freed once.
    unsafe fn slob_free(&self, b: *mut u8, size: usize) {
        let n = units(size);
        // SAFETY: b lies in a live SLOB page; lock held below.
        unsafe {
            let sp = virt_to_page(b)
                .expect("slob_free: not a SLOB block")
                .cast_mut();
            let mut l = self.lock();
            let base = Page::address(sp);
            let off = (b.addr() - base.addr()) / SLOB_UNIT;
            let at = |o: usize| base.add(o * SLOB_UNIT);
            let free_units = (*sp).inuse() as usize;
            if free_units + n == PAGE_UNITS {
                // The page is wholly free: back to the page allocator.
                if (*sp).test(PG_SLOB_FREE) {
                    Self::unlink(&mut l, sp, (*sp).offset() as usize);
                }
                l.nr_pages -= 1;
                (*sp).flags.store(0, crate::primitive::Ordering::Relaxed);
                drop(l);
                self.shared.pages.free_pages(sp, 0);
                return;
            }
            if !(*sp).test(PG_SLOB_FREE) {
                // The page was full: this block is its only free one.
                (*sp).set_inuse(n as u32);
                (*sp).set_freelist(b);
                slob_set(b, n, PAGE_UNITS);
                let li = (*sp).offset() as usize;
                Self::push(&mut l, sp, li);
                return;
            }
            (*sp).set_inuse((free_units + n) as u32);
            let first = ((*sp).freelist().addr() - base.addr()) / SLOB_UNIT;
            if off < first {
                let (fu, fnext) = slob_get(at(first));
                if off + n == first {
                    slob_set(b, n + fu, fnext);
                } else {
                    slob_set(b, n, first);
                }
                (*sp).set_freelist(b);
            } else {
                let mut prev = first;
                let (_, mut next) = slob_get(at(prev));
                while off > next {
                    prev = next;
                    next = slob_get(at(prev)).1;
                }
                let mut size = n;
                if next != PAGE_UNITS && off + n == next {
                    let (nu, nn) = slob_get(at(next));
                    size += nu;
                    slob_set(b, size, nn);
                } else {
                    slob_set(b, size, next);
                }
                let (pu, _) = slob_get(at(prev));
                if prev + pu == off {
                    let bnext = slob_get(b).1;
                    slob_set(at(prev), pu + size, bnext);
                } else {
                    slob_set(at(prev), pu, off);
                }
            }
        }
    }

    /// Pushes a page on list `li`.
    ///
    /// # Safety
    /// Lock held; the page is on no list.
    unsafe fn push(l: &mut Lists, sp: *mut Page, li: usize) {
        // SAFETY: lock held.
        unsafe {
            (*sp).set(PG_SLOB_FREE);
            (*sp).set_prev(ptr::null_mut());
            (*sp).set_next(l.heads[li]);
            if !l.heads[li].is_null() {
                (*l.heads[li]).set_prev(sp);
            }
            l.heads[li] = sp;
        }
    }

    /// Unlinks a page from list `li`.
    ///
    /// # Safety
    /// Lock held; the page is on that list.
    unsafe fn unlink(l: &mut Lists, sp: *mut Page, li: usize) {
        // SAFETY: lock held.
        unsafe {
            let (prev, next) = ((*sp).prev(), (*sp).next());
            if prev.is_null() {
                l.heads[li] = next;
            } else {
                (*prev).set_next(next);
            }
            if !next.is_null() {
                (*next).set_prev(prev);
            }
            (*sp).clear(PG_SLOB_FREE);
        }
    }

    /// Allocates `size` bytes of whole pages, remembering the size.
    fn big_alloc(&self, size: usize) -> Option<*mut u8> {
        let order = get_order(size);
        if order > MAX_ORDER {
            return None;
        }
        let page = self.shared.pages.alloc_pages(order, 0)?;
        // SAFETY: fresh block, ours.
        unsafe {
            crate::page_alloc::make_compound(page, order);
            (*page).set_offset(order);
            (*page).set_inuse(size as u32);
        }
        Some(Page::address(page))
    }

    /// `__kmalloc()`: an 8-byte size header, then the object.
    pub fn kmalloc(&self, size: usize) -> Option<NonNull<u8>> {
        if size == 0 {
            return None;
        }
        if size < PAGE_SIZE - SLOB_MINALIGN {
            let m = self.slob_alloc(size + SLOB_MINALIGN, SLOB_MINALIGN)?;
            // SAFETY: the block has room for the header and the object.
            unsafe {
                m.cast::<usize>().write(size);
                NonNull::new(m.add(SLOB_MINALIGN))
            }
        } else {
            NonNull::new(self.big_alloc(size)?)
        }
    }

    /// `kfree()`.
    ///
    /// # Safety
    /// `p` came from [`Self::kmalloc`] on this instance, freed once.
    pub unsafe fn kfree(&self, p: NonNull<u8>) {
        // SAFETY: forwarded; a SLOB page holds small blocks with headers.
        unsafe {
            let page = Page::head(virt_to_page(p.as_ptr()).expect("kfree: not SLOB memory"));
            if (*page).test(PG_SLOB) {
                let m = p.as_ptr().sub(SLOB_MINALIGN);
                self.slob_free(m, m.cast::<usize>().read() + SLOB_MINALIGN);
            } else {
                self.shared.pages.free_pages(page, (*page).offset());
            }
        }
    }

    /// `ksize()` of a kmalloc'd object.
    ///
    /// # Safety
    /// `p` is a live allocation from [`Self::kmalloc`].
    pub unsafe fn ksize(&self, p: NonNull<u8>) -> usize {
        // SAFETY: forwarded.
        unsafe {
            let page = Page::head(virt_to_page(p.as_ptr()).expect("ksize: not SLOB memory"));
            if (*page).test(PG_SLOB) {
                p.as_ptr().sub(SLOB_MINALIGN).cast::<usize>().read()
            } else {
                PAGE_SIZE << (*page).offset()
            }
        }
    }

    /// Checks the invariants in the module header.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        let l = self.lock();
        for li in 0..3 {
            let mut sp = l.heads[li];
            while !sp.is_null() {
                // SAFETY: listed pages, lock held.
                unsafe {
                    let base = Page::address(sp);
                    let mut off = ((*sp).freelist().addr() - base.addr()) / SLOB_UNIT;
                    let mut sum = 0;
                    loop {
                        let (u, next) = slob_get(base.add(off * SLOB_UNIT));
                        sum += u;
                        assert!(
                            next > off + u || next == PAGE_UNITS,
                            "blocks overlap or touch"
                        );
                        if next == PAGE_UNITS {
                            break;
                        }
                        off = next;
                    }
                    assert_eq!(sum, (*sp).inuse() as usize, "free units");
                    assert_eq!((*sp).offset() as usize, li);
                    sp = (*sp).next();
                }
            }
        }
    }
}

impl ObjectAllocator for Slob {
    type Cache = SlobCache;

    fn name(&self) -> &'static str {
        "SLOB"
    }

    fn create_cache(
        &self,
        name: &str,
        size: usize,
        align: usize,
        flags: SlabFlags,
        ctor: Option<Ctor>,
    ) -> Result<SlobCache, CreateError> {
        if size == 0 {
            return Err(CreateError::Layout {
                name: name.into(),
                source: LayoutError::ZeroSize,
            });
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(CreateError::Layout {
                name: name.into(),
                source: LayoutError::BadAlign(align),
            });
        }
        let mut a = if flags.contains(SlabFlags::HWCACHE_ALIGN) {
            CACHE_LINE
        } else {
            0
        };
        a = a.max(align).max(SLOB_MINALIGN);
        Ok(SlobCache {
            slob: self.clone(),
            name: name.into(),
            size,
            align: a,
            ctor,
        })
    }

    fn pages_bytes(&self) -> usize {
        let s = self.shared.pages.stats();
        s.sections * crate::page::USABLE_PAGES * PAGE_SIZE - s.free_pages * PAGE_SIZE
    }
}

impl SlobCache {
    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl ObjectCache for SlobCache {
    type Cpu = ();

    fn cpu(&self) {}

    fn alloc(&self, _cpu: &mut ()) -> Option<NonNull<u8>> {
        let b = if self.size < PAGE_SIZE {
            self.slob.slob_alloc(self.size, self.align)?
        } else {
            self.slob.big_alloc(self.size)?
        };
        if let Some(ctor) = self.ctor {
            // SAFETY: a fresh block of size bytes.
            ctor(unsafe { std::slice::from_raw_parts_mut(b, self.size) });
        }
        NonNull::new(b)
    }

    unsafe fn free(&self, _cpu: &mut (), obj: NonNull<u8>) {
        // SAFETY: forwarded.
        unsafe {
            if self.size < PAGE_SIZE {
                self.slob.slob_free(obj.as_ptr(), self.size);
            } else {
                let page = Page::head(virt_to_page(obj.as_ptr()).expect("not SLOB memory"));
                self.slob.shared.pages.free_pages(page, (*page).offset());
            }
        }
    }

    fn object_size(&self) -> usize {
        self.size
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_source::FramePool;

    fn slob() -> Slob {
        Slob::new(Arc::new(FramePool::new(1, 2)))
    }

    #[test]
    fn blocks_are_first_fit_and_merge_back() {
        let s = slob();
        let c = s.create_cache("c", 100, 8, SlabFlags::NONE, None).unwrap();
        let v: Vec<_> = (0..10).map(|_| c.alloc(&mut ()).unwrap()).collect();
        // 100 bytes = 50 units, packed back to back from the page start.
        let base = v[0].as_ptr().addr();
        assert_eq!(base % PAGE_SIZE, 0);
        for (i, p) in v.iter().enumerate() {
            assert_eq!(p.as_ptr().addr(), base + i * 104);
        }
        s.assert_invariants();
        // Free 2 and 3: they merge into one 200-byte hole that a 180-byte
        // kmalloc (188 with its header) fits into, first fit.
        // SAFETY: objects of this cache, freed once.
        unsafe {
            c.free(&mut (), v[2]);
            c.free(&mut (), v[3]);
        }
        s.assert_invariants();
        let k = s.kmalloc(180).unwrap();
        assert_eq!(k.as_ptr().addr(), base + 2 * 104 + SLOB_MINALIGN);
        // SAFETY: live.
        unsafe {
            assert_eq!(s.ksize(k), 180);
            s.kfree(k);
        }
        for p in v
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2 && *i != 3)
            .map(|(_, p)| p)
        {
            // SAFETY: live objects.
            unsafe { c.free(&mut (), *p) };
            s.assert_invariants();
        }
        assert_eq!(s.nr_pages(), 0, "the page went back when wholly free");
    }

    #[test]
    fn random_churn_keeps_the_block_lists_sound() {
        let s = slob();
        let mut live: Vec<(NonNull<u8>, usize)> = Vec::new();
        let mut x = 12345u64;
        let n = if cfg!(miri) { 200 } else { 5000 };
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if !x.is_multiple_of(3) || live.is_empty() {
                let size = 1 + (x >> 8) as usize % 1500;
                let p = s.kmalloc(size).unwrap();
                // SAFETY: fresh block of size bytes.
                unsafe { p.as_ptr().write_bytes(0x5c, size) };
                live.push((p, size));
            } else {
                let (p, size) = live.swap_remove((x >> 8) as usize % live.len());
                // SAFETY: live block written with the pattern.
                unsafe {
                    assert!(
                        std::slice::from_raw_parts(p.as_ptr(), size)
                            .iter()
                            .all(|b| *b == 0x5c)
                    );
                    s.kfree(p);
                }
            }
        }
        s.assert_invariants();
        for (p, _) in live {
            // SAFETY: live.
            unsafe { s.kfree(p) };
        }
        assert_eq!(s.nr_pages(), 0);
    }
}

/// The global allocator's SLOB: its own page allocator over the host's
/// pages.
static GLOBAL_HOST: crate::page_source::DefaultPages = crate::page_source::DefaultPages {};
static GLOBAL_SLOB: SlobShared = SlobShared {
    pages: PageAllocator::new_static(&GLOBAL_HOST),
    lock: Mutex::new(Lists {
        heads: [ptr::null_mut(); 3],
        nr_pages: 0,
    }),
};

/// The header before each block of [`SlobAlloc`]: the block's size, in
/// 16 bytes so blocks keep `malloc`'s 16-byte alignment (the kernel's
/// SLOB kmalloc header is `ARCH_KMALLOC_MINALIGN`, 8 on x86-64).
const GLOBAL_HDR: usize = 16;

/// SLOB as a real allocator (`KLAB_SLAB=slob` in the preload library):
/// `__kmalloc()`'s size header and first fit under the one `slob_lock`,
/// pages above a page. Every call is a slow path: it takes the lock, so
/// it runs in the fork bracket of [`crate::global`] (the thread
/// registers at its first call, which installs the fork handlers).
#[derive(Clone, Copy, Debug, Default)]
pub struct SlobAlloc;

impl SlobAlloc {
    fn slob() -> Slob {
        Slob {
            shared: Shared::Static(&GLOBAL_SLOB),
        }
    }

    /// `size` bytes at `align`; null when memory is exhausted.
    pub fn allocate(size: usize, align: usize) -> *mut u8 {
        crate::reentry::assert_no_lock_held();
        if crate::global::with_meta(|m| m.state.get()) == crate::global::UNREGISTERED {
            crate::global::register();
        }
        let _g = crate::global::SlowGuard::enter();
        let size = size.max(1);
        let s = Self::slob();
        if align <= GLOBAL_HDR && size < PAGE_SIZE - GLOBAL_HDR {
            match s.slob_alloc(size + GLOBAL_HDR, GLOBAL_HDR) {
                // SAFETY: the block has room for the header and the object.
                Some(m) => unsafe {
                    m.cast::<usize>().write(size);
                    m.add(GLOBAL_HDR)
                },
                None => ptr::null_mut(),
            }
        } else {
            // `slob_new_pages()` for a block of a page or more (and
            // regions above the page allocator's largest order).
            crate::cache::large_alloc(&GLOBAL_SLOB.pages, size, align, 0)
                .map_or(ptr::null_mut(), |p| p.as_ptr())
        }
    }

    /// Frees what [`Self::allocate`] returned.
    ///
    /// # Safety
    /// `p` came from this allocator and is freed once.
    pub unsafe fn deallocate(p: *mut u8) {
        crate::reentry::assert_no_lock_held();
        let _g = crate::global::SlowGuard::enter();
        // SAFETY: p is ours: a SLOB page, a page block or a region.
        unsafe {
            if let Some(page) = virt_to_page(p)
                && (*Page::head(page)).test(PG_SLOB)
            {
                let m = p.sub(GLOBAL_HDR);
                Self::slob().slob_free(m, m.cast::<usize>().read() + GLOBAL_HDR);
            } else {
                crate::cache::large_free(&GLOBAL_SLOB.pages, p);
            }
        }
    }

    /// Usable bytes of a block.
    ///
    /// # Safety
    /// `p` is a live block of this allocator.
    pub unsafe fn usable_size(p: *const u8) -> usize {
        // SAFETY: as in deallocate.
        unsafe {
            if let Some(page) = virt_to_page(p)
                && (*Page::head(page)).test(PG_SLOB)
            {
                p.sub(GLOBAL_HDR).cast::<usize>().read()
            } else {
                crate::cache::ksize(p)
            }
        }
    }

    /// Pages SLOB holds for small blocks.
    pub fn nr_pages() -> usize {
        Self::slob().nr_pages()
    }
}

// SAFETY: blocks of at least `size` bytes at `align` (16-byte aligned
// blocks after a 16-byte header, page blocks, aligned regions) valid
// until `dealloc`.
unsafe impl std::alloc::GlobalAlloc for SlobAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        Self::allocate(layout.size(), layout.align())
    }

    unsafe fn dealloc(&self, p: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: forwarded.
        unsafe { Self::deallocate(p) }
    }
}
