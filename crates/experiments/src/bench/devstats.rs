//! `klab bench devstats`: devstats against `git log --numstat` on the same
//! synthetic history (the criterion benches in crates/tools/devstats time
//! the same workload and the line counter against imara-diff).
//!
//! git runs as a subprocess (it is the tool whose numbers devstats
//! matches); devstats runs in this process on 1 thread and on all cores.
//! The history is packed with `git repack -a -d` first, as real
//! repositories are (devstats reads packs through its own delta-base cache).
//! Each side runs `reps` times; the table reports the median.
//!
//! With `KLAB_DEVSTATS_REPO=PATH` (and `KLAB_DEVSTATS_RANGE`, default
//! `HEAD`), it first times whole processes on that repository, interleaved,
//! median of 3: `git log --numstat -M RANGE`, the gitdm pipeline
//! `git log --numstat -M RANGE | gitdm -u -s -a -n` (gitdm's script from
//! `KLAB_GITDM`, run by `python3` in its own directory for its
//! `gitdm.config`), and `klab devstats` (this executable) with an empty
//! cache directory (a first run, which fills it), with that cache warm (a
//! repeated range) and, with `KLAB_DEVSTATS_OVERLAP=RANGE2`, on a second
//! range over commits the first one saw. Peak RSS is each child's
//! `ru_maxrss` from `wait4()` (the largest process of a pipeline); Linux
//! counts the peak of the process a child was spawned from in it, so this
//! part runs before anything else here, and the notes give that floor.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use klab_devstats::synth::{self, SynthConfig};
use klab_devstats::walk::{self, NoProgress, Selection};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, Run};
use klab_lab::report::{Host, Report, Table, Verdict};

/// The benchmark.
pub struct DevstatsBench;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

impl DevstatsBench {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "devstats",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "devstats computes git's numstat for a whole range no slower than git log --numstat itself; on a real \
         repository (KLAB_DEVSTATS_REPO) it counts a range at least 3x faster than the gitdm pipeline on a first run \
         and 20x on a range seen before, in no more memory",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };
}

impl Run for DevstatsBench {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let mut r = self.blank_report(ctx);
        let peers = match std::env::var_os("KLAB_DEVSTATS_REPO") {
            Some(repo) => Some(crate::bench::devstats_peers::against_gitdm(
                ctx,
                &mut r,
                Path::new(&repo),
            )?),
            None => None,
        };
        let tmp = tempfile::tempdir().map_err(|e| ExperimentError::Host(e.to_string()))?;
        let dir = tmp.path().join("bench.git");
        let cfg = SynthConfig {
            commits: ctx.size(1500, 150),
            developers: ctx.size(200, 40),
            ..SynthConfig::default()
        };
        synth::generate(&dir, &cfg, &mut ctx.rng(1))
            .map_err(|e| ExperimentError::Host(e.to_string()))?;
        let packed = Command::new("git")
            .arg("--git-dir")
            .arg(&dir)
            .args(["repack", "-a", "-d", "-q"])
            .status()
            .is_ok_and(|s| s.success());
        let reps = ctx.size(5, 2);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let klab = |threads: usize| -> Result<Duration, ExperimentError> {
            let t = Instant::now();
            let repo = walk::open(&dir).map_err(|e| ExperimentError::Host(e.to_string()))?;
            let ids = walk::commits(&repo, &Selection::default())
                .map_err(|e| ExperimentError::Host(e.to_string()))?;
            walk::analyse(&repo, &ids, threads, false, &NoProgress)
                .map_err(|e| ExperimentError::Host(e.to_string()))?;
            Ok(t.elapsed())
        };
        let one = median((0..reps).map(|_| klab(1)).collect::<Result<_, _>>()?);
        let all = median((0..reps).map(|_| klab(cores)).collect::<Result<_, _>>()?);
        let git = (0..reps)
            .map(|_| {
                let t = Instant::now();
                let out = Command::new("git")
                    .arg("--git-dir")
                    .arg(&dir)
                    .args(["log", "--no-merges", "--numstat", "--format=%H %an", "main"])
                    .output()
                    .ok()?;
                out.status.success().then(|| t.elapsed())
            })
            .collect::<Option<Vec<_>>>()
            .map(median);
        let mut t = Table::new(
            "Whole-history numstat, median of runs",
            &["tool", "threads", "time (ms)", "git time / tool time"],
        );
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let ratio = |d: Duration| git.map(|g| g.as_secs_f64() / d.as_secs_f64());
        t.row(cells!["klab devstats", 1u64, ms(one), ratio(one)]);
        t.row(cells!["klab devstats", cores, ms(all), ratio(all)]);
        if let Some(g) = git {
            t.row(cells!["git log --numstat", 1u64, ms(g), 1.0]);
        }
        r.table(t);
        r.config("commits", cfg.commits as u64)
            .config("packed", packed)
            .config("reps", reps as u64);
        let mut notes = vec![format!("{cores} cores")];
        if let Some(p) = &peers {
            notes.extend(p.notes.iter().cloned());
        }
        if !packed {
            notes.push("git repack failed or git is missing: loose objects, not packs".into());
        }
        if git.is_none() {
            notes.push("git is not installed: no peer timing".into());
        }
        r.host = Host::measured(notes);
        if let Some(p) = peers {
            r.verdict = p.verdict;
            return Ok(r);
        }
        r.verdict = Verdict {
            holds: ratio(all).map(|x| x >= 1.0),
            measured: match git {
                Some(g) => format!(
                    "{} commits: devstats {:.0} ms on {cores} threads, {:.0} ms on one; git log --numstat {:.0} ms",
                    cfg.commits,
                    ms(all),
                    ms(one),
                    ms(g)
                ),
                None => format!("devstats {:.0} ms; git not available", ms(all)),
            },
            note: "The synthetic history is small; crates/tools/devstats/README.md has the measurement on a real \
                   repository of tens of thousands of commits."
                .into(),
        };
        Ok(r)
    }
}
