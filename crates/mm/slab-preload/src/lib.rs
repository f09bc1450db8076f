//! klab's SLUB as a drop-in `malloc`: build this cdylib and run any
//! program on it with `LD_PRELOAD=libklab_slab_preload.so program`; with
//! `KLAB_SLAB=slab` the same program runs on SLAB (mm/slab.c), with
//! `KLAB_SLAB=slob` on SLOB (`klab_slab::capi` reads it at the first
//! allocation).
//!
//! Exports `malloc`, `free`, `calloc`, `realloc`, `reallocarray`,
//! `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc` and
//! `malloc_usable_size`, each a thin shim over `klab_slab::capi`, which
//! holds the C semantics; the allocator itself (per-thread active slabs
//! flushed at thread exit by a pthread key destructor, fork quiescence
//! through `pthread_atfork`, no allocation through any other allocator)
//! is `klab_slab::global`. These `#[no_mangle]` symbols live only in this
//! crate: a test binary linking `klab-slab` keeps the system `malloc`.
//!
//! Mirrors mm/slub.c's kmalloc over SLUB caches (seed 003).

use std::ffi::c_void;

use klab_slab::capi;

/// `malloc(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn malloc(size: usize) -> *mut c_void {
    capi::malloc(size)
}

/// The allocator `malloc` runs on: `"SLUB"`, `"SLAB"` or `"SLOB"` (a
/// program finds it with `dlsym(RTLD_DEFAULT, "klab_allocator")`).
#[unsafe(no_mangle)]
pub extern "C" fn klab_allocator() -> *const std::ffi::c_char {
    capi::allocator_name().as_ptr()
}

/// Slabs SLAB has made in this process (0 unless `KLAB_SLAB=slab`).
#[unsafe(no_mangle)]
pub extern "C" fn klab_slab_slabs_grown() -> usize {
    klab_slab::SlabAlloc::slabs_grown()
}

/// Pages SLOB holds for small blocks (0 unless `KLAB_SLAB=slob`).
#[unsafe(no_mangle)]
pub extern "C" fn klab_slob_pages() -> usize {
    klab_slab::slob::SlobAlloc::nr_pages()
}

/// `free(3)`.
///
/// # Safety
/// `p` is null or a live block from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded.
    unsafe { capi::free(p) }
}

/// `cfree`: an old alias of `free`.
///
/// # Safety
/// As [`free`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cfree(p: *mut c_void) {
    // SAFETY: forwarded.
    unsafe { capi::free(p) }
}

/// `calloc(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    capi::calloc(n, size)
}

/// `realloc(3)`.
///
/// # Safety
/// `p` is null or a live block from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { capi::realloc(p, size) }
}

/// `reallocarray(3)`.
///
/// # Safety
/// As [`realloc`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { capi::reallocarray(p, n, size) }
}

/// `posix_memalign(3)`.
///
/// # Safety
/// `memptr` is valid for a pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn posix_memalign(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
) -> i32 {
    // SAFETY: forwarded.
    unsafe { capi::posix_memalign(memptr, align, size) }
}

/// `aligned_alloc(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    capi::aligned_alloc(align, size)
}

/// `memalign(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    capi::memalign(align, size)
}

/// `valloc(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn valloc(size: usize) -> *mut c_void {
    capi::valloc(size)
}

/// `pvalloc(3)`.
#[unsafe(no_mangle)]
pub extern "C" fn pvalloc(size: usize) -> *mut c_void {
    capi::pvalloc(size)
}

/// `malloc_usable_size(3)`.
///
/// # Safety
/// `p` is null or a live block from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: forwarded.
    unsafe { capi::malloc_usable_size(p) }
}
