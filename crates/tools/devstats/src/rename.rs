//! Rename detection between the deleted and the added files of one commit,
//! exactly as `git log` does it by default (`diff.renames=true`, 50%).
//!
//! Mirrors git's diffcore-rename.c (`diffcore_rename_extended()` with no
//! copy and no break detection, as `git log` calls it) and diffcore-delta.c
//! (`diffcore_count_changes()`, `hash_chars()`):
//!
//! ```text
//!  1. exact:    for each destination in path order, the first unused source
//!               with the same blob (non-regular files: same mode too),
//!               preferring one with the same basename; ≤ 100 candidates
//!  2. basename: a source whose basename is unique among the remaining
//!               sources, and a destination whose basename is unique among
//!               the remaining destinations, pair if similarity ≥ 75%
//!               (minimum + (MAX - minimum) / 2)
//!  3. limit:    skip inexact detection when
//!               |destinations| · |sources| > rename_limit²  (limit 1000)
//!  4. matrix:   for each destination keep its 4 best sources by
//!               (score, same basename); stable-sort all by that; take pairs
//!               in order while score ≥ 50%, each source and destination once
//! ```
//!
//! Similarity (`estimate_similarity()`): regular files only; 0 when
//! `max · (MAX − min) < (max − base) · MAX` (sizes too different); else
//! `copied · MAX / max`, where `copied` is what diffcore-delta.c counts:
//! both files cut into chunks ending at LF or after 64 bytes (a CR before LF
//! is skipped in text), each chunk hashed to `(a1 + a2·0x61) mod 107927`,
//! `copied = Σ_h min(bytes_src(h), bytes_dst(h))`. A trailing chunk without
//! LF shorter than 64 bytes is not counted (git drops it too).
//! `MAX_SCORE = 60000`, default minimum 30000.
//!
//! Invariant of a [`Renames`] result: every source and every destination
//! index appears in at most one pair.

use std::collections::HashMap;

/// git's `MAX_SCORE`.
pub const MAX_SCORE: u64 = 60_000;
/// git's `DEFAULT_RENAME_SCORE` (50%).
pub const DEFAULT_RENAME_SCORE: u64 = 30_000;
/// git's `diff.renameLimit` default.
pub const DEFAULT_RENAME_LIMIT: u64 = 1000;
const HASHBASE: u32 = 107_927;
const NUM_CANDIDATE_PER_DST: usize = 4;

/// One side of a rename candidate: a deleted file (source) or an added file
/// (destination).
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    /// The path in the tree.
    pub path: &'a [u8],
    /// True for regular files (modes 100644 and 100755).
    pub regular: bool,
    /// The full mode, compared for exact renames of non-regular files.
    pub mode: u32,
    /// The blob id (raw bytes), compared for exact renames.
    pub id: &'a [u8],
}

/// Content access for similarity estimates: the size, the bytes, and
/// whether git would call the blob binary.
pub trait Contents {
    /// The blob of candidate `id`: its bytes and whether it is binary.
    fn get(&mut self, id: &[u8]) -> Option<(&[u8], bool)>;
}

/// The detected pairs, `(source index, destination index)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Renames {
    /// Pairs in the order they were found.
    pub pairs: Vec<(usize, usize)>,
    /// True when the limit stopped inexact detection (git warns then).
    pub limit_hit: bool,
}

impl Renames {
    /// Checks the invariant in the module header.
    pub fn assert_invariants(&self, n_src: usize, n_dst: usize) {
        let mut s = vec![false; n_src];
        let mut d = vec![false; n_dst];
        for &(a, b) in &self.pairs {
            assert!(!s[a] && !d[b], "index used twice");
            s[a] = true;
            d[b] = true;
        }
    }
}

/// Options from git's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenameOptions {
    /// `diff.renameLimit` (0: unlimited).
    pub limit: u64,
    /// Minimum score (`-M50%` = 30000).
    pub minimum_score: u64,
}

impl Default for RenameOptions {
    fn default() -> Self {
        RenameOptions {
            limit: DEFAULT_RENAME_LIMIT,
            minimum_score: DEFAULT_RENAME_SCORE,
        }
    }
}

/// Spans of one blob: `(hash, bytes)` sorted by hash, one entry per hash.
type Spans = Vec<(u32, u32)>;

/// Finds renames among `sources` (deleted files) and `destinations` (added
/// files), both in git's diff-queue order (path order).
pub fn detect(
    sources: &[Candidate<'_>],
    destinations: &[Candidate<'_>],
    contents: &mut dyn Contents,
    opts: RenameOptions,
) -> Renames {
    let mut out = Renames::default();
    if sources.is_empty() || destinations.is_empty() {
        return out;
    }
    let mut src_used = vec![false; sources.len()];
    let mut dst_done = vec![false; destinations.len()];
    let mut spans: HashMap<Vec<u8>, Spans> = HashMap::new();

    // 1. Exact renames (find_exact_renames / find_identical_files).
    let mut by_id: HashMap<&[u8], Vec<usize>> = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        by_id.entry(s.id).or_default().push(i);
    }
    for (di, dst) in destinations.iter().enumerate() {
        let Some(cands) = by_id.get(dst.id) else {
            continue;
        };
        let mut best: Option<usize> = None;
        let mut best_score = -1i32;
        let mut budget = 100;
        for &si in cands {
            let src = &sources[si];
            if (!src.regular || !dst.regular) && src.mode != dst.mode {
                continue;
            }
            if src_used[si] {
                continue;
            }
            let score = 1 + i32::from(basename_same(src.path, dst.path));
            if score > best_score {
                best = Some(si);
                best_score = score;
                if score == 2 {
                    break;
                }
            }
            budget -= 1;
            if budget == 0 {
                break;
            }
        }
        if let Some(si) = best {
            src_used[si] = true;
            dst_done[di] = true;
            out.pairs.push((si, di));
        }
    }
    if opts.minimum_score >= MAX_SCORE {
        return out;
    }

    // 2. Basename matches among what is left (find_basename_matches).
    let min_basename_score = opts.minimum_score + (MAX_SCORE - opts.minimum_score) / 2;
    let remaining_src: Vec<usize> = (0..sources.len()).filter(|&i| !src_used[i]).collect();
    let mut src_base: HashMap<&[u8], Option<usize>> = HashMap::new();
    for &i in &remaining_src {
        let b = basename(sources[i].path);
        src_base
            .entry(b)
            .and_modify(|v| *v = None)
            .or_insert(Some(i));
    }
    let mut dst_base: HashMap<&[u8], Option<usize>> = HashMap::new();
    for (i, d) in destinations.iter().enumerate() {
        if dst_done[i] {
            continue;
        }
        dst_base
            .entry(basename(d.path))
            .and_modify(|v| *v = None)
            .or_insert(Some(i));
    }
    for &si in &remaining_src {
        let b = basename(sources[si].path);
        let Some(&dst_entry) = dst_base.get(b) else {
            continue;
        };
        let (Some(Some(_)), Some(di)) = (src_base.get(b), dst_entry) else {
            continue; // not unique: git would try directory-rename guesses, which log never sets up
        };
        if dst_done[di] {
            continue;
        }
        let score = similarity(
            &sources[si],
            &destinations[di],
            min_basename_score,
            contents,
            &mut spans,
        );
        if score < min_basename_score {
            continue;
        }
        src_used[si] = true;
        dst_done[di] = true;
        out.pairs.push((si, di));
    }

    // 3. The limit on the inexact matrix (too_many_rename_candidates).
    let srcs: Vec<usize> = (0..sources.len()).filter(|&i| !src_used[i]).collect();
    let dsts: Vec<usize> = (0..destinations.len()).filter(|&i| !dst_done[i]).collect();
    if srcs.is_empty() || dsts.is_empty() {
        return out;
    }
    if opts.limit > 0
        && (dsts.len() as u64).saturating_mul(srcs.len() as u64)
            > opts.limit.saturating_mul(opts.limit)
    {
        out.limit_hit = true;
        return out;
    }

    // 4. The similarity matrix, 4 best sources per destination.
    #[derive(Clone, Copy)]
    struct Score {
        src: usize,
        dst: Option<usize>,
        score: u64,
        name_score: i32,
    }
    // score_compare(): negative when `a` sorts before (is better than) `b`.
    fn cmp(a: &Score, b: &Score) -> std::cmp::Ordering {
        use std::cmp::Ordering::*;
        match (a.dst, b.dst) {
            (None, Some(_)) => Greater,
            (None, None) => Equal,
            (Some(_), None) => Less,
            _ if a.score == b.score => b.name_score.cmp(&a.name_score),
            _ => b.score.cmp(&a.score),
        }
    }
    let empty = Score {
        src: 0,
        dst: None,
        score: 0,
        name_score: 0,
    };
    let mut mx: Vec<Score> = Vec::with_capacity(dsts.len() * NUM_CANDIDATE_PER_DST);
    for &di in &dsts {
        let mut m = [empty; NUM_CANDIDATE_PER_DST];
        for &si in &srcs {
            let this = Score {
                src: si,
                dst: Some(di),
                score: similarity(
                    &sources[si],
                    &destinations[di],
                    opts.minimum_score,
                    contents,
                    &mut spans,
                ),
                name_score: i32::from(basename_same(sources[si].path, destinations[di].path)),
            };
            // record_if_better(): replace the worst if `this` beats it.
            let mut worst = 0;
            for i in 1..NUM_CANDIDATE_PER_DST {
                if cmp(&m[i], &m[worst]).is_gt() {
                    worst = i;
                }
            }
            if cmp(&m[worst], &this).is_gt() {
                m[worst] = this;
            }
        }
        mx.extend_from_slice(&m);
    }
    mx.sort_by(cmp); // stable, as git's STABLE_QSORT
    for s in &mx {
        let Some(di) = s.dst else { break };
        if s.score < opts.minimum_score {
            break;
        }
        if dst_done[di] || src_used[s.src] {
            continue;
        }
        src_used[s.src] = true;
        dst_done[di] = true;
        out.pairs.push((s.src, di));
    }
    out
}

/// git's `estimate_similarity()`.
fn similarity(
    src: &Candidate<'_>,
    dst: &Candidate<'_>,
    minimum_score: u64,
    contents: &mut dyn Contents,
    spans: &mut HashMap<Vec<u8>, Spans>,
) -> u64 {
    if !src.regular || !dst.regular {
        return 0;
    }
    let Some((src_len, _)) = contents.get(src.id).map(|(d, b)| (d.len() as u64, b)) else {
        return 0;
    };
    let Some((dst_len, _)) = contents.get(dst.id).map(|(d, b)| (d.len() as u64, b)) else {
        return 0;
    };
    let max_size = src_len.max(dst_len);
    let base_size = src_len.min(dst_len);
    let delta_size = max_size - base_size;
    if max_size * (MAX_SCORE - minimum_score) < delta_size * MAX_SCORE {
        return 0;
    }
    for c in [src, dst] {
        if !spans.contains_key(c.id)
            && let Some((data, binary)) = contents.get(c.id)
        {
            spans.insert(c.id.to_vec(), hash_chars(data, !binary));
        }
    }
    let (Some(s), Some(d)) = (spans.get(src.id), spans.get(dst.id)) else {
        return 0;
    };
    let copied = count_copied(s, d);
    if dst_len == 0 {
        0
    } else {
        copied * MAX_SCORE / max_size
    }
}

/// git's `hash_chars()`: byte counts per chunk hash, sorted by hash.
pub fn hash_chars(data: &[u8], is_text: bool) -> Vec<(u32, u32)> {
    let mut counts: HashMap<u32, u32> = HashMap::new();
    let mut n = 0u32;
    let (mut accum1, mut accum2) = (0u32, 0u32);
    for (i, &c) in data.iter().enumerate() {
        if is_text && c == b'\r' && data.get(i + 1) == Some(&b'\n') {
            continue;
        }
        let old_1 = accum1;
        accum1 = (accum1 << 7) ^ (accum2 >> 25);
        accum2 = (accum2 << 7) ^ (old_1 >> 25);
        accum1 = accum1.wrapping_add(u32::from(c));
        n += 1;
        if n < 64 && c != b'\n' {
            continue;
        }
        let hashval = accum1.wrapping_add(accum2.wrapping_mul(0x61)) % HASHBASE;
        *counts.entry(hashval).or_insert(0) += n;
        n = 0;
        accum1 = 0;
        accum2 = 0;
    }
    let mut v: Vec<(u32, u32)> = counts.into_iter().collect();
    v.sort_unstable();
    v
}

/// `Σ_h min(src(h), dst(h))` over two sorted span lists.
fn count_copied(s: &[(u32, u32)], d: &[(u32, u32)]) -> u64 {
    let (mut i, mut j, mut copied) = (0, 0, 0u64);
    while i < s.len() && j < d.len() {
        match s[i].0.cmp(&d[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                copied += u64::from(s[i].1.min(d[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    copied
}

fn basename(path: &[u8]) -> &[u8] {
    path.rsplit(|&b| b == b'/').next().unwrap_or(path)
}

/// git's `basename_same()`.
fn basename_same(src: &[u8], dst: &[u8]) -> bool {
    let (mut s, mut d) = (src.len(), dst.len());
    while s > 0 && d > 0 {
        s -= 1;
        d -= 1;
        if src[s] != dst[d] {
            return false;
        }
        if src[s] == b'/' {
            return true;
        }
    }
    (s == 0 || src[s - 1] == b'/') && (d == 0 || dst[d - 1] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(HashMap<Vec<u8>, Vec<u8>>);
    impl Contents for Mem {
        fn get(&mut self, id: &[u8]) -> Option<(&[u8], bool)> {
            self.0
                .get(id)
                .map(|d| (d.as_slice(), d[..d.len().min(8000)].contains(&0)))
        }
    }

    fn cand<'a>(path: &'a str, id: &'a str) -> Candidate<'a> {
        Candidate {
            path: path.as_bytes(),
            regular: true,
            mode: 0o100644,
            id: id.as_bytes(),
        }
    }

    fn lines(prefix: &str, n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| format!("{prefix} line number {i}\n"))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn basename_same_compares_the_last_component() {
        assert!(basename_same(b"a/x.c", b"b/x.c"));
        assert!(basename_same(b"x.c", b"dir/x.c"));
        assert!(!basename_same(b"a/yx.c", b"b/x.c"));
        assert!(!basename_same(b"a/x.c", b"a/y.c"));
    }

    #[test]
    fn chunks_end_at_lf_or_64_bytes_and_a_short_tail_is_dropped() {
        let v = hash_chars(b"ab\ncd", true);
        assert_eq!(v.iter().map(|&(_, n)| n).sum::<u32>(), 3);
        let long = vec![b'x'; 130];
        assert_eq!(
            hash_chars(&long, true).iter().map(|&(_, n)| n).sum::<u32>(),
            128
        );
        // CRLF counts as LF in text, not in binary.
        assert_eq!(hash_chars(b"ab\r\n", true), hash_chars(b"ab\n", true));
        assert_ne!(hash_chars(b"ab\r\n", false), hash_chars(b"ab\n", false));
    }

    #[test]
    fn exact_rename_prefers_the_same_basename() {
        let mut c = Mem(HashMap::from([(b"1".to_vec(), b"same\n".to_vec())]));
        let src = [cand("a/other.c", "1"), cand("b/file.c", "1")];
        let dst = [cand("c/file.c", "1")];
        let r = detect(&src, &dst, &mut c, RenameOptions::default());
        assert_eq!(r.pairs, vec![(1, 0)]);
    }

    #[test]
    fn similar_files_pair_above_half_and_not_below() {
        let base = lines("shared", 40);
        let mut edited = base.clone();
        edited.extend(lines("new", 10)); // 40 of 50 lines copied: 80%
        let mut far = lines("shared", 10);
        far.extend(lines("different", 30)); // 25% copied
        let mut c = Mem(HashMap::from([
            (b"s".to_vec(), base),
            (b"e".to_vec(), edited),
            (b"f".to_vec(), far),
        ]));
        let r = detect(
            &[cand("old.c", "s")],
            &[cand("new.c", "e")],
            &mut c,
            RenameOptions::default(),
        );
        assert_eq!(r.pairs, vec![(0, 0)]);
        let r = detect(
            &[cand("old.c", "s")],
            &[cand("new.c", "f")],
            &mut c,
            RenameOptions::default(),
        );
        assert!(r.pairs.is_empty());
    }

    #[test]
    fn the_limit_disables_inexact_detection() {
        let base = lines("shared", 40);
        let mut edited = base.clone();
        edited.extend(lines("new", 2));
        let mut c = Mem(HashMap::from([
            (b"s".to_vec(), base),
            (b"e".to_vec(), edited),
        ]));
        let opts = RenameOptions {
            limit: 0,
            ..RenameOptions::default()
        };
        let srcs = [cand("a.c", "s"), cand("b.c", "s")];
        let dsts = [cand("x.c", "e"), cand("y.c", "e")];
        assert_eq!(detect(&srcs, &dsts, &mut c, opts).pairs.len(), 2);
        let opts = RenameOptions {
            limit: 1,
            ..RenameOptions::default()
        };
        let r = detect(&srcs, &dsts, &mut c, opts);
        assert!(r.pairs.is_empty() && r.limit_hit);
    }
}
