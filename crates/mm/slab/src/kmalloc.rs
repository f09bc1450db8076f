//! kmalloc size classes: which cache serves a request of `size` bytes.
//! Mirrors include/linux/slub_def.h and mm/slub.c (2.6.24)
//! `kmalloc_index()` / `size_index[]` / `get_slab()`.
//!
//! Two class sets:
//!
//! * [`KERNEL_CLASSES`]: 2.6.24's `kmalloc-8` … `kmalloc-2048` powers of
//!   two plus `kmalloc-96` and `kmalloc-192`, extended to 8192 (SLUB had
//!   kmalloc caches up to `PAGE_SIZE` by 2.6.24 and to `2 * PAGE_SIZE`
//!   later);
//! * [`FINE_CLASSES`]: four classes per doubling above 128 bytes, 16-byte
//!   steps below: what a general-purpose malloc needs to keep internal
//!   fragmentation (and so peak RSS) near glibc's 16-byte granularity.
//!
//! A request is looked up in a table indexed by `(size + 7) / 8`, as
//! `size_index[]` does for small sizes; sizes above the largest class go
//! to the page allocator (and above `2^MAX_ORDER` pages straight to the
//! page source). Every class but `kmalloc-8` is a multiple of 16, so every
//! object of at least 16 bytes is 16-byte aligned (objects are packed from
//! the page-aligned start of their slab).

/// 2.6.24-style classes.
pub const KERNEL_CLASSES: &[usize] = &[
    8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096, 8192,
];

/// Finer classes for a general-purpose allocator.
pub const FINE_CLASSES: &[usize] = &[
    8, 16, 32, 48, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 640, 768, 896,
    1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 5120, 6144, 7168, 8192,
];

/// The largest size a class serves.
pub const KMALLOC_MAX_CACHE_SIZE: usize = 8192;

/// Most classes a set may have.
pub const MAX_CLASSES: usize = 40;

/// Entries of a size-index table: one per 8 bytes up to the largest class.
pub const INDEX_LEN: usize = KMALLOC_MAX_CACHE_SIZE / 8 + 1;

/// Builds `size_index`: entry `(size + 7) / 8` is the index of the
/// smallest class holding `size`.
pub const fn size_index(classes: &[usize]) -> [u8; INDEX_LEN] {
    let mut t = [0u8; INDEX_LEN];
    let mut i = 1;
    let mut c = 0;
    while i < INDEX_LEN {
        while classes[c] < i * 8 {
            c += 1;
        }
        t[i] = c as u8;
        i += 1;
    }
    t
}

/// The class index for `size` at alignment `align`, or `None` if no class
/// serves it (too large, or an alignment no class size is a multiple of).
#[inline(always)]
pub fn class_for(
    classes: &[usize],
    index: &[u8; INDEX_LEN],
    size: usize,
    align: usize,
) -> Option<usize> {
    let want = if size < align { align } else { size };
    if want > KMALLOC_MAX_CACHE_SIZE {
        return None;
    }
    let mut idx = index[want.div_ceil(8)] as usize;
    if align > 8 {
        // 16 divides every class above 8; larger alignments look further.
        while !classes[idx].is_multiple_of(align) {
            idx += 1;
            if idx == classes.len() {
                return None;
            }
        }
    }
    Some(idx)
}

/// The kmalloc cache name of a class size.
pub fn class_name(size: usize) -> String {
    format!("kmalloc-{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_classes_follow_size_index() {
        let t = size_index(KERNEL_CLASSES);
        let c = |s| KERNEL_CLASSES[class_for(KERNEL_CLASSES, &t, s, 8).unwrap()];
        assert_eq!(c(1), 8);
        assert_eq!(c(8), 8);
        assert_eq!(c(9), 16);
        assert_eq!(c(65), 96);
        assert_eq!(c(97), 128);
        assert_eq!(c(129), 192);
        assert_eq!(c(193), 256);
        assert_eq!(c(8192), 8192);
        assert_eq!(class_for(KERNEL_CLASSES, &t, 8193, 8), None);
    }

    #[test]
    fn alignment_picks_a_class_that_is_a_multiple() {
        let t = size_index(KERNEL_CLASSES);
        let c = |s, a| KERNEL_CLASSES[class_for(KERNEL_CLASSES, &t, s, a).unwrap()];
        assert_eq!(c(1, 16), 16);
        assert_eq!(c(70, 32), 96);
        assert_eq!(c(70, 64), 128);
        assert_eq!(c(10, 4096), 4096);
        let f = size_index(FINE_CLASSES);
        assert_eq!(
            FINE_CLASSES[class_for(FINE_CLASSES, &f, 40, 8).unwrap()],
            48
        );
        assert_eq!(
            FINE_CLASSES[class_for(FINE_CLASSES, &f, 1000, 8).unwrap()],
            1024
        );
        assert!(FINE_CLASSES.len() <= MAX_CLASSES);
        assert!(FINE_CLASSES[1..].iter().all(|s| s % 16 == 0));
    }
}
