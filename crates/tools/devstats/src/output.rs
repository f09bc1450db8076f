//! The page's tables, as text, JSON and CSV.
//!
//! The terminal text follows the layout of "Development statistics for
//! 2.6.31": a headline, then pairs of ranked tables side by side (most
//! active developers by changesets and by changed lines; employers by
//! changesets and by lines changed; non-author signoffs by individual and by
//! employer), each row `name  count  percent`, then the share of patches
//! that passed through the top employers' hands. `--top N` limits the
//! terminal tables; JSON and CSV hold every row. Every output names the
//! rule developers' changed lines were counted by ([`ChangedLines`]): a
//! line under the headline and the table's title in the terminal,
//! `changed_lines_rule` in JSON, a `changed_lines_rule` row in
//! `summary.csv` and column in `developers_by_lines.csv`.
//!
//! Files are written whole to a temporary file in the target directory and
//! renamed into place, so a failed run leaves no partial output. The
//! temporary file's mode survives the rename, so it is created as
//! `open(2)` with `O_CREAT` creates any file: mode 0666 less the umask
//! (0644 under umask 022), not a private temporary file's 0600.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::DevstatsError;
use crate::stats::{ChangedLines, Hands, Ranked, Stats, Summary};

/// Everything a run reports, ready to print or serialize.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The range as given (`HEAD` when none), with the date limits.
    pub range: String,
    /// Headline numbers.
    pub summary: Summary,
    /// How `developers_by_lines` counts a developer's changed lines.
    pub changed_lines_rule: ChangedLines,
    /// Developers by changesets.
    pub developers_by_changesets: Vec<Ranked>,
    /// Developers by changed lines.
    pub developers_by_lines: Vec<Ranked>,
    /// Employers by changesets.
    pub employers_by_changesets: Vec<Ranked>,
    /// Employers by changed lines.
    pub employers_by_lines: Vec<Ranked>,
    /// Non-author signoffs by person.
    pub signoffs_by_person: Vec<Ranked>,
    /// Non-author signoffs by employer.
    pub signoffs_by_employer: Vec<Ranked>,
    /// Share of patches through the top 1, 2, ... employers by signoffs.
    pub hands: Vec<Hands>,
    /// Commits whose rename detection stopped at `diff.renameLimit`.
    pub rename_limit_hits: u64,
}

impl Report {
    /// The report of `stats` over `range`; `hands_up_to` is the largest N for
    /// the "passed through the hands of the top N employers" rows.
    pub fn new(stats: &Stats, range: &str, hands_up_to: usize, rename_limit_hits: u64) -> Report {
        let employers = stats.signoffs_by_employer().len();
        Report {
            range: range.to_owned(),
            summary: stats.summary(),
            changed_lines_rule: stats.rule,
            developers_by_changesets: stats.developers_by_changesets(),
            developers_by_lines: stats.developers_by_lines(),
            employers_by_changesets: stats.employers_by_changesets(),
            employers_by_lines: stats.employers_by_lines(),
            signoffs_by_person: stats.signoffs_by_person(),
            signoffs_by_employer: stats.signoffs_by_employer(),
            hands: (1..=hands_up_to.min(employers))
                .map(|n| stats.hands(n))
                .collect(),
            rename_limit_hits,
        }
    }

    /// The tables that CSV and the terminal show, with their file stems.
    pub fn tables(&self) -> [(&'static str, &'static str, &[Ranked]); 6] {
        [
            (
                "developers_by_changesets",
                "By changesets",
                &self.developers_by_changesets,
            ),
            (
                "developers_by_lines",
                match self.changed_lines_rule {
                    ChangedLines::PerDeveloper => "By changed lines (per developer)",
                    ChangedLines::PerChangeset => "By changed lines (per changeset)",
                },
                &self.developers_by_lines,
            ),
            (
                "employers_by_changesets",
                "By changesets",
                &self.employers_by_changesets,
            ),
            (
                "employers_by_lines",
                "By lines changed",
                &self.employers_by_lines,
            ),
            (
                "signoffs_by_person",
                "Individuals",
                &self.signoffs_by_person,
            ),
            (
                "signoffs_by_employer",
                "Employers",
                &self.signoffs_by_employer,
            ),
        ]
    }
}

/// Groups digits by thousands: `408123` → `408,123`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn clip(name: &str, width: usize) -> String {
    if name.chars().count() <= width {
        name.to_owned()
    } else {
        let mut s: String = name.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// Two ranked tables side by side, `top` rows each.
fn pair(title: &str, left: (&str, &[Ranked]), right: (&str, &[Ranked]), top: usize) -> String {
    const NAME: usize = 28;
    let col = |r: Option<&Ranked>| match r {
        Some(r) => format!(
            "{:<NAME$} {:>8} {:>5.1}%",
            clip(&r.name, NAME),
            r.count,
            r.percent
        ),
        None => String::new(),
    };
    let width = NAME + 1 + 8 + 1 + 6;
    let mut out = format!("{title}\n{:<width$}    {}\n", left.0, right.0);
    let rows = left.1.len().min(top).max(right.1.len().min(top));
    for i in 0..rows {
        let l = col(left.1.get(i).filter(|_| i < top));
        let r = col(right.1.get(i).filter(|_| i < top));
        let line = format!("{l:<width$}    {r}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if rows == 0 {
        out.push_str("(none)\n");
    }
    out
}

/// The terminal report, `top` rows per table.
pub fn text(report: &Report, top: usize) -> String {
    let s = &report.summary;
    let mut out = format!("Development statistics for {}\n\n", report.range);
    out.push_str(&format!(
        "{} non-merge changesets from {} developers; {} lines added, {} removed, net growth {}{} lines.\n",
        thousands(s.changesets),
        thousands(s.developers),
        thousands(s.added),
        thousands(s.removed),
        if s.net_growth < 0 { "-" } else { "" },
        thousands(s.net_growth.unsigned_abs()),
    ));
    out.push_str(&format!(
        "The developers were supported by a minimum of {} employers.\n",
        thousands(s.employers_at_least)
    ));
    out.push_str(&format!(
        "A developer's changed lines: {} (--changed-lines {}).\n",
        report.changed_lines_rule.formula(),
        report.changed_lines_rule.name()
    ));
    out.push_str(&format!(
        "{} non-author signoffs ({} author signoffs not counted); {} other tags; {} malformed tag lines.\n",
        thousands(s.non_author_signoffs),
        thousands(s.author_signoffs),
        thousands(s.other_tags),
        thousands(s.malformed_tags),
    ));
    if report.rename_limit_hits > 0 {
        out.push_str(&format!(
            "{} commits had too many files for inexact rename detection (diff.renameLimit), as git also reports.\n",
            report.rename_limit_hits
        ));
    }
    let t = report.tables();
    out.push('\n');
    out.push_str(&pair(
        "Most active developers",
        (t[0].1, t[0].2),
        (t[1].1, t[1].2),
        top,
    ));
    out.push('\n');
    out.push_str(&pair(
        "Most active employers",
        (t[2].1, t[2].2),
        (t[3].1, t[3].2),
        top,
    ));
    out.push('\n');
    out.push_str(&pair(
        "Top non-author signoffs",
        (t[4].1, t[4].2),
        (t[5].1, t[5].2),
        top,
    ));
    if let Some(h) = report.hands.get(1).or(report.hands.first()) {
        out.push('\n');
        out.push_str(&hands_sentence(h));
    }
    out
}

/// "49.8% of the patches ... passed through the hands of ..." for one row.
pub fn hands_sentence(h: &Hands) -> String {
    format!(
        "{:.1}% of the non-author signoffs came from developers working for the top {} employer{} ({}); \
         {:.1}% of the changesets carry a signoff from one of them.\n",
        h.signoff_share,
        h.n,
        if h.n == 1 { "" } else { "s" },
        h.employers.join(", "),
        h.patch_share
    )
}

/// The report as pretty JSON.
pub fn json(report: &Report) -> String {
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> DevstatsError + '_ {
    move |source| DevstatsError::Output {
        path: path.to_owned(),
        source,
    }
}

fn staged(
    dir: &Path,
    target: &Path,
    bytes: &[u8],
) -> Result<tempfile::NamedTempFile, DevstatsError> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".devstats.")
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.write_all(bytes).map_err(io_err(target))?;
    tmp.as_file().sync_all().map_err(io_err(target))?;
    Ok(tmp)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes the JSON report to `path` atomically. A `path` that exists and
/// is not a regular file (`/dev/null`, a FIFO, `/dev/stdout`) is written
/// in place: renaming over it would replace a device node with a file.
pub fn write_json(path: &Path, report: &Report) -> Result<(), DevstatsError> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        return std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .and_then(|mut f| f.write_all(json(report).as_bytes()))
            .map_err(io_err(path));
    }
    let tmp = staged(parent_dir(path), path, json(report).as_bytes())?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    Ok(())
}

/// One table as CSV: `rank,name,count,percent`.
pub fn csv_table(rows: &[Ranked]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["rank", "name", "count", "percent"])?;
    for (i, r) in rows.iter().enumerate() {
        w.write_record([
            (i + 1).to_string(),
            r.name.clone(),
            r.count.to_string(),
            format!("{:.3}", r.percent),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The developers-by-lines table as CSV, each row naming the rule it was
/// counted by: `rank,name,count,percent,changed_lines_rule`.
pub fn csv_table_with_rule(rows: &[Ranked], rule: ChangedLines) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["rank", "name", "count", "percent", "changed_lines_rule"])?;
    for (i, r) in rows.iter().enumerate() {
        w.write_record([
            (i + 1).to_string(),
            r.name.clone(),
            r.count.to_string(),
            format!("{:.3}", r.percent),
            rule.name().to_owned(),
        ])?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// Writes one CSV file per table, plus `summary.csv` and `hands.csv`, into
/// `dir` (created if missing). All files are staged first and renamed only
/// when every one is complete. Returns the paths written.
pub fn write_csv(dir: &Path, report: &Report) -> Result<Vec<PathBuf>, DevstatsError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let csv_err = |e: csv::Error| DevstatsError::Output {
        path: dir.to_owned(),
        source: std::io::Error::other(e.to_string()),
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    for (stem, _, rows) in report.tables() {
        let bytes = if stem == "developers_by_lines" {
            csv_table_with_rule(rows, report.changed_lines_rule)
        } else {
            csv_table(rows)
        };
        files.push((format!("{stem}.csv"), bytes.map_err(csv_err)?));
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let s = &report.summary;
    w.write_record(["measure", "value"]).map_err(csv_err)?;
    for (k, v) in [
        ("range", report.range.clone()),
        ("changesets", s.changesets.to_string()),
        ("developers", s.developers.to_string()),
        ("employers_at_least", s.employers_at_least.to_string()),
        ("lines_added", s.added.to_string()),
        ("lines_removed", s.removed.to_string()),
        ("net_growth", s.net_growth.to_string()),
        ("lines_changed", s.changed.to_string()),
        (
            "changed_lines_rule",
            report.changed_lines_rule.name().to_owned(),
        ),
        ("non_author_signoffs", s.non_author_signoffs.to_string()),
        ("author_signoffs", s.author_signoffs.to_string()),
        ("other_tags", s.other_tags.to_string()),
        ("malformed_tags", s.malformed_tags.to_string()),
        ("rename_limit_hits", report.rename_limit_hits.to_string()),
    ] {
        w.write_record([k, v.as_str()]).map_err(csv_err)?;
    }
    files.push((
        "summary.csv".into(),
        w.into_inner().map_err(|e| csv_err(e.into_error().into()))?,
    ));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "top_n",
        "employers",
        "signoff_share_percent",
        "patch_share_percent",
    ])
    .map_err(csv_err)?;
    for h in &report.hands {
        w.write_record([
            h.n.to_string(),
            h.employers.join("; "),
            format!("{:.3}", h.signoff_share),
            format!("{:.3}", h.patch_share),
        ])
        .map_err(csv_err)?;
    }
    files.push((
        "hands.csv".into(),
        w.into_inner().map_err(|e| csv_err(e.into_error().into()))?,
    ));

    let mut stage = Vec::new();
    for (name, bytes) in &files {
        let target = dir.join(name);
        stage.push((staged(dir, &target, bytes)?, target));
    }
    let mut written = Vec::new();
    for (tmp, target) in stage {
        tmp.persist(&target).map_err(|e| io_err(&target)(e.error))?;
        written.push(target);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_get_the_umask_mode_and_a_special_target_is_written_in_place() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let report = Report::new(&Stats::default(), "HEAD", 1, 0);
        // Whatever the umask, the mode is no longer tempfile's fixed 0600:
        // 0666 less the umask, as File::create gives.
        let probe = dir.path().join("probe");
        std::fs::File::create(&probe).unwrap();
        let want = std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777;
        let json_path = dir.path().join("r.json");
        write_json(&json_path, &report).unwrap();
        let got = std::fs::metadata(&json_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(got, want, "{got:o}");
        for f in write_csv(&dir.path().join("csv"), &report).unwrap() {
            let got = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            assert_eq!(got, want, "{}: {got:o}", f.display());
        }
        let link = dir.path().join("zero.json");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        write_json(&link, &report).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn thousands_group_by_three() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10663), "10,663");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn csv_quotes_names_with_commas() {
        let rows = [Ranked {
            name: "Doe, \"JD\" John".into(),
            count: 3,
            percent: 37.5,
        }];
        let text = String::from_utf8(csv_table(&rows).unwrap()).unwrap();
        assert_eq!(
            text,
            "rank,name,count,percent\n1,\"Doe, \"\"JD\"\" John\",3,37.500\n"
        );
    }

    #[test]
    fn side_by_side_tables_pad_the_shorter_column() {
        let r = |n: &str, c| Ranked {
            name: n.into(),
            count: c,
            percent: c as f64,
        };
        let t = pair("T", ("L", &[r("a", 2), r("b", 1)]), ("R", &[r("c", 5)]), 20);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        let left = format!("{:<28} {:>8} {:>5.1}%", "a", 2, 2.0);
        let right = format!("{:<28} {:>8} {:>5.1}%", "c", 5, 5.0);
        assert_eq!(lines[2], format!("{left}    {right}"));
        assert_eq!(lines[3], format!("{:<28} {:>8} {:>5.1}%", "b", 1, 1.0));
    }
}
