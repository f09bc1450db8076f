//! The report contract: the one shape every experiment returns.
//!
//! ```text
//! Report {
//!   experiment, seed_page, claim,      what was tested, and where the claim comes from
//!   config:  { key: value, .. }        every parameter that changes a number, seed included
//!   tables:  [ { title, columns, rows } ]
//!   series:  [ { title, x: Axis, y: Axis, kind, lines: [ { name, points: [[x, y], ..] } ] } ]
//!   verdict: { holds: true | false | null, measured, note }
//!   host:    { real, deterministic, notes }
//! }
//! ```
//!
//! `klab run` prints, stores and plots any report without knowing which
//! experiment made it; a new experiment adds nothing to the writers.
//!
//! # Determinism
//!
//! A report whose `host.deterministic` is true must be a pure function of the
//! experiment's configuration (seed included): the same configuration gives
//! byte-identical JSON. Reports that time real work on the host set it to
//! false; their numbers vary from run to run, and the writers say so.
//! Floats are written by `serde_json` (shortest round-trip form), non-finite
//! floats as `null`, and maps are ordered, so nothing else varies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the report format written into `report.json`.
pub const FORMAT_VERSION: u32 = 1;

/// `report.json`: every report of one `klab run`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReportFile {
    /// The klab version that wrote the file.
    pub klab_version: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// The reports, in the order the experiments ran.
    pub reports: Vec<Report>,
}

/// What one experiment measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Registry name of the experiment (`radix-tree`, `workingset`, ...).
    pub experiment: String,
    /// The seed page the claim comes from (a file name under `shared/seeds/`).
    pub seed_page: String,
    /// The page's claim, in klab's words.
    pub claim: String,
    /// Every parameter that changes a number, the seed included.
    pub config: BTreeMap<String, Cell>,
    /// Tables, in the order they should be shown.
    pub tables: Vec<Table>,
    /// Series, one plot each.
    pub series: Vec<Series>,
    /// What was measured against the claim.
    pub verdict: Verdict,
    /// What ran for real on the host.
    pub host: Host,
}

impl Report {
    /// An empty report for an experiment: no tables, no series, no verdict yet.
    pub fn new(experiment: &str, seed_page: &str, claim: &str) -> Self {
        Report {
            experiment: experiment.to_owned(),
            seed_page: seed_page.to_owned(),
            claim: claim.to_owned(),
            config: BTreeMap::new(),
            tables: Vec::new(),
            series: Vec::new(),
            verdict: Verdict::default(),
            host: Host::model(),
        }
    }

    /// Records a configuration parameter.
    pub fn config(&mut self, key: &str, value: impl Into<Cell>) -> &mut Self {
        self.config.insert(key.to_owned(), value.into());
        self
    }

    /// Appends a table.
    pub fn table(&mut self, table: Table) -> &mut Self {
        self.tables.push(table);
        self
    }

    /// Appends a series.
    pub fn series(&mut self, series: Series) -> &mut Self {
        self.series.push(series);
        self
    }
}

/// One value in a table or in the configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Cell {
    /// A missing value, or a float that was not finite.
    Null,
    /// A boolean.
    Bool(bool),
    /// A non-negative integer.
    UInt(u64),
    /// A negative integer (non-negative ones deserialize as [`Cell::UInt`]).
    Int(i64),
    /// A float; written as `null` when not finite.
    Float(#[serde(serialize_with = "finite_or_null")] f64),
    /// Text.
    Text(String),
}

fn finite_or_null<S: serde::Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

impl Cell {
    /// The value as shown in the terminal and in HTML tables: integers in
    /// full, floats with up to four significant decimals.
    pub fn display(&self) -> String {
        match self {
            Cell::Null => "-".to_owned(),
            Cell::Bool(b) => b.to_string(),
            Cell::UInt(v) => v.to_string(),
            Cell::Int(v) => v.to_string(),
            Cell::Float(v) => format_float(*v),
            Cell::Text(t) => t.clone(),
        }
    }

    /// True for numbers (right-aligned in tables).
    pub fn is_numeric(&self) -> bool {
        matches!(self, Cell::UInt(_) | Cell::Int(_) | Cell::Float(_))
    }
}

/// Formats a float for people: fixed notation with a precision that keeps
/// about four significant digits, scientific beyond 1e9 or below 1e-4.
pub fn format_float(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let a = v.abs();
    if a == 0.0 {
        "0".to_owned()
    } else if !(1e-4..1e9).contains(&a) {
        format!("{v:.3e}")
    } else if a >= 100.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

macro_rules! cell_from_uint {
    ($($t:ty),*) => {$(
        impl From<$t> for Cell {
            fn from(v: $t) -> Self { Cell::UInt(v as u64) }
        }
    )*};
}
cell_from_uint!(u8, u16, u32, u64, usize);

macro_rules! cell_from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Cell {
            fn from(v: $t) -> Self {
                let v = v as i64;
                if v >= 0 { Cell::UInt(v as u64) } else { Cell::Int(v) }
            }
        }
    )*};
}
cell_from_int!(i8, i16, i32, i64, isize);

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Float(v)
    }
}
impl From<f32> for Cell {
    fn from(v: f32) -> Self {
        Cell::Float(f64::from(v))
    }
}
impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Bool(v)
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_owned())
    }
}
impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}
impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(v: Option<T>) -> Self {
        v.map_or(Cell::Null, Into::into)
    }
}

/// Builds a `Vec<Cell>` from values of mixed types: `cells![1u64, 0.5, "x"]`.
#[macro_export]
macro_rules! cells {
    ($($v:expr),* $(,)?) => { vec![$($crate::report::Cell::from($v)),*] };
}

/// A table: a title, column names and rows of cells.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// What the table shows.
    pub title: String,
    /// Column headers, units in parentheses where they apply.
    pub columns: Vec<String>,
    /// Rows; each has one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// An empty table.
    pub fn new(title: &str, columns: &[&str]) -> Self {
        Table {
            title: title.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row.
    ///
    /// # Panics
    /// If the row's length differs from the number of columns: that is a bug
    /// in the experiment, not bad input.
    pub fn row(&mut self, cells: Vec<Cell>) -> &mut Self {
        assert_eq!(
            cells.len(),
            self.columns.len(),
            "table {:?}: row of {} cells for {} columns",
            self.title,
            cells.len(),
            self.columns.len()
        );
        self.rows.push(cells);
        self
    }
}

/// How an axis maps values to positions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Linear.
    #[default]
    Linear,
    /// Base-10 logarithmic; non-positive values are left out of the plot.
    Log,
}

/// One axis of a plot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// What is measured.
    pub label: String,
    /// Its unit (`pages`, `ns`, `%`), or empty.
    pub unit: String,
    /// Linear or logarithmic.
    pub scale: Scale,
}

impl Axis {
    /// A linear axis.
    pub fn linear(label: &str, unit: &str) -> Self {
        Axis {
            label: label.to_owned(),
            unit: unit.to_owned(),
            scale: Scale::Linear,
        }
    }

    /// A logarithmic axis.
    pub fn log(label: &str, unit: &str) -> Self {
        Axis {
            label: label.to_owned(),
            unit: unit.to_owned(),
            scale: Scale::Log,
        }
    }

    /// `label (unit)`, or the label alone.
    pub fn caption(&self) -> String {
        if self.unit.is_empty() {
            self.label.clone()
        } else {
            format!("{} ({})", self.label, self.unit)
        }
    }
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlotKind {
    /// Points joined by lines (a quantity against a parameter or time).
    #[default]
    Line,
    /// Points only.
    Scatter,
}

/// Data for one plot: several named lines over the same axes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// What the plot shows.
    pub title: String,
    /// The horizontal axis.
    pub x: Axis,
    /// The vertical axis.
    pub y: Axis,
    /// Lines or points.
    pub kind: PlotKind,
    /// The lines, each with its points in drawing order.
    pub lines: Vec<Line>,
}

impl Series {
    /// A line plot with no lines yet.
    pub fn new(title: &str, x: Axis, y: Axis) -> Self {
        Series {
            title: title.to_owned(),
            x,
            y,
            kind: PlotKind::Line,
            lines: Vec::new(),
        }
    }

    /// Draws points only.
    pub fn scatter(mut self) -> Self {
        self.kind = PlotKind::Scatter;
        self
    }

    /// Appends a line.
    pub fn line(&mut self, name: &str, points: Vec<[f64; 2]>) -> &mut Self {
        self.lines.push(Line {
            name: name.to_owned(),
            points,
        });
        self
    }
}

/// One named line of a [`Series`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Legend entry.
    pub name: String,
    /// `[x, y]` pairs.
    pub points: Vec<[f64; 2]>,
}

/// What was measured against the claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Whether the claim holds as measured; `None` when the experiment
    /// answers an open question rather than checking a claim.
    pub holds: Option<bool>,
    /// The measurement behind the verdict, in one or two sentences of numbers.
    pub measured: String,
    /// Caveats: what the model simplifies, what the host could not do.
    pub note: String,
}

/// What ran for real on the host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// True when some number comes from real work on this machine (threads,
    /// memory, sockets, wall-clock timing) rather than from the model.
    pub real: bool,
    /// True when the report is a pure function of its configuration.
    pub deterministic: bool,
    /// What of the host was used or missing (`"no CAP_NET_ADMIN: skipped"`).
    pub notes: Vec<String>,
}

impl Host {
    /// Everything in the model: deterministic, nothing real.
    pub fn model() -> Self {
        Host {
            real: false,
            deterministic: true,
            notes: Vec::new(),
        }
    }

    /// Real work on the host whose numbers vary between runs.
    pub fn measured(notes: Vec<String>) -> Self {
        Host {
            real: true,
            deterministic: false,
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_serialize_as_plain_json_values() {
        let row = cells![1u32, -2i64, 0.5, "x", true, None::<u64>, f64::NAN];
        let json = serde_json::to_string(&row).unwrap();
        assert_eq!(json, r#"[1,-2,0.5,"x",true,null,null]"#);
    }

    #[test]
    fn cells_round_trip_through_json() {
        let row = cells![7u64, -3i32, 2.25, "text", false];
        let back: Vec<Cell> = serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap();
        assert_eq!(back, row);
    }

    #[test]
    fn floats_display_with_about_four_digits() {
        assert_eq!(format_float(0.0), "0");
        assert_eq!(format_float(0.123456), "0.1235");
        assert_eq!(format_float(3.45678), "3.457");
        assert_eq!(format_float(1234.56), "1234.6");
        assert_eq!(format_float(2.5e10), "2.500e10");
        assert_eq!(format_float(f64::INFINITY), "-");
    }

    #[test]
    #[should_panic(expected = "row of 1 cells for 2 columns")]
    fn a_row_must_fill_every_column() {
        Table::new("t", &["a", "b"]).row(cells![1u8]);
    }
}
