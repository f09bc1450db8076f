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

use std::path::{Path, PathBuf};

use klab_archmerge::synth::{self, SynthTrees};
use klab_archmerge::{Arch, Tree};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, InputKind, Run};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The experiment.
pub struct Archmerge;

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

impl Archmerge {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "archmerge",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "Moving i386 and x86_64 into one tree (identical files once, differing files as _32/_64) builds exactly the \
         same bytes for each architecture, and leaves pairs with much code in common for janitors to merge",
        inputs: &[InputKind::Repo],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for Archmerge {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let tmp = tempfile::tempdir()
            .map_err(|e| ExperimentError::Host(format!("temporary directory: {e}")))?;
        let host = |e: klab_archmerge::ArchmergeError| ExperimentError::Host(e.to_string());
        let (a, b) = match ctx.inputs.repo.as_deref() {
            Some(path) => {
                let pair = find_pair(path).ok_or_else(|| ExperimentError::Input {
                    path: path.to_owned(),
                    message: "expected arch/i386 and arch/x86_64 (or i386 and x86_64, or 32 and 64) under it".into(),
                })?;
                r.config("input", path.display().to_string());
                r.host.notes.push(format!(
                    "real trees {} and {}",
                    pair.0.display(),
                    pair.1.display()
                ));
                pair
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
                r.config("shared_per_dir", cfg.shared_per_dir as u64)
                    .config("lines_per_file", cfg.lines as u64);
                (a, b)
            }
        };
        r.host.real = true;
        r.host.deterministic = true;
        r.host
            .notes
            .push("real directories written, merged and read back; no timing".into());
        let out = tmp.path().join("x86");
        ctx.progress.begin("archmerge: merging", 0);
        let plan = klab_archmerge::merge(&a, &b, &out).map_err(host)?;
        let v = klab_archmerge::verify(&a, &b, &out).map_err(host)?;
        ctx.progress.end();
        let t32 = Tree::read(&a).map_err(host)?;
        let t64 = Tree::read(&b).map_err(host)?;
        plan.assert_invariants(&t32, &t64);

        let c = plan.counts;
        let mut t = Table::new("The merge", &["measure", "files"]);
        t.row(cells!["files in i386", t32.files.len()])
            .row(cells!["files in x86_64", t64.files.len()])
            .row(cells!["files in the merged tree", plan.items.len()])
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
            let k = &v.arch[arch.index()];
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
        for k in &plan.clashes {
            cl.row(cells![
                klab_archmerge::scan::show(&k.original),
                k.arch.bits(),
                klab_archmerge::scan::show(&k.wanted),
                klab_archmerge::scan::show(&k.chosen)
            ]);
        }
        r.table(cl);
        let text: Vec<_> = plan.pairs.iter().filter(|p| !p.not_text).collect();
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
        for p in text.iter().take(20) {
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
        let mut sim: Vec<f64> = text.iter().map(|p| p.similarity()).collect();
        sim.sort_by(|x, y| y.total_cmp(x));
        let mut d = Series::new(
            "Similarity of each pair",
            Axis::linear("pair, most similar first", ""),
            Axis::linear("similarity", "%"),
        );
        d.line(
            "2·common / (lines_32 + lines_64)",
            sim.iter()
                .enumerate()
                .map(|(i, s)| [(i + 1) as f64, *s])
                .collect(),
        );
        r.series(d);

        let common: u64 = text.iter().map(|p| p.common).sum();
        let total: u64 = text.iter().map(|p| p.lines_32 + p.lines_64).sum();
        let half = text.iter().filter(|p| p.similarity() >= 50.0).count();
        let built = v.arch.iter().map(|k| k.matched).sum::<u64>();
        let files = v.arch.iter().map(|k| k.files).sum::<u64>();
        r.verdict = Verdict {
            holds: Some(v.ok()),
            measured: format!(
                "{built} of {files} architecture files build from identical bytes after the merge ({} strays); \
                 {} _32/_64 text pairs share {common} lines ({:.1}% of their {total} lines), {half} of them at least half alike",
                v.strays.len(),
                text.len(),
                if total == 0 { 0.0 } else { 200.0 * common as f64 / total as f64 }
            ),
            note: "Verification re-reads both input trees and the merged tree from disk and checks the manifests; \
                   it trusts nothing from the plan. Lines in common are the unchanged lines of a Myers diff."
                .into(),
        };
        Ok(r)
    }
}
