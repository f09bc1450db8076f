//! swsusp and TuxOnIce on small machines, worked by hand.

use klab_mm_policy::LruBalance;

use super::device::{Corpus, SwapDevice};
use super::freezer::{Freezer, FreezerTask, TaskState};
use super::swsusp::{
    HibernateError, SwsuspConfig, image_size_two_fifths, snapshot_additional_pages,
    swsusp_hibernate, swsusp_pages_on_swap,
};
use super::tuxonice::{ToiConfig, amount_needed, pagesets, toi_hibernate};
use crate::machine::PAGE_SIZE;
use crate::{Access, Machine, MachineConfig};

const DISK: SwapDevice = SwapDevice {
    write_bytes_per_s: 40_000_000,
    read_bytes_per_s: 50_000_000,
};

/// 8192 frames (32 MB), 16384 swap slots; `file` pages of file 0 read
/// once (all on the inactive file list), `anon` pages of task 1 written
/// (the active anon list).
fn machine(file: u64, anon: u64) -> Machine {
    let mut cfg = MachineConfig::new(8192, LruBalance::Classic);
    cfg.swap_pages = 16384;
    let mut m = Machine::new(cfg).unwrap();
    for i in 0..file {
        m.access(Access::read(0, i));
    }
    for v in 0..anon {
        m.access(Access::anon(1, v));
    }
    assert_eq!(
        m.count_data_pages(),
        file + anon,
        "no reclaim while filling"
    );
    m
}

fn tasks() -> Vec<FreezerTask> {
    vec![
        FreezerTask::user(
            "app",
            TaskState::Running {
                safe_point_every_ns: 1_000_000,
            },
        ),
        FreezerTask::kthread("kswapd0", true, TaskState::Interruptible),
    ]
}

fn swsusp(image_pages: u64) -> SwsuspConfig {
    SwsuspConfig {
        image_size: image_pages * PAGE_SIZE,
        device: DISK,
        freezer: Freezer::default(),
    }
}

#[test]
fn the_bitmaps_and_the_image_layout_take_the_kernels_page_counts() {
    // One bm_block of 40 bytes covers 32768 frames: 2 * (1 + 1).
    assert_eq!(snapshot_additional_pages(8192), 4);
    // 65536 frames: two blocks, 80 bytes in one page: 2 * (1 + 2).
    assert_eq!(snapshot_additional_pages(65536), 6);
    // 1908 data pages: 4 meta pages (1908 pfns of 8 bytes), the info page:
    // 1913 image pages, 4 swap map pages (511 entries each), the header.
    assert_eq!(swsusp_pages_on_swap(1908), (4, 1918));
    assert_eq!(image_size_two_fifths(8192), 3276 * PAGE_SIZE);
}

#[test]
fn swsusp_frees_half_of_memory_from_the_page_cache_and_writes_the_rest() {
    // 4000 file pages, 1000 anon, 3192 free. swsusp_shrink_memory(): size
    // = 5000 + PAGES_FOR_IO 1024 + SPARE_PAGES 256 = 6280, plus 4 bitmap
    // pages, minus 3192 free: tmp = 3092. shrink_all_memory(3092), pass 0:
    // the inactive file list's share, (4000 >> prio) + 1 summed from
    // priority 12, reaches 3092 at priority 1 (4006): 3092 pages reclaimed
    // from its tail. Round 2: size 1908 + 1280 = 3188, free 6284: no
    // shortage, and 3188 <= image_size 3276 (2/5 of RAM): done.
    let mut m = machine(4000, 1000);
    let mut t = tasks();
    let r = swsusp_hibernate(&mut m, &mut t, &swsusp(3276)).unwrap();
    m.assert_invariants();
    assert_eq!(r.pages_freed, 3092);
    assert_eq!(r.freed_written, 0, "clean page cache: nothing written");
    assert_eq!((r.cache_before, r.cache_after), (4000, 908));
    assert_eq!(m.task(1).unwrap().rss, 1000, "no anonymous page swapped");
    // swsusp_save(): 1908 pages copied; on swap 1918 pages.
    assert_eq!(r.pageset1, 1908);
    assert_eq!(r.image_bytes, 1918 * PAGE_SIZE);
    // 7,856,128 bytes at 40 MB/s and 50 MB/s.
    assert_eq!(r.write_ns, 196_403_200);
    assert_eq!(r.read_ns, 157_122_560);
    // Freezer: app at 1 ms (passes at 0 and 4 ms), kswapd0 at the kernel
    // phase's first pass: 12 ms.
    assert_eq!(r.freeze_ns, 12_000_000);
    assert_eq!(r.hibernate_ns(), 12_000_000 + 196_403_200);
    assert!(t.iter().all(|x| !x.frozen), "thawed");
    // The copies were freed after the write: the frames are back.
    assert_eq!(m.nr_free(), 8192 - 1908);
}

#[test]
fn a_small_image_size_drops_all_the_cache_then_swaps_anonymous_memory() {
    // As above to 908 file pages; then size 3188 > image_size 2000:
    // shrink_all_memory(1188). Pass 0 at priority 0 reclaims the 908
    // inactive file pages; passes 1-2 find no file page; pass 3 may swap:
    // the active anon share (1000 >> prio) + 1 reaches 280 at priority 2
    // (505): 280 deactivated; at priority 1 280 more (361 >= 280), and the
    // inactive anon share (10 + 71 + 281 = 362) lets 280 be swapped out:
    // 908 + 280 = 1188. Round 3: size 720 + 1280 = 2000, not above 2000.
    let mut m = machine(4000, 1000);
    let r = swsusp_hibernate(&mut m, &mut tasks(), &swsusp(2000)).unwrap();
    m.assert_invariants();
    assert_eq!(r.pages_freed, 3092 + 1188);
    assert_eq!(r.freed_written, 280, "swapped out");
    assert_eq!(r.cache_after, 0, "the page cache is gone");
    assert_eq!(m.task(1).unwrap().swapents, 280);
    assert_eq!(r.pageset1, 720);
    assert_eq!(r.free_ns, DISK.write_ns(280 * PAGE_SIZE));
}

#[test]
fn shrink_all_memory_deactivates_the_active_page_cache_before_touching_anon_memory() {
    // 2000 file pages read twice (the second read activates them), 1000
    // anon pages. Pass 0 scans inactive lists only: the file one is empty.
    // Pass 1: the active file share, (2000 >> prio) + 1 from priority 12,
    // reaches 1500 at priority 1 (2006): 1500 pages deactivated. The
    // inactive share, 13 from pass 0, 11 more to priority 2, 751 at
    // priority 1 (775), 1501 at priority 0 (2276): 1500 reclaimed.
    let mut m = machine(0, 0);
    for _ in 0..2 {
        for i in 0..2000 {
            m.access(Access::read(0, i));
        }
    }
    for v in 0..1000 {
        m.access(Access::anon(1, v));
    }
    assert_eq!(m.lru_len(crate::mm::lru::LruList::ActiveFile), 2000);
    assert_eq!(m.shrink_all_memory(1500), 1500);
    m.assert_invariants();
    assert_eq!(m.lru_len(crate::mm::lru::LruList::ActiveFile), 500);
    assert_eq!(m.lru_len(crate::mm::lru::LruList::InactiveFile), 0);
    assert_eq!(m.task(1).unwrap().rss, 1000, "no anonymous page touched");
    assert_eq!(m.stat().pswpout, 0);
}

#[test]
fn a_task_in_d_state_fails_the_hibernation_and_leaves_the_machine_as_it_was() {
    let mut m = machine(4000, 1000);
    let mut t = tasks();
    t.push(FreezerTask::user(
        "nfs",
        TaskState::Uninterruptible { wakes_at_ns: None },
    ));
    let e = swsusp_hibernate(&mut m, &mut t, &swsusp(3276)).unwrap_err();
    let HibernateError::Freeze(f) = e else {
        panic!("{e}")
    };
    assert_eq!(f.elapsed_ns, 20_004_000_000);
    assert_eq!(f.refusing, vec!["nfs".to_string()]);
    assert!(t.iter().all(|x| !x.frozen), "thawed after the failure");
    assert_eq!(m.nr_file_pages(), 4000, "nothing freed");
}

#[test]
fn swsusp_refuses_a_swap_device_too_small_for_the_image() {
    let mut cfg = MachineConfig::new(8192, LruBalance::Classic);
    cfg.swap_pages = 2000;
    let mut m = Machine::new(cfg).unwrap();
    for i in 0..1000 {
        m.access(Access::read(0, i));
    }
    // 1000 pages + 2 meta + info = 1003; 2000 free slots is not more than
    // 1003 + PAGES_FOR_IO.
    let e = swsusp_hibernate(&mut m, &mut tasks(), &swsusp(3276)).unwrap_err();
    assert_eq!(
        e,
        HibernateError::NoSwap {
            free: 2000,
            needed: 2027
        }
    );
}

#[test]
fn tuxonice_saves_the_page_cache_as_pageset_two() {
    let mut m = machine(4000, 1000);
    assert_eq!(pagesets(&m), (0, 5000));
    let mut cfg = ToiConfig::new(DISK);
    cfg.compress = false;
    let r = toi_hibernate(&mut m, &mut tasks(), &cfg, &zeros()).unwrap();
    m.assert_invariants();
    // amount_needed(): pageset 1 is empty, 3192 pages free >= MIN_FREE_RAM
    // 100 + 2 * 500, 16384 slots >= 5000: nothing to free.
    assert_eq!(r.pages_freed, 0);
    assert_eq!((r.pageset1, r.pageset2), (0, 5000));
    assert_eq!((r.cache_before, r.cache_after), (4000, 4000));
    // Header: a page and two one-page bitmaps of 8192 bits.
    assert_eq!(r.meta_pages, 3);
    assert_eq!(r.image_bytes, 5003 * PAGE_SIZE);
    assert_eq!(r.write_ns, DISK.write_ns(5003 * PAGE_SIZE));
}

fn zeros() -> Corpus {
    Corpus::new("zero pages", &[0; 4096]).unwrap()
}

#[test]
fn tuxonice_compresses_each_page_with_its_contents() {
    let mut m = machine(4000, 1000);
    let z = zeros();
    let per_page = z.ratio().1;
    let r = toi_hibernate(&mut m, &mut tasks(), &ToiConfig::new(DISK), &z).unwrap();
    assert_eq!(r.image_bytes, 3 * PAGE_SIZE + 5000 * per_page);
    assert_eq!(r.data_bytes, 5000 * PAGE_SIZE);
}

#[test]
fn tuxonice_on_a_full_machine_frees_what_its_allowances_need() {
    // 7000 file + 1192 anon pages: no frame free. ram_still_required =
    // MIN_FREE_RAM 100 + 2 * 500 - 0 = 1100. shrink_all_memory(1100),
    // pass 0: (7000 >> prio) + 1 summed reaches 1100 at priority 3 (1753).
    let mut m = machine(7000, 1192);
    let cfg = ToiConfig::new(DISK);
    assert_eq!(amount_needed(&cfg, 0, 8192, 0, 16384), 1100);
    let r = toi_hibernate(&mut m, &mut tasks(), &cfg, &zeros()).unwrap();
    assert_eq!(r.pages_freed, 1100);
    assert_eq!(r.cache_after, 5900);
    assert_eq!(r.pageset2, 7092);
    // pageset 1 larger than pageset 2 and free memory: half the shortfall.
    assert_eq!(amount_needed(&cfg, 3000, 1000, 400, 16384), 1100);
    assert_eq!(amount_needed(&cfg, 3000, 1000, 2000, 16384), 300);
}
