//! One module per subcommand.

pub(crate) mod archmerge;
pub(crate) mod devstats;
pub(crate) mod fidelity;
pub(crate) mod list;
pub(crate) mod lro;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod tcp_repair;

use std::path::{Path, PathBuf};

use klab_lab::Report;
use klab_lab::output::{self, write_reports};
use klab_lab::render;
use klab_lab::report::{FORMAT_VERSION, ReportFile};

use crate::messages;

/// Whether `--json` asks for the JSON on standard output (`--json -`);
/// the terminal report is then left out.
pub(crate) fn json_to_stdout(json: Option<&Path>) -> bool {
    json.is_some_and(|p| p.as_os_str() == "-")
}

/// Writes `report.json` and `report.html` under `out` and, where `--json`
/// says, the JSON (`-`: standard output). Returns the files written under
/// `out`.
pub(crate) fn write_report_files(
    reports: Vec<Report>,
    out: &Path,
    json: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let file = ReportFile {
        klab_version: env!("CARGO_PKG_VERSION").to_owned(),
        format: FORMAT_VERSION,
        reports,
    };
    let written = write_reports(out, &file)?;
    match json {
        Some(p) if json_to_stdout(Some(p)) => messages::out(&render::json(&file)),
        Some(p) => output::write_atomic(p, &render::json(&file))?,
        None => {}
    }
    Ok(written)
}

/// The line naming the report files written.
pub(crate) fn reports_line(written: &[PathBuf]) -> String {
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    format!("reports: {}\n", names.join(", "))
}
