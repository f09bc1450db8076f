//! The 2.6.31 thread list of a 64-CPU server (a reconstruction), and the
//! virtual-time model of its workqueue threads under a workload
//! (`klab_model::kernel::workqueue`, whose decisions are
//! `klab_workqueue::rules`). The `paravirt` experiment runs this workload
//! with the model's paravirt calls counted ([`run_counted`]); the
//! `lazy-workqueue` experiment shows the list as a labelled table and
//! measures real threads instead.
//!
//! # The list
//!
//! The box's `ps` listing is not in klab's sources, so the thread list is a
//! reconstruction from the 2.6.31 sources ([`THREADS`], each line naming
//! the file that creates the thread), chosen to be consistent with the
//! three numbers the cover letter gives: 64 CPUs, 531 threads, 280 after
//! the series. Eight per-CPU threads (6 × 64 workqueue threads plus
//! migration and ksoftirqd) and 19 single threads (6 of them
//! single-threaded workqueues) make 64 × 8 + 19 = 531. Making the four
//! per-CPU queues the series converted (crypto, ata, aio, rpciod) lazy
//! leaves each its core thread: 531 − 4 × 63 = 279, and 280 with the one
//! rpciod thread Jens exercised. That 279 is arithmetic on the list, not a
//! measurement.

use klab_model::kernel::workqueue::WqModel;
use klab_workqueue::Kind;
use rand::Rng as _;

/// CPUs of the box in the cover letter.
pub const NR_CPUS: usize = 64;

/// What a line of the thread list is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A kernel thread that is not a workqueue worker.
    Kthread,
    /// A single-threaded workqueue (`create_singlethread_workqueue()`).
    SingleWq,
    /// A per-CPU workqueue the series left alone.
    Workqueue,
    /// A per-CPU workqueue the series made lazy.
    LazyCandidate,
}

impl Role {
    /// A name for tables.
    pub fn name(self) -> &'static str {
        match self {
            Role::Kthread => "kernel thread",
            Role::SingleWq => "single-threaded workqueue",
            Role::Workqueue => "per-CPU workqueue",
            Role::LazyCandidate => "per-CPU workqueue, lazy in the series",
        }
    }

    /// A workqueue (its threads are created for real by the experiment).
    pub fn is_workqueue(self) -> bool {
        self != Role::Kthread
    }
}

/// One line of the thread list.
#[derive(Clone, Copy, Debug)]
pub struct ThreadLine {
    /// Name as `ps` shows it (without `/N`).
    pub name: &'static str,
    /// One per CPU, or this many in all.
    pub per_cpu: bool,
    /// Instances when not per CPU.
    pub count: usize,
    /// What it is.
    pub role: Role,
    /// The 2.6.31 source that creates it.
    pub source: &'static str,
}

const fn per_cpu(name: &'static str, role: Role, source: &'static str) -> ThreadLine {
    ThreadLine {
        name,
        per_cpu: true,
        count: 0,
        role,
        source,
    }
}

const fn single(name: &'static str, count: usize, source: &'static str) -> ThreadLine {
    ThreadLine {
        name,
        per_cpu: false,
        count,
        role: Role::Kthread,
        source,
    }
}

const fn single_wq(name: &'static str, source: &'static str) -> ThreadLine {
    ThreadLine {
        name,
        per_cpu: false,
        count: 1,
        role: Role::SingleWq,
        source,
    }
}

/// The 2.6.31 kernel threads of a 64-CPU x86-64 server (a reconstruction:
/// see the module documentation).
pub const THREADS: &[ThreadLine] = &[
    per_cpu(
        "migration",
        Role::Kthread,
        "kernel/sched.c migration_call()",
    ),
    per_cpu(
        "ksoftirqd",
        Role::Kthread,
        "kernel/softirq.c cpu_callback()",
    ),
    per_cpu(
        "events",
        Role::Workqueue,
        "kernel/workqueue.c init_workqueues()",
    ),
    per_cpu(
        "kblockd",
        Role::Workqueue,
        "block/blk-core.c blk_dev_init()",
    ),
    per_cpu(
        "crypto",
        Role::LazyCandidate,
        "crypto/crypto_wq.c crypto_wq_init()",
    ),
    per_cpu(
        "ata",
        Role::LazyCandidate,
        "drivers/ata/libata-core.c ata_init()",
    ),
    per_cpu("aio", Role::LazyCandidate, "fs/aio.c aio_setup()"),
    per_cpu(
        "rpciod",
        Role::LazyCandidate,
        "net/sunrpc/sched.c rpciod_start()",
    ),
    single("kthreadd", 1, "kernel/kthread.c kthreadd()"),
    single_wq("khelper", "kernel/kmod.c usermodehelper_init()"),
    single("async/mgr", 1, "kernel/async.c async_init()"),
    single_wq("kacpid", "drivers/acpi/osl.c acpi_os_initialize1()"),
    single_wq("kacpi_notify", "drivers/acpi/osl.c acpi_os_initialize1()"),
    single_wq("kacpi_hotplug", "drivers/acpi/osl.c acpi_os_initialize1()"),
    single("kseriod", 1, "drivers/input/serio/serio.c serio_init()"),
    single("khubd", 1, "drivers/usb/core/hub.c usb_hub_init()"),
    single_wq(
        "ksuspend_usbd",
        "drivers/usb/core/usb.c ksuspend_usb_init()",
    ),
    single_wq(
        "kpsmoused",
        "drivers/input/mouse/psmouse-base.c psmouse_init()",
    ),
    single(
        "kswapd",
        4,
        "mm/vmscan.c kswapd_init(), one per node (4 nodes)",
    ),
    single(
        "pdflush",
        2,
        "mm/pdflush.c pdflush_init(), MIN_PDFLUSH_THREADS",
    ),
    single("kjournald", 1, "fs/jbd/journal.c, one per ext3 file system"),
    single("scsi_eh", 2, "drivers/scsi/hosts.c, one per SCSI host"),
];

/// Threads of `line` on `nr_cpus` CPUs with every queue eager.
pub fn eager_count(line: &ThreadLine, nr_cpus: usize) -> usize {
    if line.per_cpu { nr_cpus } else { line.count }
}

/// Workload: which CPUs queue to a lazy candidate, how often, when.
#[derive(Clone, Debug)]
struct Source {
    queue: &'static str,
    cpus: std::ops::Range<usize>,
    per_second: f64,
    /// Active between these fractions of the run.
    window: (f64, f64),
}

const SOURCES: &[Source] = &[
    Source {
        queue: "rpciod",
        cpus: 8..16,
        per_second: 20.0,
        window: (0.0, 1.0),
    },
    Source {
        queue: "aio",
        cpus: 16..32,
        per_second: 50.0,
        window: (1.0 / 3.0, 2.0 / 3.0),
    },
    Source {
        queue: "ata",
        cpus: 0..2,
        per_second: 0.2,
        window: (0.0, 1.0),
    },
    Source {
        queue: "crypto",
        cpus: 40..42,
        per_second: 0.005,
        window: (0.0, 1.0),
    },
];

/// A machine of workqueue models plus a constant count of other threads.
#[derive(serde::Serialize, serde::Deserialize)]
struct Machine {
    queues: Vec<(String, WqModel)>,
    other_threads: usize,
}

impl Machine {
    pub(crate) fn boot(lazy: bool, idle_ms: u64) -> Machine {
        let mut queues = Vec::new();
        let mut other = 0;
        for line in THREADS {
            match line.role {
                Role::Kthread | Role::SingleWq => other += eager_count(line, NR_CPUS),
                Role::Workqueue => queues.push((
                    line.name.to_owned(),
                    WqModel::new(line.name, Kind::PerCpu, NR_CPUS, idle_ms, None, 0),
                )),
                Role::LazyCandidate => {
                    let kind = if lazy { Kind::Lazy } else { Kind::PerCpu };
                    queues.push((
                        line.name.to_owned(),
                        WqModel::new(line.name, kind, NR_CPUS, idle_ms, None, 0),
                    ));
                }
            }
        }
        Machine {
            queues,
            other_threads: other,
        }
    }

    pub(crate) fn threads(&self) -> usize {
        self.other_threads + self.wq_threads()
    }

    fn wq_threads(&self) -> usize {
        self.queues.iter().map(|(_, q)| q.nr_threads()).sum()
    }

    fn queue(&mut self, name: &str) -> &mut WqModel {
        &mut self
            .queues
            .iter_mut()
            .find(|(n, _)| *n == name)
            .expect("queue in the list")
            .1
    }

    /// Moves every queue's clock; returns the threads that exited idle.
    fn advance(&mut self, now: u64) -> usize {
        self.queues.iter_mut().map(|(_, q)| q.advance(now)).sum()
    }

    fn assert_invariants(&self) {
        for (_, q) in &self.queues {
            q.assert_invariants();
        }
    }
}

/// Thread counts of one run, sampled.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunResult {
    samples: Vec<[f64; 2]>,
    min: usize,
    max: usize,
    mean: f64,
    end: usize,
    per_queue_max: Vec<(String, usize)>,
    runs: u64,
    created: u64,
}

pub(crate) const TICK_MS: u64 = 10;
const SAMPLE_MS: u64 = 500;

/// One machine under the workload, one 10 ms tick a step: the workqueue
/// models, the generator and the counts so far.
#[derive(serde::Serialize, serde::Deserialize)]
struct RunJob {
    m: Machine,
    rng: klab_model::rng::Rng,
    duration_ms: u64,
    t: u64,
    sum: u64,
    n: u64,
    res: RunResult,
    /// The paravirt table the model kernel calls through, when counted
    /// (the `paravirt` experiment); the counts change nothing else.
    #[serde(default)]
    pv: Option<klab_model::arch::paravirt::Paravirt>,
}

/// Runs the workload with the paravirt calls of each event counted:
/// `__queue_work()` takes the CPU workqueue's lock with interrupts saved,
/// `try_to_wake_up()` the runqueue lock likewise; a thread created on
/// demand costs `kthread_create()`'s two more; the worker takes the
/// workqueue's lock with `spin_lock_irq()` to run the item and the
/// runqueue lock to switch to it; a CPU that leaves and re-enters idle in
/// a tick programs its clock event twice (NO_HZ), and a lazy thread's
/// idle exit fires one timer.
pub(crate) fn run_counted(
    lazy: bool,
    idle_ms: u64,
    duration_ms: u64,
    rng: klab_model::rng::Rng,
    pv: klab_model::arch::paravirt::Paravirt,
) -> (u64, klab_model::arch::paravirt::Paravirt) {
    use klab_lab::hibernate::{Job, Step};
    let mut j = RunJob::new(lazy, idle_ms, duration_ms, rng);
    j.pv = Some(pv);
    while j.step(&()) != Step::Done {}
    let pv = j.pv.take().expect("set above");
    (j.res.runs, pv)
}

impl RunJob {
    fn new(lazy: bool, idle_ms: u64, duration_ms: u64, rng: klab_model::rng::Rng) -> Self {
        let m = Machine::boot(lazy, idle_ms);
        let res = RunResult {
            samples: Vec::new(),
            min: usize::MAX,
            max: 0,
            mean: 0.0,
            end: 0,
            per_queue_max: m
                .queues
                .iter()
                .map(|(n, q)| (n.clone(), q.nr_threads()))
                .collect(),
            runs: 0,
            created: 0,
        };
        RunJob {
            m,
            rng,
            duration_ms,
            t: 0,
            sum: 0,
            n: 0,
            res,
            pv: None,
        }
    }
}

impl klab_lab::hibernate::Job for RunJob {
    type Env = ();
    type Output = RunResult;
    const KIND: &'static str = "lazy-workqueue: one machine under the workload";
    const TICK_NS: u64 = klab_lab::hibernate::WQ_TICK_NS;

    fn step(&mut self, _: &()) -> klab_lab::hibernate::Step {
        use klab_lab::hibernate::Step;
        let t = self.t;
        if t > self.duration_ms {
            return Step::Done;
        }
        let (m, res) = (&mut self.m, &mut self.res);
        let exited = m.advance(t);
        if let Some(pv) = &mut self.pv {
            for _ in 0..exited {
                pv.program_timer();
            }
        }
        let runs_before = res.runs;
        let mut busy_cpus = [false; NR_CPUS];
        let frac = t as f64 / self.duration_ms.max(1) as f64;
        for s in SOURCES {
            if frac < s.window.0 || frac >= s.window.1 {
                continue;
            }
            let p = s.per_second * TICK_MS as f64 / 1000.0;
            for cpu in s.cpus.clone() {
                if self.rng.random_bool(p.clamp(0.0, 1.0)) {
                    let ran = m.queue(s.queue).queue_work_on(cpu, t);
                    res.runs += 1;
                    if let Some(pv) = &mut self.pv {
                        pv.lock_irqsave(); // __queue_work(): cwq->lock
                        pv.lock_irqsave(); // try_to_wake_up(): rq->lock
                        if ran.created_thread {
                            pv.lock_irqsave(); // kthread_create()
                            pv.lock_irqsave(); // wake_up_new_task()
                        }
                        pv.lock_irq(); // schedule() to the worker
                        pv.lock_irq(); // run_workqueue(): cwq->lock
                        busy_cpus[ran.cpu % NR_CPUS] = true;
                    }
                }
            }
        }
        if let Some(pv) = &mut self.pv {
            for _ in busy_cpus.iter().filter(|b| **b) {
                pv.program_timer(); // idle exit
                pv.program_timer(); // idle entry
            }
        }
        let threads = m.threads();
        res.min = res.min.min(threads);
        res.max = res.max.max(threads);
        self.sum += threads as u64;
        self.n += 1;
        for (slot, (_, q)) in res.per_queue_max.iter_mut().zip(&m.queues) {
            slot.1 = slot.1.max(q.nr_threads());
        }
        if t.is_multiple_of(SAMPLE_MS) {
            res.samples.push([t as f64 / 1000.0, threads as f64]);
        }
        self.t += TICK_MS;
        // A tick in which no work item was queued finds every worker idle.
        if res.runs > runs_before {
            Step::Busy(1)
        } else {
            Step::Idle(1)
        }
    }

    fn check(&self, _: &()) -> Result<(), String> {
        if self.m.queues.len() != self.res.per_queue_max.len()
            || self.m.queues.iter().map(|(n, _)| n).ne(self
                .res
                .per_queue_max
                .iter()
                .map(|(n, _)| n))
        {
            return Err("the queues do not match the machine's".into());
        }
        for (name, q) in &self.m.queues {
            if !THREADS.iter().any(|l| l.name == name) {
                return Err(format!("unknown workqueue {name:?}"));
            }
            q.check()?;
        }
        Ok(())
    }

    fn finish(mut self, _: &()) -> RunResult {
        let m = &self.m;
        m.assert_invariants();
        self.res.mean = self.sum as f64 / self.n.max(1) as f64;
        self.res.end = m.threads();
        self.res.created = m.queues.iter().map(|(_, q)| q.stats().created).sum();
        self.res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_gives_531_threads_and_the_lazy_series_279() {
        assert_eq!(Machine::boot(false, 1000).threads(), 531);
        assert_eq!(Machine::boot(true, 1000).threads(), 531 - 4 * 63);
        let wq: usize = THREADS
            .iter()
            .filter(|l| l.role.is_workqueue())
            .map(|l| eager_count(l, NR_CPUS))
            .sum();
        assert_eq!(wq, 6 * 64 + 6, "6 per-CPU and 6 single-threaded workqueues");
    }

    #[test]
    fn the_lazy_run_never_has_more_threads_than_the_eager_one() {
        use klab_lab::hibernate::{Job, Step};
        let run = |lazy| {
            let mut j = RunJob::new(lazy, 5000, 20_000, klab_model::rng::seeded(7, 1));
            while j.step(&()) != Step::Done {}
            j.finish(&())
        };
        let (e, l) = (run(false), run(true));
        assert_eq!((e.min, e.max), (531, 531));
        assert!(l.max < e.min);
        assert!(l.min >= 279);
        assert_eq!(e.runs, l.runs, "same workload for both");
    }
}
