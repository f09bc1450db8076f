//! `klab bench devstats` on a real repository: whole processes of
//! `klab devstats` against the gitdm pipeline and `git log --numstat -M`
//! (see devstats_bench.rs for the variables that turn it on).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError};
use klab_lab::report::{Report, Table, Verdict};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What the real-repository comparison found.
pub(crate) struct Peers {
    /// Host notes.
    pub(crate) notes: Vec<String>,
    /// The verdict of the comparison.
    pub(crate) verdict: Verdict,
}

/// Median wall time and peak RSS (KiB) of runs of one command.
#[derive(Default)]
struct Runs {
    wall: Vec<Duration>,
    rss: Vec<u64>,
}

impl Runs {
    fn add(&mut self, run: &klab_slab::workload::ProgramRun) {
        self.wall.push(run.elapsed);
        self.rss.push(run.max_rss_kib);
    }
    fn wall(&self) -> Option<f64> {
        (!self.wall.is_empty()).then(|| median(self.wall.clone()).as_secs_f64())
    }
    fn rss_mib(&self) -> Option<f64> {
        let mut v = self.rss.clone();
        v.sort_unstable();
        v.get(v.len() / 2).map(|k| *k as f64 / 1024.0)
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

/// The comparison on a real repository: whole processes,
/// interleaved, median of 3 (1 with `--quick`).
pub(crate) fn against_gitdm(
    ctx: &Ctx<'_>,
    r: &mut Report,
    repo: &Path,
) -> Result<Peers, ExperimentError> {
    let range = std::env::var("KLAB_DEVSTATS_RANGE").unwrap_or_else(|_| "HEAD".into());
    let overlap = std::env::var("KLAB_DEVSTATS_OVERLAP").ok();
    let gitdm = std::env::var_os("KLAB_GITDM").map(PathBuf::from);
    let klab = std::env::current_exe().map_err(|e| ExperimentError::Host(e.to_string()))?;
    let floor = own_peak_kib();
    let tmp = tempfile::tempdir().map_err(|e| ExperimentError::Host(e.to_string()))?;
    let warm = tmp.path().join("warm");
    let devstats = |range: &str, cache: &Path| {
        let mut c = Command::new(&klab);
        c.arg("devstats")
            .arg(repo)
            .arg(range)
            .arg("--cache-dir")
            .arg(cache)
            .args(["--json", "-"]);
        c
    };
    let git_log = format!("git -C '{}' log --numstat -M {range}", repo.display());
    // Warm the cache once; its output is the reference for every klab run.
    let reference = run_ok("klab devstats", &mut devstats(&range, &warm))?.stdout;
    if let Some(o) = &overlap {
        run_ok("klab devstats (overlap)", &mut devstats(o, &warm))?;
    }
    let (mut pipeline, mut log, mut first, mut cached, mut over): (Runs, Runs, Runs, Runs, Runs) =
        Default::default();
    for rep in 0..ctx.size(3, 1) {
        if let Some(g) = &gitdm {
            let dir = g.parent().unwrap_or(Path::new("."));
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("{git_log} | python3 '{}' -u -s -a -n", g.display()))
                .current_dir(dir);
            pipeline.add(&run_ok("the gitdm pipeline", &mut c)?);
        }
        log.add(&run_ok(
            "git log",
            Command::new("sh").arg("-c").arg(&git_log),
        )?);
        let cold = tmp.path().join(format!("cold-{rep}"));
        let run = run_ok("klab devstats (first)", &mut devstats(&range, &cold))?;
        if run.stdout != reference {
            return Err(ExperimentError::Host(
                "a first run printed other JSON than the cached run".into(),
            ));
        }
        first.add(&run);
        let run = run_ok("klab devstats (cached)", &mut devstats(&range, &warm))?;
        if run.stdout != reference {
            return Err(ExperimentError::Host(
                "a cached run printed other JSON than a first run".into(),
            ));
        }
        cached.add(&run);
        if let Some(o) = &overlap {
            over.add(&run_ok("klab devstats (overlap)", &mut devstats(o, &warm))?);
        }
    }
    let base = pipeline.wall();
    let mut t = Table::new(
        &format!(
            "Whole processes on {} {range}, median of runs (interleaved)",
            repo.display()
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
            t.row(cells![name, w, runs.rss_mib(), base.map(|b| b / w)]);
        }
    };
    row(
        format!("git log --numstat -M {range} | gitdm -u -s -a -n"),
        &pipeline,
    );
    row(format!("git log --numstat -M {range}"), &log);
    row("klab devstats, first run (empty cache)".into(), &first);
    row("klab devstats, repeated range (cache)".into(), &cached);
    if let Some(o) = &overlap {
        row(
            format!("klab devstats {o}, overlapping range (cache)"),
            &over,
        );
    }
    r.table(t);
    r.config("repo", repo.display().to_string())
        .config("range", range.clone());
    let mut notes = vec![format!(
        "peak RSS of a child counts the {:.0} MiB peak of this process before it (Linux keeps it across exec)",
        floor as f64 / 1024.0
    )];
    if gitdm.is_none() {
        notes.push("KLAB_GITDM is not set: no gitdm pipeline".into());
    }
    let ratio = |x: &Runs| base.zip(x.wall()).map(|(b, w)| b / w);
    let rss_ok = pipeline.rss_mib().zip(first.rss_mib()).map(|(p, k)| k <= p);
    let holds = match (ratio(&first), ratio(&cached), rss_ok) {
        (Some(f), Some(c), Some(m)) => {
            let o = ratio(&over).is_none_or(|o| o >= 20.0);
            Some(f >= 3.0 && c >= 20.0 && o && m)
        }
        _ => None,
    };
    let fmt = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.1}x"));
    Ok(Peers {
        notes,
        verdict: Verdict {
            holds,
            measured: format!(
                "{range}: against the gitdm pipeline, a first run is {} faster, a repeated range {}{}; peak RSS {:.0} MiB against {:.0} MiB; cached and uncached JSON identical",
                fmt(ratio(&first)),
                fmt(ratio(&cached)),
                overlap
                    .as_ref()
                    .map_or(String::new(), |o| format!(", {o} {}", fmt(ratio(&over)))),
                first.rss_mib().unwrap_or(0.0),
                pipeline.rss_mib().unwrap_or(0.0),
            ),
            note: "Targets: first run at least 3x, a repeated or overlapping range at least 20x faster than the \
                   gitdm pipeline, peak RSS at most its. Wall times depend on the load: on a shared machine, interleaved \
                   runs compare like with like, but a 2-thread process gains little when the CPUs are busy."
                .into(),
        },
    })
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
