//! Checked parsing of the commit-message tags gitdm counts.
//!
//! gitdm (`patterns.py`) recognises these lines anywhere in a commit
//! message, after optional leading white space:
//!
//! ```text
//!   Signed-off-by: Name <email>            case-sensitive key
//!   Reviewed-by: Name <email>              case-sensitive key
//!   Reported-by: Name <email>              case-sensitive key
//!   Tested-by: Name <email>                any case
//!   Reported-and-tested-by: Name <email>   any case
//! ```
//!
//! Its value grammar is `\s+"?([^<"]+)"?\s<([^>]+)>.*`: white space, a name
//! without `<` or `"` (optionally in double quotes), white space, an address
//! in angle brackets, then anything. devstats parses the same grammar into a
//! [`Trailer`] that cannot be wrong (non-empty trimmed name, non-empty
//! address without `>`), and reports a line whose key matches but whose
//! value does not as a [`TrailerError`] instead of dropping it silently as
//! gitdm does. A key written in another case than gitdm requires
//! (`Signed-Off-By:`) is such an error too: gitdm does not count it, and
//! neither does devstats, but the report says how many there were.
//!
//! Invariant of a parsed [`Trailer`]: `!name.is_empty() && name == name.trim()
//! && !email.is_empty() && !email.contains('>')`.

use crate::error::TrailerError;

/// The tags devstats recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum TrailerKind {
    /// `Signed-off-by:`: the person handled the patch on its way in.
    SignedOffBy,
    /// `Reviewed-by:`.
    ReviewedBy,
    /// `Tested-by:`.
    TestedBy,
    /// `Reported-by:`.
    ReportedBy,
    /// `Reported-and-tested-by:`.
    ReportedAndTestedBy,
}

impl TrailerKind {
    /// Every kind, with its key as gitdm spells it and whether gitdm matches
    /// the key regardless of case.
    const KEYS: [(TrailerKind, &'static str, bool); 5] = [
        (TrailerKind::SignedOffBy, "Signed-off-by", false),
        (TrailerKind::ReviewedBy, "Reviewed-by", false),
        (TrailerKind::ReportedBy, "Reported-by", false),
        (TrailerKind::TestedBy, "Tested-by", true),
        (
            TrailerKind::ReportedAndTestedBy,
            "Reported-and-tested-by",
            true,
        ),
    ];

    /// The key as written in commit messages.
    pub fn key(self) -> &'static str {
        Self::KEYS
            .iter()
            .find(|(k, _, _)| *k == self)
            .map_or("", |(_, key, _)| key)
    }
}

/// One recognised tag line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trailer {
    /// Which tag.
    pub kind: TrailerKind,
    /// The person's name, trimmed, never empty.
    pub name: String,
    /// The address between the angle brackets, never empty.
    pub email: String,
}

impl Trailer {
    /// Checks the invariant in the module header.
    pub fn assert_invariants(&self) {
        assert!(!self.name.is_empty() && self.name == self.name.trim());
        assert!(!self.name.contains('<') && !self.name.contains('"'));
        assert!(!self.email.is_empty() && !self.email.contains('>'));
    }
}

/// Parses one line of a commit message.
///
/// `Ok(None)`: the line is not one of the tags. `Ok(Some(t))`: a tag with a
/// well-formed value. `Err(e)`: the line starts like a tag but its value (or
/// the case of its key) does not follow the grammar in the module header.
pub fn parse_line(line: &str) -> Result<Option<Trailer>, TrailerError> {
    let body = line.trim_start();
    let Some(colon) = body.find(':') else {
        return Ok(None);
    };
    let key = &body[..colon];
    let Some(&(kind, canonical, any_case)) = TrailerKind::KEYS
        .iter()
        .find(|(_, k, _)| k.eq_ignore_ascii_case(key))
    else {
        return Ok(None);
    };
    let err = |message| TrailerError {
        key: key.to_owned(),
        message,
    };
    if !any_case && key != canonical {
        return Err(err("key must be spelled exactly as gitdm counts it"));
    }
    let value = &body[colon + 1..];
    if !value.starts_with(|c: char| c.is_whitespace()) {
        return Err(err("expected white space after the colon"));
    }
    let value = value.trim_start();
    let Some(lt) = value.find('<') else {
        return Err(err("expected an address in angle brackets"));
    };
    let raw_name = &value[..lt];
    if raw_name.trim().is_empty() {
        return Err(err("expected a name before the address"));
    }
    if !raw_name.ends_with(|c: char| c.is_whitespace()) {
        return Err(err("expected white space before the address"));
    }
    let mut name = raw_name.trim();
    if let Some(unquoted) = name.strip_prefix('"') {
        name = unquoted.strip_suffix('"').unwrap_or(unquoted).trim();
    } else if let Some(unquoted) = name.strip_suffix('"') {
        name = unquoted.trim();
    }
    if name.is_empty() {
        return Err(err("expected a name before the address"));
    }
    if name.contains('"') {
        return Err(err("a name may only be quoted as a whole"));
    }
    let rest = &value[lt + 1..];
    let Some(gt) = rest.find('>') else {
        return Err(err("unterminated address: expected '>'"));
    };
    let email = &rest[..gt];
    if email.is_empty() {
        return Err(err("empty address"));
    }
    Ok(Some(Trailer {
        kind,
        name: name.to_owned(),
        email: email.to_owned(),
    }))
}

/// The tags in a whole commit message, and the lines that looked like tags
/// but were malformed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers {
    /// Recognised tags, in message order.
    pub tags: Vec<Trailer>,
    /// Lines whose key matched but whose value did not parse.
    pub malformed: Vec<TrailerError>,
}

/// Parses every line of `message` (gitdm looks at the whole message, not
/// only its last paragraph).
pub fn parse_message(message: &str) -> Trailers {
    let mut out = Trailers::default();
    for line in message.lines() {
        match parse_line(line) {
            Ok(Some(t)) => out.tags.push(t),
            Ok(None) => {}
            Err(e) => out.malformed.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn ok(line: &str, kind: TrailerKind, name: &str, email: &str) {
        let t = parse_line(line).unwrap().unwrap();
        t.assert_invariants();
        assert_eq!(
            (t.kind, t.name.as_str(), t.email.as_str()),
            (kind, name, email)
        );
    }

    #[track_caller]
    fn bad(line: &str, message: &str) {
        let e = parse_line(line).unwrap_err();
        assert_eq!(e.message, message, "{line:?}");
    }

    #[test]
    fn signed_off_by_with_plain_and_quoted_names() {
        ok(
            "Signed-off-by: Ingo Molnar <mingo@elte.hu>",
            TrailerKind::SignedOffBy,
            "Ingo Molnar",
            "mingo@elte.hu",
        );
        ok(
            "    Signed-off-by: \"David S. Miller\" <davem@davemloft.net> [trimmed]",
            TrailerKind::SignedOffBy,
            "David S. Miller",
            "davem@davemloft.net",
        );
        ok(
            "Signed-off-by:\tA  B   <a@b>",
            TrailerKind::SignedOffBy,
            "A  B",
            "a@b",
        );
    }

    #[test]
    fn tested_by_matches_any_case_like_gitdm() {
        ok(
            "tested-BY: Tess Ter <t@x.org>",
            TrailerKind::TestedBy,
            "Tess Ter",
            "t@x.org",
        );
        ok(
            "Reported-And-Tested-By: R <r@x>",
            TrailerKind::ReportedAndTestedBy,
            "R",
            "r@x",
        );
    }

    #[test]
    fn signed_off_by_in_another_case_is_reported_not_counted() {
        bad(
            "Signed-Off-By: A <a@b>",
            "key must be spelled exactly as gitdm counts it",
        );
    }

    #[test]
    fn malformed_values_say_what_was_expected() {
        bad("Signed-off-by: A", "expected an address in angle brackets");
        bad(
            "Signed-off-by:A <a@b>",
            "expected white space after the colon",
        );
        bad(
            "Signed-off-by: A<a@b>",
            "expected white space before the address",
        );
        bad(
            "Signed-off-by:  <a@b>",
            "expected a name before the address",
        );
        bad(
            "Signed-off-by: A <a@b",
            "unterminated address: expected '>'",
        );
        bad("Signed-off-by: A <>", "empty address");
        bad(
            "Signed-off-by: A \"B\" C <a@b>",
            "a name may only be quoted as a whole",
        );
    }

    #[test]
    fn other_lines_are_not_tags() {
        for line in [
            "",
            "Acked-by: A <a@b>",
            "Cc: A <a@b>",
            "fix: the frobnicator",
            "Signed-off-by-me: nope",
        ] {
            assert_eq!(parse_line(line), Ok(None), "{line:?}");
        }
    }

    #[test]
    fn a_message_yields_tags_in_order_and_its_malformed_lines() {
        let m = "subject\n\nbody\n\nSigned-off-by: A <a@x>\nReviewed-by: B <b@x>\nSigned-off-by: broken\nSigned-off-by: C <c@x>\n";
        let t = parse_message(m);
        let names: Vec<&str> = t.tags.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"]);
        assert_eq!(t.malformed.len(), 1);
        assert_eq!(t.malformed[0].key, "Signed-off-by");
    }

    proptest::proptest! {
        #[test]
        fn parser_never_panics_and_keeps_its_invariant(line in "\\PC{0,80}") {
            if let Ok(Some(t)) = parse_line(&line) {
                t.assert_invariants();
            }
        }

        #[test]
        fn well_formed_lines_round_trip(name in "[A-Za-z][A-Za-z .'-]{0,20}[A-Za-z]", user in "[a-z0-9.]{1,10}", dom in "[a-z]{1,8}\\.[a-z]{2,3}") {
            let line = format!("Signed-off-by: {name} <{user}@{dom}>");
            let t = parse_line(&line).unwrap().unwrap();
            proptest::prop_assert_eq!(t.name, name);
            proptest::prop_assert_eq!(t.email, format!("{user}@{dom}"));
        }
    }
}
