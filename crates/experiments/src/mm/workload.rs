//! The built-in page-cache workloads of the `workingset` experiment, shared
//! with the `fidelity` experiment (which runs them on the host kernel too).
//!
//! Each is a sequence of page reads over three files, sized by `M`, the
//! memory the pages compete for (the machine's frames in `workingset`, the
//! memory cgroup's limit in `fidelity`):
//!
//! 1. [`hot_and_stream`]: a hot set of `5M/8` pages, larger than the half
//!    of memory the classic rule lets the active list keep, re-read every
//!    round while a stream reads `M` new pages once per round.
//! 2. [`shifting`]: `M/2` pages read every round, with `M/4` stream pages
//!    beside them; halfway through, the set moves to new pages.
//! 3. [`streaming`]: a set of `2M/5` pages used four times, then `4M` pages
//!    read once, then the set again.
//!
//! The generators draw from the seeded generator in a fixed order, so a
//! seed gives the same accesses in both experiments.

use klab_model::mm::lru::LruList;
use klab_model::{Access, AccessKind, Machine};
use rand::seq::SliceRandom;

/// The machine's recorded samples as `[accesses, active file, inactive
/// file]` points, for the list-size plots of both experiments.
pub(crate) fn file_list_samples(m: &Machine) -> Vec<[f64; 3]> {
    m.samples()
        .iter()
        .map(|x| {
            [
                x.accesses as f64,
                x.lists[LruList::ActiveFile as usize] as f64,
                x.lists[LruList::InactiveFile as usize] as f64,
            ]
        })
        .collect()
}

/// The hot (or first) working-set file.
pub(crate) const HOT: u32 = 0;
/// The stream file.
pub(crate) const STREAM: u32 = 1;
/// The file the shifting set moves to.
pub(crate) const SECOND: u32 = 2;

/// One workload: its accesses, and which of them count as "working set"
/// reads for the headline hit ratio.
pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) question: &'static str,
    pub(crate) accesses: Vec<(Access, bool)>,
    /// Accesses per round, for the hit-ratio-over-time plot.
    pub(crate) window: usize,
}

impl Workload {
    /// The accesses as `(file, page)` reads.
    pub(crate) fn pages(&self) -> Vec<(u32, u64)> {
        self.accesses
            .iter()
            .map(|(a, _)| match a.kind {
                AccessKind::Read(f, p) | AccessKind::Write(f, p) => (f.0, p),
                AccessKind::Anon(_) | AccessKind::AnonRead(_) => {
                    unreachable!("the built-in workloads read files only")
                }
            })
            .collect()
    }
}

fn shuffled(range: std::ops::Range<u64>, rng: &mut klab_model::rng::Rng) -> Vec<u64> {
    let mut v: Vec<u64> = range.collect();
    v.shuffle(rng);
    v
}

/// Workload 1: hot set of 5M/8 pages and a stream of M pages per round,
/// interleaved evenly.
pub(crate) fn hot_and_stream(m: u64, rounds: u64, rng: &mut klab_model::rng::Rng) -> Workload {
    let hot = m * 5 / 8;
    let mut accesses = Vec::new();
    let mut next_stream = 0u64;
    for _ in 0..rounds {
        let order = shuffled(0..hot, rng);
        for (i, &h) in order.iter().enumerate() {
            accesses.push((Access::read(HOT, h), true));
            // Spread the round's M stream pages evenly between hot reads.
            let i = i as u64;
            for _ in (i * m / hot)..((i + 1) * m / hot) {
                accesses.push((Access::read(STREAM, next_stream), false));
                next_stream += 1;
            }
        }
    }
    Workload {
        name: "hot set and stream",
        question: "a hot set of 5/8 of memory, re-read while a stream passes",
        accesses,
        window: (hot + m) as usize,
    }
}

/// Workload 2: a working set of M/2 pages with M/4 stream pages per round;
/// halfway, the set moves to other pages.
pub(crate) fn shifting(m: u64, rounds: u64, rng: &mut klab_model::rng::Rng) -> Workload {
    let set = m / 2;
    let stream_per_round = m / 4;
    let mut accesses = Vec::new();
    let mut next_stream = 0u64;
    for round in 0..rounds {
        let file = if round < rounds / 2 { HOT } else { SECOND };
        for (i, p) in shuffled(0..set, rng).into_iter().enumerate() {
            accesses.push((Access::read(file, p), true));
            if (i as u64).is_multiple_of((set / stream_per_round).max(1)) {
                accesses.push((Access::read(STREAM, next_stream), false));
                next_stream += 1;
            }
        }
    }
    let window = accesses.len() / rounds as usize;
    Workload {
        name: "shifting working set",
        question: "a working set of 1/2 of memory that moves to new pages halfway",
        accesses,
        window,
    }
}

/// Workload 3: a set of 2M/5 pages used four times, a stream of 4M pages,
/// then the set again.
pub(crate) fn streaming(m: u64, rng: &mut klab_model::rng::Rng) -> Workload {
    let set = m * 2 / 5;
    let mut accesses = Vec::new();
    for _ in 0..4 {
        for p in shuffled(0..set, rng) {
            accesses.push((Access::read(HOT, p), false));
        }
    }
    for p in 0..4 * m {
        accesses.push((Access::read(STREAM, p), false));
    }
    for p in shuffled(0..set, rng) {
        accesses.push((Access::read(HOT, p), true));
    }
    Workload {
        name: "streaming",
        question: "a used set of 2/5 of memory, then 4x memory of use-once pages, then the set again",
        accesses,
        window: (m / 2) as usize,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_have_the_stated_shapes() {
        let mut rng = klab_model::rng::seeded(1, 1);
        let w = hot_and_stream(64, 3, &mut rng);
        let hot = w.accesses.iter().filter(|a| a.1).count();
        assert_eq!(hot, 40 * 3, "5/8 of 64 pages per round");
        assert_eq!(
            w.accesses.len(),
            (40 + 64) * 3,
            "plus 64 stream pages per round"
        );
        let w = streaming(100, &mut rng);
        assert_eq!(w.accesses.len(), 40 * 4 + 400 + 40);
        let pages = w.pages();
        assert_eq!(
            pages[160],
            (STREAM, 0),
            "the stream follows the four passes"
        );
        let w = shifting(64, 4, &mut rng);
        let files: std::collections::BTreeSet<u32> = w.pages().iter().map(|p| p.0).collect();
        assert_eq!(files, [HOT, STREAM, SECOND].into());
    }
}
