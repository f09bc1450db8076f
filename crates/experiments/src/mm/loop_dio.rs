//! The experiment `loop-dio` (seed 001_9748f8e50c4ab156.txt, "Page-based
//! direct I/O"): "files accessed via a loopback mount may well be
//! represented in the page cache twice: once on each side of the loopback
//! mount. The result is a waste of memory." Direct I/O in the loop driver
//! (what Jens Axboe's page-based `dio_args` was for; Linux 4.4's
//! `LO_FLAGS_DIRECT_IO`) keeps one copy.
//!
//! * **Host rows** (the verdict): an image on a disk-backed filesystem is
//!   bound to a real loop device of this machine (`klab-loop`:
//!   `LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE`), buffered or with
//!   `LO_FLAGS_DIRECT_IO`; a worker process in a cgroup v1 memory cgroup
//!   with a limit reads `W` pages of `/dev/loopN` twice, in a seeded random
//!   order, for working sets `W` from a quarter to one and a half times the
//!   limit. Measured after the reads, with the device still open: pages of
//!   the device in the page cache (the upper copy), pages of the image in
//!   the page cache (the lower copy), pages cached on both sides
//!   (`cachestat(2)`, `mincore(2)`), and the cgroup's usage. The device is
//!   detached and the cgroup and image removed on every way out.
//! * **`dio_args` against `preadv`**: the page's interface (a page array,
//!   `klab-uapi`'s `DirectFile::direct_io`) timed against a plain
//!   `preadv(2)` on the same `O_DIRECT` descriptor into the same pages,
//!   interleaved, as a ratio with its spread.
//! * **Model rows** (the 2009 design): the model's loop device
//!   (`klab_model::mm::direct_io`) at working sets from a quarter to one
//!   and a half times memory. Its buffered path reads the backing page
//!   into the cache before the upper one by construction, so these rows
//!   show the design, not a measurement of the claim.
//!
//! Without root, the loop driver or the memory controller, the report has
//! the model rows only, the verdict is `null` and says why. Having real
//! work on the host, it does not hibernate.
//!
//! # When the claim fails
//!
//! When the image is bound through a descriptor opened with `O_DIRECT` (as
//! a database opens its files), the loop driver reads it directly whatever
//! mode is asked for (`loop_update_dio()` honours the file's `O_DIRECT`),
//! so the "buffered" device caches nothing twice and the claim that a
//! loop device caches a file twice fails on this host: the test
//! `an_image_opened_with_o_direct_is_never_cached_twice` runs it.

use std::time::Instant;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::hibernate::{Job, Step};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};
use klab_mm_policy::LruBalance;
use klab_model::mm::direct_io::LoopDevice;
use klab_model::{Machine, MachineConfig, Outcome};
use rand::Rng as _;

/// The experiment.
pub struct LoopDio;

/// Buffered, at the smallest working set, at least this share of the
/// device's cached pages must be cached in the image too.
pub const TWICE_MIN: f64 = 0.9;
/// With direct I/O, at most this share of the device's cached pages may be
/// cached in the image.
pub const DIRECT_LOWER_MAX: f64 = 0.05;

const FILE: u32 = 1;
const IMAGE: u32 = 100;
const IMAGE_OFFSET: u64 = 1000;

/// One model run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LoopRun {
    hits: u64,
    reads: u64,
    disk_reads: u64,
    upper: u64,
    lower: u64,
    twice: u64,
    /// (reads, upper cached, lower cached)
    over_time: Vec<[f64; 3]>,
}

/// The model part.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ModelData {
    /// Frames of the machine.
    pub frames: u64,
    /// Reads per run.
    pub reads: u64,
    /// Working sets, as fractions of memory.
    pub fractions: Vec<f64>,
    /// Runs: (working set pages, direct I/O, what it did).
    pub runs: Vec<(u64, bool, LoopRun)>,
}

/// The host part's configuration.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostConfig {
    /// The reader's `memory.limit_in_bytes`.
    pub limit_bytes: u64,
    /// Working sets, in pages.
    pub working_sets: Vec<u64>,
    /// Times each page is read (in a fresh random order each pass).
    pub passes: u64,
    /// Bind the image through an `O_DIRECT` descriptor.
    pub backing_o_direct: bool,
    /// `dio_args` timing: pages per request, requests per round, rounds.
    pub dio: (u64, u64, u64),
}

impl HostConfig {
    /// The default: a 64 MiB limit (16 MiB under `--quick`), working sets
    /// of 1/4, 1/2, 1 and 3/2 of it.
    pub fn new(quick: bool) -> Self {
        let limit_pages: u64 = if quick { 4096 } else { 16384 };
        HostConfig {
            limit_bytes: limit_pages * 4096,
            working_sets: [1, 2, 4, 6].iter().map(|k| limit_pages * k / 4).collect(),
            passes: 2,
            backing_o_direct: false,
            dio: if quick { (16, 64, 3) } else { (16, 256, 7) },
        }
    }
}

/// One host run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostRow {
    /// Pages read (each `passes` times).
    pub working_set: u64,
    /// What `klab-loop` measured.
    pub run: HostRun,
}

/// [`klab_loop::LoopRun`], serializable.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostRun {
    /// `LO_FLAGS_DIRECT_IO` asked for.
    pub direct_io_asked: bool,
    /// ... and kept by the kernel.
    pub direct_io: bool,
    /// Reads.
    pub reads: u64,
    /// Reads that found the device page cached.
    pub hits: u64,
    /// Device pages cached after.
    pub device_cached: u64,
    /// Image pages cached after.
    pub backing_cached: u64,
    /// Pages cached on both sides.
    pub twice: u64,
    /// The cgroup's usage after, bytes.
    pub usage_bytes: u64,
    /// Its peak, bytes.
    pub max_usage_bytes: u64,
    /// Refused charges.
    pub failcnt: u64,
    /// Wall time of the reads, ms.
    pub elapsed_ms: f64,
}

impl From<klab_loop::LoopRun> for HostRun {
    fn from(r: klab_loop::LoopRun) -> Self {
        HostRun {
            direct_io_asked: r.direct_io_asked,
            direct_io: r.direct_io,
            reads: r.reads,
            hits: r.hits,
            device_cached: r.device_cached,
            backing_cached: r.backing_cached,
            twice: r.twice,
            usage_bytes: r.usage_bytes,
            max_usage_bytes: r.max_usage_bytes,
            failcnt: r.failcnt,
            elapsed_ms: r.elapsed.as_secs_f64() * 1e3,
        }
    }
}

/// `dio_args` against `preadv`: per round, ns per request of each.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DioTiming {
    /// How the file was read (`O_DIRECT`, or the buffered fallback and why).
    pub mode: String,
    /// Per round: (`dio_args` ns per request, `preadv` ns per request).
    pub rounds: Vec<(f64, f64)>,
}

/// The host part.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HostData {
    /// Its configuration.
    pub cfg: HostConfig,
    /// Buffered and direct, at each working set.
    pub rows: Vec<HostRow>,
    /// The interface's timing (or why it could not be made).
    pub dio: Result<DioTiming, String>,
}

/// Everything the verdict and the report come from.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Data {
    /// The model rows.
    pub model: ModelData,
    /// The host rows, or why there are none.
    pub host: Result<HostData, String>,
}

/// One working set in one loop mode, a read a step: the machine, the
/// generator, the cursor and the counters.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunJob {
    m: Machine,
    direct: bool,
    working_set: u64,
    rng: klab_model::rng::Rng,
    i: u64,
    r: LoopRun,
}

impl RunJob {
    fn new(
        frames: u64,
        working_set: u64,
        reads: u64,
        direct: bool,
        rng: klab_model::rng::Rng,
    ) -> Self {
        RunJob {
            m: Machine::new(MachineConfig::new(frames, LruBalance::Classic))
                .expect("valid machine"),
            direct,
            working_set,
            rng,
            i: 0,
            r: LoopRun {
                hits: 0,
                reads,
                disk_reads: 0,
                upper: 0,
                lower: 0,
                twice: 0,
                over_time: Vec::new(),
            },
        }
    }

    fn dev(&self) -> LoopDevice {
        LoopDevice {
            backing: IMAGE,
            direct_io: self.direct,
            layout: vec![(FILE, IMAGE_OFFSET)],
        }
    }
}

impl Job for RunJob {
    type Env = ();
    type Output = LoopRun;
    const KIND: &'static str = "loop-dio: one working set, one loop mode";
    const TICK_NS: u64 = klab_lab::hibernate::ACCESS_TICK_NS;

    fn step(&mut self, _: &()) -> Step {
        if self.i >= self.r.reads {
            return Step::Done;
        }
        let i = self.i;
        self.i += 1;
        let every = (self.r.reads / 100).max(1);
        let page = self.rng.random_range(0..self.working_set);
        let out = self.m.loop_read(&self.dev(), FILE, page);
        let r = &mut self.r;
        let m = &self.m;
        match (out.upper, out.lower) {
            (Outcome::Hit, _) => r.hits += 1,
            // Buffered: the disk is read only when the image page was not cached.
            (_, Some(lower)) => r.disk_reads += u64::from(!lower.is_hit()),
            // Direct: every miss goes to the disk.
            (_, None) => r.disk_reads += 1,
        }
        if (i + 1).is_multiple_of(every) {
            r.over_time.push([
                (i + 1) as f64,
                m.cached_pages(FILE) as f64,
                m.cached_pages(IMAGE) as f64,
            ]);
        }
        // Buffered misses make two accesses (the image, then the file).
        Step::Busy(1 + u64::from(out.lower.is_some()))
    }

    fn check(&self, _: &()) -> Result<(), String> {
        if self.working_set == 0 || self.i > self.r.reads {
            return Err("empty working set or cursor past the reads".into());
        }
        self.m.check()
    }

    fn finish(self, _: &()) -> LoopRun {
        finish(self.m, self.working_set, self.r)
    }
}

fn finish(m: Machine, working_set: u64, mut r: LoopRun) -> LoopRun {
    r.upper = m.cached_pages(FILE);
    r.lower = m.cached_pages(IMAGE);
    r.twice = (0..working_set)
        .filter(|&p| m.is_cached(FILE, p) && m.is_cached(IMAGE, IMAGE_OFFSET + p))
        .count() as u64;
    if cfg!(debug_assertions) {
        m.assert_invariants();
    }
    r
}

/// The model rows.
fn measure_model(ctx: &Ctx<'_>) -> Result<ModelData, ExperimentError> {
    let frames: u64 = ctx.size(4096, 1024);
    let reads = frames * 20;
    let fractions = vec![0.25, 0.5, 0.75, 1.0, 1.5];
    let mut runs = Vec::new();
    ctx.progress
        .begin("loop-dio: model", fractions.len() as u64);
    for &f in &fractions {
        let ws = ((frames as f64) * f) as u64;
        for direct in [false, true] {
            let res = ctx.job(&(), || {
                Ok(RunJob::new(frames, ws, reads, direct, ctx.rng(ws)))
            })?;
            runs.push((ws, direct, res));
        }
        ctx.progress.advance(1);
    }
    ctx.progress.end();
    Ok(ModelData {
        frames,
        reads,
        fractions,
        runs,
    })
}

/// The host rows: every working set buffered then direct, on one image.
fn measure_host(
    ctx: &Ctx<'_>,
    cfg: &HostConfig,
) -> Result<Result<HostData, String>, ExperimentError> {
    let image_pages = cfg.working_sets.iter().copied().max().unwrap_or(1).max(1);
    let mut lc = klab_loop::RunConfig::new(image_pages, cfg.limit_bytes);
    lc.backing_o_direct = cfg.backing_o_direct;
    if let Err(why) = klab_loop::probe(&lc.root) {
        return Ok(Err(why));
    }
    let host = |e: klab_loop::LoopError| ExperimentError::Host(e.to_string());
    let session = match klab_loop::Session::new(&lc) {
        Ok(s) => s,
        Err(klab_loop::LoopError::Unavailable(why)) => return Ok(Err(why)),
        Err(e) => return Err(host(e)),
    };
    let mut rows = Vec::new();
    let mut rng = ctx.rng(77);
    ctx.progress.begin(
        "loop-dio: the host's loop device",
        2 * cfg.working_sets.len() as u64,
    );
    for &ws in &cfg.working_sets {
        let mut pages = Vec::new();
        for _ in 0..cfg.passes {
            // Fisher-Yates: a fresh random order each pass.
            let mut pass: Vec<u64> = (0..ws).collect();
            for i in (1..pass.len()).rev() {
                pass.swap(i, rng.random_range(0..=i));
            }
            pages.extend(pass);
        }
        for direct in [false, true] {
            let run = session.run(&lc, direct, &pages).map_err(host)?;
            rows.push(HostRow {
                working_set: ws,
                run: run.into(),
            });
            ctx.progress.advance(1);
        }
    }
    ctx.progress.end();
    let dio = time_dio_args(session.image(), cfg.dio, &mut rng);
    session.close().map_err(host)?;
    Ok(Ok(HostData {
        cfg: cfg.clone(),
        rows,
        dio,
    }))
}

/// `dio_args` (`DirectFile::direct_io` on a page array) against `preadv`
/// on the same `O_DIRECT` descriptor into the same pages, rounds
/// interleaved (which goes first alternates).
fn time_dio_args(
    path: &std::path::Path,
    (pages, requests, rounds): (u64, u64, u64),
    rng: &mut klab_model::rng::Rng,
) -> Result<DioTiming, String> {
    use klab_uapi::direct_io::{DioArgs, DirectFile, OpenOptions, Page, Rw};
    use std::os::fd::AsFd as _;
    let f = DirectFile::open(path, OpenOptions::READ).map_err(|e| e.to_string())?;
    let mode = match f.mode() {
        klab_uapi::direct_io::IoMode::Direct => "O_DIRECT".to_owned(),
        klab_uapi::direct_io::IoMode::Buffered { reason } => format!("buffered ({reason})"),
    };
    let len = f.len().map_err(|e| e.to_string())?;
    let span = (len / 4096).saturating_sub(pages).max(1);
    let mut bufs = Page::alloc(pages as usize);
    let bytes = (pages * 4096) as usize;
    let mut out = Vec::new();
    for round in 0..rounds {
        let offsets: Vec<u64> = (0..requests)
            .map(|_| rng.random_range(0..span) * 4096)
            .collect();
        let dio = |bufs: &mut [Box<Page>]| -> Result<f64, String> {
            let t = Instant::now();
            for &off in &offsets {
                let mut a = DioArgs::new(Rw::Read, bufs, 0, bytes, off);
                f.direct_io(&mut a).map_err(|e| e.to_string())?;
            }
            Ok(t.elapsed().as_nanos() as f64 / requests as f64)
        };
        let plain = |bufs: &mut [Box<Page>]| -> Result<f64, String> {
            let t = Instant::now();
            for &off in &offsets {
                let mut iov: Vec<std::io::IoSliceMut<'_>> = bufs
                    .iter_mut()
                    .map(|p| std::io::IoSliceMut::new(&mut p.0))
                    .collect();
                rustix::io::preadv(f.as_fd(), &mut iov, off).map_err(|e| e.to_string())?;
            }
            Ok(t.elapsed().as_nanos() as f64 / requests as f64)
        };
        let (a, b) = if round % 2 == 0 {
            let a = dio(&mut bufs)?;
            (a, plain(&mut bufs)?)
        } else {
            let b = plain(&mut bufs)?;
            (dio(&mut bufs)?, b)
        };
        out.push((a, b));
    }
    Ok(DioTiming { mode, rounds: out })
}

/// Median and range of `dio_args / preadv` over the rounds.
fn dio_ratio(t: &DioTiming) -> Option<(f64, f64, f64)> {
    let mut r: Vec<f64> = t.rounds.iter().map(|&(a, b)| a / b).collect();
    r.sort_by(f64::total_cmp);
    Some((*r.get(r.len() / 2)?, *r.first()?, *r.last()?))
}

fn share(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl LoopDio {
    /// [`Experiment::measure`] with the caller's host configuration (the
    /// tests run the configuration where the claim fails).
    ///
    /// # Errors
    /// As [`Experiment::measure`].
    pub fn measure_with(&self, ctx: &Ctx<'_>, cfg: &HostConfig) -> Result<Data, ExperimentError> {
        let model = measure_model(ctx)?;
        let host = ctx.once("loop-dio: the host's loop device", 0, |_| {
            measure_host(ctx, cfg)
        })?;
        Ok(Data { model, host })
    }
}

impl Experiment for LoopDio {
    type Data = Data;

    const ID: Identity = Identity {
        name: "loop-dio",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "through a buffered loop device a file is cached twice, once on each side; direct I/O in the loop driver caches it once",
        inputs: &[],
        // The host rows bind a real loop device and time real reads.
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<Data, ExperimentError> {
        self.measure_with(ctx, &HostConfig::new(ctx.quick))
    }

    fn judge(&self, d: &Data) -> Verdict {
        let h = match &d.host {
            Ok(h) => h,
            Err(why) => {
                return Verdict {
                    holds: None,
                    measured: "no host rows: the model's buffered loop caches the file twice by its design, which measures nothing".into(),
                    note: format!("the host cannot bind a loop device for the measurement: {why}"),
                };
            }
        };
        let small = h.cfg.working_sets.iter().copied().min().unwrap_or(0);
        let find = |direct: bool| {
            h.rows
                .iter()
                .find(|r| r.working_set == small && r.run.direct_io_asked == direct)
        };
        let (Some(b), Some(dr)) = (find(false), find(true)) else {
            return Verdict {
                holds: None,
                measured: "no host row at the smallest working set".into(),
                note: String::new(),
            };
        };
        if !dr.run.direct_io {
            return Verdict {
                holds: None,
                measured: format!("the kernel kept buffered I/O although LO_FLAGS_DIRECT_IO was asked for ({} image pages cached)", dr.run.backing_cached),
                note: "the image's filesystem cannot do direct I/O at the device's block size, so the two modes cannot be compared".into(),
            };
        }
        let twice = share(b.run.twice, b.run.device_cached);
        let lower = share(dr.run.backing_cached, dr.run.device_cached);
        let holds = twice >= TWICE_MIN && lower <= DIRECT_LOWER_MAX;
        Verdict {
            holds: Some(holds),
            measured: format!(
                "reading {small} pages twice through /dev/loopN: buffered, {} pages of the device and {} of the image cached, {} on both sides ({:.0}% of the device's, threshold {:.0}%: {:.1} MiB held twice{}); with LO_FLAGS_DIRECT_IO, {} device pages and {} image pages ({:.1}%, threshold {:.0}%)",
                b.run.device_cached, b.run.backing_cached, b.run.twice, 100.0 * twice, 100.0 * TWICE_MIN,
                b.run.twice as f64 * 4096.0 / f64::from(1 << 20),
                if b.run.direct_io { ": the kernel read the image directly although buffered was asked for" } else { "" },
                dr.run.device_cached, dr.run.backing_cached, 100.0 * lower, 100.0 * DIRECT_LOWER_MAX
            ),
            note: "the cgroup holds the reader; where the kernel charges the loop driver's reads of the image (its worker's cgroup) the cgroup's usage columns show".into(),
        }
    }

    fn report(&self, d: &Data, _: &Verdict, r: &mut Report) {
        r.config("frames", d.model.frames)
            .config("reads", d.model.reads)
            .config("balance", "classic");
        report_model(&d.model, r);
        match &d.host {
            Ok(h) => {
                report_host(h, r);
                r.host = Host::measured(vec![format!(
                    "a real loop device, a memory cgroup of {} MiB and wall-clock timing on a shared machine",
                    h.cfg.limit_bytes >> 20
                )]);
            }
            Err(why) => {
                r.host = Host::model();
                r.host.notes.push(format!("no host rows: {why}"));
            }
        }
    }
}

/// The model's tables and plots (the 2009 design).
fn report_model(m: &ModelData, r: &mut Report) {
    let mut t = Table::new(
        "a file read through a loop device, buffered against direct I/O",
        &[
            "working set (pages)",
            "loop mode",
            "file pages cached",
            "image pages cached",
            "cached twice (share of file pages)",
            "file hit ratio",
            "disk reads",
        ],
    );
    let mut hit = [Vec::new(), Vec::new()];
    let mut dup = Vec::new();
    let mut o = Series::new(
        "pages cached on each side over time (working set 3/4 of memory)",
        Axis::linear("reads", ""),
        Axis::linear("pages", "pages"),
    );
    for (ws, direct, res) in &m.runs {
        let f = *ws as f64 / m.frames as f64;
        let share = share(res.twice, res.upper);
        let hr = res.hits as f64 / res.reads as f64;
        t.row(cells![
            *ws,
            if *direct { "direct I/O" } else { "buffered" },
            res.upper,
            res.lower,
            share,
            hr,
            res.disk_reads
        ]);
        hit[usize::from(*direct)].push([f, hr]);
        if !direct {
            dup.push([f, share]);
        }
        if *ws == ((m.frames as f64) * 0.75) as u64 {
            let mode = if *direct { "direct" } else { "buffered" };
            o.line(
                &format!("{mode}: file"),
                res.over_time.iter().map(|p| [p[0], p[1]]).collect(),
            );
            o.line(
                &format!("{mode}: image"),
                res.over_time.iter().map(|p| [p[0], p[2]]).collect(),
            );
        }
    }
    r.table(t);
    let mut s = Series::new(
        "file hit ratio against the working set",
        Axis::linear("working set", "x memory"),
        Axis::linear("hit ratio", ""),
    );
    s.line("buffered loop", hit[0].clone());
    s.line("direct I/O loop", hit[1].clone());
    let mut dd = Series::new(
        "buffered loop: share of the file's cached pages also cached in the image",
        Axis::linear("working set", "x memory"),
        Axis::linear("cached twice", "share"),
    );
    dd.line("buffered loop", dup);
    r.series(s).series(dd).series(o);
}

/// The host's tables and plot.
fn report_host(h: &HostData, r: &mut Report) {
    let c = &h.cfg;
    r.config("host.limit_bytes", c.limit_bytes)
        .config("host.passes", c.passes)
        .config("host.backing_o_direct", c.backing_o_direct)
        .config("threshold.twice_min", TWICE_MIN)
        .config("threshold.direct_lower_max", DIRECT_LOWER_MAX);
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let mut t = Table::new(
        "host: pages of a real loop device read twice by a process in a memory cgroup, buffered against LO_FLAGS_DIRECT_IO",
        &[
            "working set (pages)",
            "x the cgroup limit",
            "loop mode",
            "direct I/O in force",
            "reads",
            "hits",
            "device pages cached",
            "image pages cached",
            "cached twice",
            "held twice (MiB)",
            "cgroup usage (MiB)",
            "cgroup peak (MiB)",
            "failcnt",
            "read time (ms)",
        ],
    );
    let mut s = Series::new(
        "host: pages cached on each side of the loop device",
        Axis::linear("working set", "x the cgroup limit"),
        Axis::linear("pages", ""),
    );
    let mut lines: [Vec<[f64; 2]>; 4] = Default::default();
    let limit_pages = (c.limit_bytes / 4096).max(1);
    for row in &h.rows {
        let x = row.working_set as f64 / limit_pages as f64;
        let u = &row.run;
        t.row(cells![
            row.working_set,
            x,
            if u.direct_io_asked {
                "LO_FLAGS_DIRECT_IO"
            } else {
                "buffered"
            },
            u.direct_io,
            u.reads,
            u.hits,
            u.device_cached,
            u.backing_cached,
            u.twice,
            mib(u.twice * 4096),
            mib(u.usage_bytes),
            mib(u.max_usage_bytes),
            u.failcnt,
            u.elapsed_ms
        ]);
        let k = 2 * usize::from(u.direct_io_asked);
        lines[k].push([x, u.device_cached as f64]);
        lines[k + 1].push([x, u.backing_cached as f64]);
    }
    r.table(t);
    for (name, pts) in [
        "buffered: device",
        "buffered: image",
        "direct I/O: device",
        "direct I/O: image",
    ]
    .iter()
    .zip(lines)
    {
        s.line(name, pts);
    }
    r.series(s);
    let mut t = Table::new(
        "host: dio_args (a page array) against preadv, O_DIRECT, same file and pages",
        &[
            "round",
            "dio_args (ns per request)",
            "preadv (ns per request)",
            "dio_args / preadv",
        ],
    );
    match &h.dio {
        Ok(d) => {
            r.config("host.dio_mode", d.mode.as_str())
                .config("host.dio_pages_per_request", c.dio.0)
                .config("host.dio_requests_per_round", c.dio.1);
            for (i, &(a, b)) in d.rounds.iter().enumerate() {
                t.row(cells![i as u64, a, b, a / b]);
            }
            if let Some((med, lo, hi)) = dio_ratio(d) {
                t.row(cells![
                    "median (min - max)",
                    Option::<f64>::None,
                    Option::<f64>::None,
                    format!("{med:.3} ({lo:.3} - {hi:.3})")
                ]);
            }
        }
        Err(why) => {
            t.row(cells![
                format!("not timed: {why}"),
                Option::<f64>::None,
                Option::<f64>::None,
                Option::<f64>::None
            ]);
        }
    }
    r.table(t);
}

#[cfg(test)]
mod tests;
