//! Stress tests: threads queue, cancel and flush the same items at once,
//! on every kind of workqueue, and the books must balance exactly.
//!
//! Every `queue_work*` that returns true creates one instance of an item.
//! An instance either runs once or is removed by exactly one cancel that
//! returns true. So, for every item, once everything has settled:
//!
//! ```text
//!   runs == successful queues - successful cancels
//! ```
//!
//! A lost item (queued, never run, never cancelled) makes the right side
//! larger; an item run twice for one queueing makes the left side larger.
//! Each thread also keeps a private item it queues and then flushes, and
//! checks it ran: `flush` waits for everything queued before it, whatever
//! the other threads do meanwhile.
//!
//! Bounded in operations, not in time; no timing is asserted. The random
//! choices come from a fixed-seed xorshift per thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use klab_workqueue::{
    DelayedWork, Kind, Work, Workqueue, cancel_delayed_work, cancel_delayed_work_sync,
    cancel_work_sync, cpu, flush_work,
};

const THREADS: usize = 4;
const OPS: usize = 10_000;
const ITEMS: usize = 12;
const CPUS: usize = 4;

struct Xorshift(u64);

impl Xorshift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[derive(Default)]
struct Books {
    queued: AtomicUsize,
    cancelled: AtomicUsize,
    runs: AtomicUsize,
}

/// Item `i`: a delayed work item (it can be queued directly or through its
/// timer); items with odd `i` queue themselves again while a shared budget
/// lasts, so cancels race with self-requeueing too.
fn item(
    wq: &Arc<Workqueue>,
    books: &Arc<Books>,
    i: usize,
    budget: &Arc<AtomicUsize>,
) -> DelayedWork {
    let (wq, books, budget) = (Arc::downgrade(wq), books.clone(), budget.clone());
    DelayedWork::new(move |me| {
        books.runs.fetch_add(1, Ordering::SeqCst);
        if i % 2 == 1
            && budget
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |b| b.checked_sub(1))
                .is_ok()
            && let Some(wq) = wq.upgrade()
            && wq.queue_work_on((cpu::current_id() + 1) % CPUS, me)
        {
            books.queued.fetch_add(1, Ordering::SeqCst);
        }
    })
}

fn hammer(wq: Workqueue) {
    let wq = Arc::new(wq);
    let books: Vec<Arc<Books>> = (0..ITEMS).map(|_| Arc::new(Books::default())).collect();
    let budget = Arc::new(AtomicUsize::new(OPS));
    let items: Vec<DelayedWork> = (0..ITEMS)
        .map(|i| item(&wq, &books[i], i, &budget))
        .collect();
    thread::scope(|s| {
        for t in 0..THREADS {
            let (wq, books, items) = (&wq, &books, &items);
            s.spawn(move || {
                cpu::set_current_cpu(t);
                let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
                let mine_runs = Arc::new(AtomicUsize::new(0));
                let m = mine_runs.clone();
                let mine = Work::new(move |_| {
                    m.fetch_add(1, Ordering::SeqCst);
                });
                let mut mine_queued = 0;
                for op in 0..OPS {
                    let i = rng.below(ITEMS);
                    let (dw, b) = (&items[i], &books[i]);
                    let ok = match rng.below(9) {
                        0 | 1 => wq.queue_work_on(rng.below(CPUS), dw.work()),
                        2 => wq.queue_work(dw.work()),
                        3 => wq.queue_delayed_work_on(
                            rng.below(CPUS),
                            dw,
                            Duration::from_micros(rng.below(500) as u64),
                        ),
                        4 => {
                            if cancel_work_sync(dw.work()) {
                                b.cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                            false
                        }
                        5 => {
                            if cancel_delayed_work(dw) {
                                b.cancelled.fetch_add(1, Ordering::SeqCst);
                            }
                            false
                        }
                        6 => {
                            flush_work(dw.work());
                            false
                        }
                        7 if op % 64 == 0 => {
                            wq.flush();
                            false
                        }
                        _ => {
                            assert!(wq.queue_work_on(rng.below(CPUS), &mine));
                            mine_queued += 1;
                            assert!(
                                flush_work(&mine)
                                    || mine_runs.load(Ordering::SeqCst) == mine_queued
                            );
                            assert_eq!(mine_runs.load(Ordering::SeqCst), mine_queued);
                            false
                        }
                    };
                    if ok {
                        b.queued.fetch_add(1, Ordering::SeqCst);
                    }
                }
                wq.flush();
                assert_eq!(mine_runs.load(Ordering::SeqCst), mine_queued);
            });
        }
    });
    // Settle: disarm the timers still armed (each such cancel removes an
    // instance), then wait for everything queued.
    for (dw, b) in items.iter().zip(&books) {
        if cancel_delayed_work_sync(dw) {
            b.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
    wq.flush();
    wq.assert_invariants();
    for (i, (dw, b)) in items.iter().zip(&books).enumerate() {
        let (q, c, r) = (
            b.queued.load(Ordering::SeqCst),
            b.cancelled.load(Ordering::SeqCst),
            b.runs.load(Ordering::SeqCst),
        );
        assert_eq!(r, q - c, "item {i}: {q} queued, {c} cancelled, {r} runs");
        assert!(!dw.is_pending(), "item {i} still pending");
        dw.work().assert_invariants();
    }
    let st = wq.stats();
    assert_eq!(st.panicked, 0);
    let total_runs: u64 = st.runs_per_cpu.iter().sum();
    let item_runs: usize = books.iter().map(|b| b.runs.load(Ordering::SeqCst)).sum();
    assert!(total_runs as usize >= item_runs);
}

#[test]
fn per_cpu_queue_balances_its_books_under_racing_queue_cancel_flush() {
    hammer(Workqueue::create("stress", CPUS).unwrap());
}

#[test]
fn single_threaded_queue_balances_its_books_under_racing_queue_cancel_flush() {
    hammer(Workqueue::create_singlethread("stress", CPUS).unwrap());
}

#[test]
fn lazy_queue_balances_its_books_while_its_threads_come_and_go() {
    // A 200 µs idle period makes threads exit and get recreated all the
    // time, so moves through the core race with idle exits.
    let wq = Workqueue::builder("stress", CPUS)
        .kind(Kind::Lazy)
        .idle_timeout(Duration::from_micros(200))
        .build()
        .unwrap();
    hammer(wq);
}

#[test]
fn lazy_queue_that_may_not_create_threads_balances_its_books() {
    let wq = Workqueue::builder("stress", CPUS)
        .kind(Kind::Lazy)
        .idle_timeout(Duration::from_micros(200))
        .max_threads(2)
        .build()
        .unwrap();
    hammer(wq);
}
