//! The data files a run reads: created in a temporary directory of their
//! own on a disk-backed filesystem, out of the page cache before the run
//! starts, deleted after it.
//!
//! ```text
//!   <parent>/klab-fidelity-XXXXXX/     a new directory (tempfile), removed on drop
//!     file0, file1, ...               `pages[i]` pages each
//! ```
//!
//! Steps per file: write it ([`Fill::Written`]: every page holds bytes,
//! so a miss is a read from the device; [`Fill::Sparse`]: a hole, so a miss
//! allocates and zero-fills a page-cache page without device I/O), `fsync`,
//! `POSIX_FADV_DONTNEED` (invalidation removes the clean pages and, unlike
//! reclaim, leaves no shadow entry), reopen read-only with
//! `POSIX_FADV_RANDOM` (a read miss brings in exactly one page: mm/readahead.c
//! `page_cache_sync_ra()` reads only the page asked for on an `FMODE_RANDOM`
//! file). [`DataDir::check_uncached`] then asks `cachestat(2)` that no page
//! is cached and no shadow entry exists, so the first read of every page is
//! a plain miss, as in the model.
//!
//! tmpfs and ramfs are refused: their pages are swap-backed (anonymous
//! LRU), never on the file lists the run measures.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::Advice;

use crate::cleanup;
use crate::error::HostError;

/// Bytes per page of the data files.
pub const PAGE_SIZE: u64 = 4096;

/// `TMPFS_MAGIC`.
const TMPFS_MAGIC: i64 = 0x0102_1994;
/// `RAMFS_MAGIC`.
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// How the data files are filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fill {
    /// Every page written: a miss reads from the device.
    #[default]
    Written,
    /// Holes: a miss zero-fills a new page-cache page, no device I/O. The
    /// page cache, LRU and memory cgroup see the same events.
    Sparse,
}

impl Fill {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Fill::Written => "written",
            Fill::Sparse => "sparse",
        }
    }
}

/// How many times [`DataDir::drop_cache`] gives the advice before it
/// leaves the rest to [`DataDir::check_uncached`].
pub const DROP_ATTEMPTS: u32 = 20;
/// The pause between two attempts.
pub const DROP_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// The run's directory and files.
#[derive(Debug)]
pub struct DataDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    files: Vec<File>,
    pages: Vec<u64>,
}

impl DataDir {
    /// Creates one file per entry of `pages` in a new directory under
    /// `parent` (default: the system's temporary directory, or `/var/tmp`
    /// when that is a tmpfs).
    pub fn create(parent: Option<&Path>, pages: &[u64], fill: Fill) -> Result<Self, HostError> {
        let parent = match parent {
            Some(p) => {
                check_disk_backed(p)?;
                p.to_owned()
            }
            None => default_parent()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("klab-fidelity-")
            .tempdir_in(&parent)
            .map_err(|e| HostError::files(&parent, "create a temporary directory", e))?;
        let path = dir.path().to_owned();
        cleanup::register_dir(&path);
        let mut d = DataDir {
            dir: Some(dir),
            path,
            files: Vec::new(),
            pages: pages.to_vec(),
        };
        for (i, &n) in pages.iter().enumerate() {
            let f = d.path.join(format!("file{i}"));
            write_file(&f, n, fill)?;
            let file = File::open(&f).map_err(|e| HostError::files(&f, "open", e))?;
            rustix::fs::fadvise(&file, 0, None, Advice::DontNeed)
                .map_err(|e| HostError::files(&f, "posix_fadvise(DONTNEED)", e.into()))?;
            rustix::fs::fadvise(&file, 0, None, Advice::Random)
                .map_err(|e| HostError::files(&f, "posix_fadvise(RANDOM)", e.into()))?;
            d.files.push(file);
        }
        Ok(d)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The files, in order.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.files.iter().map(AsFd::as_fd).collect()
    }

    /// Pages per file.
    pub fn pages(&self) -> &[u64] {
        &self.pages
    }

    /// Drops every page of the files from the page cache, shadow entries
    /// included (`POSIX_FADV_DONTNEED`: invalidation; since 6.10 it also
    /// clears the shadows evicted pages left).
    ///
    /// mm/fadvise.c `generic_fadvise()` skips a page that is locked, under
    /// writeback or held by someone else for the moment (a read in flight,
    /// a loop device's worker that has just let go of its backing file), so
    /// a page can survive one call. While `cachestat(2)` still sees pages
    /// or shadows, the files are synced and the advice given again, up to
    /// [`DROP_ATTEMPTS`] times [`DROP_PAUSE`] apart; what is left after
    /// that is for [`DataDir::check_uncached`] to report.
    pub fn drop_cache(&self) -> Result<(), HostError> {
        for attempt in 0..DROP_ATTEMPTS {
            for (i, f) in self.files.iter().enumerate() {
                let path = || self.path.join(format!("file{i}"));
                if attempt > 0 {
                    rustix::fs::fdatasync(f)
                        .map_err(|e| HostError::files(path(), "fdatasync", e.into()))?;
                }
                rustix::fs::fadvise(f, 0, None, Advice::DontNeed)
                    .map_err(|e| HostError::files(path(), "posix_fadvise(DONTNEED)", e.into()))?;
            }
            if self.check_uncached().is_ok() {
                return Ok(());
            }
            std::thread::sleep(DROP_PAUSE);
        }
        Ok(())
    }

    /// Checks with `cachestat(2)` that no page of any file is cached and no
    /// shadow entry is left.
    pub fn check_uncached(&self) -> Result<(), HostError> {
        for (i, f) in self.files.iter().enumerate() {
            let path = self.path.join(format!("file{i}"));
            let cs = klab_sys::cachestat::cachestat(f.as_fd(), 0, 0)
                .map_err(|e| HostError::files(&path, "cachestat", e))?;
            if cs.nr_cache > 0 || cs.nr_evicted > 0 {
                return Err(HostError::files(
                    &path,
                    "drop from the page cache",
                    std::io::Error::other(format!(
                        "{} pages still cached and {} shadow entries after POSIX_FADV_DONTNEED",
                        cs.nr_cache, cs.nr_evicted
                    )),
                ));
            }
        }
        Ok(())
    }

    /// Pages of all files in the page cache now (`cachestat(2)`).
    pub fn resident_pages(&self) -> Result<u64, HostError> {
        let mut n = 0;
        for (i, f) in self.files.iter().enumerate() {
            let cs = klab_sys::cachestat::cachestat(f.as_fd(), 0, 0).map_err(|e| {
                HostError::files(self.path.join(format!("file{i}")), "cachestat", e)
            })?;
            n += cs.nr_cache;
        }
        Ok(n)
    }

    /// Removes the directory and its files.
    pub fn remove(mut self) -> Result<(), HostError> {
        self.files.clear();
        let r = match self.dir.take() {
            Some(d) => d
                .close()
                .map_err(|e| HostError::files(&self.path, "remove", e)),
            None => Ok(()),
        };
        cleanup::unregister(&self.path);
        r
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        self.files.clear();
        drop(self.dir.take());
        cleanup::unregister(&self.path);
    }
}

fn write_file(path: &Path, pages: u64, fill: Fill) -> Result<(), HostError> {
    let mut f = File::create(path).map_err(|e| HostError::files(path, "create", e))?;
    match fill {
        Fill::Sparse => f
            .set_len(pages * PAGE_SIZE)
            .map_err(|e| HostError::files(path, "truncate", e))?,
        Fill::Written => {
            // 256 pages per write; each page starts with its number, so no
            // two pages of a file are alike.
            let chunk = 256u64;
            let mut buf = vec![0x6bu8; (chunk * PAGE_SIZE) as usize];
            let mut p = 0;
            while p < pages {
                let n = chunk.min(pages - p);
                for k in 0..n {
                    let at = (k * PAGE_SIZE) as usize;
                    buf[at..at + 8].copy_from_slice(&(p + k).to_le_bytes());
                }
                f.write_all(&buf[..(n * PAGE_SIZE) as usize])
                    .map_err(|e| HostError::files(path, "write", e))?;
                p += n;
            }
        }
    }
    f.sync_all()
        .map_err(|e| HostError::files(path, "fsync", e))?;
    Ok(())
}

/// The system's temporary directory if it is disk-backed, else `/var/tmp`.
fn default_parent() -> Result<PathBuf, HostError> {
    let tmp = std::env::temp_dir();
    if check_disk_backed(&tmp).is_ok() {
        return Ok(tmp);
    }
    let var = PathBuf::from("/var/tmp");
    check_disk_backed(&var)?;
    Ok(var)
}

fn check_disk_backed(dir: &Path) -> Result<(), HostError> {
    let st = rustix::fs::statfs(dir).map_err(|e| HostError::files(dir, "statfs", e.into()))?;
    let kind = fs_type(&st);
    if kind == TMPFS_MAGIC || kind == RAMFS_MAGIC {
        return Err(HostError::files(
            dir,
            "choose a directory for the data files",
            std::io::Error::other(
                "a tmpfs or ramfs keeps its pages on the anonymous LRU lists, not the file lists \
                 the run measures: give a directory on a disk-backed filesystem",
            ),
        ));
    }
    Ok(())
}

/// `f_type`, whose integer type differs between architectures.
#[allow(clippy::unnecessary_cast)]
fn fs_type(st: &rustix::fs::StatFs) -> i64 {
    st.f_type as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_created_out_of_the_cache_and_removed_with_their_directory() {
        if !klab_sys::cachestat::available() {
            eprintln!("skipped: no cachestat(2) on this kernel");
            return;
        }
        for fill in [Fill::Written, Fill::Sparse] {
            let d = DataDir::create(None, &[3, 1], fill).unwrap();
            let path = d.path().to_owned();
            assert_eq!(d.pages(), [3, 1]);
            assert_eq!(
                std::fs::metadata(path.join("file0")).unwrap().len(),
                3 * PAGE_SIZE
            );
            d.check_uncached().unwrap();
            assert!(cleanup::registered().1.contains(&path));
            d.remove().unwrap();
            assert!(!path.exists(), "{fill:?}: directory removed");
            assert!(!cleanup::registered().1.contains(&path));
        }
    }

    #[test]
    fn a_tmpfs_directory_is_refused() {
        let shm = Path::new("/dev/shm");
        if rustix::fs::statfs(shm).map(|s| fs_type(&s)) != Ok(TMPFS_MAGIC) {
            eprintln!("skipped: /dev/shm is not a tmpfs here");
            return;
        }
        let e = DataDir::create(Some(shm), &[1], Fill::Sparse).unwrap_err();
        assert!(e.to_string().contains("disk-backed"), "{e}");
    }
}
