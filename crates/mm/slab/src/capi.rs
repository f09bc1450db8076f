//! The C allocation functions, on [`SlubAlloc`], as plain Rust functions
//! with C semantics (errno, alignment rules, `realloc(p, 0)`). The
//! `klab-slab-preload` cdylib exports them under their C names; they are
//! not exported from this crate, so a program linking it keeps its own
//! `malloc`. The allocator is chosen at the first allocation from the
//! environment: `KLAB_SLAB=slab` ([`SlabAlloc`], mm/slab.c), `slob`
//! ([`SlobAlloc`], mm/slob.c) or `slub` (the default): SLUB's 3.2 caches
//! ([`SlubAlloc`]), or the page's 2.6.24 ones ([`SlubAlloc2624`]) with
//! `KLAB_SLUB_ERA=2.6.24`. Any other `KLAB_SLAB` value ends the program
//! with a message and exit status 2.
//!
//! Every block is at least 16-byte aligned when it is at least 16 bytes
//! long (glibc's `MALLOC_ALIGNMENT`); 8-byte blocks are 8-byte aligned.
//! Nothing here allocates from anywhere but klab's own caches and pages,
//! so no call can recurse into another allocator.

use std::ffi::c_void;
use std::ptr;

use crate::global::{SlubAlloc, SlubAlloc2624};
use crate::page::PAGE_SIZE;
use crate::primitive::{AtomicU8, Ordering};
use crate::slab::SlabAlloc;
use crate::slob::SlobAlloc;

/// The allocator `malloc` allocates from: 0 not yet read, 1 for SLUB 3.2
/// ([`SlubAlloc`], the default), 2 for SLUB 2.6.24 ([`SlubAlloc2624`],
/// with `KLAB_SLUB_ERA=2.6.24` in the environment), [`SLAB`] and
/// [`SLOB`]. SLUB's `free` needs no era: a slab knows its cache.
static ERA: AtomicU8 = AtomicU8::new(0);
/// `KLAB_SLAB=slab`.
const SLAB: u8 = 3;
/// `KLAB_SLAB=slob`.
const SLOB: u8 = 4;

/// Writes `parts` to standard error with `write(2)` (nothing here may
/// allocate).
fn stderr(parts: &[&[u8]]) {
    for p in parts {
        // SAFETY: writes the bytes of a live slice.
        unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
}

#[cold]
fn read_era() -> u8 {
    let get = |name: &std::ffi::CStr| {
        // SAFETY: getenv with a NUL-terminated name; the value is only
        // read (getenv does not allocate) and NUL-terminated.
        unsafe {
            let v = libc::getenv(name.as_ptr());
            (!v.is_null()).then(|| std::ffi::CStr::from_ptr(v).to_bytes())
        }
    };
    let e = match get(c"KLAB_SLAB") {
        Some(b"slab") => SLAB,
        Some(b"slob") => SLOB,
        None | Some(b"slub") => {
            if get(c"KLAB_SLUB_ERA") == Some(b"2.6.24") {
                2
            } else {
                1
            }
        }
        Some(other) => {
            stderr(&[
                b"klab-slab: environment KLAB_SLAB=",
                other,
                b": expected slab, slub or slob\n",
            ]);
            // SAFETY: ends the process; nothing of ours is half-updated.
            unsafe { libc::_exit(2) }
        }
    };
    ERA.store(e, Ordering::Relaxed);
    e
}

#[inline(always)]
fn era() -> u8 {
    match ERA.load(Ordering::Relaxed) {
        0 => read_era(),
        e => e,
    }
}

/// The allocator's name: `"SLUB"`, `"SLAB"` or `"SLOB"` (read from the
/// environment if nothing was allocated yet).
pub fn allocator_name() -> &'static std::ffi::CStr {
    match era() {
        SLAB => c"SLAB",
        SLOB => c"SLOB",
        _ => c"SLUB",
    }
}

/// Allocates from the allocator chosen at the first call.
#[inline(always)]
fn allocate(size: usize, align: usize) -> *mut u8 {
    match era() {
        2 => SlubAlloc2624::allocate(size, align),
        SLAB => SlabAlloc::allocate(size, align),
        SLOB => SlobAlloc::allocate(size, align),
        _ => SlubAlloc::allocate(size, align),
    }
}

/// Frees into the allocator chosen at the first allocation.
///
/// # Safety
/// `p` is a live block from these functions.
#[inline(always)]
unsafe fn deallocate(p: *mut u8) {
    // SAFETY: forwarded.
    unsafe {
        match ERA.load(Ordering::Relaxed) {
            SLAB => SlabAlloc::deallocate(p),
            SLOB => SlobAlloc::deallocate(p),
            _ => SlubAlloc::deallocate(p),
        }
    }
}

/// Usable bytes of a live block.
///
/// # Safety
/// As [`deallocate`].
unsafe fn usable_size(p: *mut u8) -> usize {
    // SAFETY: forwarded.
    unsafe {
        match ERA.load(Ordering::Relaxed) {
            SLAB => SlabAlloc::usable_size(p),
            SLOB => SlobAlloc::usable_size(p),
            _ => SlubAlloc::usable_size(p),
        }
    }
}

const MIN_ALIGN: usize = 16;

fn set_errno(e: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot.
    unsafe { *libc::__errno_location() = e };
}

#[inline]
fn align_for(size: usize) -> usize {
    if size <= 8 { 8 } else { MIN_ALIGN }
}

/// Allocates `size` bytes at `malloc`'s alignment from the era chosen at
/// the first call.
#[inline(always)]
fn kmalloc(size: usize) -> *mut u8 {
    match era() {
        2 => SlubAlloc2624::kmalloc(size),
        SLAB => SlabAlloc::kmalloc(size),
        SLOB => SlobAlloc::allocate(size, align_for(size)),
        _ => SlubAlloc::kmalloc(size),
    }
}

/// `malloc(size)`: `malloc(0)` returns a unique 8-byte block.
#[inline]
pub fn malloc(size: usize) -> *mut c_void {
    let p = kmalloc(size);
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// `free(p)`.
///
/// # Safety
/// `p` is null or a live block from these functions.
#[inline]
pub unsafe fn free(p: *mut c_void) {
    if !p.is_null() {
        // SAFETY: forwarded.
        unsafe { deallocate(p.cast()) }
    }
}

/// `calloc(n, size)`: zeroed; `ENOMEM` when `n * size` overflows.
pub fn calloc(n: usize, size: usize) -> *mut c_void {
    let Some(total) = n.checked_mul(size) else {
        set_errno(libc::ENOMEM);
        return ptr::null_mut();
    };
    let p = malloc(total);
    if !p.is_null() {
        // SAFETY: a fresh block of at least total bytes.
        unsafe { p.cast::<u8>().write_bytes(0, total.max(1)) };
    }
    p
}

/// `realloc(p, size)`: `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)`
/// frees `p` and returns null (glibc's behaviour); a block that still fits
/// and is not wasting more than half of itself stays where it is.
///
/// # Safety
/// `p` is null or a live block from these functions.
pub unsafe fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        return malloc(size);
    }
    if size == 0 {
        // SAFETY: forwarded.
        unsafe { free(p) };
        return ptr::null_mut();
    }
    // SAFETY: p is live.
    let usable = unsafe { usable_size(p.cast()) };
    if size <= usable && size >= usable / 2 {
        return p;
    }
    let q = malloc(size);
    if !q.is_null() {
        // SAFETY: both live and distinct; usable bytes of p are readable.
        unsafe {
            ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), usable.min(size));
            free(p);
        }
    }
    q
}

/// `reallocarray(p, n, size)`.
///
/// # Safety
/// As [`realloc`].
pub unsafe fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded.
        Some(total) => unsafe { realloc(p, total) },
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

fn aligned(align: usize, size: usize) -> *mut c_void {
    let size = size.max(1);
    let p = allocate(size, align.max(align_for(size)));
    if p.is_null() {
        set_errno(libc::ENOMEM);
    }
    p.cast()
}

/// `posix_memalign(memptr, align, size)`: `EINVAL` unless `align` is a
/// power of two multiple of `sizeof(void *)`, `ENOMEM` when out of memory.
///
/// # Safety
/// `memptr` is valid for a pointer write.
pub unsafe fn posix_memalign(memptr: *mut *mut c_void, align: usize, size: usize) -> i32 {
    if !align.is_power_of_two() || !align.is_multiple_of(size_of::<usize>()) {
        return libc::EINVAL;
    }
    let p = aligned(align, size);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller guarantees memptr is writable.
    unsafe { *memptr = p };
    0
}

/// `aligned_alloc(align, size)`: `EINVAL` unless `align` is a power of two.
pub fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    }
    aligned(align, size)
}

/// `memalign(align, size)`: a non-power-of-two alignment is rounded up,
/// as glibc does.
pub fn memalign(align: usize, size: usize) -> *mut c_void {
    let Some(a) = align.max(1).checked_next_power_of_two() else {
        set_errno(libc::EINVAL);
        return ptr::null_mut();
    };
    aligned(a, size)
}

/// `valloc(size)`: page-aligned.
pub fn valloc(size: usize) -> *mut c_void {
    aligned(PAGE_SIZE, size)
}

/// `pvalloc(size)`: page-aligned, size rounded up to whole pages.
pub fn pvalloc(size: usize) -> *mut c_void {
    match size.checked_next_multiple_of(PAGE_SIZE) {
        Some(s) => aligned(PAGE_SIZE, s.max(PAGE_SIZE)),
        None => {
            set_errno(libc::ENOMEM);
            ptr::null_mut()
        }
    }
}

/// `malloc_usable_size(p)`: 0 for null.
///
/// # Safety
/// `p` is null or a live block from these functions.
pub unsafe fn malloc_usable_size(p: *mut c_void) -> usize {
    if p.is_null() {
        0
    } else {
        // SAFETY: forwarded.
        unsafe { usable_size(p.cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_semantics() {
        let p = malloc(0);
        assert!(!p.is_null());
        let q = calloc(10, 10);
        // SAFETY: live blocks from these functions.
        unsafe {
            assert!(
                std::slice::from_raw_parts(q.cast::<u8>(), 100)
                    .iter()
                    .all(|b| *b == 0)
            );
            assert_eq!(q.addr() % 16, 0);
            assert!(malloc_usable_size(q) >= 100);
            let r = realloc(q, 20_000);
            assert!(
                std::slice::from_raw_parts(r.cast::<u8>(), 100)
                    .iter()
                    .all(|b| *b == 0)
            );
            assert!(realloc(r, 0).is_null());
            free(p);
            free(ptr::null_mut());
            let mut m = ptr::null_mut();
            assert_eq!(posix_memalign(&mut m, 3, 10), libc::EINVAL);
            assert_eq!(posix_memalign(&mut m, 256, 10), 0);
            assert_eq!(m.addr() % 256, 0);
            free(m);
            let v = valloc(1);
            assert_eq!(v.addr() % PAGE_SIZE, 0);
            free(v);
            let pv = pvalloc(5000);
            assert!(malloc_usable_size(pv) >= 8192);
            free(pv);
            let a = memalign(48, 10);
            assert_eq!(a.addr() % 64, 0);
            free(a);
            assert!(aligned_alloc(3, 8).is_null());
            assert!(calloc(usize::MAX, 2).is_null());
            assert!(reallocarray(ptr::null_mut(), usize::MAX, 2).is_null());
        }
    }
}
