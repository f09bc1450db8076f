//! Descriptor tables, and O_NOSTD against the ways programs defend
//! themselves without it (seed 001, "O_NOSTD"; `docs/REFERENCE.md` §12).
//!
//! # Data structures
//!
//! ```text
//!   FdTable { fds: [Option<Entry>; ..], syscalls }
//!     fd 0  Entry { target: Terminal, cloexec }     standard input
//!     fd 1  Entry { target: Terminal, .. }          standard output
//!     fd 2  None                                    closed at exec (prog 2>&-)
//!     fd 3  Entry { target: File("out0"), .. }
//! ```
//!
//! # Rules
//!
//! * `alloc_fd()` (fs/file.c): a new descriptor is the lowest free number
//!   at or above the start, 0 for `open`, `arg` for `F_DUPFD`; with the
//!   proposed `O_NOSTD` the start is 3.
//! * Every table operation is one system call and counts as one; checks a
//!   program makes on a returned number cost nothing.
//!
//! # Strategies ([`Strategy`])
//!
//! * `Plain`: `open()` and hope descriptors 0..2 are open.
//! * `CheckAndDup`: gnulib's `open_safer()`: if `open` returned 0..2,
//!   `fcntl(F_DUPFD_CLOEXEC, 3)` and `close` the original: 0 extra calls
//!   while 0..2 are open, 2 per open while one is closed (the freed
//!   number is taken again by the next `open`).
//! * `Stdopen`: glibc's `__libc_check_standard_fds()` (for set-user-ID
//!   programs; Rust's std does it for every program): at startup,
//!   `fcntl(F_GETFD)` on 0, 1, 2 and `open("/dev/null")` on each closed
//!   one; then plain opens. Costs 3 calls per program start, always, and
//!   keeps descriptors open on `/dev/null`.
//! * `ONostd`: the proposed flag: one call per open, never 0..2.
//! * `KernelDefaultNoStd`: the page's aside, the inverse: the kernel
//!   never returns 0..2 unless asked with a new flag. Safe, but it breaks
//!   programs that reopen a standard descriptor with `close(0);
//!   open(...)`: "a major ABI change".
//!
//! `O_NOSTD` was proposed and never merged. A kernel without it
//! ([`FdTable::without_nostd`]) treats the bit as it treats every flag it
//! does not know: `open(2)` drops it (fs/open.c, `build_open_how()`:
//! "older syscalls implicitly clear all of the invalid flags"), and the
//! open takes the lowest free number as a plain one does.
//!
//! Between `open` returning 2 and the `close` of `CheckAndDup`, descriptor
//! 2 names the user's file: another thread writing to standard error then
//! writes into it. [`run_program`] counts such writes with a seeded
//! second thread.

use std::fmt;

use rand::Rng;

use crate::rng::Rng as ModelRng;

/// A descriptor number.
pub type Fd = usize;

/// The lowest descriptor `O_NOSTD` may return.
pub const FIRST_NON_STD: Fd = 3;

/// What a descriptor refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// The terminal the program was started on.
    Terminal,
    /// `/dev/null`.
    DevNull,
    /// A file the program opened.
    File(String),
}

/// One slot of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    target: Target,
    cloexec: bool,
}

/// Why a table operation failed (the kernel's errno).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FdError {
    /// `EBADF`: not an open descriptor.
    #[error("EBADF: descriptor {0} is not open")]
    BadFd(Fd),
    /// `EMFILE`: no free descriptor below the limit.
    #[error("EMFILE: no free descriptor at or above {0}")]
    TooMany(Fd),
}

/// Flags of a model `open`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// `O_NOSTD`: never 0, 1 or 2.
    pub nostd: bool,
    /// `O_CLOEXEC`.
    pub cloexec: bool,
}

/// A second thread of the process that writes a warning to descriptor 2
/// after any system call of the main thread, with probability `p`.
#[derive(Clone, Debug)]
pub struct Interference {
    p: f64,
    rng: ModelRng,
    /// Warnings it wrote.
    pub writes: u64,
    /// Of which landed in a file the program opened.
    pub misdirected: u64,
}

impl Interference {
    /// A writer with probability `p` per main-thread call, drawing from
    /// `rng`.
    pub fn new(p: f64, rng: ModelRng) -> Self {
        Interference {
            p,
            rng,
            writes: 0,
            misdirected: 0,
        }
    }
}

/// A process's descriptor table, counting system calls.
#[derive(Clone, Debug)]
pub struct FdTable {
    fds: Vec<Option<Entry>>,
    limit: usize,
    syscalls: u64,
    /// The kernel's default start for `open` (0 today; 3 under the
    /// inverse policy).
    open_start: Fd,
    /// The other thread, if any: it runs between the main thread's calls.
    interference: Option<Interference>,
    /// Whether `open` knows `O_NOSTD` (false: the bit is dropped).
    nostd_known: bool,
}

impl FdTable {
    /// A table as a program finds it at exec: 0..2 on the terminal except
    /// those `closed`; `RLIMIT_NOFILE` of 1024.
    pub fn at_exec(closed: [bool; 3]) -> Self {
        let fds = closed
            .iter()
            .map(|c| {
                (!c).then_some(Entry {
                    target: Target::Terminal,
                    cloexec: false,
                })
            })
            .collect();
        FdTable {
            fds,
            limit: 1024,
            syscalls: 0,
            open_start: 0,
            interference: None,
            nostd_known: true,
        }
    }

    /// The same on a kernel that does not know `O_NOSTD`: `open` drops
    /// the flag, as `build_open_how()` drops every unknown flag.
    pub fn without_nostd(mut self) -> Self {
        self.nostd_known = false;
        self
    }

    /// Adds a second thread writing to standard error between calls.
    pub fn with_interference(mut self, i: Interference) -> Self {
        self.interference = Some(i);
        self
    }

    /// The second thread's counters.
    pub fn interference(&self) -> Option<&Interference> {
        self.interference.as_ref()
    }

    /// One system call done: count it, then let the other thread run.
    fn syscall_done(&mut self) {
        self.syscalls += 1;
        let on_file = matches!(self.get(2), Some(Target::File(_)));
        if let Some(i) = self.interference.as_mut()
            && i.rng.random_bool(i.p)
        {
            i.writes += 1;
            if on_file {
                i.misdirected += 1;
            }
        }
    }

    /// The same under a kernel whose `open` never returns 0..2 unless
    /// asked ([`Strategy::KernelDefaultNoStd`]).
    pub fn with_open_start(mut self, start: Fd) -> Self {
        self.open_start = start;
        self
    }

    /// System calls made so far.
    pub fn syscalls(&self) -> u64 {
        self.syscalls
    }

    /// What `fd` refers to, if open.
    pub fn get(&self, fd: Fd) -> Option<&Target> {
        self.fds.get(fd).and_then(|e| e.as_ref()).map(|e| &e.target)
    }

    /// Open descriptors.
    pub fn open_count(&self) -> usize {
        self.fds.iter().filter(|e| e.is_some()).count()
    }

    /// `alloc_fd(start)`: the lowest free number at or above `start`.
    fn alloc_fd(&self, start: Fd) -> Result<Fd, FdError> {
        let free = (start..self.limit).find(|&fd| self.get(fd).is_none());
        free.ok_or(FdError::TooMany(start))
    }

    fn install(&mut self, fd: Fd, e: Entry) {
        if self.fds.len() <= fd {
            self.fds.resize(fd + 1, None);
        }
        self.fds[fd] = Some(e);
    }

    /// `open(2)`.
    pub fn open(&mut self, target: Target, flags: OpenFlags) -> Result<Fd, FdError> {
        let start = if flags.nostd && self.nostd_known {
            FIRST_NON_STD.max(self.open_start)
        } else {
            self.open_start
        };
        let r = self.alloc_fd(start).inspect(|&fd| {
            self.install(
                fd,
                Entry {
                    target,
                    cloexec: flags.cloexec,
                },
            );
        });
        self.syscall_done();
        r
    }

    /// `open(2)` with the inverse policy's opt-in flag (`O_STD`): the lowest
    /// number, standard ones included.
    pub fn open_std(&mut self, target: Target) -> Result<Fd, FdError> {
        let r = self.alloc_fd(0).inspect(|&fd| {
            self.install(
                fd,
                Entry {
                    target,
                    cloexec: false,
                },
            );
        });
        self.syscall_done();
        r
    }

    /// `fcntl(fd, F_DUPFD[_CLOEXEC], min)`.
    pub fn dupfd(&mut self, fd: Fd, min: Fd, cloexec: bool) -> Result<Fd, FdError> {
        let r = self
            .get(fd)
            .cloned()
            .ok_or(FdError::BadFd(fd))
            .and_then(|target| {
                let new = self.alloc_fd(min)?;
                self.install(new, Entry { target, cloexec });
                Ok(new)
            });
        self.syscall_done();
        r
    }

    /// `fcntl(fd, F_GETFD)`: the close-on-exec flag.
    pub fn getfd(&mut self, fd: Fd) -> Result<bool, FdError> {
        let r = self
            .fds
            .get(fd)
            .and_then(|e| e.as_ref())
            .map(|e| e.cloexec)
            .ok_or(FdError::BadFd(fd));
        self.syscall_done();
        r
    }

    /// `close(2)`.
    pub fn close(&mut self, fd: Fd) -> Result<(), FdError> {
        let r = match self.fds.get_mut(fd).and_then(Option::take) {
            Some(_) => Ok(()),
            None => Err(FdError::BadFd(fd)),
        };
        self.syscall_done();
        r
    }

    /// `write(2)`: where the bytes went.
    pub fn write(&mut self, fd: Fd) -> Result<Target, FdError> {
        let r = self.get(fd).cloned().ok_or(FdError::BadFd(fd));
        self.syscall_done();
        r
    }

    /// Checks the table's invariants: the limit holds.
    pub fn assert_invariants(&self) {
        assert!(self.fds.len() <= self.limit, "table past RLIMIT_NOFILE");
    }
}

/// How a program protects itself against closed standard descriptors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strategy {
    /// Nothing.
    Plain,
    /// gnulib `open_safer`: check the number, move it above 2.
    CheckAndDup,
    /// glibc-style startup check: `/dev/null` on closed 0..2.
    Stdopen,
    /// The proposed `O_NOSTD` flag.
    ONostd,
    /// The inverse: the kernel avoids 0..2 unless asked.
    KernelDefaultNoStd,
}

impl Strategy {
    /// Every strategy.
    pub const ALL: [Strategy; 5] = [
        Strategy::Plain,
        Strategy::CheckAndDup,
        Strategy::Stdopen,
        Strategy::ONostd,
        Strategy::KernelDefaultNoStd,
    ];

    /// The table a program using this strategy starts with.
    pub fn table(self, closed: [bool; 3]) -> FdTable {
        let t = FdTable::at_exec(closed);
        match self {
            Strategy::KernelDefaultNoStd => t.with_open_start(FIRST_NON_STD),
            _ => t,
        }
    }

    /// What the program does before its work.
    pub fn startup(self, t: &mut FdTable) -> Result<(), FdError> {
        if self != Strategy::Stdopen {
            return Ok(());
        }
        for fd in 0..FIRST_NON_STD {
            if t.getfd(fd).is_err() {
                let got = t.open(Target::DevNull, OpenFlags::default())?;
                debug_assert_eq!(got, fd, "the lowest free number is the closed one");
            }
        }
        Ok(())
    }

    /// Opens a file for the program's own use.
    pub fn open(self, t: &mut FdTable, target: Target) -> Result<Fd, FdError> {
        let cloexec = OpenFlags {
            nostd: false,
            cloexec: true,
        };
        match self {
            Strategy::Plain | Strategy::Stdopen | Strategy::KernelDefaultNoStd => {
                t.open(target, cloexec)
            }
            Strategy::ONostd => t.open(
                target,
                OpenFlags {
                    nostd: true,
                    ..cloexec
                },
            ),
            Strategy::CheckAndDup => {
                let fd = t.open(target, cloexec)?;
                if fd >= FIRST_NON_STD {
                    return Ok(fd);
                }
                let moved = t.dupfd(fd, FIRST_NON_STD, true);
                t.close(fd)?;
                moved
            }
        }
    }

    /// The classic redirection idiom of a program written for today's
    /// ABI: `close(0); open(path)` expecting descriptor 0. Returns the
    /// descriptor it got.
    pub fn reopen_stdin(self, t: &mut FdTable, target: Target) -> Result<Fd, FdError> {
        let _ = t.close(0);
        // The program knows nothing of any new flag: a plain open.
        t.open(target, OpenFlags::default())
    }

    /// A short name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Plain => "plain open",
            Strategy::CheckAndDup => "check and dup (open_safer)",
            Strategy::Stdopen => "/dev/null at startup (stdopen)",
            Strategy::ONostd => "O_NOSTD",
            Strategy::KernelDefaultNoStd => "inverse: kernel avoids 0..2",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one run of the model program did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    /// System calls of the main thread.
    pub syscalls: u64,
    /// Of which: the calls the work itself needs (open, write, close of
    /// each file, and the warnings).
    pub work_syscalls: u64,
    /// Warnings the main thread wrote to "standard error" that landed in
    /// one of its files.
    pub misdirected: u64,
    /// Warnings the main thread lost (`EBADF`).
    pub lost: u64,
    /// Warnings a second thread wrote at random moments.
    pub concurrent_writes: u64,
    /// Of which landed in one of the files.
    pub concurrent_misdirected: u64,
    /// Descriptors still open when the work is done (files closed):
    /// standard ones and any `/dev/null` opened for them.
    pub fds_at_end: usize,
    /// Whether `close(0); open(..)` gave descriptor 0.
    pub redirect_idiom_works: bool,
}

/// Runs the model program: open each of `files` files, write its data,
/// write one warning to standard error, close it. After every system call
/// of the main thread a second thread writes a warning to descriptor 2
/// with probability `concurrent_p` (drawn from `rng`).
pub fn run_program(
    strategy: Strategy,
    closed: [bool; 3],
    files: usize,
    concurrent_p: f64,
    rng: ModelRng,
) -> Result<RunStats, FdError> {
    run_program_on(true, strategy, closed, files, concurrent_p, rng)
}

/// [`run_program`] on a kernel that knows `O_NOSTD` (`nostd_known`) or
/// drops it ([`FdTable::without_nostd`]).
pub fn run_program_on(
    nostd_known: bool,
    strategy: Strategy,
    closed: [bool; 3],
    files: usize,
    concurrent_p: f64,
    rng: ModelRng,
) -> Result<RunStats, FdError> {
    let kernel = |t: FdTable| if nostd_known { t } else { t.without_nostd() };
    let mut t =
        kernel(strategy.table(closed)).with_interference(Interference::new(concurrent_p, rng));
    let mut s = RunStats::default();
    strategy.startup(&mut t)?;
    for i in 0..files {
        let fd = strategy.open(&mut t, Target::File(format!("out{i}")))?;
        t.write(fd)?;
        match t.write(2) {
            Ok(Target::File(_)) => s.misdirected += 1,
            Ok(_) => {}
            Err(_) => s.lost += 1,
        }
        t.close(fd)?;
        t.assert_invariants();
    }
    s.syscalls = t.syscalls();
    s.work_syscalls = 4 * files as u64;
    s.fds_at_end = t.open_count();
    if let Some(i) = t.interference() {
        s.concurrent_writes = i.writes;
        s.concurrent_misdirected = i.misdirected;
    }
    let mut probe = kernel(strategy.table(closed));
    s.redirect_idiom_works =
        strategy.reopen_stdin(&mut probe, Target::File("input".to_owned()))? == 0;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_OPEN: [bool; 3] = [false, false, false];
    const STDERR_CLOSED: [bool; 3] = [false, false, true];

    fn run(s: Strategy, closed: [bool; 3], files: usize) -> RunStats {
        run_program(s, closed, files, 0.0, crate::rng::seeded(1, 0)).unwrap()
    }

    #[test]
    fn open_takes_the_lowest_free_number() {
        let mut t = FdTable::at_exec(STDERR_CLOSED);
        assert_eq!(t.open(Target::DevNull, OpenFlags::default()), Ok(2));
        assert_eq!(t.open(Target::DevNull, OpenFlags::default()), Ok(3));
        t.close(2).unwrap();
        assert_eq!(t.open(Target::DevNull, OpenFlags::default()), Ok(2));
        let nostd = OpenFlags {
            nostd: true,
            cloexec: false,
        };
        assert_eq!(t.open(Target::DevNull, nostd), Ok(4));
        assert_eq!(t.close(9), Err(FdError::BadFd(9)));
        assert_eq!(t.syscalls(), 6, "a failed call is a call");
    }

    #[test]
    fn with_stderr_closed_plain_opens_put_every_warning_in_a_file() {
        // Each file takes number 2 (closed after use, it is free again), so
        // each warning lands in the file open at the time.
        let s = run(Strategy::Plain, STDERR_CLOSED, 10);
        assert_eq!((s.syscalls, s.misdirected, s.lost), (40, 10, 0));
    }

    #[test]
    fn check_and_dup_is_free_when_all_is_well_and_triples_opens_otherwise() {
        let ok = run(Strategy::CheckAndDup, ALL_OPEN, 10);
        assert_eq!(ok.syscalls, 40, "no extra call when 0..2 are open");
        // open -> 2, fcntl(F_DUPFD_CLOEXEC, 3) -> 3, close(2): every time.
        let closed = run(Strategy::CheckAndDup, STDERR_CLOSED, 10);
        assert_eq!(closed.syscalls, 60);
        assert_eq!((closed.misdirected, closed.lost), (0, 10));
    }

    #[test]
    fn stdopen_pays_at_every_start_and_keeps_a_descriptor() {
        let ok = run(Strategy::Stdopen, ALL_OPEN, 10);
        assert_eq!(ok.syscalls, 43, "three F_GETFD probes, always");
        let closed = run(Strategy::Stdopen, STDERR_CLOSED, 10);
        assert_eq!(
            closed.syscalls, 44,
            "and an open of /dev/null for the closed one"
        );
        assert_eq!(
            (closed.misdirected, closed.lost, closed.fds_at_end),
            (0, 0, 3)
        );
    }

    #[test]
    fn o_nostd_costs_nothing_and_the_inverse_breaks_the_redirect_idiom() {
        let n = run(Strategy::ONostd, STDERR_CLOSED, 10);
        assert_eq!((n.syscalls, n.misdirected), (40, 0));
        assert!(n.redirect_idiom_works);
        let inv = run(Strategy::KernelDefaultNoStd, STDERR_CLOSED, 10);
        assert_eq!((inv.syscalls, inv.misdirected), (40, 0));
        assert!(!inv.redirect_idiom_works, "close(0); open() now gives 3");
    }

    #[test]
    fn a_kernel_without_o_nostd_drops_the_flag() {
        let nostd = OpenFlags {
            nostd: true,
            cloexec: false,
        };
        let mut t = FdTable::at_exec(STDERR_CLOSED).without_nostd();
        assert_eq!(t.open(Target::DevNull, nostd), Ok(2), "a plain open");
        // The program trusts the flag: every warning lands in its file.
        let s = run_program_on(
            false,
            Strategy::ONostd,
            STDERR_CLOSED,
            10,
            0.0,
            crate::rng::seeded(1, 0),
        )
        .unwrap();
        assert_eq!((s.syscalls, s.misdirected, s.lost), (40, 10, 0));
    }

    #[test]
    fn a_second_thread_hits_the_check_and_dup_window() {
        // With probability 1 the other thread writes after every call: it
        // finds a file on 2 after open (before fcntl) and after fcntl
        // (before close): 2 of the 6 calls of each iteration.
        let s = run_program(
            Strategy::CheckAndDup,
            STDERR_CLOSED,
            10,
            1.0,
            crate::rng::seeded(1, 0),
        )
        .unwrap();
        assert_eq!(s.concurrent_writes, 60);
        assert_eq!(s.concurrent_misdirected, 20);
        let n = run_program(
            Strategy::ONostd,
            STDERR_CLOSED,
            10,
            1.0,
            crate::rng::seeded(1, 0),
        )
        .unwrap();
        assert_eq!(n.concurrent_misdirected, 0);
    }
}
