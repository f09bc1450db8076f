//! Concurrent users and removers on real threads. Bounded, and without a
//! single timed assertion: every check is about what was seen, never how
//! long it took.
//!
//! Each object carries a canary that its `Drop` poisons and a flag it
//! sets; a user holding an active reference must never see either. After
//! `remove` returns the object must be freed, exactly once, and every
//! later `try_get` must fail.
#![cfg(not(loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread;

use klab_revocable::{Gone, Revocable, State};
use rand::{Rng, SeedableRng};

const CANARY: u64 = 0x5EED_CAFE_F00D_D00D;

struct Device {
    canary: AtomicU64,
    reads: AtomicU64,
    frees: Arc<AtomicUsize>,
    freed: Arc<AtomicBool>,
}

impl Drop for Device {
    fn drop(&mut self) {
        assert_eq!(self.canary.swap(0, Ordering::SeqCst), CANARY, "freed twice");
        self.freed.store(true, Ordering::SeqCst);
        self.frees.fetch_add(1, Ordering::SeqCst);
    }
}

fn device(frees: &Arc<AtomicUsize>) -> (Arc<Revocable<Device>>, Arc<AtomicBool>) {
    let freed = Arc::new(AtomicBool::new(false));
    let d = Device {
        canary: AtomicU64::new(CANARY),
        reads: AtomicU64::new(0),
        frees: Arc::clone(frees),
        freed: Arc::clone(&freed),
    };
    (Arc::new(Revocable::new(d)), freed)
}

fn scale(n: usize) -> usize {
    if cfg!(miri) { n / 50 + 1 } else { n }
}

#[test]
fn users_and_one_remover_per_object() {
    const OBJECTS: usize = 32;
    const USERS: usize = 4;
    let frees = Arc::new(AtomicUsize::new(0));
    let objs: Vec<_> = (0..OBJECTS).map(|_| device(&frees)).collect();
    let shared: Arc<Vec<_>> = Arc::new(objs.iter().map(|(r, _)| Arc::clone(r)).collect());
    let successes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let users: Vec<_> = (0..USERS)
        .map(|u| {
            let shared = Arc::clone(&shared);
            let successes = Arc::clone(&successes);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut rng = rand_pcg::Pcg64::seed_from_u64(u as u64);
                let mut gone = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let i = rng.random_range(0..shared.len());
                    match shared[i].try_get() {
                        Ok(d) => {
                            // Inside a show(): the object must be intact.
                            assert_eq!(d.canary.load(Ordering::SeqCst), CANARY);
                            assert!(!d.freed.load(Ordering::SeqCst));
                            d.reads.fetch_add(1, Ordering::Relaxed);
                            if rng.random_bool(0.1) {
                                thread::yield_now();
                            }
                            assert_eq!(d.canary.load(Ordering::SeqCst), CANARY);
                            successes.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(Gone) => gone += 1,
                    }
                }
                gone
            })
        })
        .collect();
    // Remove the objects one by one once users have been at work on them.
    let target = scale(20_000) as u64;
    for (i, (r, freed)) in objs.iter().enumerate() {
        let until = target * (i as u64 + 1) / OBJECTS as u64;
        while successes.load(Ordering::Relaxed) < until {
            thread::yield_now();
        }
        assert!(r.remove(), "object {i}: the only remover frees");
        assert!(
            freed.load(Ordering::SeqCst),
            "object {i}: freed when remove returned"
        );
        assert_eq!(r.state(), State::Gone);
        assert!(r.try_get().is_err());
    }
    stop.store(true, Ordering::Release);
    let gone: u64 = users.into_iter().map(|u| u.join().unwrap()).sum();
    assert_eq!(
        frees.load(Ordering::SeqCst),
        OBJECTS,
        "each object freed exactly once"
    );
    assert!(gone > 0, "users met removed objects");
}

#[test]
fn concurrent_removers_all_return_after_draining_and_one_frees() {
    const ROUNDS: usize = 200;
    const REMOVERS: usize = 3;
    let frees = Arc::new(AtomicUsize::new(0));
    for round in 0..scale(ROUNDS) {
        let (r, freed) = device(&frees);
        // A user holds a reference while the removers start.
        let op = Revocable::try_get_owned(&r).unwrap();
        let removers: Vec<_> = (0..REMOVERS)
            .map(|_| {
                let r = Arc::clone(&r);
                let freed = Arc::clone(&freed);
                thread::spawn(move || {
                    let did = r.remove();
                    // Every remover returns only after draining: by then
                    // no reference is held.
                    assert!(matches!(r.state(), State::Drained | State::Gone));
                    if did {
                        assert!(freed.load(Ordering::SeqCst));
                    }
                    did
                })
            })
            .collect();
        while r.state() == (State::Live { active: 1 }) {
            thread::yield_now();
        }
        assert_eq!(op.canary.load(Ordering::SeqCst), CANARY, "round {round}");
        drop(op);
        let winners = removers
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(winners, 1, "round {round}: exactly one remover frees");
        assert!(freed.load(Ordering::SeqCst));
    }
    assert_eq!(frees.load(Ordering::SeqCst), scale(ROUNDS));
}

#[test]
fn self_removal_races_with_outside_removal() {
    const ROUNDS: usize = 200;
    let frees = Arc::new(AtomicUsize::new(0));
    for round in 0..scale(ROUNDS) {
        let (r, _) = device(&frees);
        let op = Revocable::try_get_owned(&r).unwrap();
        let outside = {
            let r = Arc::clone(&r);
            thread::spawn(move || r.remove())
        };
        // The operation removes its own object: drop our owned reference
        // and remove through a borrowed one, as remove_self does.
        drop(op);
        let inside = match r.try_get() {
            Ok(me) => me.remove_self(),
            Err(Gone) => r.remove(),
        };
        let outside = outside.join().unwrap();
        assert!(inside ^ outside, "round {round}: exactly one of them frees");
        assert_eq!(r.state(), State::Gone);
    }
    assert_eq!(frees.load(Ordering::SeqCst), scale(ROUNDS));
}
