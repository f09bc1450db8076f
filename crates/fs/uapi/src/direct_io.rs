//! Page-based direct I/O on host files.
//!
//! # The page's interface (seed 001, "Page-based direct I/O"; Axboe 2009)
//!
//! Direct I/O moves data between the device and the caller's memory
//! without the page cache. In 2009 `->direct_IO()` took the user's iovecs
//! (user addresses), so the kernel itself could not use it (the loop
//! driver caches every block twice). Jens Axboe's series described a
//! request by the pages it moves instead:
//!
//! ```text
//!   struct dio_args {                        DioArgs {
//!       int rw;                                  rw: Rw,
//!       struct page **pages;                     pages: &mut [P],  (Box<Page>, &mut Page, Page)
//!       unsigned int first_page_off;             first_page_off: usize,
//!       unsigned long nr_segs;                   nr_segs: usize,
//!       unsigned long length;                    length: usize,
//!       loff_t offset;                           offset: u64,
//!   };                                       }
//!
//!   pages[0]               pages[1]               pages[2]
//!   +----------------+     +----------------+     +----------------+
//!   |      |#########|     |################|     |#####|          |
//!   +----------------+     +----------------+     +----------------+
//!    first_page_off ^       <------------- length ------------->
//!   segment 0              segment 1              segment 2        nr_segs = 3
//! ```
//!
//! Here the pages are 4 KiB, 4 KiB-aligned buffers ([`Page`]), the request
//! is cut into one segment per page and handed to `preadv`/`pwritev` on a
//! file opened with `O_DIRECT` (the kernel's iov_iter path since 3.16 is
//! what the series turned into: ITER_BVEC, page + offset + length).
//!
//! # Invariants
//!
//! * `nr_segs == ceil((first_page_off + length) / 4096)` (0 when
//!   `length == 0`), `first_page_off < 4096`, `pages.len() >= nr_segs`;
//! * in direct mode: `offset`, `length` and `first_page_off` are multiples
//!   of the file's direct-I/O offset alignment (`statx` `STATX_DIOALIGN`,
//!   `stx_dio_offset_align`: the logical block size), and
//!   `first_page_off` of its memory alignment (`stx_dio_mem_align`); pages
//!   are 4096-aligned by type. A violation is `EINVAL` naming the field
//!   ([`DioError::Misaligned`]), found before any system call.
//!
//! # What direct I/O is, really ("What is direct I/O, really?", same page)
//!
//! There is no specification; on Linux today a direct read does not fill
//! the page cache (it writes back dirty cached pages of the range first),
//! a direct write invalidates the cached range, and both need aligned
//! offsets, lengths and memory. The tests measure the first two with
//! `mincore`: see [`resident_pages`].
//!
//! # Fallback
//!
//! A filesystem without direct I/O refuses `open(O_DIRECT)` with `EINVAL`
//! (procfs and sysfs files; tmpfs before Linux 6.6, which since commit
//! e88e0d366f9c, "tmpfs: trivial support for direct IO", accepts it and
//! serves it from the page cache: see [`DirectFile::memory_backed`]). [`DirectFile::open`] then opens the
//! file normally and says so ([`IoMode::Buffered`]); transfers need no
//! alignment, and after a read the range is dropped from the page cache
//! (`POSIX_FADV_DONTNEED`), keeping the second reason people use direct
//! I/O (not flooding the cache) where the first cannot be had.

use std::io::{IoSlice, IoSliceMut};
use std::num::NonZeroU64;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Advice, AtFlags, Mode, OFlags, StatxFlags};
use rustix::io::Errno;

use crate::error::DioError;

/// The unit of a [`DioArgs`] page array: 4 KiB.
pub const PAGE_SIZE: usize = 4096;

/// One page of memory, aligned to its size: what a `struct page *` of the
/// page array points at. Allocate with [`Page::zeroed`] or [`Page::alloc`].
#[derive(Clone, PartialEq, Eq)]
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    /// A zeroed page on the heap.
    pub fn zeroed() -> Box<Page> {
        Box::new(Page([0; PAGE_SIZE]))
    }

    /// `n` zeroed pages (not contiguous: an array of page pointers).
    pub fn alloc(n: usize) -> Vec<Box<Page>> {
        (0..n).map(|_| Page::zeroed()).collect()
    }
}

impl std::fmt::Debug for Page {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Page({:#x}..)", self.0[0])
    }
}

impl AsRef<Page> for Page {
    fn as_ref(&self) -> &Page {
        self
    }
}

impl AsMut<Page> for Page {
    fn as_mut(&mut self) -> &mut Page {
        self
    }
}

/// Direction of a transfer (`rw`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rw {
    /// File to pages.
    Read,
    /// Pages to file.
    Write,
}

/// A page-based direct I/O request: `struct dio_args`.
#[derive(Debug)]
pub struct DioArgs<'p, P> {
    /// Direction.
    pub rw: Rw,
    /// The page array.
    pub pages: &'p mut [P],
    /// Where the data starts in `pages[0]`.
    pub first_page_off: usize,
    /// Segments: one per page the data touches.
    pub nr_segs: usize,
    /// Bytes to move.
    pub length: usize,
    /// File offset.
    pub offset: u64,
}

impl<'p, P: AsMut<Page>> DioArgs<'p, P> {
    /// A request with `nr_segs` computed from the other fields.
    pub fn new(
        rw: Rw,
        pages: &'p mut [P],
        first_page_off: usize,
        length: usize,
        offset: u64,
    ) -> Self {
        DioArgs {
            rw,
            pages,
            first_page_off,
            nr_segs: segments_for(first_page_off, length),
            length,
            offset,
        }
    }

    /// The segments' byte ranges within their pages: `(page index,
    /// start, end)`.
    pub fn segment_ranges(&self) -> Vec<(usize, usize, usize)> {
        let mut out = Vec::with_capacity(self.nr_segs);
        let mut left = self.length;
        let mut start = self.first_page_off;
        let mut i = 0;
        while left > 0 {
            let n = left.min(PAGE_SIZE - start);
            out.push((i, start, start + n));
            left -= n;
            start = 0;
            i += 1;
        }
        out
    }
}

/// Segments a request of `length` bytes starting `first_page_off` into its
/// first page touches.
pub fn segments_for(first_page_off: usize, length: usize) -> usize {
    if length == 0 {
        0
    } else {
        (first_page_off + length).div_ceil(PAGE_SIZE)
    }
}

/// Where a file's direct-I/O alignment comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlignSource {
    /// `statx(STATX_DIOALIGN)` (Linux 6.1+) reported it.
    Statx,
    /// The kernel or filesystem did not say; 512 bytes (the traditional
    /// sector) is assumed and the kernel has the last word.
    Assumed,
}

/// A file's direct-I/O alignment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DioAlign {
    /// Memory alignment (`stx_dio_mem_align`).
    pub mem: u32,
    /// File offset and length alignment (`stx_dio_offset_align`).
    pub offset: u32,
    /// Where the numbers come from.
    pub source: AlignSource,
}

/// How a [`DirectFile`] moves data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoMode {
    /// `O_DIRECT`: device to pages, no page cache.
    Direct,
    /// The filesystem refused `O_DIRECT`: buffered I/O, cache dropped after
    /// reads.
    Buffered {
        /// Why, e.g. "open with O_DIRECT: EINVAL".
        reason: String,
    },
}

/// How to open a [`DirectFile`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open for writing too.
    pub write: bool,
    /// Create the file if missing (mode 0644).
    pub create: bool,
    /// Truncate it.
    pub truncate: bool,
}

impl OpenOptions {
    /// Read-only.
    pub const READ: OpenOptions = OpenOptions {
        write: false,
        create: false,
        truncate: false,
    };
    /// Read-write, created and truncated.
    pub const CREATE: OpenOptions = OpenOptions {
        write: true,
        create: true,
        truncate: true,
    };
}

/// A host file for page-based direct I/O.
#[derive(Debug)]
pub struct DirectFile {
    fd: OwnedFd,
    path: PathBuf,
    mode: IoMode,
    align: DioAlign,
}

impl DirectFile {
    /// Opens `path` with `O_DIRECT`, or without it (and says so in
    /// [`DirectFile::mode`]) when the filesystem refuses it.
    pub fn open(path: impl AsRef<Path>, opts: OpenOptions) -> Result<Self, DioError> {
        let path = path.as_ref().to_path_buf();
        let mut flags = OFlags::CLOEXEC;
        flags |= if opts.write {
            OFlags::RDWR
        } else {
            OFlags::RDONLY
        };
        if opts.create {
            flags |= OFlags::CREATE;
        }
        if opts.truncate {
            flags |= OFlags::TRUNC;
        }
        let mode_bits = Mode::from_raw_mode(0o644);
        let (fd, mode) = match rustix::fs::open(&path, flags | OFlags::DIRECT, mode_bits) {
            Ok(fd) => (fd, IoMode::Direct),
            Err(Errno::INVAL) => {
                let fd =
                    rustix::fs::open(&path, flags, mode_bits).map_err(|errno| DioError::File {
                        path: path.clone(),
                        call: "open",
                        errno,
                    })?;
                (
                    fd,
                    IoMode::Buffered {
                        reason: "open with O_DIRECT: EINVAL (the filesystem has no direct I/O)"
                            .to_owned(),
                    },
                )
            }
            Err(errno) => {
                return Err(DioError::File {
                    path,
                    call: "open",
                    errno,
                });
            }
        };
        let align = dio_align(fd.as_fd());
        Ok(DirectFile {
            fd,
            path,
            mode,
            align,
        })
    }

    /// Direct or buffered, and why.
    pub fn mode(&self) -> &IoMode {
        &self.mode
    }

    /// Whether transfers bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.mode == IoMode::Direct
    }

    /// The file's direct-I/O alignment.
    pub fn align(&self) -> DioAlign {
        self.align
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file lives in memory (tmpfs, ramfs): its pages *are*
    /// page-cache pages, so no transfer can avoid the cache. tmpfs accepts
    /// `O_DIRECT` since Linux 6.6 for compatibility and does not report a
    /// direct-I/O alignment.
    pub fn memory_backed(&self) -> bool {
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        const RAMFS_MAGIC: i64 = 0x8584_58f6;
        rustix::fs::fstatfs(&self.fd)
            .map(|st| {
                // `f_type`'s width differs between targets.
                #[allow(clippy::useless_conversion)]
                let t = i64::from(st.f_type);
                t == TMPFS_MAGIC || t == RAMFS_MAGIC
            })
            .unwrap_or(false)
    }

    /// The file's size.
    pub fn len(&self) -> Result<u64, DioError> {
        let st = rustix::fs::fstat(&self.fd).map_err(|errno| DioError::File {
            path: self.path.clone(),
            call: "fstat",
            errno,
        })?;
        Ok(u64::try_from(st.st_size).unwrap_or(0))
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> Result<bool, DioError> {
        Ok(self.len()? == 0)
    }

    /// Checks a request against the invariants in the module header.
    pub fn validate<P>(&self, args: &DioArgs<'_, P>) -> Result<(), DioError> {
        let want = segments_for(args.first_page_off, args.length);
        if args.first_page_off >= PAGE_SIZE {
            return Err(DioError::Invalid {
                field: "first_page_off",
                message: format!(
                    "{} is not inside the first page ({PAGE_SIZE} bytes)",
                    args.first_page_off
                ),
            });
        }
        if args.nr_segs != want {
            return Err(DioError::Invalid {
                field: "nr_segs",
                message: format!(
                    "{} given, but first_page_off {} + length {} spans {want} pages",
                    args.nr_segs, args.first_page_off, args.length
                ),
            });
        }
        if args.pages.len() < args.nr_segs {
            return Err(DioError::Invalid {
                field: "pages",
                message: format!("{} pages for {} segments", args.pages.len(), args.nr_segs),
            });
        }
        if !self.is_direct() {
            return Ok(());
        }
        let oa = u64::from(self.align.offset.max(1));
        let ma = u64::from(self.align.mem.max(1));
        let fpo = args.first_page_off as u64;
        let checks = [
            ("offset", args.offset, oa, "offset"),
            ("length", args.length as u64, oa, "offset"),
            ("first_page_off", fpo, ma, "memory"),
            ("first_page_off", fpo, oa, "offset"),
        ];
        for (field, value, align, what) in checks {
            if value % align != 0 {
                return Err(DioError::Misaligned {
                    field,
                    value,
                    align,
                    what,
                });
            }
        }
        Ok(())
    }

    /// Performs the transfer (`->direct_IO(iocb, args)`): returns the bytes
    /// moved, fewer than `length` only when a read reaches end of file.
    pub fn direct_io<P: AsRef<Page> + AsMut<Page>>(
        &self,
        args: &mut DioArgs<'_, P>,
    ) -> Result<usize, DioError> {
        self.validate(args)?;
        let ranges = args.segment_ranges();
        let offset = args.offset;
        let length = args.length;
        let mut done = 0usize;
        match args.rw {
            Rw::Read => {
                let mut slices: Vec<IoSliceMut<'_>> = Vec::with_capacity(ranges.len());
                let mut rest: &mut [P] = args.pages;
                for &(_, start, end) in &ranges {
                    let (first, tail) = rest.split_at_mut(1);
                    rest = tail;
                    slices.push(IoSliceMut::new(&mut first[0].as_mut().0[start..end]));
                }
                let mut bufs: &mut [IoSliceMut<'_>] = &mut slices;
                while done < length {
                    let pos = offset + done as u64;
                    let n = retry_eintr(|| rustix::io::preadv(&self.fd, bufs, pos)).map_err(
                        |errno| DioError::Io {
                            call: "preadv",
                            offset: pos,
                            errno,
                        },
                    )?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                    IoSliceMut::advance_slices(&mut bufs, n);
                }
                if !self.is_direct() && done > 0 {
                    // Keep the cache as a direct read would have: drop the range.
                    let _ = rustix::fs::fadvise(
                        &self.fd,
                        offset,
                        NonZeroU64::new(done as u64),
                        Advice::DontNeed,
                    );
                }
            }
            Rw::Write => {
                let pages: &[P] = args.pages;
                let mut owned: Vec<&[u8]> = Vec::with_capacity(ranges.len());
                for &(i, start, end) in &ranges {
                    owned.push(&pages[i].as_ref().0[start..end]);
                }
                let mut slices: Vec<IoSlice<'_>> = owned.iter().map(|b| IoSlice::new(b)).collect();
                let mut bufs: &mut [IoSlice<'_>] = &mut slices;
                while done < length {
                    let pos = offset + done as u64;
                    let n = retry_eintr(|| rustix::io::pwritev(&self.fd, bufs, pos)).map_err(
                        |errno| DioError::Io {
                            call: "pwritev",
                            offset: pos,
                            errno,
                        },
                    )?;
                    if n == 0 {
                        return Err(DioError::Io {
                            call: "pwritev",
                            offset: pos,
                            errno: Errno::IO,
                        });
                    }
                    done += n;
                    IoSlice::advance_slices(&mut bufs, n);
                }
            }
        }
        Ok(done)
    }
}

impl AsFd for DirectFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn retry_eintr<T>(mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(Errno::INTR) => continue,
            r => return r,
        }
    }
}

/// The file's direct-I/O alignment from `statx(STATX_DIOALIGN)`, or 512
/// assumed when the kernel (before 6.1) or the filesystem does not say.
fn dio_align(fd: BorrowedFd<'_>) -> DioAlign {
    let assumed = DioAlign {
        mem: 512,
        offset: 512,
        source: AlignSource::Assumed,
    };
    match rustix::fs::statx(fd, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) {
        Ok(st)
            if st.stx_mask & StatxFlags::DIOALIGN.bits() != 0
                && st.stx_dio_mem_align != 0
                && st.stx_dio_offset_align != 0 =>
        {
            DioAlign {
                mem: st.stx_dio_mem_align,
                offset: st.stx_dio_offset_align,
                source: AlignSource::Statx,
            }
        }
        _ => assumed,
    }
}

/// Which pages of a file are in the host page cache (one entry per 4 KiB
/// page of its current size), through `mincore` on a mapping of it
/// (`klab_sys::residency`). The measurement does not read the file.
pub fn resident_pages(file: BorrowedFd<'_>) -> std::io::Result<Vec<bool>> {
    let st = rustix::fs::fstat(file)?;
    let len = u64::try_from(st.st_size).unwrap_or(0);
    klab_sys::residency::resident_pages(file, len)
}

/// Writes back and drops a file's cached pages (`fdatasync` then
/// `POSIX_FADV_DONTNEED`), so a measurement starts from a cold cache.
pub fn evict(file: BorrowedFd<'_>) -> std::io::Result<()> {
    rustix::fs::fdatasync(file)?;
    rustix::fs::fadvise(file, 0, None, Advice::DontNeed)?;
    Ok(())
}
