//! The experiment `loop-dio` (seed 001_9748f8e50c4ab156.txt, "Page-based
//! direct I/O"): "files accessed via a loopback mount may well be
//! represented in the page cache twice: once on each side of the loopback
//! mount. The result is a waste of memory."
//!
//! A filesystem image (backing file 100) is attached to a loop device; a
//! file inside it (file 1) is read at random pages, over a working set of
//! `W` pages, on a machine of `M` frames, with the loop driver reading the
//! image buffered (through its page cache) or with direct I/O (Jens Axboe's
//! page-based direct I/O; loop's `LO_FLAGS_DIRECT_IO` since 4.4). Measured
//! in the model (`klab_model::mm::direct_io`): pages cached on each side,
//! the share of the file's cached pages that are cached twice, the file's
//! hit ratio, and reads that reach the disk.

use klab_mm_policy::LruBalance;
use klab_model::mm::direct_io::LoopDevice;
use klab_model::{Machine, MachineConfig, Outcome};
use rand::Rng as _;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::hibernate::{Job, Step};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};

/// The experiment.
pub struct LoopDio;

const FILE: u32 = 1;
const IMAGE: u32 = 100;
const IMAGE_OFFSET: u64 = 1000;

#[derive(serde::Serialize, serde::Deserialize)]
struct LoopRun {
    hits: u64,
    reads: u64,
    disk_reads: u64,
    upper: u64,
    lower: u64,
    twice: u64,
    /// (reads, upper cached, lower cached)
    over_time: Vec<[f64; 3]>,
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

#[cfg(test)]
fn run(
    frames: u64,
    working_set: u64,
    reads: u64,
    direct: bool,
    rng: &mut klab_model::rng::Rng,
) -> LoopRun {
    let mut j = RunJob::new(frames, working_set, reads, direct, rng.clone());
    while j.step(&()) != Step::Done {}
    *rng = j.rng.clone();
    j.finish(&())
}

impl LoopDio {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "loop-dio",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "through a buffered loop device a file is cached twice, once on each side; page-based direct I/O caches it once",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for LoopDio {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let frames: u64 = ctx.size(4096, 1024);
        let reads = frames * 20;
        let fractions = [0.25, 0.5, 0.75, 1.0, 1.5];
        let mut r = self.blank_report(ctx);
        r.config("frames", frames)
            .config("reads", reads)
            .config("balance", "classic");
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
        let mut over_time = Vec::new();
        let mut half_dup = 0.0;
        let mut direct_better_or_equal = true;
        ctx.progress.begin("loop-dio", fractions.len() as u64);
        for &f in &fractions {
            let ws = ((frames as f64) * f) as u64;
            let mut pair = Vec::new();
            for (k, direct) in [false, true].into_iter().enumerate() {
                let res = ctx.job(&(), || {
                    Ok(RunJob::new(frames, ws, reads, direct, ctx.rng(ws)))
                })?;
                let share = if res.upper == 0 {
                    0.0
                } else {
                    res.twice as f64 / res.upper as f64
                };
                let hr = res.hits as f64 / res.reads as f64;
                t.row(cells![
                    ws,
                    if direct { "direct I/O" } else { "buffered" },
                    res.upper,
                    res.lower,
                    share,
                    hr,
                    res.disk_reads
                ]);
                hit[k].push([f, hr]);
                if !direct {
                    dup.push([f, share]);
                    if f == 0.5 {
                        half_dup = share;
                    }
                }
                if f == 0.75 {
                    over_time.push((direct, res.over_time.clone()));
                }
                pair.push(hr);
            }
            if f >= 0.5 {
                direct_better_or_equal &= pair[1] >= pair[0];
            }
            ctx.progress.advance(1);
        }
        ctx.progress.end();
        r.table(t);
        let mut s = Series::new(
            "file hit ratio against the working set",
            Axis::linear("working set", "x memory"),
            Axis::linear("hit ratio", ""),
        );
        s.line("buffered loop", hit[0].clone());
        s.line("direct I/O loop", hit[1].clone());
        let mut d = Series::new(
            "buffered loop: share of the file's cached pages also cached in the image",
            Axis::linear("working set", "x memory"),
            Axis::linear("cached twice", "share"),
        );
        d.line("buffered loop", dup);
        let mut o = Series::new(
            "pages cached on each side over time (working set 3/4 of memory)",
            Axis::linear("reads", ""),
            Axis::linear("pages", "pages"),
        );
        for (direct, pts) in over_time {
            let mode = if direct { "direct" } else { "buffered" };
            o.line(
                &format!("{mode}: file"),
                pts.iter().map(|p| [p[0], p[1]]).collect(),
            );
            o.line(
                &format!("{mode}: image"),
                pts.iter().map(|p| [p[0], p[2]]).collect(),
            );
        }
        r.series(s).series(d).series(o);
        r.verdict = Verdict {
            holds: Some(half_dup >= 0.9 && direct_better_or_equal),
            measured: format!(
                "buffered: {:.0}% of the file's cached pages are also cached in the image at a working set of half of memory; direct I/O keeps one copy and its hit ratio is at least the buffered one's from half of memory up: {direct_better_or_equal}",
                half_dup * 100.0
            ),
            note: "Disk reads count image pages read from disk: the buffered image cache also acts as a second-level cache, which the table shows.".into(),
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_working_sets_are_cached_twice_when_buffered_once_when_direct() {
        let mut rng = klab_model::rng::seeded(1, 1);
        let b = run(256, 64, 2000, false, &mut rng);
        assert_eq!((b.upper, b.lower, b.twice), (64, 64, 64));
        let d = run(256, 64, 2000, true, &mut rng);
        assert_eq!((d.upper, d.lower, d.twice), (64, 0, 0));
        assert_eq!(d.disk_reads, 64, "each page read from disk once");
        assert_eq!(b.disk_reads, 64);
    }
}
