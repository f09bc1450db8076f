//! A forked worker process that reads pages of files in a given order, and
//! records what the page cache held right before each read.
//!
//! klab's fidelity runs put a process in a memory cgroup and replay an
//! access pattern in it. The process must be a separate process (a memory
//! cgroup charges page-cache pages to the cgroup of the mm's owner, so a
//! thread cannot be moved alone), it must not charge anything but the pages
//! it reads, and it must be easy to stop. So it is `fork()`ed from the
//! caller with everything prepared, and does nothing but system calls:
//!
//! ```text
//!   parent                                 child (forked, waits for "go")
//!   ──────                                 ─────
//!   validate accesses, fstat the files
//!   shared results page(s), prefaulted     (MAP_SHARED: writing them
//!   mmap the files (Touch::Mapped)          charges nothing new)
//!   mmap anonymous memory (Touch::Anon,
//!     MAP_PRIVATE, no huge pages; never
//!     touched by the parent)
//!   pipe
//!   fork ───────────────────────────────▶  PDEATHSIG = SIGKILL
//!   (move the pid into a cgroup, ...)      default SIGINT/SIGTERM/SIGHUP
//!   start(): write "go" ────────────────▶  read "go"
//!                                          for each access i:
//!                                            time[i] = CLOCK_MONOTONIC (ns)
//!                                            cachestat(page)   → outcome[i] probe bits
//!                                              (Touch::Anon: mincore(page))
//!                                            pread 4 KiB       (or a load from the mapping,
//!                                                               or a store to anonymous memory)
//!                                            outcome[i] |= DONE; done = i + 1
//!   progress() reads `done`                _exit(0)
//!   wait(): waitpid, outcomes, times
//! ```
//!
//! After `fork()` in a multithreaded program the child may only make
//! async-signal-safe calls. The child here runs one function,
//! `child_main`, that allocates nothing, takes no lock, cannot panic
//! (no indexing, no `unwrap`), and ends in `_exit`: it reads slices the
//! parent built before the fork and writes only the shared results mapping.
//!
//! Results layout (one `MAP_SHARED | MAP_ANONYMOUS` mapping):
//!
//! ```text
//!   0   done: AtomicU64         accesses completed (Release after each)
//!   8   errno: AtomicU64        the failing call's errno, or 0
//!   16  failed_at: AtomicU64    index of the failing access
//!   64  outcome: [u8; n]        Outcome bits per access
//!   T   time: [u64; n]          CLOCK_MONOTONIC ns at each access's start
//!                               (T = 64 + n rounded up to 8)
//!   B   buffer: one page        pread target (B = T + 8n rounded up to a page)
//! ```
//!
//! Invariant: `done <= n`; `outcome[i]` has `DONE` iff `i < done`.
//!
//! Dropping a [`PageWorker`] that was not waited for kills the child
//! (`SIGKILL`) and reaps it.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cachestat::{CacheStat, SYS_CACHESTAT};
use crate::residency::{Mapping, page_size};

/// How each page is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// `pread(2)` of the page (4 KiB at the page's offset).
    Read,
    /// A one-byte load from a shared, read-only mapping of the file
    /// (`MADV_RANDOM`, so a fault reads one page).
    Mapped,
    /// A one-byte store to page `page` of an anonymous private mapping of
    /// [`Spec::anon_pages`] pages (no files; `PageRef::file` is 0): the
    /// first store faults in a zeroed page, later ones find it resident or
    /// swap it back in. The probe asks `mincore(2)`, which says whether
    /// the page is in memory (mapped or in the swap cache).
    Anon,
}

/// One access: page `page` of file `file` (an index into the files given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageRef {
    /// Index into [`Spec::files`].
    pub file: u32,
    /// Page number in the file.
    pub page: u64,
}

/// What to replay.
#[derive(Clone, Copy, Debug)]
pub struct Spec<'a> {
    /// The files, open for reading. The caller sets their read-ahead
    /// (`POSIX_FADV_RANDOM` makes a read miss bring in one page).
    pub files: &'a [BorrowedFd<'a>],
    /// The accesses, in order.
    pub accesses: &'a [PageRef],
    /// How each page is accessed.
    pub touch: Touch,
    /// Ask `cachestat(2)` about each page right before accessing it.
    pub probe: bool,
    /// Pin the worker to this CPU.
    pub cpu: Option<usize>,
    /// Every `n` accesses, read the first page of this file (a control
    /// file such as a cgroup's `memory.stat`, whose read makes the kernel
    /// bring its statistics up to date) with `pread` at offset 0.
    pub read_every: Option<(BorrowedFd<'a>, u64)>,
    /// Pages of anonymous memory for [`Touch::Anon`] (0 otherwise).
    pub anon_pages: u64,
    /// After the last access, wait (its memory kept) until
    /// [`PageWorker::release`], so the caller can read what the worker
    /// holds at the end.
    pub hold: bool,
}

/// What the probe saw before one access, and whether the access was made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outcome(pub u8);

impl Outcome {
    /// The access was made.
    pub const DONE: u8 = 1 << 0;
    /// `cachestat` answered for this page.
    pub const PROBED: u8 = 1 << 1;
    /// The page was in the page cache.
    pub const CACHED: u8 = 1 << 2;
    /// The page was not cached and its slot held a shadow entry.
    pub const EVICTED: u8 = 1 << 3;
    /// ... and the kernel's refault test called it recent.
    pub const RECENT: u8 = 1 << 4;

    /// Whether the access was made.
    pub fn done(self) -> bool {
        self.0 & Self::DONE != 0
    }
    /// Whether the probe answered.
    pub fn probed(self) -> bool {
        self.0 & Self::PROBED != 0
    }
    /// The page was cached: the access hit.
    pub fn cached(self) -> bool {
        self.0 & Self::CACHED != 0
    }
    /// The page had been evicted with a shadow entry: the access refaults.
    pub fn evicted(self) -> bool {
        self.0 & Self::EVICTED != 0
    }
    /// The refault is recent: the page is activated as it comes back.
    pub fn recent(self) -> bool {
        self.0 & Self::RECENT != 0
    }
}

/// `CLOCK_MONOTONIC` now, in nanoseconds: the clock of
/// [`Finished::times_ns`] (and of the kernel's `mono` trace clock).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Exit code of a worker whose access failed (errno in the results).
const EXIT_FAILED: i32 = 2;
/// Exit code of a worker whose parent went away before "go".
const EXIT_NO_GO: i32 = 3;

const HEADER: usize = 64;

/// The shared results mapping.
struct Shared {
    addr: *mut u8,
    len: usize,
    n: usize,
    time_off: usize,
    buf_off: usize,
}

impl Shared {
    fn new(n: usize, page: usize) -> io::Result<Self> {
        let time_off = (HEADER + n).div_ceil(8) * 8;
        let buf_off = (time_off + 8 * n).div_ceil(page) * page;
        let len = buf_off + page;
        // SAFETY: a new anonymous mapping at an address the kernel picks
        // overlaps nothing Rust owns; no file descriptor is involved.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let addr = addr.cast::<u8>();
        // Touch every page now, in the caller's cgroup: the worker's writes
        // then fault in nothing.
        // SAFETY: `addr .. addr + len` is the writable mapping just created.
        unsafe { std::ptr::write_bytes(addr, 0, len) };
        Ok(Shared {
            addr,
            len,
            n,
            time_off,
            buf_off,
        })
    }

    fn counter(&self, at: usize) -> &AtomicU64 {
        debug_assert!(at + 8 <= HEADER && at.is_multiple_of(8));
        // SAFETY: `at` is an 8-aligned offset inside the header of a live,
        // page-aligned mapping, so the address is valid and aligned for a
        // u64; the location is only ever accessed atomically (here and in
        // the child, through the same kind of reference).
        unsafe { &*self.addr.add(at).cast::<AtomicU64>() }
    }

    fn done(&self) -> &AtomicU64 {
        self.counter(0)
    }
    fn errno(&self) -> &AtomicU64 {
        self.counter(8)
    }
    fn failed_at(&self) -> &AtomicU64 {
        self.counter(16)
    }

    fn outcomes(&self) -> Vec<Outcome> {
        (0..self.n)
            .map(|i| {
                // SAFETY: `HEADER + i < buf_off <= len` for i < n: inside
                // the mapping. Read volatile: the bytes were written by
                // another process, which has exited when this is called.
                Outcome(unsafe { self.addr.add(HEADER + i).read_volatile() })
            })
            .collect()
    }

    fn times(&self) -> Vec<u64> {
        (0..self.n)
            .map(|i| {
                // SAFETY: `time_off` is 8-aligned in a page-aligned mapping
                // and `time_off + 8 * n <= buf_off < len`: inside the
                // mapping. Read volatile: written by the exited child.
                unsafe {
                    self.addr
                        .add(self.time_off)
                        .cast::<u64>()
                        .add(i)
                        .read_volatile()
                }
            })
            .collect()
    }
}

/// An anonymous private mapping the parent never touches, for the child's
/// [`Touch::Anon`] accesses; unmapped (in the parent) on drop.
struct AnonRegion {
    addr: *mut libc::c_void,
    len: usize,
}

impl AnonRegion {
    fn new(pages: u64, page: usize) -> io::Result<Self> {
        let len = usize::try_from(pages)
            .ok()
            .and_then(|p| p.checked_mul(page))
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFBIG))?;
        if len == 0 {
            return Ok(AnonRegion {
                addr: std::ptr::null_mut(),
                len: 0,
            });
        }
        // SAFETY: a new private anonymous mapping at an address the kernel
        // picks overlaps nothing Rust owns; MAP_NORESERVE only skips the
        // commit accounting.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let region = AnonRegion { addr, len };
        // SAFETY: advice on the mapping just created: base pages only (a
        // transparent huge page would fault in 512 pages at once).
        if unsafe { libc::madvise(addr, len, libc::MADV_NOHUGEPAGE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(region)
    }
}

impl Drop for AnonRegion {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: the mapping created in `new`; nothing in the parent
            // refers into it.
            unsafe {
                libc::munmap(self.addr, self.len);
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` describe the mapping created in `new`; no
        // reference into it outlives `self`.
        unsafe {
            libc::munmap(self.addr.cast(), self.len);
        }
    }
}

/// A read-only shared mapping of a whole file, read ahead one page a
/// fault (`MADV_RANDOM`).
fn map_random(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mapping> {
    let map = Mapping::new(fd, len)?;
    // SAFETY: advice on the mapping just created; it changes how faults
    // read ahead (one page per fault), nothing else.
    if len > 0 && unsafe { libc::madvise(map.addr, len, libc::MADV_RANDOM) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(map)
}

/// A worker process, forked and waiting for [`PageWorker::start`].
pub struct PageWorker {
    pid: libc::pid_t,
    go: Option<OwnedFd>,
    /// The "go" pipe kept open after start for a holding worker: closing
    /// it releases the worker.
    held: Option<OwnedFd>,
    shared: Shared,
    _maps: Vec<Mapping>,
    reaped: bool,
}

/// What a finished worker did.
#[derive(Clone, Debug)]
pub struct Finished {
    /// One entry per access of the spec, in order.
    pub outcomes: Vec<Outcome>,
    /// `CLOCK_MONOTONIC` in nanoseconds at the start of each access (before
    /// any statistics read and the probe), in order.
    pub times_ns: Vec<u64>,
    /// The worker's exit status.
    pub status: ExitStatus,
}

/// Everything the child needs, as plain values and borrowed slices built
/// before the fork.
struct ChildArgs<'a> {
    parent: libc::pid_t,
    go_read: i32,
    go_write: i32,
    fds: &'a [i32],
    /// Every descriptor the child uses, sorted: it closes all others.
    keep: &'a [i32],
    bases: &'a [usize],
    accesses: &'a [PageRef],
    touch: Touch,
    probe: bool,
    read_every: Option<(i32, u64)>,
    hold: bool,
    page: u64,
    shared: *mut u8,
    times: *mut u64,
    buf: *mut u8,
    anon_base: usize,
}

impl PageWorker {
    /// Forks the worker. It waits, doing nothing, until [`start`]; the
    /// caller may move it into a cgroup meanwhile ([`pid`]).
    ///
    /// Errors: `InvalidInput` when an access names a file that is not
    /// given or a page past a file's end (a mapped access there would kill
    /// the worker with `SIGBUS`); the errno of `fstat`, `mmap`, `pipe2`,
    /// `fork` or `sched_setaffinity` otherwise.
    ///
    /// [`start`]: PageWorker::start
    /// [`pid`]: PageWorker::pid
    pub fn spawn(spec: &Spec<'_>) -> io::Result<PageWorker> {
        let page = page_size();
        if spec.touch == Touch::Anon {
            return Self::spawn_anon(spec, page);
        }
        let mut sizes = Vec::with_capacity(spec.files.len());
        for fd in spec.files {
            // SAFETY: `st` is written by fstat before it is read; `fd` is
            // open for the call.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above: a valid descriptor and a valid out pointer.
            if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
                return Err(io::Error::last_os_error());
            }
            let size = if st.st_mode & libc::S_IFMT == libc::S_IFBLK {
                // A block device (a loop device the worker reads through):
                // fstat gives no size, the device's is asked for.
                crate::residency::block_device_size(*fd)?
            } else {
                u64::try_from(st.st_size).unwrap_or(0)
            };
            sizes.push(size);
        }
        for (i, a) in spec.accesses.iter().enumerate() {
            let Some(&size) = sizes.get(a.file as usize) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "access {i}: file {} is not one of the {} files given",
                        a.file,
                        sizes.len()
                    ),
                ));
            };
            let end = a
                .page
                .checked_add(1)
                .and_then(|p| p.checked_mul(page as u64));
            if end.is_none_or(|e| e > size) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "access {i}: page {} of file {} is past its end ({size} bytes)",
                        a.page, a.file
                    ),
                ));
            }
        }
        let shared = Shared::new(spec.accesses.len(), page)?;
        let mut maps = Vec::new();
        if spec.touch == Touch::Mapped {
            for (fd, &size) in spec.files.iter().zip(&sizes) {
                let len =
                    usize::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
                maps.push(map_random(*fd, len)?);
            }
        }
        let bases: Vec<usize> = maps.iter().map(|m| m.addr as usize).collect();
        let fds: Vec<i32> = spec.files.iter().map(|f| f.as_raw_fd()).collect();
        Self::fork_child(spec, page, shared, maps, &bases, &fds, 0)
    }

    /// [`PageWorker::spawn`] for [`Touch::Anon`]: every access names file 0
    /// and a page below `spec.anon_pages`.
    fn spawn_anon(spec: &Spec<'_>, page: usize) -> io::Result<PageWorker> {
        for (i, a) in spec.accesses.iter().enumerate() {
            if a.file != 0 || a.page >= spec.anon_pages {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "access {i}: page {} of region {} is not one of the {} anonymous pages",
                        a.page, a.file, spec.anon_pages
                    ),
                ));
            }
        }
        let shared = Shared::new(spec.accesses.len(), page)?;
        let region = AnonRegion::new(spec.anon_pages, page)?;
        let base = region.addr as usize;
        let w = Self::fork_child(spec, page, shared, Vec::new(), &[], &[], base)?;
        // The parent's copy of the mapping goes; the child keeps its own.
        drop(region);
        Ok(w)
    }

    fn fork_child(
        spec: &Spec<'_>,
        page: usize,
        shared: Shared,
        maps: Vec<Mapping>,
        bases: &[usize],
        fds: &[i32],
        anon_base: usize,
    ) -> io::Result<PageWorker> {
        if let Some(cpu) = spec.cpu
            && cpu >= libc::CPU_SETSIZE as usize
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpu {cpu} is beyond CPU_SETSIZE"),
            ));
        }
        let mut pipe = [0i32; 2];
        // SAFETY: `pipe` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded: both are new descriptors this function
        // owns.
        let (go_read, go_write) =
            unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
        let mut keep: Vec<i32> = fds.to_vec();
        keep.push(go_read.as_raw_fd());
        if let Some((fd, _)) = spec.read_every {
            keep.push(fd.as_raw_fd());
        }
        keep.sort_unstable();
        keep.dedup();
        let args = ChildArgs {
            keep: &keep,
            // SAFETY: getpid has no preconditions.
            parent: unsafe { libc::getpid() },
            go_read: go_read.as_raw_fd(),
            go_write: go_write.as_raw_fd(),
            fds,
            bases,
            accesses: spec.accesses,
            touch: spec.touch,
            probe: spec.probe,
            read_every: spec.read_every.map(|(fd, n)| (fd.as_raw_fd(), n.max(1))),
            hold: spec.hold,
            page: page as u64,
            shared: shared.addr,
            // SAFETY: `time_off + 8n <= buf_off < len`, 8-aligned.
            times: unsafe { shared.addr.add(shared.time_off) }.cast::<u64>(),
            // SAFETY: `buf_off + page == len`: the last page of the mapping.
            buf: unsafe { shared.addr.add(shared.buf_off) },
            anon_base,
        };
        // SAFETY: fork duplicates this process. In the child, only
        // `child_main` runs: it makes async-signal-safe system calls on
        // values prepared above, allocates nothing, takes no lock, never
        // unwinds, and ends with `_exit`, so the state other threads left
        // in the child's copy of memory (locks held, half-built objects) is
        // never observed. In the parent, fork only returns a pid.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child; see above.
            unsafe { child_main(&args) }
        }
        drop(go_read);
        let mut worker = PageWorker {
            pid,
            go: Some(go_write),
            held: None,
            shared,
            _maps: maps,
            reaped: false,
        };
        if let Some(cpu) = spec.cpu {
            worker.pin(cpu)?;
        }
        Ok(worker)
    }

    fn pin(&mut self, cpu: usize) -> io::Result<()> {
        // SAFETY: an all-zero cpu_set_t is the empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `cpu < CPU_SETSIZE` was checked in `spawn`, so CPU_SET
        // sets a bit inside `set`.
        unsafe { libc::CPU_SET(cpu, &mut set) };
        // SAFETY: `set` is a valid cpu_set_t of the size passed; the pid is
        // our child's, not yet reaped.
        let rc = unsafe {
            libc::sched_setaffinity(self.pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The worker's process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Lets the worker run its accesses.
    pub fn start(&mut self) -> io::Result<()> {
        let Some(go) = self.go.take() else {
            return Ok(());
        };
        let b = [1u8];
        // SAFETY: writes one byte from a live buffer to a pipe we own.
        let rc = unsafe { libc::write(go.as_raw_fd(), b.as_ptr().cast(), 1) };
        if rc != 1 {
            return Err(io::Error::last_os_error());
        }
        self.held = Some(go);
        Ok(())
    }

    /// Lets a holding worker ([`Spec::hold`]) exit once its accesses are
    /// done (nothing for one that does not hold).
    pub fn release(&mut self) {
        self.held = None;
    }

    /// Accesses completed so far.
    pub fn progress(&self) -> u64 {
        self.shared.done().load(Ordering::Acquire)
    }

    /// The worker's results if it has exited (reaping it), `None` while it
    /// runs; never blocks. Errors as [`PageWorker::wait`].
    pub fn try_finish(&mut self) -> io::Result<Option<Finished>> {
        match self.waitpid(libc::WNOHANG)? {
            Some(status) => self.finish(status).map(Some),
            None => Ok(None),
        }
    }

    fn waitpid(&mut self, flags: i32) -> io::Result<Option<ExitStatus>> {
        if self.reaped {
            return Err(io::Error::from_raw_os_error(libc::ECHILD));
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child; `status` is a valid out
            // pointer.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, flags) };
            if rc == self.pid {
                self.reaped = true;
                return Ok(Some(ExitStatus::from_raw(status)));
            }
            if rc == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    /// Waits for the worker to finish and collects the outcomes.
    ///
    /// Errors: the errno of a failed access (with its index), or `Other`
    /// when the worker was killed by a signal or exited otherwise.
    pub fn wait(mut self) -> io::Result<Finished> {
        // A worker never started, or holding, would wait forever: let it
        // see EOF.
        self.go = None;
        self.held = None;
        let status = self.waitpid(0)?.expect("a blocking waitpid reaps");
        self.finish(status)
    }

    fn finish(&self, status: ExitStatus) -> io::Result<Finished> {
        let done = self.progress();
        match status.code() {
            Some(0) => Ok(Finished {
                outcomes: self.shared.outcomes(),
                times_ns: self.shared.times(),
                status,
            }),
            Some(EXIT_FAILED) => {
                let errno = self.shared.errno().load(Ordering::Acquire);
                let at = self.shared.failed_at().load(Ordering::Acquire);
                let e = io::Error::from_raw_os_error(i32::try_from(errno).unwrap_or(libc::EIO));
                Err(io::Error::new(e.kind(), format!("access {at}: {e}")))
            }
            Some(EXIT_NO_GO) => Err(io::Error::other(
                "the worker was never started (its parent closed the pipe)",
            )),
            _ => Err(io::Error::other(format!(
                "the worker ended with {status} after {done} accesses"
            ))),
        }
    }

    /// Kills the worker (`SIGKILL`) and reaps it. Nothing happens if it was
    /// already reaped.
    pub fn kill(&mut self) {
        if self.reaped {
            return;
        }
        // SAFETY: signals our own child, not yet reaped (so the pid is not
        // reused).
        unsafe {
            libc::kill(self.pid, libc::SIGKILL);
        }
        let _ = self.waitpid(0);
    }
}

impl Drop for PageWorker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The worker: wait for "go", run the accesses, `_exit`.
///
/// # Safety
/// Must be called only in a freshly forked child, with `args` built by
/// [`PageWorker::spawn`] before the fork.
unsafe fn child_main(args: &ChildArgs<'_>) -> ! {
    // SAFETY (whole function): only async-signal-safe system calls on
    // values prepared before the fork; raw writes go to the shared results
    // mapping at offsets bounded by `accesses.len()`, which sized it; the
    // mapped loads read inside file mappings whose bounds `spawn` checked.
    unsafe {
        libc::close(args.go_write);
        // Every other descriptor the parent had open (its other files,
        // other threads' pipes and trace readers) closes here, so the
        // worker holds nothing another part of the parent waits to see
        // closed.
        let mut next = 3i32;
        for &k in args.keep {
            if k > next {
                libc::syscall(libc::SYS_close_range, next as u32, (k - 1) as u32, 0u32);
            }
            next = next.max(k + 1);
        }
        libc::syscall(libc::SYS_close_range, next as u32, u32::MAX, 0u32);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != args.parent {
            libc::_exit(EXIT_NO_GO);
        }
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, libc::SIG_DFL);
        }
        let mut b = 0u8;
        loop {
            let r = libc::read(args.go_read, (&mut b as *mut u8).cast(), 1);
            if r == 1 {
                break;
            }
            if r == 0 || *libc::__errno_location() != libc::EINTR {
                libc::_exit(EXIT_NO_GO);
            }
        }
        if !args.hold {
            libc::close(args.go_read);
        }
        let done = &*args.shared.cast::<AtomicU64>();
        let errno = &*args.shared.add(8).cast::<AtomicU64>();
        let failed_at = &*args.shared.add(16).cast::<AtomicU64>();
        let fail = |i: usize, e: i32| -> ! {
            errno.store(e as u64, Ordering::Release);
            failed_at.store(i as u64, Ordering::Release);
            libc::_exit(EXIT_FAILED)
        };
        for (i, a) in args.accesses.iter().enumerate() {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
            args.times
                .add(i)
                .write_volatile(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
            if let Some((sfd, every)) = args.read_every
                && (i as u64).is_multiple_of(every)
            {
                // Errors are ignored: the read only refreshes statistics.
                libc::pread(sfd, args.buf.cast(), args.page as usize, 0);
            }
            if args.touch == Touch::Anon {
                anon_access(args, i, a.page);
                done.store(i as u64 + 1, Ordering::Release);
                continue;
            }
            let Some(&fd) = args.fds.get(a.file as usize) else {
                fail(i, libc::EINVAL)
            };
            let off = a.page * args.page;
            let mut flags = Outcome::DONE;
            if args.probe {
                let range = [off, args.page];
                let mut cs = CacheStat::default();
                let rc = libc::syscall(
                    SYS_CACHESTAT,
                    fd,
                    range.as_ptr(),
                    &mut cs as *mut CacheStat,
                    0u32,
                );
                if rc == 0 {
                    flags |= Outcome::PROBED;
                    if cs.nr_cache > 0 {
                        flags |= Outcome::CACHED;
                    }
                    if cs.nr_evicted > 0 {
                        flags |= Outcome::EVICTED;
                    }
                    if cs.nr_recently_evicted > 0 {
                        flags |= Outcome::RECENT;
                    }
                }
            }
            match args.touch {
                Touch::Read => loop {
                    let r =
                        libc::pread(fd, args.buf.cast(), args.page as usize, off as libc::off_t);
                    if r >= 0 {
                        break;
                    }
                    let e = *libc::__errno_location();
                    if e != libc::EINTR {
                        fail(i, e)
                    }
                },
                Touch::Mapped => {
                    let Some(&base) = args.bases.get(a.file as usize) else {
                        fail(i, libc::EINVAL)
                    };
                    std::ptr::read_volatile((base + off as usize) as *const u8);
                }
                Touch::Anon => {}
            }
            args.shared.add(HEADER + i).write_volatile(flags);
            done.store(i as u64 + 1, Ordering::Release);
        }
        if args.hold {
            // Until the parent closes its end (or dies: PDEATHSIG).
            while libc::read(args.go_read, (&mut b as *mut u8).cast(), 1) != 0 {}
        }
        libc::_exit(0)
    }
}

/// One [`Touch::Anon`] access in the child: `mincore` of the page, then a
/// store of a non-zero byte (a page of zeros would be swapped out as a
/// zero-map entry without I/O).
///
/// # Safety
/// As [`child_main`]: in the forked child only; `page` was checked against
/// the region's pages before the fork.
unsafe fn anon_access(args: &ChildArgs<'_>, i: usize, page: u64) {
    // SAFETY: the address is inside the child's anonymous region (checked
    // bound, page-aligned); mincore writes one byte to `vec`; the store
    // goes to memory the child owns and no reference aliases; the outcome
    // byte is inside the results mapping.
    unsafe {
        let addr = args.anon_base + (page * args.page) as usize;
        let mut flags = Outcome::DONE;
        if args.probe {
            let mut vec = 0u8;
            if libc::mincore(addr as *mut libc::c_void, args.page as usize, &mut vec) == 0 {
                flags |= Outcome::PROBED;
                if vec & 1 == 1 {
                    flags |= Outcome::CACHED;
                }
            }
        }
        std::ptr::write_volatile(addr as *mut u8, (i as u8) | 1);
        args.shared.add(HEADER + i).write_volatile(flags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    fn file_of(pages: usize) -> (tempfile::TempDir, std::fs::File) {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let path = dir.path().join("data");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![0x5a; pages * page_size()]).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let f = std::fs::File::open(&path).unwrap();
        // SAFETY: advice on an open descriptor; only integers are passed.
        unsafe {
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
            libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM);
        }
        (dir, f)
    }

    fn reads(pages: &[u64]) -> Vec<PageRef> {
        pages
            .iter()
            .map(|&page| PageRef { file: 0, page })
            .collect()
    }

    /// A spec that reads each page with `pread`, probes nothing, pins
    /// nothing and reads no statistics file.
    fn spec<'a>(files: &'a [BorrowedFd<'a>], accesses: &'a [PageRef]) -> Spec<'a> {
        Spec {
            files,
            accesses,
            touch: Touch::Read,
            probe: false,
            cpu: None,
            read_every: None,
            anon_pages: 0,
            hold: false,
        }
    }

    #[track_caller]
    fn replay(f: &std::fs::File, pages: &[u64], touch: Touch) -> Vec<Outcome> {
        let fds = [f.as_fd()];
        let acc = reads(pages);
        let mut w = PageWorker::spawn(&Spec {
            touch,
            probe: true,
            ..spec(&fds, &acc)
        })
        .unwrap();
        w.start().unwrap();
        let fin = w.wait().unwrap();
        assert!(fin.status.success());
        fin.outcomes
    }

    #[test]
    fn a_read_brings_one_page_in_and_the_next_read_of_it_hits() {
        if !crate::cachestat::available() {
            eprintln!("skipped: no cachestat(2) on this kernel");
            return;
        }
        for touch in [Touch::Read, Touch::Mapped] {
            let (_dir, f) = file_of(8);
            let out = replay(&f, &[3, 3, 5, 3], touch);
            let cached: Vec<bool> = out.iter().map(|o| o.cached()).collect();
            assert_eq!(cached, [false, true, false, true], "{touch:?}");
            assert!(out.iter().all(|o| o.done() && o.probed()));
            assert!(
                out.iter().all(|o| !o.evicted()),
                "a new file has no shadows"
            );
            // POSIX_FADV_RANDOM (MADV_RANDOM): exactly the two pages read.
            let cs = crate::cachestat::cachestat(f.as_fd(), 0, 0).unwrap();
            assert_eq!(cs.nr_cache, 2, "{touch:?}: no read-ahead");
        }
    }

    #[test]
    fn anonymous_pages_fault_in_once_and_every_access_is_timed_in_order() {
        let acc = reads(&[2, 2, 0, 2, 5]);
        let mut w = PageWorker::spawn(&Spec {
            touch: Touch::Anon,
            probe: true,
            anon_pages: 6,
            ..spec(&[], &acc)
        })
        .unwrap();
        w.start().unwrap();
        let fin = w.wait().unwrap();
        let resident: Vec<bool> = fin.outcomes.iter().map(|o| o.cached()).collect();
        assert_eq!(resident, [false, true, false, true, false]);
        assert!(fin.outcomes.iter().all(|o| o.done() && o.probed()));
        assert_eq!(fin.times_ns.len(), 5);
        assert!(fin.times_ns[0] > 0);
        assert!(
            fin.times_ns.windows(2).all(|w| w[0] <= w[1]),
            "CLOCK_MONOTONIC never goes back: {:?}",
            fin.times_ns
        );
    }

    #[test]
    fn anonymous_accesses_outside_the_region_are_refused() {
        let acc = vec![PageRef { file: 0, page: 6 }];
        let e = PageWorker::spawn(&Spec {
            touch: Touch::Anon,
            anon_pages: 6,
            ..spec(&[], &acc)
        })
        .err()
        .expect("refused");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(
            e.to_string().contains("not one of the 6 anonymous pages"),
            "{e}"
        );
    }

    #[test]
    fn a_holding_worker_keeps_its_memory_until_released() {
        let acc = reads(&[0, 1, 2]);
        let mut w = PageWorker::spawn(&Spec {
            touch: Touch::Anon,
            anon_pages: 3,
            hold: true,
            ..spec(&[], &acc)
        })
        .unwrap();
        w.start().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while w.progress() < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker did not finish its accesses"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(w.try_finish().unwrap().is_none(), "it holds");
        w.release();
        let fin = w.wait().unwrap();
        assert!(fin.status.success());
    }

    #[test]
    fn accesses_past_the_end_or_to_unknown_files_are_refused_before_forking() {
        let (_dir, f) = file_of(2);
        let fds = [f.as_fd()];
        for (acc, what) in [
            (vec![PageRef { file: 0, page: 2 }], "past its end"),
            (vec![PageRef { file: 1, page: 0 }], "not one of the 1 files"),
        ] {
            let e = PageWorker::spawn(&spec(&fds, &acc)).err().expect("refused");
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(e.to_string().contains(what), "{e}");
        }
    }

    #[test]
    fn a_worker_dropped_before_start_is_killed_and_reaped() {
        let (_dir, f) = file_of(1);
        let fds = [f.as_fd()];
        let acc = reads(&[0]);
        let w = PageWorker::spawn(&spec(&fds, &acc)).unwrap();
        let pid = w.pid();
        drop(w);
        // SAFETY: signal 0 only checks whether the pid exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "worker {pid} is gone");
    }

    #[test]
    fn a_worker_never_started_ends_when_waited_for() {
        let (_dir, f) = file_of(1);
        let fds = [f.as_fd()];
        let acc = reads(&[0]);
        let w = PageWorker::spawn(&Spec {
            cpu: Some(0),
            ..spec(&fds, &acc)
        })
        .unwrap();
        let e = w.wait().unwrap_err();
        assert!(e.to_string().contains("never started"), "{e}");
    }

    #[test]
    fn progress_counts_accesses_and_the_outcomes_cover_them_all() {
        let (_dir, f) = file_of(4);
        let fds = [f.as_fd()];
        let acc = reads(&[0, 1, 2, 3, 0, 1]);
        // The data file itself stands in for a statistics file.
        let mut w = PageWorker::spawn(&Spec {
            read_every: Some((f.as_fd(), 2)),
            ..spec(&fds, &acc)
        })
        .unwrap();
        assert_eq!(w.progress(), 0, "nothing before start");
        w.start().unwrap();
        let fin = loop {
            if let Some(f) = w.try_finish().unwrap() {
                break f;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert_eq!(w.progress(), 6);
        assert_eq!(fin.outcomes.len(), 6);
        assert!(fin.outcomes.iter().all(|o| o.done() && !o.probed()));
    }
}
