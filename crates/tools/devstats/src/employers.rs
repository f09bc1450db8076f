//! The employer map: which company an address or a domain worked for, and
//! until when. Mirrors gitdm's `ConfigFile.py` `ReadEmailEmployers()` and
//! `database.py` `AddEmailEmployerMapping()` / `MapToEmployer()`.
//!
//! # File format (gitdm's `EmailMap`)
//!
//! ```text
//! # comment: everything from '#' to the end of the line is dropped
//! torvalds@linux-foundation.org   Linux Foundation
//! redhat.com                      Red Hat
//! someone@example.org             (None)
//! jdoe@oldcorp.com                OldCorp < 2009-06-01
//! jdoe@oldcorp.com                NewCorp
//! ```
//!
//! One entry per line: an address or a domain (no white space), white
//! space, the employer's name (no `<`), and optionally `< yyyy-mm-dd`: the
//! entry is valid **until** that date (exclusive). An entry without a date
//! is valid for ever (gitdm says "until a year from today", which is the
//! same for any history that has happened).
//!
//! # Lookup
//!
//! ```text
//!   key → [(end_1, employer), (end_2, employer), ..., (∞, employer)]
//!          sorted by end date; equal ends keep file order
//! ```
//!
//! For an address `user@a.b.c` on day D: the address is lower-cased and
//! `" at "` becomes `"@"`; the list for the whole address is used if there
//! is one, else the list of the first domain suffix found going from the
//! shortest with two labels to the longest (`b.c`, then `a.b.c`: gitdm's
//! order); in that list the first entry whose end is after D wins. An
//! address no entry covers belongs to `"(Unknown)"` (gitdm's `-u`), as does
//! one whose list has ended before D.
//!
//! Invariant: every list is sorted by end date (`None` = ∞ last), and every
//! key is lower-case.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::date::Date;
use crate::error::EmployerMapError;

/// The employer of an address no entry covers.
pub const UNKNOWN: &str = "(Unknown)";
/// The employer of developers the map says work on their own time.
pub const NONE: &str = "(None)";

/// A parsed employer map.
#[derive(Debug, Clone, Default)]
pub struct EmployerMap {
    /// Lower-cased address or domain → entries sorted by end date.
    entries: BTreeMap<String, Vec<(Option<Date>, usize)>>,
    /// Employer names, in order of first appearance.
    names: Vec<String>,
    /// Lines gitdm would warn about (a second undated entry for a key).
    warnings: Vec<EmployerMapError>,
}

impl EmployerMap {
    /// An empty map: every address is `(Unknown)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and parses a map file.
    pub fn load(path: &Path) -> Result<Self, EmployerMapError> {
        let bytes = std::fs::read(path).map_err(|e| EmployerMapError {
            path: path.to_owned(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        Self::parse_bytes(&bytes, path)
    }

    /// Parses map text read from `path` (used in error messages).
    pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Self, EmployerMapError> {
        let mut map = EmployerMap::new();
        for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let err = |message: String| EmployerMapError {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            let Ok(text) = std::str::from_utf8(raw) else {
                return Err(err("not valid UTF-8".to_owned()));
            };
            let text = text.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            let (key, employer, end) = parse_entry(text).map_err(|m| err(m.to_owned()))?;
            if let Some(w) = map.add(key, employer, end) {
                map.warnings.push(err(w));
            }
        }
        Ok(map)
    }

    /// Parses map text held in memory.
    pub fn parse(text: &str) -> Result<Self, EmployerMapError> {
        Self::parse_bytes(text.as_bytes(), &PathBuf::from("<memory>"))
    }

    /// Adds one entry (gitdm's `AddEmailEmployerMapping`). Returns a warning
    /// when the key already had an entry with the same end.
    pub fn add(&mut self, key: &str, employer: &str, end: Option<Date>) -> Option<String> {
        let idx = match self.names.iter().position(|n| n == employer) {
            Some(i) => i,
            None => {
                self.names.push(employer.to_owned());
                self.names.len() - 1
            }
        };
        let list = self.entries.entry(key.to_lowercase()).or_default();
        let warning = list
            .iter()
            .any(|(e, _)| *e == end)
            .then(|| format!("duplicate entry for {key} with the same end date"));
        // Insert before the first entry that ends strictly later; equal ends
        // keep file order. `None` (valid for ever) sorts last.
        let later = |e: &Option<Date>| match (e, &end) {
            (None, None) => false,
            (None, Some(_)) => true,
            (Some(_), None) => false,
            (Some(a), Some(b)) => a > b,
        };
        let at = list
            .iter()
            .position(|(e, _)| later(e))
            .unwrap_or(list.len());
        list.insert(at, (end, idx));
        warning
    }

    /// The employer of `email` on `date`.
    pub fn lookup(&self, email: &str, date: Date) -> &str {
        let email = email.to_lowercase().replace(" at ", "@");
        let Some(list) = self.list_for(&email) else {
            return UNKNOWN;
        };
        list.iter()
            .find(|(end, _)| end.is_none_or(|e| e > date))
            .map_or(UNKNOWN, |&(_, i)| self.names[i].as_str())
    }

    fn list_for(&self, email: &str) -> Option<&Vec<(Option<Date>, usize)>> {
        if let Some(l) = self.entries.get(email) {
            return Some(l);
        }
        let (_, domain) = email.split_once('@')?;
        let labels: Vec<&str> = domain.split('.').collect();
        // gitdm: for dots in range(len(s) - 2, -1, -1): '.'.join(s[dots:])
        (0..labels.len().saturating_sub(1))
            .rev()
            .find_map(|start| self.entries.get(&labels[start..].join(".")))
    }

    /// Warnings gitdm would print (duplicate entries), with file and line.
    pub fn warnings(&self) -> &[EmployerMapError] {
        &self.warnings
    }

    /// Number of keys (addresses and domains).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Checks the invariant in the module header.
    pub fn assert_invariants(&self) {
        for (key, list) in &self.entries {
            assert_eq!(*key, key.to_lowercase());
            assert!(!list.is_empty());
            for w in list.windows(2) {
                match (w[0].0, w[1].0) {
                    (Some(a), Some(b)) => assert!(a <= b),
                    (None, Some(_)) => panic!("{key}: undated entry before a dated one"),
                    _ => {}
                }
            }
            assert!(list.iter().all(|&(_, i)| i < self.names.len()));
        }
    }
}

/// One non-empty, comment-stripped line: `KEY EMPLOYER [< yyyy-mm-dd]`
/// (gitdm's `^([^\s]+)\s+([^<]+)\s*(<\s*(\d+-\d+-\d+)\s*)?$`).
fn parse_entry(text: &str) -> Result<(&str, &str, Option<Date>), &'static str> {
    let Some(ws) = text.find(char::is_whitespace) else {
        return Err("expected an address or domain, white space, then an employer name");
    };
    let key = &text[..ws];
    if key.contains(['<', '>']) {
        return Err("an address or domain may not contain '<' or '>'");
    }
    let rest = text[ws..].trim_start();
    let (employer, date) = match rest.split_once('<') {
        Some((employer, date)) => (employer.trim(), Some(date.trim())),
        None => (rest.trim(), None),
    };
    if employer.is_empty() {
        return Err("expected an employer name after the address or domain");
    }
    let end = match date {
        None => None,
        Some(d) => Some(Date::parse(d).map_err(|m| {
            if m == "no such day in the calendar" {
                "date after '<': no such day in the calendar"
            } else {
                "expected a date yyyy-mm-dd after '<'"
            }
        })?),
    };
    Ok((key, employer, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    const MAP: &str = "\
# The employers of a small project.
redhat.com            Red Hat
us.ibm.com            IBM US   # never used: ibm.com is a shorter suffix
ibm.com               IBM
someone@gmail.com     (None)
jdoe@oldcorp.com      OldCorp < 2009-06-01
jdoe@oldcorp.com      NewCorp
temp@agency.net       Agency < 2008-01-01
";

    #[test]
    fn exact_address_domain_suffix_and_unknown() {
        let m = EmployerMap::parse(MAP).unwrap();
        m.assert_invariants();
        let day = d("2009-01-01");
        assert_eq!(m.lookup("mingo@redhat.com", day), "Red Hat");
        assert_eq!(m.lookup("A@Mail.RedHat.com", day), "Red Hat");
        assert_eq!(m.lookup("someone@gmail.com", day), "(None)");
        assert_eq!(m.lookup("other@gmail.com", day), "(Unknown)");
        assert_eq!(m.lookup("x at redhat.com", day), "Red Hat");
        assert_eq!(m.lookup("no-at-sign", day), "(Unknown)");
    }

    #[test]
    fn shortest_domain_suffix_wins_as_in_gitdm() {
        let m = EmployerMap::parse(MAP).unwrap();
        assert_eq!(m.lookup("a@us.ibm.com", d("2009-01-01")), "IBM");
    }

    #[test]
    fn job_changes_switch_on_the_end_date() {
        let m = EmployerMap::parse(MAP).unwrap();
        assert_eq!(m.lookup("jdoe@oldcorp.com", d("2009-05-31")), "OldCorp");
        assert_eq!(m.lookup("jdoe@oldcorp.com", d("2009-06-01")), "NewCorp");
        // Only dated entries, all ended: nobody is known to employ them.
        assert_eq!(m.lookup("temp@agency.net", d("2007-12-31")), "Agency");
        assert_eq!(m.lookup("temp@agency.net", d("2008-01-01")), "(Unknown)");
    }

    #[test]
    fn entries_sort_by_end_whatever_the_file_order() {
        let m =
            EmployerMap::parse("a@x.org  C\na@x.org  B < 2010-01-01\na@x.org  A < 2005-01-01\n")
                .unwrap();
        m.assert_invariants();
        assert_eq!(m.lookup("a@x.org", d("2004-01-01")), "A");
        assert_eq!(m.lookup("a@x.org", d("2006-01-01")), "B");
        assert_eq!(m.lookup("a@x.org", d("2011-01-01")), "C");
    }

    #[test]
    fn duplicate_undated_entries_warn_and_the_first_wins() {
        let m = EmployerMap::parse("a@x.org  First\na@x.org  Second\n").unwrap();
        assert_eq!(m.lookup("a@x.org", d("2000-01-01")), "First");
        assert_eq!(m.warnings().len(), 1);
        assert_eq!(m.warnings()[0].line, 2);
    }

    #[test]
    fn malformed_lines_name_the_line_and_what_was_expected() {
        let cases = [
            (
                "ok.com  Fine\nlonely\n",
                2,
                "expected an address or domain, white space, then an employer name",
            ),
            (
                "a@b.c  <2009-01-01\n",
                1,
                "expected an employer name after the address or domain",
            ),
            (
                "a@b.c  X < 2009-13-01\n",
                1,
                "date after '<': no such day in the calendar",
            ),
            (
                "a@b.c  X < soon\n",
                1,
                "expected a date yyyy-mm-dd after '<'",
            ),
            (
                "a@b.c  X < 2009-01-01 extra\n",
                1,
                "expected a date yyyy-mm-dd after '<'",
            ),
            (
                "\n\n<a@b.c>  X\n",
                3,
                "an address or domain may not contain '<' or '>'",
            ),
        ];
        for (text, line, message) in cases {
            let e = EmployerMap::parse(text).unwrap_err();
            assert_eq!((e.line, e.message.as_str()), (line, message), "{text:?}");
            assert!(e.to_string().starts_with(&format!("<memory>:{line}: ")));
        }
    }

    #[test]
    fn comments_and_blank_lines_are_ignored() {
        let m = EmployerMap::parse("# only a comment\n\n   \nx.org  X # trailing\n").unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m.lookup("a@x.org", d("2000-01-01")), "X");
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_and_keeps_its_invariant(text in "(\\PC{0,40}\n){0,6}") {
            if let Ok(m) = EmployerMap::parse(&text) {
                m.assert_invariants();
            }
        }
    }
}
