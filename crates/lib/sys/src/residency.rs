//! Page-cache residency of a file, measured the way `fincore(1)` does:
//! map the file, ask `mincore(2)` which pages of the mapping are resident,
//! unmap.
//!
//! ```text
//!   file:     [ page 0 ][ page 1 ][ page 2 ] ... [ page n-1 ]
//!   mmap(PROT_READ, MAP_SHARED)  -- no page is touched, nothing faults in
//!   mincore:  [   1    ][   0    ][   1    ] ... [    0     ]   bit 0 = in the page cache
//! ```
//!
//! Mapping a file does not read it, so the measurement leaves the cache as
//! it found it. For a shared file mapping the kernel answers from the page
//! cache itself (mm/mincore.c, `mincore_page()`), whether or not this
//! process ever touched the page. Since Linux 5.2 the answer is given only
//! to a caller that owns the file or may write it (else every page reads as
//! resident-if-mapped); the callers here measure files they created.
//!
//! Used by `klab-uapi`'s direct-I/O tests and experiments to show that an
//! `O_DIRECT` read leaves the page cache untouched and a buffered read
//! fills it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// The resident pages of a file's first `len` bytes, one entry per page
/// (`true` = in the page cache).
///
/// `len` is usually the file's size; pages past the end of the file are
/// not asked about. Errors are the `mmap(2)`/`mincore(2)` errno
/// (`EACCES` for a file not open for reading, `ENODEV` for a file that
/// cannot be mapped, such as a pipe).
pub fn resident_pages(fd: BorrowedFd<'_>, len: u64) -> io::Result<Vec<bool>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let len = usize::try_from(len).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
    let page = page_size();
    let pages = len.div_ceil(page);
    let map = Mapping::new(fd, len)?;
    let mut vec = vec![0u8; pages];
    // SAFETY: `map.addr` is the start of a live mapping of `len` bytes that
    // this function created (page-aligned, as mmap returns); `vec` has one
    // byte for each of the ceil(len / page) pages mincore reports, so the
    // kernel writes only inside it. No Rust reference to the mapping exists.
    let rc = unsafe { libc::mincore(map.addr, len, vec.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(vec.iter().map(|b| b & 1 == 1).collect())
}

/// The number of resident pages among the first `len` bytes of a file.
pub fn resident_count(fd: BorrowedFd<'_>, len: u64) -> io::Result<usize> {
    Ok(resident_pages(fd, len)?.into_iter().filter(|r| *r).count())
}

/// `ioctl(BLKGETSIZE64)`: the size in bytes of the block device open as
/// `fd` (`ENOTTY` for anything else).
pub fn block_device_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    /// `_IOR(0x12, 114, size_t)`.
    const BLKGETSIZE64: libc::c_ulong = 0x8008_1272;
    let mut size = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points
    // at a live local; the descriptor is open for the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

/// The page size `mincore` counts in.
pub fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the running system; it touches no
    // memory of ours.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(v).unwrap_or(4096)
}

/// A read-only shared mapping of a file, unmapped on drop (also used by
/// [`crate::page_worker`]). A zero length maps nothing.
pub(crate) struct Mapping {
    pub(crate) addr: *mut libc::c_void,
    len: usize,
}

impl Mapping {
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Ok(Mapping {
                addr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a fresh mapping at an address the kernel chooses
        // (addr = NULL) cannot overlap memory Rust already uses; `fd` is a
        // valid descriptor for the duration of the call (it is borrowed).
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: `addr`/`len` describe the mapping created in `new`,
            // which nothing else refers to; unmapping it once here ends
            // its life.
            unsafe {
                libc::munmap(self.addr, self.len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_regular_file_has_no_block_device_size() {
        let f = tempfile::tempfile().unwrap();
        let e = block_device_size(f.as_fd()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOTTY));
    }

    #[test]
    fn an_empty_file_has_no_pages() {
        let f = tempfile::tempfile().unwrap();
        assert!(resident_pages(f.as_fd(), 0).unwrap().is_empty());
    }

    #[test]
    fn written_pages_are_resident_and_counted_per_page() {
        // Buffered writes leave dirty pages in the page cache: all three
        // pages of a 3-page file (the last one partial) are resident.
        let page = page_size();
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&vec![7u8; 2 * page + 1]).unwrap();
        let r = resident_pages(f.as_fd(), (2 * page + 1) as u64).unwrap();
        assert_eq!(r, vec![true, true, true]);
        let mut back = Vec::new();
        std::io::Seek::rewind(&mut f).unwrap();
        f.read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), 2 * page + 1);
    }

    #[test]
    fn a_pipe_cannot_be_measured() {
        let (r, _w) = std::io::pipe().unwrap();
        let e = resident_pages(r.as_fd(), 4096).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
    }
}
