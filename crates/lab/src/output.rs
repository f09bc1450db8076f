//! Writing a run's reports to a directory without ever leaving a partial
//! file: each file is written in full to a temporary file in the same
//! directory, and only when every file is complete are they renamed into
//! place.

use std::io::Write as _;
use std::path::{Path, PathBuf};

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
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(err(dir))?;
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

/// Writes `bytes` to `path` through a temporary file and a rename.
pub fn write_atomic_bytes(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let err = |source| OutputError {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".klab.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(err)?;
    tmp.write_all(bytes).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
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
