//! swsusp, the mainline hibernation of 2.6.23: free memory until the
//! image fits, copy every saveable page atomically, write the copy to swap,
//! power off; at boot, read it back, restore the pages, thaw.
//!
//! ```text
//!  hibernate()                                  kernel/power/disk.c
//!    freeze_processes()                         kernel/power/process.c (freezer.rs)
//!    swsusp_shrink_memory()                     kernel/power/swsusp.c
//!      loop:
//!        size = count_data_pages() + PAGES_FOR_IO + SPARE_PAGES
//!        tmp  = size + snapshot_additional_pages() - free
//!        tmp > 0:                  shrink_all_memory(min(tmp, SHRINK_BITE)); 0 freed: -ENOMEM
//!        else size > image_size:   shrink_all_memory(min(size - image_size, SHRINK_BITE))
//!      until the last call freed nothing or was not needed
//!    swsusp_save()                              kernel/power/snapshot.c (the atomic copy)
//!      nr_pages = count_data_pages()
//!      enough_free_mem(): free > nr_pages + PAGES_FOR_IO + snapshot_additional_pages()
//!      swsusp_alloc(): a free frame for each copy; copy_data_pages()
//!      nr_meta_pages = DIV_ROUND_UP(nr_pages * sizeof(long), PAGE_SIZE)
//!    swsusp_write()                             kernel/power/swap.c
//!      enough_swap(): free swap > image pages + PAGES_FOR_IO
//!      the swsusp_info page, the meta pages (pfns), the data pages, each
//!      run of MAP_PAGE_ENTRIES listed in a swap_map_page; the header in
//!      the swap signature page
//!  software_resume() → swsusp_read() → swsusp_resume(); thaw_processes()
//! ```
//!
//! `shrink_all_memory()` (mm/vmscan.c, 2.6.17-2.6.28) frees in five
//! passes, each from `DEF_PRIORITY` down to 0: pass 0 the inactive lists
//! only, passes 1-2 the active lists too but no mapped page (so the page
//! cache goes first), passes 3-4 mapped and anonymous pages (swapped out)
//! as well. At each priority a list is scanned once its share
//! (`(size >> priority) + 1`, accumulated) reaches what is still to free,
//! and at once from pass 4 on.
//!
//! The constants are the kernel's: `PAGES_FOR_IO` 4 MB and `SPARE_PAGES`
//! 1 MB of 4 KiB pages (kernel/power/power.h), `SHRINK_BITE` 10000,
//! `image_size` 500 MB by default in 2.6.23 (`/sys/power/image_size`;
//! later kernels' `hibernate_image_size_init()` made it 2/5 of RAM). The
//! model machine has no highmem and one zone per node. What is not timed:
//! the CPU work (scanning, the memcpy of the atomic copy, the device
//! suspend), the boot before `software_resume()`; what is timed: every
//! byte written or read on the swap device, at its bandwidth, including
//! the dirty pages and anonymous pages written while freeing memory.

use serde::{Deserialize, Serialize};

use crate::machine::{Machine, PAGE_SIZE};
use crate::mm::lru::LruList;
use crate::mm::page::{KernelPage, Owner, Pfn};
use crate::mm::vmscan::DEF_PRIORITY;

use super::device::SwapDevice;
use super::freezer::{FreezeFailed, Freezer, FreezerTask, Frozen, thaw_processes};

/// kernel/power/power.h `PAGES_FOR_IO`: 4 MB kept free for I/O.
pub const PAGES_FOR_IO: u64 = (4096 * 1024) / PAGE_SIZE;
/// kernel/power/power.h `SPARE_PAGES`: 1 MB kept for drivers' `.suspend()`.
pub const SPARE_PAGES: u64 = (1024 * 1024) / PAGE_SIZE;
/// kernel/power/swsusp.c `SHRINK_BITE`: pages asked of one
/// `shrink_all_memory()` call.
pub const SHRINK_BITE: u64 = 10_000;
/// kernel/power/swsusp.c `image_size` of 2.6.23: 500 MB.
pub const IMAGE_SIZE_2_6_23: u64 = 500 * 1024 * 1024;
/// kernel/power/swap.c `MAP_PAGE_ENTRIES`: sectors one `swap_map_page`
/// lists (`PAGE_SIZE / sizeof(sector_t) - 1`, the last slot links the next).
pub const MAP_PAGE_ENTRIES: u64 = PAGE_SIZE / 8 - 1;
/// kernel/power/snapshot.c `BM_BITS_PER_BLOCK`: one page of bits.
pub const BM_BITS_PER_BLOCK: u64 = PAGE_SIZE * 8;
/// `sizeof(struct bm_block)` on 64-bit (next, start_pfn, end_pfn, size,
/// data: five 8-byte words).
pub const BM_BLOCK_BYTES: u64 = 40;

/// kernel/power/snapshot.c `hibernate_image_size_init()` of later kernels:
/// 2/5 of RAM, in bytes.
pub fn image_size_two_fifths(total_pages: u64) -> u64 {
    (total_pages * 2 / 5) * PAGE_SIZE
}

/// kernel/power/snapshot.c `snapshot_additional_pages()`: the pages two
/// memory bitmaps (`orig_bm`, `copy_bm`) of a zone of `spanned` pages take:
/// `2 * (DIV_ROUND_UP(res * sizeof(struct bm_block), PAGE_SIZE) + res)`,
/// `res = DIV_ROUND_UP(spanned, BM_BITS_PER_BLOCK)`.
pub fn snapshot_additional_pages(spanned: u64) -> u64 {
    let res = spanned.div_ceil(BM_BITS_PER_BLOCK);
    2 * ((res * BM_BLOCK_BYTES).div_ceil(PAGE_SIZE) + res)
}

/// The swsusp image's pages on swap for `nr_copy` data pages
/// (kernel/power/swap.c `swsusp_write()`): the `swsusp_info` page, the
/// meta pages, the data pages, one `swap_map_page` per `MAP_PAGE_ENTRIES`
/// of those, and the header in the signature page.
pub fn swsusp_pages_on_swap(nr_copy: u64) -> (u64, u64) {
    let meta = (nr_copy * 8).div_ceil(PAGE_SIZE);
    let image = nr_copy + meta + 1;
    (meta, image + image.div_ceil(MAP_PAGE_ENTRIES) + 1)
}

/// Which hibernation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Design {
    /// Mainline swsusp, 2.6.23.
    Swsusp,
    /// TuxOnIce (out of tree).
    TuxOnIce,
}

/// Why a hibernation attempt failed (the machine is thawed and running).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum HibernateError {
    /// A task did not freeze: `-EBUSY`.
    #[error(transparent)]
    Freeze(#[from] FreezeFailed),
    /// Memory could not be freed, or not enough is free for the copy:
    /// `-ENOMEM`.
    #[error("not enough free memory: {free} pages free, {needed} needed")]
    NoMemory {
        /// Free pages.
        free: u64,
        /// Pages needed.
        needed: u64,
    },
    /// The swap device cannot hold the image: `-ENOSPC`.
    #[error("not enough swap: {free} pages free, more than {needed} needed")]
    NoSwap {
        /// Free swap pages.
        free: u64,
        /// Pages needed.
        needed: u64,
    },
}

/// One hibernation and resume, measured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HibernateRun {
    /// Which design.
    pub design: Design,
    /// The freezer.
    pub freeze: Frozen,
    /// Pages freed to make room (`swsusp_shrink_memory()`, TuxOnIce's
    /// `eat_memory()`).
    pub pages_freed: u64,
    /// Of the pages freed, those written first (dirty file pages, anonymous
    /// pages swapped out).
    pub freed_written: u64,
    /// Pages saved that are copied atomically (swsusp: all of them).
    pub pageset1: u64,
    /// Pages saved in place before the copy (TuxOnIce's pageset 2).
    pub pageset2: u64,
    /// Pages of metadata and headers.
    pub meta_pages: u64,
    /// Bytes of the saved pages before compression.
    pub data_bytes: u64,
    /// Bytes written to the swap device for the image.
    pub image_bytes: u64,
    /// Time to freeze.
    pub freeze_ns: u64,
    /// Time to free memory (its writes).
    pub free_ns: u64,
    /// Time to write the image.
    pub write_ns: u64,
    /// Time to read the image at resume.
    pub read_ns: u64,
    /// File pages resident before.
    pub cache_before: u64,
    /// File pages resident after resume.
    pub cache_after: u64,
}

impl HibernateRun {
    /// From the start of the freeze to power-off.
    pub fn hibernate_ns(&self) -> u64 {
        self.freeze_ns + self.free_ns + self.write_ns
    }
}

/// swsusp's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwsuspConfig {
    /// `/sys/power/image_size`, bytes.
    pub image_size: u64,
    /// The swap device the image goes to.
    pub device: SwapDevice,
    /// The freezer.
    pub freezer: Freezer,
}

impl Machine {
    /// File pages on the LRU lists (the page cache).
    pub fn nr_file_pages(&self) -> u64 {
        self.lru_len(LruList::ActiveFile) + self.lru_len(LruList::InactiveFile)
    }

    /// kernel/power/snapshot.c `count_data_pages()`: the saveable pages,
    /// every frame neither free nor retired (the model has no `PageNosave`
    /// region and no highmem).
    pub fn count_data_pages(&self) -> u64 {
        self.nr_pages() - self.nr_free() - self.mem.nr_retired()
    }

    /// `snapshot_additional_pages()` over the machine's zones (one a node).
    pub fn snapshot_additional_pages(&self) -> u64 {
        self.cfg
            .pages_per_node
            .iter()
            .map(|&n| snapshot_additional_pages(n))
            .sum()
    }

    /// mm/vmscan.c `shrink_all_memory()` (2.6.17-2.6.28) and its
    /// `shrink_all_zones()`: frees up to `nr_pages` pages in five passes
    /// (see the module header); returns the pages freed. The scan shares
    /// start from zero at each call (the kernel keeps them in the zone,
    /// `nr_scan_active`/`nr_scan_inactive`); slab shrinking is left out
    /// (the model's kernel objects are not reclaimable).
    pub fn shrink_all_memory(&mut self, nr_pages: u64) -> u64 {
        let mut ret = 0;
        // Per lruvec: the active and inactive file, active and inactive
        // anon scan shares.
        let mut scan = vec![[0u64; 4]; self.lruvecs.len()];
        for pass in 0..5u32 {
            let may_swap = pass > 2 && self.swap_available() > 0;
            for prio in (0..=DEF_PRIORITY).rev() {
                for (lv, acc) in scan.iter_mut().enumerate() {
                    let lists: &[(LruList, LruList, usize)] = if may_swap {
                        &[
                            (LruList::ActiveFile, LruList::InactiveFile, 0),
                            (LruList::ActiveAnon, LruList::InactiveAnon, 2),
                        ]
                    } else {
                        &[(LruList::ActiveFile, LruList::InactiveFile, 0)]
                    };
                    for &(active, inactive, k) in lists {
                        let nr_to_scan = nr_pages - ret;
                        if pass > 0 {
                            let len = self.lruvecs[lv].len(active);
                            acc[k] += (len >> prio) + 1;
                            if acc[k] >= nr_to_scan || pass > 3 {
                                acc[k] = 0;
                                self.shrink_active_list(lv, active, nr_to_scan.min(len));
                            }
                        }
                        let len = self.lruvecs[lv].len(inactive);
                        acc[k + 1] += (len >> prio) + 1;
                        if acc[k + 1] >= nr_to_scan || pass > 3 {
                            acc[k + 1] = 0;
                            ret += self.shrink_inactive_list(lv, inactive, nr_to_scan.min(len));
                        }
                        if ret >= nr_pages {
                            return ret;
                        }
                    }
                }
            }
        }
        ret
    }

    /// kernel/power/swsusp.c `swsusp_shrink_memory()`: frees memory until
    /// the image fits in `image_size` bytes and half of memory; returns the
    /// pages freed.
    ///
    /// # Errors
    /// [`HibernateError::NoMemory`] when memory must be freed and
    /// `shrink_all_memory()` frees nothing.
    pub fn swsusp_shrink_memory(&mut self, image_size: u64) -> Result<u64, HibernateError> {
        let image_pages = image_size / PAGE_SIZE;
        let additional = self.snapshot_additional_pages();
        let mut pages = 0;
        loop {
            let size = self.count_data_pages() + PAGES_FOR_IO + SPARE_PAGES;
            let free = self.nr_free();
            let tmp = (size + additional).saturating_sub(free);
            let got = if tmp > 0 {
                let got = self.shrink_all_memory(tmp.min(SHRINK_BITE));
                if got == 0 {
                    return Err(HibernateError::NoMemory {
                        free,
                        needed: size + additional,
                    });
                }
                got
            } else if size > image_pages {
                self.shrink_all_memory((size - image_pages).min(SHRINK_BITE))
            } else {
                0
            };
            pages += got;
            if got == 0 {
                return Ok(pages);
            }
        }
    }

    /// `swsusp_alloc()` + `copy_data_pages()`: a free frame for each of
    /// `nr` pages, holding its copy. `None` if the frames run out.
    fn alloc_copies(&mut self, nr: u64) -> Option<Vec<Pfn>> {
        let mut copies = Vec::with_capacity(nr as usize);
        for _ in 0..nr {
            let pfn = (0..self.nr_nodes()).find_map(|n| self.mem.alloc(n))?;
            self.mem.page_mut(pfn).owner = Owner::Kernel(KernelPage::Other);
            copies.push(pfn);
        }
        Some(copies)
    }

    /// `swsusp_free()`: the copies' frames back.
    fn free_copies(&mut self, copies: Vec<Pfn>) {
        for pfn in copies {
            self.mem.page_mut(pfn).owner = Owner::Free;
            self.mem.free(pfn);
        }
    }
}

/// Hibernates `m` as 2.6.23's swsusp does and resumes it (the machine
/// after resume is the one that was saved: the frames hold what they held
/// at the copy, the copies are freed, the tasks thawed). On failure the
/// tasks are thawed and the machine runs on.
///
/// # Errors
/// [`HibernateError`]: a task that does not freeze, memory that cannot be
/// freed, swap too small.
pub fn swsusp_hibernate(
    m: &mut Machine,
    tasks: &mut [FreezerTask],
    cfg: &SwsuspConfig,
) -> Result<HibernateRun, HibernateError> {
    let freeze = match cfg.freezer.freeze_processes(tasks) {
        Ok(f) => f,
        Err(e) => {
            thaw_processes(tasks);
            return Err(e.into());
        }
    };
    let result = swsusp_frozen(m, cfg, &freeze);
    thaw_processes(tasks);
    result
}

/// With the tasks frozen: `swsusp_shrink_memory()`; then
/// kernel/power/snapshot.c `swsusp_save()` (`enough_free_mem()`: free >
/// nr_pages + `PAGES_FOR_IO` + the bitmaps, else `-ENOMEM`; a frame for
/// each copy) and kernel/power/swap.c `swsusp_write()` (`enough_swap()`:
/// free swap > image pages + `PAGES_FOR_IO`, else `-ENOSPC`), the copies
/// freed after the write as `swsusp_free()` does.
fn swsusp_frozen(
    m: &mut Machine,
    cfg: &SwsuspConfig,
    freeze: &Frozen,
) -> Result<HibernateRun, HibernateError> {
    let cache_before = m.nr_file_pages();
    let written_before = m.stat.nr_written + m.stat.pswpout;
    let pages_freed = m.swsusp_shrink_memory(cfg.image_size)?;
    let freed_written = m.stat.nr_written + m.stat.pswpout - written_before;
    // swsusp_save(): the atomic copy.
    let nr_pages = m.count_data_pages();
    let needed = nr_pages + PAGES_FOR_IO + m.snapshot_additional_pages();
    if m.nr_free() <= needed {
        return Err(HibernateError::NoMemory {
            free: m.nr_free(),
            needed: needed + 1,
        });
    }
    let copies = m
        .alloc_copies(nr_pages)
        .expect("enough_free_mem() checked the frames");
    // swsusp_write()
    let (meta, on_swap) = swsusp_pages_on_swap(nr_pages);
    let image = nr_pages + meta + 1;
    let free_swap = m.swap_available();
    m.free_copies(copies);
    if free_swap <= image + PAGES_FOR_IO {
        return Err(HibernateError::NoSwap {
            free: free_swap,
            needed: image + PAGES_FOR_IO,
        });
    }
    let image_bytes = on_swap * PAGE_SIZE;
    Ok(HibernateRun {
        design: Design::Swsusp,
        freeze: freeze.clone(),
        pages_freed,
        freed_written,
        pageset1: nr_pages,
        pageset2: 0,
        meta_pages: on_swap - nr_pages,
        data_bytes: nr_pages * PAGE_SIZE,
        image_bytes,
        freeze_ns: freeze.elapsed_ns,
        free_ns: cfg.device.write_ns(freed_written * PAGE_SIZE),
        write_ns: cfg.device.write_ns(image_bytes),
        read_ns: cfg.device.read_ns(image_bytes),
        cache_before,
        cache_after: m.nr_file_pages(),
    })
}
