//! Reading a source tree into memory.
//!
//! A tree is the set of its leaves: regular files (bytes and the
//! executable bit) and symbolic links (their target, never followed),
//! keyed by relative path as bytes with `/` separators. Directories are
//! implied by the paths; empty directories, FIFOs, sockets and device
//! nodes are not source and are listed in [`Tree::skipped`] with the reason.
//!
//! Invariant: no key is empty, absolute, or has a `.`/`..` component; no key
//! is a proper directory prefix of another (a file cannot also be a
//! directory in one tree).

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::error::ArchmergeError;

/// A path relative to a tree root, as bytes with `/` separators.
pub type RelPath = Vec<u8>;

/// What a tree holds at one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A regular file.
    File {
        /// Its bytes.
        data: Vec<u8>,
        /// Any execute bit set.
        executable: bool,
    },
    /// A symbolic link, kept as a link.
    Symlink {
        /// The target, as written in the link.
        target: Vec<u8>,
    },
}

impl Content {
    /// git's rule: a NUL in the first 8000 bytes.
    pub fn is_binary(&self) -> bool {
        match self {
            Content::File { data, .. } => data[..data.len().min(8000)].contains(&0),
            Content::Symlink { .. } => false,
        }
    }

    /// Bytes this entry contributes to a build: the file's contents, or the
    /// link target.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Content::File { data, .. } => data,
            Content::Symlink { target } => target,
        }
    }

    /// A short name for the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Content::File { .. } => "file",
            Content::Symlink { .. } => "symlink",
        }
    }
}

/// Something in a tree that is not source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Relative path.
    pub path: RelPath,
    /// Why.
    pub reason: &'static str,
}

/// A tree read into memory.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    /// Where it was read from.
    pub root: PathBuf,
    /// Leaves by relative path.
    pub files: BTreeMap<RelPath, Content>,
    /// Entries that are not source.
    pub skipped: Vec<Skipped>,
}

impl Tree {
    /// A tree built in memory (tests, generated trees).
    pub fn from_files(files: BTreeMap<RelPath, Content>) -> Tree {
        Tree {
            root: PathBuf::new(),
            files,
            skipped: Vec::new(),
        }
    }

    /// Reads the tree under `root` (which must be a directory; a symlink to
    /// one is followed at the root only).
    pub fn read(root: &Path) -> Result<Tree, ArchmergeError> {
        let meta = std::fs::metadata(root).map_err(|e| ArchmergeError::io(root, e))?;
        if !meta.is_dir() {
            return Err(ArchmergeError::NotADirectory(root.to_owned()));
        }
        let mut tree = Tree {
            root: root.to_owned(),
            ..Tree::default()
        };
        let mut stack: Vec<(PathBuf, RelPath)> = vec![(root.to_owned(), Vec::new())];
        while let Some((dir, rel)) = stack.pop() {
            let mut entries: Vec<_> = std::fs::read_dir(&dir)
                .map_err(|e| ArchmergeError::io(&dir, e))?
                .collect::<Result<_, _>>()
                .map_err(|e| ArchmergeError::io(&dir, e))?;
            entries.sort_by_key(|e| e.file_name());
            if entries.is_empty() && !rel.is_empty() {
                tree.skipped.push(Skipped {
                    path: rel.clone(),
                    reason: "empty directory",
                });
            }
            for e in entries {
                let path = e.path();
                let mut r = rel.clone();
                if !r.is_empty() {
                    r.push(b'/');
                }
                r.extend_from_slice(e.file_name().as_bytes());
                let ft = e
                    .file_type()
                    .map_err(|err| ArchmergeError::io(&path, err))?;
                if ft.is_dir() {
                    stack.push((path, r));
                } else if ft.is_symlink() {
                    let target =
                        std::fs::read_link(&path).map_err(|err| ArchmergeError::io(&path, err))?;
                    tree.files.insert(
                        r,
                        Content::Symlink {
                            target: target.as_os_str().as_bytes().to_vec(),
                        },
                    );
                } else if ft.is_file() {
                    let data =
                        std::fs::read(&path).map_err(|err| ArchmergeError::io(&path, err))?;
                    let mode = e
                        .metadata()
                        .map_err(|err| ArchmergeError::io(&path, err))?
                        .permissions()
                        .mode();
                    tree.files.insert(
                        r,
                        Content::File {
                            data,
                            executable: mode & 0o111 != 0,
                        },
                    );
                } else {
                    tree.skipped.push(Skipped {
                        path: r,
                        reason: "not a regular file, directory or symbolic link",
                    });
                }
            }
        }
        tree.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(tree)
    }

    /// Checks the invariant in the module header.
    pub fn assert_invariants(&self) {
        let keys: Vec<&RelPath> = self.files.keys().collect();
        for k in &keys {
            assert!(valid_rel(k), "bad path {:?}", String::from_utf8_lossy(k));
        }
        for w in keys.windows(2) {
            // Sorted byte order puts "a" right before "a/…" only if nothing
            // sorts between; check every later key with the prefix.
            let mut dir = w[0].clone();
            dir.push(b'/');
            assert!(!w[1].starts_with(&dir), "file is also a directory");
        }
    }
}

/// A relative path without empty, `.` or `..` components.
pub fn valid_rel(p: &[u8]) -> bool {
    !p.is_empty()
        && p.split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// The path for display.
pub fn show(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}
