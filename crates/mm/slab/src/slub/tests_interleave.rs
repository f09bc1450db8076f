//! Deterministic interleavings of a CPU's flush (a thread's exit: the
//! kernel's `slub_cpu_dead()` flushing a dead CPU's slab and partial list)
//! against another CPU's slow paths, on the real 3.2 code.
//!
//! CPU A flushes its slab and a partial list of six frozen slabs, two of
//! them already empty. It is stopped at its k-th [`Point`] (a
//! compare-and-swap about to happen, or a `list_lock` about to be taken),
//! for every k, while CPU B runs one operation to its end: a slow-path
//! allocation from the node list, a free into one of A's frozen slabs, the
//! free that empties one of them, or a free into a full slab. When B
//! needs a `list_lock` that A holds, A runs to its end first, then B goes
//! on: every outcome is fixed by k and the operation. Each run must leave
//! A with no slab and no partial list, the cache consistent, every object
//! accounted for and, once everything is freed, no slab left after
//! `kmem_cache_shrink()`.

use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use super::interleave::{Point, hook};
use crate::cache::{KmemCache, Slub, SlubConfig};
use crate::debug::CollectSink;
use crate::layout::SlabFlags;
use crate::page_source::FramePool;
use crate::slub::{CpuSlab, SlubEra};

/// An object the test holds, with its pointer's provenance (moved
/// between the test's threads).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Obj(NonNull<u8>);

// SAFETY: the test hands each object to one thread at a time.
unsafe impl Send for Obj {}

impl Obj {
    fn slab(self) -> usize {
        self.0.as_ptr().addr() & !4095
    }
}

/// What B does while A is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// Allocates: B has no slab, so the node partial list (`list_lock`).
    Alloc,
    /// Frees one object of a slab on A's partial list.
    FreeIntoFrozen,
    /// Frees every remaining object of a slab on A's partial list: the
    /// last free empties it, frozen or (if A has unfrozen it) listed.
    EmptyFrozen,
    /// Frees one object of a full slab nobody owns: freezes it onto B.
    FreeIntoFull,
}

const OPS: [Op; 4] = [
    Op::Alloc,
    Op::FreeIntoFrozen,
    Op::EmptyFrozen,
    Op::FreeIntoFull,
];

/// Objects per slab of the test's cache.
const PER_SLAB: usize = 8;

/// The state before the interleaving: CPUs A and B, the objects the test
/// holds (by slab), and the cache.
struct Setup {
    _slub: Slub,
    sink: Arc<CollectSink>,
    cache: KmemCache,
    a: CpuSlab,
    b: CpuSlab,
    /// Live objects the test holds, by slab (address of the slab's page).
    live: BTreeMap<usize, Vec<Obj>>,
    /// Slab bases: [0..6) on A's partial list (0 and 1 empty), [6] full,
    /// [8..12) on the node list with one free object each.
    slabs: Vec<usize>,
}

fn setup() -> Setup {
    let pool = Arc::new(FramePool::new(1, 2));
    let sink = Arc::new(CollectSink::new());
    let config = SlubConfig {
        era: SlubEra::V3_2,
        ..SlubConfig::default()
    };
    let slub = Slub::new(pool, config, sink.clone());
    // 512-byte objects: eight to a one-page slab, so a slab empties in a
    // few frees (and Miri runs the whole setup in seconds).
    let cache = slub
        .kmem_cache_create_unmergeable("p512", 512, 8, SlabFlags::NONE, None)
        .unwrap();
    assert_eq!(
        (cache.layout().order, cache.layout().objects),
        (0, PER_SLAB)
    );
    // A's CPU slab: a fresh one, one object allocated.
    let mut a = cache.cpu();
    let a_obj = Obj(a.alloc().unwrap());
    // Twelve full slabs on no list.
    let mut f = cache.cpu();
    let objs: Vec<Obj> = (0..12 * PER_SLAB)
        .map(|_| Obj(f.alloc().unwrap()))
        .collect();
    drop(f);
    let mut live: BTreeMap<usize, Vec<Obj>> = BTreeMap::new();
    let mut slabs = Vec::new();
    for &o in &objs {
        let s = o.slab();
        if !live.contains_key(&s) {
            slabs.push(s);
        }
        live.entry(s).or_default().push(o);
    }
    live.entry(a_obj.slab()).or_default().push(a_obj);
    assert_eq!(slabs.len(), 12);
    let free = |cpu: &mut CpuSlab, live: &mut BTreeMap<usize, Vec<Obj>>, slab: usize| {
        let o = live.get_mut(&slab).unwrap().pop().unwrap();
        // SAFETY: a live object of this cache, freed once.
        unsafe { cpu.free(o.0) };
    };
    // Slabs 8-11 on the node list, one free object each (via G's
    // partial list, which G's flush unfreezes).
    let mut g = cache.cpu();
    for &s in &slabs[8..12] {
        free(&mut g, &mut live, s);
    }
    drop(g);
    assert_eq!(cache.stats().partial, 4);
    // Slabs 0-5 frozen onto A's partial list; 0 and 1 then emptied.
    for &s in &slabs[..6] {
        free(&mut a, &mut live, s);
    }
    for &s in &slabs[..2] {
        while !live[&s].is_empty() {
            free(&mut a, &mut live, s);
        }
    }
    assert_eq!(a.state().nr_partial(), 6);
    assert!(!a.state().page.is_null());
    a.assert_invariants();
    let b = cache.cpu();
    Setup {
        _slub: slub,
        sink,
        cache,
        a,
        b,
        live,
        slabs,
    }
}

/// Messages to the controller.
#[derive(Debug)]
enum Msg {
    /// A stopped at its k-th point, holding a `list_lock` or not.
    APaused { held: bool },
    /// A's flush returned.
    ADone,
    /// B is about to take a `list_lock`.
    BWantsLock,
    /// B's operation returned.
    BDone,
}

/// What a run measured.
struct Outcome {
    /// A stopped (false: its flush passes fewer than k + 1 points).
    paused: bool,
    /// A's compare-and-swaps that failed and were retried.
    a_cas_retries: u64,
    /// B had to wait for A's `list_lock`.
    b_waited: bool,
}

const PATIENCE: Duration = Duration::from_secs(20);

fn recv(rx: &Receiver<Msg>, what: &str) -> Msg {
    match rx.recv_timeout(PATIENCE) {
        Ok(m) => m,
        Err(RecvTimeoutError::Timeout) => {
            panic!("{what}: no progress for {PATIENCE:?}: a thread is stuck (deadlock?)")
        }
        Err(RecvTimeoutError::Disconnected) => panic!("{what}: a thread died"),
    }
}

/// Runs B's `op` with A stopped at its `k`-th point.
fn run(k: usize, op: Op) -> Outcome {
    let Setup {
        _slub,
        sink,
        cache,
        a,
        b,
        mut live,
        slabs,
    } = setup();
    let what = format!("A stopped at point {k}, B does {op:?}");
    let (tx, rx) = channel::<Msg>();
    let (go_a, wait_a) = channel::<()>();
    let (go_b, wait_b) = channel::<()>();

    // A: the flush, stopping at its k-th point.
    let tx_a = tx.clone();
    let ha = std::thread::spawn(move || {
        let mut a = a;
        let mut n = 0usize;
        let tx_hook = tx_a.clone();
        hook::set(move |_p: Point| {
            if n == k {
                let held = crate::reentry::locks_held() > 0;
                tx_hook.send(Msg::APaused { held }).unwrap();
                let _ = wait_a.recv();
            }
            n += 1;
        });
        a.flush();
        hook::clear();
        tx_a.send(Msg::ADone).unwrap();
        a
    });
    let mut a_paused = false;
    let mut a_held = false;
    let mut a_done = false;
    match recv(&rx, &what) {
        Msg::APaused { held } => (a_paused, a_held) = (true, held),
        Msg::ADone => a_done = true,
        m => panic!("{what}: unexpected {m:?}"),
    }
    let paused = a_paused;

    // B: one operation.
    let mut to_free: Vec<Obj> = Vec::new();
    match op {
        Op::FreeIntoFrozen => to_free.push(live.get_mut(&slabs[2]).unwrap().pop().unwrap()),
        Op::EmptyFrozen => to_free.append(live.get_mut(&slabs[3]).unwrap()),
        Op::FreeIntoFull => to_free.push(live.get_mut(&slabs[6]).unwrap().pop().unwrap()),
        Op::Alloc => {}
    }
    let tx_b = tx.clone();
    let hb = std::thread::spawn(move || {
        let mut b = b;
        let tx_hook = tx_b.clone();
        hook::set(move |p: Point| {
            if p == Point::ListLock {
                tx_hook.send(Msg::BWantsLock).unwrap();
                let _ = wait_b.recv();
            }
        });
        let mut got = None;
        if op == Op::Alloc {
            got = Some(Obj(b.alloc().unwrap()));
        }
        for o in to_free {
            // SAFETY: live objects of this cache, each freed once.
            unsafe { b.free(o.0) };
        }
        hook::clear();
        tx_b.send(Msg::BDone).unwrap();
        (b, got)
    });
    let mut b_waited = false;
    let finish_a = |a_done: &mut bool| {
        go_a.send(()).unwrap();
        while !*a_done {
            match recv(&rx, &what) {
                Msg::ADone => *a_done = true,
                m => panic!("{what}: unexpected {m:?} while A finishes"),
            }
        }
    };
    loop {
        match recv(&rx, &what) {
            Msg::BWantsLock => {
                if a_paused && a_held && !a_done {
                    b_waited = true;
                    finish_a(&mut a_done);
                    a_paused = false;
                }
                go_b.send(()).unwrap();
            }
            Msg::BDone => break,
            m => panic!("{what}: unexpected {m:?}"),
        }
    }
    if !a_done {
        finish_a(&mut a_done);
    }
    let a = ha.join().expect("A panicked");
    let (b, got) = hb.join().expect("B panicked");
    if let Some(o) = got {
        live.entry(o.slab()).or_default().push(o);
    }

    // A has given everything back; the cache is consistent.
    assert!(a.state().page.is_null(), "{what}: A kept its slab");
    assert_eq!(a.state().nr_partial(), 0, "{what}: A kept partial slabs");
    a.assert_invariants();
    b.assert_invariants();
    cache.assert_invariants();
    let a_cas_retries = a.stats().cmpxchg_fail;
    drop(a);
    drop(b);
    // Every object the test holds is still allocated exactly once: free
    // them all; then nothing is left.
    let mut h = cache.cpu();
    for objs in live.values() {
        for &o in objs {
            // SAFETY: live objects of this cache, each freed once.
            unsafe { h.free(o.0) };
        }
    }
    drop(h);
    cache.assert_invariants();
    let s = cache.stats();
    assert_eq!(s.slabs, s.partial, "{what}: slabs off every list");
    cache.shrink();
    assert_eq!(cache.stats().slabs, 0, "{what}: slabs leaked");
    assert!(sink.take().is_empty(), "{what}: reports");
    Outcome {
        paused,
        a_cas_retries,
        b_waited,
    }
}

#[test]
fn a_flush_interleaved_with_slow_paths_at_every_point_loses_nothing() {
    // A alone: how many points its flush passes.
    let points = count_points();
    // Its slab (deactivate: one swap, one lock) and six partial slabs
    // (one lock, six swaps): at least 9.
    assert!(points >= 9, "A's flush passed only {points} points");
    let mut retries = 0;
    let mut waits = 0;
    // Miri takes every other point (its runs cost about a second each).
    let step = if cfg!(miri) { 2 } else { 1 };
    for k in (0..points).step_by(step) {
        for op in OPS {
            let o = run(k, op);
            assert!(o.paused, "A did not reach point {k} with {op:?}");
            retries += o.a_cas_retries;
            waits += u64::from(o.b_waited);
        }
    }
    // The schedules reach both races: a free into a slab A is unfreezing
    // makes A's swap fail and retry, and B waits for A's list_lock.
    assert!(
        retries > 0,
        "no interleaving made A's compare-and-swap retry"
    );
    assert!(waits > 0, "no interleaving made B wait for A's list_lock");
}

/// Runs A's flush alone, counting the points it passes.
fn count_points() -> usize {
    use std::cell::Cell;
    use std::rc::Rc;
    let Setup { mut a, .. } = setup();
    let n = Rc::new(Cell::new(0usize));
    let m = n.clone();
    hook::set(move |_| m.set(m.get() + 1));
    a.flush();
    hook::clear();
    n.get()
}
