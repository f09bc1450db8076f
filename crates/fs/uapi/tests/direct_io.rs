//! Page-based direct I/O on real files: the page cache stays untouched by
//! direct transfers and fills with buffered ones, measured with `mincore`;
//! requests land in the right pages; misaligned fields are named; a
//! filesystem that refuses `O_DIRECT` gets the buffered fallback.
//!
//! The files live under Cargo's per-target temporary directory (on the
//! repository's filesystem, a real disk filesystem in CI). Where that is
//! tmpfs, or the filesystem refuses `O_DIRECT`, the residency tests print
//! why and return.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use klab_uapi::DioError;
use klab_uapi::direct_io::{
    DioArgs, DirectFile, IoMode, OpenOptions, PAGE_SIZE, Page, Rw, evict, resident_pages,
};
use rustix::io::Errno;

const TMPFS_MAGIC: i64 = 0x0102_1994;

/// A fresh file of `len` pattern bytes under the target's temp dir,
/// written back and evicted from the page cache; `None` (with a message)
/// when the directory is on tmpfs.
fn cold_file(name: &str, len: usize) -> Option<(tempfile::TempDir, PathBuf, Vec<u8>)> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let fs = rustix::fs::statfs(dir.path()).unwrap();
    // `f_type`'s width differs between targets.
    #[allow(clippy::useless_conversion)]
    let f_type = i64::from(fs.f_type);
    if f_type == TMPFS_MAGIC {
        eprintln!(
            "skipped: {} is on tmpfs, not a disk filesystem",
            dir.path().display()
        );
        return None;
    }
    let path = dir.path().join(name);
    let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&data).unwrap();
    evict(f.as_fd()).unwrap();
    Some((dir, path, data))
}

fn resident(path: &PathBuf) -> usize {
    let f = std::fs::File::open(path).unwrap();
    resident_pages(f.as_fd())
        .unwrap()
        .into_iter()
        .filter(|r| *r)
        .count()
}

fn open_direct(path: &PathBuf, opts: OpenOptions) -> Option<DirectFile> {
    let f = DirectFile::open(path, opts).unwrap();
    match f.mode() {
        IoMode::Direct => Some(f),
        IoMode::Buffered { reason } => {
            eprintln!("skipped: {}: {reason}", path.display());
            None
        }
    }
}

fn flatten(pages: &[Box<Page>], first_page_off: usize, length: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(length);
    let mut off = first_page_off;
    for p in pages {
        let take = (length - out.len()).min(PAGE_SIZE - off);
        out.extend_from_slice(&p.0[off..off + take]);
        off = 0;
        if out.len() == length {
            break;
        }
    }
    out
}

#[test]
fn a_direct_read_leaves_the_page_cache_untouched_and_a_buffered_read_fills_it() {
    // 1 MiB = 256 pages: 0 resident after the cold start, 0 after reading
    // all of it directly, 256 after reading it through the page cache.
    let Some((_dir, path, data)) = cold_file("cold", 256 * PAGE_SIZE) else {
        return;
    };
    assert_eq!(
        resident(&path),
        0,
        "fdatasync + POSIX_FADV_DONTNEED emptied the cache"
    );
    let Some(f) = open_direct(&path, OpenOptions::READ) else {
        return;
    };
    assert!(!f.memory_backed());
    let mut pages = Page::alloc(256);
    let mut args = DioArgs::new(Rw::Read, &mut pages, 0, 256 * PAGE_SIZE, 0);
    assert_eq!(args.nr_segs, 256);
    assert_eq!(f.direct_io(&mut args).unwrap(), 256 * PAGE_SIZE);
    assert_eq!(flatten(&pages, 0, 256 * PAGE_SIZE), data);
    assert_eq!(resident(&path), 0, "direct read: no page cached");
    let back = std::fs::read(&path).unwrap();
    assert_eq!(back, data);
    assert_eq!(resident(&path), 256, "buffered read: every page cached");
}

#[test]
fn a_direct_write_leaves_no_page_cached_where_a_buffered_one_caches_all() {
    let Some((_dir, path, _)) = cold_file("written", 64 * PAGE_SIZE) else {
        return;
    };
    // Buffered overwrite: 64 dirty pages in the cache.
    std::fs::write(&path, vec![1u8; 64 * PAGE_SIZE]).unwrap();
    assert_eq!(resident(&path), 64);
    let Some(f) = open_direct(
        &path,
        OpenOptions {
            write: true,
            ..OpenOptions::READ
        },
    ) else {
        return;
    };
    // Direct overwrite of the same range: written back, then invalidated.
    let mut pages = Page::alloc(64);
    for (i, p) in pages.iter_mut().enumerate() {
        p.0.fill(i as u8);
    }
    let mut w = DioArgs::new(Rw::Write, &mut pages, 0, 64 * PAGE_SIZE, 0);
    assert_eq!(f.direct_io(&mut w).unwrap(), 64 * PAGE_SIZE);
    assert_eq!(
        resident(&path),
        0,
        "direct write: the cached range was dropped"
    );
    let back = std::fs::read(&path).unwrap();
    assert!(
        back.chunks(PAGE_SIZE)
            .enumerate()
            .all(|(i, c)| c.iter().all(|b| *b == i as u8))
    );
}

#[test]
fn a_request_starting_inside_its_first_page_lands_in_the_right_bytes() {
    // first_page_off 512, length 8192, file offset 4096: three segments,
    // pages[0][512..4096], pages[1][..], pages[2][..512].
    let Some((_dir, path, data)) = cold_file("offsets", 4 * PAGE_SIZE) else {
        return;
    };
    let Some(f) = open_direct(&path, OpenOptions::READ) else {
        return;
    };
    if f.align().offset > 512 {
        eprintln!("skipped: direct-I/O alignment {} > 512", f.align().offset);
        return;
    }
    let mut pages = Page::alloc(3);
    let mut args = DioArgs::new(Rw::Read, &mut pages, 512, 8192, 4096);
    assert_eq!(args.nr_segs, 3);
    assert_eq!(
        args.segment_ranges(),
        vec![(0, 512, 4096), (1, 0, 4096), (2, 0, 512)]
    );
    assert_eq!(f.direct_io(&mut args).unwrap(), 8192);
    assert_eq!(flatten(&pages, 512, 8192), &data[4096..4096 + 8192]);
    assert!(
        pages[0].0[..512].iter().all(|b| *b == 0),
        "bytes before the request untouched"
    );
    assert!(
        pages[2].0[512..].iter().all(|b| *b == 0),
        "bytes after it untouched"
    );
}

#[test]
fn a_direct_read_past_the_end_of_file_is_short() {
    let Some((_dir, path, data)) = cold_file("short", 10_000) else {
        return;
    };
    let Some(f) = open_direct(&path, OpenOptions::READ) else {
        return;
    };
    let mut pages = Page::alloc(3);
    let mut args = DioArgs::new(Rw::Read, &mut pages, 0, 3 * PAGE_SIZE, 0);
    assert_eq!(f.direct_io(&mut args).unwrap(), 10_000);
    assert_eq!(flatten(&pages, 0, 10_000), data);
}

#[test]
fn misaligned_fields_are_einval_and_named() {
    let Some((_dir, path, _)) = cold_file("aligned", 4 * PAGE_SIZE) else {
        return;
    };
    let Some(f) = open_direct(&path, OpenOptions::READ) else {
        return;
    };
    let oa = f.align().offset as usize;
    let mut pages = Page::alloc(4);
    let field = |e: DioError| match e {
        DioError::Misaligned { field, .. } | DioError::Invalid { field, .. } => field,
        other => panic!("unexpected {other}"),
    };
    let mut bad_offset = DioArgs::new(Rw::Read, &mut pages, 0, oa, 1);
    let e = f.direct_io(&mut bad_offset).unwrap_err();
    assert_eq!(e.errno(), Errno::INVAL);
    assert!(
        e.to_string()
            .starts_with("dio_args.offset = 1 is not a multiple of"),
        "{e}"
    );
    assert_eq!(field(e), "offset");
    let mut bad_len = DioArgs::new(Rw::Read, &mut pages, 0, oa + 1, 0);
    assert_eq!(field(f.direct_io(&mut bad_len).unwrap_err()), "length");
    let mut bad_first = DioArgs::new(Rw::Read, &mut pages, 1, oa, 0);
    assert_eq!(
        field(f.direct_io(&mut bad_first).unwrap_err()),
        "first_page_off"
    );
    let mut bad_segs = DioArgs::new(Rw::Read, &mut pages, 0, PAGE_SIZE, 0);
    bad_segs.nr_segs = 2;
    assert_eq!(field(f.direct_io(&mut bad_segs).unwrap_err()), "nr_segs");
    let mut few = Page::alloc(1);
    let mut too_few = DioArgs::new(Rw::Read, &mut few, 0, 2 * PAGE_SIZE, 0);
    assert_eq!(field(f.direct_io(&mut too_few).unwrap_err()), "pages");
    let mut outside = DioArgs::new(Rw::Read, &mut pages, PAGE_SIZE, oa, 0);
    assert_eq!(
        field(f.direct_io(&mut outside).unwrap_err()),
        "first_page_off"
    );
}

#[test]
fn a_filesystem_that_refuses_o_direct_gets_the_buffered_fallback() {
    // procfs has no direct I/O: open(O_DIRECT) is EINVAL on every kernel.
    let f = DirectFile::open("/proc/version", OpenOptions::READ).unwrap();
    let IoMode::Buffered { reason } = f.mode() else {
        panic!("procfs accepted O_DIRECT");
    };
    assert!(reason.contains("EINVAL"), "{reason}");
    let want = std::fs::read("/proc/version").unwrap();
    // No alignment needed: start 3 bytes in, in the middle of a page.
    let mut pages = Page::alloc(1);
    let mut args = DioArgs::new(Rw::Read, &mut pages, 100, 50, 3);
    let n = f.direct_io(&mut args).unwrap();
    assert_eq!(n, 50.min(want.len() - 3));
    assert_eq!(&pages[0].0[100..100 + n], &want[3..3 + n]);
}

#[test]
fn tmpfs_round_trips_whichever_mode_it_offers() {
    // tmpfs refused O_DIRECT before Linux 6.6 and accepts it since (served
    // from the page cache); either way the data must come back.
    let Ok(dir) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    let path = dir.path().join("t");
    std::fs::write(&path, vec![9u8; 2 * PAGE_SIZE]).unwrap();
    let f = DirectFile::open(&path, OpenOptions::READ).unwrap();
    eprintln!("tmpfs: {:?}, alignment {:?}", f.mode(), f.align());
    assert!(f.memory_backed());
    let mut pages = Page::alloc(2);
    let mut args = DioArgs::new(Rw::Read, &mut pages, 0, 2 * PAGE_SIZE, 0);
    assert_eq!(f.direct_io(&mut args).unwrap(), 2 * PAGE_SIZE);
    assert!(pages.iter().all(|p| p.0.iter().all(|b| *b == 9)));
}
