//! The commits between revisions, found as `git rev-list` finds them.
//!
//! Mirrors git's revision.c: `prepare_revision_walk()` (start commits in
//! committer-date order), `limit_list()` with `process_parents()`,
//! `mark_parents_uninteresting()`, `still_interesting()` and
//! `everybody_uninteresting()`, and `get_revision_1()` leaving out what
//! became uninteresting after it was listed.
//!
//! ```text
//!  queue (newest committer date first; equal dates first-in first-out)
//!  pop c ─▶ parents of c: seen? no ─▶ parse, queue       (c uninteresting:
//!            the parents and, through parsed ones, their ancestors too)
//!        ─▶ c interesting: list it, date = c's date
//!           c uninteresting: go on while the queue holds an interesting
//!           commit or one at least as new as `date`; after that, SLOP (5)
//!           more uninteresting commits, then stop
//!  output: the list, less what was marked uninteresting later
//! ```
//!
//! It lists commits in git's order, hands each one over as soon as it is
//! listed (so diffing starts while the walk goes on), and reads commits
//! through a cache of their dates and parents when one is given. On
//! git.git `v2.40.0..v2.46.0` it parses 23,000 commits to list 4,540, as
//! `git rev-list` does (0.17 s of CPU here, 0.19 s for git; gix's walk,
//! which first paints both sides down to their common frontier, took
//! 0.22 s). Like git, it trusts committer dates to within SLOP commits: a
//! hidden commit dated far in the future of its descendants can let a few
//! of them through, as it does in git.

use std::collections::{BinaryHeap, HashMap};

use gix::ObjectId;

use crate::cache::Cache;
use crate::objects::Objects;

/// git's `SLOP`: uninteresting commits popped once the queue holds only
/// uninteresting commits older than the last one listed.
pub const SLOP: u32 = 5;

const SEEN: u8 = 1;
const UNINTERESTING: u8 = 2;
const QUEUED: u8 = 4;

/// One commit the walk has met.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Its id.
    pub id: ObjectId,
    /// Committer time, seconds since the epoch.
    pub date: i64,
    /// Parent ids (empty before the commit is parsed, and for a root).
    pub parents: Vec<ObjectId>,
}

#[derive(Debug)]
struct Node {
    commit: Commit,
    parsed: bool,
    flags: u8,
}

struct Walk<'a, 'o> {
    objects: &'a Objects<'o>,
    graph: Option<&'a mut Cache>,
    nodes: Vec<Node>,
    index: HashMap<ObjectId, u32>,
    /// `(date, −insertion number, node)`: a max-heap pops the newest, and
    /// among equal dates the earliest queued, as git's date-ordered list.
    queue: BinaryHeap<(i64, std::cmp::Reverse<u64>, u32)>,
    seq: u64,
    /// Interesting commits in the queue (`everybody_uninteresting()`).
    interesting_queued: usize,
}

impl<'a, 'o> Walk<'a, 'o> {
    fn node(&mut self, id: ObjectId) -> u32 {
        if let Some(&n) = self.index.get(&id) {
            return n;
        }
        let n = self.nodes.len() as u32;
        self.nodes.push(Node {
            commit: Commit {
                id,
                date: 0,
                parents: Vec::new(),
            },
            parsed: false,
            flags: 0,
        });
        self.index.insert(id, n);
        n
    }

    fn parse(&mut self, n: u32) -> Result<(), String> {
        let node = &self.nodes[n as usize];
        if node.parsed {
            return Ok(());
        }
        let id = node.commit.id;
        if let Some(g) = self.graph.as_deref_mut()
            && let Some(slot) = g.find(id.as_bytes())
            && let Some((date, parents)) = g.read_commit(slot)
        {
            let parents = parents
                .chunks(id.as_bytes().len())
                .map(|p| gix::hash::oid::try_from_bytes(p).map(ToOwned::to_owned))
                .collect::<Result<Vec<ObjectId>, _>>()
                .map_err(|e| format!("{id}: cached parents: {e}"))?;
            let node = &mut self.nodes[n as usize];
            node.commit.date = date;
            node.commit.parents = parents;
            node.parsed = true;
            return Ok(());
        }
        let data = self
            .objects
            .find_kind(&id, gix::objs::Kind::Commit)
            .map_err(|e| format!("{id}: {e}"))?;
        let c =
            gix::objs::CommitRef::from_bytes(&data, id.kind()).map_err(|e| format!("{id}: {e}"))?;
        let date = c
            .committer()
            .and_then(|s| s.time())
            .map_err(|e| format!("{id}: {e}"))?
            .seconds;
        let parents: Vec<ObjectId> = c.parents().collect();
        if let Some(g) = self.graph.as_deref_mut() {
            let flat: Vec<u8> = parents.iter().flat_map(|p| p.as_bytes()).copied().collect();
            g.insert_commit(id.as_bytes(), date, &flat);
        }
        let node = &mut self.nodes[n as usize];
        node.commit.date = date;
        node.commit.parents = parents;
        node.parsed = true;
        Ok(())
    }

    fn push(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        node.flags |= QUEUED;
        if node.flags & UNINTERESTING == 0 {
            self.interesting_queued += 1;
        }
        self.seq += 1;
        self.queue
            .push((node.commit.date, std::cmp::Reverse(self.seq), n));
    }

    fn pop(&mut self) -> Option<u32> {
        let (_, _, n) = self.queue.pop()?;
        let node = &mut self.nodes[n as usize];
        node.flags &= !QUEUED;
        if node.flags & UNINTERESTING == 0 {
            self.interesting_queued -= 1;
        }
        Some(n)
    }

    /// Sets UNINTERESTING; true when it was not set.
    fn mark(&mut self, n: u32) -> bool {
        let node = &mut self.nodes[n as usize];
        if node.flags & UNINTERESTING != 0 {
            return false;
        }
        node.flags |= UNINTERESTING;
        if node.flags & QUEUED != 0 {
            self.interesting_queued -= 1;
        }
        true
    }

    /// `mark_parents_uninteresting()`: the parents of `n`, and through
    /// every parsed one its ancestors, become uninteresting.
    fn mark_parents_uninteresting(&mut self, n: u32) {
        let mut pending: Vec<u32> = Vec::new();
        let parents = self.nodes[n as usize].commit.parents.clone();
        for p in parents {
            let p = self.node(p);
            pending.push(p);
        }
        while let Some(p) = pending.pop() {
            // mark_one_parent_uninteresting()
            if !self.mark(p) {
                continue;
            }
            let grand = self.nodes[p as usize].commit.parents.clone();
            for g in grand {
                let g = self.node(g);
                pending.push(g);
            }
        }
    }

    /// `process_parents()`: queue the parents of `n` not seen yet.
    fn process_parents(&mut self, n: u32) -> Result<(), String> {
        let uninteresting = self.nodes[n as usize].flags & UNINTERESTING != 0;
        let parents = self.nodes[n as usize].commit.parents.clone();
        for p in parents {
            let p = self.node(p);
            if uninteresting {
                self.mark(p);
                // git skips an uninteresting parent it cannot read.
                if self.parse(p).is_err() {
                    continue;
                }
                self.mark_parents_uninteresting(p);
            } else {
                if self.nodes[p as usize].flags & SEEN != 0 {
                    continue;
                }
                self.parse(p)?;
            }
            if self.nodes[p as usize].flags & SEEN != 0 {
                continue;
            }
            self.nodes[p as usize].flags |= SEEN;
            self.push(p);
        }
        Ok(())
    }

    /// `still_interesting()`.
    fn still_interesting(&self, date: i64, slop: u32) -> u32 {
        let Some(&(newest, _, _)) = self.queue.peek() else {
            return 0;
        };
        if date <= newest || self.interesting_queued > 0 {
            return SLOP;
        }
        slop - 1
    }
}

/// The commits reachable from `tips` and not from `hidden`, newest
/// committer date first (merges included), as `git rev-list` lists them.
/// Commits are parsed from `graph` when it has them, and what is parsed
/// from the repository is added to it. `listed_now` sees each commit when the
/// walk lists it (a few may be dropped from the result later, as git drops
/// them). Errors name the commit that could not be read.
pub fn list(
    objects: &Objects<'_>,
    tips: &[ObjectId],
    hidden: &[ObjectId],
    graph: Option<&mut Cache>,
    listed_now: &mut dyn FnMut(&Commit),
) -> Result<Vec<Commit>, String> {
    let mut w = Walk {
        objects,
        graph,
        nodes: Vec::new(),
        index: HashMap::new(),
        queue: BinaryHeap::new(),
        seq: 0,
        interesting_queued: 0,
    };
    // prepare_revision_walk(): hidden tips are marked with their parents
    // (handle_commit()), then every start commit is queued once.
    let mut starts = Vec::new();
    for (&id, hide) in tips
        .iter()
        .map(|t| (t, false))
        .chain(hidden.iter().map(|h| (h, true)))
    {
        let n = w.node(id);
        w.parse(n)?;
        if hide {
            w.mark(n);
            w.mark_parents_uninteresting(n);
        }
        starts.push(n);
    }
    for n in starts {
        if w.nodes[n as usize].flags & SEEN == 0 {
            w.nodes[n as usize].flags |= SEEN;
            w.push(n);
        }
    }
    // limit_list()
    let limited = !hidden.is_empty();
    let mut slop = SLOP;
    let mut date = i64::MAX;
    let mut listed: Vec<u32> = Vec::new();
    while let Some(n) = w.pop() {
        w.process_parents(n)?;
        if limited && w.nodes[n as usize].flags & UNINTERESTING != 0 {
            w.mark_parents_uninteresting(n);
            slop = w.still_interesting(date, slop);
            if slop > 0 {
                continue;
            }
            break;
        }
        date = w.nodes[n as usize].commit.date;
        listed_now(&w.nodes[n as usize].commit);
        listed.push(n);
    }
    // get_revision_1(): what became uninteresting since is left out.
    Ok(listed
        .into_iter()
        .filter(|&n| w.nodes[n as usize].flags & UNINTERESTING == 0)
        .map(|n| w.nodes[n as usize].commit.clone())
        .collect())
}
