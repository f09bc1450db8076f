//! Cache flags and object layout: where each byte of a slab object goes and
//! how many pages a slab takes. Mirrors mm/slub.c (2.6.24)
//! `calculate_alignment()`, `calculate_sizes()`, `slab_order()` and
//! `calculate_order()`.
//!
//! # Object layout (one object of a cache)
//!
//! ```text
//! object                                       object + size
//! ├── [0, objsize) ───┼─ [objsize, inuse) ─┼─ fp ─┼─ 2×track ─┼─ rz ─┼─ pad ─┤
//!     the object        word padding / red      free   alloc/free  red    align
//!     (poisoned 0x6b,   zone (0xbb free,        ptr    owner       zone   filler
//!     last byte 0xa5    0xcc in use)            (if    (STORE_     word   (0x5a)
//!     while free)                               moved) USER)
//! ```
//!
//! * `inuse = ALIGN(objsize, word)`, plus one word if red-zoning and the
//!   object already ends on a word boundary (there must be red zone bytes);
//! * the free pointer overlays the object's first word (`offset == 0`)
//!   unless the object may not be written while free: RCU-freed caches
//!   (`SLAB_DESTROY_BY_RCU`), caches with a constructor, and poisoned
//!   caches; then it sits at `offset == inuse`, outside the object;
//! * `size = ALIGN(…, align)`: objects are packed from the slab's first
//!   byte with stride `size`; `objects = (PAGE_SIZE << order) / size`.
//!
//! Invariants: `objsize <= inuse <= size`, `size % align == 0`,
//! `offset == 0 || offset >= inuse`, `offset + word <= size`,
//! `objects * size <= PAGE_SIZE << order`.

use std::fmt;
use std::ops::{BitAnd, BitOr, BitOrAssign, Not};

use crate::page::{PAGE_SHIFT, PAGE_SIZE};

/// Cache flags (`SLAB_*`), with the 2.6.24 values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct SlabFlags(pub u32);

impl SlabFlags {
    /// No flags.
    pub const NONE: SlabFlags = SlabFlags(0);
    /// `SLAB_DEBUG_FREE` (`F`): sanity checks on free.
    pub const DEBUG_FREE: SlabFlags = SlabFlags(0x0000_0100);
    /// `SLAB_RED_ZONE` (`Z`): red zones around objects.
    pub const RED_ZONE: SlabFlags = SlabFlags(0x0000_0400);
    /// `SLAB_POISON` (`P`): poison free objects.
    pub const POISON: SlabFlags = SlabFlags(0x0000_0800);
    /// `SLAB_HWCACHE_ALIGN`: align objects on cache lines.
    pub const HWCACHE_ALIGN: SlabFlags = SlabFlags(0x0000_2000);
    /// `SLAB_CACHE_DMA`: memory from the DMA zone.
    pub const CACHE_DMA: SlabFlags = SlabFlags(0x0000_4000);
    /// `SLAB_STORE_USER` (`U`): record who allocated and freed.
    pub const STORE_USER: SlabFlags = SlabFlags(0x0001_0000);
    /// `SLAB_RECLAIM_ACCOUNT`: objects are reclaimable (dentries, inodes).
    pub const RECLAIM_ACCOUNT: SlabFlags = SlabFlags(0x0002_0000);
    /// `SLAB_PANIC`: panic if the cache cannot be created.
    pub const PANIC: SlabFlags = SlabFlags(0x0004_0000);
    /// `SLAB_DESTROY_BY_RCU`: slab pages are freed after an RCU grace
    /// period; objects may be read after free, so the free pointer moves out.
    pub const DESTROY_BY_RCU: SlabFlags = SlabFlags(0x0008_0000);
    /// `SLAB_MEM_SPREAD`: spread allocations over cpuset memory nodes.
    pub const MEM_SPREAD: SlabFlags = SlabFlags(0x0010_0000);
    /// `SLAB_TRACE` (`T`): trace allocations and frees.
    pub const TRACE: SlabFlags = SlabFlags(0x0020_0000);
    /// `__OBJECT_POISON`: internal, the object itself may be poisoned.
    pub const OBJECT_POISON: SlabFlags = SlabFlags(0x8000_0000);

    /// `DEBUG_DEFAULT_FLAGS`: what bare `slub_debug` turns on (`FZPU`).
    pub const DEBUG_DEFAULT: SlabFlags =
        SlabFlags(Self::DEBUG_FREE.0 | Self::RED_ZONE.0 | Self::POISON.0 | Self::STORE_USER.0);
    /// `SLUB_NEVER_MERGE`: a cache with any of these is never merged.
    pub const NEVER_MERGE: SlabFlags = SlabFlags(
        Self::RED_ZONE.0
            | Self::POISON.0
            | Self::STORE_USER.0
            | Self::TRACE.0
            | Self::DESTROY_BY_RCU.0,
    );
    /// `SLUB_MERGE_SAME`: merged caches must agree on these.
    pub const MERGE_SAME: SlabFlags =
        SlabFlags(Self::DEBUG_FREE.0 | Self::RECLAIM_ACCOUNT.0 | Self::CACHE_DMA.0);
    /// Flags that make a slab a debug slab (`SetSlabDebug()` in `new_slab()`).
    pub const DEBUG_SLAB: SlabFlags = SlabFlags(
        Self::DEBUG_FREE.0 | Self::RED_ZONE.0 | Self::POISON.0 | Self::STORE_USER.0 | Self::TRACE.0,
    );

    /// True if every flag of `other` is set.
    pub const fn contains(self, other: SlabFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True if any flag of `other` is set.
    pub const fn intersects(self, other: SlabFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// The union.
    pub const fn with(self, other: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 | other.0)
    }

    /// `self` without `other`.
    pub const fn without(self, other: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 & !other.0)
    }

    /// Parses the letters of `slub_debug=` (`F`, `Z`, `P`, `U`, `T`, any
    /// case). Unknown letters are returned in the error.
    pub fn from_debug_letters(s: &str) -> Result<SlabFlags, char> {
        let mut f = SlabFlags::NONE;
        for c in s.chars() {
            f |= match c.to_ascii_lowercase() {
                'f' => Self::DEBUG_FREE,
                'z' => Self::RED_ZONE,
                'p' => Self::POISON,
                'u' => Self::STORE_USER,
                't' => Self::TRACE,
                _ => return Err(c),
            };
        }
        Ok(f)
    }
}

impl BitOr for SlabFlags {
    type Output = SlabFlags;
    fn bitor(self, rhs: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 | rhs.0)
    }
}
impl BitOrAssign for SlabFlags {
    fn bitor_assign(&mut self, rhs: SlabFlags) {
        self.0 |= rhs.0;
    }
}
impl BitAnd for SlabFlags {
    type Output = SlabFlags;
    fn bitand(self, rhs: SlabFlags) -> SlabFlags {
        SlabFlags(self.0 & rhs.0)
    }
}
impl Not for SlabFlags {
    type Output = SlabFlags;
    fn not(self) -> SlabFlags {
        SlabFlags(!self.0)
    }
}

impl fmt::Debug for SlabFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(SlabFlags, &str); 12] = [
            (SlabFlags::DEBUG_FREE, "DEBUG_FREE"),
            (SlabFlags::RED_ZONE, "RED_ZONE"),
            (SlabFlags::POISON, "POISON"),
            (SlabFlags::HWCACHE_ALIGN, "HWCACHE_ALIGN"),
            (SlabFlags::CACHE_DMA, "CACHE_DMA"),
            (SlabFlags::STORE_USER, "STORE_USER"),
            (SlabFlags::RECLAIM_ACCOUNT, "RECLAIM_ACCOUNT"),
            (SlabFlags::PANIC, "PANIC"),
            (SlabFlags::DESTROY_BY_RCU, "DESTROY_BY_RCU"),
            (SlabFlags::MEM_SPREAD, "MEM_SPREAD"),
            (SlabFlags::TRACE, "TRACE"),
            (SlabFlags::OBJECT_POISON, "OBJECT_POISON"),
        ];
        let names: Vec<&str> = NAMES
            .iter()
            .filter(|(v, _)| self.contains(*v))
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            f.write_str("NONE")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

/// Bytes in a machine word (`sizeof(void *)`).
pub const WORD: usize = size_of::<usize>();
/// `sizeof(struct track)`: caller address, cpu, pid, time.
pub const TRACK_SIZE: usize = 24;
/// `ARCH_SLAB_MINALIGN` on x86-64 (`__alignof__(unsigned long long)`).
pub const ARCH_SLAB_MINALIGN: usize = 8;
/// `cache_line_size()` assumed for `SLAB_HWCACHE_ALIGN`.
pub const CACHE_LINE: usize = 64;

/// Tunables of order selection: the `slub_min_order=`, `slub_max_order=`
/// and `slub_min_objects=` boot options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlubParams {
    /// `slub_min_order`.
    pub min_order: u32,
    /// `slub_max_order`.
    pub max_order: u32,
    /// `slub_min_objects`.
    pub min_objects: usize,
}

impl SlubParams {
    /// The 2.6.24 defaults for 4 KiB pages: `DEFAULT_MAX_ORDER 1`,
    /// `DEFAULT_MIN_OBJECTS 4`.
    pub const V2_6_24: SlubParams = SlubParams {
        min_order: 0,
        max_order: 1,
        min_objects: 4,
    };
    /// The defaults klab's allocator runs with: later SLUB's
    /// `slub_max_order = PAGE_ALLOC_COSTLY_ORDER (3)` and 2.6.24's
    /// `DEFAULT_MIN_OBJECTS` (4; later kernels' `slub_min_objects=4`), so
    /// `calculate_order()` (mm/slub.c) gives `kmalloc-1024` one page and
    /// only the classes above 4 KiB slabs of 32 KiB.
    ///
    /// A fresh slab is resident in full as soon as it is made:
    /// `new_slab()` threads the free list through every object, and so
    /// writes to every page (in the kernel all memory is resident anyway).
    /// Every class a thread touches costs it one such slab, however few
    /// objects it takes, so `min_objects` bounds a small program's resident
    /// excess over glibc: with the kernel's `4 * (fls(nr_cpu_ids) + 1)`
    /// for two CPUs (12), kmalloc-1024 and up took 16-32 KiB per class and
    /// thread (glibc-thread of mimalloc-bench: 3.3 MiB peak against glibc's
    /// 2.0; with 4: 2.7). With sheaves in front of the CPU slabs
    /// (6.18) the larger slabs bought no measurable speed.
    pub const ALLOCATOR: SlubParams = SlubParams {
        min_order: 0,
        max_order: 3,
        min_objects: 4,
    };
}

impl Default for SlubParams {
    fn default() -> Self {
        Self::V2_6_24
    }
}

/// The computed layout of a cache's objects and slabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLayout {
    /// Bytes the user asked for (`objsize`).
    pub objsize: usize,
    /// Offset of the metadata: word-aligned object plus red zone (`inuse`).
    pub inuse: usize,
    /// Free-pointer offset (`offset`).
    pub offset: usize,
    /// Stride of objects in the slab (`size`).
    pub size: usize,
    /// Alignment of objects.
    pub align: usize,
    /// Slab order: a slab is `2^order` pages.
    pub order: u32,
    /// Objects per slab.
    pub objects: usize,
    /// The flags, with `OBJECT_POISON` decided.
    pub flags: SlabFlags,
}

/// Why a layout could not be computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// No order up to the page allocator's maximum holds one object.
    #[error("object of {size} bytes does not fit in a slab of order <= {max_order}")]
    TooLarge {
        /// The stride that did not fit.
        size: usize,
        /// The largest order tried.
        max_order: u32,
    },
    /// The alignment is not a power of two.
    #[error("alignment {0} is not a power of two")]
    BadAlign(usize),
    /// The object size is 0.
    #[error("object size is 0")]
    ZeroSize,
}

const fn align_up(v: usize, a: usize) -> usize {
    (v + a - 1) & !(a - 1)
}

const fn fls(v: usize) -> u32 {
    usize::BITS - v.leading_zeros()
}

/// `calculate_alignment()`.
pub const fn calculate_alignment(flags: SlabFlags, align: usize, size: usize) -> usize {
    if flags.contains(SlabFlags::HWCACHE_ALIGN) && size > CACHE_LINE / 2 {
        return if align > CACHE_LINE {
            align
        } else {
            CACHE_LINE
        };
    }
    if align < ARCH_SLAB_MINALIGN {
        return ARCH_SLAB_MINALIGN;
    }
    align_up(align, WORD)
}

/// `slab_order()`: the smallest order from
/// `max(min_order, fls(min_objects * size - 1) - PAGE_SHIFT)` whose slab
/// holds `min_objects` objects and leaves at most
/// `slab_size / fract_leftover` bytes unused; `max_order + 1` when none
/// does.
pub const fn slab_order(
    size: usize,
    min_objects: usize,
    min_order: u32,
    max_order: u32,
    fract_leftover: usize,
) -> u32 {
    let need = fls(min_objects * size - 1);
    let from = need.saturating_sub(PAGE_SHIFT);
    let mut order = if min_order > from { min_order } else { from };
    while order <= max_order {
        let slab_size = PAGE_SIZE << order;
        if slab_size >= min_objects * size {
            let rem = slab_size % size;
            if rem <= slab_size / fract_leftover {
                return order;
            }
        }
        order += 1;
    }
    order
}

/// `calculate_order()`: first lower the acceptable waste (1/8, then 1/4),
/// then halve `min_objects` down to 2; then one object per slab up to
/// `max_order`; then up to `hard_max_order` (the page allocator's limit).
pub const fn calculate_order(size: usize, p: SlubParams, hard_max_order: u32) -> Option<u32> {
    let mut min_objects = p.min_objects;
    while min_objects > 1 {
        let mut fraction = 8;
        while fraction >= 4 {
            let order = slab_order(size, min_objects, p.min_order, p.max_order, fraction);
            if order <= p.max_order {
                return Some(order);
            }
            fraction /= 2;
        }
        min_objects /= 2;
    }
    let order = slab_order(size, 1, p.min_order, p.max_order, 1);
    if order <= p.max_order {
        return Some(order);
    }
    let order = slab_order(size, 1, p.min_order, hard_max_order, 1);
    if order <= hard_max_order {
        return Some(order);
    }
    None
}

/// `calculate_sizes()`: the layout of a cache created with `objsize`,
/// `align` and `flags` (with any `slub_debug` flags already folded in).
pub const fn calculate_sizes(
    objsize: usize,
    align: usize,
    flags: SlabFlags,
    has_ctor: bool,
    p: SlubParams,
    hard_max_order: u32,
) -> Result<CacheLayout, LayoutError> {
    if objsize == 0 {
        return Err(LayoutError::ZeroSize);
    }
    if align != 0 && !align.is_power_of_two() {
        return Err(LayoutError::BadAlign(align));
    }
    // Poison the object itself only if nobody may touch it while free.
    let flags = if flags.contains(SlabFlags::POISON)
        && !flags.contains(SlabFlags::DESTROY_BY_RCU)
        && !has_ctor
    {
        flags.with(SlabFlags::OBJECT_POISON)
    } else {
        flags.without(SlabFlags::OBJECT_POISON)
    };
    let mut size = align_up(objsize, WORD);
    if flags.contains(SlabFlags::RED_ZONE) && size == objsize {
        size += WORD;
    }
    let inuse = size;
    let mut offset = 0;
    if flags.intersects(SlabFlags(SlabFlags::DESTROY_BY_RCU.0 | SlabFlags::POISON.0)) || has_ctor {
        offset = size;
        size += WORD;
    }
    if flags.contains(SlabFlags::STORE_USER) {
        size += 2 * TRACK_SIZE;
    }
    if flags.contains(SlabFlags::RED_ZONE) {
        size += WORD;
    }
    let align = calculate_alignment(flags, align, objsize);
    let size = align_up(size, align);
    let order = match calculate_order(size, p, hard_max_order) {
        Some(o) => o,
        None => {
            return Err(LayoutError::TooLarge {
                size,
                max_order: hard_max_order,
            });
        }
    };
    let objects = (PAGE_SIZE << order) / size;
    Ok(CacheLayout {
        objsize,
        inuse,
        offset,
        size,
        align,
        order,
        objects,
        flags,
    })
}

impl CacheLayout {
    /// Checks the invariants in the module header.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        assert!(self.objsize <= self.inuse && self.inuse <= self.size);
        assert_eq!(self.size % self.align, 0);
        assert!(self.offset == 0 || self.offset >= self.inuse);
        assert!(self.offset + WORD <= self.size);
        assert!(self.objects >= 1 && self.objects * self.size <= PAGE_SIZE << self.order);
    }

    /// End of the free pointer and tracking data: where alignment padding
    /// (`POISON_INUSE`) begins (`check_pad_bytes()`).
    pub const fn pad_start(&self) -> usize {
        let mut off = if self.offset != 0 {
            self.offset + WORD
        } else {
            self.inuse
        };
        if self.flags.contains(SlabFlags::STORE_USER) {
            off += 2 * TRACK_SIZE;
        }
        off
    }

    /// Offset of the tracking records (`get_track()`).
    pub const fn track_offset(&self) -> usize {
        if self.offset != 0 {
            self.offset + WORD
        } else {
            self.inuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: SlubParams = SlubParams::V2_6_24;

    #[track_caller]
    fn lay(objsize: usize, align: usize, flags: SlabFlags, ctor: bool) -> CacheLayout {
        let l = calculate_sizes(objsize, align, flags, ctor, P, 10).unwrap();
        l.assert_invariants();
        l
    }

    #[test]
    fn plain_objects_overlay_the_free_pointer() {
        // kmalloc-8: size 8, order 0, 512 objects, free pointer in word 0.
        let l = lay(8, 8, SlabFlags::NONE, false);
        assert_eq!(
            (l.size, l.inuse, l.offset, l.order, l.objects),
            (8, 8, 0, 0, 512)
        );
        // kmalloc-192: 4096 / 192 = 21 objects, 64 bytes left (<= 4096/8).
        let l = lay(192, 8, SlabFlags::NONE, false);
        assert_eq!((l.size, l.order, l.objects), (192, 0, 21));
        // kmalloc-2048: four objects need order 1.
        let l = lay(2048, 8, SlabFlags::NONE, false);
        assert_eq!((l.order, l.objects), (1, 4));
    }

    #[test]
    fn rcu_and_ctor_caches_move_the_free_pointer_out_of_the_object() {
        let l = lay(100, 8, SlabFlags::DESTROY_BY_RCU, false);
        // inuse = ALIGN(100, 8) = 104; offset = 104; size = 112.
        assert_eq!((l.inuse, l.offset, l.size), (104, 104, 112));
        let l = lay(100, 8, SlabFlags::NONE, true);
        assert_eq!((l.inuse, l.offset, l.size), (104, 104, 112));
    }

    #[test]
    fn full_debug_layout_matches_the_kernel_comment() {
        // 64-byte object with F|Z|P|U: inuse = 64 + 8 (red zone word, the
        // object is word-aligned) = 72; free pointer at 72; tracks 80..128;
        // trailing red zone word 128..136; size 136.
        let l = lay(64, 8, SlabFlags::DEBUG_DEFAULT, false);
        assert_eq!((l.inuse, l.offset, l.size), (72, 72, 136));
        assert_eq!(l.track_offset(), 80);
        assert_eq!(l.pad_start(), 128);
        assert!(l.flags.contains(SlabFlags::OBJECT_POISON));
        // A ctor cache may not poison the object itself.
        let l = lay(64, 8, SlabFlags::POISON, true);
        assert!(!l.flags.contains(SlabFlags::OBJECT_POISON));
    }

    #[test]
    fn hwcache_alignment_only_for_objects_over_half_a_line() {
        assert_eq!(calculate_alignment(SlabFlags::HWCACHE_ALIGN, 0, 32), 8);
        assert_eq!(calculate_alignment(SlabFlags::HWCACHE_ALIGN, 0, 33), 64);
        assert_eq!(calculate_alignment(SlabFlags::HWCACHE_ALIGN, 128, 200), 128);
        assert_eq!(calculate_alignment(SlabFlags::NONE, 4, 10), 8);
        assert_eq!(calculate_alignment(SlabFlags::NONE, 16, 10), 16);
    }

    #[test]
    fn order_selection_backs_off_as_the_kernel_does() {
        // 700-byte objects: order 0 holds 5 with 596 left (> 4096/8 = 512)
        // so the 1/8 rule fails; order 1 holds 11 with 492 left: order 1.
        assert_eq!(slab_order(700, 4, 0, 1, 8), 1);
        assert_eq!(calculate_order(700, P, 10), Some(1));
        // 3000-byte objects: min_objects 4 needs order 2 (> max 1), then 2
        // objects at order 1 leave 2192 bytes (> 1/4): one object per slab.
        assert_eq!(calculate_order(3000, P, 10), Some(0));
        // Bigger than max_order allows: only the hard limit fits.
        assert_eq!(calculate_order(20000, P, 10), Some(3));
        assert_eq!(calculate_order(1 << 30, P, 10), None);
    }

    #[test]
    fn debug_letters_parse_like_slub_debug() {
        assert_eq!(
            SlabFlags::from_debug_letters("FZpu"),
            Ok(SlabFlags::DEBUG_DEFAULT)
        );
        assert_eq!(SlabFlags::from_debug_letters("x"), Err('x'));
        assert_eq!(
            format!("{:?}", SlabFlags::RED_ZONE | SlabFlags::POISON),
            "RED_ZONE|POISON"
        );
    }
}
