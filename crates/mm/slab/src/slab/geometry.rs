//! A SLAB cache's shape, chosen when it is made: alignment, objects per
//! slab, slab order, on- or off-slab management, colouring, and the
//! per-CPU array tunables (mm/slab.c of 2.6.22-2.6.23, `kmem_cache_create()`,
//! `calculate_slab_order()`, `cache_estimate()`, `enable_cpucache()`).

use crate::page::PAGE_SIZE;

/// `sizeof(struct slab)` on x86-64: a `list_head` (16), `colouroff` (8),
/// `s_mem` (8), `inuse` (4), `free` (4), `nodeid` (2), padded to 48. klab's
/// descriptor ([`super::SlabDesc`]) has the same size (a test checks it).
pub const SLAB_DESC_SIZE: usize = 48;
/// `sizeof(kmem_bufctl_t)`: an `unsigned int`.
pub const BUFCTL_SIZE: usize = 4;
/// `BUFCTL_END`: the end of a slab's free-index chain.
pub const BUFCTL_END: u32 = u32::MAX;
/// `SLAB_LIMIT`: the most objects a slab may hold (`~0U - 3`).
pub const SLAB_LIMIT: usize = (u32::MAX - 3) as usize;
/// `cache_line_size()` on x86-64: the colour step.
pub const CACHE_LINE: usize = 64;
/// `BYTES_PER_WORD`.
pub const BYTES_PER_WORD: usize = 8;
/// `slab_break_gfp_order`: `BREAK_GFP_ORDER_HI` (1), what
/// `kmem_cache_init()` sets on a machine with more than 32 MiB.
pub const SLAB_BREAK_GFP_ORDER: u32 = 1;
/// `KMALLOC_MAX_ORDER` bounded by klab's page allocator (`MAX_ORDER` 8).
pub const KMALLOC_MAX_ORDER: u32 = crate::page_alloc::MAX_ORDER;
/// `BATCHREFILL_LIMIT`: an untouched array refills at most this many.
pub const BATCHREFILL_LIMIT: u32 = 16;
/// `REAPTIMEOUT_CPUC`: `cache_reap()` runs on each CPU every 2 s (ms).
pub const REAPTIMEOUT_CPUC_MS: u64 = 2000;
/// `REAPTIMEOUT_LIST3`: a node's shared array and free slabs are reaped
/// at most every 4 s (ms).
pub const REAPTIMEOUT_LIST3_MS: u64 = 4000;
/// The alien arrays' limit when the cache's limit is above 1
/// (`alloc_alien_cache()`).
pub const ALIEN_LIMIT: u32 = 12;

/// `slab_mgmt_size()`: the on-slab descriptor and its free-index array,
/// aligned.
pub const fn slab_mgmt_size(nr_objs: usize, align: usize) -> usize {
    (SLAB_DESC_SIZE + nr_objs * BUFCTL_SIZE).next_multiple_of(align)
}

/// `cache_estimate()`: objects per slab of order `gfporder` for objects
/// of `buffer_size` bytes, and the bytes left over (the colouring room).
/// Off-slab management keeps nothing in the slab; on-slab, the
/// descriptor and one `kmem_bufctl_t` per object come first.
pub const fn cache_estimate(
    gfporder: u32,
    buffer_size: usize,
    align: usize,
    off_slab: bool,
) -> (usize, usize) {
    let slab_size = PAGE_SIZE << gfporder;
    let (mut num, mgmt) = if off_slab {
        (slab_size / buffer_size, 0)
    } else if slab_size < SLAB_DESC_SIZE {
        (0, 0)
    } else {
        let mut n = (slab_size - SLAB_DESC_SIZE) / (buffer_size + BUFCTL_SIZE);
        if n > 0 && slab_mgmt_size(n, align) + n * buffer_size > slab_size {
            n -= 1;
        }
        (n, 0)
    };
    if num > SLAB_LIMIT {
        num = SLAB_LIMIT;
    }
    let mgmt = if off_slab {
        mgmt
    } else {
        slab_mgmt_size(num, align)
    };
    let left = slab_size - num * buffer_size - mgmt;
    (num, left)
}

/// The shape of a SLAB cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabGeometry {
    /// `obj_size`: the size asked for.
    pub obj_size: usize,
    /// `buffer_size`: the stride (size rounded to word and alignment).
    pub buffer_size: usize,
    /// The objects' alignment.
    pub align: usize,
    /// `num`: objects per slab.
    pub num: usize,
    /// `gfporder`: a slab is `2^gfporder` pages.
    pub gfporder: u32,
    /// `CFLGS_OFF_SLAB`: the descriptor lives in another cache.
    pub off_slab: bool,
    /// `slab_size`: bytes of descriptor plus free-index array.
    pub slab_size: usize,
    /// `colour`: how many colours (offsets) slabs cycle through.
    pub colour: usize,
    /// `colour_off`: bytes per colour (the cache line, or the alignment).
    pub colour_off: usize,
    /// The bytes left over in each slab (`colour * colour_off` of them
    /// colour slabs).
    pub left_over: usize,
}

/// Why a cache cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// Size 0.
    #[error("object size 0")]
    ZeroSize,
    /// An alignment that is not a power of two.
    #[error("alignment {0} is not a power of two")]
    BadAlign(usize),
    /// No order up to `KMALLOC_MAX_ORDER` holds one object.
    #[error("object of {0} bytes fits no slab up to order {KMALLOC_MAX_ORDER}")]
    TooLarge(usize),
}

impl SlabGeometry {
    /// `kmem_cache_create()`'s sizing (mm/slab.c, 2.6.23): the size is
    /// rounded to a word; `SLAB_HWCACHE_ALIGN` aligns to the cache line,
    /// halved while the object fits in half of it; the caller's alignment
    /// wins if larger. Management goes off-slab for objects of
    /// `PAGE_SIZE >> 3` bytes and up; `calculate_slab_order()` picks the
    /// order; an off-slab cache whose left-over room holds the
    /// descriptor moves it back on-slab (at the cost of colours). The
    /// colour step is the cache line, or the alignment if larger.
    /// `reclaim` is `SLAB_RECLAIM_ACCOUNT` (stop at the first order that
    /// fits).
    pub const fn new(
        size: usize,
        align: usize,
        hwcache_align: bool,
        reclaim: bool,
    ) -> Result<SlabGeometry, GeometryError> {
        if size == 0 {
            return Err(GeometryError::ZeroSize);
        }
        if align != 0 && !align.is_power_of_two() {
            return Err(GeometryError::BadAlign(align));
        }
        let obj_size = size;
        let size = size.next_multiple_of(BYTES_PER_WORD);
        let mut ralign = if hwcache_align {
            let mut r = CACHE_LINE;
            while size <= r / 2 {
                r /= 2;
            }
            r
        } else {
            BYTES_PER_WORD
        };
        if ralign < align {
            ralign = align;
        }
        let align = ralign;
        let mut off_slab = size >= PAGE_SIZE >> 3;
        let size = size.next_multiple_of(align);
        let (num, gfporder, mut left_over) = calculate_slab_order(size, align, off_slab, reclaim);
        if num == 0 {
            return Err(GeometryError::TooLarge(obj_size));
        }
        let mut slab_size = slab_mgmt_size(num, align);
        if off_slab && left_over >= slab_size {
            off_slab = false;
            left_over -= slab_size;
        }
        if off_slab {
            slab_size = num * BUFCTL_SIZE + SLAB_DESC_SIZE;
        }
        let colour_off = if CACHE_LINE < align {
            align
        } else {
            CACHE_LINE
        };
        Ok(SlabGeometry {
            obj_size,
            buffer_size: size,
            align,
            num,
            gfporder,
            off_slab,
            slab_size,
            colour: left_over / colour_off,
            colour_off,
            left_over,
        })
    }

    /// Bytes of a slab's pages.
    pub const fn slab_bytes(&self) -> usize {
        PAGE_SIZE << self.gfporder
    }

    /// `enable_cpucache()`'s tunables for this object size.
    pub const fn tunables(&self, smp: bool) -> Tunables {
        Tunables::for_size(self.buffer_size, smp)
    }
}

/// `calculate_slab_order()`: from order 0 up, the first order whose slab
/// holds an object and whose left-over is at most an eighth of the slab,
/// stopping at `slab_break_gfp_order` (and at once for a reclaimable
/// cache); an off-slab cache stops before its `num` exceeds
/// `(size - sizeof(struct slab)) / sizeof(kmem_bufctl_t)` (its descriptor
/// must come from a smaller cache). Returns `(num, order, left_over)`.
pub const fn calculate_slab_order(
    size: usize,
    align: usize,
    off_slab: bool,
    reclaim: bool,
) -> (usize, u32, usize) {
    let mut best = (0, 0, 0);
    let mut gfporder = 0;
    while gfporder <= KMALLOC_MAX_ORDER {
        let (num, remainder) = cache_estimate(gfporder, size, align, off_slab);
        if num == 0 {
            gfporder += 1;
            continue;
        }
        if off_slab {
            let offslab_limit = size.saturating_sub(SLAB_DESC_SIZE) / BUFCTL_SIZE;
            if num > offslab_limit {
                break;
            }
        }
        best = (num, gfporder, remainder);
        if reclaim || gfporder >= SLAB_BREAK_GFP_ORDER {
            break;
        }
        if remainder * 8 <= PAGE_SIZE << gfporder {
            break;
        }
        gfporder += 1;
    }
    best
}

/// A cache's per-CPU array tunables (`cachep->limit`, `batchcount`,
/// `shared`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tunables {
    /// Entries in each CPU's array.
    pub limit: u32,
    /// Objects moved per refill or flush.
    pub batchcount: u32,
    /// The shared array holds `shared * batchcount` entries (0: none).
    pub shared: u32,
}

impl Tunables {
    /// `enable_cpucache()` (mm/slab.c): the limit by object size (above
    /// 128 KiB 1, above a page 8, above 1 KiB 24, above 256 bytes 54,
    /// else 120), `batchcount = (limit + 1) / 2`, and a shared array of 8
    /// batches for objects up to a page on an SMP machine.
    pub const fn for_size(buffer_size: usize, smp: bool) -> Tunables {
        let limit = if buffer_size > 131_072 {
            1
        } else if buffer_size > PAGE_SIZE {
            8
        } else if buffer_size > 1024 {
            24
        } else if buffer_size > 256 {
            54
        } else {
            120
        };
        let shared = if buffer_size <= PAGE_SIZE && smp {
            8
        } else {
            0
        };
        Tunables {
            limit,
            batchcount: limit.div_ceil(2),
            shared,
        }
    }

    /// Entries of each node's shared array (`shared * batchcount`).
    pub const fn shared_entries(&self) -> u32 {
        self.shared * self.batchcount
    }

    /// Entries of each alien array (`alloc_alien_cache()`: 12 when the
    /// limit is above 1).
    pub const fn alien_entries(&self) -> u32 {
        if self.limit > 1 {
            ALIEN_LIMIT
        } else {
            self.limit
        }
    }

    /// A node's `free_limit`: `(1 + cpus on the node) * batchcount + num`
    /// free objects (`alloc_kmemlist()`); beyond it `free_block()` gives
    /// empty slabs back.
    pub const fn free_limit(&self, cpus_on_node: usize, num: usize) -> usize {
        (1 + cpus_on_node) * self.batchcount as usize + num
    }
}
