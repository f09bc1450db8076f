//! A trace scaled to a limit: distinct pages spatially sampled down to a
//! multiple of the limit, renumbered densely per file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use klab_lab::experiment::ExperimentError;
use klab_trace::pages_of;
use serde::{Deserialize, Serialize};

/// How a trace was scaled to the limit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceScale {
    /// Distinct pages of the trace.
    pub footprint: u64,
    /// Distinct pages kept.
    pub kept_footprint: u64,
    /// The fraction of distinct pages kept.
    pub rate: f64,
    /// Page reads of the trace.
    pub accesses: u64,
    /// Page reads kept.
    pub kept_accesses: u64,
}

/// A fixed 64-bit mix (splitmix64's finaliser): the spatial sample keeps a
/// page iff its hash falls below the rate, the same pages in every run.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The pages of a trace, scaled to the limit: pages are spatially sampled
/// (each distinct page kept or dropped with all its reads) so that at most
/// `limits` times the limit's pages remain, renumbered
/// densely per file in offset order, files numbered in order of first use;
/// at most `max_accesses` reads are kept. Writes are replayed as reads.
pub fn trace_pages(
    path: &Path,
    limit_pages: u64,
    limits: u64,
    max_accesses: usize,
) -> Result<(Vec<(u32, u64)>, TraceScale), ExperimentError> {
    let format = klab_trace::resolve_format(path, None)?;
    let reqs = klab_trace::read(path, Some(format))?;
    let block = format.default_block_size();
    let mut distinct = BTreeSet::new();
    let mut accesses = 0u64;
    for r in &reqs {
        for p in pages_of(r, block) {
            distinct.insert((r.file, p));
            accesses += 1;
        }
    }
    let footprint = distinct.len() as u64;
    let cap = limits * limit_pages;
    let rate = if footprint > cap {
        cap as f64 / footprint as f64
    } else {
        1.0
    };
    let threshold = (rate * u64::MAX as f64) as u64;
    let keep = |f: u32, p: u64| rate >= 1.0 || mix((u64::from(f) << 48) ^ p) <= threshold;
    // Dense numbering: per file, kept pages in offset order.
    let mut index: BTreeMap<(u32, u64), u64> = BTreeMap::new();
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    for &(f, p) in distinct.iter().filter(|(f, p)| keep(*f, *p)) {
        let n = next.entry(f).or_insert(0);
        index.insert((f, p), *n);
        *n += 1;
    }
    let mut file_ids: BTreeMap<u32, u32> = BTreeMap::new();
    let mut out = Vec::new();
    'reqs: for r in &reqs {
        for p in pages_of(r, block) {
            if let Some(&i) = index.get(&(r.file, p)) {
                if out.len() >= max_accesses {
                    break 'reqs;
                }
                let n = file_ids.len() as u32;
                let f = *file_ids.entry(r.file).or_insert(n);
                out.push((f, i));
            }
        }
    }
    let scale = TraceScale {
        footprint,
        kept_footprint: index.len() as u64,
        rate,
        accesses,
        kept_accesses: out.len() as u64,
    };
    Ok((out, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_is_renumbered_densely_and_sampled_down_to_a_multiple_of_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.txt");
        std::fs::write(&path, "100\n5\n100\n7\n").unwrap();
        let (pages, s) = trace_pages(&path, 16, 4, 1000).unwrap();
        // Distinct pages 5, 7, 100 become 0, 1, 2 of file 0.
        assert_eq!(pages, [(0, 2), (0, 0), (0, 2), (0, 1)]);
        assert_eq!((s.footprint, s.kept_footprint, s.rate), (3, 3, 1.0));
        assert_eq!(trace_pages(&path, 16, 4, 2).unwrap().0, [(0, 2), (0, 0)]);

        // 400 distinct pages, each read twice, against a 10-page limit:
        // sampled to about 40 pages at 4 limits, 80 at 8, every read of a
        // kept page kept.
        let text: String = (0..400).chain(0..400).map(|i| format!("{i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let (pages, s) = trace_pages(&path, 10, 4, 1_000_000).unwrap();
        assert_eq!(s.footprint, 400);
        assert_eq!(s.rate, 0.1);
        assert!(
            (20..=60).contains(&s.kept_footprint),
            "{}",
            s.kept_footprint
        );
        assert_eq!(pages.len() as u64, 2 * s.kept_footprint);
        let distinct: BTreeSet<_> = pages.iter().copied().collect();
        assert_eq!(distinct.len() as u64, s.kept_footprint);
        assert_eq!(distinct.last(), Some(&(0, s.kept_footprint - 1)));
        assert_eq!(
            trace_pages(&path, 10, 4, 1_000_000).unwrap().0,
            pages,
            "the same pages every time"
        );
        let (_, s8) = trace_pages(&path, 10, 8, 1_000_000).unwrap();
        assert_eq!(s8.rate, 0.2);
        assert!(
            s8.kept_footprint > s.kept_footprint,
            "{} pages at 8 limits, {} at 4",
            s8.kept_footprint,
            s.kept_footprint
        );

        let bad = dir.path().join("t.unknown");
        std::fs::write(&bad, "1\n").unwrap();
        assert!(trace_pages(&bad, 10, 4, 10).is_err());
    }
}
