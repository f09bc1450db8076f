//! The hibernation half of `suspend`: a model machine with a page-cache
//! working set and anonymous memory hibernated by 2.6.23's swsusp and by
//! TuxOnIce (`klab_model::kernel::power`), resumed, and the workload's next
//! round run on it.
//!
//! Each run builds the machine afresh from the seed (the same accesses
//! every time): `pages` frames and twice as many swap slots, a task's
//! anonymous memory of an eighth of RAM, then the workload's rounds before
//! the hibernation. After resume, the accesses of its next round are
//! measured: the hit ratio of its working-set reads, the file refaults
//! (reads of pages evicted with a shadow: here, by the shrink), the
//! swap-ins, and the hit ratio per twentieth of the round (the series).
//!
//! The variants: no hibernation (the reference), swsusp with
//! `image_size` 2/5 of RAM (the default of later kernels), swsusp with
//! 2.6.23's 500 MB (larger than the
//! model's RAM: only the copy's need for half of memory binds), and
//! TuxOnIce with its defaults and LZ4. The swap device is klab's choice: a
//! 2007 laptop disk, 40 MB/s sequential write and 50 MB/s read
//! ([`DISK`]).
//!
//! Page contents for compression: the bytes of [`CORPUS_FILES`], files
//! of this repository (network captures, C programs, a hibernation image,
//! cache-trace fixtures), embedded at build time; each model page takes a
//! page of them by its owner ([`klab_model::kernel::power::device::Corpus`]).

use klab_mm_policy::LruBalance;
use klab_model::drive::Drive;
use klab_model::kernel::power::device::{Corpus, SwapDevice};
use klab_model::kernel::power::freezer::{Freezer, FreezerTask, TaskState};
use klab_model::kernel::power::swsusp::{
    HibernateRun, IMAGE_SIZE_2_6_23, SwsuspConfig, image_size_two_fifths, swsusp_hibernate,
};
use klab_model::kernel::power::tuxonice::{ToiConfig, toi_hibernate};
use klab_model::{Access, Machine, MachineConfig};
use serde::{Deserialize, Serialize};

use crate::mm::workload;

/// The swap device: klab's choice, a 2007 laptop disk's sequential rates.
pub const DISK: SwapDevice = SwapDevice {
    write_bytes_per_s: 40_000_000,
    read_bytes_per_s: 50_000_000,
};

/// Where the page contents come from (paths in the repository).
pub const CORPUS_FILES: [&str; 10] = [
    "crates/net/lro/fuzz/seeds/capture/pcapplusplus-one_tcp_stream_max_seq-12.pcap",
    "crates/net/lro/fuzz/seeds/capture/ndpi-bot-vlan-8.pcap",
    "crates/net/lro/fuzz/seeds/capture/pcapplusplus-tcp-reassembly-10.pcap",
    "crates/net/lro/fuzz/seeds/capture/suricata-verify-http-body-hook-01-ipv6-8.pcap",
    "crates/mm/slab-preload/tests/data/churn.c",
    "crates/mm/slab-preload/tests/data/larson.c",
    "crates/model/model/fuzz/seeds/hibernation_image/image-48-pages-slab",
    "crates/lib/trace/fuzz/seeds/parse/cloudPhysicsIO-80.csv",
    "crates/lib/trace/fuzz/seeds/parse/cloudPhysicsIO-64.vscsi",
    "crates/lib/trace/fuzz/seeds/parse/cloudPhysicsIO-64.oracleGeneral.bin",
];

/// The bytes of [`CORPUS_FILES`], in order.
const CORPUS_BYTES: [&[u8]; 10] = [
    include_bytes!(
        "../../../../net/lro/fuzz/seeds/capture/pcapplusplus-one_tcp_stream_max_seq-12.pcap"
    ),
    include_bytes!("../../../../net/lro/fuzz/seeds/capture/ndpi-bot-vlan-8.pcap"),
    include_bytes!("../../../../net/lro/fuzz/seeds/capture/pcapplusplus-tcp-reassembly-10.pcap"),
    include_bytes!(
        "../../../../net/lro/fuzz/seeds/capture/suricata-verify-http-body-hook-01-ipv6-8.pcap"
    ),
    include_bytes!("../../../../mm/slab-preload/tests/data/churn.c"),
    include_bytes!("../../../../mm/slab-preload/tests/data/larson.c"),
    include_bytes!("../../../../model/model/fuzz/seeds/hibernation_image/image-48-pages-slab"),
    include_bytes!("../../../../lib/trace/fuzz/seeds/parse/cloudPhysicsIO-80.csv"),
    include_bytes!("../../../../lib/trace/fuzz/seeds/parse/cloudPhysicsIO-64.vscsi"),
    include_bytes!("../../../../lib/trace/fuzz/seeds/parse/cloudPhysicsIO-64.oracleGeneral.bin"),
];

/// The corpus of [`CORPUS_FILES`].
pub fn corpus() -> Corpus {
    let bytes: Vec<u8> = CORPUS_BYTES.concat();
    Corpus::new("klab repository fixtures", &bytes).expect("the fixtures hold whole pages")
}

/// A built-in workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    /// `workingset`'s hot set of 5/8 of memory re-read while a stream
    /// passes: two rounds, hibernation, the third round.
    HotAndStream,
    /// `workingset`'s working set of 1/2 of memory: three of four rounds,
    /// hibernation, the last (the set moved to new pages halfway).
    Shifting,
    /// Two rounds of the hot set and stream, hibernation, then reads of a
    /// file never read before: nothing cached can help.
    NoReuse,
}

impl WorkloadKind {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::HotAndStream => "hot set and stream",
            WorkloadKind::Shifting => "shifting working set",
            WorkloadKind::NoReuse => "no reuse after resume",
        }
    }
}

/// A hibernation variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Variant {
    /// The machine runs on without hibernating.
    None,
    /// swsusp with `image_size` 2/5 of RAM.
    SwsuspTwoFifths,
    /// swsusp with 2.6.23's 500 MB.
    Swsusp500M,
    /// TuxOnIce, LZ4.
    TuxOnIce,
}

impl Variant {
    /// Every variant, in report order.
    pub const ALL: [Variant; 4] = [
        Variant::None,
        Variant::SwsuspTwoFifths,
        Variant::Swsusp500M,
        Variant::TuxOnIce,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Variant::None => "no hibernation",
            Variant::SwsuspTwoFifths => "swsusp, image_size 2/5 of RAM",
            Variant::Swsusp500M => "swsusp, image_size 500 MB (2.6.23)",
            Variant::TuxOnIce => "TuxOnIce, LZ4",
        }
    }
}

/// The desktop the freezer stops: the reading task returns to user space
/// every millisecond, the rest sleep; `ksoftirqd` and `events` are
/// `PF_NOFREEZE` (klab's choice of tasks).
pub fn desktop() -> Vec<FreezerTask> {
    const MS: u64 = 1_000_000;
    vec![
        FreezerTask::user(
            "reader",
            TaskState::Running {
                safe_point_every_ns: MS,
            },
        ),
        FreezerTask::user("Xorg", TaskState::Interruptible),
        FreezerTask::user("bash", TaskState::Interruptible),
        FreezerTask::user("syslogd", TaskState::Interruptible),
        FreezerTask::kthread("kswapd0", true, TaskState::Interruptible),
        FreezerTask::kthread("pdflush", true, TaskState::Interruptible),
        FreezerTask::kthread("kjournald", true, TaskState::Interruptible),
        FreezerTask::kthread(
            "ksoftirqd/0",
            false,
            TaskState::Running {
                safe_point_every_ns: MS,
            },
        ),
        FreezerTask::kthread("events/0", false, TaskState::Interruptible),
    ]
}

/// One freezer scenario: the desktop plus one task.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FreezeRow {
    /// What was added.
    pub scenario: String,
    /// Frozen, or the error.
    pub frozen: bool,
    /// Time to freeze or to fail, ns.
    pub elapsed_ns: u64,
    /// Passes of the loop.
    pub passes: u64,
    /// Tasks refusing to freeze.
    pub refusing: Vec<String>,
}

/// The freezer on the desktop, alone and with a task in `D` state whose
/// I/O completes in 2 s, or never (an NFS server gone).
pub fn freezer_rows() -> Vec<FreezeRow> {
    let extra: [(&str, Option<FreezerTask>); 3] = [
        ("the desktop", None),
        (
            "plus a read in D state that completes in 2 s",
            Some(FreezerTask::user(
                "dd",
                TaskState::Uninterruptible {
                    wakes_at_ns: Some(2_000_000_000),
                },
            )),
        ),
        (
            "plus a read from an NFS server that is gone (D state)",
            Some(FreezerTask::user(
                "cp",
                TaskState::Uninterruptible { wakes_at_ns: None },
            )),
        ),
    ];
    extra
        .into_iter()
        .map(|(scenario, task)| {
            let mut tasks = desktop();
            tasks.extend(task);
            match Freezer::default().freeze_processes(&mut tasks) {
                Ok(f) => FreezeRow {
                    scenario: scenario.into(),
                    frozen: true,
                    elapsed_ns: f.elapsed_ns,
                    passes: f.passes,
                    refusing: Vec::new(),
                },
                Err(e) => FreezeRow {
                    scenario: scenario.into(),
                    frozen: false,
                    elapsed_ns: e.elapsed_ns,
                    passes: e.passes,
                    refusing: e.refusing,
                },
            }
        })
        .collect()
}

/// What the first round after resume found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct After {
    /// Working-set reads measured.
    pub reads: u64,
    /// Of those, hits.
    pub hits: u64,
    /// Accesses of the round, all.
    pub accesses: u64,
    /// File pages read back that left a shadow (`workingset_refault`).
    pub refaults: u64,
    /// Anonymous pages read back from swap (`pswpin`).
    pub swapins: u64,
}

impl After {
    /// The working-set reads' hit ratio.
    pub fn hit_ratio(&self) -> f64 {
        self.hits as f64 / self.reads.max(1) as f64
    }

    /// The share of `reference`'s hits this round kept (1 when the
    /// reference had none: there was nothing to keep).
    pub fn kept_share(&self, reference: &After) -> f64 {
        if reference.hits == 0 {
            1.0
        } else {
            self.hits as f64 / reference.hits as f64
        }
    }
}

/// One workload under one variant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VariantRun {
    /// The workload.
    pub workload: WorkloadKind,
    /// The variant.
    pub variant: Variant,
    /// The hibernation, when there was one and it succeeded.
    pub run: Option<HibernateRun>,
    /// Why the hibernation failed.
    pub error: Option<String>,
    /// File pages resident when the round after starts.
    pub cache_at_start: u64,
    /// The round after.
    pub after: After,
    /// `[twentieth of the round, hit ratio of its working-set reads]`.
    pub per_window: Vec<[f64; 2]>,
}

/// The accesses before and after the hibernation.
struct Scenario {
    before: Vec<(Access, bool)>,
    after: Vec<(Access, bool)>,
}

fn scenario(kind: WorkloadKind, pages: u64, rng: &mut klab_model::rng::Rng) -> Scenario {
    match kind {
        WorkloadKind::HotAndStream => {
            let mut w = workload::hot_and_stream(pages, 3, rng).accesses;
            let after = w.split_off(w.len() / 3 * 2);
            Scenario { before: w, after }
        }
        WorkloadKind::Shifting => {
            let mut w = workload::shifting(pages, 4, rng).accesses;
            let after = w.split_off(w.len() / 4 * 3);
            Scenario { before: w, after }
        }
        WorkloadKind::NoReuse => {
            let w = workload::hot_and_stream(pages, 2, rng);
            let round = w.window as u64;
            // A file no built-in workload reads.
            let after = (0..round).map(|p| (Access::read(3, p), true)).collect();
            Scenario {
                before: w.accesses,
                after,
            }
        }
    }
}

/// The anonymous task: the desktop's processes, an eighth of RAM.
const ANON_TASK: u32 = 1;

/// Runs `kind` under `variant` on a machine of `pages` frames.
///
/// # Panics
/// If the model refuses its own configuration.
pub fn run(
    kind: WorkloadKind,
    variant: Variant,
    pages: u64,
    seed: u64,
    corpus: &Corpus,
) -> VariantRun {
    let mut rng = klab_model::rng::seeded(seed, 0x5d5 + kind as u64);
    let sc = scenario(kind, pages, &mut rng);
    let mut cfg = MachineConfig::new(pages, LruBalance::Classic);
    cfg.swap_pages = 2 * pages;
    let mut m = Machine::new(cfg).expect("a valid machine");
    for v in 0..pages / 8 {
        m.access(Access::anon(ANON_TASK, v));
    }
    for (a, _) in &sc.before {
        m.access(*a);
    }
    let mut tasks = desktop();
    let swsusp = |image_size| SwsuspConfig {
        image_size,
        device: DISK,
        freezer: Freezer::default(),
    };
    let result = match variant {
        Variant::None => None,
        Variant::SwsuspTwoFifths => Some(swsusp_hibernate(
            &mut m,
            &mut tasks,
            &swsusp(image_size_two_fifths(pages)),
        )),
        Variant::Swsusp500M => Some(swsusp_hibernate(
            &mut m,
            &mut tasks,
            &swsusp(IMAGE_SIZE_2_6_23),
        )),
        Variant::TuxOnIce => Some(toi_hibernate(
            &mut m,
            &mut tasks,
            &ToiConfig::new(DISK),
            corpus,
        )),
    };
    let (run, error) = match result {
        None => (None, None),
        Some(Ok(r)) => (Some(r), None),
        Some(Err(e)) => (None, Some(e.to_string())),
    };
    let cache_at_start = m.nr_file_pages();
    let before = *m.stat();
    let window = (sc.after.len() as u64 / 20).max(1);
    let mut d = Drive::on(m).windows(window);
    for (a, measured) in &sc.after {
        d.access_as(*a, *measured);
    }
    let stat = d.machine().stat();
    let after = After {
        reads: d.measured().accesses,
        hits: d.measured().hits,
        accesses: d.all().accesses,
        refaults: stat.workingset_refault - before.workingset_refault,
        swapins: stat.pswpin - before.pswpin,
    };
    VariantRun {
        workload: kind,
        variant,
        run,
        error,
        cache_at_start,
        after,
        per_window: d.per_window().to_vec(),
    }
}
