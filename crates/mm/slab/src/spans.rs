//! Free large spans: kept for reuse, handed back to the host after a
//! delay.
//!
//! A kmalloc above the buddy allocator's largest order is a *span*: whole
//! sections straight from the page source ([`crate::page_alloc`]'s
//! `alloc_large()`). Mapping a fresh span and unmapping it on free costs
//! two system calls and a page fault per page each time, which is what a
//! program that keeps replacing multi-megabyte buffers pays over and over.
//! The kernel's page allocator does not give freed pages back to anyone:
//! they wait on its free lists for the next request. Under a hypervisor
//! it reports the free blocks it keeps to the host, so the host can take
//! the memory back, but only blocks that stayed free for a while:
//! mm/page_reporting.c (`page_reporting_notify_free()`,
//! `page_reporting_process()`, `PAGE_REPORTING_DELAY` = 2 s) reports free
//! blocks of at least `pageblock_order` after the delay, and the guest
//! keeps them on its free lists (a reported page is reused like any other;
//! touching it again costs a fault). mimalloc's purge delay and tcmalloc's
//! release rate do the same for user space.
//!
//! [`SpanCache`] is that rule for klab's spans, with the host kernel in
//! the hypervisor's place:
//!
//! * a freed span is kept (merged with free neighbours: adjacent sections
//!   make one span) and marked with the time it was freed;
//! * an allocation takes the smallest kept span that fits, resident spans
//!   before reported ones (lowest address on ties), splitting off what it
//!   does not need, which stays kept;
//! * a kept span that has been free for [`SpanCache::delay_ms`] is
//!   *reported*: its pages are discarded (`madvise(MADV_DONTNEED)`: the
//!   resident set shrinks, the mapping stays, a later reuse faults in zero
//!   pages) and it stays kept;
//! * resident (unreported) kept bytes are capped ([`SpanCache::cap`]; the
//!   page allocator sets it to half of its live spans, at least 64 MiB,
//!   so the resident set stays within 1.5 times what the program holds
//!   plus 64 MiB, about what glibc's heap keeps): past the cap the oldest spans are reported at
//!   once, so a burst of frees does not hold its memory for the whole
//!   delay;
//! * at most [`MAX_SPANS`] spans are kept: one more unmaps the oldest
//!   (`munmap`), so address space stays bounded too.
//!
//! # Invariants ([`SpanCache::assert_invariants`])
//!
//! * spans are sorted by address and never overlap (a span freed next to
//!   a kept one merges with it; a reported span given back does not);
//! * `resident == Σ nr_sections of unreported spans`.
//!
//! # Locking
//!
//! The cache is plain data; its owner ([`crate::page_alloc`]) keeps it
//! under a lock and does the system calls after dropping it, with the
//! spans concerned taken out of the cache meanwhile ([`Action`]). Nothing
//! here allocates ([`crate::reentry`]).

/// Most spans kept.
pub const MAX_SPANS: usize = 32;

/// A run of sections, `base` its first byte's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    /// Address of the first section.
    pub base: usize,
    /// Sections in the span.
    pub nr: usize,
    /// When it was freed (ms, the caller's clock).
    pub freed_ms: u64,
    /// Its pages were discarded (`madvise(MADV_DONTNEED)`).
    pub reported: bool,
}

impl Span {
    const EMPTY: Span = Span {
        base: 0,
        nr: 0,
        freed_ms: 0,
        reported: false,
    };

    fn end(&self, section: usize) -> usize {
        self.base + self.nr * section
    }
}

/// What the owner must do once the lock is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Discard the pages of this span (`MADV_DONTNEED`), then give it
    /// back with [`SpanCache::reported`].
    Report(Span),
    /// Unmap this span: it leaves the cache for good.
    Unmap(Span),
}

/// Free spans of one page allocator, sorted by address (see the module
/// header).
pub struct SpanCache {
    spans: [Span; MAX_SPANS],
    len: usize,
    /// Sections of the spans not reported.
    resident: usize,
    /// Bytes per section.
    section: usize,
    /// How long a span stays free before it is reported.
    delay_ms: u64,
    /// Most unreported sections kept.
    cap: usize,
}

impl SpanCache {
    /// An empty cache for sections of `section` bytes, reporting spans
    /// free for `delay_ms` and keeping at most `cap` sections unreported.
    pub const fn new(section: usize, delay_ms: u64, cap: usize) -> SpanCache {
        SpanCache {
            spans: [Span::EMPTY; MAX_SPANS],
            len: 0,
            resident: 0,
            section,
            delay_ms,
            cap,
        }
    }

    /// The kept spans, by address.
    pub fn spans(&self) -> &[Span] {
        &self.spans[..self.len]
    }

    /// Sections kept and not reported.
    pub fn resident(&self) -> usize {
        self.resident
    }

    /// The report delay.
    pub fn delay_ms(&self) -> u64 {
        self.delay_ms
    }

    /// The cap on unreported sections.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Sets the cap on unreported sections (the owner scales it with the
    /// sections its live spans hold); takes effect at the next
    /// [`Self::put`] or [`Self::decay`].
    pub fn set_cap(&mut self, cap: usize) {
        self.cap = cap;
    }

    /// Takes `nr` sections: the smallest resident span that fits, else
    /// the smallest reported one, lowest address on ties; the rest of it
    /// stays kept. Returns the base and whether
    /// its pages had been reported.
    pub fn take(&mut self, nr: usize) -> Option<(usize, bool)> {
        // Resident spans first: a reported one costs a fault per page.
        let key = |s: &Span| (s.reported, s.nr);
        let mut best: Option<usize> = None;
        for (i, s) in self.spans().iter().enumerate() {
            if s.nr >= nr && best.is_none_or(|b| key(s) < key(&self.spans[b])) {
                best = Some(i);
            }
        }
        let i = best?;
        let s = self.spans[i];
        if !s.reported {
            self.resident -= nr;
        }
        if s.nr == nr {
            self.remove(i);
        } else {
            self.spans[i].base += nr * self.section;
            self.spans[i].nr -= nr;
        }
        Some((s.base, s.reported))
    }

    /// Keeps a freed span of `nr` sections at `base`, freed at `now_ms`
    /// (its pages resident), merged with touching neighbours. Returns
    /// what the owner must do now (at most one action: a span unmapped
    /// to make room, or the oldest span reported to respect the cap; the
    /// owner calls [`Self::decay`] for more).
    pub fn put(&mut self, base: usize, nr: usize, now_ms: u64) -> Option<Action> {
        let new = Span {
            base,
            nr,
            freed_ms: now_ms,
            reported: false,
        };
        self.resident += nr;
        let at = self.spans().partition_point(|s| s.base < base);
        let merge_prev = at > 0 && self.spans[at - 1].end(self.section) == base;
        let merge_next = at < self.len && new.end(self.section) == self.spans[at].base;
        match (merge_prev, merge_next) {
            (true, true) => {
                let next = self.spans[at];
                let p = &mut self.spans[at - 1];
                if p.reported || next.reported {
                    // A merged span is reported only if all of it was:
                    // count the reported parts as resident again (they are
                    // discarded again when the whole is reported).
                    self.resident +=
                        if p.reported { p.nr } else { 0 } + if next.reported { next.nr } else { 0 };
                }
                p.nr += nr + next.nr;
                p.freed_ms = now_ms;
                p.reported = false;
                self.remove(at);
            }
            (true, false) => {
                let p = &mut self.spans[at - 1];
                if p.reported {
                    self.resident += p.nr;
                }
                p.nr += nr;
                p.freed_ms = now_ms;
                p.reported = false;
            }
            (false, true) => {
                let n = &mut self.spans[at];
                if n.reported {
                    self.resident += n.nr;
                }
                n.base = base;
                n.nr += nr;
                n.freed_ms = now_ms;
                n.reported = false;
            }
            (false, false) => {
                if self.len == MAX_SPANS {
                    // Room for one: the oldest span goes back for good.
                    let old = self.oldest(|_| true).expect("a full cache has spans");
                    let gone = self.spans[old];
                    self.remove(old);
                    if !gone.reported {
                        self.resident -= gone.nr;
                    }
                    let at = self.spans().partition_point(|s| s.base < base);
                    self.insert(at, new);
                    return Some(Action::Unmap(gone));
                }
                self.insert(at, new);
            }
        }
        self.over_cap()
    }

    /// The next span to report at `now_ms`: over the cap, the oldest
    /// unreported span; else one free for at least the delay (oldest
    /// first). The span leaves the cache until [`Self::reported`] gives it
    /// back.
    pub fn decay(&mut self, now_ms: u64) -> Option<Action> {
        if let Some(a) = self.over_cap() {
            return Some(a);
        }
        let delay = self.delay_ms;
        let i = self.oldest(|s| !s.reported && now_ms.saturating_sub(s.freed_ms) >= delay)?;
        Some(self.detach(i))
    }

    /// Gives back a span whose pages were discarded.
    pub fn reported(&mut self, mut span: Span) -> Option<Action> {
        span.reported = true;
        let at = self.spans().partition_point(|s| s.base < span.base);
        // A reported span is put back whole; spans freed next to it in the
        // meantime stay separate (merging would mark it unreported).
        if self.len == MAX_SPANS {
            return Some(Action::Unmap(span));
        }
        self.insert(at, span);
        None
    }

    /// The oldest unreported span, detached for reporting, if the cap is
    /// exceeded.
    fn over_cap(&mut self) -> Option<Action> {
        if self.resident <= self.cap {
            return None;
        }
        let i = self.oldest(|s| !s.reported)?;
        Some(self.detach(i))
    }

    fn detach(&mut self, i: usize) -> Action {
        let s = self.spans[i];
        self.remove(i);
        self.resident -= s.nr;
        Action::Report(s)
    }

    /// Index of the oldest span matching `f` (lowest address on ties).
    fn oldest(&self, f: impl Fn(&Span) -> bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, s) in self.spans().iter().enumerate() {
            if f(s) && best.is_none_or(|b| s.freed_ms < self.spans[b].freed_ms) {
                best = Some(i);
            }
        }
        best
    }

    fn insert(&mut self, at: usize, s: Span) {
        debug_assert!(self.len < MAX_SPANS);
        self.spans.copy_within(at..self.len, at + 1);
        self.spans[at] = s;
        self.len += 1;
    }

    fn remove(&mut self, i: usize) {
        self.spans.copy_within(i + 1..self.len, i);
        self.len -= 1;
    }

    /// Checks the invariants of the module header.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        let mut resident = 0;
        for (i, s) in self.spans().iter().enumerate() {
            assert!(s.nr > 0, "empty span");
            if !s.reported {
                resident += s.nr;
            }
            if i > 0 {
                let p = &self.spans[i - 1];
                assert!(
                    p.end(self.section) <= s.base,
                    "spans {:#x} and {:#x} overlap",
                    p.base,
                    s.base
                );
            }
        }
        assert_eq!(resident, self.resident, "resident sections miscounted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: usize = 0x20_0000;

    #[test]
    fn a_freed_span_is_reused_best_fit_and_split() {
        let mut c = SpanCache::new(S, 100, 64);
        assert_eq!(c.put(10 * S, 5, 0), None);
        assert_eq!(c.put(20 * S, 3, 1), None);
        assert_eq!(c.resident(), 8);
        // 3 sections: the 3-section span fits exactly.
        assert_eq!(c.take(3), Some((20 * S, false)));
        // 2 sections: split from the 5: the first two go, three stay.
        assert_eq!(c.take(2), Some((10 * S, false)));
        assert_eq!(
            c.spans(),
            &[Span {
                base: 12 * S,
                nr: 3,
                freed_ms: 0,
                reported: false
            }]
        );
        assert_eq!(c.resident(), 3);
        assert_eq!(c.take(4), None);
        c.assert_invariants();
    }

    #[test]
    fn a_resident_span_is_taken_before_a_smaller_reported_one() {
        let mut c = SpanCache::new(S, 10, 64);
        assert_eq!(c.put(10 * S, 2, 0), None);
        let Some(Action::Report(s)) = c.decay(10) else {
            panic!("not due")
        };
        assert_eq!(c.reported(s), None);
        assert_eq!(c.put(20 * S, 4, 11), None);
        // Both fit 2 sections; the resident 4 wins over the reported 2.
        assert_eq!(c.take(2), Some((20 * S, false)));
        // Now the resident rest (22..24) and the reported 10..12 tie on
        // size: the resident one again.
        assert_eq!(c.take(2), Some((22 * S, false)));
        assert_eq!(c.take(2), Some((10 * S, true)));
        c.assert_invariants();
    }

    #[test]
    fn touching_spans_merge_into_one() {
        let mut c = SpanCache::new(S, 100, 64);
        assert_eq!(c.put(10 * S, 2, 0), None);
        assert_eq!(c.put(14 * S, 2, 1), None);
        // 12..14 touches both: one span 10..16, freed at the latest time.
        assert_eq!(c.put(12 * S, 2, 5), None);
        assert_eq!(
            c.spans(),
            &[Span {
                base: 10 * S,
                nr: 6,
                freed_ms: 5,
                reported: false
            }]
        );
        assert_eq!(c.take(6), Some((10 * S, false)));
        assert!(c.spans().is_empty());
        c.assert_invariants();
    }

    #[test]
    fn spans_free_for_the_delay_are_reported_and_stay_kept() {
        let mut c = SpanCache::new(S, 100, 64);
        assert_eq!(c.put(10 * S, 2, 0), None);
        assert_eq!(c.put(20 * S, 1, 50), None);
        // At 99 ms nothing has been free for 100 ms.
        assert_eq!(c.decay(99), None);
        // At 100 ms the first is due; it leaves the cache while reported.
        let Some(Action::Report(s)) = c.decay(100) else {
            panic!("nothing to report at 100 ms")
        };
        assert_eq!((s.base, s.nr), (10 * S, 2));
        assert_eq!(c.decay(100), None);
        assert_eq!(c.resident(), 1);
        assert_eq!(c.reported(s), None);
        assert_eq!(c.resident(), 1);
        // A reported span is reused like any other; the caller learns its
        // pages were discarded.
        assert_eq!(c.take(2), Some((10 * S, true)));
        assert_eq!(c.resident(), 1);
        // The second is due at 150 ms.
        assert!(matches!(
            c.decay(150),
            Some(Action::Report(Span { nr: 1, .. }))
        ));
        c.assert_invariants();
    }

    #[test]
    fn over_the_cap_the_oldest_is_reported_at_once() {
        let mut c = SpanCache::new(S, 1000, 4);
        assert_eq!(c.put(10 * S, 3, 0), None);
        // 3 + 2 = 5 > 4: the oldest (10..13) is reported now.
        let a = c.put(20 * S, 2, 1);
        assert_eq!(
            a,
            Some(Action::Report(Span {
                base: 10 * S,
                nr: 3,
                freed_ms: 0,
                reported: false
            }))
        );
        assert_eq!(c.resident(), 2);
        let Some(Action::Report(s)) = a else {
            unreachable!()
        };
        assert_eq!(c.reported(s), None);
        assert_eq!(c.resident(), 2);
        assert_eq!(c.spans().len(), 2);
        c.assert_invariants();
    }

    #[test]
    fn a_full_cache_unmaps_its_oldest_span() {
        let mut c = SpanCache::new(S, 1000, 1 << 20);
        for k in 0..MAX_SPANS {
            assert_eq!(c.put(2 * k * S, 1, k as u64 + 1), None);
        }
        // One more (not touching any): the oldest, at 0, is unmapped.
        let a = c.put(1000 * S, 1, 100);
        assert_eq!(
            a,
            Some(Action::Unmap(Span {
                base: 0,
                nr: 1,
                freed_ms: 1,
                reported: false
            }))
        );
        assert_eq!(c.spans().len(), MAX_SPANS);
        assert_eq!(c.resident(), MAX_SPANS);
        c.assert_invariants();
    }

    #[test]
    fn merging_with_a_reported_span_makes_it_resident_again() {
        let mut c = SpanCache::new(S, 10, 64);
        assert_eq!(c.put(10 * S, 2, 0), None);
        let Some(Action::Report(s)) = c.decay(10) else {
            panic!("not due")
        };
        assert_eq!(c.reported(s), None);
        assert_eq!(c.resident(), 0);
        // 12..13 touches the reported 10..12: one unreported span of 3.
        assert_eq!(c.put(12 * S, 1, 20), None);
        assert_eq!(c.resident(), 3);
        assert_eq!(
            c.spans(),
            &[Span {
                base: 10 * S,
                nr: 3,
                freed_ms: 20,
                reported: false
            }]
        );
        c.assert_invariants();
    }
}
