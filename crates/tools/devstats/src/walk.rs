//! Which commits a range names, and what each one contributed.
//!
//! ```text
//!  REPO, RANGE ──rev-parse──▶ tips, hidden ──revlist.rs──▶ [commit ids]  (one thread)
//!                                           drop merges, --since/--until
//!  [commit ids] ──cache.rs──▶ cached records (before the mailmap)
//!       └─ misses, split over N threads ──▶ CommitRecord per id           (parallel)
//!                 runs of consecutive commits; each thread: own object
//!                 reader and a share of the delta-base cache (objects.rs),
//!                 own Differ
//!  records, in walk order ──mailmap──▶ sink (stats.rs counts and drops them)
//! ```
//!
//! Range forms (git's `rev-list` semantics): none (`HEAD`), `REV`,
//! `A..B`, `A...B` (symmetric difference), `^A`, `REV^@`, `REV^!`, and
//! several of them separated by white space (`^v1 v2 v3`). Annotated
//! tags are peeled to commits. A changeset is a commit
//! with at most one parent (`--no-merges`). `--since`/`--until` keep
//! commits whose committer date is at or after / at or before the given
//! time, as `git rev-list --since/--until` do for histories whose
//! committer dates do not go backwards (git also stops walking at the first
//! commit older than `--since`, which only differs when they do).
//!
//! Identities go through the repository's mailmap (`.mailmap` in the work
//! tree, or `HEAD:.mailmap` in a bare repository, plus `mailmap.file` and
//! `mailmap.blob`), as `git shortlog` applies it. Messages are decoded as
//! UTF-8, or as Latin-1 when the commit's `encoding` header says so;
//! invalid UTF-8 is replaced with U+FFFD.
//!
//! Ordering: records come back in walk order (git's: newest committer date
//! first) whatever the number of threads and whatever the cache held, so
//! results do not depend on scheduling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use gix::ObjectId;
use gix::bstr::ByteSlice;

use crate::cache::{Cache, CacheKey, Slot};
use crate::error::DevstatsError;
use crate::numstat::Differ;
use crate::objects::{DELTA_BASE_CACHE_BYTES, Objects, Packs, commit_tree};
pub use crate::record::{CommitRecord, Person};
use crate::rename::{DEFAULT_RENAME_LIMIT, DEFAULT_RENAME_SCORE, RenameOptions};
use crate::revlist;
use crate::trailer;

/// The delta-base cache of the revision walk: commits are seldom stored
/// as deltas, so it only needs to hold the few chains there are.
const REV_WALK_CACHE_BYTES: usize = 4 << 20;

/// Reports progress of long work (the CLI draws a bar on a terminal).
pub trait Progress: Sync {
    /// Work of `total` commits starts.
    fn begin(&self, total: u64);
    /// `n` more commits done.
    fn advance(&self, n: u64);
    /// The work is over.
    fn end(&self);
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn begin(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}

/// What to walk.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// A revision or range (`v2.6.30..v2.6.31`); `None` is `HEAD`.
    pub range: Option<String>,
    /// Keep commits whose committer time is at or after this (seconds since
    /// the epoch).
    pub since: Option<i64>,
    /// Keep commits whose committer time is at or before this.
    pub until: Option<i64>,
}

/// Opens a repository, with a clear error when the path is not one.
pub fn open(path: &std::path::Path) -> Result<gix::Repository, DevstatsError> {
    gix::open(path).map_err(|e| DevstatsError::NotARepository {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

/// git's rename settings from the repository configuration
/// (`diff.renames`, `diff.renameLimit`): `None` when renames are off.
pub fn rename_options(repo: &gix::Repository) -> Option<RenameOptions> {
    let cfg = repo.config_snapshot();
    if let Some(v) = cfg.string("diff.renames") {
        let v = v.to_str_lossy().to_ascii_lowercase();
        if matches!(v.as_str(), "false" | "no" | "off" | "0") {
            return None;
        }
    }
    let limit = cfg
        .integer("diff.renameLimit")
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(DEFAULT_RENAME_LIMIT);
    Some(RenameOptions {
        limit,
        minimum_score: DEFAULT_RENAME_SCORE,
    })
}

/// The tips and hidden commits `sel` names (`rev-parse`).
fn resolve(
    repo: &gix::Repository,
    sel: &Selection,
) -> Result<(Vec<ObjectId>, Vec<ObjectId>), DevstatsError> {
    let spec = sel.range.as_deref().unwrap_or("HEAD");
    let rev_err = |message: String| DevstatsError::Revision {
        spec: spec.to_owned(),
        message,
    };
    let peel = |id: ObjectId| -> Result<ObjectId, DevstatsError> {
        let obj = repo.find_object(id).map_err(|e| rev_err(e.to_string()))?;
        let commit = obj
            .peel_to_kind(gix::object::Kind::Commit)
            .map_err(|e| rev_err(format!("{id} is not a commit: {e}")))?;
        Ok(commit.id)
    };
    let parents = |id: ObjectId| -> Result<Vec<ObjectId>, DevstatsError> {
        let c = repo.find_commit(id).map_err(|e| rev_err(e.to_string()))?;
        Ok(c.parent_ids().map(|p| p.detach()).collect())
    };
    use gix::revision::plumbing::Spec;
    let mut tips: Vec<ObjectId> = Vec::new();
    let mut hidden: Vec<ObjectId> = Vec::new();
    // Several specs may be given, separated by white space (`^v1 v2 v3`).
    for token in spec.split_whitespace() {
        let parsed = repo
            .rev_parse(token)
            .map_err(|e| rev_err(format!("{token}: {e}")))?
            .detach();
        match parsed {
            Spec::Include(id) => tips.push(peel(id)?),
            Spec::Exclude(id) => hidden.push(peel(id)?),
            Spec::Range { from, to } => {
                tips.push(peel(to)?);
                hidden.push(peel(from)?);
            }
            Spec::Merge { theirs, ours } => {
                let (a, b) = (peel(theirs)?, peel(ours)?);
                let bases = repo
                    .merge_bases_many(a, &[b])
                    .map_err(|e| rev_err(e.to_string()))?;
                hidden.extend(bases.into_iter().map(|id| id.detach()));
                tips.extend([a, b]);
            }
            Spec::IncludeOnlyParents(id) => tips.extend(parents(peel(id)?)?),
            Spec::ExcludeParents(id) => {
                let id = peel(id)?;
                tips.push(id);
                hidden.extend(parents(id)?);
            }
        }
    }
    Ok((tips, hidden))
}

/// Walks `sel` (`revlist.rs`), calling `found` with each non-merge commit
/// within the date limits as soon as the walk lists it, and returns those
/// that remain at the end, in walk order. A commit handed to `found` may
/// be missing from the result: git's walk can find out late that a listed
/// commit is reachable from a hidden one.
fn walk_range(
    repo: &gix::Repository,
    objects: &Objects<'_>,
    sel: &Selection,
    graph: Option<&mut Cache>,
    found: &mut dyn FnMut(ObjectId),
) -> Result<Vec<ObjectId>, DevstatsError> {
    let (tips, hidden) = resolve(repo, sel)?;
    if tips.is_empty() {
        return Ok(Vec::new());
    }
    let keep = |c: &revlist::Commit| {
        c.parents.len() <= 1
            && sel.since.is_none_or(|s| c.date >= s)
            && sel.until.is_none_or(|u| c.date <= u)
    };
    let listed = revlist::list(objects, &tips, &hidden, graph, &mut |c| {
        if keep(c) {
            found(c.id);
        }
    })
    .map_err(|message| DevstatsError::Revision {
        spec: sel.range.clone().unwrap_or_else(|| "HEAD".to_owned()),
        message,
    })?;
    Ok(listed.into_iter().filter(keep).map(|c| c.id).collect())
}

/// The non-merge commits `sel` names, in walk order.
pub fn commits(repo: &gix::Repository, sel: &Selection) -> Result<Vec<ObjectId>, DevstatsError> {
    commits_with(repo, sel, None)
}

/// [`commits`], reading commits' dates and parents from `graph` where it
/// has them and adding the others to it.
pub fn commits_with(
    repo: &gix::Repository,
    sel: &Selection,
    graph: Option<&mut Cache>,
) -> Result<Vec<ObjectId>, DevstatsError> {
    let packs = Packs::open(repo);
    let objects = Objects::new(&packs, repo, REV_WALK_CACHE_BYTES);
    walk_range(repo, &objects, sel, graph, &mut |_| {})
}

/// How [`stream`] works through the commits.
#[derive(Debug)]
pub struct WalkOptions<'c> {
    /// Threads diffing commits (at least one is used).
    pub threads: usize,
    /// Keep per-file numstat lines in the records handed over.
    pub keep_files: bool,
    /// Records to reuse, and where computed ones go; `None`: compute all.
    pub cache: Option<&'c mut Cache>,
}

/// What a walk counted besides the records it handed over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkSummary {
    /// Records handed over.
    pub commits: u64,
    /// Commits whose rename detection stopped at `diff.renameLimit`.
    pub rename_limit_hits: u64,
}

/// The cache key of this repository's records: its object hash and its
/// rename settings.
pub fn cache_key(repo: &gix::Repository) -> CacheKey {
    CacheKey::records(
        repo.object_hash().len_in_bytes() as u8,
        rename_options(repo),
    )
}

/// The cache key of this repository's commit graph.
pub fn graph_key(repo: &gix::Repository) -> CacheKey {
    CacheKey::graph(repo.object_hash().len_in_bytes() as u8)
}

/// Analyses `ids` on `threads` threads (at least one), returning one record
/// per id in the same order, and how many commits hit the rename limit.
/// `keep_files` keeps per-file numstat lines.
pub fn analyse(
    repo: &gix::Repository,
    ids: &[ObjectId],
    threads: usize,
    keep_files: bool,
    progress: &dyn Progress,
) -> Result<(Vec<CommitRecord>, u64), DevstatsError> {
    let mut records = Vec::with_capacity(ids.len());
    let opts = WalkOptions {
        threads,
        keep_files,
        cache: None,
    };
    let summary = stream(repo, ids, opts, progress, &mut |r| records.push(r))?;
    Ok((records, summary.rename_limit_hits))
}

/// Hands the record of each of `ids` to `sink`, in the order of `ids`, as
/// soon as it and every earlier one are ready, so that a caller that only
/// counts holds no records.
///
/// ```text
///  ids ──cache? ──hit──▶ cached record ─────────────────────┐
///         │miss                                             ├─ in order ─▶ mailmap ─▶ sink
///         └─▶ runs of misses over N threads ─▶ computed ────┘
///                                                  └────▶ cache (new segment)
/// ```
///
/// Records are computed and cached before the mailmap, and the mailmap of
/// this run is applied to every record handed over. A cached record that
/// fails its checksum is computed here instead (and replaced in the cache).
/// Writing the new segment is left to the caller ([`Cache::write`]).
pub fn stream(
    repo: &gix::Repository,
    ids: &[ObjectId],
    opts: WalkOptions<'_>,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(CommitRecord),
) -> Result<WalkSummary, DevstatsError> {
    run(repo, opts, progress, sink, &mut |_, found| {
        for &id in ids {
            found(id);
        }
        Ok(ids.to_vec())
    })
}

/// [`stream`] over the commits `sel` names: commits are diffed while the
/// revision walk is still going (`graph` as in [`commits_with`]).
pub fn stream_range(
    repo: &gix::Repository,
    sel: &Selection,
    graph: Option<&mut Cache>,
    opts: WalkOptions<'_>,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(CommitRecord),
) -> Result<WalkSummary, DevstatsError> {
    let mut graph = graph;
    run(repo, opts, progress, sink, &mut |objects, found| {
        walk_range(repo, objects, sel, graph.as_deref_mut(), found)
    })
}

/// Produces the commits of a walk on the coordinating thread: hands each
/// candidate to `found` as it is known (in walk order), and returns the
/// final list, a subsequence of what it handed over.
type Producer<'p> =
    dyn FnMut(&Objects<'_>, &mut dyn FnMut(ObjectId)) -> Result<Vec<ObjectId>, DevstatsError> + 'p;

/// The engine of [`stream`] and [`stream_range`].
///
/// ```text
///  coordinator: produce ids ──▶ cache slot? ──miss──▶ runs ──▶ work queue ──▶ N workers
///               then, in final order: cached record, or the worker's ◀── results
///               ──▶ mailmap ──▶ sink
/// ```
fn run(
    repo: &gix::Repository,
    opts: WalkOptions<'_>,
    progress: &dyn Progress,
    sink: &mut dyn FnMut(CommitRecord),
    produce: &mut Producer<'_>,
) -> Result<WalkSummary, DevstatsError> {
    let WalkOptions {
        threads,
        keep_files,
        mut cache,
    } = opts;
    let threads = threads.max(1);
    let mailmap = repo.open_mailmap();
    let renames = rename_options(repo);
    // Files are kept while a record is on its way to the cache.
    let files_needed = keep_files || cache.is_some();
    let sync = repo.clone().into_sync();
    let packs = Packs::open(repo);
    // git's delta-base cache is one budget for the process: the reading
    // threads share it.
    let per_thread = DELTA_BASE_CACHE_BYTES / threads;
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, DevstatsError)>> = Mutex::new(None);
    let (work_tx, work_rx) = mpsc::channel::<Vec<(usize, ObjectId)>>();
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<Vec<(usize, CommitRecord)>>();
    let mut summary = WalkSummary::default();
    let result = std::thread::scope(|scope| -> Result<(), DevstatsError> {
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let (sync, packs, stop, first_error, work_rx) =
                (&sync, &packs, &stop, &first_error, &work_rx);
            scope.spawn(move || {
                // gix reads only what is in no pack (loose objects,
                // alternates); `objects` reads the packs with git's
                // delta-base cache and hands out shared buffers.
                let repo = sync.to_thread_local();
                let objects = Objects::new(packs, &repo, per_thread);
                let mut differ = Differ::new(renames);
                loop {
                    let next = work_rx.lock().ok().and_then(|rx| rx.recv().ok());
                    let Some(run) = next else { break };
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let mut done = Vec::with_capacity(run.len());
                    for (i, id) in run {
                        match record(&objects, &mut differ, id) {
                            Ok(mut r) => {
                                if !files_needed {
                                    r.files = Vec::new();
                                }
                                done.push((i, r));
                            }
                            Err(e) => {
                                if let Ok(mut slot) = first_error.lock()
                                    && slot.as_ref().is_none_or(|(j, _)| i < *j)
                                {
                                    *slot = Some((i, e));
                                }
                                stop.store(true, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                    // The receiver is gone only when the walk has failed.
                    if done_tx.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let fail = |e| {
            stop.store(true, Ordering::Relaxed);
            Err(e)
        };

        // Produce: each candidate gets a number and a cache slot; runs of
        // consecutive misses go to the workers as soon as they are long
        // enough (16 to 1024 commits, an eighth of a thread's share of what
        // is known so far: a commit's old side is its parent's new side,
        // and each thread has its own delta-base cache).
        let walk_objects = Objects::new(&packs, repo, REV_WALK_CACHE_BYTES);
        let mut found: Vec<(ObjectId, Option<Slot>)> = Vec::new();
        let mut number: HashMap<ObjectId, usize> = HashMap::new();
        let mut run_ids: Vec<(usize, ObjectId)> = Vec::new();
        let mut misses = 0usize;
        let produced = produce(&walk_objects, &mut |id| {
            if number.contains_key(&id) {
                return;
            }
            let i = found.len();
            number.insert(id, i);
            let slot = cache.as_deref().and_then(|c| c.find(id.as_bytes()));
            found.push((id, slot));
            if slot.is_none() {
                misses += 1;
                run_ids.push((i, id));
                let batch = (misses / (threads * 8)).clamp(16, 1024);
                if run_ids.len() >= batch {
                    let _ = work_tx.send(std::mem::take(&mut run_ids));
                }
            }
        });
        if !run_ids.is_empty() {
            let _ = work_tx.send(std::mem::take(&mut run_ids));
        }
        drop(work_tx);
        let final_ids = match produced {
            Ok(ids) => ids,
            Err(e) => return fail(e),
        };

        // Hand over, in final order.
        progress.begin(final_ids.len() as u64);
        let mut pending: HashMap<usize, CommitRecord> = HashMap::new();
        // Records the cache had but could not vouch for are computed here.
        let mut inline: Option<Differ> = None;
        let mut unreported = 0u64;
        for id in final_ids {
            let Some(&i) = number.get(&id) else {
                return fail(DevstatsError::object(id, "listed but never found"));
            };
            let slot = found[i].1;
            let cached = match (slot, cache.as_deref_mut()) {
                (Some(slot), Some(c)) => c.read(slot, keep_files),
                _ => None,
            };
            let (mut r, computed) = match cached {
                Some(r) => (r, false),
                None if slot.is_some() => {
                    let differ = inline.get_or_insert_with(|| Differ::new(renames));
                    match record(&walk_objects, differ, id) {
                        Ok(r) => (r, true),
                        Err(e) => return fail(e),
                    }
                }
                None => loop {
                    if let Some(r) = pending.remove(&i) {
                        break (r, true);
                    }
                    match done_rx.recv() {
                        Ok(batch) => pending.extend(batch),
                        Err(_) => {
                            let e = first_error
                                .lock()
                                .ok()
                                .and_then(|mut e| e.take())
                                .map(|(_, e)| e)
                                .unwrap_or_else(|| DevstatsError::object(id, "not analysed"));
                            return fail(e);
                        }
                    }
                },
            };
            if computed {
                if let Some(c) = cache.as_deref_mut() {
                    c.insert(id.as_bytes(), &r);
                }
                if !keep_files {
                    r.files = Vec::new();
                }
            }
            summary.commits += 1;
            summary.rename_limit_hits += u64::from(r.rename_limit_hit);
            apply_mailmap(&mailmap, &mut r);
            sink(r);
            unreported += 1;
            if unreported == 256 {
                progress.advance(unreported);
                unreported = 0;
            }
        }
        progress.advance(unreported);
        // Commits the walk dropped late were diffed all the same: their
        // records are sound, so they are cached too.
        for (i, r) in pending.into_iter().chain(done_rx.iter().flatten()) {
            if let Some(c) = cache.as_deref_mut() {
                c.insert(found[i].0.as_bytes(), &r);
            }
        }
        Ok(())
    });
    progress.end();
    result?;
    Ok(summary)
}

/// Decodes a commit message or name per the commit's `encoding` header.
fn decode(bytes: &[u8], encoding: Option<&[u8]>) -> String {
    let latin1 = encoding.is_some_and(|e| {
        let e = e.to_ascii_lowercase();
        matches!(
            e.as_slice(),
            b"iso-8859-1" | b"iso8859-1" | b"latin1" | b"latin-1" | b"l1"
        )
    });
    if latin1 {
        bytes.iter().map(|&b| char::from(b)).collect()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Applies the mailmap to a record's author and tags, as `git shortlog`
/// does to authors: the author's name and address are replaced by the
/// mailmap's, a tag's person only when the mailmap names both a name and
/// a well-formed address for them (so a tag keeps the trailer invariant).
pub fn apply_mailmap(mailmap: &gix::mailmap::Snapshot, r: &mut CommitRecord) {
    fn sig<'a>(name: &'a str, email: &'a str) -> gix::actor::SignatureRef<'a> {
        gix::actor::SignatureRef {
            name: name.as_bytes().as_bstr(),
            email: email.as_bytes().as_bstr(),
            time: "",
        }
    }
    if let Some(m) = mailmap.try_resolve(sig(&r.author.name, &r.author.email)) {
        r.author.name = m.name.to_str_lossy().into_owned();
        r.author.email = m.email.to_str_lossy().into_owned();
    }
    for t in &mut r.tags {
        if let Some(m) = mailmap.try_resolve(sig(&t.name, &t.email)) {
            let (name, email) = (m.name.to_string(), m.email.to_string());
            if !name.trim().is_empty() && !email.is_empty() && !email.contains('>') {
                t.name = name.trim().to_owned();
                t.email = email;
            }
        }
    }
}

/// The record of commit `id` as computed from the repository, before the
/// mailmap, with its files.
fn record(
    repo: &Objects<'_>,
    differ: &mut Differ,
    id: ObjectId,
) -> Result<CommitRecord, DevstatsError> {
    let kind = id.kind();
    let commit = repo
        .find_kind(&id, gix::objs::Kind::Commit)
        .map_err(|e| DevstatsError::object(id, e))?;
    let c = gix::objs::CommitRef::from_bytes(&commit, kind)
        .map_err(|e| DevstatsError::object(id, e))?;
    let encoding = c.encoding.map(|e| e.as_bytes());
    let author_sig = c.author().map_err(|e| DevstatsError::object(id, e))?;
    let author_time = author_sig
        .time()
        .map_err(|e| DevstatsError::object(id, e))?;
    let committer_time = c
        .committer()
        .and_then(|s| s.time())
        .map_err(|e| DevstatsError::object(id, e))?;
    let author_sig = author_sig.trim();
    let author = Person {
        name: decode(author_sig.name, encoding),
        email: decode(author_sig.email, encoding),
    };
    let message = decode(c.message, encoding);
    let parsed = trailer::parse_message(&message);
    let parent = c.parents().next();
    let tree = c.tree();
    drop(c);
    let parent_tree = match parent {
        Some(p) => {
            let data = repo
                .find_kind(&p, gix::objs::Kind::Commit)
                .map_err(|e| DevstatsError::object(p, e))?;
            Some(commit_tree(&data, kind).map_err(|e| DevstatsError::object(p, e))?)
        }
        None => None,
    };
    let hits_before = differ.limit_hits;
    let files = differ.numstat(repo, kind, parent_tree, tree)?;
    let added = files.iter().map(|f| f.added).sum();
    let removed = files.iter().map(|f| f.removed).sum();
    Ok(CommitRecord {
        id: id.to_string(),
        author,
        author_time: author_time.seconds,
        author_offset: author_time.offset,
        committer_time: committer_time.seconds,
        added,
        removed,
        files,
        tags: parsed.tags,
        malformed_tags: u32::try_from(parsed.malformed.len()).unwrap_or(u32::MAX),
        rename_limit_hit: differ.limit_hits > hits_before,
    })
}
