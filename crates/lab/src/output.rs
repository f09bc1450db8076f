//! Writing a run's reports to a directory without ever leaving a partial
//! file: each file is written in full to a temporary file in the same
//! directory, and only when every file is complete are they renamed into
//! place.
//!
//! This is klab's one atomic writer: `klab run`, `bench`, `resume`,
//! `replay`, `fidelity`, `lro --out`, `tcp-repair dump` and the
//! hibernation image all write through it. A temporary file's mode
//! survives the rename, so it is created as `open(2)` with `O_CREAT`
//! creates any file a tool writes: mode 0666 less the umask (0644 under
//! umask 022), not the 0600 of a private temporary file.

use std::io::Write;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::render;
use crate::report::ReportFile;

/// The JSON report's file name.
pub const JSON_NAME: &str = "report.json";
/// The HTML report's file name.
pub const HTML_NAME: &str = "report.html";

/// Why the reports could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct OutputError {
    /// The file or directory that could not be written.
    pub path: PathBuf,
    /// The I/O error.
    #[source]
    pub source: std::io::Error,
}

/// The mode files are created with before the umask applies, as
/// `File::create` and `open(2)` with `O_CREAT` create them.
pub const FILE_MODE: u32 = 0o666;

/// A temporary file in `dir` that becomes a file a user can read: created
/// with [`FILE_MODE`], so that the umask decides its mode.
fn staged_file(dir: &Path, prefix: &str) -> std::io::Result<NamedTempFile> {
    tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(FILE_MODE))
        .tempfile_in(dir)
}

/// A file written in full before it appears under its name: the bytes go
/// to a temporary file in the same directory, which
/// [`AtomicFile::commit`] syncs and renames over the target. Dropped
/// without a commit (an error on the way), it is removed, and the target
/// is as it was.
///
/// A target that exists and is not a regular file (`/dev/null`, a FIFO,
/// `/dev/stdout`, or a symbolic link to one) is written in place: renaming
/// over it would replace a device node with a file.
pub struct AtomicFile {
    target: Target,
    path: PathBuf,
}

enum Target {
    Staged(NamedTempFile),
    InPlace(std::fs::File),
}

impl AtomicFile {
    /// Starts writing `path` (its directory must exist).
    ///
    /// # Errors
    /// The temporary file cannot be created in `path`'s directory, or a
    /// special file cannot be opened.
    pub fn create(path: &Path) -> Result<Self, OutputError> {
        let err = |source| OutputError {
            path: path.to_owned(),
            source,
        };
        let special = std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
        let target = if special {
            Target::InPlace(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(err)?,
            )
        } else {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            Target::Staged(staged_file(dir, ".klab.").map_err(err)?)
        };
        Ok(AtomicFile {
            target,
            path: path.to_owned(),
        })
    }

    /// The file's final name.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file and renames it over its target (a special file:
    /// flushes it).
    ///
    /// # Errors
    /// The sync or the rename fails; the temporary file is then removed.
    pub fn commit(self) -> Result<(), OutputError> {
        let err = |source| OutputError {
            path: self.path.clone(),
            source,
        };
        match self.target {
            Target::Staged(tmp) => {
                tmp.as_file().sync_all().map_err(err)?;
                tmp.persist(&self.path).map_err(|e| err(e.error))?;
            }
            Target::InPlace(mut f) => f.flush().map_err(err)?,
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.target {
            Target::Staged(tmp) => tmp.write(buf),
            Target::InPlace(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.target {
            Target::Staged(tmp) => tmp.flush(),
            Target::InPlace(f) => f.flush(),
        }
    }
}

/// Writes `report.json` and `report.html` into `dir` (created if missing).
/// Returns the paths written. On error nothing new is left in `dir`.
pub fn write_reports(dir: &Path, file: &ReportFile) -> Result<Vec<PathBuf>, OutputError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| OutputError { path, source }
    };
    std::fs::create_dir_all(dir).map_err(err(dir))?;
    let contents = [
        (JSON_NAME, render::json(file)),
        (HTML_NAME, render::html(file)),
    ];
    let mut staged = Vec::new();
    for (name, text) in &contents {
        let mut tmp = staged_file(dir, &format!(".{name}.")).map_err(err(dir))?;
        let target = dir.join(name);
        tmp.write_all(text.as_bytes()).map_err(err(&target))?;
        tmp.as_file().sync_all().map_err(err(&target))?;
        staged.push((tmp, target));
    }
    let mut written = Vec::new();
    for (tmp, target) in staged {
        tmp.persist(&target).map_err(|e| OutputError {
            path: target.clone(),
            source: e.error,
        })?;
        written.push(target);
    }
    Ok(written)
}

/// Writes `text` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), OutputError> {
    write_atomic_bytes(path, text.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file and a rename
/// ([`AtomicFile`]).
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|source| OutputError {
        path: path.to_owned(),
        source,
    })?;
    f.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{FORMAT_VERSION, Report};

    fn file() -> ReportFile {
        ReportFile {
            klab_version: "test".into(),
            format: FORMAT_VERSION,
            reports: vec![Report::new("demo", "seed", "claim")],
        }
    }

    #[test]
    fn writes_both_files_and_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("nested/out");
        let written = write_reports(&out, &file()).unwrap();
        assert_eq!(written, vec![out.join(JSON_NAME), out.join(HTML_NAME)]);
        let mut names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, vec![HTML_NAME, JSON_NAME]);
    }

    #[test]
    fn an_uncommitted_file_leaves_nothing_and_a_committed_one_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        std::fs::write(&target, "old").unwrap();
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_special_file_is_written_in_place_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("out.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        write_atomic(&link, "{}").unwrap();
        let m = std::fs::symlink_metadata(&link).unwrap();
        assert!(m.file_type().is_symlink(), "the link is still a link");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_path_under_a_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").unwrap();
        let e = write_reports(&blocker.join("sub"), &file()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("cannot write {}", blocker.join("sub").display())),
            "{e}"
        );
    }
}
