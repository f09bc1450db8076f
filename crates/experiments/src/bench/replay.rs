//! `klab bench replay`: klab's LRU against the `lru` crate's `LruCache`,
//! both counting objects, timed in the same process on the same requests;
//! and requests per second through each of klab's textbook policies
//! counting bytes.
//!
//! The workload is generated: 3,000,000 requests (300,000 under `--quick`)
//! over 100,000 objects drawn from a Zipf(alpha) popularity distribution,
//! with sizes from 512 bytes to 64 KiB, seeded. The object-counting caches
//! hold a quarter of the objects, the byte-counting ones a quarter of the
//! objects' bytes.
//!
//! The comparison runs at Zipf exponents 0 (uniform), 0.6, 0.9 and 1.2 (and
//! at the bench's own, if it is another): the higher the exponent, the more
//! requests hit. The two sides take turns, `repetitions` turns each, and
//! the best turn of each counts. A turn is timed by the thread's CPU time
//! where the kernel exposes it, else by wall time (`bench::timing`). Both
//! caches are LRU of the same capacity on the same requests, so they must
//! count the same hits; where they do not, they did different work, and the
//! verdict is null.
//!
//! The verdict compares the two measured rates at the bench's exponent
//! ([`CLAIMED_ALPHA`] for `klab bench replay`) with [`MIN_SPEEDUP`]; no
//! published figure enters it.
//!
//! # When the claim fails
//!
//! When hits dominate. A hit costs klab's LRU a probe of its `FxHashMap`
//! and a move to the front of its arena list, the `lru` crate a probe of its
//! hashbrown map and a move of a boxed node; a miss costs klab an arena
//! slot where the crate unlinks and relinks a node. Measured on a 2-core
//! machine shared with other builds (thread CPU time, full sizes), klab
//! over the crate was 1.4x to 1.7x at exponent 0 (a quarter of the requests
//! hit), 1.2x at 0.6, 0.92x to 1.06x at 0.9 (74% hit) and 0.69x to 0.78x at
//! 1.2 (95% hit). `ReplayBench { alpha: 1.2 }` is the configuration in
//! which klab's LRU does not beat its peer; a test runs it end to end.

use std::num::NonZeroUsize;

use klab_mm_policy::{ObjectRequest, PolicyKind};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::timing;
use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

/// The benchmark: the LRU comparison judged at Zipf exponent `alpha`.
pub struct ReplayBench {
    /// The Zipf exponent of the workload the verdict is judged on.
    pub alpha: f64,
}

/// The exponent `klab bench replay` is judged at.
pub const CLAIMED_ALPHA: f64 = 0.9;

/// The exponents every run compares the two LRUs at.
pub const SWEEP: [f64; 4] = [0.0, 0.6, CLAIMED_ALPHA, 1.2];

/// The claim holds when klab's LRU replays at least this many times the
/// `lru` crate's requests per second.
pub const MIN_SPEEDUP: f64 = 1.0;

/// Distinct objects in the workload.
const OBJECTS: usize = 100_000;

/// The caches hold `1 / CACHE_FRACTION` of the objects (or of their bytes).
const CACHE_FRACTION: usize = 4;

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

/// The best turn of one cache over a request stream.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Requests per second of the fastest turn.
    pub requests_per_sec: f64,
    /// Hits the cache counted.
    pub hits: u64,
}

/// The two LRUs on one workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LruPair {
    /// The workload's Zipf exponent.
    pub alpha: f64,
    /// The `lru` crate's `LruCache`.
    pub peer: Rate,
    /// klab's `Lru`.
    pub klab: Rate,
}

impl LruPair {
    /// klab's rate over the crate's.
    pub fn speedup(&self) -> f64 {
        self.klab.requests_per_sec / self.peer.requests_per_sec
    }
}

/// One of klab's textbook policies counting bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRate {
    /// The policy's name.
    pub policy: String,
    /// Its best turn.
    pub rate: Rate,
}

/// What the bench measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplayData {
    /// Requests per workload.
    pub requests: u64,
    /// Distinct objects.
    pub objects: u64,
    /// The exponent the verdict is judged at.
    pub alpha: f64,
    /// Capacity of the object-counting caches.
    pub capacity_objects: u64,
    /// Capacity of the byte-counting caches (at `alpha`).
    pub capacity_bytes: u64,
    /// Turns per cache.
    pub repetitions: u64,
    /// True when every turn was timed by the thread's CPU time.
    pub cpu_time: bool,
    /// The LRU comparison, one per exponent.
    pub pairs: Vec<LruPair>,
    /// klab's textbook policies counting bytes, at `alpha`.
    pub policies: Vec<PolicyRate>,
    /// Logical CPUs of the host.
    pub cpus: usize,
}

/// Times `f` once; returns its hits and seconds (CPU when known).
fn turn(f: impl FnOnce() -> u64, cpu_time: &mut bool) -> (u64, f64) {
    let (hits, e) = timing::time(f);
    *cpu_time &= e.cpu_s.is_some();
    (hits, e.best_known_s())
}

/// The `lru` crate's `LruCache` of `capacity` objects over `reqs`; hits.
fn lru_crate(reqs: &[ObjectRequest], capacity: usize) -> u64 {
    let mut c = lru::LruCache::new(NonZeroUsize::new(capacity).expect("non-zero capacity"));
    let mut hits = 0u64;
    for q in reqs {
        if c.get(&q.key).is_some() {
            hits += 1;
        } else {
            c.put(q.key, ());
        }
    }
    hits
}

/// The two LRUs over `reqs` (every size 1), taking turns.
fn lru_pair(alpha: f64, reqs: &[ObjectRequest], reps: usize, cpu_time: &mut bool) -> LruPair {
    let capacity = OBJECTS / CACHE_FRACTION;
    let (mut peer, mut klab) = ((f64::INFINITY, 0), (f64::INFINITY, 0));
    for _ in 0..reps {
        let (hits, s) = turn(|| lru_crate(reqs, capacity), cpu_time);
        peer = (peer.0.min(s), hits);
        let (hits, s) = turn(
            || {
                PolicyKind::Lru
                    .replay(capacity as u64, reqs)
                    .expect("textbook policy")
                    .hits
            },
            cpu_time,
        );
        klab = (klab.0.min(s), hits);
    }
    let rate = |(s, hits): (f64, u64)| Rate {
        requests_per_sec: reqs.len() as f64 / s,
        hits,
    };
    LruPair {
        alpha,
        peer: rate(peer),
        klab: rate(klab),
    }
}

/// Bytes of the distinct objects requested.
fn distinct_bytes(reqs: &[ObjectRequest]) -> u64 {
    let mut seen = std::collections::BTreeMap::new();
    for r in reqs {
        seen.insert(r.key, u64::from(r.size));
    }
    seen.values().sum()
}

/// The textbook policies, in the order reports list them.
const POLICIES: [PolicyKind; 5] = [
    PolicyKind::Lru,
    PolicyKind::Fifo,
    PolicyKind::Clock,
    PolicyKind::TwoQ,
    PolicyKind::Arc,
];

impl ReplayBench {
    /// The exponents this bench compares at: [`SWEEP`], and its own.
    fn alphas(&self) -> Vec<f64> {
        let mut v = SWEEP.to_vec();
        if !v.contains(&self.alpha) {
            v.push(self.alpha);
            v.sort_by(f64::total_cmp);
        }
        v
    }
}

impl Experiment for ReplayBench {
    type Data = ReplayData;

    const ID: Identity = Identity {
        name: "replay",
        seed_page: "002_e13a334c23eac663.txt",
        claim: "klab's LRU replays object requests at least as fast as the lru crate's LruCache, \
                timed in the same process on the same Zipf(0.9) requests",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<ReplayData, ExperimentError> {
        let count = ctx.size(3_000_000, 300_000);
        let reps = ctx.size(5, 2);
        let alphas = self.alphas();
        let mut cpu_time = true;
        ctx.progress
            .begin("replay bench", (alphas.len() + POLICIES.len()) as u64);
        let mut pairs = Vec::new();
        for &alpha in &alphas {
            let unit: Vec<ObjectRequest> = zipf_requests(OBJECTS, count, alpha, &mut ctx.rng(1))
                .into_iter()
                .map(|r| ObjectRequest { size: 1, ..r })
                .collect();
            pairs.push(lru_pair(alpha, &unit, reps, &mut cpu_time));
            ctx.progress.advance(1);
        }
        let reqs = zipf_requests(OBJECTS, count, self.alpha, &mut ctx.rng(1));
        let capacity = distinct_bytes(&reqs) / CACHE_FRACTION as u64;
        let mut policies = Vec::new();
        for kind in POLICIES {
            let (mut best, mut hits) = (f64::INFINITY, 0);
            for _ in 0..reps {
                let (h, s) = turn(
                    || kind.replay(capacity, &reqs).expect("textbook policy").hits,
                    &mut cpu_time,
                );
                (best, hits) = (best.min(s), h);
            }
            policies.push(PolicyRate {
                policy: kind.name().to_owned(),
                rate: Rate {
                    requests_per_sec: count as f64 / best,
                    hits,
                },
            });
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        Ok(ReplayData {
            requests: count as u64,
            objects: OBJECTS as u64,
            alpha: self.alpha,
            capacity_objects: (OBJECTS / CACHE_FRACTION) as u64,
            capacity_bytes: capacity,
            repetitions: reps as u64,
            cpu_time,
            pairs,
            policies,
            cpus: timing::host_cpus(),
        })
    }

    fn judge(&self, d: &ReplayData) -> Verdict {
        let note = format!(
            "Timed by {} in one process, the two caches taking turns; other load on the machine \
             moves both numbers.",
            timed_by(d)
        );
        let Some(p) = d.pairs.iter().find(|p| p.alpha == d.alpha) else {
            return Verdict {
                holds: None,
                measured: format!("no LRU comparison at Zipf({})", d.alpha),
                note,
            };
        };
        if p.peer.hits != p.klab.hits {
            return Verdict {
                holds: None,
                measured: format!(
                    "at Zipf({}) klab's LRU counted {} hits and the lru crate {}: not the same \
                     work, so their rates do not compare",
                    p.alpha, p.klab.hits, p.peer.hits
                ),
                note,
            };
        }
        let speedup = p.speedup();
        Verdict {
            holds: Some(speedup >= MIN_SPEEDUP),
            measured: format!(
                "at Zipf({}) ({:.1}% hits): klab's LRU {:.1}M requests/s, the lru crate {:.1}M: \
                 {speedup:.2}x (target >= {MIN_SPEEDUP})",
                p.alpha,
                100.0 * p.klab.hits as f64 / d.requests as f64,
                p.klab.requests_per_sec / 1e6,
                p.peer.requests_per_sec / 1e6,
            ),
            note,
        }
    }

    fn report(&self, d: &ReplayData, _: &Verdict, r: &mut Report) {
        r.config("requests", d.requests)
            .config("objects", d.objects)
            .config("zipf_alpha", d.alpha)
            .config("capacity_objects", d.capacity_objects)
            .config("capacity_bytes", d.capacity_bytes)
            .config("repetitions", d.repetitions)
            .config("timed_by", timed_by(d))
            .config("threshold.min_speedup", MIN_SPEEDUP);
        let mut t = Table::new(
            "klab's LRU against the lru crate, counting objects (best turn of each)",
            &[
                "zipf alpha",
                "hit ratio",
                "lru crate (requests/s)",
                "klab lru (requests/s)",
                "klab / lru crate",
                "same hits",
            ],
        );
        for p in &d.pairs {
            t.row(cells![
                p.alpha,
                p.klab.hits as f64 / d.requests as f64,
                p.peer.requests_per_sec,
                p.klab.requests_per_sec,
                p.speedup(),
                p.klab.hits == p.peer.hits
            ]);
        }
        r.table(t);
        let mut t = Table::new(
            &format!(
                "klab's policies counting bytes, Zipf({}), a quarter of the bytes cached",
                d.alpha
            ),
            &["policy", "requests/s", "hit ratio"],
        );
        for p in &d.policies {
            t.row(cells![
                p.policy.clone(),
                p.rate.requests_per_sec,
                p.rate.hits as f64 / d.requests as f64
            ]);
        }
        r.table(t);
        let mut s = Series::new(
            "klab's LRU over the lru crate, requests per second, against the Zipf exponent",
            Axis::linear("zipf alpha", ""),
            Axis::linear("klab / lru crate", ""),
        );
        s.line(
            "klab / lru crate",
            d.pairs.iter().map(|p| [p.alpha, p.speedup()]).collect(),
        );
        s.line(
            "target",
            d.pairs.iter().map(|p| [p.alpha, MIN_SPEEDUP]).collect(),
        );
        r.series(s);
        r.host = Host::measured(vec![
            format!("{} logical CPUs", d.cpus),
            format!("timed by {}", timed_by(d)),
        ]);
    }
}

/// What the turns were timed by.
fn timed_by(d: &ReplayData) -> &'static str {
    if d.cpu_time {
        "the thread's CPU time"
    } else {
        "wall time"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;

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

    fn rate(requests_per_sec: f64, hits: u64) -> Rate {
        Rate {
            requests_per_sec,
            hits,
        }
    }

    fn data(peer: Rate, klab: Rate) -> ReplayData {
        ReplayData {
            requests: 1000,
            objects: 100,
            alpha: CLAIMED_ALPHA,
            capacity_objects: 25,
            capacity_bytes: 1 << 20,
            repetitions: 2,
            cpu_time: true,
            pairs: vec![LruPair {
                alpha: CLAIMED_ALPHA,
                peer,
                klab,
            }],
            policies: Vec::new(),
            cpus: 2,
        }
    }

    const CLAIMED: ReplayBench = ReplayBench {
        alpha: CLAIMED_ALPHA,
    };

    #[test]
    fn slower_than_the_crate_fails_and_faster_holds() {
        let slow = CLAIMED.judge(&data(rate(30e6, 700), rate(21e6, 700)));
        assert_eq!(slow.holds, Some(false), "{}", slow.measured);
        assert!(slow.measured.contains("0.70x"), "{}", slow.measured);
        let fast = CLAIMED.judge(&data(rate(30e6, 700), rate(36e6, 700)));
        assert_eq!(fast.holds, Some(true), "{}", fast.measured);
        // Equal rates meet a target of 1.0.
        let tie = CLAIMED.judge(&data(rate(30e6, 700), rate(30e6, 700)));
        assert_eq!(tie.holds, Some(MIN_SPEEDUP <= 1.0));
    }

    #[test]
    fn different_hits_or_no_comparison_is_null() {
        let v = CLAIMED.judge(&data(rate(30e6, 700), rate(90e6, 699)));
        assert_eq!(v.holds, None);
        assert!(v.measured.contains("699 hits"), "{}", v.measured);
        let mut d = data(rate(30e6, 700), rate(90e6, 700));
        d.alpha = 0.5;
        assert_eq!(CLAIMED.judge(&d).holds, None);
    }

    #[test]
    fn the_sweep_includes_the_judged_exponent() {
        assert_eq!(CLAIMED.alphas(), SWEEP.to_vec());
        assert_eq!(
            ReplayBench { alpha: 1.5 }.alphas(),
            [0.0, 0.6, 0.9, 1.2, 1.5]
        );
    }

    /// The configuration of "When the claim fails", run for real: the
    /// verdict is judged at Zipf(1.2) from the two rates measured there
    /// (which one wins is a timing, so the test checks that the verdict
    /// follows the measured rates, not which way they fell).
    #[test]
    fn skewed_workload_runs_end_to_end() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let bench = ReplayBench { alpha: 1.2 };
        let d = bench.measure(&ctx).unwrap();
        let p = d.pairs.iter().find(|p| p.alpha == 1.2).unwrap();
        // Both are LRU of the same capacity: the same hits, most requests.
        assert_eq!(p.klab.hits, p.peer.hits);
        assert!(p.klab.hits > d.requests * 9 / 10, "{} hits", p.klab.hits);
        let v = bench.judge(&d);
        assert_eq!(v.holds, Some(p.speedup() >= MIN_SPEEDUP), "{}", v.measured);
        assert!(v.measured.starts_with("at Zipf(1.2)"), "{}", v.measured);
        // The report says where it was judged and against what.
        let mut r = klab_lab::Report::new("replay", "", "");
        bench.report(&d, &v, &mut r);
        assert_eq!(r.config["zipf_alpha"], klab_lab::report::Cell::Float(1.2));
        assert_eq!(
            r.config["threshold.min_speedup"],
            klab_lab::report::Cell::Float(MIN_SPEEDUP)
        );
        assert_eq!(r.tables[0].rows.len(), SWEEP.len());
        assert_eq!(r.tables[1].rows.len(), POLICIES.len());
    }
}
