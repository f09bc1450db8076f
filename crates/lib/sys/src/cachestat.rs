//! `cachestat(2)` (Linux 6.5): the page-cache state of a byte range of a
//! file, without touching it.
//!
//! ```text
//!   cachestat(fd, { off, len }, &cs, 0)
//!     cs.nr_cache             pages of the range in the page cache
//!     cs.nr_dirty             ... of which dirty
//!     cs.nr_writeback         ... of which under writeback
//!     cs.nr_evicted           pages not cached whose slot holds a shadow
//!                             entry (evicted by reclaim, mm/workingset.c)
//!     cs.nr_recently_evicted  ... of which the refault test
//!                             (`workingset_test_recent()`) would call
//!                             recent: a read now would be activated
//! ```
//!
//! The kernel walks the file's page-cache xarray under RCU
//! (mm/filemap.c, `filemap_cachestat()`); it does not mark pages accessed,
//! read anything from disk or change a list. That makes it the residency
//! probe of klab's fidelity runs: asked right before an access, it tells
//! whether the access will hit, miss for the first time, or refault, and
//! whether the refault will be activated.
//!
//! Neither rustix nor libc (for x86_64) has the call: the syscall number is
//! 451 on every architecture Rust targets (the shared table of system calls
//! added since 5.x).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `__NR_cachestat`.
pub const SYS_CACHESTAT: libc::c_long = 451;

/// `struct cachestat_range`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Range {
    off: u64,
    len: u64,
}

/// `struct cachestat`: page counts over the range asked about.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStat {
    /// Pages in the page cache.
    pub nr_cache: u64,
    /// Cached pages that are dirty.
    pub nr_dirty: u64,
    /// Cached pages under writeback.
    pub nr_writeback: u64,
    /// Pages not cached whose page-cache slot holds a shadow entry.
    pub nr_evicted: u64,
    /// Evicted pages whose refault distance is within the workingset
    /// (a refault now would be activated).
    pub nr_recently_evicted: u64,
}

/// The page-cache state of bytes `off .. off + len` of the file open as
/// `fd` (`len == 0`: to the end of the file).
///
/// Errors are the kernel's: `ENOSYS` before Linux 6.5, `EBADF`, `EOPNOTSUPP`
/// for a hugetlbfs file, `EINVAL` for a bad range.
pub fn cachestat(fd: BorrowedFd<'_>, off: u64, len: u64) -> io::Result<CacheStat> {
    let range = Range { off, len };
    let mut cs = CacheStat::default();
    // SAFETY: `range` and `cs` are live, properly aligned `repr(C)` values
    // with the kernel's layouts (two and five `__u64`); the kernel reads
    // `range` and writes only `cs` during the call. `fd` is borrowed, so it
    // stays open for the call.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd.as_raw_fd(),
            &range as *const Range,
            &mut cs as *mut CacheStat,
            0u32,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cs)
}

/// Whether the running kernel has `cachestat(2)`.
pub fn available() -> bool {
    // An invalid descriptor: ENOSYS without the call, EBADF with it.
    // SAFETY: null pointers are never dereferenced: the kernel checks the
    // descriptor first and returns EBADF (or ENOSYS before 6.5).
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            -1,
            std::ptr::null::<Range>(),
            std::ptr::null_mut::<CacheStat>(),
            0u32,
        )
    };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn written_pages_are_cached_and_dirty_then_dropped_without_shadows() {
        if !available() {
            eprintln!("skipped: this kernel has no cachestat(2) (Linux 6.5+)");
            return;
        }
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let path = dir.path().join("f");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![1u8; 3 * 4096]).unwrap();
        let cs = cachestat(f.as_fd(), 0, 0).unwrap();
        assert_eq!(cs.nr_cache, 3);
        assert_eq!(cs.nr_evicted, 0);
        assert!(cs.nr_dirty + cs.nr_writeback <= 3);
        // A one-page range sees one page.
        assert_eq!(cachestat(f.as_fd(), 4096, 4096).unwrap().nr_cache, 1);
        // Written back and invalidated: gone, and invalidation (unlike
        // reclaim) leaves no shadow entry behind.
        f.sync_all().unwrap();
        let rc = fadvise_dontneed(&f);
        assert_eq!(rc, 0);
        let cs = cachestat(f.as_fd(), 0, 0).unwrap();
        assert_eq!((cs.nr_cache, cs.nr_evicted), (0, 0), "{cs:?}");
    }

    fn fadvise_dontneed(f: &std::fs::File) -> i32 {
        // SAFETY: posix_fadvise only reads its integer arguments; the
        // descriptor is open for the call.
        unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) }
    }

    #[test]
    fn a_closed_descriptor_is_ebadf() {
        if !available() {
            eprintln!("skipped: this kernel has no cachestat(2) (Linux 6.5+)");
            return;
        }
        // A number far beyond RLIMIT_NOFILE: never an open descriptor,
        // even with other tests opening files at the same time.
        // SAFETY: the number is only passed to the kernel, which rejects it;
        // it is not -1, the one value a BorrowedFd may not hold.
        let borrowed = unsafe { BorrowedFd::borrow_raw(1 << 29) };
        let e = cachestat(borrowed, 0, 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EBADF));
    }
}
