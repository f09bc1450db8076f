//! SLUB's slow paths from 3.1 on: a slab's freelist and counters change in
//! one compare-and-swap, and (3.2+) each CPU keeps a list of partial
//! slabs. Mirrors mm/slub.c: `cmpxchg_double_slab()` (3.1),
//! `get_freelist()`, `acquire_slab()`, `get_partial_node()`,
//! `put_cpu_partial()` and `unfreeze_partials()` (3.2),
//! `deactivate_slab()` (with 5.17's splice of the CPU freelist),
//! `__slab_alloc()` and `__slab_free()`; seed 003 (the design these grew
//! out of).
//!
//! # The word
//!
//! The kernel packs `inuse`, `objects` and `frozen` into
//! `page->counters` and swaps it together with `page->freelist` by
//! `cmpxchg16b`. klab packs the freelist into the same 64-bit word as an
//! offset into the slab ([`Counters`]), so one `compare_exchange` covers
//! both, and keeps `objects` in the cache's layout (every slab of a cache
//! has the same number):
//!
//! ```text
//!  63                            32 31 30                         0
//!  ┌───────────────────────────────┬──┬───────────────────────────┐
//!  │ freelist: offset in slab + 1  │fz│ inuse                     │
//!  │ (0: no free object)           │  │                           │
//!  └───────────────────────────────┴──┴───────────────────────────┘
//! ```
//!
//! A slab's freelist is only ever pushed on (a free, `deactivate_slab()`)
//! or taken whole (`get_freelist()`, `acquire_slab()`): never popped one
//! object at a time by anyone but a CPU that owns the objects it pops. So
//! the compare-and-swap has no ABA problem: a push that finds the same
//! head links in front of whatever list that head now starts.
//!
//! # States of a 3.1+ slab
//!
//! * *CPU slab*: `frozen`, `c->page` of one CPU; `c->freelist` holds what
//!   the CPU took, `page->freelist` what others freed since.
//! * *CPU partial* (3.2+): `frozen`, on one CPU's `c->partial` list
//!   (linked through `next`; the head records the list's `pages` and
//!   `pobjects` in `prev`, as the kernel's head page does).
//! * *node partial*: not frozen, free objects, on the node list.
//! * *full*: not frozen, no free object, on no list. The first free
//!   freezes it onto the freeing CPU's partial list (3.2+) or puts it on
//!   the node list under `list_lock` (3.1).
//! * *empty*: `inuse == 0`: freed once the node already keeps
//!   `min_partial` partial slabs.
//!
//! Invariants (at rest, [`CacheCore::assert_invariants`]): a listed slab
//! is not frozen and `inuse + |freelist| == objects`; a CPU partial list
//! holds only frozen slabs, each with free objects when it was added.
//!
//! # Locking
//!
//! No slab lock. The node `list_lock` is taken to move a slab on or off a
//! node list; a compare-and-swap that makes such a move necessary is done
//! with the lock held (as `__slab_free()` and `deactivate_slab()` do), so a
//! slab is never seen unfrozen and off the list it belongs on. A CPU's
//! state is its own (`&mut`).

use std::ptr;

use super::{CacheCore, KmemCacheCpu, get_fp, set_fp};
use crate::page::Page;
use crate::primitive::Ordering;

/// A 3.1+ slab's freelist, `inuse` and `frozen` in one word (see the
/// module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Counters(pub(crate) u64);

impl Counters {
    const FROZEN: u64 = 1 << 31;
    const INUSE: u64 = Self::FROZEN - 1;

    /// A word from its fields; `fl` is the freelist's offset + 1, or 0.
    #[inline(always)]
    pub(crate) const fn new(fl: u32, inuse: u32, frozen: bool) -> Counters {
        Counters(
            ((fl as u64) << 32)
                | (inuse as u64 & Self::INUSE)
                | if frozen { Self::FROZEN } else { 0 },
        )
    }

    /// Objects handed out (to users or to a CPU freelist).
    #[inline(always)]
    pub(crate) const fn inuse(self) -> u32 {
        (self.0 & Self::INUSE) as u32
    }

    /// The slab belongs to a CPU (its active slab or on its partial list).
    #[inline(always)]
    pub(crate) const fn frozen(self) -> bool {
        self.0 & Self::FROZEN != 0
    }

    /// The freelist as offset + 1 (0: empty).
    #[inline(always)]
    pub(crate) const fn fl(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The freelist's first object in the slab starting at `base`.
    #[inline(always)]
    pub(crate) fn freelist(self, base: *mut u8) -> *mut u8 {
        match self.fl() {
            0 => ptr::null_mut(),
            f => base.wrapping_add(f as usize - 1),
        }
    }

    /// The word with another `inuse`.
    #[inline(always)]
    const fn with_inuse(self, inuse: u32) -> Counters {
        Counters((self.0 & !Self::INUSE) | (inuse as u64 & Self::INUSE))
    }

    /// The word with `frozen` set or cleared.
    #[inline(always)]
    const fn with_frozen(self, frozen: bool) -> Counters {
        Counters(if frozen {
            self.0 | Self::FROZEN
        } else {
            self.0 & !Self::FROZEN
        })
    }

    /// The word with another freelist (offset + 1, or 0).
    #[inline(always)]
    const fn with_fl(self, fl: u32) -> Counters {
        Counters((self.0 & 0xffff_ffff) | ((fl as u64) << 32))
    }
}

/// The freelist encoding of `obj` in the slab starting at `base`.
#[inline(always)]
fn fl_of(base: *mut u8, obj: *mut u8) -> u32 {
    if obj.is_null() {
        0
    } else {
        (obj.addr() - base.addr() + 1) as u32
    }
}

/// The `pages` and `pobjects` a CPU partial list's head records (in its
/// `prev` field, an integer, as the kernel's head page keeps them in
/// `page->pages` and `page->pobjects`).
///
/// # Safety
/// `page` is the head of a CPU partial list owned by the caller.
#[inline]
unsafe fn partial_counts(page: *const Page) -> (u32, u32) {
    // SAFETY: the CPU owns its partial slabs' list fields.
    let v = unsafe { (*page).prev() }.addr() as u64;
    (v as u32, (v >> 32) as u32)
}

/// Records the list counts in a new CPU partial list head.
///
/// # Safety
/// As [`partial_counts`].
#[inline]
unsafe fn set_partial_counts(page: *const Page, pages: u32, pobjects: u32) {
    let v = (u64::from(pobjects) << 32) | u64::from(pages);
    // SAFETY: the CPU owns its partial slabs' list fields.
    unsafe { (*page).set_prev(ptr::without_provenance_mut(v as usize)) };
}

impl CacheCore {
    /// `page->freelist` and `page->counters`, read together.
    #[inline(always)]
    fn counters(page: *const Page) -> Counters {
        // SAFETY: a live slab frame.
        Counters(unsafe { (*page).counters.load(Ordering::Acquire) })
    }

    /// `cmpxchg_double_slab()`: one attempt.
    #[inline(always)]
    fn cmpxchg_double_slab(page: *const Page, old: Counters, new: Counters) -> bool {
        super::interleave::point(super::interleave::Point::Cas);
        // SAFETY: a live slab frame.
        unsafe {
            (*page)
                .counters
                .compare_exchange(old.0, new.0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        }
    }

    /// `get_freelist()`: takes a frozen CPU slab's whole freelist (the
    /// objects others freed into it); a slab with none is left unfrozen
    /// and full, forgotten until its next free.
    fn get_freelist(&self, c: &mut KmemCacheCpu, page: *const Page) -> *mut u8 {
        let base = Page::address(page);
        loop {
            let old = Self::counters(page);
            debug_assert!(
                old.frozen(),
                "{}: get_freelist on a slab not frozen",
                self.name
            );
            let new = Counters::new(0, self.layout.objects as u32, old.fl() != 0);
            if Self::cmpxchg_double_slab(page, old, new) {
                return old.freelist(base);
            }
            c.stats.cmpxchg_fail += 1;
        }
    }

    /// The lock-free half of `___slab_alloc()` (3.2 shape): refill from
    /// the CPU slab's own freelist (`get_freelist()`), else from the next
    /// CPU partial slab. Null when both are used up (the CPU then has
    /// neither a slab nor a partial list): the node lists or a new slab
    /// are next, which take locks.
    #[inline]
    pub(crate) fn refill_lockless(&self, c: &mut KmemCacheCpu) -> *mut u8 {
        loop {
            if !c.page.is_null() {
                let obj = self.get_freelist(c, c.page);
                if !obj.is_null() {
                    c.stats.alloc_refill += 1;
                    // load_freelist:
                    // SAFETY: the objects taken are this CPU's now.
                    c.freelist = unsafe { get_fp(obj, self.layout.offset) };
                    return obj;
                }
                c.page = ptr::null();
                c.stats.deactivate_bypass += 1;
            }
            // new_slab:
            if c.partial.is_null() {
                return ptr::null_mut();
            }
            let page = c.partial;
            // SAFETY: the CPU owns its partial list.
            c.partial = unsafe { (*page).next() };
            c.page = page;
            c.node = Page::node(page) as i32;
            c.freelist = ptr::null_mut();
            c.stats.cpu_partial_alloc += 1;
        }
    }

    /// `___slab_alloc()` (3.2 shape): [`Self::refill_lockless`], else node
    /// partial slabs (`get_partial()`), else a new slab.
    #[cold]
    #[inline(never)]
    pub(crate) fn slab_alloc_slow_lockless(&self, c: &mut KmemCacheCpu) -> *mut u8 {
        c.stats.alloc_slow += 1;
        c.touched = true;
        let obj = self.refill_lockless(c);
        if !obj.is_null() {
            return obj;
        }
        if let Some(obj) = self.get_partial_lockless(c) {
            c.stats.alloc_from_partial += 1;
            // SAFETY: the acquired freelist is this CPU's now.
            c.freelist = unsafe { get_fp(obj, self.layout.offset) };
            return obj;
        }
        let Some(page) = self.new_slab(c.home_node) else {
            return ptr::null_mut();
        };
        c.stats.alloc_slab += 1;
        c.page = page;
        c.node = Page::node(page) as i32;
        let obj = Page::address(page);
        // SAFETY: a fresh slab, frozen for this CPU, all objects ours.
        c.freelist = unsafe { get_fp(obj, self.layout.offset) };
        obj
    }

    /// `get_partial()`: the CPU's node first, then (sometimes) others, as
    /// in 2.6.24.
    fn get_partial_lockless(&self, c: &mut KmemCacheCpu) -> Option<*mut u8> {
        let nr = self.pages.nr_nodes();
        let home = c.home_node % nr;
        if let Some(o) = self.get_partial_node_lockless(home, c) {
            return Some(o);
        }
        c.defrag_counter = c.defrag_counter.wrapping_add(1);
        if nr == 1 || c.defrag_counter % 1024 > super::DEFRAG_RATIO {
            return None;
        }
        (1..nr)
            .map(|k| (home + k) % nr)
            .filter(|&n| self.nodes[n].nr_partial.load(Ordering::Relaxed) > self.min_partial)
            .find_map(|n| self.get_partial_node_lockless(n, c))
    }

    /// `get_partial_node()` + `acquire_slab()`: under the list lock, the
    /// first partial slab becomes the CPU slab (its freelist taken), and
    /// (3.2+) more are frozen onto the CPU partial list until they hold
    /// more than `cpu_partial / 2` free objects. A compare-and-swap that
    /// loses a race ends the walk, as in the kernel.
    fn get_partial_node_lockless(&self, node: usize, c: &mut KmemCacheCpu) -> Option<*mut u8> {
        let n = &self.nodes[node];
        if n.nr_partial.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let mut l = n.lock();
        c.stats.list_lock += 1;
        let mut object: *mut u8 = ptr::null_mut();
        let mut available = 0usize;
        let mut page = super::KmemCacheNode::first_partial(&l);
        while !page.is_null() {
            // SAFETY: list lock held; listed frames are live slabs.
            let next = unsafe { (*page).next() };
            // acquire_slab():
            let old = Self::counters(page);
            debug_assert!(!old.frozen(), "{}: frozen slab on a node list", self.name);
            let objects = self.layout.objects - old.inuse() as usize;
            let new = if object.is_null() {
                Counters::new(0, self.layout.objects as u32, true)
            } else {
                old.with_frozen(true)
            };
            if !Self::cmpxchg_double_slab(page, old, new) {
                c.stats.cmpxchg_fail += 1;
                break;
            }
            // SAFETY: on this node's list, lock held.
            unsafe { n.unlink_partial(&mut l, page) };
            available += objects;
            if object.is_null() {
                c.page = page;
                c.node = node as i32;
                object = old.freelist(Page::address(page));
            } else {
                // SAFETY: frozen just now for this CPU.
                unsafe { self.put_cpu_partial(c, page, false) };
                c.stats.cpu_partial_node += 1;
            }
            if self.cpu_partial == 0 || available > self.cpu_partial / 2 {
                break;
            }
            page = next;
        }
        drop(l);
        (!object.is_null()).then_some(object)
    }

    /// `put_cpu_partial()`: pushes a frozen slab on the CPU partial list;
    /// with `drain`, a list already holding more than `cpu_partial` free
    /// objects first goes to the node lists.
    ///
    /// # Safety
    /// `page` is a slab of this cache frozen for `c`, on no list.
    unsafe fn put_cpu_partial(&self, c: &mut KmemCacheCpu, page: *const Page, drain: bool) {
        let (mut pages, mut pobjects) = (0u32, 0u32);
        let mut old = c.partial;
        if !old.is_null() {
            // SAFETY: the head of c's own list.
            (pages, pobjects) = unsafe { partial_counts(old) };
            if drain && pobjects as usize > self.cpu_partial {
                self.unfreeze_partials(c);
                old = ptr::null();
                (pages, pobjects) = (0, 0);
                c.stats.cpu_partial_drain += 1;
            }
        }
        pages += 1;
        pobjects += self.layout.objects as u32 - Self::counters(page).inuse();
        // SAFETY: the slab is frozen for c: its list fields are c's.
        unsafe {
            set_partial_counts(page, pages, pobjects);
            (*page).set_next(old.cast_mut());
        }
        c.partial = page;
    }

    /// `unfreeze_partials()`: every slab of the CPU partial list goes back
    /// to its node (to the tail of the partial list, or freed when empty
    /// and the node keeps `min_partial` already).
    ///
    /// Empty slabs wait on a list of their own, linked through their
    /// frames' `next` as the kernel's `discard_page` list is, and are
    /// freed once no list lock is held: nothing here allocates (the rule
    /// of [`crate::reentry`]; a `Vec` here was a thread waiting for its own
    /// lock when the allocator is the program's malloc).
    pub(crate) fn unfreeze_partials(&self, c: &mut KmemCacheCpu) {
        let mut locked: Option<(usize, super::node::ListGuard<'_>)> = None;
        let mut discard: *mut Page = ptr::null_mut();
        while !c.partial.is_null() {
            let page = c.partial;
            // SAFETY: the CPU owns its partial list.
            c.partial = unsafe { (*page).next() };
            let nid = Page::node(page);
            if locked.as_ref().is_none_or(|(id, _)| *id != nid) {
                // One node's lock at a time, as the kernel drops the old
                // node's before taking the next.
                drop(locked.take());
                locked = Some((nid, self.nodes[nid].lock()));
                c.stats.list_lock += 1;
            }
            let n = &self.nodes[nid];
            let new = loop {
                let old = Self::counters(page);
                debug_assert!(old.frozen(), "{}: unfrozen slab on a CPU list", self.name);
                let new = old.with_frozen(false);
                if Self::cmpxchg_double_slab(page, old, new) {
                    break new;
                }
                c.stats.cmpxchg_fail += 1;
            };
            if new.inuse() == 0 && n.nr_partial.load(Ordering::Relaxed) >= self.min_partial {
                // SAFETY: unfrozen and empty, on no list: its link fields
                // are ours until it is freed below.
                unsafe { (*page).set_next(discard) };
                discard = page.cast_mut();
            } else {
                let (_, l) = locked.as_mut().expect("node locked above");
                // SAFETY: unfrozen just now, on no list; lock held.
                unsafe { n.add_partial_locked(l, page, true) };
                c.stats.free_add_partial += 1;
            }
        }
        drop(locked);
        while !discard.is_null() {
            let page = discard;
            // SAFETY: on the discard list built above.
            discard = unsafe { (*page).next() };
            // SAFETY: empty, unfrozen, on no list: nobody can reach it.
            unsafe { self.discard_slab(page) };
        }
    }

    /// `deactivate_slab()`: the CPU slab goes back to its node, with the
    /// CPU freelist spliced in front of the slab's own (5.17's stage one:
    /// count it and find its tail, then one compare-and-swap), to the
    /// head of the partial list (the tail if others had freed into it),
    /// or freed when empty, or forgotten when full.
    fn deactivate_slab_lockless(&self, c: &mut KmemCacheCpu) {
        #[derive(PartialEq, Clone, Copy)]
        enum Mode {
            None,
            Partial,
            Full,
            Free,
        }
        let page = c.page;
        let freelist = c.freelist;
        c.page = ptr::null();
        c.freelist = ptr::null_mut();
        c.node = 0;
        let base = Page::address(page);
        let n = &self.nodes[Page::node(page)];
        // Stage one.
        let mut free_delta = 0u32;
        let mut tail: *mut u8 = ptr::null_mut();
        let mut p = freelist;
        while !p.is_null() {
            free_delta += 1;
            tail = p;
            // SAFETY: c's freelist holds free objects of its slab.
            p = unsafe { get_fp(p, self.layout.offset) };
        }
        // SAFETY: the slab is live and frozen for c.
        let to_tail = Self::counters(page).fl() != 0;
        // Stage two.
        let mut guard = None;
        let mut l = Mode::None;
        let mode = loop {
            let old = Self::counters(page);
            debug_assert!(
                old.frozen(),
                "{}: deactivating a slab not frozen",
                self.name
            );
            let mut new = old.with_frozen(false);
            if free_delta > 0 {
                // SAFETY: `tail` is the last object of c's freelist.
                unsafe { set_fp(tail, self.layout.offset, old.freelist(base)) };
                new = new
                    .with_inuse(old.inuse() - free_delta)
                    .with_fl(fl_of(base, freelist));
            }
            let m = if new.inuse() == 0 && n.nr_partial.load(Ordering::Relaxed) >= self.min_partial
            {
                Mode::Free
            } else if new.fl() != 0 {
                if guard.is_none() {
                    guard = Some(n.lock());
                    c.stats.list_lock += 1;
                }
                Mode::Partial
            } else {
                Mode::Full
            };
            if l != m {
                let g = guard.as_mut();
                if l == Mode::Partial {
                    // SAFETY: added below in an earlier attempt; lock held.
                    unsafe { n.unlink_partial(g.expect("locked for Partial"), page) };
                } else if m == Mode::Partial {
                    // SAFETY: on no list; lock held.
                    unsafe { n.add_partial_locked(g.expect("locked for Partial"), page, to_tail) };
                }
                l = m;
            }
            if Self::cmpxchg_double_slab(page, old, new) {
                break m;
            }
            c.stats.cmpxchg_fail += 1;
        };
        drop(guard);
        if mode == Mode::Free {
            // SAFETY: empty and unfrozen, on no list.
            unsafe { self.discard_slab(page) };
        }
    }

    /// `__flush_cpu_slab()`: `flush_slab()` then `unfreeze_partials()`.
    pub(crate) fn flush_lockless(&self, c: &mut KmemCacheCpu) {
        if !c.page.is_null() {
            self.deactivate_slab_lockless(c);
        }
        self.unfreeze_partials(c);
    }

    /// The common cases of `__slab_free()`, lock-free: one
    /// compare-and-swap pushes `obj` on its slab's freelist when that
    /// changes no node list: the slab is frozen, or stays partial and in
    /// use, or (3.2+, with `may_freeze`) was full and is frozen onto `c`'s
    /// partial list by `put_cpu_partial()` without a drain. Returns false,
    /// having changed nothing, when the free needs `list_lock` (a full
    /// slab without a CPU partial list to take it, a slab it empties, a
    /// CPU partial list due to drain): [`Self::slab_free_slow_lockless`]
    /// does those. Takes no lock, so callers need no fork bracketing.
    ///
    /// Frees a detached freelist of `cnt` objects of the slab, `head` to
    /// `tail` linked through their free pointers (4.6's bulk free,
    /// `do_slab_free(s, slab, head, tail, cnt)`): one compare-and-swap
    /// links all of them; a single object is `head == tail`, `cnt == 1`.
    ///
    /// # Safety
    /// `head`..`tail` are `cnt` allocated objects of this cache in
    /// `page`, linked, each freed once; `c` is the calling CPU's state
    /// for this cache.
    #[inline]
    pub(crate) unsafe fn slab_free_cas(
        &self,
        c: &mut KmemCacheCpu,
        page: *const Page,
        (head, tail, cnt): (*mut u8, *mut u8, u32),
        may_freeze: bool,
    ) -> bool {
        let freeze = may_freeze && self.cpu_partial > 0 && {
            // put_cpu_partial() would drain (take list locks) first?
            // SAFETY: c's own list head.
            c.partial.is_null()
                || unsafe { partial_counts(c.partial) }.1 as usize <= self.cpu_partial
        };
        let base = Page::address(page);
        loop {
            let old = Self::counters(page);
            let prior = old.freelist(base);
            let inuse = old.inuse() - cnt;
            let mut new = old.with_inuse(inuse).with_fl(fl_of(base, head));
            if (inuse == 0 || prior.is_null()) && !old.frozen() {
                if freeze && prior.is_null() {
                    new = new.with_frozen(true);
                } else {
                    return false;
                }
            }
            // SAFETY: tail is ours to free; its free pointer slot is free.
            unsafe { set_fp(tail, self.layout.offset, prior) };
            if Self::cmpxchg_double_slab(page, old, new) {
                c.stats.free_slow += 1;
                c.stats.free_frozen += u64::from(old.frozen());
                if new.frozen() && !old.frozen() {
                    // SAFETY: frozen just now by this free, for c; the
                    // list holds at most cpu_partial objects: no drain.
                    unsafe { self.put_cpu_partial(c, page, false) };
                    c.stats.cpu_partial_free += 1;
                }
                return true;
            }
            c.stats.cmpxchg_fail += 1;
        }
    }

    /// `__slab_free()` (3.2 shape): pushes `obj` on its slab's freelist by
    /// compare-and-swap. A free that finds the slab full and not frozen
    /// freezes it onto the freeing CPU's partial list (3.2+, with a CPU)
    /// or puts it on the node list under `list_lock`; a free that empties
    /// a slab that is not frozen frees it once the node keeps
    /// `min_partial` partial slabs. Frees into frozen slabs and into node
    /// partial slabs that stay in use take no lock at all.
    ///
    /// # Safety
    /// `obj` is an allocated object of this cache in `page`, freed once.
    pub(crate) unsafe fn slab_free_slow_lockless(
        &self,
        c: Option<&mut KmemCacheCpu>,
        page: *const Page,
        obj: *mut u8,
    ) {
        // SAFETY: forwarded; one object is a detached freelist of one.
        unsafe { self.slab_free_slow_lockless_bulk(c, page, (obj, obj, 1)) }
    }

    /// [`Self::slab_free_slow_lockless`] for a detached freelist of `cnt`
    /// objects of one slab, `head` to `tail` (4.6's `__slab_free(s, slab,
    /// head, tail, cnt)`, reached from `kmem_cache_free_bulk()`).
    ///
    /// # Safety
    /// `head`..`tail` are `cnt` allocated objects of this cache in
    /// `page`, linked through their free pointers, each freed once.
    pub(crate) unsafe fn slab_free_slow_lockless_bulk(
        &self,
        mut c: Option<&mut KmemCacheCpu>,
        page: *const Page,
        (head, tail, cnt): (*mut u8, *mut u8, u32),
    ) {
        let cpu_partial = self.cpu_partial > 0 && c.is_some();
        let base = Page::address(page);
        let n = &self.nodes[Page::node(page)];
        let mut guard = None;
        let mut fails = 0u64;
        let (prior, was_frozen, new) = loop {
            let old = Self::counters(page);
            let prior = old.freelist(base);
            // SAFETY: tail is ours to free; its free pointer slot is free.
            unsafe { set_fp(tail, self.layout.offset, prior) };
            let was_frozen = old.frozen();
            let mut new = old.with_inuse(old.inuse() - cnt).with_fl(fl_of(base, head));
            if (new.inuse() == 0 || prior.is_null()) && !was_frozen && guard.is_none() {
                if cpu_partial && prior.is_null() {
                    new = new.with_frozen(true);
                } else {
                    guard = Some(n.lock());
                }
            }
            if Self::cmpxchg_double_slab(page, old, new) {
                break (prior, was_frozen, new);
            }
            fails += 1;
        };
        if let Some(c) = c.as_deref_mut() {
            c.stats.free_slow += 1;
            c.stats.cmpxchg_fail += fails;
            c.stats.free_frozen += u64::from(was_frozen);
            c.stats.list_lock += u64::from(guard.is_some());
        }
        let Some(mut l) = guard else {
            if new.frozen() && !was_frozen {
                let c = c.expect("frozen onto a CPU partial list only with a CPU");
                // SAFETY: frozen just now by this free, for this CPU.
                unsafe { self.put_cpu_partial(c, page, true) };
                c.stats.cpu_partial_free += 1;
            }
            return;
        };
        if was_frozen {
            return;
        }
        if new.inuse() == 0 && n.nr_partial.load(Ordering::Relaxed) >= self.min_partial {
            // slab_empty:
            if !prior.is_null() {
                // SAFETY: a slab with free objects, not frozen: on the
                // node list; lock held.
                unsafe { n.unlink_partial(&mut l, page) };
                if let Some(c) = c {
                    c.stats.free_remove_partial += 1;
                }
            }
            drop(l);
            // SAFETY: empty and unfrozen, on no list.
            unsafe { self.discard_slab(page) };
            return;
        }
        if prior.is_null() {
            // Full and forgotten (no CPU partial list to take it): back
            // on the node list's tail.
            // SAFETY: on no list; lock held.
            unsafe { n.add_partial_locked(&mut l, page, true) };
            if let Some(c) = c {
                c.stats.free_add_partial += 1;
            }
        }
    }

    /// Checks a CPU's state in the 3.1+ protocol: its slab and every slab
    /// on its partial list are frozen slabs of this cache; each partial
    /// slab has a free object (frees only add to them while they wait);
    /// the head records `pages` = the list's length. Remote frees may run
    /// meanwhile: none of these can change under them.
    ///
    /// # Panics
    /// If one does not hold.
    pub(crate) fn assert_cpu_invariants_lockless(&self, c: &KmemCacheCpu) {
        if !c.page.is_null() {
            assert!(
                Self::counters(c.page).frozen(),
                "{}: CPU slab not frozen",
                self.name
            );
        }
        let mut n = 0u32;
        let mut p = c.partial;
        while !p.is_null() {
            let w = Self::counters(p);
            assert!(
                w.frozen(),
                "{}: unfrozen slab on a CPU partial list",
                self.name
            );
            assert!(
                (w.inuse() as usize) < self.layout.objects,
                "{}: CPU partial slab without a free object",
                self.name
            );
            // SAFETY: the slab is on c's list: its links are c's.
            let slab = unsafe { (*p).slab() };
            assert!(
                ptr::eq(slab.cast::<CacheCore>(), self),
                "{}: another cache's slab on a CPU partial list",
                self.name
            );
            n += 1;
            // SAFETY: as above.
            p = unsafe { (*p).next() };
        }
        if !c.partial.is_null() {
            // SAFETY: c's list head.
            let (pages, _) = unsafe { partial_counts(c.partial) };
            assert_eq!(pages, n, "{}: CPU partial head's page count", self.name);
        }
    }
}
