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
//! # Verdict
//!
//! The claim holds when the single-node and minimal-height rules hold
//! exactly, dense keys cost at most [`MAX_DENSE_SLOT_RATIO`] times the
//! node's bytes per slot and clustered keys less than
//! [`MAX_CLUSTERED_SHARE`] of random ones per entry, and the tagged walk
//! reads exactly the nodes on tagged paths and fewer slots than a full scan
//! at every fraction up to [`MAX_TAGGED_FRACTION`].
//!
//! # When the claim fails
//!
//! When the keys are uniformly random over 64 bits rather than clustered
//! (a tree indexed by hashes, not file offsets): each key then gets a
//! private chain of nodes, thousands of bytes an entry. The built-in run
//! measures that set beside the others; the verdict takes clustered keys as
//! the page's "sparse" and the storage check fails when clustered keys cost
//! as much as random ones (`judge` is tested on such data).

use std::collections::BTreeSet;

use klab_radix_tree::keysets::KeySet;
use klab_radix_tree::{RadixTree, Tag, WalkCost};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
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

/// A tree holding one largest key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeightRow {
    /// The key.
    pub key: u64,
    /// The tree's height holding it alone.
    pub height: u32,
    /// Nodes holding it alone.
    pub nodes_alone: usize,
    /// Nodes holding it and key 0.
    pub nodes_with_zero: usize,
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

/// A tree of one key set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StorageRow {
    /// The key set.
    pub set: KeySet,
    /// Entries.
    pub n: usize,
    /// Height.
    pub height: u32,
    /// Nodes.
    pub nodes: usize,
    /// Bytes of its nodes.
    pub bytes: usize,
    /// Slots in use over slots allocated.
    pub occupancy: f64,
}

/// Finding the tagged pages of a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TagRow {
    /// Pages of the file.
    pub n: usize,
    /// Fraction tagged.
    pub fraction: f64,
    /// Pages tagged.
    pub tagged: usize,
    /// What the batched tagged walk read.
    pub tagged_walk: WalkCost,
    /// Nodes on the paths to tagged pages.
    pub path_nodes: u64,
    /// Nodes one unbatched tagged walk read.
    pub unbatched_nodes: u64,
    /// What a scan of every page read.
    pub full_scan: WalkCost,
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

/// Dense keys may cost at most this many times a node's bytes per slot,
/// per entry.
pub const MAX_DENSE_SLOT_RATIO: f64 = 1.1;
/// Clustered keys must cost less than this share of uniformly random
/// keys' bytes per entry.
pub const MAX_CLUSTERED_SHARE: f64 = 0.1;
/// The tagged walk must read fewer slots than a full scan at every tagged
/// fraction up to this one.
pub const MAX_TAGGED_FRACTION: f64 = 0.1;

/// What a run is measured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Entries of each key set.
    pub sizes: Vec<usize>,
    /// The most entries of uniformly random keys (their trees are large).
    pub sparse_max: usize,
    /// Pages of the file whose pages are tagged.
    pub tag_file_pages: usize,
    /// Fractions of its pages tagged.
    pub tag_fractions: Vec<f64>,
}

impl Config {
    /// The built-in sizes (smaller with `--quick`).
    pub fn page(quick: bool) -> Self {
        Config {
            sizes: if quick {
                vec![1_000, 10_000]
            } else {
                vec![1_000, 10_000, 100_000, 1_000_000]
            },
            sparse_max: if quick { 1_000 } else { 10_000 },
            tag_file_pages: if quick { 1 << 14 } else { 1 << 20 },
            tag_fractions: vec![0.0001, 0.001, 0.01, 0.1, 0.5, 1.0],
        }
    }
}

/// What the run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Data {
    /// The configuration.
    pub config: Config,
    /// Height and nodes for each largest key.
    pub heights: Vec<HeightRow>,
    /// Storage of each key set at each size.
    pub storage: Vec<StorageRow>,
    /// Tagged pages of the file at each fraction.
    pub tags: Vec<TagRow>,
    /// 1% tagged pages of files of each size.
    pub tags_by_size: Vec<TagRow>,
}

impl Data {
    fn height(&self, key: u64) -> Option<&HeightRow> {
        self.heights.iter().find(|h| h.key == key)
    }

    /// Bytes per entry of `set` at its largest size.
    fn per_entry(&self, set: KeySet) -> f64 {
        self.storage
            .iter()
            .filter(|s| s.set == set)
            .map(|s| s.bytes as f64 / s.n as f64)
            .next_back()
            .unwrap_or(f64::NAN)
    }
}

impl RadixTreeExperiment {
    /// Measures with `cfg` (the built-in run uses [`Config::page`]).
    ///
    /// # Errors
    /// A run stopped to hibernate.
    pub fn measure_with(&self, ctx: &Ctx<'_>, cfg: Config) -> Result<Data, ExperimentError> {
        ctx.progress.begin("radix-tree", 3);
        let heights = ctx.once(
            "radix-tree: height against the largest key",
            klab_lab::hibernate::TREE_TICK_NS,
            |span| {
                let hs = heights();
                // Three inserts a key (alone, and beside 0).
                span.busy(3 * hs.len() as u64);
                Ok(hs)
            },
        )?;
        ctx.progress.advance(1);
        let mut storage = Vec::new();
        for set in KeySet::ALL {
            for &n in &cfg.sizes {
                if set == KeySet::Sparse && n > cfg.sparse_max {
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
        ctx.progress.advance(1);
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
        let mut tags = Vec::new();
        let tag_n = cfg.tag_file_pages;
        for &f in cfg
            .tag_fractions
            .iter()
            .filter(|&&f| (tag_n as f64 * f) >= 1.0)
        {
            tags.push(tag_job(tag_n, f)?);
        }
        let mut tags_by_size = Vec::new();
        for &n in &cfg.sizes {
            tags_by_size.push(tag_job(n, 0.01)?);
        }
        ctx.progress.advance(1);
        ctx.progress.end();
        Ok(Data {
            config: cfg,
            heights,
            storage,
            tags,
            tags_by_size,
        })
    }
}

/// Bytes of a node per slot.
fn slot_bytes() -> f64 {
    Tree::node_size_bytes() as f64 / Tree::MAP_SIZE as f64
}

impl Experiment for RadixTreeExperiment {
    type Data = Data;

    const ID: Identity = Identity {
        name: "radix-tree",
        seed_page: "004_9e86ca0f77558f15.txt",
        claim: "a radix tree stores integer-keyed items in 64-slot nodes efficiently and finds \
         tagged (dirty) entries without scanning the rest",
        inputs: &[],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        self.measure_with(ctx, Config::page(ctx.quick))
    }

    fn judge(&self, d: &Data) -> Verdict {
        let h = |k: u64| {
            d.height(k).map_or((u32::MAX, usize::MAX, usize::MAX), |h| {
                (h.height, h.nodes_alone, h.nodes_with_zero)
            })
        };
        let single_node = h(63).0 == 1 && h(63).1 == 1 && h(64).0 == 2;
        let zero_free = h(0).1 == 0;
        let minimal = d
            .heights
            .iter()
            .all(|h| h.height == Tree::height_for(h.key));
        let three_levels = h((1 << 18) - 1).0 == 3 && h(1 << 18).0 == 4;
        let (dense_b, clustered_b, sparse_b) = (
            d.per_entry(KeySet::Dense),
            d.per_entry(KeySet::Clustered),
            d.per_entry(KeySet::Sparse),
        );
        let slot_bytes = slot_bytes();
        let storage_ok = dense_b <= MAX_DENSE_SLOT_RATIO * slot_bytes
            && clustered_b < MAX_CLUSTERED_SHARE * sparse_b;
        let all_tags = || d.tags.iter().chain(&d.tags_by_size);
        let exact_paths = all_tags().all(|r| r.unbatched_nodes == r.path_nodes);
        let fewer = d
            .tags
            .iter()
            .filter(|r| r.fraction <= MAX_TAGGED_FRACTION)
            .all(|r| r.tagged_walk.slots < r.full_scan.slots);
        let tag_text = d.tags.iter().find(|r| r.fraction == 0.01).map_or(String::new(), |row| {
            format!(
                "finding 1% tagged pages among {} reads {} nodes and {} slots against {} and {} for a full scan",
                row.n, row.tagged_walk.nodes, row.tagged_walk.slots, row.full_scan.nodes, row.full_scan.slots
            )
        });
        let densest = d.tags.last().map_or(String::new(), |r| {
            format!(
                " With {}% of pages tagged ({} of {}) the tagged walk reads {} nodes against {} for a full scan, and {} slots for the {} tagged pages.",
                r.fraction * 100.0,
                r.tagged,
                r.n,
                r.tagged_walk.nodes,
                r.full_scan.nodes,
                r.tagged_walk.slots,
                r.tagged
            )
        });
        Verdict {
            holds: Some(
                single_node
                    && zero_free
                    && minimal
                    && three_levels
                    && storage_ok
                    && exact_paths
                    && fewer,
            ),
            measured: format!(
                "largest key 63: height {}, {} node; 64: height {}; 2^18-1: height {}; u64::MAX with key 0: {} nodes. \
                 Bytes per entry at the largest sizes: dense {dense_b:.1}, clustered {clustered_b:.1}, \
                 sparse random {sparse_b:.0} (node {} B, {slot_bytes:.1} B a slot). {tag_text}; \
                 the tagged walk reads exactly the nodes on tagged paths: {exact_paths}.",
                h(63).0,
                h(63).1,
                h(64).0,
                h((1 << 18) - 1).0,
                h(u64::MAX).2,
                Tree::node_size_bytes(),
            ),
            note: format!(
                "Counts, not timings: a lookup reads one node a level (the height). Uniformly \
                 random 64-bit keys cost {sparse_b:.0} bytes per entry against {clustered_b:.1} \
                 for clustered keys like a page cache's file offsets, so 'efficient storage for \
                 sparse trees' is judged on clustered sparseness. Pages are tagged at random, \
                 which spreads them over many leaves.{densest}"
            ),
        }
    }

    fn report(&self, d: &Data, _verdict: &Verdict, r: &mut Report) {
        let c = &d.config;
        r.config("map_shift", Tree::MAP_SHIFT)
            .config("node_bytes", Tree::node_size_bytes())
            .config("sizes", format!("{:?}", c.sizes))
            .config("sparse_max", c.sparse_max)
            .config("tag_file_pages", c.tag_file_pages)
            .config("tag_fractions", format!("{:?}", c.tag_fractions))
            .config("batch", PAGEVEC_SIZE)
            .config("threshold.max_dense_slot_ratio", MAX_DENSE_SLOT_RATIO)
            .config("threshold.max_clustered_share", MAX_CLUSTERED_SHARE)
            .config("threshold.max_tagged_fraction", MAX_TAGGED_FRACTION);
        height_report(d, r);
        storage_report(d, r);
        tag_report(d, r);
    }
}

/// Height and nodes against the largest key: table 1, series 1.
fn height_report(d: &Data, r: &mut Report) {
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
    for h in &d.heights {
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
    let plotted: Vec<&HeightRow> = d.heights.iter().filter(|h| h.key > 0).collect();
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
    r.table(t1).series(s1);
}

/// Storage by key set: table 2, series 2.
fn storage_report(d: &Data, r: &mut Report) {
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
    for s in &d.storage {
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
            d.storage
                .iter()
                .filter(|s| s.set == set)
                .map(|s| [s.n as f64, s.bytes as f64 / s.n as f64])
                .collect(),
        );
    }
    r.table(t2).series(s2);
}

/// Finding tagged pages: table 3, series 3 and 4.
fn tag_report(d: &Data, r: &mut Report) {
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
    for row in d.tags.iter().chain(&d.tags_by_size) {
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
        &format!(
            "Reads to find tagged pages among {}, against the tagged fraction",
            d.config.tag_file_pages
        ),
        Axis::log("tagged fraction", ""),
        Axis::log("reads", ""),
    );
    type Pick = fn(&TagRow) -> u64;
    let lines: [(&str, Pick); 4] = [
        ("nodes, gang_lookup_tag", |r| r.tagged_walk.nodes),
        ("slots, gang_lookup_tag", |r| r.tagged_walk.slots),
        ("nodes, full scan", |r| r.full_scan.nodes),
        ("slots, full scan", |r| r.full_scan.slots),
    ];
    for (name, f) in lines {
        s3.line(
            name,
            d.tags.iter().map(|r| [r.fraction, f(r) as f64]).collect(),
        );
    }
    let mut s4 = Series::new(
        "Slots read to find 1% tagged pages, against file size",
        Axis::log("pages", ""),
        Axis::log("slots read", ""),
    );
    s4.line(
        "gang_lookup_tag",
        d.tags_by_size
            .iter()
            .map(|r| [r.n as f64, r.tagged_walk.slots as f64])
            .collect(),
    );
    s4.line(
        "full scan",
        d.tags_by_size
            .iter()
            .map(|r| [r.n as f64, r.full_scan.slots as f64])
            .collect(),
    );
    r.table(t3).series(s3).series(s4);
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::Run;
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

    #[test]
    fn the_verdict_fails_on_costly_storage_a_wandering_walk_or_a_broken_rule() {
        let inputs = Inputs::default();
        let d = RadixTreeExperiment
            .measure_with(&Ctx::new(7, true, &inputs), Config::page(true))
            .unwrap();
        assert_eq!(RadixTreeExperiment.judge(&d).holds, Some(true));
        // Clustered keys as costly as random ones.
        let mut costly = d.clone();
        for s in costly
            .storage
            .iter_mut()
            .filter(|s| s.set == KeySet::Clustered)
        {
            s.bytes = s.n * 9000;
        }
        assert_eq!(RadixTreeExperiment.judge(&costly).holds, Some(false));
        // A tagged walk that strays off the tagged paths.
        let mut stray = d.clone();
        stray.tags[0].unbatched_nodes += 1;
        assert_eq!(RadixTreeExperiment.judge(&stray).holds, Some(false));
        // A tree that needs two nodes for key 63.
        let mut tall = d;
        tall.heights
            .iter_mut()
            .find(|h| h.key == 63)
            .unwrap()
            .nodes_alone = 2;
        let v = RadixTreeExperiment.judge(&tall);
        assert_eq!(v.holds, Some(false));
        assert!(
            v.measured.starts_with("largest key 63: height 1, 2 node"),
            "{}",
            v.measured
        );
    }
}
