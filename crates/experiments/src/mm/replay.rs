//! `klab replay`: a real trace through a cache policy, with its statistics,
//! its speed, and optionally a miss-ratio curve.
//!
//! Two units of caching:
//!
//! * **object** (the default for the textbook policies): each request is one
//!   object of the request's size; the cache holds `memory` bytes (or, with
//!   `ignore_size`, `memory` objects of size 1). libCacheSim's rules, so
//!   results compare with it.
//! * **page** (the default for the kernel's rules): a request covers the
//!   4 KiB pages of its byte range `[obj * block_size, + size)` in the address
//!   space of its file (one per device or file); each page is a page-cache
//!   page of the machine model, whose memory is `memory` bytes of frames.
//!   Textbook policies in page mode cache the same pages as objects of
//!   4096 bytes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use klab_mm_policy::{LruBalance, ObjectRequest, PolicyKind, SimStats};
use klab_model::drive::Drive;
use klab_model::{Access, MachineConfig};
use klab_trace::{Format, Op, PAGE_SIZE, Request, pages_of};

use klab_lab::experiment::Progress;
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};
use klab_lab::{ExperimentError, cells};

/// The unit of caching.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Whole objects of the request's size.
    Object,
    /// 4 KiB page-cache pages.
    Page,
}

impl Unit {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Object => "object",
            Unit::Page => "page",
        }
    }
}

/// What to replay, and how.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    /// The trace file.
    pub trace: PathBuf,
    /// Its format; from the extension when `None`.
    pub format: Option<Format>,
    /// Cache size: bytes, or objects with `ignore_size`.
    pub memory: u64,
    /// The policy.
    pub policy: PolicyKind,
    /// The unit; the policy's default when `None`.
    pub unit: Option<Unit>,
    /// Every object has size 1 and `memory` counts objects.
    pub ignore_size: bool,
    /// Bytes per block number in page mode; the format's default when
    /// `None` (512-byte sectors for vscsi, csv and oracleGeneral, 4096 for
    /// txt and klab traces).
    pub block_size: Option<u64>,
    /// Also sweep memory sizes and report a miss-ratio curve.
    pub mrc: bool,
    /// Threads for the sweep.
    pub threads: usize,
}

/// Parses a size: a number of bytes, optionally with a binary unit
/// (`KiB`, `MiB`, `GiB`, `TiB`; `K`, `M`, `G`, `T` are read the same way).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!(
            "invalid size {s:?}: expected a number of bytes, optionally with KiB, MiB, GiB or TiB"
        )
    })?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        "t" | "tib" => 40,
        other => {
            return Err(format!(
                "invalid size {s:?}: unknown unit {other:?}; use KiB, MiB, GiB or TiB"
            ));
        }
    };
    let v = n
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("invalid size {s:?}: too large"))?;
    if v == 0 {
        return Err(format!("invalid size {s:?}: must be at least 1"));
    }
    Ok(v)
}

/// Formats bytes with the largest binary unit that divides them.
pub fn format_size(v: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if v >= 1 << shift && v.is_multiple_of(1 << shift) {
            return format!("{}{unit}", v >> shift);
        }
    }
    format!("{v}B")
}

/// The outcome of one replay at one memory size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Cache size (bytes, or objects when sizes are ignored).
    pub memory: u64,
    /// Counts.
    pub stats: SimStats,
    /// Refaults (kernel rules only).
    pub refaults: Option<u64>,
    /// Activations (kernel rules only).
    pub activations: Option<u64>,
    /// Bytes of model state per page frame at the end (kernel rules only):
    /// `struct page` plus the page cache's radix-tree nodes, shadows
    /// included, spread over the frames.
    pub bytes_per_frame: Option<f64>,
}

/// Everything `klab replay` reports.
#[derive(Clone, Debug)]
pub struct ReplayResult {
    /// The run at the requested size.
    pub main: Outcome,
    /// Requests per second of the main run's replay loop (trace already in
    /// memory).
    pub requests_per_sec: f64,
    /// Seconds spent reading and parsing the trace.
    pub parse_secs: f64,
    /// The unit used.
    pub unit: Unit,
    /// Distinct cache keys (objects or pages) in the trace.
    pub distinct_keys: u64,
    /// Bytes of replay state per tracked key, measured after the main run.
    pub bytes_per_key: Option<f64>,
    /// The miss-ratio curve, when asked for: one outcome per memory size.
    pub mrc: Vec<Outcome>,
    /// The report (tables and, with `mrc`, the curve).
    pub report: Report,
}

/// Maps trace requests to object requests for the unit.
fn object_requests(
    reqs: &[Request],
    unit: Unit,
    ignore_size: bool,
    block_size: u64,
) -> Vec<ObjectRequest> {
    match unit {
        Unit::Object => reqs
            .iter()
            .map(|r| ObjectRequest {
                key: r.obj_id,
                size: if ignore_size { 1 } else { r.size },
            })
            .collect(),
        Unit::Page => {
            let mut out = Vec::with_capacity(reqs.len());
            for r in reqs {
                for page in pages_of(r, block_size) {
                    out.push(ObjectRequest {
                        key: page_key(r.file, page),
                        size: if ignore_size { 1 } else { PAGE_SIZE as u32 },
                    });
                }
            }
            out
        }
    }
}

/// One key per (file, page) for textbook policies in page mode.
fn page_key(file: u32, page: u64) -> u64 {
    (u64::from(file) << 48) ^ page
}

/// Replays page requests through the machine model under a kernel rule:
/// one node of `memory / 4096` frames; each request reads (or, for writes,
/// writes) every page it covers, and hits when every one was resident.
pub fn kernel_replay(reqs: &[Request], block_size: u64, memory: u64, rule: LruBalance) -> Outcome {
    let frames = (memory / PAGE_SIZE).max(1);
    let mut d = Drive::new(MachineConfig::new(frames, rule))
        .expect("one node of at least one frame is valid");
    let mut hits = 0u64;
    let mut miss_bytes = 0u64;
    let mut request_bytes = 0u64;
    for r in reqs {
        let all_hit = d.request(pages_of(r, block_size).map(|page| match r.op {
            Op::Write => Access::write(r.file, page),
            _ => Access::read(r.file, page),
        }));
        hits += u64::from(all_hit);
        request_bytes += u64::from(r.size);
        if !all_hit {
            miss_bytes += u64::from(r.size);
        }
    }
    let requests = reqs.len() as u64;
    let m = d.machine();
    let s = m.stat();
    Outcome {
        memory,
        stats: SimStats {
            requests,
            hits,
            misses: requests - hits,
            request_bytes,
            miss_bytes,
            evictions: s.pgsteal,
        },
        refaults: Some(s.workingset_refault),
        activations: Some(s.pgactivate + s.workingset_activate),
        bytes_per_frame: Some(m.mm_state_bytes() as f64 / frames as f64),
    }
}

/// Runs a replay.
pub fn run(opts: &ReplayOptions, progress: &dyn Progress) -> Result<ReplayResult, ExperimentError> {
    let format = klab_trace::resolve_format(&opts.trace, opts.format)?;
    let unit = opts.unit.unwrap_or(if opts.policy.is_kernel() {
        Unit::Page
    } else {
        Unit::Object
    });
    if opts.policy.is_kernel() && unit == Unit::Object {
        return Err(ExperimentError::Input {
            path: opts.trace.clone(),
            message: format!(
                "policy {} runs the kernel's page cache and caches pages: use --unit page",
                opts.policy
            ),
        });
    }
    if opts.policy.is_kernel() && opts.ignore_size {
        return Err(ExperimentError::Input {
            path: opts.trace.clone(),
            message:
                "--ignore-size applies to object caches; the page cache's unit is the 4 KiB page"
                    .into(),
        });
    }
    let block_size = opts.block_size.unwrap_or(format.default_block_size());
    progress.begin("reading trace", 0);
    let t0 = Instant::now();
    let reqs = klab_trace::read(&opts.trace, Some(format))?;
    let parse_secs = t0.elapsed().as_secs_f64();
    progress.end();

    let objects = object_requests(&reqs, unit, opts.ignore_size, block_size);
    let distinct_keys = {
        let mut keys: Vec<u64> = objects.iter().map(|o| o.key).collect();
        keys.sort_unstable();
        keys.dedup();
        keys.len() as u64
    };

    let replay_at = |memory: u64| -> Outcome {
        match opts.policy {
            PolicyKind::Kernel(rule) => kernel_replay(&reqs, block_size, memory, rule),
            p => Outcome {
                memory,
                stats: p.replay(memory, &objects).expect("textbook policy"),
                refaults: None,
                activations: None,
                bytes_per_frame: None,
            },
        }
    };

    progress.begin("replaying", 0);
    let t1 = Instant::now();
    let main = replay_at(opts.memory);
    let secs = t1.elapsed().as_secs_f64();
    progress.end();
    let replayed = if unit == Unit::Page && !opts.policy.is_kernel() {
        objects.len() as f64
    } else {
        reqs.len() as f64
    };
    let requests_per_sec = if secs > 0.0 {
        replayed / secs
    } else {
        f64::INFINITY
    };
    let bytes_per_key = measure_bytes_per_key(opts, &objects).or(main.bytes_per_frame);

    let mut mrc = Vec::new();
    if opts.mrc {
        let sizes = mrc_sizes(opts.memory, if opts.ignore_size { 1 } else { PAGE_SIZE });
        progress.begin("miss-ratio curve", sizes.len() as u64);
        mrc = parallel_map(&sizes, opts.threads.max(1), |&m| {
            let o = replay_at(m);
            progress.advance(1);
            o
        });
        progress.end();
    }

    let report = build_report(
        opts,
        unit,
        format,
        block_size,
        &main,
        requests_per_sec,
        distinct_keys,
        &mrc,
    );
    Ok(ReplayResult {
        main,
        requests_per_sec,
        parse_secs,
        unit,
        distinct_keys,
        bytes_per_key,
        mrc,
        report,
    })
}

/// Bytes of policy state per resident key for textbook policies (see
/// [`klab_mm_policy::bytes_per_object`]); the kernel rules' cost per page is
/// the model's `struct page` and radix-tree share, reported by the model.
fn measure_bytes_per_key(opts: &ReplayOptions, _objects: &[ObjectRequest]) -> Option<f64> {
    (!opts.policy.is_kernel()).then(klab_mm_policy::bytes_per_object)
}

/// Memory sizes for a miss-ratio curve: 16 points from 1/64 of `memory` to
/// twice `memory`, evenly spaced on a log scale, rounded to `grain`.
pub fn mrc_sizes(memory: u64, grain: u64) -> Vec<u64> {
    let lo = (memory as f64 / 64.0).max(grain as f64);
    let hi = memory as f64 * 2.0;
    let n = 16;
    let mut out: Vec<u64> = (0..n)
        .map(|i| {
            let x = lo * (hi / lo).powf(i as f64 / (n - 1) as f64);
            ((x / grain as f64).round() as u64).max(1) * grain
        })
        .collect();
    out.dedup();
    out
}

/// Applies `f` to every item on `threads` threads, keeping order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let slots = std::sync::Mutex::new(&mut results);
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = f(&items[i]);
                    slots.lock().expect("no panics while holding the lock")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| r.expect("every item mapped"))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn build_report(
    opts: &ReplayOptions,
    unit: Unit,
    format: Format,
    block_size: u64,
    main: &Outcome,
    rps: f64,
    distinct: u64,
    mrc: &[Outcome],
) -> Report {
    let mut r = Report::new(
        "replay",
        "002_e13a334c23eac663.txt",
        "a real trace through a page-replacement policy: hits, misses, refaults and speed",
    );
    let mem_text = if opts.ignore_size {
        format!("{} objects", opts.memory)
    } else {
        format_size(opts.memory)
    };
    r.config("trace", display_path(&opts.trace))
        .config("format", format.name())
        .config("policy", opts.policy.name())
        .config("unit", unit.name())
        .config("memory", mem_text.clone())
        .config("ignore_size", opts.ignore_size);
    if unit == Unit::Page {
        r.config("block_size", block_size);
    }
    let s = &main.stats;
    let mut t = Table::new(
        "replay",
        &[
            "policy",
            "memory",
            "requests",
            "hits",
            "misses",
            "hit ratio",
            "refaults",
            "activations",
            "evictions",
        ],
    );
    t.row(cells![
        opts.policy.name(),
        mem_text,
        s.requests,
        s.hits,
        s.misses,
        s.hit_ratio(),
        main.refaults,
        main.activations,
        s.evictions
    ]);
    r.table(t);
    let mut speed = Table::new("speed", &["requests per second", "distinct keys"]);
    speed.row(cells![rps, distinct]);
    r.table(speed);
    if !mrc.is_empty() {
        let mut curve = Table::new("miss-ratio curve", &["memory", "misses", "miss ratio"]);
        let mut pts = Vec::new();
        for o in mrc {
            curve.row(cells![
                if opts.ignore_size {
                    o.memory.to_string()
                } else {
                    format_size(o.memory)
                },
                o.stats.misses,
                o.stats.miss_ratio()
            ]);
            pts.push([o.memory as f64, o.stats.miss_ratio()]);
        }
        r.table(curve);
        let mut series = Series::new(
            "miss-ratio curve",
            Axis::log("memory", if opts.ignore_size { "objects" } else { "bytes" }),
            Axis::linear("miss ratio", ""),
        );
        series.line(opts.policy.name(), pts);
        r.series(series);
    }
    r.verdict = Verdict {
        holds: None,
        measured: format!(
            "{} hits and {} misses in {} requests (hit ratio {:.4}) at {}",
            s.hits,
            s.misses,
            s.requests,
            s.hit_ratio(),
            r.config["memory"].display()
        ),
        note: String::new(),
    };
    r.host = Host::measured(vec![format!("{rps:.0} requests per second")]);
    r
}

fn display_path(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert!(parse_size("1.5GiB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("MiB").unwrap_err().contains("expected a number"));
        assert!(parse_size("0").unwrap_err().contains("at least 1"));
        assert!(
            parse_size("99999999999TiB")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(format_size(512 << 20), "512MiB");
        assert_eq!(format_size(1000), "1000B");
    }

    #[test]
    fn a_request_covers_the_pages_of_its_byte_range() {
        let r = Request {
            time: 0,
            obj_id: 7,
            size: 4096,
            op: klab_trace::Op::Read,
            file: 0,
            next_access: None,
        };
        // Sector 7 = bytes 3584..7680: pages 0 and 1.
        assert_eq!(pages_of(&r, 512), 0..2);
        // Block 7 of 4 KiB = page 7 only.
        assert_eq!(pages_of(&r, 4096), 7..8);
    }

    #[test]
    fn mrc_sizes_span_a_64th_to_twice_the_memory() {
        let s = mrc_sizes(64 << 20, 4096);
        assert_eq!(s.first(), Some(&(1 << 20)));
        assert_eq!(s.last(), Some(&(128 << 20)));
        assert!(s.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn parallel_map_keeps_order() {
        let v: Vec<u64> = (0..50).collect();
        assert_eq!(
            parallel_map(&v, 3, |x| x * 2),
            v.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
    }
}
