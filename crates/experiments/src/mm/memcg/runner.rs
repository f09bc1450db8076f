//! The memory-controller scenario runner: boots a model machine with a
//! scenario's containers, limits and tasks, gives the tasks turns of page
//! accesses, injects the scenario's memory failures, and records every
//! task and container (a [`ScenarioJob`] steps one access at a time, so a
//! run can hibernate between any two). The `memcg*` experiments and
//! `hwpoison` run their scenarios through it.

use std::collections::{BTreeMap, BTreeSet};

use klab_lab::experiment::{Ctx, ExperimentError};
use klab_lab::hibernate::{Job, Step};
use klab_model::drive::Drive;
use klab_model::machine::PAGE_SIZE;
use klab_model::mm::memcontrol::MemcgId;
use klab_model::{Access, Machine, MachineConfig, Outcome};
use rand::Rng as _;

use super::scenario::{Scenario, Workload};

/// What one task did.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TaskResult {
    /// Its id.
    pub id: u32,
    /// Its container.
    pub container: String,
    /// Its workload.
    pub workload: Workload,
    /// Accesses it made.
    pub accesses: u64,
    /// Hits among them.
    pub hits: u64,
    /// The step at which its container's OOM killer killed it.
    pub killed_at: Option<u64>,
    /// Anonymous pages resident at the end.
    pub rss: u64,
    /// Accesses that failed for lack of memory.
    pub failed: u64,
}

/// A container at the end of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ContainerResult {
    /// Path.
    pub path: String,
    /// Limit as configured.
    pub limit: String,
    /// Pages charged (hierarchically).
    pub usage_pages: u64,
    /// Most pages ever charged.
    pub max_usage_pages: u64,
    /// Refused charges.
    pub failcnt: u64,
    /// Tasks killed by its OOM killer.
    pub oom_kill: u64,
    /// Pages its limit reclaim freed.
    pub pgsteal: u64,
}

/// One sample of a run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    /// Accesses so far.
    pub step: u64,
    /// Pages charged to each container (root first, then in scenario
    /// order), hierarchically.
    pub usage: Vec<u64>,
    /// For each shared file, resident pages charged to each container.
    pub shared: BTreeMap<u32, Vec<u64>>,
}

/// Everything a scenario run produced.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunResult {
    /// Container paths, root first, then in scenario order.
    pub paths: Vec<String>,
    /// Samples over time.
    pub samples: Vec<Sample>,
    /// Tasks.
    pub tasks: Vec<TaskResult>,
    /// Containers at the end.
    pub containers: Vec<ContainerResult>,
    /// Files read by tasks of more than one container.
    pub shared_files: Vec<u32>,
    /// Times a shared page came back charged to a different container.
    pub migrations: BTreeMap<u32, u64>,
    /// Memory failures injected: the step and what the handler did.
    pub failures: Vec<(u64, klab_model::mm::memory_failure::MfReport)>,
    /// The step at which the machine panicked, if it did.
    pub panicked_at: Option<u64>,
    /// Accesses completed (not failed for a dead machine or task).
    pub completed: u64,
}

/// Runs a scenario on a fresh machine, taking its random draws from
/// `rng` (and leaving it where the run left it).
///
/// # Errors
/// When the scenario's containers or tasks cannot be set up.
pub fn run(s: &Scenario, rng: &mut klab_model::rng::Rng) -> Result<RunResult, ExperimentError> {
    let mut j = ScenarioJob::new(s, rng.clone())?;
    while j.step(s) != Step::Done {}
    let (res, left) = j.finish(s);
    *rng = left;
    Ok(res)
}

/// [`run`] as a job of `ctx` (it can hibernate between any two accesses).
///
/// # Errors
/// As [`run`], and the driver's ([`Ctx::job`]).
pub fn run_in(
    ctx: &Ctx<'_>,
    s: &Scenario,
    rng: &mut klab_model::rng::Rng,
) -> Result<RunResult, ExperimentError> {
    let (res, left) = ctx.job(s, || ScenarioJob::new(s, rng.clone()))?;
    *rng = left;
    Ok(res)
}

/// Where a scenario run is between two steps.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum Phase {
    /// At the top of the main loop.
    Top,
    /// Giving turns: runnable task `runnable[ri]` has made `k` accesses of
    /// its turn.
    Round {
        runnable: Vec<usize>,
        ri: usize,
        k: u64,
    },
    /// Over.
    Finished,
}

/// A scenario run, one access a step: the machine, the generators, every
/// task's cursor and the results so far.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct ScenarioJob {
    /// The machine and the count of accesses made and failed.
    d: Drive,
    rng: klab_model::rng::Rng,
    fault_rng: klab_model::rng::Rng,
    /// Chosen failures still to come, latest first.
    injections: Vec<(u64, u64)>,
    rate: f64,
    ids: Vec<MemcgId>,
    paths: Vec<String>,
    results: Vec<TaskResult>,
    shared_files: Vec<u32>,
    last_owner: BTreeMap<(u32, u64), MemcgId>,
    migrations: BTreeMap<u32, u64>,
    pos: Vec<u64>,
    done: Vec<bool>,
    samples: Vec<Sample>,
    step: u64,
    failures: Vec<(u64, klab_model::mm::memory_failure::MfReport)>,
    panicked_at: Option<u64>,
    phase: Phase,
}

impl ScenarioJob {
    /// Boots the machine, creates the containers and places the tasks.
    ///
    /// # Errors
    /// When the model refuses a container or a task.
    pub fn new(s: &Scenario, mut rng: klab_model::rng::Rng) -> Result<Self, ExperimentError> {
        let mut cfg = MachineConfig::new(s.frames, s.balance);
        cfg.swap_pages = s.swap_pages;
        let mut m = Machine::new(cfg).map_err(ExperimentError::Host)?;
        m.reserve_kernel_pages(klab_model::mm::page::KernelPage::Reserved, s.reserved_pages);
        m.reserve_kernel_pages(klab_model::mm::page::KernelPage::Slab, s.slab_pages);
        if let Some(h) = &s.hwpoison {
            m.set_memory_failure_config(klab_model::mm::memory_failure::MfConfig {
                recovery: h.recovery,
                early_kill: h.early_kill,
            });
            for &t in &h.catch_sigbus {
                m.set_catches_sigbus(t, true);
            }
        }
        let mut injections: Vec<(u64, u64)> =
            s.hwpoison.as_ref().map_or(Vec::new(), |h| h.inject.clone());
        injections.sort_unstable();
        injections.reverse();
        let rate = s
            .hwpoison
            .as_ref()
            .map_or(0.0, |h| h.rate_per_million / 1e6);
        // The scrubber's own generator, drawn only when failures are asked for,
        // so scenarios without them see the same workload numbers.
        let fault_rng = klab_model::rng::seeded(
            if s.hwpoison.is_some() {
                rng.random()
            } else {
                0
            },
            7,
        );
        let mut ids = vec![MemcgId::ROOT];
        let mut paths = vec!["/".to_owned()];
        let model_err =
            |e: klab_model::mm::memcontrol::CgroupError, line: usize| ExperimentError::Input {
                path: "scenario".into(),
                message: format!("line {line}: {e}"),
            };
        for c in &s.containers {
            let id = m.memcg_create(&c.path).map_err(|e| model_err(e, c.line))?;
            m.memcg_write(&c.path, "memory.limit_in_bytes", &c.limit)
                .map_err(|e| model_err(e, c.line))?;
            ids.push(id);
            paths.push(c.path.clone());
        }
        let results: Vec<TaskResult> = s
            .tasks
            .iter()
            .map(|t| TaskResult {
                id: t.id,
                container: t.container.clone(),
                workload: t.workload,
                accesses: 0,
                hits: 0,
                killed_at: None,
                rss: 0,
                failed: 0,
            })
            .collect();
        for t in &s.tasks {
            m.memcg_attach(&t.container, t.id)
                .map_err(|e| model_err(e, 0))?;
        }

        // Files read from more than one container.
        let mut readers: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
        for t in &s.tasks {
            if let Some(f) = t.workload.file() {
                readers.entry(f).or_default().insert(&t.container);
            }
        }
        let shared_files: Vec<u32> = readers
            .iter()
            .filter(|(_, c)| c.len() > 1)
            .map(|(f, _)| *f)
            .collect();
        let migrations: BTreeMap<u32, u64> = shared_files.iter().map(|f| (*f, 0)).collect();
        let mut j = ScenarioJob {
            d: Drive::on(m),
            rng,
            fault_rng,
            injections,
            rate,
            ids,
            paths,
            results,
            shared_files,
            last_owner: BTreeMap::new(),
            migrations,
            pos: vec![0u64; s.tasks.len()],
            done: vec![false; s.tasks.len()],
            samples: Vec::new(),
            step: 0,
            failures: Vec::new(),
            panicked_at: None,
            phase: Phase::Top,
        };
        let first = j.sample();
        j.samples.push(first);
        Ok(j)
    }

    /// Binds the machine's paravirt table (before the first step).
    pub(crate) fn with_paravirt(mut self, pv: klab_model::arch::paravirt::Paravirt) -> Self {
        self.d.machine_mut().boot_paravirt(pv);
        self
    }

    /// The machine.
    pub(crate) fn machine(&self) -> &Machine {
        self.d.machine()
    }

    fn sample(&self) -> Sample {
        let m = self.d.machine();
        Sample {
            step: self.step,
            usage: self
                .ids
                .iter()
                .map(|&id| m.memcg_usage(id) / PAGE_SIZE)
                .collect(),
            shared: self
                .shared_files
                .iter()
                .map(|&f| {
                    let by = m.file_charges(f);
                    (
                        f,
                        self.ids
                            .iter()
                            .map(|id| by.get(id).copied().unwrap_or(0))
                            .collect(),
                    )
                })
                .collect(),
        }
    }

    fn gone(&self, i: usize) -> bool {
        self.done[i] || self.results[i].killed_at.is_some()
    }

    /// One access of task `i` (the body of a turn), or the failures due
    /// before it and the end of the task's turn.
    fn turn(&mut self, s: &Scenario, i: usize) -> Step {
        let t = &s.tasks[i];
        // Memory failures due before this access.
        while self
            .injections
            .last()
            .is_some_and(|&(at, _)| at <= self.step)
        {
            let (_, pfn) = self.injections.pop().expect("checked");
            let rep = self.d.machine_mut().memory_failure(pfn);
            note_failure(&mut self.results, &rep, self.step);
            self.failures.push((self.step, rep));
        }
        if self.rate > 0.0 && self.fault_rng.random::<f64>() < self.rate {
            let pfn = self.fault_rng.random_range(0..s.frames);
            let rep = self.d.machine_mut().memory_failure(pfn);
            note_failure(&mut self.results, &rep, self.step);
            self.failures.push((self.step, rep));
        }
        if self.d.machine().panicked() {
            self.panicked_at = Some(self.step);
            self.phase = Phase::Finished;
            return Step::Busy(0);
        }
        if self.results[i].killed_at.is_some() {
            self.next_task();
            return Step::Busy(0);
        }
        let file_access = |f: u32, p: u64| {
            if t.write {
                Access::write(f, p)
            } else {
                Access::read(f, p)
            }
        };
        let (access, file_page) = match t.workload {
            Workload::Stream { file, pages } => {
                let p = self.pos[i];
                self.pos[i] += 1;
                if self.pos[i] >= pages {
                    self.done[i] = true;
                }
                (file_access(file, p), Some((file, p)))
            }
            Workload::Loop { file, pages } => {
                let p = self.pos[i] % pages;
                self.pos[i] += 1;
                (file_access(file, p), Some((file, p)))
            }
            Workload::Random { file, pages } => {
                let p = self.rng.random_range(0..pages);
                (file_access(file, p), Some((file, p)))
            }
            Workload::Anon { pages } => {
                let p = self.pos[i] % pages;
                self.pos[i] += 1;
                (Access::anon(t.id, p), None)
            }
        };
        let out = self.d.access(access.by(t.id));
        self.step += 1;
        if let Phase::Round { k, .. } = &mut self.phase {
            *k += 1;
        }
        let step = self.step;
        let r = &mut self.results[i];
        r.accesses += 1;
        match out {
            Outcome::Hit => r.hits += 1,
            Outcome::Killed => r.killed_at = Some(step),
            Outcome::OutOfMemory => r.failed += 1,
            Outcome::Miss | Outcome::Refault { .. } => {
                if let Some((f, p)) = file_page
                    && self.migrations.contains_key(&f)
                    && let Some(owner) = self.d.machine().page_memcg(f, p)
                    && let Some(prev) = self.last_owner.insert((f, p), owner)
                    && prev != owner
                {
                    *self.migrations.get_mut(&f).expect("shared file") += 1;
                }
            }
            Outcome::AnonNew | Outcome::SwapIn => {}
            Outcome::SigBus { caught: true } => r.failed += 1,
            Outcome::SigBus { caught: false } => r.killed_at = Some(step),
            Outcome::Panic => {
                self.phase = Phase::Finished;
                return Step::Busy(1);
            }
        }
        if step.is_multiple_of(s.sample_every) {
            let x = self.sample();
            self.samples.push(x);
        }
        if step >= s.steps {
            self.phase = Phase::Finished;
        }
        Step::Busy(1)
    }

    fn next_task(&mut self) {
        if let Phase::Round { ri, k, .. } = &mut self.phase {
            *ri += 1;
            *k = 0;
        }
    }
}

impl Job for ScenarioJob {
    type Env = Scenario;
    type Output = (RunResult, klab_model::rng::Rng);
    const KIND: &'static str = "memcg: a scenario run";
    const TICK_NS: u64 = klab_lab::hibernate::ACCESS_TICK_NS;

    fn step(&mut self, s: &Scenario) -> Step {
        loop {
            match &self.phase {
                Phase::Finished => return Step::Done,
                Phase::Top => {
                    if self.step >= s.steps {
                        self.phase = Phase::Finished;
                        continue;
                    }
                    let step = self.step;
                    let runnable: Vec<usize> = (0..s.tasks.len())
                        .filter(|&i| !self.gone(i) && s.tasks[i].active.contains(&step))
                        .collect();
                    if !runnable.is_empty() {
                        self.phase = Phase::Round {
                            runnable,
                            ri: 0,
                            k: 0,
                        };
                        continue;
                    }
                    // Idle until the next task starts, or stop if none will.
                    let next = (0..s.tasks.len())
                        .filter(|&i| !self.gone(i) && s.tasks[i].active.start > step)
                        .map(|i| s.tasks[i].active.start)
                        .min();
                    let Some(next) = next else {
                        self.phase = Phase::Finished;
                        continue;
                    };
                    let from = self.step;
                    while self.step < next.min(s.steps) {
                        self.step += 1;
                        if self.step.is_multiple_of(s.sample_every) {
                            let x = self.sample();
                            self.samples.push(x);
                        }
                    }
                    return Step::Idle(self.step - from);
                }
                Phase::Round { runnable, ri, k } => {
                    let Some(&i) = runnable.get(*ri) else {
                        self.phase = Phase::Top;
                        continue;
                    };
                    if *k >= s.tasks[i].weight || self.step >= s.steps || self.gone(i) {
                        self.next_task();
                        continue;
                    }
                    return self.turn(s, i);
                }
            }
        }
    }

    fn check(&self, s: &Scenario) -> Result<(), String> {
        let n = s.tasks.len();
        if self.results.len() != n || self.pos.len() != n || self.done.len() != n {
            return Err(format!(
                "state for {} tasks, the scenario has {n}",
                self.results.len()
            ));
        }
        if let Phase::Round { runnable, .. } = &self.phase
            && runnable.iter().any(|&i| i >= n)
        {
            return Err("a runnable task past the scenario's tasks".into());
        }
        if self.ids.len() != self.paths.len()
            || self
                .ids
                .iter()
                .any(|id| usize::from(id.0) >= self.d.machine().memcgs().len())
        {
            return Err("container ids out of range".into());
        }
        if s.tasks.iter().any(|t| match t.workload {
            Workload::Loop { pages, .. }
            | Workload::Anon { pages }
            | Workload::Random { pages, .. } => pages == 0,
            Workload::Stream { .. } => false,
        }) || s.sample_every == 0
        {
            return Err("a workload of zero pages, or sample_every of 0".into());
        }
        self.d.machine().check()
    }

    fn finish(mut self, s: &Scenario) -> (RunResult, klab_model::rng::Rng) {
        if self.samples.last().is_none_or(|x| x.step != self.step) {
            let x = self.sample();
            self.samples.push(x);
        }
        let m = self.d.machine();
        for r in &mut self.results {
            r.rss = m.task(r.id).map_or(0, |t| t.rss);
        }
        let mut limits = vec!["-1 (root)".to_owned()];
        limits.extend(s.containers.iter().map(|c| c.limit.clone()));
        let containers = self
            .ids
            .iter()
            .zip(&self.paths)
            .zip(limits)
            .map(|((&id, path), limit)| {
                let c = m.memcg(id);
                ContainerResult {
                    path: path.clone(),
                    limit,
                    usage_pages: c.res.usage / PAGE_SIZE,
                    max_usage_pages: c.res.max_usage / PAGE_SIZE,
                    failcnt: c.res.failcnt,
                    oom_kill: c.stat.oom_kill,
                    pgsteal: c.stat.pgsteal,
                }
            })
            .collect();
        if cfg!(debug_assertions) {
            m.assert_invariants();
        }
        (
            RunResult {
                paths: self.paths,
                samples: self.samples,
                tasks: self.results,
                containers,
                shared_files: self.shared_files,
                migrations: self.migrations,
                failures: self.failures,
                panicked_at: self.panicked_at,
                completed: self.d.all().completed(),
            },
            self.rng,
        )
    }
}

/// Records tasks an early kill took.
fn note_failure(
    results: &mut [TaskResult],
    rep: &klab_model::mm::memory_failure::MfReport,
    step: u64,
) {
    for k in &rep.killed {
        if let Some(r) = results.iter_mut().find(|r| r.id == k.0) {
            r.killed_at.get_or_insert(step);
        }
    }
}
