//! Stress test of `RcuRadixTree` on real threads: one writer changes the
//! tree (inserts, value entries, deletes, replaces, tags) while readers do
//! every lockless read, and every read is checked, afterwards, against the
//! writer's serial history.
//!
//! The writer numbers its operations: after operation `k` it stores `k` in
//! a sequence counter. A reader loads the counter before (`a`) and after
//! (`b`) a read; the tree it read was then one of the states `a ..= b + 1`
//! (operation `b + 1` may have been under way). Checks, for each read:
//!
//! * a lookup, `get_arc` or `tag_get` answer is the key's value (or tag) in
//!   one of those states: old or new, never torn or invented;
//! * a gang lookup or an iteration returns ascending indices from its
//!   start, each with a value the index had in one of those states, and
//!   every key that held one value throughout (and, for a tagged lookup,
//!   the tag throughout) up to where the results stop;
//! * the tree's invariants hold after the writer is done.
//!
//! Bounded: a fixed number of writer operations, readers stop when the
//! writer does (or after a fixed number of reads), and the test fails with
//! a message if the threads have not finished within two minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use klab_radix_tree::{Entry, RcuRadixTree, Tag};

/// Value entries are recorded as their payload, items as their `u64`;
/// payloads carry this bit, items never do.
const VALUE_MARK: u64 = 1 << 62;

/// What one key holds in one state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    value: Option<u64>,
    tagged: bool,
}

const ABSENT: State = State {
    value: None,
    tagged: false,
};

/// Each key's changes, `(operation number, state after it)`, in order.
struct History {
    keys: Vec<u64>,
    changes: Vec<Vec<(u64, State)>>,
}

impl History {
    fn slot(&self, key: u64) -> Option<usize> {
        self.keys.binary_search(&key).ok()
    }

    /// The states `key` had from operation `a` to `b1`, inclusive.
    fn states(&self, key: u64, a: u64, b1: u64) -> Vec<State> {
        let Some(s) = self.slot(key) else {
            return vec![ABSENT];
        };
        let ch = &self.changes[s];
        let at_a = ch.partition_point(|&(v, _)| v <= a);
        let mut out = vec![if at_a == 0 { ABSENT } else { ch[at_a - 1].1 }];
        out.extend(
            ch[at_a..]
                .iter()
                .take_while(|&&(v, _)| v <= b1)
                .map(|&(_, st)| st),
        );
        out
    }
}

#[derive(Debug)]
enum Read {
    Lookup(u64, Option<u64>),
    Arc(u64, Option<u64>),
    TagGet(u64, bool),
    Gang {
        first: u64,
        max: usize,
        tag: bool,
        got: Vec<(u64, u64)>,
    },
}

struct Obs {
    a: u64,
    b: u64,
    read: Read,
}

fn raw(e: Entry<&u64>) -> u64 {
    match e {
        Entry::Item(v) => *v,
        Entry::Value(v) => v,
    }
}

struct Config {
    keys: Vec<u64>,
    writer_ops: u64,
    readers: usize,
    max_reads: usize,
    seed: u64,
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn writer<const SHIFT: u32>(
    t: &RcuRadixTree<Arc<u64>, SHIFT>,
    seq: &AtomicU64,
    cfg: &Config,
) -> History {
    let mut rng = Rng(cfg.seed);
    let mut now = vec![ABSENT; cfg.keys.len()];
    let mut changes = vec![Vec::new(); cfg.keys.len()];
    for k in 1..=cfg.writer_ops {
        let s = rng.below(cfg.keys.len() as u64) as usize;
        let key = cfg.keys[s];
        let mut st = now[s];
        {
            let mut w = t.lock();
            match (st.value.is_some(), rng.below(6)) {
                (false, 0..=3) => {
                    w.insert(key, Arc::new(k)).expect("absent key");
                    st.value = Some(k);
                }
                (false, _) => {
                    w.insert_value(key, k | VALUE_MARK).expect("absent key");
                    st.value = Some(k | VALUE_MARK);
                }
                (true, 0 | 1) => {
                    w.delete(key).expect("present key");
                    st = ABSENT;
                }
                (true, 2) => {
                    let e = if k % 2 == 0 {
                        Entry::Item(Arc::new(k))
                    } else {
                        Entry::Value(k | VALUE_MARK)
                    };
                    st.value = Some(match &e {
                        Entry::Item(_) => k,
                        Entry::Value(v) => *v,
                    });
                    if w.replace(key, e).is_err() {
                        panic!("replace of present key {key}");
                    }
                }
                (true, 3) => {
                    w.tag_set(key, Tag::T0).expect("present key");
                    st.tagged = true;
                }
                (true, _) => {
                    w.tag_clear(key, Tag::T0).expect("present key");
                    st.tagged = false;
                }
            }
        }
        if st != now[s] {
            now[s] = st;
            changes[s].push((k, st));
        }
        seq.store(k, Ordering::SeqCst);
    }
    t.lock().assert_invariants();
    History {
        keys: cfg.keys.clone(),
        changes,
    }
}

fn reader<const SHIFT: u32>(
    t: &RcuRadixTree<Arc<u64>, SHIFT>,
    seq: &AtomicU64,
    done: &AtomicBool,
    ready: &AtomicUsize,
    cfg: &Config,
    seed: u64,
) -> Vec<Obs> {
    let mut rng = Rng(seed);
    let mut obs = Vec::new();
    // Keys and a few that are never written.
    let probe = |rng: &mut Rng| -> u64 {
        let k = cfg.keys[rng.below(cfg.keys.len() as u64) as usize];
        if rng.below(8) == 0 {
            k.wrapping_add(1 << 50)
        } else {
            k
        }
    };
    while !done.load(Ordering::Relaxed) && obs.len() < cfg.max_reads {
        let a = seq.load(Ordering::SeqCst);
        let read = {
            let r = t.read();
            match rng.below(6) {
                0 | 1 => {
                    let k = probe(&mut rng);
                    Read::Lookup(k, r.lookup(k).map(raw))
                }
                2 => {
                    let k = probe(&mut rng);
                    let got = r.get_arc(k).map(|e| match e {
                        Entry::Item(a) => *a,
                        Entry::Value(v) => v,
                    });
                    Read::Arc(k, got)
                }
                3 => {
                    let k = probe(&mut rng);
                    Read::TagGet(k, r.tag_get(k, Tag::T0))
                }
                4 => {
                    let first = probe(&mut rng);
                    let max = 1 + rng.below(20) as usize;
                    let tag = rng.below(2) == 0;
                    let mut out = Vec::new();
                    if tag {
                        r.gang_lookup_tag(first, max, Tag::T0, &mut out);
                    } else {
                        r.gang_lookup(first, max, &mut out);
                    }
                    Read::Gang {
                        first,
                        max,
                        tag,
                        got: out.into_iter().map(|(i, e)| (i, raw(e))).collect(),
                    }
                }
                _ => {
                    let first = probe(&mut rng);
                    let max = 1 + rng.below(20) as usize;
                    let got = r.range(first).take(max).map(|(i, e)| (i, raw(e))).collect();
                    Read::Gang {
                        first,
                        max,
                        tag: false,
                        got,
                    }
                }
            }
        };
        let b = seq.load(Ordering::SeqCst);
        obs.push(Obs { a, b, read });
        if obs.len() == 1 {
            ready.fetch_add(1, Ordering::SeqCst);
        }
    }
    obs
}

fn check(h: &History, o: &Obs) {
    let (a, b1) = (o.a, o.b + 1);
    match &o.read {
        Read::Lookup(k, got) | Read::Arc(k, got) => {
            let states = h.states(*k, a, b1);
            assert!(
                states.iter().any(|s| s.value == *got),
                "{:?} between operations {a} and {b1}: the key held {states:?}",
                o.read
            );
        }
        Read::TagGet(k, got) => {
            let states = h.states(*k, a, b1);
            assert!(
                states
                    .iter()
                    .any(|s| (s.value.is_some() && s.tagged) == *got),
                "{:?} between operations {a} and {b1}: the key held {states:?}",
                o.read
            );
        }
        Read::Gang {
            first,
            max,
            tag,
            got,
        } => {
            assert!(got.len() <= *max, "{:?}: over max", o.read);
            assert!(
                got.windows(2).all(|w| w[0].0 < w[1].0),
                "{:?}: not ascending",
                o.read
            );
            for &(i, v) in got {
                assert!(i >= *first, "{:?}: index below the start", o.read);
                let states = h.states(i, a, b1);
                assert!(
                    states.iter().any(|s| s.value == Some(v)),
                    "{:?} between operations {a} and {b1}: index {i} held {states:?}",
                    o.read
                );
            }
            let full = got.len() == *max;
            let last = got.last().map(|e| e.0);
            for &k in h.keys.iter().filter(|&&k| k >= *first) {
                if full && Some(k) > last {
                    break;
                }
                let states = h.states(k, a, b1);
                let stable = states.windows(2).all(|w| w[0].value == w[1].value)
                    && states[0].value.is_some()
                    && (!*tag || states.iter().all(|s| s.tagged));
                if stable {
                    let v = states[0].value;
                    assert!(
                        got.iter().any(|&(i, x)| i == k && Some(x) == v),
                        "{:?} between operations {a} and {b1}: missed index {k}, which held \
                         {states:?} throughout",
                        o.read
                    );
                }
            }
        }
    }
}

fn stress<const SHIFT: u32>(cfg: Config) {
    let t = Arc::new(RcuRadixTree::<Arc<u64>, SHIFT>::new());
    let seq = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // Readers that have made their first read: the writer starts when all
    // have, so a reader the scheduler starts late still reads during the
    // writes.
    let ready = Arc::new(AtomicUsize::new(0));
    let cfg = Arc::new(cfg);
    let (tx, rx) = mpsc::channel();
    let mut handles = Vec::new();
    for r in 0..cfg.readers {
        let (t, seq, done, ready, cfg, tx) = (
            Arc::clone(&t),
            Arc::clone(&seq),
            Arc::clone(&done),
            Arc::clone(&ready),
            Arc::clone(&cfg),
            tx.clone(),
        );
        handles.push(std::thread::spawn(move || {
            let obs = reader(
                &t,
                &seq,
                &done,
                &ready,
                &cfg,
                cfg.seed ^ (r as u64 + 1) << 32,
            );
            let _ = tx.send(());
            obs
        }));
    }
    let writer_handle = {
        let (t, seq, done, ready, cfg, tx) = (
            Arc::clone(&t),
            Arc::clone(&seq),
            Arc::clone(&done),
            Arc::clone(&ready),
            Arc::clone(&cfg),
            tx.clone(),
        );
        std::thread::spawn(move || {
            let start = std::time::Instant::now();
            while ready.load(Ordering::SeqCst) < cfg.readers {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "the readers did not start within 60 s"
                );
                std::thread::yield_now();
            }
            let h = writer(&t, &seq, &cfg);
            done.store(true, Ordering::Relaxed);
            let _ = tx.send(());
            h
        })
    };
    drop(tx);
    for _ in 0..=cfg.readers {
        rx.recv_timeout(Duration::from_secs(120)).expect(
            "the stress threads did not finish within 120 s (a reader or the writer is stuck)",
        );
    }
    let history = writer_handle.join().expect("writer panicked");
    let mut reads = 0;
    for h in handles {
        let obs = h.join().expect("reader panicked");
        reads += obs.len();
        for o in &obs {
            check(&history, o);
        }
    }
    assert!(reads > 0, "no read was checked");
}

fn miri_or(native: u64, miri: u64) -> u64 {
    if cfg!(miri) { miri } else { native }
}

/// Shift 2 and 48 keys: trees of height 0 to 3, growing and shrinking
/// (through height 0 and the retry marker) all the time.
#[test]
fn readers_agree_with_the_writers_history_in_a_small_deep_tree() {
    stress::<2>(Config {
        keys: (0..48).collect(),
        writer_ops: miri_or(40_000, 40),
        readers: if cfg!(miri) { 1 } else { 2 },
        max_reads: miri_or(400_000, 60) as usize,
        seed: 1,
    });
}

/// Shift 6 and page-cache-like keys, with far keys that add levels.
#[test]
fn readers_agree_with_the_writers_history_in_a_wide_tree() {
    let mut keys: Vec<u64> = (0..130).chain(4090..4100).collect();
    keys.extend([1 << 20, 1 << 36]);
    stress::<6>(Config {
        keys,
        writer_ops: miri_or(40_000, 40),
        readers: if cfg!(miri) { 1 } else { 2 },
        max_reads: miri_or(400_000, 60) as usize,
        seed: 2,
    });
}
