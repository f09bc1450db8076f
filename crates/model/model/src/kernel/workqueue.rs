//! Workqueue threads in virtual time: how many exist, when lazy ones are
//! created and when they exit. The deterministic twin of `klab-workqueue`,
//! driven by the same rules (`klab_workqueue::rules`): routing
//! ([`rules::route`]), the core thread's create-or-run decision
//! ([`rules::core_move`], [`rules::may_create`]) and the idle exit
//! ([`rules::idle_expired`]).
//!
//! ```text
//!   WqModel { kind, nr_cpus, idle_timeout, max_threads }
//!     alive[cpu]        a thread serves this CPU's list
//!     last_active[cpu]  tick its thread last finished work (or started)
//! ```
//!
//! Work items take no time here: queueing at tick `t` runs the item at
//! `t` on the CPU the rules pick. What is modelled is the thread count,
//! which the real workqueue reports as `nr_threads()`.
//!
//! Invariants ([`WqModel::assert_invariants`]): a per-CPU queue has every
//! thread alive; a single-threaded or lazy queue has its first (core) list
//! alive; `nr_threads == |{c : alive[c]}|`; `created - exited ==
//! nr_threads`.

use klab_workqueue::rules::{self, Kind, Move, Route};

/// `Kind`'s serialized form (a foreign type: serde's remote derive).
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "Kind")]
enum KindDef {
    PerCpu,
    SingleThread,
    Lazy,
}

/// Counters of one modelled workqueue.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WqModelStats {
    /// Threads started (at creation and on demand).
    pub created: u64,
    /// Lazy threads that exited after their idle period.
    pub exited_idle: u64,
    /// Items run on the core CPU because no thread could be created.
    pub ran_on_core: u64,
    /// Items run, per list.
    pub runs: Vec<u64>,
}

/// Where an item ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ran {
    /// The list (CPU) whose thread ran it.
    pub cpu: usize,
    /// Whether a thread was created for it.
    pub created_thread: bool,
}

/// One workqueue's threads.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct WqModel {
    name: String,
    #[serde(with = "KindDef")]
    kind: Kind,
    nr_cpus: usize,
    idle_timeout: u64,
    max_threads: Option<usize>,
    alive: Vec<bool>,
    last_active: Vec<u64>,
    stats: WqModelStats,
}

impl WqModel {
    /// A workqueue created at tick `now` with the threads its kind starts.
    /// `idle_timeout` is in ticks; `max_threads` caps a lazy queue's live
    /// threads (`None`: no cap).
    pub fn new(
        name: &str,
        kind: Kind,
        nr_cpus: usize,
        idle_timeout: u64,
        max_threads: Option<usize>,
        now: u64,
    ) -> WqModel {
        let n = kind.nr_cwqs(nr_cpus.max(1));
        let mut alive = vec![false; n];
        let first = kind.initial_threads(nr_cpus.max(1));
        for a in alive.iter_mut().take(first) {
            *a = true;
        }
        WqModel {
            name: name.to_owned(),
            kind,
            nr_cpus: nr_cpus.max(1),
            idle_timeout,
            max_threads,
            alive,
            last_active: vec![now; n],
            stats: WqModelStats {
                created: first as u64,
                runs: vec![0; n],
                ..WqModelStats::default()
            },
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// Threads alive.
    pub fn nr_threads(&self) -> usize {
        self.alive.iter().filter(|a| **a).count()
    }

    /// Whether CPU `cpu`'s list has a thread.
    pub fn cpu_has_thread(&self, cpu: usize) -> bool {
        self.alive
            .get(self.kind.cwq_index(cpu))
            .copied()
            .unwrap_or(false)
    }

    /// Counters.
    pub fn stats(&self) -> &WqModelStats {
        &self.stats
    }

    /// Queues an item for CPU `cpu` (`cpu % nr_cpus`) at tick `now` and
    /// runs it at once where the rules send it. Call [`WqModel::advance`]
    /// to `now` first, so threads idle past their timeout have exited.
    pub fn queue_work_on(&mut self, cpu: usize, now: u64) -> Ran {
        let cpu = cpu % self.nr_cpus;
        let target = self.kind.cwq_index(cpu);
        let (ran_on, created) = match rules::route(self.kind, cpu, self.alive[target]) {
            Route::Direct(c) => (c, false),
            Route::ViaCore { core, target } => {
                let may = rules::may_create(self.nr_threads(), self.max_threads);
                match rules::core_move(self.alive[target], may) {
                    Move::ToTarget => (target, false),
                    Move::Spawn => {
                        self.alive[target] = true;
                        self.stats.created += 1;
                        (target, true)
                    }
                    Move::RunOnCore => {
                        self.stats.ran_on_core += 1;
                        (core, false)
                    }
                }
            }
        };
        self.last_active[ran_on] = now;
        self.stats.runs[ran_on] += 1;
        Ran {
            cpu: ran_on,
            created_thread: created,
        }
    }

    /// Advances to tick `now`: every thread allowed to exit that has been
    /// idle for the timeout exits. Returns how many exited.
    pub fn advance(&mut self, now: u64) -> usize {
        let mut exited = 0;
        for c in 0..self.alive.len() {
            if self.alive[c]
                && self.kind.thread_can_exit(c)
                && rules::idle_expired(now.saturating_sub(self.last_active[c]), self.idle_timeout)
            {
                self.alive[c] = false;
                exited += 1;
            }
        }
        self.stats.exited_idle += exited as u64;
        exited
    }

    /// The invariants as a check that does not panic (a model read from a
    /// hibernation image): list counts match the kind, the core thread
    /// lives, `created - exited == nr_threads`.
    pub fn check(&self) -> Result<(), String> {
        let n = self.kind.nr_cwqs(self.nr_cpus.max(1));
        if self.nr_cpus == 0
            || self.alive.len() != n
            || self.last_active.len() != n
            || self.stats.runs.len() != n
        {
            return Err(format!("{}: list counts do not match its kind", self.name));
        }
        let core_ok = match self.kind {
            Kind::PerCpu => self.alive.iter().all(|a| *a),
            Kind::SingleThread | Kind::Lazy => self.alive[rules::LAZY_CORE_CPU],
        };
        if !core_ok
            || self.stats.created.checked_sub(self.stats.exited_idle)
                != Some(self.nr_threads() as u64)
        {
            return Err(format!("{}: threads do not add up", self.name));
        }
        Ok(())
    }

    /// Checks the invariants in the module header.
    ///
    /// # Panics
    /// If one does not hold.
    pub fn assert_invariants(&self) {
        match self.kind {
            Kind::PerCpu => assert!(
                self.alive.iter().all(|a| *a),
                "{}: per-CPU thread missing",
                self.name
            ),
            Kind::SingleThread | Kind::Lazy => {
                assert!(
                    self.alive[rules::LAZY_CORE_CPU],
                    "{}: core thread missing",
                    self.name
                )
            }
        }
        assert_eq!(
            self.stats.created - self.stats.exited_idle,
            self.nr_threads() as u64,
            "{}: created - exited != alive",
            self.name
        );
        if let Some(max) = self.max_threads {
            assert!(
                self.nr_threads() <= max.max(1),
                "{}: over its thread cap",
                self.name
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eager_queues_hold_their_threads_and_lazy_ones_grow_and_shrink() {
        let mut eager = WqModel::new("kblockd", Kind::PerCpu, 8, 100, None, 0);
        let mut single = WqModel::new("khelper", Kind::SingleThread, 8, 100, None, 0);
        let mut lazy = WqModel::new("rpciod", Kind::Lazy, 8, 100, None, 0);
        assert_eq!(
            (eager.nr_threads(), single.nr_threads(), lazy.nr_threads()),
            (8, 1, 1)
        );
        // Tick 10: work from CPUs 3 and 5, and from the core CPU.
        for cpu in [3, 5, 0] {
            lazy.queue_work_on(cpu, 10);
            eager.queue_work_on(cpu, 10);
            single.queue_work_on(cpu, 10);
        }
        assert_eq!(lazy.nr_threads(), 3);
        assert_eq!(single.stats().runs, vec![3]);
        // Tick 60: CPU 3 works again, so its idle clock restarts.
        lazy.queue_work_on(3, 60);
        // Tick 109: CPU 5 idle 99 ticks, still there. Tick 110: idle 100,
        // exits. Tick 160: CPU 3 exits. The core never does.
        assert_eq!(lazy.advance(109), 0);
        assert_eq!(lazy.advance(110), 1);
        assert!(!lazy.cpu_has_thread(5) && lazy.cpu_has_thread(3));
        assert_eq!(lazy.advance(160), 1);
        assert_eq!(lazy.advance(10_000), 0);
        assert_eq!(lazy.nr_threads(), 1);
        assert_eq!(eager.advance(10_000), 0);
        for m in [&eager, &single, &lazy] {
            m.assert_invariants();
        }
        assert_eq!(
            *lazy.stats(),
            WqModelStats {
                created: 3,
                exited_idle: 2,
                ran_on_core: 0,
                runs: vec![1, 0, 0, 2, 0, 1, 0, 0]
            }
        );
    }

    #[test]
    fn a_capped_lazy_queue_runs_work_on_the_core() {
        let mut lazy = WqModel::new("capped", Kind::Lazy, 4, 100, Some(2), 0);
        assert_eq!(
            lazy.queue_work_on(1, 0),
            Ran {
                cpu: 1,
                created_thread: true
            }
        );
        assert_eq!(
            lazy.queue_work_on(2, 0),
            Ran {
                cpu: 0,
                created_thread: false
            }
        );
        assert_eq!(lazy.stats().ran_on_core, 1);
        lazy.assert_invariants();
    }
}
