//! Real programs on klab's SLUB through `LD_PRELOAD`, part of `klab bench
//! slub`: `true` (the floor: what loading each library costs in RSS),
//! `git`, `python3` running an allocation-heavy script, `cc`
//! compiling a C file, and a larson-style C churn (4 threads, blocks freed
//! by other threads, a fork mid-run), each run on glibc's malloc (no
//! preload), on klab's preload library with the 3.2 caches (behind 6.18's
//! sheaves) and with the 2.6.24 caches (`KLAB_SLUB_ERA=2.6.24`), and on
//! the system's mimalloc (`libmimalloc.so.2`). Reports wall-clock time
//! and peak RSS (`ru_maxrss` of each child, from `wait4()`) and their
//! ratios to glibc, and checks that every allocator's output matches
//! glibc's.
//!
//! The preload library is found through `KLAB_SLAB_PRELOAD`, else next to
//! the running executable (`target/release/libklab_slab_preload.so`
//! after `cargo build --release -p klab-slab-preload`). What is missing
//! (the library, mimalloc, a program) is skipped and said in the notes.

use std::path::{Path, PathBuf};
use std::process::Command;

use klab_slab::workload::run_program;
use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::Ctx;
use klab_lab::report::{Report, Table};

/// The C larson churn of the preload tests.
const LARSON_C: &str = include_str!("../../../mm/slab-preload/tests/data/larson.c");

/// The allocation-heavy Python script.
const PY_SCRIPT: &str = r#"
import sys
n = int(sys.argv[1])
d = {i: str(i) * 5 for i in range(n)}
l = [list(range(i % 200)) for i in range(n // 10)]
s = sorted(d.values(), key=len)[:3]
t = [tuple(x) for x in l if len(x) % 3 == 0]
print(len(d), sum(map(len, l)), len(t), s)
"#;

/// A minimal runner: forks, sets `LD_PRELOAD` (from
/// `KLAB_CHILD_PRELOAD`) in the child only, execs the program and writes
/// the child's `ru_maxrss` to `KLAB_RUSAGE_OUT`. A child's `ru_maxrss`
/// includes the resident set of the process it was forked from (Linux
/// keeps the pre-exec peak), so the program must be forked from a process
/// this small rather than from klab.
const RUNNER_C: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 126;
    pid_t pid = fork();
    if (pid == 0) {
        const char *pre = getenv("KLAB_CHILD_PRELOAD");
        if (pre && *pre) setenv("LD_PRELOAD", pre, 1);
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &st, 0, &ru) != pid) return 126;
    const char *out = getenv("KLAB_RUSAGE_OUT");
    FILE *f = out ? fopen(out, "w") : NULL;
    if (f) { fprintf(f, "%ld\n", ru.ru_maxrss); fclose(f); }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 125;
}
"#;

/// Where mimalloc's shared library sits on Debian.
pub(crate) const MIMALLOC_SO: &str = "/usr/lib/x86_64-linux-gnu/libmimalloc.so.2";

/// An allocator a program can run on.
struct Peer {
    name: &'static str,
    preload: Option<PathBuf>,
    era: Option<&'static str>,
}

/// The preload library, if built.
pub(crate) fn preload_library() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KLAB_SLAB_PRELOAD") {
        return Some(PathBuf::from(p)).filter(|p| p.exists());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.to_path_buf(), dir.join("..")]
        .into_iter()
        .map(|d| d.join("libklab_slab_preload.so"))
        .find(|p| p.exists())
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One program: a name and how to build its command line.
struct Program {
    name: String,
    argv: Vec<String>,
    cwd: Option<PathBuf>,
}

/// Builds [`RUNNER_C`] with `cc` into `dir`.
pub(crate) fn build_runner(cc: &str, dir: &Path) -> Option<PathBuf> {
    let src = dir.join("runner.c");
    let bin = dir.join("runner");
    std::fs::write(&src, RUNNER_C).ok()?;
    Command::new(cc)
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .ok()?
        .success()
        .then_some(bin)
}

/// The programs this host can run.
fn programs(ctx: &Ctx<'_>, dir: &Path, notes: &mut Vec<String>) -> Vec<Program> {
    let mut v = Vec::new();
    // A program that allocates next to nothing: its RSS difference is what
    // each library costs just by being loaded (its code and data pages,
    // its first structures), the floor under every other row's.
    if have("true") {
        v.push(Program {
            name: "true (no allocation: the library's own pages)".into(),
            argv: vec!["true".into()],
            cwd: None,
        });
    }
    if have("git") {
        v.push(Program {
            name: "git help -a".into(),
            argv: vec!["git".into(), "help".into(), "-a".into()],
            cwd: Some(dir.to_path_buf()),
        });
    } else {
        notes.push("git not found: skipped".into());
    }
    if have("python3") {
        let n = ctx.size(300_000, 60_000);
        v.push(Program {
            name: format!("python3 dict/list churn (n = {n})"),
            argv: vec![
                "python3".into(),
                "-c".into(),
                PY_SCRIPT.into(),
                n.to_string(),
            ],
            cwd: None,
        });
    } else {
        notes.push("python3 not found: skipped".into());
    }
    let cc = ["cc", "gcc"].into_iter().find(|c| have(c));
    match cc {
        Some(cc) => {
            let src = dir.join("larson.c");
            let bin = dir.join("larson");
            let built = std::fs::write(&src, LARSON_C).is_ok()
                && Command::new(cc)
                    .args(["-O2", "-pthread", "-o"])
                    .arg(&bin)
                    .arg(&src)
                    .status()
                    .is_ok_and(|s| s.success());
            v.push(Program {
                name: format!("{cc} -O2 -c larson.c"),
                argv: vec![
                    cc.into(),
                    "-O2".into(),
                    "-c".into(),
                    "-o".into(),
                    dir.join("larson.o").display().to_string(),
                    src.display().to_string(),
                ],
                cwd: None,
            });
            if built {
                v.push(Program {
                    name: "larson.c (4 threads, cross-thread frees, fork)".into(),
                    argv: vec![bin.display().to_string()],
                    cwd: None,
                });
            } else {
                notes.push("larson.c did not build: skipped".into());
            }
        }
        None => notes.push("no C compiler (cc, gcc): compiler and larson.c skipped".into()),
    }
    v
}

/// The allocators a program runs on: glibc, klab's preload library in
/// both eras, and mimalloc where the system has it.
fn peers(lib: PathBuf, notes: &mut Vec<String>) -> Vec<Peer> {
    let mut peers = vec![
        Peer {
            name: "glibc",
            preload: None,
            era: None,
        },
        Peer {
            name: "klab 3.2+sheaves",
            preload: Some(lib.clone()),
            era: None,
        },
        Peer {
            name: "klab 2.6.24",
            preload: Some(lib),
            era: Some("2.6.24"),
        },
    ];
    if Path::new(MIMALLOC_SO).exists() {
        peers.push(Peer {
            name: "mimalloc",
            preload: Some(MIMALLOC_SO.into()),
            era: None,
        });
    } else {
        notes.push(format!(
            "{MIMALLOC_SO} not found (Debian: apt-get install libmimalloc2.0): mimalloc column empty"
        ));
    }
    peers
}

/// The command that runs `p` on `peer`: through the rusage runner when
/// there is one (it sets `LD_PRELOAD` in its child only), else directly.
fn command(p: &Program, peer: &Peer, runner: Option<&Path>, rss_file: &Path) -> Command {
    let mut cmd = match runner {
        Some(r) => {
            let mut c = Command::new(r);
            c.args(&p.argv).env("KLAB_RUSAGE_OUT", rss_file).env(
                "KLAB_CHILD_PRELOAD",
                peer.preload.as_deref().unwrap_or(Path::new("")),
            );
            c
        }
        None => {
            let mut c = Command::new(&p.argv[0]);
            c.args(&p.argv[1..]);
            c
        }
    };
    cmd.env_remove("LD_PRELOAD");
    if runner.is_none()
        && let Some(l) = &peer.preload
    {
        cmd.env("LD_PRELOAD", l);
    }
    if let Some(d) = &p.cwd {
        cmd.current_dir(d);
    }
    match peer.era {
        Some(e) => cmd.env("KLAB_SLUB_ERA", e),
        None => cmd.env_remove("KLAB_SLUB_ERA"),
    };
    cmd
}

/// Where the runs of one host happen: the rusage runner (if built) and
/// the file it writes a child's peak RSS to.
struct Runner {
    runner: Option<PathBuf>,
    rss_file: PathBuf,
    reps: usize,
}

impl Runner {
    /// `p` on `peer`, `reps` times: the best time and the largest peak RSS
    /// (KiB) of the runs that succeeded. The first successful output of a
    /// program is the reference every other run's output is checked
    /// against.
    fn best(
        &self,
        p: &Program,
        peer: &Peer,
        reference: &mut Option<Vec<u8>>,
        notes: &mut Vec<String>,
    ) -> Option<(f64, u64)> {
        let mut best: Option<(f64, u64)> = None;
        for _ in 0..self.reps {
            let mut cmd = command(p, peer, self.runner.as_deref(), &self.rss_file);
            match run_program(&mut cmd) {
                Ok(mut run) if run.success => {
                    if self.runner.is_some() {
                        run.max_rss_kib = std::fs::read_to_string(&self.rss_file)
                            .ok()
                            .and_then(|s| s.trim().parse().ok())
                            .unwrap_or(0);
                    }
                    match reference {
                        None => *reference = Some(run.stdout.clone()),
                        Some(o) if *o != run.stdout => notes.push(format!(
                            "{}: output on {} differs from glibc's",
                            p.name, peer.name
                        )),
                        Some(_) => {}
                    }
                    let t = run.elapsed.as_secs_f64();
                    best = Some(match best {
                        Some((bt, br)) => (bt.min(t), br.max(run.max_rss_kib)),
                        None => (t, run.max_rss_kib),
                    });
                }
                Ok(_) => notes.push(format!("{} failed on {}", p.name, peer.name)),
                Err(e) => notes.push(format!("{} could not run on {}: {e}", p.name, peer.name)),
            }
        }
        best
    }
}

/// What the real programs did: `results[program][peer]` is the best time
/// (seconds) and the largest peak RSS (KiB) of the runs that succeeded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PreloadRun {
    /// The programs, in table order.
    pub(crate) programs: Vec<String>,
    /// The allocators (glibc first), in column order.
    pub(crate) peers: Vec<String>,
    /// `results[program][peer]`.
    pub(crate) results: Vec<Vec<Option<(f64, u64)>>>,
    /// Runs of each program on each allocator.
    pub(crate) reps: usize,
}

/// Runs the real programs under `LD_PRELOAD` on every allocator; `None`
/// (with the reason in `notes`) when the preload library or a temporary
/// directory is missing.
pub(crate) fn measure(ctx: &Ctx<'_>, notes: &mut Vec<String>) -> Option<PreloadRun> {
    let Some(lib) = preload_library() else {
        notes.push(
            "LD_PRELOAD programs skipped: libklab_slab_preload.so not found (build it with `cargo build --release -p klab-slab-preload`, or set KLAB_SLAB_PRELOAD)"
                .into(),
        );
        return None;
    };
    let peers = peers(lib, notes);
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            notes.push(format!(
                "LD_PRELOAD programs skipped: no temporary directory: {e}"
            ));
            return None;
        }
    };
    let progs = programs(ctx, dir.path(), notes);
    let runner = Runner {
        runner: ["cc", "gcc"]
            .into_iter()
            .find(|c| have(c))
            .and_then(|cc| build_runner(cc, dir.path())),
        rss_file: dir.path().join("maxrss"),
        reps: ctx.size(3, 1),
    };
    if runner.runner.is_none() {
        notes.push(
            "no C compiler for the rusage runner: peak RSS of programs includes klab's own as a floor"
                .into(),
        );
    }
    ctx.progress
        .begin("slub bench: LD_PRELOAD programs", progs.len() as u64);
    let mut results: Vec<Vec<Option<(f64, u64)>>> = Vec::new();
    for p in &progs {
        let mut reference: Option<Vec<u8>> = None;
        let row = peers
            .iter()
            .map(|peer| runner.best(p, peer, &mut reference, notes))
            .collect();
        results.push(row);
        ctx.progress.advance(1);
    }
    ctx.progress.end();
    notes.dedup();
    Some(PreloadRun {
        programs: progs.into_iter().map(|p| p.name).collect(),
        peers: peers.iter().map(|p| p.name.to_owned()).collect(),
        results,
        reps: runner.reps,
    })
}

/// klab 3.2+sheaves' time over glibc's on the C larson, if it ran on both.
pub(crate) fn larson_ratio(run: &PreloadRun) -> Option<f64> {
    let (_, row) = run
        .programs
        .iter()
        .zip(&run.results)
        .find(|(p, _)| p.starts_with("larson.c"))?;
    row.get(1)
        .copied()
        .flatten()
        .zip(row[0])
        .map(|((s, _), (b, _))| s / b)
}

/// Adds the time and peak-RSS tables of the programs' runs to `r`.
pub(crate) fn tables(run: &PreloadRun, r: &mut Report) {
    let names: Vec<&str> = run.peers.iter().map(String::as_str).collect();
    let mut cols = vec!["program".to_owned()];
    cols.extend(names.iter().map(|n| format!("{n} (ms)")));
    cols.extend(names[1..].iter().map(|n| format!("{n} / glibc time")));
    let cols: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut t = Table::new(
        &format!(
            "Real programs under LD_PRELOAD: wall-clock time (best of {})",
            run.reps
        ),
        &cols,
    );
    let mut rcols = vec!["program".to_owned()];
    rcols.extend(names.iter().map(|n| format!("{n} (KiB)")));
    rcols.extend(names[1..].iter().map(|n| format!("{n} / glibc RSS")));
    rcols.push(format!("{} - glibc (KiB)", names[1]));
    let rcols: Vec<&str> = rcols.iter().map(String::as_str).collect();
    let mut rt = Table::new(
        "Real programs under LD_PRELOAD: peak RSS (ru_maxrss)",
        &rcols,
    );
    for (p, row) in run.programs.iter().zip(&run.results) {
        let base = row[0];
        let mut cells = cells![p.clone()];
        let mut rcells = cells![p.clone()];
        for v in row {
            cells.push(v.map(|(s, _)| s * 1e3).into());
            rcells.push(v.map(|(_, k)| k).into());
        }
        for v in &row[1..] {
            let tr = v.zip(base).map(|((s, _), (b, _))| s / b);
            let rr = v
                .zip(base)
                .filter(|(_, (_, b))| *b > 0)
                .map(|((_, k), (_, b))| k as f64 / b as f64);
            cells.push(tr.into());
            rcells.push(rr.into());
        }
        rcells.push(
            row[1]
                .zip(base)
                .map(|((_, k), (_, b))| k as i64 - b as i64)
                .into(),
        );
        t.row(cells);
        rt.row(rcells);
    }
    // Peers absent on this host keep their columns empty.
    r.table(t);
    r.table(rt);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tables_and_the_larson_ratio_come_from_the_runs() {
        let run = PreloadRun {
            programs: vec!["true".into(), "larson.c (4 threads)".into()],
            peers: vec!["glibc".into(), "klab 3.2+sheaves".into()],
            results: vec![
                vec![Some((0.002, 1000)), Some((0.004, 1500))],
                vec![Some((0.5, 8000)), None],
            ],
            reps: 3,
        };
        // larson did not run on klab: no ratio; then it did, twice as long.
        assert_eq!(larson_ratio(&run), None);
        let mut ran = run.clone();
        ran.results[1][1] = Some((1.0, 6000));
        assert_eq!(larson_ratio(&ran), Some(2.0));
        let mut r = Report::new("slub", "", "");
        tables(&ran, &mut r);
        assert_eq!(
            r.tables[0].title,
            "Real programs under LD_PRELOAD: wall-clock time (best of 3)"
        );
        // program, glibc (ms), klab (ms), klab / glibc time.
        assert_eq!(r.tables[0].rows[0][3].display(), "2.000");
        // program, glibc KiB, klab KiB, klab / glibc RSS, klab - glibc.
        assert_eq!(r.tables[1].rows[1][3].display(), "0.7500");
        assert_eq!(r.tables[1].rows[1][4].display(), "-2000");
    }
}
