//! Writing a plan to disk, and proving it kept every architecture's bytes.
//!
//! ```text
//!  OUT/                      the merged tree (items of the plan)
//!  OUT/.archmerge/manifest-32.txt, manifest-64.txt   build manifests
//!  OUT/.archmerge/janitor.tsv                        pairs by work saved
//!  OUT/.archmerge/report.txt                         counts, clashes, links
//! ```
//!
//! [`apply`] refuses an existing OUT, writes everything into a temporary
//! directory beside it, and renames that into place with
//! `renameat2(RENAME_NOREPLACE)` (falling back to a checked `rename` where
//! the file system lacks it), so OUT either does not exist or is complete.
//!
//! [`verify`] trusts nothing from the plan: it reads both input trees and
//! the output again, parses the manifests, and checks for each
//! architecture that the manifest names every file of the old tree exactly
//! once, and that the named output file has the same kind, bytes and
//! executable bit; and that every output file is named by some manifest.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::ArchmergeError;
use crate::manifest::{self, Arch, Manifest};
use crate::plan::Plan;
use crate::scan::{Content, RelPath, Tree, show};

/// The directory inside OUT that holds archmerge's own files.
pub const META_DIR: &str = ".archmerge";

fn os(p: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(p))
}

/// Writes `plan` (made from `t32` and `t64`) to `out`, with `report` and
/// `janitor` as the text files of the meta directory.
pub fn apply(
    plan: &Plan,
    t32: &Tree,
    t64: &Tree,
    out: &Path,
    report: &str,
    janitor: &str,
) -> Result<(), ArchmergeError> {
    if out.symlink_metadata().is_ok() {
        return Err(ArchmergeError::OutputExists(out.to_owned()));
    }
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".archmerge-")
        .tempdir_in(parent)
        .map_err(|e| ArchmergeError::io(parent, e))?;
    let root = tmp.path();
    let trees = [t32, t64];
    for it in &plan.items {
        let dest = root.join(os(&it.out));
        if let Some(d) = dest.parent() {
            std::fs::create_dir_all(d).map_err(|e| ArchmergeError::io(d, e))?;
        }
        match &trees[it.from.index()].files[&it.original] {
            Content::File { data, executable } => {
                std::fs::write(&dest, data).map_err(|e| ArchmergeError::io(&dest, e))?;
                let mode = if *executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| ArchmergeError::io(&dest, e))?;
            }
            Content::Symlink { target } => {
                std::os::unix::fs::symlink(os(target), &dest)
                    .map_err(|e| ArchmergeError::io(&dest, e))?;
            }
        }
    }
    let meta = root.join(META_DIR);
    std::fs::create_dir_all(&meta).map_err(|e| ArchmergeError::io(&meta, e))?;
    for m in &plan.manifests {
        let p = meta.join(manifest::file_name(m.arch));
        std::fs::write(&p, m.render()).map_err(|e| ArchmergeError::io(&p, e))?;
    }
    for (name, text) in [("report.txt", report), ("janitor.tsv", janitor)] {
        let p = meta.join(name);
        std::fs::write(&p, text).map_err(|e| ArchmergeError::io(&p, e))?;
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| ArchmergeError::io(root, e))?;
    rename_noreplace(root, out)?;
    // The directory now lives at `out`; keep TempDir from deleting it.
    let _ = tmp.keep();
    Ok(())
}

fn rename_noreplace(from: &Path, to: &Path) -> Result<(), ArchmergeError> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) | Err(rustix::io::Errno::NOTEMPTY) => {
            Err(ArchmergeError::OutputExists(to.to_owned()))
        }
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
            // No RENAME_NOREPLACE here: check, then rename (a race window
            // remains, which rename(2) narrows by refusing a non-empty target).
            if to.symlink_metadata().is_ok() {
                return Err(ArchmergeError::OutputExists(to.to_owned()));
            }
            std::fs::rename(from, to).map_err(|e| ArchmergeError::io(to, e))
        }
        Err(e) => Err(ArchmergeError::io(to, e.into())),
    }
}

/// What verification found for one architecture.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchCheck {
    /// Files of the old tree.
    pub files: u64,
    /// Bytes of the old tree (file contents and link targets).
    pub bytes: u64,
    /// Files whose merged copy matched.
    pub matched: u64,
    /// What did not match, one line each.
    pub failures: Vec<String>,
}

/// The result of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    /// Per architecture (index [`Arch::index`]).
    pub arch: [ArchCheck; 2],
    /// Output files no manifest names.
    pub strays: Vec<String>,
}

impl Verification {
    /// True when both architectures build exactly their old bytes.
    pub fn ok(&self) -> bool {
        self.strays.is_empty()
            && self
                .arch
                .iter()
                .all(|a| a.failures.is_empty() && a.matched == a.files)
    }
}

/// Reads `tree_32`, `tree_64` and the merged `out` and checks the manifests.
pub fn verify(tree_32: &Path, tree_64: &Path, out: &Path) -> Result<Verification, ArchmergeError> {
    let trees = [Tree::read(tree_32)?, Tree::read(tree_64)?];
    let merged = Tree::read(out)?;
    let mut v = Verification::default();
    let mut named: BTreeSet<RelPath> = BTreeSet::new();
    for arch in Arch::BOTH {
        let path = out.join(META_DIR).join(manifest::file_name(arch));
        let text = std::fs::read(&path).map_err(|e| ArchmergeError::io(&path, e))?;
        let m = Manifest::parse(arch, &text, &path)?;
        let tree = &trees[arch.index()];
        let check = &mut v.arch[arch.index()];
        check.files = tree.files.len() as u64;
        check.bytes = tree.files.values().map(|c| c.bytes().len() as u64).sum();
        let listed: BTreeMap<&RelPath, &RelPath> =
            m.entries.iter().map(|(mg, o)| (o, mg)).collect();
        for (original, content) in &tree.files {
            let Some(merged_path) = listed.get(original) else {
                check.failures.push(format!(
                    "{} is not in the {} manifest",
                    show(original),
                    arch.bits()
                ));
                continue;
            };
            named.insert((*merged_path).clone());
            match merged.files.get(*merged_path) {
                None => check.failures.push(format!(
                    "{} (from {}) is missing",
                    show(merged_path),
                    show(original)
                )),
                Some(c) if c != content => check.failures.push(format!(
                    "{} differs from {}'s {} ({} {} vs {} {})",
                    show(merged_path),
                    arch.kernel_name(),
                    show(original),
                    c.kind(),
                    c.bytes().len(),
                    content.kind(),
                    content.bytes().len()
                )),
                Some(_) => check.matched += 1,
            }
        }
        for (o, mg) in &listed {
            if !tree.files.contains_key(*o) {
                check.failures.push(format!(
                    "manifest lists {} -> {}, which the {} tree does not have",
                    show(mg),
                    show(o),
                    arch.kernel_name()
                ));
            }
        }
    }
    let meta_prefix = format!("{META_DIR}/");
    for p in merged.files.keys() {
        if !p.starts_with(meta_prefix.as_bytes()) && !named.contains(p) {
            v.strays.push(show(p));
        }
    }
    Ok(v)
}

/// Refuses inputs that use the meta directory's name at their root.
pub fn check_reserved(tree: &Tree) -> Result<(), ArchmergeError> {
    let prefix = format!("{META_DIR}/");
    if tree
        .files
        .keys()
        .any(|p| p == META_DIR.as_bytes() || p.starts_with(prefix.as_bytes()))
    {
        return Err(ArchmergeError::Reserved {
            tree: tree.root.clone(),
            name: META_DIR,
        });
    }
    Ok(())
}

/// Where the manifests of `out` live.
pub fn manifest_path(out: &Path, arch: Arch) -> PathBuf {
    out.join(META_DIR).join(manifest::file_name(arch))
}
