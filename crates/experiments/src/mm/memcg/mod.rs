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
//!
//! # Verdicts
//!
//! * `memcg`: null. A scenario file states no expectation of its own; the
//!   tables show what happened.
//! * `memcg-limit`: holds when the interactive task's hit ratio with the
//!   backup limited beats the one without by at least
//!   [`MIN_HIT_RATIO_GAIN`], and the backup's peak stays within its limit.
//! * `memcg-oom`: holds when some task is killed, every task killed is in
//!   /a, and /b's tasks neither die nor fail an access and keep all their
//!   anonymous pages; null when no charge was refused (nothing for an OOM
//!   killer to do).
//! * `memcg-shared`: null. The page names two outcomes and asks which one
//!   happens; the tables answer.
//!
//! # When the claim fails
//!
//! * `memcg-limit`: with the backup's limit as large as memory
//!   ([`LimitConfig`] with `backup_limit_pages` = `frames`), the limit never
//!   bites and the backup pushes the interactive set out as it does without
//!   the controller. The test `a_limit_as_large_as_memory_protects_nothing`
//!   runs it.
//! * `memcg-oom`: the model's OOM killer picks its victim only inside the
//!   container whose charge failed (`mem_cgroup_out_of_memory()`), so a
//!   kill outside /a cannot happen in a run; `judge` is tested on data with
//!   a kill in /b, and a leak that fits under /a's limit gives null.

mod page_cgroup;
pub mod runner;
pub mod scenario;

use klab_model::mm::memcontrol::meta_page_bytes;

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity, InputKind};
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

/// What `memcg` measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ScenarioData {
    /// The scenario file's path, or "built-in".
    pub source: String,
    /// The scenario as run.
    pub scenario: scenario::Scenario,
    /// Every container and task.
    pub run: RunResult,
}

impl Experiment for MemcgScenario {
    type Data = ScenarioData;

    const ID: Identity = Identity {
        name: "memcg",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "containers get memory limits, per-container reclaim and a per-container OOM killer (any scenario, --scenario FILE)",
        inputs: &[InputKind::Scenario],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<ScenarioData, ExperimentError> {
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
        ctx.progress.begin("memcg scenario", 0);
        let run = run_in(ctx, &s, &mut rng)?;
        ctx.progress.end();
        Ok(ScenarioData {
            source,
            scenario: s,
            run,
        })
    }

    fn judge(&self, d: &ScenarioData) -> Verdict {
        let res = &d.run;
        let limited = res
            .containers
            .iter()
            .filter(|c| c.limit != "-1" && c.limit != "-1 (root)")
            .count();
        Verdict {
            holds: None,
            measured: format!(
                "{} containers ({} limited), {} tasks, {} killed by their container's OOM killer, {} refused charges",
                res.containers.len(),
                limited,
                res.tasks.len(),
                res.tasks.iter().filter(|t| t.killed_at.is_some()).count(),
                res.containers
                    .iter()
                    .skip(1)
                    .map(|c| c.failcnt)
                    .sum::<u64>()
            ),
            note: "A scenario states no expectation of its own, so there is nothing to judge it \
                   against: the tables show the limits, reclaim and OOM kills as they happened \
                   (memcg-limit, memcg-oom and memcg-shared judge the page's claims). Charges \
                   walk the hierarchy; usage is hierarchical (a parent counts its children's \
                   pages)."
                .into(),
        }
    }

    fn report(&self, d: &ScenarioData, _verdict: &Verdict, r: &mut Report) {
        r.config("scenario", d.source.as_str())
            .config("frames", d.scenario.frames)
            .config("steps", d.scenario.steps)
            .config("balance", d.scenario.balance.name());
        report_run(r, &d.run, "");
        cost_table(r, d.scenario.frames);
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

/// The interactive task's hit ratio must rise by at least this much with
/// the backup limited, for the limit to "keep it in memory".
pub const MIN_HIT_RATIO_GAIN: f64 = 0.1;

/// The two runs of `memcg-limit`, in order.
const LIMIT_RUNS: [&str; 2] = ["without the controller", "with the controller"];

/// What `memcg-limit` runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitConfig {
    /// Page frames of the machine.
    pub frames: u64,
    /// Accesses of the run.
    pub steps: u64,
    /// The backup container's limit in the second run.
    pub backup_limit_pages: u64,
    /// Frames of the machine that measures page_cgroup memory.
    pub page_cgroup_frames: u64,
}

impl LimitConfig {
    /// The built-in run: 4096 frames (1024 with `--quick`), 24 times as
    /// many accesses, the backup limited to an eighth of memory.
    pub fn page(quick: bool) -> Self {
        let frames = if quick { 1024 } else { 4096 };
        LimitConfig {
            frames,
            steps: frames * 24,
            backup_limit_pages: frames / 8,
            page_cgroup_frames: if quick { 2048 } else { 8192 },
        }
    }
}

/// What `memcg-limit` measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LimitData {
    /// The configuration.
    pub config: LimitConfig,
    /// Without, then with the limit on the backup.
    pub runs: Vec<RunResult>,
    /// page_cgroup memory at each moment of `page_cgroup::MOMENTS`.
    pub moments: Vec<page_cgroup::Moment>,
}

impl LimitData {
    /// The interactive task's hit ratio in run `i`.
    fn interactive(&self, i: usize) -> f64 {
        self.runs
            .get(i)
            .and_then(|r| r.tasks.first())
            .map_or(0.0, |t| ratio(t.hits, t.accesses))
    }

    /// The backup's most pages in run `i`.
    fn backup_peak(&self, i: usize) -> u64 {
        self.runs
            .get(i)
            .and_then(|r| r.containers.get(2))
            .map_or(0, |c| c.max_usage_pages)
    }
}

impl MemcgLimit {
    /// Measures with `cfg` (the built-in run uses [`LimitConfig::page`]).
    ///
    /// # Errors
    /// A run stopped to hibernate.
    pub fn measure_with(
        &self,
        ctx: &Ctx<'_>,
        cfg: LimitConfig,
    ) -> Result<LimitData, ExperimentError> {
        let mut rng = ctx.rng(1);
        let mut runs = Vec::new();
        for (label, limit) in LIMIT_RUNS
            .into_iter()
            .zip([None, Some(cfg.backup_limit_pages)])
        {
            let s = scenario::parse(&limit_scenario(cfg.frames, cfg.steps, limit), label)
                .expect("generated scenario parses");
            runs.push(run_in(ctx, &s, &mut rng)?);
        }
        Ok(LimitData {
            config: cfg,
            runs,
            moments: page_cgroup::measure(cfg.page_cgroup_frames),
        })
    }
}

impl Experiment for MemcgLimit {
    type Data = LimitData;

    const ID: Identity = Identity {
        name: "memcg-limit",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "a container keeps a file-heavy background job (updatedb, a backup) from pushing everything else out of memory",
        inputs: &[],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<LimitData, ExperimentError> {
        self.measure_with(ctx, LimitConfig::page(ctx.quick))
    }

    fn judge(&self, d: &LimitData) -> Verdict {
        let (without, with) = (d.interactive(0), d.interactive(1));
        let (limit, peak) = (d.config.backup_limit_pages, d.backup_peak(1));
        let pc = |i: usize| {
            d.moments
                .get(i)
                .map_or(f64::NAN, |m| m.slab_bytes_per_page())
        };
        Verdict {
            holds: Some(with - without >= MIN_HIT_RATIO_GAIN && peak <= limit),
            measured: format!(
                "interactive hit ratio {without:.3} without the controller, {with:.3} with the backup limited to {limit} pages (it peaked at {peak} pages); tracking costs {:.1} bytes per charged page with 2.6.25's page_cgroup objects in SLUB when memory is full and {:.1} once a process has exited (fragmented slabs), against {} bytes a frame for 2.6.27's boot-time array",
                pc(0),
                pc(1),
                klab_model::mm::slab::PAGE_CGROUP_SIZE
            ),
            note: format!(
                "The interactive set is half of memory; the backup streams {} times memory once. \
                 The limit protects the set when its hit ratio rises by at least \
                 {MIN_HIT_RATIO_GAIN}.",
                d.config.steps / d.config.frames.max(1)
            ),
        }
    }

    fn report(&self, d: &LimitData, _verdict: &Verdict, r: &mut Report) {
        let c = &d.config;
        r.config("frames", c.frames)
            .config("steps", c.steps)
            .config("interactive_pages", c.frames / 2)
            .config("backup_limit_pages", c.backup_limit_pages)
            .config("threshold.min_hit_ratio_gain", MIN_HIT_RATIO_GAIN);
        for (label, res) in LIMIT_RUNS.iter().zip(&d.runs) {
            report_run(r, res, label);
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
        let usage = |res: &RunResult, i: usize| -> Vec<[f64; 2]> {
            res.samples
                .iter()
                .map(|x| [x.step as f64, x.usage[i] as f64])
                .collect()
        };
        for (label, res) in LIMIT_RUNS.iter().zip(&d.runs) {
            s.line(label, usage(res, 1));
            b.line(label, usage(res, 2));
        }
        r.series(s).series(b);
        let mut t = Table::new(
            "the interactive working set, without and with a limit on the backup",
            &["run", "interactive hit ratio", "backup's most pages"],
        );
        for (i, label) in LIMIT_RUNS.iter().enumerate().take(d.runs.len()) {
            t.row(cells![*label, d.interactive(i), d.backup_peak(i)]);
        }
        r.table(t);
        cost_table(r, c.frames);
        page_cgroup::table(r, &d.moments);
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

/// /a's limit in `oom_scenario` (1 MiB).
const OOM_LIMIT_A_PAGES: u64 = 256;
/// Anonymous pages of /b's task 3 in `oom_scenario`: all must stay
/// resident.
const OOM_B_ANON_PAGES: u64 = 256;

/// What `memcg-oom` measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct OomData {
    /// Pages task 2 of /a leaks.
    pub leak_pages: u64,
    /// Every container and task.
    pub run: RunResult,
}

impl MemcgOom {
    /// Measures with task 2 of /a leaking `leak_pages` pages (the built-in
    /// run: 4096, 1024 with `--quick`).
    ///
    /// # Errors
    /// A run stopped to hibernate.
    pub fn measure_with(&self, ctx: &Ctx<'_>, leak_pages: u64) -> Result<OomData, ExperimentError> {
        let s = scenario::parse(&oom_scenario(leak_pages), "memcg-oom")
            .expect("generated scenario parses");
        Ok(OomData {
            leak_pages,
            run: run_in(ctx, &s, &mut ctx.rng(1))?,
        })
    }
}

impl Experiment for MemcgOom {
    type Data = OomData;

    const ID: Identity = Identity {
        name: "memcg-oom",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "when a container cannot be forced below its limit, its own OOM killer kills a task inside it; other containers are unaffected",
        inputs: &[],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<OomData, ExperimentError> {
        self.measure_with(ctx, ctx.size(4096, 1024))
    }

    fn judge(&self, d: &OomData) -> Verdict {
        let res = &d.run;
        let killed: Vec<&TaskResult> = res.tasks.iter().filter(|t| t.killed_at.is_some()).collect();
        let b_untouched = res
            .tasks
            .iter()
            .filter(|t| t.container == "/b")
            .all(|t| t.killed_at.is_none() && t.failed == 0);
        let b_rss = res.tasks.get(2).map_or(0, |t| t.rss);
        let inside = killed.iter().all(|t| t.container == "/a");
        let measured = format!(
            "killed: {}; /b's tasks alive with all {} anonymous pages resident and no failed access",
            killed
                .iter()
                .map(|t| format!(
                    "task {} in {} at step {}",
                    t.id,
                    t.container,
                    t.killed_at.unwrap_or(0)
                ))
                .collect::<Vec<_>>()
                .join(", "),
            b_rss
        );
        let note = "No swap: /a's anonymous pages cannot be reclaimed, so after five fruitless \
                    reclaim passes its OOM killer runs."
            .to_owned();
        if killed.is_empty() && res.containers.iter().all(|c| c.failcnt == 0) {
            return Verdict {
                holds: None,
                measured,
                note: format!(
                    "No charge was refused: /a's tasks fit under its limit of \
                     {OOM_LIMIT_A_PAGES} pages, so its OOM killer had nothing to do. {note}"
                ),
            };
        }
        Verdict {
            holds: Some(!killed.is_empty() && inside && b_untouched && b_rss == OOM_B_ANON_PAGES),
            measured,
            note,
        }
    }

    fn report(&self, d: &OomData, _verdict: &Verdict, r: &mut Report) {
        r.config("leak_pages", d.leak_pages)
            .config("limit_a_pages", OOM_LIMIT_A_PAGES)
            .config("swap", 0u64);
        report_run(r, &d.run, "");
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

/// The two runs of `memcg-shared`: a label, and whether /c is unlimited.
const SHARED_RUNS: [(&str, bool); 2] = [("all limited", false), ("/c unlimited", true)];

/// What `memcg-shared` measured.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct SharedData {
    /// Page frames of the machine.
    pub frames: u64,
    /// Accesses of each run.
    pub steps: u64,
    /// One run per entry of `SHARED_RUNS`.
    pub runs: Vec<RunResult>,
}

/// Where one shared file's pages are charged at the end of a run.
struct SharedEnd<'a> {
    label: &'a str,
    file: &'static str,
    /// Pages charged to "/", "/a", "/b", "/c".
    last: &'a [u64],
    moves: u64,
}

impl SharedData {
    /// Every shared file of every run, at the end.
    fn ends(&self) -> Vec<SharedEnd<'_>> {
        let mut out = Vec::new();
        for ((label, _), res) in SHARED_RUNS.iter().zip(&self.runs) {
            let Some(last) = res.samples.last() else {
                continue;
            };
            for &f in &res.shared_files {
                out.push(SharedEnd {
                    label,
                    file: if f == 100 { "library" } else { "data" },
                    last: &last.shared[&f],
                    moves: res.migrations[&f],
                });
            }
        }
        out
    }
}

impl Experiment for MemcgShared {
    type Data = SharedData;

    const ID: Identity = Identity {
        name: "memcg-shared",
        seed_page: "000_2fa08a6962ebae3f.txt",
        claim: "charges of shared pages spread across containers over time, or accumulate in a single unlimited container (\"will require extensive testing\")",
        inputs: &[],
        hibernates: Ok(()),
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<SharedData, ExperimentError> {
        let frames: u64 = ctx.size(4096, 1024);
        let steps = frames * 30;
        let mut runs = Vec::new();
        for (label, unlimited) in SHARED_RUNS {
            let s = scenario::parse(&shared_scenario(frames, steps, unlimited), label)
                .expect("generated scenario parses");
            runs.push(run_in(ctx, &s, &mut ctx.rng(1))?);
        }
        Ok(SharedData {
            frames,
            steps,
            runs,
        })
    }

    fn judge(&self, d: &SharedData) -> Verdict {
        let measured: Vec<String> = d
            .ends()
            .iter()
            .map(|e| {
                let total: u64 = e.last.iter().sum();
                format!(
                    "{}, {}: /a {} /b {} /c {} of {total} ({} moves)",
                    e.label, e.file, e.last[1], e.last[2], e.last[3], e.moves
                )
            })
            .collect();
        Verdict {
            holds: None,
            measured: measured.join("; "),
            note: "The page states two outcomes and asks which one happens, so there is no \
                   claim to hold or fail: the tables answer the question. Three containers each \
                   read a shared library (looped) and a shared data file (random pages), plus a \
                   private working set."
                .into(),
        }
    }

    fn report(&self, d: &SharedData, _verdict: &Verdict, r: &mut Report) {
        let frames = d.frames;
        r.config("frames", frames)
            .config("steps", d.steps)
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
        for e in d.ends() {
            let total: u64 = e.last.iter().sum();
            let max = e.last[1..].iter().copied().max().unwrap_or(0);
            summary.row(cells![
                e.label,
                e.file,
                total,
                e.last[1],
                e.last[2],
                e.last[3],
                e.last[0],
                e.moves,
                ratio(max, total)
            ]);
        }
        for ((label, _), res) in SHARED_RUNS.iter().zip(&d.runs) {
            report_run(r, res, label);
        }
        r.table(summary);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::Run;
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
        assert_eq!(r.config["threshold.min_hit_ratio_gain"].display(), "0.1000");
    }

    #[test]
    fn a_limit_as_large_as_memory_protects_nothing() {
        let inputs = Inputs::default();
        let page = LimitConfig::page(true);
        let d = MemcgLimit
            .measure_with(
                &Ctx::new(1, true, &inputs),
                LimitConfig {
                    backup_limit_pages: page.frames,
                    ..page
                },
            )
            .unwrap();
        let v = MemcgLimit.judge(&d);
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        assert!(
            (d.interactive(1) - d.interactive(0)).abs() < MIN_HIT_RATIO_GAIN,
            "{v:?}"
        );
    }

    #[test]
    fn the_limit_verdict_fails_on_a_small_gain_or_a_backup_over_its_limit() {
        let inputs = Inputs::default();
        let d = MemcgLimit.measure(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(MemcgLimit.judge(&d).holds, Some(true));
        let mut small = d.clone();
        small.runs[1].tasks[0].hits = small.runs[0].tasks[0].hits;
        small.runs[1].tasks[0].accesses = small.runs[0].tasks[0].accesses;
        assert_eq!(MemcgLimit.judge(&small).holds, Some(false));
        let mut over = d;
        over.runs[1].containers[2].max_usage_pages = over.config.backup_limit_pages + 1;
        assert_eq!(MemcgLimit.judge(&over).holds, Some(false));
    }

    #[test]
    fn the_oom_verdict_fails_on_a_kill_outside_and_is_null_without_pressure() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let d = MemcgOom.measure(&ctx).unwrap();
        assert_eq!(MemcgOom.judge(&d).holds, Some(true));
        let mut outside = d.clone();
        outside.run.tasks[2].killed_at = Some(100);
        assert_eq!(MemcgOom.judge(&outside).holds, Some(false));
        let mut shrunk = d;
        shrunk.run.tasks[2].rss = 200;
        assert_eq!(MemcgOom.judge(&shrunk).holds, Some(false));
        // A leak of 64 pages: /a holds 128 of its 256.
        let fits = MemcgOom.measure_with(&ctx, 64).unwrap();
        let v = MemcgOom.judge(&fits);
        assert_eq!(v.holds, None, "{}", v.measured);
        assert!(v.note.starts_with("No charge was refused"), "{}", v.note);
    }

    #[test]
    fn scenario_and_shared_verdicts_are_null_with_what_was_measured() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let r = MemcgScenario.run(&ctx).unwrap();
        assert_eq!(r.verdict.holds, None);
        assert!(
            r.verdict
                .measured
                .starts_with("4 containers (3 limited), 4 tasks"),
            "{}",
            r.verdict.measured
        );
        let d = MemcgShared.measure(&ctx).unwrap();
        let v = MemcgShared.judge(&d);
        assert_eq!(v.holds, None);
        assert_eq!(v.measured.matches("moves)").count(), 4, "{}", v.measured);
    }
}
