//! The active-reference protocol under the loom model checker: every
//! interleaving of users and removers, with the crate's atomics, mutex,
//! condition variable and lock swapped for loom's (`src/primitive.rs`).
//!
//! Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p klab-revocable --test loom --release`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use klab_revocable::{Revocable, State};

struct Obj {
    value: u32,
    freed: Arc<AtomicBool>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        assert!(!self.freed.swap(true, Ordering::SeqCst), "freed twice");
    }
}

/// Three-thread models are explored with at most 3 preemptions per
/// execution (as crossbeam's CI bounds its loom runs); unbounded, they
/// take hours. Two-thread models run unbounded.
fn bounded(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

fn obj() -> (Arc<Revocable<Obj>>, Arc<AtomicBool>) {
    let freed = Arc::new(AtomicBool::new(false));
    let r = Revocable::new(Obj {
        value: 7,
        freed: freed.clone(),
    });
    (Arc::new(r), freed)
}

/// A user either gets the object intact or `ENODEV`; the remover returns
/// only with the object freed; afterwards nobody gets it.
#[test]
fn a_user_and_a_remover() {
    loom::model(|| {
        let (r, freed) = obj();
        let user = {
            let r = r.clone();
            thread::spawn(move || match r.try_get() {
                Ok(o) => {
                    assert_eq!(o.value, 7);
                    assert!(!o.freed.load(Ordering::SeqCst), "used after free");
                    true
                }
                Err(_) => false,
            })
        };
        assert!(r.remove());
        assert!(freed.load(Ordering::SeqCst), "freed when remove returns");
        user.join().unwrap();
        assert!(r.try_get().is_err());
        assert_eq!(r.state(), State::Gone);
    });
}

/// Two users, one of them holding its reference across a yield point.
#[test]
fn two_users_and_a_remover() {
    bounded(|| {
        let (r, freed) = obj();
        let users: Vec<_> = (0..2)
            .map(|_| {
                let r = r.clone();
                thread::spawn(move || {
                    if let Ok(o) = r.try_get() {
                        thread::yield_now();
                        assert!(!o.freed.load(Ordering::SeqCst), "used after free");
                    }
                })
            })
            .collect();
        r.remove();
        assert!(freed.load(Ordering::SeqCst));
        for u in users {
            u.join().unwrap();
        }
    });
}

/// Two removers: both return after draining, exactly one frees.
#[test]
fn two_removers_and_a_user() {
    bounded(|| {
        let (r, freed) = obj();
        let user = {
            let r = r.clone();
            thread::spawn(move || {
                if let Ok(o) = r.try_get() {
                    assert!(!o.freed.load(Ordering::SeqCst));
                }
            })
        };
        let other = {
            let r = r.clone();
            thread::spawn(move || r.remove())
        };
        let mine = r.remove();
        assert!(matches!(r.state(), State::Drained | State::Gone));
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "exactly one remover frees");
        user.join().unwrap();
        assert!(freed.load(Ordering::SeqCst));
    });
}

/// An operation removing its own object while an outside remover runs.
#[test]
fn self_removal_against_removal() {
    loom::model(|| {
        let (r, freed) = obj();
        let outside = {
            let r = r.clone();
            thread::spawn(move || r.remove())
        };
        let inside = match r.try_get() {
            Ok(me) => me.remove_self(),
            Err(_) => r.remove(),
        };
        let outside = outside.join().unwrap();
        assert!(inside ^ outside);
        assert!(freed.load(Ordering::SeqCst));
    });
}
