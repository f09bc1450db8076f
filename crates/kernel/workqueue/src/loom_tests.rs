//! Model checks of the core state machine under loom:
//! `RUSTFLAGS="--cfg loom" cargo test -p klab-workqueue --release --lib loom`.
//!
//! Each test runs real workqueue code (worker threads, lists, PENDING,
//! tombstones, flush, cancel) with loom's primitives, which explore the
//! thread interleavings up to a preemption bound. The property is always
//! the same accounting: every `queue_work` that returned true produced an
//! instance that either ran exactly once or was removed by a cancel that
//! returned true; nothing runs after `cancel_work_sync` returns.

use std::time::Duration;

use crate::primitive::atomic::{AtomicUsize, Ordering};
use crate::primitive::{Arc, thread};
use crate::{Work, Workqueue, cancel_work_sync, flush_work};

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

fn counting() -> (Work, Arc<AtomicUsize>) {
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let w = Work::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    (w, runs)
}

#[test]
fn loom_queue_racing_cancel_runs_or_cancels_each_instance_once() {
    model(|| {
        let wq = Arc::new(Workqueue::create_singlethread("l", 1).unwrap());
        let (w, runs) = counting();
        let t = {
            let (wq, w) = (wq.clone(), w.clone());
            thread::spawn(move || wq.queue_work_on(0, &w))
        };
        let cancelled = cancel_work_sync(&w);
        let queued = t.join().unwrap();
        wq.assert_invariants();
        drop(wq);
        assert_eq!(
            runs.load(Ordering::SeqCst),
            usize::from(queued) - usize::from(cancelled)
        );
        assert!(!w.is_pending());
    });
}

#[test]
fn loom_flush_after_queue_sees_the_run_and_double_queue_is_refused() {
    model(|| {
        let wq = Arc::new(Workqueue::create_singlethread("l", 1).unwrap());
        let (w, runs) = counting();
        let t = {
            let (wq, w, runs) = (wq.clone(), w.clone(), runs.clone());
            thread::spawn(move || {
                let q = wq.queue_work_on(0, &w);
                wq.flush();
                // Our instance (or the other thread's, still pending when
                // ours was refused) was queued before the flush.
                if q {
                    assert!(runs.load(Ordering::SeqCst) >= 1);
                }
                q
            })
        };
        let q_main = wq.queue_work_on(0, &w);
        let q_t = t.join().unwrap();
        drop(wq);
        assert_eq!(
            runs.load(Ordering::SeqCst),
            usize::from(q_main) + usize::from(q_t)
        );
    });
}

#[test]
fn loom_cancel_sync_stops_a_self_requeueing_item() {
    model(|| {
        let wq = Arc::new(Workqueue::create_singlethread("l", 1).unwrap());
        let runs = Arc::new(AtomicUsize::new(0));
        let w = {
            let (wq, runs) = (wq.clone(), runs.clone());
            Work::new(move |me| {
                if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                    wq.queue_work_on(0, me);
                }
            })
        };
        wq.queue_work_on(0, &w);
        let t = {
            let w = w.clone();
            thread::spawn(move || {
                cancel_work_sync(&w);
                assert!(!w.is_pending());
            })
        };
        t.join().unwrap();
        let after = runs.load(Ordering::SeqCst);
        wq.flush();
        assert_eq!(
            runs.load(Ordering::SeqCst),
            after,
            "ran after cancel_work_sync"
        );
        assert!(!flush_work(&w));
        drop(w); // its closure holds the workqueue
        drop(wq);
    });
}

#[test]
fn loom_lazy_move_to_a_new_thread_racing_cancel() {
    model(|| {
        let wq = Arc::new(Workqueue::create_lazy("l", 2, Duration::from_secs(3600)).unwrap());
        let (w, runs) = counting();
        let queued = wq.queue_work_on(1, &w);
        let t = {
            let w = w.clone();
            thread::spawn(move || cancel_work_sync(&w))
        };
        let cancelled = t.join().unwrap();
        wq.flush();
        wq.assert_invariants();
        drop(wq);
        assert_eq!(
            runs.load(Ordering::SeqCst),
            usize::from(queued) - usize::from(cancelled)
        );
    });
}
