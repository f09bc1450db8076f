//! Cross-check against libCacheSim: on the shared cloudPhysicsIO
//! oracleGeneral trace, at cache sizes of 128 MiB to 1 GiB in 128 MiB steps,
//! libCacheSim's own test suite (test/test_evictionAlgo.c, `test_LRU`,
//! `test_FIFO`, `test_Clock`) pins these miss counts and miss bytes. klab's
//! LRU, FIFO and CLOCK must give exactly the same numbers.

use std::path::Path;

use klab_mm_policy::{ObjectRequest, PolicyKind};

const MIB: u64 = 1 << 20;

fn trace() -> Vec<ObjectRequest> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/data/traces/cloudPhysicsIO.oracleGeneral.bin");
    klab_trace::read(&path, None)
        .unwrap()
        .iter()
        .map(|r| ObjectRequest {
            key: r.obj_id,
            size: r.size,
        })
        .collect()
}

#[track_caller]
fn check(kind: PolicyKind, miss_cnt: [u64; 8], miss_byte: [u64; 8]) {
    let reqs = trace();
    for i in 0..8 {
        let size = 128 * MIB * (i as u64 + 1);
        let s = kind.replay(size, &reqs).unwrap();
        assert_eq!(s.requests, 113_872);
        assert_eq!(s.request_bytes, 4_368_040_448);
        assert_eq!(
            (s.misses, s.miss_bytes),
            (miss_cnt[i], miss_byte[i]),
            "{kind} at {} MiB",
            size / MIB
        );
    }
}

#[test]
fn lru_matches_libcachesim() {
    check(
        PolicyKind::Lru,
        [93374, 89783, 83572, 81722, 72494, 72104, 71972, 71704],
        [
            4214303232, 4061242368, 3778040320, 3660569600, 3100927488, 3078128640, 3075403776,
            3061662720,
        ],
    );
}

#[test]
fn fifo_matches_libcachesim() {
    check(
        PolicyKind::Fifo,
        [93403, 89386, 84387, 84025, 72498, 72228, 72182, 72140],
        [
            4213112832, 4052646400, 3829170176, 3807412736, 3093146112, 3079525888, 3079210496,
            3077547520,
        ],
    );
}

#[test]
fn clock_matches_libcachesim() {
    check(
        PolicyKind::Clock,
        [93313, 89775, 83411, 81328, 74815, 72283, 71927, 64456],
        [
            4213887488, 4064512000, 3762650624, 3644467200, 3256760832, 3091688448, 3074241024,
            2697378816,
        ],
    );
}
