//! `klab bench replay`: requests per second through the textbook policies
//! in object mode, against the `lru` crate's LruCache in the same process,
//! and against the 20 million requests per second that libCacheSim
//! publishes for its simulator.
//!
//! The workload is generated: 3,000,000 requests (300,000 under `--quick`)
//! over 100,000 objects drawn from a Zipf(0.9) popularity distribution,
//! with sizes from 512 bytes to 64 KiB, seeded. The cache holds a quarter
//! of the objects' bytes (object-counting caches: a quarter of the
//! objects), so most requests hit and misses still evict.

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Instant;

use klab_mm_policy::{ObjectRequest, PolicyKind};
use rand::Rng as _;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// The benchmark.
pub struct ReplayBench;

/// libCacheSim's published simulator throughput (its README: "over 20M
/// requests/sec").
pub const TARGET_RPS: f64 = 20e6;

/// A seeded Zipf(`alpha`) sample over `n` ranks, by inverse transform on
/// the precomputed cumulative distribution.
fn zipf_requests(
    n: usize,
    count: usize,
    alpha: f64,
    rng: &mut klab_model::rng::Rng,
) -> Vec<ObjectRequest> {
    let mut cdf = Vec::with_capacity(n);
    let mut acc = 0.0;
    for k in 1..=n {
        acc += 1.0 / (k as f64).powf(alpha);
        cdf.push(acc);
    }
    let sizes: Vec<u32> = (0..n).map(|_| 512 << rng.random_range(0..8u32)).collect();
    (0..count)
        .map(|_| {
            let u = rng.random::<f64>() * acc;
            let rank = cdf.partition_point(|&c| c < u).min(n - 1);
            // Scatter ranks over the key space so hash order is not rank order.
            let key = (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            ObjectRequest {
                key,
                size: sizes[rank],
            }
        })
        .collect()
}

/// Best of `reps` timings of `f`, in requests per second.
fn rps(count: usize, reps: usize, mut f: impl FnMut() -> u64) -> (f64, u64) {
    let mut best = f64::INFINITY;
    let mut hits = 0;
    for _ in 0..reps {
        let t = Instant::now();
        hits = black_box(f());
        best = best.min(t.elapsed().as_secs_f64());
    }
    (count as f64 / best, hits)
}

impl ReplayBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "replay",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "object-mode replay runs at least 20 million requests per second for LRU on one core",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for ReplayBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let objects = 100_000;
        let count = ctx.size(3_000_000, 300_000);
        let reps = ctx.size(5, 2);
        let mut rng = ctx.rng(1);
        let reqs = zipf_requests(objects, count, 0.9, &mut rng);
        let unit: Vec<ObjectRequest> = reqs
            .iter()
            .map(|r| ObjectRequest {
                key: r.key,
                size: 1,
            })
            .collect();
        let total_bytes: u64 = {
            let mut seen = std::collections::BTreeMap::new();
            for r in &reqs {
                seen.insert(r.key, u64::from(r.size));
            }
            seen.values().sum()
        };
        let capacity = total_bytes / 4;
        let mut r = self.blank_report(ctx);
        r.config("requests", count as u64)
            .config("objects", objects as u64)
            .config("zipf_alpha", 0.9)
            .config("capacity_bytes", capacity)
            .config("repetitions", reps as u64);

        let mut t = Table::new(
            "requests per second, one core (best of the repetitions)",
            &[
                "cache",
                "requests/s",
                "hit ratio",
                "vs 20M target",
                "vs lru crate",
            ],
        );
        ctx.progress.begin("replay bench", 7);
        let (peer, peer_hits) = rps(count, reps, || {
            let mut c = lru::LruCache::new(NonZeroUsize::new(objects / 4).expect("non-zero"));
            let mut hits = 0u64;
            for q in &unit {
                if c.get(&q.key).is_some() {
                    hits += 1;
                } else {
                    c.put(q.key, ());
                }
            }
            hits
        });
        ctx.progress.advance(1);
        let (klab_unit, klab_unit_hits) = rps(count, reps, || {
            PolicyKind::Lru
                .replay((objects / 4) as u64, &unit)
                .expect("textbook policy")
                .hits
        });
        ctx.progress.advance(1);
        t.row(cells![
            "lru crate (objects)",
            peer,
            peer_hits as f64 / count as f64,
            peer / TARGET_RPS,
            1.0
        ]);
        t.row(cells![
            "klab lru (objects)",
            klab_unit,
            klab_unit_hits as f64 / count as f64,
            klab_unit / TARGET_RPS,
            klab_unit / peer
        ]);
        let mut bars = Vec::new();
        let mut lru_bytes_rps = 0.0;
        for (i, kind) in [
            PolicyKind::Lru,
            PolicyKind::Fifo,
            PolicyKind::Clock,
            PolicyKind::TwoQ,
            PolicyKind::Arc,
        ]
        .into_iter()
        .enumerate()
        {
            let (v, hits) = rps(count, reps, || {
                kind.replay(capacity, &reqs).expect("textbook policy").hits
            });
            if kind == PolicyKind::Lru {
                lru_bytes_rps = v;
            }
            t.row(cells![
                format!("klab {kind} (bytes)"),
                v,
                hits as f64 / count as f64,
                v / TARGET_RPS,
                Option::<f64>::None
            ]);
            bars.push([i as f64, v / 1e6]);
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        r.table(t);
        let mut s = Series::new(
            "millions of requests per second by policy (0 lru, 1 fifo, 2 clock, 3 2q, 4 arc)",
            Axis::linear("policy", ""),
            Axis::linear("requests per second", "millions"),
        )
        .scatter();
        s.line("klab", bars);
        r.series(s);
        r.verdict = Verdict {
            holds: Some(lru_bytes_rps >= TARGET_RPS),
            measured: format!(
                "LRU {:.1}M requests/s in bytes, {:.1}M counting objects ({:.2}x the lru crate)",
                lru_bytes_rps / 1e6,
                klab_unit / 1e6,
                klab_unit / peer
            ),
            note: "Wall-clock timing on this machine; other load on it lowers every number.".into(),
        };
        r.host = Host::measured(vec![format!(
            "{} logical CPUs",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        )]);
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_favours_low_ranks() {
        let mut rng = klab_model::rng::seeded(1, 1);
        let reqs = zipf_requests(1000, 20_000, 0.9, &mut rng);
        let top = 0u64.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let rank_1000 = 999u64.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let c = |k| reqs.iter().filter(|r| r.key == k).count();
        assert!(
            c(top) > 50 * c(rank_1000).max(1),
            "{} vs {}",
            c(top),
            c(rank_1000)
        );
        assert!(reqs.iter().all(|r| (512..=65536).contains(&r.size)));
    }
}
