//! LRU lists: an `lruvec` of four lists linked through the pages
//! themselves, as `struct lruvec` and `page->lru` (2.6.28 split LRU).
//!
//! ```text
//!   lruvec (one per NUMA node; one per node and container once memory
//!   cgroups exist)
//!     lists[INACTIVE_ANON]  head ⇄ page ⇄ page ⇄ ... ⇄ page  tail
//!     lists[ACTIVE_ANON]
//!     lists[INACTIVE_FILE]  new file pages enter at the head;
//!     lists[ACTIVE_FILE]    reclaim takes from the tail
//! ```
//!
//! Invariants ([`Lruvec::assert_invariants`]): each list's length is the
//! number of pages reached from its head; every page on list `l` has
//! `PG_lru`, `PG_active == l.is_active()`, `PG_swapbacked == l.is_anon()`,
//! and its `lruvec` field names this lruvec.

use super::page::{NIL, Page, Pfn, flags};

/// The four evictable LRU lists, numbered as `enum lru_list`.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum LruList {
    /// `LRU_INACTIVE_ANON`.
    InactiveAnon = 0,
    /// `LRU_ACTIVE_ANON`.
    ActiveAnon = 1,
    /// `LRU_INACTIVE_FILE`.
    InactiveFile = 2,
    /// `LRU_ACTIVE_FILE`.
    ActiveFile = 3,
}

impl LruList {
    /// Every list.
    pub const ALL: [LruList; 4] = [
        LruList::InactiveAnon,
        LruList::ActiveAnon,
        LruList::InactiveFile,
        LruList::ActiveFile,
    ];

    /// The list for a page of this kind and activity (`page_lru()`).
    pub fn of(file: bool, active: bool) -> LruList {
        match (file, active) {
            (false, false) => LruList::InactiveAnon,
            (false, true) => LruList::ActiveAnon,
            (true, false) => LruList::InactiveFile,
            (true, true) => LruList::ActiveFile,
        }
    }

    /// `is_active_lru()`.
    pub fn is_active(self) -> bool {
        matches!(self, LruList::ActiveAnon | LruList::ActiveFile)
    }

    /// `is_file_lru()`.
    pub fn is_file(self) -> bool {
        matches!(self, LruList::InactiveFile | LruList::ActiveFile)
    }

    /// The name used in `/proc/meminfo`-style reports.
    pub fn name(self) -> &'static str {
        match self {
            LruList::InactiveAnon => "inactive_anon",
            LruList::ActiveAnon => "active_anon",
            LruList::InactiveFile => "inactive_file",
            LruList::ActiveFile => "active_file",
        }
    }
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Ends {
    head: Pfn,
    tail: Pfn,
    len: u64,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
    len: 0,
};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Four LRU lists of one node and container.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Lruvec {
    id: u16,
    lists: [Ends; 4],
    /// File pages activated on refault into this lruvec
    /// (`WORKINGSET_ACTIVATE_FILE` of the lruvec).
    pub(crate) workingset_activate: u64,
    /// For reclaim aimed at this lruvec's container (6.x `snapshot_refaults()`):
    /// the container's refault activations when its last reclaim ended.
    pub(crate) refaults_snapshot: u64,
    /// Anonymous pages activated on refault into this lruvec
    /// (`WORKINGSET_ACTIVATE_ANON`; with `KernelDetails::anon_6x`).
    #[serde(default, skip_serializing_if = "crate::mm::lru::is_zero")]
    pub(crate) workingset_activate_anon: u64,
    /// `refaults_snapshot` for the anonymous lists.
    #[serde(default, skip_serializing_if = "crate::mm::lru::is_zero")]
    pub(crate) refaults_snapshot_anon: u64,
}

impl Lruvec {
    /// Empty lists; `id` is what pages on them carry in `page.lruvec`.
    pub fn new(id: u16) -> Self {
        Lruvec {
            id,
            lists: [EMPTY; 4],
            workingset_activate: 0,
            refaults_snapshot: 0,
            workingset_activate_anon: 0,
            refaults_snapshot_anon: 0,
        }
    }

    /// This lruvec's id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Pages on `list`.
    #[inline]
    pub fn len(&self, list: LruList) -> u64 {
        self.lists[list as usize].len
    }

    /// Pages on all four lists.
    pub fn total(&self) -> u64 {
        self.lists.iter().map(|l| l.len).sum()
    }

    /// The page at the tail of `list` (the next to be scanned).
    #[inline]
    pub fn tail(&self, list: LruList) -> Option<Pfn> {
        let t = self.lists[list as usize].tail;
        (t != NIL).then_some(t)
    }

    /// Puts a page (not on any list) at the head of `list`, setting
    /// `PG_lru` and `PG_active` to match (`add_page_to_lru_list()`).
    pub fn add(&mut self, pages: &mut [Page], pfn: Pfn, list: LruList) {
        let l = &mut self.lists[list as usize];
        let old = l.head;
        {
            let p = &mut pages[pfn as usize];
            debug_assert!(!p.test(flags::LRU), "page {pfn} already on an LRU list");
            p.set(flags::LRU);
            if list.is_active() {
                p.set(flags::ACTIVE);
            } else {
                p.clear(flags::ACTIVE);
            }
            p.lruvec = self.id;
            p.prev = NIL;
            p.next = old;
        }
        if old == NIL {
            l.tail = pfn;
        } else {
            pages[old as usize].prev = pfn;
        }
        l.head = pfn;
        l.len += 1;
    }

    /// Takes a page off `list`, clearing `PG_lru` (`del_page_from_lru_list()`).
    pub fn del(&mut self, pages: &mut [Page], pfn: Pfn, list: LruList) {
        let (prev, next) = {
            let p = &mut pages[pfn as usize];
            debug_assert!(
                p.test(flags::LRU) && p.lruvec == self.id,
                "page {pfn} not on this lruvec"
            );
            p.clear(flags::LRU);
            let links = (p.prev, p.next);
            p.prev = NIL;
            p.next = NIL;
            links
        };
        let l = &mut self.lists[list as usize];
        if prev == NIL {
            l.head = next;
        } else {
            pages[prev as usize].next = next;
        }
        if next == NIL {
            l.tail = prev;
        } else {
            pages[next as usize].prev = prev;
        }
        l.len -= 1;
    }

    /// Moves a page from `from` to the head of `to`.
    pub fn move_to(&mut self, pages: &mut [Page], pfn: Pfn, from: LruList, to: LruList) {
        self.del(pages, pfn, from);
        self.add(pages, pfn, to);
    }

    /// Pages of `list` from head to tail.
    pub fn pages_of(&self, pages: &[Page], list: LruList) -> Vec<Pfn> {
        let mut out = Vec::new();
        let mut i = self.lists[list as usize].head;
        while i != NIL {
            out.push(i);
            i = pages[i as usize].next;
        }
        out
    }

    /// The header's invariants as a check that does not panic (for a
    /// deserialized machine): links in range, no cycle, flags and kinds
    /// right, lengths matching.
    pub fn check(&self, pages: &[Page]) -> Result<(), String> {
        for list in LruList::ALL {
            let l = &self.lists[list as usize];
            let mut n = 0;
            let mut prev = NIL;
            let mut i = l.head;
            while i != NIL {
                let Some(p) = pages.get(i as usize) else {
                    return Err(format!(
                        "{} of lruvec {} reaches frame {i}, past the end",
                        list.name(),
                        self.id
                    ));
                };
                let wrong = if !p.test(flags::LRU) {
                    Some("without PG_lru")
                } else if p.test(flags::ACTIVE) != list.is_active() {
                    Some("with PG_active wrong")
                } else if p.is_file() != list.is_file() {
                    Some("of the wrong kind")
                } else if p.lruvec != self.id {
                    Some("naming another lruvec")
                } else if p.prev != prev {
                    Some("with a wrong back link")
                } else {
                    None
                };
                if let Some(what) = wrong {
                    return Err(format!(
                        "frame {i} on {} of lruvec {} {what}",
                        list.name(),
                        self.id
                    ));
                }
                n += 1;
                if n > l.len {
                    return Err(format!(
                        "{} of lruvec {} longer than {}",
                        list.name(),
                        self.id,
                        l.len
                    ));
                }
                prev = i;
                i = p.next;
            }
            if prev != l.tail || n != l.len {
                return Err(format!(
                    "{} of lruvec {}: tail or length wrong",
                    list.name(),
                    self.id
                ));
            }
        }
        Ok(())
    }

    /// Checks the invariants of the module header ([`Self::check`],
    /// panicking with what it found).
    pub fn assert_invariants(&self, pages: &[Page]) {
        if let Err(e) = self.check(pages) {
            panic!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::page::{FileId, Owner};

    fn file_pages(n: usize) -> Vec<Page> {
        (0..n)
            .map(|i| {
                let mut p = Page::free(0);
                p.owner = Owner::File {
                    file: FileId(0),
                    index: i as u64,
                };
                p
            })
            .collect()
    }

    #[test]
    fn add_del_move_keep_lists_consistent() {
        let mut pages = file_pages(4);
        let mut v = Lruvec::new(0);
        for pfn in 0..4 {
            v.add(&mut pages, pfn, LruList::InactiveFile);
        }
        assert_eq!(v.pages_of(&pages, LruList::InactiveFile), vec![3, 2, 1, 0]);
        assert_eq!(v.tail(LruList::InactiveFile), Some(0));
        v.move_to(&mut pages, 1, LruList::InactiveFile, LruList::ActiveFile);
        assert!(pages[1].test(flags::ACTIVE));
        assert_eq!(v.len(LruList::InactiveFile), 3);
        assert_eq!(v.len(LruList::ActiveFile), 1);
        v.del(&mut pages, 0, LruList::InactiveFile);
        assert!(!pages[0].test(flags::LRU));
        assert_eq!(v.tail(LruList::InactiveFile), Some(2));
        v.assert_invariants(&pages);
    }
}
