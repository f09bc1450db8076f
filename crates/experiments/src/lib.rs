//! klab's experiments: each turns one claim of a seed page into a
//! measurement, on a built-in deterministic workload and, where it applies,
//! on real data. The modules follow the kernel tree: [`mm`], [`kernel`],
//! [`fs`], [`lib`], [`net`], [`arch`], [`tools`]; [`bench`] holds the
//! benchmarks of `klab bench`. The harness they run in (what an
//! experiment is, hibernation, the report and its writers) is `klab_lab`.
//!
//! Adding an experiment is one module and one line in [`all`].
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

pub mod arch;
pub mod bench;
pub mod fs;
pub mod kernel;
#[path = "lib/mod.rs"]
pub mod lib;
pub mod mm;
pub mod net;
pub mod tools;

use klab_lab::Run;

/// Every experiment, in the order `klab run` runs them.
pub fn all() -> &'static [&'static dyn Run] {
    &[
        &lib::radix_tree::RadixTreeExperiment,
        &lib::radix_tree_rcu::RadixTreeLockless,
        &mm::workingset::Workingset,
        &mm::memcg::MemcgScenario,
        &mm::memcg::MemcgLimit,
        &mm::memcg::MemcgOom,
        &mm::memcg::MemcgShared,
        &mm::fidelity::Fidelity,
        &mm::hwpoison::Hwpoison,
        &mm::loop_dio::LoopDio,
        &mm::slub::SlubExperiment,
        &fs::o_nostd::ONostd,
        &fs::packet_pipes::PacketPipes,
        &fs::sysfs_active::SysfsActive,
        &net::lro::Lro,
        &kernel::lazy_workqueue::LazyWorkqueue,
        &kernel::too_many_threads::TooManyThreads,
        &arch::paravirt::ParavirtExperiment,
        &kernel::suspend::Suspend,
        &net::tcp_repair::TcpRepair,
        &tools::devstats::Devstats,
        &tools::archmerge::Archmerge,
    ]
}

/// Every benchmark, in the order `klab bench` runs them.
///
/// A benchmark is an [`Experiment`] that times a klab mechanism against a
/// peer (a std collection, the system allocator, rayon, ...) in the same
/// process and reports the ratios. Its report has
/// `host: Host::measured(..)`: the numbers are real and vary between runs,
/// which is why benchmarks are kept out of `klab run`, whose reports are
/// reproducible. The criterion benches in each crate's `benches/` measure
/// the same operations more thoroughly.
pub fn benches() -> &'static [&'static dyn Run] {
    &[
        &bench::radix_tree::RadixTreeBench,
        &bench::replay::ReplayBench {
            alpha: bench::replay::CLAIMED_ALPHA,
        },
        &mm::slub::SlubBench,
        &bench::uapi::ActiveRefsBench,
        &bench::uapi::PacketPipeBench,
        &bench::lro::LroBench,
        &bench::workqueue::WorkqueueBench,
        &bench::tcp_repair::TcpRepairBench,
        &bench::devstats::DevstatsBench,
        &arch::paravirt::ParavirtBench,
    ]
}

/// Looks a name up in a list of experiments.
pub fn find_in(list: &'static [&'static dyn Run], name: &str) -> Option<&'static dyn Run> {
    list.iter().copied().find(|e| e.name() == name)
}

/// Looks an experiment up by name.
pub fn find(name: &str) -> Option<&'static dyn Run> {
    find_in(all(), name)
}
