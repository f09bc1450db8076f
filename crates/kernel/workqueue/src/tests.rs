//! Unit tests: each pins one rule of kernel/workqueue.c or of the lazy
//! patch. Waits are bounded (a test that hangs fails), but no test asserts
//! how long anything took.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::cpu;
use crate::cwq::Slot;
use crate::primitive::lock;
use crate::*;

/// Longest any bounded wait in these tests may take before it fails.
const LIVENESS: Duration = Duration::from_secs(30);

/// A gate a work function can block on until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    fn wait(&self) {
        let (m, cv) = &*self.0;
        let mut open = m.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }
    fn open(&self) {
        let (m, cv) = &*self.0;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// Polls `cond` until it holds, failing after [`LIVENESS`].
#[track_caller]
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIVENESS, "never happened: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// A work item that counts its runs.
fn counter() -> (Work, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let c = n.clone();
    (
        Work::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        }),
        n,
    )
}

/// A work item that signals it started, then blocks on `gate`.
fn blocker(gate: &Gate) -> (Work, Arc<AtomicBool>) {
    let started = Arc::new(AtomicBool::new(false));
    let (g, s) = (gate.clone(), started.clone());
    (
        Work::new(move |_| {
            s.store(true, Ordering::SeqCst);
            g.wait();
        }),
        started,
    )
}

/// Number of threads waiting to flush or cancel on `cpu`'s list.
fn waiters(wq: &Workqueue, cpu: usize) -> usize {
    lock(&wq.shared.cwqs[cpu].lock).waiters
}

#[test]
fn queueing_a_pending_item_returns_false_and_it_runs_once() {
    let wq = Workqueue::create("pend", 2).unwrap();
    let gate = Gate::default();
    let (b, started) = blocker(&gate);
    assert!(wq.queue_work_on(0, &b));
    eventually("blocker runs", || started.load(Ordering::SeqCst));
    let (w, runs) = counter();
    assert!(wq.queue_work_on(0, &w));
    assert!(w.is_pending());
    assert!(!wq.queue_work_on(0, &w), "second queue of a pending item");
    assert!(
        !wq.queue_work_on(1, &w),
        "a pending item is never on two lists"
    );
    wq.assert_invariants();
    gate.open();
    wq.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!w.is_pending());
    assert!(wq.queue_work_on(1, &w), "queueable again once it ran");
    wq.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    wq.assert_invariants();
}

#[test]
fn each_cpu_runs_its_list_in_fifo_order() {
    let wq = Workqueue::create("fifo", 2).unwrap();
    let gate = Gate::default();
    let (b, started) = blocker(&gate);
    wq.queue_work_on(1, &b);
    eventually("blocker runs", || started.load(Ordering::SeqCst));
    let order = Arc::new(Mutex::new(Vec::new()));
    let works: Vec<Work> = (0..5)
        .map(|i| {
            let o = order.clone();
            Work::new(move |_| o.lock().unwrap().push(i))
        })
        .collect();
    for w in &works {
        assert!(wq.queue_work_on(1, w));
    }
    wq.assert_invariants();
    gate.open();
    wq.flush();
    assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    assert_eq!(wq.stats().runs_per_cpu, vec![0, 6]);
    wq.assert_invariants();
}

#[test]
fn queue_work_goes_to_the_submitting_threads_cpu_and_a_work_requeued_from_a_worker_stays_there() {
    let wq = Arc::new(Workqueue::create("cpu", 8).unwrap());
    let (tx, rx) = mpsc::channel();
    let seen = Mutex::new(tx);
    let wq2 = wq.clone();
    let hops = AtomicUsize::new(0);
    let w = Work::new(move |me| {
        seen.lock().unwrap().send(cpu::current_id()).unwrap();
        if hops.fetch_add(1, Ordering::SeqCst) == 0 {
            // The kernel's worker is bound to its CPU: work it queues
            // stays there.
            assert!(wq2.queue_work(me));
        }
    });
    thread::scope(|s| {
        s.spawn(|| {
            cpu::set_current_cpu(5);
            assert!(wq.queue_work(&w));
        });
    });
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), 5);
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), 5);
    wq.flush();
    assert_eq!(wq.stats().runs_per_cpu[5], 2);
    // Break the cycle work -> closure -> Arc<Workqueue>.
    drop(w);
}

#[test]
fn flush_waits_for_earlier_work_and_not_for_later_work() {
    let wq = Arc::new(Workqueue::create("flush", 2).unwrap());
    let early_gate = Gate::default();
    let (early, early_started) = blocker(&early_gate);
    let early_done = Arc::new(AtomicBool::new(false));
    let d = early_done.clone();
    let after_early = Work::new(move |_| d.store(true, Ordering::SeqCst));
    wq.queue_work_on(0, &early);
    wq.queue_work_on(0, &after_early);
    eventually("early item runs", || early_started.load(Ordering::SeqCst));

    let flushed = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (wq, f, d) = (wq.clone(), flushed.clone(), early_done.clone());
        thread::spawn(move || {
            wq.flush();
            // Everything queued before the flush has finished.
            assert!(d.load(Ordering::SeqCst));
            f.store(true, Ordering::SeqCst);
        })
    };
    eventually("flusher waits on cpu 0", || waiters(&wq, 0) == 1);
    // Queued after the flush began, and blocked until after it returns.
    let late_gate = Gate::default();
    let (late, late_started) = blocker(&late_gate);
    wq.queue_work_on(1, &late);
    eventually("late item runs", || late_started.load(Ordering::SeqCst));
    assert!(
        !flushed.load(Ordering::SeqCst),
        "flush returned before earlier work"
    );
    early_gate.open();
    flusher.join().unwrap();
    assert!(flushed.load(Ordering::SeqCst));
    // The late item is still running: the flush did not wait for it.
    assert!(late.is_pending() || late_started.load(Ordering::SeqCst));
    assert_eq!(wq.stats().runs_per_cpu[1], 0);
    late_gate.open();
    wq.flush();
    wq.assert_invariants();
}

#[test]
fn flush_work_waits_for_that_item_and_returns_false_for_an_idle_one() {
    let wq = Workqueue::create("flushw", 1).unwrap();
    let (w, runs) = counter();
    assert!(!flush_work(&w), "never queued");
    let gate = Gate::default();
    let (b, started) = blocker(&gate);
    wq.queue_work_on(0, &b);
    eventually("blocker runs", || started.load(Ordering::SeqCst));
    wq.queue_work_on(0, &w);
    thread::scope(|s| {
        let h = s.spawn(|| {
            assert!(flush_work(&w));
            runs.load(Ordering::SeqCst)
        });
        eventually("flush_work waits", || waiters(&wq, 0) == 1);
        gate.open();
        assert_eq!(
            h.join().unwrap(),
            1,
            "flush_work returned before the item ran"
        );
    });
    assert!(!flush_work(&w), "ran already: nothing to wait for");
}

#[test]
fn cancel_work_sync_removes_a_queued_item_which_then_never_runs() {
    let wq = Workqueue::create("cancel", 1).unwrap();
    let gate = Gate::default();
    let (b, started) = blocker(&gate);
    wq.queue_work_on(0, &b);
    eventually("blocker runs", || started.load(Ordering::SeqCst));
    let (w, runs) = counter();
    let (after, after_runs) = counter();
    wq.queue_work_on(0, &w);
    wq.queue_work_on(0, &after);
    assert!(cancel_work_sync(&w), "it was pending");
    assert!(!w.is_pending());
    assert!(!cancel_work_sync(&w), "nothing left to cancel");
    // The cancelled entry is a tombstone until the worker reaches it.
    wq.assert_invariants();
    w.assert_invariants();
    gate.open();
    wq.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(after_runs.load(Ordering::SeqCst), 1);
    // Requeued after the cancel, it runs.
    assert!(wq.queue_work_on(0, &w));
    wq.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(wq.stats().runs_per_cpu, vec![3]);
    wq.assert_invariants();
}

#[test]
fn cancel_work_sync_waits_for_a_running_instance() {
    let wq = Workqueue::create("cancelrun", 1).unwrap();
    let gate = Gate::default();
    let finished = Arc::new(AtomicBool::new(false));
    let (g, f) = (gate.clone(), finished.clone());
    let w = Work::new(move |_| {
        g.wait();
        f.store(true, Ordering::SeqCst);
    });
    wq.queue_work_on(0, &w);
    eventually("item starts", || {
        lock(&wq.shared.cwqs[0].lock).current.is_some()
    });
    thread::scope(|s| {
        let h = s.spawn(|| {
            let was_pending = cancel_work_sync(&w);
            (was_pending, finished.load(Ordering::SeqCst))
        });
        eventually("canceller waits", || waiters(&wq, 0) == 1);
        gate.open();
        let (was_pending, done) = h.join().unwrap();
        assert!(!was_pending, "it was running, not pending");
        assert!(done, "cancel_work_sync returned while the item ran");
    });
}

#[test]
fn cancel_work_sync_stops_an_item_that_requeues_itself() {
    let wq = Arc::new(Workqueue::create("rearm", 2).unwrap());
    let runs = Arc::new(AtomicUsize::new(0));
    let (wq2, r) = (wq.clone(), runs.clone());
    let w = Work::new(move |me| {
        r.fetch_add(1, Ordering::SeqCst);
        // Requeue on the other CPU: this item may run on both at once.
        let next = (cpu::current_id() + 1) % 2;
        wq2.queue_work_on(next, me);
    });
    wq.queue_work_on(0, &w);
    eventually("item rearms a few times", || {
        runs.load(Ordering::SeqCst) > 10
    });
    cancel_work_sync(&w);
    assert!(!w.is_pending());
    let after = runs.load(Ordering::SeqCst);
    wq.flush();
    assert_eq!(
        runs.load(Ordering::SeqCst),
        after,
        "ran after cancel_work_sync"
    );
    assert!(lock(&w.inner.state).wq.is_none(), "clear_wq_data");
    wq.assert_invariants();
    drop(w);
}

#[test]
fn delayed_work_runs_after_its_delay_on_the_cpu_it_was_queued_for() {
    let wq = Workqueue::create("delay", 4).unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let dw = DelayedWork::new(move |_| tx.lock().unwrap().send(cpu::current_id()).unwrap());
    let delay = Duration::from_millis(30);
    let start = Instant::now();
    assert!(wq.queue_delayed_work_on(2, &dw, delay));
    assert!(dw.is_pending());
    assert!(!wq.queue_delayed_work_on(2, &dw, delay), "already pending");
    wq.assert_invariants();
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), 2);
    // A timer never fires early (a correctness bound, not a speed one).
    assert!(start.elapsed() >= delay);
    wq.flush();
    assert!(!dw.is_pending());
    // A zero delay queues at once.
    assert!(wq.queue_delayed_work_on(3, &dw, Duration::ZERO));
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), 3);
}

#[test]
fn cancel_delayed_work_disarms_an_armed_timer_and_reports_a_fired_one() {
    let wq = Workqueue::create("cdw", 2).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let dw = DelayedWork::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    assert!(wq.queue_delayed_work_on(1, &dw, Duration::from_secs(3600)));
    assert!(cancel_delayed_work(&dw), "timer was armed");
    assert!(!dw.is_pending());
    assert!(!cancel_delayed_work(&dw), "nothing armed now");
    wq.assert_invariants();
    assert!(lock(&wq.shared.cwqs[1].lock).timers.is_empty());
    // Fired already: cancel_delayed_work cannot stop it and says so.
    assert!(wq.queue_delayed_work_on(1, &dw, Duration::from_millis(1)));
    eventually("timer fires and the item runs", || {
        runs.load(Ordering::SeqCst) == 1
    });
    assert!(!cancel_delayed_work(&dw));
    // cancel_delayed_work_sync on an armed timer.
    assert!(wq.queue_delayed_work_on(0, &dw, Duration::from_secs(3600)));
    assert!(cancel_delayed_work_sync(&dw));
    assert!(!dw.is_pending());
    wq.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn flush_delayed_work_runs_an_armed_item_now() {
    let wq = Workqueue::create("fdw", 2).unwrap();
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let dw = DelayedWork::new(move |_| {
        r.fetch_add(1, Ordering::SeqCst);
    });
    wq.queue_delayed_work_on(1, &dw, Duration::from_secs(3600));
    flush_delayed_work(&dw);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(wq.stats().runs_per_cpu, vec![0, 1]);
}

#[test]
fn dropping_a_workqueue_runs_what_was_queued_and_disarms_timers() {
    let (w, runs) = counter();
    let dw = DelayedWork::new(|_| {});
    {
        let wq = Workqueue::create("drop", 3).unwrap();
        let gate = Gate::default();
        let (b, started) = blocker(&gate);
        wq.queue_work_on(2, &b);
        eventually("blocker runs", || started.load(Ordering::SeqCst));
        wq.queue_work_on(2, &w);
        wq.queue_delayed_work_on(0, &dw, Duration::from_secs(3600));
        gate.open();
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "destroy_workqueue flushes first"
    );
    assert!(!dw.is_pending(), "an armed timer is disarmed on destroy");
}

#[test]
fn a_single_threaded_queue_runs_every_cpus_work_on_one_thread_in_queue_order() {
    let wq = Workqueue::create_singlethread("single", 4).unwrap();
    assert_eq!(wq.nr_threads(), 1);
    let order = Arc::new(Mutex::new(Vec::new()));
    let works: Vec<Work> = (0..4)
        .map(|i| {
            let o = order.clone();
            Work::new(move |_| {
                o.lock()
                    .unwrap()
                    .push((i, thread::current().name().map(str::to_owned)))
            })
        })
        .collect();
    for (cpu, w) in works.iter().enumerate().rev() {
        wq.queue_work_on(cpu, w);
    }
    wq.flush();
    let got = order.lock().unwrap().clone();
    let want: Vec<_> = (0..4)
        .rev()
        .map(|i| (i, Some("single".to_owned())))
        .collect();
    assert_eq!(got, want);
    assert_eq!(wq.stats().runs_per_cpu, vec![4]);
}

#[test]
fn a_lazy_queue_starts_with_one_thread_and_creates_the_submitting_cpus_on_demand() {
    let wq = Workqueue::create_lazy("lazy", 8, Duration::from_secs(3600)).unwrap();
    assert_eq!(wq.nr_threads(), 1, "created with the core thread alone");
    assert!(wq.cpu_has_thread(0) && !wq.cpu_has_thread(5));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let w = Work::new(move |_| {
        let name = thread::current().name().map(str::to_owned);
        tx.lock().unwrap().send((cpu::current_id(), name)).unwrap();
    });
    cpu::with_cpu(5, || assert!(wq.queue_work(&w)));
    assert_eq!(
        rx.recv_timeout(LIVENESS).unwrap(),
        (5, Some("lazy/5".to_owned()))
    );
    wq.flush();
    assert_eq!(wq.nr_threads(), 2);
    assert!(wq.cpu_has_thread(5));
    // The second time the thread exists: straight to it.
    cpu::with_cpu(5, || assert!(wq.queue_work(&w)));
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap().0, 5);
    wq.flush();
    let st = wq.stats();
    assert_eq!(st.threads_created, 2);
    assert_eq!(st.runs_per_cpu[5], 2);
    assert_eq!(st.runs_per_cpu[0], 0, "moving an item is not running it");
    wq.assert_invariants();
}

#[test]
fn lazy_threads_exit_after_the_idle_period_and_come_back_when_needed() {
    let wq = Workqueue::create_lazy("idle", 6, Duration::from_millis(20)).unwrap();
    let (w, runs) = counter();
    for cpu in [1, 3, 4] {
        wq.queue_work_on(cpu, &w);
        wq.flush();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert!(
        wq.wait_threads(|n| n == 1, LIVENESS),
        "idle threads never exited"
    );
    let st = wq.stats();
    assert_eq!(st.threads_exited_idle, 3);
    assert!(!wq.cpu_has_thread(3));
    assert!(wq.cpu_has_thread(0), "the core thread never exits");
    wq.assert_invariants();
    wq.queue_work_on(3, &w);
    wq.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 4);
    assert_eq!(wq.stats().threads_created, 5);
    assert!(wq.wait_threads(|n| n == 1, LIVENESS));
}

#[test]
fn set_idle_timeout_applies_to_threads_already_idle() {
    let wq = Workqueue::create_lazy("retune", 4, Duration::from_secs(3600)).unwrap();
    let (w, _) = counter();
    wq.queue_work_on(2, &w);
    wq.flush();
    assert_eq!(wq.nr_threads(), 2);
    wq.set_idle_timeout(Duration::from_millis(1));
    assert!(wq.wait_threads(|n| n == 1, LIVENESS));
}

#[test]
fn the_lazy_core_runs_the_work_itself_when_no_thread_may_be_created() {
    let wq = Workqueue::builder("capped", 4)
        .kind(Kind::Lazy)
        .idle_timeout(Duration::from_secs(3600))
        .max_threads(1)
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let w = Work::new(move |_| tx.lock().unwrap().send(cpu::current_id()).unwrap());
    wq.queue_work_on(3, &w);
    assert_eq!(rx.recv_timeout(LIVENESS).unwrap(), 0, "ran on the core CPU");
    wq.flush();
    let st = wq.stats();
    assert_eq!((st.nr_threads, st.ran_on_core), (1, 1));
    assert_eq!(st.runs_per_cpu, vec![1, 0, 0, 0]);
    wq.assert_invariants();
}

#[test]
fn a_lazy_flush_waits_for_work_moved_to_a_new_thread() {
    let wq = Arc::new(Workqueue::create_lazy("lazyflush", 4, Duration::from_secs(3600)).unwrap());
    let gate = Gate::default();
    let (b, started) = blocker(&gate);
    wq.queue_work_on(2, &b);
    eventually("moved item runs on cpu 2", || {
        started.load(Ordering::SeqCst)
    });
    assert_eq!(lock(&wq.shared.cwqs[0].lock).moved_out.len(), 1);
    wq.assert_invariants();
    let flushed = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (wq, f) = (wq.clone(), flushed.clone());
        thread::spawn(move || {
            wq.flush();
            f.store(true, Ordering::SeqCst);
        })
    };
    eventually("flusher waits on the core", || waiters(&wq, 0) == 1);
    assert!(!flushed.load(Ordering::SeqCst));
    gate.open();
    flusher.join().unwrap();
    assert!(lock(&wq.shared.cwqs[0].lock).moved_out.is_empty());
    assert_eq!(lock(&wq.shared.cwqs[2].lock).worker, Slot::Running);
}

#[test]
fn a_panicking_work_function_is_counted_and_the_worker_lives_on() {
    let wq = Workqueue::create("panic", 1).unwrap();
    let boom = Work::new(|_| panic!("work function panics (expected by this test)"));
    let (w, runs) = counter();
    wq.queue_work_on(0, &boom);
    wq.queue_work_on(0, &w);
    wq.flush();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(wq.stats().panicked, 1);
    assert_eq!(wq.nr_threads(), 1);
}

#[test]
fn flushing_a_workqueue_from_its_own_work_item_panics_instead_of_deadlocking() {
    let wq = Arc::new(Workqueue::create("selfflush", 1).unwrap());
    let wq2 = wq.clone();
    let w = Work::new(move |_| wq2.flush());
    wq.queue_work_on(0, &w);
    wq.flush();
    assert_eq!(wq.stats().panicked, 1);
    drop(w);
}

#[test]
fn zero_cpus_is_an_error() {
    let e = Workqueue::create("none", 0).unwrap_err();
    assert_eq!(
        e.to_string(),
        "workqueue none: a workqueue needs at least one CPU"
    );
}

#[test]
#[should_panic(expected = "workqueue range: CPU 4 out of range 0..4")]
fn queue_work_on_a_cpu_out_of_range_panics() {
    let wq = Workqueue::create("range", 4).unwrap();
    let (w, _) = counter();
    wq.queue_work_on(4, &w);
}

#[test]
fn keventd_runs_schedule_work_and_schedule_on_each_cpu() {
    let (w, runs) = counter();
    assert!(schedule_work(&w));
    flush_scheduled_work();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    schedule_on_each_cpu(move |cpu| {
        assert_eq!(cpu::current_id(), cpu);
        s.lock().unwrap().push(cpu);
    });
    let mut got = seen.lock().unwrap().clone();
    got.sort_unstable();
    assert_eq!(got, (0..keventd().nr_cpus()).collect::<Vec<_>>());
}
