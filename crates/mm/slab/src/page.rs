//! Page frames and the memory map: klab's `struct page` and `mem_map`.
//!
//! SLUB keeps no metadata inside a slab: "the SLUB allocator stuffs the
//! relevant information into the system memory map - the page structures
//! associated with the pages which make up the slab" (seed 003). klab does
//! the same. Memory comes from a [`PageSource`](crate::PageSource) in
//! *sections* of [`SECTION_SIZE`] bytes aligned to their size, like
//! SPARSEMEM's `mem_section`. The first pages of each section hold its
//! header and its memory map, one [`Page`] per page frame; the remaining
//! frames are handed out by the page allocator ([`crate::page_alloc`]):
//!
//! ```text
//!  section base (aligned to SECTION_SIZE = 2 MiB)
//!  ┌──────────────┬───────────────────────────┬──────────┬──────────┬───
//!  │SectionHeader │ mem_map: [Page; 512]      │ frame 7  │ frame 8  │ ...
//!  └──────────────┴───────────────────────────┴──────────┴──────────┴───
//!   frames 0..RESERVED_PAGES hold the header and the map; slabs never do.
//! ```
//!
//! `virt_to_page(p)` is two instructions: mask `p` down to its section,
//! index the map by `(p - base) >> PAGE_SHIFT`. A slab of order `k` is
//! `2^k` contiguous frames (a compound page); its first frame's `Page`
//! carries the slab fields, the others point back to it
//! ([`Page::head`]), as `compound_head()` does.
//!
//! A *large* region (a kmalloc too big for the page allocator, sent
//! straight to the page source) has a header only: `kind == Large`, its
//! length, and no map; its object starts one page (or one alignment) in.
//!
//! # Fields of a slab page (mirrors the 2.6.24 `struct page` union)
//!
//! | field      | meaning for a slab                                   | protected by |
//! |------------|------------------------------------------------------|--------------|
//! | `flags`    | `PG_slab`, `PG_locked` (slab lock), frozen, debug     | atomic; frozen/debug under the slab lock |
//! | `freelist` | first free object not owned by a CPU                 | slab lock    |
//! | `inuse`    | objects handed out (to users or to a CPU freelist)   | slab lock    |
//! | `offset`   | free-pointer offset in the object, bytes             | immutable while a slab |
//! | `counters` | (3.1+ caches) freelist, `inuse` and `frozen` in one word | compare-and-swap |
//! | `slab`     | the owning cache (`page->slab`)                      | immutable while a slab |
//! | `lru`      | links on a node's partial (or debug full) list       | node `list_lock` |
//!
//! For SLOB pages `inuse` holds the free units and `freelist` the first
//! free block; for buddy-free pages `order` holds the block order and `lru`
//! links the free area list (zone lock).
//!
//! `inuse` and `offset` share one 64-bit atomic word, `counters` (low and
//! high half). The 2.6.24 protocol, SLOB and the buddy allocator read and
//! write the halves under their locks. Caches of the 3.1+ protocol
//! (`cmpxchg_double_slab()`) use the whole word instead: the slab's
//! freelist (as an offset into the slab, so one compare-and-swap covers
//! freelist and counters, as x86's `cmpxchg16b` covers `page->freelist`
//! and `page->counters`), `inuse` and `frozen`; see
//! [`crate::slub`]'s `Counters`.
//!
//! Invariant for a slab page that is not frozen:
//! `inuse + |freelist| == objects`.

use std::cell::UnsafeCell;
use std::ptr::{self, NonNull};

use crate::primitive::{AtomicU16, AtomicU32, AtomicU64, Ordering};

/// log2 of the page size.
pub const PAGE_SHIFT: u32 = 12;
/// The page size, 4 KiB.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
/// log2 of the section size.
pub const SECTION_SHIFT: u32 = 21;
/// Bytes in a section, the unit a [`PageSource`](crate::PageSource) hands out.
pub const SECTION_SIZE: usize = 1 << SECTION_SHIFT;
/// Page frames per section.
pub const PAGES_PER_SECTION: usize = SECTION_SIZE / PAGE_SIZE;
/// Frames at the start of each section that hold its header and map.
pub const RESERVED_PAGES: usize = size_of::<SectionHeader>().div_ceil(PAGE_SIZE);
/// Frames of a section the page allocator can hand out.
pub const USABLE_PAGES: usize = PAGES_PER_SECTION - RESERVED_PAGES;

/// `PG_slab`: the frame is (the head of) a slab.
pub(crate) const PG_SLAB: u32 = 1 << 0;
/// `PG_locked`: the slab lock (`bit_spin_lock(PG_locked, &page->flags)`).
pub(crate) const PG_LOCKED: u32 = 1 << 1;
/// `PG_active` in 2.6.24: the slab is frozen (a CPU's active slab).
pub(crate) const PG_FROZEN: u32 = 1 << 2;
/// `PG_error` in 2.6.24: SlabDebug, every operation takes the slow path.
pub(crate) const PG_DEBUG: u32 = 1 << 3;
/// A tail frame of a compound page: `head` points to the first frame.
pub(crate) const PG_TAIL: u32 = 1 << 4;
/// The head of a free block in the buddy allocator (`PageBuddy`).
pub(crate) const PG_BUDDY: u32 = 1 << 5;
/// A SLOB page (`PageSlobPage`).
pub(crate) const PG_SLOB: u32 = 1 << 6;
/// A SLOB page on a free list (`PageSlobFree`).
pub(crate) const PG_SLOB_FREE: u32 = 1 << 7;
/// A compound page handed out by `alloc_pages` for a large kmalloc.
pub(crate) const PG_COMPOUND: u32 = 1 << 8;
/// The slab is on its node's partial list.
pub(crate) const PG_PARTIAL: u32 = 1 << 9;
/// The slab is on its node's debug full list.
pub(crate) const PG_FULL: u32 = 1 << 10;
/// The head frame of a SLAB (mm/slab.c) slab: `slab` names its cache and
/// `prev` its descriptor (`page_set_cache()`, `page_set_slab()`).
pub(crate) const PG_SLAB_CLASSIC: u32 = 1 << 11;
/// Bits 16-31 of a kmalloc slab's flags: `(lockless << 8 | kmalloc_index)
/// + 1` of its cache (0: not a kmalloc slab), so a free finds its CPU
/// state without reading the cache (the kernel keeps the node and zone
/// in the upper bits of `page->flags` the same way).
pub(crate) const PG_CLASS_SHIFT: u32 = 16;

/// What a section holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum SectionKind {
    /// Page frames managed by the buddy allocator, with a memory map.
    Frames = 0x6b6c_6162, // "klab"
    /// One large allocation straight from the page source.
    Large = 0x6c61_7267, // "larg"
}

/// The header at the start of each section.
#[repr(C)]
pub(crate) struct SectionHeader {
    /// What the section holds (`Frames` or `Large`).
    pub(crate) kind: SectionKind,
    /// NUMA node the section belongs to.
    pub(crate) node: u32,
    /// For `Large`: the number of sections in the region.
    pub(crate) nr_sections: usize,
    /// For `Large`: the usable bytes at `object`.
    pub(crate) large_bytes: usize,
    /// For `Large`: the object's offset from the base.
    pub(crate) large_offset: usize,
    /// For `Frames`: free frames in this section (zone lock).
    pub(crate) nr_free: UnsafeCell<usize>,
    /// For `Frames`: links on the zone's section list (zone lock).
    pub(crate) next: UnsafeCell<*mut SectionHeader>,
    /// For `Frames`: each frame's kmalloc class as in its flags
    /// (`PG_CLASS_SHIFT`), 0 for none: a free reads 2 bytes here instead
    /// of the frame's 64-byte `struct page`, so the class map of a 2 MiB
    /// section is 16 cache lines where its memory map is 512 (the kernel
    /// reads `slab->slab_cache` from the frame; a program that frees blocks
    /// scattered over megabytes misses on that line). Written when a slab
    /// is made, cleared when its frames go back to the buddy allocator.
    pub(crate) classes: [AtomicU16; PAGES_PER_SECTION],
    /// For `Frames`: the memory map.
    pub(crate) mem_map: [Page; PAGES_PER_SECTION],
}

macro_rules! page_field {
    ($get:ident, $set:ident, $field:ident, $t:ty) => {
        /// Reads the field.
        ///
        /// # Safety
        /// The caller holds the lock that protects the field (see the module
        /// table), or owns the frame.
        #[inline(always)]
        pub(crate) unsafe fn $get(&self) -> $t {
            // SAFETY: the caller holds the field's lock.
            unsafe { *self.$field.get() }
        }

        /// Writes the field.
        ///
        /// # Safety
        /// As for the getter.
        #[inline(always)]
        pub(crate) unsafe fn $set(&self, v: $t) {
            // SAFETY: the caller holds the field's lock.
            unsafe { *self.$field.get() = v }
        }
    };
}

/// klab's `struct page`: one per page frame, in its section's memory map.
/// Each mutable field is its own cell, because different locks guard
/// different fields (the slab lock guards `freelist` and `inuse`, the node
/// list lock guards `next` and `prev`).
///
/// One cache line, as the kernel's 64-byte `struct page` on x86-64 (whose
/// `freelist` and `counters` must be 16-byte aligned for `cmpxchg16b`):
/// two slabs' frames never share a line, so compare-and-swaps on one
/// slab's `counters` by different CPUs do not false-share with a
/// neighbour's.
#[repr(align(64))]
pub struct Page {
    pub(crate) flags: AtomicU32,
    /// First free object (slab) or free block (SLOB); head page for tails.
    freelist: UnsafeCell<*mut u8>,
    /// Low half: objects in use (slab) or free units (SLOB). High half:
    /// free-pointer offset in bytes (slab), block order (buddy, compound),
    /// free-list index (SLOB). The whole word: a 3.1+ slab's `Counters`.
    pub(crate) counters: AtomicU64,
    /// The owning cache (slab): a `*const CacheCore`.
    slab: UnsafeCell<*const u8>,
    /// List links.
    next: UnsafeCell<*mut Page>,
    /// List links.
    prev: UnsafeCell<*mut Page>,
}

// SAFETY: every cell is only read or written under the lock the module
// table names (slab lock, node list_lock, zone lock) or by the owner of a
// frozen slab; `flags` is atomic.
unsafe impl Sync for Page {}
// SAFETY: as above; a Page holds no thread-affine data.
unsafe impl Send for Page {}

impl Page {
    /// An unused frame: no flags, empty fields.
    #[allow(clippy::declare_interior_mutable_const)]
    pub(crate) const EMPTY: Page = Page {
        flags: AtomicU32::new(0),
        freelist: UnsafeCell::new(ptr::null_mut()),
        counters: AtomicU64::new(0),
        slab: UnsafeCell::new(ptr::null()),
        next: UnsafeCell::new(ptr::null_mut()),
        prev: UnsafeCell::new(ptr::null_mut()),
    };

    page_field!(freelist, set_freelist, freelist, *mut u8);

    /// Objects in use (slab) or free units (SLOB): the low half of
    /// `counters`.
    ///
    /// # Safety
    /// The caller holds the lock that protects the field (see the module
    /// table), or owns the frame. (The accessors are atomic, so no
    /// undefined behaviour can follow from a race; the lock keeps the
    /// value meaningful.)
    #[inline(always)]
    pub(crate) unsafe fn inuse(&self) -> u32 {
        self.counters.load(Ordering::Relaxed) as u32
    }

    /// Sets the low half of `counters`.
    ///
    /// # Safety
    /// As for [`Self::inuse`]: nobody else writes the word meanwhile.
    #[inline(always)]
    pub(crate) unsafe fn set_inuse(&self, v: u32) {
        let w = self.counters.load(Ordering::Relaxed);
        self.counters
            .store((w & !0xffff_ffff) | u64::from(v), Ordering::Relaxed);
    }

    /// Free-pointer offset (slab), order (buddy, compound), list index
    /// (SLOB): the high half of `counters`.
    ///
    /// # Safety
    /// As for [`Self::inuse`].
    #[inline(always)]
    pub(crate) unsafe fn offset(&self) -> u32 {
        (self.counters.load(Ordering::Relaxed) >> 32) as u32
    }

    /// Sets the high half of `counters`.
    ///
    /// # Safety
    /// As for [`Self::set_inuse`].
    #[inline(always)]
    pub(crate) unsafe fn set_offset(&self, v: u32) {
        let w = self.counters.load(Ordering::Relaxed);
        self.counters
            .store((w & 0xffff_ffff) | (u64::from(v) << 32), Ordering::Relaxed);
    }
    page_field!(slab, set_slab, slab, *const u8);
    page_field!(next, set_next, next, *mut Page);
    page_field!(prev, set_prev, prev, *mut Page);

    /// Tests a flag.
    #[inline(always)]
    pub(crate) fn test(&self, flag: u32) -> bool {
        self.flags.load(Ordering::Relaxed) & flag != 0
    }

    /// Sets a flag.
    #[inline(always)]
    pub(crate) fn set(&self, flag: u32) {
        self.flags.fetch_or(flag, Ordering::Relaxed);
    }

    /// Clears a flag.
    #[inline(always)]
    pub(crate) fn clear(&self, flag: u32) {
        self.flags.fetch_and(!flag, Ordering::Relaxed);
    }

    /// `slab_lock()`: the bit spin lock on `PG_locked`.
    #[inline]
    pub(crate) fn lock(&self) {
        crate::reentry::acquired();
        if self.flags.fetch_or(PG_LOCKED, Ordering::Acquire) & PG_LOCKED == 0 {
            return;
        }
        self.lock_contended();
    }

    #[cold]
    fn lock_contended(&self) {
        let mut spins = 0u32;
        loop {
            while self.flags.load(Ordering::Relaxed) & PG_LOCKED != 0 {
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(64) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            if self.flags.fetch_or(PG_LOCKED, Ordering::Acquire) & PG_LOCKED == 0 {
                return;
            }
        }
    }

    /// `slab_trylock()`.
    #[inline]
    pub(crate) fn trylock(&self) -> bool {
        let ok = self.flags.fetch_or(PG_LOCKED, Ordering::Acquire) & PG_LOCKED == 0;
        if ok {
            crate::reentry::acquired();
        }
        ok
    }

    /// `slab_unlock()`.
    #[inline]
    pub(crate) fn unlock(&self) {
        self.flags.fetch_and(!PG_LOCKED, Ordering::Release);
        crate::reentry::released();
    }

    /// The section this frame belongs to.
    #[inline(always)]
    pub(crate) fn section(this: *const Page) -> *mut SectionHeader {
        this.map_addr(|a| a & !(SECTION_SIZE - 1))
            .cast::<SectionHeader>()
            .cast_mut()
    }

    /// The frame's index in its section.
    #[inline(always)]
    pub(crate) fn index(this: *const Page) -> usize {
        let base = Self::section(this);
        // SAFETY: `this` points into the section's mem_map.
        let map = unsafe { ptr::addr_of!((*base).mem_map) }.cast::<Page>();
        (this.addr() - map.addr()) / size_of::<Page>()
    }

    /// `page_address()`: the first byte of the frame.
    #[inline(always)]
    pub(crate) fn address(this: *const Page) -> *mut u8 {
        let base = Self::section(this).cast::<u8>();
        base.wrapping_add(Self::index(this) << PAGE_SHIFT)
    }

    /// The NUMA node of the frame.
    #[inline]
    pub(crate) fn node(this: *const Page) -> usize {
        // SAFETY: a frame's section header is initialised before any of its
        // frames is handed out and `node` never changes.
        unsafe { (*Self::section(this)).node as usize }
    }

    /// `compound_head()`: the first frame of the compound page.
    #[inline(always)]
    pub(crate) fn head(this: *const Page) -> *const Page {
        // SAFETY: `this` is a frame of a live section; a tail's `freelist`
        // holds its head and is only written when the compound page is made.
        unsafe {
            if (*this).test(PG_TAIL) {
                (*this).freelist().cast::<Page>().cast_const()
            } else {
                this
            }
        }
    }
}

/// `virt_to_page()`: the frame holding `p`, or `None` if `p` lies in a
/// large region or in a section's reserved frames.
///
/// # Safety
/// `p` lies in a section handed out by the page allocator that is still
/// live (so its header can be read).
#[inline(always)]
pub(crate) unsafe fn virt_to_page(p: *const u8) -> Option<*const Page> {
    let base = p
        .map_addr(|a| a & !(SECTION_SIZE - 1))
        .cast::<SectionHeader>();
    // SAFETY: the caller guarantees the section is live.
    if unsafe { (*base).kind } != SectionKind::Frames {
        return None;
    }
    let idx = (p.addr() - base.addr()) >> PAGE_SHIFT;
    if idx < RESERVED_PAGES {
        return None;
    }
    // SAFETY: idx < PAGES_PER_SECTION, so the map entry is in bounds.
    Some(unsafe { ptr::addr_of!((*base).mem_map[idx]) })
}

/// The kmalloc class of the frame holding `p`, from its section's class
/// map: `Some(0)` for a frame of no kmalloc slab, `None` for a large
/// region or a reserved frame (no memory map).
///
/// # Safety
/// As [`virt_to_page`].
#[inline(always)]
pub(crate) unsafe fn frame_class(p: *const u8) -> Option<u32> {
    let base = p
        .map_addr(|a| a & !(SECTION_SIZE - 1))
        .cast::<SectionHeader>();
    // SAFETY: the caller guarantees the section is live.
    if unsafe { (*base).kind } != SectionKind::Frames {
        return None;
    }
    let idx = (p.addr() - base.addr()) >> PAGE_SHIFT;
    if idx < RESERVED_PAGES {
        return None;
    }
    // SAFETY: idx < PAGES_PER_SECTION: in bounds of the live map.
    Some(u32::from(unsafe {
        (*ptr::addr_of!((*base).classes[idx])).load(Ordering::Relaxed)
    }))
}

/// Sets the class map entries of `2^order` frames from `page` on.
///
/// # Safety
/// `page` heads a block of `2^order` frames the caller owns.
pub(crate) unsafe fn set_frame_classes(page: *const Page, order: u32, class: u32) {
    let s = Page::section(page);
    let idx = Page::index(page);
    for i in 0..1usize << order {
        // SAFETY: the frames are in the live section, idx + i < 512.
        unsafe { (*ptr::addr_of!((*s).classes[idx + i])).store(class as u16, Ordering::Relaxed) };
    }
}

/// The section header of the section holding `p`.
#[inline(always)]
pub(crate) fn section_of(p: *const u8) -> *mut SectionHeader {
    p.map_addr(|a| a & !(SECTION_SIZE - 1))
        .cast::<SectionHeader>()
        .cast_mut()
}

/// The frame at `idx` of `section`.
///
/// # Safety
/// `section` is a live `Frames` section and `idx < PAGES_PER_SECTION`.
#[inline(always)]
pub(crate) unsafe fn frame(section: NonNull<SectionHeader>, idx: usize) -> *const Page {
    // SAFETY: in bounds by the caller's contract.
    unsafe { ptr::addr_of!((*section.as_ptr()).mem_map[idx]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_fits_in_the_reserved_frames() {
        // 64-byte pages: 512 * 64 = 32 KiB of map plus a small header.
        assert_eq!(size_of::<Page>(), 64);
        assert_eq!(RESERVED_PAGES, 9);
        assert_eq!(USABLE_PAGES, 503);
        assert!(RESERVED_PAGES * PAGE_SIZE >= size_of::<SectionHeader>());
    }
}
