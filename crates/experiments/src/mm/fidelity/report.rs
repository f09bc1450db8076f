//! The report of `fidelity`: configuration, the closest rule per mode, the
//! side-by-side table, the host runs, the workloads, and plots of the
//! windowed miss ratio and the lists, host against model.

use klab_lab::cells;
use klab_lab::report::{Axis, Cell, Host, Report, Series, Table};
use klab_model::machine::PAGE_SIZE;

use super::{
    CaseData, Closest, Counts, Data, FLUSH_EVERY, GOAL, HostSummary, Mode, ModelRun, SLACK_READS,
    agreement, closest, closest_over_builtin, errors, rel_err, size_label, tied_names, within,
};

/// Windows per workload in the miss-ratio plot.
const MISS_WINDOWS: usize = 60;

/// Lays `data` out in `r` (the verdict is the caller's).
pub(super) fn report(data: &Data, r: &mut Report) {
    config(data, r);
    let rules = rules_of(data);
    for mode in [Mode::Observed, Mode::Unobserved] {
        if let Some(c) = closest_over_builtin(data, mode) {
            r.table(summary_table(mode, &rules, &c));
        }
    }
    r.table(closest_table(
        data,
        Mode::Observed,
        "the rule closest to the host, per workload",
    ));
    let kernel = closest_table(
        data,
        Mode::Unobserved,
        "the rule closest to the host when only the kernel flushes its statistics",
    );
    if !kernel.rows.is_empty() {
        r.table(kernel);
        r.table(modes_table(data));
    }
    r.table(side_table(data))
        .table(host_table(data))
        .table(workloads_table(data));
    for c in &data.cases {
        r.series(miss_ratio_series(c)).series(lists_series(c));
    }
    let errs = error_series(data);
    if !errs.lines.is_empty() {
        r.series(errs);
    }
    let mut notes = data.notes.clone();
    if data.host_ran() {
        notes.extend(differences());
        r.host = Host::measured(notes);
    } else {
        r.host = Host {
            real: false,
            deterministic: true,
            notes,
        };
    }
}

fn rules_of(data: &Data) -> Vec<klab_mm_policy::LruBalance> {
    data.cases
        .first()
        .map(|c| c.models.iter().map(|m| m.rule).collect())
        .unwrap_or_default()
}

fn config(data: &Data, r: &mut Report) {
    let s = &data.setup;
    if let [limit] = s.limits[..] {
        let pages = limit.div_ceil(PAGE_SIZE);
        r.config("limit_bytes", limit)
            .config("limit_pages", pages)
            .config("rounds", s.rounds)
            .config("rules", s.rules.join(","))
            .config("host_touch", s.touch.clone())
            .config("host_files", s.fill.clone())
            .config("host_flush_every_reads", FLUSH_EVERY)
            .config("model_machine_frames", 2 * pages + 64);
    } else {
        let limits: Vec<String> = s.limits.iter().map(|&l| size_label(l)).collect();
        r.config("limits", limits.join(","))
            .config("rounds", s.rounds)
            .config("rules", s.rules.join(","))
            .config("host_touch", s.touch.clone())
            .config("host_files", s.fill.clone())
            .config("host_flush_every_reads", FLUSH_EVERY)
            .config("model_machine_frames", "2 x the limit's pages + 64");
    }
    r.config("model_reclaim_batch", klab_model::machine::SWAP_CLUSTER_MAX)
        .config(
            "model_unobserved_details",
            "linux-6.18: memcg rstat flushing, charge stock 64, LRU add batches of 31, \
             filemap_read() marks once, 6.x anon",
        )
        .config("model_unobserved_cpus", s.cpus)
        .config("threshold.goal", GOAL)
        .config("threshold.slack_reads", SLACK_READS);
    if let Some(t) = &s.trace {
        r.config("trace", t.clone());
        let footprints: Vec<String> = s.trace_footprints.iter().map(u64::to_string).collect();
        r.config("trace_footprints_in_limits", footprints.join(","));
        let scales: Vec<_> = data.cases.iter().filter_map(|c| c.trace.as_ref()).collect();
        if let [scale] = scales[..] {
            r.config("trace_footprint_pages", scale.footprint)
                .config("trace_sample_rate", scale.rate)
                .config("trace_kept_pages", scale.kept_footprint)
                .config("trace_accesses", scale.accesses)
                .config("trace_kept_accesses", scale.kept_accesses);
        }
    }
}

fn pct(e: Option<f64>) -> Option<f64> {
    e.map(|v| v * 100.0)
}

fn summary_table(mode: Mode, rules: &[klab_mm_policy::LruBalance], c: &Closest) -> Table {
    let title = match mode {
        Mode::Observed => "the rule closest to the host over the built-in workloads".to_owned(),
        _ => format!(
            "the rule closest to the host over the built-in workloads, {}",
            mode.name()
        ),
    };
    let mut t = Table::new(
        &title,
        &[
            "rule",
            "mean of |misses error| and |refaults error| (%)",
            "closest",
        ],
    );
    for (k, b) in rules.iter().enumerate() {
        t.row(cells![
            b.name(),
            c.sums[k] / c.cases as f64 * 100.0,
            k == c.rule
        ]);
    }
    t
}

const CLOSEST_COLS: [&str; 8] = [
    "workload",
    "limit",
    "reads",
    "closest rule",
    "misses error (%)",
    "refaults error (%)",
    "within 10% (or 0.1% of the reads)",
    "per-read agreement",
];

fn closest_table(data: &Data, mode: Mode, title: &str) -> Table {
    let rules = rules_of(data);
    let mut t = Table::new(title, &CLOSEST_COLS);
    for c in &data.cases {
        let Some((h, models)) = mode.pair(c) else {
            continue;
        };
        let errs = errors(h, models);
        let bi = closest(&errs);
        t.row(cells![
            c.name.clone(),
            size_label(c.limit_bytes),
            h.counts.reads,
            tied_names(&rules, &errs, bi),
            pct(errs[bi].0),
            pct(errs[bi].1),
            within(h, &models[bi]),
            agreement(&models[bi].hit, &h.hit)
        ]);
    }
    t
}

/// Per workload and limit: the closest rule's errors in each mode.
fn modes_table(data: &Data) -> Table {
    let mut cols = vec!["workload".to_owned(), "limit".to_owned()];
    let modes = [Mode::Observed, Mode::Unobserved, Mode::UnobservedLive];
    for m in modes {
        for what in ["closest rule", "misses error (%)", "refaults error (%)"] {
            cols.push(format!("{}: {what}", m.name()));
        }
    }
    cols.push("unobserved model: periodic flushes (clock)".to_owned());
    cols.push("unobserved host: traced root flushes".to_owned());
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "error per workload and limit: host observed and left alone",
        &refs,
    );
    let rules = rules_of(data);
    for c in &data.cases {
        let mut row = cells![c.name.clone(), size_label(c.limit_bytes)];
        for m in modes {
            match m.pair(c) {
                Some((h, models)) => {
                    let errs = errors(h, models);
                    let bi = closest(&errs);
                    row.push(tied_names(&rules, &errs, bi).into());
                    row.push(pct(errs[bi].0).into());
                    row.push(pct(errs[bi].1).into());
                }
                None => {
                    row.push(None::<String>.into());
                    row.push(None::<f64>.into());
                    row.push(None::<f64>.into());
                }
            }
        }
        let periodic = c.kernel_models.first().and_then(|m| m.periodic_at.as_ref());
        row.push(
            periodic
                .map(|(src, at)| format!("{} ({})", at.len(), src.name()))
                .into(),
        );
        row.push(
            c.host_kernel
                .as_ref()
                .and_then(|h| h.root_flushes)
                .map(|n| n as u64)
                .into(),
        );
        t.row(row);
    }
    t
}

impl Counts {
    fn of_model(m: &ModelRun) -> Self {
        Counts {
            reads: m.hit.len() as u64,
            hits: m.hits,
            misses: m.misses,
            refaults: m.refaults,
            refault_activations: m.refault_activations,
            active: m.active,
            inactive: m.inactive,
            failcnt: m.failcnt,
        }
    }
}

/// A row of the side-by-side table: its name and how to read it.
type Metric = (&'static str, fn(&Counts) -> u64);

/// The rows of the side-by-side table.
const METRICS: [Metric; 8] = [
    ("reads", |c| c.reads),
    ("hits", |c| c.hits),
    ("misses", |c| c.misses),
    ("refaults", |c| c.refaults),
    ("refault activations", |c| c.refault_activations),
    ("final active file (pages)", |c| c.active),
    ("final inactive file (pages)", |c| c.inactive),
    ("limit failures (failcnt)", |c| c.failcnt),
];

fn side_columns(data: &Data) -> Vec<String> {
    let mut cols: Vec<String> = vec![
        "workload".into(),
        "metric".into(),
        "host".into(),
        "host, kernel's flushes only".into(),
    ];
    for b in rules_of(data) {
        cols.push(b.name().to_owned());
        cols.push(format!("{} error (%)", b.name()));
    }
    if data.cases.iter().any(|c| !c.kernel_models.is_empty()) {
        for b in rules_of(data) {
            cols.push(format!("{} with 6.18 details", b.name()));
            cols.push(format!(
                "{} with 6.18 details: error against the kernel's flushes only (%)",
                b.name()
            ));
        }
    }
    cols
}

/// One workload and metric: host values, then each model's value and
/// error (observed models against the observed host, 6.18 models against
/// the unobserved one).
fn side_row(c: &CaseData, name: &str, f: impl Fn(&Counts) -> u64) -> Vec<Cell> {
    let host = c.host.as_ref().map(|h| f(&h.counts));
    let kern = c.host_kernel.as_ref().map(|h| f(&h.counts));
    let name = if c.anon {
        name.replace(" file ", " anon ")
    } else {
        name.to_owned()
    };
    let mut row = cells![c.label(), name, host, kern];
    for (models, against) in [(&c.models, host), (&c.kernel_models, kern)] {
        for m in models {
            let v = f(&Counts::of_model(m));
            row.push(v.into());
            row.push(against.and_then(|hv| pct(rel_err(v, hv))).into());
        }
    }
    row
}

fn side_table(data: &Data) -> Table {
    let cols = side_columns(data);
    let refs: Vec<&str> = cols.iter().map(String::as_str).collect();
    let mut side = Table::new("host kernel and model, side by side", &refs);
    let width = cols.len();
    let pad = |mut row: Vec<Cell>| {
        while row.len() < width {
            row.push(None::<f64>.into());
        }
        row
    };
    for c in &data.cases {
        for (name, f) in METRICS {
            side.row(pad(side_row(c, name, f)));
        }
        let mut row = cells![
            c.label(),
            "second-access activations (host: not counted per cgroup in v1)",
            None::<u64>,
            None::<u64>
        ];
        for m in c.models.iter().chain(&c.kernel_models) {
            row.push(m.activations.into());
            row.push(None::<f64>.into());
        }
        side.row(pad(row));
        if c.anon {
            side.row(pad(swap_ins_row(c)));
        }
        if data.setup.touch == "mmap" {
            let host = c.host.as_ref().map(|h| h.pgmajfault);
            let mut row = cells![
                c.label(),
                "major faults",
                host,
                c.host_kernel.as_ref().map(|k| k.pgmajfault)
            ];
            for m in &c.models {
                row.push(m.misses.into());
                row.push(host.and_then(|hv| pct(rel_err(m.misses, hv))).into());
            }
            side.row(pad(row));
        }
        let hhit = c.host.as_ref().map(|h| &h.hit);
        let khit = c.host_kernel.as_ref().map(|h| &h.hit);
        let mut row = cells![
            c.label(),
            "per-read agreement with the host",
            None::<f64>,
            hhit.zip(khit).map(|(a, b)| agreement(b, a))
        ];
        for (models, against) in [(&c.models, hhit), (&c.kernel_models, khit)] {
            for m in models.iter() {
                row.push(against.map(|hh| agreement(&m.hit, hh)).into());
                row.push(None::<f64>.into());
            }
        }
        side.row(pad(row));
    }
    side
}

/// Swap-ins: the host's by the probe (a page touched before found out of
/// memory), the model's `pswpin`.
fn swap_ins_row(c: &CaseData) -> Vec<Cell> {
    let host = c.host.as_ref().and_then(|h| h.swap_ins);
    let kern = c.host_kernel.as_ref().and_then(|h| h.swap_ins);
    let mut row = cells![c.label(), "swap-ins", host, kern];
    for (models, against) in [(&c.models, host), (&c.kernel_models, kern)] {
        for m in models {
            row.push(m.swap_ins.into());
            row.push(against.and_then(|hv| pct(rel_err(m.swap_ins, hv))).into());
        }
    }
    row
}

fn host_table(data: &Data) -> Table {
    let mut t = Table::new(
        "the host runs",
        &[
            "workload",
            "statistics flushed",
            "cgroup",
            "limit (bytes)",
            "reads",
            "seconds",
            "reads per second",
            "memory.stat settled",
            "max usage (pages)",
            "kernel memory (pages)",
            "anon (pages)",
            "pages charged (pgpgin)",
            "refaults: cachestat / memory.stat",
            "host-wide pgactivate",
            "host-wide workingset_activate_file",
            "swap-ins (probe)",
            "host-wide pswpout",
        ],
    );
    for c in &data.cases {
        for run in c.host.iter().chain(&c.host_kernel) {
            t.row(host_row(c, run));
        }
    }
    t
}

fn host_row(c: &CaseData, run: &HostSummary) -> Vec<Cell> {
    let secs = run.seconds;
    cells![
        c.label(),
        match run.flush_every {
            Some(n) => format!("by the worker every {n} reads"),
            None => "by the kernel only".to_owned(),
        },
        run.cgroup.clone(),
        run.limit_bytes,
        run.counts.reads,
        secs,
        if secs > 0.0 {
            run.counts.reads as f64 / secs
        } else {
            f64::NAN
        },
        run.stats_settled,
        run.max_usage_pages,
        run.kmem_pages,
        run.anon_pages,
        run.pgpgin,
        format!("{} / {}", run.probe_refaults, run.counts.refaults),
        run.vmstat_pgactivate,
        run.vmstat_activate_file,
        run.swap_ins,
        run.vmstat_pswpout
    ]
}

fn workloads_table(data: &Data) -> Table {
    let mut t = Table::new(
        "workloads",
        &[
            "number",
            "workload",
            "limit",
            "what",
            "reads",
            "files (pages)",
            "footprint / limit",
        ],
    );
    for (i, c) in data.cases.iter().enumerate() {
        let limit_pages = c.limit_bytes.div_ceil(PAGE_SIZE);
        t.row(cells![
            i + 1,
            c.name.clone(),
            size_label(c.limit_bytes),
            c.question.clone(),
            c.reads,
            c.files
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" + "),
            c.footprint as f64 / limit_pages as f64
        ]);
    }
    t
}

/// At most `n` points of a line, evenly spread (the last one kept).
fn thin(points: Vec<[f64; 2]>, n: usize) -> Vec<[f64; 2]> {
    if points.len() <= n {
        return points;
    }
    let step = points.len().div_ceil(n);
    let last = *points.last().expect("non-empty");
    let mut out: Vec<[f64; 2]> = points.into_iter().step_by(step).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// The miss ratio in each window of `window` reads: `[reads at the
/// window's end, misses / reads in it]`.
pub(super) fn windowed_miss_ratio(hit: &[bool], window: usize) -> Vec<[f64; 2]> {
    let window = window.max(1);
    hit.chunks(window)
        .enumerate()
        .map(|(k, c)| {
            [
                (k * window + c.len()) as f64,
                c.iter().filter(|h| !**h).count() as f64 / c.len() as f64,
            ]
        })
        .collect()
}

/// The windowed miss ratio, host against model: the observed host and
/// the closest observed rule, the unobserved host and the closest 6.18
/// rule (every rule when no host ran).
fn miss_ratio_series(c: &CaseData) -> Series {
    let window = (c.reads as usize).div_ceil(MISS_WINDOWS).max(1);
    let mut s = Series::new(
        &format!(
            "{}: miss ratio per {window} reads, host and model",
            c.label()
        ),
        Axis::linear("reads", ""),
        Axis::linear("miss ratio", ""),
    );
    let mut any_host = false;
    for (mode, label) in [
        (Mode::Observed, "observed"),
        (Mode::Unobserved, "kernel's flushes only"),
    ] {
        let Some((h, models)) = mode.pair(c) else {
            continue;
        };
        any_host = true;
        let bi = closest(&errors(h, models));
        s.line(
            &format!("host, {label}"),
            windowed_miss_ratio(&h.hit, window),
        );
        s.line(
            &format!("model {}, {label}", models[bi].rule.name()),
            windowed_miss_ratio(&models[bi].hit, window),
        );
    }
    if !any_host {
        for m in &c.models {
            s.line(m.rule.name(), windowed_miss_ratio(&m.hit, window));
        }
    }
    s
}

fn lists_series(c: &CaseData) -> Series {
    let mut lists = Series::new(
        &format!(
            "{}: active and inactive {} pages",
            c.label(),
            if c.anon { "anon" } else { "file" }
        ),
        Axis::linear("reads", ""),
        Axis::linear("pages", "pages"),
    );
    if let Some(h) = &c.host {
        let line = |k: usize| {
            h.samples
                .iter()
                .map(|s| [s[0] as f64, s[k] as f64])
                .collect()
        };
        lists.line("host active", thin(line(1), 300));
        lists.line("host inactive", thin(line(2), 300));
    }
    for m in &c.models {
        lists.line(
            &format!("{} active", m.rule.name()),
            thin(m.samples.iter().map(|s| [s[0], s[1]]).collect(), 300),
        );
        lists.line(
            &format!("{} inactive", m.rule.name()),
            thin(m.samples.iter().map(|s| [s[0], s[2]]).collect(), 300),
        );
    }
    lists
}

fn error_series(data: &Data) -> Series {
    let mut s = Series::new(
        "the model's error against the host, by workload",
        Axis::linear("workload", "number"),
        Axis::linear("relative error", "%"),
    )
    .scatter();
    let rules = rules_of(data);
    let mut points: Vec<(String, Vec<[f64; 2]>)> = Vec::new();
    for b in &rules {
        points.push((format!("{} misses", b.name()), Vec::new()));
        points.push((format!("{} refaults", b.name()), Vec::new()));
    }
    for (wi, c) in data.cases.iter().enumerate() {
        let Some(h) = &c.host else { continue };
        for (k, (me, re)) in errors(h, &c.models).iter().enumerate() {
            if let Some(v) = me {
                points[2 * k].1.push([(wi + 1) as f64, v * 100.0]);
            }
            if let Some(v) = re {
                points[2 * k + 1].1.push([(wi + 1) as f64, v * 100.0]);
            }
        }
    }
    for (name, pts) in points {
        if !pts.is_empty() {
            s.line(&name, pts);
        }
    }
    s
}

/// The kernel details the model simplifies, each a reason the numbers can
/// differ (for the host notes).
fn differences() -> Vec<String> {
    [
        "statistics: 6.x decides from a memory cgroup's statistics as last flushed (the refault \
         test's NR_ACTIVE_FILE, prepare_scan_control()'s list sizes and refault count), which the \
         kernel folds in every 2 s or when a memory.stat reader finds enough updates pending; the \
         observed run reads memory.stat every 16 reads so they stay current, and is compared with \
         the model reading its lists live; the run with the kernel's flushes only is compared \
         with the model keeping the kernel's flushed view (KernelDetails::memcg_stats), its \
         periodic flush placed on the host run's own clock",
        "charging: the host charges a memory cgroup in batches of 64 pages (MEMCG_CHARGE_BATCH, a \
         per-CPU stock) and memory.failcnt counts each refused batch and each refused page, so it \
         runs near one failure per miss once the cgroup is full; the observed model counts one \
         failure per reclaim, the 6.18 model charges from a stock of 64",
        "kernel memory: page-cache xarray nodes, shadow nodes and the worker's own pages are \
         charged to the host cgroup (kernel memory, anon columns), leaving the page cache a little \
         less than the limit; the model charges file pages only",
        "LRU batching: a new host page waits in a per-CPU batch (up to 31 folios) before it joins \
         the inactive list and cannot be reclaimed meanwhile; a second access there activates it \
         when the batch drains; the observed model puts pages on the lists at once, the 6.18 \
         model batches them",
        "rules: classic, refault-distance and workingset-3.15 scan fixed batches of 32 and \
         deactivate only by the list ratio; workingset-6 mirrors 6.x reclaim (scans of size >> \
         priority from priority 12 down, deactivation after new refault activations, the refault \
         distance one larger than 3.15's)",
        "shadow entries: per memory cgroup on the host (the memcg id in the shadow, \
         nonresident_age per lruvec), one clock per node in the model; with one container the two \
         agree",
        "readahead: POSIX_FADV_RANDOM makes each host read miss bring in one page, as in the model \
         (pages charged equal misses)",
        "anonymous memory: the host swaps to a swap file of its own, and a swap-in reads ahead \
         (vm.page-cluster, adaptive per VMA; the workloads touch pages in shuffled orders to keep \
         it small) into the swap cache, where mincore() sees the neighbours resident; the model \
         swaps in one page. Both sides run the 6.x anon rules (new pages inactive, a young page \
         kept once, shadows of swapped-out pages and workingset_refault_anon)",
        "repeated reads: filemap_read() does not mark a page accessed again when the previous read \
         of the same file ended in the same page; the observed model marks every read, the 6.18 \
         model does not",
        "second-access activations: cgroup v1's memory.stat has no pgactivate; the host-wide \
         /proc/vmstat delta (every process on the host) is shown in the host runs table for \
         context only",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}
