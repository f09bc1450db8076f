//! Planning a merge: two trees in, the merged tree's layout out. Pure: no
//! file system access, so every rule is tested on trees built in memory.
//!
//! The rule (seed 000; REFERENCE §15, the 2.6.24 arch/x86 move):
//!
//! ```text
//!  path in      contents          output                        manifest 32 / 64
//!  both         identical         path (kept once)              path / path
//!  both         differ            NAME_32.EXT and NAME_64.EXT   NAME_32.EXT / NAME_64.EXT
//!  one only     -                 path (marked for that arch)   path / -   or  - / path
//! ```
//!
//! "Identical" means the same kind (file or symlink), the same bytes, and
//! for files the same executable bit. The suffix goes before the first dot
//! of the last component that is not its first character (`ioport.c` →
//! `ioport_32.c`, `vmlinux.lds.S` → `vmlinux_32.lds.S`, `Makefile` →
//! `Makefile_32`, `.config` → `.config_32`).
//!
//! Name clashes, each resolved and reported as a [`Clash`]:
//! * the suffixed name is already taken (`x_32.c` exists in an input, or a
//!   directory has that name): files that keep their name are placed first,
//!   and the split file takes the first free `NAME_32_2.EXT`,
//!   `NAME_32_3.EXT`, ...;
//! * a path is a file in one tree and a directory in the other: the
//!   directory keeps the name, the file becomes `NAME_32.EXT` (or `_64`).
//!
//! For the janitors the page expects, every `_32`/`_64` pair of text files
//! gets a [`PairReport`]: lines in each copy, lines in common (the Myers
//! diff's unchanged lines), hunks; pairs are sorted by lines in common, the
//! duplicated code a merge of the pair would remove ("work saved").
//!
//! Invariants ([`Plan::assert_invariants`]): output paths are distinct and
//! none is a directory prefix of another; each manifest maps every path of
//! its tree exactly once, to an output item whose bytes came from that
//! tree's file or an identical one.

use std::collections::{BTreeMap, BTreeSet};

use imara_diff::{Algorithm, Diff, InternedInput};
use serde::{Deserialize, Serialize};

use crate::manifest::{Arch, Manifest};
use crate::scan::{Content, RelPath, Tree, show};

/// Where an output file comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Placement {
    /// Identical in both trees: kept once, built by both.
    Common,
    /// Different in the two trees: this is one of the two copies.
    Split,
    /// Present in one tree only.
    Only,
}

/// One file of the merged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Path in the merged tree.
    pub out: RelPath,
    /// The tree whose file it is (for `Common`, the 32-bit one).
    pub from: Arch,
    /// Its path in that tree.
    pub original: RelPath,
    /// Why it is there.
    pub placement: Placement,
}

/// What kind of clash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ClashKind {
    /// The suffixed name was taken by a file or directory.
    SuffixTaken,
    /// The path is a file in one tree and a directory in the other.
    FileIsDirectory,
}

/// A name the plan could not use, and what it used instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clash {
    /// The path in the input tree.
    pub original: RelPath,
    /// Which tree's file moved.
    pub arch: Arch,
    /// The name the rule asked for.
    pub wanted: RelPath,
    /// The name used.
    pub chosen: RelPath,
    /// Why.
    pub kind: ClashKind,
}

/// How much two copies of a file have in common.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairReport {
    /// The path both trees had.
    pub path: String,
    /// The 32-bit copy in the merged tree.
    pub out_32: String,
    /// The 64-bit copy.
    pub out_64: String,
    /// Lines of the 32-bit copy.
    pub lines_32: u64,
    /// Lines of the 64-bit copy.
    pub lines_64: u64,
    /// Lines both copies share (unchanged in the Myers diff): what a merge
    /// of the pair would no longer duplicate.
    pub common: u64,
    /// Lines only in the 32-bit copy.
    pub only_32: u64,
    /// Lines only in the 64-bit copy.
    pub only_64: u64,
    /// Hunks in the diff between the copies.
    pub hunks: u64,
    /// Binary or symlink pair: no line diff.
    pub not_text: bool,
}

impl PairReport {
    /// `2 · common / (lines_32 + lines_64)`, in percent.
    pub fn similarity(&self) -> f64 {
        let total = self.lines_32 + self.lines_64;
        if total == 0 {
            0.0
        } else {
            200.0 * self.common as f64 / total as f64
        }
    }
}

/// A symbolic link whose target the merge moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkNote {
    /// The link in the merged tree.
    pub link: RelPath,
    /// Its target as written.
    pub target: RelPath,
    /// What it means.
    pub note: String,
}

/// Counts of each case.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Files kept once.
    pub common: u64,
    /// Paths split into `_32`/`_64` pairs.
    pub split: u64,
    /// Files only in the 32-bit tree.
    pub only_32: u64,
    /// Files only in the 64-bit tree.
    pub only_64: u64,
    /// Output files that are binary.
    pub binary: u64,
    /// Output symlinks.
    pub symlinks: u64,
    /// Clashes resolved.
    pub clashes: u64,
    /// Entries of the inputs that are not source (skipped).
    pub skipped: u64,
}

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Output files, sorted by output path.
    pub items: Vec<Item>,
    /// The build manifest of each architecture (index [`Arch::index`]).
    pub manifests: [Manifest; 2],
    /// Clashes and how they were resolved.
    pub clashes: Vec<Clash>,
    /// The janitor report, most work saved first.
    pub pairs: Vec<PairReport>,
    /// Links whose targets moved.
    pub links: Vec<LinkNote>,
    /// Counts.
    pub counts: Counts,
}

/// The name with `tag` (`_32`, `_32_2`) inserted before the first dot of its
/// last component that is not the component's first character.
pub fn suffixed(path: &[u8], tag: &str) -> RelPath {
    let start = path.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let name = &path[start..];
    let dot = name.iter().skip(1).position(|&b| b == b'.').map(|i| i + 1);
    let at = start + dot.unwrap_or(name.len());
    let mut out = path[..at].to_vec();
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&path[at..]);
    out
}

fn parent_dirs(p: &[u8]) -> impl Iterator<Item = &[u8]> {
    p.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(move |(i, _)| &p[..i])
}

struct Names {
    /// Every leaf of either input.
    leaves: BTreeSet<RelPath>,
    /// Every directory of either input.
    dirs: BTreeSet<RelPath>,
    /// Output names handed out.
    used: BTreeSet<RelPath>,
}

impl Names {
    fn free(&self, n: &[u8]) -> bool {
        !self.leaves.contains(n) && !self.dirs.contains(n) && !self.used.contains(n)
    }

    /// The first free name for `p` in `arch`: `NAME_32.EXT`, then
    /// `NAME_32_2.EXT`, ...
    fn allocate(&mut self, p: &[u8], arch: Arch) -> (RelPath, RelPath) {
        let wanted = suffixed(p, &format!("_{}", arch.bits()));
        let mut n = 1;
        let mut name = wanted.clone();
        while !self.free(&name) {
            n += 1;
            name = suffixed(p, &format!("_{}_{n}", arch.bits()));
        }
        self.used.insert(name.clone());
        (wanted, name)
    }
}

/// Plans the merge of `t32` and `t64`.
pub fn plan(t32: &Tree, t64: &Tree) -> Plan {
    let trees = [t32, t64];
    let mut names = Names {
        leaves: t32.files.keys().chain(t64.files.keys()).cloned().collect(),
        dirs: BTreeSet::new(),
        used: BTreeSet::new(),
    };
    for p in &names.leaves {
        for d in parent_dirs(p) {
            names.dirs.insert(d.to_vec());
        }
    }
    let mut items = Vec::new();
    let mut clashes = Vec::new();
    let mut counts = Counts {
        skipped: (t32.skipped.len() + t64.skipped.len()) as u64,
        ..Counts::default()
    };
    let mut pending_split = Vec::new();
    let mut pending_file_dir = Vec::new();

    // First the files that keep their names, so split names avoid them.
    for p in names.leaves.clone() {
        match (t32.files.get(&p), t64.files.get(&p)) {
            (Some(a), Some(b)) if a == b => {
                counts.common += 1;
                names.used.insert(p.clone());
                items.push(Item {
                    out: p.clone(),
                    from: Arch::X32,
                    original: p,
                    placement: Placement::Common,
                });
            }
            (Some(_), Some(_)) => pending_split.push(p),
            (a, _) => {
                let arch = if a.is_some() { Arch::X32 } else { Arch::X64 };
                match arch {
                    Arch::X32 => counts.only_32 += 1,
                    Arch::X64 => counts.only_64 += 1,
                }
                if names.dirs.contains(&p) {
                    pending_file_dir.push((p, arch));
                } else {
                    names.used.insert(p.clone());
                    items.push(Item {
                        out: p.clone(),
                        from: arch,
                        original: p,
                        placement: Placement::Only,
                    });
                }
            }
        }
    }
    for (p, arch) in pending_file_dir {
        let (wanted, chosen) = names.allocate(&p, arch);
        clashes.push(Clash {
            original: p.clone(),
            arch,
            wanted: p.clone(),
            chosen: chosen.clone(),
            kind: ClashKind::FileIsDirectory,
        });
        let _ = wanted;
        items.push(Item {
            out: chosen,
            from: arch,
            original: p,
            placement: Placement::Only,
        });
    }
    let mut pairs = Vec::new();
    let mut diff = Diff::default();
    for p in pending_split {
        counts.split += 1;
        let mut outs = [Vec::new(), Vec::new()];
        for arch in Arch::BOTH {
            let (wanted, chosen) = names.allocate(&p, arch);
            if wanted != chosen {
                clashes.push(Clash {
                    original: p.clone(),
                    arch,
                    wanted,
                    chosen: chosen.clone(),
                    kind: ClashKind::SuffixTaken,
                });
            }
            outs[arch.index()] = chosen.clone();
            items.push(Item {
                out: chosen,
                from: arch,
                original: p.clone(),
                placement: Placement::Split,
            });
        }
        pairs.push(pair_report(
            &p,
            &outs,
            &trees[0].files[&p],
            &trees[1].files[&p],
            &mut diff,
        ));
    }
    items.sort_by(|a, b| a.out.cmp(&b.out));
    counts.clashes = clashes.len() as u64;
    for it in &items {
        let c = &trees[it.from.index()].files[&it.original];
        counts.binary += u64::from(c.is_binary());
        counts.symlinks += u64::from(matches!(c, Content::Symlink { .. }));
    }
    pairs.sort_by(|a, b| {
        a.not_text
            .cmp(&b.not_text)
            .then(b.common.cmp(&a.common))
            .then_with(|| a.path.cmp(&b.path))
    });

    // Manifests: every path of each tree, to the item holding its bytes.
    let mut manifests = [
        Manifest {
            arch: Arch::X32,
            entries: Vec::new(),
        },
        Manifest {
            arch: Arch::X64,
            entries: Vec::new(),
        },
    ];
    let mut out_of: [BTreeMap<RelPath, RelPath>; 2] = [BTreeMap::new(), BTreeMap::new()];
    for it in &items {
        match it.placement {
            Placement::Common => {
                for arch in Arch::BOTH {
                    out_of[arch.index()].insert(it.original.clone(), it.out.clone());
                }
            }
            _ => {
                out_of[it.from.index()].insert(it.original.clone(), it.out.clone());
            }
        }
    }
    for arch in Arch::BOTH {
        let m = &mut manifests[arch.index()];
        m.entries = out_of[arch.index()]
            .iter()
            .map(|(o, m)| (m.clone(), o.clone()))
            .collect();
    }
    let links = link_notes(&trees, &out_of);
    Plan {
        items,
        manifests,
        clashes,
        pairs,
        links,
        counts,
    }
}

fn count_lines(data: &[u8]) -> u64 {
    let n = data.iter().filter(|&&b| b == b'\n').count() as u64;
    n + u64::from(data.last().is_some_and(|&b| b != b'\n'))
}

fn pair_report(
    p: &[u8],
    outs: &[RelPath; 2],
    a: &Content,
    b: &Content,
    diff: &mut Diff,
) -> PairReport {
    let mut r = PairReport {
        path: show(p),
        out_32: show(&outs[0]),
        out_64: show(&outs[1]),
        lines_32: 0,
        lines_64: 0,
        common: 0,
        only_32: 0,
        only_64: 0,
        hunks: 0,
        not_text: true,
    };
    let (Content::File { data: d32, .. }, Content::File { data: d64, .. }) = (a, b) else {
        return r;
    };
    if a.is_binary() || b.is_binary() {
        return r;
    }
    let input = InternedInput::new(d32.as_slice(), d64.as_slice());
    diff.compute_with(
        Algorithm::Myers,
        &input.before,
        &input.after,
        input.interner.num_tokens(),
    );
    r.not_text = false;
    r.lines_32 = count_lines(d32);
    r.lines_64 = count_lines(d64);
    r.only_32 = u64::from(diff.count_removals());
    r.only_64 = u64::from(diff.count_additions());
    r.common = r.lines_32 - r.only_32;
    r.hunks = diff.hunks().count() as u64;
    r
}

/// Normalizes `dir/target` (relative target) into a tree path.
fn resolve(link: &[u8], target: &[u8]) -> Option<RelPath> {
    if target.first() == Some(&b'/') {
        return None;
    }
    let mut parts: Vec<&[u8]> = link.split(|&b| b == b'/').collect();
    parts.pop();
    for c in target.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join(&b'/'))
}

fn link_notes(trees: &[&Tree; 2], out_of: &[BTreeMap<RelPath, RelPath>; 2]) -> Vec<LinkNote> {
    let mut notes = BTreeMap::new();
    for arch in Arch::BOTH {
        let i = arch.index();
        for (p, c) in &trees[i].files {
            let Content::Symlink { target } = c else {
                continue;
            };
            let link = out_of[i][p].clone();
            let note = match resolve(p, target) {
                None if target.first() == Some(&b'/') => continue,
                None => format!("target leaves the {} tree", arch.kernel_name()),
                Some(r) => match out_of[i].get(&r) {
                    Some(m) if *m != r => format!(
                        "for {} it pointed at {}, which the merge names {}; the link is kept as written",
                        arch.kernel_name(),
                        show(&r),
                        show(m)
                    ),
                    _ => continue,
                },
            };
            notes
                .entry((link.clone(), note.clone()))
                .or_insert(LinkNote {
                    link,
                    target: target.clone(),
                    note,
                });
        }
    }
    notes.into_values().collect()
}

impl Plan {
    /// Checks the invariants in the module header.
    pub fn assert_invariants(&self, t32: &Tree, t64: &Tree) {
        let trees = [t32, t64];
        let outs: BTreeSet<&RelPath> = self.items.iter().map(|i| &i.out).collect();
        assert_eq!(outs.len(), self.items.len(), "duplicate output path");
        for o in &outs {
            for d in parent_dirs(o) {
                assert!(
                    !outs.contains(&d.to_vec()),
                    "{} is a file and a directory",
                    show(d)
                );
            }
        }
        let by_out: BTreeMap<&RelPath, &Item> = self.items.iter().map(|i| (&i.out, i)).collect();
        for arch in Arch::BOTH {
            let m = &self.manifests[arch.index()];
            m.assert_invariants();
            let originals: BTreeSet<&RelPath> = m.entries.iter().map(|(_, o)| o).collect();
            let tree_paths: BTreeSet<&RelPath> = trees[arch.index()].files.keys().collect();
            assert_eq!(
                originals,
                tree_paths,
                "manifest {} does not cover its tree",
                arch.bits()
            );
            for (merged, original) in &m.entries {
                let it = by_out[merged];
                let bytes = &trees[it.from.index()].files[&it.original];
                assert_eq!(
                    bytes,
                    &trees[arch.index()].files[original],
                    "{}",
                    show(merged)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(s: &str) -> Content {
        Content::File {
            data: s.as_bytes().to_vec(),
            executable: false,
        }
    }

    fn tree(entries: &[(&str, Content)]) -> Tree {
        Tree::from_files(
            entries
                .iter()
                .map(|(p, c)| (p.as_bytes().to_vec(), c.clone()))
                .collect(),
        )
    }

    fn outs(p: &Plan) -> Vec<String> {
        p.items.iter().map(|i| show(&i.out)).collect()
    }

    #[test]
    fn suffix_goes_before_the_first_dot() {
        let s = |p: &str| show(&suffixed(p.as_bytes(), "_32"));
        assert_eq!(s("kernel/ioport.c"), "kernel/ioport_32.c");
        assert_eq!(s("kernel/vmlinux.lds.S"), "kernel/vmlinux_32.lds.S");
        assert_eq!(s("Makefile"), "Makefile_32");
        assert_eq!(s("boot/.gitignore"), "boot/.gitignore_32");
        assert_eq!(s("a.b/c"), "a.b/c_32");
    }

    #[test]
    fn the_pages_three_cases() {
        let t32 = tree(&[
            ("kernel/i8253.c", file("same\n")),
            ("kernel/ioport.c", file("a\nb\nc\n")),
            ("kernel/e820.c", file("e820\n")),
        ]);
        let t64 = tree(&[
            ("kernel/i8253.c", file("same\n")),
            ("kernel/ioport.c", file("a\nB\nc\n")),
            ("kernel/vsyscall.c", file("vsyscall\n")),
        ]);
        let p = plan(&t32, &t64);
        p.assert_invariants(&t32, &t64);
        assert_eq!(
            outs(&p),
            [
                "kernel/e820.c",
                "kernel/i8253.c",
                "kernel/ioport_32.c",
                "kernel/ioport_64.c",
                "kernel/vsyscall.c"
            ]
        );
        assert_eq!(
            (
                p.counts.common,
                p.counts.split,
                p.counts.only_32,
                p.counts.only_64
            ),
            (1, 1, 1, 1)
        );
        let m32: Vec<(String, String)> = p.manifests[0]
            .entries
            .iter()
            .map(|(a, b)| (show(a), show(b)))
            .collect();
        assert_eq!(
            m32,
            [
                ("kernel/e820.c".to_string(), "kernel/e820.c".to_string()),
                ("kernel/i8253.c".into(), "kernel/i8253.c".into()),
                ("kernel/ioport_32.c".into(), "kernel/ioport.c".into()),
            ]
        );
        // Janitor: 2 of 3 lines in common, one hunk.
        let r = &p.pairs[0];
        assert_eq!(
            (
                r.lines_32, r.lines_64, r.common, r.only_32, r.only_64, r.hunks
            ),
            (3, 3, 2, 1, 1, 1)
        );
    }

    #[test]
    fn an_existing_x_32_takes_precedence_and_the_split_moves_aside() {
        let t32 = tree(&[("x.c", file("32\n")), ("x_32.c", file("already here\n"))]);
        let t64 = tree(&[("x.c", file("64\n"))]);
        let p = plan(&t32, &t64);
        p.assert_invariants(&t32, &t64);
        assert_eq!(outs(&p), ["x_32.c", "x_32_2.c", "x_64.c"]);
        assert_eq!(p.clashes.len(), 1);
        assert_eq!(show(&p.clashes[0].chosen), "x_32_2.c");
        assert_eq!(p.clashes[0].kind, ClashKind::SuffixTaken);
    }

    #[test]
    fn a_file_that_is_a_directory_in_the_other_tree_is_renamed() {
        let t32 = tree(&[("boot/compressed", file("a file\n"))]);
        let t64 = tree(&[("boot/compressed/head.S", file("head\n"))]);
        let p = plan(&t32, &t64);
        p.assert_invariants(&t32, &t64);
        assert_eq!(outs(&p), ["boot/compressed/head.S", "boot/compressed_32"]);
        assert_eq!(p.clashes[0].kind, ClashKind::FileIsDirectory);
    }

    #[test]
    fn kinds_modes_and_binaries_decide_identity() {
        let exe = Content::File {
            data: b"x\n".to_vec(),
            executable: true,
        };
        let link = Content::Symlink {
            target: b"x".to_vec(),
        };
        let bin = Content::File {
            data: b"\0\x01".to_vec(),
            executable: false,
        };
        let bin2 = Content::File {
            data: b"\0\x02".to_vec(),
            executable: false,
        };
        let t32 = tree(&[
            ("mode", file("x\n")),
            ("kind", file("x")),
            ("bin", bin.clone()),
            ("same-link", link.clone()),
        ]);
        let t64 = tree(&[
            ("mode", exe),
            ("kind", link.clone()),
            ("bin", bin2),
            ("same-link", link),
        ]);
        let p = plan(&t32, &t64);
        p.assert_invariants(&t32, &t64);
        assert_eq!((p.counts.split, p.counts.common), (3, 1));
        assert_eq!(p.counts.binary, 2);
        assert!(p.pairs.iter().filter(|r| r.not_text).count() == 2);
    }

    #[test]
    fn links_to_split_files_are_reported() {
        let link = Content::Symlink {
            target: b"../kernel/ioport.c".to_vec(),
        };
        let t32 = tree(&[
            ("kernel/ioport.c", file("32\n")),
            ("lib/io.c", link.clone()),
        ]);
        let t64 = tree(&[("kernel/ioport.c", file("64\n")), ("lib/io.c", link)]);
        let p = plan(&t32, &t64);
        p.assert_invariants(&t32, &t64);
        assert_eq!(p.links.len(), 2);
        assert!(p.links[0].note.contains("kernel/ioport_32.c"));
    }

    #[test]
    fn pairs_sort_by_lines_in_common() {
        let many: String = (0..50).map(|i| format!("l{i}\n")).collect();
        let t32 = tree(&[("a.c", file("1\n2\n")), ("b.c", file(&many))]);
        let t64 = tree(&[
            ("a.c", file("1\n3\n")),
            ("b.c", file(&format!("{many}x\n"))),
        ]);
        let p = plan(&t32, &t64);
        assert_eq!(p.pairs[0].path, "b.c");
        assert_eq!(p.pairs[0].common, 50);
        assert_eq!(p.pairs[1].common, 1);
    }

    proptest::proptest! {
        /// Any two small trees plan into a layout that keeps every
        /// architecture's bytes.
        #[test]
        fn every_plan_keeps_each_architectures_bytes(
            a in proptest::collection::btree_map("[abx](_32|_64)?(/[ab])?(\\.c)?", "[xy]{0,2}", 0..8),
            b in proptest::collection::btree_map("[abx](_32|_64)?(/[ab])?(\\.c)?", "[xy]{0,2}", 0..8),
        ) {
            let mk = |m: &BTreeMap<String, String>| {
                let mut files = BTreeMap::new();
                for (p, c) in m {
                    // Skip paths that would make a file also a directory in one tree.
                    if m.keys().any(|q| q.starts_with(&format!("{p}/"))) { continue; }
                    files.insert(p.as_bytes().to_vec(), file(c));
                }
                Tree::from_files(files)
            };
            let (t32, t64) = (mk(&a), mk(&b));
            let p = plan(&t32, &t64);
            p.assert_invariants(&t32, &t64);
        }
    }
}
