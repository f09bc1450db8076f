//! The three writers of a run's reports: terminal text, `report.json` and a
//! self-contained `report.html`.
//!
//! The HTML file fetches nothing when opened: styles, plots (inline SVG) and
//! a small script are all in the file. The script checks the page against
//! the report data embedded in it (every experiment has its section, every
//! series its plot with a non-empty drawing, every table its rows) and
//! reports each problem with `console.error`; when all is well it marks
//! `<body data-klab-check="ok">`. CI loads the page in a real browser and
//! fails on a console error or a missing mark.

use std::fmt::Write as _;

use crate::plot;
use crate::report::{Report, ReportFile, Table};

/// The reports as pretty-printed JSON, ending with a newline.
pub fn json(file: &ReportFile) -> String {
    let mut s = serde_json::to_string_pretty(file)
        .expect("reports serialize: no maps with non-string keys");
    s.push('\n');
    s
}

/// One report as terminal text.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== {}  ({})", report.experiment, report.seed_page);
    let _ = writeln!(out, "claim:    {}", report.claim);
    let _ = writeln!(
        out,
        "verdict:  {}{}",
        verdict_word(report.verdict.holds),
        if report.verdict.measured.is_empty() {
            String::new()
        } else {
            format!(": {}", report.verdict.measured)
        }
    );
    if !report.verdict.note.is_empty() {
        let _ = writeln!(out, "note:     {}", report.verdict.note);
    }
    let _ = writeln!(out, "host:     {}", host_line(report));
    if !report.config.is_empty() {
        let cfg: Vec<String> = report
            .config
            .iter()
            .map(|(k, v)| format!("{k}={}", v.display()))
            .collect();
        let _ = writeln!(out, "config:   {}", cfg.join(" "));
    }
    for t in &report.tables {
        out.push('\n');
        out.push_str(&text_table(t));
    }
    if !report.series.is_empty() {
        let titles: Vec<&str> = report.series.iter().map(|s| s.title.as_str()).collect();
        let _ = writeln!(out, "\nplots in report.html: {}", titles.join("; "));
    }
    out
}

fn verdict_word(holds: Option<bool>) -> &'static str {
    match holds {
        Some(true) => "HOLDS",
        Some(false) => "DOES NOT HOLD",
        None => "ANSWERED",
    }
}

fn host_line(report: &Report) -> String {
    let mut s = String::from(match (report.host.real, report.host.deterministic) {
        (false, _) => "model (deterministic)",
        (true, true) => "real work on this host (deterministic)",
        (true, false) => "real work on this host (timings vary between runs)",
    });
    for n in &report.host.notes {
        s.push_str("; ");
        s.push_str(n);
    }
    s
}

/// A table with aligned columns: numbers right-aligned, text left-aligned.
pub fn text_table(t: &Table) -> String {
    let cells: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(|c| c.display()).collect())
        .collect();
    let widths: Vec<usize> = (0..t.columns.len())
        .map(|i| {
            cells
                .iter()
                .map(|r| r[i].chars().count())
                .chain([t.columns[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("-- {}\n", t.title);
    let header: Vec<String> = t
        .columns
        .iter()
        .zip(&widths)
        .map(|(c, w)| format!("{c:<w$}"))
        .collect();
    out.push_str(header.join("  ").trim_end());
    out.push('\n');
    for (row, raw) in cells.iter().zip(&t.rows) {
        let line: Vec<String> = row
            .iter()
            .zip(raw)
            .zip(&widths)
            .map(|((s, c), w)| {
                if c.is_numeric() {
                    format!("{s:>w$}")
                } else {
                    format!("{s:<w$}")
                }
            })
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The element id of an experiment's section.
pub fn section_id(experiment: &str) -> String {
    format!("exp-{experiment}")
}

const STYLE: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1em 2em; color: #222; }
h1 { margin-bottom: 0.2em; }
nav ul { columns: 2; padding-left: 1.2em; }
section.experiment { border-top: 2px solid #ccc; margin-top: 2em; padding-top: 0.5em; }
.claim { font-style: italic; }
.verdict { padding: 0.4em 0.8em; border-radius: 4px; display: inline-block; }
.holds { background: #e3f5e1; } .fails { background: #fbe3e1; } .open { background: #e6eefb; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure.plot { margin: 0.6em 0 1.4em; }
figure.plot figcaption { font-weight: 600; margin-bottom: 0.3em; }
ul.legend { list-style: none; padding: 0; margin: 0.2em 0 0; font-size: 0.85em; columns: 3; }
ul.legend .swatch { display: inline-block; width: 1.4em; height: 0.3em; margin-right: 0.4em; vertical-align: middle; }
.config, .host { font-size: 0.9em; color: #555; }
"#;

/// The self-check run by the browser: every report in the embedded data has
/// its section, one drawn plot per series and every table row.
const CHECK: &str = r#"
(function () {
  var data = JSON.parse(document.getElementById('klab-data').textContent);
  var problems = 0;
  function fail(msg) { problems++; console.error('klab-report: ' + msg); }
  data.reports.forEach(function (r) {
    var sec = document.getElementById('exp-' + r.experiment);
    if (!sec) { fail('missing section for ' + r.experiment); return; }
    var plots = sec.querySelectorAll('figure.plot');
    if (plots.length !== r.series.length) fail(r.experiment + ': ' + plots.length + ' plots for ' + r.series.length + ' series');
    plots.forEach(function (f, i) {
      var svg = f.querySelector('svg');
      if (!svg) { fail(r.experiment + ': plot ' + i + ' has no svg'); return; }
      var box = svg.getBoundingClientRect();
      if (box.width < 10 || box.height < 10) fail(r.experiment + ': plot ' + i + ' is not drawn');
      if (svg.querySelectorAll('polyline, circle, text').length === 0) fail(r.experiment + ': plot ' + i + ' is empty');
    });
    var tables = sec.querySelectorAll('table.data');
    if (tables.length !== r.tables.length) fail(r.experiment + ': ' + tables.length + ' tables for ' + r.tables.length);
    tables.forEach(function (t, i) {
      var rows = t.querySelectorAll('tbody tr').length;
      if (r.tables[i] && rows !== r.tables[i].rows.length) fail(r.experiment + ': table ' + i + ' shows ' + rows + ' rows');
    });
  });
  if (problems === 0) {
    document.body.setAttribute('data-klab-check', 'ok');
    console.log('klab-report: ok, ' + data.reports.length + ' experiments');
  }
})();
"#;

/// The whole run as one self-contained HTML page.
pub fn html(file: &ReportFile) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        out,
        "<title>klab report</title>\n<style>{STYLE}</style>\n</head>\n<body>"
    );
    let _ = writeln!(
        out,
        "<h1>klab report</h1>\n<p>klab {} &middot; {} experiment(s). Each section tests one claim of an LWN kernel page.</p>",
        escape(&file.klab_version),
        file.reports.len()
    );
    out.push_str("<nav><ul>\n");
    for r in &file.reports {
        let _ = writeln!(
            out,
            "<li><a href=\"#{}\">{}</a>: {}</li>",
            escape(&section_id(&r.experiment)),
            escape(&r.experiment),
            verdict_word(r.verdict.holds)
        );
    }
    out.push_str("</ul></nav>\n");
    for r in &file.reports {
        section(&mut out, r);
    }
    // The data, for the self-check (and for anyone who saves the page).
    // `</` is escaped so the JSON cannot close the script element.
    let data = serde_json::to_string(file)
        .expect("reports serialize")
        .replace("</", "<\\/");
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"klab-data\">{data}</script>"
    );
    let _ = writeln!(out, "<script>{CHECK}</script>\n</body>\n</html>");
    out
}

fn section(out: &mut String, r: &Report) {
    let _ = writeln!(
        out,
        "<section class=\"experiment\" id=\"{}\" data-experiment=\"{}\">",
        escape(&section_id(&r.experiment)),
        escape(&r.experiment)
    );
    let _ = writeln!(
        out,
        "<h2>{}</h2>\n<p>Seed page: <code>{}</code></p>\n<p class=\"claim\">{}</p>",
        escape(&r.experiment),
        escape(&r.seed_page),
        escape(&r.claim)
    );
    let class = match r.verdict.holds {
        Some(true) => "holds",
        Some(false) => "fails",
        None => "open",
    };
    let _ = writeln!(
        out,
        "<p class=\"verdict {class}\"><strong>{}</strong> {}</p>",
        verdict_word(r.verdict.holds),
        escape(&r.verdict.measured)
    );
    if !r.verdict.note.is_empty() {
        let _ = writeln!(out, "<p>{}</p>", escape(&r.verdict.note));
    }
    let _ = writeln!(out, "<p class=\"host\">Host: {}</p>", escape(&host_line(r)));
    if !r.config.is_empty() {
        let cfg: Vec<String> = r
            .config
            .iter()
            .map(|(k, v)| format!("{}={}", escape(k), escape(&v.display())))
            .collect();
        let _ = writeln!(
            out,
            "<p class=\"config\">Configuration: <code>{}</code></p>",
            cfg.join(" ")
        );
    }
    for (i, s) in r.series.iter().enumerate() {
        let _ = writeln!(
            out,
            "<figure class=\"plot\" data-series=\"{i}\"><figcaption>{}</figcaption>\n{}\n{}</figure>",
            escape(&s.title),
            plot::svg(s),
            plot::legend_html(s)
        );
    }
    for t in &r.tables {
        html_table(out, t);
    }
    out.push_str("</section>\n");
}

fn html_table(out: &mut String, t: &Table) {
    let _ = write!(
        out,
        "<table class=\"data\"><caption>{}</caption><thead><tr>",
        escape(&t.title)
    );
    for c in &t.columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead><tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for c in row {
            let class = if c.is_numeric() { " class=\"num\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(&c.display()));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cells;
    use crate::report::{Axis, Series, Verdict};

    fn sample() -> ReportFile {
        let mut r = Report::new("demo", "004_x.txt", "trees are <fast> & small");
        r.config("seed", 1u64);
        let mut t = Table::new("sizes", &["keys", "nodes", "name"]);
        t.row(cells![10u64, 1u64, "dense"])
            .row(cells![1000u64, 17u64, "sparse"]);
        r.table(t);
        let mut s = Series::new(
            "height",
            Axis::log("largest key", ""),
            Axis::linear("height", "levels"),
        );
        s.line("tree", vec![[1.0, 1.0], [64.0, 2.0], [4096.0, 3.0]]);
        r.series(s);
        r.verdict = Verdict {
            holds: Some(true),
            measured: "3 levels for 4096 keys".into(),
            note: String::new(),
        };
        ReportFile {
            klab_version: "0.1.0".into(),
            format: crate::report::FORMAT_VERSION,
            reports: vec![r],
        }
    }

    #[test]
    fn text_report_aligns_numbers_right() {
        let out = text(&sample().reports[0]);
        assert!(
            out.contains("verdict:  HOLDS: 3 levels for 4096 keys"),
            "{out}"
        );
        assert!(
            out.contains("keys  nodes  name\n  10      1  dense\n1000     17  sparse\n"),
            "{out}"
        );
    }

    #[test]
    fn html_has_a_section_plot_and_table_per_report_and_escapes_text() {
        let h = html(&sample());
        assert_eq!(
            h.matches("<section class=\"experiment\" id=\"exp-demo\"")
                .count(),
            1
        );
        assert_eq!(h.matches("<figure class=\"plot\"").count(), 1);
        assert_eq!(h.matches("<table class=\"data\">").count(), 1);
        assert!(h.contains("trees are &lt;fast&gt; &amp; small"));
        assert!(
            !h.contains("src=\"http") && !h.contains("href=\"http"),
            "nothing fetched"
        );
    }

    #[test]
    fn embedded_data_cannot_close_its_script() {
        let mut f = sample();
        f.reports[0].claim = "</script><script>alert(1)</script>".into();
        let h = html(&f);
        assert_eq!(
            h.matches("</script>").count(),
            2,
            "only the two real script ends"
        );
    }

    #[test]
    fn json_round_trips() {
        let f = sample();
        let back: ReportFile = serde_json::from_str(&json(&f)).unwrap();
        assert_eq!(back, f);
    }
}
