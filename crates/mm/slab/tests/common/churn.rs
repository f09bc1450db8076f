//! The churn of `global_churn` and `global_churn_slab`, run on whatever
//! allocator the including test installs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Aborts the process with a message if `done` is not set within
/// `limit`.
fn watchdog(done: Arc<AtomicBool>, limit: Duration) {
    std::thread::spawn(move || {
        let start = Instant::now();
        while !done.load(Ordering::Relaxed) {
            if start.elapsed() > limit {
                eprintln!("global churn: no end after {limit:?}: the allocator hung");
                std::process::abort();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
}

fn xorshift(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// The churn: 48 rounds of two workers and a batch-freeing thread.
pub(crate) fn threads_come_and_go_while_they_free_each_others_blocks() {
    let done = Arc::new(AtomicBool::new(false));
    watchdog(done.clone(), Duration::from_secs(120));
    // Blocks handed between threads, across rounds (so many frees land on
    // slabs of threads that have exited).
    let exchange: Arc<Mutex<Vec<Vec<u8>>>> = Arc::new(Mutex::new(Vec::new()));
    let mut total = 0usize;
    for round in 0..48u64 {
        // A batch of small blocks allocated here, freed by worker 0 just
        // before it exits: it leaves owning empty slabs.
        let size = 8 * (1 + round as usize % 4);
        let batch: Vec<Box<[u8]>> = (0..128 * (1 + (round as usize / 4) % 6))
            .map(|i| vec![(i % 251) as u8; size].into_boxed_slice())
            .collect();
        let workers: Vec<_> = (0..2u64)
            .map(|k| {
                let exchange = exchange.clone();
                std::thread::spawn(move || {
                    let mut s = round * 131 + k + 1;
                    let mut kept: Vec<Vec<u8>> = Vec::new();
                    let mut sum = 0usize;
                    for i in 0..2000 {
                        let r = xorshift(&mut s);
                        let len =
                            1 + (r >> 8) as usize % if r.is_multiple_of(16) { 20_000 } else { 256 };
                        let v = vec![(len % 251) as u8; len];
                        if r & 1 == 1 {
                            let mut x = exchange.lock().unwrap();
                            if x.len() > 512 {
                                let at = (r >> 1) as usize % x.len();
                                let old = x.swap_remove(at);
                                assert!(old.iter().all(|&b| b == (old.len() % 251) as u8));
                                sum += old.len();
                            }
                            x.push(v);
                        } else if kept.len() < 64 {
                            kept.push(v);
                        } else {
                            let old = std::mem::replace(&mut kept[i % 64], v);
                            assert!(old.iter().all(|&b| b == (old.len() % 251) as u8));
                            sum += old.len();
                        }
                    }
                    sum
                })
            })
            .collect();
        for w in workers {
            total += w.join().expect("worker panicked");
        }
        // The batch's blocks, checked and freed on a thread of their own
        // that exits right after.
        std::thread::spawn(move || {
            for (i, b) in batch.into_iter().enumerate() {
                assert!(b.iter().all(|&x| x == (i % 251) as u8));
            }
        })
        .join()
        .expect("batch freeing thread panicked");
    }
    let left = std::mem::take(&mut *exchange.lock().unwrap());
    total += left.iter().map(Vec::len).sum::<usize>();
    assert!(total > 0);
    done.store(true, Ordering::Relaxed);
}
