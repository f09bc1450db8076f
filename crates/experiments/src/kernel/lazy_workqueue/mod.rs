//! `lazy-workqueue`: seed 001's measurement. Jens Axboe's 64-CPU box ran
//! 531 kernel threads; with lazy workqueues it ran about 280. Does a
//! machine with the workqueues of 2.6.31 hold about half the threads when
//! four of them are lazy, and what does it cost the work?
//!
//! # The machine, on real threads
//!
//! The workqueues a 64-CPU 2.6.31 machine creates (six per-CPU:
//! `events`, `kblockd`, `crypto`, `ata`, `aio`, `rpciod`; six
//! single-threaded: `khelper`, the three ACPI queues, `ksuspend_usbd`,
//! `kpsmoused`) are created by name with `klab-workqueue` on 64 logical
//! CPUs, eager (`create_workqueue()` for all) and lazy (the four the series
//! converted made `create_lazy_workqueue()`), and a workload queues work
//! the way those subsystems do: which CPUs, how often, how long
//! ([`real::SOURCES`]). The OS threads the process holds are counted in
//! `/proc/self/task` over the run, by name, and every item's queue-to-start
//! latency is recorded ([`real`]). The kernel threads that are not
//! workqueues (migration, ksoftirqd, kswapd, ...) are not started; the
//! machine's total adds their count from the reconstructed list
//! ([`model::THREADS`], shown as a labelled table: it is arithmetic, not a
//! measurement).
//!
//! # The verdict
//!
//! The lazy machine's mean thread count (measured workqueue threads plus
//! the list's other kernel threads) over the eager machine's, under the
//! subsystems' load, at most [`HALVED_AT_MOST`].
//!
//! # When the claim fails
//!
//! When every CPU of every lazy queue gets work more often than the idle
//! timeout ([`real::Load::AllCpus`]), every per-CPU thread is created and
//! none exits: the lazy machine holds about as many threads as the eager
//! one. The report shows that load beside the default one, and the test
//! `the_claim_fails_when_every_cpu_of_every_lazy_queue_is_busy` judges it.
//!
//! Real threads and real time: the report is not deterministic.

pub mod model;
pub mod real;

use serde::{Deserialize, Serialize};

use klab_lab::cells;
use klab_lab::experiment::{Ctx, Experiment, ExperimentError, Identity};
use klab_lab::report::{Axis, Host, Report, Series, Table, Verdict};

use self::model::{NR_CPUS, Role, THREADS, eager_count};
use self::real::{Load, RealConfig, RealRun};

/// The experiment (see the module documentation).
pub struct LazyWorkqueue;

/// The lazy machine holds at most this share of the eager machine's
/// threads for the claim to hold: "halving", and the page's 280 of 531
/// is 0.53.
pub const HALVED_AT_MOST: f64 = 0.6;

/// What the experiment measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LazyData {
    /// The run's parameters.
    pub cfg: RealConfig,
    /// The load the verdict is judged on.
    pub judged: Load,
    /// Kernel threads of the list that are not workqueue threads.
    pub other_kthreads: u64,
    /// Each load, eager then lazy.
    pub runs: Vec<RealRun>,
}

impl LazyData {
    /// The run of `load` on the eager or lazy machine.
    pub fn run(&self, load: Load, lazy: bool) -> Option<&RealRun> {
        self.runs.iter().find(|r| r.load == load && r.lazy == lazy)
    }

    /// Mean threads of the whole machine (measured workqueue threads and
    /// the list's other kernel threads), eager and lazy, under `load`.
    pub fn machine_means(&self, load: Load) -> Option<(f64, f64)> {
        let e = self.run(load, false)?;
        let l = self.run(load, true)?;
        if e.samples.is_empty() || l.samples.is_empty() {
            return None;
        }
        let o = self.other_kthreads as f64;
        Some((o + e.mean(), o + l.mean()))
    }
}

impl LazyWorkqueue {
    /// Measures under `loads`, the first of which the verdict is judged
    /// on (the default run: the subsystems' load, then every CPU busy).
    ///
    /// # Errors
    /// The host refused a thread, or `/proc/self/task` cannot be read.
    pub fn measure_with(&self, ctx: &Ctx<'_>, loads: &[Load]) -> Result<LazyData, ExperimentError> {
        let cfg = RealConfig {
            nr_cpus: NR_CPUS,
            duration_ms: ctx.size(4_000, 1_600),
            idle_timeout_ms: 250,
            tick_ms: 2,
            sample_ms: 20,
        };
        ctx.progress.begin("lazy-workqueue", 2 * loads.len() as u64);
        let mut runs = Vec::new();
        for (i, &load) in loads.iter().enumerate() {
            for lazy in [false, true] {
                let rng = ctx.rng(1 + i as u64);
                runs.push(real::run(&cfg, load, lazy, rng).map_err(ExperimentError::Host)?);
                ctx.progress.advance(1);
            }
        }
        ctx.progress.end();
        let other_kthreads = THREADS
            .iter()
            .filter(|l| !l.role.is_workqueue())
            .map(|l| eager_count(l, NR_CPUS) as u64)
            .sum();
        Ok(LazyData {
            cfg,
            judged: loads.first().copied().unwrap_or(Load::Subsystems),
            other_kthreads,
            runs,
        })
    }
}

impl Experiment for LazyWorkqueue {
    type Data = LazyData;

    const ID: Identity = Identity {
        name: "lazy-workqueue",
        seed_page: "001_9748f8e50c4ab156.txt",
        claim: "lazy workqueues, which start one thread and create per-CPU threads on demand that exit when idle, halve a 64-CPU machine's kernel threads (531 to about 280)",
        inputs: &[],
        hibernates: Identity::REAL_WORK,
    };

    fn measure(&self, ctx: &Ctx<'_>) -> Result<LazyData, ExperimentError> {
        self.measure_with(ctx, &[Load::Subsystems, Load::AllCpus])
    }

    fn judge(&self, d: &LazyData) -> Verdict {
        let Some((eager, lazy)) = d.machine_means(d.judged) else {
            return Verdict {
                holds: None,
                measured: format!("no thread samples for {}", d.judged.name()),
                note: "both machines must run the judged load".into(),
            };
        };
        let ratio = lazy / eager;
        let mut measured = format!(
            "under {}: the eager machine's workqueues held {:.1} threads on average (peak {}), the lazy machine's {:.1} (peak {}), counted in /proc/self/task; with the list's {} other kernel threads, {eager:.1} against {lazy:.1}: ratio {ratio:.3} (the page: 531 and 280, 0.53; halved: at most {HALVED_AT_MOST})",
            d.judged.name(),
            d.run(d.judged, false).map_or(0.0, RealRun::mean),
            d.run(d.judged, false).map_or(0, RealRun::peak),
            d.run(d.judged, true).map_or(0.0, RealRun::mean),
            d.run(d.judged, true).map_or(0, RealRun::peak),
            d.other_kthreads,
        );
        if let (Some(e), Some(l)) = (d.run(d.judged, false), d.run(d.judged, true)) {
            measured.push_str(&format!(
                ". Queue to start: eager {:.1} us mean (p99 {:.1}), lazy {:.1} us (p99 {:.1}); the lazy queues' own items {:.1} us against {:.1}",
                e.latency.mean_us,
                e.latency.p99_us,
                l.latency.mean_us,
                l.latency.p99_us,
                l.latency_candidates.mean_us,
                e.latency_candidates.mean_us
            ));
        }
        for load in [Load::Subsystems, Load::AllCpus] {
            if load != d.judged
                && let Some((e, l)) = d.machine_means(load)
            {
                measured.push_str(&format!(
                    "; under {}: {e:.1} against {l:.1} (ratio {:.3})",
                    load.name(),
                    l / e
                ));
            }
        }
        Verdict {
            holds: Some(ratio <= HALVED_AT_MOST),
            measured,
            note: "Real threads (klab-workqueue, 64 logical CPUs on this host) counted by name in /proc/self/task; the other kernel threads are the reconstructed list's count, not started. The workload's rates, durations and the 250 ms idle timeout are klab's choices (the patch's timeout is not in our sources), scaled to a run of seconds.".into(),
        }
    }

    fn report(&self, d: &LazyData, _: &Verdict, r: &mut Report) {
        r.config("cpus", d.cfg.nr_cpus)
            .config("duration_ms", d.cfg.duration_ms)
            .config("idle_timeout_ms", d.cfg.idle_timeout_ms)
            .config("tick_ms", d.cfg.tick_ms)
            .config("sample_ms", d.cfg.sample_ms)
            .config("judged_load", d.judged.name())
            .config("other_kernel_threads", d.other_kthreads)
            .config("all_cpu_rate_per_s", real::ALL_CPU_RATE)
            .config("threshold.halved_at_most", HALVED_AT_MOST);
        r.table(list_table());
        r.table(threads_table(d))
            .table(latency_table(d))
            .table(workload_table(d));
        r.table(peaks_table(d));
        let mut s = Series::new(
            "workqueue threads over time, 64 logical CPUs (real threads, /proc/self/task)",
            Axis::linear("time", "s"),
            Axis::linear("workqueue threads", ""),
        );
        for run in &d.runs {
            s.line(
                &format!("{}, {}", machine(run.lazy), run.load.name()),
                run.samples
                    .iter()
                    .map(|x| [x.t_ms / 1e3, x.named as f64])
                    .collect(),
            );
        }
        r.series(s);
        r.host = Host::measured(vec![
            format!(
                "{} runs of {} ms on real threads, {} logical CPUs on this host",
                d.runs.len(),
                d.cfg.duration_ms,
                d.cfg.nr_cpus
            ),
            "thread counts and latencies vary from run to run".into(),
        ]);
    }
}

fn machine(lazy: bool) -> &'static str {
    if lazy {
        "lazy (4 queues)"
    } else {
        "eager (create_workqueue)"
    }
}

fn list_table() -> Table {
    let mut t = Table::new(
        "2.6.31 kernel threads of a 64-CPU server (a reconstruction consistent with the cover letter's 64 CPUs, 531 and 280; arithmetic, not measured)",
        &[
            "thread",
            "kind",
            "instances",
            "eager threads",
            "lazy threads at boot",
            "created by",
        ],
    );
    let (mut eager_total, mut lazy_total) = (0, 0);
    for line in THREADS {
        let eager = eager_count(line, NR_CPUS);
        let lazy = if line.role == Role::LazyCandidate {
            klab_workqueue::Kind::Lazy.initial_threads(NR_CPUS)
        } else {
            eager
        };
        eager_total += eager;
        lazy_total += lazy;
        let inst = if line.per_cpu {
            "per CPU".to_owned()
        } else {
            line.count.to_string()
        };
        t.row(cells![
            line.name,
            line.role.name(),
            inst,
            eager,
            lazy,
            line.source
        ]);
    }
    t.row(cells!["total", "", "", eager_total, lazy_total, ""]);
    t
}

fn threads_table(d: &LazyData) -> Table {
    let mut t = Table::new(
        "workqueue threads on real threads (klab-workqueue, 64 logical CPUs), counted in /proc/self/task",
        &[
            "load",
            "machine",
            "at creation",
            "mean",
            "peak",
            "at the end",
            "all process threads beyond the baseline, mean",
            "machine total with the list's other kernel threads, mean",
            "threads created",
            "exited idle",
        ],
    );
    for run in &d.runs {
        t.row(cells![
            run.load.name(),
            machine(run.lazy),
            run.at_boot,
            run.mean(),
            run.peak(),
            run.samples.last().map(|s| s.named),
            run.mean_process(),
            d.other_kthreads as f64 + run.mean(),
            run.threads_created,
            run.threads_exited_idle
        ]);
    }
    t
}

fn latency_table(d: &LazyData) -> Table {
    let mut t = Table::new(
        "queue-to-start latency (us)",
        &[
            "load",
            "machine",
            "items queued",
            "not queued (still pending)",
            "mean",
            "p50",
            "p99",
            "max",
            "lazy queues' items: mean",
            "lazy queues' items: p99",
        ],
    );
    for run in &d.runs {
        let (a, c) = (run.latency, run.latency_candidates);
        t.row(cells![
            run.load.name(),
            machine(run.lazy),
            run.queued,
            run.coalesced,
            a.mean_us,
            a.p50_us,
            a.p99_us,
            a.max_us,
            c.mean_us,
            c.p99_us
        ]);
    }
    t
}

fn workload_table(d: &LazyData) -> Table {
    let mut t = Table::new(
        "the subsystems' load",
        &[
            "queue",
            "CPUs",
            "items per CPU per second",
            "active",
            "item runs (us)",
            "queued by",
        ],
    );
    for s in real::sources(Load::Subsystems, d.cfg.nr_cpus) {
        t.row(cells![
            s.queue,
            format!("{}-{}", s.cpus.0, s.cpus.1),
            s.per_second,
            format!(
                "{:.0}%-{:.0}% of the run",
                s.window.0 * 100.0,
                s.window.1 * 100.0
            ),
            s.duration_us,
            s.what
        ]);
    }
    t
}

fn peaks_table(d: &LazyData) -> Table {
    let cols: Vec<String> = d
        .runs
        .iter()
        .map(|r| format!("{}, {}", machine(r.lazy), r.load.name()))
        .collect();
    let mut head = vec!["queue"];
    head.extend(cols.iter().map(String::as_str));
    let mut t = Table::new("most threads each workqueue had at once", &head);
    let names: Vec<&String> = d
        .runs
        .first()
        .map(|r| r.per_queue_peak.iter().map(|(n, _)| n).collect())
        .unwrap_or_default();
    for (i, n) in names.iter().enumerate() {
        let mut row = cells![(*n).clone()];
        row.extend(
            d.runs
                .iter()
                .map(|r| klab_lab::report::Cell::from(r.per_queue_peak.get(i).map(|p| p.1))),
        );
        t.row(row);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use klab_lab::experiment::{Inputs, Run};
    use real::{Latency, Sample};

    fn run(load: Load, lazy: bool, named: u64) -> RealRun {
        RealRun {
            load,
            lazy,
            at_boot: named,
            samples: vec![
                Sample {
                    t_ms: 0.0,
                    process: named,
                    named,
                };
                4
            ],
            latency: Latency::default(),
            latency_candidates: Latency::default(),
            queued: 0,
            coalesced: 0,
            threads_created: 0,
            threads_exited_idle: 0,
            per_queue_peak: Vec::new(),
        }
    }

    fn data(eager: u64, lazy: u64) -> LazyData {
        LazyData {
            cfg: RealConfig {
                nr_cpus: 64,
                duration_ms: 1,
                idle_timeout_ms: 1,
                tick_ms: 1,
                sample_ms: 1,
            },
            judged: Load::Subsystems,
            other_kthreads: 141,
            runs: vec![
                run(Load::Subsystems, false, eager),
                run(Load::Subsystems, true, lazy),
            ],
        }
    }

    #[test]
    fn a_lazy_machine_at_half_the_threads_holds() {
        // 141 + 390 = 531 against 141 + 150 = 291: 0.548.
        let v = LazyWorkqueue.judge(&data(390, 150));
        assert_eq!(v.holds, Some(true), "{}", v.measured);
        assert!(v.measured.contains("ratio 0.548"), "{}", v.measured);
    }

    #[test]
    fn a_lazy_machine_near_the_eager_one_does_not() {
        // 531 against 141 + 370 = 511: 0.962.
        let v = LazyWorkqueue.judge(&data(390, 370));
        assert_eq!(v.holds, Some(false), "{}", v.measured);
    }

    #[test]
    fn no_samples_no_verdict() {
        let mut d = data(390, 150);
        d.runs[1].samples.clear();
        assert_eq!(LazyWorkqueue.judge(&d).holds, None);
    }

    #[test]
    fn the_quick_run_counts_real_threads_and_holds() {
        let inputs = Inputs::default();
        let r = LazyWorkqueue.run(&Ctx::new(1, true, &inputs)).unwrap();
        assert_eq!(r.verdict.holds, Some(true), "{}", r.verdict.measured);
        let t = &r.tables[1];
        assert_eq!(t.rows.len(), 4, "two loads, two machines");
        // At creation: 6 x 64 + 6 eager, 2 x 64 + 4 + 6 lazy.
        assert_eq!(t.rows[0][2].display(), "390");
        assert_eq!(t.rows[1][2].display(), "138");
        assert!(!r.host.deterministic);
    }

    #[test]
    fn the_claim_fails_when_every_cpu_of_every_lazy_queue_is_busy() {
        let inputs = Inputs::default();
        let ctx = Ctx::new(1, true, &inputs);
        let d = LazyWorkqueue.measure_with(&ctx, &[Load::AllCpus]).unwrap();
        let v = LazyWorkqueue.judge(&d);
        assert_eq!(v.holds, Some(false), "{}", v.measured);
        let lazy = d.run(Load::AllCpus, true).unwrap();
        assert!(
            lazy.peak() > 300,
            "the lazy queues grew to every CPU: {}",
            lazy.peak()
        );
    }
}
