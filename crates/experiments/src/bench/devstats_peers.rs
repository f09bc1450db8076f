//! `klab bench devstats` on a real repository: whole processes of
//! `klab devstats` against the gitdm pipeline and `git log --numstat -M`
//! (see `bench/devstats.rs` for the variables that turn it on).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError};
use klab_lab::report::{Table, Verdict};

/// A first run (empty cache) must be at least this many times faster than
/// the gitdm pipeline.
pub const MIN_FIRST_RUN_SPEEDUP: f64 = 3.0;

/// A repeated or overlapping range (records cached) must be at least this
/// many times faster than the gitdm pipeline.
pub const MIN_CACHED_SPEEDUP: f64 = 20.0;

/// Wall times and peak RSS of the runs of one command.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Runs {
    /// Wall time of each run, seconds.
    pub wall_s: Vec<f64>,
    /// Peak RSS of each run (the largest process of a pipeline), KiB.
    pub rss_kib: Vec<u64>,
}

impl Runs {
    fn add(&mut self, run: &klab_slab::workload::ProgramRun) {
        self.wall_s.push(run.elapsed.as_secs_f64());
        self.rss_kib.push(run.max_rss_kib);
    }

    /// Median wall time, seconds.
    pub fn wall(&self) -> Option<f64> {
        let mut v = self.wall_s.clone();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    }

    /// Median peak RSS, MiB.
    pub fn rss_mib(&self) -> Option<f64> {
        let mut v = self.rss_kib.clone();
        v.sort_unstable();
        v.get(v.len() / 2).map(|k| *k as f64 / 1024.0)
    }
}

/// What the real-repository comparison measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PeersData {
    /// The repository.
    pub repo: String,
    /// The range counted.
    pub range: String,
    /// The overlapping range, when given.
    pub overlap: Option<String>,
    /// Whether gitdm was given (`KLAB_GITDM`).
    pub gitdm: bool,
    /// This process's peak RSS before the children ran, KiB.
    pub floor_kib: u64,
    /// `git log --numstat -M RANGE | gitdm -u -s -a -n`.
    pub pipeline: Runs,
    /// `git log --numstat -M RANGE`.
    pub log: Runs,
    /// `klab devstats` with an empty cache.
    pub first: Runs,
    /// `klab devstats` on the range again (cache warm).
    pub cached: Runs,
    /// `klab devstats` on the overlapping range (cache warm).
    pub over: Runs,
}

impl PeersData {
    /// The gitdm pipeline's median wall time over `runs`'.
    pub fn speedup(&self, runs: &Runs) -> Option<f64> {
        self.pipeline.wall().zip(runs.wall()).map(|(b, w)| b / w)
    }
}

/// Runs `cmd` to the end; an error names it when it fails.
fn run_ok(
    what: &str,
    cmd: &mut Command,
) -> Result<klab_slab::workload::ProgramRun, ExperimentError> {
    let run = klab_slab::workload::run_program(cmd)
        .map_err(|e| ExperimentError::Host(format!("{what}: {e}")))?;
    if !run.success {
        return Err(ExperimentError::Host(format!("{what} failed")));
    }
    Ok(run)
}

/// A `klab devstats` run (this executable) with its cache in `cache`.
fn devstats(klab: &Path, repo: &Path, range: &str, cache: &Path) -> Command {
    let mut c = Command::new(klab);
    c.arg("devstats")
        .arg(repo)
        .arg(range)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--json", "-"]);
    c
}

/// The issue's comparison on a real repository: whole processes,
/// interleaved, median of 3 (1 with `--quick`).
pub(crate) fn against_gitdm(ctx: &Ctx<'_>, repo: &Path) -> Result<PeersData, ExperimentError> {
    let mut d = PeersData {
        repo: repo.display().to_string(),
        range: std::env::var("KLAB_DEVSTATS_RANGE").unwrap_or_else(|_| "HEAD".into()),
        overlap: std::env::var("KLAB_DEVSTATS_OVERLAP").ok(),
        floor_kib: own_peak_kib(),
        ..PeersData::default()
    };
    let gitdm = std::env::var_os("KLAB_GITDM").map(PathBuf::from);
    d.gitdm = gitdm.is_some();
    let klab = std::env::current_exe().map_err(|e| ExperimentError::Host(e.to_string()))?;
    let tmp = tempfile::tempdir().map_err(|e| ExperimentError::Host(e.to_string()))?;
    let warm = tmp.path().join("warm");
    let git_log = format!("git -C '{}' log --numstat -M {}", repo.display(), d.range);
    // Warm the cache once; its output is the reference for every klab run.
    let reference = run_ok("klab devstats", &mut devstats(&klab, repo, &d.range, &warm))?.stdout;
    if let Some(o) = &d.overlap {
        run_ok(
            "klab devstats (overlap)",
            &mut devstats(&klab, repo, o, &warm),
        )?;
    }
    for rep in 0..ctx.size(3, 1) {
        if let Some(g) = &gitdm {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{git_log} | python3 '{}' -u -s -a -n", g.display()))
                .current_dir(g.parent().unwrap_or(Path::new(".")));
            d.pipeline.add(&run_ok("the gitdm pipeline", &mut c)?);
        }
        d.log.add(&run_ok(
            "git log",
            Command::new("sh").arg("-c").arg(&git_log),
        )?);
        let cold = tmp.path().join(format!("cold-{rep}"));
        let run = run_ok(
            "klab devstats (first)",
            &mut devstats(&klab, repo, &d.range, &cold),
        )?;
        if run.stdout != reference {
            return Err(ExperimentError::Host(
                "a first run printed other JSON than the cached run".into(),
            ));
        }
        d.first.add(&run);
        let run = run_ok(
            "klab devstats (cached)",
            &mut devstats(&klab, repo, &d.range, &warm),
        )?;
        if run.stdout != reference {
            return Err(ExperimentError::Host(
                "a cached run printed other JSON than a first run".into(),
            ));
        }
        d.cached.add(&run);
        if let Some(o) = &d.overlap {
            let mut c = devstats(&klab, repo, o, &warm);
            d.over.add(&run_ok("klab devstats (overlap)", &mut c)?);
        }
    }
    Ok(d)
}

/// The whole-process table.
pub(crate) fn table(d: &PeersData) -> Table {
    let range = &d.range;
    let mut t = Table::new(
        &format!(
            "Whole processes on {} {range}, median of runs (interleaved)",
            d.repo
        ),
        &[
            "command",
            "wall (s)",
            "peak RSS (MiB)",
            "gitdm pipeline wall / wall",
        ],
    );
    let mut row = |name: String, runs: &Runs| {
        if let Some(w) = runs.wall() {
            t.row(cells![name, w, runs.rss_mib(), d.speedup(runs)]);
        }
    };
    row(
        format!("git log --numstat -M {range} | gitdm -u -s -a -n"),
        &d.pipeline,
    );
    row(format!("git log --numstat -M {range}"), &d.log);
    row("klab devstats, first run (empty cache)".into(), &d.first);
    row("klab devstats, repeated range (cache)".into(), &d.cached);
    if let Some(o) = &d.overlap {
        row(
            format!("klab devstats {o}, overlapping range (cache)"),
            &d.over,
        );
    }
    t
}

/// Host notes of the comparison.
pub(crate) fn notes(d: &PeersData) -> Vec<String> {
    let mut notes = vec![format!(
        "peak RSS of a child counts the {:.0} MiB peak of this process before it (Linux keeps it across exec)",
        d.floor_kib as f64 / 1024.0
    )];
    if !d.gitdm {
        notes.push("KLAB_GITDM is not set: no gitdm pipeline".into());
    }
    notes
}

/// The verdict of the comparison: null without the gitdm pipeline.
pub(crate) fn verdict(d: &PeersData) -> Verdict {
    let rss_ok = d
        .pipeline
        .rss_mib()
        .zip(d.first.rss_mib())
        .map(|(p, k)| k <= p);
    let holds = match (d.speedup(&d.first), d.speedup(&d.cached), rss_ok) {
        (Some(f), Some(c), Some(m)) => {
            let o = d.speedup(&d.over).is_none_or(|o| o >= MIN_CACHED_SPEEDUP);
            Some(f >= MIN_FIRST_RUN_SPEEDUP && c >= MIN_CACHED_SPEEDUP && o && m)
        }
        _ => None,
    };
    let fmt = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.1}x"));
    Verdict {
        holds,
        measured: format!(
            "{}: against the gitdm pipeline, a first run is {} faster, a repeated range {}{}; peak RSS {:.0} MiB against {:.0} MiB; cached and uncached JSON identical",
            d.range,
            fmt(d.speedup(&d.first)),
            fmt(d.speedup(&d.cached)),
            d.overlap.as_ref().map_or(String::new(), |o| format!(
                ", {o} {}",
                fmt(d.speedup(&d.over))
            )),
            d.first.rss_mib().unwrap_or(0.0),
            d.pipeline.rss_mib().unwrap_or(0.0),
        ),
        note: format!(
            "Targets: first run at least {MIN_FIRST_RUN_SPEEDUP}x, a repeated or overlapping range at least \
             {MIN_CACHED_SPEEDUP}x faster than the gitdm pipeline, peak RSS at most its. Wall times depend on the \
             load: on a shared machine, interleaved runs compare like with like, but a 2-thread process gains \
             little when the CPUs are busy."
        ),
    }
}

/// This process's peak resident set so far, KiB (`VmHWM`).
fn own_peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(wall_s: f64, rss_mib: u64) -> Runs {
        Runs {
            wall_s: vec![wall_s * 2.0, wall_s, wall_s * 0.5],
            rss_kib: vec![rss_mib * 1024; 3],
        }
    }

    fn peers(first_s: f64, cached_s: f64, first_rss_mib: u64) -> PeersData {
        PeersData {
            repo: "/r".into(),
            range: "v1..v2".into(),
            gitdm: true,
            pipeline: runs(60.0, 200),
            log: runs(20.0, 100),
            first: runs(first_s, first_rss_mib),
            cached: runs(cached_s, 50),
            ..PeersData::default()
        }
    }

    #[test]
    fn medians_are_the_middle_run() {
        let r = runs(4.0, 3);
        assert_eq!(r.wall(), Some(4.0));
        assert_eq!(r.rss_mib(), Some(3.0));
        assert_eq!(Runs::default().wall(), None);
    }

    #[test]
    fn every_target_must_be_met() {
        // 60 s for gitdm: a 10 s first run (6x), 1 s cached (60x), less memory.
        let v = verdict(&peers(10.0, 1.0, 150));
        assert_eq!(v.holds, Some(true), "{}", v.measured);
        assert!(v.measured.contains("6.0x faster, a repeated range 60.0x"));
        // A first run only 2x faster.
        assert_eq!(verdict(&peers(30.0, 1.0, 150)).holds, Some(false));
        // Cached only 10x.
        assert_eq!(verdict(&peers(10.0, 6.0, 150)).holds, Some(false));
        // More memory than the pipeline.
        assert_eq!(verdict(&peers(10.0, 1.0, 250)).holds, Some(false));
        // An overlapping range that is slow.
        let mut d = peers(10.0, 1.0, 150);
        d.overlap = Some("v1.5..v2".into());
        d.over = runs(12.0, 50);
        assert_eq!(verdict(&d).holds, Some(false));
    }

    #[test]
    fn without_gitdm_nothing_is_judged() {
        let mut d = peers(10.0, 1.0, 150);
        d.gitdm = false;
        d.pipeline = Runs::default();
        assert_eq!(verdict(&d).holds, None);
        assert!(notes(&d).iter().any(|n| n.contains("KLAB_GITDM")));
        // The table leaves the pipeline's row out.
        assert_eq!(table(&d).rows.len(), 3);
    }
}
