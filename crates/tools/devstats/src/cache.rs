//! A per-commit record cache, so that a range whose commits were seen
//! before is answered without diffing them again, and a commit-graph
//! cache, so that finding those commits needs no commit to be inflated.
//!
//! A commit id names the commit's whole content, so the record computed
//! from it (author, dates, tags, numstat with renames) can only change with
//! the options that change the computation: the object hash, rename
//! detection (`diff.renames`, `diff.renameLimit`, the minimum score) and
//! the rules of this crate (`RULES_VERSION`). Those form the [`CacheKey`];
//! each key has its own segment files, and the header of each file repeats
//! it. Records are stored *before* the mailmap (the mailmap is applied when
//! they are read), so a `.mailmap` that changes at every release does not
//! throw the cache away.
//!
//! The graph segments hold, for every commit the revision walk parsed, its
//! committer date and parents (what git's `commit-graph` file holds; a
//! repository often has none, and devstats does not write into git's own
//! files). They depend on nothing but the object hash.
//!
//! Where: `klab-devstats/` under the repository's git directory (the
//! common directory of a work tree, where git keeps `objects/info/
//! commit-graph`), or a directory the user names; a cache directory may be
//! shared by several repositories, since ids do not collide.
//!
//! ```text
//!  DIR/records-v1.1-sha1-renames-1000-30000-<crc><len>.seg   one segment (immutable)
//!  DIR/graph-v1.1-sha1-<crc><len>.seg
//!
//!  header  magic "klabdsc\n", format, rules, kind (1 records, 2 graph),
//!          id length, renames, limit, score, n, section lengths, crc32 of
//!          the header
//!  index   n × (id, offset u64, length u32, crc32 u32), sorted by id;
//!          crc32 of the index
//!  strings count, then (length, bytes) each: every name, address and path
//!          once; crc32 of the strings
//!  records the records, each checked by its crc32 in the index
//! ```
//!
//! Record encoding (LEB128 varints; signed values zig-zagged; `s` is an
//! index into the strings):
//!
//! ```text
//!  s name, s email, author time, author offset, committer time − author time,
//!  flags (1 = rename limit hit), malformed tags,
//!  n tags × (kind 0..4, s name, s email),
//!  n files × (flags (1 = binary, 2 = renamed), s path, [s old path], added, removed)
//! ```
//!
//! A graph entry: committer time, the number of parents, the parents' ids.
//!
//! Why purpose-built rather than serde with a binary codec such as
//! ciborium: the records are a fixed shape of small integers and strings
//! that repeat (a few thousand people and paths for a million commits), so
//! an interned string table and varints make a record small (94 bytes with
//! its files, index entry included, on git.git `v2.40.0..v2.46.0`) where
//! CBOR of the same struct spells every field name and string in every
//! record; and the decoder here is a checked parse that names the offset of
//! what is wrong, with every index and count bounded by the section it
//! points into.
//!
//! Trust: nothing read is believed without its checksum (crc32, which
//! catches every burst of up to 32 flipped bits and all but 2^-32 of other
//! damage; the cache guards against accidents, not against someone who can
//! write to the git directory anyway). A header, index or string table
//! that is damaged, truncated or of another version makes the whole
//! segment unusable; a damaged record makes that record a miss. Either way
//! the records are computed again, and the next write salvages every
//! record of the damaged segment whose own checksum holds into the new
//! segment and deletes the damaged file. A file that cannot be read at all
//! (its permissions, an I/O error) is passed over and left alone. Files of other versions or keys
//! have other names and are neither read nor touched.
//!
//! Writes: a segment is written whole to a temporary file in the cache
//! directory, synced, and renamed into place without replacing anything,
//! so readers see either nothing or a complete file, and two processes
//! writing at once each add their own segment. When there are more than
//! [`MAX_SEGMENTS`] segments, the next write merges them all into one.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{FileExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::record::{CommitRecord, FileStat, Person};
use crate::rename::RenameOptions;
use crate::trailer::{Trailer, TrailerKind};

/// Version of the file format below.
pub const FORMAT_VERSION: u32 = 1;
/// Version of the rules that compute a record (numstat, renames, trailer
/// parsing, message decoding): raised whenever one of them changes what a
/// record holds, so that older records are not used.
pub const RULES_VERSION: u32 = 1;
/// More segments than this are merged into one at the next write.
pub const MAX_SEGMENTS: usize = 8;

const MAGIC: &[u8; 8] = b"klabdsc\n";
/// magic, format, rules, kind, id length, renames, limit, score, n,
/// index, strings and records lengths, crc.
const HEADER_LEN: usize = 8 + 4 + 4 + 4 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + 8 + 4;
/// Where the header's count of entries is.
const COUNT_AT: u64 = 8 + 4 + 4 + 4 + 4 + 4 + 8 + 8;
/// Read this much of the records section at a time (walks read records in
/// the order they were written).
const READ_AHEAD: usize = 64 << 10;
/// Temporary files older than this were left by a process that died.
const STALE_TEMP_SECS: u64 = 3600;

/// What a segment holds per commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// The commit's [`CommitRecord`], before the mailmap.
    Records,
    /// The commit's committer time and parents.
    Graph,
}

impl SegmentKind {
    fn code(self) -> u32 {
        match self {
            SegmentKind::Records => 1,
            SegmentKind::Graph => 2,
        }
    }
}

/// What an entry depends on besides its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey {
    /// What the segments hold.
    pub kind: SegmentKind,
    /// Bytes per object id (20 for SHA-1, 32 for SHA-256).
    pub id_len: u8,
    /// Rename detection, `None` when `diff.renames` is off (always `None`
    /// for the graph).
    pub renames: Option<RenameOptions>,
}

impl CacheKey {
    /// The key of commit records.
    pub fn records(id_len: u8, renames: Option<RenameOptions>) -> CacheKey {
        CacheKey {
            kind: SegmentKind::Records,
            id_len,
            renames,
        }
    }

    /// The key of the commit graph.
    pub fn graph(id_len: u8) -> CacheKey {
        CacheKey {
            kind: SegmentKind::Graph,
            id_len,
            renames: None,
        }
    }

    /// The file-name stem of this key's segments.
    pub fn stem(&self) -> String {
        let hash = match self.id_len {
            20 => "sha1".to_owned(),
            32 => "sha256".to_owned(),
            n => format!("id{n}"),
        };
        let v = format!("v{FORMAT_VERSION}.{RULES_VERSION}");
        match (self.kind, self.renames) {
            (SegmentKind::Graph, _) => format!("graph-{v}-{hash}"),
            (SegmentKind::Records, Some(r)) => {
                format!("records-{v}-{hash}-renames-{}-{}", r.limit, r.minimum_score)
            }
            (SegmentKind::Records, None) => format!("records-{v}-{hash}-no-renames"),
        }
    }
}

/// Why the cache could not be used at all (the walk then runs without it).
#[derive(Debug, thiserror::Error)]
#[error("record cache {path}: {source}")]
pub struct CacheError {
    /// The directory or file.
    pub path: PathBuf,
    /// What failed.
    #[source]
    pub source: std::io::Error,
}

/// Where a damaged part of a segment is, or what could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: offset {offset}: {what}")]
pub struct Damage {
    /// The segment file.
    pub path: PathBuf,
    /// Byte offset in the file.
    pub offset: u64,
    /// What was wrong.
    pub what: String,
    /// The file could not be read (permissions, I/O error), as opposed to
    /// read and found wrong: it is left alone.
    pub unreadable: bool,
}

/// What the cache did during one walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheCounts {
    /// Entries read from the cache.
    pub hits: u64,
    /// Entries computed and added to the cache (not cached, or damaged).
    pub misses: u64,
    /// Entries found damaged, computed again.
    pub damaged_records: u64,
    /// Segments unusable as a whole (damaged header, index or strings,
    /// truncated, another version).
    pub damaged_segments: u64,
    /// Entries written to a new segment.
    pub written: u64,
    /// Segments merged into the new one (and removed).
    pub merged_segments: u64,
    /// Damage found, one line each (for warnings).
    pub damage: Vec<String>,
}

// ---------------------------------------------------------------------------
// Encoding

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// A checked reader over one section; errors name the file offset.
struct Dec<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// File offset of `bytes[0]`.
    base: u64,
}

impl<'a> Dec<'a> {
    fn new(bytes: &'a [u8], base: u64) -> Self {
        Dec {
            bytes,
            pos: 0,
            base,
        }
    }

    fn at(&self) -> u64 {
        self.base + self.pos as u64
    }

    fn err<T>(&self, what: impl Into<String>) -> Result<T, (u64, String)> {
        Err((self.at(), what.into()))
    }

    fn u8(&mut self) -> Result<u8, (u64, String)> {
        match self.bytes.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.err("unexpected end, expected a byte"),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], (u64, String)> {
        match self.bytes.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.err(format!("unexpected end, expected {n} bytes")),
        }
    }

    fn u32(&mut self) -> Result<u32, (u64, String)> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, (u64, String)> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn varint(&mut self) -> Result<u64, (u64, String)> {
        let start = self.at();
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err((start, "varint overflows 64 bits".into()));
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err((start, "varint longer than 10 bytes".into()))
    }

    /// A count of items each at least `min_bytes` long: bounded by what is
    /// left, so a damaged count cannot ask for a huge allocation.
    fn count(&mut self, min_bytes: usize) -> Result<usize, (u64, String)> {
        let at = self.at();
        let n = self.varint()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes as u64) > left {
            return Err((at, format!("count {n} exceeds the {left} bytes left")));
        }
        Ok(n as usize)
    }

    fn done(&self) -> Result<(), (u64, String)> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            self.err(format!(
                "{} bytes left over after the record",
                self.bytes.len() - self.pos
            ))
        }
    }
}

fn trailer_kind_code(k: TrailerKind) -> u8 {
    match k {
        TrailerKind::SignedOffBy => 0,
        TrailerKind::ReviewedBy => 1,
        TrailerKind::TestedBy => 2,
        TrailerKind::ReportedBy => 3,
        TrailerKind::ReportedAndTestedBy => 4,
    }
}

fn trailer_kind(code: u8) -> Option<TrailerKind> {
    Some(match code {
        0 => TrailerKind::SignedOffBy,
        1 => TrailerKind::ReviewedBy,
        2 => TrailerKind::TestedBy,
        3 => TrailerKind::ReportedBy,
        4 => TrailerKind::ReportedAndTestedBy,
        _ => return None,
    })
}

/// Lower-case hex of an id.
pub fn hex(id: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(id.len() * 2);
    for &b in id {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Builds one segment: records are encoded as they are added.
#[derive(Debug, Default)]
pub struct SegmentBuilder {
    strings: HashMap<Vec<u8>, u32>,
    string_bytes: Vec<u8>,
    records: Vec<u8>,
    /// `(id, offset, length, crc)`.
    index: Vec<(Vec<u8>, u64, u32, u32)>,
    ids: HashSet<Vec<u8>>,
}

impl SegmentBuilder {
    /// An empty segment.
    pub fn new() -> Self {
        SegmentBuilder::default()
    }

    /// Records added so far.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// True when `id` was added.
    pub fn contains(&self, id: &[u8]) -> bool {
        self.ids.contains(id)
    }

    fn string(&mut self, s: &[u8]) -> u64 {
        if let Some(&i) = self.strings.get(s) {
            return u64::from(i);
        }
        let i = self.strings.len() as u32;
        put_varint(&mut self.string_bytes, s.len() as u64);
        self.string_bytes.extend_from_slice(s);
        self.strings.insert(s.to_vec(), i);
        u64::from(i)
    }

    /// Adds the record of commit `id` (as computed, before the mailmap);
    /// a second record for the same id is ignored.
    pub fn add(&mut self, id: &[u8], r: &CommitRecord) {
        if !self.ids.insert(id.to_vec()) {
            return;
        }
        let mut out = Vec::with_capacity(32 + 8 * r.files.len());
        let name = self.string(r.author.name.as_bytes());
        let email = self.string(r.author.email.as_bytes());
        put_varint(&mut out, name);
        put_varint(&mut out, email);
        put_varint(&mut out, zigzag(r.author_time));
        put_varint(&mut out, zigzag(i64::from(r.author_offset)));
        put_varint(
            &mut out,
            zigzag(r.committer_time.wrapping_sub(r.author_time)),
        );
        out.push(u8::from(r.rename_limit_hit));
        put_varint(&mut out, u64::from(r.malformed_tags));
        put_varint(&mut out, r.tags.len() as u64);
        for t in &r.tags {
            out.push(trailer_kind_code(t.kind));
            let (n, e) = (
                self.string(t.name.as_bytes()),
                self.string(t.email.as_bytes()),
            );
            put_varint(&mut out, n);
            put_varint(&mut out, e);
        }
        put_varint(&mut out, r.files.len() as u64);
        for f in &r.files {
            out.push(u8::from(f.binary) | (u8::from(f.old_path.is_some()) << 1));
            let p = self.string(&f.path);
            put_varint(&mut out, p);
            if let Some(old) = &f.old_path {
                let o = self.string(old);
                put_varint(&mut out, o);
            }
            put_varint(&mut out, f.added);
            put_varint(&mut out, f.removed);
        }
        let offset = self.records.len() as u64;
        self.index
            .push((id.to_vec(), offset, out.len() as u32, crc32fast::hash(&out)));
        self.records.extend_from_slice(&out);
    }

    /// Adds the graph entry of commit `id`: its committer time and its
    /// parents' ids, concatenated; a second entry for the same id is
    /// ignored.
    pub fn add_commit(&mut self, id: &[u8], date: i64, parents: &[u8], id_len: usize) {
        if !self.ids.insert(id.to_vec()) {
            return;
        }
        let mut out = Vec::with_capacity(12 + parents.len());
        put_varint(&mut out, zigzag(date));
        put_varint(&mut out, (parents.len() / id_len.max(1)) as u64);
        out.extend_from_slice(parents);
        let offset = self.records.len() as u64;
        self.index
            .push((id.to_vec(), offset, out.len() as u32, crc32fast::hash(&out)));
        self.records.extend_from_slice(&out);
    }

    /// The whole file for `key`.
    pub fn finish(mut self, key: &CacheKey) -> Vec<u8> {
        self.index.sort_by(|a, b| a.0.cmp(&b.0));
        let id_len = usize::from(key.id_len);
        let mut index = Vec::with_capacity(self.index.len() * (id_len + 16) + 4);
        for (id, off, len, crc) in &self.index {
            let mut fixed = id.clone();
            fixed.resize(id_len, 0);
            index.extend_from_slice(&fixed);
            index.extend_from_slice(&off.to_le_bytes());
            index.extend_from_slice(&len.to_le_bytes());
            index.extend_from_slice(&crc.to_le_bytes());
        }
        let index_crc = crc32fast::hash(&index);
        index.extend_from_slice(&index_crc.to_le_bytes());
        let mut strings = Vec::with_capacity(self.string_bytes.len() + 8);
        put_varint(&mut strings, self.strings.len() as u64);
        strings.extend_from_slice(&self.string_bytes);
        let strings_crc = crc32fast::hash(&strings);
        strings.extend_from_slice(&strings_crc.to_le_bytes());

        let mut out =
            Vec::with_capacity(HEADER_LEN + index.len() + strings.len() + self.records.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&RULES_VERSION.to_le_bytes());
        out.extend_from_slice(&key.kind.code().to_le_bytes());
        out.extend_from_slice(&u32::from(key.id_len).to_le_bytes());
        let (on, limit, score) = match key.renames {
            Some(r) => (1u32, r.limit, r.minimum_score),
            None => (0, 0, 0),
        };
        out.extend_from_slice(&on.to_le_bytes());
        out.extend_from_slice(&limit.to_le_bytes());
        out.extend_from_slice(&score.to_le_bytes());
        out.extend_from_slice(&(self.index.len() as u64).to_le_bytes());
        out.extend_from_slice(&(index.len() as u64).to_le_bytes());
        out.extend_from_slice(&(strings.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.records.len() as u64).to_le_bytes());
        let header_crc = crc32fast::hash(&out);
        out.extend_from_slice(&header_crc.to_le_bytes());
        debug_assert_eq!(out.len(), HEADER_LEN);
        out.extend_from_slice(&index);
        out.extend_from_slice(&strings);
        out.extend_from_slice(&self.records);
        out
    }
}

// ---------------------------------------------------------------------------
// Reading

/// One segment file, its index and strings checked and in memory.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    id_len: usize,
    count: usize,
    /// `count` entries of `id_len + 16` bytes.
    index: Vec<u8>,
    strings: Vec<u8>,
    /// `(start, end)` of each string in `strings`.
    spans: Vec<(usize, usize)>,
    records_at: u64,
    records_len: u64,
    /// A window of the records section: `(offset in the section, bytes)`.
    window: (u64, Vec<u8>),
    /// Some record failed its checksum: salvage at the next write.
    damaged: bool,
}

impl Segment {
    fn open(path: &Path, key: &CacheKey) -> Result<Segment, Damage> {
        let damage = |offset: u64, what: String| Damage {
            path: path.to_owned(),
            offset,
            what,
            unreadable: false,
        };
        let unreadable = |offset: u64, what: String| Damage {
            unreadable: true,
            ..damage(offset, what)
        };
        let file = File::open(path).map_err(|e| unreadable(0, format!("cannot open: {e}")))?;
        let size = file
            .metadata()
            .map_err(|e| unreadable(0, format!("cannot stat: {e}")))?
            .len();
        let read = |at: u64, len: u64| -> Result<Vec<u8>, Damage> {
            if at.saturating_add(len) > size {
                return Err(damage(
                    at,
                    format!("truncated: {len} bytes expected here, the file has {size}"),
                ));
            }
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, at)
                .map_err(|e| unreadable(at, format!("cannot read: {e}")))?;
            Ok(buf)
        };
        let header = read(0, HEADER_LEN as u64)?;
        let mut d = Dec::new(&header, 0);
        let to_damage = |(o, w): (u64, String)| damage(o, w);
        let magic = d.take(8).map_err(to_damage)?;
        if magic != MAGIC {
            return Err(damage(0, "not a devstats cache segment (bad magic)".into()));
        }
        let format = d.u32().map_err(to_damage)?;
        let rules = d.u32().map_err(to_damage)?;
        let kind = d.u32().map_err(to_damage)?;
        let id_len = d.u32().map_err(to_damage)?;
        let on = d.u32().map_err(to_damage)?;
        let limit = d.u64().map_err(to_damage)?;
        let score = d.u64().map_err(to_damage)?;
        let count = d.u64().map_err(to_damage)?;
        let index_len = d.u64().map_err(to_damage)?;
        let strings_len = d.u64().map_err(to_damage)?;
        let records_len = d.u64().map_err(to_damage)?;
        let header_crc = d.u32().map_err(to_damage)?;
        if crc32fast::hash(&header[..HEADER_LEN - 4]) != header_crc {
            return Err(damage(0, "header checksum mismatch".into()));
        }
        if (format, rules) != (FORMAT_VERSION, RULES_VERSION) {
            return Err(damage(
                8,
                format!(
                    "version {format}.{rules}, this devstats reads {FORMAT_VERSION}.{RULES_VERSION}"
                ),
            ));
        }
        let renames = (on == 1).then_some(RenameOptions {
            limit,
            minimum_score: score,
        });
        if kind != key.kind.code()
            || id_len != u32::from(key.id_len)
            || on > 1
            || renames != key.renames
        {
            return Err(damage(
                16,
                "written for other options (kind, object hash or rename detection)".into(),
            ));
        }
        let id_len = id_len as usize;
        let entry = id_len as u64 + 16;
        if count.checked_mul(entry).and_then(|n| n.checked_add(4)) != Some(index_len) {
            return Err(damage(
                COUNT_AT,
                format!("index of {index_len} bytes cannot hold {count} entries"),
            ));
        }
        let total = (HEADER_LEN as u64)
            .checked_add(index_len)
            .and_then(|n| n.checked_add(strings_len))
            .and_then(|n| n.checked_add(records_len));
        if total != Some(size) {
            return Err(damage(
                size,
                format!(
                    "file is {size} bytes, the header says {}",
                    total.map_or("more than 2^64".to_owned(), |t| t.to_string())
                ),
            ));
        }
        let at = HEADER_LEN as u64;
        let mut index = read(at, index_len)?;
        let crc_at = index.len() - 4;
        let crc = u32::from_le_bytes([
            index[crc_at],
            index[crc_at + 1],
            index[crc_at + 2],
            index[crc_at + 3],
        ]);
        index.truncate(crc_at);
        if crc32fast::hash(&index) != crc {
            return Err(damage(at, "index checksum mismatch".into()));
        }
        let at = at + index_len;
        if strings_len < 5 {
            return Err(damage(at, "string table too short".into()));
        }
        let mut strings = read(at, strings_len)?;
        let crc_at = strings.len() - 4;
        let crc = u32::from_le_bytes([
            strings[crc_at],
            strings[crc_at + 1],
            strings[crc_at + 2],
            strings[crc_at + 3],
        ]);
        strings.truncate(crc_at);
        if crc32fast::hash(&strings) != crc {
            return Err(damage(at, "string table checksum mismatch".into()));
        }
        let mut d = Dec::new(&strings, at);
        let n = d.count(1).map_err(to_damage)?;
        let mut spans = Vec::with_capacity(n);
        for _ in 0..n {
            let len = d.varint().map_err(to_damage)?;
            let start = d.pos;
            d.take(usize::try_from(len).unwrap_or(usize::MAX))
                .map_err(to_damage)?;
            spans.push((start, d.pos));
        }
        d.done().map_err(to_damage)?;
        let records_at = at + strings_len;
        let seg = Segment {
            path: path.to_owned(),
            file,
            id_len,
            count: count as usize,
            index,
            strings,
            spans,
            records_at,
            records_len,
            window: (0, Vec::new()),
            damaged: false,
        };
        // Entries sorted by id, each record inside the records section.
        for i in 0..seg.count {
            let (off, len, _) = seg.entry(i);
            if off
                .checked_add(u64::from(len))
                .is_none_or(|e| e > records_len)
                || (i > 0 && seg.id(i - 1) >= seg.id(i))
            {
                return Err(damage(
                    HEADER_LEN as u64 + (i * (id_len + 16)) as u64,
                    "index entry out of order or outside the records".into(),
                ));
            }
        }
        Ok(seg)
    }

    fn id(&self, i: usize) -> &[u8] {
        let at = i * (self.id_len + 16);
        &self.index[at..at + self.id_len]
    }

    /// `(offset in the records section, length, crc)` of entry `i`.
    fn entry(&self, i: usize) -> (u64, u32, u32) {
        let at = i * (self.id_len + 16) + self.id_len;
        let e = &self.index[at..at + 16];
        let mut o = [0u8; 8];
        o.copy_from_slice(&e[..8]);
        (
            u64::from_le_bytes(o),
            u32::from_le_bytes([e[8], e[9], e[10], e[11]]),
            u32::from_le_bytes([e[12], e[13], e[14], e[15]]),
        )
    }

    fn find(&self, id: &[u8]) -> Option<usize> {
        if id.len() != self.id_len {
            return None;
        }
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.id(mid).cmp(id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }

    fn damage(&self, offset: u64, what: impl Into<String>) -> Damage {
        Damage {
            path: self.path.clone(),
            offset,
            what: what.into(),
            unreadable: false,
        }
    }

    /// The bytes of record `i`, checked against their crc.
    fn record_bytes(&mut self, i: usize) -> Result<Vec<u8>, Damage> {
        let (off, len, crc) = self.entry(i);
        let (wstart, wbytes) = &self.window;
        let end = off + u64::from(len);
        let inside = off >= *wstart && end <= *wstart + wbytes.len() as u64;
        if !inside {
            let want = (len as usize).max(READ_AHEAD) as u64;
            let n = want.min(self.records_len - off);
            let mut buf = vec![0u8; n as usize];
            self.file
                .read_exact_at(&mut buf, self.records_at + off)
                .map_err(|e| Damage {
                    unreadable: true,
                    ..self.damage(self.records_at + off, format!("cannot read: {e}"))
                })?;
            self.window = (off, buf);
        }
        let start = (off - self.window.0) as usize;
        let bytes = self.window.1[start..start + len as usize].to_vec();
        if crc32fast::hash(&bytes) != crc {
            return Err(self.damage(self.records_at + off, "record checksum mismatch"));
        }
        Ok(bytes)
    }

    fn string(&self, d: &mut Dec<'_>) -> Result<&[u8], (u64, String)> {
        let at = d.at();
        let i = d.varint()?;
        match usize::try_from(i).ok().and_then(|i| self.spans.get(i)) {
            Some(&(s, e)) => Ok(&self.strings[s..e]),
            None => Err((at, format!("string {i} of a table of {}", self.spans.len()))),
        }
    }

    fn text(&self, d: &mut Dec<'_>) -> Result<String, (u64, String)> {
        let at = d.at();
        let b = self.string(d)?;
        String::from_utf8(b.to_vec()).map_err(|_| (at, "a name or address is not UTF-8".into()))
    }

    /// Decodes graph entry `i` (checked): committer time and the parents'
    /// ids, concatenated.
    fn commit(&mut self, i: usize) -> Result<(i64, Vec<u8>), Damage> {
        let bytes = self.record_bytes(i)?;
        let (off, _, _) = self.entry(i);
        let mut d = Dec::new(&bytes, self.records_at + off);
        let parsed = (|| {
            let date = unzigzag(d.varint()?);
            let n = d.count(self.id_len)?;
            let parents = d.take(n * self.id_len)?.to_vec();
            d.done()?;
            Ok((date, parents))
        })();
        parsed.map_err(|(o, w)| self.damage(o, w))
    }

    /// Decodes record `i` (checked), with its files when `keep_files`.
    fn record(&mut self, i: usize, keep_files: bool) -> Result<CommitRecord, Damage> {
        let bytes = self.record_bytes(i)?;
        let (off, _, _) = self.entry(i);
        let mut d = Dec::new(&bytes, self.records_at + off);
        self.decode(&mut d, hex(self.id(i)), keep_files)
            .map_err(|(o, w)| self.damage(o, w))
    }

    fn decode(
        &self,
        d: &mut Dec<'_>,
        id: String,
        keep_files: bool,
    ) -> Result<CommitRecord, (u64, String)> {
        let name = self.text(d)?;
        let email = self.text(d)?;
        let author_time = unzigzag(d.varint()?);
        let at = d.at();
        let author_offset = i32::try_from(unzigzag(d.varint()?))
            .map_err(|_| (at, "time zone offset out of range".to_owned()))?;
        let committer_time = author_time.wrapping_add(unzigzag(d.varint()?));
        let at = d.at();
        let flags = d.u8()?;
        if flags > 1 {
            return Err((at, format!("record flags {flags:#x}")));
        }
        let at = d.at();
        let malformed_tags = u32::try_from(d.varint()?)
            .map_err(|_| (at, "malformed tag count out of range".to_owned()))?;
        let n = d.count(3)?;
        let mut tags = Vec::with_capacity(n);
        for _ in 0..n {
            let at = d.at();
            let kind = trailer_kind(d.u8()?).ok_or((at, "unknown tag kind".to_owned()))?;
            let t = Trailer {
                kind,
                name: self.text(d)?,
                email: self.text(d)?,
            };
            let ok = !t.name.is_empty()
                && t.name == t.name.trim()
                && !t.name.contains(['<', '"'])
                && !t.email.is_empty()
                && !t.email.contains('>');
            if !ok {
                return Err((at, "tag breaks the trailer invariant".into()));
            }
            tags.push(t);
        }
        let n = d.count(4)?;
        let mut files = Vec::with_capacity(if keep_files { n } else { 0 });
        let (mut added, mut removed) = (0u64, 0u64);
        for _ in 0..n {
            let at = d.at();
            let flags = d.u8()?;
            if flags > 3 {
                return Err((at, format!("file flags {flags:#x}")));
            }
            let path = self.string(d)?.to_vec();
            let old_path = if flags & 2 != 0 {
                Some(self.string(d)?.to_vec())
            } else {
                None
            };
            let (a, r) = (d.varint()?, d.varint()?);
            let binary = flags & 1 != 0;
            if binary && (a, r) != (0, 0) {
                return Err((at, "a binary file with line counts".into()));
            }
            added = added
                .checked_add(a)
                .ok_or((at, "lines added overflow".to_owned()))?;
            removed = removed
                .checked_add(r)
                .ok_or((at, "lines removed overflow".to_owned()))?;
            if keep_files {
                files.push(FileStat {
                    path,
                    old_path,
                    added: a,
                    removed: r,
                    binary,
                });
            }
        }
        d.done()?;
        Ok(CommitRecord {
            id,
            author: Person { name, email },
            author_time,
            author_offset,
            committer_time,
            added,
            removed,
            files,
            tags,
            malformed_tags,
            rename_limit_hit: flags & 1 != 0,
        })
    }
}

/// Where a cached record is: segment and entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    segment: u32,
    entry: u32,
}

/// The cache of one key in one directory, opened for a walk.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    key: CacheKey,
    segments: Vec<Segment>,
    /// Segments that could not be used at all.
    broken: Vec<PathBuf>,
    new: SegmentBuilder,
    /// What happened so far.
    pub counts: CacheCounts,
}

impl Cache {
    /// Opens (creating the directory if needed) the cache for `key` in
    /// `dir`. Segments that cannot be used are noted, not fatal.
    pub fn open(dir: &Path, key: CacheKey) -> Result<Cache, CacheError> {
        let io = |source| CacheError {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let prefix = format!("{}-", key.stem());
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok())
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(&prefix) && name.ends_with(".seg")
            })
            .map(|e| e.path())
            .collect();
        paths.sort();
        let mut cache = Cache {
            dir: dir.to_owned(),
            key,
            segments: Vec::new(),
            broken: Vec::new(),
            new: SegmentBuilder::new(),
            counts: CacheCounts::default(),
        };
        for p in paths {
            match Segment::open(&p, &key) {
                Ok(s) => cache.segments.push(s),
                // Removed by another process since the listing: not damage.
                Err(_) if !p.exists() => {}
                Err(d) => {
                    cache.counts.damaged_segments += 1;
                    cache.counts.damage.push(d.to_string());
                    if !d.unreadable {
                        cache.broken.push(p);
                    }
                }
            }
        }
        Ok(cache)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key.
    pub fn key(&self) -> &CacheKey {
        &self.key
    }

    /// Segments in use.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Where commit `id`'s record is, if cached.
    pub fn find(&self, id: &[u8]) -> Option<Slot> {
        self.segments.iter().enumerate().find_map(|(s, seg)| {
            seg.find(id).map(|e| Slot {
                segment: s as u32,
                entry: e as u32,
            })
        })
    }

    /// Reads a cached record (before the mailmap; files only when
    /// `keep_files`). `None` when it is damaged: counted, its segment
    /// salvaged at the next [`Cache::write`], and the caller computes it.
    pub fn read(&mut self, slot: Slot, keep_files: bool) -> Option<CommitRecord> {
        let seg = &mut self.segments[slot.segment as usize];
        match seg.record(slot.entry as usize, keep_files) {
            Ok(r) => {
                self.counts.hits += 1;
                Some(r)
            }
            Err(d) => {
                seg.damaged |= !d.unreadable;
                self.counts.damaged_records += 1;
                self.counts.damage.push(d.to_string());
                None
            }
        }
    }

    /// Adds a computed record (before the mailmap, with its files) to the
    /// segment the next [`Cache::write`] writes.
    pub fn insert(&mut self, id: &[u8], r: &CommitRecord) {
        debug_assert_eq!(self.key.kind, SegmentKind::Records);
        self.counts.misses += 1;
        self.new.add(id, r);
    }

    /// Reads a cached graph entry: committer time and the parents' ids,
    /// concatenated. `None` when it is damaged (as [`Cache::read`]).
    pub fn read_commit(&mut self, slot: Slot) -> Option<(i64, Vec<u8>)> {
        let seg = &mut self.segments[slot.segment as usize];
        match seg.commit(slot.entry as usize) {
            Ok(c) => {
                self.counts.hits += 1;
                Some(c)
            }
            Err(d) => {
                seg.damaged |= !d.unreadable;
                self.counts.damaged_records += 1;
                self.counts.damage.push(d.to_string());
                None
            }
        }
    }

    /// Adds a graph entry (parents' ids concatenated) to the segment the
    /// next [`Cache::write`] writes.
    pub fn insert_commit(&mut self, id: &[u8], date: i64, parents: &[u8]) {
        debug_assert_eq!(self.key.kind, SegmentKind::Graph);
        self.counts.misses += 1;
        self.new
            .add_commit(id, date, parents, usize::from(self.key.id_len));
    }

    /// Writes what was inserted as a new segment; merges the segments
    /// found damaged (keeping their sound records) and, past
    /// [`MAX_SEGMENTS`], all of them into it; removes what was merged and
    /// the segments that could not be used.
    pub fn write(&mut self) -> Result<(), CacheError> {
        let mut merge: Vec<usize> = (0..self.segments.len())
            .filter(|&i| self.segments[i].damaged)
            .collect();
        if self.segments.len() + usize::from(!self.new.is_empty()) > MAX_SEGMENTS {
            merge = (0..self.segments.len()).collect();
        }
        if self.new.is_empty() && merge.is_empty() && self.broken.is_empty() {
            return Ok(());
        }
        let mut b = std::mem::take(&mut self.new);
        for &i in &merge {
            let seg = &mut self.segments[i];
            for e in 0..seg.count {
                if b.contains(seg.id(e)) {
                    continue;
                }
                let id = seg.id(e).to_vec();
                // Damaged entries stay behind (they were counted when read
                // or are recomputed when next needed).
                match self.key.kind {
                    SegmentKind::Records => {
                        if let Ok(r) = seg.record(e, true) {
                            b.add(&id, &r);
                        }
                    }
                    SegmentKind::Graph => {
                        if let Ok((date, parents)) = seg.commit(e) {
                            b.add_commit(&id, date, &parents, seg.id_len);
                        }
                    }
                }
            }
        }
        self.counts.written += b.len() as u64;
        if !b.is_empty() {
            let bytes = b.finish(&self.key);
            self.persist(&bytes)?;
        }
        self.counts.merged_segments += merge.len() as u64;
        let mut gone: Vec<PathBuf> = merge
            .iter()
            .map(|&i| self.segments[i].path.clone())
            .collect();
        gone.append(&mut self.broken);
        for p in gone {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(CacheError { path: p, source }),
            }
        }
        let mut i = 0;
        self.segments.retain(|_| {
            let keep = !merge.contains(&i);
            i += 1;
            keep
        });
        self.remove_stale_temporaries();
        Ok(())
    }

    fn persist(&self, bytes: &[u8]) -> Result<(), CacheError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| CacheError { path, source }
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .suffix(".seg")
            .tempfile_in(&self.dir)
            .map_err(io(&self.dir))?;
        tmp.write_all(bytes).map_err(io(tmp.path()))?;
        // Readable by whoever can read the repository (a temporary file is
        // made 0600), as git's own files are.
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io(tmp.path()))?;
        tmp.as_file().sync_all().map_err(io(tmp.path()))?;
        let name = format!(
            "{}-{:08x}{:x}.seg",
            self.key.stem(),
            crc32fast::hash(bytes),
            bytes.len()
        );
        let target = self.dir.join(name);
        match tmp.persist_noclobber(&target) {
            Ok(_) => Ok(()),
            // The same bytes under the same name, written by another run.
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(CacheError {
                path: target,
                source: e.error,
            }),
        }
    }

    /// Removes temporary files that a process which died left behind.
    fn remove_stale_temporaries(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let stale = e.file_name().to_string_lossy().starts_with(".tmp-")
                && e.metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age.as_secs() > STALE_TEMP_SECS);
            if stale {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CacheKey {
        CacheKey::records(20, Some(RenameOptions::default()))
    }

    fn rec(i: u8) -> CommitRecord {
        CommitRecord {
            id: hex(&[i; 20]),
            author: Person {
                name: format!("Dev {}", i % 3),
                email: format!("dev{}@example.org", i % 3),
            },
            author_time: 1_250_000_000 + i64::from(i) * 1000,
            author_offset: -7 * 3600,
            committer_time: 1_250_000_000 + i64::from(i) * 999,
            added: 10 + u64::from(i),
            removed: 3,
            files: vec![
                FileStat {
                    path: b"a/b.c".to_vec(),
                    old_path: Some(b"a/old.c".to_vec()),
                    added: 10 + u64::from(i),
                    removed: 3,
                    binary: false,
                },
                FileStat {
                    path: vec![0xff, b'x'],
                    old_path: None,
                    added: 0,
                    removed: 0,
                    binary: true,
                },
            ],
            tags: vec![Trailer {
                kind: TrailerKind::ReviewedBy,
                name: "Zoë Q".into(),
                email: "z@q.org".into(),
            }],
            malformed_tags: u32::from(i % 2),
            rename_limit_hit: i == 7,
        }
    }

    #[test]
    fn varints_and_zigzag_round_trip() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut d = Dec::new(&b, 0);
            assert_eq!(d.varint(), Ok(v));
            d.done().unwrap();
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -25_200] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        // 11 continuation bytes: an error, not a panic or a wrap.
        let mut d = Dec::new(&[0xff; 11], 0);
        assert!(d.varint().is_err());
    }

    #[test]
    fn records_round_trip_through_a_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cache::open(dir.path(), key()).unwrap();
        for i in 0..10 {
            c.insert(&[i; 20], &rec(i));
        }
        c.write().unwrap();
        assert_eq!(c.counts.written, 10);
        let seg = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(seg.metadata().unwrap().permissions().mode() & 0o777, 0o644);
        let mut c = Cache::open(dir.path(), key()).unwrap();
        assert_eq!(c.segments(), 1);
        for i in (0..10).rev() {
            let slot = c.find(&[i; 20]).expect("cached");
            assert_eq!(c.read(slot, true), Some(rec(i)));
            let mut lean = rec(i);
            lean.files.clear();
            assert_eq!(c.read(slot, false), Some(lean));
        }
        assert!(c.find(&[99; 20]).is_none());
        assert_eq!(c.counts.hits, 20);
    }

    #[test]
    fn other_options_do_not_see_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cache::open(dir.path(), key()).unwrap();
        c.insert(&[1; 20], &rec(1));
        c.write().unwrap();
        for other in [
            CacheKey::records(20, None),
            CacheKey::records(
                20,
                Some(RenameOptions {
                    limit: 7,
                    minimum_score: 30_000,
                }),
            ),
            CacheKey::records(32, Some(RenameOptions::default())),
            CacheKey::graph(20),
        ] {
            let c = Cache::open(dir.path(), other).unwrap();
            assert_eq!((c.segments(), c.counts.damaged_segments), (0, 0));
        }
        // The same file renamed to another key's name is refused by its
        // header, not trusted.
        let seg = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let other = CacheKey::records(20, None);
        let forged = dir.path().join(format!("{}-forged.seg", other.stem()));
        std::fs::copy(&seg, &forged).unwrap();
        let c = Cache::open(dir.path(), other).unwrap();
        assert_eq!((c.segments(), c.counts.damaged_segments), (0, 1));
        assert!(
            c.counts.damage[0].contains("other options"),
            "{:?}",
            c.counts.damage
        );
    }

    fn one_segment(dir: &Path, n: u8) -> PathBuf {
        let mut c = Cache::open(dir, key()).unwrap();
        for i in 0..n {
            c.insert(&[i; 20], &rec(i));
        }
        c.write().unwrap();
        let mut segs: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(segs.len(), 1);
        segs.pop().unwrap()
    }

    #[test]
    fn a_flipped_record_is_a_miss_and_the_rest_is_salvaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = one_segment(dir.path(), 10);
        let mut bytes = std::fs::read(&path).unwrap();
        // The middle of the records section (the last third of the file).
        let at = bytes.len() - bytes.len() / 6;
        bytes[at] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let mut c = Cache::open(dir.path(), key()).unwrap();
        assert_eq!(c.segments(), 1, "header, index and strings are sound");
        let mut damaged = Vec::new();
        for i in 0..10 {
            let slot = c.find(&[i; 20]).unwrap();
            match c.read(slot, true) {
                Some(r) => assert_eq!(r, rec(i)),
                None => damaged.push(i),
            }
        }
        assert_eq!(damaged.len(), 1, "one record holds the flipped bit");
        assert_eq!(c.counts.damaged_records, 1);
        assert!(c.counts.damage[0].contains("record checksum mismatch"));
        // Recomputed and written: the damaged file is replaced by one that
        // holds all ten again.
        let d = damaged[0];
        c.insert(&[d; 20], &rec(d));
        c.write().unwrap();
        assert_eq!(c.counts.merged_segments, 1);
        assert!(!path.exists());
        let mut c = Cache::open(dir.path(), key()).unwrap();
        assert_eq!(c.segments(), 1);
        for i in 0..10 {
            let slot = c.find(&[i; 20]).unwrap();
            assert_eq!(c.read(slot, true), Some(rec(i)));
        }
    }

    #[test]
    fn truncated_or_flipped_headers_and_indexes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = one_segment(dir.path(), 10);
        let good = std::fs::read(&path).unwrap();
        let mut cases: Vec<(Vec<u8>, &str)> = vec![
            (good[..good.len() / 2].to_vec(), "header says"),
            (good[..HEADER_LEN - 1].to_vec(), "truncated"),
            (Vec::new(), "truncated"),
        ];
        let fix_crc = |b: &mut Vec<u8>| {
            let crc = crc32fast::hash(&b[..HEADER_LEN - 4]);
            b[HEADER_LEN - 4..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        };
        for (at, what) in [
            (0, "bad magic"),
            (9, "header checksum"),
            (HEADER_LEN + 3, "index checksum"),
            (HEADER_LEN + 10 * 36 + 6, "string table checksum"),
            // The count of entries, with the header's checksum fixed: the
            // index no longer fits.
            (COUNT_AT as usize, "cannot hold"),
        ] {
            let mut b = good.clone();
            b[at] ^= 1;
            if at == COUNT_AT as usize {
                fix_crc(&mut b);
            }
            cases.push((b, what));
        }
        // Another version, with a correct checksum: refused by version.
        let mut b = good.clone();
        b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        fix_crc(&mut b);
        cases.push((b, "this devstats reads"));
        for (bytes, what) in cases {
            std::fs::write(&path, &bytes).unwrap();
            let mut c = Cache::open(dir.path(), key()).unwrap();
            assert_eq!(c.segments(), 0, "{what}");
            assert_eq!(c.counts.damaged_segments, 1);
            assert!(
                c.counts.damage[0].contains(what),
                "{what}: {:?}",
                c.counts.damage
            );
            assert!(c.find(&[3; 20]).is_none());
            // The next write removes the unusable file.
            c.insert(&[3; 20], &rec(3));
            c.write().unwrap();
            assert!(!path.exists(), "{what}");
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            assert_eq!(names.len(), 1);
            std::fs::remove_file(&names[0]).unwrap();
        }
    }

    /// What cannot be read (here a directory with a segment's name: it
    /// opens, but reading it fails) is passed over and left alone.
    #[test]
    fn an_unreadable_segment_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join(format!("{}-odd.seg", key().stem()));
        std::fs::create_dir(&odd).unwrap();
        let mut c = Cache::open(dir.path(), key()).unwrap();
        assert_eq!((c.segments(), c.counts.damaged_segments), (0, 1));
        assert!(
            c.counts.damage[0].contains("cannot read"),
            "{:?}",
            c.counts.damage
        );
        c.insert(&[1; 20], &rec(1));
        c.write().unwrap();
        assert!(odd.is_dir());
    }

    #[test]
    fn segments_past_the_limit_are_merged() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..MAX_SEGMENTS as u8 + 2 {
            let mut c = Cache::open(dir.path(), key()).unwrap();
            c.insert(&[i; 20], &rec(i));
            c.write().unwrap();
            assert!(c.segments() <= MAX_SEGMENTS);
        }
        let mut c = Cache::open(dir.path(), key()).unwrap();
        assert!(c.segments() <= MAX_SEGMENTS, "{}", c.segments());
        for i in 0..MAX_SEGMENTS as u8 + 2 {
            let slot = c.find(&[i; 20]).unwrap();
            assert_eq!(c.read(slot, true), Some(rec(i)));
        }
        // No temporary file is left behind.
        for e in std::fs::read_dir(dir.path()).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(
                name.starts_with(&key().stem()) && name.ends_with(".seg"),
                "{name}"
            );
        }
    }

    #[test]
    fn graph_entries_round_trip_and_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let gkey = CacheKey::graph(20);
        let mut c = Cache::open(dir.path(), gkey).unwrap();
        c.insert_commit(&[1; 20], 1_250_000_000, &[]);
        c.insert_commit(&[2; 20], -5, &[[1; 20], [9; 20]].concat());
        c.write().unwrap();
        let mut c = Cache::open(dir.path(), gkey).unwrap();
        let s1 = c.find(&[1; 20]).unwrap();
        let s2 = c.find(&[2; 20]).unwrap();
        assert_eq!(c.read_commit(s1), Some((1_250_000_000, vec![])));
        assert_eq!(c.read_commit(s2), Some((-5, [[1; 20], [9; 20]].concat())));
        // Records of the same directory are another family.
        let r = Cache::open(dir.path(), key()).unwrap();
        assert_eq!((r.segments(), r.counts.damaged_segments), (0, 0));
        // The last byte of the file is the last parent's: flipped, the
        // entry is refused.
        let path = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x80;
        std::fs::write(&path, &bytes).unwrap();
        let mut c = Cache::open(dir.path(), gkey).unwrap();
        let s1 = c.find(&[1; 20]).unwrap();
        let s2 = c.find(&[2; 20]).unwrap();
        assert_eq!(c.read_commit(s1), Some((1_250_000_000, vec![])));
        assert_eq!(c.read_commit(s2), None);
        assert_eq!(c.counts.damaged_records, 1);
    }
}
