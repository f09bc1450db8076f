//! Memory-controller scenarios: a TOML file that describes a machine, its
//! containers, and tasks with their workloads, so users can ask their own
//! questions (`klab run memcg --scenario FILE`).
//!
//! ```toml
//! [machine]
//! memory = "16MiB"          # page frames: memory / 4 KiB
//! swap = "0"                # swap space (0: none)
//! balance = "classic"       # classic | refault-distance | workingset-3.15
//! steps = 40000             # accesses to run, round-robin over tasks
//! sample_every = 500        # record usage every this many accesses
//!
//! [[container]]
//! path = "/batch"
//! limit = "2M"              # memory.limit_in_bytes syntax; "-1" = unlimited
//!
//! [[task]]
//! id = 1
//! container = "/batch"      # omitted: the root container
//! workload = "stream"       # stream | loop | random | anon
//! file = 10                 # stream, loop, random: the file read
//! pages = 100000            # pages of the file (or of anonymous memory)
//! weight = 1                # accesses per turn (default 1)
//! start = 0                 # first step the task runs (default 0)
//! write = false             # file workloads: write the pages (they get dirty)
//!
//! [hwpoison]                # optional: memory failures during the run
//! recovery = true           # vm.memory_failure_recovery (false: panic)
//! early_kill = false        # vm.memory_failure_early_kill
//! rate = 20.0               # errors per million accesses, at random frames
//! catch_sigbus = [3]        # tasks with a SIGBUS handler
//! [[hwpoison.inject]]       # and/or failures at chosen frames
//! step = 5000
//! pfn = 42
//! ```
//!
//! `[machine]` may also set aside kernel memory that failures can hit:
//! `reserved = "256KiB"`, `slab = "1MiB"` (default none).
//!
//! Workloads: `stream` reads pages `0..pages` once, in order; `loop` reads
//! `0..pages` over and over; `random` reads uniformly random pages of
//! `0..pages` (seeded); `anon` touches anonymous pages `0..pages` in order,
//! then again.
//!
//! Every error names the line (and key) it comes from: syntax errors from
//! the TOML parser, and semantic ones (an unknown container, a bad limit,
//! a duplicate task) from the span of the offending value.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

/// A parsed, checked scenario.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Scenario {
    /// Page frames of the machine.
    pub frames: u64,
    /// Swap slots.
    pub swap_pages: u64,
    /// The list-balancing rule.
    #[serde(with = "klab_model::machine::LruBalanceDef")]
    pub balance: klab_mm_policy::LruBalance,
    /// Accesses to run.
    pub steps: u64,
    /// Sampling interval, in accesses.
    pub sample_every: u64,
    /// Frames reserved by the kernel at boot.
    pub reserved_pages: u64,
    /// Frames of kernel slab.
    pub slab_pages: u64,
    /// Memory failures, if any.
    pub hwpoison: Option<HwpoisonSpec>,
    /// Containers, parents before children.
    pub containers: Vec<ContainerSpec>,
    /// Tasks.
    pub tasks: Vec<TaskSpec>,
}

/// Memory failures during a run.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HwpoisonSpec {
    /// `vm.memory_failure_recovery`.
    pub recovery: bool,
    /// `vm.memory_failure_early_kill`.
    pub early_kill: bool,
    /// Errors per million accesses at random frames.
    pub rate_per_million: f64,
    /// `(step, pfn)` failures at chosen frames.
    pub inject: Vec<(u64, u64)>,
    /// Tasks that catch SIGBUS.
    pub catch_sigbus: Vec<u32>,
}

/// A container.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    /// Its path.
    pub path: String,
    /// `memory.limit_in_bytes` as written (kernel syntax).
    pub limit: String,
    /// The line of the limit in the file, for errors the model reports.
    pub line: usize,
}

/// What a task does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Workload {
    /// Pages `0..pages` of `file` once, in order.
    Stream {
        /// The file.
        file: u32,
        /// Pages.
        pages: u64,
    },
    /// Pages `0..pages` of `file`, over and over.
    Loop {
        /// The file.
        file: u32,
        /// Pages.
        pages: u64,
    },
    /// Uniformly random pages of `0..pages` of `file`.
    Random {
        /// The file.
        file: u32,
        /// Pages.
        pages: u64,
    },
    /// Anonymous pages `0..pages`, in order, then again.
    Anon {
        /// Pages.
        pages: u64,
    },
}

impl Workload {
    /// The file read, if any.
    pub fn file(self) -> Option<u32> {
        match self {
            Workload::Stream { file, .. }
            | Workload::Loop { file, .. }
            | Workload::Random { file, .. } => Some(file),
            Workload::Anon { .. } => None,
        }
    }

    /// A short description.
    pub fn describe(self) -> String {
        match self {
            Workload::Stream { file, pages } => format!("stream file {file} ({pages} pages)"),
            Workload::Loop { file, pages } => format!("loop over file {file} ({pages} pages)"),
            Workload::Random { file, pages } => format!("random in file {file} ({pages} pages)"),
            Workload::Anon { pages } => format!("anonymous {pages} pages"),
        }
    }
}

/// A task.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TaskSpec {
    /// Its id.
    pub id: u32,
    /// Its container's path.
    pub container: String,
    /// What it does.
    pub workload: Workload,
    /// Accesses per turn.
    pub weight: u64,
    /// Steps during which it runs.
    pub active: Range<u64>,
    /// File workloads write their pages.
    pub write: bool,
}

/// A scenario error: the file, the line, the key, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: line {line}: {message}")]
pub struct ScenarioError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    machine: RawMachine,
    #[serde(default)]
    hwpoison: Option<RawHwpoison>,
    #[serde(default)]
    container: Vec<RawContainer>,
    #[serde(default)]
    task: Vec<RawTask>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    memory: Spanned<String>,
    #[serde(default)]
    swap: Option<Spanned<String>>,
    #[serde(default)]
    balance: Option<Spanned<String>>,
    steps: Spanned<u64>,
    #[serde(default)]
    sample_every: Option<Spanned<u64>>,
    #[serde(default)]
    reserved: Option<Spanned<String>>,
    #[serde(default)]
    slab: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHwpoison {
    #[serde(default)]
    recovery: Option<bool>,
    #[serde(default)]
    early_kill: Option<bool>,
    #[serde(default)]
    rate: Option<Spanned<f64>>,
    #[serde(default)]
    inject: Vec<RawInject>,
    #[serde(default)]
    catch_sigbus: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInject {
    step: u64,
    pfn: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainer {
    path: Spanned<String>,
    #[serde(default)]
    limit: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    id: Spanned<u32>,
    #[serde(default)]
    container: Option<Spanned<String>>,
    workload: Spanned<String>,
    #[serde(default)]
    file: Option<Spanned<u32>>,
    pages: Spanned<u64>,
    #[serde(default)]
    weight: Option<Spanned<u64>>,
    #[serde(default)]
    start: Option<Spanned<u64>>,
    #[serde(default)]
    stop: Option<Spanned<u64>>,
    #[serde(default)]
    write: Option<bool>,
}

/// The 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Where parse errors point: the scenario's text and name.
struct Src<'a> {
    text: &'a str,
    name: &'a str,
}

impl Src<'_> {
    fn err(&self, offset: usize, message: String) -> ScenarioError {
        ScenarioError {
            file: self.name.to_owned(),
            line: line_of(self.text, offset),
            message,
        }
    }

    /// A size of `[machine]` (`0` allowed).
    fn size(&self, v: &Spanned<String>, key: &str) -> Result<u64, ScenarioError> {
        crate::mm::replay::parse_size(v.get_ref())
            .or_else(|e| {
                if v.get_ref().trim() == "0" {
                    Ok(0)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| self.err(v.span().start, format!("machine.{key}: {e}")))
    }

    /// An optional size in pages (0 when absent).
    fn pages(&self, v: Option<&Spanned<String>>, key: &str) -> Result<u64, ScenarioError> {
        v.map_or(Ok(0), |s| {
            self.size(s, key)
                .map(|b| b / klab_model::machine::PAGE_SIZE)
        })
    }
}

/// `[machine]`, checked.
struct MachineSpec {
    frames: u64,
    swap_pages: u64,
    balance: klab_mm_policy::LruBalance,
    steps: u64,
    sample_every: u64,
}

fn parse_machine(src: &Src<'_>, m: &RawMachine) -> Result<MachineSpec, ScenarioError> {
    let memory = src.size(&m.memory, "memory")?;
    let frames = memory / klab_model::machine::PAGE_SIZE;
    if frames == 0 {
        return Err(src.err(
            m.memory.span().start,
            "machine.memory: at least one 4 KiB page is needed".into(),
        ));
    }
    let swap_pages = src.pages(m.swap.as_ref(), "swap")?;
    let balance = match &m.balance {
        Some(b) => b.get_ref().parse().map_err(|e: String| {
            src.err(
                b.span().start,
                format!("machine.balance: {e}; use classic, refault-distance or workingset-3.15"),
            )
        })?,
        None => klab_mm_policy::LruBalance::Classic,
    };
    let steps = *m.steps.get_ref();
    if steps == 0 {
        return Err(src.err(
            m.steps.span().start,
            "machine.steps: must be at least 1".into(),
        ));
    }
    let sample_every = m
        .sample_every
        .as_ref()
        .map_or((steps / 100).max(1), |s| *s.get_ref());
    if sample_every == 0 {
        return Err(src.err(
            m.sample_every.as_ref().map_or(0, |s| s.span().start),
            "machine.sample_every: must be at least 1".into(),
        ));
    }
    Ok(MachineSpec {
        frames,
        swap_pages,
        balance,
        steps,
        sample_every,
    })
}

fn parse_containers(
    src: &Src<'_>,
    raw: &[RawContainer],
) -> Result<Vec<ContainerSpec>, ScenarioError> {
    let mut containers: Vec<ContainerSpec> = Vec::new();
    for c in raw {
        let path = c.path.get_ref().clone();
        let at = c.path.span().start;
        if !path.starts_with('/') || path == "/" || path.ends_with('/') {
            return Err(src.err(
                at,
                format!(
                    "container.path: {path:?} is not a container path like /name or /parent/name"
                ),
            ));
        }
        if containers.iter().any(|x| x.path == path) {
            return Err(src.err(at, format!("container.path: {path} is defined twice")));
        }
        let parent = path
            .rsplit_once('/')
            .map(|(p, _)| if p.is_empty() { "/" } else { p })
            .unwrap_or("/");
        if parent != "/" && !containers.iter().any(|x| x.path == parent) {
            return Err(src.err(
                at,
                format!("container.path: the parent {parent} of {path} must be defined before it"),
            ));
        }
        let (limit, line) = match &c.limit {
            Some(l) => {
                klab_model::mm::memcontrol::parse_limit(
                    l.get_ref(),
                    klab_model::machine::PAGE_SIZE,
                )
                .map_err(|(errno, msg)| {
                    src.err(
                        l.span().start,
                        format!("container.limit: {msg} (errno {errno})"),
                    )
                })?;
                (l.get_ref().clone(), line_of(src.text, l.span().start))
            }
            None => ("-1".to_owned(), line_of(src.text, at)),
        };
        containers.push(ContainerSpec { path, limit, line });
    }
    Ok(containers)
}

fn parse_workload(src: &Src<'_>, t: &RawTask, pages: u64) -> Result<Workload, ScenarioError> {
    let need_file = |w: &str| {
        t.file.as_ref().map(|f| *f.get_ref()).ok_or_else(|| {
            src.err(
                t.workload.span().start,
                format!("task.file: a {w} workload needs a file"),
            )
        })
    };
    Ok(match t.workload.get_ref().as_str() {
        "stream" => Workload::Stream {
            file: need_file("stream")?,
            pages,
        },
        "loop" => Workload::Loop {
            file: need_file("loop")?,
            pages,
        },
        "random" => Workload::Random {
            file: need_file("random")?,
            pages,
        },
        "anon" => Workload::Anon { pages },
        other => {
            return Err(src.err(
                t.workload.span().start,
                format!(
                    "task.workload: unknown workload {other:?}; use stream, loop, random or anon"
                ),
            ));
        }
    })
}

fn parse_task(
    src: &Src<'_>,
    t: &RawTask,
    containers: &[ContainerSpec],
) -> Result<TaskSpec, ScenarioError> {
    let id = *t.id.get_ref();
    let container = match &t.container {
        Some(c) => {
            let p = c.get_ref();
            if p != "/" && !containers.iter().any(|x| &x.path == p) {
                return Err(src.err(
                    c.span().start,
                    format!("task.container: no container {p} is defined"),
                ));
            }
            p.clone()
        }
        None => "/".to_owned(),
    };
    let pages = *t.pages.get_ref();
    if pages == 0 {
        return Err(src.err(
            t.pages.span().start,
            "task.pages: must be at least 1".into(),
        ));
    }
    let workload = parse_workload(src, t, pages)?;
    let weight = t.weight.as_ref().map_or(1, |w| *w.get_ref());
    if weight == 0 {
        return Err(src.err(
            t.weight.as_ref().map_or(0, |w| w.span().start),
            "task.weight: must be at least 1".into(),
        ));
    }
    let start = t.start.as_ref().map_or(0, |s| *s.get_ref());
    let stop = t.stop.as_ref().map_or(u64::MAX, |s| *s.get_ref());
    if stop <= start {
        return Err(src.err(
            t.stop.as_ref().map_or(0, |s| s.span().start),
            "task.stop: must come after start".into(),
        ));
    }
    Ok(TaskSpec {
        id,
        container,
        workload,
        weight,
        active: start..stop,
        write: t.write.unwrap_or(false),
    })
}

fn parse_tasks(
    src: &Src<'_>,
    raw: &[RawTask],
    containers: &[ContainerSpec],
) -> Result<Vec<TaskSpec>, ScenarioError> {
    let mut tasks: Vec<TaskSpec> = Vec::new();
    for t in raw {
        if tasks.iter().any(|x| x.id == *t.id.get_ref()) {
            return Err(src.err(
                t.id.span().start,
                format!("task.id: task {} is defined twice", t.id.get_ref()),
            ));
        }
        tasks.push(parse_task(src, t, containers)?);
    }
    if tasks.is_empty() {
        return Err(src.err(
            src.text.len(),
            "a scenario needs at least one [[task]]".into(),
        ));
    }
    Ok(tasks)
}

fn parse_hwpoison(
    src: &Src<'_>,
    h: &RawHwpoison,
    tasks: &[TaskSpec],
) -> Result<HwpoisonSpec, ScenarioError> {
    let rate = match &h.rate {
        Some(r) if !(0.0..=1e6).contains(r.get_ref()) => {
            return Err(src.err(
                r.span().start,
                "hwpoison.rate: errors per million accesses, from 0 to 1000000".into(),
            ));
        }
        Some(r) => *r.get_ref(),
        None => 0.0,
    };
    for c in &h.catch_sigbus {
        if !tasks.iter().any(|t| t.id == *c) {
            return Err(src.err(
                src.text.find("catch_sigbus").unwrap_or(0),
                format!("hwpoison.catch_sigbus: no task {c}"),
            ));
        }
    }
    Ok(HwpoisonSpec {
        recovery: h.recovery.unwrap_or(true),
        early_kill: h.early_kill.unwrap_or(false),
        rate_per_million: rate,
        inject: h.inject.iter().map(|i| (i.step, i.pfn)).collect(),
        catch_sigbus: h.catch_sigbus.clone(),
    })
}

/// Parses and checks a scenario. `name` is used in errors.
pub fn parse(text: &str, name: &str) -> Result<Scenario, ScenarioError> {
    let src = Src { text, name };
    let raw: RawScenario = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        src.err(offset, e.message().trim().to_owned())
    })?;
    let m = parse_machine(&src, &raw.machine)?;
    let containers = parse_containers(&src, &raw.container)?;
    let tasks = parse_tasks(&src, &raw.task, &containers)?;
    let reserved_pages = src.pages(raw.machine.reserved.as_ref(), "reserved")?;
    let slab_pages = src.pages(raw.machine.slab.as_ref(), "slab")?;
    if reserved_pages + slab_pages >= m.frames {
        return Err(src.err(
            raw.machine.memory.span().start,
            "machine: reserved and slab take all of memory".into(),
        ));
    }
    let hwpoison = raw
        .hwpoison
        .as_ref()
        .map(|h| parse_hwpoison(&src, h, &tasks))
        .transpose()?;
    Ok(Scenario {
        frames: m.frames,
        swap_pages: m.swap_pages,
        reserved_pages,
        slab_pages,
        hwpoison,
        balance: m.balance,
        steps: m.steps,
        sample_every: m.sample_every,
        containers,
        tasks,
    })
}

/// Reads and parses a scenario file.
pub fn read(path: &Path) -> Result<Scenario, ScenarioError> {
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.display().to_string(),
        line: 0,
        message: e.to_string(),
    })?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[machine]
memory = "4MiB"
steps = 1000

[[container]]
path = "/a"
limit = "1M"

[[container]]
path = "/a/b"

[[task]]
id = 1
container = "/a/b"
workload = "loop"
file = 3
pages = 10
"#;

    #[test]
    fn a_good_scenario_parses() {
        let s = parse(GOOD, "s.toml").unwrap();
        assert_eq!((s.frames, s.steps, s.sample_every), (1024, 1000, 10));
        assert_eq!(s.containers.len(), 2);
        assert_eq!(s.containers[1].limit, "-1");
        assert_eq!(s.tasks[0].workload, Workload::Loop { file: 3, pages: 10 });
    }

    #[track_caller]
    fn fails(text: &str, line: usize, msg: &str) {
        let e = parse(text, "s.toml").unwrap_err();
        assert_eq!(e.line, line, "{e}");
        assert!(e.to_string().contains(msg), "{e}");
        assert!(
            e.to_string().starts_with(&format!("s.toml: line {line}: ")),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_line_and_key() {
        fails(
            &GOOD.replace("limit = \"1M\"", "limit = \"1.5M\""),
            8,
            "container.limit",
        );
        fails(
            &GOOD.replace("limit = \"1M\"", "limit = \"-4\""),
            8,
            "negative",
        );
        fails(
            &GOOD.replace("container = \"/a/b\"", "container = \"/c\""),
            15,
            "no container /c",
        );
        fails(
            &GOOD.replace("workload = \"loop\"", "workload = \"spin\""),
            16,
            "unknown workload \"spin\"",
        );
        fails(&GOOD.replace("file = 3\n", ""), 16, "needs a file");
        fails(&GOOD.replace("pages = 10", "pages = 0"), 18, "task.pages");
        fails(
            &GOOD.replace("steps = 1000", "steps = \"many\""),
            4,
            "invalid type",
        );
        fails(
            &GOOD.replace("steps = 1000", "steps = 1000\ncolour = 1"),
            5,
            "unknown field `colour`",
        );
        fails(
            &GOOD.replace("path = \"/a/b\"", "path = \"/x/b\""),
            11,
            "parent /x",
        );
        fails(
            &GOOD.replace("memory = \"4MiB\"", "memory = \"lots\""),
            3,
            "machine.memory",
        );
    }
}
