//! Object-mode replay: a request stream through a [`Cache`], counting as
//! libCacheSim counts (every request is a hit or a miss; a miss of an object
//! larger than the cache is still a miss).

use crate::Cache;

/// One request in object mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectRequest {
    /// The object.
    pub key: u64,
    /// Its size (1 for every request when sizes are ignored).
    pub size: u32,
}

/// What a replay counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// Requests replayed.
    pub requests: u64,
    /// Requests that hit.
    pub hits: u64,
    /// Requests that missed.
    pub misses: u64,
    /// Bytes requested.
    pub request_bytes: u64,
    /// Bytes of the requests that missed.
    pub miss_bytes: u64,
    /// Objects evicted.
    pub evictions: u64,
}

impl SimStats {
    /// Misses per request (0 for an empty trace).
    pub fn miss_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.misses as f64 / self.requests as f64
        }
    }

    /// Hits per request.
    pub fn hit_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.hits as f64 / self.requests as f64
        }
    }
}

/// Replays `requests` through `cache`.
pub fn replay<C: Cache + ?Sized>(cache: &mut C, requests: &[ObjectRequest]) -> SimStats {
    let mut s = SimStats::default();
    let before = cache.evictions();
    for r in requests {
        let hit = cache.access(r.key, r.size);
        s.hits += u64::from(hit);
        if !hit {
            s.miss_bytes += u64::from(r.size);
        }
        s.request_bytes += u64::from(r.size);
    }
    s.requests = requests.len() as u64;
    s.misses = s.requests - s.hits;
    s.evictions = cache.evictions() - before;
    s
}
