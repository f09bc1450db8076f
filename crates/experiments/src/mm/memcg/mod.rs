//! The memory-controller experiments (seed 000_2fa08a6962ebae3f.txt,
//! "Controlling memory use in containers", LWN, July 2007).
//!
//! * `memcg`: runs a scenario file (`--scenario FILE`, see [`scenario`]) or
//!   a built-in one, and reports every container and task.
//! * `memcg-limit`: the page's use case of "keeping filesystem-intensive
//!   background jobs (updatedb, backups, etc.) within certain memory
//!   bounds": an interactive working set beside a backup stream, without
//!   and with the controller.
//! * `memcg-oom`: "some process will die, but other containers should be
//!   unaffected".
//! * `memcg-shared`: the question the page leaves open ("will require
//!   extensive testing"): do charges of shared pages spread across
//!   containers, or pile up in a single unlimited one?
//!
//! Each also reports the cost the page names: "five pointers ... and one
//! atomic_t for every active page". `memcg-limit` measures it as well
//! (module `page_cgroup`): a `page_cgroup` object from SLUB for every charged
//! page (2.6.25), against 2.6.27's array allocated at boot.
//!
//! All run in the machine model (`klab_model::mm::memcontrol`) and are
//! deterministic.

mod page_cgroup;
pub mod runner;
pub mod scenario;

use klab_model::mm::memcontrol::meta_page_bytes;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, ExperimentError, Identity, InputKind, Run};
use klab_lab::report::{Axis, Report, Series, Table, Verdict};
use klab_model::machine::PAGE_SIZE;
use runner::{RunResult, TaskResult, run_in};

/// The built-in scenario of the `memcg` experiment, and an example of the
/// file format.
pub const DEFAULT_SCENARIO: &str = r#"# A web server, a nightly backup and a build, on a 16 MiB machine.
[machine]
memory = "16MiB"
balance = "classic"
steps = 60000
sample_every = 600

[[container]]
path = "/web"
limit = "8M"

[[container]]
path = "/batch"
limit = "2M"

[[container]]
path = "/batch/build"
limit = "1M"

[[task]]
id = 1
container = "/web"
workload = "loop"
file = 1
pages = 1536

[[task]]
id = 2
container = "/batch"
workload = "stream"
file = 2
pages = 50000
start = 10000

[[task]]
id = 3
container = "/batch/build"
workload = "random"
file = 3
pages = 2048
start = 20000

[[task]]
id = 4
container = "/web"
workload = "anon"
pages = 256
"#;

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Tables and plots of a run, labelled `label` when a report holds several.
pub fn report_run(r: &mut Report, res: &RunResult, label: &str) {
    let sfx = if label.is_empty() {
        String::new()
    } else {
        format!(" ({label})")
    };
    let mut c = Table::new(
        &format!("containers{sfx}"),
        &[
            "container",
            "limit",
            "usage (pages)",
            "max usage (pages)",
            "failcnt",
            "oom kills",
            "limit reclaim (pages)",
        ],
    );
    for x in &res.containers {
        c.row(cells![
            x.path.clone(),
            x.limit.clone(),
            x.usage_pages,
            x.max_usage_pages,
            x.failcnt,
            x.oom_kill,
            x.pgsteal
        ]);
    }
    let mut t = Table::new(
        &format!("tasks{sfx}"),
        &[
            "task",
            "container",
            "workload",
            "accesses",
            "hits",
            "hit ratio",
            "failed",
            "state",
            "rss (pages)",
        ],
    );
    for x in &res.tasks {
        t.row(cells![
            x.id,
            x.container.clone(),
            x.workload.describe(),
            x.accesses,
            x.hits,
            ratio(x.hits, x.accesses),
            x.failed,
            x.killed_at
                .map_or("alive".to_owned(), |s| format!("killed at step {s}")),
            x.rss
        ]);
    }
    r.table(c).table(t);
    if !res.failures.is_empty() {
        let mut f = Table::new(
            &format!("memory failures{sfx}"),
            &[
                "step",
                "pfn",
                "result",
                "kernel's message",
                "tasks killed now",
                "file with EIO",
                "data lost",
            ],
        );
        for (step, rep) in &res.failures {
            f.row(cells![
                *step,
                rep.pfn,
                rep.result.name(),
                rep.message(),
                rep.killed
                    .iter()
                    .map(|t| t.0.to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                rep.eio_file.map(|f| f.0),
                rep.data_lost
            ]);
        }
        r.table(f);
    }
    let mut s = Series::new(
        &format!("pages charged to each container{sfx}"),
        Axis::linear("accesses", ""),
        Axis::linear("charged", "pages"),
    );
    for (i, p) in res.paths.iter().enumerate() {
        s.line(
            p,
            res.samples
                .iter()
                .map(|x| [x.step as f64, x.usage[i] as f64])
                .collect(),
        );
    }
    r.series(s);
    for &f in &res.shared_files {
        let mut s = Series::new(
            &format!("shared file {f}: resident pages by the container charged{sfx}"),
            Axis::linear("accesses", ""),
            Axis::linear("pages", "pages"),
        );
        for (i, p) in res.paths.iter().enumerate() {
            s.line(
                p,
                res.samples
                    .iter()
                    .map(|x| [x.step as f64, x.shared[&f][i] as f64])
                    .collect(),
            );
        }
        r.series(s);
    }
}

/// The page's cost table: tracking bytes per page, 2007 patch against the
/// model.
fn cost_table(r: &mut Report, frames: u64) {
    let mut t = Table::new(
        "cost of tracking every page (\"five pointers ... and one atomic_t\")",
        &[
            "design",
            "bytes per page",
            "for this machine",
            "for 4 GiB of RAM (MiB)",
        ],
    );
    let pages_4g = (4u64 << 30) / PAGE_SIZE;
    for (name, per) in [
        (
            "2007 patch, 64-bit (meta_page + page pointer)",
            meta_page_bytes(8),
        ),
        ("2007 patch, 32-bit", meta_page_bytes(4)),
        (
            "klab model (a u16 container id in struct page)",
            std::mem::size_of::<u16>() as u64,
        ),
    ] {
        t.row(cells![
            name,
            per,
            per * frames,
            (per * pages_4g) as f64 / f64::from(1u32 << 20)
        ]);
    }
    r.table(t);
}

/// `memcg`: a scenario file, or the built-in one.
pub struct MemcgScenario;

impl MemcgScenario {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "memcg",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "containers get memory limits, per-container reclaim and a per-container OOM killer (any scenario, --scenario FILE)",
        inputs: &[InputKind::Scenario],
        hibernates: Ok(()),
    };
}

impl Run for MemcgScenario {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        // Read inside a job, so a hibernation image carries the scenario.
        let (s, source) = ctx.once("memcg: read the scenario", 0, |_| {
            Ok(match ctx.inputs.scenario.as_deref() {
                Some(path) => (
                    scenario::read(path).map_err(|e| ExperimentError::Input {
                        path: path.to_owned(),
                        message: format!("line {}: {}", e.line, e.message),
                    })?,
                    path.display().to_string(),
                ),
                None => {
                    let mut s = scenario::parse(DEFAULT_SCENARIO, "built-in scenario")
                        .expect("the built-in scenario parses");
                    if ctx.quick {
                        s.steps /= 4;
                        s.sample_every /= 4;
                    }
                    (s, "built-in".to_owned())
                }
            })
        })?;
        let mut rng = ctx.rng(1);
        let mut r = self.blank_report(ctx);
        r.config("scenario", source)
            .config("frames", s.frames)
            .config("steps", s.steps)
            .config("balance", s.balance.name());
        ctx.progress.begin("memcg scenario", 0);
        let res = run_in(ctx, &s, &mut rng)?;
        ctx.progress.end();
        report_run(&mut r, &res, "");
        cost_table(&mut r, s.frames);
        let over = res
            .containers
            .iter()
            .filter(|c| c.limit != "-1" && c.limit != "-1 (root)")
            .count();
        r.verdict = Verdict {
            holds: None,
            measured: format!(
                "{} containers ({} limited), {} tasks, {} killed by their container's OOM killer, {} refused charges",
                res.containers.len(),
                over,
                res.tasks.len(),
                res.tasks.iter().filter(|t| t.killed_at.is_some()).count(),
                res.containers.iter().skip(1).map(|c| c.failcnt).sum::<u64>()
            ),
            note: "Charges walk the hierarchy; usage is hierarchical (a parent counts its children's pages).".into(),
        };
        Ok(r)
    }
}

pub(crate) fn limit_scenario(frames: u64, steps: u64, batch_limit_pages: Option<u64>) -> String {
    let hot = frames / 2;
    let limit = batch_limit_pages.map_or("-1".to_owned(), |p| (p * PAGE_SIZE).to_string());
    format!(
        r#"[machine]
memory = "{mem}"
steps = {steps}
sample_every = {sample}

[[container]]
path = "/interactive"

[[container]]
path = "/backup"
limit = "{limit}"

[[task]]
id = 1
container = "/interactive"
workload = "loop"
file = 1
pages = {hot}

[[task]]
id = 2
container = "/backup"
workload = "stream"
file = 2
pages = {stream}
start = {start}
"#,
        mem = frames * PAGE_SIZE,
        sample = (steps / 120).max(1),
        stream = steps,
        start = hot * 3,
    )
}

/// `memcg-limit`: a backup stream beside an interactive working set.
pub struct MemcgLimit;

impl MemcgLimit {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "memcg-limit",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "a container keeps a file-heavy background job (updatedb, a backup) from pushing everything else out of memory",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for MemcgLimit {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let frames: u64 = ctx.size(4096, 1024);
        let steps = frames * 24;
        let batch_limit = frames / 8;
        let mut r = self.blank_report(ctx);
        r.config("frames", frames)
            .config("steps", steps)
            .config("interactive_pages", frames / 2)
            .config("backup_limit_pages", batch_limit);
        let mut rng = ctx.rng(1);
        let mut hit = Vec::new();
        let mut curves = Vec::new();
        for (label, limit) in [
            ("without the controller", None),
            ("with the controller", Some(batch_limit)),
        ] {
            let s = scenario::parse(&limit_scenario(frames, steps, limit), label)
                .expect("generated scenario parses");
            let res = run_in(ctx, &s, &mut rng)?;
            let t = &res.tasks[0];
            // The interactive hit ratio once the backup runs: hits after its start.
            hit.push((
                label,
                ratio(t.hits, t.accesses),
                res.containers[2].max_usage_pages,
            ));
            curves.push((label, res.samples.clone()));
            report_run(&mut r, &res, label);
        }
        let mut s = Series::new(
            "interactive task: resident pages charged to /interactive",
            Axis::linear("accesses", ""),
            Axis::linear("resident", "pages"),
        );
        let mut b = Series::new(
            "backup job: pages charged to /backup",
            Axis::linear("accesses", ""),
            Axis::linear("resident", "pages"),
        );
        for (label, samples) in &curves {
            s.line(
                label,
                samples
                    .iter()
                    .map(|x| [x.step as f64, x.usage[1] as f64])
                    .collect(),
            );
            b.line(
                label,
                samples
                    .iter()
                    .map(|x| [x.step as f64, x.usage[2] as f64])
                    .collect(),
            );
        }
        r.series(s).series(b);
        let mut t = Table::new(
            "the interactive working set, without and with a limit on the backup",
            &["run", "interactive hit ratio", "backup's most pages"],
        );
        for (label, h, max) in &hit {
            t.row(cells![*label, *h, *max]);
        }
        r.table(t);
        cost_table(&mut r, frames);
        let pc = page_cgroup::table(&mut r, ctx);
        let (without, with) = (hit[0].1, hit[1].1);
        r.verdict = Verdict {
            holds: Some(with > without && hit[1].2 <= batch_limit),
            measured: format!(
                "interactive hit ratio {without:.3} without the controller, {with:.3} with the backup limited to {batch_limit} pages (it peaked at {} pages); tracking costs {:.1} bytes per charged page with 2.6.25's page_cgroup objects in SLUB when memory is full and {:.1} once a process has exited (fragmented slabs), against {} bytes a frame for 2.6.27's boot-time array",
                hit[1].2,
                pc[0].slab_bytes_per_page(),
                pc[1].slab_bytes_per_page(),
                klab_model::mm::slab::PAGE_CGROUP_SIZE
            ),
            note: "The interactive set is half of memory; the backup streams 24 times memory once."
                .into(),
        };
        Ok(r)
    }
}

pub(crate) fn oom_scenario(leak_pages: u64) -> String {
    format!(
        r#"[machine]
memory = "8MiB"
steps = {steps}
sample_every = {sample}

[[container]]
path = "/a"
limit = "1M"

[[container]]
path = "/b"
limit = "2M"

[[task]]
id = 1
container = "/a"
workload = "anon"
pages = 64

[[task]]
id = 2
container = "/a"
workload = "anon"
pages = {leak_pages}

[[task]]
id = 3
container = "/b"
workload = "anon"
pages = 256

[[task]]
id = 4
container = "/b"
workload = "loop"
file = 9
pages = 200
"#,
        steps = leak_pages * 4,
        sample = (leak_pages / 25).max(1),
    )
}

/// `memcg-oom`: a container that cannot get below its limit loses a task.
pub struct MemcgOom;

impl MemcgOom {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "memcg-oom",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "when a container cannot be forced below its limit, its own OOM killer kills a task inside it; other containers are unaffected",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for MemcgOom {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let leak: u64 = ctx.size(4096, 1024);
        let s =
            scenario::parse(&oom_scenario(leak), "memcg-oom").expect("generated scenario parses");
        let mut r = self.blank_report(ctx);
        r.config("leak_pages", leak)
            .config("limit_a_pages", 256u64)
            .config("swap", 0u64);
        let res = run_in(ctx, &s, &mut ctx.rng(1))?;
        report_run(&mut r, &res, "");
        let killed: Vec<&TaskResult> = res.tasks.iter().filter(|t| t.killed_at.is_some()).collect();
        let b_untouched = res
            .tasks
            .iter()
            .filter(|t| t.container == "/b")
            .all(|t| t.killed_at.is_none() && t.failed == 0);
        let b_rss = res.tasks[2].rss;
        let inside = killed.iter().all(|t| t.container == "/a");
        r.verdict = Verdict {
            holds: Some(!killed.is_empty() && inside && b_untouched && b_rss == 256),
            measured: format!(
                "killed: {}; /b's tasks alive with all {} anonymous pages resident and no failed access",
                killed
                    .iter()
                    .map(|t| format!("task {} in {} at step {}", t.id, t.container, t.killed_at.unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join(", "),
                b_rss
            ),
            note: "No swap: /a's anonymous pages cannot be reclaimed, so after five fruitless reclaim passes its OOM killer runs.".into(),
        };
        Ok(r)
    }
}

fn shared_scenario(frames: u64, steps: u64, unlimited_c: bool) -> String {
    let lim = frames * PAGE_SIZE / 5;
    let c_limit = if unlimited_c {
        "-1".to_owned()
    } else {
        lim.to_string()
    };
    let lib = frames / 8;
    let data = frames / 2;
    let private = frames / 8;
    format!(
        r#"[machine]
memory = "{mem}"
steps = {steps}
sample_every = {sample}

[[container]]
path = "/a"
limit = "{lim}"

[[container]]
path = "/b"
limit = "{lim}"

[[container]]
path = "/c"
limit = "{c_limit}"

[[task]]
id = 1
container = "/a"
workload = "loop"
file = 100
pages = {lib}
[[task]]
id = 2
container = "/a"
workload = "random"
file = 101
pages = {data}
[[task]]
id = 3
container = "/a"
workload = "loop"
file = 201
pages = {private}

[[task]]
id = 4
container = "/b"
workload = "loop"
file = 100
pages = {lib}
[[task]]
id = 5
container = "/b"
workload = "random"
file = 101
pages = {data}
[[task]]
id = 6
container = "/b"
workload = "loop"
file = 202
pages = {private}

[[task]]
id = 7
container = "/c"
workload = "loop"
file = 100
pages = {lib}
[[task]]
id = 8
container = "/c"
workload = "random"
file = 101
pages = {data}
[[task]]
id = 9
container = "/c"
workload = "loop"
file = 203
pages = {private}
"#,
        mem = frames * PAGE_SIZE,
        sample = (steps / 100).max(1),
    )
}

/// `memcg-shared`: where the charges of shared pages end up.
pub struct MemcgShared;

impl MemcgShared {
    /// The experiment's identity.
    const ID: Identity = Identity {
        name: "memcg-shared",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "charges of shared pages spread across containers over time, or accumulate in a single unlimited container (\"will require extensive testing\")",
        inputs: &[],
        hibernates: Ok(()),
    };
}

impl Run for MemcgShared {
    fn id(&self) -> &'static Identity {
        &Self::ID
    }
    fn run(&self, ctx: &Ctx<'_>) -> Result<Report, ExperimentError> {
        let frames: u64 = ctx.size(4096, 1024);
        let steps = frames * 30;
        let mut r = self.blank_report(ctx);
        r.config("frames", frames)
            .config("steps", steps)
            .config("limit_pages", frames / 5)
            .config("library_pages", frames / 8)
            .config("data_pages", frames / 2);
        let mut summary = Table::new(
            "where the shared files' pages are charged at the end",
            &[
                "run",
                "file",
                "resident",
                "/a",
                "/b",
                "/c",
                "root",
                "charge moves",
                "share of the largest",
            ],
        );
        let mut measured = Vec::new();
        for (label, unlimited) in [("all limited", false), ("/c unlimited", true)] {
            let s = scenario::parse(&shared_scenario(frames, steps, unlimited), label)
                .expect("generated scenario parses");
            let res = run_in(ctx, &s, &mut ctx.rng(1))?;
            for &f in &res.shared_files {
                let last = &res.samples.last().expect("samples").shared[&f];
                let total: u64 = last.iter().sum();
                // paths: "/", "/a", "/b", "/c"
                let max = last[1..].iter().copied().max().unwrap_or(0);
                summary.row(cells![
                    label,
                    if f == 100 { "library" } else { "data" },
                    total,
                    last[1],
                    last[2],
                    last[3],
                    last[0],
                    res.migrations[&f],
                    ratio(max, total)
                ]);
                measured.push(format!(
                    "{label}, {}: /a {} /b {} /c {} of {total} ({} moves)",
                    if f == 100 { "library" } else { "data" },
                    last[1],
                    last[2],
                    last[3],
                    res.migrations[&f]
                ));
            }
            report_run(&mut r, &res, label);
        }
        r.table(summary);
        r.verdict = Verdict {
            holds: None,
            measured: measured.join("; "),
            note: "Three containers each read a shared library (looped) and a shared data file (random pages), plus a private working set.".into(),
        };
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::Inputs;
    use runner::run;

    #[test]
    fn default_scenario_runs_and_is_deterministic() {
        let s = scenario::parse(DEFAULT_SCENARIO, "built-in").unwrap();
        let a = run(&s, &mut klab_model::rng::seeded(1, 1)).unwrap();
        let b = run(&s, &mut klab_model::rng::seeded(1, 1)).unwrap();
        assert_eq!(format!("{:?}", a.samples), format!("{:?}", b.samples));
        // The build container never passes its 1 MiB limit, nor /batch its 2 MiB.
        let build = a
            .containers
            .iter()
            .find(|c| c.path == "/batch/build")
            .unwrap();
        assert!(build.max_usage_pages <= 256);
        let batch = a.containers.iter().find(|c| c.path == "/batch").unwrap();
        assert!(batch.max_usage_pages <= 512 && batch.failcnt > 0);
    }

    #[test]
    fn oom_kills_inside_the_container_only() {
        let inputs = Inputs::default();
        let r = MemcgOom.run(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(r.verdict.holds, Some(true), "{}", r.verdict.measured);
        assert!(
            r.verdict.measured.starts_with("killed: task 2 in /a"),
            "{}",
            r.verdict.measured
        );
    }

    #[test]
    fn the_limit_protects_the_interactive_set() {
        let inputs = Inputs::default();
        let r = MemcgLimit.run(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(r.verdict.holds, Some(true), "{}", r.verdict.measured);
    }
}
