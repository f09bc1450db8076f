//! `archmerge`: merge two architecture trees and prove each architecture
//! builds the same bytes (seed 000, "i386 and x86_64: back together?").
//!
//! The page: "it will be possible to build the exact same kernel image from
//! the source tree before and after the change"; identical files are kept
//! once, differing ones become `_32`/`_64` pairs, and "in many (if not
//! most) cases, there is a great deal of common code in the two files"
//! for "an army of code janitors". The experiment merges a generated pair
//! of trees (every case: identical, differing, one-sided, binary, symlink,
//! executable bit, an existing `x_32.c`, a file that is a directory in the
//! other tree, odd names, empty directories) or two real trees given with
//! `--repo PATH` (PATH/arch/i386 and PATH/arch/x86_64, or PATH/i386 and
//! PATH/x86_64), verifies the result from disk, and measures how much each
//! pair still has in common.
//!
//! The verdict: every file of each architecture reads back from the merged
//! tree with its old bytes and no stray file is left (verification re-reads
//! all three trees from disk and trusts nothing from the plan), and at
//! least [`HALF_ALIKE_MIN`] of the `_32`/`_64` text pairs are at least
//! half alike (`2·common / (lines_32 + lines_64)` of a Myers diff). The
//! generated trees are also compiled ([`build`]): each architecture's
//! build list with `gcc -m32` or `-m64` into one relocatable image, before
//! and after the merge, and the claim fails if an image changes. Where the
//! compiler cannot target both (no `gcc-multilib`), or for trees given with
//! `--repo`, the build is skipped and the report says why.
//!
//! # When the claim fails
//!
//! A merge that picks a `_32` file where x86_64 wanted its `_64` copy
//! ([`Mistake::ThirtyTwoForSixtyFour`]) leaves x86_64 a file with other
//! bytes; verification finds it, the x86_64 image compiled after the merge
//! differs from the one before, and the verdict is false. The test
//! `a_32_bit_file_picked_for_x86_64_fails_the_claim` runs it end to end.
//! Trees whose differing files have little in common (fewer than
//! [`HALF_ALIKE_MIN`] of the pairs half alike) fail the janitor half.

use std::path::{Path, PathBuf};

use klab_archmerge::apply::Verification;
use klab_archmerge::plan::{Counts, PairReport};
use klab_archmerge::synth::{self, SynthTrees};
use klab_archmerge::{Arch, Tree};
use serde::{Deserialize, Serialize};

use build::BuildOutcome;
use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity, InputKind};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The experiment.
pub struct Archmerge;

/// The claim's "many (if not most)": at least this share of the text
/// `_32`/`_64` pairs must be at least half alike.
pub const HALF_ALIKE_MIN: f64 = 0.5;

/// A pair counts as "half alike" at this similarity (percent).
pub const HALF_ALIKE_SIMILARITY: f64 = 50.0;

/// A deliberate mistake made in the merged tree before it is verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mistake {
    /// The first `_32`/`_64` text pair's `_32` copy is written where
    /// x86_64 reads its `_64` copy.
    ThirtyTwoForSixtyFour,
}

/// Where the trees came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Source {
    /// Generated trees.
    Synthetic {
        /// Identical files per directory.
        shared_per_dir: u64,
        /// Lines per generated file.
        lines_per_file: u64,
    },
    /// Trees under a path given with `--repo`.
    Repo {
        /// The path given.
        path: String,
        /// The 32-bit tree found under it.
        tree_32: String,
        /// The 64-bit tree.
        tree_64: String,
    },
}

/// A name clash the merge resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClashRow {
    /// The path in the input tree.
    pub path: String,
    /// Which tree's file moved ("32" or "64").
    pub arch: String,
    /// The name the rule asked for.
    pub wanted: String,
    /// The name used.
    pub used: String,
}

/// What a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Data {
    /// The trees.
    pub source: Source,
    /// Files in the i386 and x86_64 trees.
    pub files: [u64; 2],
    /// Files in the merged tree.
    pub merged: u64,
    /// The merge's cases.
    pub counts: Counts,
    /// What verification read back from disk.
    pub verification: Verification,
    /// Name clashes resolved.
    pub clashes: Vec<ClashRow>,
    /// The text `_32`/`_64` pairs, in the plan's order.
    pub pairs: Vec<PairReport>,
    /// The mistake made on purpose, if any.
    pub mistake: Option<Mistake>,
    /// Each architecture compiled before and after the merge.
    pub build: BuildOutcome,
}

impl Data {
    /// Text pairs at least half alike.
    fn half_alike(&self) -> usize {
        self.pairs
            .iter()
            .filter(|p| p.similarity() >= HALF_ALIKE_SIMILARITY)
            .count()
    }
}

fn find_pair(path: &Path) -> Option<(PathBuf, PathBuf)> {
    [
        ("arch/i386", "arch/x86_64"),
        ("i386", "x86_64"),
        ("32", "64"),
    ]
    .iter()
    .map(|(a, b)| (path.join(a), path.join(b)))
    .find(|(a, b)| a.is_dir() && b.is_dir())
}

fn host(e: klab_archmerge::ArchmergeError) -> ExperimentError {
    ExperimentError::Host(e.to_string())
}

impl Experiment for Archmerge {
    type Data = Data;

    const ID: Identity = Identity {
        name: "archmerge",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "Moving i386 and x86_64 into one tree (identical files once, differing files as _32/_64) builds exactly the \
         same bytes for each architecture, and leaves pairs with much code in common for janitors to merge",
        inputs: &[InputKind::Repo],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        measure_with(ctx, None)
    }

    fn judge(&self, d: &Data) -> Verdict {
        let v = &d.verification;
        let common: u64 = d.pairs.iter().map(|p| p.common).sum();
        let total: u64 = d.pairs.iter().map(|p| p.lines_32 + p.lines_64).sum();
        let half = d.half_alike();
        let built = v.arch.iter().map(|k| k.matched).sum::<u64>();
        let files = v.arch.iter().map(|k| k.files).sum::<u64>();
        let measured = format!(
            "{built} of {files} architecture files build from identical bytes after the merge ({} strays); \
             {} _32/_64 text pairs share {common} lines ({:.1}% of their {total} lines), {half} of them at least half alike",
            v.strays.len(),
            d.pairs.len(),
            if total == 0 {
                0.0
            } else {
                200.0 * common as f64 / total as f64
            }
        );
        let (compiled, built_text) = compiled(&d.build);
        let measured = format!("{measured}; {built_text}");
        let note = "Verification re-reads both input trees and the merged tree from disk and checks the manifests; \
                    it trusts nothing from the plan. Lines in common are the unchanged lines of a Myers diff. \
                    The images are each architecture's build list compiled and linked (gcc -r) before and after.";
        let holds = if !v.ok() || compiled == Some(false) {
            Some(false)
        } else if d.pairs.is_empty() {
            None
        } else {
            Some(half as f64 >= HALF_ALIKE_MIN * d.pairs.len() as f64)
        };
        Verdict {
            holds,
            measured,
            note: if holds.is_none() {
                format!("{note} No _32/_64 text pair: nothing to say of the janitors' work.")
            } else {
                note.into()
            },
        }
    }

    fn report(&self, d: &Data, _: &Verdict, r: &mut Report) {
        match &d.source {
            Source::Repo {
                path,
                tree_32,
                tree_64,
            } => {
                r.config("input", path.clone());
                r.host
                    .notes
                    .push(format!("real trees {tree_32} and {tree_64}"));
            }
            Source::Synthetic {
                shared_per_dir,
                lines_per_file,
            } => {
                r.config("shared_per_dir", *shared_per_dir)
                    .config("lines_per_file", *lines_per_file);
            }
        }
        r.config("threshold.half_alike_min", HALF_ALIKE_MIN)
            .config("threshold.half_alike_similarity", HALF_ALIKE_SIMILARITY);
        r.config("build.cflags", build::CFLAGS.join(" "));
        if let BuildOutcome::Skipped(why) = &d.build {
            r.host.notes.push(format!("not compiled: {why}"));
        }
        if let Some(m) = d.mistake {
            r.config("mistake", format!("{m:?}"));
        }
        r.host.real = true;
        r.host.deterministic = true;
        r.host
            .notes
            .push("real directories written, merged and read back; no timing".into());
        tables(d, r);
        series(d, r);
        r.table(images_table(&d.build));
    }
}

/// Whether every architecture's image is the same bytes after the merge
/// (`None` when not built), and a sentence saying so.
fn compiled(b: &BuildOutcome) -> (Option<bool>, String) {
    match b {
        BuildOutcome::Skipped(why) => (None, format!("not compiled: {why}")),
        BuildOutcome::Built(b) => {
            let per_arch: Vec<String> = Arch::BOTH
                .iter()
                .map(|a| {
                    let (i, before, after) = (a.index(), &b.before[a.index()], &b.after[a.index()]);
                    if b.identical[i] {
                        format!(
                            "the {} image ({} units) is the same {} bytes after the merge",
                            a.kernel_name(),
                            before.units,
                            before.bytes
                        )
                    } else {
                        format!(
                            "the {} image DIFFERS after the merge ({} units, {} bytes, against {} units, {} bytes before)",
                            a.kernel_name(),
                            after.units,
                            after.bytes,
                            before.units,
                            before.bytes
                        )
                    }
                })
                .collect();
            (
                Some(b.identical.iter().all(|x| *x)),
                format!("compiled with gcc -m32/-m64, {}", per_arch.join(" and ")),
            )
        }
    }
}

/// Measures, making `mistake` in the merged tree before verifying it.
pub fn measure_with(ctx: &Ctx<'_>, mistake: Option<Mistake>) -> Result<Data, ExperimentError> {
    let tmp = tempfile::tempdir()
        .map_err(|e| ExperimentError::Host(format!("temporary directory: {e}")))?;
    let (a, b, source) = match ctx.inputs.repo.as_deref() {
        Some(path) => {
            let (a, b) = find_pair(path).ok_or_else(|| ExperimentError::Input {
                path: path.to_owned(),
                message:
                    "expected arch/i386 and arch/x86_64 (or i386 and x86_64, or 32 and 64) under it"
                        .into(),
            })?;
            let source = Source::Repo {
                path: path.display().to_string(),
                tree_32: a.display().to_string(),
                tree_64: b.display().to_string(),
            };
            (a, b, source)
        }
        None => {
            let cfg = SynthTrees {
                shared_per_dir: ctx.size(24, 8),
                only_32_per_dir: ctx.size(6, 3),
                only_64_per_dir: ctx.size(3, 2),
                lines: ctx.size(300, 60),
            };
            let (t32, t64) = synth::generate(&cfg, &mut ctx.rng(1));
            let (a, b) = (tmp.path().join("i386"), tmp.path().join("x86_64"));
            synth::write(&t32, &a).map_err(host)?;
            synth::write(&t64, &b).map_err(host)?;
            let source = Source::Synthetic {
                shared_per_dir: cfg.shared_per_dir as u64,
                lines_per_file: cfg.lines as u64,
            };
            (a, b, source)
        }
    };
    let out = tmp.path().join("x86");
    ctx.progress.begin("archmerge: merging", 0);
    let plan = klab_archmerge::merge(&a, &b, &out).map_err(host)?;
    let pairs: Vec<PairReport> = plan.pairs.iter().filter(|p| !p.not_text).cloned().collect();
    if let (Some(Mistake::ThirtyTwoForSixtyFour), Some(p)) = (mistake, pairs.first()) {
        std::fs::copy(out.join(&p.out_32), out.join(&p.out_64))
            .map_err(|e| ExperimentError::Host(format!("making the mistake: {e}")))?;
    }
    let verification = klab_archmerge::verify(&a, &b, &out).map_err(host)?;
    ctx.progress.end();
    let t32 = Tree::read(&a).map_err(host)?;
    let t64 = Tree::read(&b).map_err(host)?;
    plan.assert_invariants(&t32, &t64);
    let build = match source {
        Source::Repo { .. } => BuildOutcome::Skipped(
            "real trees build with their own Makefiles; klab compiles the generated trees only"
                .into(),
        ),
        Source::Synthetic { .. } => {
            let scratch = tmp.path().join("build");
            match build::probe(&scratch) {
                Err(why) => BuildOutcome::Skipped(why),
                Ok(()) => {
                    ctx.progress
                        .begin("archmerge: compiling before and after", 0);
                    let built = build::before_and_after(&scratch, [&t32, &t64], &out)
                        .map_err(ExperimentError::Host)?;
                    ctx.progress.end();
                    BuildOutcome::Built(built)
                }
            }
        }
    };
    let show = klab_archmerge::scan::show;
    Ok(Data {
        source,
        files: [t32.files.len() as u64, t64.files.len() as u64],
        merged: plan.items.len() as u64,
        counts: plan.counts,
        verification,
        clashes: plan
            .clashes
            .iter()
            .map(|k| ClashRow {
                path: show(&k.original),
                arch: k.arch.bits().to_owned(),
                wanted: show(&k.wanted),
                used: show(&k.chosen),
            })
            .collect(),
        pairs,
        mistake,
        build,
    })
}

fn tables(d: &Data, r: &mut Report) {
    let c = d.counts;
    let mut t = Table::new("The merge", &["measure", "files"]);
    t.row(cells!["files in i386", d.files[0]])
        .row(cells!["files in x86_64", d.files[1]])
        .row(cells!["files in the merged tree", d.merged])
        .row(cells!["identical, kept once", c.common])
        .row(cells!["differing, split into _32/_64", c.split])
        .row(cells!["only in i386", c.only_32])
        .row(cells!["only in x86_64", c.only_64])
        .row(cells!["binary", c.binary])
        .row(cells!["symbolic links", c.symlinks])
        .row(cells!["name clashes resolved", c.clashes])
        .row(cells!["skipped (not source)", c.skipped]);
    r.table(t);
    let mut ver = Table::new(
        "Verification: each architecture's build before and after",
        &[
            "arch",
            "files before",
            "bytes before",
            "files built identically",
            "failures",
        ],
    );
    for arch in Arch::BOTH {
        let k = &d.verification.arch[arch.index()];
        ver.row(cells![
            arch.kernel_name(),
            k.files,
            k.bytes,
            k.matched,
            k.failures.len()
        ]);
    }
    r.table(ver);
    let mut cl = Table::new("Name clashes", &["path", "arch", "wanted", "used"]);
    for k in &d.clashes {
        cl.row(cells![
            k.path.clone(),
            k.arch.as_str(),
            k.wanted.clone(),
            k.used.clone()
        ]);
    }
    r.table(cl);
    let mut j = Table::new(
        "For the janitors: _32/_64 pairs by lines in common (work a merge would save)",
        &[
            "pair",
            "lines _32",
            "lines _64",
            "lines in common",
            "hunks",
            "similarity (%)",
        ],
    );
    for p in d.pairs.iter().take(20) {
        j.row(cells![
            p.path.clone(),
            p.lines_32,
            p.lines_64,
            p.common,
            p.hunks,
            p.similarity()
        ]);
    }
    r.table(j);
}

fn images_table(b: &BuildOutcome) -> Table {
    let mut t = Table::new(
        "Compiled images before and after the merge (gcc -m32 / -m64, linked with gcc -r)",
        &[
            "arch",
            "units before",
            "bytes before",
            "units after",
            "bytes after",
            "same bytes",
        ],
    );
    if let BuildOutcome::Built(b) = b {
        for arch in Arch::BOTH {
            let (before, after) = (&b.before[arch.index()], &b.after[arch.index()]);
            t.row(cells![
                arch.kernel_name(),
                before.units,
                before.bytes,
                after.units,
                after.bytes,
                b.identical[arch.index()]
            ]);
        }
    }
    t
}

fn series(d: &Data, r: &mut Report) {
    let text = &d.pairs;
    let mut s = Series::new(
        "Lines in common per _32/_64 pair",
        Axis::linear("pair, by lines in common", ""),
        Axis::linear("lines", ""),
    );
    s.line(
        "lines in common",
        text.iter()
            .enumerate()
            .map(|(i, p)| [(i + 1) as f64, p.common as f64])
            .collect(),
    );
    s.line(
        "lines only in one copy",
        text.iter()
            .enumerate()
            .map(|(i, p)| [(i + 1) as f64, (p.only_32 + p.only_64) as f64])
            .collect(),
    );
    r.series(s);
    let mut sim: Vec<f64> = text.iter().map(PairReport::similarity).collect();
    sim.sort_by(|x, y| y.total_cmp(x));
    let mut ds = Series::new(
        "Similarity of each pair",
        Axis::linear("pair, most similar first", ""),
        Axis::linear("similarity", "%"),
    );
    ds.line(
        "2·common / (lines_32 + lines_64)",
        sim.iter()
            .enumerate()
            .map(|(i, s)| [(i + 1) as f64, *s])
            .collect(),
    );
    r.series(ds);
}

pub mod build;
#[cfg(test)]
mod tests;
