//! TuxOnIce (Suspend2), the out-of-tree hibernation seed 001 asks
//! developers to bring into the mainline: the page cache is saved, not
//! dropped, and the image is compressed.
//!
//! ```text
//!  freeze_processes()                    the same freezer (freezer.rs)
//!  toi_recalculate_image_contents()      tuxonice_prepare_image.c flag_image_pages()
//!    pageset 2 = the pages on the LRU lists (page cache, process pages)
//!    pageset 1 = every other saveable page (kernel: slab, page tables, text)
//!  eat_memory() while amount_needed() > 0
//!    amount_needed = max(ps1_to_free, any_to_free)
//!      lowpages_ps1_to_free = DIV_ROUND_UP(ps1 + extra_pd1_pages_allowance
//!                               + MIN_FREE_RAM - (ps2 + free), 2), if positive
//!      any_to_free = max(image_size_limit excess, storage_still_required,
//!                        ram_still_required = MIN_FREE_RAM
//!                          + 2 * extra_pd1_pages_allowance - free, if positive)
//!    freed with shrink_all_memory(amount)
//!  write pageset 2 (in place: frozen tasks do not touch it)   through the
//!  atomic copy of pageset 1 into free pages and pageset 2's   compression
//!  write pageset 1                                            filter
//!  resume: read pageset 1, restore it atomically, read pageset 2 back, thaw
//! ```
//!
//! The atomic copy of pageset 1 may overwrite pageset 2's frames, which are
//! already on disk: so the image can hold all of memory, and the page cache
//! comes back at resume. Constants from tuxonice_prepare_image.h (3.x):
//! `MIN_FREE_RAM` 100, `MIN_EXTRA_PAGES_ALLOWANCE` 500 (the default
//! `extra_pd1_pages_allowance`); `image_size_limit` 0 (none) by default; the
//! expected compression ratio 0 (so storage is reserved uncompressed).
//!
//! Compression (tuxonice_compress.c `toi_compress_write_page()`) runs each
//! page through the cryptoapi compressor (LZO by default in 3.x, LZF
//! before); the model runs LZ4 over the page's contents (see
//! [`super::device::Corpus`]) and stores a page compressed only if that is
//! smaller. The image's header: `struct toi_header` (a page here) and the
//! two pageset bitmaps (`toi_pageflags_space_needed()`, one bit a frame).
//! Compression CPU time is not counted (TuxOnIce overlaps it with I/O on
//! several threads); every byte written or read is, at the device's
//! bandwidth.

use serde::{Deserialize, Serialize};

use crate::machine::{Machine, PAGE_SIZE};
use crate::mm::page::flags;

use super::device::{Corpus, SwapDevice};
use super::freezer::{Freezer, FreezerTask, thaw_processes};
use super::swsusp::{Design, HibernateError, HibernateRun};

/// tuxonice_prepare_image.h `MIN_FREE_RAM`.
pub const MIN_FREE_RAM: u64 = 100;
/// tuxonice_prepare_image.h `MIN_EXTRA_PAGES_ALLOWANCE`.
pub const MIN_EXTRA_PAGES_ALLOWANCE: u64 = 500;
/// `eat_memory()` rounds before giving up (the model's bound; TuxOnIce
/// retries while memory is being freed).
pub const EAT_MEMORY_TRIES: u32 = 4;

/// TuxOnIce's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToiConfig {
    /// `extra_pages_allowance`.
    pub extra_pd1_pages_allowance: u64,
    /// `image_size_limit`, pages (0: none).
    pub image_size_limit: u64,
    /// The compression filter is on.
    pub compress: bool,
    /// The swap device.
    pub device: SwapDevice,
    /// The freezer.
    pub freezer: Freezer,
}

impl ToiConfig {
    /// TuxOnIce's defaults on `device`: compression on.
    pub fn new(device: SwapDevice) -> Self {
        ToiConfig {
            extra_pd1_pages_allowance: MIN_EXTRA_PAGES_ALLOWANCE,
            image_size_limit: 0,
            compress: true,
            device,
            freezer: Freezer::default(),
        }
    }
}

/// The pagesets of a machine now, `(pageset 1, pageset 2)`, as
/// tuxonice_prepare_image.c `flag_image_pages()` counts them: every
/// saveable page on an LRU list is pageset 2 (`PagePageset2`), every other
/// one pageset 1.
pub fn pagesets(m: &Machine) -> (u64, u64) {
    let ps2 = m.mem.pages().iter().filter(|p| p.test(flags::LRU)).count() as u64;
    (m.count_data_pages() - ps2, ps2)
}

/// tuxonice_prepare_image.c `amount_needed()` for pagesets `ps1`, `ps2`,
/// `free` pages and `storage` pages of swap: pages to free.
pub fn amount_needed(cfg: &ToiConfig, ps1: u64, ps2: u64, free: u64, storage: u64) -> u64 {
    let extra = cfg.extra_pd1_pages_allowance;
    let ps1_to_free = (ps1 + extra + MIN_FREE_RAM)
        .saturating_sub(ps2 + free)
        .div_ceil(2);
    let soft = if cfg.image_size_limit > 0 {
        (ps1 + ps2).saturating_sub(cfg.image_size_limit)
    } else {
        0
    };
    let storage_still_required = (ps1 + ps2).saturating_sub(storage);
    let ram_still_required = (MIN_FREE_RAM + 2 * extra).saturating_sub(free);
    ps1_to_free.max(soft.max(storage_still_required).max(ram_still_required))
}

/// Hibernates `m` as TuxOnIce does and resumes it, compressing each page
/// with its `corpus` contents. On failure the tasks are thawed.
///
/// # Errors
/// [`HibernateError`]: a task that does not freeze, memory or storage that
/// cannot be found.
pub fn toi_hibernate(
    m: &mut Machine,
    tasks: &mut [FreezerTask],
    cfg: &ToiConfig,
    corpus: &Corpus,
) -> Result<HibernateRun, HibernateError> {
    let freeze = match cfg.freezer.freeze_processes(tasks) {
        Ok(f) => f,
        Err(e) => {
            thaw_processes(tasks);
            return Err(e.into());
        }
    };
    let cache_before = m.nr_file_pages();
    let written_before = m.stat.nr_written + m.stat.pswpout;
    // eat_memory()
    let mut pages_freed = 0;
    let mut tries = 0;
    loop {
        let (ps1, ps2) = pagesets(m);
        let amount = amount_needed(cfg, ps1, ps2, m.nr_free(), m.swap_available());
        if amount == 0 {
            break;
        }
        let got = m.shrink_all_memory(amount);
        pages_freed += got;
        tries += 1;
        if got == 0 || tries == EAT_MEMORY_TRIES {
            let (ps1, ps2) = pagesets(m);
            if amount_needed(cfg, ps1, ps2, m.nr_free(), m.swap_available()) == 0 {
                break;
            }
            thaw_processes(tasks);
            if (ps1 + ps2) > m.swap_available() {
                return Err(HibernateError::NoSwap {
                    free: m.swap_available(),
                    needed: ps1 + ps2,
                });
            }
            return Err(HibernateError::NoMemory {
                free: m.nr_free(),
                needed: MIN_FREE_RAM + 2 * cfg.extra_pd1_pages_allowance,
            });
        }
    }
    let freed_written = m.stat.nr_written + m.stat.pswpout - written_before;
    // Pageset 2 first, then pageset 1, each page through the filter.
    let (mut ps1, mut ps2, mut ps1_bytes, mut ps2_bytes) = (0u64, 0u64, 0u64, 0u64);
    let nr_pages = m.nr_pages();
    for pfn in 0..nr_pages as crate::mm::page::Pfn {
        if m.mem.is_free(pfn) {
            continue;
        }
        let p = m.mem.page(pfn);
        let bytes = if cfg.compress {
            corpus.stored_bytes(&p.owner)
        } else {
            PAGE_SIZE
        };
        if p.test(flags::LRU) {
            ps2 += 1;
            ps2_bytes += bytes;
        } else {
            ps1 += 1;
            ps1_bytes += bytes;
        }
    }
    debug_assert_eq!(ps1 + ps2, m.count_data_pages());
    let header_pages = 1 + 2 * nr_pages.div_ceil(PAGE_SIZE * 8);
    let image_bytes = header_pages * PAGE_SIZE + ps1_bytes + ps2_bytes;
    thaw_processes(tasks);
    Ok(HibernateRun {
        design: Design::TuxOnIce,
        freeze: freeze.clone(),
        pages_freed,
        freed_written,
        pageset1: ps1,
        pageset2: ps2,
        meta_pages: header_pages,
        data_bytes: (ps1 + ps2) * PAGE_SIZE,
        image_bytes,
        freeze_ns: freeze.elapsed_ns,
        free_ns: cfg.device.write_ns(freed_written * PAGE_SIZE),
        write_ns: cfg.device.write_ns(image_bytes),
        read_ns: cfg.device.read_ns(image_bytes),
        cache_before,
        cache_after: m.nr_file_pages(),
    })
}
