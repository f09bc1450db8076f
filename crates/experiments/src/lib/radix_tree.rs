//! Experiment `radix-tree`: what seed 004 says about the radix tree's
//! storage and lookups, measured by counting (deterministic, no clocks).
//!
//! "Trees I: Radix trees" (LWN, 2006) claims that a Linux radix tree
//! "is reasonably efficient in terms of storage, and is quite quick on
//! lookups"; that "if the highest key value is less than 64, the entire tree
//! can be represented with a single node"; that "nodes which have no children
//! are not present in the tree, so a radix tree can provide efficient storage
//! for sparse trees"; and that tags let the memory management code "quickly
//! find pages which are dirty or under writeback". Three measurements:
//!
//! 1. **Height and nodes against the largest key.** A tree holding one key
//!    `K`, and one holding `0` and `K` (the old root kept in slot 0 below
//!    new levels): height, nodes and bytes, for `K` from 1 to `u64::MAX`.
//! 2. **Dense against sparse key sets.** For `N` keys of each set of
//!    `klab_radix_tree::keysets` (dense `0..N`, clustered runs like a page
//!    cache, uniformly random): nodes, bytes and nodes per entry, slot
//!    occupancy, and levels per lookup (the height: one node read a level).
//! 3. **Finding tagged (dirty) pages.** A file of `N` pages, a fraction `f`
//!    of them tagged at random: nodes and slots read by `gang_lookup_tag`
//!    collecting every tagged page (in batches of 14, the kernel's
//!    `PAGEVEC_SIZE`, as writeback does), against a scan of every page.
//!    The tagged walk is also checked to read exactly the nodes on paths to
//!    tagged pages (plus the re-descents of batching).
//!
//! The verdict holds when the single-node and minimal-height rules hold
//! exactly, dense keys cost at most 1.1x the node's bytes per slot and
//! clustered keys less than a tenth of random ones per entry, and the
//! tagged walk reads exactly the nodes on tagged paths and fewer slots than
//! a full scan at every fraction up to 10%.

use std::collections::BTreeSet;

use klab_radix_tree::keysets::KeySet;
use klab_radix_tree::{RadixTree, Tag, WalkCost};
use rand::Rng as _;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The `radix-tree` experiment.
pub struct RadixTreeExperiment;

type Tree = RadixTree<u64>;

/// The kernel's `PAGEVEC_SIZE` (2.6.x): pages per batch in writeback.
const PAGEVEC_SIZE: usize = 14;

fn tree_of(keys: impl IntoIterator<Item = u64>) -> Tree {
    let mut t = Tree::new();
    for k in keys {
        // Keys of one set are distinct and no node limit is set: an insert
        // cannot fail.
        t.insert(k, k).expect("distinct key, no node limit");
    }
    t
}

/// Slots in use over slots allocated: entries fill leaf slots, and every
/// node but the top fills one slot of its parent.
fn occupancy(t: &Tree) -> f64 {
    if t.nodes() == 0 {
        return 0.0;
    }
    (t.len() + t.nodes() - 1) as f64 / (t.nodes() * Tree::MAP_SIZE) as f64
}

/// Nodes on the paths from the root to `keys` in a tree of `height`: the
/// distinct prefixes `key >> (6 * level)` for levels 1..=height.
fn path_nodes(keys: &[u64], height: u32) -> u64 {
    let mut nodes = BTreeSet::new();
    for &k in keys {
        for level in 1..=height {
            let shift = Tree::MAP_SHIFT * level;
            let prefix = if shift >= 64 { 0 } else { k >> shift };
            nodes.insert((level, prefix));
        }
    }
    nodes.len() as u64
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HeightRow {
    key: u64,
    height: u32,
    nodes_alone: usize,
    nodes_with_zero: usize,
}

fn heights() -> Vec<HeightRow> {
    let mut keys = vec![0u64, 1, 63, 64, 4095, 4096, (1 << 18) - 1, 1 << 18];
    keys.extend((4..=10).map(|l| 1u64 << (6 * l)));
    keys.push(u64::MAX);
    keys.into_iter()
        .map(|key| {
            let alone = tree_of([key]);
            let with_zero = tree_of(if key == 0 { vec![0] } else { vec![0, key] });
            alone.assert_invariants();
            with_zero.assert_invariants();
            HeightRow {
                key,
                height: alone.height(),
                nodes_alone: alone.nodes(),
                nodes_with_zero: with_zero.nodes(),
            }
        })
        .collect()
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StorageRow {
    set: KeySet,
    n: usize,
    height: u32,
    nodes: usize,
    bytes: usize,
    occupancy: f64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TagRow {
    n: usize,
    fraction: f64,
    tagged: usize,
    tagged_walk: WalkCost,
    path_nodes: u64,
    unbatched_nodes: u64,
    full_scan: WalkCost,
}

/// Tags `fraction` of a dense file of `n` pages at random and counts both
/// walks.
fn tag_cost(n: usize, fraction: f64, rng: &mut klab_model::rng::Rng) -> TagRow {
    let mut t = tree_of(0..n as u64);
    let count = ((n as f64 * fraction).round() as usize).clamp(1, n);
    // A partial Fisher-Yates shuffle picks `count` distinct pages.
    let mut pages: Vec<u64> = (0..n as u64).collect();
    for i in 0..count {
        let j = rng.random_range(i..n);
        pages.swap(i, j);
    }
    let mut dirty = pages[..count].to_vec();
    dirty.sort_unstable();
    for &k in &dirty {
        t.tag_set(k, Tag::T0).expect("tagging a present page");
    }
    // Writeback's loop: batches of PAGEVEC_SIZE from the index after the
    // last one returned, until a call returns nothing.
    let mut tagged_walk = WalkCost::default();
    let mut found = Vec::new();
    let mut out = Vec::with_capacity(PAGEVEC_SIZE);
    let mut next = Some(0u64);
    while let Some(first) = next {
        out.clear();
        if t.gang_lookup_tag_counted(first, PAGEVEC_SIZE, Tag::T0, &mut out, &mut tagged_walk) == 0
        {
            break;
        }
        found.extend(out.iter().map(|r| r.0));
        next = out.last().and_then(|r| r.0.checked_add(1));
    }
    assert_eq!(
        found, dirty,
        "gang_lookup_tag missed or invented a tagged page"
    );
    let mut unbatched = WalkCost::default();
    out.clear();
    t.gang_lookup_tag_counted(0, usize::MAX, Tag::T0, &mut out, &mut unbatched);
    // The scan of everything: every entry read and checked for the tag.
    let mut full_scan = WalkCost::default();
    out.clear();
    t.gang_lookup_counted(0, usize::MAX, &mut out, &mut full_scan);
    TagRow {
        n,
        fraction,
        tagged: count,
        tagged_walk,
        path_nodes: path_nodes(&dirty, t.height()),
        unbatched_nodes: unbatched.nodes,
        full_scan,
    }
}

impl RadixTreeExperiment {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "radix-tree",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "a radix tree stores integer-keyed items in 64-slot nodes efficiently and finds \
         tagged (dirty) entries without scanning the rest",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for RadixTreeExperiment {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let sizes: Vec<usize> =
            ctx.size(vec![1_000, 10_000, 100_000, 1_000_000], vec![1_000, 10_000]);
        let sparse_max: usize = ctx.size(10_000, 1_000);
        let tag_n: usize = ctx.size(1 << 20, 1 << 14);
        let fractions = [0.0001, 0.001, 0.01, 0.1, 0.5, 1.0];
        r.config("map_shift", Tree::MAP_SHIFT)
            .config("node_bytes", Tree::node_size_bytes())
            .config("sizes", format!("{sizes:?}"))
            .config("sparse_max", sparse_max)
            .config("tag_file_pages", tag_n)
            .config("tag_fractions", format!("{fractions:?}"))
            .config("batch", PAGEVEC_SIZE);
        ctx.progress.begin("radix-tree", 3);

        // 1. Height and nodes against the largest key.
        let hs = ctx.once(
            "radix-tree: height against the largest key",
            klab_lab::hibernate::TREE_TICK_NS,
            |span| {
                let hs = heights();
                // Three inserts a key (alone, and beside 0).
                span.busy(3 * hs.len() as u64);
                Ok(hs)
            },
        )?;
        let mut t1 = Table::new(
            "Height and nodes against the largest key",
            &[
                "largest key",
                "height",
                "nodes (key alone)",
                "nodes (keys 0 and K)",
                "bytes (key alone)",
            ],
        );
        for h in &hs {
            t1.row(cells![
                format!("{:#x}", h.key),
                h.height,
                h.nodes_alone,
                h.nodes_with_zero,
                h.nodes_alone * Tree::node_size_bytes()
            ]);
        }
        let mut s1 = Series::new(
            "Height and nodes against the largest key",
            Axis::log("largest key", ""),
            Axis::linear("count", ""),
        );
        let plotted: Vec<&HeightRow> = hs.iter().filter(|h| h.key > 0).collect();
        s1.line(
            "height",
            plotted
                .iter()
                .map(|h| [h.key as f64, f64::from(h.height)])
                .collect(),
        );
        s1.line(
            "nodes, keys 0 and K",
            plotted
                .iter()
                .map(|h| [h.key as f64, h.nodes_with_zero as f64])
                .collect(),
        );
        let find = |k: u64| hs.iter().find(|h| h.key == k).expect("key in the list");
        let single_node = find(63).height == 1 && find(63).nodes_alone == 1 && find(64).height == 2;
        let zero_free = find(0).nodes_alone == 0;
        let minimal = hs.iter().all(|h| h.height == Tree::height_for(h.key));
        let three_levels = find((1 << 18) - 1).height == 3 && find(1 << 18).height == 4;
        ctx.progress.advance(1);

        // 2. Dense against sparse key sets.
        let mut storage = Vec::new();
        for set in KeySet::ALL {
            for &n in &sizes {
                if set == KeySet::Sparse && n > sparse_max {
                    continue;
                }
                storage.push(ctx.once(
                    "radix-tree: storage of one key set",
                    klab_lab::hibernate::TREE_TICK_NS,
                    |span| {
                        let t = tree_of(set.keys(n, ctx.seed));
                        t.assert_invariants();
                        span.busy(n as u64);
                        Ok(StorageRow {
                            set,
                            n,
                            height: t.height(),
                            nodes: t.nodes(),
                            bytes: t.memory().bytes,
                            occupancy: occupancy(&t),
                        })
                    },
                )?);
            }
        }
        let mut t2 = Table::new(
            "Storage by key set",
            &[
                "keys",
                "n",
                "height (nodes read per lookup)",
                "nodes",
                "nodes per entry",
                "bytes per entry",
                "slot occupancy",
            ],
        );
        for s in &storage {
            t2.row(cells![
                s.set.name(),
                s.n,
                s.height,
                s.nodes,
                s.nodes as f64 / s.n as f64,
                s.bytes as f64 / s.n as f64,
                s.occupancy
            ]);
        }
        let mut s2 = Series::new(
            "Bytes per entry by key set",
            Axis::log("entries", ""),
            Axis::log("bytes per entry", "B"),
        );
        for set in KeySet::ALL {
            s2.line(
                set.name(),
                storage
                    .iter()
                    .filter(|s| s.set == set)
                    .map(|s| [s.n as f64, s.bytes as f64 / s.n as f64])
                    .collect(),
            );
        }
        let slot_bytes = Tree::node_size_bytes() as f64 / Tree::MAP_SIZE as f64;
        let per_entry = |set: KeySet| {
            storage
                .iter()
                .filter(|s| s.set == set)
                .map(|s| s.bytes as f64 / s.n as f64)
                .next_back()
                .unwrap_or(f64::NAN)
        };
        let (dense_b, clustered_b, sparse_b) = (
            per_entry(KeySet::Dense),
            per_entry(KeySet::Clustered),
            per_entry(KeySet::Sparse),
        );
        let storage_ok = dense_b <= 1.1 * slot_bytes && clustered_b < sparse_b / 10.0;
        ctx.progress.advance(1);

        // 3. Finding tagged pages.
        let mut rng = ctx.rng(3);
        // Each measurement a job that takes the generator and hands it on.
        let mut tag_job = |n: usize, f: f64| -> Result<TagRow, ExperimentError> {
            let mut r = rng.clone();
            let (row, left) = ctx.once(
                "radix-tree: finding tagged pages",
                klab_lab::hibernate::TREE_TICK_NS,
                |span| {
                    let row = tag_cost(n, f, &mut r);
                    span.busy(n as u64 + row.tagged_walk.slots + row.full_scan.slots);
                    Ok((row, r))
                },
            )?;
            rng = left;
            Ok(row)
        };
        let mut tag_rows: Vec<TagRow> = Vec::new();
        for &f in fractions.iter().filter(|&&f| (tag_n as f64 * f) >= 1.0) {
            tag_rows.push(tag_job(tag_n, f)?);
        }
        let mut by_n: Vec<TagRow> = Vec::new();
        for &n in &sizes {
            by_n.push(tag_job(n, 0.01)?);
        }
        let mut t3 = Table::new(
            "Finding tagged pages: gang_lookup_tag in batches of 14 against reading every page",
            &[
                "pages",
                "tagged fraction",
                "tagged",
                "nodes read (tagged)",
                "slots read (tagged)",
                "nodes on tagged paths",
                "nodes read (one unbatched call)",
                "nodes read (full scan)",
                "slots read (full scan)",
                "slots ratio (tagged / full)",
            ],
        );
        for row in tag_rows.iter().chain(by_n.iter()) {
            t3.row(cells![
                row.n,
                row.fraction,
                row.tagged,
                row.tagged_walk.nodes,
                row.tagged_walk.slots,
                row.path_nodes,
                row.unbatched_nodes,
                row.full_scan.nodes,
                row.full_scan.slots,
                row.tagged_walk.slots as f64 / row.full_scan.slots as f64
            ]);
        }
        let mut s3 = Series::new(
            &format!("Reads to find tagged pages among {tag_n}, against the tagged fraction"),
            Axis::log("tagged fraction", ""),
            Axis::log("reads", ""),
        );
        s3.line(
            "nodes, gang_lookup_tag",
            tag_rows
                .iter()
                .map(|r| [r.fraction, r.tagged_walk.nodes as f64])
                .collect(),
        );
        s3.line(
            "slots, gang_lookup_tag",
            tag_rows
                .iter()
                .map(|r| [r.fraction, r.tagged_walk.slots as f64])
                .collect(),
        );
        s3.line(
            "nodes, full scan",
            tag_rows
                .iter()
                .map(|r| [r.fraction, r.full_scan.nodes as f64])
                .collect(),
        );
        s3.line(
            "slots, full scan",
            tag_rows
                .iter()
                .map(|r| [r.fraction, r.full_scan.slots as f64])
                .collect(),
        );
        let mut s4 = Series::new(
            "Slots read to find 1% tagged pages, against file size",
            Axis::log("pages", ""),
            Axis::log("slots read", ""),
        );
        s4.line(
            "gang_lookup_tag",
            by_n.iter()
                .map(|r| [r.n as f64, r.tagged_walk.slots as f64])
                .collect(),
        );
        s4.line(
            "full scan",
            by_n.iter()
                .map(|r| [r.n as f64, r.full_scan.slots as f64])
                .collect(),
        );
        let exact_paths = tag_rows
            .iter()
            .chain(by_n.iter())
            .all(|r| r.unbatched_nodes == r.path_nodes);
        let fewer = tag_rows
            .iter()
            .filter(|r| r.fraction <= 0.1)
            .all(|r| r.tagged_walk.slots < r.full_scan.slots);
        let at_1pc = tag_rows.iter().find(|r| r.fraction == 0.01);
        by_n.clear();
        ctx.progress.advance(1);
        ctx.progress.end();

        r.table(t1)
            .table(t2)
            .table(t3)
            .series(s1)
            .series(s2)
            .series(s3)
            .series(s4);
        let holds = single_node
            && zero_free
            && minimal
            && three_levels
            && storage_ok
            && exact_paths
            && fewer;
        let tag_text = at_1pc.map_or(String::new(), |row| {
            format!(
                "finding 1% tagged pages among {} reads {} nodes and {} slots against {} and {} for a full scan",
                row.n, row.tagged_walk.nodes, row.tagged_walk.slots, row.full_scan.nodes, row.full_scan.slots
            )
        });
        r.verdict = Verdict {
            holds: Some(holds),
            measured: format!(
                "largest key 63: height {}, {} node; 64: height {}; 2^18-1: height {}; u64::MAX with key 0: {} nodes. \
                 Bytes per entry at the largest sizes: dense {dense_b:.1}, clustered {clustered_b:.1}, \
                 sparse random {sparse_b:.0} (node {} B, {slot_bytes:.1} B a slot). {tag_text}; \
                 the tagged walk reads exactly the nodes on tagged paths: {exact_paths}.",
                find(63).height,
                find(63).nodes_alone,
                find(64).height,
                find((1 << 18) - 1).height,
                find(u64::MAX).nodes_with_zero,
                Tree::node_size_bytes(),
            ),
            note: "Storage is efficient for dense and clustered keys, as for a page cache's file \
                   offsets; uniformly random 64-bit keys give each key a private chain of nodes \
                   (thousands of bytes per entry), so 'efficient storage for sparse trees' holds \
                   for clustered sparseness, not random. Dirty pages tagged at random spread over \
                   many leaves: the tagged walk reads every tagged page's path, so its node \
                   count approaches a full scan's at high fractions while its slot count stays \
                   equal to the tagged pages."
                .to_owned(),
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

    #[test]
    fn quick_run_is_deterministic_and_holds() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(7, true, &inputs);
        let a = RadixTreeExperiment.run(&ctx).unwrap();
        let b = RadixTreeExperiment.run(&ctx).unwrap();
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
        assert_eq!(a.verdict.holds, Some(true), "{}", a.verdict.measured);
        assert_eq!(a.series.len(), 4);
    }

    #[test]
    fn path_nodes_counts_distinct_prefixes() {
        // Height 2: keys 1 and 2 share the leaf (prefix 0) and the root;
        // 4096 would not fit, so use 64: its own leaf.
        assert_eq!(path_nodes(&[1, 2], 2), 2);
        assert_eq!(path_nodes(&[1, 64], 2), 3);
    }

    #[test]
    fn height_table_pins_the_pages_rules() {
        let hs = heights();
        let get = |k: u64| hs.iter().find(|h| h.key == k).unwrap();
        assert_eq!((get(0).height, get(0).nodes_alone), (0, 0));
        assert_eq!((get(63).height, get(63).nodes_alone), (1, 1));
        assert_eq!(
            (get(64).height, get(4095).height, get(4096).height),
            (2, 2, 3)
        );
        assert_eq!(
            (get(u64::MAX).height, get(u64::MAX).nodes_with_zero),
            (11, 21)
        );
    }
}
