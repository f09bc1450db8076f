//! `struct kmem_cache_node`: a node's partial list (and, for debug caches,
//! its full list), under the node's `list_lock`. Mirrors mm/slub.c (2.6.24)
//! `add_partial()`, `add_partial_tail()`, `remove_partial()`,
//! `lock_and_freeze_slab()`, `get_partial_node()`, `add_full()`,
//! `remove_full()` and the sorting in `kmem_cache_shrink()`. The 3.1+
//! paths ([`super::lockless`]) hold the lock themselves through
//! [`KmemCacheNode::lock`] and edit the list with the `*_locked` methods.
//!
//! The lists are intrusive, doubly linked through the slab head frames'
//! `next`/`prev` fields, which only the list lock guards. `nr_partial` is
//! also kept in an atomic so `get_partial_node()`'s racy emptiness check
//! and `min_partial` decisions read it without the lock, as the kernel
//! reads `n->nr_partial`.

use std::ptr;
use std::sync::{Mutex, MutexGuard};

use crate::page::{PG_FROZEN, PG_FULL, PG_PARTIAL, Page};
use crate::primitive::{AtomicUsize, Ordering};
use crate::reentry::Locked;

/// The lists, guarded by the node's list lock.
pub(crate) struct NodeLists {
    head: *mut Page,
    tail: *mut Page,
    full: *mut Page,
}

// SAFETY: the pointers are slab frames of the owning cache and are only
// followed under the list lock.
unsafe impl Send for NodeLists {}

/// A held `list_lock`, counted as an allocator lock ([`crate::reentry`]):
/// nothing that can allocate may run while one lives.
pub(crate) type ListGuard<'a> = Locked<MutexGuard<'a, NodeLists>>;

/// One node's share of a cache.
pub(crate) struct KmemCacheNode {
    /// `list_lock`: the partial and full lists.
    list: Mutex<NodeLists>,
    /// Slabs on the partial list (written under the list lock).
    pub(crate) nr_partial: AtomicUsize,
    /// Slabs of this node, anywhere (`atomic_long_t nr_slabs`).
    pub(crate) nr_slabs: AtomicUsize,
}

impl KmemCacheNode {
    #[allow(clippy::declare_interior_mutable_const)]
    pub(crate) const NEW: KmemCacheNode = KmemCacheNode {
        list: Mutex::new(NodeLists {
            head: ptr::null_mut(),
            tail: ptr::null_mut(),
            full: ptr::null_mut(),
        }),
        nr_partial: AtomicUsize::new(0),
        nr_slabs: AtomicUsize::new(0),
    };

    /// `spin_lock(&n->list_lock)`.
    pub(crate) fn lock(&self) -> ListGuard<'_> {
        super::interleave::point(super::interleave::Point::ListLock);
        Locked::new(self.list.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The first slab on the partial list (list lock held).
    pub(crate) fn first_partial(l: &NodeLists) -> *mut Page {
        l.head
    }

    /// `add_partial()` (head) or `add_partial_tail()`.
    ///
    /// # Safety
    /// `page` is a slab of the cache, on no list, locked by the caller.
    pub(crate) unsafe fn add_partial(&self, page: *const Page, tail: bool) {
        let mut l = self.lock();
        // SAFETY: forwarded, lock held.
        unsafe { self.add_partial_locked(&mut l, page, tail) };
    }

    /// `add_partial()` with the list lock already held.
    ///
    /// # Safety
    /// `page` is a slab of the cache on no list; `l` is this node's lists.
    pub(crate) unsafe fn add_partial_locked(
        &self,
        l: &mut NodeLists,
        page: *const Page,
        tail: bool,
    ) {
        // SAFETY: list lock held; page on no list.
        unsafe {
            let p = &*page;
            p.set(PG_PARTIAL);
            if tail {
                p.set_next(ptr::null_mut());
                p.set_prev(l.tail);
                if l.tail.is_null() {
                    l.head = page.cast_mut();
                } else {
                    (*l.tail).set_next(page.cast_mut());
                }
                l.tail = page.cast_mut();
            } else {
                p.set_prev(ptr::null_mut());
                p.set_next(l.head);
                if l.head.is_null() {
                    l.tail = page.cast_mut();
                } else {
                    (*l.head).set_prev(page.cast_mut());
                }
                l.head = page.cast_mut();
            }
        }
        self.nr_partial.fetch_add(1, Ordering::Relaxed);
    }

    /// Unlinks from the partial list with the lock held
    /// (`remove_partial()` under `list_lock`).
    ///
    /// # Safety
    /// `page` is on this node's partial list; list lock held.
    pub(crate) unsafe fn unlink_partial(&self, l: &mut NodeLists, page: *const Page) {
        // SAFETY: list lock held; links consistent.
        unsafe {
            let p = &*page;
            let (prev, next) = (p.prev(), p.next());
            if prev.is_null() {
                l.head = next;
            } else {
                (*prev).set_next(next);
            }
            if next.is_null() {
                l.tail = prev;
            } else {
                (*next).set_prev(prev);
            }
            p.clear(PG_PARTIAL);
        }
        self.nr_partial.fetch_sub(1, Ordering::Relaxed);
    }

    /// `remove_partial()`.
    ///
    /// # Safety
    /// `page` is on this node's partial list and locked by the caller.
    pub(crate) unsafe fn remove_partial(&self, page: *const Page) {
        let mut l = self.lock();
        // SAFETY: forwarded, lock held.
        unsafe { self.unlink_partial(&mut l, page) };
    }

    /// `get_partial_node()` + `lock_and_freeze_slab()`: the first partial
    /// slab whose lock can be taken, off the list, frozen and still locked.
    pub(crate) fn get_partial_node(&self) -> Option<*const Page> {
        if self.nr_partial.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut l = self.lock();
        let mut page = l.head;
        while !page.is_null() {
            // SAFETY: list lock held; listed frames are live slabs.
            unsafe {
                if (*page).trylock() {
                    self.unlink_partial(&mut l, page);
                    (*page).set(PG_FROZEN);
                    return Some(page);
                }
                page = (*page).next();
            }
        }
        None
    }

    /// `add_full()` (debug caches only).
    ///
    /// # Safety
    /// `page` is a full debug slab on no list, locked by the caller.
    pub(crate) unsafe fn add_full(&self, page: *const Page) {
        let mut l = self.lock();
        // SAFETY: lock held; singly linked push with prev for removal.
        unsafe {
            let p = &*page;
            p.set(PG_FULL);
            p.set_prev(ptr::null_mut());
            p.set_next(l.full);
            if !l.full.is_null() {
                (*l.full).set_prev(page.cast_mut());
            }
            l.full = page.cast_mut();
        }
    }

    /// `remove_full()`.
    ///
    /// # Safety
    /// `page` is on this node's full list, locked by the caller.
    pub(crate) unsafe fn remove_full(&self, page: *const Page) {
        let mut l = self.lock();
        // SAFETY: lock held; links consistent.
        unsafe {
            let p = &*page;
            let (prev, next) = (p.prev(), p.next());
            if prev.is_null() {
                l.full = next;
            } else {
                (*prev).set_next(next);
            }
            if !next.is_null() {
                (*next).set_prev(prev);
            }
            p.clear(PG_FULL);
        }
    }

    /// The partial-list half of `kmem_cache_shrink()` (2.6.24): takes the
    /// empty slabs off and returns them as a list linked through their
    /// `next` (to be discarded), and re-links the rest fullest first (a
    /// slab whose lock is busy counts as fullest), keeping the order of
    /// slabs equally full. `objects` is the cache's objects per slab.
    ///
    /// As the kernel does, the per-`inuse` list heads (`slabs_by_inuse`)
    /// are allocated before `list_lock` is taken and freed after it is
    /// dropped: nothing allocates under the lock ([`crate::reentry`]).
    pub(crate) fn shrink(
        &self,
        objects: usize,
        inuse_of: impl Fn(*const Page) -> u32,
    ) -> *mut Page {
        // (head, tail) per inuse 0..=objects, then one for busy slabs.
        let mut by_inuse: Vec<(*mut Page, *mut Page)> =
            vec![(ptr::null_mut(), ptr::null_mut()); objects + 2];
        let busy = objects + 1;
        {
            let mut l = self.lock();
            let mut page = l.head;
            while !page.is_null() {
                // SAFETY: list lock held; slab fields read under a trylock.
                unsafe {
                    let next = (*page).next();
                    let bucket = if (*page).trylock() {
                        let inuse = inuse_of(page) as usize;
                        (*page).unlock();
                        inuse.min(objects)
                    } else {
                        busy
                    };
                    if bucket == 0 {
                        // Off the list (which is rebuilt below from the
                        // other buckets).
                        (*page).clear(PG_PARTIAL);
                        self.nr_partial.fetch_sub(1, Ordering::Relaxed);
                    }
                    let (head, tail) = &mut by_inuse[bucket];
                    (*page).set_next(ptr::null_mut());
                    if tail.is_null() {
                        *head = page;
                    } else {
                        (**tail).set_next(page);
                    }
                    *tail = page;
                    page = next;
                }
            }
            l.head = ptr::null_mut();
            l.tail = ptr::null_mut();
            for &(first, _) in by_inuse[1..].iter().rev() {
                let mut page = first;
                while !page.is_null() {
                    // SAFETY: list lock held; re-linking the same set of
                    // slabs, each read before its link is rewritten.
                    unsafe {
                        let next = (*page).next();
                        (*page).set_next(ptr::null_mut());
                        (*page).set_prev(l.tail);
                        if l.tail.is_null() {
                            l.head = page;
                        } else {
                            (*l.tail).set_next(page);
                        }
                        l.tail = page;
                        page = next;
                    }
                }
            }
        }
        by_inuse[0].0
    }

    /// Takes every empty slab off the partial list (`free_list()` in
    /// `kmem_cache_close()`), as [`Self::shrink`] does.
    pub(crate) fn take_empty(
        &self,
        objects: usize,
        inuse_of: impl Fn(*const Page) -> u32,
    ) -> *mut Page {
        self.shrink(objects, inuse_of)
    }

    /// Calls `f(page, on_partial)` for every slab on the lists, list lock
    /// held (`f` may only *try* slab locks).
    pub(crate) fn for_each_listed(&self, mut f: impl FnMut(*const Page, bool)) {
        let l = self.lock();
        let mut n = 0;
        for (head, partial) in [(l.head, true), (l.full, false)] {
            let mut page = head;
            while !page.is_null() {
                f(page, partial);
                if partial {
                    n += 1;
                }
                // SAFETY: list lock held.
                page = unsafe { (*page).next() };
            }
        }
        assert_eq!(
            n,
            self.nr_partial.load(Ordering::Relaxed),
            "nr_partial != |partial|"
        );
    }
}
