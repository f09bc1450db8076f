//! `klab replay` reads its trace as a stream: a trace four times larger
//! than the address space the process may have replays with the counts an
//! independent replay of the same requests gives, and a small trace
//! replays with the counts of the in-memory path.
//!
//! The limit is `RLIMIT_AS` (`ulimit -v` in the shell that execs klab), so
//! the test needs no root and no cgroup: it holds for every allocation
//! and mapping of the child. That the limit bites is checked too: OPT,
//! whose pre-pass keeps 8 bytes per request, cannot run under it on the
//! same trace.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use klab_mm_policy::{Cache, Lru, ObjectRequest, PolicyKind};

/// The child's address-space limit.
const LIMIT: u64 = 96 << 20;
/// The trace: four times the limit, of 24-byte oracleGeneral records.
const RECORDS: u64 = 4 * LIMIT / 24;
/// Distinct objects.
const KEYS: u64 = 300_000;

/// The `i`-th request: a key skewed towards small numbers and a size of
/// 512 bytes to 4 KiB, from a fixed 64-bit mix (no generator state).
fn request(i: u64) -> ObjectRequest {
    let mut z = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z ^= z >> 32;
    // The product of two uniforms: small keys come up more often.
    let a = z & 0xffff;
    let b = (z >> 16) & 0xffff;
    let key = a * b % KEYS;
    ObjectRequest {
        key,
        size: 512 << ((z >> 40) % 4),
    }
}

fn write_trace(path: &Path, records: u64) {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).unwrap());
    for i in 0..records {
        let r = request(i);
        w.write_all(&(i as u32 / 1000).to_le_bytes()).unwrap();
        w.write_all(&r.key.to_le_bytes()).unwrap();
        w.write_all(&r.size.to_le_bytes()).unwrap();
        w.write_all(&(-1i64).to_le_bytes()).unwrap();
    }
    w.into_inner().unwrap().sync_all().unwrap();
}

/// `klab replay TRACE --memory 16MiB --policy P --json -` under the limit:
/// (exit status, requests, hits, misses, evictions) or the error text.
fn replay_limited(trace: &Path, policy: &str, out: &Path) -> Result<[u64; 4], String> {
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {} && exec \"$0\" \"$@\"", LIMIT >> 10))
        .arg(env!("CARGO_BIN_EXE_klab"))
        .args([
            "replay",
            "--memory",
            "16MiB",
            "--threads",
            "1",
            "--json",
            "-",
        ])
        .arg("--policy")
        .arg(policy)
        .arg("--out")
        .arg(out)
        .arg(trace)
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(format!(
            "{}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = v["reports"][0]["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "replay")
        .expect("a replay table");
    let cols: Vec<&str> = t["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let row = &t["rows"][0];
    let get = |name: &str| {
        let i = cols.iter().position(|c| *c == name).unwrap();
        let c = &row[i];
        c.as_u64().unwrap_or_else(|| panic!("{name}: {c}"))
    };
    Ok([
        get("requests"),
        get("hits"),
        get("misses"),
        get("evictions"),
    ])
}

#[test]
fn a_trace_four_times_the_memory_limit_replays_with_the_counts_of_a_replay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");

    // A small trace: the streaming binary against the in-memory path.
    let small = dir.path().join("small.oracleGeneral.bin");
    write_trace(&small, 200_000);
    let reqs = klab_trace::read(&small, None).unwrap();
    let objects: Vec<ObjectRequest> = reqs
        .iter()
        .map(|r| ObjectRequest {
            key: r.obj_id,
            size: r.size,
        })
        .collect();
    let s = PolicyKind::Lru.replay(16 << 20, &objects).unwrap();
    let want = [s.requests, s.hits, s.misses, s.evictions];
    assert!(s.hits > 0 && s.evictions > 0, "{s:?}");
    assert_eq!(replay_limited(&small, "lru", &out), Ok(want));

    // The large trace, written in a stream; its counts from the same
    // requests through klab's LRU as they are generated.
    let large = dir.path().join("large.oracleGeneral.bin");
    write_trace(&large, RECORDS);
    let len = std::fs::metadata(&large).unwrap().len();
    assert_eq!(len, RECORDS * 24);
    assert!(len >= 4 * LIMIT - 24, "{len}");
    let mut lru = Lru::new(16 << 20);
    let mut hits = 0;
    for i in 0..RECORDS {
        let r = request(i);
        hits += u64::from(lru.access(r.key, r.size));
    }
    let want = [RECORDS, hits, RECORDS - hits, lru.evictions()];
    assert_eq!(replay_limited(&large, "lru", &out), Ok(want));

    // The limit is real: OPT needs 8 bytes per request, more than it
    // allows on this trace.
    let e = replay_limited(&large, "opt", &out).unwrap_err();
    assert!(e.contains("memory allocation of"), "{e}");
}
