//! Build manifests: which files of the merged tree one architecture builds,
//! and which file of its old tree each one was.
//!
//! In 2.6.24 the kernel chose between `foo_32.c` and `foo_64.c` with
//! `Makefile_32`/`Makefile_64` (later `obj-y += foo_$(BITS).o`). archmerge
//! writes the same information as data, one manifest per architecture:
//!
//! ```text
//! # klab archmerge build manifest: 32 (i386)
//! kernel/ioport_32.c<TAB>kernel/ioport.c
//! kernel/i8253.c<TAB>kernel/i8253.c
//! "odd\tname.c"<TAB>"odd\tname.c"
//! ```
//!
//! Each line: merged path, a tab, original path. A path is written as is
//! unless it holds a control byte, a byte ≥ 0x80, `"` or `\`, or starts with
//! `#`; then it is C-quoted as git quotes paths (`\t`, `\n`, `\"`, `\\`,
//! three-digit octal for other bytes). Lines starting with `#` and empty
//! lines are comments. Paths must be relative with no empty, `.` or `..`
//! component.
//!
//! Invariant of a parsed [`Manifest`]: every path is valid
//! ([`crate::scan::valid_rel`]), no original path appears twice, no merged
//! path appears twice.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::ManifestError;
use crate::scan::{RelPath, valid_rel};

/// One architecture of the pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum Arch {
    /// The 32-bit tree (i386).
    X32,
    /// The 64-bit tree (x86_64).
    X64,
}

impl Arch {
    /// Both, in order.
    pub const BOTH: [Arch; 2] = [Arch::X32, Arch::X64];

    /// `32` or `64`.
    pub fn bits(self) -> &'static str {
        match self {
            Arch::X32 => "32",
            Arch::X64 => "64",
        }
    }

    /// The kernel's name for it.
    pub fn kernel_name(self) -> &'static str {
        match self {
            Arch::X32 => "i386",
            Arch::X64 => "x86_64",
        }
    }

    /// 0 or 1, for arrays indexed by architecture.
    pub fn index(self) -> usize {
        match self {
            Arch::X32 => 0,
            Arch::X64 => 1,
        }
    }

    /// The other one.
    pub fn other(self) -> Arch {
        match self {
            Arch::X32 => Arch::X64,
            Arch::X64 => Arch::X32,
        }
    }
}

/// The build manifest of one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Whose.
    pub arch: Arch,
    /// `(merged path, original path)`, sorted by original path.
    pub entries: Vec<(RelPath, RelPath)>,
}

/// The file name of an architecture's manifest inside `OUT/.archmerge/`.
pub fn file_name(arch: Arch) -> String {
    format!("manifest-{}.txt", arch.bits())
}

impl Manifest {
    /// The manifest as text.
    pub fn render(&self) -> String {
        let mut out = format!(
            "# klab archmerge build manifest: {} ({})\n# merged path<TAB>original path\n",
            self.arch.bits(),
            self.arch.kernel_name()
        );
        for (merged, original) in &self.entries {
            out.push_str(&quote(merged));
            out.push('\t');
            out.push_str(&quote(original));
            out.push('\n');
        }
        out
    }

    /// Parses manifest text read from `path` (used in errors).
    pub fn parse(arch: Arch, text: &[u8], path: &Path) -> Result<Manifest, ManifestError> {
        let mut entries = Vec::new();
        let mut merged_seen = BTreeSet::new();
        let mut original_seen = BTreeSet::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let err = |message: String| ManifestError {
                path: path.to_owned(),
                line: i + 1,
                message,
            };
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            let (merged, rest) = unquote(line).map_err(|m| err(m.to_owned()))?;
            let Some(rest) = rest.strip_prefix(b"\t") else {
                return Err(err(
                    "expected a tab between the merged and the original path".into(),
                ));
            };
            let (original, rest) = unquote(rest).map_err(|m| err(m.to_owned()))?;
            if !rest.is_empty() {
                return Err(err("unexpected text after the original path".into()));
            }
            for p in [&merged, &original] {
                if !valid_rel(p) {
                    return Err(err(format!(
                        "path {:?} is not relative or has an empty, '.' or '..' component",
                        String::from_utf8_lossy(p)
                    )));
                }
            }
            if !merged_seen.insert(merged.clone()) {
                return Err(err(format!(
                    "merged path {:?} listed twice",
                    String::from_utf8_lossy(&merged)
                )));
            }
            if !original_seen.insert(original.clone()) {
                return Err(err(format!(
                    "original path {:?} listed twice",
                    String::from_utf8_lossy(&original)
                )));
            }
            entries.push((merged, original));
        }
        entries.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(Manifest { arch, entries })
    }

    /// Parses a manifest held in memory.
    pub fn parse_str(arch: Arch, text: &str) -> Result<Manifest, ManifestError> {
        Self::parse(arch, text.as_bytes(), &PathBuf::from("<memory>"))
    }

    /// Checks the invariant in the module header.
    pub fn assert_invariants(&self) {
        let mut m = BTreeSet::new();
        let mut o = BTreeSet::new();
        for (merged, original) in &self.entries {
            assert!(valid_rel(merged) && valid_rel(original));
            assert!(m.insert(merged) && o.insert(original), "duplicate entry");
        }
    }
}

fn needs_quoting(p: &[u8]) -> bool {
    p.first() == Some(&b'#')
        || p.iter()
            .any(|&b| !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\')
}

/// Writes a path, C-quoted when needed.
pub fn quote(p: &[u8]) -> String {
    if !needs_quoting(p) {
        return String::from_utf8_lossy(p).into_owned();
    }
    let mut s = String::from("\"");
    for &b in p {
        match b {
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(b)),
            _ => s.push_str(&format!("\\{b:03o}")),
        }
    }
    s.push('"');
    s
}

/// Reads one path (quoted or not) from the front of `s`; returns it and the
/// rest.
fn unquote(s: &[u8]) -> Result<(RelPath, &[u8]), &'static str> {
    if s.first() != Some(&b'"') {
        let end = s.iter().position(|&b| b == b'\t').unwrap_or(s.len());
        if end == 0 {
            return Err("expected a path");
        }
        return Ok((s[..end].to_vec(), &s[end..]));
    }
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        let Some(&b) = s.get(i) else {
            return Err("unterminated quoted path: expected '\"'");
        };
        i += 1;
        match b {
            b'"' => break,
            b'\\' => {
                let Some(&e) = s.get(i) else {
                    return Err("unterminated escape in quoted path");
                };
                i += 1;
                match e {
                    b't' => out.push(b'\t'),
                    b'n' => out.push(b'\n'),
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'0'..=b'3' => {
                        let digits = s
                            .get(i - 1..i + 2)
                            .ok_or("expected three octal digits after '\\'")?;
                        if !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                            return Err("expected three octal digits after '\\'");
                        }
                        out.push(
                            (digits[0] - b'0') * 64 + (digits[1] - b'0') * 8 + (digits[2] - b'0'),
                        );
                        i += 2;
                    }
                    _ => return Err("unknown escape in quoted path"),
                }
            }
            _ => out.push(b),
        }
    }
    if out.is_empty() {
        return Err("expected a path");
    }
    Ok((out, &s[i..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_plain_and_odd_paths() {
        let m = Manifest {
            arch: Arch::X32,
            entries: vec![
                (b"kernel/ioport_32.c".to_vec(), b"kernel/ioport.c".to_vec()),
                (b"odd\tna\"me\\.c".to_vec(), b"odd\tna\"me\\.c".to_vec()),
                (b"#hash".to_vec(), b"#hash".to_vec()),
                (b"caf\xc3\xa9\xff.c".to_vec(), b"caf\xc3\xa9\xff.c".to_vec()),
            ],
        };
        let text = m.render();
        let back = Manifest::parse_str(Arch::X32, &text).unwrap();
        back.assert_invariants();
        let mut want = m.entries.clone();
        want.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(back.entries, want);
        assert!(text.contains("\"odd\\tna\\\"me\\\\.c\""));
        assert!(text.contains("\"caf\\303\\251\\377.c\""));
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let cases: [(&str, usize, &str); 6] = [
            (
                "a\tb\nonly-one-path\n",
                2,
                "expected a tab between the merged and the original path",
            ),
            ("\"a\tb\n", 1, "unterminated quoted path: expected '\"'"),
            ("a\tb\tc\n", 1, "unexpected text after the original path"),
            (
                "a\t../b\n",
                1,
                "path \"../b\" is not relative or has an empty, '.' or '..' component",
            ),
            ("a\tb\na\tc\n", 2, "merged path \"a\" listed twice"),
            ("\"\\q\"\tb\n", 1, "unknown escape in quoted path"),
        ];
        for (text, line, msg) in cases {
            let e = Manifest::parse_str(Arch::X64, text).unwrap_err();
            assert_eq!((e.line, e.message.as_str()), (line, msg), "{text:?}");
        }
        let e = Manifest::parse_str(Arch::X64, "\"abc").unwrap_err();
        assert_eq!(e.message, "unterminated quoted path: expected '\"'");
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics(text in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(m) = Manifest::parse(Arch::X32, &text, Path::new("x")) {
                m.assert_invariants();
            }
        }

        #[test]
        fn any_valid_path_round_trips(p in proptest::collection::vec(1u8..=255, 1..20)) {
            let p: Vec<u8> = p.into_iter().map(|b| if b == b'/' { b'x' } else { b }).collect();
            proptest::prop_assume!(p != b"." && p != b"..");
            let m = Manifest { arch: Arch::X64, entries: vec![(p.clone(), p.clone())] };
            let back = Manifest::parse_str(Arch::X64, &m.render()).unwrap();
            proptest::prop_assert_eq!(back.entries, m.entries);
        }
    }
}
