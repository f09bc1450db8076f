//! A deterministic synthetic development history, written as a real git
//! repository (a bare repository of loose objects, through gix), with the
//! ground truth of what it contains.
//!
//! The shape follows what the 2.6.31 page reports about a kernel cycle:
//!
//! ```text
//!  developers  heavy-tailed activity: author of commit ~ Zipf(s = 1.1)
//!  employers   heavy-tailed sizes: employer of developer ~ Zipf(s = 1.0);
//!              ~15% of developers on their own time "(None)", ~8% at
//!              domains the map does not know "(Unknown)", ~5% change jobs
//!              mid-history (dated map entries)
//!  subsystems  each with a maintainer who signs off every patch but their
//!              own, half of the maintainers drawn from the two largest
//!              employers; ~20% of patches also signed by a top maintainer
//!              (with `concentrated_maintainers` off, each patch's signing
//!              maintainer and top maintainer are drawn by activity, as its
//!              author is, so signoffs by employer follow authorship)
//!  patches     edit 1–3 files; lines inserted ~ Pareto(α = 1.2), so a few
//!              changesets (new drivers) dominate the line counts; some add,
//!              delete or rename files (renames keep ≥ 80% of the content),
//!              some touch binary firmware; ~3% carry a malformed tag line
//!  merges      topic branches of 2–6 commits merged by the maintainer
//!              (`--no-ff`), which non-merge counts must skip
//!  identities  ~5% of developers sometimes commit under an old address
//!              and spelling; the tree's `.mailmap` maps them back
//! ```
//!
//! Every line written is unique (it carries a serial number), so the
//! minimal diff of an edit is the edit itself and the ground truth's line
//! counts are what git reports. Dates are fixed: commit `i` is at
//! `start + i · 6 h` in its author's time zone; the same seed gives the same
//! objects and the same commit ids.
//!
//! Invariant ([`Truth::assert_invariants`]): `Σ per-author changesets =
//! changesets`, `Σ per-author added = added`, and likewise for removed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gix::ObjectId;
use gix::bstr::BString;
use rand::Rng;

use crate::error::DevstatsError;

/// Size and shape of a synthetic history.
#[derive(Debug, Clone, Copy)]
pub struct SynthConfig {
    /// Non-merge commits to write.
    pub commits: usize,
    /// Developers.
    pub developers: usize,
    /// Companies (besides "(None)" and unknown domains).
    pub employers: usize,
    /// Subsystems (directories with a maintainer).
    pub subsystems: usize,
    /// Time of the first commit, seconds since the epoch.
    pub start: i64,
    /// Half of the subsystem maintainers at the two largest employers, as
    /// in 2.6.31 (the default); `false` draws each patch's signing
    /// maintainers by activity, as authors are drawn, so maintainers work
    /// where authors work.
    pub concentrated_maintainers: bool,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            commits: 2000,
            developers: 200,
            employers: 30,
            subsystems: 12,
            start: 1_241_136_000, // 2009-05-01
            concentrated_maintainers: true,
        }
    }
}

/// What the generator wrote: the numbers devstats must find.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Truth {
    /// Non-merge commits.
    pub changesets: u64,
    /// Merge commits.
    pub merges: u64,
    /// Lines added over all non-merge commits.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
    /// Changesets per canonical developer name.
    pub per_author: BTreeMap<String, u64>,
    /// Lines added per canonical developer name.
    pub added_per_author: BTreeMap<String, u64>,
    /// Lines removed per canonical developer name.
    pub removed_per_author: BTreeMap<String, u64>,
    /// Renames written.
    pub renames: u64,
    /// Binary file changes written.
    pub binary_changes: u64,
    /// Malformed tag lines written.
    pub malformed_tags: u64,
    /// The tip commit.
    pub head: Option<ObjectId>,
}

impl Truth {
    /// Checks the invariant in the module header.
    pub fn assert_invariants(&self) {
        assert_eq!(self.per_author.values().sum::<u64>(), self.changesets);
        assert_eq!(self.added_per_author.values().sum::<u64>(), self.added);
        assert_eq!(self.removed_per_author.values().sum::<u64>(), self.removed);
    }
}

/// A written synthetic repository.
#[derive(Debug, Clone)]
pub struct SynthRepo {
    /// The employer map that goes with it (gitdm format).
    pub employer_map: String,
    /// Ground truth.
    pub truth: Truth,
}

#[derive(Debug, Clone)]
struct Dev {
    name: String,
    email: String,
    /// An old spelling and address used now and then (mapped by .mailmap).
    alias: Option<(String, String)>,
    offset: i32,
}

#[derive(Debug, Clone)]
struct File {
    lines: Vec<String>,
    binary: Option<Vec<u8>>,
}

const FIRST: [&str; 24] = [
    "Ada", "Bo", "Cai", "Dana", "Eli", "Fen", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea", "Mio",
    "Nils", "Ona", "Per", "Qin", "Rut", "Sven", "Tova", "Uma", "Vik", "Wen", "Yara",
];
const LAST: [&str; 24] = [
    "Abel", "Brandt", "Castro", "Dahl", "Eng", "Falk", "Gray", "Holm", "Ito", "Jensen", "Kovacs",
    "Lund", "Moreau", "Nagy", "Olsen", "Petrov", "Quist", "Rossi", "Sato", "Toth", "Ueda", "Varga",
    "Weiss", "Zhou",
];
const SUBSYSTEMS: [&str; 16] = [
    "sched", "mm", "net", "fs", "sound", "staging", "arch", "block", "crypto", "usb", "gpu", "ide",
    "wireless", "input", "power", "tracing",
];

/// Draws an index in `0..n` with probability ∝ `1 / (i + 1)^s`.
fn zipf(rng: &mut impl Rng, cdf: &[f64]) -> usize {
    let total = cdf.last().copied().unwrap_or(1.0);
    let x = rng.random::<f64>() * total;
    cdf.partition_point(|&c| c < x)
        .min(cdf.len().saturating_sub(1))
}

fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut acc = 0.0;
    (0..n)
        .map(|i| {
            acc += 1.0 / ((i + 1) as f64).powf(s);
            acc
        })
        .collect()
}

/// Lines inserted by one edit: Pareto(α = 1.2) with minimum 1, capped.
fn pareto_lines(rng: &mut impl Rng, cap: usize) -> usize {
    let u: f64 = rng.random::<f64>().max(1e-12);
    let x = u.powf(-1.0 / 1.2);
    (x.floor() as usize).clamp(1, cap)
}

struct Writer<'r> {
    repo: &'r gix::Repository,
    /// Trees already in the object database: most directories do not
    /// change from one commit to the next, so hash first, write once.
    written: std::cell::RefCell<std::collections::HashSet<ObjectId>>,
}

impl Writer<'_> {
    fn err(e: impl std::fmt::Display) -> DevstatsError {
        DevstatsError::Output {
            path: "synthetic repository".into(),
            source: std::io::Error::other(e.to_string()),
        }
    }

    /// Writes the tree for `files` (path → (mode, blob)), returning its id.
    fn tree(&self, files: &BTreeMap<String, (u16, ObjectId)>) -> Result<ObjectId, DevstatsError> {
        fn build(
            w: &Writer<'_>,
            entries: &[(&str, u16, ObjectId)],
        ) -> Result<ObjectId, DevstatsError> {
            let mut out: Vec<gix::objs::tree::Entry> = Vec::new();
            let mut i = 0;
            while i < entries.len() {
                let (path, mode, id) = entries[i];
                if let Some((dir, _)) = path.split_once('/') {
                    let mut j = i;
                    let mut sub = Vec::new();
                    while j < entries.len()
                        && entries[j].0.split_once('/').is_some_and(|(d, _)| d == dir)
                    {
                        let (p, m, o) = entries[j];
                        sub.push((&p[dir.len() + 1..], m, o));
                        j += 1;
                    }
                    let oid = build(w, &sub)?;
                    out.push(gix::objs::tree::Entry {
                        mode: gix::objs::tree::EntryKind::Tree.into(),
                        filename: dir.into(),
                        oid,
                    });
                    i = j;
                } else {
                    let kind = match mode {
                        0o100755 => gix::objs::tree::EntryKind::BlobExecutable,
                        0o120000 => gix::objs::tree::EntryKind::Link,
                        _ => gix::objs::tree::EntryKind::Blob,
                    };
                    out.push(gix::objs::tree::Entry {
                        mode: kind.into(),
                        filename: path.into(),
                        oid: id,
                    });
                    i += 1;
                }
            }
            out.sort();
            let tree = gix::objs::Tree { entries: out };
            let mut bytes = Vec::new();
            gix::objs::WriteTo::write_to(&tree, &mut bytes).map_err(Writer::err)?;
            let id = gix::objs::compute_hash(w.repo.object_hash(), gix::object::Kind::Tree, &bytes)
                .map_err(Writer::err)?;
            if w.written.borrow_mut().insert(id) {
                w.repo.write_object(&tree).map_err(Writer::err)?;
            }
            Ok(id)
        }
        // Group by first component: sort so that a directory's entries are
        // contiguous (plain byte order of paths does that).
        let list: Vec<(&str, u16, ObjectId)> = files
            .iter()
            .map(|(p, (m, o))| (p.as_str(), *m, *o))
            .collect();
        build(self, &list)
    }

    fn blob(&self, data: &[u8]) -> Result<ObjectId, DevstatsError> {
        Ok(self.repo.write_blob(data).map_err(Writer::err)?.detach())
    }

    fn commit(
        &self,
        tree: ObjectId,
        parents: &[ObjectId],
        author: (&str, &str, i64, i32),
        committer: (&str, &str, i64, i32),
        message: &str,
    ) -> Result<ObjectId, DevstatsError> {
        let sig = |(n, e, t, o): (&str, &str, i64, i32)| gix::actor::Signature {
            name: n.into(),
            email: e.into(),
            time: gix::date::Time {
                seconds: t,
                offset: o,
            },
        };
        let c = gix::objs::Commit {
            tree,
            parents: parents.iter().copied().collect(),
            author: sig(author),
            committer: sig(committer),
            encoding: None,
            message: BString::from(message),
            extra_headers: vec![],
        };
        Ok(self.repo.write_object(&c).map_err(Writer::err)?.detach())
    }
}

/// Writes a synthetic history into a new bare repository at `dir` (which
/// must not exist or be empty), drawing every choice from `rng`.
pub fn generate(
    dir: &Path,
    cfg: &SynthConfig,
    rng: &mut impl Rng,
) -> Result<SynthRepo, DevstatsError> {
    let repo = gix::init_bare(dir).map_err(Writer::err)?;
    let w = Writer {
        repo: &repo,
        written: Default::default(),
    };
    let n_emp = cfg.employers.max(2);
    let n_sub = cfg.subsystems.clamp(1, SUBSYSTEMS.len());

    // Employers and their domains.
    let employers: Vec<(String, String)> = (0..n_emp)
        .map(|i| {
            let name = format!(
                "{} {}",
                [
                    "Acme",
                    "Globex",
                    "Initech",
                    "Umbrella",
                    "Hooli",
                    "Vandelay",
                    "Stark",
                    "Wayne",
                    "Tyrell",
                    "Cyberdyne"
                ][i % 10],
                ["Systems", "Labs", "Networks", "Corp"][i / 10 % 4]
            );
            let name = if i >= 40 {
                format!("{name} {}", i / 40)
            } else {
                name
            };
            (name, format!("emp{i}.example.com"))
        })
        .collect();
    let emp_cdf = zipf_cdf(n_emp, 1.0);

    // Developers.
    let mut map =
        String::from("# Employer map of the synthetic history (gitdm EmailMap format).\n");
    for (name, domain) in &employers {
        map.push_str(&format!("{domain}  {name}\n"));
    }
    let mut devs: Vec<Dev> = Vec::new();
    let mut used = BTreeSet::new();
    let mut mailmap = String::from("# Synthetic .mailmap\n");
    for i in 0..cfg.developers.max(2) {
        let mut name = format!(
            "{} {}",
            FIRST[rng.random_range(0..FIRST.len())],
            LAST[rng.random_range(0..LAST.len())]
        );
        if !used.insert(name.clone()) {
            name = format!("{name} {}", ["Jr", "II", "III", "IV"][i % 4]);
            if !used.insert(name.clone()) {
                name = format!("{name} {i}");
                used.insert(name.clone());
            }
        }
        let user = name.to_lowercase().replace(' ', ".");
        let roll: f64 = rng.random();
        let email = if roll < 0.15 {
            let e = format!("{user}@hobby{i}.example.org");
            map.push_str(&format!("{e}  (None)\n"));
            e
        } else if roll < 0.23 {
            format!("{user}@unmapped{}.example.net", i % 7)
        } else if roll < 0.28 {
            // Changes jobs: old employer until a date in the middle, then the new one.
            let (a, b) = (zipf(rng, &emp_cdf), zipf(rng, &emp_cdf));
            let e = format!("{user}@mobile{i}.example.org");
            let switch = crate::date::Date::from_git_time(
                cfg.start + (cfg.commits as i64) * 6 * 3600 / 2,
                0,
            );
            map.push_str(&format!(
                "{e}  {} < {switch}\n{e}  {}\n",
                employers[a].0, employers[b].0
            ));
            e
        } else {
            format!("{user}@{}", employers[zipf(rng, &emp_cdf)].1)
        };
        let alias = (rng.random::<f64>() < 0.05).then(|| {
            let old = format!("{}@old-address.example.org", user.replace('.', ""));
            let spelled = name.to_uppercase();
            mailmap.push_str(&format!("{name} <{email}> {spelled} <{old}>\n"));
            (spelled, old)
        });
        devs.push(Dev {
            name,
            email,
            alias,
            offset: [0, 3600, 7200, -18000, -28800, 19800, 32400][i % 7],
        });
    }
    let dev_cdf = zipf_cdf(devs.len(), 1.1);

    // Subsystems: maintainers mostly at the two largest employers.
    let top_two: Vec<usize> = devs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.email.ends_with(&employers[0].1) || d.email.ends_with(&employers[1].1))
        .map(|(i, _)| i)
        .collect();
    let maintainers: Vec<usize> = (0..n_sub)
        .map(|s| {
            if !top_two.is_empty() && s % 2 == 0 {
                top_two[s % top_two.len()]
            } else {
                zipf(rng, &dev_cdf)
            }
        })
        .collect();
    let top_maintainer = maintainers[0];
    let sub_cdf = zipf_cdf(n_sub, 0.8);

    // The tree: path → file; serial numbers keep every line unique.
    let mut serial: u64 = 0;
    let mut line = |tag: &str| {
        serial += 1;
        format!("{tag} {serial:08}: synthetic source line\n")
    };
    let mut files: BTreeMap<String, File> = BTreeMap::new();
    files.insert(
        ".mailmap".into(),
        File {
            lines: mailmap.lines().map(|l| format!("{l}\n")).collect(),
            binary: None,
        },
    );
    for sub in SUBSYSTEMS.iter().take(n_sub) {
        for k in 0..4 {
            let n = 20 + rng.random_range(0..40);
            files.insert(
                format!("{sub}/file{k}.c"),
                File {
                    lines: (0..n).map(|_| line("init")).collect(),
                    binary: None,
                },
            );
        }
    }
    let mut blobs: BTreeMap<String, (u16, ObjectId)> = BTreeMap::new();
    let write_file = |w: &Writer<'_>, f: &File| -> Result<ObjectId, DevstatsError> {
        match &f.binary {
            Some(b) => w.blob(b),
            None => w.blob(f.lines.concat().as_bytes()),
        }
    };
    for (p, f) in &files {
        blobs.insert(p.clone(), (0o100644, write_file(&w, f)?));
    }
    let mut truth = Truth::default();
    let root_author = &devs[top_maintainer];
    let t0 = cfg.start - 86_400;
    let mut head = w.commit(
        w.tree(&blobs)?,
        &[],
        (
            &root_author.name,
            &root_author.email,
            t0,
            root_author.offset,
        ),
        (
            &root_author.name,
            &root_author.email,
            t0,
            root_author.offset,
        ),
        &format!(
            "Initial import\n\nSigned-off-by: {} <{}>\n",
            root_author.name, root_author.email
        ),
    )?;
    let initial_lines: u64 = files.values().map(|f| f.lines.len() as u64).sum();
    truth.changesets += 1;
    truth.added += initial_lines;
    *truth
        .per_author
        .entry(root_author.name.clone())
        .or_default() += 1;
    *truth
        .added_per_author
        .entry(root_author.name.clone())
        .or_default() += initial_lines;
    truth
        .removed_per_author
        .entry(root_author.name.clone())
        .or_default();

    let mut branch: Option<(ObjectId, usize, usize)> = None; // (fork point, commits left, subsystem)
    let mut mainline = head;
    for i in 0..cfg.commits.saturating_sub(1) {
        let time = cfg.start + i as i64 * 6 * 3600;
        if branch.is_none() && rng.random::<f64>() < 0.04 {
            branch = Some((mainline, rng.random_range(2..7), zipf(rng, &sub_cdf)));
        }
        let sub = match branch {
            Some((_, _, s)) => s,
            None => zipf(rng, &sub_cdf),
        };
        let dir = SUBSYSTEMS[sub];
        let a = zipf(rng, &dev_cdf);
        let dev = devs[a].clone();
        let (aname, aemail) = match &dev.alias {
            Some((n, e)) if rng.random::<f64>() < 0.3 => (n.clone(), e.clone()),
            _ => (dev.name.clone(), dev.email.clone()),
        };
        let mut added = 0u64;
        let mut removed = 0u64;
        let mut summary = String::new();
        let kind: f64 = rng.random();
        let sub_files: Vec<String> = files
            .keys()
            .filter(|p| p.starts_with(&format!("{dir}/")))
            .cloned()
            .collect();
        if kind < 0.05 || sub_files.is_empty() {
            // A new file (a driver): heavy-tailed size.
            let n = pareto_lines(rng, 20_000).max(10);
            let path = format!("{dir}/new{i}.c");
            let f = File {
                lines: (0..n).map(|_| line("new")).collect(),
                binary: None,
            };
            added += n as u64;
            blobs.insert(path.clone(), (0o100644, write_file(&w, &f)?));
            files.insert(path.clone(), f);
            summary = format!("{dir}: add {path}");
        } else if kind < 0.08 && sub_files.len() > 2 {
            // Delete a file.
            let path = sub_files[rng.random_range(0..sub_files.len())].clone();
            if let Some(f) = files.remove(&path) {
                if f.binary.is_none() {
                    removed += f.lines.len() as u64;
                } else {
                    truth.binary_changes += 1;
                }
            }
            blobs.remove(&path);
            summary = format!("{dir}: remove {path}");
        } else if kind < 0.12 {
            // Rename with a small edit (keeps ≥ 80% of the bytes).
            let from = sub_files[rng.random_range(0..sub_files.len())].clone();
            if files[&from].binary.is_none() && files[&from].lines.len() >= 10 {
                let mut f = files.remove(&from).unwrap_or_else(|| File {
                    lines: vec![],
                    binary: None,
                });
                blobs.remove(&from);
                let k = (f.lines.len() / 10).max(1);
                for _ in 0..k {
                    f.lines.push(line("moved"));
                }
                added += k as u64;
                let to = format!("{dir}/renamed{i}.c");
                blobs.insert(to.clone(), (0o100644, write_file(&w, &f)?));
                files.insert(to.clone(), f);
                truth.renames += 1;
                summary = format!("{dir}: rename {from} to {to}");
            }
        } else if kind < 0.15 {
            // Firmware: a binary blob, new or changed.
            let path = format!("{dir}/firmware.bin");
            let len = 64 + rng.random_range(0..512);
            let data: Vec<u8> = (0..len)
                .map(|k| if k % 7 == 0 { 0 } else { rng.random::<u8>() })
                .collect();
            let f = File {
                lines: vec![],
                binary: Some(data),
            };
            blobs.insert(path.clone(), (0o100644, write_file(&w, &f)?));
            files.insert(path.clone(), f);
            truth.binary_changes += 1;
            summary = format!("{dir}: update firmware");
        }
        if summary.is_empty() {
            // Edit 1-3 text files: remove a few lines, insert a heavy-tailed number.
            let n_files = rng.random_range(1..4).min(sub_files.len());
            let mut touched = BTreeSet::new();
            for _ in 0..n_files {
                let path = sub_files[rng.random_range(0..sub_files.len())].clone();
                if !touched.insert(path.clone()) {
                    continue;
                }
                let Some(f) = files.get_mut(&path) else {
                    continue;
                };
                if f.binary.is_some() {
                    continue;
                }
                let del = if f.lines.is_empty() {
                    0
                } else {
                    rng.random_range(0..=f.lines.len().min(6))
                };
                let at = if f.lines.len() > del {
                    rng.random_range(0..=f.lines.len() - del)
                } else {
                    0
                };
                f.lines.drain(at..at + del);
                let ins = pareto_lines(rng, 3000);
                let new: Vec<String> = (0..ins).map(|_| line("edit")).collect();
                f.lines.splice(at..at, new);
                removed += del as u64;
                added += ins as u64;
                let id = match &f.binary {
                    Some(b) => w.blob(b)?,
                    None => w.blob(f.lines.concat().as_bytes())?,
                };
                blobs.insert(path.clone(), (0o100644, id));
            }
            summary = format!(
                "{dir}: update {}",
                touched.into_iter().collect::<Vec<_>>().join(", ")
            );
        }

        // Tags: the author, the subsystem maintainer, sometimes the top one.
        let (sub_maintainer, top_maintainer) = if cfg.concentrated_maintainers {
            (maintainers[sub], top_maintainer)
        } else {
            (zipf(rng, &dev_cdf), zipf(rng, &dev_cdf))
        };
        let maint = &devs[sub_maintainer];
        let mut msg = format!("{summary}\n\nChange number {i} of the synthetic history.\n\n");
        if rng.random::<f64>() < 0.1 {
            let r = &devs[zipf(rng, &dev_cdf)];
            msg.push_str(&format!("Reviewed-by: {} <{}>\n", r.name, r.email));
        }
        msg.push_str(&format!("Signed-off-by: {aname} <{aemail}>\n"));
        if rng.random::<f64>() < 0.03 {
            msg.push_str(&format!("Signed-off-by: {}\n", maint.name));
            truth.malformed_tags += 1;
        }
        if sub_maintainer != a {
            msg.push_str(&format!(
                "Signed-off-by: {} <{}>\n",
                maint.name, maint.email
            ));
        }
        if rng.random::<f64>() < 0.2 && top_maintainer != a && top_maintainer != sub_maintainer {
            let t = &devs[top_maintainer];
            msg.push_str(&format!("Signed-off-by: {} <{}>\n", t.name, t.email));
        }
        let parent = match branch {
            Some(_) => head,
            None => mainline,
        };
        let tree = w.tree(&blobs)?;
        let c = w.commit(
            tree,
            &[parent],
            (&aname, &aemail, time, dev.offset),
            (&maint.name, &maint.email, time + 600, maint.offset),
            &msg,
        )?;
        head = c;
        truth.changesets += 1;
        truth.added += added;
        truth.removed += removed;
        *truth.per_author.entry(dev.name.clone()).or_default() += 1;
        *truth.added_per_author.entry(dev.name.clone()).or_default() += added;
        *truth
            .removed_per_author
            .entry(dev.name.clone())
            .or_default() += removed;

        match &mut branch {
            Some((fork, left, s)) => {
                *left -= 1;
                if *left == 0 {
                    // Merge the topic branch into mainline (--no-ff).
                    let m = &devs[maintainers[*s]];
                    let merge = w.commit(
                        tree,
                        &[*fork, head],
                        (&m.name, &m.email, time + 1200, m.offset),
                        (&m.name, &m.email, time + 1200, m.offset),
                        &format!("Merge branch '{}-next'\n", SUBSYSTEMS[*s]),
                    )?;
                    truth.merges += 1;
                    mainline = merge;
                    head = merge;
                    branch = None;
                }
            }
            None => mainline = c,
        }
    }
    if let Some((fork, _, s)) = branch {
        let m = &devs[maintainers[s]];
        let t = cfg.start + cfg.commits as i64 * 6 * 3600;
        let tree = repo
            .find_commit(head)
            .map_err(Writer::err)?
            .tree_id()
            .map_err(Writer::err)?
            .detach();
        head = w.commit(
            tree,
            &[fork, head],
            (&m.name, &m.email, t, m.offset),
            (&m.name, &m.email, t, m.offset),
            "Merge branch 'final'\n",
        )?;
        truth.merges += 1;
    }
    repo.reference(
        "refs/heads/main",
        head,
        gix::refs::transaction::PreviousValue::Any,
        "synthetic history",
    )
    .map_err(Writer::err)?;
    truth.head = Some(head);
    Ok(SynthRepo {
        employer_map: map,
        truth,
    })
}
