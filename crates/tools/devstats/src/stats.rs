//! Aggregating changesets into the page's tables, by gitdm's rules.
//!
//! ```text
//!  CommitRecord ──▶ developer (mailmapped name)   changesets, added, removed
//!       │      └──▶ employer(author email, author day)
//!       │                                          changesets, added, removed,
//!       │                                          changed += max(added, removed)
//!       └─ each Signed-off-by whose person is not the author
//!                ──▶ signer   signoffs += 1
//!                ──▶ employer(signer email, author day)   signoffs += 1
//! ```
//!
//! Mirrors gitdm's main loop (`gitdm`), `database.py` (`Hacker`,
//! `Employer.AddCSet`, `AddSOB`) and `reports.py`:
//! * totals: `added = Σ added`, `removed = Σ removed`, `changed = Σ
//!   max(added, removed)` over changesets; net growth `added − removed`;
//! * a developer's "changed lines" follows one of gitdm's two rules
//!   ([`ChangedLines`], `--changed-lines`): `max(Σ added, Σ removed)` over
//!   their changesets, as the gitdm that made the 2.6.31 tables computed it
//!   (`reports.py` `ReportByLChanged` until 2015, the default), or `Σ
//!   max(added, removed)` per changeset, as gitdm has since commit 5516be6
//!   ("Make \"lines changed\" accounting consistent", 2015-03-26:
//!   `Hacker.addpatch`); an employer's is always `Σ max(added, removed)`
//!   (`Employer.AddCSet`); both percentages are of total `changed`, so the
//!   developers' shares add up to 100% only under the per-changeset rule;
//! * changeset percentages are of all changesets; signoff percentages are
//!   of all non-author signoffs (`-s`: a Signed-off-by line of the author
//!   is not counted; each other line is, as gitdm counts lines);
//! * the employer of a changeset is the author's on the author's calendar
//!   day; the employer of a signoff is the signer's on that same day.
//!
//! Where devstats differs from gitdm, by design:
//! * developers are keyed by mailmapped name, as `git shortlog` groups
//!   them (gitdm also merges two names that share an address; a `.mailmap`
//!   does that in git);
//! * "the author" for `-s` is the same name or the same address
//!   (case-insensitive), after the mailmap;
//! * "a minimum of N employers" counts employers with changesets whose name
//!   does not start with `(`: `(None)`, `(Unknown)`, `(Consultant)`,
//!   `(Academia)` are not single employers.
//!
//! "Passed through the hands" of the top N employers: the page adds the
//! top N employers' shares of non-author signoffs (38.7% + 11.1% = 49.8%
//! for Red Hat and Novell); [`Hands::signoff_share`] is that number, and
//! [`Hands::patch_share`] answers the question the page's phrase asks: the
//! fraction of changesets with at least one non-author signoff from
//! someone at one of those employers.
//!
//! Invariants ([`Stats::assert_invariants`]): `Σ developer changesets =
//! Σ employer changesets = changesets`; `Σ developer added = Σ employer
//! added = added` (same for removed); `Σ employer changed = changed`;
//! `Σ person signoffs = Σ employer signoffs = non_author_signoffs`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::date::Date;
use crate::employers::EmployerMap;
use crate::record::CommitRecord;
use crate::trailer::TrailerKind;

/// How a developer's "changed lines" are counted: gitdm changed its rule
/// in 2015 (commit 5516be6, "Make \"lines changed\" accounting
/// consistent"), and the two give different tables whenever a developer
/// has changesets that mostly add and others that mostly remove.
///
/// ```text
///  per-developer   max(Σ added, Σ removed)   gitdm 2008-2015 reports.py ReportByLChanged
///                                            (the 2.6.31 page; the default)
///  per-changeset   Σ max(added, removed)     gitdm since 2015, database.py Hacker.addpatch
/// ```
///
/// Employers and the total are counted per changeset under both rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangedLines {
    /// `max(Σ added, Σ removed)` over the developer's changesets.
    #[default]
    PerDeveloper,
    /// `Σ max(added, removed)` over the developer's changesets.
    PerChangeset,
}

impl ChangedLines {
    /// Both rules, default first.
    pub const ALL: [ChangedLines; 2] = [ChangedLines::PerDeveloper, ChangedLines::PerChangeset];

    /// The rule's name, as `--changed-lines` takes it and the outputs name it.
    pub fn name(self) -> &'static str {
        match self {
            ChangedLines::PerDeveloper => "per-developer",
            ChangedLines::PerChangeset => "per-changeset",
        }
    }

    /// The rule as a formula, with the gitdm that used it.
    pub fn formula(self) -> &'static str {
        match self {
            ChangedLines::PerDeveloper => {
                "max(Σ added, Σ removed) over a developer's changesets (gitdm until 2015)"
            }
            ChangedLines::PerChangeset => {
                "Σ max(added, removed) over a developer's changesets (gitdm since 2015)"
            }
        }
    }
}

impl std::fmt::Display for ChangedLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ChangedLines {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChangedLines::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("expected per-developer or per-changeset, not {s:?}"))
    }
}

/// One developer's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Developer {
    /// Mailmapped name.
    pub name: String,
    /// Non-merge changesets authored.
    pub changesets: u64,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
    /// `Σ max(added, removed)` per changeset.
    pub changed_per_changeset: u64,
    /// Non-author signoffs given.
    pub signoffs: u64,
    /// Addresses seen for this developer, lower-cased.
    pub emails: BTreeSet<String>,
}

impl Developer {
    /// gitdm's "changed lines" for a developer under `rule`.
    pub fn changed(&self, rule: ChangedLines) -> u64 {
        match rule {
            ChangedLines::PerDeveloper => self.added.max(self.removed),
            ChangedLines::PerChangeset => self.changed_per_changeset,
        }
    }
}

/// One employer's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Employer {
    /// Name from the employer map, `(Unknown)` for unmapped addresses.
    pub name: String,
    /// Changesets by people working there at the time.
    pub changesets: u64,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
    /// `Σ max(added, removed)` per changeset.
    pub changed: u64,
    /// Non-author signoffs by people working there at the time.
    pub signoffs: u64,
    /// Distinct developers with changesets here.
    pub developers: u64,
}

/// One row of a ranked table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranked {
    /// Developer or employer.
    pub name: String,
    /// The count ranked on.
    pub count: u64,
    /// Percent of the table's total.
    pub percent: f64,
}

/// The share of patches handled by the top `n` employers by signoffs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hands {
    /// How many employers.
    pub n: usize,
    /// Which, in rank order.
    pub employers: Vec<String>,
    /// Percent of non-author signoffs by them (the page's number).
    pub signoff_share: f64,
    /// Percent of changesets with a non-author signoff by one of them.
    pub patch_share: f64,
}

/// Headline numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Non-merge changesets.
    pub changesets: u64,
    /// Distinct developers (mailmapped names).
    pub developers: u64,
    /// Employers with changesets, not counting `(...)` groups.
    pub employers_at_least: u64,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
    /// `added − removed`.
    pub net_growth: i64,
    /// `Σ max(added, removed)` per changeset.
    pub changed: u64,
    /// Non-author Signed-off-by lines.
    pub non_author_signoffs: u64,
    /// Author Signed-off-by lines (not counted).
    pub author_signoffs: u64,
    /// Reviewed-by, Tested-by, Reported-by and Reported-and-tested-by lines.
    pub other_tags: u64,
    /// Tag lines that did not parse.
    pub malformed_tags: u64,
}

/// Everything counted over a range.
///
/// Counting does not depend on the order in which changesets are added, so
/// a walk can hand records over as they come and drop them.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// How developers' changed lines are counted.
    pub rule: ChangedLines,
    /// Developers by name.
    pub developers: BTreeMap<String, Developer>,
    /// Employers by name.
    pub employers: BTreeMap<String, Employer>,
    /// Non-author signoffs by signer name (signers may not be developers).
    pub signers: BTreeMap<String, u64>,
    /// Changesets by the set of employers of their non-author signers.
    patch_signers: BTreeMap<BTreeSet<String>, u64>,
    changesets: u64,
    added: u64,
    removed: u64,
    changed: u64,
    non_author_signoffs: u64,
    author_signoffs: u64,
    other_tags: u64,
    malformed_tags: u64,
    employer_devs: BTreeMap<String, BTreeSet<String>>,
}

impl Stats {
    /// Nothing counted yet; developers' changed lines by `rule`.
    pub fn new(rule: ChangedLines) -> Stats {
        Stats {
            rule,
            ..Stats::default()
        }
    }

    /// Counts `records` with `map`, by the default rule.
    pub fn from_records(records: &[CommitRecord], map: &EmployerMap) -> Stats {
        Stats::from_records_by(records, map, ChangedLines::default())
    }

    /// Counts `records` with `map`, developers' changed lines by `rule`.
    pub fn from_records_by(
        records: &[CommitRecord],
        map: &EmployerMap,
        rule: ChangedLines,
    ) -> Stats {
        let mut s = Stats::new(rule);
        for r in records {
            s.add(r, map);
        }
        s
    }

    /// Adds one changeset.
    pub fn add(&mut self, r: &CommitRecord, map: &EmployerMap) {
        let day = Date::from_git_time(r.author_time, r.author_offset);
        let changed = r.added.max(r.removed);
        self.changesets += 1;
        self.added += r.added;
        self.removed += r.removed;
        self.changed += changed;
        self.malformed_tags += u64::from(r.malformed_tags);

        // A developer who signed off earlier changesets has those
        // signoffs from the start, so the order of changesets is free.
        let signed = self.signers.get(&r.author.name).copied().unwrap_or(0);
        let dev = self
            .developers
            .entry(r.author.name.clone())
            .or_insert_with(|| Developer {
                name: r.author.name.clone(),
                signoffs: signed,
                ..Developer::default()
            });
        dev.changesets += 1;
        dev.added += r.added;
        dev.removed += r.removed;
        dev.changed_per_changeset += changed;
        dev.emails.insert(r.author.email.to_lowercase());

        let employer = map.lookup(&r.author.email, day).to_owned();
        let e = self.employer(&employer);
        e.changesets += 1;
        e.added += r.added;
        e.removed += r.removed;
        e.changed += changed;
        self.employer_devs
            .entry(employer)
            .or_default()
            .insert(r.author.name.clone());

        let author_email = r.author.email.to_lowercase();
        let mut through = BTreeSet::new();
        for t in &r.tags {
            if t.kind != TrailerKind::SignedOffBy {
                self.other_tags += 1;
                continue;
            }
            if t.name == r.author.name || t.email.to_lowercase() == author_email {
                self.author_signoffs += 1;
                continue;
            }
            self.non_author_signoffs += 1;
            *self.signers.entry(t.name.clone()).or_default() += 1;
            if let Some(d) = self.developers.get_mut(&t.name) {
                d.signoffs += 1;
            }
            let employer = map.lookup(&t.email, day).to_owned();
            self.employer(&employer).signoffs += 1;
            through.insert(employer);
        }
        *self.patch_signers.entry(through).or_default() += 1;
    }

    fn employer(&mut self, name: &str) -> &mut Employer {
        self.employers
            .entry(name.to_owned())
            .or_insert_with(|| Employer {
                name: name.to_owned(),
                ..Employer::default()
            })
    }

    /// The headline numbers.
    pub fn summary(&self) -> Summary {
        Summary {
            changesets: self.changesets,
            developers: self.developers.len() as u64,
            employers_at_least: self
                .employers
                .values()
                .filter(|e| e.changesets > 0 && !e.name.starts_with('('))
                .count() as u64,
            added: self.added,
            removed: self.removed,
            net_growth: self.added as i64 - self.removed as i64,
            changed: self.changed,
            non_author_signoffs: self.non_author_signoffs,
            author_signoffs: self.author_signoffs,
            other_tags: self.other_tags,
            malformed_tags: self.malformed_tags,
        }
    }

    /// Developers ranked by changesets.
    pub fn developers_by_changesets(&self) -> Vec<Ranked> {
        rank(
            self.developers.values().map(|d| (&d.name, d.changesets)),
            self.changesets,
        )
    }

    /// Developers ranked by changed lines, counted by [`Stats::rule`].
    pub fn developers_by_lines(&self) -> Vec<Ranked> {
        rank(
            self.developers
                .values()
                .map(|d| (&d.name, d.changed(self.rule))),
            self.changed,
        )
    }

    /// Employers ranked by changesets.
    pub fn employers_by_changesets(&self) -> Vec<Ranked> {
        rank(
            self.employers.values().map(|e| (&e.name, e.changesets)),
            self.changesets,
        )
    }

    /// Employers ranked by changed lines.
    pub fn employers_by_lines(&self) -> Vec<Ranked> {
        rank(
            self.employers.values().map(|e| (&e.name, e.changed)),
            self.changed,
        )
    }

    /// Signers ranked by non-author signoffs.
    pub fn signoffs_by_person(&self) -> Vec<Ranked> {
        rank(
            self.signers.iter().map(|(n, &c)| (n, c)),
            self.non_author_signoffs,
        )
    }

    /// Employers ranked by non-author signoffs.
    pub fn signoffs_by_employer(&self) -> Vec<Ranked> {
        rank(
            self.employers.values().map(|e| (&e.name, e.signoffs)),
            self.non_author_signoffs,
        )
    }

    /// Distinct developers per employer (gitdm's "employers with the most
    /// hackers").
    pub fn developers_per_employer(&self) -> Vec<Ranked> {
        let total: u64 = self.employer_devs.values().map(|s| s.len() as u64).sum();
        rank(
            self.employer_devs.iter().map(|(n, s)| (n, s.len() as u64)),
            total,
        )
    }

    /// The share of patches through the top `n` employers by signoffs.
    pub fn hands(&self, n: usize) -> Hands {
        let top: Vec<Ranked> = self.signoffs_by_employer().into_iter().take(n).collect();
        let names: BTreeSet<&str> = top.iter().map(|r| r.name.as_str()).collect();
        let patches = self
            .patch_signers
            .iter()
            .filter(|(s, _)| s.iter().any(|e| names.contains(e.as_str())))
            .map(|(_, n)| n)
            .sum();
        Hands {
            n: top.len(),
            employers: top.iter().map(|r| r.name.clone()).collect(),
            signoff_share: top.iter().map(|r| r.percent).sum(),
            patch_share: percent(patches, self.changesets),
        }
    }

    /// Checks the invariants in the module header.
    pub fn assert_invariants(&self) {
        let devs = || self.developers.values();
        let emps = || self.employers.values();
        assert_eq!(devs().map(|d| d.changesets).sum::<u64>(), self.changesets);
        assert_eq!(emps().map(|e| e.changesets).sum::<u64>(), self.changesets);
        assert_eq!(devs().map(|d| d.added).sum::<u64>(), self.added);
        assert_eq!(emps().map(|e| e.added).sum::<u64>(), self.added);
        assert_eq!(devs().map(|d| d.removed).sum::<u64>(), self.removed);
        assert_eq!(emps().map(|e| e.removed).sum::<u64>(), self.removed);
        assert_eq!(emps().map(|e| e.changed).sum::<u64>(), self.changed);
        assert_eq!(self.signers.values().sum::<u64>(), self.non_author_signoffs);
        for d in devs() {
            assert_eq!(d.signoffs, self.signers.get(&d.name).copied().unwrap_or(0));
        }
        assert_eq!(
            emps().map(|e| e.signoffs).sum::<u64>(),
            self.non_author_signoffs
        );
        assert_eq!(self.patch_signers.values().sum::<u64>(), self.changesets);
        assert_eq!(
            devs().map(|d| d.changed_per_changeset).sum::<u64>(),
            self.changed
        );
    }
}

/// `100 · part / whole`, 0 when `whole` is 0 (gitdm's `Pct`).
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// Rows with a non-zero count, by count descending then name.
fn rank<'a>(items: impl Iterator<Item = (&'a String, u64)>, total: u64) -> Vec<Ranked> {
    let mut v: Vec<Ranked> = items
        .filter(|(_, c)| *c > 0)
        .map(|(n, c)| Ranked {
            name: n.clone(),
            count: c,
            percent: percent(c, total),
        })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Person;
    use crate::trailer::Trailer;

    fn rec(
        name: &str,
        email: &str,
        day: i64,
        added: u64,
        removed: u64,
        sobs: &[(&str, &str)],
    ) -> CommitRecord {
        CommitRecord {
            id: String::new(),
            author: Person {
                name: name.into(),
                email: email.into(),
            },
            author_time: day * 86_400 + 3600,
            author_offset: 0,
            committer_time: day * 86_400 + 3600,
            added,
            removed,
            files: vec![],
            tags: sobs
                .iter()
                .map(|(n, e)| Trailer {
                    kind: TrailerKind::SignedOffBy,
                    name: (*n).into(),
                    email: (*e).into(),
                })
                .collect(),
            malformed_tags: 0,
            rename_limit_hit: false,
        }
    }

    /// A worked example: three changesets, hand-counted.
    ///
    /// ```text
    ///  #  author           day         +    -   SOBs (non-author)
    ///  1  Ann <a@rh.com>   2009-01-01  10   2   Ann (self), Max <m@nov.com>
    ///  2  Ann <a@rh.com>   2009-07-01   1  30   Max <m@nov.com>, Lin <l@lf.org>
    ///  3  Bob <b@x.org>    2009-01-01   5   5   Max <m@nov.com>
    /// ```
    /// Map: rh.com Red Hat; nov.com Novell; lf.org Linux Foundation;
    /// b@x.org (None). changed per changeset: 10, 30, 5 → total 45.
    /// Ann: 2 csets, +11 −32, changed max(11,32)=32; Bob: 1, changed 5.
    /// Red Hat: 2 csets, changed 40; (None): 1, 5. Signoffs (non-author):
    /// Max 3, Lin 1 → Novell 3 (75%), Linux Foundation 1 (25%).
    #[test]
    fn a_hand_counted_cycle() {
        let map = EmployerMap::parse(
            "rh.com Red Hat\nnov.com Novell\nlf.org Linux Foundation\nb@x.org (None)\n",
        )
        .unwrap();
        let d0 = Date::parse("2009-01-01").unwrap().days_since_epoch();
        let d1 = Date::parse("2009-07-01").unwrap().days_since_epoch();
        let recs = [
            rec(
                "Ann",
                "a@rh.com",
                d0,
                10,
                2,
                &[("Ann", "a@rh.com"), ("Max", "m@nov.com")],
            ),
            rec(
                "Ann",
                "A@RH.com",
                d1,
                1,
                30,
                &[("Max", "m@nov.com"), ("Lin", "l@lf.org")],
            ),
            rec("Bob", "b@x.org", d0, 5, 5, &[("Max", "m@nov.com")]),
        ];
        let s = Stats::from_records(&recs, &map);
        s.assert_invariants();
        let sum = s.summary();
        assert_eq!(
            (sum.changesets, sum.developers, sum.added, sum.removed),
            (3, 2, 16, 37)
        );
        assert_eq!((sum.net_growth, sum.changed), (-21, 45));
        assert_eq!((sum.non_author_signoffs, sum.author_signoffs), (4, 1));
        assert_eq!(sum.employers_at_least, 1);
        let by_lines = s.developers_by_lines();
        assert_eq!((by_lines[0].name.as_str(), by_lines[0].count), ("Ann", 32));
        let e = s.employers_by_lines();
        assert_eq!((e[0].name.as_str(), e[0].count), ("Red Hat", 40));
        assert_eq!((e[1].name.as_str(), e[1].count), ("(None)", 5));
        let sob = s.signoffs_by_employer();
        assert_eq!(
            (sob[0].name.as_str(), sob[0].count, sob[0].percent),
            ("Novell", 3, 75.0)
        );
        let h = s.hands(1);
        assert_eq!(h.employers, ["Novell"]);
        assert_eq!(h.signoff_share, 75.0);
        assert_eq!(h.patch_share, 100.0);
        let h = s.hands(2);
        assert_eq!(h.signoff_share, 100.0);
    }

    /// The two rules on the hand-counted cycle above: Ann's changesets
    /// are +10 −2 and +1 −30, Bob's +5 −5.
    ///
    /// ```text
    ///  per-developer  Ann max(10+1, 2+30) = 32    Bob max(5, 5) = 5
    ///  per-changeset  Ann max(10,2)+max(1,30) = 10+30 = 40   Bob 5
    /// ```
    /// Percentages are of the total, 45 (= Σ per changeset) under both:
    /// 32/45 = 71.1%, 40/45 = 88.9%, 5/45 = 11.1%; only the per-changeset
    /// shares add up to 100%.
    #[test]
    fn changed_lines_by_either_rule() {
        let map = EmployerMap::new();
        let recs = [
            rec("Ann", "a@rh.com", 1, 10, 2, &[]),
            rec("Ann", "a@rh.com", 2, 1, 30, &[]),
            rec("Bob", "b@x.org", 1, 5, 5, &[]),
        ];
        let rows = |rule| {
            let s = Stats::from_records_by(&recs, &map, rule);
            s.assert_invariants();
            assert_eq!(s.summary().changed, 45);
            s.developers_by_lines()
                .into_iter()
                .map(|r| (r.name, r.count, r.percent))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            rows(ChangedLines::PerDeveloper),
            [
                ("Ann".to_owned(), 32, 3200.0 / 45.0),
                ("Bob".to_owned(), 5, 500.0 / 45.0)
            ]
        );
        assert_eq!(
            rows(ChangedLines::PerChangeset),
            [
                ("Ann".to_owned(), 40, 4000.0 / 45.0),
                ("Bob".to_owned(), 5, 500.0 / 45.0)
            ]
        );
        assert_eq!(ChangedLines::default(), ChangedLines::PerDeveloper);
        for rule in ChangedLines::ALL {
            assert_eq!(rule.name().parse::<ChangedLines>(), Ok(rule));
        }
        assert!("per-commit".parse::<ChangedLines>().is_err());
    }

    /// Counting is independent of the order of changesets, including a
    /// signer who authors a changeset only later in the walk.
    #[test]
    fn order_of_changesets_does_not_matter() {
        let map = EmployerMap::parse("rh.com Red Hat\nnov.com Novell\n").unwrap();
        let recs = [
            rec("Ann", "a@rh.com", 1, 10, 2, &[("Max", "m@nov.com")]),
            rec("Max", "m@nov.com", 2, 3, 4, &[("Ann", "a@rh.com")]),
            rec("Bob", "b@x.org", 3, 5, 5, &[("Max", "m@nov.com")]),
        ];
        let mut rev = recs.clone();
        rev.reverse();
        let a = Stats::from_records(&recs, &map);
        let b = Stats::from_records(&rev, &map);
        a.assert_invariants();
        b.assert_invariants();
        assert_eq!(a.developers, b.developers);
        assert_eq!(a.developers["Max"].signoffs, 2);
        assert_eq!(a.employers, b.employers);
        assert_eq!(a.summary(), b.summary());
        assert_eq!(a.hands(1), b.hands(1));
    }

    #[test]
    fn employment_follows_the_changeset_date() {
        let map = EmployerMap::parse("j@old.com Old < 2009-06-01\nj@old.com New\n").unwrap();
        let d0 = Date::parse("2009-05-31").unwrap().days_since_epoch();
        let d1 = Date::parse("2009-06-01").unwrap().days_since_epoch();
        let s = Stats::from_records(
            &[
                rec("J", "j@old.com", d0, 1, 0, &[]),
                rec("J", "j@old.com", d1, 1, 0, &[]),
            ],
            &map,
        );
        s.assert_invariants();
        assert_eq!(s.employers["Old"].changesets, 1);
        assert_eq!(s.employers["New"].changesets, 1);
        assert_eq!(s.developers["J"].changesets, 2);
    }
}
