//! Every command-line flag, in one place, with its documentation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// See the Linux kernel's mechanisms work, and measure them.
///
/// klab builds the mechanisms described in LWN's kernel pages (the radix
/// tree, SLUB, workqueues, the page cache, ...) and turns each claim of a
/// page into an experiment.
#[derive(Debug, Parser)]
#[command(name = "klab", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// List every experiment: its name, the seed page it comes from, its claim.
    List(ListArgs),
    /// Run experiments (all of them by default) and write the reports.
    Run(RunArgs),
    /// Continue a hibernated model experiment from its image and write the
    /// reports `klab run` writes, the same as an uninterrupted run's.
    Resume(ResumeArgs),
    /// Replay a cache trace through a page-replacement policy: hits, misses,
    /// refaults, activations, speed, and optionally a miss-ratio curve.
    Replay(ReplayArgs),
    /// Time klab's mechanisms against their peers (std collections, the
    /// system allocator, rayon, ...) in one process and report the ratios.
    /// Timings vary between runs; `klab run` stays reproducible.
    Bench(BenchArgs),
    /// Aggregate the TCP segments of a capture as large receive offload
    /// (inet_lro) or GRO would, write the aggregated capture, print the
    /// statistics.
    Lro(LroArgs),
    /// Dump a live TCP connection and restore it elsewhere, the peer
    /// unaware (Linux TCP connection repair). Needs CAP_NET_ADMIN.
    #[command(name = "tcp-repair")]
    TcpRepair(TcpRepairArgs),
    /// Development statistics of a git repository, counted as LWN's "who
    /// wrote this kernel" articles count them: non-merge changesets,
    /// developers, lines added and removed, employers, non-author signoffs.
    Devstats(DevstatsArgs),
    /// Merge two architecture source trees into one, as i386 and x86_64
    /// became arch/x86: identical files kept once, differing files split
    /// into NAME_32/NAME_64, a build manifest per architecture.
    Archmerge(ArchmergeArgs),
    /// Run the same page-cache workload on this machine's kernel (in a
    /// memory cgroup with a limit, cgroup v1, as root) and in the machine
    /// model under each balancing rule, and compare hits, misses, refaults,
    /// activations, list sizes and limit failures. Without root or the
    /// cgroup v1 memory controller, the model runs alone and the report
    /// says so.
    Fidelity(FidelityArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print the names only, one per line.
    #[arg(long)]
    pub(crate) names: bool,
}

/// The report flags `klab run` and `klab bench` share: where the reports
/// go, the seed, the size.
#[derive(Debug, Args)]
pub(crate) struct ReportFlags {
    /// Directory for report.json and report.html (created if missing).
    #[arg(long, value_name = "DIR", default_value = "klab-report")]
    pub(crate) out: PathBuf,

    /// Seed for every random choice (generated keys, workloads): the same
    /// seed gives the same numbers, timings aside.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,

    /// Small sizes and few repetitions (for CI): every table and plot, in
    /// seconds; for a benchmark, a smoke test, not a measurement.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Also write the JSON report to FILE; `-` writes it to standard output
    /// instead of the terminal report.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Experiments to run, by name; all of them when none is given.
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,

    #[command(flatten)]
    pub(crate) report: ReportFlags,

    /// A cache trace to run on, for experiments that take one.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,

    /// A packet capture (pcap or pcapng), for experiments that take one.
    #[arg(long, value_name = "FILE")]
    pub(crate) pcap: Option<PathBuf>,

    /// A scenario file, for experiments that take one.
    #[arg(long, value_name = "FILE")]
    pub(crate) scenario: Option<PathBuf>,

    /// A git repository or source tree, for experiments that take one.
    #[arg(long, value_name = "PATH")]
    pub(crate) repo: Option<PathBuf>,

    /// The revisions of --repo to count (`v2.6.30..v2.6.31-rc7`; default
    /// HEAD's whole history), for experiments that read a git history.
    #[arg(long, value_name = "A..B", requires = "repo")]
    pub(crate) range: Option<String>,

    /// Who works where, in gitdm's EmailMap format (`address employer`,
    /// optionally `< YYYY-MM-DD`), for --repo; without it each address's
    /// domain names its employer.
    #[arg(long, value_name = "FILE", requires = "repo")]
    pub(crate) employers: Option<PathBuf>,

    /// Hibernate: stop the (one, model) experiment at the first step
    /// boundary at or after virtual time T (model ticks: accesses, work
    /// ticks, packets, system calls) and write its complete state to
    /// --image; no report is written. `klab resume` continues it.
    #[arg(long, value_name = "T", requires = "image")]
    pub(crate) hibernate_at: Option<u64>,

    /// The hibernation image to write (with --hibernate-at).
    #[arg(long, value_name = "FILE", requires = "hibernate_at")]
    pub(crate) image: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ResumeArgs {
    /// A hibernation image written by `klab run NAME --hibernate-at T
    /// --image FILE`.
    #[arg(value_name = "FILE")]
    pub(crate) image: PathBuf,

    /// Directory for report.json and report.html (created if missing).
    #[arg(long, value_name = "DIR", default_value = "klab-report")]
    pub(crate) out: PathBuf,

    /// Also write the JSON report to FILE; `-` writes it to standard output
    /// instead of the terminal report.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The trace: libCacheSim oracleGeneral (.oracleGeneral.bin), csv, txt,
    /// VMware vscsi (.vscsi) or klab (.ktr), plain or zstd-compressed (.zst,
    /// or told by its magic). Read as a stream: memory does not grow with
    /// the trace.
    #[arg(value_name = "TRACE")]
    pub(crate) trace: PathBuf,

    /// Cache size: bytes, or with a binary unit (64MiB, 1GiB); with
    /// --ignore-size, a number of objects.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) memory: u64,

    /// Policy: lru, fifo, clock, 2q, arc, opt (Belady), or a kernel rule (classic,
    /// refault-distance, workingset-3.15, workingset-6) run in the machine
    /// model.
    #[arg(long, value_name = "P", default_value = "lru")]
    pub(crate) policy: klab_mm_policy::PolicyKind,

    /// Unit of caching: object (default for textbook policies) or page
    /// (4 KiB pages of each request's byte range; default for kernel rules).
    #[arg(long, value_name = "UNIT", value_enum)]
    pub(crate) unit: Option<ReplayUnit>,

    /// Every object has size 1 and --memory counts objects.
    #[arg(long)]
    pub(crate) ignore_size: bool,

    /// Trace format, when the file name does not tell it.
    #[arg(long, value_name = "FORMAT")]
    pub(crate) format: Option<klab_trace::Format>,

    /// Bytes per block number in page mode (default: 512 for vscsi, csv and
    /// oracleGeneral; 4096 for txt and klab traces).
    #[arg(long, value_name = "BYTES", value_parser = parse_size)]
    pub(crate) block_size: Option<u64>,

    /// Also sweep 16 memory sizes from 1/64 to twice --memory, in parallel,
    /// and write the miss-ratio curve to the report.
    #[arg(long)]
    pub(crate) mrc: bool,

    /// Leave OPT (Belady's optimal policy) off the miss-ratio curve: its
    /// pre-pass keeps 8 bytes per request, the one cost of --mrc that grows
    /// with the trace rather than with the cache.
    #[arg(long)]
    pub(crate) no_opt: bool,

    /// SHARDS spatial sampling: replay only the keys whose hash falls under
    /// RATE (e.g. 0.01), in caches RATE times the size; an estimate of the
    /// curve at a fraction of the cost. Default: exact.
    #[arg(long, value_name = "RATE")]
    pub(crate) sample: Option<f64>,

    /// With --sample and --mrc: also compute the exact curve and report the
    /// sampled curve's error against it.
    #[arg(long)]
    pub(crate) sample_check: bool,

    /// Threads for --mrc (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,

    /// Directory for report.json and report.html.
    #[arg(long, value_name = "DIR", default_value = "klab-replay")]
    pub(crate) out: PathBuf,

    /// Also write the JSON report to FILE; `-` writes it to standard output
    /// instead of the summary.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    klab_experiments::mm::replay::parse_size(s)
}

/// `klab replay --unit`: what the cache holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReplayUnit {
    /// Whole objects.
    Object,
    /// The 4 KiB pages of each request's byte range.
    Page,
}

impl From<ReplayUnit> for klab_experiments::mm::replay::Unit {
    fn from(u: ReplayUnit) -> Self {
        match u {
            ReplayUnit::Object => klab_experiments::mm::replay::Unit::Object,
            ReplayUnit::Page => klab_experiments::mm::replay::Unit::Page,
        }
    }
}

#[derive(Debug, Args)]
// Benchmarks write their reports beside `klab run`'s, not over them.
#[command(mut_arg("out", |a| a.default_value("klab-bench")))]
pub(crate) struct BenchArgs {
    /// Benchmarks to run, by name; all of them when none is given.
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,

    #[command(flatten)]
    pub(crate) report: ReportFlags,

    /// List the benchmarks instead of running them.
    #[arg(long)]
    pub(crate) list: bool,

    /// For `slub`: run the C programs of a built allocator benchmark suite
    /// (mimalloc-bench's `out/bench`, built with its own CMake) under
    /// glibc, the system mimalloc and klab, interleaved, median of 3,
    /// instead of the built-in workloads.
    #[arg(long, value_name = "DIR")]
    pub(crate) suite: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct LroArgs {
    /// The capture to read (pcap or pcapng; Ethernet, raw IP or Linux
    /// cooked).
    #[arg(value_name = "IN")]
    pub(crate) input: PathBuf,

    /// Write the aggregated capture here (pcapng if the name ends in
    /// .pcapng, pcap otherwise). Written to a temporary file and renamed.
    #[arg(long, value_name = "OUT")]
    pub(crate) out: Option<PathBuf>,

    /// lro: inet_lro's rules (IPv4 only, timestamps may differ, ACK and
    /// window rewritten); gro: GRO's stricter rules (headers must match).
    #[arg(long, value_name = "MODE", value_enum, default_value_t = LroMode::Lro)]
    pub(crate) mode: LroMode,

    /// LRO descriptors, one per flow aggregated at once (max_desc). In gro
    /// mode: packets held per hash bucket (MAX_GRO_SKBS, 8 buckets).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub(crate) max_desc: usize,

    /// LRO: packets per aggregate (max_aggr; 64 when not given). GRO has no
    /// count limit (it stops at 64 KiB), so gro mode rejects this flag.
    #[arg(long, value_name = "N")]
    pub(crate) max_aggr: Option<u32>,

    /// Packets per NAPI poll; every poll ends with a flush of all held
    /// packets.
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub(crate) budget: usize,

    /// Interrupt moderation: a poll also ends at the first packet captured
    /// more than N microseconds after the poll's first. Without it the
    /// capture is replayed at line rate.
    #[arg(long, value_name = "N")]
    pub(crate) rx_usecs: Option<u64>,

    /// The device MTU (LRO flushes an aggregate past 65535 - MTU bytes).
    #[arg(long, value_name = "N", default_value_t = 1500)]
    pub(crate) mtu: u32,

    /// Descriptor lookup: hashed, or linear as the kernel searched.
    #[arg(long, value_name = "KIND", value_enum, default_value_t = LroLookup::Hashed)]
    pub(crate) lookup: LroLookup,

    /// Trust the capture's TCP checksums as a NIC's CHECKSUM_UNNECESSARY
    /// (the payload is never read). By default they are verified and a
    /// segment with a wrong checksum is passed up unmerged; a field holding
    /// only the pseudo-header sum (CHECKSUM_PARTIAL, as in captures taken
    /// on a Linux sender with checksum offload) is accepted either way.
    #[arg(long)]
    pub(crate) trust_checksums: bool,
}

/// `klab lro --mode`: whose rules aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LroMode {
    /// inet_lro's rules.
    Lro,
    /// GRO's rules.
    Gro,
}

impl From<LroMode> for klab_lro::Mode {
    fn from(m: LroMode) -> Self {
        match m {
            LroMode::Lro => klab_lro::Mode::Lro,
            LroMode::Gro => klab_lro::Mode::Gro,
        }
    }
}

/// `klab lro --lookup`: how a packet finds its descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum LroLookup {
    /// A hash of the 4-tuple.
    Hashed,
    /// A walk over every descriptor, as the kernel searched.
    Linear,
}

impl From<LroLookup> for klab_lro::Lookup {
    fn from(l: LroLookup) -> Self {
        match l {
            LroLookup::Hashed => klab_lro::Lookup::Hashed,
            LroLookup::Linear => klab_lro::Lookup::Linear,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct FidelityArgs {
    /// A cache trace to run as well as the built-in workloads (formats as
    /// for `klab replay`). It is scaled to the limit: distinct pages are
    /// sampled (each kept with all its reads, by a fixed hash) down to at
    /// most 2, 4 and 8 times the limit (one workload each; 4 only with
    /// --quick), and renumbered densely per file. Writes are replayed as
    /// reads.
    #[arg(long, value_name = "FILE")]
    pub(crate) trace: Option<PathBuf>,

    /// With --trace: run the trace only, not the built-in workloads.
    #[arg(long, requires = "trace")]
    pub(crate) trace_only: bool,

    /// Reads of the trace kept at most (default 1000000; 100000 with
    /// --quick).
    #[arg(long, value_name = "N")]
    pub(crate) trace_reads: Option<usize>,

    /// The memory cgroup's limit, on the host and in the model: bytes, or
    /// with a binary unit (default: each of 16MiB, 64MiB and 256MiB; 4MiB
    /// with --quick). The built-in workloads are sized by it.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub(crate) limit: Option<u64>,

    /// The model's balancing rules to compare, comma-separated: classic,
    /// refault-distance, workingset-3.15, workingset-6 (default: all four).
    #[arg(long, value_name = "RULES", value_delimiter = ',')]
    pub(crate) rules: Vec<klab_mm_policy::LruBalance>,

    /// Access pages through a shared mapping of each file (one page per
    /// fault, MADV_RANDOM) instead of pread.
    #[arg(long)]
    pub(crate) mmap: bool,

    /// Make the data files holes: a miss zero-fills a page-cache page
    /// without reading the device (the page cache sees the same events).
    #[arg(long)]
    pub(crate) sparse: bool,

    /// Where to create the run's temporary data directory (default: the
    /// temporary directory, or /var/tmp when that is a tmpfs). It must be
    /// on a disk-backed filesystem.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,

    /// Run the model alone.
    #[arg(long)]
    pub(crate) model_only: bool,

    /// Smaller built-in workloads (12 rounds instead of 24) and limit.
    #[arg(long)]
    pub(crate) quick: bool,

    /// Seed of the built-in workloads.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) seed: u64,

    /// Directory for report.json and report.html (created if missing).
    #[arg(long, value_name = "DIR", default_value = "klab-fidelity")]
    pub(crate) out: PathBuf,

    /// Also write the JSON report to FILE; `-` writes it to standard output
    /// instead of the terminal report.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct TcpRepairArgs {
    #[command(subcommand)]
    pub(crate) command: TcpRepairCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TcpRepairCommand {
    /// Take a connected TCP socket from a running process (pidfd_getfd),
    /// lock its packets (nftables), dump it to IMAGE, and leave it in
    /// repair mode so that nothing reaches the peer when its owner closes
    /// it or exits. The lock stays until `restore` (or `unlock`).
    Dump(DumpArgs),
    /// Restore the connection in IMAGE in a new socket, remove its lock, and
    /// run CMD with the socket as descriptor 3, `LISTEN_FDS=1` and
    /// `LISTEN_PID` (systemd's socket activation), in place of klab.
    Restore(RestoreArgs),
    /// Print IMAGE in readable form.
    Show(ShowArgs),
    /// Dump, stop the owner, restore and run CMD in one step: the whole
    /// move of a running program's connection.
    Migrate(MigrateArgs),
    /// Remove stale network locks: kept ones, and those of klab processes
    /// that are gone.
    Unlock(UnlockArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DumpArgs {
    /// The process holding the socket.
    #[arg(long, value_name = "PID")]
    pub(crate) pid: i32,

    /// The socket's descriptor number in that process.
    #[arg(long, value_name = "N")]
    pub(crate) fd: i32,

    /// Where to write the image (written whole, then renamed into place).
    #[arg(short = 'o', long = "output", value_name = "IMAGE")]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// The image written by `dump`.
    #[arg(value_name = "IMAGE")]
    pub(crate) image: PathBuf,

    /// Restore into this network namespace (an `ip netns` name); CMD runs
    /// there too.
    #[arg(long, value_name = "NAME")]
    pub(crate) netns: Option<String>,

    /// Set IP_FREEBIND so the local address may be bound before it is
    /// configured here.
    #[arg(long)]
    pub(crate) freebind: bool,

    /// The program to run with the restored socket as descriptor 3, and its
    /// arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The image to print.
    #[arg(value_name = "IMAGE")]
    pub(crate) image: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MigrateArgs {
    /// The process holding the socket.
    #[arg(long, value_name = "PID")]
    pub(crate) pid: i32,

    /// The socket's descriptor number in that process.
    #[arg(long, value_name = "N")]
    pub(crate) fd: i32,

    /// Restore into this network namespace (an `ip netns` name); CMD runs
    /// there too.
    #[arg(long, value_name = "NAME")]
    pub(crate) netns: Option<String>,

    /// Leave the owner running (its socket stays in repair mode, dead but
    /// holding the 4-tuple): only with --netns. By default the owner is
    /// killed once its socket is dumped, as `criu dump` does, which frees
    /// the 4-tuple without a word to the peer.
    #[arg(long, requires = "netns")]
    pub(crate) keep_owner: bool,

    /// The program to run with the restored socket as descriptor 3, and its
    /// arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct UnlockArgs {
    /// The network namespace to clean (an `ip netns` name); the current one
    /// by default.
    #[arg(long, value_name = "NAME")]
    pub(crate) netns: Option<String>,

    /// Remove every klab lock, even those of running klab processes.
    #[arg(long)]
    pub(crate) all: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DevstatsArgs {
    /// The git repository (a work tree or a bare repository).
    #[arg(value_name = "REPO")]
    pub(crate) repo: PathBuf,

    /// A revision or range, as git rev-list takes it: `v2.6.30..v2.6.31`,
    /// `A...B`, `REV`, `REV^!`, or several separated by spaces. HEAD when
    /// omitted.
    #[arg(value_name = "RANGE")]
    pub(crate) range: Option<String>,

    /// Only commits committed at or after DATE (yyyy-mm-dd is midnight UTC;
    /// ISO 8601, RFC 2822 and @SECONDS are accepted).
    #[arg(long, value_name = "DATE")]
    pub(crate) since: Option<String>,

    /// Only commits committed at or before DATE.
    #[arg(long, value_name = "DATE")]
    pub(crate) until: Option<String>,

    /// Rows per table in the terminal (JSON and CSV hold every row).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub(crate) top: usize,

    /// Employer map in gitdm's EmailMap format: `ADDRESS-OR-DOMAIN
    /// EMPLOYER [< yyyy-mm-dd]` per line. Without it every employer is
    /// "(Unknown)".
    #[arg(long, value_name = "FILE")]
    pub(crate) employers: Option<PathBuf>,

    /// Also write the report as JSON to FILE; `-` writes it to standard
    /// output instead of the tables.
    #[arg(long, value_name = "FILE")]
    pub(crate) json: Option<PathBuf>,

    /// Also write one CSV file per table into DIR (created if missing).
    #[arg(long, value_name = "DIR")]
    pub(crate) csv: Option<PathBuf>,

    /// Threads for diffing commits (default: all available cores).
    #[arg(long, value_name = "N")]
    pub(crate) threads: Option<usize>,

    /// How a developer's changed lines are counted: `per-developer` is
    /// max(Σ added, Σ removed) over their changesets, as gitdm counted
    /// until 2015 and the 2.6.31 tables show (the default);
    /// `per-changeset` is Σ max(added, removed), as gitdm counts since.
    #[arg(long, value_name = "RULE", default_value = "per-developer")]
    pub(crate) changed_lines: klab_devstats::ChangedLines,

    /// Keep per-commit records in DIR instead of `klab-devstats/` in the
    /// repository's git directory (a cache may serve several repositories).
    #[arg(long, value_name = "DIR", conflicts_with = "no_cache")]
    pub(crate) cache_dir: Option<PathBuf>,

    /// Neither read nor write the per-commit record cache: diff every
    /// commit.
    #[arg(long)]
    pub(crate) no_cache: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ArchmergeArgs {
    /// The 32-bit tree (arch/i386).
    #[arg(value_name = "TREE_32")]
    pub(crate) tree_32: PathBuf,

    /// The 64-bit tree (arch/x86_64).
    #[arg(value_name = "TREE_64")]
    pub(crate) tree_64: PathBuf,

    /// The merged tree to create; it must not exist.
    #[arg(short = 'o', long = "out", value_name = "OUT")]
    pub(crate) out: PathBuf,

    /// After writing, read the inputs and the output back and prove that
    /// each architecture's build manifest names exactly the bytes it built
    /// before the merge.
    #[arg(long)]
    pub(crate) verify: bool,

    /// Rows of the janitor report in the terminal (the full report is
    /// written into OUT).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub(crate) top: usize,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flag_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn devstats_takes_a_repository_and_an_optional_range() {
        let cli =
            Cli::try_parse_from(["klab", "devstats", "repo", "v1..v2", "--top", "5"]).unwrap();
        let Command::Devstats(args) = cli.command else {
            panic!("not devstats")
        };
        assert_eq!(args.range.as_deref(), Some("v1..v2"));
        assert_eq!(args.top, 5);
        let cli = Cli::try_parse_from(["klab", "devstats", "repo"]).unwrap();
        let Command::Devstats(args) = cli.command else {
            panic!("not devstats")
        };
        assert!(args.range.is_none() && args.employers.is_none());
        assert_eq!(
            args.changed_lines,
            klab_devstats::ChangedLines::PerDeveloper
        );
        assert!(!args.no_cache && args.cache_dir.is_none());
        let cli = Cli::try_parse_from([
            "klab",
            "devstats",
            "repo",
            "--changed-lines",
            "per-changeset",
            "--no-cache",
        ])
        .unwrap();
        let Command::Devstats(args) = cli.command else {
            panic!("not devstats")
        };
        assert_eq!(
            args.changed_lines,
            klab_devstats::ChangedLines::PerChangeset
        );
        assert!(args.no_cache);
        for bad in [
            &["klab", "devstats", "repo", "--changed-lines", "per-commit"][..],
            &["klab", "devstats", "repo", "--no-cache", "--cache-dir", "d"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn archmerge_needs_an_output() {
        assert!(Cli::try_parse_from(["klab", "archmerge", "a", "b"]).is_err());
        let cli =
            Cli::try_parse_from(["klab", "archmerge", "a", "b", "-o", "c", "--verify"]).unwrap();
        let Command::Archmerge(args) = cli.command else {
            panic!("not archmerge")
        };
        assert!(args.verify);
    }

    #[test]
    fn run_defaults() {
        let cli = Cli::try_parse_from(["klab", "run"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.report.out, PathBuf::from("klab-report"));
        assert_eq!(args.report.seed, 1);
        assert!(!args.report.quick && args.names.is_empty() && args.report.json.is_none());
    }

    #[test]
    fn run_and_bench_share_the_report_flags_with_their_own_out() {
        let cli = Cli::try_parse_from(["klab", "bench", "lro", "--quick", "--seed", "7"]).unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(args.names, ["lro"]);
        assert_eq!(args.report.out, PathBuf::from("klab-bench"));
        assert!(args.report.quick && !args.list);
        assert_eq!(args.report.seed, 7);
        let cli = Cli::try_parse_from(["klab", "bench", "--out", "d", "--json", "-"]).unwrap();
        let Command::Bench(args) = cli.command else {
            panic!("not bench")
        };
        assert_eq!(args.report.out, PathBuf::from("d"));
        assert_eq!(args.report.json, Some(PathBuf::from("-")));
    }

    #[test]
    fn enumerated_flags_take_their_values_and_refuse_others() {
        let cli = Cli::try_parse_from(["klab", "lro", "x", "--mode", "gro", "--lookup", "linear"])
            .unwrap();
        let Command::Lro(args) = cli.command else {
            panic!("not lro")
        };
        assert_eq!(klab_lro::Mode::from(args.mode), klab_lro::Mode::Gro);
        assert_eq!(
            klab_lro::Lookup::from(args.lookup),
            klab_lro::Lookup::Linear
        );
        assert!(Cli::try_parse_from(["klab", "lro", "x", "--lookup", "tree"]).is_err());
        let cli =
            Cli::try_parse_from(["klab", "replay", "t", "--memory", "1MiB", "--unit", "page"])
                .unwrap();
        let Command::Replay(args) = cli.command else {
            panic!("not replay")
        };
        assert_eq!(args.unit, Some(ReplayUnit::Page));
        assert!(
            Cli::try_parse_from(["klab", "replay", "t", "--memory", "1", "--unit", "byte"])
                .is_err()
        );
    }

    #[test]
    fn lro_defaults_are_the_kernel_drivers_values() {
        let cli = Cli::try_parse_from(["klab", "lro", "in.pcap"]).unwrap();
        let Command::Lro(args) = cli.command else {
            panic!("not lro")
        };
        assert_eq!(args.mode, LroMode::Lro);
        assert_eq!(args.lookup, LroLookup::Hashed);
        assert_eq!((args.max_desc, args.max_aggr, args.budget), (8, None, 64));
        assert!(args.out.is_none() && args.rx_usecs.is_none() && !args.trust_checksums);
        assert!(Cli::try_parse_from(["klab", "lro", "x", "--mode", "tso"]).is_err());
    }

    #[test]
    fn tcp_repair_restore_takes_the_command_after_dashes() {
        let cli = Cli::try_parse_from([
            "klab",
            "tcp-repair",
            "restore",
            "img",
            "--netns",
            "b",
            "--",
            "cat",
            "-u",
        ])
        .unwrap();
        let Command::TcpRepair(TcpRepairArgs {
            command: TcpRepairCommand::Restore(r),
        }) = cli.command
        else {
            panic!("not restore")
        };
        assert_eq!(r.image, PathBuf::from("img"));
        assert_eq!(r.netns.as_deref(), Some("b"));
        assert_eq!(r.cmd, ["cat", "-u"]);
    }

    #[test]
    fn fidelity_takes_rules_as_a_list_and_trace_only_needs_a_trace() {
        let cli = Cli::try_parse_from([
            "klab",
            "fidelity",
            "--limit",
            "8MiB",
            "--rules",
            "classic,workingset-3.15",
        ])
        .unwrap();
        let Command::Fidelity(a) = cli.command else {
            panic!("not fidelity")
        };
        assert_eq!(a.limit, Some(8 << 20));
        assert_eq!(
            a.rules,
            [
                klab_mm_policy::LruBalance::Classic,
                klab_mm_policy::LruBalance::Workingset315
            ]
        );
        assert_eq!(a.out, PathBuf::from("klab-fidelity"));
        assert!(Cli::try_parse_from(["klab", "fidelity", "--trace-only"]).is_err());
        assert!(Cli::try_parse_from(["klab", "fidelity", "--rules", "lru"]).is_err());
    }

    #[test]
    fn tcp_repair_keep_owner_needs_netns() {
        let r = Cli::try_parse_from([
            "klab",
            "tcp-repair",
            "migrate",
            "--pid",
            "1",
            "--fd",
            "3",
            "--keep-owner",
            "--",
            "cat",
        ]);
        assert!(r.is_err());
    }
}
