//! One run: pages of a loop device read by a worker process in a memory
//! cgroup, and the page cache on both sides of the device afterwards.
//!
//! ```text
//!   Session::new(cfg)
//!     probe: root, /dev/loop-control, cgroup v1 memory, cachestat(2)
//!     DataDir: the image, `image_pages` written pages, POSIX_FADV_RANDOM
//!   Session::run(cfg, direct_io, pages)       as often as wanted:
//!     drop the image from the page cache      (no pages, no shadows)
//!     LoopDevice::attach(image, direct_io)    /dev/loopN, block size 4096
//!     MemCgroup::create + set_limit           klab-fidelity-<pid>-<n>
//!     PageWorker: for each page p of `pages`:  cachestat(loopN, p) then
//!                 pread 4 KiB of /dev/loopN at p * 4096
//!     while the device is still open:
//!       cachestat + mincore of /dev/loopN      the upper copy (the block
//!                                              device's page cache)
//!       cachestat + mincore of the image       the lower copy (the backing
//!                                              file's page cache)
//!       memory.usage_in_bytes, max, stat       what the cgroup was charged
//!     remove the cgroup, detach the device    (guards on error and panic;
//!                                              signals: see crate::device)
//! ```
//!
//! Both descriptors the kernel reads through are set to
//! `POSIX_FADV_RANDOM`: the device's (the worker's reads) and the image's
//! (the one `LOOP_CONFIGURE` is given, which the loop driver reads the
//! image through), so a miss brings in one page on each side and the
//! counts compare page for page.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use klab_fidelity::cgroup::{self, MemCgroup};
use klab_fidelity::cleanup;
use klab_fidelity::files::{DataDir, Fill, PAGE_SIZE};
use klab_sys::page_worker::{PageRef, PageWorker, Spec, Touch};
use rustix::fs::{Advice, Mode, OFlags};

use crate::device::{self, Attach, LoopDevice};
use crate::error::LoopError;

/// How to run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The cgroup v1 memory hierarchy.
    pub root: PathBuf,
    /// `memory.limit_in_bytes` of the reader's cgroup.
    pub limit_bytes: u64,
    /// Pages of the image (the device's size).
    pub image_pages: u64,
    /// Where the image's directory goes (default: the temporary directory,
    /// or `/var/tmp` when that is a tmpfs).
    pub dir: Option<PathBuf>,
    /// The CPU the worker is pinned to.
    pub cpu: Option<usize>,
    /// The device's logical block size.
    pub block_size: u32,
    /// Bind the device through a descriptor of the image opened with
    /// `O_DIRECT` (as a database opens its files). The loop driver then
    /// reads the image directly whether or not `LO_FLAGS_DIRECT_IO` is
    /// asked for (`loop_update_dio()` honours the file's `O_DIRECT`).
    pub backing_o_direct: bool,
}

impl RunConfig {
    /// An image of `image_pages` pages, a reader limited to `limit_bytes`,
    /// 4 KiB blocks, the worker on the first CPU this process may use.
    pub fn new(image_pages: u64, limit_bytes: u64) -> Self {
        RunConfig {
            root: PathBuf::from(cgroup::DEFAULT_ROOT),
            limit_bytes,
            image_pages,
            dir: None,
            cpu: klab_fidelity::run::first_allowed_cpu(),
            block_size: 4096,
            backing_o_direct: false,
        }
    }
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopRun {
    /// `LO_FLAGS_DIRECT_IO` was asked for.
    pub direct_io_asked: bool,
    /// ... and the kernel kept it.
    pub direct_io: bool,
    /// Reads made.
    pub reads: u64,
    /// Reads whose device page was cached before the read.
    pub hits: u64,
    /// Pages of `/dev/loopN` in the page cache after the reads.
    pub device_cached: u64,
    /// Pages of the image in the page cache after the reads.
    pub backing_cached: u64,
    /// Pages cached on both sides.
    pub twice: u64,
    /// `memory.usage_in_bytes` of the reader's cgroup after the reads.
    pub usage_bytes: u64,
    /// `memory.max_usage_in_bytes`.
    pub max_usage_bytes: u64,
    /// `memory.stat` `cache`: page-cache bytes charged to the cgroup.
    pub cache_bytes: u64,
    /// `memory.failcnt`: charges the limit refused (each followed by
    /// reclaim in the cgroup).
    pub failcnt: u64,
    /// The limit the kernel applied.
    pub limit_bytes: u64,
    /// Wall time of the reads.
    pub elapsed: Duration,
}

/// The image, made once for any number of runs.
pub struct Session {
    data: DataDir,
    image: PathBuf,
}

impl Session {
    /// Checks the host and writes the image.
    ///
    /// # Errors
    /// [`LoopError::Unavailable`] with the reason when the host cannot run
    /// it; the image's errors otherwise.
    pub fn new(cfg: &RunConfig) -> Result<Session, LoopError> {
        let r = Self::create(cfg);
        cleanup::park_if_interrupted();
        r
    }

    fn create(cfg: &RunConfig) -> Result<Session, LoopError> {
        probe(&cfg.root).map_err(LoopError::Unavailable)?;
        if cfg.image_pages == 0 {
            return Err(LoopError::Config("an image of 0 pages".into()));
        }
        cleanup::install_signal_handlers()
            .map_err(|e| LoopError::Host(klab_fidelity::HostError::Worker(e)))?;
        let data = DataDir::create(cfg.dir.as_deref(), &[cfg.image_pages], Fill::Written)?;
        let image = data.path().join("file0");
        Ok(Session { data, image })
    }

    /// The image file.
    pub fn image(&self) -> &Path {
        &self.image
    }

    fn image_fd(&self) -> BorrowedFd<'_> {
        self.data.fds()[0]
    }

    /// Reads `pages` of the device in order, through a loop device bound
    /// buffered or with direct I/O, in a fresh cgroup; measures both sides.
    ///
    /// # Errors
    /// A page past the image, or what the device, the cgroup or the worker
    /// return.
    pub fn run(
        &self,
        cfg: &RunConfig,
        direct_io: bool,
        pages: &[u64],
    ) -> Result<LoopRun, LoopError> {
        let r = self.run_once(cfg, direct_io, pages);
        cleanup::park_if_interrupted();
        r
    }

    fn run_once(
        &self,
        cfg: &RunConfig,
        direct_io: bool,
        pages: &[u64],
    ) -> Result<LoopRun, LoopError> {
        let image_pages = self.data.pages()[0];
        if let Some(p) = pages.iter().find(|&&p| p >= image_pages) {
            return Err(LoopError::Config(format!(
                "page {p} is past the image's {image_pages} pages"
            )));
        }
        self.data.drop_cache()?;
        self.data.check_uncached()?;
        let direct_fd = if cfg.backing_o_direct {
            let fd = rustix::fs::open(
                &self.image,
                OFlags::RDONLY | OFlags::DIRECT | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| LoopError::device(&self.image, "open with O_DIRECT", e.into()))?;
            rustix::fs::fadvise(&fd, 0, None, Advice::Random)
                .map_err(|e| LoopError::device(&self.image, "posix_fadvise(RANDOM)", e.into()))?;
            Some(fd)
        } else {
            None
        };
        let backing = direct_fd.as_ref().map_or(self.image_fd(), AsFd::as_fd);
        let dev = LoopDevice::attach(
            backing,
            &self.image,
            Attach {
                direct_io,
                block_size: cfg.block_size,
            },
        )?;
        let node = dev.path();
        rustix::fs::fadvise(dev.file(), 0, None, Advice::Random)
            .map_err(|e| LoopError::device(&node, "posix_fadvise(RANDOM)", e.into()))?;
        let cg = MemCgroup::create(&cfg.root)?;
        let limit_bytes = cg.set_limit(cfg.limit_bytes)?;
        let accesses: Vec<PageRef> = pages
            .iter()
            .map(|&page| PageRef { file: 0, page })
            .collect();
        let files = [dev.file().as_fd()];
        let mut worker = PageWorker::spawn(&Spec {
            files: &files,
            accesses: &accesses,
            touch: Touch::Read,
            probe: true,
            cpu: cfg.cpu,
            read_every: None,
            anon_pages: 0,
            hold: false,
        })
        .map_err(|e| LoopError::device(&node, "start the reader", e))?;
        cg.attach(worker.pid())?;
        cg.force_empty()?;
        let t0 = Instant::now();
        worker
            .start()
            .map_err(|e| LoopError::device(&node, "start the reader", e))?;
        let finished = worker
            .wait()
            .map_err(|e| LoopError::device(&node, "read", e))?;
        let elapsed = t0.elapsed();
        if !finished.status.success() || finished.outcomes.iter().any(|o| !o.done()) {
            return Err(LoopError::device(
                &node,
                "read",
                std::io::Error::other(format!(
                    "the reader ended with {} after {} of {} reads",
                    finished.status,
                    finished.outcomes.iter().filter(|o| o.done()).count(),
                    pages.len()
                )),
            ));
        }
        let hits = finished.outcomes.iter().filter(|o| o.cached()).count() as u64;
        let (device_cached, backing_cached, twice) = residency(
            dev.file().as_fd(),
            &node,
            self.image_fd(),
            &self.image,
            image_pages,
        )?;
        let stat = cg.stat()?;
        let run = LoopRun {
            direct_io_asked: direct_io,
            direct_io: dev.direct_io(),
            reads: pages.len() as u64,
            hits,
            device_cached,
            backing_cached,
            twice,
            usage_bytes: cg.read_u64("memory.usage_in_bytes")?,
            max_usage_bytes: cg.read_u64("memory.max_usage_in_bytes")?,
            cache_bytes: stat.get("cache").unwrap_or(0),
            failcnt: cg.read_u64("memory.failcnt")?,
            limit_bytes,
            elapsed,
        };
        cg.remove()?;
        dev.detach()?;
        drop(direct_fd);
        Ok(run)
    }

    /// Removes the image and its directory.
    ///
    /// # Errors
    /// When the directory cannot be removed.
    pub fn close(self) -> Result<(), LoopError> {
        let r = self.data.remove().map_err(LoopError::from);
        cleanup::park_if_interrupted();
        r
    }
}

/// Pages cached on the device's side, on the image's side, and on both
/// (cachestat(2) for the counts, mincore(2) page by page for the overlap).
fn residency(
    dev: BorrowedFd<'_>,
    dev_path: &Path,
    image: BorrowedFd<'_>,
    image_path: &Path,
    pages: u64,
) -> Result<(u64, u64, u64), LoopError> {
    let len = pages * PAGE_SIZE;
    let upper = klab_sys::cachestat::cachestat(dev, 0, len)
        .map_err(|e| LoopError::device(dev_path, "cachestat", e))?;
    let lower = klab_sys::cachestat::cachestat(image, 0, len)
        .map_err(|e| LoopError::device(image_path, "cachestat", e))?;
    let a = klab_sys::residency::resident_pages(dev, len)
        .map_err(|e| LoopError::device(dev_path, "mincore", e))?;
    let b = klab_sys::residency::resident_pages(image, len)
        .map_err(|e| LoopError::device(image_path, "mincore", e))?;
    let twice = a.iter().zip(&b).filter(|(x, y)| **x && **y).count() as u64;
    Ok((upper.nr_cache, lower.nr_cache, twice))
}

/// Whether this host can make a loop-device run: root, a loop driver, the
/// cgroup v1 memory controller at `root`, `cachestat(2)`. `Err` says what
/// is missing.
pub fn probe(root: &Path) -> Result<(), String> {
    device::probe()?;
    cgroup::probe(root)
}
