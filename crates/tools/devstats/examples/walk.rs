//! Walks a range and prints its totals, for profiling the walk alone
//! (`perf record`, `/usr/bin/time`) without building the klab binary:
//!
//! ```text
//! cargo run --release -p klab-devstats --example walk -- REPO [RANGE] [THREADS]
//! ```
//!
//! Prints `changesets +added -removed`, the totals `git log --numstat
//! --no-merges RANGE` sums to, and on stderr the wall time of the revision
//! walk (one thread) and of the analysis.

use klab_devstats::walk::{self, NoProgress, Selection};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let repo_path = args.next().ok_or("usage: walk REPO [RANGE] [THREADS]")?;
    let range = args.next();
    let threads: usize = match args.next() {
        Some(t) => t.parse()?,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let repo = walk::open(repo_path.as_ref())?;
    let sel = Selection {
        range,
        ..Selection::default()
    };
    let t0 = std::time::Instant::now();
    let ids = walk::commits(&repo, &sel)?;
    let t1 = std::time::Instant::now();
    let (records, _) = walk::analyse(&repo, &ids, threads, false, &NoProgress)?;
    eprintln!(
        "rev-walk {:.2?}, analysis {:.2?} on {threads} threads",
        t1 - t0,
        t1.elapsed()
    );
    let (added, removed) = records
        .iter()
        .fold((0, 0), |(a, r), c| (a + c.added, r + c.removed));
    println!("{} +{added} -{removed}", records.len());
    Ok(())
}
