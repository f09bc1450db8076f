//! Slab debugging: poisoning, red zones, free-pointer and free-chain
//! checks, and where their findings go. Mirrors mm/slub.c (2.6.24)
//! `init_object()`, `check_object()`, `check_pad_bytes()`,
//! `slab_pad_check()`, `on_freelist()`, `alloc_debug_processing()` and
//! `free_debug_processing()`.
//!
//! The page warns that "merging can expose heretofore unknown bugs in the
//! kernel because corrupted objects may now be placed differently and
//! corrupt differing neighboring objects. Enable sanity checks to find
//! those." These are the sanity checks.
//!
//! # Byte patterns (include/linux/poison.h)
//!
//! | bytes | where | meaning |
//! |-------|-------|---------|
//! | `0x6b` (`POISON_FREE`) | object, while free | a write means use after free |
//! | `0xa5` (`POISON_END`) | last object byte, while free | end marker |
//! | `0xbb` (`SLUB_RED_INACTIVE`) | red zone, while free | |
//! | `0xcc` (`SLUB_RED_ACTIVE`) | red zone, while allocated | a write means overflow |
//! | `0x5a` (`POISON_INUSE`) | alignment padding, slab tail | |
//!
//! # What happens on a finding
//!
//! Each finding becomes a [`SlabReport`]: the cache, the slab, the object
//! address, the [`ReportKind`] and a description, as the kernel's
//! `BUG <cache>: ...` block. It goes to the allocator's [`ReportSink`],
//! then the kernel's repair is applied and said in `fix` (restore the
//! pattern, truncate a corrupt chain, mark a slab's objects used, refuse a
//! free), so execution continues. Nothing is silently ignored: a finding
//! either reaches the sink or, with [`AbortSink`], stops the process after
//! printing. [`CollectSink`] keeps findings for tests and experiments;
//! [`StderrSink`] prints them in the kernel's format.

use std::fmt;
use std::sync::Mutex;

/// `POISON_FREE`.
pub const POISON_FREE: u8 = 0x6b;
/// `POISON_END`.
pub const POISON_END: u8 = 0xa5;
/// `POISON_INUSE`.
pub const POISON_INUSE: u8 = 0x5a;
/// `SLUB_RED_INACTIVE`.
pub const RED_INACTIVE: u8 = 0xbb;
/// `SLUB_RED_ACTIVE`.
pub const RED_ACTIVE: u8 = 0xcc;

/// What a debug check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReportKind {
    /// The red zone after an object was overwritten ("Redzone overwritten"):
    /// a write past the end of an object.
    RedzoneOverwritten,
    /// The poison of a free object was overwritten ("Poison overwritten"):
    /// a write after free, detected when the object is next allocated or
    /// the cache is validated.
    PoisonOverwritten,
    /// Alignment padding or the slab tail was overwritten.
    PaddingOverwritten,
    /// A free pointer points outside the slab or between objects
    /// ("Freepointer corrupt" / "Freechain corrupt").
    FreepointerCorrupt,
    /// An object freed twice ("Object already free").
    DoubleFree,
    /// A free of a pointer that is not an object of this cache ("Invalid
    /// object pointer", "page slab pointer corrupt", "outside of slab").
    InvalidFree,
    /// The slab's `inuse` disagrees with its free list ("Wrong object
    /// count").
    WrongObjectCount,
    /// `inuse` exceeds the objects of a slab ("inuse > max").
    SlabCorrupt,
    /// Objects remained when the cache was destroyed.
    ObjectsRemaining,
    /// A `SLAB_TRACE` record: an allocation or free (not an error).
    Trace,
}

impl ReportKind {
    /// The kernel's wording.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportKind::RedzoneOverwritten => "Redzone overwritten",
            ReportKind::PoisonOverwritten => "Poison overwritten",
            ReportKind::PaddingOverwritten => "Object padding overwritten",
            ReportKind::FreepointerCorrupt => "Freepointer corrupt",
            ReportKind::DoubleFree => "Object already free",
            ReportKind::InvalidFree => "Invalid object pointer",
            ReportKind::WrongObjectCount => "Wrong object count",
            ReportKind::SlabCorrupt => "Slab corrupt",
            ReportKind::ObjectsRemaining => "Objects remaining on kmem_cache_close()",
            ReportKind::Trace => "TRACE",
        }
    }

    /// False only for [`ReportKind::Trace`].
    pub fn is_error(self) -> bool {
        self != ReportKind::Trace
    }
}

/// One finding of the debug checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlabReport {
    /// The cache (its name as created, not an alias).
    pub cache: String,
    /// What was found.
    pub kind: ReportKind,
    /// Address of the slab's first byte.
    pub slab: usize,
    /// Address of the object concerned, if one is.
    pub object: Option<usize>,
    /// Details: the byte range and values found, counts, the owner.
    pub detail: String,
    /// The repair applied ("Restoring 0x..-0x..=0x6b", "Object not freed").
    pub fix: String,
}

impl fmt::Display for SlabReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BUG {}: {}", self.cache, self.kind.as_str())?;
        if let Some(o) = self.object {
            write!(f, " (object {o:#x}")?;
            write!(f, " @offset={} in slab {:#x})", o - self.slab, self.slab)?;
        } else {
            write!(f, " (slab {:#x})", self.slab)?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        if !self.fix.is_empty() {
            write!(f, "; FIX {}: {}", self.cache, self.fix)?;
        }
        Ok(())
    }
}

/// Where debug findings go. Called with no allocator lock held that the
/// sink could need, but possibly under a slab lock: a sink must not
/// allocate from the cache that reported.
pub trait ReportSink: Send + Sync {
    /// Receives one finding.
    fn report(&self, report: SlabReport);
}

/// Keeps every finding, for tests and experiments to inspect.
#[derive(Debug, Default)]
pub struct CollectSink {
    reports: Mutex<Vec<SlabReport>>,
}

impl CollectSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the findings so far.
    pub fn take(&self) -> Vec<SlabReport> {
        std::mem::take(&mut *self.reports.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Findings so far that are errors (not traces).
    pub fn errors(&self) -> usize {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|r| r.kind.is_error())
            .count()
    }
}

impl ReportSink for CollectSink {
    fn report(&self, report: SlabReport) {
        self.reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(report);
    }
}

/// Prints each finding to standard error in the kernel's shape.
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrSink;

impl ReportSink for StderrSink {
    fn report(&self, report: SlabReport) {
        eprintln!("{report}");
    }
}

/// Prints each error finding and aborts the process: for programs that
/// would rather die than run on corrupted memory. Traces are printed only.
#[derive(Clone, Copy, Debug, Default)]
pub struct AbortSink;

impl ReportSink for AbortSink {
    fn report(&self, report: SlabReport) {
        eprintln!("{report}");
        if report.kind.is_error() {
            std::process::abort();
        }
    }
}

/// The first byte in `[start, start + len)` that is not `value`, and the
/// end of the faulty run (`check_bytes()` and the trimming in
/// `check_bytes_and_report()`).
///
/// # Safety
/// The range is readable.
pub(crate) unsafe fn check_bytes(
    start: *const u8,
    value: u8,
    len: usize,
) -> Option<(usize, usize)> {
    // SAFETY: the caller guarantees the range is readable.
    let bytes = unsafe { std::slice::from_raw_parts(start, len) };
    let first = bytes.iter().position(|b| *b != value)?;
    let mut end = len;
    while end > first && bytes[end - 1] == value {
        end -= 1;
    }
    Some((first, end))
}
