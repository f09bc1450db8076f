//! Lines added and removed by one commit, as `git log --numstat` counts
//! them.
//!
//! ```text
//!   parent tree ──┐                               ┌─ modified:  xdiff line counts
//!                 ├─ tree diff (gix-diff) ─ queue ─┼─ renamed:   xdiff line counts old→new
//!   commit tree ──┘   sorted by path         │    ├─ added:     every line added
//!                                            │    └─ deleted:   every line removed
//!                                 rename detection (rename.rs) on added × deleted
//! ```
//!
//! Rules, each as git applies them in `builtin_diffstat()` (diff.c):
//! * a root commit is diffed against the empty tree (`log.showRoot`);
//! * renames are detected as `diff.renames` says (default: on, 50%, limit
//!   `diff.renameLimit` = 1000); copies are not looked for;
//! * a file is binary when its first 8000 bytes hold a NUL (git's
//!   `buffer_is_binary()`) or it is larger than `core.bigFileThreshold`
//!   (512 MiB); a pair with a binary side prints `-` in numstat and counts
//!   0 added, 0 removed here (gitdm's rule for `-`); `.gitattributes` is not
//!   consulted;
//! * a submodule (gitlink) counts as the one line `Subproject commit <id>`;
//! * a symbolic link counts as its target, one line without newline;
//! * the same blob on both sides (pure rename, mode change) counts 0;
//! * lines include their terminator, so `a` and `a\n` differ, and so do
//!   CRLF and LF (no text conversion, no whitespace options);
//! * the line diff is git's own Myers with xdiff's heuristics (xdiff.rs),
//!   what git's default `diff.algorithm` runs.

use std::collections::HashMap;
use std::sync::Arc;

use gix::ObjectId;
use gix::diff::tree::recorder::Change;
use gix::objs::Kind;

use crate::error::DevstatsError;
use crate::objects::Objects;
pub use crate::record::FileStat;
use crate::rename::{self, Candidate, Contents, RenameOptions};

/// git's `FIRST_FEW_BYTES`: how much of a blob is searched for a NUL.
pub const FIRST_FEW_BYTES: usize = 8000;
/// git's default `core.bigFileThreshold`: larger blobs are binary.
pub const BIG_FILE_THRESHOLD: usize = 512 << 20;

/// How git would classify a blob.
#[derive(Debug)]
struct Blob {
    /// Shared with the reader's cache: never copied.
    data: Arc<Vec<u8>>,
    binary: bool,
}

impl Blob {
    fn new(data: Arc<Vec<u8>>) -> Blob {
        let binary =
            data.len() > BIG_FILE_THRESHOLD || data[..data.len().min(FIRST_FEW_BYTES)].contains(&0);
        Blob { data, binary }
    }
}

/// One side of a changed file.
#[derive(Debug, Clone)]
struct Side {
    path: Vec<u8>,
    mode: u16,
    id: ObjectId,
}

impl Side {
    fn regular(&self) -> bool {
        self.mode & 0o170000 == 0o100000
    }
    fn gitlink(&self) -> bool {
        self.mode & 0o170000 == 0o160000
    }
}

/// Reusable state for computing numstats commit after commit.
pub struct Differ {
    state: gix::diff::tree::State,
    blobs: HashMap<ObjectId, Blob>,
    renames: Option<RenameOptions>,
    /// Commits whose rename detection hit the limit.
    pub limit_hits: u64,
}

impl Differ {
    /// A differ with git's rename settings (`None`: `diff.renames=false`).
    pub fn new(renames: Option<RenameOptions>) -> Self {
        Differ {
            state: Default::default(),
            blobs: HashMap::new(),
            renames,
            limit_hits: 0,
        }
    }

    /// The numstat lines of the change from `parent` (None: the empty tree)
    /// to `tree`, in path order.
    pub fn numstat(
        &mut self,
        repo: &Objects<'_>,
        kind: gix::hash::Kind,
        parent: Option<ObjectId>,
        tree: ObjectId,
    ) -> Result<Vec<FileStat>, DevstatsError> {
        let new_tree = repo
            .find_kind(&tree, Kind::Tree)
            .map_err(|e| DevstatsError::object(tree, e))?;
        let old_tree = match parent {
            Some(p) => Some(
                repo.find_kind(&p, Kind::Tree)
                    .map_err(|e| DevstatsError::object(p, e))?,
            ),
            None => None,
        };
        let lhs = gix::objs::TreeRefIter::from_bytes(
            old_tree.as_ref().map_or(&[][..], |t| t.as_slice()),
            kind,
        );
        let rhs = gix::objs::TreeRefIter::from_bytes(&new_tree, kind);
        let mut recorder = gix::diff::tree::Recorder::default();
        gix::diff::tree(lhs, rhs, &mut self.state, repo, &mut recorder)
            .map_err(|e| DevstatsError::object(tree, e))?;

        let mut added = Vec::new();
        let mut deleted = Vec::new();
        let mut modified = Vec::new();
        for change in recorder.records {
            match change {
                Change::Addition {
                    entry_mode,
                    oid,
                    path,
                    ..
                } if !entry_mode.is_tree() => {
                    added.push(Side {
                        path: path.into(),
                        mode: entry_mode.value(),
                        id: oid,
                    });
                }
                Change::Deletion {
                    entry_mode,
                    oid,
                    path,
                    ..
                } if !entry_mode.is_tree() => {
                    deleted.push(Side {
                        path: path.into(),
                        mode: entry_mode.value(),
                        id: oid,
                    });
                }
                Change::Modification {
                    previous_entry_mode,
                    previous_oid,
                    entry_mode,
                    oid,
                    path,
                } if !entry_mode.is_tree() && !previous_entry_mode.is_tree() => {
                    let old = Side {
                        path: path.clone().into(),
                        mode: previous_entry_mode.value(),
                        id: previous_oid,
                    };
                    modified.push((
                        old,
                        Side {
                            path: path.into(),
                            mode: entry_mode.value(),
                            id: oid,
                        },
                    ));
                }
                _ => {}
            }
        }
        // git's diff queue is in tree-walk order, which is byte order of the
        // full paths; gix-diff walks breadth-first.
        added.sort_by(|a, b| a.path.cmp(&b.path));
        deleted.sort_by(|a, b| a.path.cmp(&b.path));

        self.blobs.clear();
        let pairs = match self.renames {
            Some(opts) if !added.is_empty() && !deleted.is_empty() => {
                for s in added.iter().chain(&deleted) {
                    if s.regular() {
                        self.load(repo, s)?;
                    }
                }
                let src: Vec<Candidate<'_>> = deleted.iter().map(candidate).collect();
                let dst: Vec<Candidate<'_>> = added.iter().map(candidate).collect();
                let found = rename::detect(&src, &dst, &mut BlobContents(&self.blobs), opts);
                if found.limit_hit {
                    self.limit_hits += 1;
                }
                found.pairs
            }
            _ => Vec::new(),
        };

        let mut out = Vec::with_capacity(added.len() + deleted.len() + modified.len());
        let mut src_paired = vec![false; deleted.len()];
        let mut dst_paired = vec![false; added.len()];
        for &(s, d) in &pairs {
            src_paired[s] = true;
            dst_paired[d] = true;
            let mut st = self.pair(repo, &deleted[s], &added[d])?;
            st.old_path = Some(deleted[s].path.clone());
            out.push(st);
        }
        for (old, new) in &modified {
            out.push(self.pair(repo, old, new)?);
        }
        for (i, s) in added.iter().enumerate().filter(|(i, _)| !dst_paired[*i]) {
            let _ = i;
            let (lines, binary) = self.whole(repo, s)?;
            out.push(FileStat {
                path: s.path.clone(),
                old_path: None,
                added: lines,
                removed: 0,
                binary,
            });
        }
        for (i, s) in deleted.iter().enumerate().filter(|(i, _)| !src_paired[*i]) {
            let _ = i;
            let (lines, binary) = self.whole(repo, s)?;
            out.push(FileStat {
                path: s.path.clone(),
                old_path: None,
                added: 0,
                removed: lines,
                binary,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn load(&mut self, repo: &Objects<'_>, s: &Side) -> Result<(), DevstatsError> {
        if self.blobs.contains_key(&s.id) {
            return Ok(());
        }
        let data = if s.gitlink() {
            Arc::new(format!("Subproject commit {}\n", s.id).into_bytes())
        } else {
            repo.find_kind(&s.id, Kind::Blob)
                .map_err(|e| DevstatsError::object(s.id, e))?
        };
        self.blobs.insert(s.id, Blob::new(data));
        Ok(())
    }

    /// Lines of a whole added or deleted file, and whether it is binary.
    fn whole(&mut self, repo: &Objects<'_>, s: &Side) -> Result<(u64, bool), DevstatsError> {
        self.load(repo, s)?;
        let b = &self.blobs[&s.id];
        if b.binary {
            return Ok((0, true));
        }
        Ok((count_lines(&b.data), false))
    }

    fn pair(
        &mut self,
        repo: &Objects<'_>,
        old: &Side,
        new: &Side,
    ) -> Result<FileStat, DevstatsError> {
        let mut st = FileStat {
            path: new.path.clone(),
            old_path: None,
            added: 0,
            removed: 0,
            binary: false,
        };
        self.load(repo, old)?;
        self.load(repo, new)?;
        let (a, b) = (&self.blobs[&old.id], &self.blobs[&new.id]);
        if a.binary || b.binary {
            st.binary = true;
            return Ok(st);
        }
        if old.id == new.id {
            return Ok(st);
        }
        let (added, removed) = crate::xdiff::count(&a.data, &b.data);
        st.added = added;
        st.removed = removed;
        Ok(st)
    }
}

fn candidate(s: &Side) -> Candidate<'_> {
    Candidate {
        path: &s.path,
        regular: s.regular(),
        mode: u32::from(s.mode),
        id: s.id.as_bytes(),
    }
}

struct BlobContents<'a>(&'a HashMap<ObjectId, Blob>);

impl Contents for BlobContents<'_> {
    fn get(&mut self, id: &[u8]) -> Option<(&[u8], bool)> {
        let id = gix::hash::oid::try_from_bytes(id).ok()?;
        self.0.get(id).map(|b| (b.data.as_slice(), b.binary))
    }
}

/// Lines in a file (see [`crate::xdiff::count_lines`]).
pub use crate::xdiff::count_lines;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_count_an_unterminated_tail() {
        assert_eq!(count_lines(b""), 0);
        assert_eq!(count_lines(b"a"), 1);
        assert_eq!(count_lines(b"a\n"), 1);
        assert_eq!(count_lines(b"a\nb"), 2);
    }

    #[test]
    fn nul_in_the_first_8000_bytes_makes_a_blob_binary() {
        assert!(Blob::new(Arc::new(b"a\0b".to_vec())).binary);
        let mut late = vec![b'a'; FIRST_FEW_BYTES];
        late.push(0);
        assert!(!Blob::new(Arc::new(late)).binary);
    }
}
