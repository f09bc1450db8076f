//! Line counts of a diff, computed exactly as git's xdiff computes them for
//! `--numstat` (default Myers algorithm, no whitespace options).
//!
//! Mirrors git's xdiff/xprepare.c (`xdl_prepare_env()`:
//! `xdl_classify_record()`, `xdl_trim_ends()`, `xdl_cleanup_records()`,
//! `xdl_clean_mmatch()`) and xdiff/xdiffi.c (`xdl_do_diff()`,
//! `xdl_recs_cmp()`, `xdl_split()`). The added and removed counts are the
//! numbers of records marked changed (`rchg`) in each file; the later
//! hunk compaction (`xdl_change_compact()`) only slides groups of changed
//! lines and never changes how many there are.
//!
//! ```text
//!  records: lines with their terminator; the last line may lack one
//!  classify: equal bytes → equal class; len1/len2 = occurrences per file
//!  trim:     common prefix and suffix records are unchanged
//!  cleanup:  in the middle, a line with no match in the other file is
//!            changed outright (NO); one with ≥ min(bogosqrt(nrec), 1024)
//!            matches (MAYBE) is changed when it sits in a run dominated by
//!            NO lines (xdl_clean_mmatch); the rest (YES) go to Myers
//!  Myers:    divide and conquer on the kept lines (xdl_split), with the
//!            heuristics that make it non-minimal on large inputs:
//!            mxcost = max(bogosqrt(n1 + n2 + 3), 256), snake_cnt = 20,
//!            heur_min = 256, k_heur = 4
//! ```
//!
//! imara-diff implements the same algorithm family, but classifies and
//! prunes on the trimmed middle instead of the whole file, which gives
//! different counts on about 1.5% of real commits (measured on curl);
//! hence this port. The recursion of `xdl_recs_cmp()` is an explicit stack
//! visited in the same order, so scratch arrays see the same history.

/// A 64-bit hash of a line, 8 bytes at a step (FNV-style multiply and
/// rotate; any good spread will do, equality is checked on the bytes).
fn hash_line(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
    }
    for &b in chunks.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

const XDL_MAX_EQLIMIT: i64 = 1024;
const XDL_SIMSCAN_WINDOW: i64 = 100;
const XDL_KPDIS_RUN: i64 = 4;
const XDL_MAX_COST_MIN: i64 = 256;
const XDL_HEUR_MIN_COST: i64 = 256;
const XDL_SNAKE_CNT: i64 = 20;
const XDL_K_HEUR: i64 = 4;
const XDL_LINE_MAX: i64 = i64::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dis {
    No,
    Yes,
    Maybe,
}

/// git's `xdl_bogosqrt()`: a power of two near the square root.
fn bogosqrt(mut n: i64) -> i64 {
    let mut i = 1;
    while n > 0 {
        i <<= 1;
        n >>= 2;
    }
    i
}

/// Splits `data` into records: lines with their `\n`, the last one possibly
/// without.
fn records(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(data.len() / 32 + 1);
    let mut start = 0;
    for i in memchr::memchr_iter(b'\n', data) {
        out.push(&data[start..=i]);
        start = i + 1;
    }
    if start < data.len() {
        out.push(&data[start..]);
    }
    out
}

struct File {
    /// Records of the whole file (the limit of `xdl_cleanup_records()`).
    nrec: usize,
    /// Class id per record.
    class: Vec<u32>,
    /// Changed flag per record.
    rchg: Vec<bool>,
    /// Records kept for Myers (indices into `class`).
    rindex: Vec<usize>,
    dstart: i64,
    dend: i64,
}

impl File {
    fn new(class: Vec<u32>, nrec: usize) -> File {
        File {
            nrec,
            rchg: vec![false; class.len()],
            class,
            rindex: Vec::new(),
            dstart: 0,
            dend: 0,
        }
    }

    fn hash(&self, i: i64) -> u32 {
        self.class[self.rindex[i as usize]]
    }
}

/// `(added, removed)`: the number of lines of `new` and of `old` that git's
/// Myers diff marks as changed.
///
/// Same result as classifying every line of both files (`xdl_prepare_ctx()`)
/// and trimming the common ends (`xdl_trim_ends()`), found faster:
/// * one side empty: every line of the other is changed;
/// * the common prefix and suffix records are found by comparing bytes
///   (records are equal exactly when their bytes are, so the prefix is the
///   complete lines inside the common byte prefix, and the suffix the
///   complete lines inside the common byte suffix of what follows that
///   start at a line start in both files);
/// * only the middle records are classified; a prefix or suffix line (the
///   same in both files) adds one to each file's count of its class when
///   the middle has that class, which is all `xdl_cleanup_records()` reads
///   of the ends, with the whole files' record counts for its limit.
pub fn count(old: &[u8], new: &[u8]) -> (u64, u64) {
    if old.is_empty() || new.is_empty() {
        return (count_lines(new), count_lines(old));
    }
    let p = common_prefix(old, new);
    if p == old.len() && p == new.len() {
        return (0, 0);
    }
    // Complete records inside the common prefix end at its last newline.
    let pb = memchr::memrchr(b'\n', &old[..p]).map_or(0, |q| q + 1);
    let (a, b) = (&old[pb..], &new[pb..]);
    let s = common_suffix(a, b);
    // The suffix records start at the first record start inside the common
    // suffix that is a record start in both files.
    let (la, lb) = (a.len(), b.len());
    let starts_at = |x: &[u8], at: usize| at == 0 || x[at - 1] == b'\n';
    let suffix = if s == 0 {
        0
    } else if starts_at(a, la - s) && starts_at(b, lb - s) {
        s
    } else {
        // A newline strictly inside the suffix, not its last byte.
        match memchr::memchr(b'\n', &a[la - s..la - 1]) {
            Some(q) => s - q - 1,
            None => 0,
        }
    };
    let (mid1, mid2) = (&a[..la - suffix], &b[..lb - suffix]);
    let (pre, suf) = (&old[..pb], &a[la - suffix..]);
    let ends = count_lines(pre) + count_lines(suf);
    let r1 = records(mid1);
    let r2 = records(mid2);
    let nrec1 = ends as usize + r1.len();
    let nrec2 = ends as usize + r2.len();
    if r1.is_empty() || r2.is_empty() {
        return (r2.len() as u64, r1.len() as u64);
    }

    let mut table = Classes::new(r1.len() + r2.len());
    let c1: Vec<u32> = r1.iter().map(|r| table.intern(r, 0)).collect();
    let c2: Vec<u32> = r2.iter().map(|r| table.intern(r, 1)).collect();
    // The common ends count in both files, for classes the middle has.
    for part in [pre, suf] {
        for line in Lines(part) {
            if table.has_length(line.len())
                && let Some(id) = table.find(line)
            {
                table.len1[id as usize] += 1;
                table.len2[id as usize] += 1;
            }
        }
    }
    let mut f1 = File::new(c1, nrec1);
    let mut f2 = File::new(c2, nrec2);
    trim_ends(&mut f1, &mut f2);
    cleanup_records(&mut f1, &mut f2, &table.len1, &table.len2);
    do_diff(&mut f1, &mut f2);
    let added = f2.rchg.iter().filter(|&&c| c).count() as u64;
    let removed = f1.rchg.iter().filter(|&&c| c).count() as u64;
    (added, removed)
}

/// Length of the common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[i..i + BLOCK] == b[i..i + BLOCK] {
        i += BLOCK;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// Length of the common suffix of `a` and `b`.
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 64;
    let n = a.len().min(b.len());
    let (la, lb) = (a.len(), b.len());
    let mut i = 0;
    while i + BLOCK <= n && a[la - i - BLOCK..la - i] == b[lb - i - BLOCK..lb - i] {
        i += BLOCK;
    }
    while i < n && a[la - i - 1] == b[lb - i - 1] {
        i += 1;
    }
    i
}

/// Records of `data` one by one (see [`records`]).
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', self.0).map_or(self.0.len(), |q| q + 1);
        let (line, rest) = self.0.split_at(end);
        self.0 = rest;
        Some(line)
    }
}

/// `xdl_classify_record()`'s table: equal bytes, equal class id, with each
/// class's number of records in each file. Open addressing on a 64-bit
/// hash of the line.
struct Classes<'a> {
    slots: Vec<u32>,
    mask: usize,
    class_of: Vec<(u64, &'a [u8])>,
    len1: Vec<i64>,
    len2: Vec<i64>,
    /// Which line lengths (mod 1024) the classes have: a line of another
    /// length cannot be in the table.
    lengths: [u64; 16],
}

impl<'a> Classes<'a> {
    fn new(n: usize) -> Self {
        let size = (2 * n + 2).next_power_of_two();
        Classes {
            slots: vec![0; size],
            mask: size - 1,
            class_of: Vec::with_capacity(n),
            len1: Vec::with_capacity(n),
            len2: Vec::with_capacity(n),
            lengths: [0; 16],
        }
    }

    fn has_length(&self, len: usize) -> bool {
        let l = len & 1023;
        self.lengths[l / 64] & (1 << (l % 64)) != 0
    }

    /// The slot where `r` (hash `h`) is, or the empty one where it goes.
    fn slot(&self, h: u64, r: &[u8]) -> usize {
        let mut at = (h as usize) & self.mask;
        loop {
            match self.slots[at] {
                0 => return at,
                s => {
                    let (ch, cr) = self.class_of[(s - 1) as usize];
                    if ch == h && cr == r {
                        return at;
                    }
                    at = (at + 1) & self.mask;
                }
            }
        }
    }

    fn find(&self, r: &[u8]) -> Option<u32> {
        let at = self.slot(hash_line(r), r);
        self.slots[at].checked_sub(1)
    }

    /// The class of `r`, counted once more in file `which` (0 or 1).
    fn intern(&mut self, r: &'a [u8], which: usize) -> u32 {
        let h = hash_line(r);
        let at = self.slot(h, r);
        let id = match self.slots[at] {
            0 => {
                self.class_of.push((h, r));
                self.len1.push(0);
                self.len2.push(0);
                self.slots[at] = self.class_of.len() as u32;
                let l = r.len() & 1023;
                self.lengths[l / 64] |= 1 << (l % 64);
                self.class_of.len() as u32 - 1
            }
            s => s - 1,
        };
        if which == 0 {
            self.len1[id as usize] += 1;
        } else {
            self.len2[id as usize] += 1;
        }
        id
    }
}

/// Lines in a file: newlines, plus one for an unterminated last line (what
/// `git log --numstat` counts for an added or deleted file).
pub fn count_lines(data: &[u8]) -> u64 {
    n_newlines(data) + u64::from(data.last().is_some_and(|&b| b != b'\n'))
}

/// Newlines in `data`, eight bytes at a time: in `x = word ^ "\n\n.."`
/// a byte is zero exactly where the word has a newline, and
/// `((x & 0x7f..) + 0x7f..) | x` sets the top bit of every byte that is
/// not zero without a carry crossing bytes (profiled: a byte-wise count
/// was 5% of a first run).
fn n_newlines(data: &[u8]) -> u64 {
    const NL: u64 = 0x0a0a_0a0a_0a0a_0a0a;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = data.chunks_exact(8);
    let mut n = 0u64;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let x = w ^ NL;
        let nonzero = ((x & LOW7) + LOW7) | x;
        n += u64::from((!nonzero & HIGH).count_ones());
    }
    n + chunks.remainder().iter().filter(|&&b| b == b'\n').count() as u64
}

/// `xdl_trim_ends()`.
fn trim_ends(f1: &mut File, f2: &mut File) {
    let (n1, n2) = (f1.class.len(), f2.class.len());
    let lim = n1.min(n2);
    let mut i = 0;
    while i < lim && f1.class[i] == f2.class[i] {
        i += 1;
    }
    f1.dstart = i as i64;
    f2.dstart = i as i64;
    let lim2 = lim - i;
    let mut j = 0;
    while j < lim2 && f1.class[n1 - 1 - j] == f2.class[n2 - 1 - j] {
        j += 1;
    }
    f1.dend = n1 as i64 - j as i64 - 1;
    f2.dend = n2 as i64 - j as i64 - 1;
}

/// `xdl_clean_mmatch()`: should the MAYBE line `i` be discarded?
fn clean_mmatch(dis: &[Dis], i: i64, mut s: i64, mut e: i64) -> bool {
    if i - s > XDL_SIMSCAN_WINDOW {
        s = i - XDL_SIMSCAN_WINDOW;
    }
    if e - i > XDL_SIMSCAN_WINDOW {
        e = i + XDL_SIMSCAN_WINDOW;
    }
    let (mut rdis0, mut rpdis0) = (0i64, 1i64);
    let mut r = 1;
    while i - r >= s {
        match dis[(i - r) as usize] {
            Dis::No => rdis0 += 1,
            Dis::Maybe => rpdis0 += 1,
            Dis::Yes => break,
        }
        r += 1;
    }
    if rdis0 == 0 {
        return false;
    }
    let (mut rdis1, mut rpdis1) = (0i64, 1i64);
    let mut r = 1;
    while i + r <= e {
        match dis[(i + r) as usize] {
            Dis::No => rdis1 += 1,
            Dis::Maybe => rpdis1 += 1,
            Dis::Yes => break,
        }
        r += 1;
    }
    if rdis1 == 0 {
        return false;
    }
    rdis1 += rdis0;
    rpdis1 += rpdis0;
    rpdis1 * XDL_KPDIS_RUN < rpdis1 + rdis1
}

/// `xdl_cleanup_records()`.
fn cleanup_records(f1: &mut File, f2: &mut File, len1: &[i64], len2: &[i64]) {
    let classify = |f: &File, other_len: &[i64]| -> Vec<Dis> {
        let mlim = bogosqrt(f.nrec as i64).min(XDL_MAX_EQLIMIT);
        let mut dis = vec![Dis::No; f.class.len()];
        for i in f.dstart..=f.dend {
            let nm = other_len[f.class[i as usize] as usize];
            dis[i as usize] = if nm == 0 {
                Dis::No
            } else if nm >= mlim {
                Dis::Maybe
            } else {
                Dis::Yes
            };
        }
        dis
    };
    let dis1 = classify(f1, len2);
    let dis2 = classify(f2, len1);
    for (f, dis) in [(f1, dis1), (f2, dis2)] {
        for i in f.dstart..=f.dend {
            let d = dis[i as usize];
            if d == Dis::Yes || (d == Dis::Maybe && !clean_mmatch(&dis, i, f.dstart, f.dend)) {
                f.rindex.push(i as usize);
            } else {
                f.rchg[i as usize] = true;
            }
        }
    }
}

struct Split {
    i1: i64,
    i2: i64,
    min_lo: bool,
    min_hi: bool,
}

/// Diagonal vectors indexed by `d` in `[-(n2 + 1), n1 + 1]`.
struct KVec {
    v: Vec<i64>,
    base: i64,
}

impl KVec {
    #[inline]
    fn get(&self, d: i64) -> i64 {
        self.v[(d + self.base) as usize]
    }
    #[inline]
    fn set(&mut self, d: i64, x: i64) {
        self.v[(d + self.base) as usize] = x;
    }
}

/// `xdl_do_diff()` for the Myers algorithm.
fn do_diff(f1: &mut File, f2: &mut File) {
    let (n1, n2) = (f1.rindex.len() as i64, f2.rindex.len() as i64);
    let ndiags = n1 + n2 + 3;
    let mut kvdf = KVec {
        v: vec![0; ndiags as usize],
        base: n2 + 1,
    };
    let mut kvdb = KVec {
        v: vec![0; ndiags as usize],
        base: n2 + 1,
    };
    let mxcost = bogosqrt(ndiags).max(XDL_MAX_COST_MIN);
    // xdl_recs_cmp(), recursion unrolled: (off1, lim1, off2, lim2, need_min),
    // the lower box visited before the upper one as the C recursion does.
    let mut stack = vec![(0i64, n1, 0i64, n2, false)];
    while let Some((mut off1, mut lim1, mut off2, mut lim2, need_min)) = stack.pop() {
        while off1 < lim1 && off2 < lim2 && f1.hash(off1) == f2.hash(off2) {
            off1 += 1;
            off2 += 1;
        }
        while off1 < lim1 && off2 < lim2 && f1.hash(lim1 - 1) == f2.hash(lim2 - 1) {
            lim1 -= 1;
            lim2 -= 1;
        }
        if off1 == lim1 {
            for k in off2..lim2 {
                let r = f2.rindex[k as usize];
                f2.rchg[r] = true;
            }
        } else if off2 == lim2 {
            for k in off1..lim1 {
                let r = f1.rindex[k as usize];
                f1.rchg[r] = true;
            }
        } else {
            let spl = split(
                f1, off1, lim1, f2, off2, lim2, &mut kvdf, &mut kvdb, need_min, mxcost,
            );
            stack.push((spl.i1, lim1, spl.i2, lim2, spl.min_hi));
            stack.push((off1, spl.i1, off2, spl.i2, spl.min_lo));
        }
    }
}

/// `xdl_split()`.
#[allow(clippy::too_many_arguments)]
fn split(
    f1: &File,
    off1: i64,
    lim1: i64,
    f2: &File,
    off2: i64,
    lim2: i64,
    kvdf: &mut KVec,
    kvdb: &mut KVec,
    need_min: bool,
    mxcost: i64,
) -> Split {
    let dmin = off1 - lim2;
    let dmax = lim1 - off2;
    let fmid = off1 - off2;
    let bmid = lim1 - lim2;
    let odd = (fmid - bmid) & 1 != 0;
    let (mut fmin, mut fmax) = (fmid, fmid);
    let (mut bmin, mut bmax) = (bmid, bmid);
    kvdf.set(fmid, off1);
    kvdb.set(bmid, lim1);
    let mut ec: i64 = 1;
    loop {
        let mut got_snake = false;
        if fmin > dmin {
            fmin -= 1;
            kvdf.set(fmin - 1, -1);
        } else {
            fmin += 1;
        }
        if fmax < dmax {
            fmax += 1;
            kvdf.set(fmax + 1, -1);
        } else {
            fmax -= 1;
        }
        let mut d = fmax;
        while d >= fmin {
            let mut i1 = if kvdf.get(d - 1) >= kvdf.get(d + 1) {
                kvdf.get(d - 1) + 1
            } else {
                kvdf.get(d + 1)
            };
            let prev1 = i1;
            let mut i2 = i1 - d;
            while i1 < lim1 && i2 < lim2 && f1.hash(i1) == f2.hash(i2) {
                i1 += 1;
                i2 += 1;
            }
            if i1 - prev1 > XDL_SNAKE_CNT {
                got_snake = true;
            }
            kvdf.set(d, i1);
            if odd && bmin <= d && d <= bmax && kvdb.get(d) <= i1 {
                return Split {
                    i1,
                    i2,
                    min_lo: true,
                    min_hi: true,
                };
            }
            d -= 2;
        }

        if bmin > dmin {
            bmin -= 1;
            kvdb.set(bmin - 1, XDL_LINE_MAX);
        } else {
            bmin += 1;
        }
        if bmax < dmax {
            bmax += 1;
            kvdb.set(bmax + 1, XDL_LINE_MAX);
        } else {
            bmax -= 1;
        }
        let mut d = bmax;
        while d >= bmin {
            let mut i1 = if kvdb.get(d - 1) < kvdb.get(d + 1) {
                kvdb.get(d - 1)
            } else {
                kvdb.get(d + 1) - 1
            };
            let prev1 = i1;
            let mut i2 = i1 - d;
            while i1 > off1 && i2 > off2 && f1.hash(i1 - 1) == f2.hash(i2 - 1) {
                i1 -= 1;
                i2 -= 1;
            }
            if prev1 - i1 > XDL_SNAKE_CNT {
                got_snake = true;
            }
            kvdb.set(d, i1);
            if !odd && fmin <= d && d <= fmax && i1 <= kvdf.get(d) {
                return Split {
                    i1,
                    i2,
                    min_lo: true,
                    min_hi: true,
                };
            }
            d -= 2;
        }

        if need_min {
            ec += 1;
            continue;
        }

        if got_snake && ec > XDL_HEUR_MIN_COST {
            let mut best = 0;
            let mut spl = Split {
                i1: 0,
                i2: 0,
                min_lo: true,
                min_hi: false,
            };
            let mut d = fmax;
            while d >= fmin {
                let dd = if d > fmid { d - fmid } else { fmid - d };
                let i1 = kvdf.get(d);
                let i2 = i1 - d;
                let v = (i1 - off1) + (i2 - off2) - dd;
                if v > XDL_K_HEUR * ec
                    && v > best
                    && off1 + XDL_SNAKE_CNT <= i1
                    && i1 < lim1
                    && off2 + XDL_SNAKE_CNT <= i2
                    && i2 < lim2
                {
                    let mut k = 1;
                    while f1.hash(i1 - k) == f2.hash(i2 - k) {
                        if k == XDL_SNAKE_CNT {
                            best = v;
                            spl.i1 = i1;
                            spl.i2 = i2;
                            break;
                        }
                        k += 1;
                    }
                }
                d -= 2;
            }
            if best > 0 {
                return spl;
            }

            let mut best = 0;
            let mut spl = Split {
                i1: 0,
                i2: 0,
                min_lo: false,
                min_hi: true,
            };
            let mut d = bmax;
            while d >= bmin {
                let dd = if d > bmid { d - bmid } else { bmid - d };
                let i1 = kvdb.get(d);
                let i2 = i1 - d;
                let v = (lim1 - i1) + (lim2 - i2) - dd;
                if v > XDL_K_HEUR * ec
                    && v > best
                    && off1 < i1
                    && i1 <= lim1 - XDL_SNAKE_CNT
                    && off2 < i2
                    && i2 <= lim2 - XDL_SNAKE_CNT
                {
                    let mut k = 0;
                    while f1.hash(i1 + k) == f2.hash(i2 + k) {
                        if k == XDL_SNAKE_CNT - 1 {
                            best = v;
                            spl.i1 = i1;
                            spl.i2 = i2;
                            break;
                        }
                        k += 1;
                    }
                }
                d -= 2;
            }
            if best > 0 {
                return spl;
            }
        }

        if ec >= mxcost {
            let (mut fbest, mut fbest1) = (-1i64, -1i64);
            let mut d = fmax;
            while d >= fmin {
                let mut i1 = kvdf.get(d).min(lim1);
                let mut i2 = i1 - d;
                if lim2 < i2 {
                    i1 = lim2 + d;
                    i2 = lim2;
                }
                if fbest < i1 + i2 {
                    fbest = i1 + i2;
                    fbest1 = i1;
                }
                d -= 2;
            }
            let (mut bbest, mut bbest1) = (XDL_LINE_MAX, XDL_LINE_MAX);
            let mut d = bmax;
            while d >= bmin {
                let mut i1 = off1.max(kvdb.get(d));
                let mut i2 = i1 - d;
                if i2 < off2 {
                    i1 = off2 + d;
                    i2 = off2;
                }
                if i1 + i2 < bbest {
                    bbest = i1 + i2;
                    bbest1 = i1;
                }
                d -= 2;
            }
            return if (lim1 + lim2) - bbest < fbest - (off1 + off2) {
                Split {
                    i1: fbest1,
                    i2: fbest - fbest1,
                    min_lo: true,
                    min_hi: false,
                }
            } else {
                Split {
                    i1: bbest1,
                    i2: bbest - bbest1,
                    min_lo: false,
                    min_hi: true,
                }
            };
        }
        ec += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward port, kept as the oracle of [`count`]: every
    /// line of both files classified, then `xdl_trim_ends()`.
    fn count_reference(old: &[u8], new: &[u8]) -> (u64, u64) {
        let r1 = records(old);
        let r2 = records(new);
        // xdl_classify_record(): equal bytes, equal class; count per file. An
        // open-addressing table of class ids keyed by each line's hash.
        let n = r1.len() + r2.len();
        let size = (2 * n + 2).next_power_of_two();
        let mask = size - 1;
        let mut slots: Vec<u32> = vec![0; size];
        let mut class_of: Vec<(u64, &[u8])> = Vec::with_capacity(n);
        let mut len1: Vec<i64> = Vec::with_capacity(n);
        let mut len2: Vec<i64> = Vec::with_capacity(n);
        let mut classes = [Vec::with_capacity(r1.len()), Vec::with_capacity(r2.len())];
        for (pass, recs) in [&r1, &r2].into_iter().enumerate() {
            for &r in recs {
                let h = hash_line(r);
                let mut at = (h as usize) & mask;
                let id = loop {
                    match slots[at] {
                        0 => {
                            class_of.push((h, r));
                            len1.push(0);
                            len2.push(0);
                            slots[at] = class_of.len() as u32;
                            break class_of.len() as u32 - 1;
                        }
                        s => {
                            let (ch, cr) = class_of[(s - 1) as usize];
                            if ch == h && cr == r {
                                break s - 1;
                            }
                            at = (at + 1) & mask;
                        }
                    }
                };
                if pass == 0 {
                    len1[id as usize] += 1;
                } else {
                    len2[id as usize] += 1;
                }
                classes[pass].push(id);
            }
        }
        let [c1, c2] = classes;
        let n1 = c1.len();
        let n2 = c2.len();
        let mut f1 = File::new(c1, n1);
        let mut f2 = File::new(c2, n2);
        trim_ends(&mut f1, &mut f2);
        cleanup_records(&mut f1, &mut f2, &len1, &len2);
        do_diff(&mut f1, &mut f2);
        let added = f2.rchg.iter().filter(|&&c| c).count() as u64;
        let removed = f1.rchg.iter().filter(|&&c| c).count() as u64;
        (added, removed)
    }

    #[test]
    fn small_diffs_are_minimal() {
        assert_eq!(count(b"", b""), (0, 0));
        assert_eq!(count(b"", b"a\nb\n"), (2, 0));
        assert_eq!(count(b"a\nb\n", b""), (0, 2));
        assert_eq!(count(b"a\nb\nc\n", b"a\nc\n"), (0, 1));
        assert_eq!(count(b"a\nb", b"a\nb\nc\n"), (2, 1));
        assert_eq!(count(b"a\r\n", b"a\n"), (1, 1));
        assert_eq!(count(b"x\ny\nz\n", b"z\ny\nx\n"), (2, 2));
    }

    #[test]
    fn bogosqrt_matches_git() {
        // for (i = 1; n > 0; n >>= 2) i <<= 1;
        assert_eq!(bogosqrt(0), 1);
        assert_eq!(bogosqrt(1), 2);
        assert_eq!(bogosqrt(4), 4);
        assert_eq!(bogosqrt(100), 16);
        assert_eq!(bogosqrt(1 << 20), 2048);
    }

    #[test]
    fn trimmed_count_agrees_with_the_full_port_on_edge_cases() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"", b"a"),
            (b"a", b""),
            (b"a", b"a"),
            (b"a", b"a\n"),
            (b"a\n", b"a"),
            (b"a\nb", b"a\nb\n"),
            (b"a\nb\n", b"a\nc\nb\n"),
            (b"x\na\n", b"a\n"),
            (b"a\n", b"x\na\n"),
            (b"ab\n", b"b\n"),
            (b"b\n", b"ab\n"),
            (b"a\nb\nc", b"a\nXb\nc"),
            (b"a\r\n", b"a\n"),
            (b"same\nsame\nsame\n", b"same\nsame\n"),
            (b"\n\n\n", b"\n\n"),
            (b"q\n\n", b"\n\nq"),
        ];
        for (a, b) in cases {
            assert_eq!(
                count(a, b),
                count_reference(a, b),
                "{:?} -> {:?}",
                String::from_utf8_lossy(a),
                String::from_utf8_lossy(b)
            );
        }
    }

    proptest::proptest! {
        /// The word-at-a-time newline count equals a byte-by-byte count,
        /// whatever the bytes (0x0a's neighbours 0x0b, 0x8a, 0x00 included)
        /// and wherever the end falls in a word.
        #[test]
        fn newlines_counted_by_words_as_by_bytes(
            data in proptest::collection::vec(
                proptest::prop_oneof![proptest::strategy::Just(b'\n'), proptest::strategy::Just(0x0bu8), proptest::strategy::Just(0x8a), proptest::strategy::Just(0), proptest::num::u8::ANY],
                0..100,
            ),
        ) {
            let bytes = data.iter().filter(|&&b| b == b'\n').count() as u64;
            proptest::prop_assert_eq!(n_newlines(&data), bytes);
        }

        /// The trimmed, middle-only classification gives git's counts: the
        /// same as classifying every line, on texts with long common ends,
        /// repeated lines (MAYBE classes), lines of 1024 bytes and more,
        /// and missing final newlines.
        #[test]
        fn trimmed_count_agrees_with_the_full_port(
            pre in proptest::collection::vec(0u8..8, 0..40),
            a in proptest::collection::vec(0u8..8, 0..30),
            b in proptest::collection::vec(0u8..8, 0..30),
            suf in proptest::collection::vec(0u8..8, 0..40),
            tail_a in proptest::bool::ANY,
            tail_b in proptest::bool::ANY,
        ) {
            let line = |x: u8| -> Vec<u8> {
                match x {
                    6 => vec![b'L'; 1030],
                    7 => vec![b'L'; 6],
                    _ => vec![b'a' + x],
                }
            };
            let text = |mid: &[u8], tail: bool| {
                let mut t = Vec::new();
                for &x in pre.iter().chain(mid).chain(&suf) {
                    t.extend(line(x));
                    t.push(b'\n');
                }
                if tail && !t.is_empty() {
                    t.pop();
                }
                t
            };
            let (ta, tb) = (text(&a, tail_a), text(&b, tail_b));
            proptest::prop_assert_eq!(count(&ta, &tb), count_reference(&ta, &tb));
        }

        /// The same on raw bytes (newlines anywhere, empty lines, CRs),
        /// the new file an edit of the old so that the ends are shared.
        #[test]
        fn trimmed_count_agrees_with_the_full_port_on_raw_bytes(
            old in proptest::collection::vec(proptest::sample::select(b"ab\n\r".to_vec()), 0..200),
            at in 0usize..200,
            cut in 0usize..20,
            insert in proptest::collection::vec(proptest::sample::select(b"ab\n".to_vec()), 0..20),
        ) {
            let at = at.min(old.len());
            let end = (at + cut).min(old.len());
            let mut new = old[..at].to_vec();
            new.extend(&insert);
            new.extend(&old[end..]);
            proptest::prop_assert_eq!(count(&old, &new), count_reference(&old, &new));
        }


        /// On any input the counts describe a valid edit script: what is
        /// kept is at most the longest common subsequence.
        #[test]
        fn counts_are_consistent(a in proptest::collection::vec(0u8..6, 0..60), b in proptest::collection::vec(0u8..6, 0..60)) {
            let text = |v: &[u8]| v.iter().map(|x| format!("{x}\n")).collect::<String>();
            let (ta, tb) = (text(&a), text(&b));
            let (added, removed) = count(ta.as_bytes(), tb.as_bytes());
            let kept_a = a.len() as u64 - removed;
            let kept_b = b.len() as u64 - added;
            proptest::prop_assert_eq!(kept_a, kept_b);
            // LCS by dynamic programming.
            let mut dp = vec![vec![0u64; b.len() + 1]; a.len() + 1];
            for i in 0..a.len() {
                for j in 0..b.len() {
                    dp[i + 1][j + 1] = if a[i] == b[j] { dp[i][j] + 1 } else { dp[i][j + 1].max(dp[i + 1][j]) };
                }
            }
            proptest::prop_assert!(kept_a <= dp[a.len()][b.len()]);
        }
    }
}
